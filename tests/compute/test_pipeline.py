"""compute/pipeline.py: the compute stage as a whole: the entry it writes (grid, path, plane,
metadata, the trained model beside it), cache hits (also from the command line, and after edits
outside the landscape), broken entries computed again, interrupted runs that resume bit for bit,
and every kind of data trained and filmed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from studio import cache
from studio.cache import CacheError
from studio.scene import FORMAT_VERSION, load_scene
from tests.conftest import ROOT, write_scene
from tests.conftest import TINY_SCENE as TINY

#: a smaller scene still, for the broken entry
QUICK = """
landscape:
  data: {name: spirals, samples: 64}
  model: {name: mlp, widths: [4]}
  train: {steps: 10, snapshots: 4}
  grid: {resolution: [6, 5], eval_samples: 32}
"""


def test_a_truncated_entry_is_not_a_cache_hit(tmp_path, capfd):
    from compute.pipeline import run
    torch.set_num_threads(1)
    scene = load_scene(write_scene(tmp_path, QUICK))
    root = tmp_path / "cache"
    entry = run(scene, root, device="cpu", progress=False)
    good = np.load(entry / "loss.npy").copy()
    capfd.readouterr()
    run(scene, root, device="cpu", progress=False)
    assert "nothing to do" in capfd.readouterr().err
    data = (entry / "loss.npy").read_bytes()
    (entry / "loss.npy").write_bytes(data[:len(data) - 40])          # cut short, as by a full disk
    assert cache.problem(root, scene.cache_key()) is not None
    run(scene, root, device="cpu", progress=False)
    err = capfd.readouterr().err
    assert "loss.npy" in err or "not readable" in err, err
    assert "computing it again" in err and "cache hit" not in err
    assert np.array_equal(np.load(entry / "loss.npy"), good)          # recomputed, the same grid


KINDS = '''
import torch

def images():                                   # no labels: an autoencoder's data
    g = torch.Generator().manual_seed(0)
    return torch.rand(48, 1, 4, 4, generator=g)

def tokens():                                   # sequences and their next tokens
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (40, 6), generator=g)
    return x, torch.roll(x, -1, dims=1), 5

class Tiny(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 4)
        self.out = torch.nn.Linear(4, vocab)

    def forward(self, t):
        return self.out(torch.tanh(self.emb(t)))

def tiny(input_shape, classes):
    return Tiny(classes)
'''


def test_every_kind_of_data_trains_and_films(tmp_path):
    """Regression, data without labels and token sequences, trained by the studio end to end;
    accuracy appears only where there are classes."""
    from compute.pipeline import run
    torch.set_num_threads(1)
    (tmp_path / "kinds.py").write_text(KINDS)
    cases = {
        "regression": ("{name: regression, function: chirp, samples: 64}", "{name: mlp, widths: [6]}", "mse"),
        "unlabelled": ("{name: custom, entry: 'kinds:images'}", "{name: mlp, widths: [3]}", "mse"),
        "tokens": ("{name: custom, entry: 'kinds:tokens'}", "{name: custom, entry: 'kinds:tiny'}", "cross_entropy"),
    }
    for kind, (data, model, loss) in cases.items():
        text = f"""
            landscape:
              data: {data}
              model: {model}
              loss: {loss}
              train: {{steps: 12, snapshots: 4}}
              grid: {{resolution: [5, 4], eval_samples: 24}}
            """
        scene = load_scene(write_scene(tmp_path, text, f"{kind}.yaml"))
        ls = cache.read(tmp_path / "cache", scene.cache_key()) if run(scene, tmp_path / "cache", device="cpu",
                                                                      progress=False) else None
        assert ls.meta["data"]["kind"] == kind and np.isfinite(ls.loss).all()
        log = ls.meta["training"]["log"]
        assert log["eval_loss"][-1] < log["eval_loss"][0], kind          # it learned something
        has_accuracy = kind == "tokens"
        assert (log["eval_accuracy"][-1] is not None) == has_accuracy, kind


# --------------------------------------------------------------------------- the entry and cache hits

def compute_cli(scene: Path, cache_dir: Path, *extra: str, env: dict | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "compute", str(scene), "--cache-dir", str(cache_dir),
                           "--device", "cpu", "--quiet", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny scene computed once with compute.pipeline.run -> (scene path, cache root, entry dir)."""
    import torch
    from compute.pipeline import run
    tmp = tmp_path_factory.mktemp("tiny")
    scene_path = write_scene(tmp, TINY, "tiny.yaml")
    root = tmp / "cache"
    n = torch.get_num_threads()
    torch.set_num_threads(1)        # small tensors: a second thread only costs on a busy machine
    try:
        entry = run(load_scene(scene_path), root, device="cpu", progress=False)
    finally:
        torch.set_num_threads(n)
    return scene_path, root, entry


