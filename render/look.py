"""From cached arrays to drawable data: terrain points, colours and trails (NumPy only).

World units: the terrain spans x in [-1, 1] along the plane's first axis and
y in [-ny/nx, ny/nx] along the second; its height runs from 0 (lowest loss) to
``2 * exaggeration`` (highest shown loss).  Heights come from the loss by the
scene's mapping (``linear``, ``log`` or ``clip``, which is linear with a lower
top); the top of the scale is a quantile of the finite loss (``clip_quantile``:
by default the 99.5th percentile for linear and log, so a few exploding cells do
not flatten the rest, and the 95th for clip); cells above it are flattened onto
it.  Colour is by height, by the loss on a log scale, or by an extra grid the
cache entry holds (``accuracy``).  The scale itself (HeightMap, height_map, the quantiles, the
samples of a landscape over training) lives in studio/scale.py, which the export uses too.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from studio.cli import UserError
from studio.assets import colormap
from studio.cache import Landscape, Path2D
from studio.scale import HeightMap, height_map, loss_color_scale, loss_sample, lut_index, range_scale, top_quantile
from render.terrain_style import (CONTOUR_HALF_WIDTH, CONTOUR_STRENGTH, PLAIN_LIGHT, Finish, contour_lines,
                                  frayed_edge, steepness, upsample, upsample_factor, valley_occlusion, wireframe_lines)

#: the names importers take from here, the terrain's style (render/terrain_style.py) and the scale
#: (studio/scale.py) included
__all__ = ["LookError", "HeightMap", "height_map", "loss_sample", "lut_index", "Finish", "PLAIN_LIGHT",
           "upsample_factor", "upsample", "valley_occlusion", "wireframe_lines", "CONTOUR_HALF_WIDTH",
           "CONTOUR_STRENGTH", "contour_lines", "steepness", "color_values", "Terrain", "terrain_sample",
           "build_terrain", "highest_level", "TerrainSequence", "Trail", "clip_segments", "build_trail", "hex_rgba"]


class LookError(UserError, ValueError):
    """The scene asks for something this cache entry cannot show; the message says what is missing."""


def color_values(ls: Landscape, level: np.ndarray, color_by: str, quantile: float, stride: int = 1,
                 scale: HeightMap | None = None) -> np.ndarray:
    """The value in [0, 1] (NaN where unknown) that picks each drawn cell's colour.

    ``height``: the normalized height; ``loss``: the loss on a log scale from its minimum to the
    ``quantile`` (whatever the height mapping); any other name: the cache entry's extra grid of
    that name (``accuracy``), from its lowest to its highest finite value.  ``scale`` (for loss
    and grids) replaces that range with a given one, e.g. one shared by several landscapes."""
    if color_by == "height":
        return level
    if color_by == "loss":
        s = scale if scale is not None else loss_color_scale(np.asarray(ls.loss), quantile)
        return s.level(np.asarray(ls.loss)[::stride, ::stride])
    grid = ls.grids.get(color_by)
    if grid is None:
        have = ", ".join(sorted(ls.grids)) or "none"
        raise LookError(f"render.look.color_by: {color_by!r} needs a {color_by} grid in the cache entry "
                        f"{ls.key}, and it has none (its extra grids: {have}; the compute stage does not "
                        f"record {color_by} yet); use color_by: height or loss")
    g = np.asarray(grid, np.float64)
    return (scale if scale is not None else range_scale(g)).level(g[::stride, ::stride])


@dataclass
class Terrain:
    positions: np.ndarray   # (M, 3) float32, finite cells only
    colors: np.ndarray      # (M, 3) float32 in [0, 1]
    heights: HeightMap
    half_y: float           # terrain spans y in [-half_y, half_y]
    level: np.ndarray       # (ny, nx) normalized height, NaN where not finite
    grow: np.ndarray | None = None   # (M,) float32: point size factor for steep cells (1 on the flat)
    normals: np.ndarray | None = None   # (M, 3) float32: unit normals, for the specular highlight
    fade: np.ndarray | None = None      # (M,) float32: 0 inside, towards 1 at the dissolving border

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([-1.0, -self.half_y, 0.0]), np.array([1.0, self.half_y, self.heights.top]))

    @property
    def corners(self) -> np.ndarray:
        """The eight corners of the terrain's bounding box, (8, 3)."""
        lo, hi = self.bounds
        return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])

    @property
    def radius(self) -> float:
        lo, hi = self.bounds
        return float(np.linalg.norm(hi - lo) / 2)


