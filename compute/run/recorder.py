"""A recorder for a user's own training loop: a few lines that write a run folder a scene can film.

    rec = Recorder("runs/charlm", model, total_steps=2000)    # saves step 0 (the initial weights)
    for step in range(1, 2001):
        ...; loss.backward(); opt.step()
        rec.snapshot(step, loss=loss.item())                    # saves only at scheduled steps
    rec.close()                                                 # the final weights too

Map:
  Recorder                  the schedule (log-spaced, every k, or open-ended), the snapshot files
                            ``step_XXXXXXXX.pt`` (bare state dicts) and the manifest ``run.json``,
                            both written atomically, so a run killed mid-way leaves a usable folder
  read_run(folder, key)     run.json -> RunFolder (plain JSON, no unpickling), validated
  check_architecture(...)   the recorded parameter names and shapes against the scene's model

run.json (format 1):
  {"format": 1, "created_by": "compute.run.recorder.Recorder", "closed": bool,
   "architecture": {"class", "parameters": [[name, shape]], "buffers": [[name, shape]],
                    "parameter_count"},
   "schedule": {"kind": "log" | "linear" | "every" | "open-log", ...},
   "snapshots": [{"step", "file", "loss" (finite float or null), "time" (seconds since start)}]}
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from studio import atomic
from compute.run.checkpoints import CheckpointError
from compute.run.train import snapshot_steps

MANIFEST = "run.json"
FORMAT = 1
#: snapshots per decade of steps when the run's length is unknown (every step up to about 10)
PER_DECADE = 25


def log_steps(total_steps: int, count: int = 60) -> list[int]:
    """The steps to save a checkpoint at, for a training loop of one's own: 0 (the initial weights)
    and ``total_steps``, and log-spaced between, densest early where training moves fastest::

        keep = set(log_steps(3000, 60))
        for step in range(3001):
            ...
            if step in keep:
                torch.save({"step": step, "model_state_dict": model.state_dict()}, f"runs/net/ckpt_{step}.pt")
    """
    return [int(s) for s in snapshot_steps(int(total_steps), int(count), "log")]


def step_file(step: int) -> str:
    return f"step_{step:08d}.pt"


def _atomic_write(path: Path, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it over ``path``: a reader
    (or a crash) sees the old file or the new one, never half of one."""
    atomic.write_file(path, write)


def _open_ended(step: int) -> bool:
    """Whether ``step`` is on the open-ended log grid round(10 ** (k / PER_DECADE)), k = 0, 1, ...:
    every step at first, then ever sparser, for a run of unknown length."""
    if step <= 0:
        return step == 0
    k0 = math.floor(PER_DECADE * math.log10(step))
    return any(round(10 ** (k / PER_DECADE)) == step for k in range(max(k0 - 1, 0), k0 + 3))


def _architecture(model: nn.Module) -> dict:
    return {"class": type(model).__name__,
            "parameters": [[n, list(p.shape)] for n, p in model.named_parameters()],
            "buffers": [[n, list(b.shape)] for n, b in model.named_buffers()],
            "parameter_count": sum(p.numel() for p in model.parameters())}


