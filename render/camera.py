"""The camera: a plain state, keyframes and shots on one timeline, and the matrices.

A camera state is a dict:

    target     [x, y, z]   the point looked at (landscape units: the terrain spans x in [-1, 1])
    azimuth    degrees     around the vertical axis; 0 looks along +y, 90 along -x
    elevation  degrees     above the horizon
    distance               from the target
    fov        degrees     vertical field of view
    roll       degrees     about the viewing axis

The timeline is a list of entries (the scene's ``render.camera``), each a
keyframe or a shot.

**Keyframes** give some or all of these values at a time ``t`` in seconds; a
value a keyframe leaves out is carried from the entry before it (the first
takes the automatic framing).  Each value (a *channel*: the target as one
3-vector, azimuth, elevation, distance, fov, roll) has its own knots and is
interpolated by a cubic Hermite spline through them (C1: position and velocity
are continuous at every knot) whose tangents are Catmull-Rom's, limited so the
camera never overshoots a knot value (Fritsch-Carlson).  A keyframe's ``ease``
shapes the spline segment that ends at it:

    linear   no easing: the spline flows through the keyframe
    in       the segment starts from rest
    out      the segment comes to rest at this keyframe
    in_out   both (the camera stops at each end of the segment)
    hold     a cut: the camera holds the previous state and jumps at this time

Azimuth and roll take the short way round between keyframes.

**Shots** span ``[from, to]`` and move some channels there; they are
shorthand for a pair of knots on those channels (the value carried at
``from``, and the shot's end value at ``to``) with the shot's motion in
between.  Every shot starts and ends at rest, and the spline comes to rest at
a shot's ends too, so the motion stays C1 where shots begin and end.  The end
value is carried on like a keyframe's.

    orbit    azimuth turned by ``degrees`` (any amount; positive is
             counterclockwise seen from above) around the current target
    dolly    distance to ``distance``, at an even rate in scale (geometric)
    zoom     fov to ``fov``, at an even rate in apparent size (geometric in tan(fov/2))
    crane    elevation to ``elevation``
    follow   the target rides the head of a path (a :class:`Track`), ``lag``
             seconds behind it (a critically damped smoothing: a pure function
             of t, no state carried from frame to frame) and never more than
             ``LEASH`` x distance from it; optionally azimuth (absolute, or
             ``heading``: relative to the head's direction of travel),
             elevation and distance.  The follow blends in from the carried
             values over its first ``blend`` seconds (smootherstep) and slows
             to a stop over its last ``blend`` seconds (its clock eases to a
             halt), so it neither jumps nor jerks where it starts or ends.

Orbit, dolly, zoom and crane move with a speed ramp: up to speed over ``ramp``
seconds and back to rest over the last ``ramp`` (a smoothstep in speed; the
default, half the shot, is one smooth ease in and out).

Shots that move the same channel may not overlap in time (one may start when
another ends), and a keyframe may not set a channel inside a shot that moves it,
the shot's ``to`` included (at the shot's ``from`` it sets the value the shot
starts from).  The
scene loader reports both with line numbers; this module raises ValueError.

The film starts and ends at rest.  Optionally (``ground``) the camera is kept
above the terrain: where a state would put the eye less than ``CLEARANCE``
above a smoothed, conservative height field, its elevation is raised just
enough (a smooth maximum, so motion stays smooth).  Time is frame / fps;
nothing here reads a clock, and ``state(t)`` is a pure function of t.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

CHANNELS = ("tx", "ty", "tz", "azimuth", "elevation", "distance", "fov", "roll")
ANGULAR = ("azimuth", "roll")
#: channel groups and their columns in the state vector; the target moves as one 3-vector
GROUPS = {"azimuth": (3,), "elevation": (4,), "distance": (5,), "fov": (6,), "roll": (7,), "target": (0, 1, 2)}
#: the state key a keyframe sets for each group
_KEY_FIELD = {"target": "target", "azimuth": "azimuth", "elevation": "elevation", "distance": "distance",
              "fov": "fov", "roll": "roll"}
SHOTS = ("orbit", "dolly", "zoom", "crane", "follow")

#: a follow shot's target stays within this fraction of the camera distance of the path's head
LEASH = 0.1
#: how far (landscape units) the eye is kept above the smoothed terrain when ``ground`` is given
CLEARANCE = 0.12
#: softness (degrees) of the smooth maximum that lifts the elevation over the terrain
LIFT_SOFTNESS = 2.0
#: a heading is the direction of travel over the last stretch of path before the head: as long as
#: the follow shot's distance (the camera sits about that far back along the path), or this
#: (landscape units) where the shot leaves the distance to the timeline
HEADING_WINDOW = 0.5


def state_to_vec(s: dict) -> np.ndarray:
    t = s["target"]
    return np.array([t[0], t[1], t[2], s["azimuth"], s["elevation"], s["distance"], s["fov"],
                     s.get("roll", 0.0)], dtype=np.float64)


def vec_to_state(v: np.ndarray) -> dict:
    return {"target": [float(v[0]), float(v[1]), float(v[2])], "azimuth": float(v[3]),
            "elevation": float(v[4]), "distance": float(v[5]), "fov": float(v[6]), "roll": float(v[7])}


# ----------------------------------------------------------------------------- easing

def smootherstep(u):
    """0 to 1 with zero first and second derivative at both ends (C2)."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (u * (6.0 * u - 15.0) + 10.0)


