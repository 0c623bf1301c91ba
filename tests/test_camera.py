"""Camera path math: through every keyframe, C1 at keyframes, easing, framing."""
import numpy as np
import pytest

from render import camera as cam

HOME = {"target": [0.0, 0.0, 0.3], "azimuth": 30.0, "elevation": 30.0, "distance": 5.0, "fov": 35.0, "roll": 0.0}

KEYS = [
    {"t": 0.0, "azimuth": -40, "elevation": 45, "distance": 6.0},
    {"t": 3.0, "azimuth": 10, "elevation": 30, "distance": 4.0, "target": [0.2, -0.1, 0.2]},
    {"t": 5.0, "azimuth": 60, "elevation": 38, "distance": 3.0},
    {"t": 9.0, "azimuth": 100, "elevation": 20, "distance": 3.5, "fov": 50},
]


def test_passes_through_every_keyframe_and_carries_missing_values():
    path = cam.CameraPath(KEYS, HOME)
    for k in KEYS:
        s = path.state(k["t"])
        for f in ("azimuth", "elevation", "distance"):
            assert s[f] == pytest.approx(k[f], abs=1e-9)
    assert path.state(0.0)["fov"] == pytest.approx(35.0)          # from the home state
    assert path.state(5.0)["target"] == pytest.approx([0.2, -0.1, 0.2])  # carried from t=3
    assert path.state(9.0)["fov"] == pytest.approx(50.0)


def test_c1_at_keyframes():
    path = cam.CameraPath(KEYS, HOME)
    h = 1e-5
    for k in KEYS[1:-1]:
        t = k["t"]
        left = (path.vec(t) - path.vec(t - h)) / h
        right = (path.vec(t + h) - path.vec(t)) / h
        np.testing.assert_allclose(left, right, atol=1e-3, rtol=1e-3)
        # and continuous in position
        np.testing.assert_allclose(path.vec(t - 1e-7), path.vec(t + 1e-7), atol=1e-5)


def test_no_overshoot_and_rest_at_ends():
    path = cam.CameraPath(KEYS, HOME)
    ts = np.linspace(0, 9, 2001)
    d = np.array([path.state(t)["distance"] for t in ts])
    assert d.min() >= 3.0 - 1e-9 and d.max() <= 6.0 + 1e-9
    for t in (0.0, 9.0):
        v = (path.vec(min(t + 1e-5, 9)) - path.vec(max(t - 1e-5, 0))) / 1e-5
        assert np.abs(v).max() < 1e-3


def test_in_out_easing_stops_at_keyframe_and_hold_is_a_cut():
    keys = [{"t": 0, "azimuth": 0}, {"t": 2, "azimuth": 90, "ease": "in_out"}, {"t": 4, "azimuth": 120}]
    path = cam.CameraPath(keys, HOME)
    v = (path.vec(2 + 1e-5) - path.vec(2 - 1e-5)) / 2e-5
    assert abs(v[3]) < 1e-3
    keys = [{"t": 0, "azimuth": 0}, {"t": 2, "azimuth": 90, "ease": "hold"}]
    path = cam.CameraPath(keys, HOME)
    assert path.state(1.999)["azimuth"] == pytest.approx(0.0)
    assert path.state(2.0)["azimuth"] == pytest.approx(90.0)


def test_azimuth_takes_the_short_way_round():
    path = cam.CameraPath([{"t": 0, "azimuth": 170}, {"t": 1, "azimuth": -170}], HOME)
    mids = [path.state(t)["azimuth"] for t in np.linspace(0, 1, 11)]
    assert all(170 - 1e-9 <= a <= 190 + 1e-9 for a in mids)


def test_framing_holds_the_whole_box():
    lo, hi = np.array([-1, -0.8, 0]), np.array([1, 0.8, 1.2])
    for aspect, (w, h) in ((16 / 9, (1920, 1080)), (1.0, (800, 800)), (9 / 16, (1080, 1920))):
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        s = cam.framing(corners, aspect)
        px = cam.project_points(corners, s, w, h, 2.0)
        assert (px[:, 0] > 0).all() and (px[:, 0] < w).all()
        assert (px[:, 1] > 0).all() and (px[:, 1] < h).all()
        assert (px[:, 2] > 0).all()                    # in front of the camera
        # and fills the frame: some corner is near an edge (within the margin plus a little)
        gap = min(px[:, 0].min() / w, 1 - px[:, 0].max() / w, px[:, 1].min() / h, 1 - px[:, 1].max() / h)
        assert gap < 0.07


def test_view_matrix_looks_at_target():
    s = dict(HOME, azimuth=73.0, elevation=21.0, roll=15.0)
    v = cam.view_matrix(s)
    t = np.r_[s["target"], 1.0]
    c = v @ t
    assert c[0] == pytest.approx(0, abs=1e-9) and c[1] == pytest.approx(0, abs=1e-9)
    assert c[2] == pytest.approx(-s["distance"])
    np.testing.assert_allclose(v[:3, :3] @ v[:3, :3].T, np.eye(3), atol=1e-12)
