"""The compute stage: scene -> task and run -> plane -> loss grid -> cache entry.

Work in progress lives in ``cache/.<key>.partial/``: the run (``run.pt``: trained, or
the user's weights loaded) and its plane (``plane.pt``), the loss rows written so far
(``loss.npy``, a memory map) and a progress record (``progress.json``).  A run that finds it continues from the
first unwritten row; the finished entry is written atomically at the end, with
the plane's vectors and the scene's in-plane descents (compute/descent.py).  A
cache hit computes only the descents the entry lacks, on its stored plane.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from studio import atomic, cache
from studio.cache import GridSequence, Landscape, Path2D
from studio.cache_entry import CacheEntry
from studio.figures import grid_summary
from studio.scene import Scene
from studio.scene.landscape import GridSpec, LandscapeSpec
from compute.logs import log
from compute import describe, descent
from compute import distributed
from compute.distributed import pick_device
from compute import plane as planes
from compute.data import DataError
from compute.engine import GridEngine
from compute.plane import Plane
from compute.entry import scene_folder
from compute.plane.minima import prepare_minima
from compute.plane.fit import PlaneFit, fit_plane
from compute.numerics import flush_denormals
from compute.provenance import engine_record, provenance
from compute.run.build import build_run, build_task, final_buffers, read_run, save_run
from compute.run.types import Run, Task


def atomic_json(path: Path, obj: dict) -> None:
    # no fsync: a progress record is rewritten about once a second, and a lost one only resumes earlier
    atomic.write_text(path, json.dumps(obj), sync=False)


def loss_stats(loss: np.ndarray, rows: int = 256, median_cells: int = 4_000_000) -> dict:
    """Minimum, maximum, mean, median and count of non-finite cells, a block of rows at a time.

    The median is exact up to ``median_cells`` finite cells, else that of a regular subsample."""
    lo, hi, total, count, bad = np.inf, -np.inf, 0.0, 0, 0
    for j in range(0, loss.shape[0], rows):
        blk = np.asarray(loss[j:j + rows], dtype=np.float64)
        ok = np.isfinite(blk)
        bad += int(blk.size - ok.sum())
        if ok.any():
            v = blk[ok]
            lo, hi = min(lo, v.min()), max(hi, v.max())
            total += v.sum()
            count += v.size
    if count == 0:
        return {"min": None, "max": None, "mean": None, "median": None, "nonfinite": bad}
    step = max(1, int(np.ceil(loss.size / median_cells)))
    sample = np.asarray(loss).reshape(-1)[::step]
    sample = sample[np.isfinite(sample)]
    return {"min": float(lo), "max": float(hi), "mean": total / count,
            "median": float(np.median(sample)) if sample.size else None,
            "median_exact": step == 1, "nonfinite": bad}


def precision_error(engine: GridEngine, task: Task, plane: Plane, alpha, beta, batchnorm: str,
                    sample: int = 512) -> dict:
    """Relative difference of a reduced-precision grid to fp32, on a seeded sample of its points; logged."""
    g = np.random.default_rng(0)
    a = torch.tensor(g.choice(alpha, sample), dtype=torch.float32, device=task.device)
    b = torch.tensor(g.choice(beta, sample), dtype=torch.float32, device=task.device)
    exact = GridEngine(task.model, plane, task.eval.x, task.eval.y, chunk=engine.chunk, batchnorm=batchnorm,
                       loss=task.loss).losses(a, b)
    rel = ((engine.losses(a, b) - exact).abs() / exact.abs().clamp_min(1e-12)).cpu().numpy()
    rel = rel[np.isfinite(rel)]
    out = {"sample": sample, "median_rel_diff": float(np.median(rel)) if rel.size else None,
           "max_rel_diff": float(rel.max()) if rel.size else None}
    log(f"precision {engine.precision}: relative difference to fp32 over {sample} grid points: median "
        f"{out['median_rel_diff']:.2e}, max {out['max_rel_diff']:.2e}")
    return out


def _progress(group: distributed.Group, loss_file: Path, prog_file: Path) -> dict:
    """The progress record of an interrupted run (rank 0 reads it), on every rank; empty when the
    rows start afresh."""
    prog = {}
    if group.main and loss_file.is_file() and prog_file.is_file():
        prog = json.loads(prog_file.read_text())
    return distributed.broadcast(group, prog)


def _rows_file(loss_file: Path, prog_file: Path, resumed: bool, shape: tuple, first: dict) -> np.memmap:
    """The memory map rows are written to: the interrupted run's, or a new one of NaN with its
    first progress record ``first``."""
    if resumed:
        return np.lib.format.open_memmap(loss_file, mode="r+")
    mm = np.lib.format.open_memmap(loss_file, mode="w+", dtype=np.float32, shape=shape)
    mm[:] = np.nan
    atomic_json(prog_file, first)
    return mm


def _fill(engine: GridEngine, group: distributed.Group, grid, at: torch.Tensor, bt: torch.Tensor, done: int,
          q: int, bar, record) -> None:
    """Rows ``done`` .. of one grid into ``grid`` (a memory map, rank 0; None on other ranks), in
    row blocks dealt round-robin over the ranks: in each round rank i computes block
    (round * world + i).  ``record(rows)`` saves the progress record once rows 0 .. rows-1 are on
    disk; syncing the map costs milliseconds, so that happens about once a second rather than
    after every block."""
    ny, nx = bt.numel(), at.numel()
    r = engine.rows_per_block(nx)
    starts = list(range(done, ny, r))
    last_sync = time.monotonic()
    for first in range(0, len(starts), group.world):
        mine = first + group.rank
        if mine < len(starts):
            block = engine.block_all(at, bt, starts[mine], r)
            block = block[..., 0] if q == 1 else block
            valid = block.shape[0]
        else:
            block, valid = torch.empty((r, nx) if q == 1 else (r, nx, q), device=at.device), 0
        gathered = distributed.gather_block(group, block, r, valid)
        if not group.main:
            continue
        for i, (blk, valid) in enumerate(gathered):
            if valid == 0:
                continue
            j = starts[first + i]
            grid[j:j + valid] = blk[:valid].cpu().numpy()
            bar.update(valid * nx)
        end = min(starts[min(first + group.world, len(starts)) - 1] + r, ny)
        if end == ny or time.monotonic() - last_sync > 1.0:
            grid.flush()
            record(end)
            last_sync = time.monotonic()


def _sequence(ls: LandscapeSpec, run: Run, fit: PlaneFit, task: Task, still: GridEngine, group: distributed.Group,
              part: Path, at: torch.Tensor, bt: torch.Tensor, progress: bool) -> dict | None:
    """The grids of landscape.sequence, into ``part``/sequence_loss.npy (K, ny, nx), resumable grid
    by grid and row block by row block like the still grid.  Grid k lies on the plane through the
    k-th chosen snapshot (compute/plane/: sequence_plane), over the same window of (a, b).
    -> None without a sequence; else {"sequence": GridSequence (rank 0), "meta": provenance}."""
    spec = ls.sequence
    if spec is None:
        return None
    params, steps = run.params, np.asarray(run.steps)
    if len(steps) < 2:
        raise planes.PlaneError("landscape.sequence: a landscape over training needs a run of at least 2 "
                                "snapshots, and this one has 1 (one set of weights); remove landscape.sequence")
    idx = planes.sequence_indices(steps, spec)
    k_all, ny, nx = len(idx), bt.numel(), at.numel()
    xy = np.asarray(fit.xy, np.float64)
    model, dev = task.model, task.device
    loss_file, prog_file = part / "sequence_loss.npy", part / "sequence_progress.json"
    prog = _progress(group, loss_file, prog_file)
    mm = _rows_file(loss_file, prog_file, bool(prog), (k_all, ny, nx),
                    {"grids_done": 0, "rows_done": 0, "grids": k_all}) if group.main else None
    _, d1, d2 = (v.to(dev) for v in fit.plane.flat())

    def plane_of(k: int, own: bool = False) -> Plane:
        plane = planes.sequence_plane(ls.plane, model, params[idx[k]].to(dev), tuple(xy[idx[k]]), d1, d2)
        return plane.to(dev, copy=own)

    # one engine for every grid (it owns its plane; set_plane copies the next one in), so a
    # compiled kernel is compiled once; the still grid's points per pass, as on every rank
    g = ls.grid
    engine = GridEngine(model, plane_of(0, own=True), task.eval.x, task.eval.y, chunk=still.chunk,
                        compile=still.compiled, precision=g.precision, batchnorm=g.batchnorm, loss=task.loss)
    k0, r0 = prog.get("grids_done", 0), prog.get("rows_done", 0)
    bar = tqdm(total=k_all * ny * nx, initial=(k0 * ny + r0) * nx, desc="sequence", unit="pt", unit_scale=True,
               disable=not progress, mininterval=1.0, dynamic_ncols=True)
    t0 = time.perf_counter()
    for k in range(k0, k_all):
        engine.set_plane(plane_of(k))

        def record(rows: int, k: int = k) -> None:
            done = rows == ny
            atomic_json(prog_file, {"grids_done": k + done, "rows_done": 0 if done else rows, "grids": k_all})

        _fill(engine, group, mm[k] if group.main else None, at, bt, r0 if k == k0 else 0, 1, bar, record)
    if not group.main:
        return None
    bar.close()
    seconds = time.perf_counter() - t0
    mm.flush()
    stats = [loss_stats(mm[k]) for k in range(k_all)]
    sequence = GridSequence(mm, steps[idx].astype(np.int64), idx.astype(np.int64), xy[idx])
    computed = (k_all * ny - (k0 * ny + r0)) * nx
    log(f"sequence: {k_all} grids of {nx}x{ny} at steps {steps[idx[0]]} .. {steps[idx[-1]]} in {seconds:.1f} s "
        f"({computed / max(seconds, 1e-9):,.0f} points/s)")
    return {"sequence": sequence,
            "meta": {"grids": k_all, "steps": [int(s) for s in steps[idx]], "snapshot_index": idx.tolist(),
                     "spacing": spec.spacing if not spec.steps else "steps",
                     "directions": "rescaled to each snapshot (random plane)" if ls.plane.method == "random"
                     else "those of the plane, carried to each snapshot",
                     "seconds": seconds, "points_per_s": computed / seconds if seconds > 0 else None,
                     "loss_stats": stats}}


def run(scene: Scene, cache_root: Path = cache.DEFAULT_ROOT, device: str | None = None,
        progress: bool = True, force: bool = False) -> Path:
    """Compute the scene's landscape into the cache (or find it there); returns the entry's directory.

    Under torchrun every rank calls this; rank 0 trains (or loads), owns the cache and logs, and the
    grid's row blocks are shared out (see compute/distributed.py)."""
    flush_denormals()
    group = distributed.init(device)
    try:
        # custom model / data / loss entries are imported from the scene's folders first (compute/entry.py)
        with scene_folder(scene.source):
            return _run(scene, Path(cache_root), device, progress, force, group)
    finally:
        distributed.finish(group)


