"""Titles, captions, the legend and the live read-out: set in type, laid out, composited over the frame.

Text is set with Pillow in the font shipped in assets/fonts (Open Sans, Apache
License 2.0), each piece rendered once into a small RGBA tile with a soft
shadow (``text_tile``; a ``TileCache`` keeps them between frames), then blended
onto the frame in NumPy with the opacity of its fade (``composite``, ``fade``).
Sizes are given for 1080p and scale with the output height, less than in
proportion (``text_scale``: (height / 1080) ** 0.6), so text stays legible in a
small frame (the read-out's line is about 3.4% of a 360-pixel frame, 2.2% at
1080p) and is not huge at 4K (1.7%); frames are composited at the output size,
after any tiling and supersampling.

The layout:

    title card   the scene's title and a line saying what the landscape is (``describe``),
                 at the top, fading out by ``title_end``; over a soft dark band from the top of
                 the frame (``title_band``), so it stays legible whatever the camera puts behind it
    read-out     one line per trail (``Reading``: its step and loss now), stacked upwards from
                 the bottom left, the first trail on top; it fades in as the title goes
    captions     the scene's ``render.captions`` (``draw_captions``): bottom, top, centre or a
                 lower third; captions at one edge at one time stack, and bottom ones keep
                 clear of the read-out

``FilmOverlays`` joins them for one film (``render.film``); a comparison
(``render.compare``) sets its title card, panel captions and the scene's
captions once over the composed frame from the same pieces.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from render.easing import smoothstep
from render.look import hex_rgba
from studio.assets import font
from studio.scene import RenderSpec, Scene

WHITE = (1.0, 1.0, 1.0)
SOFT = (0.78, 0.80, 0.86)           # subtitles
READOUT = (0.92, 0.93, 0.96)
#: the distance of titles, captions and the read-out from the frame's edges, at 1080p
MARGIN = 56
#: text grows as the frame's height to this power (``text_scale``)
TEXT_EXPONENT = 0.6
#: the title band (``title_band``): its darkness at the top of the frame (0-1), how much lighter it
#: is at the card's last line (a fraction of that), and how far below it it fades out (a fraction
#: of the card's height)
BAND_ALPHA = 0.7
BAND_SLOPE = 0.08
BAND_FADE = 0.5
#: the widest a title card may be, as a fraction of the frame's width (a longer title is set smaller)
TITLE_WIDTH = 0.94
#: the darkness of the soft shadow under text, and under the read-out's lines (darker: small light
#: text that stays up over the terrain's near edge, often its brightest part)
SHADOW = 0.75
READOUT_SHADOW, READOUT_SPREAD = 0.9, 1.6


def text_scale(height: int) -> float:
    """Sizes at 1080p to pixels in a frame ``height`` pixels high: (height / 1080) ** TEXT_EXPONENT.
    Less than in proportion, so overlays stay legible in a small frame and modest in a large one."""
    return (float(height) / 1080.0) ** TEXT_EXPONENT


@lru_cache(maxsize=64)
def load_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The shipped font at ``size`` pixels (titles, captions, storyboards, sweep sheets)."""
    return ImageFont.truetype(str(font(bold)), size)


@dataclass
class Tile:
    rgba: np.ndarray       # (h, w, 4) float32, premultiplied colour and alpha in [0, 1]

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]


def tile_pad(scale: float, spread: float = 1.0) -> int:
    """The transparent margin (for the shadow) around the text of a tile, in pixels."""
    return int(12 * scale * spread) + 4


