"""The grid engine's strategies: how K points of a plane are evaluated in one pass.

Every strategy implements the small interface of ``base.Strategy`` (``prepare``, ``set_plane``,
``losses``, ``point_bytes``); ``compute.engine.GridEngine`` holds one and does the rest (chunks,
padding for torch.compile, precision, out-of-memory retries, rows and blocks).

=============  =======================  =================================================
method         class                    for
=============  =======================  =================================================
``linear``     ``linear.LinearStack``   Linear layers and activations (MLPs); built-in loss
``conv``       ``conv.ConvStack``       Conv2d / BatchNorm / pooling, Flatten, Linear
                                        (ConvNet, VGG); built-in loss
``graph``      ``graph.Traced``         any model torch.export can read: its graph written
                                        out as a kernel of K points (compute/grid/graph/)
``vmap``       ``generic.Vmap``         anything: torch.func functional_call + vmap
``loop``       ``generic.Loop``         the same one point at a time (what vmap falls back
                                        to for a model it cannot batch)
=============  =======================  =================================================

``choose(problem, method)`` picks one: ``auto`` takes the first of linear, conv, graph that fits
(graph fits every model until its export or its build says otherwise: ``graph.NotBatchable``, and
the engine falls back to vmap).
"""
from __future__ import annotations

from compute.grid.base import Prepared, Problem, Strategy
from compute.grid.conv import ConvStack, conv_stack
from compute.grid.generic import Loop, Vmap
from compute.grid.graph import NotBatchable, Traced
from compute.grid.linear import LinearStack, linear_stack

#: method name -> strategy class, in the order ``auto`` tries them
STRATEGIES: dict[str, type[Strategy]] = {"linear": LinearStack, "conv": ConvStack, "graph": Traced, "vmap": Vmap,
                                         "loop": Loop}


def choose(problem: Problem, method: str = "auto") -> Strategy:
    """The strategy for ``method`` ("auto": the first that fits), unprepared."""
    if method == "auto":
        method = next(k for k, cls in STRATEGIES.items() if cls.fits(problem))
    if method not in STRATEGIES:
        raise ValueError(f"method must be auto, {', '.join(STRATEGIES)}; got {method!r}")
    return STRATEGIES[method](problem)


__all__ = ["Strategy", "Prepared", "Problem", "LinearStack", "ConvStack", "Traced", "Vmap", "Loop", "NotBatchable",
           "STRATEGIES", "choose",
           "linear_stack", "conv_stack"]
