"""The camera: a plain state, keyframes interpolated smoothly, and the matrices.

A camera state is a dict:

    target     [x, y, z]   the point looked at (landscape units: the terrain spans x in [-1, 1])
    azimuth    degrees     around the vertical axis; 0 looks along +y, 90 along -x
    elevation  degrees     above the horizon
    distance               from the target
    fov        degrees     vertical field of view
    roll       degrees     about the viewing axis

Keyframes give some or all of these at times in seconds; a value a keyframe
leaves out is carried from the keyframe before it (the first takes the
automatic framing).  Each channel is interpolated by a cubic Hermite spline
through the keyframes (C1: position and velocity are continuous at every
keyframe) whose tangents are Catmull-Rom's, limited so the camera never
overshoots a keyframe value (Fritsch-Carlson).  A keyframe's ``ease`` shapes
the segment that ends at it:

    linear   no easing: the spline flows through the keyframe
    in       the segment starts from rest
    out      the segment comes to rest at this keyframe
    in_out   both (the camera stops at each end of the segment)
    hold     a cut: the camera holds the previous state and jumps at this time

The film starts and ends at rest.  Azimuth and roll take the short way round.
Time is frame / fps; nothing here reads a clock.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

CHANNELS = ("tx", "ty", "tz", "azimuth", "elevation", "distance", "fov", "roll")
ANGULAR = ("azimuth", "roll")


def state_to_vec(s: dict) -> np.ndarray:
    t = s["target"]
    return np.array([t[0], t[1], t[2], s["azimuth"], s["elevation"], s["distance"], s["fov"],
                     s.get("roll", 0.0)], dtype=np.float64)


def vec_to_state(v: np.ndarray) -> dict:
    return {"target": [float(v[0]), float(v[1]), float(v[2])], "azimuth": float(v[3]),
            "elevation": float(v[4]), "distance": float(v[5]), "fov": float(v[6]), "roll": float(v[7])}


class CameraPath:
    """Keyframed camera; ``state(t)`` gives the camera state at time t (seconds)."""

    def __init__(self, keys: Sequence[dict], default: dict):
        if not keys:
            keys = [dict(default, t=0.0)]
        self.times = np.array([float(k["t"]) for k in keys])
        vals, cur = [], dict(default)
        for k in keys:
            cur = dict(cur)
            for f in ("target", "azimuth", "elevation", "distance", "fov", "roll"):
                if k.get(f) is not None:
                    cur[f] = list(k[f]) if f == "target" else float(k[f])
            vals.append(state_to_vec(cur))
        v = np.array(vals)
        # angles the short way round: unwrap each step into (-180, 180]
        for name in ANGULAR:
            c = CHANNELS.index(name)
            for i in range(1, len(v)):
                d = (v[i, c] - v[i - 1, c] + 180.0) % 360.0 - 180.0
                v[i, c] = v[i - 1, c] + d
        self.values = v
        self.eases = [k.get("ease", "linear") for k in keys]
        self.tangents = self._tangents()

    def _tangents(self) -> np.ndarray:
        t, p = self.times, self.values
        n = len(t)
        m = np.zeros_like(p)
        for i in range(1, n - 1):
            m[i] = (p[i + 1] - p[i - 1]) / (t[i + 1] - t[i - 1])
            d0 = (p[i] - p[i - 1]) / (t[i] - t[i - 1])
            d1 = (p[i + 1] - p[i]) / (t[i + 1] - t[i])
            # no overshoot: flat at a local extremum, and Fritsch-Carlson limiting elsewhere
            flat = d0 * d1 <= 0
            m[i, flat] = 0.0
            lim = 3.0 * np.minimum(np.abs(d0), np.abs(d1))
            m[i] = np.clip(m[i], -lim, lim)
        for i in range(n):
            incoming = self.eases[i] if i > 0 else None
            outgoing = self.eases[i + 1] if i + 1 < n else None
            if incoming in ("out", "in_out", "hold") or outgoing in ("in", "in_out", "hold"):
                m[i] = 0.0
        # start and end at rest
        m[0] = 0.0
        m[-1] = 0.0
        return m

    def vec(self, t: float) -> np.ndarray:
        ts, p, m = self.times, self.values, self.tangents
        if t <= ts[0] or len(ts) == 1:
            return p[0].copy()
        if t >= ts[-1]:
            return p[-1].copy()
        i = int(np.searchsorted(ts, t, side="right")) - 1
        if self.eases[i + 1] == "hold":
            return p[i].copy()
        h = ts[i + 1] - ts[i]
        u = (t - ts[i]) / h
        h00 = 2 * u**3 - 3 * u**2 + 1
        h10 = u**3 - 2 * u**2 + u
        h01 = -2 * u**3 + 3 * u**2
        h11 = u**3 - u**2
        return h00 * p[i] + h10 * h * m[i] + h01 * p[i + 1] + h11 * h * m[i + 1]

    def state(self, t: float) -> dict:
        s = vec_to_state(self.vec(t))
        s["elevation"] = float(np.clip(s["elevation"], -89.0, 89.0))
        s["distance"] = max(s["distance"], 1e-3)
        return s


# ----------------------------------------------------------------------------- matrices

def eye_position(s: dict) -> np.ndarray:
    az, el = math.radians(s["azimuth"]), math.radians(s["elevation"])
    off = np.array([math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)])
    return np.asarray(s["target"], dtype=np.float64) + s["distance"] * off


def view_matrix(s: dict) -> np.ndarray:
    """World -> camera (column vectors, camera looks down -z)."""
    eye = eye_position(s)
    f = np.asarray(s["target"], dtype=np.float64) - eye
    f /= np.linalg.norm(f)
    up = np.array([0.0, 0.0, 1.0])
    r = np.cross(f, up)
    if np.linalg.norm(r) < 1e-9:
        r = np.array([1.0, 0.0, 0.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    roll = math.radians(s.get("roll", 0.0))
    if roll:
        c, sn = math.cos(roll), math.sin(roll)
        r, u = c * r + sn * u, -sn * r + c * u
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = r, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def perspective(fov_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fov_deg) / 2)
    m = np.zeros((4, 4))
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def clip_planes(s: dict, radius: float) -> tuple[float, float]:
    """Near and far planes that hold a scene of the given radius around the origin."""
    eye = eye_position(s)
    far = np.linalg.norm(eye) + radius * 1.5
    near = max(far * 1e-4, min(s["distance"] * 0.05, 0.05))
    return near, far


def framing(points: np.ndarray, aspect: float, azimuth: float = 35.0,
            elevation: float = 32.0, fov: float = 35.0, margin: float = 0.06) -> dict:
    """A state that shows all ``points`` (N, 3) from the given angles, filling the frame but for a margin.

    Looks at the centre of their bounding box from the nearest distance at which every point
    projects inside the frame with ``margin`` (a fraction of width and height) to spare.
    Pass the eight corners of a box to frame the box."""
    corners = np.asarray(points, float)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    c = (lo + hi) / 2
    r = float(np.linalg.norm(hi - lo) / 2)
    state = {"target": [float(c[0]), float(c[1]), float(c[2])], "azimuth": azimuth, "elevation": elevation,
             "distance": 1.0, "fov": fov, "roll": 0.0}
    w, h = 1000.0 * aspect, 1000.0

    def fits(d: float) -> bool:
        px = project_points(corners, dict(state, distance=d), w, h, r)
        return bool((px[:, 2] > 0).all() and (px[:, 0] >= margin * w).all() and (px[:, 0] <= (1 - margin) * w).all()
                    and (px[:, 1] >= margin * h).all() and (px[:, 1] <= (1 - margin) * h).all())

    half = math.radians(fov) / 2
    far = r / math.sin(min(half, math.atan(math.tan(half) * aspect))) * 1.5   # the bounding sphere, with room
    near = r * 1.01
    for _ in range(40):
        mid = (near + far) / 2
        near, far = (near, mid) if fits(mid) else (mid, far)
    state["distance"] = far
    return state


def project_points(pts: np.ndarray, s: dict, width: int, height: int, radius: float) -> np.ndarray:
    """World points (N, 3) -> pixel coordinates (N, 2) and depth, for tests and framing checks."""
    near, far = clip_planes(s, radius)
    mvp = perspective(s["fov"], width / height, near, far) @ view_matrix(s)
    h = np.c_[pts, np.ones(len(pts))] @ mvp.T
    ndc = h[:, :3] / h[:, 3:4]
    px = (ndc[:, 0] + 1) / 2 * width
    py = (1 - ndc[:, 1]) / 2 * height
    return np.c_[px, py, h[:, 3]]
