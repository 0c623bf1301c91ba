"""Keeping the camera above the terrain.

Where a state would put the eye less than ``CLEARANCE`` above a smoothed,
conservative height field of the terrain, its elevation is raised just enough
(a smooth maximum, so the motion stays smooth).
"""
from __future__ import annotations

import math

import numpy as np

#: how far (landscape units) the eye is kept above the smoothed terrain
CLEARANCE = 0.12
#: softness (degrees) of the smooth maximum that lifts the elevation over the terrain
LIFT_SOFTNESS = 2.0


class Ground:
    """A conservative, smooth height field of the terrain: at every point at least as high as the
    terrain within a small neighbourhood, blurred so the camera glides over it rather than
    bumping; beyond the terrain's edge it falls to 0 over ``fade`` units.

    ``heights``: (ny, nx) world heights (NaN: no terrain) over x in [-1, 1], y in [-half_y, half_y]."""

    def __init__(self, heights: np.ndarray, half_y: float, clearance: float = CLEARANCE,
                 fade: float = 0.5, cells: int = 96):
        h = np.asarray(heights, np.float64)
        h = np.where(np.isfinite(h), h, 0.0)
        ny, nx = h.shape
        # block maximum down to about `cells` per side, then a 5x5 maximum and a 3x3 box blur twice
        # (the blur reaches 2 cells, the maximum 2: the result never dips below the terrain)
        by, bx = max(1, ny // cells), max(1, nx // cells)
        h = h[: ny // by * by, : nx // bx * bx].reshape(ny // by, by, nx // bx, bx).max(axis=(1, 3))
        h = _max_filter(h, 2)
        for _ in range(2):
            h = _box_blur(h)
        self.h = h
        self.half_y = float(half_y)
        self.clearance = float(clearance)
        self.fade = float(fade)

    def __call__(self, x, y) -> np.ndarray:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        ny, nx = self.h.shape
        fx = (np.clip(x, -1.0, 1.0) + 1.0) / 2.0 * (nx - 1)
        fy = (np.clip(y, -self.half_y, self.half_y) + self.half_y) / (2 * self.half_y) * (ny - 1)
        x0 = np.clip(np.floor(fx).astype(int), 0, max(nx - 2, 0))
        y0 = np.clip(np.floor(fy).astype(int), 0, max(ny - 2, 0))
        x1, y1 = np.minimum(x0 + 1, nx - 1), np.minimum(y0 + 1, ny - 1)
        tx, ty = fx - x0, fy - y0
        h = self.h
        z = ((1 - tx) * (1 - ty) * h[y0, x0] + tx * (1 - ty) * h[y0, x1]
             + (1 - tx) * ty * h[y1, x0] + tx * ty * h[y1, x1])
        out = np.hypot(np.maximum(np.abs(x) - 1.0, 0.0), np.maximum(np.abs(y) - self.half_y, 0.0))
        return z * np.clip(1.0 - out / self.fade, 0.0, 1.0) ** 2

    def lift(self, s: dict) -> float:
        """The state's elevation, raised (smoothly) where the eye would be within the clearance of
        the ground under it."""
        e = float(s["elevation"])
        tx, ty, tz = s["target"]
        d = float(s["distance"])
        az = math.radians(s["azimuth"])
        # raising the elevation moves the eye in towards the target, along the line below it: the
        # highest ground on that line (from above the target out to where the eye is now) is what
        # it must clear whatever elevation it ends at (a max over a moving segment: continuous)
        reach = d * math.cos(math.radians(e))
        f = np.linspace(0.02, 1.0, 33)
        h = float(self(tx + f * reach * math.sin(az), ty - f * reach * math.cos(az)).max()) + self.clearance
        need = math.degrees(math.asin(min(max((h - tz) / d, -1.0), 1.0)))
        k = LIFT_SOFTNESS
        z = (e - need) / k
        soft = need + k * (z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z)))
        return float(min(soft, 89.0))


def _max_filter(h: np.ndarray, r: int) -> np.ndarray:
    p = np.pad(h, r, mode="edge")
    out = h.copy()
    ny, nx = h.shape
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out = np.maximum(out, p[dy:dy + ny, dx:dx + nx])
    return out


def _box_blur(h: np.ndarray) -> np.ndarray:
    p = np.pad(h, 1, mode="edge")
    ny, nx = h.shape
    return sum(p[dy:dy + ny, dx:dx + nx] for dy in range(3) for dx in range(3)) / 9.0
