"""Everything before the grid: data, model, training that records its trajectory, and the plane.

Its result (a plain dict of tensors and arrays) is what the pipeline saves as ``setup.pt`` in a
partial cache entry, so an interrupted run resumes without retraining.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from studio.scene import Scene
from compute import plane as planes
from compute.data import build_data, eval_subset
from compute.models import build_model
from compute.train import train


def build_setup(scene: Scene, device: torch.device, progress: bool) -> dict:
    """Data, model, training and plane: everything before the grid."""
    ls = scene.landscape_dict()
    x, y, shape, n_cls = build_data(ls["data"])
    ex, ey, eidx = eval_subset(x, y, ls["grid"]["eval_samples"], ls["grid"]["seed"])
    torch.manual_seed(ls["train"]["seed"])
    model = build_model(ls["model"], shape, n_cls).to(device)
    t0 = time.perf_counter()
    traj = train(model, x.to(device), y.to(device), ex.to(device), ey.to(device), ls["train"], progress)
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
                shape=tuple(shape), n_cls=n_cls, n_train=len(y))
