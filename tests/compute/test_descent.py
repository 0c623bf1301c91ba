"""In-plane descents (compute/descent.py): the exact gradient, torch.optim's update rules, losses
that agree with the grid's evaluators, descents added to a cached grid without recomputing it, the
reader, divergence, descents that leave the grid.  Their trails are drawn in tests/render/test_look.py
(clipped to the grid) and tests/render/test_render.py (several coloured trails in one frame)."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from compute.data import spirals
from compute.descent import compute_descents, descend, value_and_grad
from compute.engine import GridEngine, loss_fn_on_plane, reference_loss
from compute.plane import Plane
from compute.models import mlp
from studio import cache
from studio.cache import CacheError, canonical_descent, descent_key
from studio.scene import load_scene
from tests.conftest import ROOT, synthetic_landscape, write_scene


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def small_problem(dtype=torch.float64, activation="tanh", widths=(8, 8), seed=0, scale=0.5):
    torch.manual_seed(seed)
    model = mlp(2, list(widths), 2, activation).to(dtype)
    x, y = spirals(96, 2, seed=seed + 1)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    g = torch.Generator().manual_seed(seed + 2)
    d1 = {k: scale * torch.randn(v.shape, generator=g, dtype=dtype) for k, v in origin.items()}
    d2 = {k: scale * torch.randn(v.shape, generator=g, dtype=dtype) for k, v in origin.items()}
    return model, Plane(origin, d1, d2), x.to(dtype), y


def spec(name="d", optimizer="sgd", lr=0.1, momentum=0.9, start=(0.3, -0.2), steps=5):
    return {"name": name, "optimizer": optimizer, "lr": lr, "momentum": momentum, "start": list(start),
            "steps": steps}


# --------------------------------------------------------------------------- the descent itself

def test_gradient_matches_central_differences():
    model, plane, x, y = small_problem()
    f = loss_fn_on_plane(model, plane, x, y)
    F = lambda ab: f(torch.tensor(ab, dtype=torch.float64)).item()
    h = 1e-5
    for ab in ([0.0, 0.0], [0.3, -0.2], [-0.7, 0.45], [1.1, 0.9]):
        ab = np.array(ab)
        v, g = value_and_grad(f, ab)
        fd = np.array([(F(ab + h * e) - F(ab - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-10)
        assert abs(g).max() > 1e-3                 # a real slope, not a flat spot
        assert v == pytest.approx(reference_loss(model, plane, ab[0], ab[1], x, y), rel=1e-12)


def hand_rule(optimizer, lr, m, x0, grad, steps):
    """torch.optim's update rules, written out in NumPy (their default hyper-parameters)."""
    x = np.array(x0, np.float64)
    xs, buf = [x.copy()], None
    m1, v = np.zeros(2), np.zeros(2)
    for t in range(1, steps + 1):
        g = grad(x)
        if optimizer == "sgd":
            x = x - lr * g
        elif optimizer in ("momentum", "nesterov"):
            buf = g.copy() if buf is None else m * buf + g            # dampening 0
            x = x - lr * (g + m * buf if optimizer == "nesterov" else buf)
        elif optimizer == "adam":
            b1, b2, eps = 0.9, 0.999, 1e-8
            m1 = b1 * m1 + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            x = x - lr / (1 - b1 ** t) * m1 / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
        elif optimizer == "rmsprop":
            a, eps = 0.99, 1e-8
            v = a * v + (1 - a) * g * g
            x = x - lr * g / (np.sqrt(v) + eps)
        xs.append(x.copy())
    return np.array(xs)


@pytest.mark.parametrize("optimizer,lr,m", [("sgd", 0.5, 0.9), ("momentum", 0.3, 0.9), ("nesterov", 0.3, 0.8),
                                            ("adam", 0.05, 0.9), ("rmsprop", 0.01, 0.9)])
