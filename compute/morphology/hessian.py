"""Figures of the full Hessian of the loss (PyTorch): sharpness and Li et al.'s convexity map.

Everything here sees the Hessian only through Hessian-vector products:

* ``hvp``: a callable v -> H v at one weight vector (``compute.hessian.hvp_function`` makes one);
* ``hvp_at``: a factory at -> hvp, for figures that move over the plane (:func:`model_hvp` makes
  one from a model, its evaluation data and its :class:`~compute.losses.Loss`).

Functions:

* :func:`top_eigenvalue`  the largest (algebraic) eigenvalue, by the project's Lanczos
                          (``compute.hessian.hessian_top2``).
* :func:`hutchinson_trace` tr H ~ mean of v^T H v over seeded Rademacher vectors, with its
                          standard error.
* :func:`convexity_map`   |lambda_min / lambda_max| of the full Hessian on a k x k sub-grid of the
                          plane (Li et al. 2018, section 7): lambda_max by Lanczos, lambda_min by
                          Lanczos on the shifted operator lambda_max I - H (``lanczos_top``: the
                          points' recurrences run side by side through ``torch.func.vmap``).

Cost, in Hessian-vector products (each about two backward passes): ``top_eigenvalue`` at most
``iterations`` + 2; ``hutchinson_trace`` ``samples``; ``convexity_map`` at most k^2 * 2 * ``iterations``.  Both batch
their products with ``torch.func.vmap`` where the product allows it: a 231-parameter MLP on 48
points takes about 2 ms a product on one CPU core, 5 ms for 32 at once, so a 9 x 9 map of 12
iterations takes under a second.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from compute.losses import CROSS_ENTROPY, Loss
from compute.morphology.jsonable import Jsonable
from compute.plane.hessian import hessian_top2, hvp_function

Hvp = Callable[[torch.Tensor], torch.Tensor]
HvpAt = Callable[[torch.Tensor], Hvp]


def model_hvp(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, loss: Loss = CROSS_ENTROPY,
              dtype: torch.dtype = torch.float64) -> HvpAt:
    """at -> (v -> H(at) v), H the Hessian of ``loss`` of ``model`` on (x, y) over the flat
    parameters (``named_parameters`` order), in ``dtype`` (float64 by default, as the Hessian
    plane).  Each product runs with the model in eval mode (BatchNorm on its running statistics,
    no dropout), restoring the mode after."""

    def at_(at: torch.Tensor) -> Hvp:
        inner = hvp_function(model, at.detach().to(dtype), x, y, loss)

        def hvp(v: torch.Tensor) -> torch.Tensor:
            was = model.training
            model.eval()
            try:
                return inner(v.to(dtype)).to(v.dtype)
            finally:
                model.train(was)

        return hvp

    return at_


# --------------------------------------------------------------------------- top eigenvalue

@dataclass(frozen=True)
class TopEigenvalue(Jsonable):
    """The largest (algebraic) eigenvalue of the Hessian: the sharpest upward curvature, loss units
    per (weight-space unit)^2."""
    value: float                # Rayleigh quotient of the top Ritz vector
    second: float               # the next one (Lanczos finds both)
    min_estimate: float         # the smallest Ritz value: a rough estimate of lambda_min
    lanczos_steps: int
    converged: bool             # both Ritz residuals within tolerance before ``iterations``
    residual: float             # |H v - value v| / |H|, the top pair's


def top_eigenvalue(hvp: Hvp, n: int, *, iterations: int = 50, tolerance: float = 1e-3, seed: int = 0,
                   dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> TopEigenvalue:
    """Lanczos (``compute.hessian.hessian_top2``: full reorthogonalization, seeded start) on ``hvp``
    of an n x n symmetric operator; at most ``iterations`` steps, stopping when both top Ritz
    residuals are at most ``tolerance`` x the largest |Ritz value|."""
    _, _, info = hessian_top2(hvp, n, iterations, tolerance, seed, dtype, device)
    lam = info["eigenvalues"]
    return TopEigenvalue(float(lam[0]), float(lam[1]), float(info["min_eigenvalue_estimate"]),
                         int(info["lanczos_steps"]), bool(info["converged"]), float(info["residuals"][0]))


# --------------------------------------------------------------------------- trace

@dataclass(frozen=True)
class TraceEstimate(Jsonable):
    """Hutchinson's estimate of tr H: the mean of v^T H v over ``samples`` Rademacher vectors v
    (entries +-1 with equal odds, so E[v v^T] = I and E[v^T H v] = tr H), loss units per
    (weight-space unit)^2.  ``stderr`` = sample std / sqrt(samples): the exact trace lies within
    3 stderr of ``mean`` in all but about 0.3% of seeds (for a reasonable number of samples).
    Its variance is 2 * sum of the squared off-diagonal entries of H: a diagonal H is exact."""
    mean: float
    stderr: float
    std: float                  # sample standard deviation of v^T H v (ddof = 1)
    samples: int
    seed: int


def rademacher(n: int, count: int, seed: int, dtype: torch.dtype = torch.float64,
               device: str | torch.device = "cpu") -> torch.Tensor:
    """(count, n) entries +-1, drawn on the CPU from ``seed`` (the same numbers on every device)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (count, n), generator=g) * 2 - 1).to(device=device, dtype=dtype)


