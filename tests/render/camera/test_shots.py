"""render.camera.shots: orbit, dolly, zoom, crane and follow on the keyframe timeline; smoothness
where shots start and end, a pure state(t); every shot of the schema has a move.  The shots'
validation in the scene is tests/studio/scene/test_camera.py's, a follow shot in a film
tests/render/test_render.py's."""
from __future__ import annotations

import math

import numpy as np
import pytest

from render import camera as cam
from render.camera.shots import MOVES
from studio.scene import SHOTS
from tests.conftest import CAMERA_HOME as HOME
from tests.conftest import camera_entries as entries
from tests.conftest import make_track


def derivative_jump(path: cam.CameraPath, t: float, h: float = 1e-5) -> np.ndarray:
    """|left derivative - right derivative| of every channel at t."""
    left = (path.vec(t) - path.vec(t - h)) / h
    right = (path.vec(t + h) - path.vec(t)) / h
    return np.abs(left - right)


# --------------------------------------------------------------------------- the timeline

MIXED = [
    {"t": 0.0, "azimuth": -40, "elevation": 45, "distance": 6.0},
    {"shot": "orbit", "from": 1.0, "to": 5.0, "turns": 0.75},
    {"t": 3.0, "elevation": 30, "distance": 4.0, "target": [0.2, -0.1, 0.2]},
    {"shot": "crane", "from": 4.0, "to": 7.0, "elevation": 12},
    {"shot": "dolly", "from": 5.0, "to": 8.0, "distance": 2.5},
    {"shot": "zoom", "from": 6.0, "to": 9.0, "fov": 55},
    {"t": 10.0, "azimuth": 300, "elevation": 35, "distance": 4.5, "ease": "in_out"},
]


def test_keyframes_pass_through_their_values_with_shots_around():
    path = cam.CameraPath(entries(MIXED), HOME)
    s0, s3, s10 = path.state(0.0), path.state(3.0), path.state(10.0)
    assert (s0["azimuth"], s0["elevation"], s0["distance"]) == pytest.approx((-40, 45, 6.0))
    assert (s3["elevation"], s3["distance"]) == pytest.approx((30, 4.0))
    assert s3["target"] == pytest.approx([0.2, -0.1, 0.2])
    # the keyframe after the orbit: 300 degrees, the short way round from where the orbit ended (230)
    assert s10["azimuth"] % 360 == pytest.approx(300.0)
    assert s10["azimuth"] == pytest.approx(300.0)
    assert (s10["elevation"], s10["distance"]) == pytest.approx((35, 4.5))


def test_c1_at_every_keyframe_and_every_shot_boundary():
    path = cam.CameraPath(entries(MIXED), HOME)
    times = {k["t"] for k in MIXED if "t" in k} | {k[e] for k in MIXED if "shot" in k for e in ("from", "to")}
    for t in sorted(times - {0.0}):
        jump = derivative_jump(path, t)
        assert jump.max() < 1e-2, (t, jump)
        np.testing.assert_allclose(path.vec(t - 1e-7), path.vec(t + 1e-7), atol=1e-4)
    # and a shot's ends are at rest on the values it moves, where its motion ends (t0, t1: the orbit
    # hands its motion on to the dolly that starts as it ends, a cross-fade either side of 5 s)
    for shot in path.shots:
        c = {"orbit": 3, "crane": 4, "dolly": 5, "zoom": 6}[shot.spec.shot]
        for t in (shot.t0, shot.t1):
            v = (path.vec(t + 1e-5) - path.vec(t - 1e-5)) / 2e-5
            assert abs(v[c]) < 1e-3, (shot.spec, t, v[c])
            assert derivative_jump(path, t).max() < 1e-2
    assert path.shots[0].t1 > 5.0 and path.shots[2].t0 < 5.0


def test_orbit_turns_by_the_requested_angle_any_amount():
    for spec, angle in (({"turns": 1.25}, 450.0), ({"degrees": -200}, -200.0), ({"turns": 3}, 1080.0)):
        path = cam.CameraPath(entries([{"t": 0, "azimuth": 10}, {"shot": "orbit", "from": 2, "to": 8, **spec}]), HOME)
        assert path.state(2.0)["azimuth"] == pytest.approx(10.0)
        assert path.state(8.0)["azimuth"] == pytest.approx(10.0 + angle)
        assert path.state(12.0)["azimuth"] == pytest.approx(10.0 + angle)      # carried on
        az = np.array([path.state(t)["azimuth"] for t in np.linspace(2, 8, 601)])
        assert np.all(np.diff(az) * np.sign(angle) >= -1e-9)                   # one way round, no wrap
        # nothing else moves
        assert path.state(5.0)["distance"] == pytest.approx(5.0)


