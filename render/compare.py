"""Comparison films: two to four landscapes in one film (the scene's ``compare:`` section).

Each panel is an ordinary :class:`render.film.Film` of the panel's scene (the
scene with the panel's landscape, ``Scene.panels()``) and its own cache entry,
drawn as a panel (``PanelOptions``): without the title card and the scene's
captions, which are drawn here once over the whole frame.

- ``split``: the panels side by side (two) or in a 2x2 grid (three or four;
  three leave the bottom row's one panel centred), each drawn at its cell's size,
  separated by a thin divider, each with its caption at its top left.  All
  panels fly the same camera path at the same time from the same home (the
  framing of all terrains together, for the cell's shape) over the same ground,
  so what differs between panels is the landscape, not the view.
- ``sequence``: one panel after another at full size, the film's duration
  shared out in equal slots; each panel's camera time runs over its whole slot
  (every panel gets the whole flight, faster), and ``transition`` seconds of
  crossfade join the slots.

With ``shared_scale`` (the default) one height scale (and colour scale for
``color_by: loss`` or a grid) comes from all panels' losses together, by the
same rule as a single film's (``studio.scale.shared_scales``: ``height_map`` on
the union), so equal losses get equal heights and colours in every panel.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.cache import Landscape
from studio.scale import HeightMap, height_map, loss_sample, shared_scales
from studio.scene import Scene
from render import camera as cam
from render import overlay
from render.easing import smoothstep
from render.film import Closing, Film, Options, PanelOptions, write_film, write_still
from render.look import hex_rgba, highest_level, terrain_sample

#: the divider between split panels (a little lighter than the default background, so it reads as
#: a line between two pictures rather than a hole), and its width at 1080p
GAP_RGB = (30, 33, 44)
GAP_PX = 4


def split_cells(n: int, width: int, height: int, gap: int) -> list[tuple[int, int, int, int]]:
    """The panels' rectangles (x, y, w, h) in a width x height frame: two side by side, three or
    four in a 2x2 grid (three: the last centred in the bottom row), ``gap`` pixels between."""
    w0 = (width - gap) // 2
    w1 = width - w0 - gap
    if n == 2:
        return [(0, 0, w0, height), (w0 + gap, 0, w1, height)]
    h0 = (height - gap) // 2
    h1 = height - h0 - gap
    top = [(0, 0, w0, h0), (w0 + gap, 0, w1, h0)]
    if n == 3:
        return top + [((width - w0) // 2, h0 + gap, w0, h1)]
    return top + [(0, h0 + gap, w0, h1), (w0 + gap, h0 + gap, w1, h1)]


class CompareFilm(Closing):
    """The comparison's frame at time t, composed from one Film per panel (``with CompareFilm(...) as
    film:`` closes them all)."""

    #: frames are RGB: a comparison always has a background (studio.scene.alpha_problem)
    transparent = False

    def __init__(self, scene: Scene, panels: list[tuple[str, Scene, Landscape]], opts: Options):
        cmp = scene.compare
        self.scene, self.opts = scene, opts
        self.layout = cmp.layout
        self.captions = [c for c, _, _ in panels]
        self.metas = [ls.meta for _, _, ls in panels]
        look = scene.render.look
        lss = [ls for _, _, ls in panels]
        n = len(panels)
        self.sc = opts.height / 1080.0
        if cmp.shared_scale:
            hm, cs = shared_scales(lss, look)
            self.heights, color = [hm] * n, [cs] * n
        else:
            self.heights = [height_map(loss_sample(ls), look.height, look.exaggeration, look.clip_quantile)
                            for ls in lss]
            color = [None] * n
        if self.layout == "split":
            self.gap = max(2, int(round(GAP_PX * self.sc)))
            self.cells = split_cells(n, opts.width, opts.height, self.gap)
        else:
            self.gap = 0
            self.cells = [(0, 0, opts.width, opts.height)] * n
        # one home and one ground for all cameras: the framing of every terrain together, and the
        # highest of the terrains under the camera (each panel's own if their grids' shapes differ)
        cw, ch = self.cells[0][2], self.cells[0][3]
        sample = np.concatenate([terrain_sample(h.level(np.asarray(ls.loss)), h.top)
                                 for ls, h in zip(lss, self.heights)])
        home = cam.framing(sample, cw / ch)
        ground = _common_ground(lss, self.heights, opts.stride)
        self.slot = opts.duration / n
        self.half = min(cmp.transition, self.slot) / 2
        self.films: list[Film] = []
        try:
            for (caption, ps, ls), (x, y, w, h), hm, cs in zip(panels, self.cells, self.heights, color):
                po = PanelOptions(heights=hm, color_scale=cs, home=home, ground=ground, overlays=False)
                self.films.append(Film(ps, ls, Options(w, h, opts.fps, opts.duration, opts.stride,
                                                       opts.supersample, opts.max_tile), po))
        except BaseException:
            self.close()
            raise
        bg = self.films[0].bg_bottom
        self.bg = np.clip(np.rint(np.asarray(bg) * 255), 0, 255).astype(np.uint8)
        self.tiles = overlay.TileCache()
        self.title_end = overlay.title_end(opts.duration)
        #: the title card's second line: what the panels' landscapes have in common
        self.subtitle = overlay.shared_description(self.metas)

    @property
    def note(self) -> str | None:
        """The panels' notes for the command line (a grid drawn thinner than asked), or None."""
        return "; ".join(sorted({f.note for f in self.films if f.note})) or None

    # ------------------------------------------------------------------ frames
    def frame(self, t: float) -> np.ndarray:
        o = self.opts
        if self.layout == "split":
            img = np.empty((o.height, o.width, 3), np.uint8)
            img[:] = self.bg
            self._dividers(img)
            for film, (x, y, w, h) in zip(self.films, self.cells):
                img[y:y + h, x:x + w] = film.frame(t)
        else:
            img = self._sequence_frame(t)
        self._overlays(img, t)
        return img

    def _dividers(self, img: np.ndarray) -> None:
        """The gap lines between the cells (the frame is background elsewhere)."""
        cells, g = self.cells, self.gap
        x0, y0, w0, h0 = cells[0]
        img[0:h0, w0:w0 + g] = GAP_RGB                  # between the two top (or only) panels
        if len(cells) > 2:
            img[h0:h0 + g, :] = GAP_RGB                 # under the top row
            for x, y, w, h in cells[2:]:                # either side of each bottom panel
                if x > 0:
                    img[y:y + h, x - g:x] = GAP_RGB
                if x + w < img.shape[1]:
                    img[y:y + h, x + w:x + w + g] = GAP_RGB

    def local_time(self, k: int, t: float) -> float:
        """Panel k's film time at global time t (sequence): its slot stretched over the whole
        film, held at the ends."""
        return float(np.clip((t - k * self.slot) / self.slot * self.opts.duration, 0.0, self.opts.duration))

    def blend_at(self, t: float) -> tuple[int, int, float]:
        """(panel, next panel, weight of the next) at time t (sequence)."""
        n = len(self.films)
        k = min(int(t // self.slot), n - 1) if t >= 0 else 0
        for b in (k, k + 1):                            # the boundaries at the start and end of slot k
            if 0 < b < n and self.half > 0 and abs(t - b * self.slot) < self.half:
                u = (t - (b * self.slot - self.half)) / (2 * self.half)
                return b - 1, b, smoothstep(u)
        return k, k, 0.0

    def _sequence_frame(self, t: float) -> np.ndarray:
        a, b, u = self.blend_at(t)
        img = self.films[a].frame(self.local_time(a, t))
        if u <= 0 or a == b:
            return img
        nxt = self.films[b].frame(self.local_time(b, t))
        return np.clip(np.rint(img.astype(np.float32) * (1 - u) + nxt.astype(np.float32) * u), 0,
                       255).astype(np.uint8)

    # ------------------------------------------------------------------ overlays
    def _overlays(self, img: np.ndarray, t: float) -> None:
        o, r = self.opts, self.scene.render
        sc = overlay.text_scale(o.height)
        margin = overlay.MARGIN * sc
        titled = bool(r.title_card and self.scene.title)
        if titled:
            overlay.draw_title(img, self.tiles, self.scene.title, self.subtitle, t, self.title_end, sc)
        # panel captions come in as the title goes, so the two never overlap
        first = self.title_end - 0.5 if titled else 0.0
        for k, text in enumerate(self.captions):
            if not text:
                continue
            if self.layout == "split":
                op = overlay.fade(t, first, o.duration + 10, 0.8)
                x, y, w, h = self.cells[k]
            else:
                # one caption at a time: the old one fades out over the first half of the
                # crossfade, the new one in over the second half
                start = max(first, k * self.slot)
                end = (k + 1) * self.slot if k < len(self.films) - 1 else o.duration + 10
                op = overlay.fade(t, start, end, max(0.3, self.half))
                x, y, w, h = 0, 0, o.width, o.height
            if op <= 0:
                continue
            tile = self.tiles.get(("panel", k), lambda text=text: overlay.text_tile(
                [(text, 34, True, overlay.WHITE)], sc, align="left", bar=hex_rgba(_accent(self.scene))[:3]))
            pad = overlay.tile_pad(sc)
            # drawn into the panel's own part of the frame: its shadow stops at the divider
            overlay.composite(img[y:y + h, x:x + w], tile, int(margin * 0.45 - pad), int(margin * 0.45 - pad), op)
        # the scene's captions once over the whole frame, as a single film places them: bottom ones
        # clear of the panels' read-outs (drawn at the panels' scale)
        trails = max(len(film.trails) for film in self.films)
        reserve = overlay.readout_height(self.tiles, self.films[0].overlays.scale, trails)
        overlay.draw_captions(img, r, t, sc, reserve, self.tiles)

    def close(self) -> None:
        for f in self.films:
            f.close()


def _accent(scene: Scene) -> str:
    """The colour of a panel caption's bar: the first drawn path's colour."""
    paths = list(scene.render.paths.values())
    return paths[0].color if paths else "#ffffff"


def _common_ground(lss: list[Landscape], heights: list[HeightMap], stride: int) -> np.ndarray | None:
    """The highest of the panels' terrains at each cell (world heights; a landscape over training
    its highest moment), for one camera ground guard; None when the grids differ in shape (each
    panel then keeps its own)."""
    shapes = {np.asarray(ls.loss)[::stride, ::stride].shape for ls in lss}
    if len(shapes) != 1:
        return None
    out = None
    for ls, hm in zip(lss, heights):
        z = highest_level(ls, hm, stride) * hm.top     # NaN: no terrain there
        out = z if out is None else np.fmax(out, z)
    return out


def render_compare_film(scene: Scene, panels: list[tuple[str, Scene, Landscape]], out: Path, opts: Options,
                        crf: int, preset: str, progress: bool = True, max_frames: int | None = None,
                        fmt: str = "mp4") -> dict:
    """The comparison film to ``out`` (an MP4, or a directory of PNG frames), as render_film."""
    return write_film(CompareFilm(scene, panels, opts), out, opts, crf, preset, progress, max_frames, fmt)


def render_compare_still(scene: Scene, panels: list[tuple[str, Scene, Landscape]], out: Path, opts: Options,
                         t: float) -> Path:
    """One composed frame at time t as an image at ``out``."""
    return write_still(CompareFilm(scene, panels, opts), out, t, opts)
