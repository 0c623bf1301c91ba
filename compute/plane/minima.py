"""The ``minima`` plane: the plane through three independently trained networks (as in the
figures of Garipov et al. 2018, "Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs").

The three networks are the scene's own training run once per seed of ``plane.seeds`` (``train.seed``
set to it, every other setting the same), or three weight files (``landscape.weights.files``, one
trained network each).  A trained run is looked up in and stored into the model store under the
train key of the scene with that seed, so a rerun trains nothing, and a scene with the same
training and that seed shares the run.

With w1, w2, w3 the final weights: the origin is w1, d1 the unit vector to w2 and d2 the unit
Gram-Schmidt remainder of w3 - w1.  Unit directions make plane units weight-space distances, so
the three sit at their true places: w1 at (0, 0), w2 at (|w2 - w1|, 0), w3 at
(<w3 - w1, d1>, |remainder|) -- exactly on the plane, to float rounding.  Each run's whole path
is projected onto the plane (its start, another network's random initialization, lies far off it:
``offplane`` says how far), the first as ``training``, the others as ``training_2`` and
``training_3`` (studio/scene/landscape.py: MINIMA_PATHS), and ``meta.json``'s ``plane.marks``
records where each network sits, its seed or file and its losses, for the render stage to mark.

Without ``span`` or ``range`` the grid's window is a square around the three, grown by ``margin``
(compute/plane/: extents), so on a square grid the triangle keeps its true shape.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from studio.scene import LandscapeSpec, PlaneSpec, Scene, WeightsSpec, deep_merge
from studio.scene.landscape import MINIMA_PATHS
from compute import plane as planes
from compute.models import build_model
from compute.plane.core import Layout, Plane
from compute.plane.fit import PlaneFit
from compute.run.build import build_run
from compute.run.types import Run, Task
from compute.logs import log


def seed_scene(scene: Scene, seed: int) -> Scene:
    """The scene's training run with ``train.seed`` = ``seed``, as a scene of its own (its default
    plane): its ``train_key`` keys that run in the model store, as any scene with that training has."""
    given = scene.landscape.model_dump(exclude_unset=True, by_alias=True)
    given.pop("plane", None)
    spec = LandscapeSpec.model_validate(deep_merge(given, {"train": {"seed": seed}}))
    return scene.model_copy(update={"landscape": spec})


def seeded_task(task: Task, spec: LandscapeSpec, seed: int) -> Task:
    """The task with a fresh model initialized from ``seed``, exactly as ``runs.build_task`` does for
    a scene with that ``train.seed`` (the training starts there); data, subset and loss shared."""
    torch.manual_seed(seed)
    model = build_model(spec.model, task.data.shape, task.data.outputs, task.data.kind, task.data.x.dtype).to(task.device)
    return Task(model, task.data, task.eval, task.eval_index, task.loss)


def minima_runs(scene: Scene, task: Task, progress: bool, cache_root: Path | None = None,
                retrain: bool = False) -> list[tuple[Run, dict]]:
    """The three networks' runs with what identifies each (``{"seed": s}`` or ``{"file": path}``)."""
    ls = scene.landscape
    out = []
    if ls.weights is not None:
        from compute.run.loading import load_run
        for f in ls.weights.files:
            run = load_run(WeightsSpec(files=[f], key=ls.weights.key), task, scene.source)
            out.append((run, {"file": f, "label": Path(f).stem}))
        return out
    for k, seed in enumerate(ls.plane.seeds):
        log(f"minima plane: network {k + 1} of 3 (train.seed {seed})")
        own = seeded_task(task, ls, seed)
        run = build_run(seed_scene(scene, seed), own, progress, cache_root=cache_root, retrain=retrain)
        out.append((run, {"seed": int(seed), "label": f"seed {seed}"}))
    return out


def _who(ident: dict) -> str:
    return f"seed {ident['seed']}" if "seed" in ident else repr(ident["file"])


