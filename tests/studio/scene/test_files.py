"""The shipped scenes: every scenes/*.yaml loads; the camera examples share the default grid; the
Imagenette scene and the skip / no-skip ResNet comparison run through the compute stage in a reduced
form (their own settings, with --set-style overrides for a tiny grid and short training) on tiny
files written in the real on-disk formats (conftest.py).  compute/gpucheck.py, which runs the
Imagenette scene, is tests/compute/test_gpucheck.py's."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from studio import cache
from studio.scene import load_scene
from tests.conftest import ROOT, SCENES, write_cifar, write_imagenette
from tests.conftest import imagenette_overrides as _imagenette_overrides


def _recorded_run(folder) -> None:
    """A small run folder where a scene films one (scenes/charlm.yaml: runs/charlm, which its
    training script writes): loading a scene hashes the files it names."""
    import torch
    from compute.run.recorder import Recorder
    net = torch.nn.Linear(3, 2)
    with Recorder(folder, net, every=1) as rec:
        rec.snapshot(1)


@pytest.mark.parametrize("path", SCENES, ids=[p.name for p in SCENES])
def test_every_scene_file_loads(path, tmp_path, monkeypatch):
    if re.search(r"^\s+weights:\s*\{run:", path.read_text(), re.M):   # its run folder, from the working directory
        monkeypatch.chdir(tmp_path)
        _recorded_run(tmp_path / "runs" / path.stem)
    scene = load_scene(path)
    assert scene.source == str(path)
    if scene.compare is not None:
        panels = scene.panels()
        assert len(panels) == len(scene.compare.panels) >= 2
        # panels that differ must have entries of their own
        keys = [sc.cache_key() for _, sc in panels]
        assert len(set(keys)) == len(keys)


def test_the_scene_list_is_the_one_the_tests_know():
    names = {p.name for p in SCENES}
    assert {"imagenette_convnet.yaml", "resnet_skip_vs_noskip.yaml", "default.yaml"} <= names


def test_the_resnet_scene_compares_only_the_shortcuts():
    scene = load_scene(ROOT / "scenes" / "resnet_skip_vs_noskip.yaml")
    (c1, a), (c2, b) = scene.panels()
    la, lb = a.landscape.model_dump(mode="json"), b.landscape.model_dump(mode="json")
    assert la["model"]["skip"] is True and lb["model"]["skip"] is False
    assert la["model"]["depth"] == lb["model"]["depth"] == 56
    lb["model"]["skip"] = True
    assert la == lb                                   # everything else is the same
    assert la["plane"]["method"] == "random" and la["plane"]["normalization"] == "filter"
    assert la["plane"]["span"] is None and la["plane"]["range"] is None     # Li et al.'s [-1, 1]
    assert la["data"]["name"] == "cifar10" and la["data"]["download"] is False
    assert scene.compare.shared_scale and "skip" in c1 and "no skip" in c2


def test_example_scenes_load_and_share_one_grid():
    # orbit, flyover and follow fly over the optimizers' landscape (one cache entry for the four); the
    # default film's is the same network and training on a wider window of the same plane
    opt = load_scene(ROOT / "scenes" / "optimizers.yaml")
    for name in ("orbit", "flyover", "follow"):
        scene = load_scene(ROOT / "scenes" / f"{name}.yaml")
        assert scene.cache_key() == opt.cache_key()
        assert any(getattr(e, "shot", None) for e in scene.render.camera)
    assert load_scene(ROOT / "scenes" / "follow.yaml").landscape == opt.landscape
    default = load_scene(ROOT / "scenes" / "default.yaml")
    assert default.train_key() == opt.train_key() and default.cache_key() != opt.cache_key()
    assert default.landscape.plane.margin > opt.landscape.plane.margin


def test_imagenette_scene_computes_on_the_real_folder_layout(tmp_path, torch_one_thread):
    from compute.pipeline import run
    write_imagenette(tmp_path / "data")
    scene = load_scene(ROOT / "scenes" / "imagenette_convnet.yaml", _imagenette_overrides(tmp_path / "data"))
    assert scene.landscape.data.train_samples > 12          # the scene asks for more than there are
    entry = run(scene, tmp_path / "cache", device="cpu", progress=False)
    ls = cache.read(tmp_path / "cache", scene.cache_key())
    assert Path(entry).is_dir() and ls.loss.shape == (6, 6) and np.isfinite(ls.loss).all()
    d = ls.meta["data"]
    # the training split only (4 images per class; the 2 per class under val/ are not used), all of it
    assert d["name"] == "imagenette" and d["classes"] == 3 and d["train_samples"] == 12
    assert d["eval_samples"] == 6 and d["shape"] == [3, 16, 16]
    assert d["split"] == "the data set's training split (a seeded, class-balanced subset)"
    assert ls.meta["engine"]["method"] == "conv" and ls.meta["plane"]["method"] == "pca"
    # 12 images at batch 128: one step an epoch
    assert ls.meta["training"]["steps"] == 2 and len(ls.paths["training"].step) == 3


@pytest.fixture
def cifar_files(tmp_path, monkeypatch):
    """CIFAR-10's python pickle batches (conftest.py: write_cifar, 5 x 10 training images).
    torchvision checks every file's md5, which files written here cannot match: the check is
    replaced by one for the files' existence, as in tests/compute/test_data.py."""
    import os
    import torchvision.datasets.cifar as tvc
    write_cifar(tmp_path / "data")
    monkeypatch.setattr(tvc, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    return tmp_path / "data"


def test_resnet_comparison_computes_both_panels_on_cifar_files(tmp_path, cifar_files, torch_one_thread):
    from compute.pipeline import run
    scene = load_scene(ROOT / "scenes" / "resnet_skip_vs_noskip.yaml",
                       [f"landscape.data.root={cifar_files}", "landscape.data.train_samples=30",
                        "landscape.model.width=2", "landscape.train.epochs=2", "landscape.train.warmup=1",
                        "landscape.train.snapshots=3",
                        "landscape.grid.resolution=[6,6]", "landscape.grid.eval_samples=10"])
    panels = scene.panels()
    grids, metas = [], []
    for _, sc in panels:
        run(sc, tmp_path / "cache", device="cpu", progress=False)
        ls = cache.read(tmp_path / "cache", sc.cache_key())
        assert ls.loss.shape == (6, 6) and np.isfinite(ls.loss).all()
        grids.append(np.array(ls.loss))
        metas.append(ls.meta)
    a, b = metas
    for m in metas:
        d = m["data"]
        assert d["name"] == "cifar10" and d["classes"] == 10 and d["shape"] == [3, 32, 32]
        assert d["train_samples"] == 30 and d["eval_samples"] == 10      # 3 of each class, of 50
        assert d["split"] == "the data set's training split (a seeded, class-balanced subset)"
        assert m["plane"]["method"] == "random" and m["plane"]["extent"] == [[-1.0, 1.0], [-1.0, 1.0]]
        assert m["landscape"]["model"]["depth"] == 56 and m["engine"]["method"] == "graph"
    assert a["landscape"]["model"]["skip"] is True and b["landscape"]["model"]["skip"] is False
    # the no-skip net lacks the two 1x1 projection shortcuts and their BatchNorms: at width 2,
    # 2*4 + 4*8 weights, 2 * (4 + 8) BatchNorm weights and biases
    assert a["parameters"] - b["parameters"] == 2 * 4 + 4 * 8 + 2 * (4 + 8)
    assert a["training"]["train_key"] != b["training"]["train_key"]
    assert not np.allclose(grids[0], grids[1])
