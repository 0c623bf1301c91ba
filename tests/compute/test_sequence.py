"""The landscape over training (landscape.sequence): grids around training snapshots, computed,
resumed, cached, and morphed from one to the next in the render stage."""
from __future__ import annotations

import numpy as np
import pytest

from studio import cache
from studio.scene import SceneError, load_scene
from tests.conftest import synthetic_sequence

SCENE = """
title: "Learning"
landscape:
  data: {samples: 192}
  model: {widths: [8], activation: tanh}
  train: {steps: 80, snapshots: 24, lr: 0.05}
  plane: {method: PLANE}
  grid: {resolution: [14, 11], eval_samples: 96}
  sequence: {count: 5}
render:
  size: [192, 108]
  fps: 10
  duration: 3
  paths:
    training: {start: 0.2, end: 2.6}
"""


def _scene(tmp_path, plane="pca", extra=""):
    p = tmp_path / "learn.yaml"
    p.write_text(SCENE.replace("PLANE", plane) + extra)
    return load_scene(p)


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    """Sequences on a PCA and a random plane, with the setup recomputed independently."""
    import torch
    from compute.pipeline import run
    from compute.plane.fit import fit_plane
    from compute.run.build import build_run, build_task
    torch.set_num_threads(1)
    out = {}
    for plane in ("pca", "random"):
        tmp = tmp_path_factory.mktemp(plane)
        scene = _scene(tmp, plane)
        run(scene, tmp / "cache", device="cpu", progress=False)
        ls = cache.read(tmp / "cache", scene.cache_key())
        task = build_task(scene, torch.device("cpu"))
        r = build_run(scene, task, progress=False)
        setup = {"run": r, "fit": fit_plane(scene.landscape.plane, r, task), "task": task}
        out[plane] = (scene, ls, setup, tmp)
    return out


def _model_and_data(scene, setup):
    task = setup["task"]
    return task.model, task.eval.x, task.eval.y


# --------------------------------------------------------------------------- compute

def test_sequence_grids_are_the_loss_around_each_snapshot(computed):
    """Each grid, checked cell by cell against the plain per-point loss at
    theta_k + (a - a_k) d1 + (b - b_k) d2 (the PCA directions do not depend on the weights)."""
    from compute.engine import reference_loss
    from compute.plane import Plane
    from compute.plane import split
    scene, ls, setup, _ = computed["pca"]
    q = ls.sequence
    ny, nx = ls.loss.shape
    assert q.loss.shape == (len(q.step), ny, nx) and q.loss.dtype == np.float32
    params, steps = setup["run"].params, np.asarray(setup["run"].steps)
    assert q.step[0] == 0 and q.step[-1] == steps[-1] and np.all(np.diff(q.step) > 0)
    assert len(q.step) == 5
    np.testing.assert_array_equal(q.step, steps[q.index])
    np.testing.assert_allclose(q.xy, setup["fit"].xy[q.index])
    model, ex, ey = _model_and_data(scene, setup)
    _, d1, d2 = setup["fit"].plane.flat()
    rng = np.random.default_rng(0)
    for k in range(len(q.step)):
        theta = params[q.index[k]]
        ak, bk = q.xy[k]
        for i, j in rng.integers(0, [ny, nx], size=(3, 2)):
            a, b = ls.alpha[j], ls.beta[i]
            w = theta + float(a - ak) * d1 + float(b - bk) * d2
            zero = torch_zeros_like(w)
            ref = reference_loss(model, Plane(split(model, w), split(model, zero), split(model, zero)), 0.0, 0.0,
                                 ex, ey)
            assert q.loss[k, i, j] == pytest.approx(ref, rel=2e-4, abs=1e-5)


def torch_zeros_like(w):
    import torch
    return torch.zeros_like(w)


def test_each_grid_holds_its_snapshot_at_its_plane_coordinates(computed):
    """The head of the training path sits on the current grid: grid k's plane passes through
    snapshot k at (a_k, b_k), for PCA and for random planes (directions rescaled per snapshot)."""
    from compute.engine import GridEngine, reference_loss
    from compute.plane import Plane, sequence_plane, split
    import torch
    for plane in ("pca", "random"):
        scene, ls, setup, _ = computed[plane]
        q = ls.sequence
        model, ex, ey = _model_and_data(scene, setup)
        params = setup["run"].params
        for k in range(len(q.step)):
            theta = params[q.index[k]]
            _, d1, d2 = setup["fit"].plane.flat()
            pl = sequence_plane(scene.landscape.plane, model, theta, tuple(q.xy[k]), d1, d2)
            eng = GridEngine(model, pl.to("cpu", copy=True), ex, ey)
            at = eng.losses(torch.tensor([q.xy[k][0]], dtype=torch.float32),
                            torch.tensor([q.xy[k][1]], dtype=torch.float32))
            zero = torch.zeros_like(theta)
            direct = reference_loss(model, Plane(split(model, theta), split(model, zero), split(model, zero)),
                                    0.0, 0.0, ex, ey)
            assert float(at[0]) == pytest.approx(direct, rel=1e-4, abs=1e-6)
            assert direct == pytest.approx(setup["run"].trajectory.eval_loss[q.index[k]], rel=1e-4)


