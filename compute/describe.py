"""The landscape's figures: measured on a finished cache entry, stored in it, and said in words.

    python -m compute describe SCENE [--set KEY=VALUE ...] [--cache-dir cache] [--json] [--force]

The compute stage measures the figures of every entry it writes (:func:`measure_entry`); this
command prints them, measuring them first where the entry has none or was measured with other
options (``landscape.figures``, which is not part of the grid's key: changing it re-measures in
seconds and never recomputes the grid).  Definitions, formulas and units: docs/figures.md.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from studio import cache
from studio.cache_entry import CacheEntry
from studio.figures import describe, grid_summary
from studio.scene import Scene
from compute.plane import Plane
from compute.logs import log
from compute.numerics import flush_denormals
from compute.morphology import FigureOptions, measure, model_hvp
from compute.run.build import build_task, final_buffers
from compute.run.types import Task


#: the grid figures are measured on at most this many rows and columns
FIGURE_GRID = 1024
#: what the stored figures mean; an entry's figures of another version are measured again (2: a
#: figure finer than the grid's spacing is recorded as not resolved instead of as zero)
FIGURES_VERSION = 2


def options_of(scene: Scene) -> FigureOptions:
    """The scene's ``landscape.figures`` section as the morphology's options."""
    spec = scene.landscape.figures
    names = {f.name for f in dataclasses.fields(FigureOptions)}
    return FigureOptions(**{k: v for k, v in spec.model_dump().items() if k in names})


def measure_entry(scene: Scene, entry: CacheEntry, device: torch.device,
                  options: FigureOptions | None = None, task: Task | None = None) -> tuple[dict, dict]:
    """Measure a finished entry's figures (the Hessian ones on the evaluation subset, at the plane's
    origin and over its window) and store them in the entry -> (record, arrays).  ``task``: the one
    the compute stage just used (its model holds the final buffers); else it is built here."""
    import time
    options = options or options_of(scene)
    t0 = time.perf_counter()
    ls = entry.read(mmap=True)                          # a 4096 x 4096 grid is not copied
    pv = entry.plane()
    if task is None:
        task = build_task(scene, device)
        final_buffers(task, ls.meta, entry.root)
    origin, d1, d2 = Plane.from_vectors(task.model, pv, device, torch.float64).flat()
    path = ls.paths.get("training")
    k = max(1, -(-max(ls.loss.shape) // FIGURE_GRID))
    loss, alpha, beta = np.asarray(ls.loss[::k, ::k], dtype=np.float64), ls.alpha[::k], ls.beta[::k]
    if not np.isfinite(loss).any():                     # training diverged: there is nothing to measure
        record = {"version": FIGURES_VERSION, "options": _options_record(scene), "figures": None, "diverged": True,
                  "seconds": time.perf_counter() - t0, "device": str(device)}
        entry.write_figures(record, {})
        log("figures: the grid holds no finite loss (the training diverged); nothing to measure")
        return record, {}
    spec = scene.landscape.figures
    hvp_at, note, omitted = None, None, {}
    if spec.hessian:
        x, y = task.eval.x[:spec.samples], None if task.eval.y is None else task.eval.y[:spec.samples]
        g = scene.landscape.grid
        options, on, note = hessian_plan(options, len(x), g.resolution[0] * g.resolution[1], len(task.eval.x),
                                         spec.hessian_budget)
        if on:
            # float32 products (torch's fast kernels; float64 convolutions run 6 times slower on a
            # CPU), in float64 Lanczos iterations
            hvp_at = model_hvp(task.model, x, y, task.loss, dtype=torch.float32)
            unusable, one = _hvp_check(hvp_at, origin)
            if unusable:
                hvp_at, note = None, unusable
            else:
                n = options.iterations + options.trace_samples + \
                    2 * options.convexity_k ** 2 * options.convexity_iterations
                log(f"figures: {n} Hessian-vector products on {len(x)} samples, about {n * one:.0f} s here")
        if note:
            omitted["convexity" if on and hvp_at is not None else "hessian"] = note
    # the grid figures of a very large grid on every k-th row and column (above): the same landscape,
    # in memory bounded like the grid's own (a 4096 x 4096 grid: every 4th, 1024 x 1024)
    if k > 1:
        note = "; ".join(n for n in (note, f"grid figures on every {k}th row and column ({FIGURE_GRID} a side at "
                                           f"most)") if n)
    figs = measure(loss, alpha, beta, options, hvp_at=hvp_at,
                   origin=origin, d1=d1, d2=d2,
                   xy=None if path is None else path.xy, offplane=None if path is None else path.offplane,
                   steps=None if path is None else path.step)
    record = {"version": FIGURES_VERSION, "options": _options_record(scene), "figures": figs.to_json(),
              "seconds": time.perf_counter() - t0, "device": str(device), "note": note,
              # what was left out and why, in words (the report says it where the map would be)
              "omitted": omitted}
    if note:
        log(f"figures: {note}")
    entry.write_figures(record, figs.arrays())
    log(f"figures measured in {record['seconds']:.1f} s (python -m compute describe SCENE prints them)")
    return record, figs.arrays()


#: what one Hessian-vector product costs, counted in forward passes on the same samples: the unit of
#: figures.hessian_budget.  Measured against a grid point of the engine on the bench's networks (float32
#: products: the ConvNet 9, ResNet-20 and a small user's ResNet 14 to 18, the charlm Transformer 14)
HVP_FORWARDS = 16


def hessian_plan(options: FigureOptions, samples: int, grid_points: int, eval_samples: int,
                 share: float) -> tuple[FigureOptions, bool, str | None]:
    """Which Hessian figures fit ``share`` of the grid's model evaluations (figures.hessian_budget):
    all of them, or without the convexity map, or none -> (options, hessian on, why not or None).
    A count from the scene alone: the same scene gets the same figures on any machine."""
    o = options
    core = o.iterations + o.trace_samples
    conv = 2 * o.convexity_k ** 2 * o.convexity_iterations
    allowed = share * grid_points * eval_samples
    cost = lambda hvps: hvps * HVP_FORWARDS * samples           # noqa: E731 - sample-forwards
    if cost(core + conv) <= allowed:
        return options, True, None
    why = (f"{{what}}: {{n}} Hessian-vector products on {samples} samples are {{r:.2g}} times the grid's "
           f"{grid_points:,} points on {eval_samples} samples, over figures.hessian_budget ({share:g}); raise it, "
           f"or lower figures.samples")
    if cost(core) <= allowed:
        return (dataclasses.replace(options, convexity_k=0), True,
                why.format(what="no convexity map", n=conv, r=cost(conv) / (grid_points * eval_samples))
                + " or figures.convexity_k")
    return options, False, why.format(what="no Hessian figures", n=core + conv,
                                      r=cost(core + conv) / (grid_points * eval_samples))


def _hvp_check(hvp_at, origin: torch.Tensor) -> tuple[str | None, float]:
    """One Hessian-vector product at the origin: whether the model has second derivatives in torch
    (why not, or None) and the seconds it took (for the log's estimate, never for a decision)."""
    import time
    hvp = hvp_at(origin)
    v = torch.ones_like(origin) / origin.numel() ** 0.5
    try:
        hvp(v)                                                # the first product pays for tracing
    except RuntimeError as e:                                 # a layer with no second derivative in torch
        return f"no Hessian figures: {str(e).splitlines()[0]}", 0.0
    t0 = time.perf_counter()
    hvp(v)
    return None, time.perf_counter() - t0


def _options_record(scene: Scene) -> dict:
    return scene.landscape.figures.model_dump(mode="json")


def current(scene: Scene, entry: CacheEntry) -> tuple[dict, dict] | None:
    """The entry's stored figures if they were measured with the scene's options and mean what this
    version's do, else None (they are measured again)."""
    stored = entry.figures()
    return stored if _stale(scene, stored) is None else None


def _stale(scene: Scene, stored: tuple[dict, dict] | None) -> str | None:
    """Why ``stored`` (an entry's figures, or None) must be measured again, in words; None if it is
    current."""
    if stored is None:
        return "the entry has none"
    if stored[0].get("version") != FIGURES_VERSION:
        return "they were measured by an earlier version of the studio"
    if stored[0].get("options") != _options_record(scene):
        return "they were measured with other landscape.figures options"
    return None


def main(argv: list[str]) -> int:
    import argparse
    from studio.scene import SceneError, load_scene, locate_error
    from compute.data import DataError
    from studio import cli
    ap = argparse.ArgumentParser(prog="python -m compute describe", description=__doc__.split("\n")[0])
    cli.add_scene_arguments(ap)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--force", action="store_true", help="measure the figures again")
    args = cli.parse(ap, argv)
    scene = load_scene(args.scene, args.set)
    from compute.entry import scene_folder
    from compute.distributed import pick_device
    root = Path(args.cache_dir)
    out = []
    for caption, sc in scene.panels() or [("", scene)]:
        entry = CacheEntry.of(sc, root)
        key = entry.key
        if not entry.exists():
            raise cache.CacheError(f"{args.scene}: no landscape in {root} for "
                                   f"{'this scene' if not caption else caption} (key {key}); run "
                                   f"`python -m compute {args.scene}` first")
        try:
            stored = entry.figures()
            why = "--force" if args.force else _stale(sc, stored)
            if why is not None:
                log(f"measuring the figures: {why}")
                flush_denormals()
                with scene_folder(sc.source):
                    stored = measure_entry(sc, entry, pick_device(args.device))
        except DataError as e:
            raise SceneError(locate_error(args.scene, str(e), args.set)) from None
        meta = entry.read(mmap=True).meta
        out.append((caption, key, stored[0], meta))
    if args.json:
        print(json.dumps({key: rec for _, key, rec, _ in out}, indent=1, sort_keys=True))
        return 0
    for caption, key, rec, meta in out:
        print(f"{args.scene}{f' ({caption})' if caption else ''}: landscape {key}")
        print(f"  grid evaluated by {grid_summary(meta)}")
        if rec.get("figures") is None:
            print("  diverged: the grid holds no finite loss")
            continue
        for line in describe(rec["figures"]):
            print(f"  {line}")
    return 0
