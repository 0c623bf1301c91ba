"""The batched linear path: a stack of Linear layers and elementwise activations (an MLP).

At a plane point the layer weights are W(a, b) = W0 + a D1 + b D2, so the K points of a pass have
their weights built at once and each layer runs as one batched matmul (``bmm``) over the K points.

* Activations are laid out (K, features, N): features by samples, the samples contiguous.  A layer
  is then  h' = W_k h + c_k  per point, (out, in) @ (in, N), the weights in torch's own (out, in)
  layout, and the output (K, C, N) is read by the loss as (C, K, N): the reduction over the
  classes runs across rows that are contiguous along the samples (``Loss.batched_ckn``).
* The first layer is linear in (a, b):  W(a,b) x + c(a,b) = (W0 x + c0) + a (D1 x + e1) +
  b (D2 x + e2).  The three products with the data, (H1, N) each, are computed once for the
  whole grid (``prepare``), and a point costs one fused multiply-add per activation there.

Activations use the in-place forms of compute/models.py (``Activation.inplace``) on the pass's
own scratch tensors; under torch.compile the bias, activation and (a, b) mixing fuse into one
sweep over memory after each matmul.  Built-in losses only; the user's own loss goes through
torch.func.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from compute.grid.base import Prepared, Problem
from compute.models import Activation


def linear_stack(model: nn.Module):
    """[(weight_name, bias_name, activation_or_None), ...] if the model is Linear/activation only."""
    if not isinstance(model, nn.Sequential):
        return None
    layers = []
    mods = list(model.named_children())
    # a leading Flatten (an mlp on images): the linear path flattens the data itself
    i = 1 if mods and isinstance(mods[0][1], nn.Flatten) and len(mods) > 1 else 0
    while i < len(mods):
        name, m = mods[i]
        if not isinstance(m, nn.Linear) or m.bias is None:
            return None
        act = None
        if i + 1 < len(mods) and isinstance(mods[i + 1][1], Activation):
            act = mods[i + 1][1].inplace
            i += 1
        layers.append((f"{name}.weight", f"{name}.bias", act))
        i += 1
    return layers


class LinearStack(Prepared):
    """A stack of Linear layers, K points per pass as batched matmuls (see the module docstring)."""

    name = "linear"
    compilable = True

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.stack = linear_stack(problem.model)
        if self.stack is None or not problem.loss.builtin:
            raise ValueError("the 'linear' method needs a model made of Linear layers and activations, and a "
                             "built-in loss")
        #: each layer's in-place activation, or None
        self.acts = [act for _, _, act in self.stack]

    @classmethod
    def fits(cls, problem: Problem) -> bool:
        return problem.loss.builtin and linear_stack(problem.model) is not None

    def products(self) -> dict:
        p = self.problem
        o, d1, d2 = p.plane.origin, p.plane.d1, p.plane.d2
        x = p.x.reshape(p.x.shape[0], -1)
        w, b, _ = self.stack[0]
        # first layer: the three products with the data, (H1, N) each, once for the whole grid
        first = tuple(torch.addmm(q[b][:, None], q[w], x.T) for q in (o, d1, d2))
        # every later layer: its weights (3, out, in) and biases (3, out) at origin, d1, d2
        later = [(torch.stack([o[w], d1[w], d2[w]]), torch.stack([o[b], d1[b], d2[b]])) for w, b, _ in self.stack[1:]]
        return {"first": first, "later": later}

    def losses(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        p0, p1, p2 = self.pre["first"]
        a3, b3 = a.view(-1, 1, 1), b.view(-1, 1, 1)
        h = torch.addcmul(p0, a3, p1).addcmul_(b3, p2)                      # (K, H1, N)
        if self.acts[0] is not None:
            h = self.acts[0](h)
        for (w, c), act in zip(self.pre["later"], self.acts[1:]):
            wk = torch.addcmul(w[0], a3, w[1]).addcmul_(b3, w[2])           # (K, out, in)
            bk = torch.addcmul(c[0], a[:, None], c[1]).addcmul_(b[:, None], c[2])  # (K, out)
            h = torch.bmm(wk, h).add_(bk[:, :, None])                        # (K, out, N)
            if act is not None:
                h = act(h)
        # outputs (K, C, N) seen as (C, K, N): the loss reduces over classes along contiguous rows
        return self.problem.loss.batched_ckn(h.transpose(0, 1), self.problem.target, self.problem.accuracy)

    def activation_bytes(self) -> int:
        widest = max(v.shape[0] for v in self.problem.plane.origin.values())
        return 4 * self.problem.x.shape[0] * max(widest, 1)