def test_pipeline_entry(tiny):
    scene_path, root, entry = tiny
    scene = load_scene(scene_path)
    key = scene.cache_key()
    assert entry == root / key
    # no partial or temporary left; the trained model is stored beside the entry (cache/models/)
    assert sorted(p.name for p in root.iterdir()) == sorted([key, "models"])
    assert [p.name for p in (root / "models").iterdir()] == [scene.train_key()]
    ls = cache.read(root, key)

    assert ls.loss.shape == (20, 24) and ls.loss.dtype == np.float32
    assert np.all(np.isfinite(ls.loss))
    assert ls.alpha.shape == (24,) and ls.beta.shape == (20,)
    assert np.all(np.diff(ls.alpha) > 0) and np.all(np.diff(ls.beta) > 0)

    p = ls.paths["training"]
    assert len(p.step) == 20
    assert p.step[0] == 0 and p.step[-1] == 100 and np.all(np.diff(p.step) > 0)
    assert p.xy.shape == (20, 2)
    # the pca extents fit the trajectory with a margin
    assert np.all((p.xy[:, 0] > ls.alpha[0]) & (p.xy[:, 0] < ls.alpha[-1]))
    assert np.all((p.xy[:, 1] > ls.beta[0]) & (p.xy[:, 1] < ls.beta[-1]))
    assert ls.alpha[0] < 0 < ls.alpha[-1] and ls.beta[0] < 0 < ls.beta[-1]
    # the plane is centred on the final weights: the last snapshot is its origin, on the plane,
    # and the surface there is the true loss
    np.testing.assert_allclose(p.xy[-1], [0, 0], atol=1e-5)
    assert p.offplane[-1] < 1e-4
    assert p.surface_loss[-1] == pytest.approx(p.loss[-1], rel=1e-4)
    assert np.all(p.offplane >= 0)
    # training made progress
    assert p.loss[-1] < p.loss[0]

    m = ls.meta
    assert m["key"] == key and m["format_version"] == FORMAT_VERSION
    assert m["landscape"] == scene.landscape.model_dump(mode="json")
    assert m["title"] == "tiny" and m["scene"] == str(scene_path)
    assert m["parameters"] == 2 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2
    assert m["device"] == "cpu"
    t = m["timings"]
    for k in ("train_s", "grid_s", "total_s"):
        assert t[k] >= 0
    assert t["total_s"] >= t["grid_s"]
    assert t["resumed_from_row"] == 0
    s = m["loss_stats"]
    assert s["nonfinite"] == 0
    assert s["min"] == pytest.approx(float(ls.loss.min()))
    assert s["max"] == pytest.approx(float(ls.loss.max()))
    assert s["min"] <= s["median"] <= s["max"] and s["min"] <= s["mean"] <= s["max"]
    assert m["plane"]["method"] == "pca"
    assert m["plane"]["extent"] == [[ls.alpha[0], ls.alpha[-1]], [ls.beta[0], ls.beta[-1]]]
    assert len(m["plane"]["explained_variance_ratio"]) == 2
    assert m["data"]["eval_samples"] == 128


def test_second_run_is_a_cache_hit(tiny, tmp_path):
    scene_path, root, entry = tiny
    before = {f.name: f.stat().st_mtime_ns for f in entry.iterdir()}
    t0 = time.perf_counter()
    r = compute_cli(scene_path, root)
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert "cache hit" in r.stderr and str(entry) in r.stderr
    assert "training" not in r.stderr and "wrote" not in r.stderr
    assert elapsed < 30
    assert {f.name: f.stat().st_mtime_ns for f in entry.iterdir()} == before

    # editing only the render: section (and the title) finds the same entry
    edited = write_scene(tmp_path, TINY.replace("fps: 24", "fps: 60")
                         .replace("azimuth: 40", "azimuth: 90").replace("title: tiny", "title: other"), "tiny.yaml")
    r = compute_cli(edited, root)
    assert r.returncode == 0 and "cache hit" in r.stderr, r.stderr
    assert {f.name: f.stat().st_mtime_ns for f in entry.iterdir()} == before
    assert sorted(p.name for p in root.iterdir()) == sorted([entry.name, "models"])


# --------------------------------------------------------------------------- interrupted runs

BIG = """
title: resumable
landscape:
  data: {samples: 1024}
  model: {widths: [16, 16]}
  train: {steps: 60, snapshots: 12}
  grid: {resolution: [200, 400], eval_samples: 1024}
"""


