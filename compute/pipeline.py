"""The compute stage: scene -> trained model -> plane -> loss grid -> cache entry.

Work in progress lives in ``cache/.<key>.partial/``: the trained setup
(``setup.pt``), the loss rows written so far (``loss.npy``, a memory map) and a
progress record (``progress.json``).  A run that finds it continues from the
first unwritten row; the finished entry is written atomically at the end, with
the plane's vectors and the scene's in-plane descents (compute/descent.py).  A
cache hit computes only the descents the entry lacks, on its stored plane.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from studio import cache
from studio.cache import GridSequence, Landscape, Path2D
from studio.scene import FORMAT_VERSION, Scene
from compute import descent
from compute import distributed
from compute import plane as planes
from compute.data import DataError, build_data
from compute.engine import GridEngine, Plane
from compute.entry import scene_folder
from compute.models import build_model, parameter_count
from compute.setup import build_setup, training_record

# Flush denormals to zero (much slower arithmetic near a minimum, where activations and
# probabilities underflow) before any parallel torch operation: the flag lives in each thread's
# floating-point control register, and OpenMP's worker threads copy it from the main thread only
# when they are created, which happens at the first parallel operation.  Set later, it reaches the
# main thread alone and half the work (on 2 cores) keeps running on denormals.
torch.set_flush_denormal(True)


def log(msg: str) -> None:
    print(f"[compute] {msg}", file=sys.stderr, flush=True)


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _atomic_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


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


def precision_error(engine: GridEngine, model, plane, ex, ey, alpha, beta, batchnorm: str,
                    sample: int = 512) -> dict:
    """Relative difference of a reduced-precision grid to fp32, on a seeded sample of its points."""
    g = np.random.default_rng(0)
    a = torch.tensor(g.choice(alpha, sample), dtype=torch.float32, device=ex.device)
    b = torch.tensor(g.choice(beta, sample), dtype=torch.float32, device=ex.device)
    exact = GridEngine(model, plane, ex, ey, chunk=engine.chunk, batchnorm=batchnorm).losses(a, b)
    rel = ((engine.losses(a, b) - exact).abs() / exact.abs().clamp_min(1e-12)).cpu().numpy()
    rel = rel[np.isfinite(rel)]
    return {"sample": sample, "median_rel_diff": float(np.median(rel)) if rel.size else None,
            "max_rel_diff": float(rel.max()) if rel.size else None}


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
    _atomic_json(prog_file, first)
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


def _sequence(ls: dict, setup: dict, model, still: GridEngine, ex, ey, group: distributed.Group, part: Path,
              at: torch.Tensor, bt: torch.Tensor, dev: torch.device, progress: bool) -> dict | None:
    """The grids of landscape.sequence, into ``part``/sequence_loss.npy (K, ny, nx), resumable grid
    by grid and row block by row block like the still grid.  Grid k lies on the plane through the
    k-th chosen snapshot (compute/plane.py: sequence_plane), over the same window of (a, b).
    -> None without a sequence; else {"sequence": GridSequence (rank 0), "meta": provenance}."""
    spec = ls.get("sequence")
    if not spec:
        return None
    traj = setup["traj"]
    params, steps = traj["params"], np.asarray(traj["steps"])
    idx = planes.sequence_indices(steps, spec)
    k_all, ny, nx = len(idx), bt.numel(), at.numel()
    xy = np.asarray(setup["xy"], np.float64)
    loss_file, prog_file = part / "sequence_loss.npy", part / "sequence_progress.json"
    prog = _progress(group, loss_file, prog_file)
    mm = _rows_file(loss_file, prog_file, bool(prog), (k_all, ny, nx),
                    {"grids_done": 0, "rows_done": 0, "grids": k_all}) if group.main else None
    d1, d2 = setup["d1"].to(dev), setup["d2"].to(dev)

    def plane_of(k: int, own: bool = False) -> Plane:
        o, e1, e2 = planes.sequence_plane(ls["plane"], model, params[idx[k]].to(dev), tuple(xy[idx[k]]), d1, d2)
        cut = lambda flat: planes.split(model, flat.clone() if own else flat)
        return Plane(cut(o), cut(e1), cut(e2))

    # one engine for every grid (it owns its plane; set_plane copies the next one in), so a
    # compiled kernel is compiled once; the still grid's points per pass, as on every rank
    g = ls["grid"]
    engine = GridEngine(model, plane_of(0, own=True), ex, ey, chunk=still.chunk, compile=still.compiled,
                        precision=g["precision"], batchnorm=g["batchnorm"])
    k0, r0 = prog.get("grids_done", 0), prog.get("rows_done", 0)
    bar = tqdm(total=k_all * ny * nx, initial=(k0 * ny + r0) * nx, desc="sequence", unit="pt", unit_scale=True,
               disable=not progress, mininterval=1.0, dynamic_ncols=True)
    t0 = time.perf_counter()
    for k in range(k0, k_all):
        engine.set_plane(plane_of(k))

        def record(rows: int, k: int = k) -> None:
            done = rows == ny
            _atomic_json(prog_file, {"grids_done": k + done, "rows_done": 0 if done else rows, "grids": k_all})

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
                     "spacing": spec["spacing"] if not spec.get("steps") else "steps",
                     "directions": "rescaled to each snapshot (random plane)" if ls["plane"]["method"] == "random"
                     else "those of the plane, carried to each snapshot",
                     "seconds": seconds, "points_per_s": computed / seconds if seconds > 0 else None,
                     "loss_stats": stats}}


def run(scene: Scene, cache_root: Path = cache.DEFAULT_ROOT, device: str | None = None,
        progress: bool = True, force: bool = False) -> Path:
    """Compute the scene's landscape into the cache (or find it there); returns the entry's directory.

    Under torchrun every rank calls this; rank 0 trains, owns the cache and logs, and the
    grid's row blocks are shared out (see compute/distributed.py)."""
    group = distributed.init(device)
    try:
        # custom model / data entries are imported from the scene's folder first (compute/entry.py)
        with scene_folder(scene.source):
            return _run(scene, Path(cache_root), device, progress, force, group)
    finally:
        distributed.finish(group)


