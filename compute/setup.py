"""Everything before the grid: data, model, training that records its trajectory, and the plane.

Its result (a plain dict of tensors and arrays) is what the pipeline saves as ``setup.pt`` in a
partial cache entry, so an interrupted run resumes without retraining.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from studio import cache
from studio.cache import CacheError, TrainedModel
from studio.scene import Scene, train_run_problem
from compute import plane as planes
from compute.data import DataError, build_data, eval_subset
from compute.models import build_model
from compute.train import LOG_COLUMNS, Trajectory, log, set_flat, total_steps, train


def build_setup(scene: Scene, device: torch.device, progress: bool, cache_root: Path | None = None,
                retrain: bool = False) -> dict:
    """Data, model, training and plane: everything before the grid.

    With ``cache_root`` the trained model is looked up in (and after training stored into) the
    model store ``cache_root/models/<train_key>/`` (studio/cache.py), so scenes that differ only in
    the plane, the grid or the descents train once; ``retrain`` trains anyway and replaces it."""
    ls = scene.landscape_dict()
    x, y, shape, n_cls = build_data(ls["data"])
    ex, ey, eidx = eval_subset(x, y, ls["grid"]["eval_samples"], ls["grid"]["seed"])
    tspec = ls["train"]
    # the scene was checked with data.train_samples; a data set on disk may hold fewer
    problem = train_run_problem(tspec, total_steps(tspec, len(y)))
    if problem is not None:
        raise DataError(f"landscape.train.{problem[0]}: {problem[1]} (the training set has {len(y)} samples)")
    torch.manual_seed(tspec["seed"])
    model = build_model(ls["model"], shape, n_cls).to(device)
    key = scene.train_key()
    t0 = time.perf_counter()
    traj = None
    if cache_root is not None and not retrain and cache.has_model(cache_root, key):
        try:
            traj = _from_store(cache.read_model(cache_root, key), model, device)
            log(f"trained model from {cache.model_dir(cache_root, key)} (trained in "
                f"{traj.info.get('trained_s', 0):.1f} s)")
        except (CacheError, RuntimeError) as e:     # damaged, or not this model's shapes: train anew
            log(f"{e}; training again")
            traj = None
    if traj is None:
        traj = train(model, x.to(device), y.to(device), ex.to(device), ey.to(device), tspec, progress)
        traj.info.update(trained_s=time.perf_counter() - t0, from_cache=False)
        if cache_root is not None:
            try:
                _to_store(cache_root, key, traj, model, ls, device)
            except (OSError, CacheError) as e:      # the grid can still be made; the next run trains
                log(f"could not store the trained model ({e}); continuing")
    train_s = time.perf_counter() - t0
    pspec = ls["plane"]
    # every method of the scene's plane: section (compute/plane.py); the Hessian is taken on the
    # evaluation subset, the data of the grid
    t0 = time.perf_counter()
    pl = planes.build_plane(pspec, model, traj.params, traj.steps, ex.to(device), ey.to(device),
                            traj.eval_loss)
    origin, d1, d2, info = pl["origin"], pl["d1"], pl["d2"], pl["info"]
    info["plane_s"] = time.perf_counter() - t0
    xy, off = planes.project(traj.params, origin, d1, d2)
    marks = np.array([m["xy"] for m in info["marks"]]) if "marks" in info else None
    (a0, a1), (b0, b1) = planes.extents(pspec, xy, marks, info.get("curvature_span"))
    # "final" is the plane's origin: the final weights, except for checkpoints / interpolate planes
    # whose origin is a checkpoint (info["origin_step"]); "origin" is the same tensor under its
    # own name.  The trained weights are always traj["params"][-1].
    return dict(final=origin, origin=origin, d1=d1, d2=d2, plane_info=info, traj=traj.__dict__, xy=xy,
                offplane=off, extent=[[a0, a1], [b0, b1]], eval_indices=eidx, train_s=train_s,
                shape=tuple(shape), n_cls=n_cls, n_train=len(y),
                # BatchNorm's running statistics after training: the grid's model is rebuilt from
                # the spec and takes the parameters from the plane, these from here
                buffers={k: b.detach().cpu().clone() for k, b in model.named_buffers()},
                train_key=key)


def _to_store(root: Path, key: str, traj: Trajectory, model: torch.nn.Module, ls: dict,
              device: torch.device) -> None:
    meta = {"landscape": {"data": ls["data"], "model": ls["model"], "train": ls["train"],
                          "grid": {k: ls["grid"][k] for k in ("eval_samples", "seed")}},
            "device": str(device), "torch": torch.__version__, "info": traj.info}
    buffers = {k: b.detach().cpu().numpy() for k, b in model.named_buffers()}
    tm = TrainedModel(key, traj.params.cpu().numpy(), {c: v for c, v in traj.log().items()}, buffers, meta)
    log(f"stored the trained model in {cache.write_model(root, tm)}")


def _from_store(tm: TrainedModel, model: torch.nn.Module, device: torch.device) -> Trajectory:
    """The stored run as a Trajectory, and ``model`` set to its final state (the final weights,
    its buffers, evaluation mode: as training leaves it)."""
    lg = tm.log
    params = torch.from_numpy(np.array(tm.params))
    n = sum(p.numel() for p in model.parameters())
    if params.shape[1] != n:
        raise CacheError(f"trained model {tm.key}: {params.shape[1]} parameters stored, the model has {n}")
    set_flat(model, params[-1].to(device))
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name in tm.buffers:
                b.copy_(torch.from_numpy(np.array(tm.buffers[name])).to(b))
    model.eval()
    info = dict(tm.meta.get("info") or {}, from_cache=True)
    return Trajectory(np.array(lg["step"]), params, np.array(lg["train_loss"]), np.array(lg["eval_loss"]),
                      np.array(lg["eval_accuracy"]), np.array(lg["train_accuracy"]), np.array(lg["lr"]),
                      np.array(lg["epoch"]), info)


def training_record(setup: dict) -> dict:
    """The ``training`` part of a grid entry's meta.json: final values, the run's settings, which
    trained model it used, and the per-snapshot log (columns LOG_COLUMNS).  A setup saved by an
    older run (resumed) lacks the log and gives what it has."""
    traj = setup["traj"]
    out = {"final_train_loss": float(traj["train_loss"][-1]),
           "final_eval_loss": float(traj["eval_loss"][-1]),
           "final_eval_accuracy": float(traj["eval_accuracy"][-1]),
           "max_offplane": float(np.max(setup["offplane"]))}
    if "train_key" in setup:
        out["train_key"] = setup["train_key"]
    out.update(traj.get("info") or {})
    if len(traj.get("lr", ())) == len(traj["steps"]):
        out["final_train_accuracy"] = float(traj["train_accuracy"][-1])
        out["log"] = {"step": [int(s) for s in traj["steps"]],
                      **{c: [float(v) for v in traj[c]] for c in LOG_COLUMNS if c != "step"}}
    return out
