"""Reading users' checkpoint files (compute/run/checkpoints.py): the common layouts, refusal of files
that would need code execution (and proof that none ran), damaged files, mismatch messages, steps
from file names."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from compute.run.checkpoints import (CheckpointError, fit_state_dict, load_state_dict,  # noqa: E402
                                 order_by_step, step_from_name)
from compute.errors import DataError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

KEY = "landscape.weights.files"


def tiny() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def trained_sd() -> dict[str, torch.Tensor]:
    """A state dict unlike tiny()'s fresh one, BatchNorm statistics included."""
    m = tiny()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.5)
    m(torch.randn(8, 3))             # training mode: updates running stats and the counter
    return m.state_dict()


def one_line(e: pytest.ExceptionInfo, *parts: str) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{KEY}: ")
    for p in parts:
        assert p in msg, (p, msg)
    return msg


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------- layouts

@pytest.mark.parametrize("layout", ["bare", "lightning", "ddp", "model", "model_state_dict", "net",
                                    "lightning+ddp", "compiled"])
def test_layouts_load_and_fit_to_the_same_tensors(tmp_path, layout):
    sd = trained_sd()
    prefixed = lambda p: {p + k: v for k, v in sd.items()}  # noqa: E731
    obj = {"bare": sd,
           "lightning": {"state_dict": prefixed("model."), "epoch": 3, "global_step": 120,
                         "optimizer_states": [{"lr": 0.1}], "hyper_parameters": {"lr": 0.1}},
           "ddp": prefixed("module."),
           "model": {"model": sd, "epoch": 7, "best_loss": torch.tensor(0.3)},
           "model_state_dict": {"model_state_dict": sd, "optimizer_state_dict": {"state": {}}},
           "net": {"net": prefixed("module."), "acc": 0.9},
           "lightning+ddp": {"state_dict": prefixed("model.module.")},
           "compiled": prefixed("_orig_mod."),
           }[layout]
    path = tmp_path / "step_10.pt"
    torch.save(obj, path)
    model = tiny()
    fitted = fit_state_dict(model, load_state_dict(path, KEY), path, KEY)
    assert_same(fitted, sd)
    model.load_state_dict(fitted, strict=True)
    assert_same(model.state_dict(), sd)


def test_loaded_tensors_are_detached_contiguous_cpu(tmp_path):
    w = torch.randn(4, 3, requires_grad=True)
    torch.save({"weight": w.t(), "note": "a string", "n": 3}, tmp_path / "a.pt")
    sd = load_state_dict(tmp_path / "a.pt", KEY)
    assert list(sd) == ["weight"]           # non-tensor entries ignored
    t = sd["weight"]
    assert t.device.type == "cpu" and t.is_contiguous() and not t.requires_grad
    assert torch.equal(t, w.detach().t())


def test_a_model_whose_own_names_start_with_model_keeps_them(tmp_path):
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = tiny()
    sd = Holder().state_dict()              # "model.0.weight", ...: the prefix is the model's own
    fitted = fit_state_dict(Holder(), sd, tmp_path / "x.pt", KEY)
    assert list(fitted) == list(sd)


def test_no_state_dict_lists_the_keys_found(tmp_path):
    path = tmp_path / "opt.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, path)
    with pytest.raises(CheckpointError) as e:
        load_state_dict(path, KEY)
    one_line(e, str(path), "no state dict", "epoch, optimizer", "state_dict()")


def test_dtypes_follow_the_model_and_integer_buffers_stay(tmp_path):
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in trained_sd().items()}
    fitted = fit_state_dict(tiny(), sd, tmp_path / "h.pt", KEY)
    assert fitted["0.weight"].dtype == torch.float32
    assert fitted["1.num_batches_tracked"].dtype == torch.int64


def test_missing_num_batches_tracked_is_tolerated(tmp_path):
    sd = {k: v for k, v in trained_sd().items() if not k.endswith("num_batches_tracked")}
    model = tiny()
    fitted = fit_state_dict(model, sd, tmp_path / "old.pt", KEY)
    assert "1.num_batches_tracked" not in fitted
    model.load_state_dict(fitted, strict=False)
    assert torch.equal(model.state_dict()["1.running_mean"], sd["1.running_mean"])


