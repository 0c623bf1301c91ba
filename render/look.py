"""From cached arrays to drawable data: terrain points, colours and trails (NumPy only).

World units: the terrain spans x in [-1, 1] along the plane's first axis and
y in [-ny/nx, ny/nx] along the second; its height runs from 0 (lowest loss) to
``2 * exaggeration`` (highest shown loss).  Heights come from the loss by the
scene's mapping (``linear`` or ``log``); the top is the 99.5th percentile so a
few exploding cells do not flatten the rest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.assets import colormap
from studio.cache import Landscape, Path2D


@dataclass
class HeightMap:
    mode: str
    lo: float
    hi: float
    top: float              # world height of the highest shown value

    def level(self, loss: np.ndarray) -> np.ndarray:
        """Loss -> normalized height in [0, 1] (NaN stays NaN)."""
        v = _transform(np.asarray(loss, dtype=np.float64), self.mode)
        return np.clip((v - self.lo) / (self.hi - self.lo), 0.0, 1.0)


def _transform(loss: np.ndarray, mode: str) -> np.ndarray:
    if mode == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.maximum(loss, 1e-12))
    return loss


def height_map(loss: np.ndarray, mode: str, exaggeration: float) -> HeightMap:
    v = _transform(loss[np.isfinite(loss)].astype(np.float64), mode)
    if v.size == 0:
        return HeightMap(mode, 0.0, 1.0, 2 * exaggeration)
    lo, hi = float(v.min()), float(np.quantile(v, 0.995))
    if hi - lo < 1e-12:
        hi = lo + 1.0
    return HeightMap(mode, lo, hi, 2 * exaggeration)


@dataclass
class Terrain:
    positions: np.ndarray   # (M, 3) float32, finite cells only
    colors: np.ndarray      # (M, 3) float32 in [0, 1]
    heights: HeightMap
    half_y: float           # terrain spans y in [-half_y, half_y]
    level: np.ndarray       # (ny, nx) normalized height, NaN where not finite

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([-1.0, -self.half_y, 0.0]), np.array([1.0, self.half_y, self.heights.top]))

    @property
    def radius(self) -> float:
        lo, hi = self.bounds
        return float(np.linalg.norm(hi - lo) / 2)


def build_terrain(ls: Landscape, mode: str, exaggeration: float, cmap: str, shading: float,
                  stride: int = 1) -> Terrain:
    loss = np.asarray(ls.loss)[::stride, ::stride]
    ny, nx = loss.shape
    hm = height_map(np.asarray(ls.loss), mode, exaggeration)
    level = hm.level(loss)
    half_y = ny / nx
    x = np.linspace(-1.0, 1.0, nx)
    y = np.linspace(-half_y, half_y, ny)
    z = level * hm.top
    # slope shading: a light from the upper left, over the terrain's own normals
    zf = np.where(np.isfinite(z), z, np.nanmin(z) if np.isfinite(z).any() else 0.0)
    gy, gx = np.gradient(zf, y, x)
    n = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    light = np.array([-0.5, 0.45, 0.75])
    light /= np.linalg.norm(light)
    lambert = np.clip(n @ light, 0.0, 1.0)
    shade = (1.0 - shading) + shading * (0.35 + 0.95 * lambert)
    lut = colormap(cmap)
    idx = np.clip(np.nan_to_num(level, nan=0.0) * 255.0, 0, 255).astype(np.int32)
    rgb = lut[idx] * shade[..., None]
    ok = np.isfinite(level)
    xx, yy = np.meshgrid(x, y)
    pos = np.stack([xx[ok], yy[ok], z[ok]], axis=1).astype(np.float32)
    return Terrain(pos, np.clip(rgb[ok], 0, 1).astype(np.float32), hm, half_y, level)


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
    name: str
    points: np.ndarray      # (S, 3) float32: dense samples along the path, on the surface
    progress: np.ndarray    # (S,) float: snapshot index (fractional) of each sample
    steps: np.ndarray       # (T,) training step of each snapshot
    loss: np.ndarray        # (T,) true loss of each snapshot
    surface: np.ndarray     # (T,) loss on the plane under each snapshot

    def head(self, p: float) -> tuple[np.ndarray, int, float, float, float]:
        """Position, sample count, step, true loss and surface loss at fractional snapshot index p."""
        k = int(np.searchsorted(self.progress, p, side="right"))
        k = max(1, min(k, len(self.points)))
        i = int(np.clip(np.floor(p), 0, len(self.steps) - 1))
        j = min(i + 1, len(self.steps) - 1)
        f = p - i
        step = (1 - f) * self.steps[i] + f * self.steps[j]
        def geo(v):      # losses span decades: interpolate them geometrically
            return float(np.exp((1 - f) * np.log(max(v[i], 1e-12)) + f * np.log(max(v[j], 1e-12))))
        return self.points[k - 1], k, float(step), geo(self.loss), geo(self.surface)


def build_trail(path: Path2D, ls: Landscape, terrain: Terrain, samples: int = 6000,
                lift: float = 0.006) -> Trail:
    """Resample the path densely along its length and set it on the drawn surface."""
    alpha, beta = np.asarray(ls.alpha), np.asarray(ls.beta)
    ny, nx = terrain.level.shape
    xy = np.asarray(path.xy, dtype=np.float64)
    # plane coordinates -> fractional indices of the drawn grid -> world
    fx = (xy[:, 0] - alpha[0]) / (alpha[-1] - alpha[0]) * (nx - 1)
    fy = (xy[:, 1] - beta[0]) / (beta[-1] - beta[0]) * (ny - 1)
    seg = np.hypot(np.diff(fx), np.diff(fy))
    arc = np.r_[0.0, np.cumsum(seg)]
    total = arc[-1] if arc[-1] > 0 else 1.0
    # samples spaced evenly along the path, plus every snapshot itself
    s = np.union1d(np.linspace(0, total, samples), arc)
    idx = np.interp(s, arc, np.arange(len(arc))) if total > 0 else np.zeros_like(s)
    sx = np.interp(s, arc, fx)
    sy = np.interp(s, arc, fy)
    lv = _bilinear(terrain.level, sx, sy)
    wx = sx / (nx - 1) * 2 - 1
    wy = (sy / (ny - 1) * 2 - 1) * terrain.half_y
    wz = lv * terrain.heights.top + lift * terrain.heights.top + 0.002
    pts = np.stack([wx, wy, wz], axis=1).astype(np.float32)
    return Trail(path.name, pts, idx, np.asarray(path.step, np.float64), np.asarray(path.loss, np.float64),
                 np.asarray(path.surface_loss, np.float64))


def hex_rgba(color: str) -> tuple[float, float, float, float]:
    c = color.lstrip("#")
    vals = [int(c[i:i + 2], 16) / 255.0 for i in range(0, len(c), 2)]
    return (vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 1.0)
