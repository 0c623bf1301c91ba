"""Where the time of one compiled chunk goes (``python -m compute.bench --profile``)."""
from __future__ import annotations

import time

import torch

from compute.bench.timing import plane_for, sync
from compute.engine import GridEngine


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
    e = GridEngine(model, plane_for(model), x, y, compile=True)
    gen = torch.Generator().manual_seed(2)
    a, b = ((torch.rand(e.chunk * 8, generator=gen) * 2 - 1).to(dev) for _ in range(2))
    for _ in range(2):
        e.losses(a, b)                                   # compiling, then one warm call
    chunks = calls * 8
    parts = {"matmul / convolution": 0.0, "loss": 0.0, "other fused kernels": 0.0}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        sync(dev)
        t = time.perf_counter()
        for _ in range(calls):
            e.losses(a, b)
        sync(dev)
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
