"""Planes through weight space: an origin and two directions.

* ``pca``     -- the top two principal directions of the training trajectory
                 (snapshots minus the final weights, centred), unit length.
* ``random``  -- two seeded Gaussian directions, normalized per filter as in
                 Li et al. 2018 ("Visualizing the Loss Landscape of Neural
                 Nets"): each output unit / filter of the direction is rescaled
                 to the norm of the same unit in the weights.  Biases (1-D
                 parameters) get a zero direction, as in the paper.
                 ``layer`` rescales whole tensors, ``weight`` multiplies by the
                 weights elementwise, ``none`` leaves the Gaussian as is.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


def split(model: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for name, p in model.named_parameters():
        out[name] = flat[i:i + p.numel()].view_as(p)
        i += p.numel()
    return out


def flatten(d: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in d.values()])


def normalize_direction(d: dict[str, torch.Tensor], w: dict[str, torch.Tensor], how: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, dv in d.items():
        wv = w[k]
        if dv.dim() <= 1:
            out[k] = torch.zeros_like(dv)          # biases and BatchNorm: no direction (Li et al.)
        elif how == "filter":
            dn = dv.reshape(dv.shape[0], -1).norm(dim=1).clamp_min(1e-12)
            wn = wv.reshape(wv.shape[0], -1).norm(dim=1)
            out[k] = dv * (wn / dn).view(-1, *([1] * (dv.dim() - 1)))
        elif how == "layer":
            out[k] = dv * (wv.norm() / dv.norm().clamp_min(1e-12))
        elif how == "weight":
            out[k] = dv * wv
        elif how == "none":
            out[k] = dv
        else:
            raise ValueError(f"unknown normalization {how!r}")
    return out


def random_plane(origin: dict[str, torch.Tensor], seed: int, how: str = "filter"):
    g = torch.Generator().manual_seed(seed)
    dirs = []
    for _ in range(2):
        d = {k: torch.randn(v.shape, generator=g).to(v) for k, v in origin.items()}
        dirs.append(normalize_direction(d, origin, how))
    return dirs[0], dirs[1], {}


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


def project(points: torch.Tensor, origin: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor):
    """Least-squares plane coordinates of flat weight vectors and their distance from the plane.

    -> (xy (T, 2) float64, offplane (T,) float64)"""
    A = torch.stack([d1, d2], dim=1).double()                     # (P, 2)
    v = (points.double() - origin.double()).T                     # (P, T)
    coef = torch.linalg.lstsq(A, v).solution                      # (2, T)
    resid = v - A @ coef
    return coef.T.numpy(), resid.norm(dim=0).numpy()


def extents(spec: dict, xy: np.ndarray | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """Plane ranges from the scene's plane: section (span, range, or fit to the trajectory)."""
    if spec.get("range") is not None:
        (a0, a1), (b0, b1) = spec["range"]
        return (a0, a1), (b0, b1)
    span = spec.get("span")
    if span is None and (spec["method"] != "pca" or xy is None):
        span = 1.0
    if span is not None:
        sa, sb = (span, span) if isinstance(span, (int, float)) else span
        return (-sa, sa), (-sb, sb)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    # the final weights (0, 0) always inside; keep the thin axis at least a quarter of the wide one
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
