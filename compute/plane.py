"""Planes through weight space: an origin and two directions.

A point (a, b) of a plane stands for the weights  origin + a*d1 + b*d2.  The
methods (the scene's ``plane.method``), after Li et al. 2018 ("Visualizing the
Loss Landscape of Neural Nets"):

* ``pca``         -- origin: the final weights.  The top two principal
                     directions of the training trajectory (snapshots minus
                     the final weights, centred), unit length; the explained
                     variance ratios go to the plane info.
* ``random``      -- origin: the final weights.  Two seeded Gaussian
                     directions, normalized (``normalize_direction``):
                     ``filter`` rescales each output unit / filter of a
                     direction to the norm of the same unit in the weights,
                     ``layer`` whole tensors, ``weight`` multiplies by the
                     weights elementwise, ``none`` leaves the Gaussian.  1-D
                     parameters (biases, norm layers) get a zero direction, or
                     with ``include_biases`` a direction rescaled as a whole to
                     the parameter's norm.  ``orthogonalize`` makes d2 exactly
                     orthogonal to d1 while keeping its normalization exact
                     (``orthogonal_direction``).
* ``hessian``     -- origin: the final weights.  The eigenvectors of the two
                     largest (algebraic) eigenvalues of the loss Hessian there,
                     on the evaluation subset, by Lanczos with full
                     reorthogonalization on Hessian-vector products
                     (``hessian_top2``); unit length.  Default extent: a square
                     sized by the curvature (``curvature_span``) and the
                     projected trajectory.
* ``checkpoints`` -- the plane through two or three training snapshots, found
                     by Gram-Schmidt, unit directions; the origin is the final
                     weights if they are among them, else the first listed.
                     With two, d2 is a random normalized direction made
                     orthogonal to d1, then scaled to unit length.
* ``interpolate`` -- origin: checkpoint A; d1 = B - A (so A is at a = 0 and
                     B at a = 1); d2 a random normalized direction (relative to
                     A's weights) exactly orthogonal to d1.

Random directions are always normalized relative to the plane's origin.  The
trajectory is put on any plane by least squares (``project``), exact for
non-orthogonal, non-unit directions too.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from compute.errors import DataError
from compute.losses import CROSS_ENTROPY, Loss


class PlaneError(DataError):
    """A plane that cannot mean anything for this run (too few snapshots, weights that do not move,
    two equal checkpoints): one line naming the scene key and what to change."""


def split(model: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for name, p in model.named_parameters():
        out[name] = flat[i:i + p.numel()].view_as(p)
        i += p.numel()
    return out


def flatten(d: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in d.values()])


# --------------------------------------------------------------------------- normalization

def _groups(v: torch.Tensor, how: str) -> torch.Tensor:
    """The tensor as (groups, -1): the units whose norms a normalization matches.  ``filter``: one
    row per output unit / filter for 2-D and larger tensors, the whole tensor for a 1-D (or 0-D)
    one; ``layer``: the whole tensor."""
    if how == "filter" and v.dim() >= 2:
        return v.reshape(v.shape[0], -1)
    return v.reshape(1, -1)


def _included(v: torch.Tensor, include_biases: bool) -> bool:
    return v.dim() >= 2 or include_biases


def normalize_direction(d: dict[str, torch.Tensor], w: dict[str, torch.Tensor], how: str,
                        include_biases: bool = False) -> dict[str, torch.Tensor]:
    """Rescale direction ``d`` to the weights ``w`` (Li et al. 2018).

    1-D parameters (biases, BatchNorm) get a zero direction, as in the paper; with
    ``include_biases`` they are normalized too, each as a single group (``filter``, ``layer``: the
    whole vector rescaled to the parameter's norm).  Li et al.'s code, when it keeps them,
    copies the weights into the direction instead; a rescaled Gaussian keeps the direction
    random and seeded like the rest of it."""
    if how not in ("filter", "layer", "weight", "none"):
        raise ValueError(f"unknown normalization {how!r}; allowed: filter, layer, weight, none")
    out = {}
    for k, dv in d.items():
        wv = w[k]
        if not _included(dv, include_biases):
            out[k] = torch.zeros_like(dv)          # biases and BatchNorm: no direction (Li et al.)
        elif how in ("filter", "layer"):
            dg, wg = _groups(dv, how), _groups(wv, how)
            scale = wg.norm(dim=1) / dg.norm(dim=1).clamp_min(1e-12)
            out[k] = (dg * scale[:, None]).view_as(dv)
        elif how == "weight":
            out[k] = dv * wv
        else:
            out[k] = dv.clone()
    return out


def _cos(u: torch.Tensor, v: torch.Tensor) -> float:
    u, v = u.double(), v.double()
    den = float(u.norm() * v.norm())
    return float(u @ v) / den if den > 0 else 0.0


def orthogonal_direction(g: dict[str, torch.Tensor], d1: dict[str, torch.Tensor], w: dict[str, torch.Tensor],
                         how: str, include_biases: bool = False) -> dict[str, torch.Tensor]:
    """A direction made from the Gaussian ``g`` like ``normalize_direction(g, w, how, include_biases)``,
    but exactly orthogonal to ``d1`` (over the flat weight vector) with its normalization intact.

    Gram-Schmidt followed by renormalization would undo part of the orthogonalization, so:

    * ``filter`` / ``layer``: d2 = N(d - t*d1), N the renormalization, d = N(g).  Each group's
      contribution to <d1, N(d - t*d1)> is norm_r * |d1_r| * cos(angle of d1_r and d_r - t*d1_r),
      strictly decreasing in t, so the inner product has exactly one root, found by bisection on
      per-group sums (t = 0 would be no change; plain Gram-Schmidt's coefficient is where the
      search starts).  Every group keeps exactly its target norm.
    * ``weight``: d = g*w, so Gram-Schmidt acts on g against d1*w, and d2 = g'*w keeps the form.
    * ``none``: plain Gram-Schmidt.
    Zero-direction parameters (biases without ``include_biases``) stay zero."""
    keys = list(g)
    if how in ("filter", "layer"):
        d = normalize_direction(g, w, how, include_biases)
        v, u, n = [], [], []
        for k in keys:
            if not _included(g[k], include_biases):
                continue
            vg, ug, wg = (_groups(t.double(), how) for t in (d[k], d1[k].to(d[k]), w[k]))
            v.append(vg)
            u.append(ug)
            n.append(wg.norm(dim=1))
        if not v:
            return d
        # per group: p = <u, v>, uu = |u|^2, vv = |v|^2, target norm n
        p = torch.cat([(a * b).sum(1) for a, b in zip(u, v)])
        uu = torch.cat([(a * a).sum(1) for a in u])
        vv = torch.cat([(b * b).sum(1) for b in v])
        nn_ = torch.cat(n)

        def f(t: float) -> float:
            den = (vv - 2 * t * p + t * t * uu).clamp_min(1e-300).sqrt()
            return float((nn_ * (p - t * uu) / den).sum())

        t = _root_decreasing(f, float(p.sum() / uu.sum().clamp_min(1e-300)))
        out = {}
        for k in keys:
            if not _included(g[k], include_biases):
                out[k] = d[k]
                continue
            r = _groups(d[k].double() - t * d1[k].double().to(d[k].device), how)
            wn = _groups(w[k].double(), how).norm(dim=1)
            r = r * (wn / r.norm(dim=1).clamp_min(1e-300))[:, None]
            out[k] = r.view_as(d[k]).to(d[k].dtype)
        return out
    if how not in ("weight", "none"):
        raise ValueError(f"unknown normalization {how!r}; allowed: filter, layer, weight, none")
    mask = {k: float(_included(g[k], include_biases)) for k in keys}
    # the Gaussian part and the vector it must be orthogonal to, flat, masked
    scale = {k: (w[k].double() if how == "weight" else torch.ones_like(w[k], dtype=torch.float64)) * mask[k]
             for k in keys}
    gz = torch.cat([g[k].double().reshape(-1) for k in keys])
    z = torch.cat([(d1[k].double().to(scale[k].device) * scale[k]).reshape(-1) for k in keys])
    zz = float(z @ z)
    if zz > 0:
        gz = gz - (float(z @ gz) / zz) * z
    out, i = {}, 0
    for k in keys:
        m = g[k].numel()
        out[k] = (gz[i:i + m].view_as(g[k]).to(scale[k].device) * scale[k]).to(g[k].dtype)
        i += m
    return out


def _root_decreasing(f, t0: float) -> float:
    """The root of a continuous, strictly decreasing f, by bracketing from t0 and bisection."""
    f0 = f(t0)
    if f0 == 0.0:
        return t0
    step = max(abs(t0), 1e-6)
    lo, hi = (t0, t0 + step) if f0 > 0 else (t0 - step, t0)
    for _ in range(200):
        if f(lo) > 0 >= f(hi):
            break
        step *= 2
        if f0 > 0:
            hi = t0 + step
        else:
            lo = t0 - step
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return lo if abs(f(lo)) < abs(f(hi)) else hi


# --------------------------------------------------------------------------- random

def _gaussians(origin: dict[str, torch.Tensor], seed: int, count: int) -> list[dict[str, torch.Tensor]]:
    """Seeded Gaussian directions, drawn on the CPU (the same numbers on every device)."""
    g = torch.Generator().manual_seed(seed)
    return [{k: torch.randn(v.shape, generator=g).to(v) for k, v in origin.items()} for _ in range(count)]


def random_plane(origin: dict[str, torch.Tensor], seed: int, how: str = "filter",
                 include_biases: bool = False, orthogonalize: bool = False):
    """-> (d1, d2) dicts like ``origin`` and info with their cosine (and, orthogonalized, the cosine
    before)."""
    g1, g2 = _gaussians(origin, seed, 2)
    d1 = normalize_direction(g1, origin, how, include_biases)
    d2 = normalize_direction(g2, origin, how, include_biases)
    info = {"cosine": _cos(flatten(d1), flatten(d2))}
    if orthogonalize:
        info["cosine_before_orthogonalization"] = info["cosine"]
        d2 = orthogonal_direction(g2, d1, origin, how, include_biases)
        info["cosine"] = _cos(flatten(d1), flatten(d2))
    return d1, d2, info


# --------------------------------------------------------------------------- pca

#: float64 elements of one column block of the trajectory (T rows x the block's columns): 64 MB
#: whatever T is.  PCA and projection work block by block, so a long trajectory of a large model
#: (ResNet-18, 50 snapshots: 2.3 GB of float32) costs itself plus one block, never a float64 copy.
BLOCK_ELEMENTS = 1 << 23


def _column_blocks(rows: int, n: int):
    """Slices of the columns of a (rows, n) matrix, about BLOCK_ELEMENTS elements each."""
    step = max(1, BLOCK_ELEMENTS // max(rows, 1))
    for j in range(0, n, step):
        yield slice(j, min(j + step, n))


def _centred_block(snapshots: torch.Tensor, cols: slice) -> torch.Tensor:
    """Columns ``cols`` of the centred trajectory, float64: each snapshot minus the mean snapshot.
    (Snapshots minus the final weights, centred, are the same matrix: the final weights cancel.)"""
    m = snapshots[:, cols].to(torch.float64, copy=True)       # a copy: centred in place below
    m -= m.mean(dim=0, keepdim=True)
    return m


def _gram(snapshots: torch.Tensor) -> np.ndarray:
    """G = M M^T (T x T, float64) of the centred trajectory M, summed over column blocks."""
    T, P = snapshots.shape
    g = torch.zeros(T, T, dtype=torch.float64, device=snapshots.device)
    for cols in _column_blocks(T, P):
        m = _centred_block(snapshots, cols)
        g.addmm_(m, m.T)
    return g.cpu().numpy()


#: a second eigenvalue at most this fraction of the first is rounding (the Gram matrix holds
#: squares, so its eigenvalues are good to about T * 1e-16 of the largest): the trajectory is a line
FLAT = 1e-12


def _unit_orthogonal(v: torch.Tensor, to: torch.Tensor | None) -> torch.Tensor:
    """``v`` (changed in place) made unit and, with ``to`` (a unit vector), orthogonal to it:
    Gram-Schmidt twice, as the Gram matrix's rounding leaks a little of the first direction into
    the second.  A zero ``v`` (no spread along it: two snapshots span a line only) becomes a
    Gaussian direction of seed 0, made orthogonal: not a direction of training, but the same one
    on every run."""
    def remove_to(x: torch.Tensor) -> None:
        for _ in range(2 if to is not None else 0):
            x.sub_(to, alpha=float(x @ to))

    remove_to(v)
    if not float(v.norm()) > 0:
        g = torch.Generator().manual_seed(0)
        v.copy_(torch.randn(v.numel(), generator=g, dtype=v.dtype))
        remove_to(v)
    n = float(v.norm())
    if not n > 0:
        raise ValueError("landscape.plane: a plane needs a model with at least two parameters")
    return v.div_(n)


def _positive(v: torch.Tensor) -> torch.Tensor:
    """``v`` or ``-v``, in place: the one whose largest-magnitude component is positive (the first
    such component on a tie).  A direction's sign is arbitrary; this makes it the same everywhere."""
    hi, lo = int(v.argmax()), int(v.argmin())
    top, bottom = float(v[hi]), -float(v[lo])
    if bottom > top or (bottom == top and lo < hi):
        v.neg_()
    return v


#: trajectories up to this many values (T x P) take LAPACK's SVD of a float64 copy (256 MB): the
#: most exact directions, and the same bits as ever for every scene that fits; larger ones the Gram
#: matrix, with no copy of the snapshots
SVD_ELEMENTS = 1 << 25


def pca_plane(snapshots: torch.Tensor, final: torch.Tensor):
    """-> (d1, d2) flat unit vectors (float32) and info with the explained variance ratios.

    The top two principal directions of the trajectory: the right singular vectors of M, the
    snapshots minus the final weights, centred (each minus the mean snapshot).  Up to
    ``SVD_ELEMENTS`` values, the SVD of M itself (``_pca_svd``).  Beyond, without copying
    M: the eigenvectors u_k of its Gram matrix G = M M^T (T x T) give them as v_k = M^T u_k / s_k,
    s_k^2 the eigenvalues; both products are summed over column blocks, so the peak memory is the
    snapshots plus one block, O(T^2), and the two float64 directions.  Each direction's largest
    component is positive (``_positive``).  A trajectory on a line (two snapshots; a second
    eigenvalue that is rounding, ``FLAT``) gets a seeded random second direction orthogonal to the
    first (``_unit_orthogonal``)."""
    T, P = snapshots.shape
    if T * P <= SVD_ELEMENTS and T >= 3:
        return _pca_svd(snapshots, final)
    w, u = np.linalg.eigh(_gram(snapshots))
    w, u = np.clip(w[::-1], 0.0, None), np.ascontiguousarray(u[:, ::-1])     # largest first
    ratio = w / w.sum() if w.sum() > 0 else np.zeros_like(w)
    top = torch.from_numpy(u[:, :2]).to(snapshots.device)                      # (T, 2)
    v = torch.zeros(2, P, dtype=torch.float64, device=snapshots.device)       # rows: s_k v_k
    for cols in _column_blocks(T, P):
        v[:, cols] = top.T @ _centred_block(snapshots, cols)
    # unit length replaces the division by s_k (the same in exact arithmetic, and defined at s_k = 0)
    if not w[0] > 0:
        v[0] = 0
    if not w[1] > FLAT * w[0]:
        v[1] = 0
    d1 = _unit_orthogonal(v[0], None)
    d2 = _unit_orthogonal(v[1], d1)
    d1, d2 = _positive(d1).float(), _positive(d2).float()
    return d1, d2, {"explained_variance_ratio": [float(ratio[0]), float(ratio[1])]}


def _pca_svd(snapshots: torch.Tensor, final: torch.Tensor):
    m = (snapshots - final).double().numpy()
    m = m - m.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    var = s ** 2
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    d1, d2 = torch.from_numpy(vt[0]).float(), torch.from_numpy(vt[1]).float()
    return d1, d2, {"explained_variance_ratio": [float(ratio[0]), float(ratio[1])]}


# --------------------------------------------------------------------------- hessian

def hvp_function(model: nn.Module, at: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None,
                 loss_fn: Loss = CROSS_ENTROPY):
    """v -> H v, H the Hessian of the loss of ``model`` on (x, y) at the flat weights ``at``
    (forward-over-reverse: ``torch.func.jvp`` of ``torch.func.grad``; reverse-over-reverse where a
    model's backward has no forward derivative), in ``at``'s dtype."""
    from torch.func import grad, jvp, vjp
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


# --------------------------------------------------------------------------- checkpoints

def nearest_snapshots(recorded: np.ndarray, requested: list[int]) -> list[int]:
    """Index of the recorded snapshot nearest to each requested step (the earlier one on a tie);
    two requests on the same snapshot are an error that says what to change."""
    recorded = np.asarray(recorded)
    idx = [int(np.argmin(np.abs(recorded - s))) for s in requested]
    for i in range(len(idx)):
        for j in range(i):
            if idx[i] == idx[j]:
                raise PlaneError(
                    f"landscape.plane.checkpoints: steps {requested[j]} and {requested[i]} both fall on the "
                    f"snapshot at step {int(recorded[idx[i]])} (snapshots kept: {len(recorded)}); choose steps "
                    f"further apart, or keep more snapshots (train.snapshots) or space them linearly "
                    f"(train.schedule: linear)")
    return idx


def _unit(v: torch.Tensor, what: str, ref: float = 0.0) -> tuple[torch.Tensor, float]:
    """v / |v|, or an error when |v| is zero or at most 1e-6 * ref (float32 rounding of ref)."""
    n = float(v.norm())
    if not n > 1e-6 * ref:
        raise PlaneError(f"landscape.plane.checkpoints: {what}; the plane through them is not defined")
    return v / n, n


def checkpoint_plane(params: torch.Tensor, steps: np.ndarray, requested: list[int], model: nn.Module,
                     seed: int, how: str = "filter", include_biases: bool = False):
    """The plane through two or three snapshots.  -> (origin, d1, d2) flat, info.

    Origin: the final snapshot if it is one of them, else the first listed.  d1: the unit vector
    to the next listed checkpoint; with three, d2 is the unit Gram-Schmidt remainder of the
    third, so the marks lie exactly on the plane at (|X - O|, 0) and (<Y - O, d1>, |remainder|).
    With two, d2 is a seeded random direction normalized like a ``random`` plane's (relative to
    the origin's weights), made exactly orthogonal to d1 and scaled to unit length: both axes are
    then in units of weight-space distance."""
    idx = nearest_snapshots(steps, requested)
    last = len(steps) - 1
    o = idx.index(last) if last in idx else 0
    others = [i for i in range(len(idx)) if i != o]
    P = params.double()
    origin = P[idx[o]]
    d1, n1 = _unit(P[idx[others[0]]] - origin,
                   f"the snapshots at steps {int(steps[idx[o]])} and {int(steps[idx[others[0]]])} are equal")
    if len(idx) == 3:
        r = P[idx[others[1]]] - origin
        ref = float(r.norm())
        r = r - (r @ d1) * d1
        r = r - (r @ d1) * d1                               # twice: exact to rounding
        d2, _ = _unit(r, f"the snapshots at steps {', '.join(str(int(steps[i])) for i in idx)} lie on one "
                         f"line (to float32 precision)", ref)
    else:
        o_w = split(model, origin)                          # float64 throughout (same Gaussian draws)
        g = _gaussians(o_w, seed, 1)[0]
        d2 = flatten(orthogonal_direction(g, split(model, d1), o_w, how, include_biases))
        d2, _ = _unit(d2, "the random second direction is zero (no parameter has a direction)")
    marks = []
    for i, s in enumerate(requested):
        v = P[idx[i]] - origin
        marks.append({"requested_step": int(s), "step": int(steps[idx[i]]),
                      "xy": [float(v @ d1), float(v @ d2)]})
    info = {"origin_step": int(steps[idx[o]]), "marks": marks}
    return origin.to(params.dtype), d1.to(params.dtype), d2.to(params.dtype), info


def interpolate_plane(params: torch.Tensor, steps: np.ndarray, requested: list[int], model: nn.Module,
                      seed: int, how: str = "filter", include_biases: bool = False):
    """The line from checkpoint A to B as the first axis.  -> (origin, d1, d2) flat, info.

    Origin A, d1 = B - A (A at a = 0, B at a = 1); d2 a seeded random direction normalized like a
    ``random`` plane's relative to A's weights, exactly orthogonal to d1 (its normalization
    intact), so b is in Li et al.'s units."""
    idx = nearest_snapshots(steps, requested)
    a, b = params[idx[0]], params[idx[1]]
    d1 = (b.double() - a.double()).to(params.dtype)
    if not float(d1.norm()) > 0:
        raise PlaneError(f"landscape.plane.checkpoints: the snapshots at steps {int(steps[idx[0]])} and "
                         f"{int(steps[idx[1]])} are equal; the line between them is not defined")
    a_w = split(model, a)
    g = _gaussians(a_w, seed, 1)[0]
    d2 = flatten(orthogonal_direction(g, split(model, d1), a_w, how, include_biases))
    marks = [{"requested_step": int(requested[0]), "step": int(steps[idx[0]]), "xy": [0.0, 0.0]},
             {"requested_step": int(requested[1]), "step": int(steps[idx[1]]), "xy": [1.0, 0.0]}]
    info = {"origin_step": int(steps[idx[0]]), "marks": marks,
            "cosine": _cos(d1, d2), "distance": float(d1.double().norm())}
    return a.clone(), d1, d2, info


# --------------------------------------------------------------------------- dispatch

def curvature_span(eigenvalue: float, loss_start: float, loss_end: float) -> float | None:
    """Hessian planes' default half-width: where the quadratic model along the sharpest direction,
    L(final) + eigenvalue * a^2 / 2, climbs back by the depth training descended (the evaluation
    loss at step 0 minus the final one; at least 5% of the loss at step 0).  None if the
    eigenvalue is not positive."""
    depth = max(loss_start - loss_end, 0.05 * abs(loss_start))
    if not (eigenvalue > 0 and depth > 0 and math.isfinite(depth)):
        return None
    return math.sqrt(2 * depth / eigenvalue)


def build_plane(spec: dict, model: nn.Module, params: torch.Tensor, steps: np.ndarray,
                x: torch.Tensor, y: torch.Tensor | None, eval_loss: np.ndarray | None = None,
                loss: Loss = CROSS_ENTROPY, final_index: int = -1) -> dict:
    """The scene's plane (``spec``: its resolved plane: section) for a run.

    ``params`` (T, P): the snapshots, ``params[final_index]`` the final weights; ``steps``: their
    training steps; (x, y): the evaluation data (for the Hessian), on the model's device, scored by
    ``loss``; ``eval_loss``: the snapshots' evaluation losses (for the Hessian plane's default extent).
    -> {origin, d1, d2: flat tensors like params' rows, info: dict for the cache's meta}."""
    method = spec["method"]
    final = params[final_index]
    how, bias, seed = spec["normalization"], spec["include_biases"], spec["seed"]
    finite = torch.isfinite(params).all(dim=1)
    if not bool(finite[final_index]):
        return _diverged_plane(spec, model, params, steps, finite, final_index)
    if not bool(finite.all()):          # a run that diverged after this moment: the finite snapshots
        params, steps = params[finite], np.asarray(steps)[finite.numpy()]
        final_index = int(finite[:final_index % len(finite) + 1].sum()) - 1
    _check_trajectory(method, params, final, steps)
    if method == "pca":
        d1, d2, info = pca_plane(params, final)
        origin = final
    elif method == "random":
        d1, d2, info = random_plane(split(model, final), seed, how, bias, spec["orthogonalize"])
        d1, d2, origin = flatten(d1), flatten(d2), final
    elif method == "hessian":
        h = spec["hessian"]
        if h["samples"] and h["samples"] < len(x):
            x, y = _hessian_subset(x, y, h["samples"], seed)
        dev = next(model.parameters()).device
        d1, d2, info = hessian_plane(model, final.to(dev), x.to(dev), None if y is None else y.to(dev),
                                     h["iterations"], h["tolerance"], seed, loss)
        d1, d2, origin = d1.to(final.device), d2.to(final.device), final
        info["samples"] = int(len(x))
        if eval_loss is not None:
            info["curvature_span"] = curvature_span(info["eigenvalues"][0], float(eval_loss[0]),
                                                    float(eval_loss[-1]))
    elif method == "checkpoints":
        origin, d1, d2, info = checkpoint_plane(params, steps, spec["checkpoints"], model, seed, how, bias)
    elif method == "interpolate":
        origin, d1, d2, info = interpolate_plane(params, steps, spec["checkpoints"], model, seed, how, bias)
    else:
        raise ValueError(f"landscape.plane.method: unknown method {method!r}")
    info.setdefault("origin_step", int(steps[final_index]))
    return {"origin": origin, "d1": d1, "d2": d2, "info": info}


def _diverged_plane(spec: dict, model: nn.Module, params: torch.Tensor, steps: np.ndarray, finite: torch.Tensor,
                    final_index: int) -> dict:
    """The plane of weights that are not finite (the training diverged before this moment): its origin
    is those weights, so every grid point is NaN and the landscape is drawn as diverged; the
    directions are a random plane's at the last finite snapshot, so the entry is whole."""
    last = int(torch.nonzero(finite)[-1]) if bool(finite.any()) else None
    if last is None:
        raise PlaneError("landscape.train: every snapshot of the run has non-finite weights; nothing to draw")
    d1, d2, _ = random_plane(split(model, params[last]), spec["seed"], spec["normalization"], spec["include_biases"])
    info = {"origin_step": int(steps[final_index]), "diverged": True, "last_finite_step": int(steps[last]),
            "note": "the weights at this step are not finite (the training diverged): every grid point is NaN"}
    return {"origin": params[final_index], "d1": flatten(d1), "d2": flatten(d2), "info": info}


def _hessian_subset(x: torch.Tensor, y: torch.Tensor | None, n: int, seed: int):
    """A seeded part of the evaluation data for the Hessian: class-balanced for class labels."""
    if y is not None and y.dim() == 1 and not y.is_floating_point():
        from compute.data import eval_subset
        x, y, _ = eval_subset(x.cpu(), y.cpu(), n, seed)
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return x.cpu()[idx], None if y is None else y.cpu()[idx]


#: what each method needs of the run: snapshots at least
_NEEDS = {"pca": 2, "checkpoints": 2, "interpolate": 2}
#: a trajectory whose snapshots all lie within this fraction of the final weights' norm of them has
#: not moved: a PCA plane through it is float32 rounding, not a direction of training
STILL = 1e-6


def _check_trajectory(method: str, params: torch.Tensor, final: torch.Tensor, steps: np.ndarray) -> None:
    need = _NEEDS.get(method, 1)
    if len(params) < need:
        raise PlaneError(f"landscape.plane.method: {method!r} needs a trajectory of at least {need} snapshots and "
                         f"this run has {len(params)} (one set of weights); use method: random or hessian, which "
                         f"need only the final weights")
    if method != "pca":
        return
    spread = max(float((params[k].double() - final.double()).norm()) for k in range(len(params)))
    scale = float(final.double().norm())
    if not spread > STILL * max(scale, 1e-30):
        raise PlaneError(f"landscape.plane.method: 'pca': the {len(params)} snapshots (steps {int(steps[0])} .. "
                         f"{int(steps[-1])}) barely move: the farthest is {spread:.3g} from the final weights, "
                         f"whose norm is {scale:.3g}; a PCA plane through them means nothing. Use method: random "
                         f"or hessian, or checkpoints further apart")


# --------------------------------------------------------------------------- projection and extents

def project(points: torch.Tensor, origin: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor):
    """Least-squares plane coordinates of flat weight vectors and their distance from the plane.

    With A = [d1 d2] (P x 2) and v a point minus the origin: the coordinates solve the 2 x 2
    normal equations (A^T A) c = A^T v, and the distance is |v - A c|.  A^T A, A^T v and the
    squared residuals are summed over column blocks (two passes over the points), so a long
    trajectory is never copied: memory is one block plus O(T).  The normal equations square the
    directions' condition number, harmless for planes (their directions are far from parallel);
    a singular A^T A (a zero or repeated direction) gets the minimum-norm solution, as lstsq does.

    Up to ``SVD_ELEMENTS`` values, LAPACK's least squares on a float64 copy, as ever.

    -> (xy (T, 2) float64, offplane (T,) float64)"""
    T, P = points.shape
    ok = torch.isfinite(points).all(dim=1) & bool(torch.isfinite(origin).all())
    if not bool(ok.all()):              # snapshots of a diverged run: not on any plane
        xy, off = np.full((T, 2), np.nan), np.full(T, np.nan)
        if bool(ok.any()):
            xy[ok.numpy()], off[ok.numpy()] = project(points[ok], origin, d1, d2)
        return xy, off
    if T * P <= SVD_ELEMENTS:
        A = torch.stack([d1, d2], dim=1).double()                     # (P, 2)
        v = (points.double() - origin.double()).T                     # (P, T)
        coef = torch.linalg.lstsq(A, v).solution                      # (2, T)
        return coef.T.numpy(), (v - A @ coef).norm(dim=0).numpy()

    def block(cols: slice) -> tuple[torch.Tensor, torch.Tensor]:
        v = points[:, cols].to(torch.float64, copy=True).sub_(origin[cols])   # (T, cols)
        a = torch.stack([d1[cols], d2[cols]], dim=1).double()                  # (cols, 2)
        return v, a

    ata = torch.zeros(2, 2, dtype=torch.float64, device=points.device)
    atv = torch.zeros(T, 2, dtype=torch.float64, device=points.device)
    for cols in _column_blocks(T, P):
        v, a = block(cols)
        ata.addmm_(a.T, a)
        atv.addmm_(v, a)
    coef = np.ascontiguousarray(np.linalg.lstsq(ata.cpu().numpy(), atv.cpu().numpy().T, rcond=None)[0].T)
    # the residual summed block by block, not |v|^2 - c.(A^T v): that difference cancels
    # catastrophically for points close to the plane
    c = torch.from_numpy(coef).to(points.device)
    r2 = torch.zeros(T, dtype=torch.float64, device=points.device)
    for cols in _column_blocks(T, P):
        v, a = block(cols)
        v.addmm_(c, a.T, alpha=-1)                                             # v - A c, in place
        r2 += v.square().sum(dim=1)
    return coef, r2.sqrt().cpu().numpy()


#: interpolate's default extents: a from A - half the segment to B + half of it (as in
#: Goodfellow et al. 2015 and Li et al. 2018's 1-D plots), b in Li et al.'s [-1, 1]
INTERPOLATE_EXTENT = ((-0.5, 1.5), (-1.0, 1.0))


def extents(spec: dict, xy: np.ndarray | None, marks: np.ndarray | None = None,
            curvature: float | None = None) -> tuple[tuple[float, float], tuple[float, float]]:
    """Plane ranges from the scene's plane: section.

    An explicit ``range`` wins, then ``span`` (symmetric about the origin).  Otherwise, by
    method: ``random`` [-1, 1] (Li et al.); ``interpolate`` ``INTERPOLATE_EXTENT``; ``hessian``
    a square [-h, h] on both axes (one scale, so the two curvatures compare), h the larger of
    ``curvature`` (``curvature_span``) and the trajectory's largest |coordinate| grown by
    ``margin``; ``pca`` and ``checkpoints`` fit the projected trajectory ``xy`` and the ``marks``
    (plane coordinates of checkpoints), the origin always inside, grown by ``margin``."""
    if spec.get("range") is not None:
        (a0, a1), (b0, b1) = spec["range"]
        return (a0, a1), (b0, b1)
    span = spec.get("span")
    method = spec["method"]
    if span is None and method == "interpolate":
        return INTERPOLATE_EXTENT
    if span is None and method == "hessian":
        reach = float(np.abs(xy).max()) * (1 + spec["margin"]) if xy is not None and len(xy) else 0.0
        h = max(curvature or 0.0, reach)
        span = h if h > 0 else 1.0
    pts = [p for p in (xy, marks) if p is not None and len(p)]
    if span is None and (method == "random" or not pts):
        span = 1.0
    if span is not None:
        sa, sb = (span, span) if isinstance(span, (int, float)) else span
        return (-sa, sa), (-sb, sb)
    xy = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in pts])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    # the origin (0, 0) always inside; keep the thin axis at least a quarter of the wide one
    lo, hi = np.minimum(lo, 0), np.maximum(hi, 0)
    width = hi - lo
    need = max(width.max(), 1e-6) * 0.25
    for i in range(2):
        if width[i] < need:
            c = (lo[i] + hi[i]) / 2
            lo[i], hi[i] = c - need / 2, c + need / 2
    width = hi - lo
    m = spec["margin"]
    return (float(lo[0] - m * width[0]), float(hi[0] + m * width[0])), \
           (float(lo[1] - m * width[1]), float(hi[1] + m * width[1]))