def ramp_progress(u: float, r: float) -> float:
    """Progress 0 -> 1 over u in [0, 1]: speed rises from rest over the first fraction r (a
    smoothstep in speed), holds, and falls back to rest over the last r; 0 < r <= 0.5."""
    u = min(max(float(u), 0.0), 1.0)
    r = min(max(float(r), 1e-6), 0.5)
    v = 1.0 / (1.0 - r)                     # the cruising speed that makes the total 1

    def area(x):                            # integral of the smoothstep 3x^2 - 2x^3 from 0 to x
        return x ** 3 - x ** 4 / 2.0

    if u < r:
        return v * r * area(u / r)
    if u > 1.0 - r:
        return 1.0 - v * r * area((1.0 - u) / r)
    return v * (r / 2.0 + u - r)


def _freeze(t: float, end: float, b: float) -> float:
    """A clock that runs with t until end - b, then eases to a halt at end (where it reads end - b/2):
    its rate falls from 1 to 0 as a smoothstep, so what is driven by it comes to rest at end."""
    if t <= end - b:
        return t
    if t >= end:
        return end - b / 2.0
    u = (t - (end - b)) / b
    return end - b + b * (u - (u ** 3 - u ** 4 / 2.0))


def _wrap_near(angle: float, ref: float) -> float:
    """angle plus a whole number of turns, within half a turn of ref (the short way round)."""
    return ref + (angle - ref + 180.0) % 360.0 - 180.0


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


# ----------------------------------------------------------------------------- shots

class _Shot:
    kind = ""

    def __init__(self, spec: dict, index: int):
        self.index = index
        self.start = float(spec["from"])
        self.end = float(spec["to"])
        if not self.end > self.start:
            raise ValueError(f"camera entry {index}: a {self.kind} shot needs from < to, "
                             f"got from {self.start:g} to {self.end:g}")
        self.v0: dict[str, np.ndarray] = {}

    groups: tuple[str, ...] = ()

    def bind(self, group: str, v0: np.ndarray, path: "CameraPath") -> None:
        """The value the shot starts from on this channel (carried from the entries before it)."""
        self.v0[group] = np.array(v0, dtype=np.float64)

    def value(self, group: str, t: float, path: "CameraPath") -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return f"the {self.kind} shot from {self.start:g} to {self.end:g} (camera entry {self.index})"


