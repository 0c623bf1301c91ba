"""compute/__main__.py: bad weights, bad losses and meaningless planes end in one line naming the
scene file, the key and what to do, exit status 2, and nothing left in the cache (python -m compute,
run in this process); a comparison's panels computed in turn, each its own cache entry (one process
and under torchrun)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from compute.__main__ import main
from studio.scene import load_scene
from tests.conftest import torchrun_compute, write_scene

torch.set_num_threads(1)

BASE = """
landscape:
  data: {name: spirals, samples: 64}
  model: {name: mlp, widths: [4]}
  WEIGHTS
  plane: PLANE
  grid: {resolution: [4, 4], eval_samples: 32}
"""


def net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def save_run(folder: Path, steps=(0, 10, 20), same: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(steps):
        torch.save(net(0 if same else i).state_dict(), folder / f"step_{s}.pt")


def run_cli(tmp_path: Path, text: str, capsys) -> tuple[int, str]:
    scene = write_scene(tmp_path, text)
    code = main([str(scene), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err
    return code, err


def assert_clean(tmp_path: Path, code: int, err: str, *pieces: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for p in pieces:
        assert p in lines[0], (p, lines[0])
    cache = tmp_path / "cache"
    left = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert not left, left                            # no entry, no partial entry


def scene(weights: str, plane: str = "{method: pca}") -> str:
    return BASE.replace("WEIGHTS", weights).replace("PLANE", plane)


def test_a_glob_that_matches_nothing(tmp_path, capsys):
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/none/*.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "scene.yaml:4: landscape.weights.files:", "matches no file")


def test_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    save_run(tmp_path / "run")
    (tmp_path / "run" / "step_30.pt").write_text("these are notes, not weights")
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "landscape.weights.files", "step_30.pt", "not a PyTorch checkpoint")


def test_a_state_dict_that_does_not_fit(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    other = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    for s in (0, 10):
        torch.save(other.state_dict(), tmp_path / "run" / f"step_{s}.pt")
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "does not fit the scene's model", "mis-shaped (first: 0.weight: (5, 2) in "
                 "the file, (4, 2) in the model)")


def test_steps_that_cannot_be_read_from_the_names(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    torch.save(net().state_dict(), tmp_path / "run" / "first.pt")
    torch.save(net(1).state_dict(), tmp_path / "run" / "last.pt")
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "landscape.weights", "first.pt", "landscape.weights.steps")


def test_two_checkpoints_with_the_same_step(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    torch.save(net().state_dict(), tmp_path / "run" / "a_step_10.pt")
    torch.save(net(1).state_dict(), tmp_path / "run" / "b_step_10.pt")
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "a_step_10.pt", "b_step_10.pt", "10")


class Payload:
    """Writes a marker file if it is ever unpickled: loading a checkpoint must never run code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).write_text, ("ran",))


def test_a_checkpoint_that_would_run_code(tmp_path, capsys):
    save_run(tmp_path / "run", steps=(0, 10))
    marker = tmp_path / "marker"
    with open(tmp_path / "run" / "step_20.pt", "wb") as f:
        torch.save({"state_dict": net(2).state_dict(), "extra": Payload(str(marker))}, f)
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "step_20.pt", "code")
    assert not marker.exists()


def test_a_pca_plane_over_checkpoints_that_barely_move(tmp_path, capsys):
    save_run(tmp_path / "run", same=True)
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "scene.yaml:5: landscape.plane.method: 'pca'", "barely move",
                 "means nothing")


def test_an_interpolation_between_identical_checkpoints(tmp_path, capsys):
    save_run(tmp_path / "run", same=True)
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}",
                                        "{method: interpolate, checkpoints: [0, 20]}"), capsys)
    assert_clean(tmp_path, code, err, "landscape.plane.checkpoints", "are equal")


def test_one_file_with_a_plane_that_needs_a_path(tmp_path, capsys):
    save_run(tmp_path / "run", steps=(5,))
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/step_5.pt'}}"), capsys)
    assert_clean(tmp_path, code, err, "landscape.plane.method: 'pca' needs a trajectory", "use method: random")


def test_train_and_weights_together(tmp_path, capsys):
    save_run(tmp_path / "run")
    code, err = run_cli(tmp_path, scene(f"weights: {{files: '{tmp_path}/run/*.pt'}}\n  train: {{steps: 5}}"),
                        capsys)
    assert_clean(tmp_path, code, err, "landscape.train is the studio's own training")


LOSSES = '''
import torch
import torch.nn.functional as F

def not_scalar(model, batch):
    return model(batch[0])

def not_tensor(model, batch):
    return 0.5

def fails(model, batch):
    raise RuntimeError("my loss is broken")

def blobs():
    return torch.randn(40, 2), torch.rand(40)            # float targets: a regression
'''


