"""What every grid strategy is given, and the interface it implements.

A strategy evaluates the loss at a chunk of K plane points (a[k], b[k]) in one pass.  The engine
(compute/engine.py: ``GridEngine``) owns everything around the pass -- chunking, padding for
torch.compile, the precision context, halving the chunk when a GPU runs out of memory, the rows
and blocks of the grid -- and talks to its strategy through three methods:

* ``prepare()``: the work that depends on the plane only, done once (the first layer's products
  with the data).  The engine calls it in exact float32 whatever the grid's precision.
* ``set_plane(plane)``: another plane of the same model (a sequence's next grid).  Its values are
  copied into the tensors the strategy already holds, so a compiled ``losses`` keeps working.
* ``losses(a, b)``: (K,) losses, or (K, 2) with the accuracy, for 1-D tensors a and b.

and, for sizing the chunk, ``point_bytes(cuda)``: the memory one point of a pass takes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Optional

import torch
import torch.nn as nn

from compute.losses import Loss

if TYPE_CHECKING:
    from compute.plane import Plane


@dataclass
class Problem:
    """The model, the plane through its weights, the evaluation data and the loss."""
    model: nn.Module
    plane: "Plane"
    x: torch.Tensor
    y: Optional[torch.Tensor]
    loss: Loss
    accuracy: bool = False
    #: "running": BatchNorm normalizes with its running statistics; "batch": each point with its
    #: own statistics over x
    batchnorm: str = "running"

    @property
    def target(self) -> torch.Tensor:
        """What a built-in loss compares the output with: y, or the input for unlabelled data."""
        return self.x if self.y is None else self.y


class Strategy:
    """One way of evaluating many plane points at once (see the module docstring)."""

    #: the engine's ``method``: "linear", "conv", "vmap" or "loop"
    name: ClassVar[str] = ""
    #: whether torch.compile may trace ``losses`` (fixed shapes, no data-dependent Python)
    compilable: ClassVar[bool] = False
    #: bytes of a pass on a CPU (``point_bytes`` a point): small enough to stay near the caches.
    #: Measured best near 16 points of a 64-wide MLP on 1024 samples.
    cpu_budget: ClassVar[int] = 12 * 2**20

    def __init__(self, problem: Problem):
        self.problem = problem

    @classmethod
    def fits(cls, problem: Problem) -> bool:
        """Whether this strategy can evaluate the problem's model and loss."""
        return True

    def prepare(self) -> None:
        """Precompute what depends on the plane only (nothing, unless a strategy says so)."""

    @torch.no_grad()
    def set_plane(self, plane: "Plane") -> None:
        """Take another plane's values into the tensors held now (they are overwritten)."""
        mine = self.problem.plane
        for part in ("origin", "d1", "d2"):
            new = getattr(plane, part)
            for k, v in getattr(mine, part).items():
                v.copy_(new[k])

    def losses(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ sizing
    def point_bytes(self, cuda: bool) -> int:
        """Bytes one grid point of a pass takes: its largest activations, with slack."""
        return 3 * self.activation_bytes()

    def activation_bytes(self) -> int:
        """Bytes of the largest activation tensor of one grid point (one forward pass on x)."""
        p = self.problem
        biggest = [p.x[:1].numel()]
        hooks = [m.register_forward_hook(lambda m, i, o: biggest.append(o.numel() if torch.is_tensor(o) else 0))
                 for m in p.model.modules() if m is not p.model]
        try:
            with torch.no_grad():
                p.model(p.x[:1])
        finally:
            for h in hooks:
                h.remove()
        return 4 * p.x.shape[0] * max(biggest)


class Prepared(Strategy):
    """A strategy holding precomputed tensors (``self.pre``: tensors in lists, tuples and dicts)
    made by ``products()`` from the plane; a new plane's products are copied into them."""

    pre: object = None

    def products(self) -> object:
        raise NotImplementedError

    def prepare(self) -> None:
        self.pre = self.products()

    @torch.no_grad()
    def set_plane(self, plane: "Plane") -> None:
        super().set_plane(plane)
        _copy_into(self.pre, self.products())

    def point_bytes(self, cuda: bool) -> int:
        # on a GPU each layer's weights are built for every point of the chunk (a VGG layer: 9 MB a
        # point), the largest one at a time
        weights = 4 * max(v.numel() for v in self.problem.plane.origin.values()) if cuda else 0
        return super().point_bytes(cuda) + weights


def _copy_into(held, new) -> None:
    if isinstance(held, torch.Tensor):
        held.copy_(new)
    elif isinstance(held, dict):
        for k in held:
            _copy_into(held[k], new[k])
    elif isinstance(held, (list, tuple)):
        for h, n in zip(held, new):
            _copy_into(h, n)