# --------------------------------------------------------------------------- refusing code execution

def _touch(path: str) -> None:
    Path(path).write_text("code from the checkpoint ran")


class Booby:
    """Unpickling this calls _touch(marker): what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


def test_code_in_a_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": trained_sd(), "payload": Booby(marker)}, path)
    with pytest.raises(CheckpointError) as e:
        load_state_dict(path, KEY)
    one_line(e, str(path), "code execution", "torch.save(model.state_dict(), path)")
    assert not marker.exists()
    # the test is meaningful: an unsafe load of the same file does run it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_pickled_whole_model_is_refused(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(tiny(), path)
    with pytest.raises(CheckpointError) as e:
        load_state_dict(path, KEY)
    one_line(e, str(path), "code execution", "Sequential", "model.state_dict()")


# --------------------------------------------------------------------------- damaged files

def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "random":
        path.write_bytes(bytes(torch.randint(0, 256, (400,), generator=torch.Generator().manual_seed(1),
                                             dtype=torch.uint8).tolist()))
    elif kind == "text":
        path.write_text("epoch,loss\n1,0.5\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("truncated", "truncated_legacy"):
        torch.save(trained_sd(), path, _use_new_zipfile_serialization=kind == "truncated")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "plain_pickle":
        import pickle
        path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    return path


@pytest.mark.parametrize("kind", ["random", "text", "empty", "truncated", "truncated_legacy",
                                  "plain_pickle"])
def test_not_a_checkpoint(tmp_path, kind):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(CheckpointError) as e:
        load_state_dict(path, KEY)
    one_line(e, str(path), "not a PyTorch checkpoint")
    assert isinstance(e.value, DataError)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_state_dict(tmp_path / "nope.pt", KEY)
    one_line(e, "nope.pt", "not found")
    with pytest.raises(CheckpointError) as e:
        load_state_dict(tmp_path, KEY)
    one_line(e, str(tmp_path), "is a directory")


# --------------------------------------------------------------------------- safetensors

def test_safetensors_without_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError) as e:
        load_state_dict(path, KEY)
    one_line(e, str(path), "pip install safetensors")


def test_safetensors_loads(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    sd = trained_sd()
    path = tmp_path / "ckpt-000050.safetensors"
    st.save_file({"module." + k: v for k, v in sd.items()}, str(path))
    assert_same(fit_state_dict(tiny(), load_state_dict(path, KEY), path, KEY), sd)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError) as e:
        load_state_dict(path, KEY)
    one_line(e, str(path), "not a readable .safetensors file")


# --------------------------------------------------------------------------- mismatches

def test_mismatch_names_first_missing_unexpected_and_misshaped(tmp_path):
    sd = trained_sd()
    sd["3.weight"] = torch.zeros(5, 4)       # the model's is (2, 4)
    del sd["3.bias"], sd["0.bias"]
    sd["head.weight"] = torch.zeros(1)
    path = tmp_path / "runs" / "a" / "step_10.pt"
    with pytest.raises(CheckpointError) as e:
        fit_state_dict(tiny(), sd, path, KEY)
    one_line(e, f"{path} does not fit the scene's model",
             "2 missing (first: 0.bias)", "1 unexpected (first: head.weight)",
             "1 mis-shaped (first: 3.weight: (5, 4) in the file, (2, 4) in the model)",
             "check landscape.model")


def test_mismatch_with_a_stripped_prefix_names_the_files_key(tmp_path):
    sd = {"module." + k: v for k, v in trained_sd().items()}
    del sd["module.1.running_var"]
    with pytest.raises(CheckpointError) as e:
        fit_state_dict(tiny(), sd, tmp_path / "x.pt", KEY)
    msg = one_line(e, "1 missing (first: 1.running_var)")
    assert "unexpected" not in msg and "mis-shaped" not in msg


def test_a_tutorial_dict_with_its_weights_under_a_name_of_its_own(tmp_path):
    """{'epoch', 'step', 'model_weights', 'optimizer_state_dict', 'loss'}: the one dict of weights is
    found; with two, the scene names one (weights.key), and without a key the message lists the
    file's keys and says how instead of blaming the model."""
    m = tiny()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(8, 3)).sum().backward()
    opt.step()
    sd = trained_sd()
    path = tmp_path / "ckpt_25.pt"
    torch.save({"epoch": 1, "step": 25, "model_weights": sd, "optimizer_state_dict": opt.state_dict(),
                "loss": torch.tensor(0.31)}, path)
    got = load_state_dict(path, KEY)
    assert_same(fit_state_dict(tiny(), got, path, KEY), fit_state_dict(tiny(), sd, path, KEY))
    assert got.found_at == "the file's 'model_weights'"
    other = {k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}
    torch.save({"student": sd, "teacher": other, "loss": torch.tensor(0.31)}, path)
    with pytest.raises(CheckpointError) as e:
        fit_state_dict(tiny(), load_state_dict(path, KEY), path, KEY)
    one_line(e, "does not fit", "1 unexpected (first: loss)", "read from the file's top level",
             "top-level keys are student, teacher, loss", "landscape.weights.key (e.g. key: student")
    assert_same(fit_state_dict(tiny(), load_state_dict(path, KEY, "teacher"), path, KEY),
                fit_state_dict(tiny(), other, path, KEY))
    torch.save({"ema": {"model": other, "decay": 0.99}}, path)
    assert_same(load_state_dict(path, KEY, "ema.model"), {k: v for k, v in other.items()})
    with pytest.raises(CheckpointError) as e:
        load_state_dict(path, KEY, "ema.weights")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("landscape.weights.key: bad value 'ema.weights'")
    assert "has no 'weights' in ema (its keys: model, decay)" in msg
    with pytest.raises(CheckpointError, match="holds a float with no tensors"):
        load_state_dict(path, KEY, "ema.decay")


