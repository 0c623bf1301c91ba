"""The film: scene + cached landscape -> frames -> MP4 (or stills).

Data (``render.look``: terrain and trails), style (the scene's ``render:``
section) and drawing (``render.gl``) are joined here, one frame at a time, at
time ``frame / fps``.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.cache import Landscape
from studio.scene import Scene
from render import camera as cam
from render import overlay
from render.look import Trail, build_terrain, build_trail, hex_rgba


@dataclass
class Options:
    width: int
    height: int
    fps: int
    duration: float
    stride: int = 1          # draw every stride-th grid point (previews)


def _smoothstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def describe(meta: dict) -> str:
    """One line saying what the landscape is, for the title card."""
    ls = meta.get("landscape", {})
    m, d, p, g = ls.get("model", {}), ls.get("data", {}), ls.get("plane", {}), ls.get("grid", {})
    parts = []
    if m.get("name") == "mlp":
        parts.append(f"MLP {'-'.join(str(w) for w in m.get('widths', []))} ({m.get('activation')})")
    if d.get("name") == "spirals":
        parts.append(f"{d.get('classes')} interleaved spirals")
    if p.get("method") == "pca":
        parts.append("PCA plane of the training path")
    elif p.get("method") == "random":
        parts.append(f"random {p.get('normalization')}-normalized plane")
    if g.get("resolution"):
        nx, ny = g["resolution"]
        parts.append(f"{nx * ny:,} loss evaluations")
    return "  ·  ".join(parts)


class Film:
    def __init__(self, scene: Scene, ls: Landscape, opts: Options):
        from render.gl import Renderer
        self.scene, self.ls, self.opts = scene, ls, opts
        r = scene.render
        self.look = r.look
        self.scale = opts.height / 1080.0
        self.terrain = build_terrain(ls, r.look.height, r.look.exaggeration, r.look.colormap,
                                     r.look.shading, stride=opts.stride)
        self.trails: list[tuple[Trail, object]] = []
        for name, style in r.paths.items():
            if name not in ls.paths:
                raise ValueError(f"render.paths.{name}: the cache has no path of that name "
                                 f"(it has: {', '.join(ls.paths) or 'none'})")
            self.trails.append((build_trail(ls.paths[name], ls, self.terrain), style))
        lo, hi = self.terrain.bounds
        aspect = opts.width / opts.height
        pts = self.terrain.positions
        sample = pts[:: max(1, len(pts) // 4000)]
        self.home = cam.framing(np.concatenate([sample] + [t.points for t, _ in self.trails]), aspect)
        keys = [k.model_dump() for k in r.camera]
        if not keys:
            end = dict(self.home, azimuth=self.home["azimuth"] + 75, elevation=24.0,
                       distance=self.home["distance"] * 0.85)
            keys = [dict(self.home, t=0.0), dict(end, t=opts.duration, ease="in_out")]
        self.camera = cam.CameraPath(keys, self.home)
        bg = np.array(hex_rgba(r.look.background)[:3])
        self.bg_bottom = bg
        self.bg_top = np.clip(bg + np.array([0.035, 0.045, 0.075]) * (1 - bg.mean()), 0, 1)
        self.gl = Renderer(opts.width, opts.height)
        self.gl.set_cloud(self.terrain.positions, self.terrain.colors)
        self._tiles: dict = {}
        # points at least as large as the gap between grid neighbours at the framing distance
        # (the terrain fills about 70% of the frame's width there), so the surface reads as one
        nx_drawn = self.terrain.level.shape[1]
        self.point_size = max(r.look.point_size * self.scale, 0.7 * opts.width / nx_drawn, 1.0)

    # ------------------------------------------------------------------ pieces
    def _tile(self, key, make):
        if key not in self._tiles:
            self._tiles[key] = make()
        return self._tiles[key]

    def trail_progress(self, style, t: float, count: int) -> float:
        end = style.end if style.end is not None else self.opts.duration * 0.85
        start = min(style.start, end - 1e-3)
        u = (t - start) / max(end - start, 1e-6)
        # ease in and out, so the head accelerates away and settles at the minimum
        return _smoothstep(u) * (count - 1)

    def frame(self, t: float) -> np.ndarray:
        o = self.opts
        s = self.camera.state(t)
        radius = self.terrain.radius
        near, far = cam.clip_planes(s, radius)
        mvp = cam.perspective(s["fov"], o.width / o.height, near, far) @ cam.view_matrix(s)
        eye = cam.eye_position(s)
        lo, hi = self.terrain.bounds
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        dists = np.linalg.norm(corners - eye, axis=1)
        center_d = float(np.linalg.norm((lo + hi) / 2 - eye))
        g = self.gl
        g.begin(self.bg_top, self.bg_bottom)
        g.draw_cloud(mvp, self.point_size, self.home["distance"], self.bg_bottom,
                     self.look.fog, (max(dists.min(), center_d - radius * 0.6), dists.max()))
        heads = []
        for trail, style in self.trails:
            p = self.trail_progress(style, t, len(trail.steps))
            if t < style.start:
                continue
            pos, k, step, loss, surface = trail.head(p)
            heads.append((trail, style, step, loss, surface, trail.over_grid(p)))
            if k == 0:              # nothing of this path over the grid yet: only the read-out
                continue
            rgba = np.array(hex_rgba(style.color))
            w = style.width * self.scale
            pts = trail.points[:k]
            ramp = 0.35 + 0.65 * (np.arange(k) / max(k - 1, 1)) ** 1.5
            cols = np.tile(rgba, (k, 1))
            cols[:, 3] = ramp * rgba[3]
            halo = cols.copy()
            halo[:, 3] *= 0.16
            g.draw_sprites(mvp, pts, halo, np.full(k, 3.2), w, soft=1.0, additive=True)
            g.draw_sprites(mvp, pts, cols, np.full(k, 1.0), w, soft=0.0, additive=False)
            pulse = 1.0 + 0.18 * math.sin(2 * math.pi * 0.9 * t)
            head = pos[None, :]
            g.draw_sprites(mvp, head, np.array([[*rgba[:3], 0.55]]), np.array([7.0 * pulse]), w,
                           soft=1.0, additive=True)
            core = np.clip(rgba[:3] * 0.4 + 0.6, 0, 1)
            g.draw_sprites(mvp, head, np.array([[*core, 1.0]]), np.array([2.1]), w, soft=0.0, additive=False)
        img = g.read()
        g.end()
        self._overlays(img, t, heads)
        return img

    def _overlays(self, img: np.ndarray, t: float, heads) -> None:
        o, sc, r = self.opts, self.scale, self.scene.render
        margin = 56 * sc
        white = (1.0, 1.0, 1.0)
        soft = (0.78, 0.80, 0.86)
        title_end = min(4.5, o.duration * 0.4)
        if r.title_card and self.scene.title:
            op = overlay.fade(t, 0.3, title_end, 0.9)
            if op > 0:
                tile = self._tile("title", lambda: overlay.text_tile(
                    [(self.scene.title, 68, True, white), (describe(self.ls.meta), 26, False, soft)], sc))
                x, y = overlay.place(tile, o.width, o.height, "top", margin * 1.3)
                overlay.composite(img, tile, x, y, op)
        # legend and live read-out once the title has gone: one line per trail, stacked upwards
        # from the bottom left (built first, so bottom captions can clear the stack)
        readout, stack = [], 0
        op_readout = overlay.fade(t, title_end - 0.5, o.duration + 10, 0.8)
        if op_readout > 0 and heads:
            for trail, style, step, loss, surface, over in reversed(heads):
                rgb = hex_rgba(style.color)[:3]
                label = style.label or trail.name
                # the true loss of the network, and the loss on the drawn plane under the head
                # (they differ where the path leaves the plane)
                text = f"{label}   step {int(round(step)):,}   loss {loss:.4f}   on this plane {surface:.4f}"
                if not over:        # the trail is clipped to the grid: say where the head went
                    text += "   (beyond the grid)"
                tile = overlay.text_tile([(text, 24, False, (0.92, 0.93, 0.96))], sc, align="left", dot=rgb)
                readout.append(tile)
                stack += tile.size[1]
        for i, c in enumerate(r.captions):
            op = overlay.fade(t, c.start, c.end, c.fade)
            if op > 0:
                tile = self._tile(("caption", i), lambda c=c: overlay.text_tile([(c.text, c.size, False, white)], sc))
                m = margin * 1.6
                if c.position == "bottom":
                    m = max(margin * 2.4, margin + stack + margin * 0.3)
                x, y = overlay.place(tile, o.width, o.height, c.position, m)
                overlay.composite(img, tile, x, y, op)
        yb = o.height - margin
        for tile in readout:
            x, _ = overlay.place(tile, o.width, o.height, "bottom_left", margin * 0.6)
            yb -= tile.size[1]
            overlay.composite(img, tile, x, int(yb), op_readout)

    def close(self) -> None:
        self.gl.close()


def render_film(scene: Scene, ls: Landscape, out: Path, opts: Options, crf: int, preset: str,
                progress: bool = True, max_frames: int | None = None) -> dict:
    """Render the film to ``out`` (MP4); returns timing figures."""
    import time
    from tqdm import tqdm
    from render.writer import VideoWriter
    n = max(1, int(round(opts.duration * opts.fps)))
    if max_frames:
        n = min(n, max_frames)
    film = Film(scene, ls, opts)
    t0 = time.perf_counter()
    try:
        with VideoWriter(out, opts.width, opts.height, opts.fps, crf=crf, preset=preset) as w:
            for i in tqdm(range(n), desc="frames", unit="frame", disable=not progress,
                          mininterval=1.0, dynamic_ncols=True, file=sys.stderr):
                w.write(film.frame(i / opts.fps))
    finally:
        film.close()
    dt = time.perf_counter() - t0
    return {"frames": n, "seconds": dt, "fps": n / dt if dt > 0 else None}


def render_still(scene: Scene, ls: Landscape, out: Path, opts: Options, t: float) -> Path:
    from PIL import Image
    film = Film(scene, ls, opts)
    try:
        img = film.frame(t)
    finally:
        film.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    Image.fromarray(img).save(tmp)
    tmp.replace(out)
    return out
