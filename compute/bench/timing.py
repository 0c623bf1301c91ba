"""How the compute bench times: the device's matmul peak, a model's FLOPs, and the round-robin
rounds in which every method of a case gets the same wall time, so that a core lost for a few
seconds costs every method alike.  Each method's rate is kept per round: a ratio between two
methods is taken round by round, and reported as its median and its spread (min and max)."""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from compute.engine import GridEngine, precision_context, reference_loss
from compute.plane import Plane
from compute.plane import random_plane

#: points a side of the peer's grid a call: its users ask for 25 to 100 (its default is 20); with few
#: (6: 36 points a call) its per-call setup would be most of what is timed
PEER_STEPS = 40
#: the same in --quick (a smoke test: one call of the ConvNet at 40 x 40 takes seconds)
PEER_STEPS_QUICK = 10


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


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
            sync(dev)
            t = time.perf_counter()
            for _ in range(inner):
                a @ b
            sync(dev)
            rates.append(inner * 2 * n**3 / (time.perf_counter() - t))
    return statistics.median(rates)


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return float(fc.get_total_flops())


def peer_available() -> bool:
    try:
        import loss_landscapes  # noqa: F401
        import loss_landscapes.metrics  # noqa: F401
        return True
    except Exception:  # noqa: BLE001
        return False


@dataclass
class Method:
    """One row of a case: how it evaluates points, and what it is."""
    run: Callable[[float], tuple[int, float]]      # budget seconds -> (points, seconds)
    detail: str
    precision: str = "fp32"
    rates: list[float] = field(default_factory=list)


def time_engine(e: GridEngine, pts: tuple[torch.Tensor, torch.Tensor], blk: int, budget: float,
                dev: torch.device) -> tuple[int, float]:
    """Calls of ``blk`` points (at most the pool ``pts``, on ``dev``) for ``budget`` seconds, at
    least one -> (points evaluated, seconds until the device finished them)."""
    pool = pts[0].numel()
    blk = min(blk, pool)
    sync(dev)
    t0 = time.perf_counter()
    i = done = 0
    while time.perf_counter() - t0 < budget or i == 0:
        s = (i * blk) % (pool - blk + 1)
        done += e.losses(pts[0][s:s + blk], pts[1][s:s + blk]).numel()
        i += 1
    sync(dev)                           # the calls above only queue work on a GPU
    return done, time.perf_counter() - t0


def engine_detail(e: GridEngine) -> str:
    return f"{e.method}, chunk {e.chunk}" + (", compiled" if e.compiled else "")


def plane_for(model: torch.nn.Module) -> Plane:
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1, d2, _ = random_plane(origin, seed=0, how="filter")
    return Plane(origin, d1, d2)


def loop_method(model, plane: Plane, x, y, dev) -> Method:
    """The reference way, as the reference tool does it: one point's weights copied in, the model
    run on the batch, the loss read (``.item()`` syncs each point)."""
    gen = torch.Generator().manual_seed(1)
    pts = list(zip((torch.rand(20000, generator=gen) * 2 - 1).tolist(), (torch.rand(20000, generator=gen) * 2 - 1).tolist()))

    def run(budget: float) -> tuple[int, float]:
        sync(dev)
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < budget or i == 0:
            reference_loss(model, plane, *pts[i % len(pts)], x, y)
            i += 1
        sync(dev)
        return i, time.perf_counter() - t0

    return Method(run, "loop")


def peer_method(model, x, y, dev, steps: int) -> Method:
    """The loss-landscapes package's random_plane, as its users call it (steps x steps points a call)."""
    def run(budget: float) -> tuple[int, float]:
        import loss_landscapes
        import loss_landscapes.metrics
        metric = loss_landscapes.metrics.Loss(F.cross_entropy, x, y)
        sync(dev)
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
        sync(dev)
        return done, time.perf_counter() - t0

    return Method(run, f"random_plane, steps={steps}: {steps * steps:,} points a call")


def engine_method(e: GridEngine, pts, dev) -> Method:
    """A GridEngine timed on calls of eight chunks, as the compute stage evaluates a block of rows
    (a call of one small chunk would time the call's own overhead as much as the kernels)."""
    blk = max(e.chunk * 8, 256)
    return Method(lambda budget: time_engine(e, pts, blk, budget, dev), engine_detail(e), e.precision)


def rounds(methods: dict[str, Method], n: int, seconds: float) -> None:
    """Warm every method up once (compiling, allocator, kernels), then ``n`` round-robin rounds;
    each method's points/s of each round go to its ``rates``.  An optional peer that fails is left out."""
    for k, m in list(methods.items()):
        t = time.perf_counter()
        try:
            m.run(0.0)
        except Exception as e:  # noqa: BLE001 - an optional peer's failure must not end the bench
            if k != "loss-landscapes":
                raise
            print(f"  loss-landscapes failed ({type(e).__name__}: {e}); left out", file=sys.stderr)
            del methods[k]
            continue
        if time.perf_counter() - t > 2.0:
            print(f"    warm-up of {k}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    for _ in range(n):
        for m in methods.values():
            points, dt = m.run(seconds)
            m.rates.append(points / dt)


def ratio(a: Method, b: Method) -> tuple[float, float, float]:
    """a's rate over b's, round by round -> (median, min, max)."""
    r = [x / y for x, y in zip(a.rates, b.rates)]
    return statistics.median(r), min(r), max(r)
