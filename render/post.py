"""Post passes on a whole drawn frame: bloom and depth of field.

They run on the frame after it is drawn and, when it was drawn in tiles, stitched
(render/film.py), so a 4K still drawn in pieces gets exactly the glow and focus of
a frame drawn in one: no seams at the tiles' borders and no margins to size.

Both work at a low resolution (about 270 rows, whatever the frame's size, so the
blur's reach is a fixed fraction of the frame's height): the frame is shrunk by a
box filter, blurred (a Gaussian made of three box blurs), and brought back with
bilinear interpolation.  The image work is Pillow's (C: box reduce, Gaussian blur,
bilinear resize, saturating add, masked composite), so the full look costs the film
loop little beside drawing the million points; NumPy only shapes the low-resolution
glow and looks up the depth of field's mask.

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

import math

import numpy as np
from PIL import Image, ImageChops, ImageFilter

#: rows of the low-resolution copy the blurs work on
LOW_ROWS = 270
#: bloom: the brightness (0-1, the brightest channel) above which light spills
BLOOM_THRESHOLD = 0.86
#: bloom: the luminance weights of "bright" (the path's pale core and white highlights, not merely
#: saturated colours)
LUMA = np.array([0.30, 0.55, 0.15], np.float32)


def _factor(h: int) -> int:
    return max(1, int(round(h / LOW_ROWS)))


def _low(img: np.ndarray, f: int) -> Image.Image:
    """(H, W, 3) uint8 -> the frame's block means over f x f blocks (edge blocks partial)."""
    im = Image.fromarray(np.ascontiguousarray(img))
    return im if f == 1 else im.reduce(f)


def _blur(im: Image.Image, r: int) -> Image.Image:
    """The Gaussian of three box blurs of radius r (variance r (r + 1))."""
    return im.filter(ImageFilter.GaussianBlur(math.sqrt(r * (r + 1))))


def bloom(img: np.ndarray, strength: float, radius: float = 0.012) -> np.ndarray:
    """``img`` (H, W, 3 or 4, uint8) with the light above BLOOM_THRESHOLD spilled around it:
    blurred over about ``radius`` of the frame's height (two scales, the wider one fainter)
    and added, ``strength`` times.  A fourth channel passes through unchanged."""
    if strength <= 0:
        return img
    h, w = img.shape[:2]
    f = _factor(h)
    low = np.asarray(_low(img[..., :3], f), np.float32) / 255.0
    weight = np.clip((low @ LUMA - BLOOM_THRESHOLD) / (1 - BLOOM_THRESHOLD), 0, 1) ** 2
    if not weight.any():
        return img
    src = Image.fromarray(np.clip(np.rint(low * weight[..., None] * 255.0), 0, 255).astype(np.uint8))
    rl = max(1, int(round(radius * h / f)))
    glow = (np.asarray(_blur(src, rl), np.float32) + 0.5 * np.asarray(_blur(src, 3 * rl), np.float32)) * strength
    on = glow.max(axis=-1) > 0.5
    ys, xs = np.nonzero(on)
    if len(ys) == 0:
        return img
    # only the part of the frame the glow reaches is brought back to full size
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    part = Image.fromarray(np.clip(glow[y0:y1, x0:x1] + 0.5, 0, 255).astype(np.uint8))
    r0, c0 = y0 * f, x0 * f
    r1, c1 = min(h, y1 * f), min(w, x1 * f)
    part = part.resize(((x1 - x0) * f, (y1 - y0) * f), Image.BILINEAR).crop((0, 0, c1 - c0, r1 - r0))
    out = img.copy()
    region = Image.fromarray(np.ascontiguousarray(out[r0:r1, c0:c1, :3]))
    out[r0:r1, c0:c1, :3] = np.asarray(ImageChops.add(region, part))     # saturating at 255
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
    low = _low(img, f)
    r = max(1, int(round(radius * (1 + 2 * strength) * h / f)))
    soft = _blur(low, r).resize((low.width * f, low.height * f), Image.BILINEAR).crop((0, 0, w, h))
    # how much each depth code takes of the blurred frame, 0-255 (a table of the 256 codes)
    code = np.arange(256) / 255.0
    lut = np.clip((np.abs(code - focus) * 2.0 * strength - 0.04) / 0.5, 0, 1)
    lut = np.rint(255 * lut * lut * (3 - 2 * lut)).astype(np.uint8)
    mask = Image.fromarray(lut[np.ascontiguousarray(depth)])
    return np.array(Image.composite(soft, Image.fromarray(np.ascontiguousarray(img)), mask))     # writable