def _run(scene: Scene, cache_root: Path, device: str | None, progress: bool, force: bool,
         group: distributed.Group) -> Path:
    entry = CacheEntry.of(scene, cache_root)
    key = entry.key
    progress = progress and group.main
    hit = distributed.broadcast(group, _usable(entry) and not force if group.main else None)
    if hit:
        if group.main:
            _add_missing_descents(scene, entry, device, progress)
        return entry.dir
    dev = group.device if group.active else pick_device(device)
    part = entry.partial
    t_start = time.perf_counter()

    # ---- the task on every rank; the run and its plane on rank 0 (kept in the partial entry)
    task = build_task(scene, dev)
    placed = _prepare(scene, task, entry, progress, force, group) if group.main else None
    run, fit = distributed.broadcast(group, placed)
    task.place(run)
    plane = fit.plane.to(dev)

    # ---- the grid, row blocks written to a memory map with a progress record (rank 0)
    ls = scene.landscape
    gspec = ls.grid
    nx, ny = gspec.resolution
    (a0, a1), (b0, b1) = fit.extent
    alpha, beta = np.linspace(a0, a1, nx), np.linspace(b0, b1, ny)
    at = torch.tensor(alpha, dtype=torch.float32, device=dev)
    bt = torch.tensor(beta, dtype=torch.float32, device=dev)
    engine, grid, done, grid_s = _grid(task, plane, gspec, group, part, at, bt, progress)

    # ---- the landscape over training (landscape.sequence): one grid per chosen snapshot
    seq = _sequence(ls, run, fit, task, engine, group, part, at, bt, progress)
    if not group.main:
        return entry.dir
    grid.flush()
    # the memory map itself: a 4096 x 4096 grid is never copied in memory
    loss = grid if grid.ndim == 2 else grid[..., 0]
    grids = {} if grid.ndim == 2 else {"accuracy": np.ascontiguousarray(grid[..., 1])}

    # ---- the training path on the plane, the scene's in-plane descents, the precision check
    paths = {"training": _training_path(engine, run, fit)} if len(run.steps) > 1 else {}
    if "training" in paths and len(paths["training"].step) < 1:
        paths = {}
    for name, p in fit.extra_paths.items():         # a minima plane's other two networks
        if len(p["step"]) > 1:
            paths[name] = _plane_path(engine, name, p["xy"], p["loss"], p["offplane"], p["step"])
    pv = fit.plane.vectors()
    paths_down = descent.compute_descents(scene.landscape.descents, task.model,
                                          Plane.from_vectors(task.model, pv, dev), task.eval.x,
                                          task.eval.y, fit.extent, progress, task.loss)
    precision = {"mode": gspec.precision}
    if gspec.precision != "fp32":
        precision.update(precision_error(engine, task, plane, alpha, beta, gspec.batchnorm))

    # ---- the entry, written atomically
    computed = (ny - done) * nx
    timings = {"train_s": run.seconds, "grid_s": grid_s, "total_s": time.perf_counter() - t_start,
               "grid_points_per_s": computed / grid_s if grid_s > 0 else None, "resumed_from_row": done}
    meta = provenance(scene, task, run, fit, engine, precision, timings, loss_stats(loss), seq, dev)
    written = entry.write(Landscape(key, loss, alpha, beta, paths, meta, plane=pv,
                                    descents={d.key: d for d in paths_down}, grids=grids,
                                    sequence=seq["sequence"] if seq else None))
    shutil.rmtree(part, ignore_errors=True)
    log(f"wrote {written}: {nx}x{ny} grid in {grid_s:.1f} s ({grid_summary(meta)}), total {timings['total_s']:.1f} s")
    # ---- the landscape's figures, measured on the entry just written (compute/describe.py)
    describe.measure_entry(scene, entry, dev, task=task)
    return written


