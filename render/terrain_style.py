"""The terrain's style: what the scene's render.look (style, light, occlusion, edge, min_grid) adds
to the plain surface of render/look.py, per grid point, once per terrain (NumPy only).

The light, the valleys darkened by how open they are to the sky, the dissolving border, contour
and wireframe lines, larger points on steep cells, and coarse grids upsampled before they are
drawn.  ``Finish`` gathers the scene's choices.  (The frame's own post passes, bloom and depth of
field, are render/post.py's; ``Film.finish`` completes a drawn frame with them.)
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Finish:
    """What render.look adds to the plain surface (render.look's style, light, occlusion, edge,
    min_grid): see LookSpec's descriptions."""
    styles: tuple[str, ...] = ("surface",)
    azimuth: float = 138.0
    elevation: float = 48.0
    occlusion: float = 0.0
    edge: float = 0.0
    min_grid: int = 0
    seed: int = 7

    @classmethod
    def of(cls, look) -> "Finish":
        return cls(tuple(look.styles), look.light.azimuth, look.light.elevation, look.occlusion, look.edge,
                   look.min_grid)

    def at_height(self, drawn: int) -> "Finish":
        """The finish for frames drawn ``drawn`` pixels high: ``min_grid`` is for 1080 rows, and a
        taller frame (4K, supersampled) draws a coarse grid that much finer, so its cells stay as
        small on screen (a 100 x 100 grid at 4K showed its points as squares at the border)."""
        if not self.min_grid or drawn <= 1080:
            return self
        return replace(self, min_grid=int(round(self.min_grid * drawn / 1080)))

    @property
    def base(self) -> str | None:
        return next((s for s in self.styles if s in ("surface", "points")), None)

    @property
    def light(self) -> np.ndarray:
        a, e = np.radians(self.azimuth), np.radians(self.elevation)
        return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


#: the light of the plain surface (before render.look.light): from the upper left
PLAIN_LIGHT = np.array([-0.5, 0.45, 0.75]) / np.linalg.norm([-0.5, 0.45, 0.75])


def upsample_factor(shape: tuple[int, int], min_grid: int) -> int:
    """How many times finer a grid of ``shape`` is drawn so its longer side has at least
    ``min_grid`` points (1: as it is)."""
    n = max(shape)
    if n >= min_grid or n < 2:
        return 1
    return int(np.ceil((min_grid - 1) / (n - 1)))


def _cubic_axis(a: np.ndarray, f: int, axis: int) -> np.ndarray:
    """Catmull-Rom interpolation of ``a`` along ``axis`` at f samples per cell (n -> (n-1)f+1)."""
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    if n < 2:
        return np.moveaxis(a, 0, axis)
    u = np.arange((n - 1) * f + 1) / f
    i = np.minimum(np.floor(u).astype(int), n - 2)
    t = (u - i).reshape((-1,) + (1,) * (a.ndim - 1))
    p = lambda k: a[np.clip(k, 0, n - 1)]
    p0, p1, p2, p3 = p(i - 1), p(i), p(i + 1), p(i + 2)
    out = 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                 + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)
    # no overshoot beyond the two neighbours (a cubic rings at cliffs)
    out = np.clip(out, np.minimum(p1, p2), np.maximum(p1, p2))
    return np.moveaxis(out, 0, axis)


def upsample(field: np.ndarray, f: int) -> np.ndarray:
    """A (ny, nx) field interpolated (cubic, monotone between neighbours) to ((ny-1)f+1, (nx-1)f+1);
    cells next to a NaN cell stay NaN."""
    field = np.asarray(field, np.float64)
    bad = ~np.isfinite(field)
    filled = np.where(bad, np.nanmean(field) if (~bad).any() else 0.0, field)
    out = _cubic_axis(_cubic_axis(filled, f, 0), f, 1)
    if bad.any():
        ny, nx = field.shape
        iy = np.rint(np.arange(out.shape[0]) / f).astype(int).clip(0, ny - 1)
        ix = np.rint(np.arange(out.shape[1]) / f).astype(int).clip(0, nx - 1)
        out[bad[iy][:, ix]] = np.nan
    return out


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)-square window (edges clamped), by cumulative sums."""
    if r < 1:
        return a
    for axis in (0, 1):
        n = a.shape[axis]
        pad = np.pad(a, [(r + 1, r) if ax == axis else (0, 0) for ax in range(2)], mode="edge")
        c = np.cumsum(pad, axis=axis)
        hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
        lo = np.take(c, np.arange(0, n), axis=axis)
        a = (hi - lo) / (2 * r + 1)
    return a


def valley_occlusion(z: np.ndarray, spacing: float) -> np.ndarray:
    """How open to the sky each cell is, in [0, 1] (1: on a crest or the flat; lower in valleys
    and at the foot of walls): at several scales, how far the cell lies below the mean of its
    surroundings, against the scale's width (a curvature term; NumPy, once per terrain)."""
    n = max(z.shape)
    occ = np.zeros_like(z, dtype=np.float64)
    for frac in (0.01, 0.03, 0.08):
        r = max(1, int(round(frac * n)))
        below = np.maximum(_box(z, r) - z, 0.0)
        occ += below / (r * spacing)
    return np.exp(-1.5 * occ)


def wireframe_lines(shape: tuple[int, int], across: int = 40, width: float = 0.9) -> np.ndarray:
    """How much each cell lies on a grid line, in [0, 1]: about ``across`` lines along each axis."""
    ny, nx = shape
    k = max(2, int(round(max(nx, ny) / across)))
    dx = np.abs((np.arange(nx) + k / 2) % k - k / 2)
    dy = np.abs((np.arange(ny) + k / 2) % k - k / 2)
    d = np.minimum(dy[:, None], dx[None, :])
    return np.clip(1.0 - d / max(width, 1e-6), 0.0, 1.0).astype(np.float32)


