"""The film: scene + cached landscape -> frames -> MP4, PNG frames or stills.

Data (``render.look``: terrain and trails), style (the scene's ``render:``
section) and drawing (``render.gl``) are joined here, one frame at a time, at
time ``frame / fps``.  A frame is drawn at the output size times
``look.supersample`` (in tiles when that is larger than the GL can draw in one
piece), shrunk with a box filter, and the overlays are composited on the result
at the output size.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from studio.cache import Landscape
from studio.scene import Scene
from render import camera as cam
from render import overlay
from render.look import HeightMap, Trail, TerrainSequence, build_terrain, build_trail, hex_rgba, terrain_sample
from render.gl import SIZE_DEPTH, SIZE_FIXED, SIZE_WORLD, plan_tiles


@dataclass
class Options:
    width: int
    height: int
    fps: int
    duration: float
    stride: int = 1          # draw every stride-th grid point (previews)
    supersample: int | None = None   # None: the scene's render.look.supersample
    max_tile: int | None = None      # largest piece drawn at once (None: the GL's limit, or STUDIO_MAX_TILE)


#: grid points drawn per drawn pixel at most: beyond about two, more points change nothing on
#: screen and only cost time (a 4096 x 4096 grid at 1080p is drawn at every second point)
POINTS_PER_PIXEL = 2.0


def auto_stride(shape: tuple[int, int], width: int, height: int, stride: int = 1) -> int:
    """The grid stride to draw at a drawn size of width x height: the requested one, or the
    smallest larger one that brings the points within POINTS_PER_PIXEL a pixel (10% slack)."""
    ny, nx = shape
    ratio = ny * nx / (POINTS_PER_PIXEL * width * height)
    return max(int(stride), math.ceil(math.sqrt(ratio / 1.1)), 1)


@dataclass
class PanelOptions:
    """A Film drawn as one panel of a comparison (render/compare.py): scales, camera home and
    ground shared with the other panels, so equal losses look equal and the cameras fly in step;
    ``overlays`` False leaves out the title card and the scene's captions (the comparison draws
    them once over the whole frame).  None: the Film's own."""
    heights: HeightMap | None = None
    color_scale: HeightMap | None = None
    home: dict | None = None
    ground: np.ndarray | None = None   # (ny, nx) world heights for the camera's ground guard
    overlays: bool = True


