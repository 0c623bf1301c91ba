"""compute/morphology: each figure against a function whose answer is known in closed form.

* a quadratic bowl L = c + 1/2 theta^T H theta (a one-parameter-vector "model" with a custom Loss,
  so the Hessian figures run through ``model_hvp`` / ``hvp_function`` like a real network's):
  top eigenvalue, Hutchinson trace, basin area (the ellipse pi * 2 margin / sqrt(h1 h2)), Keskar
  sharpness (h1 r^2 / 2), the convexity ratio (positive definite and indefinite);
* a quartic whose Hessian changes over the plane: the convexity map point by point;
* Gaussian wells of known depths: the count of minima above a prominence;
* random small grids against a plain union-find flood: the prominence of every minimum;
* a plane: roughness 0 and one minimum, on the border;
* a small MLP: Hutchinson's estimate within 3 standard errors of the exact trace (torch.func.hessian).
"""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
import torch.nn as nn

from compute.losses import CROSS_ENTROPY, Loss
from compute.morphology import (FigureOptions, basin, bilinear, component4, convexity_map, grid_minimum,
                                hutchinson_trace, keskar_sharpness, local_minima, measure, model_hvp,
                                path_honesty, plane_gram, prominences, roughness, top_eigenvalue)
from compute.plane import split


# --------------------------------------------------------------------------- the bowl as a model

class Vector(nn.Module):
    """A model that is one parameter vector; its loss is a function of the vector alone."""

    def __init__(self, n: int):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(n, dtype=torch.float64))


def quadratic_loss(H: torch.Tensor, c: float = 0.0, quartic: torch.Tensor | None = None) -> Loss:
    """Loss c + 1/2 theta^T H theta (+ sum_i quartic_i theta_i^4 / 12) of a Vector model."""
    def fn(model, batch):
        t = model.theta
        out = c + 0.5 * t @ (H.to(t) @ t)
        if quartic is not None:
            out = out + (quartic.to(t) * t ** 4).sum() / 12
        return out
    return Loss("custom", fn, "tests:quadratic")


def rotation(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q


EIGS = torch.tensor([4.0, 2.5, 1.0, 0.5, 0.25, 0.1], dtype=torch.float64)
Q = rotation(6, 0)
H_BOWL = Q @ torch.diag(EIGS) @ Q.T
DUMMY_X = torch.zeros(1, 1)


def bowl_hvp_at(H: torch.Tensor, c: float = 0.0, quartic=None):
    return model_hvp(Vector(H.shape[0]), DUMMY_X, None, quadratic_loss(H, c, quartic))


def plane_grid(H, c, d1, d2, n=301, span=1.5, dtype=np.float32):
    """The bowl's loss on the plane a d1 + b d2 (origin 0), as the grid engine would store it."""
    a = np.linspace(-span, span, n)
    A, B = np.meshgrid(a, a)
    theta = torch.from_numpy(A.reshape(-1, 1) * d1.numpy() + B.reshape(-1, 1) * d2.numpy())   # (N, P)
    L = c + 0.5 * torch.einsum("np,pq,nq->n", theta, H, theta)
    return L.numpy().reshape(n, n).astype(dtype), a, a


# --------------------------------------------------------------------------- sharpness

def test_top_eigenvalue_of_the_bowl_through_the_model():
    hvp = bowl_hvp_at(H_BOWL)(torch.full((6,), 0.3, dtype=torch.float64))   # constant Hessian anywhere
    top = top_eigenvalue(hvp, 6, iterations=20, tolerance=1e-10, seed=3)
    assert top.value == pytest.approx(4.0, abs=1e-9)
    assert top.second == pytest.approx(2.5, abs=1e-9)
    assert top.min_estimate == pytest.approx(0.1, abs=1e-9)
    assert top.converged and top.residual < 1e-8


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    hvp = bowl_hvp_at(torch.diag(EIGS))(torch.zeros(6, dtype=torch.float64))
    t = hutchinson_trace(hvp, 6, samples=10, seed=1)
    assert t.mean == pytest.approx(float(EIGS.sum()), abs=1e-12)          # v^T D v = sum(d) for v in {-1, 1}^n
    assert t.stderr == pytest.approx(0.0, abs=1e-12)


def test_hutchinson_on_the_rotated_bowl_within_its_error_and_converging():
    hvp = bowl_hvp_at(H_BOWL)(torch.zeros(6, dtype=torch.float64))
    exact = float(EIGS.sum())
    few = hutchinson_trace(hvp, 6, samples=30, seed=0)
    assert few.stderr > 0
    assert abs(few.mean - exact) <= 3 * few.stderr
    assert few.mean == pytest.approx(hutchinson_trace(hvp, 6, samples=30, seed=0, batch=1).mean, abs=1e-12)
    many = hutchinson_trace(hvp, 6, samples=20000, seed=1, batch=5000)
    assert abs(many.mean - exact) <= 3 * many.stderr
    assert many.mean == pytest.approx(exact, rel=0.01)
    # Rademacher: Var(v^T H v) = 2 * sum of the squared off-diagonal entries
    off = H_BOWL - torch.diag(torch.diag(H_BOWL))
    assert many.std == pytest.approx(math.sqrt(2 * float((off ** 2).sum())), rel=0.05)


def test_hutchinson_within_three_standard_errors_on_a_small_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 3)).double()
    x = torch.randn(48, 2, dtype=torch.float64)
    y = torch.randint(0, 3, (48,))
    at = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    n = at.numel()
    assert 200 <= n <= 400

    def loss(flat):
        return CROSS_ENTROPY.functional(model, split(model, flat), {}, x, y)

    exact = float(torch.func.hessian(loss)(at).diagonal().sum())
    est = hutchinson_trace(model_hvp(model, x, y)(at), n, samples=200, seed=0)
    assert est.stderr > 0
    assert abs(est.mean - exact) <= 3 * est.stderr, (est, exact)


