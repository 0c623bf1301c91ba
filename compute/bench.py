"""Benchmark of the compute stage: grid points per second, engine against the per-point loop.

Usage:
    python -m compute.bench [--device cpu|cuda] [--rounds 5] [--seconds 2] [--quick]
                            [--json out/bench.json] [--readme README.md] [--grid 1000]

For each model (the default scene's MLP, a 64-input MLP, a small ConvNet) the
methods are timed round-robin in one process, each round giving every method
about the same wall time, and the median points/s over the rounds is reported
(these machines sometimes lose a core for seconds; medians of interleaved
rounds keep the ratios honest):

    loop            the reference way, as the reference tool does it: copy one
                    grid point's weights into the model, run it on the
                    evaluation batch, compute the loss -- one point at a time
    engine          GridEngine with its automatic method (batched linear or
                    conv path with the first-layer trick), eager
    engine+compile  the same kernels through torch.compile (what the compute
                    stage uses for grids of 50,000 points or more); the
                    one-off compile happens in the warm-up, outside the timing
    vmap            GridEngine's generic torch.func functional_call + vmap path
    loss-landscapes the PyPI package's random_plane, on the same model and
                    data (its own filter-normalized random plane), if installed

Also printed: the model-equivalent FLOP rate (forward FLOPs of one point times
points/s) as a fraction of this device's measured float32 matmul peak.
Rows go to ``--json`` (one record per row: stage, model, method, device,
points_per_s, baseline, ratio, ...), merged with rows of other stages already
there, and, with ``--readme``, the table between the bench markers of the README.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from compute.data import spirals
from compute.engine import GridEngine, Plane, reference_loss
from compute.models import convnet, mlp
from compute.plane import random_plane
from studio.benchfile import publish

# Flush denormals to zero (much slower arithmetic near a minimum, where activations and
# probabilities underflow) before any parallel torch operation: the flag lives in each thread's
# floating-point control register, and OpenMP's worker threads copy it from the main thread only
# when they are created, which happens at the first parallel operation.  Set later, it reaches the
# main thread alone and half the work (on 2 cores) keeps running on denormals.
torch.set_flush_denormal(True)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def matmul_peak(dev: torch.device, n: int = 2048, reps: int = 5) -> float:
    """Measured float32 matmul rate of this device, FLOP/s (median of reps)."""
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    a @ b
    rates = []
    for _ in range(reps):
        _sync(dev)
        t = time.perf_counter()
        for _ in range(3):
            a @ b
        _sync(dev)
        rates.append(3 * 2 * n**3 / (time.perf_counter() - t))
    return statistics.median(rates)


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return float(fc.get_total_flops())


def cases(dev: torch.device, quick: bool):
    g = torch.Generator().manual_seed(0)
    x, y = spirals(1024)
    yield "mlp 2-64-64-2 (tanh), 1024 samples", mlp(2, [64, 64], 2, "tanh"), x, y
    x64 = torch.randn(1024, 64, generator=g)
    y64 = torch.randint(0, 10, (1024,), generator=g)
    yield "mlp 64-64-64-10 (relu), 1024 samples", mlp(64, [64, 64], 10, "relu"), x64, y64
    n = 64 if quick else 128
    xc = torch.randn(n, 3, 16, 16, generator=g)
    yc = torch.randint(0, 10, (n,), generator=g)
    yield f"convnet 3x16x16 [16,32,32], {n} samples", convnet(3, 16, [16, 32, 32], 10, "relu"), xc, yc


def _peer_available() -> bool:
    try:
        import loss_landscapes  # noqa: F401
        import loss_landscapes.metrics  # noqa: F401
        return True
    except Exception:  # noqa: BLE001
        return False


def bench_case(name, model, x, y, dev, rounds: int, seconds: float, peer: bool):
    torch.manual_seed(0)
    model = model.to(dev).eval()
    x, y = x.to(dev), y.to(dev)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1, d2, _ = random_plane(origin, seed=0, how="filter")
    plane = Plane(origin, d1, d2)
    engines = {"engine": GridEngine(model, plane, x, y),
               "engine+compile": GridEngine(model, plane, x, y, compile=True)}
    if dev.type == "cuda":                      # reduced precision: faster, and how much less exact
        for p in ("tf32", "bf16"):
            engines[f"engine+compile {p}"] = GridEngine(model, plane, x, y, compile=True, precision=p)
    try:
        engines["vmap"] = GridEngine(model, plane, x, y, method="vmap")
    except Exception as e:  # noqa: BLE001
        print(f"  vmap unavailable: {e}", file=sys.stderr)
    gen = torch.Generator().manual_seed(1)
    pts = (torch.rand(20000, generator=gen) * 2 - 1, torch.rand(20000, generator=gen) * 2 - 1)

    def run_loop(budget: float) -> tuple[int, float]:
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < budget or i == 0:
            reference_loss(model, plane, float(pts[0][i % 20000]), float(pts[1][i % 20000]), x, y)
            i += 1
        _sync(dev)
        return i, time.perf_counter() - t0

    def run_engine(e: GridEngine, budget: float) -> tuple[int, float]:
        # several chunks a call, as the compute stage evaluates a block of grid rows (a call of a
        # single small chunk would time the call's own overhead as much as the kernels)
        blk = max(e.chunk * 8, 256)
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < budget or i == 0:
            s = (i * blk) % (20000 - blk)
            e.losses(pts[0][s:s + blk].to(dev), pts[1][s:s + blk].to(dev))
            i += 1
        _sync(dev)
        return i * blk, time.perf_counter() - t0

    def run_peer(budget: float) -> tuple[int, float]:
        import loss_landscapes
        import loss_landscapes.metrics
        metric = loss_landscapes.metrics.Loss(F.cross_entropy, x, y)
        steps = 6
        t0 = time.perf_counter()
        done = 0
        while time.perf_counter() - t0 < budget or done == 0:
            loss_landscapes.random_plane(model, metric, distance=1.0, steps=steps, normalization="filter",
                                         deepcopy_model=True)
            done += steps * steps
        _sync(dev)
        return done, time.perf_counter() - t0

    methods = {"loop": run_loop}
    for k, e in engines.items():
        methods[k] = lambda b, e=e: run_engine(e, b)
    if peer:
        methods["loss-landscapes"] = run_peer
    for f in methods.values():          # warm up every method once (allocator, kernels)
        f(0.0)
    rates: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(rounds):
        for k, f in methods.items():
            n, dt = f(seconds)
            rates[k].append(n / dt)
    flops = forward_flops(model, x)
    errors = {}
    a, b = pts[0][:256].to(dev), pts[1][:256].to(dev)
    exact = engines["engine"].losses(a, b)
    for k, e in engines.items():
        if e.precision != "fp32":
            rel = ((e.losses(a, b) - exact).abs() / exact.abs().clamp_min(1e-12))
            errors[k] = f", max rel. diff to fp32 {rel.max().item():.1e}"
    out = {}
    for k, r in rates.items():
        out[k] = {"points_per_s": statistics.median(r), "spread": [min(r), max(r)],
                  "method_detail": (engines[k].method + f", chunk {engines[k].chunk}"
                                    + (", compiled" if engines[k].compiled else "")
                                    + errors.get(k, "")) if k in engines else k}
    return out, flops


def run(dev: torch.device, rounds: int, seconds: float, quick: bool) -> list[dict]:
    torch.set_flush_denormal(True)
    peer = _peer_available()
    peak = matmul_peak(dev)
    device_name = str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})"
    print(f"device {device_name}: measured fp32 matmul peak {peak / 1e9:,.1f} GFLOP/s; "
          f"loss-landscapes {'installed' if peer else 'not installed'}", file=sys.stderr)
    rows = []
    for name, model, x, y in cases(dev, quick):
        print(f"  {name} ...", file=sys.stderr, flush=True)
        res, flops = bench_case(name, model, x, y, dev, rounds, seconds, peer)
        base = res["loop"]["points_per_s"]
        for method, r in res.items():
            pps = r["points_per_s"]
            rows.append({"stage": "compute", "model": name, "method": method, "detail": r["method_detail"],
                         "device": device_name, "points_per_s": pps, "spread": r["spread"],
                         "baseline": "loop", "ratio": pps / base,
                         "flop_rate": pps * flops, "peak_flop_rate": peak, "peak_fraction": pps * flops / peak,
                         "forward_flops_per_point": flops})
    return rows


def time_grid(dev: torch.device, n: int) -> dict:
    """Wall time of a full n x n grid of the bench ConvNet (the gpu-check figure)."""
    g = torch.Generator().manual_seed(0)
    model = convnet(3, 16, [16, 32, 32], 10, "relu").to(dev).eval()
    x = torch.randn(128, 3, 16, 16, generator=g).to(dev)
    y = torch.randint(0, 10, (128,), generator=g).to(dev)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1, d2, _ = random_plane(origin, seed=0, how="filter")
    engine = GridEngine(model, Plane(origin, d1, d2), x, y, compile=True)
    axis = torch.linspace(-1, 1, n, device=dev)
    _sync(dev)
    t = time.perf_counter()
    rows = 0
    for _, block in engine.rows(axis, axis):
        rows += block.shape[0]
    _sync(dev)
    dt = time.perf_counter() - t
    return {"stage": "compute", "model": "convnet 3x16x16 [16,32,32], 128 samples", "method": f"grid {n}x{n}",
            "detail": f"{engine.method}, chunk {engine.chunk}", "device": str(dev), "seconds": dt,
            "points_per_s": n * n / dt, "baseline": None, "ratio": None}


def table(rows: list[dict]) -> str:
    lines = ["| stage | model | method | device | points/s | × loop | model FLOP/s ÷ matmul peak |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        if r["stage"] != "compute":
            continue
        if r.get("seconds") is not None:
            lines.append(f"| compute | {r['model']} | {r['method']} ({r['detail']}) | {r['device']} | "
                         f"{r['points_per_s']:,.0f} | {r['seconds']:.1f} s | |")
            continue
        lines.append(f"| compute | {r['model']} | {r['method']} ({r['detail']}) | {r['device']} | "
                     f"{r['points_per_s']:,.0f} | {r['ratio']:.2f} | {100 * r['peak_fraction']:.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compute.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="wall time per method per round")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter: a smoke test")
    ap.add_argument("--json", default="out/bench.json")
    ap.add_argument("--readme", default=None)
    ap.add_argument("--grid", type=int, default=0, metavar="N", help="also time a full N x N ConvNet grid")
    args = ap.parse_args(argv)
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rounds, seconds = (2, 0.2) if args.quick else (args.rounds, args.seconds)
    rows = run(dev, rounds, seconds, args.quick)
    if args.grid:
        rows.append(time_grid(dev, args.grid))
    publish(rows, table(rows), "compute", args.json, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
