"""The generic path, for any model and any loss (ResNets, torchvision and custom models, the user's
own loss): ``torch.func``.

One point's loss is ``loss.functional(model, params, buffers, x, y)`` with the point's parameters
origin + a d1 + b d2 swapped in by ``functional_call``; ``vmap`` batches it over the K points of a
pass.  With ``batchnorm: batch`` it runs on a copy of the model whose BatchNorms have no running
statistics (``replace_all_batch_norm_modules_``), so each vmapped point normalizes with its own
batch statistics over the evaluation data.

A model vmap cannot batch (``.item()``, branches on values) is evaluated one point at a time
instead, with a warning, from its first pass on (``method`` "loop"); the ``Loop`` strategy does so
from the start.
"""
from __future__ import annotations

import copy
import warnings

import torch

from compute.grid.base import Problem, Strategy


class Vmap(Strategy):
    """torch.func.functional_call + vmap over the K points of a pass (see the module docstring)."""

    name = "vmap"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        from torch.func import functional_call, vmap
        pl = problem.plane
        names = list(pl.origin)
        # the plane's own tensors: set_plane copies new values into them, and the closure sees them
        o, d1, d2 = ([part[k] for k in names] for part in (pl.origin, pl.d1, pl.d2))
        model = problem.model
        if problem.batchnorm == "batch":
            # each point normalizes with its own statistics over the evaluation data: BatchNorm
            # with its running statistics removed (on a copy) always uses the batch's, and under
            # vmap the batch is one point's pass over x.  Eval mode stays on (dropout off).
            from torch.func import replace_all_batch_norm_modules_
            model = replace_all_batch_norm_modules_(copy.deepcopy(problem.model)).eval()
        buffers = dict(model.named_buffers())
        x, y, target, loss, accuracy = problem.x, problem.y, problem.target, problem.loss, problem.accuracy

        def one(a, b):
            params = {k: o[i] + a * d1[i] + b * d2[i] for i, k in enumerate(names)}
            if not accuracy:
                return loss.functional(model, params, buffers, x, y).reshape(())
            out = functional_call(model, (params, buffers), (x,))
            return torch.stack([loss.of_output(out, target), loss.accuracy(out, target)])

        self._one = one
        self._vmapped = vmap(one)
        self._batched: bool | None = None if self.name == "vmap" else False   # None: not tried yet

    def losses(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self._batched:
            return self._vmapped(a, b)
        if self._batched is False:
            return self._loop(a, b)
        # the first pass: vmap, or for a model it cannot batch (e.g. a custom model calling .item()
        # or branching on values) point by point from now on, with a warning
        try:
            out = self._vmapped(a, b)
            self._batched = True
        except torch.OutOfMemoryError:
            raise                # the engine retries with smaller chunks, still batched
        except Exception as e:  # noqa: BLE001 - a real error in the model fails the loop below too
            out = self._loop(a, b)
            warnings.warn(f"torch.func.vmap cannot batch this model ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); evaluating the grid one point at a time")
            self._batched = False
            self.name = "loop"
        return out

    def _loop(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The chunk one point at a time."""
        return torch.stack([self._one(a[i], b[i]) for i in range(a.numel())])

    def point_bytes(self, cuda: bool) -> int:
        # vmap builds every parameter of every point of the chunk at once (a torchvision
        # ResNet-18: 45 MB a point)
        return super().point_bytes(cuda) + sum(4 * v.numel() for v in self.problem.plane.origin.values())


class Loop(Vmap):
    """The generic path one point at a time (``method="loop"``)."""

    name = "loop"
