"""Benchmark of the compute stage: grid points per second, each way of evaluating a grid against the
per-point loop, in one process.

Usage:
    python -m compute.bench [--device cpu|cuda] [--rounds 5] [--seconds 1.5] [--quick]
                            [--json out/bench.json] [--readme docs/benchmarks.md] [--grid 1000]
                            [--profile]

The cases (cases.py) are the studio's MLPs and ConvNet, a user's BatchNorm ConvNet written with
torch's own layers, the studio's ResNet-20 and the charlm example's Transformer.  For each, the
methods are timed round-robin (timing.py), each round giving every method about the same wall
time; a row reports the median points/s over the rounds and each ratio's median and spread (min
and max of the ratio taken round by round), so a reader can tell a real change from noise:

    loop            the reference way, as the reference tool does it: copy one
                    grid point's weights into the model, run it on the
                    evaluation batch, compute the loss -- one point at a time
    engine          GridEngine with its automatic method (the MLP or ConvNet
                    path for the studio's own classes, the general path for
                    anything else), eager
    engine+compile  the same kernels through torch.compile (what the compute
                    stage uses for grids of 50,000 points or more); the
                    one-off compile happens in the warm-up, outside the timing
    graph(+compile) the general path on the studio's MLPs and ConvNet, where
                    auto takes a special path: what a user's copy of them
                    written with torch's layers gets, and why the special
                    paths are kept
    studio classes  a user's network's twin written with the studio's classes
                    (the BatchNorm ConvNet), eager and compiled
    vmap            torch.func functional_call + vmap (the fallback)
    loss-landscapes the PyPI package's random_plane, on the same model and
                    data, if installed, called as its users call it: a grid of
                    PEER_STEPS x PEER_STEPS points a call (small models only)

Also printed: the model-equivalent FLOP rate (forward FLOPs of one point times points/s) as a
fraction of this device's matmul peak measured at the start, in the same arithmetic; and the
targets the engine is held to (run.TARGETS), each a ratio of two rows of the same run.  On a GPU
every timing waits for the device before reading the clock.

``--profile`` also prints where the time of one compiled chunk goes (profile.py), per case.  Rows go
to ``--json``, merged with other stages' rows; with ``--readme``, the tables go between the
``bench:compute``, ``bench:compute-targets`` and ``bench:compute-profile`` markers of that file.
"""
from compute.bench.cases import Case, cases
from compute.bench.run import main, run, table, target_table, time_grid
from compute.bench.profile import chunk_profile, profile_table
from compute.bench.timing import PEER_STEPS, PEER_STEPS_QUICK, forward_flops, matmul_peak, time_engine

__all__ = ["Case", "cases", "main", "run", "table", "target_table", "time_grid", "chunk_profile", "profile_table",
           "PEER_STEPS", "PEER_STEPS_QUICK", "matmul_peak", "forward_flops", "time_engine"]
