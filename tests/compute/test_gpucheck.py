"""compute/gpucheck.py: the Imagenette scene's GPU check, tiny, on the CPU: its FLOP count against
a hand count, the seeded stand-in images, the run with a stand-in when Imagenette is missing and
with the real folder layout when it is there, and the one-line message without CUDA."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from studio.scene import load_scene
from tests.conftest import ROOT, write_imagenette
from tests.conftest import imagenette_overrides as _imagenette_overrides


def test_convnet_flops_match_a_hand_count():
    """The Imagenette scene's FLOP figure (its header): 3x3 convolutions with padding 1 at 64, 32,
    16 and 8 pixels (a 2x2 pool after each), then a linear layer from 64 x 4 x 4."""
    from compute.gpucheck import forward_flops
    from compute.models import build_model
    ls = load_scene(ROOT / "scenes" / "imagenette_convnet.yaml").landscape
    model = build_model(ls.model, (3, 64, 64), 10)
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