def test_keskar_sharpness_of_the_bowl():
    c = 0.5
    d1, d2 = Q[:, 0], Q[:, 2]                                             # eigenvalues 4 and 1
    L, a, b = plane_grid(H_BOWL, c, d1, d2)
    k = keskar_sharpness(L, a, b, 0.3)
    assert k.loss_origin == pytest.approx(c, abs=1e-6)                    # (0, 0) is a node
    assert k.increase == pytest.approx(0.5 * 4.0 * 0.3 ** 2, abs=1e-5)    # along d1, on the circle
    assert k.relative == pytest.approx(k.increase / (1 + c), rel=1e-12)
    assert abs(k.a) == pytest.approx(0.3, abs=1e-9) and k.b == pytest.approx(0.0, abs=1e-9)
    assert not k.truncated and k.origin_inside
    assert k.cells == int(((a[None, :] ** 2 + a[:, None] ** 2) <= 0.09 * (1 + 1e-9)).sum())
    # origin between nodes: L(0, 0) by bilinear interpolation
    even = np.linspace(-1.5, 1.5, 300)
    A, B = np.meshgrid(even, even)
    plane = 2.0 + 0.3 * A - 0.7 * B + 0.1 * A * B                          # bilinear: interpolated exactly
    assert keskar_sharpness(plane, even, even, 0.5).loss_origin == pytest.approx(2.0, abs=1e-12)
    # a disc reaching past the window; an origin outside it
    assert keskar_sharpness(L, a, b, 2.0).truncated
    far = keskar_sharpness(L, a + 10, b, 0.3)
    assert not far.origin_inside and math.isnan(far.increase)


def test_bilinear_ignores_nan_neighbours_at_a_node():
    a = np.array([0.0, 1.0, 2.0])
    L = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    assert bilinear(L, a, np.array([0.0, 1.0]), 1.0, 0.0) == 2.0
    assert bilinear(L, a, np.array([0.0, 1.0]), 0.5, 0.5) == pytest.approx(2.5)
    assert math.isnan(bilinear(L, a, np.array([0.0, 1.0]), 1.5, 0.0))


# --------------------------------------------------------------------------- convexity map