class _Eased(_Shot):
    """orbit, dolly, zoom, crane: one channel from its carried value, with a speed ramp."""

    def __init__(self, spec: dict, index: int):
        self.kind = spec["shot"]
        super().__init__(spec, index)
        span = self.end - self.start
        ramp = spec.get("ramp")
        self.ramp = 0.5 if ramp is None else min(float(ramp) / span, 0.5)
        if self.kind == "orbit":
            turns, degrees = spec.get("turns"), spec.get("degrees")
            if (turns is None) == (degrees is None):
                raise ValueError(f"camera entry {index}: an orbit needs turns or degrees (one of them)")
            self.amount = float(degrees) if degrees is not None else 360.0 * float(turns)
            self.groups = ("azimuth",)
        elif self.kind == "dolly":
            self.goal = float(spec["distance"])
            self.groups = ("distance",)
        elif self.kind == "zoom":
            self.goal = float(spec["fov"])
            self.groups = ("fov",)
        elif self.kind == "crane":
            self.goal = float(spec["elevation"])
            self.groups = ("elevation",)
        else:
            raise ValueError(f"camera entry {index}: unknown shot {self.kind!r}; allowed: {', '.join(SHOTS)}")

    def progress(self, t: float) -> float:
        return ramp_progress((t - self.start) / (self.end - self.start), self.ramp)

    def value(self, group: str, t: float, path: "CameraPath") -> np.ndarray:
        e = self.progress(t)
        v0 = self.v0[group]
        if self.kind == "orbit":
            return v0 + self.amount * e
        if self.kind == "dolly":
            return v0 * (self.goal / v0) ** e
        if self.kind == "zoom":
            a = math.tan(math.radians(float(v0[0])) / 2.0)
            b = math.tan(math.radians(self.goal) / 2.0)
            return np.array([2.0 * math.degrees(math.atan(a * (b / a) ** e))])
        return v0 + (self.goal - v0) * e          # crane


class _Follow(_Shot):
    kind = "follow"

    def __init__(self, spec: dict, index: int, tracks: dict):
        super().__init__(spec, index)
        name = spec["path"]
        if name not in tracks:
            raise ValueError(f"camera entry {index}: follow shot: no path {name!r} to follow "
                             f"(have: {', '.join(tracks) or 'none'})")
        self.track: Track = tracks[name]
        self.path_name = name
        span = self.end - self.start
        blend = spec.get("blend")
        self.blend = min(1.0 if blend is None else float(blend), span / 2.0)
        self.lag = 0.4 if spec.get("lag") is None else float(spec["lag"])
        self.tau, self.weights = _KERNEL
        self.azimuth = spec.get("azimuth")
        self.heading = spec.get("heading")
        if self.azimuth is not None and self.heading is not None:
            raise ValueError(f"camera entry {index}: follow shot: give azimuth or heading, not both")
        self.elevation = spec.get("elevation")
        self.distance = spec.get("distance")
        groups = ["target"]
        if self.azimuth is not None or self.heading is not None:
            groups.append("azimuth")
        if self.elevation is not None:
            groups.append("elevation")
        if self.distance is not None:
            groups.append("distance")
        self.groups = tuple(groups)
        self._table: tuple[np.ndarray, np.ndarray] | None = None

    # the shot's own clock: real time, easing to a halt over the last `blend` seconds
    def clock(self, t: float) -> float:
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

    def bind(self, group: str, v0: np.ndarray, path: "CameraPath") -> None:
        super().bind(group, v0, path)
        if group == "azimuth" and self.heading is not None:
            if self.track.flat_length < 1e-9:        # a path that does not move has no heading
                self._table = None
                return
            # an unwrapped table of the heading over the shot: it picks the turn each frame's angle
            # is on, so the azimuth is continuous (and starts within half a turn of the carried one)
            n = max(2, int(math.ceil((self.end - self.start) * 240.0)) + 1)
            ts = np.linspace(self.start, self.end, n)
            raw = self.raw_heading(ts)
            un = np.degrees(np.unwrap(np.radians(raw)))
            un += _wrap_near(un[0], float(v0[0])) - un[0]
            self._table = (ts, un)

    def goal_azimuth(self, tc: float) -> float:
        v0 = float(self.v0["azimuth"][0])
        if self.heading is None:
            return _wrap_near(float(self.azimuth), v0)
        if self._table is None:
            return v0
        raw = float(self.raw_heading(tc))
        ref = float(np.interp(tc, *self._table))
        return raw + 360.0 * round((ref - raw) / 360.0)

    def goal_target(self, tc: float, path: "CameraPath") -> np.ndarray:
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

    def value(self, group: str, t: float, path: "CameraPath") -> np.ndarray:
        w = self.weight(t)
        tc = self.clock(t)
        v0 = self.v0[group]
        if group == "target":
            return (1.0 - w) * v0 + w * self.goal_target(tc, path)
        if group == "azimuth":
            return v0 + w * (self.goal_azimuth(tc) - v0)
        if group == "elevation":
            return v0 + w * (float(self.elevation) - v0)
        return v0 * (float(self.distance) / v0) ** w       # distance, at an even rate in scale


