"""compute/plane/window.py: the automatic window, probed before the grid, and what the key says of it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compute.plane.window import PROBE_SIDE, probe_window
from studio.scene import scene_from_dict

WINDOW = [[-4.0, 1.0], [-1.0, 1.0]]          # a path from (-4, 0) to the origin, as a PCA fit gives


def bowl(ca, cb, floor=0.01):
    """A loss whose lowest ground is at (ca, cb), rising as a paraboloid."""
    return lambda a, b: floor + 0.3 * ((a - ca) ** 2 + 4 * (b - cb) ** 2)


def test_lower_ground_beyond_where_training_stopped_widens_the_window():
    p = probe_window(WINDOW, bowl(3.0, 0.4))
    assert p.widened and p.outside < p.inside
    (a0, a1), (b0, b1) = p.window
    assert a0 == WINDOW[0][0] and b0 == WINDOW[1][0]                     # grown only where it had to
    assert a1 > 3.0 + 1.0 and b1 >= 1.0 and a1 <= 1.0 + 5.0              # room beyond it, inside the probe
    assert abs(p.at[0] - 3.0) < 5 / (PROBE_SIDE - 1) * 3 + 1e-9 and "window widened" in p.says(WINDOW)


@pytest.mark.parametrize("centre", [(-1.0, 0.2), (-2.5, -0.1)])
def test_a_window_holding_the_lowest_ground_stays(centre):
    p = probe_window(WINDOW, bowl(*centre))
    assert not p.widened and p.window == WINDOW and "holds the lowest ground" in p.says(WINDOW)


def test_barely_lower_ground_or_a_flat_plateau_does_not_widen():
    """Ground 1% of the relief lower is not worth a wider window; a non-finite probe point is skipped."""
    def slight(a, b):
        base = 1.0 + 0.1 * (a + 1.5) ** 2 + 0.1 * b ** 2
        return torch.where(a > 1.5, torch.full_like(a, 0.995), base).masked_fill((a > 4.5) & (b > 2.5), float("nan"))
    p = probe_window(WINDOW, slight)
    assert not p.widened


def _key(plane):
    return scene_from_dict({"landscape": {"plane": plane}}).cache_key()


def test_the_key_says_whether_the_window_is_probed():
    """Leaving plane.margin out probes (a new landscape: its own key); giving 0.35, the margin scenes
    had by default, keeps the key they had; other margins and explicit windows are as before."""
    auto, given = _key({"method": "pca"}), _key({"method": "pca", "margin": 0.35})
    assert auto != given
    assert given == _key({"method": "pca", "margin": 0.35}) != _key({"method": "pca", "margin": 1.5})
    for plane in ({"method": "pca", "span": 2.0}, {"method": "random"}, {"method": "hessian"}):
        assert not scene_from_dict({"landscape": {"plane": plane}}).landscape.plane.auto_window
    assert scene_from_dict({"landscape": {"plane": {"method": "checkpoints", "checkpoints": [0, 10]}}}
                           ).landscape.plane.auto_window


@pytest.mark.slow
def test_the_compute_stage_probes_and_records_the_window(tmp_path):
    from studio import cache
    from compute.pipeline import run
    sc = scene_from_dict({"landscape": {"data": {"name": "spirals", "samples": 64},
                                        "model": {"name": "mlp", "widths": [6]},
                                        "train": {"steps": 30, "snapshots": 5, "lr": 0.05},
                                        "grid": {"resolution": [8, 6], "eval_samples": 48}}})
    run(sc, tmp_path / "cache", device="cpu", progress=False)
    meta = cache.read(tmp_path / "cache", sc.cache_key()).meta
    w = meta["plane"]["window"]
    assert w["probe_side"] == PROBE_SIDE and len(w["fitted"]) == 2 and isinstance(w["widened"], bool)
    (a0, a1), (b0, b1) = meta["plane"]["extent"]
    (f0, f1), (g0, g1) = w["fitted"]
    if w["widened"]:                                   # the fitted window inside a larger one
        assert a0 <= f0 and a1 >= f1 and b0 <= g0 and b1 >= g1 and (a1 - a0) * (b1 - b0) > (f1 - f0) * (g1 - g0)
    else:
        np.testing.assert_allclose([[a0, a1], [b0, b1]], w["fitted"])


def test_a_valley_running_on_beyond_the_edge_widens_the_window():
    """A valley along b = 0 at the same depth beyond the edge: no lower ground, but the descent from
    where training ended leaves the window as deep as inside; the window takes it in."""
    trench = lambda a, b: 0.01 + 2.0 * b ** 2 + 0.0001 * (a + 1) ** 2            # noqa: E731
    ends_outside = (np.array([[0.0, 0.0], [2.0, 0.0], [4.5, 0.02]]), np.array([0.0105, 0.0100, 0.0101]))
    p = probe_window(WINDOW, trench, ends_outside)
    assert p.why == "valley" and p.at == (4.5, 0.02) and p.window[0][1] >= 4.5 and "runs on" not in p.says(WINDOW)
    assert "the valley where training ended running on" in p.says(WINDOW)
    stays_inside = (np.array([[0.0, 0.0], [0.8, 0.0]]), np.array([0.0105, 0.0101]))
    assert not probe_window(WINDOW, trench, stays_inside).widened
    shallower = (np.array([[0.0, 0.0], [4.5, 0.5]]), np.array([0.0105, 0.9]))
    assert not probe_window(WINDOW, trench, shallower).widened


def test_a_basin_cut_off_by_the_edge_gets_its_far_side():
    """The lowest ground inside the window, against its right edge (as a descent from where training
    ended finds it): that edge moves out so the basin has room on every side."""
    at_edge = bowl(0.95, 0.1)                                   # the window ends at a = 1
    p = probe_window(WINDOW, at_edge, (np.array([[0.0, 0.0], [0.95, 0.1]]), np.array([0.3, 0.01])))
    assert p.why == "edge" and p.window[0][0] == WINDOW[0][0] and p.window[0][1] >= 0.95 + 0.25 * 5 - 1e-9
    assert "its basin cut off there" in p.says(WINDOW)
    centred = probe_window(WINDOW, bowl(-2.0, 0.0), (np.array([[0.0, 0.0], [-2.0, 0.0]]), np.array([0.3, 0.01])))
    assert not centred.widened
