"""A run: a network's weights over training, and the task they are scored on.

Everything downstream of this module (the plane, the grid, the sequence, the descents) reads two
typed objects:

* :class:`Task`: the model (architecture and, once a run is placed in it, the final weights and
  buffers), the data, the evaluation subset the grid is computed on, and the loss.  Built the same
  way on every process, from the scene alone (:func:`build_task`).
* :class:`Run`: the weights over time (flat parameter snapshots and their steps), which of them
  are the final weights, the final weights' buffers (BatchNorm's running statistics) and a log.
  It has two sources:

  - the studio's own training (``landscape.train``, compute/run/train.py), looked up in and stored
    into the model store ``cache/models/<train_key>/`` so scenes that differ only in the plane or
    the grid train once;
  - the user's own weights (``landscape.weights``): checkpoint files, one trained model, or a run
    folder written by :class:`compute.run.recorder.Recorder`.  Each file is opened with
    ``weights_only=True`` (compute/run/checkpoints.py) and evaluated on the evaluation subset with its
    own buffers, one file at a time, so a long run of a large model is held in memory once (the
    (T, P) snapshot matrix).

A run is saved into the partial cache entry (:func:`save_run`), so an interrupted compute stage
resumes without training or loading again.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from studio import atomic, cache
from studio.cache import CacheError, TrainedModel
from studio.scene import Scene, train_run_problem
from compute.data import DataError, build_data
from compute.losses import build_loss, check_custom, check_fit
from compute.models import build_model
from compute.logs import log
from compute.run.loading import load_run
from compute.run.train import total_steps, train
from compute.run.types import Run, Task, Trajectory, set_buffers, set_flat

# --------------------------------------------------------------------------- the task

def build_task(scene: Scene, device: torch.device) -> Task:
    """Data, evaluation subset, loss and model of the scene's landscape, checked against each other.
    The model is initialized from ``train.seed`` (the studio's training starts there)."""
    ls = scene.landscape
    data = build_data(ls.data)
    if ls.model.name != "custom":
        data = data.as_float()
    loss = build_loss(ls.loss)
    check_fit(loss, data.kind)
    evald, eidx = data.subset(ls.grid.eval_samples, ls.grid.seed)
    torch.manual_seed(ls.train.seed)
    model = build_model(ls.model, data.shape, data.outputs, data.kind, data.x.dtype).to(device)
    evald = evald._replace(x=evald.x.to(device), y=None if evald.y is None else evald.y.to(device))
    check_custom(loss, model, evald.x, evald.y)
    return Task(model, data, evald, eidx, loss)


# --------------------------------------------------------------------------- a run

def build_run(scene: Scene, task: Task, progress: bool, cache_root: Path | None = None,
              retrain: bool = False) -> Run:
    """The scene's run: its weights loaded (``landscape.weights``), or trained here."""
    if scene.landscape.weights is not None:
        return load_run(scene.landscape.weights, task, scene.source)
    return _trained_run(scene, task, progress, cache_root, retrain)


def _trained_run(scene: Scene, task: Task, progress: bool, cache_root: Path | None, retrain: bool) -> Run:
    """Trained in the studio, or the same training found in the model store (``retrain`` trains
    anyway and replaces it)."""
    tspec = scene.landscape.train
    n = len(task.data.x)
    problem = train_run_problem(tspec, total_steps(tspec, n))    # the data's real size is known now
    if problem is not None:
        raise DataError(f"landscape.train.{problem[0]}: {problem[1]} (the training set has {n} samples)")
    key = scene.train_key()
    t0 = time.perf_counter()
    traj = None
    if cache_root is not None and not retrain and cache.has_model(cache_root, key):
        try:
            traj = _from_store(cache.read_model(cache_root, key), task)
            log(f"trained model from {cache.model_dir(cache_root, key)} (trained in "
                f"{traj.info.get('trained_s', 0):.1f} s)")
        except (CacheError, RuntimeError) as e:     # damaged, or not this model's shapes: train anew
            log(f"{e}; training again")
            traj = None
    if traj is None:
        dev = task.device
        traj = train(task.model, task.data.x.to(dev), _on(task.data.y, dev), task.eval.x, task.eval.y,
                     tspec, progress, task.loss)
        traj.info.update(trained_s=time.perf_counter() - t0, from_cache=False)
        if cache_root is not None:
            try:
                _to_store(cache_root, key, traj, task, scene)
            except (OSError, CacheError) as e:      # the grid can still be made; the next run trains
                log(f"could not store the trained model ({e}); continuing")
    buffers = {k: b.detach().cpu().clone() for k, b in task.model.named_buffers()}
    return Run(traj, len(traj.steps) - 1, buffers, "trained", time.perf_counter() - t0, key)


def _on(t: Optional[torch.Tensor], dev: torch.device) -> Optional[torch.Tensor]:
    return None if t is None else t.to(dev)


def _to_store(root: Path, key: str, traj: Trajectory, task: Task, scene: Scene) -> None:
    ls = scene.landscape.model_dump(mode="json", include={"data", "model", "train", "loss", "grid"})
    meta = {"landscape": {**{k: ls[k] for k in ("data", "model", "train", "loss")},
                          "grid": {k: ls["grid"][k] for k in ("eval_samples", "seed")}},
            "device": str(task.device), "torch": torch.__version__, "info": traj.info}
    buffers = {k: b.detach().cpu().numpy() for k, b in task.model.named_buffers()}
    tm = TrainedModel(key, traj.params.cpu().numpy(), traj.log(), buffers, meta)
    log(f"stored the trained model in {cache.write_model(root, tm)}")


def _from_store(tm: TrainedModel, task: Task) -> Trajectory:
    """The stored run as a Trajectory, and the task's model set to its final state (the final
    weights, its buffers, evaluation mode: as training leaves it)."""
    lg = tm.log
    params = torch.from_numpy(np.array(tm.params))
    n = sum(p.numel() for p in task.model.parameters())
    if params.shape[1] != n:
        raise CacheError(f"trained model {tm.key}: {params.shape[1]} parameters stored, the model has {n}")
    set_flat(task.model, params[-1].to(task.device))
    set_buffers(task.model, tm.buffers)
    task.model.eval()
    info = dict(tm.meta.get("info") or {}, from_cache=True)
    return Trajectory(np.array(lg["step"]), params, np.array(lg["train_loss"]), np.array(lg["eval_loss"]),
                      np.array(lg["eval_accuracy"]), np.array(lg["train_accuracy"]), np.array(lg["lr"]),
                      np.array(lg["epoch"]), info)


# --------------------------------------------------------------------------- saving for a resumed run

def save_run(run: Run, path: Path) -> None:
    """The run as plain tensors and numbers (loadable with ``weights_only=True``), atomically."""
    t = run.trajectory
    record = {"steps": torch.from_numpy(np.asarray(t.steps, np.int64)), "params": t.params.cpu(),
              "columns": {c: torch.from_numpy(np.asarray(getattr(t, c), np.float64))
                          for c in ("train_loss", "eval_loss", "eval_accuracy", "train_accuracy", "lr", "epoch")},
              "info": _plain(t.info), "final": run.final, "buffers": dict(run.buffers), "source": run.source,
              "seconds": run.seconds, "train_key": run.train_key, "files": list(run.files)}
    atomic.write_file(path, lambda fh: torch.save(record, fh))


def read_run(path: Path) -> Run:
    r = torch.load(path, weights_only=True)
    c = {k: v.numpy() for k, v in r["columns"].items()}
    traj = Trajectory(r["steps"].numpy(), r["params"], c["train_loss"], c["eval_loss"], c["eval_accuracy"],
                      c["train_accuracy"], c["lr"], c["epoch"], r["info"])
    return Run(traj, r["final"], r["buffers"], r["source"], r["seconds"], r["train_key"], r["files"])


def _plain(v):
    """Settings as JSON-like values (numpy scalars made Python numbers) for a weights-only file."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------- the record in meta.json

def training_record(run: Run, offplane: np.ndarray) -> dict:
    """The ``training`` part of a grid entry's meta.json: where the weights came from, final values,
    the run's settings, which trained model it used, and the per-snapshot log (LOG_COLUMNS; values
    not known for the user's own runs, such as the learning rate, are null)."""
    t = run.trajectory
    f = run.final
    out = {"source": run.source,
           "final_step": int(t.steps[f]),
           "final_train_loss": _num(t.train_loss[f]),
           "final_eval_loss": _num(t.eval_loss[f]),
           "final_eval_accuracy": _num(t.eval_accuracy[f]),
           "final_train_accuracy": _num(t.train_accuracy[f]),
           "max_offplane": float(np.max(offplane)) if len(offplane) else 0.0}
    if run.train_key:
        out["train_key"] = run.train_key
    if run.files:
        out["files"] = run.files
    out.update(t.info or {})
    out["log"] = {c: ([int(s) for s in v] if c == "step" else [_num(x) for x in v]) for c, v in t.log().items()}
    return out


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def final_buffers(task: Task, meta: dict, root: Path) -> None:
    """The final weights' buffers (BatchNorm's running statistics) of a finished entry's run, into the
    task's model: from the model store for a run trained here, from the final checkpoint file for the
    user's own (its contents are in the entry's key, so it is the same file)."""
    if not any(True for _ in task.model.buffers()):
        return
    training = meta.get("training") or {}
    if training.get("source", "trained") != "trained":
        from compute.run.checkpoints import fit_state_dict, load_state_dict
        step = training.get("final_step")
        steps = (training.get("log") or {}).get("step") or []
        path = Path(training["files"][steps.index(step)])
        inner = ((meta.get("landscape") or {}).get("weights") or {}).get("key")
        sd = fit_state_dict(task.model, load_state_dict(path, "landscape.weights", inner), path, "landscape.weights")
        set_buffers(task.model, {k: v for k, v in sd.items() if k in dict(task.model.named_buffers())})
        return
    key = training.get("train_key")
    if key and cache.has_model(root, key):
        set_buffers(task.model, cache.read_model(root, key).buffers)
    else:
        log(f"warning: the trained model {key} is not in {root}/models: BatchNorm uses default statistics "
            f"for these descents (compute again with --force for exact ones)")
