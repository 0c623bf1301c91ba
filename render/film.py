"""The film: scene + cached landscape -> frames -> MP4, PNG frames or stills.

Data (``render.look``: terrain and trails), style (the scene's ``render:``
section), the camera (``render.camera``), drawing (``render.gl``) and the
overlays (``render.overlay``) are joined here, one frame at a time, at time
``frame / fps`` (``Film.frame``):

1. the camera's state at t gives the view, and the trails' heads at t the
   sprites and the read-out;
2. the frame is drawn at the output size times ``look.supersample`` (in tiles
   when that is larger than the GL can draw in one piece) and shrunk with a box
   filter;
3. the overlays are composited on the result at the output size.

A film holds a GL renderer: use it in a ``with`` block (or call ``close()``).
``write_film`` and ``write_still`` (render/frames.py) take any film (a ``Film``,
a comparison's ``CompareFilm``) and wrap it in ``Looped`` where the scene's
``render.loop`` asks for it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from studio.cache import Landscape
from studio.scene import FollowShot, PathStyle, Scene
from studio.scene.landscape import MINIMA_PATHS
from render import camera as cam
from render import overlay
from render.easing import appear, smoothstep
from render.gl import SIZE_DEPTH, SIZE_FIXED, SIZE_WORLD, max_point_size, plan_tiles
from render.look import (Finish, HeightMap, LookError, Trail, TerrainSequence, build_terrain, build_trail,
                         hex_rgba, terrain_sample)
from render import post
from render.marks import MarkLayer, with_minima_paths
from render.frames import Closing, Looped, box_downsample, looped, unpremultiply, write_film, write_still
from render.options import Options

#: the names importers take from here, the frames' way to a file (render/frames.py) and the
#: film's Options (render/options.py) included
__all__ = ["Options", "POINTS_PER_PIXEL", "TRAIL_FADE", "auto_stride", "PanelOptions", "box_downsample",
           "unpremultiply", "background_gradient", "single_weights", "Closing", "Film", "Looped", "looped",
           "render_film", "write_film", "render_still", "write_still"]


#: grid points drawn per drawn pixel at most: beyond about two, more points change nothing on
#: screen and only cost time (a 4096 x 4096 grid at 1080p is drawn at every second point)
POINTS_PER_PIXEL = 2.0
#: seconds over which a trail's head and first stretch fade in after its start
TRAIL_FADE = 0.6


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
    them once over the whole frame); ``readout`` False the paths' read-out too (a sweep's gallery of
    small panels, captioned with their figures instead).  None: the Film's own."""
    heights: HeightMap | None = None
    color_scale: HeightMap | None = None
    home: dict | None = None
    ground: np.ndarray | None = None   # (ny, nx) world heights for the camera's ground guard
    #: the automatic camera's keyframes, shared (a scene without render.camera)
    camera: list | None = None
    overlays: bool = True
    readout: bool = True


@dataclass(frozen=True)
class Drawn:
    """A frame between ``Film.draw`` and ``Film.finish``: the drawn picture (RGB, or RGBA with the
    depth code or a transparent frame's alpha), its time, view and focus, and its read-out."""
    t: float
    img: np.ndarray
    mvp: np.ndarray
    focus: float | None                 # the depth of field's focus (0-1 on the depth code), None: off
    readings: list


