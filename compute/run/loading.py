"""The user's own weights as a run (``landscape.weights``): checkpoint files, one trained model, or a
run folder written by :class:`compute.run.recorder.Recorder`.

The studio does not train here.  The files, sorted by step, are the trajectory; each is opened with
``weights_only=True`` (compute/run/checkpoints.py: no code from a file ever runs), fitted to the scene's
model (prefixes of DataParallel, Lightning and torch.compile removed; a mismatch is one line naming
the keys), and evaluated on the evaluation subset with its own buffers, like the studio's training
evaluates its snapshots.  Files are read one at a time into the (T, P) snapshot matrix, so a long run
of a large model is held in memory once.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from studio.scene import WeightsSpec, section
from compute.run.checkpoints import CheckpointError, fit_state_dict, load_state_dict, order_by_step, step_from_name
from compute.logs import log
from compute.run.train import evaluate
from compute.run.types import Run, Task, Trajectory, flat_params
from studio.fingerprint import expand_files, find_path, user_folders

KEY = "landscape.weights"


#: fewer checkpoints than this: the log says how to save more
FEW = 20


def load_run(spec: WeightsSpec, task: Task, scene_source: str = "") -> Run:
    """The run a resolved ``landscape.weights`` section names, and the task's model set to its final
    weights.  Relative paths are found as studio/fingerprint.py's ``user_folders`` says: the scene's
    folder first, then the working directory."""
    spec = section("weights", spec)
    t0 = time.perf_counter()
    folders = user_folders(scene_source)
    if spec.run:
        ordered, recorded, source = _recorder_files(spec, task, folders)
    else:
        ordered, recorded, source = _checkpoint_files(spec, folders)
    ordered, recorded, final = _with_final(spec, ordered, recorded, folders)
    traj, buffers = _read_all(ordered, recorded, task, final, spec.key)
    traj.info.update(source=source, snapshots=len(ordered), loaded_s=time.perf_counter() - t0)
    task.place_flat(traj.params[final], buffers)
    seconds = time.perf_counter() - t0
    log(f"loaded {len(ordered)} checkpoint{'s' if len(ordered) != 1 else ''} ({source}: steps "
        f"{ordered[0][0]} .. {ordered[-1][0]}) in {seconds:.1f} s")
    if 1 < len(ordered) < FEW:
        log(f"the path has {len(ordered)} checkpoints, so it is drawn as {len(ordered) - 1} straight segments between "
            f"them; for a path that shows where training went, save more, densest early: "
            f"compute.run.recorder.log_steps(total_steps, 60) gives the steps (docs/your-network.md)")
    return Run(traj, final, buffers, source, seconds, None, [str(p) for _, p in ordered])


def _checkpoint_files(spec: WeightsSpec, folders: list[Path]) -> tuple[list[tuple[int, Path]], list, str]:
    try:
        paths = expand_files(spec.files, folders)
    except ValueError as e:
        raise CheckpointError(f"{KEY}.files: {e}") from None
    ordered = order_by_step(paths, spec.steps, f"{KEY}.files") if len(paths) > 1 else \
        [(step_from_name(paths[0]) or 0, paths[0])]
    return ordered, [None] * len(ordered), "checkpoints" if len(paths) > 1 else "weights"


def _recorder_files(spec: WeightsSpec, task: Task, folders: list[Path]) -> tuple[list[tuple[int, Path]], list, str]:
    from compute.run.recorder import check_architecture, read_run
    folder = read_run(find_path(spec.run, folders), f"{KEY}.run")
    check_architecture(folder, task.model, f"{KEY}.run")
    return list(zip(folder.steps, folder.files)), list(folder.losses), "recorder"


def _with_final(spec: WeightsSpec, ordered: list, recorded: list, folders: list[Path]) -> tuple[list, list, int]:
    """The index of the final weights: the last checkpoint, a step of the run, or a file (added to the
    trajectory at the step in its name when it is not one of the checkpoints)."""
    final = spec.final
    steps = [s for s, _ in ordered]
    if final is None:
        return ordered, recorded, len(ordered) - 1
    if isinstance(final, int):
        if final not in steps:
            near = min(steps, key=lambda s: abs(s - final))
            raise CheckpointError(f"{KEY}.final: bad value {final}: no checkpoint at that step (the nearest is "
                                  f"{near}; the run has steps {_few(steps)})")
        return ordered, recorded, steps.index(final)
    path = find_path(final, folders)
    if not path.is_file():
        raise CheckpointError(f"{KEY}.final: bad value {final!r}: no such file")
    for i, (_, p) in enumerate(ordered):
        if p.resolve() == path.resolve():
            return ordered, recorded, i
    step = step_from_name(path)
    if step is None:
        raise CheckpointError(f"{KEY}.final: {final!r} is not one of the checkpoints and its name has no step "
                              f"number; give final as a step of the run ({_few(steps)}) or rename the file")
    if step in steps:
        raise CheckpointError(f"{KEY}.final: {final!r} has step {step}, and so does "
                              f"{ordered[steps.index(step)][1]}; give final as that step instead")
    both = sorted([*ordered, (step, path)], key=lambda sp: sp[0])
    rec = dict(zip([p for _, p in ordered], recorded))
    return both, [rec.get(p) for _, p in both], [p for _, p in both].index(path)


def _few(steps: list[int]) -> str:
    return ", ".join(map(str, steps)) if len(steps) <= 8 else \
        f"{', '.join(map(str, steps[:4]))}, ..., {', '.join(map(str, steps[-2:]))}"


def _read_all(ordered: list, recorded: list, task: Task, final: int, inner: str | None) -> tuple[Trajectory, dict]:
    """Every checkpoint into one (T, P) matrix, evaluated with its own buffers; the final one's
    buffers kept."""
    model = task.model
    n = sum(p.numel() for p in model.parameters())
    params = torch.empty(len(ordered), n, dtype=torch.float32)
    eval_loss, eval_acc = np.empty(len(ordered)), np.empty(len(ordered))
    buffers = {}
    for i, (_, path) in enumerate(ordered):
        sd = fit_state_dict(model, load_state_dict(path, f"{KEY}.files", inner), path, f"{KEY}.files")
        model.load_state_dict(sd, strict=False)
        params[i] = flat_params(model).cpu()
        eval_loss[i], eval_acc[i] = evaluate(model, task.eval.x, task.eval.y, task.loss)
        if i == final:
            buffers = {k: b.detach().cpu().clone() for k, b in model.named_buffers()}
        del sd
    steps = np.array([s for s, _ in ordered], dtype=np.int64)
    nan = np.full(len(ordered), np.nan)
    train_loss = np.array([np.nan if v is None else float(v) for v in recorded])
    info = {"steps": int(steps[-1]), "log_data": "recorded by the user's training (the recorder's loss)"
            if any(v is not None for v in recorded) else "not recorded",
            "eval_data": f"the grid's evaluation subset ({len(task.eval.x)} samples)"}
    traj = Trajectory(steps, params, train_loss, eval_loss, eval_acc, nan.copy(), nan.copy(), nan.copy(), info)
    return traj, buffers
