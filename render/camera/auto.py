"""The camera of a scene that writes none: found from the landscape's shape.

A film with no ``render.camera`` should still read: the whole terrain at first, then down to where
training ended, the valley seen across rather than as a tilted sheet.  ``auto_camera`` says how the
side and the moves are picked.  Pure NumPy on the terrain's height field: the same landscape always
gets the same camera.
"""
from __future__ import annotations

import math

import numpy as np

from render.camera.projection import eye_position, framing, project_points
from studio.scene import CameraKey

AZIMUTH_STEP = 15.0
#: the elevations (degrees) of the wide opening view and of the closing one
HIGH, LOW = 40.0, 28.0
#: the turns (degrees) the camera may make over the film: the one that shows the low ground around the
#: end best is taken
TURNS = (-60.0, -40.0, -20.0, 20.0, 40.0, 60.0)
#: the part of the path whose visibility picks the side (its last samples: the descent)
TAIL = 0.6
#: the valley floor: the terrain's lowest share of points; a side that hides it all keeps SEEN_FLOOR
#: of its score for the path
FLOOR, SEEN_FLOOR = 0.03, 0.35
#: the field of view of every automatic keyframe
FOV = 35.0
#: the closing framing: the ground within this share of the terrain's width around the end
CLOSE = 0.25
#: of that ground, the lowest share is the basin the closing shot must show
BASIN = 0.3
#: the closing shot comes no nearer than this share of the opening's distance (nearer, a coarse grid
#: shows the gaps between its points, and the valley's shape is lost)
NEAREST = 0.6


def auto_camera(heights: np.ndarray, half_y: float, path: np.ndarray | None, duration: float,
                aspect: float, close: float = CLOSE) -> list[CameraKey]:
    """Keyframes for a film of ``duration`` seconds over the terrain ``heights`` ((ny, nx) world
    heights over x in [-1, 1], y in [-half_y, half_y]; NaN where there is none) with the training
    path's points ``path`` ((S, 3) world, or None).  ``close``: the share of the terrain's width
    around the end that the closing shot frames (a comparison's panels, each with its own path
    under one camera, take a wider one).

    * **the side to look from**: every azimuth (in ``AZIMUTH_STEP``) is framed at a high angle and
      scored by how much of the path's descent (its last ``TAIL`` of samples and its end) is in
      sight, not hidden behind higher ground (``visible``), times how long the path is on the
      screen (a descent seen from its side reads; seen end-on it is a dot), times how much of the
      terrain's valley floor (its lowest ``FLOOR`` share) is in sight: a view over a rim that hides
      the lowest ground, where training was heading, loses the landscape's story;
    * **the moves**: the wide framing at ``HIGH`` degrees; halfway, lower and nearer, the target
      moving towards the path's end; at the end, ``LOW`` degrees (raised where a rim would hide the
      end), the end and the ground around it filling most of the frame, the camera turning one of
      ``TURNS`` degrees on the way round the side that keeps the end in sight.

    Without a path (one trained model) the lowest ground of the terrain stands in for its end."""
    field = Field(heights, half_y)
    if path is None or len(path) < 2:
        path = field.lowest()[None, :]
    end = np.asarray(path[-1], np.float64)
    tail = path[int(len(path) * (1 - TAIL)):] if len(path) > 1 else path
    sample = field.sample()
    frame = np.concatenate([sample, path])
    floor = sample[sample[:, 2] <= np.quantile(sample[:, 2], FLOOR)]
    scored = [(_score(field, framing(frame, aspect, az, HIGH, FOV), tail, floor, aspect), az)
              for az in np.arange(0.0, 360.0, AZIMUTH_STEP)]
    azimuth = max(scored)[1]
    wide = framing(frame, aspect, azimuth, HIGH, FOV)
    last = path[int(len(path) * 0.7):]
    turn = max(TURNS, key=lambda s: (_close(field, end, last, azimuth + s, aspect, close)[1], -abs(s)))
    close, _ = _close(field, end, last, azimuth + turn, aspect, close)
    close["distance"] = max(close["distance"], NEAREST * wide["distance"])
    mid_target = (np.asarray(wide["target"]) + np.asarray(close["target"])) / 2
    mid = dict(target=[float(v) for v in mid_target], azimuth=azimuth + turn / 2,
               elevation=(HIGH + close["elevation"]) / 2, distance=(wide["distance"] + close["distance"]) / 2)
    return [CameraKey(t=0.0, fov=FOV, roll=0.0, **{k: wide[k] for k in ("target", "azimuth", "elevation", "distance")}),
            CameraKey(t=round(duration * 0.5, 3), **mid),
            CameraKey(t=float(duration), ease="out", **{k: close[k] for k in ("target", "azimuth", "elevation",
                                                                                "distance")})]


