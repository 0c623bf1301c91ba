"""PCA and projection in column blocks (compute/plane/projection.py): the same results as a plain SVD and lstsq
on the whole trajectory, with the blocks forced small so every problem spans many of them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compute.plane import projection


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(autouse=True)
def blockwise(monkeypatch):
    """The blockwise methods at any size (small trajectories otherwise take the SVD of a copy)."""
    monkeypatch.setattr(projection, "SVD_ELEMENTS", 0)


@pytest.fixture(params=[None, 7 * 3], ids=["one-block", "many-blocks"])
def blocks(request, monkeypatch):
    """The default block size (these problems fit in one block) and tiny blocks of a few columns."""
    if request.param is not None:
        monkeypatch.setattr(projection, "BLOCK_ELEMENTS", request.param)
    return request.param


def reference_pca(snaps: torch.Tensor, final: torch.Tensor):
    """The plain method: the SVD of the whole centred trajectory, float64."""
    m = snaps.double().numpy() - final.double().numpy()
    m = m - m.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    return vt[:2], (s ** 2 / (s ** 2).sum())[:2]


def reference_project(points, origin, d1, d2):
    A = np.stack([d1.double().numpy(), d2.double().numpy()], axis=1)
    v = (points.double().numpy() - origin.double().numpy()).T
    coef = np.linalg.lstsq(A, v, rcond=None)[0]
    return coef.T, np.linalg.norm(v - A @ coef, axis=0)


def walk(T, P, seed, spreads=(5.0, 2.0, 0.5, 0.1)):
    """A trajectory with decreasing spreads along random directions, plus a little noise."""
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(g.normal(size=(P, len(spreads))))
    coef = g.normal(size=(T, len(spreads))) * np.asarray(spreads)
    final = g.normal(size=P)
    snaps = final + coef @ q.T + 1e-3 * g.normal(size=(T, P))
    snaps[-1] = final
    return torch.tensor(snaps, dtype=torch.float32), torch.tensor(final, dtype=torch.float32)


@pytest.mark.parametrize("T, P", [(12, 300), (40, 50), (25, 8), (3, 97)])
def test_pca_matches_svd(blocks, T, P):
    snaps, final = walk(T, P, seed=T + P)
    d1, d2, info = projection.pca_plane(snaps, final)
    vt, ratio = reference_pca(snaps, final)
    assert d1.dtype == d2.dtype == torch.float32 and d1.shape == d2.shape == (P,)
    for d, v in ((d1, vt[0]), (d2, vt[1])):
        d = d.double().numpy()
        sign = np.sign(d @ v)
        np.testing.assert_allclose(sign * d, v, rtol=0, atol=1e-6 * np.abs(v).max())
        assert abs(np.linalg.norm(d) - 1) < 1e-6
        assert d[np.argmax(np.abs(d))] > 0                    # the sign convention
    assert abs(float(d1.double() @ d2.double())) < 1e-6
    np.testing.assert_allclose(info["explained_variance_ratio"], ratio, rtol=1e-9)


def test_pca_sign_does_not_depend_on_the_blocks(monkeypatch):
    snaps, final = walk(30, 200, seed=5)
    d1, d2, _ = projection.pca_plane(snaps, final)
    monkeypatch.setattr(projection, "BLOCK_ELEMENTS", 30 * 9)
    e1, e2, _ = projection.pca_plane(snaps, final)
    torch.testing.assert_close(e1, d1, rtol=0, atol=1e-6)
    torch.testing.assert_close(e2, d2, rtol=0, atol=1e-6)


def test_pca_leaves_float64_snapshots_alone(blocks):
    snaps, final = walk(10, 40, seed=1)
    snaps = snaps.double()
    before = snaps.clone()
    projection.pca_plane(snaps, final.double())
    assert torch.equal(snaps, before)


def test_pca_of_a_line_and_of_a_point(blocks):
    g = torch.Generator().manual_seed(0)
    P = 30
    final, u = torch.randn(P, generator=g), torch.randn(P, generator=g)
    line = final + torch.linspace(-2, 1, 9)[:, None] * u
    d1, d2, info = projection.pca_plane(line, final)
    assert abs(abs(float(d1.double() @ u.double())) / float(u.double().norm()) - 1) < 1e-6
    assert abs(float(d1.double() @ d2.double())) < 1e-6 and abs(float(d2.double().norm()) - 1) < 1e-6
    assert info["explained_variance_ratio"][0] == pytest.approx(1.0)
    assert info["explained_variance_ratio"][1] == pytest.approx(0.0, abs=1e-9)
    # two snapshots: d1 along the segment, d2 a seeded random direction orthogonal to it
    d1, d2, info = projection.pca_plane(line[[0, -1]], final)
    assert abs(abs(float(d1.double() @ u.double())) / float(u.double().norm()) - 1) < 1e-6
    assert abs(float(d1.double() @ d2.double())) < 1e-6 and abs(float(d2.double().norm()) - 1) < 1e-6
    assert (d2 != 0).sum() > P // 2                           # spread over the weights, not one axis
    assert torch.equal(projection.pca_plane(line[[0, -1]], final)[1], d2)
    assert info["explained_variance_ratio"][1] == pytest.approx(0.0, abs=1e-9)
    # no movement at all: still two orthonormal directions (any), and no variance
    still = final.expand(5, P).clone()
    d1, d2, info = projection.pca_plane(still, final)
    assert torch.all(torch.isfinite(d1)) and torch.all(torch.isfinite(d2))
    assert float(d1.norm()) == pytest.approx(1.0) and float(d2.norm()) == pytest.approx(1.0)
    assert abs(float(d1 @ d2)) < 1e-7
    assert info["explained_variance_ratio"] == [0.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_project_matches_lstsq(blocks, dtype):
    g = torch.Generator().manual_seed(7)
    T, P = 17, 250
    origin = torch.randn(P, generator=g).to(dtype)
    d1 = (torch.randn(P, generator=g) * 3.0).to(dtype)                 # not unit, not orthogonal
    d2 = (torch.randn(P, generator=g) * 0.2 + 0.5 * d1).to(dtype)
    points = (origin + torch.randn(T, 2, generator=g, dtype=dtype) @ torch.stack([d1, d2])
              + 0.3 * torch.randn(T, P, generator=g, dtype=dtype))
    before = points.clone()
    xy, off = projection.project(points, origin, d1, d2)
    ref_xy, ref_off = reference_project(points, origin, d1, d2)
    assert xy.shape == (T, 2) and off.shape == (T,) and xy.dtype == off.dtype == np.float64
    np.testing.assert_allclose(xy, ref_xy, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(off, ref_off, rtol=1e-6)
    assert torch.equal(points, before)


def test_project_points_on_the_plane_and_the_origin(blocks):
    snaps, final = walk(20, 120, seed=3)
    d1, d2, _ = projection.pca_plane(snaps, final)
    ab = torch.tensor([[1.5, -2.0], [0.0, 0.0], [-0.25, 3.0]], dtype=torch.float64)
    pts = final.double() + ab @ torch.stack([d1, d2]).double()
    xy, off = projection.project(pts, final, d1, d2)
    np.testing.assert_allclose(xy, ab.numpy(), atol=1e-9)
    assert off.max() < 1e-9                                   # exact residuals: no cancellation
    xy, off = projection.project(snaps, final, d1, d2)
    ref_xy, ref_off = reference_project(snaps, final, d1, d2)
    np.testing.assert_allclose(xy, ref_xy, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(off, ref_off, rtol=1e-6)


def test_project_with_a_zero_direction(blocks):
    """A singular A^T A: the minimum-norm solution, like lstsq (the zero direction gets 0)."""
    g = torch.Generator().manual_seed(2)
    P = 60
    origin, d1 = torch.randn(P, generator=g), torch.randn(P, generator=g)
    pts = origin + torch.tensor([[2.0], [-1.0]]) * d1
    xy, off = projection.project(pts, origin, d1, torch.zeros(P))
    np.testing.assert_allclose(xy, [[2.0, 0.0], [-1.0, 0.0]], atol=1e-6)
    assert off.max() < 1e-5