def test_random_plane_directions_are_filter_normalized_to_each_snapshot(computed):
    from compute.plane.directions import _groups
    from compute.plane import sequence_plane, split
    scene, ls, setup, _ = computed["random"]
    model, _, _ = _model_and_data(scene, setup)
    params = setup["run"].params
    q = ls.sequence
    for k in (0, len(q.step) - 1):
        theta = params[q.index[k]]
        _, d1, d2 = setup["fit"].plane.flat()
        w, d = split(model, theta), sequence_plane(scene.landscape.plane, model, theta, (0.0, 0.0), d1, d2).d1
        for name in w:
            if w[name].dim() >= 2:
                np.testing.assert_allclose(_groups(d[name], "filter").norm(dim=1).numpy(),
                                           _groups(w[name], "filter").norm(dim=1).numpy(), rtol=1e-5)
            else:
                assert float(d[name].abs().max()) == 0.0        # biases: no direction (Li et al.)


def test_last_grid_of_a_pca_sequence_is_the_still_landscape(computed):
    """The PCA plane's origin is the final weights, so the last grid is the still grid."""
    _, ls, _, _ = computed["pca"]
    np.testing.assert_allclose(ls.sequence.loss[-1], ls.loss, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ls.sequence.loss[0], ls.loss, rtol=1e-3)   # early on the terrain was different


def test_sequence_provenance_and_read_maps_from_disk(computed):
    _, ls, _, _ = computed["pca"]
    m = ls.meta["sequence"]
    assert m["grids"] == 5 and m["steps"] == [int(s) for s in ls.sequence.step]
    assert len(m["loss_stats"]) == 5 and all(s["nonfinite"] == 0 for s in m["loss_stats"])
    assert isinstance(ls.sequence.loss, np.memmap) and not ls.sequence.loss.flags.writeable


def test_interrupted_sequence_resumes_bit_for_bit(computed, tmp_path, monkeypatch):
    """Stopped in the middle of the third grid, a rerun continues there and gives the same grids."""
    import torch
    from compute import pipeline
    from compute.engine import GridEngine
    scene, ls, _, _ = computed["pca"]
    scene = _scene(tmp_path, "pca")
    calls = {"n": 0}
    real = GridEngine.block_all

    def flaky(self, *a, **k):
        # the still grid, then two whole grids of the sequence, then part of the third
        calls["n"] += 1
        if calls["n"] == limit:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    torch.set_num_threads(1)
    # two rows a block (six blocks a grid), and a progress record after every block (the clock
    # jumps a second at each look)
    monkeypatch.setattr(GridEngine, "rows_per_block", lambda self, nx: 2)
    clock = iter(range(10**6))
    monkeypatch.setattr(pipeline.time, "monotonic", lambda: 2.0 * next(clock))
    pipeline.run(scene, tmp_path / "full", device="cpu", progress=False)
    per_grid = 6
    limit = per_grid + 2 * per_grid + 4      # the still grid, two grids, three blocks of the third
    monkeypatch.setattr(GridEngine, "block_all", flaky)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(scene, tmp_path / "cache", device="cpu", progress=False)
    part = cache.partial_dir(tmp_path / "cache", scene.cache_key())
    import json
    prog = json.loads((part / "sequence_progress.json").read_text())
    assert prog["grids_done"] == 2 and 0 < prog["rows_done"] < 11
    monkeypatch.setattr(GridEngine, "block_all", real)
    pipeline.run(scene, tmp_path / "cache", device="cpu", progress=False)
    resumed = cache.read(tmp_path / "cache", scene.cache_key())
    full = cache.read(tmp_path / "full", scene.cache_key())
    np.testing.assert_array_equal(np.asarray(resumed.sequence.loss), np.asarray(full.sequence.loss))
    np.testing.assert_array_equal(resumed.loss, full.loss)


