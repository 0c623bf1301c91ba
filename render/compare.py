"""Films of several landscapes: a comparison (the scene's ``compare:`` section, 2 to 16 panels) and a
sweep's gallery film (``sweep:``, one panel a value, one page a moment).

Each panel is an ordinary :class:`render.film.Film` of the panel's scene (the scene with the panel's
landscape, ``Scene.panels()``) and its own cache entry, drawn as a panel (``PanelOptions``): without
the title card and the scene's captions, which are drawn here once over the whole frame.

The panels are shown on *pages* (:class:`Layout`), one page after another, the film's duration shared
out in equal slots and ``transition`` seconds of crossfade joining them; a page's panels fill a grid
of cells (``split_cells``: two side by side, up to four in 2 x 2, six in 3 x 2, nine in 3 x 3, twelve
in 4 x 3, sixteen in 4 x 4; a short last row centred), separated by a thin divider, each with its
caption at its top left.  All panels fly the same camera path from the same home (the framing of all
terrains together, for the cell's shape) over the same ground, so what differs between panels is the
landscape, not the view.

- compare ``split``: one page of all panels;
- compare ``sequence``: one page a panel at full size; each panel's camera time runs over its whole
  slot (every panel gets the whole flight, faster);
- a sweep: one page a moment of training (``sweep.moments``), one panel a value, the page's moment as
  a caption at the bottom; one camera time over the whole film, so a crossfade from one moment to the
  next shows the landscapes change under a camera that keeps moving.

With a shared scale (the default) one height scale (and colour scale for ``color_by: loss`` or a
grid) comes from all panels' losses together, by the same rule as a single film's
(``studio.scale.shared_scales``), so equal losses get equal heights and colours in every panel.  A
panel whose training diverged (no finite loss on its grid) is drawn as such, a dark cell that says
so, and left out of the scales and the framing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from studio.cache import Landscape
from studio.scale import HeightMap, height_map, loss_sample, shared_scales
from studio.scene import Scene
from render import camera as cam
from render import overlay
from render.easing import smoothstep
from render.film import Closing, Film, Options, PanelOptions, write_film, write_still
from render.look import hex_rgba, highest_level, terrain_sample

#: the divider between panels (a little lighter than the default background, so it reads as a line
#: between two pictures rather than a hole), and its width at 1080p
GAP_RGB = (30, 33, 44)
GAP_PX = 4
#: how dark the band behind a panel's caption is at the top (darker than the title's: a small panel's
#: caption may sit over the brightest terrain of the film)
CAPTION_BAND = 0.85
#: a sweep's crossfade from one moment's page to the next, seconds
SWEEP_TRANSITION = 1.5
#: the share of the terrain's width the automatic camera closes on: wider than a single film's, since
#: each panel's path ends elsewhere under the one camera
COMPARE_CLOSE = 0.5
#: the strip under the grid that names the pages (a sweep's moments), its height at 1080p
STRIP_PX = 72
#: the opacity of the pages' names in the strip other than the current one
STRIP_DIM = 0.32
#: the grid (columns, rows) for a page of n panels: as close to the frame's shape as the count allows
GRID_SHAPES = {1: (1, 1), 2: (2, 1), 3: (2, 2), 4: (2, 2), 5: (3, 2), 6: (3, 2), 7: (3, 3), 8: (3, 3), 9: (3, 3),
               10: (4, 3), 11: (4, 3), 12: (4, 3), 13: (4, 4), 14: (4, 4), 15: (4, 4), 16: (4, 4)}
MAX_PANELS = max(GRID_SHAPES)


def _spans(total: int, parts: int, gap: int) -> list[tuple[int, int]]:
    """(start, length) of ``parts`` equal spans of ``total`` pixels with ``gap`` between them (the
    last takes the remainder)."""
    size = (total - (parts - 1) * gap) // parts
    out = [(k * (size + gap), size) for k in range(parts)]
    start = out[-1][0]
    out[-1] = (start, total - start)
    return out


def split_cells(n: int, width: int, height: int, gap: int) -> list[tuple[int, int, int, int]]:
    """The panels' rectangles (x, y, w, h) in a width x height frame, row by row on the grid
    ``GRID_SHAPES[n]``, ``gap`` pixels between; a short last row is centred."""
    if not 1 <= n <= MAX_PANELS:
        raise ValueError(f"a page holds 1 to {MAX_PANELS} panels, got {n}")
    cols, rows = GRID_SHAPES[n]
    xs, ys = _spans(width, cols, gap), _spans(height, rows, gap)
    cells = []
    for r, (y, h) in enumerate(ys):
        count = min(cols, n - r * cols)
        shift = 0 if count == cols else (width - (count * xs[0][1] + (count - 1) * gap)) // 2
        for c in range(count):
            x, w = xs[c] if count == cols else (shift + c * (xs[0][1] + gap), xs[0][1])
            cells.append((x, y, w, h))
    return cells


@dataclass(frozen=True)
class Layout:
    """How the panels share the film: ``pages`` (panel indices, shown one page after another, each
    page's panels in a grid), a caption per page ("" for none: then no strip names the pages), one
    scale or each its own, the crossfade between pages, whether each page's camera time runs over
    the whole film (a comparison's sequence) or the film's own time goes on (a sweep: one camera in
    all), and whether the panels keep their paths' read-outs."""
    pages: list[list[int]]
    page_captions: list[str]
    shared_scale: bool = True
    transition: float = 0.0
    stretch: bool = False
    readouts: bool = True

    @property
    def strip(self) -> bool:
        return any(self.page_captions)

    @staticmethod
    def of(scene: Scene, n: int) -> "Layout":
        if scene.sweep is not None:
            from studio.scene.sweep import moment_name
            moments = scene.sweep.moments
            m = len(moments)
            pages = [[v * m + j for v in range(n // m)] for j in range(m)]     # panels go value by value
            names = [moment_name(x).capitalize() if m > 1 else "" for x in moments]
            return Layout(pages, names, True, SWEEP_TRANSITION, stretch=False, readouts=False)
        cmp = scene.compare
        pages = [list(range(n))] if cmp.layout == "split" else [[k] for k in range(n)]
        return Layout(pages, [""] * len(pages), cmp.shared_scale, cmp.transition, stretch=True)


def diverged(ls: Landscape) -> bool:
    """No finite loss anywhere on the grid: the training blew up before this panel's moment."""
    return not np.isfinite(np.asarray(ls.loss)).any()


class DivergedPanel(Closing):
    """A panel whose landscape has no finite loss: a dark red cell that says so (a Film could not be
    drawn; the sweep goes on)."""
    trails: tuple = ()
    note = None

    def __init__(self, width: int, height: int):
        img = Image.new("RGB", (width, height), (28, 8, 10))
        font = overlay.load_font(max(14, height // 9))
        ImageDraw.Draw(img).text((width // 2, height // 2), "diverged: no finite loss", fill=(240, 120, 110),
                                 font=font, anchor="mm")
        self.img = np.asarray(img)

    def frame(self, t: float) -> np.ndarray:
        return self.img

    def close(self) -> None:
        pass


class CompareFilm(Closing):
    """The composed frame at time t from one Film per panel (``with CompareFilm(...) as film:`` closes
    them all).  ``notes``: a second, smaller caption line per panel (a sweep's key figures)."""

    #: frames are RGB: a comparison always has a background (studio.scene.alpha_problem)
    transparent = False

    def __init__(self, scene: Scene, panels: list[tuple[str, Scene, Landscape]], opts: Options,
                 notes: list[str] | None = None):
        self.scene, self.opts = scene, opts
        n = len(panels)
        self.layout = Layout.of(scene, n)
        self.captions = [c for c, _, _ in panels]
        self.notes = notes or [""] * n
        self.metas = [ls.meta for _, _, ls in panels]
        look = scene.render.look
        lss = [ls for _, _, ls in panels]
        dead = [diverged(ls) for ls in lss]
        live = [ls for ls, d in zip(lss, dead) if not d]
        if not live:
            raise ValueError("every panel's training diverged: no landscape has a finite loss to draw")
        self.sc = opts.height / 1080.0
        if self.layout.shared_scale:
            hm, cs = shared_scales(live, look)
            self.heights, color = [hm] * n, [cs] * n
        else:
            self.heights = [None if d else
                            height_map(loss_sample(ls), look.height, look.exaggeration, look.clip_quantile)
                            for ls, d in zip(lss, dead)]
            color = [None] * n
        per_page = max(len(p) for p in self.layout.pages)
        self.gap = max(2, int(round(GAP_PX * self.sc))) if per_page > 1 else 0
        #: the strip at the bottom that names the pages (none: the grid fills the frame)
        self.strip_h = int(round(STRIP_PX * self.sc)) if self.layout.strip else 0
        grid = split_cells(per_page, opts.width, opts.height - self.strip_h, self.gap)
        #: each panel's rectangle in the frame (x, y, w, h)
        self.cells = [grid[0]] * n
        for page in self.layout.pages:
            for slot, k in enumerate(page):
                self.cells[k] = grid[slot]
        # one home and one ground for all cameras: the framing of every terrain together, and the
        # highest of the terrains under the camera (each panel's own if their grids' shapes differ)
        cw, ch = grid[0][2], grid[0][3]
        drawn = [(ls, h) for ls, h, d in zip(lss, self.heights, dead) if not d]
        sample = np.concatenate([terrain_sample(h.level(np.asarray(ls.loss)), h.top) for ls, h in drawn])
        home = cam.framing(sample, cw / ch)
        ground = _common_ground([ls for ls, _ in drawn], [h for _, h in drawn], opts.stride)
        # without render.camera, one automatic camera for every panel, over the highest of their
        # terrains, closing on its lowest ground (render/camera/auto.py)
        shared = None
        if not scene.render.camera and ground is not None:
            shared = cam.auto_camera(ground, ground.shape[0] / ground.shape[1], None, opts.duration, cw / ch,
                                     close=COMPARE_CLOSE)
        self.slot = opts.duration / len(self.layout.pages)
        self.half = min(self.layout.transition, self.slot) / 2
        self.films: list = []
        try:
            for (caption, ps, ls), (x, y, w, h), hm, cs, d in zip(panels, self.cells, self.heights, color, dead):
                if d:
                    self.films.append(DivergedPanel(w, h))
                    continue
                po = PanelOptions(heights=hm, color_scale=cs, home=home, ground=ground, camera=shared, overlays=False,
                                  readout=self.layout.readouts)
                self.films.append(Film(ps, ls, Options(w, h, opts.fps, opts.duration, opts.stride,
                                                       opts.supersample, opts.max_tile), po))
        except BaseException:
            self.close()
            raise
        first = next(f for f in self.films if isinstance(f, Film))
        self.bg = np.clip(np.rint(np.asarray(first.bg_bottom) * 255), 0, 255).astype(np.uint8)
        self.readout_scale = first.overlays.scale
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
        a, b, u = self.blend_at(t)
        img = self._page(a, t)
        if u > 0 and a != b:
            nxt = self._page(b, t)
            img = np.clip(np.rint(img.astype(np.float32) * (1 - u) + nxt.astype(np.float32) * u), 0,
                          255).astype(np.uint8)
        self._overlays(img, t)
        return img

    def _page(self, p: int, t: float) -> np.ndarray:
        """Page p's panels in their cells at global time t, dividers between them."""
        o = self.opts
        img = np.empty((o.height, o.width, 3), np.uint8)
        img[:] = self.bg
        page = self.layout.pages[p]
        self._dividers(img, [self.cells[k] for k in page])
        for k in page:
            x, y, w, h = self.cells[k]
            img[y:y + h, x:x + w] = self.films[k].frame(self.local_time(p, t))
        return img

    def _dividers(self, img: np.ndarray, cells: list[tuple[int, int, int, int]]) -> None:
        """The gap lines between a page's cells: one under each row but the last, across the frame,
        and one either side of each cell where a neighbour or the frame's edge is not."""
        g = self.gap
        if g <= 0:
            return
        for x, y, w, h in cells:
            if y + h < img.shape[0]:
                img[y + h:y + h + g, :] = GAP_RGB
            if x > 0:
                img[y:y + h, x - g:x] = GAP_RGB
            if x + w < img.shape[1]:
                img[y:y + h, x + w:x + w + g] = GAP_RGB

    def local_time(self, page: int, t: float) -> float:
        """A page's film time at global time t: the global time, or (``stretch``) its slot stretched
        over the whole film, held at the ends."""
        if not self.layout.stretch:
            return t
        return float(np.clip((t - page * self.slot) / self.slot * self.opts.duration, 0.0, self.opts.duration))

    def blend_at(self, t: float) -> tuple[int, int, float]:
        """(page, next page, weight of the next) at time t."""
        n = len(self.layout.pages)
        k = min(int(t // self.slot), n - 1) if t >= 0 else 0
        for b in (k, k + 1):                            # the boundaries at the start and end of slot k
            if 0 < b < n and self.half > 0 and abs(t - b * self.slot) < self.half:
                u = (t - (b * self.slot - self.half)) / (2 * self.half)
                return b - 1, b, smoothstep(u)
        return k, k, 0.0

    # ------------------------------------------------------------------ overlays
    def _page_opacity(self, p: int, t: float, first: float) -> float:
        """How much of page p's captions shows at t, not before the title has gone.  A sequence of
        panels: from its slot's start to its end, the old captions fading out over the first half of
        the crossfade and the new in over the second.  Pages under one camera (a sweep, whose pages
        share their captions' first lines): crossfaded with the pictures."""
        last = len(self.layout.pages) - 1
        if last == 0:
            return overlay.fade(t, first, self.opts.duration + 10, 0.8)
        if not self.layout.stretch:
            a, b, u = self.blend_at(t)
            shown = (1 - u if p == a else 0.0) + (u if p == b and b != a else 0.0)
            return shown * overlay.fade(t, first, self.opts.duration + 10, 0.8)
        start = max(first, p * self.slot)
        end = (p + 1) * self.slot if p < last else self.opts.duration + 10
        return overlay.fade(t, start, end, max(0.3, self.half))

    def _overlays(self, img: np.ndarray, t: float) -> None:
        o, r = self.opts, self.scene.render
        sc = overlay.text_scale(o.height)
        margin = overlay.MARGIN * sc
        if o.clean:                                  # a poster: the landscapes alone
            return
        titled = bool(r.title_card)
        if titled:
            overlay.draw_title(img, self.tiles, self.scene.film_title, self.subtitle, t, self.title_end, sc)
        # panel captions come in as the title goes, so the two never overlap
        first = self.title_end - 0.5 if titled else 0.0
        per_page = max(len(p) for p in self.layout.pages)
        csc = sc * (1.0 if per_page <= 6 else 0.8)      # smaller captions on grids of three or four rows
        for p, page in enumerate(self.layout.pages):
            op = self._page_opacity(p, t, first)
            if op > 0:
                for k in page:
                    self._panel_caption(img, k, csc, margin, op)
        if self.layout.strip:
            self._strip(img, t, sc)
        # the scene's captions once over the whole frame, as a single film places them: bottom ones
        # clear of the panels' read-outs (drawn at the panels' scale) and of the strip
        trails = max(len(film.trails) for film in self.films) if self.layout.readouts else 0
        reserve = overlay.readout_height(self.tiles, self.readout_scale, trails) + self.strip_h
        overlay.draw_captions(img, r, t, sc, reserve, self.tiles)

    def _panel_caption(self, img: np.ndarray, k: int, sc: float, margin: float, op: float) -> None:
        """Panel k's caption (and note) at its cell's top left, over a darkened band so it reads over
        any terrain, set smaller where it would be wider than the cell."""
        text, note = self.captions[k], self.notes[k]
        if not text and not note:
            return
        x, y, w, h = self.cells[k]
        lines = (([(text, 34, True, overlay.WHITE)] if text else []) +
                 ([(note, 22, False, overlay.SOFT)] if note else []))
        inset = margin * 0.45
        room = w - inset

        bar = hex_rgba(_accent(self.scene))[:3]
        tile = self.tiles.get(("panel", k, sc, w), lambda: overlay.fitted_tile(lines, sc, room, align="left", bar=bar))
        pad = overlay.tile_pad(sc)
        # drawn into the panel's own part of the frame: its band and shadow stop at the divider
        cell = img[y:y + h, x:x + w]
        overlay.title_band(cell, tile.size[1] - pad + inset * 0.5, tile.size[1] * 0.6, op, CAPTION_BAND)
        overlay.composite(cell, tile, int(inset - pad), int(inset - pad), op)

    def _strip(self, img: np.ndarray, t: float, sc: float) -> None:
        """The pages' names in a row in the strip under the grid: the current page's bright, the
        others dim; in a crossfade the brightness passes from one to the next."""
        names = self.layout.page_captions
        tiles = [self.tiles.get(("page", p), lambda p=p: overlay.text_tile([(names[p], 30, True, overlay.WHITE)], sc))
                 for p in range(len(names))]
        sep = self.tiles.get(("page sep",), lambda: overlay.text_tile([("\u203a", 30, True, overlay.SOFT)], sc))
        total = sum(tile.size[0] for tile in tiles) + sep.size[0] * (len(tiles) - 1)
        x = (img.shape[1] - total) // 2
        y = img.shape[0] - self.strip_h // 2 - tiles[0].size[1] // 2
        a, b, u = self.blend_at(t)
        for p, tile in enumerate(tiles):
            lit = (1 - u if p == a else 0.0) + (u if p == b and b != a else 0.0)
            overlay.composite(img, tile, x, y, STRIP_DIM + (1 - STRIP_DIM) * lit)
            x += tile.size[0]
            if p < len(tiles) - 1:
                overlay.composite(img, sep, x, y, STRIP_DIM)
                x += sep.size[0]

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
                        fmt: str = "mp4", notes: list[str] | None = None) -> dict:
    """The comparison (or sweep) film to ``out`` (an MP4, or a directory of PNG frames), as render_film."""
    return write_film(CompareFilm(scene, panels, opts, notes), out, opts, crf, preset, progress, max_frames, fmt)


def render_compare_still(scene: Scene, panels: list[tuple[str, Scene, Landscape]], out: Path, opts: Options,
                         t: float, notes: list[str] | None = None) -> Path:
    """One composed frame at time t as an image at ``out``."""
    return write_still(CompareFilm(scene, panels, opts, notes), out, t, opts)