@pytest.mark.parametrize("fn, piece", [
    ("not_scalar", "returned a tensor of shape (8, 2)"),
    ("not_tensor", "returned a float; it should return a scalar torch tensor"),
    ("fails", "raised RuntimeError: my loss is broken (my_losses.py:12)"),
])
def test_a_custom_loss_that_cannot_be_used(tmp_path, capsys, fn, piece):
    (tmp_path / "my_losses.py").write_text(LOSSES)
    text = BASE.replace("  WEIGHTS\n", f"  loss: 'my_losses:{fn}'\n  train: {{steps: 5}}\n").replace(
        "PLANE", "{method: pca}")
    code, err = run_cli(tmp_path, text, capsys)
    assert_clean(tmp_path, code, err, f"landscape.loss.entry: my_losses:{fn}(model, batch)", piece)


def test_cross_entropy_on_float_targets(tmp_path, capsys):
    (tmp_path / "my_losses.py").write_text(LOSSES)
    text = BASE.replace("  data: {name: spirals, samples: 64}\n",
                        "  data: {name: custom, entry: 'my_losses:blobs'}\n").replace(
        "  WEIGHTS\n", "  train: {steps: 5}\n").replace("PLANE", "{method: pca}")
    code, err = run_cli(tmp_path, text, capsys)
    assert_clean(tmp_path, code, err, "landscape.loss: bad value 'cross_entropy'", "float regression targets",
                 "use mse")


def test_editing_the_users_module_changes_the_key(tmp_path):
    from studio.scene import load_scene
    (tmp_path / "my_losses.py").write_text(LOSSES)
    text = BASE.replace("  data: {name: spirals, samples: 64}\n",
                        "  data: {name: custom, entry: 'my_losses:blobs'}\n").replace(
        "  WEIGHTS\n", "  loss: mse\n  train: {steps: 5}\n").replace("PLANE", "{method: pca}")
    p = write_scene(tmp_path, text)
    key, train_key = load_scene(p).cache_key(), load_scene(p).train_key()
    assert load_scene(p).cache_key() == key                      # untouched: the same
    (tmp_path / "my_losses.py").write_text(LOSSES.replace("torch.rand(40)", "torch.rand(40) * 2"))
    assert load_scene(p).cache_key() != key and load_scene(p).train_key() != train_key


def test_compute_runs_each_panel_and_reuses_the_cache(tmp_path, capsys, torch_one_thread):
    from compute.__main__ import main
    from studio import cache
    p = write_scene(tmp_path, """
        landscape:
          data: {samples: 64}
          model: {widths: [4]}
          train: {steps: 10, snapshots: 5}
          grid: {resolution: [6, 5], eval_samples: 32}
        compare:
          panels:
            - caption: tanh
              landscape: {model: {activation: tanh}}
            - caption: relu
              landscape: {model: {activation: relu}}
        """, "cmp.yaml")
    args = [str(p), "--cache-dir", str(tmp_path / "cache"), "--quiet", "--device", "cpu"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "panel 1/2: tanh" in err and "panel 2/2: relu" in err
    keys = [s.cache_key() for _, s in load_scene(p).panels()]
    assert keys[0] != keys[1]
    assert [cache.read(tmp_path / "cache", k).meta["landscape"]["model"]["activation"] for k in keys] == \
        ["tanh", "relu"]
    assert main(args) == 0
    assert capsys.readouterr().err.count("cache hit") == 2


@pytest.mark.slow
def test_compute_panels_under_torchrun(tmp_path, capsys, torch_one_thread):
    # one process group held across the panels; each entry equals a one-process run's
    from compute.__main__ import main
    from studio import cache
    p = write_scene(tmp_path, """
        landscape:
          data: {samples: 128}
          model: {widths: [8]}
          train: {steps: 20, snapshots: 5}
          grid: {resolution: [24, 19], eval_samples: 64}
        compare:
          panels:
            - {caption: tanh, landscape: {model: {activation: tanh}}}
            - {caption: relu, landscape: {model: {activation: relu}}}
        """, "cmp.yaml")
    r = torchrun_compute(p, tmp_path / "two", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("grid on 2 processes") == 2 and "panel 2/2: relu" in r.stderr
    assert main([str(p), "--cache-dir", str(tmp_path / "one"), "--quiet", "--device", "cpu"]) == 0
    for _, s in load_scene(p).panels():
        a, b = cache.read(tmp_path / "one", s.cache_key()), cache.read(tmp_path / "two", s.cache_key())
        assert np.array_equal(a.loss, b.loss) and np.array_equal(a.paths["training"].xy, b.paths["training"].xy)


def test_help_lists_the_other_commands():
    import subprocess
    import sys
    from tests.conftest import ROOT
    r = subprocess.run([sys.executable, "-m", "compute", "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0
    assert "python -m compute describe SCENE" in r.stdout and "python -m compute export SCENE" in r.stdout
