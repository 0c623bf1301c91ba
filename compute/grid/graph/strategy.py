"""The grid strategy for any model: its exported graph written out as a kernel of K points."""
from __future__ import annotations

import torch

from compute.grid.base import Prepared, Problem
from compute.grid.graph import trace
from compute.grid.graph.build import Built, build
from compute.grid.graph.values import NotBatchable
from compute.losses import WithLoss

#: two test points: the kernel must give the model's own losses there (relative difference)
CHECK_POINTS = ((0.0, 0.0), (0.37, -0.21))
CHECK_RTOL = 1e-3


class Traced(Prepared):
    """The model's graph (torch.export) as a batched kernel (see the package docstring).

    ``NotBatchable`` from the constructor (the model cannot be exported) or from ``prepare`` (an
    operation the kernel cannot write, or a kernel that disagrees with the model at a test point)
    says why in one line; the engine then evaluates with torch.func."""

    name = "graph"
    compilable = True

    def __init__(self, problem: Problem):
        super().__init__(problem)
        if problem.loss.builtin:
            self.module, self.inputs, self.prefix = problem.model, (problem.x,), ""
        else:                 # the user's loss calls the model itself: export both, the loss as output
            self.module, self.inputs, self.prefix = WithLoss(problem.model, problem.loss), (problem.x, problem.y), "net."
        self.program = trace.export(self.module, self.inputs)
        self.built: Built | None = None

    def products(self) -> list[torch.Tensor]:
        p = self.problem
        built = build(self.program, p.plane, dict(p.model.named_buffers()), self.inputs, p.batchnorm, self.prefix)
        if self.built is None:
            self.built = built
            self.kernel = built.module
            self._check()
        return built.constants

    def losses(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = self.kernel(a, b)
        p = self.problem
        if not p.loss.builtin:
            return out
        return p.loss.batched(out, p.target, p.accuracy)

    def point_bytes(self, cuda: bool) -> int:
        """The kernel's peak of live activations a point, and room for the widest one again (the
        scratch of a layer's call: a grouped convolution's input in its layout, a matmul's copy)."""
        if self.built is None:
            raise RuntimeError("point_bytes before prepare")
        return self.built.point_bytes + self.built.widest

    def _check(self) -> None:
        """The kernel against the model itself (torch.func, one point at a time) at CHECK_POINTS."""
        from compute.grid.generic import Loop
        dev = self.problem.x.device
        a = torch.tensor([p[0] for p in CHECK_POINTS], device=dev)
        b = torch.tensor([p[1] for p in CHECK_POINTS], device=dev)
        got = self.losses(a, b).reshape(len(CHECK_POINTS), -1)[:, 0].double()
        want = Loop(self.problem).losses(a, b).reshape(len(CHECK_POINTS), -1)[:, 0].double()
        if not torch.allclose(got, want, rtol=CHECK_RTOL, atol=1e-6) or not torch.isfinite(got).all():
            raise NotBatchable(f"the batched kernel gives {got.tolist()} where the model gives {want.tolist()} "
                               f"at test points {list(CHECK_POINTS)}")
