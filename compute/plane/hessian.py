"""The Hessian of the loss at a set of weights: Hessian-vector products (``hvp_function``), the
two top eigenvectors by Lanczos (``hessian_top2``), compute/plane/'s ``hessian`` plane and its
default extent (``curvature_span``).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn as nn

from compute.losses import CROSS_ENTROPY, Loss


def _forward_ad_ready() -> None:
    """Load torch's decompositions for forward-mode AD now, quietly.  torch loads them on the first
    ``torch.func.jvp`` and, doing so, scripts them with ``torch.jit.script``, which warns that it is
    deprecated (a FutureWarning on every compute run that measures figures): the warning is
    torch's own and says nothing about this code."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        import torch._decomp.decompositions_for_jvp  # noqa: F401


def hvp_function(model: nn.Module, at: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None,
                 loss_fn: Loss = CROSS_ENTROPY):
    """v -> H v, H the Hessian of the loss of ``model`` on (x, y) at the flat weights ``at``
    (forward-over-reverse: ``torch.func.jvp`` of ``torch.func.grad``; reverse-over-reverse where a
    model's backward has no forward derivative), in ``at``'s dtype."""
    from torch.func import grad, jvp, vjp
    from torch.nn.attention import SDPBackend, sdpa_kernel
    _forward_ad_ready()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [math.prod(s) for s in shapes]
    buffers = {k: (b.to(at.dtype) if b.is_floating_point() else b) for k, b in model.named_buffers()}
    xx = x.to(at.dtype) if x.is_floating_point() else x          # token ids stay integers
    yy = y.to(at.dtype) if y is not None and y.is_floating_point() else y

    def loss(flat):
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return loss_fn.functional(model, params, buffers, xx, yy).reshape(())

    g = grad(loss)

    def forward_over_reverse(v: torch.Tensor) -> torch.Tensor:
        return jvp(g, (at,), (v,))[1]

    def reverse_over_reverse(v: torch.Tensor) -> torch.Tensor:
        return vjp(g, at)[1](v)[0]

    # forward-over-reverse is the cheaper; a few backward formulas have no forward derivative (an
    # embedding's backward writes into a zero tensor), and there reverse-over-reverse, the slower
    # but general way, gives the same product
    chosen: list = []

    def hvp(v: torch.Tensor) -> torch.Tensor:
        # attention in its math form: the fused kernels (flash, memory-efficient) have a backward
        # but no derivative of it, forward or reverse
        with sdpa_kernel(SDPBackend.MATH):
            if not chosen:
                try:
                    out = forward_over_reverse(v)
                    chosen.append(forward_over_reverse)
                    return out
                except RuntimeError:
                    chosen.append(reverse_over_reverse)
            return chosen[0](v)

    return hvp


def hessian_top2(hvp, n: int, iterations: int, tolerance: float, seed: int,
                 dtype=torch.float64, device="cpu") -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Eigenvectors of the two largest (algebraic) eigenvalues of the symmetric operator ``hvp``.

    Lanczos with full reorthogonalization from a seeded unit start vector: after each step the
    Ritz pairs of the tridiagonal matrix are computed, and the run stops once both top Ritz pairs'
    residuals |H v - theta v| (= beta_k |last component|) are at most ``tolerance`` times the
    largest |Ritz value| (an estimate of |H|), after ``iterations`` steps, or when the Krylov space
    is invariant (then the pairs are exact).  -> (v1, v2) unit vectors, info."""
    m = max(2, min(iterations, n))
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    q = q / q.norm()
    Q = torch.zeros(m, n, dtype=dtype, device=device)
    alphas: list[float] = []
    betas: list[float] = []
    evals = evecs = None
    converged = False
    beta = 0.0
    for j in range(m):
        Q[j] = q
        w = hvp(q)
        a = float(w @ q)
        w = w - a * q
        if j:
            w = w - beta * Q[j - 1]
        for _ in range(2):                                # full reorthogonalization, twice
            w = w - Q[:j + 1].T @ (Q[:j + 1] @ w)
        beta = float(w.norm())
        alphas.append(a)
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        evals, evecs = np.linalg.eigh(T)
        scale = max(float(np.abs(evals).max()), 1e-30)
        res = beta * np.abs(evecs[-1, -2:]) if j >= 1 else np.array([np.inf])
        if j >= 1 and np.all(res <= tolerance * scale):
            converged = True
            break
        if beta <= 1e-12 * scale:                        # invariant subspace: the Ritz pairs are exact
            converged = j >= 1
            if j >= 1:
                break
            # a start vector that is an eigenvector: restart orthogonally to it
            w = torch.randn(n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
            w = w - Q[:1].T @ (Q[:1] @ w)
            beta = 0.0
            betas.append(0.0)
            q = w / w.norm()
            continue
        betas.append(beta)
        q = w / beta
    k = len(alphas)
    vecs = []
    for i in (-1, -2):
        v = Q[:k].T @ torch.from_numpy(evecs[:, i]).to(device=device, dtype=dtype)
        v = v / v.norm()
        big = int(v.abs().argmax())                        # a fixed sign: largest entry positive
        vecs.append(v if v[big] >= 0 else -v)
    lam, resid = [], []
    for v in vecs:                                         # checked with two more products
        hv = hvp(v)
        r = float(v @ hv)
        lam.append(r)
        resid.append(float((hv - r * v).norm()))
    scale = max(float(np.abs(evals).max()), abs(lam[0]), 1e-30)
    lmin = float(evals[0])
    info = {"eigenvalues": lam,
            "min_eigenvalue_estimate": lmin,
            "negative_curvature_dominates": bool(-lmin > abs(lam[0])),
            "lanczos_steps": k,
            "hessian_vector_products": k + 2,
            "converged": bool(converged),
            "residuals": [r / scale for r in resid]}
    return vecs[0], vecs[1], info


def hessian_plane(model: nn.Module, at: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None,
                  iterations: int, tolerance: float, seed: int, loss: Loss = CROSS_ENTROPY):
    """-> (d1, d2) flat unit vectors (float32, on ``at``'s device) and info (eigenvalues, steps)."""
    was = model.training
    model.eval()
    try:
        w = at.detach().double()
        hvp = hvp_function(model, w, x, y, loss)
        v1, v2, info = hessian_top2(hvp, w.numel(), iterations, tolerance, seed, torch.float64, w.device)
    finally:
        model.train(was)
    return v1.float(), v2.float(), info


def curvature_span(eigenvalue: float, loss_start: float, loss_end: float) -> float | None:
    """Hessian planes' default half-width: where the quadratic model along the sharpest direction,
    L(final) + eigenvalue * a^2 / 2, climbs back by the depth training descended (the evaluation
    loss at step 0 minus the final one; at least 5% of the loss at step 0).  None if the
    eigenvalue is not positive."""
    depth = max(loss_start - loss_end, 0.05 * abs(loss_start))
    if not (eigenvalue > 0 and depth > 0 and math.isfinite(depth)):
        return None
    return math.sqrt(2 * depth / eigenvalue)


def _hessian_subset(x: torch.Tensor, y: torch.Tensor | None, n: int, seed: int):
    """A seeded part of the evaluation data for the Hessian: class-balanced for class labels."""
    if y is not None and y.dim() == 1 and not y.is_floating_point():
        from compute.data import eval_subset
        x, y, _ = eval_subset(x.cpu(), y.cpu(), n, seed)
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return x.cpu()[idx], None if y is None else y.cpu()[idx]
