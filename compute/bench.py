"""Benchmark of the compute stage: grid points per second, engine against the per-point loop.

Usage:
    python -m compute.bench [--device cpu|cuda] [--rounds 5] [--seconds 1.5] [--quick]
                            [--json out/bench.json] [--readme docs/benchmarks.md] [--grid 1000]
                            [--profile]

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
                    data (its own filter-normalized random plane), if
                    installed, called as its users call it: a grid of
                    PEER_STEPS x PEER_STEPS points a call (its setup, copying
                    the model and drawing the directions, is then a small
                    share of the call, as in real use)

The engines are timed on calls of eight chunks, as the compute stage evaluates
a block of grid rows.  Also printed: the model-equivalent FLOP rate (forward
FLOPs of one point times points/s) as a fraction of this device's measured
matmul peak in the same arithmetic: float32 for float32 work (on a GPU with
TensorFloat-32 off, as the engine's fp32 runs), TensorFloat-32 and bfloat16
for the GPU's tf32 and bf16 rows; both sides count a multiply-add as 2 FLOPs.
On a GPU every timing waits for the device before reading the clock, and each
method's one-off costs (torch.compile, kernel selection) are spent in a warm-up
call before the rounds.

``--profile`` also prints where the time of one compiled chunk goes (matmuls
and convolutions, the other fused kernels, the loss, and the rest: Python,
guards, allocation), from torch.profiler, and with ``--readme`` puts that table
between the ``bench:compute-profile`` markers.

Rows go to ``--json`` (one record per row: stage, model, method, device,
points_per_s, baseline, ratio, peer_ratio, ...), merged with rows of other
stages already there, and, with ``--readme``, the table between the
``bench:compute`` markers of that Markdown file.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from compute.data import spirals
from compute.engine import GridEngine, Plane, precision_context, reference_loss
from compute.models import convnet, mlp
from compute.plane import random_plane
from studio.benchfile import publish, update_readme

# Flush denormals to zero (much slower arithmetic near a minimum, where activations and
# probabilities underflow) before any parallel torch operation: the flag lives in each thread's
# floating-point control register, and OpenMP's worker threads copy it from the main thread only
# when they are created, which happens at the first parallel operation.  Set later, it reaches the
# main thread alone and half the work (on 2 cores) keeps running on denormals.
torch.set_flush_denormal(True)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


#: the arithmetic of each GPU precision's matmul peak (CPU rows are float32 only)
PRECISIONS = ("fp32", "tf32", "bf16")

#: points a side of the peer's grid a call: its users ask for 25 to 100 (its default is 20); with few
#: (6: 36 points a call) its per-call setup would be most of what is timed
PEER_STEPS = 40
#: the same in --quick (a smoke test: one call of the ConvNet at 40 x 40 takes seconds)
PEER_STEPS_QUICK = 10


def matmul_peak(dev: torch.device, precision: str = "fp32", reps: int = 5) -> float:
    """Measured matmul rate of this device in the arithmetic of ``precision`` (fp32: true float32,
    on a GPU with TensorFloat-32 off; tf32; bf16: bfloat16 operands), FLOP/s counted 2 n^3 a
    product, median of reps.  A GPU gets a larger product and more of them a rep, so the few
    milliseconds timed are not mostly launch and synchronization."""
    cuda = dev.type == "cuda"
    n, inner = (4096, 10) if cuda else (2048, 3)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    with precision_context(dev, "tf32" if precision == "tf32" else "fp32"):
        a @ b                                       # warm-up: library and kernel selection
        rates = []
        for _ in range(reps):
            _sync(dev)
            t = time.perf_counter()
            for _ in range(inner):
                a @ b
            _sync(dev)
            rates.append(inner * 2 * n**3 / (time.perf_counter() - t))
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


def time_engine(e: GridEngine, pts: tuple[torch.Tensor, torch.Tensor], blk: int, budget: float,
                dev: torch.device) -> tuple[int, float]:
    """Calls of ``blk`` points (at most the pool ``pts``, on ``dev``) for ``budget`` seconds, at
    least one -> (points evaluated, seconds until the device finished them)."""
    pool = pts[0].numel()
    blk = min(blk, pool)
    _sync(dev)
    t0 = time.perf_counter()
    i = done = 0
    while time.perf_counter() - t0 < budget or i == 0:
        s = (i * blk) % (pool - blk + 1)
        done += e.losses(pts[0][s:s + blk], pts[1][s:s + blk]).numel()
        i += 1
    _sync(dev)                           # the calls above only queue work on a GPU
    return done, time.perf_counter() - t0


def bench_case(name, model, x, y, dev, rounds: int, seconds: float, peer: bool, steps: int = PEER_STEPS):
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
    # a call evaluates several chunks, as the compute stage evaluates a block of grid rows (a call
    # of a single small chunk would time the call's own overhead as much as the kernels); the pool
    # of points holds at least two calls' worth (a GPU's chunk reaches 4096 points, a call 32768)
    blocks = {k: max(e.chunk * 8, 256) for k, e in engines.items()}
    pool = max(20000, 2 * max(blocks.values()))
    gen = torch.Generator().manual_seed(1)
    pts = (torch.rand(pool, generator=gen) * 2 - 1, torch.rand(pool, generator=gen) * 2 - 1)
    on_dev = (pts[0].to(dev), pts[1].to(dev))          # copied once, not in the timed calls
    loop_pts = list(zip(pts[0][:20000].tolist(), pts[1][:20000].tolist()))

    def run_loop(budget: float) -> tuple[int, float]:
        # reference_loss syncs each point (.item()): a time budget bounds the points a round takes
        _sync(dev)
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < budget or i == 0:
            reference_loss(model, plane, *loop_pts[i % len(loop_pts)], x, y)
            i += 1
        _sync(dev)
        return i, time.perf_counter() - t0

    def run_peer(budget: float) -> tuple[int, float]:
        import loss_landscapes
        import loss_landscapes.metrics
        metric = loss_landscapes.metrics.Loss(F.cross_entropy, x, y)
        _sync(dev)
        t0 = time.perf_counter()
        done = 0
        # it draws its directions with torch.rand and no device: the device context puts them on
        # the model's (else a GPU run fails adding CPU directions to CUDA weights); float32 as the
        # loop and the engine's fp32 rows
        with torch.device(dev), precision_context(dev, "fp32"):
            while time.perf_counter() - t0 < budget or done == 0:
                loss_landscapes.random_plane(model, metric, distance=1.0, steps=steps, normalization="filter",
                                             deepcopy_model=True)
                done += steps * steps
        _sync(dev)
        return done, time.perf_counter() - t0

    methods = {"loop": run_loop}
    for k, e in engines.items():
        methods[k] = lambda budget, k=k, e=e: time_engine(e, on_dev, blocks[k], budget, dev)
    if peer:
        methods["loss-landscapes"] = run_peer
    for k, f in list(methods.items()):     # warm up every method once (compiling, allocator, kernels)
        t = time.perf_counter()
        try:
            f(0.0)
        except Exception as e:  # noqa: BLE001 - an optional peer's failure must not end the bench
            if k != "loss-landscapes":
                raise
            print(f"  loss-landscapes failed on {dev} ({type(e).__name__}: {e}); left out", file=sys.stderr)
            del methods[k]
            continue
        if time.perf_counter() - t > 2.0:
            print(f"    warm-up of {k}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    rates: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(rounds):
        for k, f in methods.items():
            n, dt = f(seconds)
            rates[k].append(n / dt)
    flops = forward_flops(model, x)
    errors = {}
    a, b = on_dev[0][:256], on_dev[1][:256]
    exact = engines["engine"].losses(a, b)
    for k, e in engines.items():
        if e.precision != "fp32":
            rel = ((e.losses(a, b) - exact).abs() / exact.abs().clamp_min(1e-12))
            errors[k] = f", max rel. diff to fp32 {rel.max().item():.1e}"
    out = {}
    for k, r in rates.items():
        out[k] = {"points_per_s": statistics.median(r), "spread": [min(r), max(r)],
                  "precision": engines[k].precision if k in engines else "fp32",
                  "method_detail": (engines[k].method + f", chunk {engines[k].chunk}"
                                    + (", compiled" if engines[k].compiled else "")
                                    + errors.get(k, "")) if k in engines else
                  f"random_plane, steps={steps}: {steps * steps:,} points a call" if k == "loss-landscapes" else k}
    return out, flops


def device_name(dev: torch.device) -> str:
    return str(dev) if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})"


def run(dev: torch.device, rounds: int, seconds: float, quick: bool,
        profile: bool = False) -> tuple[list[dict], dict[str, dict]]:
    torch.set_flush_denormal(True)
    t_start = time.perf_counter()
    peer = _peer_available()
    peaks = {p: matmul_peak(dev, p) for p in (PRECISIONS if dev.type == "cuda" else ("fp32",))}
    print(f"device {device_name(dev)}: measured matmul peak "
          + ", ".join(f"{p} {v / 1e9:,.1f} GFLOP/s" for p, v in peaks.items())
          + f"; loss-landscapes {'installed' if peer else 'not installed'}", file=sys.stderr)
    rows, profiles = [], {}
    if profile:                  # the compiled kernels named in torch.profiler (a few microseconds a chunk)
        import torch._inductor.config as inductor_config
        inductor_config.cpp.enable_kernel_profile = True
    for name, model, x, y in cases(dev, quick):
        print(f"  {name} ...", file=sys.stderr, flush=True)
        res, flops = bench_case(name, model, x, y, dev, rounds, seconds, peer,
                                PEER_STEPS_QUICK if quick else PEER_STEPS)
        base = res["loop"]["points_per_s"]
        fair = res.get("loss-landscapes", {}).get("points_per_s")
        for method, r in res.items():
            pps, peak = r["points_per_s"], peaks[r["precision"]]
            rows.append({"stage": "compute", "model": name, "method": method, "detail": r["method_detail"],
                         "device": device_name(dev), "precision": r["precision"], "points_per_s": pps,
                         "spread": r["spread"], "baseline": "loop", "ratio": pps / base,
                         "peer_ratio": pps / fair if fair else None,
                         "flop_rate": pps * flops, "peak_flop_rate": peak, "peak_fraction": pps * flops / peak,
                         "forward_flops_per_point": flops})
            # each result as it comes, so a run stopped early still tells something
            print(f"    {method}: {pps:,.0f} points/s, {pps / base:.2f}x loop"
                  + (f", {pps / fair:.2f}x loss-landscapes" if fair else ""), file=sys.stderr)
        if profile:
            profiles[name] = chunk_profile(model, x, y, dev)
        print(f"  ({time.perf_counter() - t_start:.0f} s so far)", file=sys.stderr, flush=True)
    return rows, profiles


#: torch.profiler names of the matmuls and convolutions (self time: a convolution's is in its kernel)
_DENSE = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::mkldnn_convolution",
          "aten::_convolution", "aten::convolution", "aten::conv2d")


def chunk_profile(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, dev: torch.device,
                  calls: int = 10) -> dict:
    """Where the time of one chunk of the compiled engine goes: milliseconds a chunk in the
    matmuls and convolutions, in the loss's fused kernel, in the other fused kernels (mixing the
    weights, biases, activations, pooling) and the rest of the wall time (Python, guards,
    allocation), from torch.profiler over ``calls`` calls of eight chunks.  The compiled kernels
    carry their names only when compiled with inductor's kernel profiling on (``run`` switches it
    on before the first compile)."""
    from torch.profiler import ProfilerActivity, profile
    model = model.to(dev).eval()
    x, y = x.to(dev), y.to(dev)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1, d2, _ = random_plane(origin, seed=0, how="filter")
    e = GridEngine(model, Plane(origin, d1, d2), x, y, compile=True)
    gen = torch.Generator().manual_seed(2)
    a, b = ((torch.rand(e.chunk * 8, generator=gen) * 2 - 1).to(dev) for _ in range(2))
    for _ in range(2):
        e.losses(a, b)                                   # compiling, then one warm call
    chunks = calls * 8
    parts = {"matmul / convolution": 0.0, "loss": 0.0, "other fused kernels": 0.0}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _sync(dev)
        t = time.perf_counter()
        for _ in range(calls):
            e.losses(a, b)
        _sync(dev)
        wall = (time.perf_counter() - t) / chunks * 1e3
    for ev in prof.key_averages():
        ms = ev.self_cpu_time_total / 1e3 / chunks
        if ev.key in _DENSE:
            parts["matmul / convolution"] += ms
        elif "cpp_fused" in ev.key or "triton_" in ev.key:
            loss = "logsumexp" in ev.key or "gather" in ev.key
            parts["loss" if loss else "other fused kernels"] += ms
    parts["rest"] = max(0.0, wall - sum(parts.values()))
    return {"method": e.method, "chunk": e.chunk, "compiled": e.compiled, "ms": wall, "parts": parts}


def profile_table(profiles: dict[str, dict]) -> str:
    """The chunk profiles as a Markdown table, each part in percent of the chunk's wall time."""
    names = list(next(iter(profiles.values()))["parts"])
    lines = ["| model | path, points a chunk | ms a chunk | " + " | ".join(names) + " |",
             "|---|---|---:|" + "---:|" * len(names)]
    for model, p in profiles.items():
        path = f"{p['method']}{', compiled' if p['compiled'] else ''}, {p['chunk']}"
        lines.append(f"| {model} | {path} | {p['ms']:.2f} | "
                     + " | ".join(f"{100 * p['parts'][k] / p['ms']:.0f}%" for k in names) + " |")
    return "\n".join(lines)


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
    # compiling (and the first pass's kernel selection) before the clock, timed apart: one row,
    # padded to a whole chunk, the shape every pass of the grid has
    _sync(dev)
    t = time.perf_counter()
    engine.block(axis, axis, 0, 1)
    _sync(dev)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    rows = 0
    for _, block in engine.rows(axis, axis):
        rows += block.shape[0]
    _sync(dev)
    dt = time.perf_counter() - t
    assert rows == n
    print(f"  grid {n}x{n}: {dt:.1f} s ({n * n / dt:,.0f} points/s) after {warm:.1f} s of compiling and "
          f"warm-up", file=sys.stderr, flush=True)
    return {"stage": "compute", "model": "convnet 3x16x16 [16,32,32], 128 samples", "method": f"grid {n}x{n}",
            "detail": f"{engine.method}, chunk {engine.chunk}{', compiled' if engine.compiled else ''}, "
                      f"+{warm:.1f} s compiling",
            "device": device_name(dev), "precision": engine.precision, "seconds": dt, "compile_s": warm,
            "points_per_s": n * n / dt, "baseline": None, "ratio": None}