class Recorder:
    """Saves a model's weights at scheduled steps of a training loop, with a manifest.

    ``every=k``: steps 0, k, 2k, ...; else ``total_steps``: ``snapshots`` steps spaced by
    ``schedule`` ("log" keeps the fast early phase dense, "linear"); else open-ended log spacing.
    Step 0 (the initial weights) is saved here, so make the Recorder before the first update."""

    def __init__(self, folder: str | os.PathLike, model: nn.Module, *, total_steps: int | None = None,
                 snapshots: int = 100, schedule: str = "log", every: int | None = None,
                 overwrite: bool = False, initial_loss: float | None = None) -> None:
        self.folder = Path(folder)
        self.model = model
        self._schedule, self._steps = self._plan(total_steps, snapshots, schedule, every)
        self._prepare_folder(overwrite)
        self._architecture = _architecture(model)
        self._snapshots: list[dict] = []
        self._closed = False
        self._t0 = time.monotonic()
        self._last_seen: tuple[int, float | None] | None = None   # (step, loss) of the latest call
        self._save(0, initial_loss)

    # ----------------------------------------------------------------- schedule

    @staticmethod
    def _plan(total: int | None, count: int, schedule: str,
              every: int | None) -> tuple[dict, set[int] | None]:
        """The manifest's schedule record and the set of steps (None: open-ended)."""
        if every is not None:
            if int(every) < 1:
                raise ValueError(f"Recorder: every must be a positive number of steps, not {every}")
            return {"kind": "every", "every": int(every), "total_steps": total}, None
        if total is None:
            return {"kind": "open-log", "per_decade": PER_DECADE}, None
        if int(total) < 1 or int(count) < 2:
            raise ValueError(f"Recorder: total_steps must be >= 1 and snapshots >= 2 "
                             f"(got {total} and {count})")
        if schedule not in ("log", "linear"):
            raise ValueError(f"Recorder: schedule must be 'log' or 'linear', not {schedule!r}")
        steps = {int(s) for s in snapshot_steps(int(total), int(count), schedule)}
        return {"kind": schedule, "total_steps": int(total), "snapshots": int(count)}, steps

    def should_save(self, step: int) -> bool:
        """Whether ``snapshot(step)`` will save: lets a loop skip computing an expensive loss."""
        kind = self._schedule["kind"]
        if kind == "every":
            total = self._schedule["total_steps"]
            return step % self._schedule["every"] == 0 or (total is not None and step == total)
        if kind == "open-log":
            return _open_ended(step)
        return step in self._steps

    # ----------------------------------------------------------------- recording

    @property
    def steps(self) -> list[int]:
        """The steps saved so far."""
        return [s["step"] for s in self._snapshots]

    def snapshot(self, step: int, loss: float | None = None, force: bool = False) -> bool:
        """Save the weights as they are now as step ``step`` if it is scheduled (or ``force``).

        Call it after the optimizer's update of that step (steps count from 1; step 0 is the
        initial weights the constructor saved). ``loss``: whatever the loop measured for the
        step, typically its batch loss. Returns whether it saved."""
        if self._closed:
            raise RuntimeError(f"Recorder for {self.folder} is closed; make a new one to record more")
        step = int(step)
        last = self._snapshots[-1]["step"]
        if step <= last:
            hint = (" (step 0 is the initial weights, saved when the Recorder was made: pass "
                    "initial_loss= there, and count the loop's steps from 1)" if step == 0 else "")
            raise ValueError(f"Recorder: steps must increase, but step {step} comes after the "
                             f"saved step {last}{hint}")
        self._last_seen = (step, loss)
        if not (force or self.should_save(step)):
            return False
        self._save(step, loss)
        return True

    def close(self, step: int | None = None) -> None:
        """Save the final weights (the last step seen, or ``step``) unless already saved, and mark
        the run complete. Nothing is added when no step after 0 was seen."""
        if self._closed:
            return
        if step is not None and (self._last_seen is None or int(step) != self._last_seen[0]):
            self._last_seen = (int(step), None)
        if self._last_seen is not None and self._last_seen[0] > self._snapshots[-1]["step"]:
            self._save(*self._last_seen)
        self._closed = True
        self._write_manifest()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        # after an exception the weights may be half-updated (or NaN): keep what was saved,
        # whose manifest is already on disk, and add nothing
        if exc_type is None:
            self.close()
        return False

    # ----------------------------------------------------------------- files

    def _prepare_folder(self, overwrite: bool) -> None:
        """Make the folder; refuse to mix with an earlier run unless ``overwrite`` (which removes
        only that run's files: step_*.pt and run.json, never anything else of the user's)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        old = sorted(self.folder.glob("step_*.pt"))
        manifest = self.folder / MANIFEST
        if not (old or manifest.exists()):
            return
        if not overwrite:
            raise FileExistsError(f"Recorder: {self.folder} already holds a recorded run "
                                  f"({MANIFEST} or step_*.pt files); pass overwrite=True to replace "
                                  f"it, or choose another folder")
        for p in old:
            p.unlink()
        manifest.unlink(missing_ok=True)

    def _save(self, step: int, loss: float | None) -> None:
        sd = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.model.state_dict().items()}
        name = step_file(step)
        _atomic_write(self.folder / name, lambda f: torch.save(sd, f))
        self._snapshots.append({"step": step, "file": name, "loss": _clean_loss(loss, step),
                                "time": round(time.monotonic() - self._t0, 3)})
        self._write_manifest()

    def _write_manifest(self) -> None:
        doc = {"format": FORMAT, "created_by": "compute.run.recorder.Recorder", "closed": self._closed,
               "architecture": self._architecture, "schedule": self._schedule,
               "snapshots": self._snapshots}
        text = json.dumps(doc, indent=1, allow_nan=False).encode("utf-8")
        _atomic_write(self.folder / MANIFEST, lambda f: f.write(text))


def _clean_loss(loss: float | None, step: int) -> float | None:
    """A finite float, or None: JSON has no NaN, and a diverged loss is better left out than faked."""
    if loss is None:
        return None
    value = float(loss)
    if not math.isfinite(value):
        warnings.warn(f"Recorder: the loss at step {step} is {value}; recorded as null", stacklevel=4)
        return None
    return value


# --------------------------------------------------------------------------- reading a run folder

@dataclass(frozen=True)
class RunFolder:
    folder: Path
    steps: list[int]
    files: list[Path]
    losses: list[float | None]
    architecture: dict


def read_run(folder: Path, key: str) -> RunFolder:
    """The run in ``folder`` from its run.json (plain JSON: nothing unpickled until a snapshot is
    actually loaded, through compute.run.checkpoints), checked for what a film needs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{key}: run folder {folder} not found; check the path")
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise CheckpointError(f"{key}: {folder} has no {MANIFEST}, so it is not a run folder written "
                              f"by compute.run.recorder.Recorder; for plain checkpoint files use "
                              f"landscape.weights.files")
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{key}: {manifest} cannot be read as JSON ({type(e).__name__}); "
                              f"the run folder is damaged: record the run again") from None
    snaps = _checked_snapshots(doc, manifest, key)
    files = [folder / s["file"] for s in snaps]
    for f in files:
        if not f.is_file():
            raise CheckpointError(f"{key}: {manifest} lists {f.name}, which is missing from {folder}; "
                                  f"restore the file or record the run again")
    return RunFolder(folder=folder, steps=[s["step"] for s in snaps], files=files,
                     losses=[s.get("loss") for s in snaps], architecture=doc["architecture"])


