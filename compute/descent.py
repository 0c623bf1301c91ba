"""In-plane descents: an optimizer run on the loss restricted to the plane.

A descent (``landscape.descents`` in the scene) runs one of torch.optim's
optimizers on a two-element parameter ``ab`` = (a, b), minimising

    f(a, b) = loss(origin + a*d1 + b*d2)

on the evaluation subset the grid is evaluated on, with autograd's exact
gradient of f (``compute.engine.loss_fn_on_plane``).  Its path therefore lies
on the plane: the surface loss under each point is the loss itself and the
off-plane distance is zero.

Optimizers (torch's definitions, their defaults where the scene gives nothing):

    sgd        SGD(lr)                                   x -= lr * g
    momentum   SGD(lr, momentum=m)                       b = m*b + g;  x -= lr * b
    nesterov   SGD(lr, momentum=m, nesterov=True)        b = m*b + g;  x -= lr * (g + m*b)
    adam       Adam(lr), betas (0.9, 0.999), eps 1e-8
    rmsprop    RMSprop(lr), alpha 0.99, eps 1e-8 (no momentum)

The path records ``steps + 1`` points (the start and each step's result).  A
descent whose loss (or gradient, or position) stops being finite ends at the
last finite point without an error; ``info["stopped"]`` says why.

Descents are cheap next to the grid, so they are keyed apart from it (see
``studio.cache.descent_key``): on a cache hit the compute stage rebuilds the
model and data from the landscape section and the plane from the entry's
``origin.npy``/``d1.npy``/``d2.npy``, and computes only the descents the entry
lacks.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from studio.cache import CacheError, Descent, Path2D, canonical_descent, describe_descent
from studio.cache_entry import CacheEntry
from compute.logs import log
from compute.engine import loss_fn_on_plane, precision_context
from compute.plane import Plane
from compute.losses import CROSS_ENTROPY, Loss

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "rmsprop")


def make_optimizer(param: torch.Tensor, spec: dict) -> torch.optim.Optimizer:
    """torch.optim optimizer of a resolved descent spec over one parameter tensor."""
    opt, lr, m = spec["optimizer"], spec["lr"], spec["momentum"]
    if opt == "sgd":
        return torch.optim.SGD([param], lr=lr)
    if opt == "momentum":
        return torch.optim.SGD([param], lr=lr, momentum=m)
    if opt == "nesterov":
        return torch.optim.SGD([param], lr=lr, momentum=m, nesterov=True)
    if opt == "adam":
        return torch.optim.Adam([param], lr=lr)
    if opt == "rmsprop":
        return torch.optim.RMSprop([param], lr=lr)
    raise ValueError(f"unknown optimizer {opt!r}; allowed: {', '.join(OPTIMIZERS)}")


def value_and_grad(f: Callable[[torch.Tensor], torch.Tensor], ab, device=None) -> tuple[float, np.ndarray]:
    """f and its exact gradient (autograd) at the plane point ab -> (loss, (2,) float64)."""
    p = torch.tensor(np.asarray(ab, dtype=np.float64), device=device, requires_grad=True)
    loss = f(p)
    (g,) = torch.autograd.grad(loss, p)
    return loss.detach().item(), g.detach().cpu().numpy().astype(np.float64)


def descend(f: Callable[[torch.Tensor], torch.Tensor], spec, device=None, progress: bool = False) -> Descent:
    """Run one descent on f from spec["start"] for spec["steps"] steps -> its Descent record."""
    spec = canonical_descent(spec)
    n = spec["steps"]
    p = torch.tensor(spec["start"], dtype=torch.float64, device=device, requires_grad=True)
    opt = make_optimizer(p, spec)
    xy = np.empty((n + 1, 2), np.float64)
    loss = np.empty(n + 1, np.float64)
    t = 0                                   # points recorded
    stopped = None
    t0 = time.perf_counter()
    bar = tqdm(total=n, desc=f"descent {spec['name']}", unit="step", disable=not progress,
               mininterval=1.0, dynamic_ncols=True, file=sys.stderr)
    try:
        for k in range(n + 1):
            opt.zero_grad(set_to_none=True)
            value = f(p)
            v = value.detach().item()
            if not math.isfinite(v):
                stopped = f"the loss is not finite at step {k} ({v})"
                if k == 0:                 # the start is kept even so: a path has a point
                    xy[0], loss[0], t = p.detach().cpu().numpy(), v, 1
                break
            xy[k], loss[k], t = p.detach().cpu().numpy(), v, k + 1
            if k == n:
                break
            value.backward()
            if not bool(torch.isfinite(p.grad).all()):
                stopped = f"the gradient is not finite at step {k}"
                break
            opt.step()
            bar.update(1)
            if not bool(torch.isfinite(p.detach()).all()):
                stopped = f"the position is not finite after step {k}"
                break
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    xy, loss = xy[:t].copy(), loss[:t].copy()
    path = Path2D(spec["name"], xy, loss, loss.copy(), np.zeros(t), np.arange(t, dtype=np.int64))
    return Descent(spec, path, {"steps_done": t - 1, "stopped": stopped, "seconds": seconds})


# --------------------------------------------------------------------------- the compute stage's side

def _outside(xy: np.ndarray, extent) -> np.ndarray:
    (a0, a1), (b0, b1) = extent
    return (xy[:, 0] < a0) | (xy[:, 0] > a1) | (xy[:, 1] < b0) | (xy[:, 1] > b1)


def compute_descents(specs: Iterable, model: nn.Module, plane: Plane, x: torch.Tensor, y: torch.Tensor | None,
                     extent=None, progress: bool = False, loss: Loss = CROSS_ENTROPY) -> list[Descent]:
    """Run each descent on the plane; logs a line per descent (and where it leaves the grid)."""
    model.eval()
    f = loss_fn_on_plane(model, plane, x, y, loss)
    out = []
    for spec in specs:
        spec = canonical_descent(spec)
        if extent is not None and _outside(np.array([spec["start"]]), extent)[0]:
            (a0, a1), (b0, b1) = extent
            log(f"warning: descent {spec['name']!r} starts at {spec['start']}, outside the grid "
                f"(a in [{a0:.4g}, {a1:.4g}], b in [{b0:.4g}, {b1:.4g}]); its trail is drawn only over the grid")
        # exact float32 on a GPU too, as the fp32 grid it runs on (cuDNN's default is TensorFloat-32)
        with precision_context(x.device, "fp32"):
            d = descend(f, spec, device=x.device, progress=progress)
        p = d.path
        note = f"; stopped early: {d.info['stopped']}" if d.info["stopped"] else ""
        log(f"descent {describe_descent(spec)}: loss {p.loss[0]:.4g} -> {p.loss[-1]:.4g} in "
            f"{d.info['steps_done']} steps, {d.info['seconds']:.1f} s{note}")
        if extent is not None and spec["steps"] > 0:
            out_idx = np.flatnonzero(_outside(p.xy, extent))
            if out_idx.size and not _outside(np.array([spec["start"]]), extent)[0]:
                log(f"note: descent {spec['name']!r} leaves the grid at step {int(p.step[out_idx[0]])}; "
                    f"its trail is drawn only over the grid")
        out.append(d)
    return out


def add_to_entry(scene, entry: CacheEntry, specs: list[dict], device: torch.device,
                 progress: bool = False, task=None) -> list[Descent]:
    """Compute ``specs`` on a finished entry's plane (no training, no grid) and add them to it.
    ``task``: the scene's task with the final buffers already in its model (else built here)."""
    from compute.run.build import build_task, final_buffers
    meta = entry.meta()
    if task is None:
        task = build_task(scene, device)
        # BatchNorm's running statistics of the final weights: the plane gives only the parameters
        final_buffers(task, meta, entry.root)
    pv = entry.plane()
    if pv is None:
        raise CacheError(f"the cache entry {entry.dir} has no plane vectors; run `python -m compute "
                         f"{entry.scene_path} --force` to compute it again")
    plane = Plane.from_vectors(task.model, pv, device)
    extent = meta.get("plane", {}).get("extent")
    descents = compute_descents(specs, task.model, plane, task.eval.x, task.eval.y, extent, progress, task.loss)
    entry.add_descents(descents)
    log(f"added {len(descents)} descent{'s' if len(descents) != 1 else ''} to {entry.dir}")
    return descents