def test_convexity_ratio_of_positive_definite_and_indefinite_bowls():
    o = torch.zeros(6, dtype=torch.float64)
    d1, d2 = Q[:, 0], Q[:, 1]
    m = convexity_map(bowl_hvp_at(H_BOWL), o, d1, d2, (-1, 1), (-0.5, 0.5), k=3, iterations=6, seed=0)
    assert m.ratio.shape == (3, 3) and m.alpha.tolist() == [-1, 0, 1] and m.beta.tolist() == [-0.5, 0, 0.5]
    np.testing.assert_allclose(m.ratio, 0.1 / 4.0, rtol=1e-8)
    np.testing.assert_allclose(m.lambda_max, 4.0, rtol=1e-9)
    np.testing.assert_allclose(m.lambda_min, 0.1, rtol=1e-7)
    eig = torch.tensor([3.0, 1.0, -0.5, 2.0, 0.2, -0.1], dtype=torch.float64)
    R = rotation(6, 5)
    m = convexity_map(bowl_hvp_at(R @ torch.diag(eig) @ R.T), o, d1, d2, (-1, 1), (-1, 1), k=2, iterations=6)
    np.testing.assert_allclose(m.ratio, 0.5 / 3.0, rtol=1e-8)
    np.testing.assert_allclose(m.lambda_min, -0.5, rtol=1e-8)


def test_convexity_map_follows_a_hessian_that_changes_over_the_plane():
    # L = 1/2 sum h_i t_i^2 + c (t_0^4 + t_1^4) / 12: the Hessian is diag(h_0 + c t_0^2, h_1 + c t_1^2, h_2, h_3)
    h = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    quartic = torch.tensor([4.0, 4.0, 0.0, 0.0], dtype=torch.float64)
    e = torch.eye(4, dtype=torch.float64)
    m = convexity_map(bowl_hvp_at(torch.diag(h), quartic=quartic), torch.zeros(4, dtype=torch.float64), e[0], e[1],
                      (-1.0, 0.5), (0.0, 1.5), k=4, iterations=4, seed=7)
    for j, b in enumerate(m.beta):
        for i, a in enumerate(m.alpha):
            lam = [1 + 4 * a * a, -2 + 4 * b * b, 0.5, 3.0]
            assert m.lambda_max[j, i] == pytest.approx(max(lam), abs=1e-8)
            assert m.lambda_min[j, i] == pytest.approx(min(lam), abs=1e-8)
            assert m.ratio[j, i] == pytest.approx(abs(min(lam) / max(lam)), abs=1e-8)
    assert m.converged.all()


def test_convexity_map_on_a_small_mlp_is_quick_and_inside_the_spectrum():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 3))
    x, y = torch.randn(48, 2), torch.randint(0, 3, (48,))
    o = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
    g = torch.Generator().manual_seed(0)
    d1, d2 = (torch.randn(o.numel(), generator=g, dtype=torch.float64) * 0.1 for _ in range(2))
    t = time.perf_counter()
    m = convexity_map(model_hvp(model, x, y), o, d1, d2, (-1, 1), (-1, 1), k=5, iterations=10, seed=0)
    assert time.perf_counter() - t < 20
    assert np.isfinite(m.ratio).all() and (m.lambda_min <= m.lambda_max).all()
    # Ritz values lie inside the spectrum: at the centre, against the full Hessian
    xd = x.double()

    def loss(flat):
        return CROSS_ENTROPY.functional(model, split(model, flat), {}, xd, y)

    ev = torch.linalg.eigvalsh(torch.func.hessian(loss)(o))
    assert float(ev[0]) - 1e-9 <= m.lambda_min[2, 2] <= m.lambda_max[2, 2] <= float(ev[-1]) + 1e-9
    assert m.lambda_max[2, 2] > 0.5 * float(ev[-1])
    assert model.training                                                # the mode is restored
    # run to convergence at the origin: the extreme eigenvalues themselves, and the same top
    # eigenvalue as the project's Lanczos (compute.hessian.hessian_top2)
    at0 = convexity_map(model_hvp(model, x, y), o, d1, d2, (0, 0), (0, 0), k=1, iterations=120, tolerance=1e-9)
    scale = float(ev.abs().max())
    assert at0.lambda_max[0, 0] == pytest.approx(float(ev[-1]), abs=1e-6 * scale)
    assert at0.lambda_min[0, 0] == pytest.approx(float(ev[0]), abs=1e-6 * scale)
    top = top_eigenvalue(model_hvp(model, x, y)(o), o.numel(), iterations=120, tolerance=1e-9)
    assert top.value == pytest.approx(at0.lambda_max[0, 0], abs=1e-6 * scale)