def table(rows: list[dict]) -> str:
    lines = ["| stage | model | method | device | points/s | × loop | × loss-landscapes | "
             "model FLOP/s ÷ matmul peak |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if r["stage"] != "compute":
            continue
        if r.get("seconds") is not None:
            lines.append(f"| compute | {r['model']} | {r['method']} ({r['detail']}) | {r['device']} | "
                         f"{r['points_per_s']:,.0f} | {r['seconds']:.1f} s | | |")
            continue
        peer = f"{r['peer_ratio']:.2f}" if r.get("peer_ratio") else ""
        lines.append(f"| compute | {r['model']} | {r['method']} ({r['detail']}) | {r['device']} | "
                     f"{r['points_per_s']:,.0f} | {r['ratio']:.2f} | {peer} | {100 * r['peak_fraction']:.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compute.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="wall time per method per round")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter: a smoke test")
    ap.add_argument("--json", default="out/bench.json")
    ap.add_argument("--readme", default=None, metavar="FILE.md",
                    help="put the table between the bench:compute markers of this Markdown file")
    ap.add_argument("--profile", action="store_true",
                    help="also print where the time of one compiled chunk goes, per model")
    ap.add_argument("--grid", type=int, default=0, metavar="N", help="also time a full N x N ConvNet grid")
    args = ap.parse_args(argv)
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("compute.bench: no CUDA device here (--device cpu, or no --device, benches this machine's CPU)",
              file=sys.stderr)
        return 2
    if args.profile and dev.type != "cpu":
        print("compute.bench: --profile times the CPU's work only; left out on a GPU", file=sys.stderr)
        args.profile = False
    rounds, seconds = (2, 0.2) if args.quick else (args.rounds, args.seconds)
    t = time.perf_counter()
    rows, profiles = run(dev, rounds, seconds, args.quick, args.profile)
    if args.grid:
        rows.append(time_grid(dev, args.grid))
    publish(rows, table(rows), "compute", args.json, args.readme)
    if profiles:
        text = profile_table(profiles)
        print(text)
        if args.readme:
            update_readme(Path(args.readme), "compute-profile", text)
    print(f"compute bench: {time.perf_counter() - t:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