def terrain_sample(level: np.ndarray, top: float, points: int = 4000) -> np.ndarray:
    """About ``points`` positions of a terrain (as _terrain places them) from every s-th row and
    column of its normalized height ``level``, for framing: spread evenly over the whole grid,
    whatever its size (every k-th point of the flattened grid would take a few columns only
    where k divides the row length)."""
    ny, nx = level.shape
    s = max(1, int(np.sqrt(ny * nx / points)))
    half_y = ny / nx
    x = np.linspace(-1.0, 1.0, nx)[::s]
    y = np.linspace(-half_y, half_y, ny)[::s]
    z = level[::s, ::s] * top
    xx, yy = np.meshgrid(x, y)
    ok = np.isfinite(z)
    return np.stack([xx[ok], yy[ok], z[ok]], axis=1)


def build_terrain(ls: Landscape, mode: str, exaggeration: float, cmap: str, shading: float,
                  stride: int = 1, quantile: float | None = None, color_by: str = "height",
                  heights: HeightMap | None = None, color_scale: HeightMap | None = None,
                  contours: int = 0, finish: "Finish | None" = None) -> Terrain:
    """``heights`` and ``color_scale`` replace the scales this landscape's own loss would give
    (a comparison's panels share them: render/compare.py, shared_scales); ``finish``: the style,
    light, valley darkening, edge and smoothing of render.look (None: the plain surface)."""
    loss = np.asarray(ls.loss)[::stride, ::stride]
    hm = heights if heights is not None else height_map(np.asarray(ls.loss), mode, exaggeration, quantile)
    level = hm.level(loss)
    value = color_values(ls, level, color_by, hm.quantile, stride, scale=color_scale)
    if finish is not None and finish.min_grid:
        f = upsample_factor(level.shape, finish.min_grid)
        if f > 1:
            level, value = upsample(level, f), upsample(value, f)
    return _terrain(level, value, hm, cmap, shading, contours=contours, finish=finish)


