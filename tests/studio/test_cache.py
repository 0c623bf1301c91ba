"""studio/cache.py: the cache's format and reader (round trips, damaged entries, the format
version, temporaries of dead writers), extra grids, and the trained-model store.  The compute
stage that fills it is tests/compute/test_pipeline.py's, what a scene's cache key covers
tests/studio/scene/test_keys.py's."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from studio import cache
from studio.cache import CacheError, Landscape, Path2D, TrainedModel
from studio.scene import FORMAT_VERSION
from tests.conftest import synthetic_landscape


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


# --------------------------------------------------------------------------- (b) extra grids

def test_extra_grids_round_trip_through_the_cache(tmp_path):
    ls = synthetic_landscape("a" * 16, accuracy=True)
    cache.write(tmp_path, ls)
    assert (tmp_path / ls.key / "grid_accuracy.npy").is_file()
    back = cache.read(tmp_path, ls.key)
    assert sorted(back.grids) == ["accuracy"] and back.meta["grids"] == ["accuracy"]
    np.testing.assert_array_equal(back.grids["accuracy"], ls.grids["accuracy"])
    assert not back.grids["accuracy"].flags.writeable
    # an entry without extra grids reads with none
    plain = synthetic_landscape("b" * 16)
    cache.write(tmp_path, plain)
    assert cache.read(tmp_path, plain.key).grids == {}


def test_extra_grid_of_the_wrong_shape_is_refused(tmp_path):
    ls = synthetic_landscape("c" * 16)
    bad = cache.Landscape(ls.key, ls.loss, ls.alpha, ls.beta, ls.paths, ls.meta,
                          grids={"accuracy": np.zeros((3, 3), np.float32)})
    with pytest.raises(cache.CacheError, match="grid accuracy: expected shape"):
        cache.write(tmp_path, bad)


# --------------------------------------------------------------------------- (c) the trained-model store

def test_model_store_round_trip(tmp_path):
    params = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    log = {"step": [0, 1, 5, 9], "epoch": [0, 1, 5, 9], "lr": [0.1] * 4, "train_loss": [2.0, 1.0, 0.5, 0.25],
           "train_accuracy": [0.5, 0.6, 0.7, 0.8], "eval_loss": [2.1, 1.1, 0.6, 0.3],
           "eval_accuracy": [0.4, 0.5, 0.6, 0.7]}
    bufs = {"bn.running_mean": np.arange(3, dtype=np.float32), "bn.num_batches_tracked": np.array(9)}
    d = cache.write_model(tmp_path, TrainedModel("0123456789abcdef", params, log, bufs, {"device": "cpu"}))
    assert d == tmp_path / "models" / "0123456789abcdef"
    assert sorted(f.name for f in d.parent.iterdir()) == ["0123456789abcdef"]     # no temporary left
    tm = cache.read_model(tmp_path, "0123456789abcdef")
    assert np.array_equal(tm.params, params) and tm.params.dtype == np.float32
    assert tm.log["train_loss"].tolist() == log["train_loss"] and tm.log["step"].dtype == np.int64
    assert set(tm.buffers) == set(bufs) and np.array_equal(tm.buffers["bn.running_mean"], bufs["bn.running_mean"])
    assert tm.buffers["bn.num_batches_tracked"].shape == () and tm.buffers["bn.num_batches_tracked"] == 9
    assert tm.meta["device"] == "cpu" and tm.meta["snapshots"] == 4
    # damage: a log shorter than the snapshots, an unknown format
    meta = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps(dict(meta, log=dict(meta["log"], lr=[0.1]))))
    with pytest.raises(CacheError, match="column lr"):
        cache.read_model(tmp_path, "0123456789abcdef")
    (d / "meta.json").write_text(json.dumps(dict(meta, format_version=-1)))
    with pytest.raises(CacheError, match="format version"):
        cache.read_model(tmp_path, "0123456789abcdef")
    with pytest.raises(CacheError, match="steps must be at least 0"):
        cache.write_model(tmp_path, TrainedModel("0123456789abcdef", params, dict(log, step=[0, 2, 2, 4])))


def test_old_entry_without_log_reads(tmp_path):
    cache.write(tmp_path, synthetic_landscape("k1"))
    ls = cache.read(tmp_path, "k1")
    assert cache.training_log(ls.meta) is None


# --------------------------------------------------------------------------- (c) figures

def test_figures_round_trip(tmp_path):
    cache.write(tmp_path, landscape())
    assert cache.read_figures(tmp_path, "k123") is None                    # none measured yet
    mask = np.zeros((5, 7), dtype=bool)
    mask[2, 3] = True
    cache.write_figures(tmp_path, "k123", {"options": {"margin": 0.1}, "figures": {"minimum": {"loss": 0.0}}},
                        {"basin_absolute": mask})
    record, arrays = cache.read_figures(tmp_path, "k123")
    assert record["figures"]["minimum"]["loss"] == 0.0 and np.array_equal(arrays["basin_absolute"], mask)
    assert not arrays["basin_absolute"].flags.writeable


@pytest.mark.parametrize("damage", ["npz cut short", "npz not a zip", "json cut short", "json not utf-8",
                                    "json a list", "json without figures", "npz a folder"])
def test_unreadable_figures_are_none_so_they_are_measured_again(tmp_path, damage):
    """The compute stage (compute/describe.py: current) and ``describe --force`` measure figures
    again when read_figures gives None; an error there would stop both on a damaged file."""
    cache.write(tmp_path, landscape())
    cache.write_figures(tmp_path, "k123", {"options": {}, "figures": {"minimum": {}}},
                        {"basin_absolute": np.ones((5, 7), dtype=bool)})
    d = tmp_path / "k123"
    npz, js = d / "figures.npz", d / "figures.json"
    if damage == "npz cut short":
        npz.write_bytes(npz.read_bytes()[:40])
    elif damage == "npz not a zip":
        npz.write_bytes(b"not an archive at all")
    elif damage == "json cut short":
        js.write_text(js.read_text()[:10])
    elif damage == "json not utf-8":
        js.write_bytes(b"\xff\xfe{")
    elif damage == "json a list":
        js.write_text("[1, 2]")
    elif damage == "json without figures":
        js.write_text('{"options": {}}')
    else:
        npz.unlink()
        npz.mkdir()
    assert cache.read_figures(tmp_path, "k123") is None
    cache.read(tmp_path, "k123")                                           # the entry itself still reads