#: the dissolving border's raggedness: its noise varies over this many cells of a side (interpolated
#: between them, as the surface is, so a coarse grid drawn large frays in patches, not single squares)
EDGE_CELLS = 40


def smooth_noise(shape: tuple[int, int], seed: int, cells: int = EDGE_CELLS) -> np.ndarray:
    """Seeded noise in [0, 1) over ``shape`` that varies smoothly: random values on a coarse lattice
    of about ``cells`` a side, interpolated bilinearly."""
    ny, nx = shape
    cy, cx = max(2, min(ny, int(round(cells * ny / max(nx, ny))))), max(2, min(nx, int(round(cells * nx / max(nx, ny)))))
    coarse = np.random.default_rng(seed).random((cy, cx))
    fy, fx = np.linspace(0, cy - 1, ny), np.linspace(0, cx - 1, nx)
    y0, x0 = np.minimum(fy.astype(int), cy - 2), np.minimum(fx.astype(int), cx - 2)
    ty, tx = (fy - y0)[:, None], (fx - x0)[None, :]
    c = coarse
    return ((1 - ty) * (1 - tx) * c[y0][:, x0] + (1 - ty) * tx * c[y0][:, x0 + 1]
            + ty * (1 - tx) * c[y0 + 1][:, x0] + ty * tx * c[y0 + 1][:, x0 + 1])


def edge_fade(shape: tuple[int, int], width: float, seed: int = 7) -> np.ndarray:
    """0 inside, rising to 1 at the grid's border over ``width`` (a fraction of the longer side),
    with a ragged, seeded edge (smooth_noise): the border dissolves instead of ending in a hard
    rectangle."""
    ny, nx = shape
    if width <= 0:
        return np.zeros(shape, np.float32)
    n = max(nx, ny) - 1
    d = np.minimum(np.minimum(np.arange(ny), ny - 1 - np.arange(ny))[:, None],
                   np.minimum(np.arange(nx), nx - 1 - np.arange(nx))[None, :]) / max(n, 1)
    noise = smooth_noise(shape, seed) - 0.5
    u = np.clip(d / width + 0.5 * noise, 0.0, 1.0)
    return (1.0 - u * u * (3 - 2 * u)).astype(np.float32)


def frayed_edge(ok: np.ndarray, width: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The dissolving border among the grid's drawn points (``ok``, a mask over the grid): which of
    them are kept, in ``ok``'s order, and the fade of those kept (0 inside, towards 0.6 at the
    border).  Seeded, so the same points go in every frame and in every grid of a landscape over
    training.  Which points go is mostly a smooth noise (patches fray away together) and a little
    each point's own draw (the patches' edges are not smooth lines)."""
    fade = edge_fade(ok.shape, width, seed)[ok]
    draw = 0.8 * smooth_noise(ok.shape, seed + 1)[ok] + 0.2 * np.random.default_rng(seed + 1).random(len(fade))
    keep = draw >= fade ** 1.5
    return keep, (0.6 * fade[keep] ** 2).astype(np.float32)


#: contour lines: half their width in grid cells, and how much they darken the terrain
CONTOUR_HALF_WIDTH, CONTOUR_STRENGTH = 1.6, 0.5


def contour_lines(level: np.ndarray, count: int) -> np.ndarray:
    """How much each cell lies on one of ``count - 1`` contour lines of the normalized height
    (at 1/count, 2/count, ...), in [0, 1]: 1 on a line, falling to 0 at CONTOUR_HALF_WIDTH grid
    cells from it.  The distance is the height's distance to the nearest line's value over the
    local gradient, so lines keep one width on steep walls and gentle slopes alike (a band of
    values would smear on the flat and vanish on walls).  NaN cells get none."""
    if count < 2 or level.size == 0:
        return np.zeros(level.shape, np.float32)
    lv = np.asarray(level, np.float64) * count
    gy, gx = np.gradient(lv) if min(lv.shape) > 1 else (np.zeros_like(lv), np.zeros_like(lv))
    slope = np.hypot(gx, gy)                                     # level units x count, per cell
    near = np.clip(np.rint(lv), 1, count - 1)                    # the nearest line's value
    d = np.abs(lv - near) / np.maximum(slope, 1e-9)              # cells to that line
    on = np.clip(1.0 - d / CONTOUR_HALF_WIDTH, 0.0, 1.0)
    return np.nan_to_num(on, nan=0.0).astype(np.float32)


def steepness(z: np.ndarray, dx: float, dy: float, cap: float = 8.0) -> np.ndarray:
    """For each cell, how much further its farthest grid neighbour is in 3-D than on the flat
    (1 on flat ground, up to ``cap``).  Points are drawn this much larger, so walls that face the
    camera (a steep funnel under log heights) stay closed instead of showing the background
    through gaps between rows."""
    g = np.ones_like(z, dtype=np.float64)
    if z.shape[1] > 1:
        sx = np.abs(np.diff(z, axis=1)) / dx
        g[:, 1:] = np.maximum(g[:, 1:], np.hypot(1.0, sx))
        g[:, :-1] = np.maximum(g[:, :-1], np.hypot(1.0, sx))
    if z.shape[0] > 1:
        sy = np.abs(np.diff(z, axis=0)) / dy
        g[1:] = np.maximum(g[1:], np.hypot(1.0, sy))
        g[:-1] = np.maximum(g[:-1], np.hypot(1.0, sy))
    return np.minimum(g, cap)