def _terrain(level: np.ndarray, value: np.ndarray, hm: HeightMap, cmap: str, shading: float,
             keep_all: bool = False, contours: int = 0, finish: Finish | None = None) -> Terrain:
    """Points, shaded colours and size factors of a normalized height field; ``keep_all`` keeps
    the cells that are not finite too (drawn at the top of the scale), so two terrains of the
    same grid have the same points in the same order and can be blended; ``contours``: that many
    bands of height with lines between them, darkened into the colours (contour_lines)."""
    ny, nx = level.shape
    half_y = ny / nx
    x = np.linspace(-1.0, 1.0, nx)
    y = np.linspace(-half_y, half_y, ny)
    z = level * hm.top
    # slope shading: a light from the upper left, over the terrain's own normals
    zf = np.where(np.isfinite(z), z, np.nanmin(z) if np.isfinite(z).any() else 0.0)
    gy, gx = np.gradient(zf, y, x)
    n = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    fin = finish or Finish()
    light = fin.light if finish is not None else PLAIN_LIGHT
    lambert = np.clip(n @ light, 0.0, 1.0)
    shade = (1.0 - shading) + shading * (0.35 + 0.95 * lambert)
    if fin.occlusion > 0 and min(level.shape) > 2:
        spacing = x[1] - x[0] if nx > 1 else 1.0
        shade = shade * ((1.0 - fin.occlusion) + fin.occlusion * valley_occlusion(zf, spacing))
    lut = colormap(cmap)
    if keep_all:
        value = np.where(np.isfinite(value), value, 1.0)
        z = np.where(np.isfinite(z), z, hm.top)
    base = lut[lut_index(value, len(lut))]
    rgb = base * shade[..., None]
    lines = np.zeros(level.shape, np.float32)
    if "contours" in fin.styles:
        lines = np.maximum(lines, contour_lines(level, contours or 12))
    if "wireframe" in fin.styles:
        lines = np.maximum(lines, wireframe_lines(level.shape))
    if "contours" in fin.styles or "wireframe" in fin.styles:
        # luminous lines: the colour lifted towards white, kept bright on the dark side too
        glow = np.clip(base * 1.5 + 0.18, 0, 1) * (0.55 + 0.45 * shade[..., None])
        rgb = rgb * (1.0 - 0.85 * lines[..., None]) if fin.base else rgb * 0.0
        rgb = rgb + glow * lines[..., None]
    elif contours:
        rgb = rgb * (1.0 - CONTOUR_STRENGTH * contour_lines(level, contours))[..., None]
    ok = np.isfinite(level) if not keep_all else np.ones(level.shape, bool)
    if fin.base is None and not keep_all:
        ok &= lines > 0.35                       # lines only: just the points on them
    xx, yy = np.meshgrid(x, y)
    dx, dy = (x[1] - x[0] if nx > 1 else 1.0), (y[1] - y[0] if ny > 1 else 1.0)
    px, py, pz = xx[ok], yy[ok], z[ok]
    if fin.base == "points" and nx > 1 and ny > 1:
        # each point somewhere in its cell (seeded: the same every frame), on the surface there,
        # so no rows line up with the frame's pixel rows
        rng = np.random.default_rng(fin.seed)
        jx, jy = (rng.random((2, int(ok.sum()))) - 0.5) * 0.9
        iy, ix = np.nonzero(ok)
        fx, fy = np.clip(ix + jx, 0, nx - 1), np.clip(iy + jy, 0, ny - 1)
        px, py = x[0] + fx * dx, y[0] + fy * dy
        zz = _bilinear(np.where(np.isfinite(z), z, hm.top), fx, fy)
        pz = np.where(np.isfinite(pz), zz, pz)
    grow = steepness(zf, dx, dy)[ok]
    rgb, normals, fade = rgb[ok], n[ok], None
    if fin.edge > 0:
        # the border dissolves: points thin out towards it and those left fade
        keep, fade = frayed_edge(ok, fin.edge, fin.seed)
        px, py, pz, rgb, normals, grow = (a[keep] for a in (px, py, pz, rgb, normals, grow))
    pos = np.stack([px, py, pz], axis=1).astype(np.float32)
    return Terrain(pos, np.clip(rgb, 0, 1).astype(np.float32), hm, half_y, level, grow.astype(np.float32),
                   normals.astype(np.float32), None if fade is None else fade.astype(np.float32))


def highest_level(ls: Landscape, hm: HeightMap, stride: int = 1) -> np.ndarray:
    """The normalized height of each drawn cell on scale ``hm``: the grid's (NaN where it has no
    terrain), or for a landscape over training the highest any of its grids reaches there (cells
    that are not finite count as the top, where a morphing terrain draws them)."""
    if ls.sequence is None:
        return hm.level(np.asarray(ls.loss)[::stride, ::stride])
    out = None
    for k in range(len(ls.sequence.step)):
        lv = hm.level(np.asarray(ls.sequence.loss[k, ::stride, ::stride]))
        lv = np.where(np.isfinite(lv), lv, 1.0)
        out = lv if out is None else np.maximum(out, lv)
    return out