def test_first_steps_follow_the_update_rule(optimizer, lr, m):
    model, plane, x, y = small_problem()
    f = loss_fn_on_plane(model, plane, x, y)
    s = spec(optimizer=optimizer, lr=lr, momentum=m, steps=6)
    d = descend(f, s)
    want = hand_rule(optimizer, lr, m, s["start"], lambda ab: value_and_grad(f, ab)[1], 6)
    p = d.path
    assert p.xy.shape == (7, 2) and p.xy.dtype == np.float64
    np.testing.assert_allclose(p.xy, want, rtol=1e-10, atol=1e-12)
    assert np.abs(p.xy[-1] - p.xy[0]).max() > 1e-3            # it did move
    # the loss at each point, on the plane: surface = loss, no off-plane distance, steps 0..n
    np.testing.assert_allclose(p.loss, [value_and_grad(f, ab)[0] for ab in p.xy], rtol=1e-12)
    assert np.array_equal(p.surface_loss, p.loss) and not np.any(p.offplane)
    assert np.array_equal(p.step, np.arange(7)) and p.step.dtype == np.int64
    assert d.info["steps_done"] == 6 and d.info["stopped"] is None
    if optimizer != "sgd":       # the rules differ: these are not plain gradient steps
        assert not np.allclose(want, hand_rule("sgd", lr, m, s["start"],
                                               lambda ab: value_and_grad(f, ab)[1], 6))


def test_divergence_ends_the_path_without_error():
    # a ReLU network's loss grows like a polynomial along the plane: a huge step runs away
    model, plane, x, y = small_problem(torch.float32, "relu", (16, 16), scale=1.0)
    f = loss_fn_on_plane(model, plane, x, y)
    s = spec(name="wild", lr=100.0, start=(0.5, 0.5), steps=200)
    d = descend(f, s)
    p = d.path
    assert 1 <= len(p.step) < 201
    assert d.info["stopped"] and "not finite" in d.info["stopped"]
    assert d.info["steps_done"] == len(p.step) - 1
    assert np.all(np.isfinite(p.loss)) and np.all(np.isfinite(p.xy))
    assert p.loss[-1] > 1e3 * p.loss[0]                          # it did run away first
    # such a path is a valid cache entry
    root = Path(__import__("tempfile").mkdtemp())
    try:
        ls = synthetic_landscape("k")
        cache.write(root, cache.Landscape("k", ls.loss, ls.alpha, ls.beta, ls.paths, ls.meta,
                                          descents={d.key: d}))
        back = cache.read(root, "k", descents=[s])
        np.testing.assert_array_equal(back.paths["wild"].xy, p.xy)
        assert back.meta["descents"][d.key]["stopped"] == d.info["stopped"]
    finally:
        shutil.rmtree(root)


def test_descent_key():
    s = spec(name="a", lr=1, start=(-20, 5))
    c = canonical_descent(s)
    assert c["lr"] == 1.0 and isinstance(c["lr"], float) and c["start"] == [-20.0, 5.0]
    canon = json.dumps(c, sort_keys=True, separators=(",", ":"))
    assert descent_key(s) == hashlib.sha256(canon.encode()).hexdigest()[:16]
    assert descent_key(s) == descent_key(dict(s, lr=1.0, start=[-20.0, 5.0]))
    assert descent_key(s) != descent_key(dict(s, name="b"))     # the name is part of it
    assert descent_key(s) != descent_key(dict(s, lr=1.5))


# --------------------------------------------------------------------------- the compute stage and the cache

LANDSCAPE = """
title: tiny descents
landscape:
  data: {samples: 256}
  model: {widths: [12, 12]}
  train: {steps: 60, snapshots: 12}
  grid: {resolution: [20, 16], eval_samples: 96}
"""

DESCENTS = """
  descents:
    - {name: slow, optimizer: sgd, lr: 0.5, start: [-0.3, 0.2], steps: 25}
    - {name: quick, optimizer: adam, lr: 0.05, start: [-0.3, 0.2], steps: 25}
"""