@pytest.mark.slow
def test_interrupted_run_resumes_bit_for_bit(tmp_path):
    scene_path = write_scene(tmp_path, BIG, "big.yaml")
    key = load_scene(scene_path).cache_key()
    root = tmp_path / "cache"
    part = cache.partial_dir(root, key)
    progress = part / "progress.json"
    # one thread in every run: the same arithmetic in each, and no thread thrash on a busy machine
    env = dict(os.environ, OMP_NUM_THREADS="1")

    with open(tmp_path / "first.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "compute", str(scene_path), "--cache-dir", str(root),
                                 "--device", "cpu", "--quiet"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        seen = 0
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"the run ended (status {proc.returncode}) before it could be interrupted: "
                                + (tmp_path / "first.err").read_text())
                try:
                    seen = json.loads(progress.read_text())["rows_done"]
                except (FileNotFoundError, ValueError, KeyError):
                    seen = 0
                if seen > 0:
                    break
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert seen > 0, "no grid rows written within the time limit"

    # no finished entry: only the work in progress
    assert not cache.entry_dir(root, key).exists()
    assert not cache.exists(root, key)
    assert part.is_dir() and (part / "run.pt").is_file() and (part / "plane.pt").is_file() and (part / "loss.npy").is_file()
    prog = json.loads(progress.read_text())
    assert seen <= prog["rows_done"] < prog["rows"] == 400, "killed after the grid was finished"
    with pytest.raises(CacheError, match="python -m compute"):
        cache.read(root, key)

    # the rerun resumes from the written rows
    r = compute_cli(scene_path, root, env=env)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "wrote" in r.stderr
    assert not part.exists()
    resumed = cache.read(root, key)
    assert resumed.meta["timings"]["resumed_from_row"] >= seen > 0
    assert resumed.meta["timings"]["resumed_from_row"] == prog["rows_done"]

    # ... and gives exactly what an uninterrupted run gives
    fresh_root = tmp_path / "fresh"
    r = compute_cli(scene_path, fresh_root, env=env)
    assert r.returncode == 0, r.stderr
    fresh = cache.read(fresh_root, key)
    assert fresh.meta["timings"]["resumed_from_row"] == 0
    assert np.array_equal(resumed.loss, fresh.loss, equal_nan=True)
    assert np.array_equal(resumed.alpha, fresh.alpha) and np.array_equal(resumed.beta, fresh.beta)
    for f in ("xy", "loss", "surface_loss", "offplane", "step"):
        assert np.array_equal(getattr(resumed.paths["training"], f), getattr(fresh.paths["training"], f)), f
    assert resumed.meta["loss_stats"] == fresh.meta["loss_stats"]


def test_a_cache_hit_lacking_descents_and_figures_builds_the_task_once(tmp_path, monkeypatch, capfd,
                                                                       torch_one_thread):
    """Descents and figures are added to a finished entry with one task (data, model, final
    buffers), as a full run measures them with the task it trained."""
    from compute import pipeline
    from compute.run import build as runs
    from compute.__main__ import main
    p = write_scene(tmp_path, QUICK)
    args = [str(p), "--cache-dir", str(tmp_path / "cache"), "--quiet", "--device", "cpu"]
    assert main(args) == 0
    key = load_scene(p).cache_key()
    for name in ("figures.json", "figures.npz"):
        (cache.entry_dir(tmp_path / "cache", key) / name).unlink()
    with_descent = write_scene(tmp_path, QUICK + "  descents: [{name: sgd, start: [0.1, 0.1], steps: 5}]\n")
    built = []
    real = runs.build_task
    monkeypatch.setattr(runs, "build_task", lambda *a, **k: built.append(1) or real(*a, **k))
    monkeypatch.setattr(pipeline, "build_task", runs.build_task)
    capfd.readouterr()
    assert main([str(with_descent), *args[1:]]) == 0
    assert "computing 1 descent and its figures" in capfd.readouterr().err
    assert len(built) == 1
    assert cache.read_figures(tmp_path / "cache", key) is not None
    assert "sgd" in cache.read(tmp_path / "cache", key, descents=load_scene(with_descent).landscape.descents).paths


def test_a_slow_grid_is_estimated_from_a_timed_chunk_and_comes_with_advice(monkeypatch):
    """Before the rows: the grid's time from one timed pass, and past SLOW_GRID what makes it faster."""
    import torch
    from compute import pipeline
    from compute.engine import GridEngine
    from compute.plane import Plane
    from studio.scene.landscape import GridSpec
    from compute.models import mlp
    torch.manual_seed(0)
    model = mlp(2, [8], 2, "tanh")
    w = {k: v.detach().clone() for k, v in model.named_parameters()}
    engine = GridEngine(model, Plane(w, {k: torch.randn_like(v) for k, v in w.items()},
                                     {k: torch.randn_like(v) for k, v in w.items()}),
                        torch.randn(64, 2), torch.randint(0, 2, (64,)), chunk=16)
    axis = torch.linspace(-1, 1, 100)
    quick = pipeline.estimate(engine, axis, axis, 10_000, GridSpec(eval_samples=64), 1)
    assert quick.startswith("about ") and " points/s" in quick and "faster" not in quick
    monkeypatch.setattr(pipeline, "SLOW_GRID", 0.0)
    slow = pipeline.estimate(engine, axis, axis, 10_000_000, GridSpec(eval_samples=64), 1)
    assert "fewer landscape.grid.eval_samples than 64" in slow and "landscape.grid.resolution" in slow
    assert pipeline._duration(40) == "40 s" and pipeline._duration(420) == "7 minutes"
    assert pipeline._duration(9000) == "2.5 hours"