def make_shot(spec: dict, index: int, tracks: dict) -> _Shot:
    kind = spec.get("shot")
    if kind == "follow":
        return _Follow(spec, index, tracks)
    return _Eased(spec, index)


# ----------------------------------------------------------------------------- the timeline

class _Knot:
    __slots__ = ("t", "value", "ease", "rest", "shot")

    def __init__(self, t, value, ease="linear", rest=False, shot=None):
        self.t, self.value, self.ease, self.rest, self.shot = t, value, ease, rest, shot
        # shot: the shot that governs the segment ending at this knot (None: the spline)


class _Channel:
    """One group's knots, tangents and segments."""

    def __init__(self, name: str, knots: list[_Knot]):
        self.name = name
        self.knots = knots
        self.times = np.array([k.t for k in knots])
        self.values = np.array([k.value for k in knots], dtype=np.float64)
        self.tangents = self._tangents()

    def _tangents(self) -> np.ndarray:
        t, p, ks = self.times, self.values, self.knots
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
            incoming = ks[i].ease if i > 0 and ks[i].shot is None else None
            outgoing = ks[i + 1].ease if i + 1 < n and ks[i + 1].shot is None else None
            if ks[i].rest or incoming in ("out", "in_out", "hold") or outgoing in ("in", "in_out", "hold"):
                m[i] = 0.0
        # start and end at rest
        m[0] = 0.0
        m[-1] = 0.0
        return m

    def value(self, t: float, path: "CameraPath") -> np.ndarray:
        ts, p, m = self.times, self.values, self.tangents
        if t <= ts[0] or len(ts) == 1:
            return p[0].copy()
        if t >= ts[-1]:
            return p[-1].copy()
        i = int(np.searchsorted(ts, t, side="right")) - 1
        nxt = self.knots[i + 1]
        if nxt.shot is not None:
            return np.asarray(nxt.shot.value(self.name, t, path), dtype=np.float64).reshape(p[i].shape)
        if nxt.ease == "hold":
            return p[i].copy()
        h = ts[i + 1] - ts[i]
        u = (t - ts[i]) / h
        h00 = 2 * u**3 - 3 * u**2 + 1
        h10 = u**3 - 2 * u**2 + u
        h01 = -2 * u**3 + 3 * u**2
        h11 = u**3 - u**2
        return h00 * p[i] + h10 * h * m[i] + h01 * p[i + 1] + h11 * h * m[i + 1]