def text_tile(lines: list[tuple[str, float, bool, tuple]], scale: float, align: str = "center",
              spacing: float = 0.35, dot: tuple | None = None, bar: tuple | None = None,
              shadow: float = SHADOW, spread: float = 1.0) -> Tile:
    """Render lines of (text, size at 1080p, bold, rgb) into one tile with a soft shadow (``shadow``:
    its darkness at the letters, 0-1; ``spread``: how far it reaches, 1 the default).

    ``dot``: an optional rgb colour for a round swatch before the first line (legends).
    ``bar``: an optional rgb colour for a vertical accent bar left of all lines (lower thirds;
    the lines are then left-aligned after it)."""
    fonts = [load_font(max(6, int(round(sz * scale))), b) for _, sz, b, _ in lines]
    boxes = [f.getbbox(t) for (t, *_), f in zip(lines, fonts)]
    heights = [f.getmetrics()[0] + f.getmetrics()[1] for f in fonts]
    widths = [b[2] - b[0] for b in boxes]
    pad = tile_pad(scale, spread)
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
    blur = ImageFilter.GaussianBlur(radius=max(2.0, 5 * scale * spread))
    dark = np.clip(np.asarray(alpha_img.filter(blur), np.float32) / 255.0 * 1.6 * spread, 0, 1) * shadow
    # text over its shadow (shadow colour black): premultiplied
    out_a = a + dark * (1 - a)
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
    return smoothstep(min((t - start) / fade_s, (end - t) / fade_s, 1.0))


def place(tile: Tile, width: int, height: int, position: str, margin: float) -> tuple[int, int]:
    """Top-left corner of a tile at ``position`` in a width x height frame, ``margin`` pixels in."""
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


class TileCache:
    """Text tiles kept between frames: each made once, by ``make()``, the first time its key is asked for."""

    def __init__(self):
        self._tiles: dict = {}

    def get(self, key, make: Callable[[], Tile]) -> Tile:
        if key not in self._tiles:
            self._tiles[key] = make()
        return self._tiles[key]


# ----------------------------------------------------------------------------- the title card

_DATA_NAMES = {"shapes": "generated shapes", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
               "cifar10": "CIFAR-10", "imagenette": "Imagenette", "folder": "an image folder"}
_PLANE_NAMES = {"pca": "PCA plane of the training path", "hessian": "plane of the top Hessian eigenvectors",
                "checkpoints": "plane through training checkpoints", "interpolate": "line between checkpoints",
                "minima": "plane through three trained networks"}
#: what joins the parts of a description
_PARTS = "  ·  "


def describe(meta: dict) -> str:
    """One line saying what the landscape of a cache entry (its ``meta.json``) is, for the title card."""
    ls = meta.get("landscape", {})
    m, d, p, g = ls.get("model", {}), ls.get("data", {}), ls.get("plane", {}), ls.get("grid", {})
    parts = []
    if m.get("name") == "mlp":
        parts.append(f"MLP {'-'.join(str(w) for w in m.get('widths', []))} ({m.get('activation')})")
    elif m.get("name") == "convnet":
        parts.append(f"ConvNet {'-'.join(str(c) for c in m.get('channels', []))} ({m.get('activation')})")
    elif m.get("name") in ("resnet", "vgg"):
        resnet = m["name"] == "resnet"
        name = f"ResNet-{m.get('depth')}" if resnet else f"VGG-{str(m.get('config', '')).replace('vgg', '')}"
        if resnet and m.get("skip") is False:
            name += " without skip connections"
        # only what differs from the published networks
        notes = [f"width {m['width']}"] if m.get("width") not in (None, 16 if resnet else 64) else []
        notes += ["no BatchNorm"] if m.get("batchnorm") is False else []
        parts.append(name + (f" ({', '.join(notes)})" if notes else ""))
    elif m.get("name") == "torchvision":
        parts.append(f"torchvision {m.get('arch')}")
    elif m.get("name") == "custom":
        cls = meta.get("model_class") or str(m.get("entry", "")).partition(":")[2] or "your model"
        parts.append(f"{cls} ({meta['parameters']:,} weights)" if meta.get("parameters") else cls)
    if d.get("name") == "spirals":
        parts.append(f"{d.get('classes')} interleaved spirals")
    elif d.get("name") in _DATA_NAMES:
        parts.append(_DATA_NAMES[d["name"]])
    elif d.get("name") == "custom":
        parts.append(_data_size(meta.get("data") or {}) or f"data from {d.get('entry')}")
    elif d.get("name") == "regression":
        parts.append(f"fitting the {d.get('function')} function")
    loss = (ls.get("loss") or {})
    if loss.get("name", "cross_entropy") != "cross_entropy":
        parts.append(f"loss {loss.get('entry') or loss['name']}")
    source = (meta.get("training") or {}).get("source", "trained")
    if source != "trained" and p.get("method") != "minima":     # a minima plane's three files: its name says
        parts.append({"weights": "one trained model", "recorder": "your recorded run"}.get(source, "your checkpoints"))
    if p.get("method") == "random":
        parts.append(f"random {p.get('normalization')}-normalized plane")
    elif p.get("method") in _PLANE_NAMES:
        parts.append(_PLANE_NAMES[p["method"]])
    if g.get("resolution"):
        nx, ny = g["resolution"]
        seq = meta.get("sequence") or {}
        if seq.get("grids"):          # a landscape over training: its grids and the still one
            parts.append(f"{seq['grids']} moments of training, {nx * ny * (seq['grids'] + 1):,} loss evaluations")
        else:
            parts.append(f"{nx * ny:,} loss evaluations")
    return _PARTS.join(parts)