def test_engine_set_plane_equals_a_fresh_engine(torch_one_thread):
    """Moving one (compiled) engine to another plane gives what a new engine on that plane gives."""
    import torch
    from compute.engine import GridEngine
    from compute.plane import Plane
    from compute.models import mlp
    torch.manual_seed(0)
    model = mlp(2, [8, 8], 3, "tanh")
    x, y = torch.randn(40, 2), torch.randint(0, 3, (40,))
    rand = lambda: {k: torch.randn_like(v) for k, v in model.named_parameters()}
    p1, p2 = Plane(rand(), rand(), rand()), Plane(rand(), rand(), rand())
    a, b = torch.linspace(-1, 1, 9), torch.linspace(1, -1, 9)
    for method in ("linear", "graph", "vmap"):
        own = Plane(*({k: v.clone() for k, v in d.items()} for d in (p1.origin, p1.d1, p1.d2)))
        eng = GridEngine(model, own, x, y, method=method, chunk=4)
        first = eng.losses(a, b)
        eng.set_plane(p2)
        torch.testing.assert_close(eng.losses(a, b), GridEngine(model, p2, x, y, method=method).losses(a, b))
        assert not torch.allclose(first, eng.losses(a, b))


# --------------------------------------------------------------------------- scene

@pytest.mark.parametrize("extra, message", [
    ("  descents: [{name: sgd, start: [0, 0]}]\n", "remove landscape.descents or landscape.sequence"),
])
def test_sequence_with_descents_is_refused(tmp_path, extra, message):
    p = tmp_path / "s.yaml"
    p.write_text(SCENE.replace("PLANE", "pca").replace("  sequence: {count: 5}\n", "  sequence: {count: 5}\n" + extra))
    with pytest.raises(SceneError, match=message):
        load_scene(p)


@pytest.mark.parametrize("seq, message", [
    ("{steps: [0, 40, 500]}", r"s.yaml:\d+: landscape.sequence.steps: bad value 500: training runs 80 steps"),
    ("{steps: [0, 40, 20]}", "steps must be increasing"),
    ("{count: 1}", "landscape.sequence.count"),
    ("{spacing: cubic}", "landscape.sequence.spacing"),
])
def test_bad_sequence_keys(tmp_path, seq, message):
    p = tmp_path / "s.yaml"
    p.write_text(SCENE.replace("PLANE", "pca").replace("{count: 5}", seq))
    with pytest.raises(SceneError, match=message):
        load_scene(p)


def test_sequence_changes_the_cache_key(tmp_path):
    a = _scene(tmp_path)
    p = tmp_path / "still.yaml"
    p.write_text(SCENE.replace("PLANE", "pca").replace("  sequence: {count: 5}\n", ""))
    assert load_scene(p).cache_key() != a.cache_key()


# --------------------------------------------------------------------------- render

def test_morph_endpoints_equal_the_grids_and_the_scale_is_shared():
    from render.look import TerrainSequence
    ls = synthetic_sequence()
    ts = TerrainSequence(ls, "linear", 0.5, "magma", 0.5)
    top = ts.heights.top
    for k in range(len(ts)):
        t = ts.at(k)
        assert t.heights is ts.heights                      # one scale for every grid
        np.testing.assert_allclose(t.positions[:, 2].reshape(ts.seq.loss.shape[1:]),
                                   ts.heights.level(ls.sequence.loss[k]) * top, rtol=1e-6, atol=1e-6)
    mid = ts.at(1.5)
    np.testing.assert_allclose(mid.positions[:, 2], (ts.at(1).positions[:, 2] + ts.at(2).positions[:, 2]) / 2,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mid.colors, (ts.at(1).colors + ts.at(2).colors) / 2, atol=1e-5)
    # the same loss is the same height in every grid: the lowest loss of all grids is at 0
    assert ts.heights.lo == pytest.approx(float(ls.sequence.loss.min()))
    assert len(ts._built) <= 2                              # two grids in memory at most
    assert ts.position(0) == 0 and ts.position(3) == 1 and ts.position(4.5) == pytest.approx(1.5)
    assert ts.position(ls.sequence.index[-1]) == len(ts) - 1
    # the ceiling is the highest each cell gets over the sequence
    levels = np.stack([ts.heights.level(g) for g in ls.sequence.loss])
    np.testing.assert_allclose(ts.ceiling, levels.max(axis=0))


