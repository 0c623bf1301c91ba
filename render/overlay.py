"""Titles, captions, the legend and the live read-out, composited over the frame.

Text is set with Pillow in the font shipped in assets/fonts (Open Sans, Apache
License 2.0), each piece rendered once into a small RGBA tile with a soft
shadow, then blended onto the frame in NumPy with the opacity of its fade.
Sizes are given for 1080p and scale with the output height.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from studio.assets import font


@lru_cache(maxsize=64)
def _font(size: int, bold: bool) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font(bold)), size)


@dataclass
class Tile:
    rgba: np.ndarray       # (h, w, 4) float32, premultiplied colour and alpha in [0, 1]

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]


def tile_pad(scale: float) -> int:
    """The transparent margin (for the shadow) around the text of a tile, in pixels."""
    return int(12 * scale) + 4


def text_tile(lines: list[tuple[str, float, bool, tuple]], scale: float, align: str = "center",
              spacing: float = 0.35, dot: tuple | None = None, bar: tuple | None = None) -> Tile:
    """Render lines of (text, size at 1080p, bold, rgb) into one tile with a soft shadow.

    ``dot``: an optional rgb colour for a round swatch before the first line (legends).
    ``bar``: an optional rgb colour for a vertical accent bar left of all lines (lower thirds;
    the lines are then left-aligned after it)."""
    fonts = [_font(max(6, int(round(sz * scale))), b) for _, sz, b, _ in lines]
    boxes = [f.getbbox(t) for (t, *_), f in zip(lines, fonts)]
    heights = [f.getmetrics()[0] + f.getmetrics()[1] for f in fonts]
    widths = [b[2] - b[0] for b in boxes]
    pad = tile_pad(scale)
    dot_w = int(heights[0] * 0.9) if dot else 0
    bar_w = max(2, int(round(5 * scale))) if bar else 0
    bar_gap = int(round(16 * scale)) + 2 if bar else 0
    if bar:
        align = "left"
        dot_w = bar_w + bar_gap
    w = max(widths) + dot_w + 2 * pad
    gaps = [int(h * spacing) for h in heights]
    h = sum(heights) + sum(gaps[:-1]) + 2 * pad
    alpha_img = Image.new("L", (w, h), 0)
    color_img = Image.new("RGB", (w, h), (0, 0, 0))
    da, dc = ImageDraw.Draw(alpha_img), ImageDraw.Draw(color_img)
    y = pad
    for i, ((text, _, _, rgb), f, tw, th) in enumerate(zip(lines, fonts, widths, heights)):
        if align == "center":
            x = (w - tw) // 2
        elif align == "right":
            x = w - pad - tw
        else:
            x = pad + (dot_w if i == 0 or bar else 0)
        if dot and i == 0:
            r = th * 0.22
            cx, cy = pad + r + 1, y + th * 0.55
            da.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
            dc.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(c * 255) for c in dot))
        da.text((x, y), text, font=f, fill=255)
        dc.text((x, y), text, font=f, fill=tuple(int(c * 255) for c in rgb))
        y += th + gaps[i]
    if bar:
        top = pad + int(heights[0] * 0.12)
        box = [pad, top, pad + bar_w - 1, max(top + 1, y - gaps[-1] - int(heights[-1] * 0.08))]
        da.rectangle(box, fill=255)
        dc.rectangle(box, fill=tuple(int(c * 255) for c in bar))
    a = np.asarray(alpha_img, np.float32) / 255.0
    c = np.asarray(color_img, np.float32) / 255.0
    shadow = np.asarray(alpha_img.filter(ImageFilter.GaussianBlur(radius=max(2.0, 5 * scale))), np.float32) / 255.0
    shadow = np.clip(shadow * 1.6, 0, 1) * 0.75
    # text over its shadow (shadow colour black): premultiplied
    out_a = a + shadow * (1 - a)
    rgba = np.concatenate([c * a[..., None], out_a[..., None]], axis=-1)
    return Tile(rgba.astype(np.float32))


def composite(frame: np.ndarray, tile: Tile, x: int, y: int, opacity: float) -> None:
    """Blend a premultiplied tile onto an RGB uint8 frame in place, at top-left (x, y); onto an
    RGBA frame (premultiplied colours) its alpha is composited too ("over")."""
    if opacity <= 0:
        return
    fh, fw = frame.shape[:2]
    th, tw = tile.rgba.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + tw, fw), min(y + th, fh)
    if x1 <= x0 or y1 <= y0:
        return
    t = tile.rgba[y0 - y:y1 - y, x0 - x:x1 - x]
    c = frame.shape[2]
    region = frame[y0:y1, x0:x1].astype(np.float32) / 255.0
    a = t[..., 3:4] * opacity
    out = t[..., :c] * opacity * 255.0 + region * 255.0 * (1 - a)
    frame[y0:y1, x0:x1] = np.clip(out, 0, 255).astype(np.uint8)


def fade(t: float, start: float, end: float, fade_s: float) -> float:
    """Opacity of something shown from start to end with fades of fade_s seconds (smoothstep)."""
    if t < start or t > end:
        return 0.0
    if fade_s <= 0:
        return 1.0
    u = min((t - start) / fade_s, (end - t) / fade_s, 1.0)
    return u * u * (3 - 2 * u)


def place(tile: Tile, width: int, height: int, position: str, margin: float) -> tuple[int, int]:
    tw, th = tile.size
    m = int(margin)
    if position == "top":
        return (width - tw) // 2, m
    if position == "center":
        return (width - tw) // 2, (height - th) // 2
    if position == "bottom_left":
        return m, height - th - m
    if position == "bottom_right":
        return width - tw - m, height - th - m
    if position == "top_left":
        return m, m
    return (width - tw) // 2, height - th - m
