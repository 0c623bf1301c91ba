"""The camera timeline: keyframes and shots compiled into one spline per channel.

**Channels.**  Each camera value is a channel with its own knots: the target
(one 3-vector), azimuth, elevation, distance, fov, roll.

**Keyframes** (``CameraKey``) give some or all of these values at a time ``t``
in seconds; a value a keyframe leaves out is carried from the entry before it
(the first takes the default state, the automatic framing).  Each channel is
interpolated by a cubic Hermite spline through its knots (C1: position and
velocity are continuous at every knot) whose tangents are Catmull-Rom's,
limited so the camera never overshoots a knot value (Fritsch-Carlson).  A
keyframe's ``ease`` shapes the spline segment that ends at it:

    linear   no easing: the spline flows through the keyframe
    in       the segment starts from rest
    out      the segment comes to rest at this keyframe
    in_out   both (the camera stops at each end of the segment)
    hold     a cut: the camera holds the previous state and jumps at this time

Azimuth and roll take the short way round between keyframes.

**Shots** (``render.camera.shots``) become a knot at rest at each end on every
channel they move, with the shot's own motion between; the value a shot ends
on is carried on like a keyframe's.

**Hand-offs** (``plan_handoffs``): where one shot ends as another starts, the
camera does not stop between them: the same channel meets at one velocity, and
different channels cross-fade over the seam.  ``ease: hold`` on either shot, or
a keyframe at the seam, makes it a stop; so does a gap between the shots.

The film starts and ends at rest.  With a ``ground`` the camera is kept above
the terrain (``render.camera.ground``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from render.camera.ground import Ground
from render.camera.shots import Shot, Track, _Eased, make_shot, wrap_near
from studio.scene import CameraEntry, CameraKey

#: the channels, as the schema names them (``CameraKey``'s fields, a shot's ``channels()``), and
#: their columns in the state vector (tx, ty, tz, azimuth, elevation, distance, fov, roll)
CHANNELS = {"azimuth": (3,), "elevation": (4,), "distance": (5,), "fov": (6,), "roll": (7,), "target": (0, 1, 2)}
STATE_SIZE = 8
#: channels that are angles: keyframes reach them the short way round
ANGULAR = ("azimuth", "roll")


#: seams closer than this (seconds) are one time
SEAM = 1e-9


def plan_handoffs(shots: list[Shot], key_times: list[float]) -> None:
    """Where shots touch (one's ``to`` is another's ``from``), hand the motion on instead of stopping.

    A seam flows unless a shot at it has ``ease: hold`` or a keyframe sits at it.  Orbit, dolly,
    zoom and crane take part (a follow shot always blends in and out from rest):

    * the same channel goes on (an orbit, then an orbit): the two meet at one velocity, the slower
      of their cruising velocities (rest where they turn opposite ways), so the channel is C1;
    * other channels go on (an orbit, then a crane): a cross-fade centred on the seam, half the
      shorter of the two ramps either side of it: the first shot's motion slows to rest over the
      cross-fade (finishing its move that much after its ``to``) while the second's comes up to
      speed (starting that much before its ``from``).  Each channel stays C1 and the camera never
      stops.  The cross-fade keeps clear of anything else on the channel (keyframes, other shots)."""
    eased = [s for s in shots if isinstance(s, _Eased)]

    def at(t: float, attr: str) -> list[Shot]:
        return [s for s in shots if abs(getattr(s, attr) - t) < SEAM]

    def flows(t: float, group: list[Shot]) -> bool:
        return bool(group) and not any(s.hold for s in group) and not any(abs(k - t) < SEAM for k in key_times)

    def others_on(c: str, me: Shot) -> list[Shot]:
        return [s for s in shots if s is not me and c in s.channels]

    for a in eased:
        c = a.channels[0]
        nxt = at(a.end, "start")
        if nxt and flows(a.end, nxt + [a]):
            same = [b for b in nxt if c in b.channels]
            if same:
                if isinstance(same[0], _Eased):
                    a.next_same = same[0]
            else:
                h = min([a.ramp_s] + [b.ramp_s for b in nxt]) / 2.0
                later = [k for k in key_times if k > a.end] + [s.start for s in others_on(c, a) if s.start > a.end]
                if later:
                    h = min(h, 0.5 * (min(later) - a.end))
                if h > 0:
                    a.t1, a.r_out = a.end + h, 2.0 * h
        prv = at(a.start, "end")
        if prv and flows(a.start, prv + [a]) and not any(c in b.channels for b in prv):
            h = min([a.ramp_s] + [b.ramp_s for b in prv]) / 2.0
            earlier = [k for k in key_times if k < a.start] + [s.end for s in others_on(c, a) if s.end < a.start]
            h = min(h, 0.5 * (a.start - max(earlier)) if earlier else a.start)
            if h <= 0:
                continue
            a.t0, a.r_in = a.start - h, 2.0 * h


def state_to_vec(s: dict) -> np.ndarray:
    t = s["target"]
    return np.array([t[0], t[1], t[2], s["azimuth"], s["elevation"], s["distance"], s["fov"],
                     s.get("roll", 0.0)], dtype=np.float64)


def vec_to_state(v: np.ndarray) -> dict:
    return {"target": [float(v[0]), float(v[1]), float(v[2])], "azimuth": float(v[3]),
            "elevation": float(v[4]), "distance": float(v[5]), "fov": float(v[6]), "roll": float(v[7])}


class _Knot:
    __slots__ = ("t", "value", "ease", "rest", "shot")

    def __init__(self, t, value, ease="linear", rest=False, shot=None):
        self.t, self.value, self.ease, self.rest, self.shot = t, value, ease, rest, shot
        # shot: the shot that governs the segment ending at this knot (None: the spline)


class _Channel:
    """One channel's knots, tangents and segments."""

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

    ``entries``: the scene's ``render.camera`` as validated (``CameraKey`` and the shot models), in
    any order.  ``default``: the state the first entry starts from.  ``tracks``: the path each
    follow shot names, by name.  ``ground``: optional terrain to keep the camera above."""

    def __init__(self, entries: Sequence[CameraEntry], default: dict, tracks: dict[str, Track] | None = None,
                 ground: Ground | None = None):
        keys = [e for e in entries if isinstance(e, CameraKey)]
        self.shots = [make_shot(e, tracks or {}) for e in entries if not isinstance(e, CameraKey)]
        plan_handoffs(self.shots, [float(k.t) for k in keys])
        self.ground = ground
        self.default = dict(default)
        start = state_to_vec(default)
        self.channels: dict[str, _Channel] = {}
        # the target last: a follow shot's leash reads the distance channel
        for c in ("azimuth", "elevation", "distance", "fov", "roll", "target"):
            self.channels[c] = self._compile(c, keys, start[list(CHANNELS[c])])

    def _compile(self, c: str, keys: list[CameraKey], start: np.ndarray) -> _Channel:
        own = sorted((s for s in self.shots if c in s.channels), key=lambda s: s.start)
        events = []          # (time, order, kind, item): at one time a shot's end, then a keyframe, then a start
        for k in keys:
            # inside a shot that moves c a keyframe leaves c alone (the schema has seen to that)
            if not any(s.start < k.t <= s.end for s in own):
                events.append((float(k.t), 1, "key", k))
        for s in own:
            events.append((s.t0, 2, "start", s))
            events.append((s.t1, 0, "end", s))
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
                v = getattr(item, c)
                if v is not None:
                    v = np.array(v if c == "target" else [v], dtype=np.float64)
                    if c in ANGULAR:                    # the short way round from the value before
                        v = np.array([wrap_near(float(v[0]), float(cur[0]))])
                    cur = v
                add(_Knot(t, cur.copy(), item.ease))
            elif kind == "start":
                item.bind(c, cur.copy(), self)
                add(_Knot(t, cur.copy(), rest=True))
            else:
                # the value the shot ends on (the channels it reads are compiled already)
                v = np.asarray(item.value(c, t, self), dtype=np.float64).reshape(cur.shape)
                cur = v
                add(_Knot(t, cur.copy(), rest=True, shot=item))
        if not knots:
            knots = [_Knot(0.0, cur.copy())]
        return _Channel(c, knots)

    # ------------------------------------------------------------------ evaluation
    def group(self, c: str, t: float) -> np.ndarray:
        """Channel c at time t."""
        return self.channels[c].value(float(t), self)

    def vec(self, t: float) -> np.ndarray:
        v = np.zeros(STATE_SIZE)
        for c, cols in CHANNELS.items():
            v[list(cols)] = self.group(c, t)
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