def test_weights_key_is_for_checkpoint_files(tmp_path):
    from studio.scene import SceneError, load_scene
    from tests.conftest import write_scene
    p = write_scene(tmp_path, "landscape:\n  weights: {run: runs/x, key: model}\n")
    with pytest.raises(SceneError, match="key goes with files"):
        load_scene(p)


# --------------------------------------------------------------------------- steps

@pytest.mark.parametrize("name, step", [("step_1200.pt", 1200), ("epoch=3-step=1200.ckpt", 1200),
                                        ("ckpt-000050.safetensors", 50), ("final.pt", None),
                                        ("runs/v2/model_7.pt", 7), ("0.pt", 0)])
def test_step_from_name(name, step):
    assert step_from_name(Path(name)) == step


def test_order_by_step_from_names_and_from_a_list():
    paths = [Path("b/step_20.pt"), Path("b/step_3.pt"), Path("b/step_100.pt")]
    assert order_by_step(paths, None, KEY) == [(3, paths[1]), (20, paths[0]), (100, paths[2])]
    assert order_by_step(paths, [5, 1, 9], KEY) == [(1, paths[1]), (5, paths[0]), (9, paths[2])]


def test_order_by_step_errors():
    with pytest.raises(CheckpointError) as e:
        order_by_step([Path("step_1.pt"), Path("final.pt")], None, KEY)
    one_line(e, "final.pt", "cannot be read from the file names", "landscape.weights.steps")
    with pytest.raises(CheckpointError) as e:
        order_by_step([Path("a/step_10.pt"), Path("b/epoch=1-step=10.ckpt")], None, KEY)
    one_line(e, "a/step_10.pt", "b/epoch=1-step=10.ckpt", "step 10")
    with pytest.raises(CheckpointError) as e:
        order_by_step([Path("x.pt"), Path("y.pt")], [1], KEY)
    one_line(e, "2 files", "1 steps")
    with pytest.raises(CheckpointError) as e:
        order_by_step([Path("x.pt"), Path("y.pt")], [4, 4], KEY)
    one_line(e, "x.pt", "y.pt", "step 4")
