"""Post passes on a whole drawn frame (NumPy): bloom and depth of field.

They run on the frame after it is drawn and, when it was drawn in tiles, stitched
(render/film.py), so a 4K still drawn in pieces gets exactly the glow and focus of
a frame drawn in one: no seams at the tiles' borders and no margins to size.

Both work at a low resolution (about 270 rows, whatever the frame's size, so the
blur's reach is a fixed fraction of the frame's height): the frame is shrunk by a
box filter, blurred (three box blurs, close to a Gaussian), and brought back with
bilinear interpolation.

* ``bloom``: the light above a threshold (the path's head and trail, highlights,
  the brightest colours) blurred and added back; only the part of the frame
  around bright pixels is brought back to full size.
* ``depth_of_field``: the frame mixed with its blurred self by how far each
  pixel's depth (the alpha channel the cloud program writes: render/gl.py,
  draw_cloud's depth_range) lies from the focus depth; nothing in front of the
  terrain (trails, the head) changes the depth, so they soften with what is under
  them.
"""
from __future__ import annotations

import numpy as np

#: rows of the low-resolution copy the blurs work on
LOW_ROWS = 270
#: bloom: the brightness (0-1, the brightest channel) above which light spills
BLOOM_THRESHOLD = 0.86


def _factor(h: int) -> int:
    return max(1, int(round(h / LOW_ROWS)))


def shrink(img: np.ndarray, f: int) -> np.ndarray:
    """(H, W, C) -> (ceil(H/f), ceil(W/f), C) float32 block means (edge blocks padded by repetition)."""
    h, w = img.shape[:2]
    H, W = -(-h // f), -(-w // f)
    a = img.astype(np.float32)
    if H * f != h or W * f != w:
        a = np.pad(a, ((0, H * f - h), (0, W * f - w), (0, 0)), mode="edge")
    return a.reshape(H, f, W, f, -1).mean(axis=(1, 3))


def blur(a: np.ndarray, r: int, passes: int = 3) -> np.ndarray:
    """Three box blurs of radius r along both axes (edges clamped): close to a Gaussian."""
    for _ in range(passes):
        for axis in (0, 1):
            n = a.shape[axis]
            pad = [(0, 0)] * a.ndim
            pad[axis] = (r + 1, r)
            c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.float32)
            a = (np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
                 - np.take(c, np.arange(n), axis=axis)) / (2 * r + 1)
    return a


def grow(low: np.ndarray, f: int, rows: slice, cols: slice) -> np.ndarray:
    """The part (rows, cols) of the full-size frame of a low-resolution image made by ``shrink``
    with factor f, by bilinear interpolation between the blocks' centres."""
    def weights(sl: slice, n_low: int):
        p = (np.arange(sl.start, sl.stop) + 0.5) / f - 0.5
        i0 = np.clip(np.floor(p).astype(int), 0, n_low - 1)
        i1 = np.minimum(i0 + 1, n_low - 1)
        t = np.clip(p - np.floor(p), 0, 1).astype(np.float32)
        t = np.where(p < 0, 0, t).astype(np.float32)
        return i0, i1, t
    r0, r1, tr = weights(rows, low.shape[0])
    c0, c1, tc = weights(cols, low.shape[1])
    a = low[r0] * (1 - tr)[:, None, None] + low[r1] * tr[:, None, None]
    return a[:, c0] * (1 - tc)[None, :, None] + a[:, c1] * tc[None, :, None]


def _to_full(low: np.ndarray, w: int, h: int) -> np.ndarray:
    """A low-resolution float image (0-255) brought to w x h by Pillow's bilinear resize (C, fast)."""
    from PIL import Image
    small = Image.fromarray(np.clip(low + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(small.resize((w, h), Image.BILINEAR))


def _shrink_fast(img: np.ndarray, f: int) -> np.ndarray:
    """(H, W, 3) uint8 -> float32 block means by Pillow's box reduce (edge blocks partial)."""
    from PIL import Image
    if f == 1:
        return img.astype(np.float32)
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).reduce(f), np.float32)


def bloom(img: np.ndarray, strength: float, radius: float = 0.012) -> np.ndarray:
    """``img`` (H, W, 3 or 4, uint8) with the light above BLOOM_THRESHOLD spilled around it:
    blurred over about ``radius`` of the frame's height (two scales, the wider one fainter)
    and added, ``strength`` times.  A fourth channel passes through unchanged."""
    if strength <= 0:
        return img
    h, w = img.shape[:2]
    f = _factor(h)
    low = _shrink_fast(img[..., :3], f) / 255.0
    # perceived brightness (the path's pale core and white highlights, not merely saturated colours)
    lum = low @ np.array([0.30, 0.55, 0.15], np.float32)
    src = low * (np.clip((lum - BLOOM_THRESHOLD) / (1 - BLOOM_THRESHOLD), 0, 1) ** 2)[..., None]
    if not src.any():
        return img
    rl = max(1, int(round(radius * h / f)))
    glow = (blur(src, rl) + 0.5 * blur(src, 3 * rl)) * (strength * 255.0)
    on = glow.max(axis=-1) > 0.5
    ys, xs = np.nonzero(on)
    if len(ys) == 0:
        return img
    # only the part of the frame the glow reaches is brought back to full size
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    part = _to_full(glow[y0:y1, x0:x1], (x1 - x0) * f, (y1 - y0) * f)
    r0, c0 = y0 * f, x0 * f
    r1, c1 = min(h, r0 + part.shape[0]), min(w, c0 + part.shape[1])
    out = img.copy()
    region = out[r0:r1, c0:c1, :3]
    np.add(region, np.minimum(part[:r1 - r0, :c1 - c0], 255 - region), out=region)   # saturating add
    return out


def depth_of_field(img: np.ndarray, depth: np.ndarray, focus: float, strength: float,
                   radius: float = 0.006) -> np.ndarray:
    """``img`` (H, W, 3, uint8) softened away from the focus: ``depth`` (H, W, uint8: 0 nearest,
    255 the background) against ``focus`` (0-1 on the same scale); pixels ``0.5 / strength`` of
    the depth range or more from it take the blurred frame (a blur over about ``radius`` of the
    frame's height times 1 + 2 x strength)."""
    if strength <= 0:
        return img
    h, w = img.shape[:2]
    f = _factor(h)
    low = _shrink_fast(img, f)
    r = max(1, int(round(radius * (1 + 2 * strength) * h / f)))
    soft = _to_full(blur(low, r), low.shape[1] * f, low.shape[0] * f)[:h, :w]
    # how much each depth code takes of the blurred frame, in 256ths (a table of the 256 codes)
    code = np.arange(256) / 255.0
    lut = np.clip((np.abs(code - focus) * 2.0 * strength - 0.04) / 0.5, 0, 1)
    lut = np.rint(256 * lut * lut * (3 - 2 * lut)).astype(np.int32)
    k = lut[depth][..., None]
    a = img.astype(np.int32)
    return (a + (((soft.astype(np.int32) - a) * k + 128) >> 8)).astype(np.uint8)
