"""Image data sets and the ConvNet, end to end: torchvision's own loaders on tiny files the tests
write in each format, the generated shapes, the one-line message for a data set not on disk, an
mlp on images in the grid engine, and a tiny shapes + convnet compute."""
from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from compute.data import DataError, build_data, eval_subset, shapes
from compute.engine import GridEngine, reference_loss
from compute.plane import Plane
from compute.models import build_model
from studio import cache
from studio.scene import LandscapeSpec, SceneError, load_scene
from tests.conftest import ROOT, write_cifar


def spec(name: str, **kw) -> dict:
    """A resolved landscape.data section, as the pipeline sees it."""
    return LandscapeSpec.model_validate({"data": {"name": name, **kw}}).model_dump()["data"]


# --------------------------------------------------------------------------- files in each format

def write_idx(path: Path, arr: np.ndarray) -> None:
    """The MNIST idx format: big-endian magic (0x08 = uint8, then the number of dimensions: 2051 for
    images, 2049 for labels), one big-endian uint32 per dimension, then the bytes."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    path.write_bytes(struct.pack(">I", 0x0800 + arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
                     + arr.tobytes())


def write_mnist(root: Path, folder: str, n: int = 40, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    g = np.random.default_rng(0)
    labels = (np.arange(n) % classes).astype(np.uint8)
    images = (labels[:, None, None] * 20 + g.integers(0, 10, (n, 28, 28))).astype(np.uint8)
    # torchvision checks that all four files exist (no md5s unless it downloads) and reads the train pair
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return images, labels


def write_pngs(folder: Path, classes: list[str], per: int = 4, ext: str = ".png", size=(20, 14)) -> None:
    from PIL import Image
    g = np.random.default_rng(0)
    for k, c in enumerate(classes):
        (folder / c).mkdir(parents=True)
        for i in range(per):
            a = np.full((size[1], size[0], 3), 40 * k, np.uint8) + g.integers(0, 20, (size[1], size[0], 3),
                                                                              dtype=np.uint8)
            Image.fromarray(a).save(folder / c / f"img{i}{ext}", format="PNG" if ext == ".png" else "JPEG")


# --------------------------------------------------------------------------- loaders

@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_formats_load_resize_and_subset(tmp_path, name, folder):
    images, labels = write_mnist(tmp_path, folder)
    x, y, shape, classes, _ = build_data(spec(name, root=str(tmp_path), train_samples=20, size=14, normalize=False))
    assert shape == (1, 14, 14) and x.shape == (20, 1, 14, 14) and x.dtype == torch.float32
    assert classes == 10 and torch.bincount(y, minlength=10).tolist() == [2] * 10     # class-balanced
    assert 0 <= x.min() and x.max() <= 1
    # the mean brightness follows the written label (label * 20 + noise)
    assert torch.allclose(x.mean(dim=(1, 2, 3)) * 255, y.float() * 20 + 4.5, atol=1.0)
    full, _, shape, _, _ = build_data(spec(name, root=str(tmp_path), train_samples=40))
    assert shape == (1, 28, 28) and abs(float(full.mean())) < 20               # normalized
    again = build_data(spec(name, root=str(tmp_path), train_samples=20, size=14, normalize=False))
    assert torch.equal(again[0], x) and torch.equal(again[1], y)               # seeded


def test_cifar10_pickle_batches(tmp_path, monkeypatch):
    """torchvision checks the md5 of every CIFAR-10 file even without a download, and files written
    here cannot have the real ones: the check is replaced by one for the files' existence, which is
    what the test can be honest about.  Everything else (unpickling, HWC layout) is torchvision's."""
    import os
    import torchvision.datasets.cifar as tvc
    write_cifar(tmp_path)
    monkeypatch.setattr(tvc, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    x, y, shape, classes, _ = build_data(spec("cifar10", root=str(tmp_path), train_samples=30, size=16))
    assert shape == (3, 16, 16) and x.shape == (30, 3, 16, 16) and classes == 10
    assert torch.bincount(y, minlength=10).tolist() == [3] * 10
    assert torch.isfinite(x).all()


def test_cifar10_without_the_md5_patch_is_reported_missing(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        build_data(spec("cifar10", root=str(tmp_path)))


def test_image_folder_and_imagenette_layouts(tmp_path):
    write_pngs(tmp_path / "pics", ["cats", "dogs", "owls"], per=4)
    x, y, shape, classes, _ = build_data(spec("folder", root=str(tmp_path / "pics"), size=8, train_samples=9,
                                           normalize=False))
    assert shape == (3, 8, 8) and classes == 3 and torch.bincount(y).tolist() == [3, 3, 3]
    # class k's pixels are about 40 k + 10 (see write_pngs)
    assert torch.allclose(x.mean(dim=(1, 2, 3)) * 255, y.float() * 40 + 9.5, atol=2.0)
    # Imagenette: <root>/imagenette2-160/train/<wnid>/*.JPEG
    write_pngs(tmp_path / "inet" / "imagenette2-160" / "train", ["n01440764", "n02102040"], per=3, ext=".JPEG")
    x, y, shape, classes, _ = build_data(spec("imagenette", root=str(tmp_path / "inet"), size=12))
    assert shape == (3, 12, 12) and x.shape[0] == 6 and classes == 2 and torch.isfinite(x).all()


@pytest.mark.parametrize("name,where", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                        ("cifar10", "cifar-10-batches-py"),
                                        ("imagenette", "imagenette2-320/train"), ("folder", "nothing")])
def test_a_missing_data_set_names_the_path_and_the_key(tmp_path, name, where):
    root = tmp_path / "nothing"
    kw = {"variant": "320px"} if name == "imagenette" else {}
    with pytest.raises(DataError) as e:
        build_data(spec(name, root=str(root), **kw))
    msg = str(e.value)
    assert isinstance(e.value, SceneError) and "\n" not in msg
    assert str(root / where.replace("nothing", "")).rstrip("/") in msg and "root:" in msg
    assert ("download: true" in msg) == (name != "folder")


def test_the_cli_reports_a_missing_data_set_and_leaves_no_cache_entry(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(f"""
        title: missing
        landscape:
          data: {{name: mnist, root: {tmp_path / 'nowhere'}}}
          model: {{name: convnet, channels: [4]}}
          train: {{steps: 5, snapshots: 3}}
          grid: {{resolution: [4, 4], eval_samples: 8}}
    """))
    r = subprocess.run([sys.executable, "-m", "compute", str(p), "--cache-dir", str(tmp_path / "c"), "--quiet",
                        "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("error: ") and "MNIST/raw" in err and "download: true" in err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


# --------------------------------------------------------------------------- shapes, models, engine

def test_shapes_are_seeded_balanced_and_distinct():
    x, y = shapes(64, classes=4, size=16, noise=0.1, seed=3)
    x2, y2 = shapes(64, classes=4, size=16, noise=0.1, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, shapes(64, classes=4, size=16, noise=0.1, seed=4)[0])
    assert x.shape == (64, 1, 16, 16) and torch.bincount(y).tolist() == [16] * 4
    clean, yc = shapes(64, classes=4, size=16, noise=0.0, seed=3)
    area = clean.sum(dim=(1, 2, 3))
    assert (area > 5).all()                                     # every image holds a shape
    # a square of the same half-size covers more than a cross
    assert area[yc == 1].mean() > area[yc == 3].mean()
    rgb, _ = shapes(8, classes=2, size=12, channels=3, seed=0)
    assert rgb.shape == (8, 3, 12, 12)
    _, _, shape, classes, _ = build_data(spec("shapes", samples=32, classes=3, size=12))
    assert shape == (1, 12, 12) and classes == 3


def test_the_engine_on_an_mlp_over_images_matches_the_reference():
    torch.manual_seed(0)
    x, y, shape, n_cls, _ = build_data(spec("shapes", samples=48, size=8))
    ex, ey, _ = eval_subset(x, y, 24, 0)
    model = build_model({"name": "mlp", "widths": [16, 8], "activation": "tanh"}, shape, n_cls)
    assert isinstance(model[0], torch.nn.Flatten)
    params = dict(model.named_parameters())
    plane = Plane({k: v.detach().clone() for k, v in params.items()},
                  {k: torch.randn_like(v) * 0.1 for k, v in params.items()},
                  {k: torch.randn_like(v) * 0.1 for k, v in params.items()})
    engine = GridEngine(model, plane, ex, ey)
    assert engine.method == "linear"
    a = torch.tensor([0.0, 0.5, -1.0])
    b = torch.tensor([0.0, -0.3, 0.7])
    got = engine.losses(a, b)
    ref = torch.tensor([reference_loss(model, plane, float(ai), float(bi), ex, ey) for ai, bi in zip(a, b)])
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_shapes_convnet_end_to_end(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent("""
        title: shapes
        landscape:
          data: {name: shapes, samples: 96, classes: 3, size: 12}
          model: {name: convnet, channels: [4, 8], activation: relu}
          train: {steps: 40, snapshots: 10, lr: 0.01}
          grid: {resolution: [12, 10], eval_samples: 32}
    """))
    c = tmp_path / "cache"
    r = subprocess.run([sys.executable, "-m", "compute", str(p), "--cache-dir", str(c), "--quiet",
                        "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ls = cache.read(c, load_scene(p).cache_key())
    assert ls.loss.shape == (10, 12) and np.isfinite(ls.loss).all()
    meta = ls.meta
    assert meta["engine"]["method"] == "conv"
    assert meta["data"]["name"] == "shapes" and meta["data"]["shape"] == [1, 12, 12]
    assert meta["data"]["train_samples"] == 96 and meta["data"]["eval_samples"] == 32
    assert meta["data"]["classes"] == 3 and meta["data"]["split"] == "generated"