def minima_plane(finals: list[torch.Tensor], idents: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(origin, d1, d2) flat, in the weights' dtype: w1, the unit vector to w2, the unit remainder of
    w3 - w1 (made orthogonal to d1 twice: exact to rounding).  Two equal networks, or three on
    one line, are an error naming them."""
    key = "landscape.weights.files" if "file" in idents[0] else "landscape.plane.seeds"
    for k, w in enumerate(finals):
        if not bool(torch.isfinite(w).all()):
            raise planes.PlaneError(f"{key}: the network of {_who(idents[k])} diverged (its final weights are not "
                                    f"finite), so no plane goes through it; lower landscape.train.lr or choose "
                                    f"another seed")
    w1, w2, w3 = (w.double() for w in finals)
    u = w2 - w1
    n1 = float(u.norm())
    if not n1 > 1e-6 * float(w1.norm()):
        raise planes.PlaneError(f"{key}: the networks of {_who(idents[0])} and {_who(idents[1])} have the same "
                                f"final weights; the plane through them is not defined")
    d1 = u / n1
    r = w3 - w1
    ref = float(r.norm())
    r = r - (r @ d1) * d1
    r = r - (r @ d1) * d1
    n2 = float(r.norm())
    if not n2 > 1e-6 * max(ref, n1):
        raise planes.PlaneError(f"{key}: the three networks' final weights lie on one line (to float "
                                f"precision); the plane through them is not defined")
    dt = finals[0].dtype
    return w1.to(dt), d1.to(dt), (r / n2).to(dt)


def _at(values, k: int):
    v = float(values[k]) if len(values) else float("nan")
    return v if np.isfinite(v) else None


def fit_minima(spec: PlaneSpec, runs: list[tuple[Run, dict]], layout: Layout) -> PlaneFit:
    """The plane through the runs' final weights (of the networks ``layout`` lays out), every run
    projected onto it (the first as the fit's own path, the others in ``extra_paths``), the marks
    and the grid's window."""
    t0 = time.perf_counter()
    finals = [r.params[r.final] for r, _ in runs]
    idents = [ident for _, ident in runs]
    origin, d1, d2 = minima_plane(finals, idents)
    projected = [planes.project(r.params, origin, d1, d2) for r, _ in runs]
    marks = []
    for k, ((run, ident), (xy, off)) in enumerate(zip(runs, projected)):
        t, f = run.trajectory, run.final
        marks.append({**{key: ident[key] for key in ("seed", "file") if key in ident}, "label": ident["label"],
                      "path": MINIMA_PATHS[k], "step": int(t.steps[f]), "xy": [float(v) for v in xy[f]],
                      "offplane": float(off[f]), "eval_loss": _at(t.eval_loss, f),
                      "eval_accuracy": _at(t.eval_accuracy, f), "train_loss": _at(t.train_loss, f),
                      **({"train_key": run.train_key} if run.train_key else {})})
    w = [w.double() for w in finals]
    info = {"origin_step": int(runs[0][0].steps[runs[0][0].final]), "marks": marks,
            "distances": {"1-2": float((w[1] - w[0]).norm()), "1-3": float((w[2] - w[0]).norm()),
                          "2-3": float((w[2] - w[1]).norm())},
            "plane_s": time.perf_counter() - t0}
    if "seed" in idents[0]:
        info["seeds"] = [ident["seed"] for ident in idents]
    (a0, a1), (b0, b1) = planes.extents(spec, projected[0][0], np.array([m["xy"] for m in marks]))
    extra = {}
    for k in (1, 2):
        run, (xy, off) = runs[k][0], projected[k]
        t = run.trajectory
        extra[MINIMA_PATHS[k]] = {"xy": xy, "offplane": off, "loss": np.asarray(t.eval_loss, np.float64),
                                  "step": np.asarray(t.steps, np.int64)}
    xy, off = projected[0]
    plane = Plane.from_flat(layout, origin, d1, d2)
    return PlaneFit(plane, info, xy, off, [[a0, a1], [b0, b1]], extra)


def prepare_minima(scene: Scene, task: Task, progress: bool, cache_root: Path | None = None,
                   retrain: bool = False) -> tuple[Run, PlaneFit]:
    """The first network's run (the entry's ``training``) and the plane through the three; the
    task's model is left at the first network's final weights and buffers."""
    runs = minima_runs(scene, task, progress, cache_root, retrain)
    fit = fit_minima(scene.landscape.plane, runs, task.model)
    first = runs[0][0]
    first.seconds = sum(r.seconds for r, _ in runs)
    task.place(first)
    for m in fit.info["marks"]:
        log(f"minima plane: {m['label']} at ({m['xy'][0]:.3f}, {m['xy'][1]:.3f}), eval loss "
            f"{m['eval_loss'] if m['eval_loss'] is None else round(m['eval_loss'], 4)}")
    return first, fit