def _usable(entry: CacheEntry) -> bool:
    """A finished entry that reads back whole; a broken one (a truncated array, say) is said and
    computed again (the new entry replaces it atomically)."""
    if not entry.exists():
        return False
    why = entry.problem()
    if why is not None:
        log(f"{why}; computing it again")
    return why is None


def _add_missing_descents(scene: Scene, entry: CacheEntry, device: str | None, progress: bool) -> None:
    """A cache hit: descents are keyed apart from the grid, so compute only those the entry lacks,
    on its stored plane."""
    meta = entry.meta()
    todo = entry.missing_descents(scene.landscape.descents)
    figures = describe.current(scene, entry) is None
    hit = (f"cache hit: {entry.dir} (computed in "
           f"{meta['timings']['total_s']:.0f} s on {meta['device']})")
    if not todo and not figures:
        log(f"{hit}; nothing to do")
        return
    work = ([f"{len(todo)} descent{'s' if len(todo) != 1 else ''}"] if todo else []) + (["its figures"] if figures else [])
    log(f"{hit}; computing {' and '.join(work)}")
    dev = pick_device(device)
    # one task for both (its model at the final buffers), as a full run has
    task = build_task(scene, dev)
    final_buffers(task, meta, entry.root)
    if todo:
        descent.add_to_entry(scene, entry, todo, dev, progress, task=task)
    if figures:
        describe.measure_entry(scene, entry, dev, task=task)