def _checked_snapshots(doc: object, manifest: Path, key: str) -> list[dict]:
    """The manifest's snapshot list, after the checks that make it safe to use."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{key}: {manifest} {what}; record the run again with "
                               f"compute.run.recorder.Recorder")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else None
        raise bad(f"is not a run manifest of format {FORMAT} (format: {got!r})")
    if not isinstance(doc.get("architecture"), dict):
        raise bad("has no architecture record")
    snaps = doc.get("snapshots")
    ok = isinstance(snaps, list) and all(
        isinstance(s, dict) and type(s.get("step")) is int and isinstance(s.get("file"), str)
        and Path(s["file"]).name == s["file"] and isinstance(s.get("loss"), (int, float, type(None)))
        for s in snaps)
    if not ok or not snaps:
        raise bad("has no valid list of snapshots (step, file, loss)")
    steps = [s["step"] for s in snaps]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise bad(f"lists its snapshots out of order or twice (steps {steps[:8]}...)")
    return snaps


def check_architecture(run: RunFolder, model: nn.Module, key: str) -> None:
    """Raise if the recorded parameter names and shapes are not the model's: the snapshots would
    not load, or, worse, a different network's weights would be drawn as this one's."""
    recorded = {name: tuple(shape) for name, shape in run.architecture.get("parameters", [])}
    actual = {name: tuple(p.shape) for name, p in model.named_parameters()}
    missing = [n for n in recorded if n not in actual]
    extra = [n for n in actual if n not in recorded]
    shaped = [n for n in recorded if n in actual and recorded[n] != actual[n]]
    if not (missing or extra or shaped):
        return
    if shaped:
        n = shaped[0]
        first = f"{n} is {recorded[n]} in the run, {actual[n]} in the model"
    elif missing:
        first = f"the run has {missing[0]}, which the model lacks"
    else:
        first = f"the model has {extra[0]}, which the run lacks"
    counts = f"{len(shaped)} mis-shaped, {len(missing)} only in the run, {len(extra)} only in the model"
    raise CheckpointError(f"{key}: {run.folder} recorded a different network ({first}; {counts}): the "
                          f"scene's landscape.model is not the network that was recorded; make it "
                          f"the same architecture")
