"""What each shot does between its ends.

A shot spans ``[from, to]`` (``start``, ``end``) and moves some channels there
(``spec.channels()``: the schema says which).  On the timeline it is a pair of
knots on each of those channels, the value carried at ``from`` and the shot's
end value at ``to``, with the shot's motion in between; a shot starts and ends
at rest, so the motion stays C1 where shots begin and end, except where it hands
its motion on to an adjacent shot (``render.camera.timeline``: hand-offs).

    orbit    azimuth turned by ``degrees`` (or ``turns``; positive is counterclockwise
             seen from above) around the current target
    dolly    distance to ``distance``, at an even rate in scale (geometric)
    zoom     fov to ``fov``, at an even rate in apparent size (geometric in tan(fov/2))
    crane    elevation to ``elevation``
    follow   the target rides the head of a path (a :class:`Track`), ``lag`` seconds behind it
             (a critically damped smoothing: a pure function of t, no state carried from frame
             to frame) and never more than ``LEASH`` x distance from it; optionally azimuth
             (absolute, or ``heading``: relative to the head's direction of travel), elevation
             and distance.  The follow blends in from the carried values over its first
             ``blend`` seconds (smootherstep) and slows to a stop over its last ``blend``
             seconds (its clock eases to a halt), so it neither jumps nor jerks at its ends.

Orbit, dolly, zoom and crane move with a speed ramp: up to speed over ``ramp``
seconds and back to rest over the last ``ramp`` (a smoothstep in speed; without
a ramp, half the shot: one smooth ease in and out).  At a hand-off a ramp runs
from or to the hand-off's velocity instead of rest (``ramp_progress``'s s0, s1),
and may reach past ``from`` or ``to`` (``t0``, ``t1``).

Every shot's ``value(channel, t, path)`` is the channel's value at time t in
``[start, end]``; ``path`` is the timeline the shot is on (:class:`Channels`: a
:class:`~render.camera.timeline.CameraPath`), which a follow shot reads for the
distance its leash scales with.
"""
from __future__ import annotations

import math
from typing import Callable, Protocol

import numpy as np

from render.easing import ramp_progress, smootherstep, smoothstep_area
from studio.scene import CraneShot, DollyShot, FollowShot, OrbitShot, ZoomShot

#: a follow shot's target stays within this fraction of the camera distance of the path's head
LEASH = 0.1
#: a heading is the direction of travel over the last stretch of path before the head: as long as
#: the follow shot's distance (the camera sits about that far back along the path), or this
#: (landscape units) where the shot leaves the distance to the timeline
HEADING_WINDOW = 0.5


def wrap_near(angle: float, ref: float) -> float:
    """angle plus a whole number of turns, within half a turn of ref (the short way round)."""
    return ref + (angle - ref + 180.0) % 360.0 - 180.0


# ----------------------------------------------------------------------------- shots

class Channels(Protocol):
    """What a shot reads of the timeline it is on (render.camera.timeline's CameraPath): a
    channel's value at a time."""

    def group(self, c: str, t: float) -> np.ndarray: ...


class Shot:
    """A shot of the timeline: the schema's validated ``spec`` and the values it starts from.

    ``t0``, ``t1``: where its motion really starts and ends on the timeline (``start`` and ``end``
    unless a hand-off moves them, ``render.camera.timeline``); ``v_in``, ``v_out``: the channel's
    velocity (units per second) there, 0 at rest; ``r_in``, ``r_out``: the seconds of each ramp."""

    def __init__(self, spec):
        self.spec = spec
        self.start = float(spec.start)
        self.end = float(spec.end)
        self.t0, self.t1 = self.start, self.end
        self.v_in = self.v_out = 0.0
        self.channels: tuple[str, ...] = spec.channels()
        self.v0: dict[str, np.ndarray] = {}
        self.next_same: "Shot | None" = None        # the shot that takes this one's channel on at its end
        self.hold = getattr(spec, "ease", "flow") == "hold"

    @property
    def ramp_s(self) -> float:
        """Seconds of the shot's ramp (a follow shot: its blend)."""
        return (self.end - self.start) / 2.0

    def bind(self, channel: str, v0: np.ndarray, path: Channels) -> None:
        """The value the shot starts from on this channel (carried from the entries before it)."""
        self.v0[channel] = np.array(v0, dtype=np.float64)

    def value(self, channel: str, t: float, path: Channels) -> np.ndarray:
        raise NotImplementedError