class CameraPath:
    """The camera timeline; ``state(t)`` gives the camera state at time t (seconds).

    ``entries``: keyframes (dicts with ``t``) and shots (dicts with ``shot``, ``from``, ``to``; the
    scene's ``render.camera`` dumped by alias), in any order (keyframes in increasing ``t``).
    ``default``: the state the first entry starts from.  ``tracks``: paths a follow shot may name.
    ``ground``: optional (x, y) -> terrain height (see :class:`Ground`) to keep the camera above."""

    def __init__(self, entries: Sequence[dict], default: dict, tracks: dict | None = None,
                 ground: "Ground | None" = None):
        tracks = tracks or {}
        keys = [dict(e, _index=i) for i, e in enumerate(entries) if e.get("shot") is None]
        shots = [make_shot(e, i, tracks) for i, e in enumerate(entries) if e.get("shot") is not None]
        if not keys and not shots:
            keys = [dict(default, t=0.0, _index=0)]
        ts = [float(k["t"]) for k in keys]
        if any(b <= a for a, b in zip(ts, ts[1:])):
            raise ValueError(f"keyframe times must increase strictly, got {ts}")
        self.ground = ground
        self.shots = shots
        self.default = dict(default)
        start = state_to_vec(default)
        self.channels: dict[str, _Channel] = {}
        # the target last: a follow shot's leash reads the distance channel
        for g in ("azimuth", "elevation", "distance", "fov", "roll", "target"):
            self.channels[g] = self._compile(g, keys, shots, start[list(GROUPS[g])])

    @staticmethod
    def _owners(g: str, shots: list) -> list:
        own = sorted((s for s in shots if g in s.groups), key=lambda s: s.start)
        for a, b in zip(own, own[1:]):
            if b.start < a.end:
                raise ValueError(f"{b.describe()} overlaps {a.describe()}; both move {g}")
        return own

    def _compile(self, g: str, keys: list[dict], shots: list, start: np.ndarray) -> _Channel:
        own = self._owners(g, shots)
        field = _KEY_FIELD[g]
        events = []          # (time, order, kind, item): at one time a shot's end, then a keyframe, then a start
        for k in keys:
            t = float(k["t"])
            inside = next((s for s in own if s.start < t <= s.end), None)
            if inside is not None:
                if k.get(field) is not None:
                    raise ValueError(f"the keyframe at t={t:g} (camera entry {k['_index']}) sets {field} "
                                     f"inside {inside.describe()}, which moves it")
                continue
            events.append((t, 1, "key", k))
        for s in own:
            events.append((s.start, 2, "start", s))
            events.append((s.end, 0, "end", s))
        events.sort(key=lambda e: (e[0], e[1]))
        knots: list[_Knot] = []
        cur = np.array(start, dtype=np.float64)

        def add(knot: _Knot) -> None:
            if knots and knots[-1].t == knot.t:          # one time, one knot: merge (values agree)
                knots[-1].rest = knots[-1].rest or knot.rest
                return
            knots.append(knot)

        for t, _, kind, item in events:
            if kind == "key":
                v = item.get(field)
                if v is not None:
                    v = np.array(v if g == "target" else [v], dtype=np.float64)
                    if g in ANGULAR:                    # the short way round from the value before
                        v = np.array([_wrap_near(float(v[0]), float(cur[0]))])
                    cur = v
                add(_Knot(t, cur.copy(), item.get("ease", "linear")))
            elif kind == "start":
                item.bind(g, cur.copy(), self)
                add(_Knot(t, cur.copy(), rest=True))
            else:
                # the value the shot ends on (the channels it reads are compiled already)
                v = np.asarray(item.value(g, t, self), dtype=np.float64).reshape(cur.shape)
                cur = v
                add(_Knot(t, cur.copy(), rest=True, shot=item))
        if not knots:
            knots = [_Knot(0.0, cur.copy())]
        return _Channel(g, knots)

    # ------------------------------------------------------------------ evaluation
    def group(self, g: str, t: float) -> np.ndarray:
        return self.channels[g].value(float(t), self)

    def vec(self, t: float) -> np.ndarray:
        v = np.zeros(len(CHANNELS))
        for g, cols in GROUPS.items():
            v[list(cols)] = self.group(g, t)
        return v

    def state(self, t: float) -> dict:
        s = vec_to_state(self.vec(t))
        s["elevation"] = float(np.clip(s["elevation"], -89.0, 89.0))
        s["distance"] = max(s["distance"], 1e-3)
        if self.ground is not None:
            s["elevation"] = self.ground.lift(s)
        return s

    @property
    def times(self) -> np.ndarray:
        """Every knot time of every channel, sorted."""
        return np.unique(np.concatenate([c.times for c in self.channels.values()]))


# ----------------------------------------------------------------------------- keeping above the terrain

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