def background_gradient(colors: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The background's (top, bottom) RGB in [0, 1] from ``render.look.background_colors()``: an
    explicit gradient, or one colour as the bottom of a faint gradient that lightens upwards."""
    if len(colors) == 2:
        return np.array(hex_rgba(colors[0])[:3]), np.array(hex_rgba(colors[1])[:3])
    bg = np.array(hex_rgba(colors[0])[:3])
    return np.clip(bg + np.array([0.035, 0.045, 0.075]) * (1 - bg.mean()), 0, 1), bg


def single_weights(meta: dict) -> bool:
    """The entry's run is one set of weights (the user's trained model): it has no training path."""
    return (meta.get("training") or {}).get("source") == "weights"


class Film(Closing):
    """One landscape filmed as its scene says: ``frame(t)`` is the picture at time t (seconds).

    Built once: the terrain (or, for a landscape over training, the terrain that morphs from grid
    to grid), the trails, the camera path, the background, the GL renderer and the overlays."""

    def __init__(self, scene: Scene, ls: Landscape, opts: Options, panel: PanelOptions | None = None):
        from render.gl import Renderer, max_tile_size
        scene = with_minima_paths(scene, ls.meta)       # a minima plane's three trails by default
        self.scene, self.ls, self.opts = scene, ls, opts
        self.panel = panel or PanelOptions()
        self.look = scene.render.look
        # drawing happens at the output size times the supersampling factor
        self.ss = opts.supersample if opts.supersample is not None else self.look.supersample
        self.rw, self.rh = opts.width * self.ss, opts.height * self.ss
        self.rscale = self.rh / 1080.0              # points and trails: sizes at 1080p to drawn pixels
        self.stride = auto_stride(np.shape(ls.loss), self.rw, self.rh, opts.stride)
        #: a line for the command line when the grid is drawn thinner than asked (None: it is not)
        self.note = self._thinning_note()

        # ------------------------------------------------------------ the landscape and its trails
        self.morph, self.terrain = self._terrain()
        self.trails: list[tuple[Trail, PathStyle]] = self._trails()
        self._still_trails = list(self.trails)
        self._morph_at = None
        #: the networks the plane goes through (a minima plane's three), marked on the terrain
        self.marks = MarkLayer(scene, ls.alpha, ls.beta, ls.meta, self.terrain, opts.height, opts.duration)

        # ------------------------------------------------------------ the camera
        self.home = self._home()
        entries = self._camera_entries()
        followed = sorted({e.path for e in entries if isinstance(e, FollowShot)})
        self.camera = cam.CameraPath(entries, self.home, tracks={name: self.follow_track(name) for name in followed},
                                     ground=self._ground())

        # ------------------------------------------------------------ the picture
        #: no background: frames are (H, W, 4) RGBA (render.look.background: transparent)
        self.transparent = self.look.transparent
        self.bg_top, self.bg_bottom = background_gradient(self.look.background_colors())
        self.max_tile = max_tile_size(opts.max_tile)
        # room for a frame and its margin (the largest point's radius) in one tile where it fits
        room = int(math.ceil(max_point_size() / 2)) + 2
        self.gl = Renderer(min(self.rw + 2 * room, self.max_tile), min(self.rh + 2 * room, self.max_tile))
        self._set_cloud(self.terrain)
        self._point_sizes()
        self._eye, self._depth_range = None, None       # the frame's, set by frame()
        self.overlays = overlay.FilmOverlays(scene, ls.meta, opts.height, opts.duration,
                                             len(self.trails) if self.panel.readout and not opts.clean else 0,
                                             scene_text=self.panel.overlays and not opts.clean)

    # ------------------------------------------------------------------ building
    def _thinning_note(self) -> str | None:
        if self.stride <= self.opts.stride:
            return None
        ny, nx = np.shape(self.ls.loss)
        nth = {2: "2nd", 3: "3rd"}.get(self.stride, f"{self.stride}th")
        return (f"drawing every {nth} row and column of the {nx}x{ny} grid at {self.rw}x{self.rh}: "
                f"more than {POINTS_PER_PIXEL:g} points a pixel would not show")

    def _terrain(self):
        """(morph, terrain): for a landscape over training the terrain morphs from grid to grid as
        the training path's head moves on, and its last grid stands in for the still one."""
        look, ls = self.look, self.ls
        common = dict(stride=self.stride, quantile=look.clip_quantile, color_by=look.color_by,
                      heights=self.panel.heights, color_scale=self.panel.color_scale, contours=look.contours,
                      finish=Finish.of(look).at_height(self.rh))
        if ls.sequence is not None:
            morph = TerrainSequence(ls, look.height, look.exaggeration, look.colormap, look.shading, **common)
            return morph, morph.grid(len(morph) - 1)
        return None, build_terrain(ls, look.height, look.exaggeration, look.colormap, look.shading, **common)

    def _trails(self) -> list[tuple[Trail, PathStyle]]:
        """The drawn paths (render.paths) set on the terrain, with their styles."""
        ls, trails = self.ls, []
        for name, style in self.scene.render.paths.items():
            if name in MINIMA_PATHS and name not in ls.paths and single_weights(ls.meta):
                continue                    # one set of weights: no path to draw
            if name not in ls.paths:
                raise ValueError(f"render.paths.{name}: the cache has no path of that name "
                                 f"(it has: {', '.join(ls.paths) or 'none'})")
            trail = build_trail(ls.paths[name], ls, self.terrain)
            if self.morph is not None:
                # the head is on the grid of its own snapshot, where the surface is the true loss
                trail = replace(trail, surface=trail.loss)
            trails.append((trail, style))
        return trails

    def _home(self) -> dict:
        """The camera state the timeline starts from: a comparison's shared one, or the framing of
        the terrain and its trails for this film's shape."""
        if self.panel.home is not None:
            return dict(self.panel.home)
        sample = terrain_sample(self.terrain.level, self.terrain.heights.top)
        return cam.framing(np.concatenate([sample] + [t.points for t, _ in self.trails]),
                           self.opts.width / self.opts.height)

    def _camera_entries(self) -> list:
        """The scene's render.camera; without one, the camera found from the landscape's shape
        (render/camera/auto.py): the whole terrain, then down to where training ended."""
        if self.scene.render.camera:
            return list(self.scene.render.camera)
        if self.panel.camera is not None:
            return list(self.panel.camera)
        path = self.trails[0][0].points if self.trails else None
        return cam.auto_camera(self.terrain.level * self.terrain.heights.top, self.terrain.half_y, path,
                               float(self.opts.duration), self.opts.width / self.opts.height)

    def follow_track(self, name: str) -> cam.Track:
        """The head a follow shot riding the path ``name`` follows: the path's trail, timed as it
        is drawn (a path not drawn is timed by the default style)."""
        drawn = dict(zip(self.scene.render.paths, self._still_trails))     # render.paths name -> (trail, style)
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
        timing = np.vectorize(lambda t: self.trail_progress(style, float(t), count), otypes=[np.float64])
        return cam.Track(trail.points, trail.progress, timing)

    def _ground(self) -> cam.Ground:
        """The terrain the camera keeps above (a smoothed height field): a comparison's shared one,
        or this film's (for a landscape over training, the highest each cell gets)."""
        if self.panel.ground is not None:
            return cam.Ground(self.panel.ground, self.terrain.half_y)
        level = self.morph.ceiling if self.morph is not None else self.terrain.level
        return cam.Ground(level * self.terrain.heights.top, self.terrain.half_y)

    def _point_sizes(self) -> None:
        """The terrain's point size: ``world_point`` (a diameter in landscape units) or
        ``point_size`` (pixels at 1080p scaled to the drawn frame), and ``floor_point``, the
        smallest near point of SIZE_DEPTH."""
        look = self.look
        self.round_points = "points" in look.styles and look.point_units == "pixels"
        nx_drawn = self.terrain.level.shape[1]
        spacing = 2.0 / max(nx_drawn - 1, 1)        # between grid neighbours, in landscape units
        # SIZE_DEPTH's smallest near point: a little more than the spacing, as a world diameter
        self.floor_point = 1.15 * spacing
        if look.point_units == "world":
            # by default a little more than the grid spacing, so neighbours overlap and the
            # surface reads as one at any distance
            self.world_point = look.point_size if look.point_size is not None else 1.25 * spacing
            self.point_mode = SIZE_WORLD
        else:
            # points at least as large as the gap between grid neighbours at the framing distance
            # (the terrain fills about 70% of the frame's width there), so the surface reads as one
            # (steep cells grow further in the shader: Terrain.grow)
            px = look.point_size if look.point_size is not None else 2.0
            gap = 0.7 * self.rw / nx_drawn
            if self.round_points:
                # points: a little smaller than the gap at the framing distance, so mid shots show
                # the points and only far views (and grids denser than the pixels) close them up
                self.point_size = max(px * self.rscale, 0.8 * gap, 1.0)
            else:
                self.point_size = max(px * self.rscale, gap, 1.0)
            self.point_mode = SIZE_DEPTH if look.depth_scale else SIZE_FIXED

    # ------------------------------------------------------------------ timing
    def trail_progress(self, style: PathStyle, t: float, count: int) -> float:
        """How far along its ``count`` snapshots a trail drawn with ``style`` is at time t."""
        end = style.end if style.end is not None else self.opts.duration * 0.85
        start = min(style.start, end - 1e-3)
        u = (t - start) / max(end - start, 1e-6)
        # ease in and out, so the head accelerates away and settles at the minimum
        return smoothstep(u) * (count - 1)

    def trail_opacity(self, style: PathStyle, t: float) -> float:
        """How visible a trail drawn with ``style`` is at time t: its head and first stretch fade in
        over ``TRAIL_FADE`` seconds from its ``start`` instead of popping on in one frame."""
        return appear(t, style.start, TRAIL_FADE)

    def morph_position(self, t: float) -> float:
        """Which grid of a landscape over training is shown at time t (fractional): the one of
        the snapshot the training path's head is at, timed as render.paths.training (or the
        default timing when the path is not drawn)."""
        style = self.scene.render.paths.get("training") or PathStyle()
        count = len(self.ls.paths["training"].step)
        return self.morph.position(self.trail_progress(style, t, count))

    def _set_morph(self, t: float) -> None:
        u = self.morph_position(t)
        if u == self._morph_at:
            return
        terrain = self.morph.at(u)
        self._set_cloud(terrain)
        self.trails = [(trail.on(terrain), style) for trail, style in self._still_trails]
        self._morph_at = u

    def _set_cloud(self, terrain) -> None:
        self.gl.set_cloud(terrain.positions, terrain.colors, terrain.grow, terrain.normals, terrain.fade)

    # ------------------------------------------------------------------ a frame
    def _focus(self, t: float, mvp: np.ndarray, s: dict, depth_range) -> float:
        """Depth of field's focus on the depth code's scale (0-1 over depth_range): the first
        drawn trail's head at t, or with none drawn yet the camera's look-at point."""
        at = np.asarray(s["target"], np.float64)
        for trail, style in self.trails:
            if t < style.start:
                continue
            pos = trail.head(self.trail_progress(style, t, len(trail.steps)))[0]
            if pos is not None:
                at = np.asarray(pos, np.float64)
                break
        w = float((mvp @ np.r_[at, 1.0])[3])
        return float(np.clip((w - depth_range[0]) / max(depth_range[1] - depth_range[0], 1e-9), 0, 1))

    def frame(self, t: float) -> np.ndarray:
        return self.finish(self.draw(t))

    def draw(self, t: float) -> "Drawn":
        """The GL part of frame t (on the thread that owns the GL context): the terrain, trails and
        marks drawn and read back, with what ``finish`` needs to complete the frame."""
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
        sprites, readings = self._trail_sprites(t)
        sprites += self.marks.sprites(t, self.rscale)
        depth_range = (float(dists.min()) * 0.9, float(dists.max()))
        self._eye, self._depth_range = eye, depth_range
        img = box_downsample(self._draw(mvp, fog_range, sprites, corners), self.ss)
        focus = self._focus(t, mvp, s, depth_range) if self._dof else None
        return Drawn(t, img, mvp, focus, readings if self.panel.readout and not self.opts.clean else [])

    def finish(self, d: "Drawn") -> np.ndarray:
        """The rest of a drawn frame, without GL (so write_film runs it beside the next frame's
        drawing): the post passes, the marks' labels, the overlays, straight alpha."""
        img = post.apply(d.img, d.focus, self.look.depth_of_field, self.look.bloom)
        if not self.opts.clean:
            self.marks.draw_labels(img, d.mvp, d.t)
        self.overlays.draw(img, d.t, d.readings)
        # with no background the frame was drawn and overlaid in premultiplied colours
        return unpremultiply(img) if self.transparent else img

    @property
    def _dof(self) -> bool:
        return self.look.depth_of_field > 0 and not self.transparent

    def _trail_sprites(self, t: float) -> tuple[list, list[overlay.Reading]]:
        """The trails at time t as sprite batches (positions, colours, sizes, scale, soft,
        additive), and the read-out's lines."""
        batches, readings = [], []
        for trail, style in self.trails:
            p = self.trail_progress(style, t, len(trail.steps))
            if t < style.start:
                continue
            pos, k, step, loss, surface = trail.head(p)
            rgba = np.array(hex_rgba(style.color))
            in_plane = np.array_equal(trail.loss, trail.surface)
            label = trail.name if style.label is None else style.label        # "": no label
            readings.append(overlay.Reading(label, hex_rgba(style.color)[:3], step, loss,
                                            None if in_plane else surface, trail.over_grid(p)))
            if k == 0:              # nothing of this path over the grid yet: only the read-out
                continue
            op = self.trail_opacity(style, t)        # fading in after its start
            w = style.width * self.rscale
            pts = trail.points[:k]
            ramp = 0.35 + 0.65 * (np.arange(k) / max(k - 1, 1)) ** 1.5
            cols = np.tile(rgba, (k, 1))
            cols[:, 3] = ramp * rgba[3] * op
            halo = cols.copy()
            halo[:, 3] *= 0.16
            batches.append((pts, halo, np.full(k, 3.2), w, 1.0, True))
            batches.append((pts, cols, np.full(k, 1.0), w, 0.0, False))
            pulse = 1.0 + 0.18 * math.sin(2 * math.pi * 0.9 * t)
            head = pos[None, :]
            batches.append((head, np.array([[*rgba[:3], 0.55 * op]]), np.array([7.0 * pulse]), w, 1.0, True))
            core = np.clip(rgba[:3] * 0.4 + 0.6, 0, 1)
            batches.append((head, np.array([[*core, op]]), np.array([2.1]), w, 0.0, False))
        return batches, readings

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
        margin = self._margin(mvp, size, sprites, corners)
        tiles = plan_tiles(W, H, min(self.max_tile, max(self.gl.width, self.gl.height)), margin)
        g = self.gl
        depth = self._dof               # the alpha channel brings back the terrain's depth
        out = np.empty((H, W, 4 if self.transparent or depth else 3), np.uint8) if len(tiles) > 1 else None
        light = self.look.light
        finish = dict(round_points=self.round_points, eye=self._eye, light=Finish.of(self.look).light,
                      specular=light.specular, shininess=light.shininess, depth_range=self._depth_range)
        for tile in tiles:
            g.begin(self.bg_top, self.bg_bottom, tile, (W, H), transparent=self.transparent)
            g.draw_cloud(mvp, size, self.home["distance"], self.look.fog, fog_range, self.point_mode,
                         self._cloud_floor(mvp), **finish)
            for pts, cols, sizes, scale, soft, additive in sprites:
                g.draw_sprites(mvp, pts, cols, sizes, scale, soft=soft, additive=additive)
            part = g.read(alpha=depth)
            g.end()
            c0, r0, c1, r1 = tile.inner
            x0, y0 = tile.region[:2]
            inner = part[r0 - y0:r1 - y0, c0 - x0:c1 - x0]
            if out is None:                         # one tile: the frame without its margin
                return np.ascontiguousarray(inner)
            out[r0:r1, c0:c1] = inner
        return out


    def close(self) -> None:
        self.gl.close()


def render_film(scene: Scene, ls: Landscape, out: Path, opts: Options, crf: int, preset: str,
                progress: bool = True, max_frames: int | None = None, fmt: str = "mp4") -> dict:
    """Render the film to ``out``: a film of format ``fmt`` (mp4, mov, webm, gif:
    writer.encoder_settings) or a directory of numbered PNG frames ("png"); either appears at
    ``out`` only when complete.  Returns timing figures."""
    return write_film(Film(scene, ls, opts), out, opts, crf, preset, progress, max_frames, fmt)


def render_still(scene: Scene, ls: Landscape, out: Path, opts: Options, t: float) -> Path:
    """One frame at time t as an image at ``out`` (any size: drawn in tiles when larger than the
    GL draws in one piece), written under a temporary name and renamed into place."""
    return write_still(Film(scene, ls, opts), out, t, opts)
