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


def ramp_progress(u: float, r: float, r_end: float | None = None, s0: float = 0.0, s1: float = 0.0) -> float:
    """Progress 0 -> 1 over u in [0, 1]: speed rises from ``s0`` over the first fraction r (a
    smoothstep in speed), holds, and falls to ``s1`` over the last ``r_end`` (default r); the speeds
    are in progress per unit u, 0 (the default) is at rest.  The cruising speed between is the one
    that makes the total 1; 0 < r, r_end and r + r_end <= 1."""
    u = min(max(float(u), 0.0), 1.0)
    r_in = min(max(float(r), 1e-6), 1.0)
    r_out = r_in if r_end is None else min(max(float(r_end), 1e-6), 1.0)
    c = (1.0 - r_in * s0 / 2.0 - r_out * s1 / 2.0) / (1.0 - r_in / 2.0 - r_out / 2.0)
    if u < r_in:
        x = u / r_in
        return r_in * (s0 * x + (c - s0) * smoothstep_area(x))
    if u > 1.0 - r_out:
        y = (1.0 - u) / r_out
        return 1.0 - r_out * (s1 * y + (c - s1) * smoothstep_area(y))
    return r_in * (s0 + c) / 2.0 + c * (u - r_in)


def appear(t: float, start: float, fade_s: float) -> float:
    """Opacity of something that appears at ``start`` and fades in over ``fade_s`` seconds
    (smoothstep): 0 before start, 1 from start + fade_s."""
    if fade_s <= 0:
        return 1.0 if t >= start else 0.0
    return smoothstep((t - start) / fade_s)


def smoothstep_area(x: float) -> float:
    """The integral of the smoothstep 3x^2 - 2x^3 from 0 to x: the distance covered while the
    speed follows a smoothstep from rest."""
    return x ** 3 - x ** 4 / 2.0
