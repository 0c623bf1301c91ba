"""Directions normalized to the weights (Li et al. 2018), for compute/plane/'s random,
checkpoints and interpolate planes: ``normalize_direction`` rescales a Gaussian filter by filter,
layer by layer or weight by weight; ``orthogonal_direction`` makes one exactly orthogonal to another
with its normalization intact.
"""
from __future__ import annotations

import torch


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