class _Eased(Shot):
    """One channel from its carried value to the shot's, with a speed ramp at each end; where it
    hands its motion on to another shot (or takes it from one) the ramp there ends (starts) at the
    velocity of the hand-off instead of at rest (``v_out``, ``v_in``)."""

    def __init__(self, spec, tracks: dict):
        super().__init__(spec)
        ramp = spec.ramp
        self._ramp = (self.end - self.start) / 2.0 if ramp is None else float(ramp)
        self.r_in = self.r_out = self._ramp

    @property
    def ramp_s(self) -> float:
        return self._ramp

    def rate(self, v0: np.ndarray, e: float) -> float:
        """d(channel)/d(progress) at progress e from v0."""
        h = 1e-6
        a, b = (e - h, e) if e >= h else (e, e + h)
        return float((self.move(v0, b) - self.move(v0, a))[0]) / h

    def cruise_velocity(self, v0: np.ndarray, at_end: bool) -> float:
        """The channel's velocity at one end if the shot ran there at its cruising speed, not easing."""
        d = self.t1 - self.t0
        other = (self.r_in if at_end else self.r_out) / d
        return self.rate(v0, 1.0 if at_end else 0.0) / (1.0 - other / 2.0) / d

    def bind(self, channel: str, v0: np.ndarray, path: Channels) -> None:
        super().bind(channel, v0, path)
        b = self.next_same
        if b is None:
            return
        # the next shot on this channel starts where this one ends: meet at one velocity (the
        # slower of their cruising velocities, or at rest where they go opposite ways)
        va = self.cruise_velocity(self.v0[channel], at_end=True)
        vb = b.cruise_velocity(self.move(self.v0[channel], 1.0), at_end=False)
        v = math.copysign(min(abs(va), abs(vb)), va) if va * vb > 0 else 0.0
        self.v_out = b.v_in = v

    def progress(self, t: float, channel: str) -> float:
        d = self.t1 - self.t0
        v0 = self.v0[channel]
        s0 = self.v_in * d / self.rate(v0, 0.0) if self.v_in else 0.0
        s1 = self.v_out * d / self.rate(v0, 1.0) if self.v_out else 0.0
        return ramp_progress((t - self.t0) / d, self.r_in / d, self.r_out / d, s0, s1)

    def value(self, channel: str, t: float, path: Channels) -> np.ndarray:
        return self.move(self.v0[channel], self.progress(t, channel))

    def move(self, v0: np.ndarray, e: float) -> np.ndarray:
        """The channel at progress e in [0, 1] from v0."""
        raise NotImplementedError


class Orbit(_Eased):
    spec: OrbitShot

    def move(self, v0, e):
        s = self.spec
        amount = float(s.degrees) if s.degrees is not None else 360.0 * float(s.turns)
        return v0 + amount * e


class Dolly(_Eased):
    spec: DollyShot

    def move(self, v0, e):
        return v0 * (float(self.spec.distance) / v0) ** e


class Zoom(_Eased):
    spec: ZoomShot

    def move(self, v0, e):
        a = math.tan(math.radians(float(v0[0])) / 2.0)
        b = math.tan(math.radians(float(self.spec.fov)) / 2.0)
        return np.array([2.0 * math.degrees(math.atan(a * (b / a) ** e))])


class Crane(_Eased):
    spec: CraneShot

    def move(self, v0, e):
        return v0 + (float(self.spec.elevation) - v0) * e


# ----------------------------------------------------------------------------- what a follow shot rides