def test_film_morphs_and_the_head_rides_the_current_terrain(gl, tmp_path):
    from render.film import Film, Options
    from render.look import _bilinear
    ls = synthetic_sequence()
    p = tmp_path / "m.yaml"
    p.write_text("title: ''\nrender:\n  size: [192, 108]\n  duration: 3\n  paths: {training: {start: 0.2, end: 2.6}}\n")
    scene = load_scene(p)
    film = Film(scene, ls, Options(192, 108, 10, 3.0))
    try:
        early, late = film.frame(0.3), film.frame(2.9)
        assert film.morph_position(0.1) == 0 and film.morph_position(2.9) == len(film.morph) - 1
        assert 0 < film.morph_position(1.4) < len(film.morph) - 1
        assert early.std() > 3 and late.std() > 3
        assert np.abs(early.astype(int) - late.astype(int)).mean() > 2     # the terrain has changed
        film.frame(1.4)
        terrain = film.morph.at(film.morph_position(1.4))
        trail, _ = film.trails[0]
        z = _bilinear(terrain.level, trail.samples[:, 0], trail.samples[:, 1]) * terrain.heights.top
        np.testing.assert_allclose(trail.points[:, 2] - z, trail.lift, atol=1e-5)
    finally:
        film.close()


@pytest.mark.parametrize("spacing", ["log", "linear"])
def test_sequence_indices_are_count_distinct_snapshots_first_to_last(spacing):
    from compute.plane import sequence_indices
    from studio.scene import SequenceSpec
    from compute.run.train import snapshot_steps
    rec = snapshot_steps(1500, 240, "log")
    idx = sequence_indices(rec, SequenceSpec(count=40, spacing=spacing))
    assert len(idx) == 40 and idx[0] == 0 and idx[-1] == len(rec) - 1 and np.all(np.diff(idx) > 0)
    gaps = np.diff(rec[idx])
    if spacing == "linear":
        assert gaps.max() < 2.2 * gaps.mean()                   # about even in steps
    else:
        assert gaps[:5].max() < gaps[-5:].min()                  # dense early, sparse late
        assert rec[idx][10] > 20                                 # not a third of the film on a dozen steps
    few = sequence_indices(np.arange(6), SequenceSpec(count=40, spacing=spacing))
    np.testing.assert_array_equal(few, np.arange(6))             # fewer snapshots than asked: all of them
    explicit = sequence_indices(rec, SequenceSpec(count=24, spacing="log", steps=[0, 100, 101, 1500]))
    assert rec[explicit][0] == 0 and rec[explicit][-1] == 1500 and len(explicit) <= 4


def test_title_card_counts_the_grids_of_a_sequence():
    from render.overlay import describe
    meta = {"landscape": {"model": {"name": "mlp", "widths": [64, 64], "activation": "relu"},
                          "data": {"name": "spirals", "classes": 2}, "plane": {"method": "pca"},
                          "grid": {"resolution": [500, 500]}}, "sequence": {"grids": 40}}
    assert describe(meta).endswith("40 moments of training, 10,250,000 loss evaluations")
    del meta["sequence"]
    assert describe(meta).endswith("250,000 loss evaluations")


def test_follow_track_over_a_morphing_landscape_rides_the_current_terrain(gl, tmp_path):
    """A follow shot's track: at the moment the head passes a point, the point is on the terrain
    shown at that moment (not on the last grid)."""
    from render.film import Film, Options
    from render.look import _bilinear
    ls = synthetic_sequence()
    p = tmp_path / "f.yaml"
    p.write_text("title: ''\nrender:\n  size: [192, 108]\n  duration: 3\n"
                 "  paths: {training: {start: 0.2, end: 2.6}}\n"
                 "  camera:\n    - {t: 0, azimuth: -30, elevation: 40, distance: 4}\n"
                 "    - {shot: follow, path: training, from: 0.5, to: 2.8}\n")
    film = Film(load_scene(p), ls, Options(192, 108, 10, 3.0))
    try:
        track = film.follow_track("training")
        trail, _ = film.trails[0]
        for t in (0.6, 1.2, 1.9, 2.5):
            film.frame(t)                                      # the terrain and trails of time t
            terrain = film.morph.at(film.morph_position(t))
            head_p = film.trail_progress(film.scene.render.paths["training"], t, len(trail.steps))
            current, _ = film.trails[0]
            k = int(np.searchsorted(current.progress, head_p + 1e-9, side="right")) - 1
            z_now = _bilinear(terrain.level, current.samples[k:k + 1, 0], current.samples[k:k + 1, 1])[0]
            np.testing.assert_allclose(track.points[k, 2], z_now * terrain.heights.top + current.lift, atol=2e-3)
            assert current.points[k, 2] == pytest.approx(z_now * terrain.heights.top + current.lift, abs=1e-5)
    finally:
        film.close()