def test_orbit_ramp_gives_a_steady_middle():
    path = cam.CameraPath(entries([{"shot": "orbit", "from": 0, "to": 10, "degrees": 360, "ramp": 2.0}]), HOME)
    speeds = [(path.state(t + 1e-4)["azimuth"] - path.state(t - 1e-4)["azimuth"]) / 2e-4
              for t in np.linspace(2.5, 7.5, 11)]
    np.testing.assert_allclose(speeds, 360.0 / 8.0, rtol=1e-6)    # 360 degrees over 10 s less a 2 s ramp


def test_dolly_zoom_and_crane_reach_their_values():
    keys = [{"t": 0, "distance": 8.0, "fov": 60.0, "elevation": 40.0},
            {"shot": "dolly", "from": 1, "to": 5, "distance": 2.0},
            {"shot": "zoom", "from": 2, "to": 6, "fov": 20.0},
            {"shot": "crane", "from": 3, "to": 7, "elevation": -10.0}]
    path = cam.CameraPath(entries(keys), HOME)
    for t, (d, f, e) in ((0.5, (8.0, 60.0, 40.0)), (7.0, (2.0, 20.0, -10.0)), (11.0, (2.0, 20.0, -10.0))):
        s = path.state(t)
        assert (s["distance"], s["fov"], s["elevation"]) == pytest.approx((d, f, e))
    # dolly at an even rate in scale: halfway through, the geometric mean
    assert path.state(3.0)["distance"] == pytest.approx(math.sqrt(8.0 * 2.0))
    # zoom geometric in tan(fov / 2)
    half = math.degrees(2 * math.atan(math.sqrt(math.tan(math.radians(30)) * math.tan(math.radians(10)))))
    assert path.state(4.0)["fov"] == pytest.approx(half)
    assert path.state(5.0)["elevation"] == pytest.approx(15.0)


def test_shots_that_touch_chain():
    # (shots that overlap, and keyframes inside a shot, the scene refuses: BAD in tests/studio/scene/test_camera.py)
    keys = [{"t": 0, "azimuth": 0}, {"shot": "orbit", "from": 1, "to": 3, "degrees": 90},
            {"shot": "orbit", "from": 3, "to": 5, "degrees": 90}]
    path = cam.CameraPath(entries(keys), HOME)
    assert path.state(5)["azimuth"] == pytest.approx(180.0)
    assert derivative_jump(path, 3.0).max() < 1e-2