def _data_size(data: dict) -> str:
    """'512 images 1x16x16, 3 classes': the evaluation data of a user's data function, from meta.json."""
    n, shape, kind = data.get("eval_samples"), data.get("shape") or [], data.get("kind")
    if not n:
        return ""
    dims = "x".join(map(str, shape))
    noun = {3: "images", 1: "samples"}.get(len(shape), "samples")
    if kind == "tokens" or data.get("inputs") == "tokens":
        text = f"{n:,} sequences of {shape[0] if shape else '?'} tokens"
    elif len(shape) == 1:
        text = f"{n:,} samples of {shape[0]} features"
    else:
        text = f"{n:,} {noun} {dims}"
    if kind == "classes" and data.get("classes"):
        text += f", {data['classes']} classes"
    return text


def shared_description(metas: list[dict]) -> str:
    """The parts of several landscapes' descriptions that they all share (a comparison's title card)."""
    parts = [describe(m).split(_PARTS) for m in metas]
    return _PARTS.join(p for p in parts[0] if p and all(p in q for q in parts[1:]))


def title_end(duration: float) -> float:
    """When the title card has faded out (and the read-out and panel captions come in)."""
    return min(4.5, duration * 0.4)


def title_band(img: np.ndarray, bottom: float, fade_px: float, opacity: float, alpha: float = BAND_ALPHA) -> None:
    """Darken the top of the frame in place, behind the title card: ``alpha`` x opacity at the
    top, a little less (``BAND_SLOPE``) at ``bottom`` (the card's last line), then fading out
    (smoothstep) over ``fade_px`` more.  Black "over" the frame: an RGBA frame (premultiplied) takes
    the band's alpha too."""
    a = alpha * opacity
    if a <= 0:
        return
    end = bottom + max(fade_px, 1.0)
    rows = min(img.shape[0], int(np.ceil(end)))
    y = np.arange(rows, dtype=np.float32) + 0.5
    u = np.clip((y - bottom) / (end - bottom), 0.0, 1.0)
    top = 1.0 - BAND_SLOPE * np.clip(y / max(bottom, 1.0), 0.0, 1.0)
    alpha = (a * top * (1.0 - u * u * (3.0 - 2.0 * u)))[:, None]           # (rows, 1): per row
    region = img[:rows].astype(np.float32)
    region[..., :3] *= (1.0 - alpha)[..., None]
    if img.shape[2] == 4:
        region[..., 3] += alpha * (255.0 - region[..., 3])
    img[:rows] = np.clip(np.rint(region), 0, 255).astype(np.uint8)


def fitted_tile(lines: list[tuple[str, float, bool, tuple]], scale: float, room: float, **kw) -> Tile:
    """``text_tile(lines, scale, **kw)``, set smaller where it would be wider than ``room`` pixels (a
    long line on a small frame: text shrinks less than the frame does)."""
    tile = text_tile(lines, scale, **kw)
    if tile.size[0] > room:
        tile = text_tile(lines, scale * room / tile.size[0], **kw)
    return tile


def title_tile(tiles: TileCache, title: str, subtitle: str, scale: float, width: int) -> Tile:
    """The title card's tile, set smaller where it would be wider than ``TITLE_WIDTH`` of the frame;
    the subtitle in READOUT's near-white and both lines on the read-out's darker, wider shadow, so
    the small second line reads over pale terrain under the band."""
    lines = [(title, 68, True, WHITE)] + ([(subtitle, 26, False, READOUT)] if subtitle else [])
    return tiles.get(("title", width), lambda: fitted_tile(lines, scale, TITLE_WIDTH * width, shadow=READOUT_SHADOW,
                                                           spread=READOUT_SPREAD))


