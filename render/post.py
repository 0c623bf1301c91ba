"""Post passes on a whole drawn frame: depth of field, then bloom (``apply``).

They run on the frame after it is drawn and, when it was drawn in tiles, stitched
(render/film.py), so a 4K still drawn in pieces gets exactly the glow and focus of
a frame drawn in one: no seams at the tiles' borders and no margins to size.

Both work at a low resolution (about 270 rows, whatever the frame's size, so the
blur's reach is a fixed fraction of the frame's height): the frame is shrunk by a
box filter, blurred (a Gaussian made of three box blurs), and brought back to full
size (bilinear to half size, then pixel doubling: the blurred picture is smooth, and
this costs a third of a full-size bilinear resize).  The image work is Pillow's (C:
box reduce, blur, resize, lookup table, masked composite, saturating add) on the
frame as it comes from the GL read-back; NumPy only shapes the low-resolution glow.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageFilter

#: rows of the low-resolution copy the blurs work on
LOW_ROWS = 270
#: bloom: the brightness (0-1, the luminance below) above which light spills
BLOOM_THRESHOLD = 0.86
#: bloom: the luminance weights of "bright" (the path's pale core and white highlights, not merely
#: saturated colours)
LUMA = np.array([0.30, 0.55, 0.15], np.float32)


def apply(img: np.ndarray, focus: float | None, depth_of_field: float, bloom: float) -> np.ndarray:
    """The frame ``img`` (H, W, 3 or 4 uint8) after its post passes: with a ``focus`` (0-1 on the
    depth scale of the alpha channel, which then goes) and ``depth_of_field`` > 0 the depth of
    field, then with ``bloom`` > 0 the bloom.  A fourth channel that is not a depth (a transparent
    frame's alpha) passes through."""
    if (focus is None or depth_of_field <= 0) and bloom <= 0:
        return img
    im = Image.fromarray(np.ascontiguousarray(img))
    alpha = None
    if focus is not None and depth_of_field > 0:
        im = _depth_of_field(im, focus, depth_of_field)
    elif im.mode == "RGBA":
        alpha, im = im.getchannel("A"), im.convert("RGB")
    if bloom > 0:
        im = _bloom(im, bloom)
    if alpha is not None:
        im = Image.merge("RGBA", (*im.split(), alpha))
    return np.array(im)                                     # a writable copy


def _factor(h: int) -> int:
    return max(1, int(round(h / LOW_ROWS)))


def _blur(im: Image.Image, r: int) -> Image.Image:
    """The Gaussian of three box blurs of radius r (variance r (r + 1))."""
    return im.filter(ImageFilter.GaussianBlur(math.sqrt(r * (r + 1))))


def _up(low: Image.Image, f: int, size: tuple[int, int]) -> Image.Image:
    """A low-resolution image made with factor f brought to ``size`` (cropped from the blocks' full
    extent): bilinear to half of that extent, then doubled pixel by pixel."""
    full = (low.width * f, low.height * f)
    if f >= 2 and f % 2 == 0:
        im = low.resize((full[0] // 2, full[1] // 2), Image.BILINEAR).resize(full, Image.NEAREST)
    else:
        im = low.resize(full, Image.BILINEAR)
    return im.crop((0, 0, *size)) if full != size else im


def _depth_of_field(rgbd: Image.Image, focus: float, strength: float, radius: float = 0.006) -> Image.Image:
    """The RGB frame softened away from the focus: its alpha channel the depth (0 nearest, 255 the
    background) against ``focus``; pixels ``0.5 / strength`` of the depth range or more from it take
    the blurred frame (a blur over about ``radius`` of the frame's height times 1 + 2 x strength).

    The depth is the alpha channel the cloud program writes (render/gl.py, draw_cloud's
    depth_range); nothing in front of the terrain (trails, the head) changes it, so they soften
    with what is under them."""
    rgb = rgbd.convert("RGB")
    f = _factor(rgb.height)
    r = max(1, int(round(radius * (1 + 2 * strength) * rgb.height / f)))
    low = rgb.reduce(f) if f > 1 else rgb
    soft = _up(_blur(low, r), f, rgb.size)
    # how much each depth code takes of the blurred frame, 0-255 (a table of the 256 codes)
    code = np.arange(256) / 255.0
    lut = np.clip((np.abs(code - focus) * 2.0 * strength - 0.04) / 0.5, 0, 1)
    lut = np.rint(255 * lut * lut * (3 - 2 * lut)).astype(np.uint8)
    mask = rgbd.getchannel("A").point(lut.tolist())
    return Image.composite(soft, rgb, mask)


def _bloom(rgb: Image.Image, strength: float, radius: float = 0.012) -> Image.Image:
    """The RGB frame with the light above BLOOM_THRESHOLD spilled around it: blurred over about
    ``radius`` of the frame's height (two scales, the wider one half as strong) and added,
    ``strength`` times.  ``rgb`` is the caller's own image: the glow is added to it in place.

    Bright is the path's head and trail, highlights and the brightest colours (``LUMA``), not
    merely saturated ones; only the part of the frame around bright pixels is brought back to
    full size."""
    w, h = rgb.size
    f = _factor(h)
    low = rgb.reduce(f) if f > 1 else rgb
    # how much of each pixel's light spills: (luminance above the threshold)^2, 0-255
    code = np.arange(256) / 255.0
    spill = np.clip((code - BLOOM_THRESHOLD) / (1 - BLOOM_THRESHOLD), 0, 1) ** 2
    weight = low.convert("L", (*LUMA.tolist(), 0.0)).point(np.rint(255 * spill).astype(np.uint8).tolist())
    if weight.getbbox() is None:
        return rgb
    src = ImageChops.multiply(low, Image.merge("RGB", (weight,) * 3))
    rl = max(1, int(round(radius * h / f)))
    # (narrow + wide / 2) x strength = blend(narrow, wide, 1/3) x 1.5 strength
    gain = 1.5 * strength
    table = np.clip(np.rint(np.arange(256) * gain), 0, 255).astype(np.uint8).tolist()
    glow = Image.blend(_blur(src, rl), _blur(src, 3 * rl), 1 / 3).point(table * 3)
    bbox = glow.getbbox()
    if bbox is None:
        return rgb
    # only the part of the frame the glow reaches is brought back to full size (whole blocks, so the
    # part's edges fall where the whole glow's would)
    x0, y0, x1, y1 = bbox
    box = (x0 * f, y0 * f, min(w, x1 * f), min(h, y1 * f))
    part = _up(glow.crop(bbox), f, (box[2] - box[0], box[3] - box[1]))
    rgb.paste(ImageChops.add(rgb.crop(box), part), box[:2])           # saturating at 255
    return rgb
