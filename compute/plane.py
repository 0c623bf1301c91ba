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
import torch.nn.functional as F


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

def pca_plane(snapshots: torch.Tensor, final: torch.Tensor):
    """-> (d1, d2) flat unit vectors and info with the explained variance ratios."""
    m = (snapshots - final).double().numpy()
    m = m - m.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    var = s ** 2
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    d1 = torch.from_numpy(vt[0]).float()
    d2 = torch.from_numpy(vt[1]).float()
    return d1, d2, {"explained_variance_ratio": [float(ratio[0]), float(ratio[1])]}


# --------------------------------------------------------------------------- hessian

def hvp_function(model: nn.Module, at: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """v -> H v, H the Hessian of the mean cross-entropy of ``model`` on (x, y) at the flat weights
    ``at`` (forward-over-reverse: ``torch.func.jvp`` of ``torch.func.grad``), in ``at``'s dtype."""
    from torch.func import functional_call, grad, jvp
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [math.prod(s) for s in shapes]
    buffers = {k: (b.to(at.dtype) if b.is_floating_point() else b) for k, b in model.named_buffers()}
    xx = x.to(at.dtype)

    def loss(flat):
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return F.cross_entropy(functional_call(model, (params, buffers), (xx,)), y)

    g = grad(loss)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return jvp(g, (at,), (v,))[1]

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


def hessian_plane(model: nn.Module, at: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  iterations: int, tolerance: float, seed: int):
    """-> (d1, d2) flat unit vectors (float32, on ``at``'s device) and info (eigenvalues, steps)."""
    was = model.training
    model.eval()
    try:
        w = at.detach().double()
        hvp = hvp_function(model, w, x, y)
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
                raise ValueError(
                    f"landscape.plane.checkpoints: steps {requested[j]} and {requested[i]} both fall on the "
                    f"snapshot at step {int(recorded[idx[i]])} (snapshots kept: {len(recorded)}); choose steps "
                    f"further apart, or keep more snapshots (train.snapshots) or space them linearly "
                    f"(train.schedule: linear)")
    return idx


def _unit(v: torch.Tensor, what: str, ref: float = 0.0) -> tuple[torch.Tensor, float]:
    """v / |v|, or an error when |v| is zero or at most 1e-6 * ref (float32 rounding of ref)."""
    n = float(v.norm())
    if not n > 1e-6 * ref:
        raise ValueError(f"landscape.plane.checkpoints: {what}; the plane through them is not defined")
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
        raise ValueError(f"landscape.plane.checkpoints: the snapshots at steps {int(steps[idx[0]])} and "
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
                x: torch.Tensor, y: torch.Tensor, eval_loss: np.ndarray | None = None) -> dict:
    """The scene's plane (``spec``: its resolved plane: section) for a trained trajectory.

    ``params`` (T, P): the snapshots, the last one the final weights; ``steps``: their training
    steps; (x, y): the evaluation data (for the Hessian), on the model's device; ``eval_loss``:
    the snapshots' evaluation losses (for the Hessian plane's default extent).
    -> {origin, d1, d2: flat tensors like params' rows, info: dict for the cache's meta}."""
    method = spec["method"]
    final = params[-1]
    how, bias, seed = spec["normalization"], spec["include_biases"], spec["seed"]
    if method == "pca":
        d1, d2, info = pca_plane(params, final)
        origin = final
    elif method == "random":
        d1, d2, info = random_plane(split(model, final), seed, how, bias, spec["orthogonalize"])
        d1, d2, origin = flatten(d1), flatten(d2), final
    elif method == "hessian":
        h = spec["hessian"]
        if h["samples"] and h["samples"] < len(y):
            from compute.data import eval_subset
            x, y, _ = eval_subset(x.cpu(), y.cpu(), h["samples"], seed)
        dev = next(model.parameters()).device
        d1, d2, info = hessian_plane(model, final.to(dev), x.to(dev), y.to(dev),
                                     h["iterations"], h["tolerance"], seed)
        d1, d2, origin = d1.to(final.device), d2.to(final.device), final
        info["samples"] = int(len(y))
        if eval_loss is not None:
            info["curvature_span"] = curvature_span(info["eigenvalues"][0], float(eval_loss[0]),
                                                    float(eval_loss[-1]))
    elif method == "checkpoints":
        origin, d1, d2, info = checkpoint_plane(params, steps, spec["checkpoints"], model, seed, how, bias)
    elif method == "interpolate":
        origin, d1, d2, info = interpolate_plane(params, steps, spec["checkpoints"], model, seed, how, bias)
    else:
        raise ValueError(f"landscape.plane.method: unknown method {method!r}")
    info.setdefault("origin_step", int(steps[-1]))
    return {"origin": origin, "d1": d1, "d2": d2, "info": info}


# --------------------------------------------------------------------------- projection and extents

def project(points: torch.Tensor, origin: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor):
    """Least-squares plane coordinates of flat weight vectors and their distance from the plane.

    -> (xy (T, 2) float64, offplane (T,) float64)"""
    A = torch.stack([d1, d2], dim=1).double()                     # (P, 2)
    v = (points.double() - origin.double()).T                     # (P, T)
    coef = torch.linalg.lstsq(A, v).solution                      # (2, T)
    resid = v - A @ coef
    return coef.T.numpy(), resid.norm(dim=0).numpy()


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
