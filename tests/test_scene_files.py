"""The shipped scenes: every scenes/*.yaml loads; the Imagenette scene and the skip / no-skip
ResNet comparison run through the compute stage in a reduced form (their own settings, with
--set-style overrides for a tiny grid and short training) on tiny files written here in the real
on-disk formats; and compute/gpucheck.py's stand-in path, tiny, on the CPU."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from studio import cache
from studio.scene import load_scene
from tests.conftest import ROOT
from tests.test_data import write_cifar

SCENES = sorted((ROOT / "scenes").glob("*.yaml"))
#: Imagenette's WordNet ids (torchvision maps them to class names; any subset of them works)
WNIDS = ["n01440764", "n02102040", "n02979186"]


def write_imagenette(root: Path, per_train: int = 4, per_val: int = 2, size=(40, 30)) -> None:
    """<root>/imagenette2-160/{train,val}/<wnid>/*.JPEG, as the archive unpacks, written with Pillow.
    Each class has its own brightness, so a wrong label order would show in the data."""
    from PIL import Image
    g = np.random.default_rng(0)
    for split, per in (("train", per_train), ("val", per_val)):
        for k, wnid in enumerate(WNIDS):
            d = root / "imagenette2-160" / split / wnid
            d.mkdir(parents=True)
            for i in range(per):
                a = (60 * k + g.integers(0, 40, (size[1], size[0], 3))).astype(np.uint8)
                Image.fromarray(a).save(d / f"{wnid}_{i}.JPEG", format="JPEG")


def _recorded_run(folder) -> None:
    """A small run folder where a scene films one (scenes/charlm.yaml: runs/charlm, which its
    training script writes): loading a scene hashes the files it names."""
    import torch
    from compute.recorder import Recorder
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
    la, lb = a.landscape_dict(), b.landscape_dict()
    assert la["model"]["skip"] is True and lb["model"]["skip"] is False
    assert la["model"]["depth"] == lb["model"]["depth"] == 56
    lb["model"]["skip"] = True
    assert la == lb                                   # everything else is the same
    assert la["plane"]["method"] == "random" and la["plane"]["normalization"] == "filter"
    assert la["plane"]["span"] is None and la["plane"]["range"] is None     # Li et al.'s [-1, 1]
    assert la["data"]["name"] == "cifar10" and la["data"]["download"] is False
    assert scene.compare.shared_scale and "skip" in c1 and "no skip" in c2


def _imagenette_overrides(root: Path) -> list[str]:
    return [f"landscape.data.root={root}", "landscape.data.size=16", "landscape.train.epochs=2",
            "landscape.train.snapshots=3", "landscape.train.log_samples=0",
            "landscape.grid.resolution=[6,6]", "landscape.grid.eval_samples=6"]


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
    """CIFAR-10's python pickle batches (tests/test_data.py: write_cifar, 5 x 10 training images).
    torchvision checks every file's md5, which files written here cannot match: the check is
    replaced by one for the files' existence, as in tests/test_data.py."""
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
        assert m["landscape"]["model"]["depth"] == 56 and m["engine"]["method"] == "vmap"
    assert a["landscape"]["model"]["skip"] is True and b["landscape"]["model"]["skip"] is False
    # the no-skip net lacks the two 1x1 projection shortcuts and their BatchNorms: at width 2,
    # 2*4 + 4*8 weights, 2 * (4 + 8) BatchNorm weights and biases
    assert a["parameters"] - b["parameters"] == 2 * 4 + 4 * 8 + 2 * (4 + 8)
    assert a["training"]["train_key"] != b["training"]["train_key"]
    assert not np.allclose(grids[0], grids[1])


# --------------------------------------------------------------------------- compute/gpucheck.py

def test_convnet_flops_match_a_hand_count():
    """The Imagenette scene's FLOP figure (its header): 3x3 convolutions with padding 1 at 64, 32,
    16 and 8 pixels (a 2x2 pool after each), then a linear layer from 64 x 4 x 4."""
    from compute.gpucheck import forward_flops
    from compute.models import build_model
    ls = load_scene(ROOT / "scenes" / "imagenette_convnet.yaml").landscape_dict()
    model = build_model(ls["model"], (3, 64, 64), 10)
    chans, px, hand = [3, 16, 32, 64, 64], 64, 0
    for cin, cout in zip(chans, chans[1:]):
        hand += 2 * cin * cout * 9 * px * px
        px //= 2
    hand += 2 * 64 * px * px * 10
    assert forward_flops(model, (3, 64, 64)) == hand == 27_152_384


def test_stand_in_images_are_seeded_and_balanced():
    from compute.gpucheck import stand_in
    x, y, c = stand_in(40, 10, 8, seed=1)
    assert x.shape == (40, 3, 8, 8) and c == 10 and torch.bincount(y).tolist() == [4] * 10
    assert torch.equal(x, stand_in(40, 10, 8, seed=1)[0])
    assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1) < 0.1


def _sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def test_gpucheck_times_a_stand_in_when_imagenette_is_missing(tmp_path, capsys, torch_one_thread):
    from compute import gpucheck
    out = tmp_path / "check.json"
    argv = ["--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "c"), "--json", str(out),
            *_sets([f"landscape.data.root={tmp_path / 'nowhere'}", "landscape.data.size=16",
                    "landscape.data.train_samples=20", "landscape.train.epochs=1", "landscape.train.snapshots=3",
                    "landscape.train.log_samples=0", "landscape.grid.resolution=[6,5]",
                    "landscape.grid.eval_samples=10"])]
    rc = gpucheck.main(argv)
    text = capsys.readouterr().out
    assert rc == 0
    assert "Imagenette is not in" in text and "STAND-IN" in text and "points/s" in text
    f = json.loads(out.read_text())
    assert f["stand_in"] is True and f["shape"] == [3, 16, 16] and f["train_samples"] == 20
    assert f["grid"] == [6, 5] and f["eval_samples"] == 10 and f["train_steps"] == 1
    assert f["grid_points_per_s"] > 0 and f["train_s"] > 0 and f["total_s"] >= f["grid_s"]
    # the forward FLOPs of the scene's ConvNet at 16 pixels (the pools take it to 1 x 1)
    assert f["forward_flops_per_image"] == 2 * 9 * (3 * 16 * 256 + 16 * 32 * 64 + 32 * 64 * 16 + 64 * 64 * 4) \
        + 2 * 64 * 10
    meta = json.loads((Path(f["entry"]) / "meta.json").read_text())
    assert meta["data"]["name"] == "custom" and meta["data"]["classes"] == 10
    assert meta["landscape"]["data"]["entry"] == "compute.gpucheck:stand_in"
    assert meta["landscape"]["model"]["name"] == "convnet"
    # a second run recomputes (force): a fresh timing, not the cached entry's
    assert gpucheck.main(argv) == 0 and json.loads(out.read_text())["total_s"] != f["total_s"]


def test_gpucheck_uses_imagenette_when_it_is_there(tmp_path, capsys, torch_one_thread):
    from compute import gpucheck
    write_imagenette(tmp_path / "data")
    rc = gpucheck.main(["--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "c"), "--json",
                        str(tmp_path / "f.json"), *_sets(_imagenette_overrides(tmp_path / "data"))])
    text = capsys.readouterr().out
    assert rc == 0 and "STAND-IN" not in text
    f = json.loads((tmp_path / "f.json").read_text())
    assert f["stand_in"] is False and f["data"] == "imagenette" and f["train_samples"] == 12


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_gpucheck_without_cuda_says_so_in_one_line(capsys):
    from compute import gpucheck
    assert gpucheck.main([]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no CUDA device" in err and "--device cpu" in err
