"""render/camera/auto.py: the camera of a scene that writes none, found from the landscape's shape."""
from __future__ import annotations

import numpy as np
import pytest

from render.camera import CameraPath, auto_camera
from render.camera.auto import HIGH, LOW, Field, visible
from render.camera.projection import project_points

ASPECT = 16 / 9


def terrain(n=80, wall=False):
    """A bowl whose lowest ground is at (0.5, 0.2), a plateau high in the far corner; with ``wall``,
    a ridge along x = 0.85 that hides the bowl from the +x side."""
    x = np.linspace(-1, 1, n)
    y = np.linspace(-1, 1, n)
    xx, yy = np.meshgrid(x, y)
    h = 0.15 + 0.5 * ((xx - 0.5) ** 2 + (yy - 0.2) ** 2) + 0.3 * np.exp(-((xx + 0.8) ** 2 + (yy + 0.8) ** 2) / 0.2)
    if wall:
        h += 0.9 * np.exp(-((xx - 0.85) ** 2) / 0.003)
    return h


def path_on(h, n=60):
    f = Field(h, 1.0)
    t = np.linspace(0, 1, n)
    xs, ys = -0.7 + 1.2 * t, -0.6 + 0.8 * t
    return np.stack([xs, ys, f.at(xs, ys) + 0.01], axis=1)


@pytest.mark.parametrize("wall", [False, True])
def test_it_ends_close_on_where_training_ended_with_it_in_sight(wall):
    h = terrain(wall=wall)
    path = path_on(h)
    keys = auto_camera(h, 1.0, path, 12.0, ASPECT)
    assert [k.t for k in keys] == [0.0, 6.0, 12.0] and keys[-1].ease == "out"
    first, last = keys[0], keys[-1]
    assert first.elevation == pytest.approx(HIGH) and LOW <= last.elevation <= 60
    assert last.distance < 0.8 * first.distance                       # it comes down
    state = {"target": last.target, "azimuth": last.azimuth, "elevation": last.elevation, "distance": last.distance,
             "fov": 35.0, "roll": 0.0}
    px = project_points(path[-1:], state, 1600, 900, 3.0)[0]
    assert 0.05 * 1600 < px[0] < 0.95 * 1600 and 0.05 * 900 < px[1] < 0.95 * 900
    assert visible(Field(h, 1.0), state, path[-1:]).all()
    # the opening shows the whole terrain: every corner of it in the frame
    start = {"target": first.target, "azimuth": first.azimuth, "elevation": first.elevation,
             "distance": first.distance, "fov": 35.0, "roll": 0.0}
    corners = np.array([[x, y, h[j, i]] for (x, i) in ((-1, 0), (1, -1)) for (y, j) in ((-1, 0), (1, -1))])
    cp = project_points(corners, start, 1600, 900, 3.0)
    assert ((cp[:, 0] > 0) & (cp[:, 0] < 1600) & (cp[:, 1] > 0) & (cp[:, 1] < 900)).all()


def test_the_wall_turns_the_camera_to_the_open_side():
    """Behind the ridge along x = 0.85 the bowl is hidden: the closing shot looks from elsewhere."""
    h = terrain(wall=True)
    path = path_on(h)
    last = auto_camera(h, 1.0, path, 10.0, ASPECT)[-1]
    state = {"target": last.target, "azimuth": last.azimuth, "elevation": last.elevation, "distance": last.distance,
             "fov": 35.0, "roll": 0.0}
    tail = path[int(len(path) * 0.6):]
    assert visible(Field(h, 1.0), state, tail).mean() > 0.8


def test_without_a_path_it_closes_on_the_lowest_ground_and_is_the_same_each_time():
    h = terrain()
    a = auto_camera(h, 1.0, None, 8.0, ASPECT)
    b = auto_camera(h, 1.0, None, 8.0, ASPECT)
    assert [k.model_dump() for k in a] == [k.model_dump() for k in b]
    low = Field(h, 1.0).lowest()
    assert np.hypot(a[-1].target[0] - low[0], a[-1].target[1] - low[1]) < 0.35
    path = CameraPath(a, {"target": [0, 0, 0], "azimuth": 0, "elevation": 30, "distance": 5, "fov": 35, "roll": 0})
    s0, s1 = path.state(0.0), path.state(8.0)
    assert s0["distance"] > s1["distance"] and s0 != path.state(4.0)


def test_the_opening_sees_the_valley_floor_beyond_the_end():
    """Training ended on a slope above a trench (x = 0.6, along y) with a high rim beyond it (a small
    grid's loss over a transformer): from over the rim the trench is hidden though the path reads
    well; the camera takes a side that shows both."""
    x = np.linspace(-1, 1, 90)
    xx, yy = np.meshgrid(x, x)
    h = np.clip(0.5 - 0.6 * xx, 0.0, 0.9) - 0.45 * np.exp(-((xx - 0.6) ** 2) / 0.004) \
        + 1.2 * np.clip(xx - 0.72, 0, None) ** 0.5
    f = Field(h, 1.0)
    t = np.linspace(0, 1, 40)
    xs, ys = -0.8 + 0.9 * t, -0.5 + 0.7 * t
    path = np.stack([xs, ys, f.at(xs, ys) + 0.01], axis=1)
    first = auto_camera(h, 1.0, path, 12.0, ASPECT)[0]
    state = {"target": first.target, "azimuth": first.azimuth, "elevation": first.elevation,
             "distance": first.distance, "fov": 35.0, "roll": 0.0}
    s = f.sample()
    floor = s[s[:, 2] <= np.quantile(s[:, 2], 0.03)]
    assert floor[:, 0].min() > 0.5                                    # the floor is the trench
    assert visible(f, state, floor).mean() > 0.5, first.azimuth
    assert visible(f, state, path[-10:]).mean() > 0.8