def test_convexity_map_batched_one_by_one_and_unvmappable_agree():
    o = torch.zeros(6, dtype=torch.float64)
    eig = torch.tensor([3.0, 1.0, -0.5, 2.0, 0.2, -0.1], dtype=torch.float64)
    R = rotation(6, 5)
    quartic = torch.tensor([4.0, 4.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    hvp_at = bowl_hvp_at(R @ torch.diag(eig) @ R.T, quartic=quartic)

    def unvmappable(at):                                                 # .item() refuses vmap
        inner = hvp_at(at)
        return lambda v: inner(v) * (1.0 + 0.0 * float(v[0].item()))

    args = (o, R[:, 0], R[:, 1], (-1, 1), (-1, 1))
    kw = dict(k=3, iterations=3, seed=2)                                 # fewer steps than parameters
    ref = convexity_map(hvp_at, *args, batch=32, **kw)
    for other in (convexity_map(hvp_at, *args, batch=1, **kw), convexity_map(hvp_at, *args, batch=4, **kw),
                  convexity_map(unvmappable, *args, **kw)):
        np.testing.assert_allclose(other.lambda_max, ref.lambda_max, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(other.lambda_min, ref.lambda_min, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- basin

def test_basin_of_the_bowl_is_the_ellipse():
    c, margin = 0.5, 0.5
    d1, d2 = Q[:, 0], Q[:, 2]                                             # h1 = 4, h2 = 1
    L, a, b = plane_grid(H_BOWL, c, d1, d2)
    ellipse = math.pi * 2 * margin / math.sqrt(4.0 * 1.0)
    ab = basin(L, a, b, margin)
    assert ab.kind == "absolute" and ab.level == pytest.approx(c + margin, abs=1e-6)
    assert ab.area == pytest.approx(ellipse, rel=0.01)
    assert ab.radius == pytest.approx(math.sqrt(ab.area / math.pi))
    assert ab.cells == int(ab.mask.sum()) and not ab.touches_edge
    assert ab.area == pytest.approx(ab.cells * 0.01 ** 2, rel=1e-9)
    rel = basin(L, a, b, 1.0, relative=True)                              # loss <= 2 * min = c + 0.5
    assert rel.kind == "relative" and rel.level == pytest.approx(2 * c, abs=1e-6)
    assert rel.area == pytest.approx(ellipse, rel=0.01)
    mn = grid_minimum(L, a, b)
    assert (mn.a, mn.b, mn.distance, mn.on_edge) == (pytest.approx(0, abs=1e-12), pytest.approx(0, abs=1e-12),
                                                     pytest.approx(0, abs=1e-12), False)
    assert mn.loss == pytest.approx(c, abs=1e-7)


def test_basin_is_the_connected_part_around_the_minimum_and_skips_nan():
    a = np.linspace(-3, 3, 121)
    A, B = np.meshgrid(a, a)
    L = 1 - np.exp(-((A + 1.5) ** 2 + B ** 2) / 0.5) - 0.9 * np.exp(-((A - 1.5) ** 2 + B ** 2) / 0.5)
    both = basin(L, a, a, 0.6)                                            # level 0.6: both wells are below it
    assert both.mask[60, 30] and not both.mask[60, 90]                    # only the deeper one's part
    assert (both.mask & (A > 0)).sum() == 0
    L2 = L.copy()
    L2[60, 31] = np.nan
    holed = basin(L2, a, a, 0.6)
    assert not holed.mask[60, 31] and holed.cells == both.cells - 1
    # a level set of two touching blobs joined only diagonally: not 4-connected
    m = np.zeros((4, 4), dtype=bool)
    m[0, 0] = m[1, 1] = True
    assert component4(m, (0, 0)).sum() == 1
    m[1, 0] = True
    assert component4(m, (0, 0)).sum() == 3


def test_basin_area_of_an_edge_cell_counts_inside_the_window():
    a = np.linspace(0, 1, 11)
    L = np.tile(a, (11, 1))                                               # minimum along the a = 0 edge
    bs = basin(L, a, a, 0.25)                                             # columns 0, 1, 2: a <= 0.25
    assert bs.touches_edge and bs.area == pytest.approx(0.25 * 1.0)


# --------------------------------------------------------------------------- minima and prominence

def wells(depths, centres, s=0.3, n=241, span=4.0):
    a = np.linspace(-span, span, n)
    A, B = np.meshgrid(a, a)
    L = np.ones_like(A)
    for d, (x, y) in zip(depths, centres):
        L -= d * np.exp(-((A - x) ** 2 + (B - y) ** 2) / (2 * s * s))
    return L.astype(np.float32), a, a


def test_count_of_separated_wells_by_prominence():
    depths = [1.0, 0.8, 0.5, 0.2]
    centres = [(-2, -2), (2, -2), (-2, 2), (2, 2)]
    L, a, b = wells(depths, centres)
    m = local_minima(L, a, b, 0.1)
    assert m.count == 4 and m.interior == 4
    np.testing.assert_allclose(np.c_[m.a, m.b], centres, atol=1e-9)        # lowest first: the depths' order
    assert math.isinf(m.prominence[0])
    np.testing.assert_allclose(m.prominence[1:], depths[1:], atol=1e-6)
    assert [local_minima(L, a, b, t).count for t in (0.3, 0.6, 0.9, 5.0)] == [3, 2, 1, 1]
    assert local_minima(L, a, b).threshold == pytest.approx(0.01 * (L.max() - L.min()))


def reference_prominences(L: np.ndarray) -> dict[int, float]:
    """The descending flood, plainly: cells in increasing (loss, index) order, each joining its
    processed 8-neighbours; where components meet, the ones with the higher minimum die."""
    ny, nx = L.shape
    flat = L.reshape(-1)
    fin = np.isfinite(flat)
    order = np.argsort(np.where(fin, flat, np.inf), kind="stable")
    rank = np.empty(len(flat), dtype=int)
    rank[order] = np.arange(len(flat))
    up: dict[int, int] = {}
    out: dict[int, float] = {}

    def find(x):
        while up[x] != x:
            x = up[x]
        return x

    for c in order[:int(fin.sum())].tolist():
        j, i = divmod(c, nx)
        up[c] = c
        roots = {find(jj * nx + ii) for jj in (j - 1, j, j + 1) for ii in (i - 1, i, i + 1)
                 if (jj, ii) != (j, i) and 0 <= jj < ny and 0 <= ii < nx and (jj * nx + ii) in up}
        if not roots:
            out[c] = math.inf                          # a new minimum (the component's root is its minimum)
            continue
        old, *young = sorted(roots, key=lambda r: rank[r])
        for r in young:
            out[r] = float(flat[c] - flat[r])
            up[r] = old
        up[c] = old
    return out


def test_prominences_match_a_plain_flood_on_random_grids():
    rng = np.random.default_rng(0)
    for t in range(120):
        ny, nx = (int(v) for v in rng.integers(1, 13, 2))
        L = rng.integers(0, 5, (ny, nx)).astype(float) if t % 2 else rng.normal(size=(ny, nx))
        if t % 3 == 0:
            L[rng.random((ny, nx)) < 0.2] = np.nan
        idx, prom = prominences(L)
        assert dict(zip(idx.tolist(), prom.tolist())) == reference_prominences(L), t


def test_a_plane_is_smooth_and_has_one_minimum_on_its_border():
    a = np.linspace(-1, 1, 101)
    b = np.linspace(-2, 1, 81)
    A, B = np.meshgrid(a, b)
    L64 = 2.0 + 0.3 * A - 0.7 * B
    r = roughness(L64, a, b)
    assert r.rms_hessian < 1e-10 and r.cells == 99 * 79
    L32 = L64.astype(np.float32)
    dx = min(a[1] - a[0], b[1] - b[0])
    assert roughness(L32, a, b).rms_hessian < 16 * np.finfo(np.float32).eps * np.abs(L32).max() / dx ** 2
    m = local_minima(L64, a, b, 0.0)
    assert m.count == 1 and m.interior == 0 and bool(m.on_edge[0])
    assert (m.a[0], m.b[0]) == (a[0], b[-1]) and math.isinf(m.prominence[0])   # the lowest corner
    mn = grid_minimum(L64, a, b)
    assert (mn.row, mn.col, mn.on_edge) == (80, 0, True)


def test_roughness_grows_with_ripples_and_ignores_the_axes_turn():
    a = np.linspace(-2, 2, 201)
    A, B = np.meshgrid(a, a)
    bowl = 0.5 * (3.0 * A ** 2 + 1.0 * B ** 2)
    assert roughness(bowl, a, a).rms_hessian == pytest.approx(math.hypot(3.0, 1.0), rel=1e-9)
    values = [roughness(bowl + amp * np.sin(6 * A) * np.cos(5 * B), a, a).rms_hessian for amp in (0, .05, .1, .2)]
    assert values == sorted(values) and values[-1] > 2 * values[0]
    saddle = roughness(A ** 2 - B ** 2, a, a).rms_hessian                 # Laplacian 0: still curved
    twist = roughness(2 * A * B, a, a).rms_hessian                        # the saddle turned by 45 degrees
    assert saddle == pytest.approx(math.sqrt(8), rel=1e-9) and twist == pytest.approx(saddle, rel=1e-9)
    assert roughness(np.exp(bowl), a, a, log=True).rms_hessian == pytest.approx(math.hypot(3.0, 1.0), rel=1e-6)


# --------------------------------------------------------------------------- the path

def test_path_honesty():
    xy = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    off = np.array([0.0, 0.5, 2.0, 1.0])
    p = path_honesty(xy, off, steps=np.array([0, 10, 20, 30]))
    assert (p.max_offplane, p.index, p.step, p.a, p.b) == (2.0, 2, 20, 3.0, 4.0)
    assert p.mean_offplane == pytest.approx(0.875) and p.extent == pytest.approx(5.0)
    assert p.ratio == pytest.approx(0.4) and p.snapshots == 4
    d1, d2 = np.array([2.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])       # d1 twice as long: a counts double
    q = path_honesty(xy, off, gram=plane_gram(d1, d2))
    assert q.extent == pytest.approx(math.hypot(6.0, 4.0)) and q.step is None
    assert path_honesty(np.zeros((3, 2)), np.array([0.0, 1.0, 0.0])).ratio == math.inf


# --------------------------------------------------------------------------- all together

def test_measure_gives_every_figure_and_plain_json():
    c = 0.5
    d1, d2 = Q[:, 0], Q[:, 2]
    L, a, b = plane_grid(H_BOWL, c, d1, d2, n=61)
    xy = np.array([[1.0, 1.0], [0.5, 0.2], [0.0, 0.0]])
    f = measure(L, a, b, FigureOptions(convexity_k=2, convexity_iterations=6, trace_samples=8),
                hvp_at=bowl_hvp_at(H_BOWL, c), origin=torch.zeros(6, dtype=torch.float64), d1=d1, d2=d2,
                xy=xy, offplane=np.array([0.3, 0.1, 0.0]), steps=np.array([0, 5, 9]))
    assert f.top_eigenvalue.value == pytest.approx(4.0, abs=1e-8)
    assert f.convexity.ratio.shape == (2, 2) and f.path.step == 0
    doc = f.to_json()
    text = json.dumps(doc, allow_nan=False)
    assert "mask" not in text
    assert doc["minima"]["count"] == 1 and doc["minima"]["minima"][0]["prominence"] is None   # infinite
    assert doc["basin_absolute"]["area"] == pytest.approx(f.basin_absolute.area)
    assert set(f.arrays()) == {"basin_absolute", "basin_relative", "convexity_ratio", "convexity_lambda_min",
                               "convexity_lambda_max", "convexity_alpha", "convexity_beta"}
    grid_only = measure(L, a, b)
    assert grid_only.trace is None and grid_only.path is None
    json.dumps(grid_only.to_json(), allow_nan=False)
