"""Easing curves: how things start and stop moving.

One home for the curves the render stage shares: the camera's shots
(``render.camera``), a trail's growth along its path and the film's loop
dissolve (``render.film``), a comparison's crossfade (``render.compare``) and
the overlays' fades (``render.overlay``).  Each maps progress u in [0, 1]
(clamped) to [0, 1]; plain floats and NumPy arrays alike.
"""
from __future__ import annotations

import numpy as np


def smoothstep(u: float) -> float:
    """0 to 1 at rest at both ends (zero first derivative): 3u^2 - 2u^3."""
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def smootherstep(u):
    """0 to 1 with zero first and second derivative at both ends (C2): 6u^5 - 15u^4 + 10u^3."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (u * (6.0 * u - 15.0) + 10.0)


def ramp_progress(u: float, r: float) -> float:
    """Progress 0 -> 1 over u in [0, 1]: speed rises from rest over the first fraction r (a
    smoothstep in speed), holds, and falls back to rest over the last r; 0 < r <= 0.5."""
    u = min(max(float(u), 0.0), 1.0)
    r = min(max(float(r), 1e-6), 0.5)
    v = 1.0 / (1.0 - r)                     # the cruising speed that makes the total 1
    if u < r:
        return v * r * smoothstep_area(u / r)
    if u > 1.0 - r:
        return 1.0 - v * r * smoothstep_area((1.0 - u) / r)
    return v * (r / 2.0 + u - r)


def smoothstep_area(x: float) -> float:
    """The integral of the smoothstep 3x^2 - 2x^3 from 0 to x: the distance covered while the
    speed follows a smoothstep from rest."""
    return x ** 3 - x ** 4 / 2.0