def hutchinson_trace(hvp: Hvp, n: int, *, samples: int = 64, seed: int = 0, dtype: torch.dtype = torch.float64,
                     device: str | torch.device = "cpu", batch: int = 32) -> TraceEstimate:
    """See :class:`TraceEstimate`.  The products run ``batch`` vectors at a time through
    ``torch.func.vmap(hvp)`` where that works (any ``hvp_function``), one at a time otherwise;
    the estimate is the same up to rounding either way."""
    if samples < 2:
        raise ValueError(f"samples must be at least 2 (for a standard error); got {samples}")
    V = rademacher(n, samples, seed, dtype, device)
    q = torch.empty(samples, dtype=torch.float64)
    vectorized = batch > 1
    for s in range(0, samples, max(batch, 1)):
        chunk = V[s:s + max(batch, 1)]
        HV = None
        if vectorized:
            try:
                HV = torch.func.vmap(hvp)(chunk)
            except Exception:                                   # noqa: BLE001 - not vmappable: one by one
                vectorized = False
        if HV is None:
            HV = torch.stack([hvp(v) for v in chunk])
        q[s:s + len(chunk)] = (chunk * HV).sum(dim=1).detach().double().cpu()
    mean = float(q.mean())
    std = float(q.std(unbiased=True))
    return TraceEstimate(mean, std / math.sqrt(samples), std, samples, seed)


# --------------------------------------------------------------------------- convexity map

@dataclass(frozen=True)
class ConvexityMap(Jsonable):
    """Li et al.'s convexity check: at each of k x k points of the plane, the extreme eigenvalues
    of the full Hessian there and |lambda_min / lambda_max|.  Near 0: locally convex (or
    flat); large: negative curvature as strong as the positive one.  For a positive definite
    Hessian the ratio is lambda_min / lambda_max (in [0, 1]); check ``lambda_min`` for the sign.
    Arrays are (k, k), row j at ``beta[j]``, column i at ``alpha[i]`` (the loss grid's layout)."""
    alpha: np.ndarray           # (k,) plane coordinates of the columns
    beta: np.ndarray            # (k,) of the rows
    ratio: np.ndarray           # |lambda_min / lambda_max| (NaN where lambda_max is 0)
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    iterations: int
    seed: int
    converged: np.ndarray = field(compare=False)   # (k, k) bool: both Lanczos runs converged


def convexity_map(hvp_at: HvpAt, origin: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor,
                  alpha_range: tuple[float, float], beta_range: tuple[float, float], *, k: int = 7,
                  iterations: int = 12, tolerance: float = 1e-3, seed: int = 0, batch: int = 32,
                  dtype: torch.dtype = torch.float64) -> ConvexityMap:
    """See :class:`ConvexityMap`.  The points are ``k`` evenly spaced values over each range, ends
    included: theta = origin + a d1 + b d2.  At each, Lanczos (``lanczos_top``, from the start
    vector of ``seed``) gives lambda_max; then Lanczos on lambda_max I - H (eigenvalues lambda_max -
    lambda_i >= 0, the largest lambda_max - lambda_min; start vector of ``seed + 1``) gives
    lambda_min.  Each run stops after ``iterations`` steps or once every point's top Ritz
    residual is at most ``tolerance`` x its largest |Ritz value|.  With ``iterations`` below the
    parameter count both are Ritz values from inside the spectrum: lambda_max may come out too
    low and lambda_min too high, never the other way.

    ``batch`` points at a time go through one ``torch.func.vmap`` of the products (about 15 times
    faster than one by one on a small network; lower it for a large network on a GPU); where the
    product cannot be vmapped, one point at a time, with the same numbers up to rounding."""
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    o, u, w = (t.detach().to(dtype) for t in (origin, d1, d2))
    A = np.linspace(alpha_range[0], alpha_range[1], k)
    B = np.linspace(beta_range[0], beta_range[1], k)
    ab = [(float(a), float(b)) for b in B for a in A]                     # row-major: rows are beta
    lo, hi, conv = np.empty(k * k), np.empty(k * k), np.empty(k * k, dtype=bool)
    vectorized = batch > 1
    step = max(batch, 1)
    for s in range(0, len(ab), step):
        at = torch.stack([o + a * u + b * w for a, b in ab[s:s + step]])   # (P, n)
        op = None
        if vectorized:
            op = _vmapped(hvp_at, at)
            if op is None:
                vectorized = False
        if op is None:
            op = _one_by_one(hvp_at, at)
        lmax, c1 = lanczos_top(op, at.shape[0], at.shape[1], iterations, tolerance, seed, dtype, at.device)

        def shifted(v: torch.Tensor, op=op, lmax=lmax) -> torch.Tensor:
            return lmax[:, None].to(v) * v - op(v)

        gap, c2 = lanczos_top(shifted, at.shape[0], at.shape[1], iterations, tolerance, seed + 1, dtype, at.device)
        hi[s:s + step] = lmax.cpu().numpy()
        lo[s:s + step] = (lmax - gap.clamp_min(0)).cpu().numpy()
        conv[s:s + step] = (c1 & c2).cpu().numpy()
    lo, hi, conv = lo.reshape(k, k), hi.reshape(k, k), conv.reshape(k, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hi != 0, np.abs(lo / np.where(hi != 0, hi, 1.0)), np.nan)
    return ConvexityMap(A, B, ratio, lo, hi, int(iterations), int(seed), conv)