def draw_title(img: np.ndarray, tiles: TileCache, title: str, subtitle: str, t: float, end: float,
               scale: float) -> None:
    """The title card at time t: the title over a subtitle (none if empty), at the top of the frame
    over a soft dark band (``title_band``: the terrain may rise behind it, whatever the camera does),
    fading in from 0.3 s and out by ``end``."""
    op = fade(t, 0.3, end, 0.9)
    if op <= 0:
        return
    tile = title_tile(tiles, title, subtitle, scale, img.shape[1])
    x, y = place(tile, img.shape[1], img.shape[0], "top", MARGIN * scale * 1.3)
    title_band(img, y + tile.size[1] - tile_pad(scale), BAND_FADE * tile.size[1], op)
    composite(img, tile, x, y, op)


# ----------------------------------------------------------------------------- the read-out

@dataclass(frozen=True)
class Reading:
    """One line of the read-out: where a trail's head is at a moment."""
    label: str
    rgb: tuple[float, float, float]     # the trail's colour (the legend's dot)
    step: float
    loss: float                         # the network's true loss
    surface: float | None               # the loss on the drawn plane under the head; None for a path in the plane
    over_grid: bool = True              # False: the trail is clipped to the grid and its head went beyond it

    def text(self) -> str:
        text = (f"{self.label}   " if self.label else "") + f"step {int(round(self.step)):,}   loss {self.loss:.4f}"
        # where the path leaves the plane the two losses differ (an in-plane descent never does)
        if self.surface is not None:
            text += f"   on this plane {self.surface:.4f}"
        if not self.over_grid:
            text += "   (beyond the grid)"
        return text


def readout_fit(tiles: TileCache, readings: list[Reading], scale: float, room: float) -> float:
    """The factor (at most 1) that fits the read-out's longest line into ``room`` pixels: a panel
    of a side-by-side film at 640 x 360 is too narrow for it at the film's scale.  Measured on each
    trail's widest line (the largest step and loss it could show), so it does not change while
    the numbers do."""
    def widest(r: Reading) -> float:
        probe = Reading(r.label, r.rgb, 99_999, 9.9999, None if r.surface is None else 9.9999, r.over_grid)
        return tiles.get(("readout_width", probe.text(), scale), lambda: text_tile(
            [(probe.text(), 24, False, READOUT)], scale, align="left", dot=WHITE)).size[0]
    longest = max(widest(r) for r in readings)
    return min(1.0, room / longest) if longest > 0 else 1.0


def _readout_line(tiles: TileCache, scale: float) -> tuple[int, int]:
    """The height of a read-out line's tile, and the step between lines (they overlap by their
    padding: a compact legend)."""
    line_h = tiles.get(("readout_line", scale), lambda: text_tile(
        [("Step 0 loss", 24, False, WHITE)], scale, align="left", dot=WHITE)).size[1]
    return line_h, line_h - tile_pad(scale)


def readout_height(tiles: TileCache, scale: float, lines: int) -> float:
    """Pixels the read-out of ``lines`` trails takes above the bottom margin.  Bottom captions keep
    clear of all of it (every trail, shown or not yet), so they do not move when a line appears."""
    if not lines:
        return 0
    _, step = _readout_line(tiles, scale)
    return lines * step + tile_pad(scale)


def draw_readout(img: np.ndarray, tiles: TileCache, readings: list[Reading], opacity: float, scale: float) -> None:
    """The read-out, one line per reading, stacked upwards from the bottom left (the first on top)."""
    if opacity <= 0 or not readings:
        return
    height, width = img.shape[:2]
    margin = MARGIN * scale
    scale *= readout_fit(tiles, readings, scale, width - 1.2 * margin)
    line_h, step = _readout_line(tiles, scale)
    y = height - margin - line_h
    # the lines' wider shadow takes a wider margin: the tile moves out by the difference, so the
    # text stands where a plain tile's would
    extra = tile_pad(scale, READOUT_SPREAD) - tile_pad(scale)
    for r in reversed(readings):
        tile = text_tile([(r.text(), 24, False, READOUT)], scale, align="left", dot=r.rgb, shadow=READOUT_SHADOW,
                         spread=READOUT_SPREAD)
        composite(img, tile, int(margin * 0.6) - extra, int(y) - extra, opacity)
        y -= step