def compute(scene_path: Path, root: Path, capfd=None):
    from compute.pipeline import run
    run(load_scene(scene_path), root, device="cpu", progress=False)
    return capfd.readouterr().err if capfd is not None else None


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The scene with its two descents, computed from scratch -> (scene path, root, key)."""
    tmp = tmp_path_factory.mktemp("fresh")
    p = write_scene(tmp, LANDSCAPE + DESCENTS, "s.yaml")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        compute(p, tmp / "cache")
    finally:
        torch.set_num_threads(n)
    return p, tmp / "cache", load_scene(p).cache_key()


def test_fresh_run_stores_plane_and_descents(fresh):
    p, root, key = fresh
    scene = load_scene(p)
    d = cache.entry_dir(root, key)
    names = sorted(f.name for f in d.iterdir())
    hashes = [descent_key(s) for s in scene.landscape.descents]
    assert names == sorted(["alpha.npy", "beta.npy", "loss.npy", "meta.json", "path_training.npz", "origin.npy",
                            "d1.npy", "d2.npy", "figures.json", "figures.npz"] + [f"descent_{h}.npz" for h in hashes])
    ls = cache.read(root, key, str(p), descents=scene.landscape.descents)
    assert list(ls.paths) == ["training", "slow", "quick"]
    assert set(ls.meta["descents"]) == set(hashes)
    assert ls.meta["descents"][hashes[0]]["spec"] == canonical_descent(scene.landscape.descents[0])
    for name in ("slow", "quick"):
        q = ls.paths[name]
        assert q.name == name and q.xy.shape == (26, 2) and not q.xy.flags.writeable
        np.testing.assert_array_equal(q.xy[0], [-0.3, 0.2])
        assert q.loss[-1] < q.loss[0]
    # the plane vectors: loaded only on request, float32, one entry per parameter
    assert ls.plane is None
    pv = cache.read_plane(root, key)
    n = 2 * 12 + 12 + 12 * 12 + 12 + 12 * 2 + 2
    for a in (pv.origin, pv.d1, pv.d2):
        assert a.shape == (n,) and a.dtype == np.float32 and not a.flags.writeable
    assert ls.meta["parameters"] == n
    # the plane's origin is the final weights: the training path ends there, at the same loss
    model, ex, ey = _evaluation(p, torch.device("cpu"))
    plane = Plane.from_vectors(model, pv, torch.device("cpu"))
    tr = ls.paths["training"]
    assert reference_loss(model, plane, 0.0, 0.0, ex, ey) == pytest.approx(tr.surface_loss[-1], rel=1e-5)


def test_path_losses_match_the_grid_evaluators(fresh):
    p, root, key = fresh
    scene = load_scene(p)
    ls = cache.read(root, key, descents=scene.landscape.descents)
    dev = torch.device("cpu")
    model, ex, ey = _evaluation(p, dev)
    plane = Plane.from_vectors(model, cache.read_plane(root, key), dev)
    engine = GridEngine(model, plane, ex, ey)
    for name in ("slow", "quick"):
        q = ls.paths[name]
        grid = engine.losses(torch.tensor(q.xy[:, 0], dtype=torch.float32),
                             torch.tensor(q.xy[:, 1], dtype=torch.float32)).numpy()
        np.testing.assert_allclose(q.loss, grid, rtol=1e-4)
        for k in (0, 7, len(q.step) - 1):
            ref = reference_loss(model, plane, float(q.xy[k, 0]), float(q.xy[k, 1]), ex, ey)
            assert q.loss[k] == pytest.approx(ref, rel=1e-5)
        np.testing.assert_array_equal(q.surface_loss, q.loss)
        assert not np.any(q.offplane)
    # the grid itself agrees with the engine at its own points (same plane as the descents)
    a, b = ls.alpha[[0, 5, -1]], ls.beta[[0, 3, -1]]
    grid = engine.losses(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(grid, ls.loss[[0, 3, -1], [0, 5, -1]], rtol=1e-5)


def snapshot(d: Path) -> dict:
    return {f.name: f.stat().st_mtime_ns for f in d.iterdir()}


def test_descents_are_added_to_a_cached_grid(fresh, tmp_path, capfd):
    p_fresh, root_fresh, key = fresh
    base = write_scene(tmp_path, LANDSCAPE, "base.yaml")
    root = tmp_path / "cache"
    compute(base, root)
    capfd.readouterr()
    d = cache.entry_dir(root, key)
    grid_files = snapshot(d)
    assert {"origin.npy", "d1.npy", "d2.npy"} <= set(grid_files)
    assert load_scene(base).cache_key() == key                       # descents are not in the key

    # two descents on top of the finished grid: no training, no grid
    scene_path = write_scene(tmp_path, LANDSCAPE + DESCENTS, "with.yaml")
    err = compute(scene_path, root, capfd)
    assert "cache hit" in err and "computing 2 descents" in err, err
    assert "training mlp" not in err and "grid" not in err and "wrote" not in err, err
    after = snapshot(d)
    for name in ("loss.npy", "alpha.npy", "beta.npy", "path_training.npz", "origin.npy", "d1.npy", "d2.npy"):
        assert after[name] == grid_files[name], name
    scene = load_scene(scene_path)
    h = [descent_key(s) for s in scene.landscape.descents]
    assert {f"descent_{x}.npz" for x in h} == set(after) - set(grid_files)
    assert not [f for f in d.iterdir() if ".tmp-" in f.name]
    meta = json.loads((d / "meta.json").read_text())
    assert set(meta["descents"]) == set(h) and meta["descents"][h[1]]["spec"]["optimizer"] == "adam"
    # the same paths as a run that computed the descents with the grid
    added = cache.read(root, key, descents=scene.landscape.descents)
    first = cache.read(root_fresh, key, descents=scene.landscape.descents)
    np.testing.assert_array_equal(added.loss, first.loss)
    for name in ("slow", "quick"):
        for f in ("xy", "loss", "surface_loss", "offplane", "step"):
            np.testing.assert_array_equal(getattr(added.paths[name], f), getattr(first.paths[name], f))

    # a changed learning rate is a new descent (through the command line this time)
    changed = write_scene(tmp_path, (LANDSCAPE + DESCENTS).replace("lr: 0.5", "lr: 0.8"), "changed.yaml")
    r = subprocess.run([sys.executable, "-m", "compute", str(changed), "--cache-dir", str(root), "--device", "cpu",
                        "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(__import__("os").environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr
    assert "cache hit" in r.stderr and "computing 1 descent" in r.stderr and "grid" not in r.stderr, r.stderr
    new = snapshot(d)
    h2 = descent_key(load_scene(changed).landscape.descents[0])
    assert h2 not in h and set(new) - set(after) == {f"descent_{h2}.npz"}
    assert all(new[k] == after[k] for k in after if k != "meta.json")      # nothing else rewritten
    slow2 = cache.read(root, key, descents=load_scene(changed).landscape.descents).paths["slow"]
    assert not np.array_equal(slow2.xy, added.paths["slow"].xy)
    assert set(json.loads((d / "meta.json").read_text())["descents"]) == set(h) | {h2}

    # nothing left to do: nothing is written
    err = compute(changed, root, capfd)
    assert "cache hit" in err and "nothing to do" in err, err
    assert snapshot(d) == new


def _evaluation(scene_path, dev):
    """The scene's model (architecture; the plane gives the weights) and evaluation subset."""
    from compute.run.build import build_task
    task = build_task(load_scene(scene_path), dev)
    return task.model.eval(), task.eval.x, task.eval.y


