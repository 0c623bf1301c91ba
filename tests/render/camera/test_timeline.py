"""render.camera: the keyframe timeline (through every keyframe, C1, easing, the short way round),
the ground the camera keeps above, and the projection (framing, the view matrix).  The shots are
tests/render/camera/test_shots.py's."""
import numpy as np
import pytest

from render import camera as cam
from tests.conftest import CAMERA_HOME as HOME
from tests.conftest import ROOT
from tests.conftest import camera_entries as entries

KEYS = [
    {"t": 0.0, "azimuth": -40, "elevation": 45, "distance": 6.0},
    {"t": 3.0, "azimuth": 10, "elevation": 30, "distance": 4.0, "target": [0.2, -0.1, 0.2]},
    {"t": 5.0, "azimuth": 60, "elevation": 38, "distance": 3.0},
    {"t": 9.0, "azimuth": 100, "elevation": 20, "distance": 3.5, "fov": 50},
]


# --------------------------------------------------------------------------- keyframes

def test_passes_through_every_keyframe_and_carries_missing_values():
    path = cam.CameraPath(entries(KEYS), HOME)
    for k in KEYS:
        s = path.state(k["t"])
        for f in ("azimuth", "elevation", "distance"):
            assert s[f] == pytest.approx(k[f], abs=1e-9)
    assert path.state(0.0)["fov"] == pytest.approx(35.0)          # from the home state
    assert path.state(5.0)["target"] == pytest.approx([0.2, -0.1, 0.2])  # carried from t=3
    assert path.state(9.0)["fov"] == pytest.approx(50.0)


def test_no_entries_hold_the_default_state():
    path = cam.CameraPath([], HOME)
    for t in (0.0, 3.0):
        assert path.state(t) == HOME


def test_c1_at_keyframes():
    path = cam.CameraPath(entries(KEYS), HOME)
    h = 1e-5
    for k in KEYS[1:-1]:
        t = k["t"]
        left = (path.vec(t) - path.vec(t - h)) / h
        right = (path.vec(t + h) - path.vec(t)) / h
        np.testing.assert_allclose(left, right, atol=1e-3, rtol=1e-3)
        # and continuous in position
        np.testing.assert_allclose(path.vec(t - 1e-7), path.vec(t + 1e-7), atol=1e-5)


def test_no_overshoot_and_rest_at_ends():
    path = cam.CameraPath(entries(KEYS), HOME)
    ts = np.linspace(0, 9, 2001)
    d = np.array([path.state(t)["distance"] for t in ts])
    assert d.min() >= 3.0 - 1e-9 and d.max() <= 6.0 + 1e-9
    for t in (0.0, 9.0):
        v = (path.vec(min(t + 1e-5, 9)) - path.vec(max(t - 1e-5, 0))) / 1e-5
        assert np.abs(v).max() < 1e-3


def test_in_out_easing_stops_at_keyframe_and_hold_is_a_cut():
    keys = [{"t": 0, "azimuth": 0}, {"t": 2, "azimuth": 90, "ease": "in_out"}, {"t": 4, "azimuth": 120}]
    path = cam.CameraPath(entries(keys), HOME)
    v = (path.vec(2 + 1e-5) - path.vec(2 - 1e-5)) / 2e-5
    assert abs(v[3]) < 1e-3
    keys = [{"t": 0, "azimuth": 0}, {"t": 2, "azimuth": 90, "ease": "hold"}]
    path = cam.CameraPath(entries(keys), HOME)
    assert path.state(1.999)["azimuth"] == pytest.approx(0.0)
    assert path.state(2.0)["azimuth"] == pytest.approx(90.0)


def test_azimuth_takes_the_short_way_round():
    path = cam.CameraPath(entries([{"t": 0, "azimuth": 170}, {"t": 1, "azimuth": -170}]), HOME)
    mids = [path.state(t)["azimuth"] for t in np.linspace(0, 1, 11)]
    assert all(170 - 1e-9 <= a <= 190 + 1e-9 for a in mids)


# --------------------------------------------------------------------------- the ground

def test_camera_is_kept_above_the_terrain_smoothly():
    y, x = np.mgrid[-1:1:101j, -1:1:101j]
    heights = 0.8 * np.exp(-((x + 0.2) ** 2 + y ** 2) / 0.1)          # a hill left of the centre
    ground = cam.Ground(heights, 1.0)
    # a low camera sweeping its azimuth around a target right of the hill: it must climb over it
    keys = [{"t": 0, "target": [0.4, 0.0, 0.1], "azimuth": 0, "elevation": 5, "distance": 0.9},
            {"t": 10, "azimuth": -180}]
    path = cam.CameraPath(entries(keys), HOME, ground=ground)
    ts = np.linspace(0, 10, 1001)
    states = [path.state(t) for t in ts]
    eyes = np.array([cam.eye_position(s) for s in states])
    under = np.array([float(ground(e[0], e[1])) for e in eyes])
    assert np.all(eyes[:, 2] >= under + cam.CLEARANCE - 1e-3)      # (the line below is sampled)
    # over the raw terrain too, and lifted only where needed
    raw = 0.8 * np.exp(-((eyes[:, 0] + 0.2) ** 2 + eyes[:, 1] ** 2) / 0.1)
    assert np.all(eyes[:, 2] > raw + 0.1)
    el = np.array([s["elevation"] for s in states])
    assert el.max() > 20 and 5.0 <= el[0] < 6.5              # low over flat ground: barely lifted
    assert np.abs(np.diff(el, 2)).max() < 0.5                          # smooth, no kink or jump
    # high above, nothing changes
    high = cam.CameraPath(entries([dict(keys[0], elevation=45, distance=3.0)]), HOME, ground=ground)
    assert high.state(0)["elevation"] == pytest.approx(45.0, abs=1e-6)


# --------------------------------------------------------------------------- projection

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


# --------------------------------------------------------------------------- the package's shape

def test_the_camera_math_reads_no_files_and_validates_nothing():
    """The schema (studio.scene) validates render.camera; the camera package only computes."""
    import ast
    for f in sorted((ROOT / "render" / "camera").glob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"pydantic", "yaml", "pathlib", "os", "io"}, (f.name, imported)
        calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert not calls & {"model_validate", "validate_python", "read_text", "open"}, (f.name, calls)
        assert len(f.read_text(encoding="utf-8").splitlines()) <= 500, f.name