# --------------------------------------------------------------------------- landscape over training

def sequence_indices(recorded: np.ndarray, spec: dict) -> np.ndarray:
    """Snapshot indices of a sequence's grids (``spec``: the resolved landscape.sequence section),
    increasing and distinct.

    ``count`` targets steps spread over the run (``spacing`` linear, or log: evenly in
    log(step + last step / 50)) and takes the nearest
    recorded snapshot of each, moved on to the next snapshot where a neighbour already has it (log
    targets crowd the first steps), so there are exactly ``count`` grids from the first snapshot to
    the last (fewer only if fewer snapshots were kept).  Explicit ``steps`` take the nearest
    snapshot of each, and two on the same snapshot give one grid."""
    recorded = np.asarray(recorded)
    n = len(recorded)
    if spec.get("steps"):
        idx = [int(np.argmin(np.abs(recorded - s))) for s in spec["steps"]]
        return np.unique(np.asarray(idx, dtype=np.int64))
    count = min(spec["count"], n)
    last = int(recorded[-1])
    if spec["spacing"] == "linear":
        targets = np.linspace(0, last, count)
    else:
        # evenly spaced in log(step + last / 50): dense early, where the loss falls fastest, without
        # spending a third of the film on the first dozen steps as log(step + 1) would
        s0 = max(last / 50, 1.0)
        targets = np.geomspace(s0, last + s0, count) - s0
    idx = np.array([int(np.argmin(np.abs(recorded - s))) for s in targets], dtype=np.int64)
    for k in range(1, count):                     # distinct: push crowded picks forward ...
        idx[k] = max(idx[k], idx[k - 1] + 1)
    for k in range(count - 1, -1, -1):            # ... and back where that ran past the end
        idx[k] = min(idx[k], n - count + k)
    idx[0], idx[-1] = 0, n - 1
    return idx


def sequence_plane(spec: dict, model: nn.Module, theta: torch.Tensor, at: tuple[float, float],
                   d1: torch.Tensor, d2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The plane of one grid of a sequence: through the snapshot's weights ``theta``, which sits
    at plane coordinates ``at`` (its projection onto the scene's plane), so the grid covers the
    same window of (a, b) as the still landscape and its point ``at`` is exactly ``theta``.

    Directions: a random plane's are rescaled to ``theta`` (the same seeded Gaussians, normalized
    filter by filter to this snapshot's weights, as Li et al.'s normalization asks); every other
    method's directions are not relative to the weights and stay those of the scene's plane
    (``d1``, ``d2``).  -> (origin, d1, d2) flat tensors: the grid point (a, b) is
    origin + a*d1 + b*d2 = theta + (a - at[0])*d1 + (b - at[1])*d2."""
    if spec["method"] == "random":
        g1, g2, _ = random_plane(split(model, theta), spec["seed"], spec["normalization"], spec["include_biases"],
                                 spec["orthogonalize"])
        d1, d2 = flatten(g1), flatten(g2)
    d1, d2 = d1.to(theta), d2.to(theta)
    return theta - at[0] * d1 - at[1] * d2, d1, d2
