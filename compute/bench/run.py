"""The compute bench: the cases in turn, their rows and targets, the tables, and the command line
(``python -m compute.bench``; its usage is the package docstring)."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from compute.bench.cases import Case, cases
from compute.bench.profile import chunk_profile, profile_table
from compute.bench.timing import (PEER_STEPS, PEER_STEPS_QUICK, Method, engine_method, forward_flops, loop_method,
                                  matmul_peak, peer_available, peer_method, plane_for, ratio, rounds, sync)
from compute.engine import GridEngine
from compute.numerics import flush_denormals
from studio.benchfile import publish, update_readme

#: the arithmetic of each GPU precision's matmul peak (CPU rows are float32 only)
PRECISIONS = ("fp32", "tf32", "bf16")

#: what the general path is held to, in the same run: (case prefix, method, over, goal)
TARGETS = [
    ("user's BN convnet", "engine+compile", "studio classes+compile", 0.9),
    ("resnet-20", "engine+compile", "loop", 3.0),
    ("charlm", "engine+compile", "loop", 3.0),
    ("mlp 2-64-64-2", "engine+compile", "loss-landscapes", 2.5),
    ("mlp 64-64-64-10", "engine+compile", "loss-landscapes", 2.5),
    ("convnet 3x16x16", "engine+compile", "loop", 3.5),
]


def device_name(dev: torch.device) -> str:
    return str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})"


def methods_of(case: Case, dev: torch.device, peer: bool, steps: int) -> dict[str, Method]:
    """Every way the case is timed (see the package docstring)."""
    model = case.model.to(dev).eval()
    x, y = case.x.to(dev), case.y.to(dev)
    plane = plane_for(model)
    gen = torch.Generator().manual_seed(1)
    pool = 40000
    pts = tuple((torch.rand(pool, generator=gen) * 2 - 1).to(dev) for _ in range(2))   # copied once
    engines = {"engine": GridEngine(model, plane, x, y), "engine+compile": GridEngine(model, plane, x, y, compile=True)}
    if dev.type == "cuda":                      # reduced precision: faster, and how much less exact
        for p in ("tf32", "bf16"):
            engines[f"engine+compile {p}"] = GridEngine(model, plane, x, y, compile=True, precision=p)
    if case.graph_rows:
        engines["graph"] = GridEngine(model, plane, x, y, method="graph")
        engines["graph+compile"] = GridEngine(model, plane, x, y, method="graph", compile=True)
    if case.twin is not None:
        twin = case.twin.to(dev).eval()
        engines["studio classes"] = GridEngine(twin, plane, x, y)
        engines["studio classes+compile"] = GridEngine(twin, plane, x, y, compile=True)
    if case.vmap:
        engines["vmap"] = GridEngine(model, plane, x, y, method="vmap")
    methods = {"loop": loop_method(model, plane, x, y, dev)}
    methods.update({k: engine_method(e, pts, dev) for k, e in engines.items()})
    if peer and case.peer:
        methods["loss-landscapes"] = peer_method(model, x, y, dev, steps)
    exact = engines["engine"].losses(pts[0][:256], pts[1][:256])
    for k, e in engines.items():
        if e.precision != "fp32":
            rel = (e.losses(pts[0][:256], pts[1][:256]) - exact).abs() / exact.abs().clamp_min(1e-12)
            methods[k].detail += f", max rel. diff to fp32 {rel.max().item():.1e}"
    return methods


def rows_of(case: Case, methods: dict[str, Method], flops: float, peaks: dict, dev) -> list[dict]:
    loop, fair = methods["loop"], methods.get("loss-landscapes")
    rows = []
    for name, m in methods.items():
        pps = statistics.median(m.rates)
        r, r_lo, r_hi = ratio(m, loop)
        peer = ratio(m, fair) if fair else None
        peak = peaks[m.precision]
        rows.append({"stage": "compute", "model": case.name, "method": name, "detail": m.detail,
                     "device": device_name(dev), "precision": m.precision, "points_per_s": pps,
                     "spread": [min(m.rates), max(m.rates)], "baseline": "loop", "ratio": r,
                     "ratio_spread": [r_lo, r_hi], "peer_ratio": peer[0] if peer else None,
                     "peer_ratio_spread": list(peer[1:]) if peer else None, "rounds": len(m.rates),
                     "flop_rate": pps * flops, "peak_flop_rate": peak, "peak_fraction": pps * flops / peak,
                     "forward_flops_per_point": flops})
        # each result as it comes, so a run stopped early still tells something
        print(f"    {name}: {pps:,.0f} points/s, {r:.2f}x loop [{r_lo:.2f}-{r_hi:.2f}]"
              + (f", {peer[0]:.2f}x loss-landscapes" if peer else ""), file=sys.stderr)
    return rows


def targets(all_methods: dict[str, dict[str, Method]]) -> list[dict]:
    """TARGETS measured: each ratio round by round, in this run."""
    out = []
    for prefix, method, over, goal in TARGETS:
        case = next((c for c in all_methods if c.startswith(prefix)), None)
        ms = all_methods.get(case, {})
        if method not in ms or over not in ms:
            continue
        med, lo, hi = ratio(ms[method], ms[over])
        out.append({"stage": "compute-targets", "model": case, "method": method, "over": over, "ratio": med,
                    "spread": [lo, hi], "goal": goal, "met": med >= goal})
    return out


def run(dev: torch.device, n_rounds: int, seconds: float, quick: bool, profile: bool = False,
        only: str = "") -> tuple[list[dict], list[dict], dict[str, dict]]:
    flush_denormals()
    t_start = time.perf_counter()
    peer = peer_available()
    peaks = {p: matmul_peak(dev, p) for p in (PRECISIONS if dev.type == "cuda" else ("fp32",))}
    print(f"device {device_name(dev)}: measured matmul peak "
          + ", ".join(f"{p} {v / 1e9:,.1f} GFLOP/s" for p, v in peaks.items())
          + f"; loss-landscapes {'installed' if peer else 'not installed'}", file=sys.stderr)
    rows, measured, profiles = [], {}, {}
    if profile:                  # the compiled kernels named in torch.profiler (a few microseconds a chunk)
        import torch._inductor.config as inductor_config
        inductor_config.cpp.enable_kernel_profile = True
    for case in cases(quick):
        if only and not any(word in case.name for word in only.split(",")):
            continue
        print(f"  {case.name} ...", file=sys.stderr, flush=True)
        methods = methods_of(case, dev, peer, PEER_STEPS_QUICK if quick else PEER_STEPS)
        rounds(methods, n_rounds, seconds)
        measured[case.name] = methods
        rows += rows_of(case, methods, forward_flops(case.model, case.x.to(dev)), peaks, dev)
        if profile:
            profiles[case.name] = chunk_profile(case.model, case.x, case.y, dev)
        print(f"  ({time.perf_counter() - t_start:.0f} s so far)", file=sys.stderr, flush=True)
    return rows, targets(measured), profiles


def time_grid(dev: torch.device, n: int) -> dict:
    """Wall time of a full n x n grid of the bench ConvNet (the gpu-check figure)."""
    from compute.models import convnet
    g = torch.Generator().manual_seed(0)
    model = convnet(3, 16, [16, 32, 32], 10, "relu").to(dev).eval()
    x = torch.randn(128, 3, 16, 16, generator=g).to(dev)
    y = torch.randint(0, 10, (128,), generator=g).to(dev)
    engine = GridEngine(model, plane_for(model), x, y, compile=True)
    axis = torch.linspace(-1, 1, n, device=dev)
    # compiling (and the first pass's kernel selection) before the clock, timed apart: one row,
    # padded to a whole chunk, the shape every pass of the grid has
    sync(dev)
    t = time.perf_counter()
    engine.block(axis, axis, 0, 1)
    sync(dev)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    rows = 0
    for _, block in engine.rows(axis, axis):
        rows += block.shape[0]
    sync(dev)
    dt = time.perf_counter() - t
    assert rows == n
    print(f"  grid {n}x{n}: {dt:.1f} s ({n * n / dt:,.0f} points/s) after {warm:.1f} s of compiling and "
          f"warm-up", file=sys.stderr, flush=True)
    return {"stage": "compute", "model": "convnet 3x16x16 [16,32,32], 128 samples", "method": f"grid {n}x{n}",
            "detail": f"{engine.method}, chunk {engine.chunk}{', compiled' if engine.compiled else ''}, "
                      f"+{warm:.1f} s compiling",
            "device": device_name(dev), "precision": engine.precision, "seconds": dt, "compile_s": warm,
            "points_per_s": n * n / dt, "baseline": None, "ratio": None}


def _spread(r: dict, key: str) -> str:
    lo, hi = r.get(f"{key}_spread") or (None, None)
    return f"{r[key]:.2f} [{lo:.2f}–{hi:.2f}]" if lo is not None else f"{r[key]:.2f}"


def table(rows: list[dict]) -> str:
    lines = ["| model | method | device | points/s | × loop [min–max] | × loss-landscapes [min–max] | "
             "model FLOP/s ÷ matmul peak |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if r["stage"] != "compute":
            continue
        if r.get("seconds") is not None:
            lines.append(f"| {r['model']} | {r['method']} ({r['detail']}) | {r['device']} | "
                         f"{r['points_per_s']:,.0f} | {r['seconds']:.1f} s | | |")
            continue
        peer = _spread(r, "peer_ratio") if r.get("peer_ratio") else ""
        lines.append(f"| {r['model']} | {r['method']} ({r['detail']}) | {r['device']} | "
                     f"{r['points_per_s']:,.0f} | {_spread(r, 'ratio')} | {peer} | {100 * r['peak_fraction']:.1f}% |")
    return "\n".join(lines)


def target_table(rows: list[dict]) -> str:
    lines = ["| model | ratio | median [min–max] over the rounds | goal |", "|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['method']} ÷ {r['over']} | {r['ratio']:.2f} "
                     f"[{r['spread'][0]:.2f}–{r['spread'][1]:.2f}] | ≥ {r['goal']:g}{'' if r['met'] else ' (not met)'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from compute.bench import __doc__ as usage
    ap = argparse.ArgumentParser(prog="python -m compute.bench", description=usage.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="wall time per method per round")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter, smaller data: a smoke test")
    ap.add_argument("--json", default="out/bench.json")
    ap.add_argument("--readme", default=None, metavar="FILE.md",
                    help="put the tables between the bench:compute and bench:compute-targets markers of this file")
    ap.add_argument("--profile", action="store_true",
                    help="also print where the time of one compiled chunk goes, per model")
    ap.add_argument("--grid", type=int, default=0, metavar="N", help="also time a full N x N ConvNet grid")
    ap.add_argument("--only", default="", metavar="WORDS",
                    help="only the cases whose name holds one of these comma-separated words (e.g. resnet,charlm)")
    args = ap.parse_args(argv)
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("compute.bench: no CUDA device here (--device cpu, or no --device, benches this machine's CPU)",
              file=sys.stderr)
        return 2
    if args.profile and dev.type != "cpu":
        print("compute.bench: --profile times the CPU's work only; left out on a GPU", file=sys.stderr)
        args.profile = False
    n_rounds, seconds = (2, 0.2) if args.quick else (args.rounds, args.seconds)
    t = time.perf_counter()
    rows, goals, profiles = run(dev, n_rounds, seconds, args.quick, args.profile, args.only)
    if args.grid:
        rows.append(time_grid(dev, args.grid))
    publish(rows, table(rows), "compute", args.json, args.readme)
    publish(goals, target_table(goals), "compute-targets", args.json, args.readme)
    if profiles:
        text = profile_table(profiles)
        print(text)
        if args.readme:
            update_readme(Path(args.readme), "compute-profile", text)
    print(f"compute bench: {time.perf_counter() - t:.0f} s in all", file=sys.stderr)
    return 0