def eye_change(path: cam.CameraPath, t0: float, t1: float, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Frame-to-frame change of the camera, as a film sees it: how far the eye moves between frames
    (landscape units), plus how far the point looked at moves; with the frames' midpoints."""
    ts = np.arange(t0, t1 + 1e-9, 1.0 / fps)
    states = [path.state(t) for t in ts]
    eye = np.array([cam.eye_position(s) for s in states])
    target = np.array([s["target"] for s in states])
    d = np.linalg.norm(np.diff(eye, axis=0), axis=1) + np.linalg.norm(np.diff(target, axis=0), axis=1)
    return d, (ts[1:] + ts[:-1]) / 2


ADJACENT = [
    # different values: an orbit hands on to a crane
    [{"shot": "orbit", "from": 0, "to": 6, "degrees": 180}, {"shot": "crane", "from": 6, "to": 10, "elevation": 60}],
    # the same value: two orbits
    [{"shot": "orbit", "from": 0, "to": 3, "degrees": 90}, {"shot": "orbit", "from": 3, "to": 8, "degrees": 120}],
    # three in a run, with ramps
    [{"shot": "dolly", "from": 0, "to": 4, "distance": 3.0, "ramp": 1.0},
     {"shot": "orbit", "from": 4, "to": 8, "degrees": 90, "ramp": 1.0},
     {"shot": "crane", "from": 8, "to": 11, "elevation": 55}],
]


@pytest.mark.parametrize("keys", ADJACENT, ids=["orbit-crane", "orbit-orbit", "dolly-orbit-crane"])
def test_adjacent_shots_flow_into_each_other(keys):
    path = cam.CameraPath(entries(keys), HOME)
    start, end = keys[0]["from"], keys[-1]["to"]
    d, mid = eye_change(path, start, end)
    # the middle of the run (leaving out the first shot's ease in and the last one's ease out)
    inner = (mid > start + 1.0) & (mid < end - 1.0)
    median = float(np.median(d[inner]))
    for k in keys[:-1]:
        near = np.abs(mid - k["to"]) < 0.5
        assert d[near].min() > 0.4 * median, (k["to"], d[near].min(), median)
        assert derivative_jump(path, k["to"]).max() < 1e-2          # every value C1 across the seam
    # the run starts and ends at rest, and every shot reaches its values
    assert d[0] < 0.05 * median and d[-1] < 0.05 * median
    s = path.state(end)
    for k in keys:
        for name in ("distance", "elevation"):
            if name in k:
                assert s[name] == pytest.approx(k[name])
    turned = sum(k.get("degrees", 0) for k in keys)
    assert s["azimuth"] == pytest.approx(HOME["azimuth"] + turned)


@pytest.mark.parametrize("how", ["hold", "gap", "keyframe"])
def test_a_hold_a_gap_or_a_keyframe_stops_the_camera_between_shots(how):
    first = {"shot": "orbit", "from": 0, "to": 6, "degrees": 180}
    second = {"shot": "crane", "from": 6, "to": 10, "elevation": 60}
    keys = [first, second]
    if how == "hold":
        second["ease"] = "hold"
    elif how == "gap":
        second["from"] = 6.5
    else:
        keys.append({"t": 6, "ease": "linear"})
    path = cam.CameraPath(entries(keys), HOME)
    d, mid = eye_change(path, 0, 10)
    assert d[np.abs(mid - 6.0) < 0.6].min() < 1e-3
    assert path.state(6.0)["azimuth"] == pytest.approx(HOME["azimuth"] + 180.0)


def test_a_keyframe_at_a_shots_start_sets_where_it_starts():
    keys = [{"t": 0, "distance": 8.0}, {"t": 2, "distance": 4.0},
            {"shot": "dolly", "from": 2, "to": 6, "distance": 1.0}]
    path = cam.CameraPath(entries(keys), HOME)
    assert path.state(2.0)["distance"] == pytest.approx(4.0)
    assert path.state(4.0)["distance"] == pytest.approx(2.0)          # halfway in scale from 4 to 1
    assert path.state(6.0)["distance"] == pytest.approx(1.0)


def test_every_shot_of_the_schema_has_a_move():
    assert set(MOVES) == set(SHOTS)


def test_state_is_a_pure_function_of_time():
    track = make_track()
    keys = entries(MIXED[:3] + [{"shot": "follow", "from": 5.5, "to": 9.5, "path": "p", "distance": 1.0,
                                 "heading": 20, "lag": 0.5, "blend": 1.0}])
    ts = np.linspace(0, 11, 67)
    a = cam.CameraPath(keys, HOME, tracks={"p": track})
    forward = [a.state(t) for t in ts]
    again = [a.state(t) for t in ts]
    order = np.random.default_rng(0).permutation(len(ts))
    b = cam.CameraPath(keys, HOME, tracks={"p": track})
    shuffled = {int(i): b.state(ts[i]) for i in order}
    backwards = [cam.CameraPath(keys, HOME, tracks={"p": track}).state(t) for t in ts[::-1]][::-1]
    for i in range(len(ts)):
        assert forward[i] == again[i] == shuffled[i] == backwards[i]


# --------------------------------------------------------------------------- follow

def follow_path(**spec) -> tuple[cam.CameraPath, cam.Track]:
    track = make_track(wiggle=spec.pop("wiggle", 0.0))
    shot = {"shot": "follow", "from": 2.0, "to": 10.0, "path": "p", "distance": 1.2, "elevation": 25,
            "lag": 0.5, "blend": 1.0}
    shot.update(spec)
    keys = [{"t": 0, "azimuth": -40, "elevation": 45, "distance": 6.0}, shot]
    return cam.CameraPath(entries(keys), HOME, tracks={"p": track}), track


@pytest.mark.parametrize("lag", [0.0, 0.5, 2.0])
def test_follow_stays_within_distance_of_the_head(lag):
    path, track = follow_path(lag=lag)
    for t in np.linspace(3.0, 9.0, 241):                    # from + blend to to - blend
        s = path.state(t)
        gap = np.linalg.norm(cam.eye_position(s) - track.head(t))
        assert abs(gap - 1.2) <= cam.LEASH * 1.2 + 1e-9, (t, gap)
        if lag == 0.0:                                      # locked on: the target is the head
            np.testing.assert_allclose(s["target"], track.head(t), atol=1e-9)
    assert path.state(9.0)["elevation"] == pytest.approx(25.0)


def test_follow_has_no_jump_where_it_starts_and_ends():
    path, _ = follow_path(wiggle=0.004)
    h = 1.0 / 240.0
    for edge in (2.0, 10.0):
        ts = edge + h * np.arange(-24, 25)
        x = np.array([path.vec(t) for t in ts])
        second = np.abs(x[2:] - 2 * x[1:-1] + x[:-2])
        # the target (and the distance and elevation the shot sets) accelerate, never jump: a jump
        # in velocity v would give a second difference of about v * h
        assert second[:, :3].max() < 40 * h * h, (edge, second[:, :3].max() / h / h)
        assert derivative_jump(path, edge, 1e-4)[:6].max() < 0.05
    # before the shot the target is the timeline's; well inside it, near the head
    assert path.state(1.9)["target"] == pytest.approx(HOME["target"])


def test_follow_lag_smooths_a_jittery_path():
    jitter, _ = follow_path(wiggle=0.01, lag=0.6)
    locked, _ = follow_path(wiggle=0.01, lag=0.0)
    h = 1.0 / 30.0
    ts = np.arange(4.0, 8.0, h)

    def roughness(p):
        x = np.array([p.state(t)["target"] for t in ts])
        return np.abs(x[2:] - 2 * x[1:-1] + x[:-2]).max()

    assert roughness(jitter) < 0.2 * roughness(locked)


def test_follow_does_not_snap_when_the_head_speeds_up():
    # a head that creeps for 4 s, then goes about twelve times faster within half a second (as a
    # descent leaving a plateau): the target speeds up no harder than the head itself, and never
    # outruns it (with a lag read only from the past the target would fall behind, then snap onto the leash)
    n = 600
    pts = np.c_[np.linspace(-0.9, 0.9, n), 0.3 * np.sin(np.linspace(0, 3, n)), np.full(n, 0.2)]

    def timing(t):
        t = np.asarray(t, float)
        slow = 0.02 * np.clip(t - 1.0, 0, None)
        fast = 0.24 * 0.12 * np.logaddexp(0, (t - 5.0) / 0.12)
        return np.clip(slow + fast, 0, 1) * (n - 1)

    track = cam.Track(pts, np.arange(n, dtype=float), timing)
    shot = {"shot": "follow", "from": 2.0, "to": 9.0, "path": "p", "distance": 1.2, "elevation": 25,
            "lag": 0.5, "blend": 1.0}
    path = cam.CameraPath(entries([{"t": 0, "azimuth": -40, "elevation": 45, "distance": 6.0}, shot]), HOME,
                          tracks={"p": track})
    ts = np.arange(3.5, 8.0, 1 / 30)

    def speeds(x):
        v = np.linalg.norm(np.diff(x, axis=0), axis=1)
        return v.max(), np.abs(np.diff(v)).max()

    target_v, target_dv = speeds(np.array([path.state(t)["target"] for t in ts]))
    head_v, head_dv = speeds(np.array([track.head(t) for t in ts]))
    assert target_dv <= 1.2 * head_dv, (target_dv, head_dv)
    assert target_v <= 1.05 * head_v, (target_v, head_v)


def test_follow_heading_looks_the_way_the_head_goes():
    n = 200
    pts = np.c_[np.linspace(-0.8, 0.8, n), np.zeros(n), np.full(n, 0.2)]     # straight along +x

    def timing(t):
        return np.clip((np.asarray(t, float) - 1.0) / 8.0, 0, 1) * (n - 1)

    track = cam.Track(pts, np.arange(n, dtype=float), timing)
    for heading, az in ((0.0, -90.0), (30.0, -60.0)):
        keys = [{"t": 0, "azimuth": -100},
                {"shot": "follow", "from": 2, "to": 9, "path": "p", "heading": heading, "lag": 0.3}]
        path = cam.CameraPath(entries(keys), HOME, tracks={"p": track})
        s = path.state(5.0)
        assert s["azimuth"] == pytest.approx(az, abs=1e-6)
        if heading == 0.0:                                  # behind the head: at smaller x
            assert cam.eye_position(s)[0] < track.head(5.0)[0] - 0.5 * s["distance"]
