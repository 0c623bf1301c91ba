"""The cache: its format and reader, the compute pipeline that fills it, cache keys, and
interrupted runs that resume bit for bit."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from studio import cache
from studio.cache import CacheError, Landscape, Path2D
from studio.scene import FORMAT_VERSION, load_scene

ROOT = Path(__file__).resolve().parent.parent


def write_scene(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def compute_cli(scene: Path, cache_dir: Path, *extra: str, env: dict | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "compute", str(scene), "--cache-dir", str(cache_dir),
                           "--device", "cpu", "--quiet", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


# --------------------------------------------------------------------------- (a) format and reader

def landscape(key="k123", nx=7, ny=5, meta=None):
    alpha = np.linspace(-1.0, 2.0, nx)
    beta = np.linspace(-0.5, 0.5, ny)
    loss = np.arange(nx * ny, dtype=np.float32).reshape(ny, nx) / 10
    loss[1, 2] = np.nan
    T = 6
    path = Path2D("training", np.stack([np.linspace(-1, 0, T), np.linspace(0.5, 0, T)], 1),
                  np.linspace(2, 0.1, T), np.linspace(2.1, 0.2, T), np.linspace(0.3, 0, T),
                  np.array([0, 1, 3, 7, 15, 31], dtype=np.int64))
    return Landscape(key, loss, alpha, beta, {"training": path}, meta if meta is not None else {"note": "hi"})


def test_round_trip(tmp_path):
    ls = landscape()
    d = cache.write(tmp_path, ls)
    assert d == tmp_path / "k123"
    assert sorted(p.name for p in d.iterdir()) == ["alpha.npy", "beta.npy", "loss.npy", "meta.json",
                                                   "path_training.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k123"]          # no temporary left over
    assert cache.exists(tmp_path, "k123") and not cache.exists(tmp_path, "other")

    back = cache.read(tmp_path, "k123")
    assert back.key == "k123"
    for name in ("loss", "alpha", "beta"):
        a, b = getattr(ls, name), getattr(back, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=True)
    assert back.loss.dtype == np.float32 and back.alpha.dtype == np.float64
    assert list(back.paths) == ["training"]
    p, q = ls.paths["training"], back.paths["training"]
    for f in ("xy", "loss", "surface_loss", "offplane", "step"):
        assert np.array_equal(getattr(p, f), getattr(q, f)), f
        assert getattr(p, f).dtype == getattr(q, f).dtype
    # arrays come back read-only
    arrays = [back.loss, back.alpha, back.beta] + [getattr(q, f) for f in ("xy", "loss", "step")]
    for a in arrays:
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 0
    assert back.meta["note"] == "hi"
    assert back.meta["key"] == "k123"
    assert back.meta["format_version"] == FORMAT_VERSION
    assert back.meta["paths"] == ["training"]


def test_write_replaces_an_entry(tmp_path):
    cache.write(tmp_path, landscape())
    ls2 = landscape(meta={"note": "second"})
    cache.write(tmp_path, Landscape(ls2.key, ls2.loss * 2, ls2.alpha, ls2.beta, ls2.paths, ls2.meta))
    back = cache.read(tmp_path, "k123")
    assert back.meta["note"] == "second"
    assert np.nanmax(back.loss) == pytest.approx(2 * np.nanmax(landscape().loss))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k123"]


@pytest.mark.parametrize("bad", ["float64_loss", "1d_loss", "alpha_length", "alpha_order", "nan_alpha",
                                 "path_length", "float_steps"])
def test_write_rejects_bad_arrays_and_leaves_nothing(tmp_path, bad):
    ls = landscape()
    p = ls.paths["training"]
    kw = dict(key=ls.key, loss=ls.loss, alpha=ls.alpha, beta=ls.beta, paths=ls.paths, meta=ls.meta)
    if bad == "float64_loss":
        kw["loss"] = ls.loss.astype(np.float64)
    elif bad == "1d_loss":
        kw["loss"] = ls.loss.ravel()
    elif bad == "alpha_length":
        kw["alpha"] = ls.alpha[:-1]
    elif bad == "alpha_order":
        kw["alpha"] = ls.alpha[::-1].copy()
    elif bad == "nan_alpha":
        kw["alpha"] = ls.alpha.copy()
        kw["alpha"][3] = np.nan
    elif bad == "path_length":
        kw["paths"] = {"training": Path2D("training", p.xy[:-1], p.loss, p.surface_loss, p.offplane, p.step)}
    elif bad == "float_steps":
        kw["paths"] = {"training": Path2D("training", p.xy, p.loss, p.surface_loss, p.offplane,
                                          p.step.astype(np.float64))}
    with pytest.raises(CacheError):
        cache.write(tmp_path / "c", Landscape(**kw))
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_missing_entry_says_how_to_make_it(tmp_path):
    with pytest.raises(CacheError) as ei:
        cache.read(tmp_path / "cache", "abcdef0123456789", scene_path="scenes/demo.yaml")
    msg = str(ei.value)
    assert "abcdef0123456789" in msg
    assert "python -m compute scenes/demo.yaml" in msg


def test_wrong_format_version(tmp_path):
    d = cache.write(tmp_path, landscape())
    meta = json.loads((d / "meta.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CacheError) as ei:
        cache.read(tmp_path, "k123", scene_path="s.yaml")
    msg = str(ei.value)
    assert "format version" in msg and str(FORMAT_VERSION + 1) in msg
    assert "python -m compute s.yaml" in msg


@pytest.mark.parametrize("damage", ["alpha_shape", "loss_dtype", "loss_1d", "missing_beta", "path_shape",
                                    "meta_garbage"])
def test_damaged_entry(tmp_path, damage):
    d = cache.write(tmp_path, landscape())
    if damage == "alpha_shape":
        np.save(d / "alpha.npy", np.linspace(0, 1, 3))
    elif damage == "loss_dtype":
        np.save(d / "loss.npy", np.zeros((5, 7)))
    elif damage == "loss_1d":
        np.save(d / "loss.npy", np.zeros(35, np.float32))
    elif damage == "missing_beta":
        (d / "beta.npy").unlink()
    elif damage == "path_shape":
        with np.load(d / "path_training.npz") as z:
            arrays = dict(z)
        arrays["xy"] = arrays["xy"][:, :1]
        np.savez(d / "path_training.npz", **arrays)
    elif damage == "meta_garbage":
        (d / "meta.json").write_text("[1, 2")
    with pytest.raises(CacheError) as ei:
        cache.read(tmp_path, "k123", scene_path="s.yaml")
    assert "python -m compute s.yaml" in str(ei.value)
    assert str(d) in str(ei.value)


# --------------------------------------------------------------------------- (b) the pipeline

TINY = """
title: tiny
landscape:
  data: {samples: 512}
  model: {widths: [16, 16]}
  train: {steps: 100, snapshots: 20}
  grid: {resolution: [24, 20], eval_samples: 128}