def _run(scene: Scene, cache_root: Path, device: str | None, progress: bool, force: bool,
         group: distributed.Group) -> Path:
    key = scene.cache_key()
    if not group.main:
        progress = False
    hit = distributed.broadcast(group, cache.exists(cache_root, key) and not force if group.main else None)
    if hit and not group.main:
        return cache.entry_dir(cache_root, key)
    if hit:
        meta = json.loads((cache.entry_dir(cache_root, key) / "meta.json").read_text())
        # descents are keyed apart from the grid: compute only those the entry lacks, on its plane
        todo = cache.missing_descents(cache_root, key, scene.landscape.descents)
        hit = (f"cache hit: {cache.entry_dir(cache_root, key)} (computed in "
               f"{meta['timings']['total_s']:.0f} s on {meta['device']})")
        if not todo:
            log(f"{hit}; nothing to do")
        else:
            log(f"{hit}; computing {len(todo)} descent{'s' if len(todo) != 1 else ''}")
            torch.set_flush_denormal(True)
            descent.add_to_entry(scene, cache_root, key, todo, pick_device(device), progress)
        return cache.entry_dir(cache_root, key)

    torch.set_flush_denormal(True)
    dev = group.device if group.active else pick_device(device)
    ls = scene.landscape_dict()
    part = cache.partial_dir(cache_root, key)
    t_start = time.perf_counter()
    if group.main:
        if force and part.exists():
            shutil.rmtree(part)
        fresh = not part.exists()
        part.mkdir(parents=True, exist_ok=True)
        setup_file = part / "setup.pt"
        if setup_file.is_file():
            setup = torch.load(setup_file, weights_only=False)
            log(f"resuming {part} (training and plane from the interrupted run)")
        else:
            log(f"key {key}: {ls['model']['name']} on {ls['data']['name']} ({dev})"
                + (f"; grid on {group.world} processes" if group.active else ""))
            try:
                # the trained model comes from cache/models/ when a scene with the same data, model
                # and training made it; --force trains again
                setup = build_setup(scene, dev, progress, cache_root=cache_root, retrain=force)
            except DataError:
                # a data set not on disk: leave no partial entry behind (the message says what to set)
                if fresh:
                    shutil.rmtree(part, ignore_errors=True)
                raise
            tmp = part / "setup.pt.tmp"
            torch.save(setup, tmp)
            os.replace(tmp, setup_file)
    else:
        setup = None
    setup = distributed.broadcast(group, setup)      # rank 0's trained setup on every rank

    x, y, _, _ = build_data(ls["data"])
    ex, ey = x[setup["eval_indices"]].to(dev), y[setup["eval_indices"]].to(dev)
    model = build_model(ls["model"], setup.get("shape") or (setup["n_in"],), setup["n_cls"]).to(dev)
    # the trained buffers (BatchNorm's running statistics): the plane gives only the parameters
    for k, buf in model.named_buffers():
        if k in setup.get("buffers", {}):
            buf.copy_(setup["buffers"][k])
    split = lambda flat: planes.split(model, flat.to(dev))
    plane = Plane(split(setup["final"]), split(setup["d1"]), split(setup["d2"]))

    nx, ny = ls["grid"]["resolution"]
    (a0, a1), (b0, b1) = setup["extent"]
    alpha = np.linspace(a0, a1, nx)
    beta = np.linspace(b0, b1, ny)

    # ---- the grid, row blocks written to a memory map with a progress record (rank 0)
    loss_file, prog_file = part / "loss.npy", part / "progress.json"
    prog = _progress(group, loss_file, prog_file)
    # a resumed run uses the interrupted run's points per pass (on a GPU the automatic size
    # depends on free memory), so its row blocks and their numbers are the same; every rank
    # uses rank 0's size for the same reason.  Compiling costs seconds and pays off on large grids.
    gspec = ls["grid"]
    engine = GridEngine(model, plane, ex, ey, chunk=prog.get("chunk"), compile=nx * ny >= 50_000,
                        precision=gspec["precision"], batchnorm=gspec["batchnorm"], accuracy=gspec["accuracy"])
    q = 2 if gspec["accuracy"] else 1
    engine.chunk = distributed.broadcast(group, engine.chunk)
    done = prog.get("rows_done", 0)
    if group.main:
        # (ny, nx) of losses, or (ny, nx, 2) of loss and accuracy when the scene asks for both
        grid = _rows_file(loss_file, prog_file, bool(prog), (ny, nx) if q == 1 else (ny, nx, q),
                          {"rows_done": 0, "rows": ny, "chunk": engine.chunk})
    at = torch.tensor(alpha, dtype=torch.float32, device=dev)
    bt = torch.tensor(beta, dtype=torch.float32, device=dev)
    t0 = time.perf_counter()
    bar = tqdm(total=nx * ny, initial=done * nx, desc="grid", unit="pt", unit_scale=True,
               disable=not progress, mininterval=1.0, dynamic_ncols=True)
    _fill(engine, group, grid if group.main else None, at, bt, done, q, bar,
          lambda rows: _atomic_json(prog_file, {"rows_done": rows, "rows": ny, "chunk": engine.chunk}))
    if group.main:
        bar.close()
    grid_s = time.perf_counter() - t0
    # ---- the landscape over training (landscape.sequence): one grid per chosen snapshot
    seq = _sequence(ls, setup, model, engine, ex, ey, group, part, at, bt, dev, progress)
    if not group.main:
        return cache.entry_dir(cache_root, key)
    computed = (ny - done) * nx
    grid.flush()
    # the memory map itself: a 4096 x 4096 grid is never copied in memory
    loss = grid if q == 1 else grid[..., 0]
    grids = {} if q == 1 else {"accuracy": np.ascontiguousarray(grid[..., 1])}

    # ---- the training trajectory on the plane: true loss and the surface loss under it
    traj = setup["traj"]
    xy = setup["xy"]
    surf = engine.losses(torch.tensor(xy[:, 0], dtype=torch.float32, device=dev),
                         torch.tensor(xy[:, 1], dtype=torch.float32, device=dev)).cpu().numpy()
    training = Path2D("training", xy.astype(np.float64), np.asarray(traj["eval_loss"], np.float64),
                      surf.astype(np.float64), np.asarray(setup["offplane"], np.float64),
                      np.asarray(traj["steps"], np.int64))

    # ---- the scene's in-plane descents, on the plane as the entry stores it (float32 vectors)
    pv = descent.plane_vectors(setup["final"], setup["d1"], setup["d2"])
    paths_down = descent.compute_descents(scene.landscape.descents, model,
                                          descent.plane_from_vectors(model, pv, dev), ex, ey,
                                          setup["extent"], progress)

    precision = {"mode": gspec["precision"]}
    if gspec["precision"] != "fp32":
        precision.update(precision_error(engine, model, plane, ex, ey, alpha, beta, gspec["batchnorm"]))
        log(f"precision {gspec['precision']}: relative difference to fp32 over {precision['sample']} grid "
            f"points: median {precision['median_rel_diff']:.2e}, max {precision['max_rel_diff']:.2e}")

    stats = loss_stats(loss)
    total_s = time.perf_counter() - t_start
    meta = {
        "landscape": ls,
        "title": scene.title,
        "scene": scene.source,
        "device": str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "parameters": parameter_count(model),
        "engine": {"method": engine.method, "chunk": engine.chunk, "compiled": engine.compiled,
                   # part of grid_s: compiling the kernels and the first pass (None: not compiled here)
                   "compile_s": engine.compile_s,
                   "batchnorm": engine.batchnorm, "precision": precision},
        "plane": {"method": ls["plane"]["method"], "extent": setup["extent"], **setup["plane_info"],
                  "d1_norm": float(setup["d1"].norm()), "d2_norm": float(setup["d2"].norm())},
        "data": {"name": ls["data"]["name"], "shape": list(setup.get("shape") or (setup["n_in"],)),
                 "classes": setup["n_cls"], "train_samples": setup["n_train"], "eval_samples": int(len(ey)),
                 "split": "generated" if ls["data"]["name"] in ("spirals", "shapes") else
                 "the data set's training split" + (" (a seeded, class-balanced subset)"
                                                     if "train_samples" in ls["data"] else ""),
                 "eval_split": "subset of the training data (seeded, class-balanced)"},
        # final values, the run's settings, its train_key (cache/models/) and the per-snapshot log
        "training": training_record(setup),
        "timings": {"train_s": setup["train_s"], "grid_s": grid_s, "total_s": total_s,
                    "grid_points_per_s": computed / grid_s if grid_s > 0 else None,
                    "resumed_from_row": done},
        "loss_stats": stats,
        **({"sequence": seq["meta"]} if seq else {}),
        "format_version": FORMAT_VERSION,
    }
    entry = cache.write(cache_root, Landscape(key, loss, alpha, beta, {"training": training}, meta, plane=pv,
                                              descents={d.key: d for d in paths_down}, grids=grids,
                                              sequence=seq["sequence"] if seq else None))
    shutil.rmtree(part, ignore_errors=True)
    log(f"wrote {entry}: {nx}x{ny} grid in {grid_s:.1f} s "
        f"({computed / max(grid_s, 1e-9):,.0f} points/s), total {total_s:.1f} s")
    return entry
