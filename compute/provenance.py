"""The provenance record of a grid entry (its ``meta.json``): what was computed, from what, how and
how long it took.  studio/cache.py documents the entry; this is the one place its meta is put
together."""
from __future__ import annotations

import platform

import numpy as np
import torch

from studio.cache import FORMAT_VERSION
from studio.scene import Scene
from studio.scene import AnyData
from compute.engine import GridEngine
from compute.models import parameter_count
from compute.plane.fit import PlaneFit
from compute.run.build import training_record
from compute.run.types import Run, Task

#: generated data sets (no split to speak of)
_GENERATED = ("spirals", "shapes", "regression")


def provenance(scene: Scene, task: Task, run: Run, fit: PlaneFit, engine: GridEngine, precision: dict,
               timings: dict, stats: dict, seq: dict | None, dev: torch.device) -> dict:
    ls = scene.landscape
    _, d1, d2 = fit.plane.flat()
    return {
        "landscape": ls.model_dump(mode="json"),        # the resolved section, as the record keeps it
        "title": scene.title,
        "scene": scene.source,
        "device": str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "parameters": parameter_count(task.model),
        "model_class": type(task.model).__name__,
        "engine": engine_record(engine, precision),
        "loss": {"name": task.loss.describe(), "accuracy_meaningful": task.loss.classification},
        "plane": {"method": ls.plane.method, "extent": fit.extent, **fit.info,
                  "d1_norm": float(d1.norm()), "d2_norm": float(d2.norm())},
        "data": _data_record(ls.data, task),
        # where the weights came from, final values, the run's settings, its train_key (cache/models/)
        # and the per-snapshot log
        "training": training_record(run, fit.offplane),
        "timings": timings,
        "loss_stats": stats,
        **({"sequence": seq["meta"]} if seq else {}),
        "format_version": FORMAT_VERSION,
    }


def engine_record(engine: GridEngine, precision: dict | None = None) -> dict:
    """The grid path that ran (compute/grid/), how, and why the general path did not where it did not."""
    return {"method": engine.method, "fallback": engine.fallback, "chunk": engine.chunk, "compiled": engine.compiled,
            # part of grid_s: compiling the kernels and the first pass (None: not compiled here)
            "compile_s": engine.compile_s, "batchnorm": engine.batchnorm,
            "precision": precision or {"mode": engine.precision}}


def _data_record(spec: AnyData, task: Task) -> dict:
    d = task.data
    balanced = d.kind == "classes"
    return {"name": spec.name, "kind": d.kind, "shape": list(d.shape),
            "inputs": "values" if d.x.is_floating_point() else "tokens",
            "classes": d.outputs if d.kind in ("classes", "tokens") else None, "outputs": d.outputs,
            "train_samples": len(d.x), "eval_samples": int(len(task.eval.x)),
            "split": "generated" if spec.name in _GENERATED else
            "the data set's training split" + (" (a seeded, class-balanced subset)" if hasattr(spec, "train_samples")
                                               else ""),
            "eval_split": "subset of the training data (seeded" + (", class-balanced)" if balanced else ")")}
