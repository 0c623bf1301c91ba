"""The recorder for users' own training loops (compute/run/recorder.py): schedules, snapshot files that
reproduce the weights, the manifest after a crash, overwrite protection, reading a run folder back
and checking its architecture."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from compute.run.checkpoints import CheckpointError, fit_state_dict, load_state_dict  # noqa: E402
from compute.run.recorder import Recorder, check_architecture, read_run  # noqa: E402
from compute.run.train import snapshot_steps  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

KEY = "landscape.weights.run"


def tiny(hidden: int = 6) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, hidden), nn.BatchNorm1d(hidden), nn.Tanh(), nn.Linear(hidden, 2))


def train(rec: Recorder | None, model: nn.Module, steps: range, losses: dict | None = None) -> dict:
    """A plain SGD loop calling rec.snapshot after each update; -> {step: weights after it}."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 3, generator=g), torch.randint(0, 2, (32,), generator=g)
    seen = {}
    for step in steps:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        with torch.no_grad():            # plain SGD by hand: torch.optim's first use imports dynamo (2 s)
            for p in model.parameters():
                p -= 0.1 * p.grad
                p.grad = None
        seen[step] = {k: v.clone() for k, v in model.state_dict().items()}
        if losses is not None:
            losses[step] = loss.item()
        if rec is not None:
            rec.snapshot(step, loss=loss.item())
    return seen