def _prepare(scene: Scene, task: Task, entry: CacheEntry, progress: bool, force: bool,
             group: distributed.Group) -> tuple[Run, PlaneFit]:
    """The run (trained, loaded, or the interrupted run's) and its plane, kept in the partial entry
    so a resumed run needs neither training nor loading.  The model store is the entry's cache's."""
    part, cache_root = entry.partial, entry.root
    if force and part.exists():
        shutil.rmtree(part)
    run_file, plane_file = part / "run.pt", part / "plane.pt"
    if run_file.is_file() and plane_file.is_file():
        log(f"resuming {part} (the run and plane of the interrupted run)")
        run = read_run(run_file)
        task.place(run)
        return run, PlaneFit.read(plane_file, task.model)
    ls = scene.landscape
    what = "weights from files" if ls.weights is not None else ls.data.name
    log(f"key {entry.key}: {ls.model.name} on {what} ({task.device})"
        + (f"; grid on {group.world} processes" if group.active else ""))
    fresh = not part.exists()
    try:
        # the trained model comes from cache/models/ when a scene with the same data, model and
        # training made it; --force trains again
        if ls.plane.method == "minima":        # three runs, the plane through their ends
            run, fit = prepare_minima(scene, task, progress, cache_root=cache_root, retrain=force)
        else:
            run = build_run(scene, task, progress, cache_root=cache_root, retrain=force)
            fit = fit_plane(ls.plane, run, task)
    except DataError:
        if fresh:                      # leave nothing behind (the message says what to change)
            shutil.rmtree(part, ignore_errors=True)
        raise
    part.mkdir(parents=True, exist_ok=True)
    save_run(run, run_file)
    fit.save(plane_file)
    return run, fit