class Track:
    """A path's head as a function of time: ``points`` (S, 3) along the path (as drawn), their
    ``progress`` (S,) (increasing), and ``timing`` mapping an array of times to the head's
    progress.  The head moves continuously along the polyline (interpolated between samples)."""

    def __init__(self, points: np.ndarray, progress: np.ndarray, timing: Callable[[np.ndarray], np.ndarray]):
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        if len(pts) == 0:
            raise ValueError("a track needs at least one point")
        self.points = pts
        self.progress = np.asarray(progress, np.float64).reshape(-1)
        if len(self.progress) != len(pts):
            raise ValueError("a track needs one progress value per point")
        self.timing = timing
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1) if len(pts) > 1 else np.zeros(0)
        self.arc = np.r_[0.0, np.cumsum(seg)]
        self.length = float(self.arc[-1])
        hseg = np.hypot(*np.diff(pts[:, :2], axis=0).T) if len(pts) > 1 else np.zeros(0)
        self.flat_length = float(hseg.sum())

    def s_at(self, t) -> np.ndarray:
        """Arc length of the head at time(s) t."""
        p = np.asarray(self.timing(np.asarray(t, np.float64)), np.float64)
        if len(self.points) == 1:
            return np.zeros_like(p)
        return np.interp(p, self.progress, self.arc)

    def at(self, s) -> np.ndarray:
        """Position(s) at arc length(s) s: (..., 3)."""
        s = np.asarray(s, np.float64)
        if len(self.points) == 1:
            return np.broadcast_to(self.points[0], s.shape + (3,)).copy()
        return np.stack([np.interp(s, self.arc, self.points[:, k]) for k in range(3)], axis=-1)

    def head(self, t) -> np.ndarray:
        return self.at(self.s_at(t))

    def chord(self, s, window: float = HEADING_WINDOW) -> np.ndarray:
        """The horizontal direction of travel at arc length(s) s: the chord over the last ``window``
        of path before s (the window shifted to fit at the start), (..., 2)."""
        w = min(window, self.length)
        b = np.clip(np.asarray(s, np.float64), w, self.length)
        return (self.at(b) - self.at(b - w))[..., :2]


