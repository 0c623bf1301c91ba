"""From a camera state to the screen: the eye, the view and projection matrices, the clip planes,
and the framing that fits a box into the frame.

Matrices act on column vectors; the camera looks down its -z axis; the world's z is up.
"""
from __future__ import annotations

import math

import numpy as np


def eye_position(s: dict) -> np.ndarray:
    """Where the camera is: ``distance`` from the target, at its azimuth and elevation."""
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