# ----------------------------------------------------------------------------- captions

def draw_captions(img: np.ndarray, render: RenderSpec, t: float, scale: float, reserve: float,
                  tiles: TileCache) -> None:
    """The scene's ``render.captions`` visible at time t, composited on ``img``; bottom captions and
    lower thirds keep ``reserve`` pixels clear above the bottom margin (the read-out's lines).
    Captions that share an edge at the same time stack instead of overlapping (those listed
    first nearest the edge), each taking room in proportion to its opacity, so the others slide
    smoothly as one fades in or out."""
    height, width = img.shape[:2]
    margin = MARGIN * scale
    gap = 14 * scale
    used = {"bottom": 0.0, "top": 0.0}          # pixels taken from each edge by earlier captions
    for i, c in enumerate(render.captions):
        op = fade(t, c.start, c.end, c.fade)
        if op <= 0:
            continue
        if c.position == "lower_third":
            # a left-aligned block: the text bold, the subtitle under it, an accent bar in the
            # first trail's colour; it slides in a little as it fades in
            accent = hex_rgba(next(iter(render.paths.values())).color)[:3] if render.paths else WHITE
            lines = [(c.text, c.size, True, WHITE)] + ([(c.subtitle, c.size * 0.62, False, SOFT)]
                                                      if c.subtitle else [])
            tile = tiles.get(("caption", i), lambda lines=lines, accent=accent: fitted_tile(
                lines, scale, width - 2 * margin * 0.6, spacing=0.2, bar=accent))
            bottom = max(margin * 1.9, margin + reserve + margin * 0.45, used["bottom"])
            used["bottom"] = bottom + (tile.size[1] + gap) * op
            x = int(margin * 0.6 + (1 - op) * 28 * scale)
            composite(img, tile, x, int(height - bottom - tile.size[1]), op)
            continue
        lines = [(c.text, c.size, False, WHITE)] + ([(c.subtitle, c.size * 0.66, False, SOFT)]
                                                   if c.subtitle else [])
        tile = tiles.get(("caption", i), lambda lines=lines: fitted_tile(lines, scale, TITLE_WIDTH * width,
                                                                         spacing=0.25))
        m = margin * 1.6
        if c.position == "bottom":
            m = max(margin * 2.4, margin + reserve + margin * 0.3, used["bottom"])
            used["bottom"] = m + (tile.size[1] + gap) * op
        elif c.position == "top":
            m = max(m, used["top"])
            used["top"] = m + (tile.size[1] + gap) * op
        x, y = place(tile, width, height, c.position, m)
        composite(img, tile, x, int(y), op)


# ----------------------------------------------------------------------------- one film's overlays

class FilmOverlays:
    """A film's overlays at the output size: the title card (with ``describe(meta)``), the scene's
    captions and the read-out of ``trails`` trails.  ``scene_text`` False leaves out the title card
    and the captions (a comparison's panel: they are drawn once over the whole frame)."""

    def __init__(self, scene: Scene, meta: dict, height: int, duration: float, trails: int,
                 scene_text: bool = True):
        self.scene = scene
        self.scale = text_scale(height)         # sizes at 1080p to output pixels
        self.duration = float(duration)
        self.title_end = title_end(duration)
        self.titled = bool(scene.render.title_card and scene_text)
        self.subtitle = describe(meta) if self.titled else ""
        self.scene_text = scene_text
        self.tiles = TileCache()
        self.reserve = readout_height(self.tiles, self.scale, trails)

    def draw(self, img: np.ndarray, t: float, readings: list[Reading]) -> None:
        """Composite the overlays at time t onto ``img`` (in place)."""
        if self.titled:
            draw_title(img, self.tiles, self.scene.film_title, self.subtitle, t, self.title_end, self.scale)
        if self.scene_text:
            draw_captions(img, self.scene.render, t, self.scale, self.reserve, self.tiles)
        # the read-out comes in as the title goes (and as late when there is none)
        draw_readout(img, self.tiles, readings, fade(t, self.title_end - 0.5, self.duration + 10, 0.8), self.scale)
