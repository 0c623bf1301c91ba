"""Principal directions of a training trajectory and least-squares plane coordinates, both in
column blocks so a long trajectory of a large model is never copied (compute/plane/'s ``pca``
method; every plane's projection of the run).
"""
from __future__ import annotations

import numpy as np
import torch


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