def test_an_entry_without_plane_vectors_is_computed_again(fresh, tmp_path, capfd):
    p, root_fresh, key = fresh
    root = tmp_path / "cache"
    shutil.copytree(cache.entry_dir(root_fresh, key), cache.entry_dir(root, key))
    d = cache.entry_dir(root, key)
    for f in list(d.glob("descent_*")) + [d / "origin.npy", d / "d1.npy", d / "d2.npy"]:
        f.unlink()
    meta = json.loads((d / "meta.json").read_text())
    meta.pop("descents")
    (d / "meta.json").write_text(json.dumps(meta))
    err = compute(p, root, capfd)
    assert "has no plane vectors; computing it again" in err and "cache hit" not in err, err
    assert cache.read_plane(root, key) is not None
    np.testing.assert_array_equal(cache.read(root, key).loss, cache.read(root_fresh, key).loss)


def test_missing_descent_says_how_to_compute_it(fresh, tmp_path):
    p, root, key = fresh
    extra = spec(name="later", optimizer="nesterov", lr=0.2, start=(0.1, 0.1), steps=10)
    with pytest.raises(CacheError) as ei:
        cache.read(root, key, scene_path="scenes/mine.yaml", descents=[extra])
    msg = str(ei.value)
    assert "'later'" in msg and "nesterov" in msg and "python -m compute scenes/mine.yaml" in msg
    assert cache.missing_descents(root, key, [extra]) == [canonical_descent(extra)]
    # the render stage says the same and stops before drawing anything
    scene = write_scene(tmp_path, (LANDSCAPE + DESCENTS).replace(
        "  descents:\n", "  descents:\n    - {name: later, optimizer: nesterov, lr: 0.2, start: [0.1, 0.1], "
        "steps: 10}\n"), "r.yaml")
    r = subprocess.run([sys.executable, "-m", "render", str(scene), "--cache-dir", str(root), "--still", "0",
                        "--out", str(tmp_path / "x.png")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "'later'" in r.stderr and f"python -m compute {scene}" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_compute_descents_logs_leaving_the_grid(capfd):
    model, plane, x, y = small_problem(torch.float32)
    out = compute_descents([spec(name="far", lr=2.0, start=(0.0, 0.0), steps=40),
                            spec(name="outside", start=(5.0, 0.0), steps=3)],
                           model, plane, x, y, extent=[[-0.05, 0.05], [-0.05, 0.05]])
    err = capfd.readouterr().err
    assert [d.path.name for d in out] == ["far", "outside"]
    assert "'far' leaves the grid at step" in err
    assert "'outside' starts at [5.0, 0.0], outside the grid" in err
