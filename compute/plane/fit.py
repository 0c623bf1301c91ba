"""The plane of a run: the plane (core.py) its method gives (methods.py), the run's snapshots projected
onto it, and the window of (a, b) the grid covers.  Saved into the partial cache entry with the run,
so a resumed compute stage finds the same plane."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from studio import atomic
from studio.scene.landscape import PlaneSpec
from compute import plane as planes
from compute.logs import log
from compute.plane.core import Layout, Plane
from compute.run.types import Run, Task


@dataclass
class PlaneFit:
    plane: Plane                # on the CPU; its origin the final weights, or a checkpoint
    info: dict                  # the method's provenance (explained variance, eigenvalues, marks ...)
    xy: np.ndarray              # (T, 2) float64 each snapshot's least-squares plane coordinates
    offplane: np.ndarray        # (T,) float64 its distance from the plane
    extent: list                # [[a0, a1], [b0, b1]] the grid's window
    #: other runs on the same plane (a ``minima`` plane's second and third networks): path name ->
    #: {xy (T, 2), offplane (T,), loss (T,) float64, step (T,) int64}
    extra_paths: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        origin, d1, d2 = (v.cpu() for v in self.plane.flat())
        record = {"origin": origin, "d1": d1, "d2": d2, "info": self.info,
                  "xy": torch.from_numpy(np.asarray(self.xy, np.float64)),
                  "offplane": torch.from_numpy(np.asarray(self.offplane, np.float64)),
                  "extent": [[float(v) for v in r] for r in self.extent],
                  "extra_paths": {name: {k: torch.from_numpy(np.asarray(v)) for k, v in p.items()}
                                  for name, p in self.extra_paths.items()}}
        atomic.write_file(path, lambda fh: torch.save(record, fh))

    @classmethod
    def read(cls, path: Path, layout: Layout) -> "PlaneFit":
        """A fit ``save`` wrote, its plane laid out as ``layout`` (the run's model)."""
        r = torch.load(path, weights_only=True)
        extra = {name: {k: v.numpy() for k, v in p.items()} for name, p in r.get("extra_paths", {}).items()}
        plane = Plane.from_flat(layout, r["origin"], r["d1"], r["d2"])
        return cls(plane, r["info"], r["xy"].numpy(), r["offplane"].numpy(), r["extent"], extra)


def fit_plane(spec: PlaneSpec, run: Run, task: Task) -> PlaneFit:
    """The scene's plane (its resolved ``plane:`` section) for ``run``; the Hessian is taken on the
    evaluation subset, the data of the grid, with the task's loss."""
    t0 = time.perf_counter()
    origin = run.final if spec.at is None else planes.nearest_snapshots(run.steps, [spec.at])[0]
    plane, info = planes.build_plane(spec, task.model, run.params, run.steps, task.eval.x, task.eval.y,
                                     run.trajectory.eval_loss, task.loss, origin)
    info["plane_s"] = time.perf_counter() - t0
    xy, off = planes.project(run.params, *plane.flat())
    marks = np.array([m["xy"] for m in info["marks"]]) if "marks" in info else None
    (a0, a1), (b0, b1) = planes.extents(spec, xy, marks, info.get("curvature_span"))
    window = [[a0, a1], [b0, b1]]
    if spec.auto_window:
        window, info["window"] = _probed(window, task, plane)
    return PlaneFit(plane, info, xy, off, window)


def _descent(task: Task, plane, window: list) -> tuple[np.ndarray, np.ndarray]:
    """The in-plane descent from where training ended (window.py) -> (points, losses)."""
    from compute.descent import descend
    from compute.engine import loss_fn_on_plane
    from compute.plane.window import DESCENT_LR, DESCENT_STEPS
    side = max(window[0][1] - window[0][0], window[1][1] - window[1][0])
    f = loss_fn_on_plane(task.model, plane, task.eval.x, task.eval.y, task.loss)
    spec = {"name": "window", "optimizer": "adam", "lr": DESCENT_LR * side, "momentum": 0.0, "steps": DESCENT_STEPS,
            "start": [0.0, 0.0]}
    d = descend(f, spec, device=task.eval.x.device)
    return d.path.xy, d.path.loss


def _probed(window: list, task: Task, plane: Plane) -> tuple[list, dict]:
    """The automatic window (window.py): a coarse probe around the fitted one -> (window, record)."""
    from compute.engine import GridEngine
    from compute.plane.window import probe_window
    dev = task.eval.x.device
    with warnings.catch_warnings():                # a fallback's warning is said again by the grid
        warnings.simplefilter("ignore")
        engine = GridEngine(task.model, plane.to(dev, copy=True), task.eval.x, task.eval.y, loss=task.loss)
    walked = _descent(task, engine.plane, window)
    probe = probe_window(window, lambda a, b: engine.losses(a.to(dev), b.to(dev)).cpu(), walked)
    log(probe.says(window))
    return probe.window, dict(probe.record(), fitted=window)