def _close(field: "Field", end: np.ndarray, last: np.ndarray, azimuth: float, aspect: float,
           share: float) -> tuple[dict, float]:
    """The closing state from ``azimuth``: the low ground around the end (its lowest BASIN share
    within CLOSE of the terrain's width), the path's last stretch ``last`` and its end framed at
    LOW degrees, raised in steps of 4 degrees (to 56) until the end, most of that ground and most of
    the last stretch are in sight -> (state, how well: the end in sight, plus the shares of the low
    ground and of the last stretch in sight).
    ``share``: of the terrain's width, the ground around the end that counts (CLOSE for a film)."""
    near = field.around(end, share)
    low = near[near[:, 2] <= np.quantile(near[:, 2], BASIN)]
    best, score = None, -1.0
    for elevation in np.arange(LOW, 56.1, 4.0):
        state = framing(np.concatenate([low, last, end[None, :]]), aspect, azimuth, float(elevation), FOV,
                        margin=0.08)
        end_seen = bool(visible(field, state, end[None, :])[0])
        s = float(end_seen) + float(visible(field, state, low).mean()) + float(visible(field, state, last).mean())
        if s > score:
            best, score = state, s
        if end_seen and s >= 2.7:
            break
    return best, score


def _score(field: "Field", state: dict, tail: np.ndarray, floor: np.ndarray, aspect: float) -> float:
    """How well a state shows the descent and where it leads: the share of the path's tail in sight
    (its end counts a third), times its length on screen over the frame's diagonal (at least 0.2),
    times the share of the valley floor in sight (a side that sees none of it keeps SEEN_FLOOR)."""
    seen = visible(field, state, tail)
    share = 0.67 * float(seen.mean()) + 0.33 * float(seen[-1])
    px = project_points(tail, state, 1000 * aspect, 1000, 3.0)[:, :2]
    length = float(np.linalg.norm(np.diff(px, axis=0), axis=1).sum()) / math.hypot(1000 * aspect, 1000)
    ground = SEEN_FLOOR + (1 - SEEN_FLOOR) * float(visible(field, state, floor).mean()) if len(floor) else 1.0
    return share ** 2 * (0.2 + min(length, 1.0)) * ground


def visible(field: "Field", state: dict, points: np.ndarray, steps: int = 64) -> np.ndarray:
    """Whether each point is in sight from the state's eye: the straight line to it stays above the
    terrain up to the last 2% of the way (the point itself lies on the surface)."""
    eye = np.asarray(eye_position(state), np.float64)
    t = np.linspace(0.0, 0.98, steps)[:, None, None]
    ray = eye + t * (np.asarray(points, np.float64)[None] - eye)                  # (steps, N, 3)
    ground = field.at(ray[..., 0], ray[..., 1])
    return np.all((ray[..., 2] >= ground - 0.003) | ~np.isfinite(ground), axis=0)


class Field:
    """The terrain's height field, looked up at world (x, y)."""

    def __init__(self, heights: np.ndarray, half_y: float):
        self.h = np.asarray(heights, np.float64)
        self.half_y = float(half_y)
        ny, nx = self.h.shape
        self.x = np.linspace(-1.0, 1.0, nx)
        self.y = np.linspace(-self.half_y, self.half_y, ny)

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Nearest-cell heights (NaN off the terrain)."""
        ny, nx = self.h.shape
        i = np.rint((np.asarray(x) + 1.0) / 2.0 * (nx - 1)).astype(int)
        j = np.rint((np.asarray(y) + self.half_y) / (2 * self.half_y) * (ny - 1)).astype(int)
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        out = np.full(np.shape(i), np.nan)
        out[inside] = self.h[j[inside], i[inside]]
        return out

    def sample(self, points: int = 3000) -> np.ndarray:
        ny, nx = self.h.shape
        s = max(1, int(math.sqrt(ny * nx / points)))
        xx, yy = np.meshgrid(self.x[::s], self.y[::s])
        z = self.h[::s, ::s]
        ok = np.isfinite(z)
        return np.stack([xx[ok], yy[ok], z[ok]], axis=1)

    def lowest(self) -> np.ndarray:
        j, i = np.unravel_index(np.nanargmin(self.h), self.h.shape)
        return np.array([self.x[i], self.y[j], self.h[j, i]])

    def around(self, p: np.ndarray, share: float) -> np.ndarray:
        """The terrain's points within ``share`` of its width (2) of p in the plane."""
        pts = self.sample(6000)
        near = pts[np.hypot(pts[:, 0] - p[0], pts[:, 1] - p[1]) <= 2 * share]
        return near if len(near) >= 4 else pts