class TerrainSequence:
    """A landscape over training as a terrain that morphs from grid to grid.

    One height scale for the whole sequence (the lowest loss of any grid at height 0, the
    scale's quantile of all grids together at the top), so a valley that deepens as the network
    learns is seen deepening.  ``at(u)`` gives the terrain at fractional grid position u: grid
    floor(u) blended with the next one, heights and colours interpolated linearly.  At most two
    grids are built at a time (their arrays are mapped from the cache, not loaded whole)."""

    def __init__(self, ls: Landscape, mode: str, exaggeration: float, cmap: str, shading: float,
                 stride: int = 1, quantile: float | None = None, color_by: str = "height",
                 heights: HeightMap | None = None, color_scale: HeightMap | None = None, contours: int = 0,
                 finish: Finish | None = None):
        """``heights`` and ``color_scale`` replace the sequence's own scales (a comparison's
        panels share them: render/compare.py, shared_scales); ``contours`` as build_terrain's."""
        if ls.sequence is None:
            raise LookError(f"cache entry {ls.key} holds no sequence of grids")
        if color_by not in ("height", "loss"):
            raise LookError(f"render.look.color_by: {color_by!r} is not recorded for a landscape over training; "
                            f"use color_by: height or loss")
        self.seq, self.stride = ls.sequence, stride
        self.mode, self.cmap, self.shading, self.color_by = mode, cmap, shading, color_by
        self.contours = contours
        self.finish = finish
        q = top_quantile(mode, quantile)
        if heights is None or color_scale is None:
            sample = loss_sample(ls)
            if heights is None:
                heights = height_map(sample, mode, exaggeration, q)
            if color_scale is None:
                color_scale = loss_color_scale(sample, q)
        self.heights, self.color_scale = heights, color_scale
        # the highest each cell ever gets, for the camera's ground guard
        self.ceiling = highest_level(ls, self.heights, stride)
        self._built: dict[int, Terrain] = {}

    def __len__(self) -> int:
        return len(self.seq.step)

    def _loss(self, k: int) -> np.ndarray:
        """Grid k's loss at the drawn cells (read from the mapped stack)."""
        return np.asarray(self.seq.loss[k, ::self.stride, ::self.stride])

    def grid(self, k: int) -> Terrain:
        """Grid k's terrain on the sequence's scale (every cell kept, in the same order)."""
        if k not in self._built:
            if len(self._built) >= 2:        # keep the two grids in use: drop the one furthest away
                del self._built[max(self._built, key=lambda j: abs(j - k))]
            loss = self._loss(k)
            level = self.heights.level(loss)
            value = level if self.color_by == "height" else self.color_scale.level(loss)
            self._built[k] = _terrain(level, value, self.heights, self.cmap, self.shading, keep_all=True,
                                      contours=self.contours, finish=self.finish)
        return self._built[k]

    def at(self, u: float) -> Terrain:
        """The terrain at fractional grid position u in [0, K-1] (clamped)."""
        u = min(max(float(u), 0.0), len(self) - 1.0)
        k = min(int(np.floor(u)), len(self) - 2) if len(self) > 1 else 0
        f = u - k
        a = self.grid(k)
        if f <= 0.0 or len(self) == 1:
            return a
        b = self.grid(k + 1)
        if f >= 1.0:
            return b
        lerp = lambda p, q: (p + f * (q - p)).astype(np.float32)
        level = a.level + f * (b.level - a.level)
        normals = None if a.normals is None else lerp(a.normals, b.normals)
        return Terrain(lerp(a.positions, b.positions), lerp(a.colors, b.colors), self.heights, a.half_y, level,
                       np.maximum(a.grow, b.grow), normals, a.fade)

    def position(self, snapshot):
        """Fractional grid position for a fractional snapshot index of the training path (a number
        or an array of them): the terrain shown when the path's head is at that snapshot."""
        u = np.interp(snapshot, np.asarray(self.seq.index, np.float64), np.arange(len(self), dtype=np.float64))
        return float(u) if np.ndim(u) == 0 else u

    def levels_along(self, fx: np.ndarray, fy: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The normalized height of the terrain at(u[i]) at fractional grid indices (fx[i], fy[i]):
        where a moving head stands at each of its moments (a follow shot's track), reading two
        grids at a time."""
        u = np.clip(np.asarray(u, np.float64), 0.0, len(self) - 1.0)
        k0 = np.minimum(np.floor(u).astype(int), max(len(self) - 2, 0))
        f = u - k0
        level = lambda k: self.heights.level(self._loss(k))
        out = np.empty(len(u))
        for k in np.unique(k0):
            m = k0 == k
            a = _bilinear(level(k), fx[m], fy[m])
            b = _bilinear(level(k + 1), fx[m], fy[m]) if len(self) > 1 else a
            out[m] = (1 - f[m]) * a + f[m] * b
        return out


def _bilinear(level: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Sample a (ny, nx) field at fractional indices, NaN-safe (NaN cells count as the top)."""
    ny, nx = level.shape
    lv = np.where(np.isfinite(level), level, 1.0)
    fx = np.clip(fx, 0, nx - 1)
    fy = np.clip(fy, 0, ny - 1)
    x0 = np.minimum(np.floor(fx).astype(int), nx - 2)
    y0 = np.minimum(np.floor(fy).astype(int), ny - 2)
    tx, ty = fx - x0, fy - y0
    return ((1 - tx) * (1 - ty) * lv[y0, x0] + tx * (1 - ty) * lv[y0, x0 + 1]
            + (1 - tx) * ty * lv[y0 + 1, x0] + tx * ty * lv[y0 + 1, x0 + 1])


@dataclass
class Trail:
    """A path set on the drawn surface.  Only the parts of the path over the grid are sampled:
    a path that leaves the grid's extent (a descent can) stops being drawn at the edge and,
    if it comes back, resumes where it re-enters; the head waits at the last point drawn."""
    name: str
    points: np.ndarray      # (S, 3) float32: dense samples along the path over the grid, on the surface
    progress: np.ndarray    # (S,) float: snapshot index (fractional) of each sample, increasing
    steps: np.ndarray       # (T,) training step of each snapshot
    loss: np.ndarray        # (T,) true loss of each snapshot
    surface: np.ndarray     # (T,) loss on the plane under each snapshot
    where: np.ndarray | None = None    # (T, 2) position of each snapshot in grid indices (x, y)
    limits: tuple[float, float] = (np.inf, np.inf)   # the grid's last indices (nx - 1, ny - 1)
    samples: np.ndarray | None = None  # (S, 2) fractional grid indices (x, y) of the points
    lift: float = 0.0                  # height of the trail above the surface, in world units

    def on(self, terrain: "Terrain") -> "Trail":
        """The same trail set on another terrain of the same grid (a landscape over training)."""
        if self.samples is None or len(self.points) == 0:
            return self
        pts = self.points.copy()
        pts[:, 2] = _bilinear(terrain.level, self.samples[:, 0], self.samples[:, 1]) * terrain.heights.top + self.lift
        return replace(self, points=pts)

    def head(self, p: float) -> tuple[np.ndarray | None, int, float, float, float]:
        """Position, sample count, step, true loss and surface loss at fractional snapshot index p.
        The position is None (and the count 0) while no part of the path up to p is over the grid."""
        k = int(np.searchsorted(self.progress, p + 1e-9, side="right"))
        k = min(k, len(self.points))
        i = int(np.clip(np.floor(p), 0, len(self.steps) - 1))
        j = min(i + 1, len(self.steps) - 1)
        f = p - i
        step = (1 - f) * self.steps[i] + f * self.steps[j]
        def geo(v):      # losses span decades: interpolate them geometrically
            return float(np.exp((1 - f) * np.log(max(v[i], 1e-12)) + f * np.log(max(v[j], 1e-12))))
        pos = self.points[k - 1] if k > 0 else None
        return pos, k, float(step), geo(self.loss), geo(self.surface)

    def over_grid(self, p: float) -> bool:
        """Whether the path at fractional snapshot index p lies over the grid (is drawn there)."""
        if self.where is None:
            return True
        n = len(self.where)
        i = int(np.clip(np.floor(p), 0, n - 1))
        j = min(i + 1, n - 1)
        f = min(max(p - i, 0.0), 1.0)
        x, y = (1 - f) * self.where[i] + f * self.where[j]
        eps = 1e-9
        return bool(-eps <= x <= self.limits[0] + eps and -eps <= y <= self.limits[1] + eps)


def clip_segments(fx: np.ndarray, fy: np.ndarray, xmax: float, ymax: float) -> tuple[np.ndarray, np.ndarray]:
    """For each segment of a polyline (point i to i+1), the parameter interval [t0, t1] of its part
    inside the rectangle [0, xmax] x [0, ymax] (Liang-Barsky); t0 > t1 where it has none."""
    x0, y0 = fx[:-1], fy[:-1]
    dx, dy = np.diff(fx), np.diff(fy)
    t0, t1 = np.zeros(len(dx)), np.ones(len(dx))
    # inside: p * t <= q for each of the four edges
    for pk, qk in ((-dx, x0), (dx, xmax - x0), (-dy, y0), (dy, ymax - y0)):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = qk / pk
        t0 = np.where(pk < 0, np.maximum(t0, r), t0)
        t1 = np.where(pk > 0, np.minimum(t1, r), t1)
        out = (pk == 0) & (qk < 0)                  # parallel to this edge, beyond it
        t0, t1 = np.where(out, 1.0, t0), np.where(out, 0.0, t1)
    return t0, t1


def build_trail(path: Path2D, ls: Landscape, terrain: Terrain, samples: int = 6000,
                lift: float = 0.006, max_knots: int = 24000) -> Trail:
    """Resample the path densely along its length and set it on the drawn surface.

    The path is clipped to the grid's extent first (a descent may leave it; the terrain has no
    height there), and the samples are spread along the part that is over the grid."""
    alpha, beta = np.asarray(ls.alpha), np.asarray(ls.beta)
    ny, nx = terrain.level.shape
    xy = np.asarray(path.xy, dtype=np.float64)
    # plane coordinates -> fractional indices of the drawn grid -> world
    fx = (xy[:, 0] - alpha[0]) / (alpha[-1] - alpha[0]) * (nx - 1)
    fy = (xy[:, 1] - beta[0]) / (beta[-1] - beta[0]) * (ny - 1)
    xmax, ymax = float(nx - 1), float(ny - 1)
    n = len(fx)
    if n == 1:
        inside = 0 <= fx[0] <= xmax and 0 <= fy[0] <= ymax
        prog = np.zeros(1 if inside else 0)
    else:
        t0, t1 = clip_segments(fx, fy, xmax, ymax)
        ok = t0 <= t1
        seg = np.arange(n - 1)
        length = np.where(ok, (t1 - t0) * np.hypot(np.diff(fx), np.diff(fy)), 0.0)
        # knots: every snapshot over the grid, and where the path crosses the grid's edge
        cuts = np.r_[(seg + t0)[ok & (t0 > 0)], (seg + t1)[ok & (t1 < 1)]]
        whole = np.r_[seg[ok & (t0 == 0)], (seg + 1)[ok & (t1 == 1)]].astype(np.float64)
        whole = np.unique(whole)
        if len(whole) > max_knots:             # very long paths: every snapshot would be too many points
            whole = whole[np.linspace(0, len(whole) - 1, max_knots).round().astype(int)]
        prog = np.union1d(cuts, whole)
        arc = np.cumsum(length)
        total = arc[-1]
        if total > 0:
            # samples spaced evenly along the part over the grid
            s = np.linspace(0.0, total, samples)
            j = np.minimum(np.searchsorted(arc, s, side="left"), n - 2)
            good = length[j] > 0
            j, s = j[good], s[good]
            u = (s - (arc[j] - length[j])) / length[j]
            prog = np.union1d(prog, j + t0[j] + np.clip(u, 0, 1) * (t1[j] - t0[j]))
    idx = np.arange(n)
    sx = np.clip(np.interp(prog, idx, fx), 0, xmax)
    sy = np.clip(np.interp(prog, idx, fy), 0, ymax)
    lv = _bilinear(terrain.level, sx, sy) if len(prog) else np.zeros(0)
    wx = sx / (nx - 1) * 2 - 1
    wy = (sy / (ny - 1) * 2 - 1) * terrain.half_y
    up = lift * terrain.heights.top + 0.002
    wz = lv * terrain.heights.top + up
    pts = np.stack([wx, wy, wz], axis=1).astype(np.float32).reshape(-1, 3)
    return Trail(path.name, pts, prog, np.asarray(path.step, np.float64), np.asarray(path.loss, np.float64),
                 np.asarray(path.surface_loss, np.float64), np.stack([fx, fy], axis=1), (xmax, ymax),
                 np.stack([sx, sy], axis=1), up)


def hex_rgba(color: str) -> tuple[float, float, float, float]:
    c = color.lstrip("#")
    vals = [int(c[i:i + 2], 16) / 255.0 for i in range(0, len(c), 2)]
    return (vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 1.0)