def _grid(task: Task, plane: Plane, gspec: GridSpec, group: distributed.Group, part: Path, at: torch.Tensor,
          bt: torch.Tensor, progress: bool) -> tuple[GridEngine, np.memmap | None, int, float]:
    """The still grid into ``part``/loss.npy, resumable row block by row block.  A resumed run uses
    the interrupted run's points per pass (on a GPU the automatic size depends on free memory), so
    its row blocks are the same; every rank uses rank 0's.  Compiling costs seconds and pays off on
    large grids.  -> (engine, the rows' memory map (rank 0), rows resumed from, seconds)."""
    nx, ny = at.numel(), bt.numel()
    loss_file, prog_file = part / "loss.npy", part / "progress.json"
    prog = _progress(group, loss_file, prog_file)
    engine = GridEngine(task.model, plane, task.eval.x, task.eval.y, chunk=prog.get("chunk"),
                        compile=nx * ny >= 50_000, precision=gspec.precision, batchnorm=gspec.batchnorm,
                        accuracy=gspec.accuracy, loss=task.loss)
    q = 2 if gspec.accuracy else 1
    engine.chunk = distributed.broadcast(group, engine.chunk)
    done = prog.get("rows_done", 0)
    if group.main:
        line = f"grid {nx}x{ny}: {grid_summary({'engine': engine_record(engine), 'device': str(engine.device)})}"
        log(f"{line}; {estimate(engine, at, bt, (ny - done) * nx, gspec, group.world)}")
    grid = None
    if group.main:
        # (ny, nx) of losses, or (ny, nx, 2) of loss and accuracy when the scene asks for both
        grid = _rows_file(loss_file, prog_file, bool(prog), (ny, nx) if q == 1 else (ny, nx, q),
                          {"rows_done": 0, "rows": ny, "chunk": engine.chunk})
    t0 = time.perf_counter()
    bar = tqdm(total=nx * ny, initial=done * nx, desc="grid", unit="pt", unit_scale=True,
               disable=not progress, mininterval=1.0, dynamic_ncols=True)
    _fill(engine, group, grid, at, bt, done, q, bar,
          lambda rows: atomic_json(prog_file, {"rows_done": rows, "rows": ny, "chunk": engine.chunk}))
    bar.close()
    return engine, grid, done, time.perf_counter() - t0


#: an estimate longer than this (seconds) comes with advice on making the grid faster
SLOW_GRID = 600


def estimate(engine: GridEngine, at: torch.Tensor, bt: torch.Tensor, points: int, gspec: GridSpec, ranks: int) -> str:
    """'about 7 minutes at 23 points/s': the grid's time from one timed pass of a chunk (after the
    compiled kernel's first pass, which compiles), with advice where that is long."""
    k = min(engine.chunk, at.numel())
    a, b = at[:k], bt[:1].expand(k)
    if engine.compiled:
        engine.losses(a, b)                               # compiling is not the grid's rate
    t = time.perf_counter()
    engine.losses(a, b)
    if engine.device.type == "cuda":
        torch.cuda.synchronize(engine.device)
    rate = k / max(time.perf_counter() - t, 1e-9) * ranks
    seconds = points / rate
    text = f"about {_duration(seconds)} at {rate:,.0f} points/s"
    if seconds > SLOW_GRID:
        n = gspec.eval_samples
        text += (f" (the time grows with the points and with the evaluation samples: fewer "
                 f"landscape.grid.eval_samples than {n}, or a smaller landscape.grid.resolution, make it faster)")
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _training_path(engine: GridEngine, run: Run, fit: PlaneFit) -> Path2D:
    """The run's path on the plane: the true loss at each snapshot and the surface loss under it."""
    t = run.trajectory
    return _plane_path(engine, "training", fit.xy, t.eval_loss, fit.offplane, t.steps)


def _plane_path(engine: GridEngine, name: str, xy: np.ndarray, loss: np.ndarray, offplane: np.ndarray,
                steps: np.ndarray) -> Path2D:
    """A run's path from its projection: the true loss at each snapshot and the surface loss under it."""
    dev = engine.device
    surf = engine.losses(torch.tensor(xy[:, 0], dtype=torch.float32, device=dev),
                         torch.tensor(xy[:, 1], dtype=torch.float32, device=dev)).cpu().numpy()
    # a run that diverged leaves the plane where its weights stop being finite: the path ends there
    keep = int(np.argmin(np.isfinite(xy).all(axis=1))) if not np.isfinite(xy).all() else len(xy)
    return Path2D(name, xy[:keep].astype(np.float64), np.asarray(loss[:keep], np.float64),
                  surf[:keep].astype(np.float64), np.asarray(offplane[:keep], np.float64),
                  np.asarray(steps[:keep], np.int64))