def _lag_kernel(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Delays (in units of the lag) and weights of a critically damped smoothing whose mean delay is
    the lag: the impulse response tau / T^2 * exp(-tau / T), T = lag / 2, on a midpoint rule to 10 T."""
    tau = (np.arange(n) + 0.5) * (5.0 / n)           # 10 T = 5 lags
    w = tau * np.exp(-2.0 * tau)
    return tau, w / w.sum()


_KERNEL = _lag_kernel()


def _saturate(x: float, cap: float) -> float:
    """x itself up to 80% of cap, then bending smoothly (C2) towards cap, never reaching it."""
    a = 0.8 * cap
    return x if x <= a else a + (cap - a) * math.tanh((x - a) / (cap - a))


def _freeze(t: float, end: float, b: float) -> float:
    """A clock that runs with t until end - b, then eases to a halt at end (where it reads end - b/2):
    its rate falls from 1 to 0 as a smoothstep, so what is driven by it comes to rest at end."""
    if t <= end - b:
        return t
    if t >= end:
        return end - b / 2.0
    u = (t - (end - b)) / b
    return end - b + b * (u - smoothstep_area(u))


class Follow(Shot):
    """The target rides ``tracks[spec.path]``; the azimuth, elevation and distance the spec gives
    are reached over the blend."""
    spec: FollowShot

    def __init__(self, spec: FollowShot, tracks: dict):
        super().__init__(spec)
        self.track: Track = tracks[spec.path]
        self.path_name = spec.path
        self.blend = float(spec.blend)
        self.lag = float(spec.lag)
        self.tau, self.weights = _KERNEL
        self.azimuth, self.heading = spec.azimuth, spec.heading
        self.elevation, self.distance = spec.elevation, spec.distance
        self._table: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def ramp_s(self) -> float:
        return self.blend

    def clock(self, t: float) -> float:
        """The shot's own clock: real time, easing to a halt over the last ``blend`` seconds."""
        return _freeze(t, self.end, self.blend)

    def weight(self, t: float) -> float:
        return float(smootherstep((t - self.start) / self.blend))

    def smoothed_head(self, t, lag: float | None = None) -> np.ndarray:
        """The head's position seen through a lag (default: the shot's): a critically damped
        weighted mean of where it was over the last few lags."""
        lag = self.lag if lag is None else lag
        t = np.asarray(t, np.float64)
        if lag <= 0:
            return self.track.head(t)
        pts = self.track.head(t[..., None] - lag * self.tau)     # (..., n, 3)
        return np.einsum("...nk,n->...k", pts, self.weights)

    def raw_heading(self, t) -> np.ndarray:
        """Azimuth (degrees, in (-180, 180]) that looks along the head's smoothed direction of travel,
        plus the shot's heading offset."""
        t = np.asarray(t, np.float64)
        window = float(self.distance) if self.distance is not None else HEADING_WINDOW
        d = self.track.chord(self.track.s_at(t[..., None] - self.lag * self.tau), window)   # (..., n, 2)
        d = np.einsum("...nk,n->...k", d, self.weights)
        return np.degrees(np.arctan2(-d[..., 0], d[..., 1])) + float(self.heading)

    def bind(self, channel: str, v0: np.ndarray, path: Channels) -> None:
        super().bind(channel, v0, path)
        if channel == "azimuth" and self.heading is not None:
            if self.track.flat_length < 1e-9:        # a path that does not move has no heading
                self._table = None
                return
            # an unwrapped table of the heading over the shot: it picks the turn each frame's angle
            # is on, so the azimuth is continuous (and starts within half a turn of the carried one)
            n = max(2, int(math.ceil((self.end - self.start) * 240.0)) + 1)
            ts = np.linspace(self.start, self.end, n)
            raw = self.raw_heading(ts)
            un = np.degrees(np.unwrap(np.radians(raw)))
            un += wrap_near(un[0], float(v0[0])) - un[0]
            self._table = (ts, un)

    def goal_azimuth(self, tc: float) -> float:
        v0 = float(self.v0["azimuth"][0])
        if self.heading is None:
            return wrap_near(float(self.azimuth), v0)
        if self._table is None:
            return v0
        raw = float(self.raw_heading(tc))
        ref = float(np.interp(tc, *self._table))
        return raw + 360.0 * round((ref - raw) / 360.0)

    def goal_target(self, tc: float, path: Channels) -> np.ndarray:
        """The smoothed head, on a leash: within LEASH x distance of the head itself.

        A lag of L seconds leaves the target about speed x L behind the head, so where the head
        moves fast the lag shortens to keep that within 70% of the leash; a smooth saturation of
        the remaining offset makes the leash exact whatever the path does.  The speed is read from
        the smoothed motion (no jitter) over a window reaching a lag ahead as well as behind: the
        whole path is known, so the lag shortens before the head speeds up, and the target does
        not first fall behind and then snap onto the leash."""
        head = self.track.head(tc)
        leash = LEASH * float(path.group("distance", tc)[0])
        if self.lag <= 0 or leash <= 0:
            return head
        s = self.smoothed_head(tc + self.lag * np.arange(-1.0, 3.0))      # at tc - L, tc, tc + L, tc + 2L
        behind = float(np.sqrt(np.mean(np.sum(np.diff(s, axis=0) ** 2, axis=1))))
        lag = self.lag / math.sqrt(1.0 + (behind / (0.7 * leash)) ** 2)
        off = self.smoothed_head(tc, lag) - head
        n = float(np.linalg.norm(off))
        if n > 0:
            off = off * (_saturate(n, leash) / n)
        return head + off

    def value(self, channel: str, t: float, path: Channels) -> np.ndarray:
        w = self.weight(t)
        tc = self.clock(t)
        v0 = self.v0[channel]
        if channel == "target":
            return (1.0 - w) * v0 + w * self.goal_target(tc, path)
        if channel == "azimuth":
            return v0 + w * (self.goal_azimuth(tc) - v0)
        if channel == "elevation":
            return v0 + w * (float(self.elevation) - v0)
        return v0 * (float(self.distance) / v0) ** w       # distance, at an even rate in scale


#: the motion of each shot the schema knows (studio.scene.SHOTS), by its ``shot`` name
MOVES: dict[str, type[Shot]] = {"orbit": Orbit, "dolly": Dolly, "zoom": Zoom, "crane": Crane, "follow": Follow}


def make_shot(spec, tracks: dict[str, Track]) -> Shot:
    """The shot of a validated schema entry; ``tracks`` holds the path every follow shot names."""
    return MOVES[spec.shot](spec, tracks)