def manifest(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def saved_steps(folder: Path) -> list[int]:
    return [s["step"] for s in manifest(folder)["snapshots"]]


# --------------------------------------------------------------------------- schedules

def test_log_spaced_by_default_and_files_reproduce_the_weights(tmp_path):
    model = tiny()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    losses: dict[int, float] = {}
    rec = Recorder(tmp_path / "run", model, total_steps=60, snapshots=12)
    seen = train(rec, model, range(1, 61), losses)
    rec.close()
    expected = snapshot_steps(60, 12, "log").tolist()
    assert saved_steps(tmp_path / "run") == expected == rec.steps
    assert expected[:4] == [0, 1, 2, 3] and expected[-1] == 60        # dense start, final step
    seen[0] = initial
    run = read_run(tmp_path / "run", KEY)
    assert run.steps == expected
    assert run.losses == [None] + [losses[s] for s in expected[1:]]
    for step, f in zip(run.steps, run.files):
        assert f.name == f"step_{step:08d}.pt"
        sd = torch.load(f, weights_only=True)                           # a bare state dict
        assert list(sd) == list(seen[step])
        for k in sd:
            assert torch.equal(sd[k], seen[step][k]), (step, k)
    # and the checkpoint reader takes the files as they are
    assert all(torch.equal(v, seen[60][k]) for k, v in
               fit_state_dict(tiny(), load_state_dict(run.files[-1], KEY), run.files[-1], KEY).items())


def test_linear_schedule(tmp_path):
    rec = Recorder(tmp_path, tiny(), total_steps=60, snapshots=12, schedule="linear")
    assert [s for s in range(61) if rec.should_save(s)] == snapshot_steps(60, 12, "linear").tolist()


def test_every_k_and_the_final_step_on_close(tmp_path):
    model = tiny()
    with Recorder(tmp_path, model, every=5) as rec:
        train(rec, model, range(1, 24))
    assert saved_steps(tmp_path) == [0, 5, 10, 15, 20, 23]
    assert manifest(tmp_path)["closed"] is True
    assert manifest(tmp_path)["schedule"] == {"kind": "every", "every": 5, "total_steps": None}


def test_open_ended_schedule_is_dense_early_and_sparse_later(tmp_path):
    rec = Recorder(tmp_path, tiny())
    steps = [s for s in range(100_001) if rec.should_save(s)]
    assert steps[:12] == list(range(12))                                 # every early step
    per_decade = [sum(lo <= s < 10 * lo for s in steps) for lo in (10, 100, 1000, 10_000)]
    assert all(22 <= n <= 26 for n in per_decade), per_decade           # about 25 per decade
    # each gap about a tenth of its step (rounding makes neighbouring gaps differ by one)
    assert all(b - a <= 0.1 * a + 1 for a, b in zip(steps, steps[1:]))
    assert min(b - a for a, b in zip(steps, steps[1:]) if a >= 10_000) > 900   # sparse later
    assert manifest(tmp_path)["schedule"] == {"kind": "open-log", "per_decade": 25}


def test_snapshot_returns_whether_it_saved_and_force(tmp_path):
    rec = Recorder(tmp_path, tiny(), every=10)
    assert not rec.should_save(3) and rec.should_save(10)
    assert rec.snapshot(3) is False
    assert rec.snapshot(4, force=True) is True
    assert rec.snapshot(10) is True
    assert saved_steps(tmp_path) == [0, 4, 10]


def test_close_saves_the_last_step_seen_with_its_loss_unless_nothing_was_seen(tmp_path):
    rec = Recorder(tmp_path / "a", tiny(), every=10, initial_loss=0.7)
    rec.snapshot(7, loss=0.25)
    rec.close()
    rec.close()                                                          # closing twice is harmless
    snaps = manifest(tmp_path / "a")["snapshots"]
    assert [(s["step"], s["loss"]) for s in snaps] == [(0, 0.7), (7, 0.25)]
    Recorder(tmp_path / "b", tiny()).close()
    assert saved_steps(tmp_path / "b") == [0]
    with pytest.raises(RuntimeError, match="closed"):
        rec.snapshot(20)


def test_an_exception_in_the_loop_adds_no_final_snapshot(tmp_path):
    with pytest.raises(KeyError):
        with Recorder(tmp_path, tiny(), every=10) as rec:
            rec.snapshot(10)
            rec.snapshot(13)
            raise KeyError("boom")
    assert saved_steps(tmp_path) == [0, 10]
    assert manifest(tmp_path)["closed"] is False


def test_steps_must_increase(tmp_path):
    rec = Recorder(tmp_path, tiny(), every=2)
    with pytest.raises(ValueError, match="initial_loss"):
        rec.snapshot(0, loss=1.0)
    rec.snapshot(4)
    with pytest.raises(ValueError, match="step 4 comes after the saved step 4"):
        rec.snapshot(4)
    with pytest.raises(ValueError, match="steps must increase"):
        rec.snapshot(3)


def test_non_finite_loss_is_recorded_as_null_with_a_warning(tmp_path):
    rec = Recorder(tmp_path, tiny(), every=1)
    with pytest.warns(UserWarning, match="step 1 is nan"):
        rec.snapshot(1, loss=math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec.snapshot(2, loss=torch.tensor(0.5))                         # a 1-element tensor is fine
    assert [s["loss"] for s in manifest(tmp_path)["snapshots"]] == [None, None, 0.5]


# --------------------------------------------------------------------------- files on disk

def test_manifest_after_a_crash_lists_the_saved_steps(tmp_path):
    model = tiny()
    rec = Recorder(tmp_path, model, total_steps=1000, snapshots=30)
    train(rec, model, range(1, 41))                                      # killed at step 40: no close
    doc = manifest(tmp_path)
    assert doc["format"] == 1 and doc["created_by"] == "compute.run.recorder.Recorder"
    assert doc["closed"] is False
    expected = [s for s in snapshot_steps(1000, 30).tolist() if s <= 40]
    assert saved_steps(tmp_path) == expected
    arch = doc["architecture"]
    assert arch["class"] == "Sequential"
    assert arch["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert arch["parameters"][0] == ["0.weight", [6, 3]]
    assert ["1.running_mean", [6]] in arch["buffers"]
    assert all(isinstance(s["time"], float) and s["time"] >= 0 for s in doc["snapshots"])
    assert read_run(tmp_path, KEY).steps == expected
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers == []                                               # no temporary files


def test_an_existing_run_is_not_overwritten_unless_asked(tmp_path):
    Recorder(tmp_path, tiny(), every=1).snapshot(3)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        Recorder(tmp_path, tiny())
    assert saved_steps(tmp_path) == [0, 3]                               # untouched
    Recorder(tmp_path, tiny(), every=1, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run.json", "step_00000000.pt"]
    assert saved_steps(tmp_path) == [0]


def test_bad_constructor_arguments(tmp_path):
    with pytest.raises(ValueError, match="every"):
        Recorder(tmp_path / "a", tiny(), every=0)
    with pytest.raises(ValueError, match="schedule"):
        Recorder(tmp_path / "b", tiny(), total_steps=10, schedule="cosine")


# --------------------------------------------------------------------------- reading a run back

def error(excinfo: pytest.ExceptionInfo, *parts: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.startswith(f"{KEY}: ")
    for p in parts:
        assert p in msg, (p, msg)
    return msg


def test_read_run_errors(tmp_path):
    with pytest.raises(CheckpointError) as e:
        read_run(tmp_path / "nowhere", KEY)
    error(e, "nowhere", "not found")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError) as e:
        read_run(tmp_path / "plain", KEY)
    error(e, "plain", "not a run folder written by compute.run.recorder.Recorder", "landscape.weights.files")

    run = tmp_path / "run"
    rec = Recorder(run, tiny(), every=1)
    rec.snapshot(1)
    rec.snapshot(2)
    good = (run / "run.json").read_text()
    (run / "run.json").write_text(good[: len(good) // 2])
    with pytest.raises(CheckpointError) as e:
        read_run(run, KEY)
    error(e, "run.json", "JSON")

    doc = json.loads(good)
    doc["format"] = 7
    (run / "run.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError) as e:
        read_run(run, KEY)
    error(e, "format 1", "7")

    doc = json.loads(good)
    doc["snapshots"].reverse()
    (run / "run.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError) as e:
        read_run(run, KEY)
    error(e, "out of order")

    (run / "run.json").write_text(good)
    assert read_run(run, KEY).steps == [0, 1, 2]
    (run / "step_00000001.pt").unlink()
    with pytest.raises(CheckpointError) as e:
        read_run(run, KEY)
    error(e, "step_00000001.pt", "missing", str(run))


def test_read_run_refuses_file_names_outside_the_folder(tmp_path):
    Recorder(tmp_path, tiny())
    doc = manifest(tmp_path)
    doc["snapshots"][0]["file"] = "../elsewhere.pt"
    (tmp_path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError) as e:
        read_run(tmp_path, KEY)
    error(e, "no valid list of snapshots")


def test_check_architecture(tmp_path):
    Recorder(tmp_path, tiny(hidden=6))
    run = read_run(tmp_path, KEY)
    check_architecture(run, tiny(hidden=6), KEY)                         # the same network: fine
    with pytest.raises(CheckpointError) as e:
        check_architecture(run, tiny(hidden=5), KEY)
    error(e, "0.weight is (6, 3) in the run, (5, 3) in the model", "landscape.model is not the network")
    with pytest.raises(CheckpointError) as e:
        check_architecture(run, nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6)), KEY)
    error(e, "the run has 3.weight, which the model lacks", "2 only in the run")
    bigger = nn.Sequential(*tiny(hidden=6), nn.Linear(2, 2))
    with pytest.raises(CheckpointError) as e:
        check_architecture(run, bigger, KEY)
    error(e, "the model has 4.weight, which the run lacks")


def test_log_steps_for_a_loop_of_ones_own():
    from compute.run.recorder import log_steps
    steps = log_steps(3000, 60)
    assert steps[0] == 0 and steps[-1] == 3000
    assert steps == sorted(set(steps)) and 40 <= len(steps) <= 60
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert max(gaps[:10]) < min(gaps[-10:])          # densest early, where training moves fastest
    assert log_steps(5, 60) == [0, 1, 2, 3, 4, 5]     # a short run: every step