render:
  fps: 24
  camera:
    - {t: 0, azimuth: 10}
    - {t: 2, azimuth: 40}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny scene computed once with compute.pipeline.run -> (scene path, cache root, entry dir)."""
    import torch
    from compute.pipeline import run
    tmp = tmp_path_factory.mktemp("tiny")
    scene_path = write_scene(tmp / "tiny.yaml", TINY)
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
    assert m["landscape"] == scene.landscape_dict()
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
    edited = write_scene(tmp_path / "tiny.yaml", TINY.replace("fps: 24", "fps: 60")
                         .replace("azimuth: 40", "azimuth: 90").replace("title: tiny", "title: other"))
    r = compute_cli(edited, root)
    assert r.returncode == 0 and "cache hit" in r.stderr, r.stderr
    assert {f.name: f.stat().st_mtime_ns for f in entry.iterdir()} == before
    assert sorted(p.name for p in root.iterdir()) == sorted([entry.name, "models"])


def key_of(tmp_path: Path, text: str) -> str:
    return load_scene(write_scene(tmp_path / "k.yaml", text)).cache_key()


SAME = {
    "render fps": ("fps: 24", "fps: 12"),
    "camera": ("azimuth: 40", "azimuth: -40"),
    "render look": ("render:\n", "render:\n  look: {colormap: inferno, exaggeration: 1.2}\n"),
    "title": ("title: tiny", "title: something else"),
    "output": ("title: tiny", "title: tiny\noutput: {crf: 30, path: elsewhere.mp4}"),
    "defaults written out": ("eval_samples: 128}", "eval_samples: 128, seed: 0}"),
    "flow vs block style": ("  grid: {resolution: [24, 20], eval_samples: 128}",
                            "  grid:\n    eval_samples: 128\n    resolution:\n      - 24\n      - 20"),
    "comment": ("title: tiny", "# a comment\ntitle: tiny"),
}

DIFFERENT = {
    "grid resolution": ("[24, 20]", "[24, 21]"),
    "eval samples": ("eval_samples: 128", "eval_samples: 64"),
    "model widths": ("widths: [16, 16]", "widths: [16, 8]"),
    "activation": ("widths: [16, 16]", "widths: [16, 16], activation: relu"),
    "data seed": ("samples: 512", "samples: 512, seed: 1"),
    "data samples": ("samples: 512", "samples: 256"),
    "train steps": ("steps: 100", "steps: 101"),
    "plane method": ("  grid:", "  plane: {method: random}\n  grid:"),
    "plane span": ("  grid:", "  plane: {span: 2}\n  grid:"),
}


def test_cache_key_ignores_render_and_presentation(tmp_path):
    base = key_of(tmp_path, TINY)
    assert len(base) == 16 and int(base, 16) >= 0
    for name, (old, new) in SAME.items():
        assert old in TINY, name
        assert key_of(tmp_path, TINY.replace(old, new)) == base, name


def test_cache_key_follows_the_landscape(tmp_path):
    base = key_of(tmp_path, TINY)
    keys = {base}
    for name, (old, new) in DIFFERENT.items():
        assert old in TINY, name
        k = key_of(tmp_path, TINY.replace(old, new))
        assert k != base, name
        keys.add(k)
    assert len(keys) == len(DIFFERENT) + 1


# --------------------------------------------------------------------------- (c) interrupted runs

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
    scene_path = write_scene(tmp_path / "big.yaml", BIG)
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


def test_write_removes_temporaries_of_dead_writers(tmp_path):
    ls = landscape()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".{ls.key}.tmp-{dead.pid}"
    stale.mkdir(parents=True)
    (stale / "loss.npy").write_bytes(b"half")
    cache.write(tmp_path, ls)
    assert not stale.exists()
    assert cache.exists(tmp_path, ls.key)