def box_downsample(img: np.ndarray, f: int) -> np.ndarray:
    """Shrink an (H*f, W*f, C) uint8 image by f with a box filter (each output pixel the rounded
    mean of its f x f block, in sRGB values; with an alpha channel, of premultiplied colours)."""
    if f == 1:
        return img
    h, w, c = img.shape[0] // f, img.shape[1] // f, img.shape[2]
    blocks = img[:h * f, :w * f].reshape(h, f, w, f, c).astype(np.uint16).sum(axis=(1, 3))
    return ((blocks + (f * f) // 2) // (f * f)).astype(np.uint8)


def unpremultiply(img: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 with premultiplied colours -> straight colours (what PNG, ProRes 4444 and
    VP9 with alpha store); fully transparent pixels are black.  Additive glow can leave more
    light than coverage (a colour above its alpha), which straight alpha cannot hold: there the
    alpha is raised to the brightest channel, so the frame over black is exactly what was drawn."""
    a = np.maximum(img[..., 3:4], img[..., :3].max(axis=-1, keepdims=True)).astype(np.uint32)
    rgb = (img[..., :3].astype(np.uint32) * 255 + a // 2) // np.maximum(a, 1)
    return np.concatenate([np.minimum(rgb, 255).astype(np.uint8), a.astype(np.uint8)], axis=-1)


def _smoothstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


_DATA_NAMES = {"shapes": "generated shapes", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
               "cifar10": "CIFAR-10", "imagenette": "Imagenette", "folder": "an image folder"}
_PLANE_NAMES = {"pca": "PCA plane of the training path", "hessian": "plane of the top Hessian eigenvectors",
                "checkpoints": "plane through training checkpoints", "interpolate": "line between checkpoints"}


def single_weights(meta: dict) -> bool:
    """The entry's run is one set of weights (the user's trained model): it has no training path."""
    return (meta.get("training") or {}).get("source") == "weights"


def describe(meta: dict) -> str:
    """One line saying what the landscape is, for the title card."""
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
        parts.append(f"custom model {m.get('entry')}")
    if d.get("name") == "spirals":
        parts.append(f"{d.get('classes')} interleaved spirals")
    elif d.get("name") in _DATA_NAMES:
        parts.append(_DATA_NAMES[d["name"]])
    elif d.get("name") == "custom":
        parts.append(f"data from {d.get('entry')}")
    elif d.get("name") == "regression":
        parts.append(f"fitting the {d.get('function')} function")
    loss = (ls.get("loss") or {})
    if loss.get("name", "cross_entropy") != "cross_entropy":
        parts.append(f"loss {loss.get('entry') or loss['name']}")
    source = (meta.get("training") or {}).get("source", "trained")
    if source != "trained":
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
    return "  ·  ".join(parts)


class Film:
    def __init__(self, scene: Scene, ls: Landscape, opts: Options, panel: PanelOptions | None = None):
        from render.gl import Renderer, max_tile_size
        self.scene, self.ls, self.opts = scene, ls, opts
        self.panel = panel or PanelOptions()
        r = scene.render
        self.look = r.look
        self.scale = opts.height / 1080.0           # overlays: sizes at 1080p to output pixels
        # drawing happens at the output size times the supersampling factor
        self.ss = opts.supersample if opts.supersample is not None else r.look.supersample
        self.rw, self.rh = opts.width * self.ss, opts.height * self.ss
        self.rscale = self.rh / 1080.0              # points and trails: sizes at 1080p to drawn pixels
        ny, nx = np.shape(ls.loss)
        self.stride = auto_stride((ny, nx), self.rw, self.rh, opts.stride)
        #: a line for the command line when the grid is drawn thinner than asked (None: it is not)
        nth = {2: "2nd", 3: "3rd"}.get(self.stride, f"{self.stride}th")
        self.note = (f"drawing every {nth} row and column of the {nx}x{ny} grid at {self.rw}x{self.rh}: "
                     f"more than {POINTS_PER_PIXEL:g} points a pixel would not show"
                     if self.stride > opts.stride else None)
        # a landscape over training: the terrain morphs from grid to grid as the training path's
        # head moves on (self.morph), and the last grid stands in for the still one
        self.morph = None
        if ls.sequence is not None:
            self.morph = TerrainSequence(ls, r.look.height, r.look.exaggeration, r.look.colormap, r.look.shading,
                                         stride=self.stride, quantile=r.look.clip_quantile,
                                         color_by=r.look.color_by, heights=self.panel.heights,
                                         color_scale=self.panel.color_scale, contours=r.look.contours)
            self.terrain = self.morph.grid(len(self.morph) - 1)
        else:
            self.terrain = build_terrain(ls, r.look.height, r.look.exaggeration, r.look.colormap,
                                         r.look.shading, stride=self.stride, quantile=r.look.clip_quantile,
                                         color_by=r.look.color_by, heights=self.panel.heights,
                                         color_scale=self.panel.color_scale,
                                         contours=r.look.contours)
        self.trails: list[tuple[Trail, object]] = []
        for name, style in r.paths.items():
            if name == "training" and name not in ls.paths and single_weights(ls.meta):
                continue                    # one set of weights: no path to draw
            if name not in ls.paths:
                raise ValueError(f"render.paths.{name}: the cache has no path of that name "
                                 f"(it has: {', '.join(ls.paths) or 'none'})")
            trail = build_trail(ls.paths[name], ls, self.terrain)
            if self.morph is not None:
                # the head is on the grid of its own snapshot, where the surface is the true loss
                trail = replace(trail, surface=trail.loss)
            self.trails.append((trail, style))
        self._still_trails = list(self.trails)
        self._morph_at = None
        aspect = opts.width / opts.height
        sample = terrain_sample(self.terrain.level, self.terrain.heights.top)
        self.home = (dict(self.panel.home) if self.panel.home is not None else
                     cam.framing(np.concatenate([sample] + [t.points for t, _ in self.trails]), aspect))
        keys = [k.model_dump(by_alias=True) for k in r.camera]      # keyframes and shots (from/to)
        if not keys:
            end = dict(self.home, azimuth=self.home["azimuth"] + 75, elevation=24.0,
                       distance=self.home["distance"] * 0.85)
            keys = [dict(self.home, t=0.0), dict(end, t=opts.duration, ease="in_out")]
        # the camera keeps above the terrain (a smoothed height field), and follow shots ride a
        # trail's head with the trail's own timing (a path not drawn is timed by the defaults)
        ground = cam.Ground((self.morph.ceiling if self.morph is not None else self.terrain.level)
                            * self.terrain.heights.top, self.terrain.half_y)
        if self.panel.ground is not None:
            ground = cam.Ground(self.panel.ground, self.terrain.half_y)
        self.camera = cam.CameraPath(keys, self.home, tracks=self._camera_tracks(keys), ground=ground)
        #: no background: frames are (H, W, 4) RGBA (render.look.background: transparent)
        self.transparent = r.look.transparent
        colors = r.look.background_colors()
        if len(colors) == 2:                        # an explicit gradient, top to bottom
            self.bg_top = np.array(hex_rgba(colors[0])[:3])
            self.bg_bottom = np.array(hex_rgba(colors[1])[:3])
        else:                                       # one colour: the bottom of a faint gradient
            bg = np.array(hex_rgba(colors[0])[:3])
            self.bg_bottom = bg
            self.bg_top = np.clip(bg + np.array([0.035, 0.045, 0.075]) * (1 - bg.mean()), 0, 1)
        self.max_tile = max_tile_size(opts.max_tile)
        self.gl = Renderer(min(self.rw, self.max_tile), min(self.rh, self.max_tile))
        self.gl.set_cloud(self.terrain.positions, self.terrain.colors, self.terrain.grow)
        self._tiles: dict = {}
        nx_drawn = self.terrain.level.shape[1]
        spacing = 2.0 / max(nx_drawn - 1, 1)        # between grid neighbours, in landscape units
        # SIZE_DEPTH's smallest near point: a little more than the spacing, as a world diameter
        self.floor_point = 1.15 * spacing
        if r.look.point_units == "world":
            # a diameter in landscape units; by default a little more than the grid spacing, so
            # neighbours overlap and the surface reads as one at any distance
            self.world_point = r.look.point_size if r.look.point_size is not None else 1.25 * spacing
            self.point_mode = SIZE_WORLD
        else:
            # points at least as large as the gap between grid neighbours at the framing distance
            # (the terrain fills about 70% of the frame's width there), so the surface reads as one
            # (steep cells grow further in the shader: Terrain.grow)
            px = r.look.point_size if r.look.point_size is not None else 2.0
            self.point_size = max(px * self.rscale, 0.7 * self.rw / nx_drawn, 1.0)
            self.point_mode = SIZE_DEPTH if r.look.depth_scale else SIZE_FIXED

    # ------------------------------------------------------------------ pieces
    def _tile(self, key, make):
        if key not in self._tiles:
            self._tiles[key] = make()
        return self._tiles[key]

    def _camera_tracks(self, keys: list[dict]) -> dict:
        """The heads follow shots ride: each named path's trail, timed as it is drawn."""
        from render.look import LookError
        from studio.scene import PathStyle
        drawn = dict(zip(self.scene.render.paths, self.trails))      # render.paths name -> (trail, style)
        tracks = {}
        for name in sorted({k["path"] for k in keys if k.get("shot") == "follow"}):
            if name in drawn:
                trail, style = drawn[name]
            elif name in self.ls.paths:
                trail, style = build_trail(self.ls.paths[name], self.ls, self.terrain), PathStyle()
            else:
                raise LookError(f"render.camera: a follow shot rides the path {name!r}, and the cache has no "
                                f"path of that name (it has: {', '.join(self.ls.paths) or 'none'})")
            if len(trail.points) == 0:
                raise LookError(f"render.camera: a follow shot rides the path {name!r}, and no part of it "
                                f"is over the grid")
            if self.morph is not None and trail.samples is not None:
                # over a landscape that changes, each point of the track is the head's place at its
                # own moment: on the terrain of that moment, not on the last one
                pts = trail.points.copy()
                u = self.morph.position(trail.progress)
                pts[:, 2] = self.morph.levels_along(trail.samples[:, 0], trail.samples[:, 1], u) \
                    * self.terrain.heights.top + trail.lift
                trail = replace(trail, points=pts)
            count = len(trail.steps)
            timing = np.vectorize(lambda t, style=style, count=count: self.trail_progress(style, float(t), count),
                                  otypes=[np.float64])
            tracks[name] = cam.Track(trail.points, trail.progress, timing)
        return tracks

    def trail_progress(self, style, t: float, count: int) -> float:
        end = style.end if style.end is not None else self.opts.duration * 0.85
        start = min(style.start, end - 1e-3)
        u = (t - start) / max(end - start, 1e-6)
        # ease in and out, so the head accelerates away and settles at the minimum
        return _smoothstep(u) * (count - 1)

    def morph_position(self, t: float) -> float:
        """Which grid of a landscape over training is shown at time t (fractional): the one of
        the snapshot the training path's head is at, timed as render.paths.training (or the
        default timing when the path is not drawn)."""
        from studio.scene import PathStyle
        style = self.scene.render.paths.get("training") or PathStyle()
        count = len(self.ls.paths["training"].step)
        return self.morph.position(self.trail_progress(style, t, count))

    def _set_morph(self, t: float) -> None:
        u = self.morph_position(t)
        if u == self._morph_at:
            return
        terrain = self.morph.at(u)
        self.gl.set_cloud(terrain.positions, terrain.colors, terrain.grow)
        self.trails = [(trail.on(terrain), style) for trail, style in self._still_trails]
        self._morph_at = u

    def frame(self, t: float) -> np.ndarray:
        o = self.opts
        if self.morph is not None:
            self._set_morph(t)
        s = self.camera.state(t)
        radius = self.terrain.radius
        near, far = cam.clip_planes(s, radius)
        mvp = cam.perspective(s["fov"], o.width / o.height, near, far) @ cam.view_matrix(s)
        eye = cam.eye_position(s)
        lo, hi = self.terrain.bounds
        corners = self.terrain.corners
        dists = np.linalg.norm(corners - eye, axis=1)
        center_d = float(np.linalg.norm((lo + hi) / 2 - eye))
        fog_range = (max(dists.min(), center_d - radius * 0.6), dists.max())
        sprites, heads = self._trail_sprites(t)
        img = box_downsample(self._draw(mvp, fog_range, sprites, corners), self.ss)
        self._overlays(img, t, heads)
        # with no background the frame was drawn and overlaid in premultiplied colours
        return unpremultiply(img) if self.transparent else img

    def _trail_sprites(self, t: float) -> tuple[list, list]:
        """The trails at time t as sprite batches (positions, colours, sizes, scale, soft,
        additive), and the read-out's heads."""
        batches, heads = [], []
        for trail, style in self.trails:
            p = self.trail_progress(style, t, len(trail.steps))
            if t < style.start:
                continue
            pos, k, step, loss, surface = trail.head(p)
            heads.append((trail, style, step, loss, surface, trail.over_grid(p)))
            if k == 0:              # nothing of this path over the grid yet: only the read-out
                continue
            rgba = np.array(hex_rgba(style.color))
            w = style.width * self.rscale
            pts = trail.points[:k]
            ramp = 0.35 + 0.65 * (np.arange(k) / max(k - 1, 1)) ** 1.5
            cols = np.tile(rgba, (k, 1))
            cols[:, 3] = ramp * rgba[3]
            halo = cols.copy()
            halo[:, 3] *= 0.16
            batches.append((pts, halo, np.full(k, 3.2), w, 1.0, True))
            batches.append((pts, cols, np.full(k, 1.0), w, 0.0, False))
            pulse = 1.0 + 0.18 * math.sin(2 * math.pi * 0.9 * t)
            head = pos[None, :]
            batches.append((head, np.array([[*rgba[:3], 0.55]]), np.array([7.0 * pulse]), w, 1.0, True))
            core = np.clip(rgba[:3] * 0.4 + 0.6, 0, 1)
            batches.append((head, np.array([[*core, 1.0]]), np.array([2.1]), w, 0.0, False))
        return batches, heads

    def _per_unit(self, mvp: np.ndarray) -> float:
        """The drawn frame's pixels per landscape unit at view depth 1."""
        f = float(np.linalg.norm(mvp[1, :3]))       # the projection's focal factor (the view is rigid)
        return f * self.rh / 2

    def _cloud_size(self, mvp: np.ndarray) -> float:
        """The terrain's point size uniform for this view: pixels, or for world units the
        diameter times the drawn frame's pixels per landscape unit at view depth 1."""
        if self.point_mode != SIZE_WORLD:
            return self.point_size
        return self.world_point * self._per_unit(mvp)

    def _cloud_floor(self, mvp: np.ndarray) -> float:
        """SIZE_DEPTH's smallest point, in pixels at view depth 1 (0 in the other modes)."""
        return self.floor_point * self._per_unit(mvp) if self.point_mode == SIZE_DEPTH else 0.0

    def _margin(self, mvp: np.ndarray, size: float, sprites, corners: np.ndarray) -> int:
        """Pixels a tile must reach beyond its inner part: the radius of the largest point that
        can be drawn in this frame (terrain or sprite), within the GL's point size limit."""
        w = (np.c_[corners, np.ones(len(corners))] @ mvp.T)[:, 3].min()     # nearest view depth of the box
        world = size if self.point_mode == SIZE_WORLD else self._cloud_floor(mvp)   # pixels at depth 1
        biggest = world * self.gl.max_grow / w if w > 1e-4 else self.gl.max_point
        if self.point_mode != SIZE_WORLD:
            biggest = max(biggest, size * self.gl.max_grow * (3.0 if self.point_mode == SIZE_DEPTH else 1.0))
        for _, _, sizes, scale, _, _ in sprites:
            biggest = max(biggest, float(np.max(sizes)) * scale)
        return int(math.ceil(min(biggest, self.gl.max_point) / 2)) + 2

    def _draw(self, mvp: np.ndarray, fog_range, sprites, corners: np.ndarray) -> np.ndarray:
        """The frame without overlays at the drawn size (output size times supersampling), in
        one piece or stitched from tiles."""
        W, H = self.rw, self.rh
        size = self._cloud_size(mvp)
        tiled = W > self.max_tile or H > self.max_tile
        margin = self._margin(mvp, size, sprites, corners) if tiled else 0
        tiles = plan_tiles(W, H, self.max_tile, margin)
        g = self.gl
        out = np.empty((H, W, 4 if self.transparent else 3), np.uint8) if len(tiles) > 1 else None
        for tile in tiles:
            g.begin(self.bg_top, self.bg_bottom, tile, (W, H), transparent=self.transparent)
            g.draw_cloud(mvp, size, self.home["distance"], self.look.fog, fog_range, self.point_mode,
                         self._cloud_floor(mvp))
            for pts, cols, sizes, scale, soft, additive in sprites:
                g.draw_sprites(mvp, pts, cols, sizes, scale, soft=soft, additive=additive)
            part = g.read()
            g.end()
            if out is None:
                return part
            c0, r0, c1, r1 = tile.inner
            x0, y0 = tile.region[:2]
            out[r0:r1, c0:c1] = part[r0 - y0:r1 - y0, c0 - x0:c1 - x0]
        return out

    def _overlays(self, img: np.ndarray, t: float, heads) -> None:
        o, sc, r = self.opts, self.scale, self.scene.render
        margin = 56 * sc
        white = (1.0, 1.0, 1.0)
        soft = (0.78, 0.80, 0.86)
        title_end = min(4.5, o.duration * 0.4)
        if r.title_card and self.scene.title and self.panel.overlays:
            op = overlay.fade(t, 0.3, title_end, 0.9)
            if op > 0:
                tile = self._tile("title", lambda: overlay.text_tile(
                    [(self.scene.title, 68, True, white), (describe(self.ls.meta), 26, False, soft)], sc))
                x, y = overlay.place(tile, o.width, o.height, "top", margin * 1.3)
                overlay.composite(img, tile, x, y, op)
        # legend and live read-out once the title has gone: one line per trail, stacked upwards
        # from the bottom left.  Bottom captions and lower thirds keep clear of the whole stack
        # (all trails, shown or not yet), so they do not move when a line appears.
        line_h = self._tile("readout_line", lambda: overlay.text_tile(
            [("Step 0 loss", 24, False, white)], sc, align="left", dot=white)).size[1]
        pad = overlay.tile_pad(sc)
        step_h = line_h - pad                # lines overlap by their padding: a compact legend
        reserve = len(self.trails) * step_h + pad if self.trails else 0
        readout = []
        op_readout = overlay.fade(t, title_end - 0.5, o.duration + 10, 0.8)
        if op_readout > 0 and heads:
            for trail, style, step, loss, surface, over in reversed(heads):
                rgb = hex_rgba(style.color)[:3]
                label = style.label or trail.name
                # the true loss of the network, and the loss on the drawn plane under the head
                # (they differ where the path leaves the plane; an in-plane descent never does)
                text = f"{label}   step {int(round(step)):,}   loss {loss:.4f}"
                if not np.array_equal(trail.loss, trail.surface):
                    text += f"   on this plane {surface:.4f}"
                if not over:        # the trail is clipped to the grid: say where the head went
                    text += "   (beyond the grid)"
                tile = overlay.text_tile([(text, 24, False, (0.92, 0.93, 0.96))], sc, align="left", dot=rgb)
                readout.append(tile)
        if self.panel.overlays:
            draw_captions(img, r, t, o.width, o.height, sc, margin, reserve, self._tile)
        yb = o.height - margin - line_h
        for tile in readout:
            x, _ = overlay.place(tile, o.width, o.height, "bottom_left", margin * 0.6)
            overlay.composite(img, tile, x, int(yb), op_readout)
            yb -= step_h

    def close(self) -> None:
        self.gl.close()


def draw_captions(img: np.ndarray, r, t: float, width: int, height: int, sc: float, margin: float,
                  reserve: float, tile_cache) -> None:
    """The scene's ``render.captions`` visible at time t, composited on ``img``; bottom captions and
    lower thirds keep ``reserve`` pixels clear above the bottom margin (the read-out's lines).
    Captions that share an edge at the same time stack instead of overlapping (those listed
    first nearest the edge), each taking room in proportion to its opacity, so the others slide
    smoothly as one fades in or out.  ``tile_cache(key, make)`` keeps each caption's text tile
    between frames."""
    white = (1.0, 1.0, 1.0)
    soft = (0.78, 0.80, 0.86)
    gap = 14 * sc
    used = {"bottom": 0.0, "top": 0.0}          # pixels taken from each edge by earlier captions
    for i, c in enumerate(r.captions):
        op = overlay.fade(t, c.start, c.end, c.fade)
        if op <= 0:
            continue
        if c.position == "lower_third":
            # a left-aligned block: the text bold, the subtitle under it, an accent bar in the
            # first trail's colour; it slides in a little as it fades in
            accent = hex_rgba(next(iter(r.paths.values())).color)[:3] if r.paths else white
            lines = [(c.text, c.size, True, white)] + ([(c.subtitle, c.size * 0.62, False, soft)]
                                                      if c.subtitle else [])
            tile = tile_cache(("caption", i), lambda lines=lines, accent=accent: overlay.text_tile(
                lines, sc, spacing=0.2, bar=accent))
            bottom = max(margin * 1.9, margin + reserve + margin * 0.45, used["bottom"])
            used["bottom"] = bottom + (tile.size[1] + gap) * op
            x = int(margin * 0.6 + (1 - op) * 28 * sc)
            overlay.composite(img, tile, x, int(height - bottom - tile.size[1]), op)
            continue
        lines = [(c.text, c.size, False, white)] + ([(c.subtitle, c.size * 0.66, False, soft)]
                                                   if c.subtitle else [])
        tile = tile_cache(("caption", i), lambda lines=lines: overlay.text_tile(lines, sc, spacing=0.25))
        m = margin * 1.6
        if c.position == "bottom":
            m = max(margin * 2.4, margin + reserve + margin * 0.3, used["bottom"])
            used["bottom"] = m + (tile.size[1] + gap) * op
        elif c.position == "top":
            m = max(m, used["top"])
            used["top"] = m + (tile.size[1] + gap) * op
        x, y = overlay.place(tile, width, height, c.position, m)
        overlay.composite(img, tile, x, int(y), op)


class Looped:
    """A film (anything write_film takes) that loops without a seam: its first ``fade`` seconds
    dissolve from the film's last moment, held, into its beginning, so its last frame runs on
    into its first (render.loop).  Past ``duration`` every motion has stopped (keyframes and
    shots end by then, trails are whole), so the held moment is the film's end."""

    def __init__(self, film, duration: float, fade: float):
        self.film, self.duration, self.fade = film, float(duration), float(fade)
        self.transparent, self.note = film.transparent, film.note

    def frame(self, t: float) -> np.ndarray:
        if t >= self.fade:
            return self.film.frame(t)
        w = _smoothstep(t / self.fade)
        start = self.film.frame(t).astype(np.float32)
        end = self.film.frame(self.duration + t).astype(np.float32)
        if start.shape[2] == 4:          # straight alpha: blend premultiplied, then divide again
            for img in (start, end):
                img[..., :3] *= img[..., 3:4] / 255.0
            out = end * (1 - w) + start * w
            out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
            return unpremultiply(out)
        return np.clip(np.rint(end * (1 - w) + start * w), 0, 255).astype(np.uint8)

    def close(self) -> None:
        self.film.close()


def looped(film, opts: Options):
    """``film`` as its scene's render.loop asks: Looped, or itself."""
    fade = film.scene.render.loop
    return Looped(film, opts.duration, fade) if fade else film


def render_film(scene: Scene, ls: Landscape, out: Path, opts: Options, crf: int, preset: str,
                progress: bool = True, max_frames: int | None = None, fmt: str = "mp4") -> dict:
    """Render the film to ``out``: a film of format ``fmt`` (mp4, mov, webm, gif:
    writer.encoder_settings) or a directory of numbered PNG frames ("png"); either appears at
    ``out`` only when complete.  Returns timing figures."""
    return write_film(Film(scene, ls, opts), out, opts, crf, preset, progress, max_frames, fmt)


def write_film(film, out: Path, opts: Options, crf: int, preset: str, progress: bool = True,
               max_frames: int | None = None, fmt: str = "mp4") -> dict:
    """Every frame of ``film`` (anything with ``frame(t)``, ``close()``, ``transparent`` and ``note``:
    a Film, a comparison) to ``out`` through the film or PNG-sequence writer; the film is closed at the end."""
    import time
    from tqdm import tqdm
    from render.writer import PngSequenceWriter, VideoWriter
    n = max(1, int(round(opts.duration * opts.fps)))
    if max_frames:
        n = min(n, max_frames)
    film = looped(film, opts)
    try:
        if progress and film.note:
            print(f"[render] {film.note}", file=sys.stderr)
        t0 = time.perf_counter()
        writer = (PngSequenceWriter(out, opts.width, opts.height, alpha=film.transparent) if fmt == "png" else
                  VideoWriter(out, opts.width, opts.height, opts.fps, crf=crf, preset=preset, fmt=fmt,
                              alpha=film.transparent))
        with writer as w:
            for i in tqdm(range(n), desc="frames", unit="frame", disable=not progress,
                          mininterval=1.0, dynamic_ncols=True, file=sys.stderr):
                w.write(film.frame(i / opts.fps))
    finally:
        film.close()
    dt = time.perf_counter() - t0
    return {"frames": n, "seconds": dt, "fps": n / dt if dt > 0 else None}


def render_still(scene: Scene, ls: Landscape, out: Path, opts: Options, t: float) -> Path:
    """One frame at time t as an image at ``out`` (any size: drawn in tiles when larger than the
    GL draws in one piece), written under a temporary name and renamed into place."""
    return write_still(Film(scene, ls, opts), out, t, opts)


def write_still(film, out: Path, t: float, opts: Options | None = None) -> Path:
    """Frame t of ``film`` as an image at ``out`` (atomically); the film is closed.  With
    ``opts``, a looping film's opening is the dissolve the film shows there."""
    from render.writer import write_image
    if opts is not None:
        film = looped(film, opts)
    try:
        if film.note:
            print(f"[render] {film.note}", file=sys.stderr)
        img = film.frame(t)
    finally:
        film.close()
    return write_image(out, img)