BatchedOp = Callable[[torch.Tensor], torch.Tensor]


def _vmapped(hvp_at: HvpAt, at: torch.Tensor) -> BatchedOp | None:
    """V (P, n) -> (H(at_p) V_p)_p through one vmap, or None if the product cannot be vmapped."""
    f = torch.func.vmap(lambda a, v: hvp_at(a)(v))
    try:
        f(at[:1], torch.zeros_like(at[:1]))
    except Exception:                                               # noqa: BLE001 - loop instead
        return None
    return lambda V: f(at, V)


def _one_by_one(hvp_at: HvpAt, at: torch.Tensor) -> BatchedOp:
    hvps = [hvp_at(a) for a in at]
    return lambda V: torch.stack([h(v) for h, v in zip(hvps, V)])


def lanczos_top(op: BatchedOp, points: int, n: int, iterations: int, tolerance: float, seed: int,
                dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest (algebraic) eigenvalue of ``points`` symmetric n x n operators at once: ``op``
    maps V (points, n) to the products (points, n), row p by operator p.

    Lanczos with full reorthogonalization (twice, as ``compute.hessian.hessian_top2``), every
    operator from the same seeded unit start vector; at most ``iterations`` steps (and n), stopping
    when every top Ritz residual beta_j |last component| is at most ``tolerance`` x that operator's
    largest |Ritz value|.  An invariant subspace (beta ~ 0) restarts that operator's recurrence
    from a random vector orthogonal to its basis (a zero off-diagonal: the Ritz values stay
    exact).  -> (top Ritz values (points,), converged (points,) bool)."""
    m = max(1, min(iterations, n))
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    q = (q / q.norm()).expand(points, n).clone()
    Q = torch.zeros(points, m, n, dtype=dtype, device=device)
    alpha = torch.zeros(points, m, dtype=torch.float64)
    beta = torch.zeros(points, m, dtype=torch.float64)
    for j in range(m):
        Q[:, j] = q
        wv = op(q)
        a = (wv * q).sum(1)
        wv = wv - a[:, None] * q
        if j:
            wv = wv - beta[:, j - 1, None].to(wv) * Q[:, j - 1]
        basis = Q[:, :j + 1]
        for _ in range(2):
            wv = wv - torch.einsum("pkn,pk->pn", basis, torch.einsum("pkn,pn->pk", basis, wv))
        b = wv.norm(dim=1)
        alpha[:, j] = a.double().cpu()
        T = torch.diag_embed(alpha[:, :j + 1]) + torch.diag_embed(beta[:, :j], 1) + torch.diag_embed(beta[:, :j], -1)
        evals, evecs = torch.linalg.eigh(T)
        scale = evals.abs().amax(1).clamp_min(1e-30)
        bc = b.double().cpu()
        converged = bc * evecs[:, -1, -1].abs() <= tolerance * scale
        if j == m - 1 or bool(converged.all()):
            break
        small = bc <= 1e-12 * scale
        for p in torch.nonzero(small).reshape(-1).tolist():             # invariant subspace: restart
            r = torch.randn(n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
            for _ in range(2):
                r = r - basis[p].T @ (basis[p] @ r)
            wv[p] = r
        beta[:, j] = torch.where(small, torch.zeros_like(bc), bc)
        q = wv / wv.norm(dim=1, keepdim=True)
    return evals[:, -1].to(device), converged.to(device)
