"""Planes through weight space: direction normalization, PCA, projection, extents, snapshot steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compute import plane as planes
from compute.run.train import snapshot_steps
from tests.conftest import plane_spec as spec
from tests.conftest import plane_weights as weights

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def gaussian(w, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 5 for k, v in w.items()}


def test_filter_normalization():
    _, w = weights()
    d = planes.normalize_direction(gaussian(w, 1), w, "filter")
    assert d.keys() == w.keys()
    n_checked = 0
    for k, v in d.items():
        assert v.shape == w[k].shape
        if w[k].dim() >= 2:
            rows_d = v.reshape(v.shape[0], -1).norm(dim=1)
            rows_w = w[k].reshape(v.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(rows_d, rows_w, rtol=1e-5, atol=1e-7)
            # the direction is rescaled per row, not replaced by the weights
            assert not torch.allclose(v / rows_d[(...,) + (None,) * (v.dim() - 1)],
                                      w[k] / rows_w[(...,) + (None,) * (v.dim() - 1)], atol=1e-3)
            n_checked += 1
        else:
            assert torch.count_nonzero(v) == 0, f"{k}: biases get no direction"
    assert n_checked == 4


def test_layer_normalization():
    _, w = weights()
    d = planes.normalize_direction(gaussian(w, 2), w, "layer")
    for k, v in d.items():
        if w[k].dim() >= 2:
            assert v.norm().item() == pytest.approx(w[k].norm().item(), rel=1e-5)
            rows_d = v.reshape(v.shape[0], -1).norm(dim=1)
            rows_w = w[k].reshape(v.shape[0], -1).norm(dim=1)
            assert not torch.allclose(rows_d, rows_w, rtol=1e-2)     # whole tensors, not rows
        else:
            assert torch.count_nonzero(v) == 0


def test_weight_and_none_normalization():
    _, w = weights()
    g = gaussian(w, 3)
    dw = planes.normalize_direction(g, w, "weight")
    dn = planes.normalize_direction(g, w, "none")
    for k in w:
        if w[k].dim() >= 2:
            torch.testing.assert_close(dw[k], g[k] * w[k])
            torch.testing.assert_close(dn[k], g[k])
        else:
            assert torch.count_nonzero(dw[k]) == 0 and torch.count_nonzero(dn[k]) == 0
    with pytest.raises(ValueError, match="normalization"):
        planes.normalize_direction(g, w, "bogus")


def test_random_plane_is_seeded():
    model, _ = weights()
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    a1, a2, info = planes.random_plane(origin, 4, "filter")
    b1, b2, _ = planes.random_plane(origin, 4, "filter")
    c1, _, _ = planes.random_plane(origin, 5, "filter")
    f = planes.flatten
    assert torch.equal(f(a1), f(b1)) and torch.equal(f(a2), f(b2))
    assert not torch.allclose(f(a1), f(a2))
    assert not torch.allclose(f(a1), f(c1))
    assert f(a1).numel() == sum(p.numel() for p in model.parameters())
    # split undoes flatten, in the model's parameter order
    back = planes.split(model, f(a1))
    assert list(back) == [n for n, _ in model.named_parameters()]
    for k in back:
        assert torch.equal(back[k], a1[k])


def trajectory(T=25, P=60, seed=0):
    """Snapshots along two known directions with different spreads, plus a little noise."""
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(g.normal(size=(P, 3)))
    u1, u2, u3 = q.T
    t = np.linspace(0, 1, T)
    coef1 = 6 * (1 - t) ** 2 + 0.3 * g.normal(size=T)
    coef2 = 2 * np.sin(5 * t)
    final = g.normal(size=P)
    snaps = final + np.outer(coef1, u1) + np.outer(coef2, u2) + 0.05 * np.outer(g.normal(size=T), u3)
    snaps[-1] = final
    return torch.tensor(snaps, dtype=torch.float32), torch.tensor(final, dtype=torch.float32), u1, u2


def test_pca_plane_matches_numpy_svd():
    snaps, final, u1, u2 = trajectory()
    d1, d2, info = planes.pca_plane(snaps, final)
    m = (snaps - final).double().numpy()
    m = m - m.mean(axis=0)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    for d, v in ((d1, vt[0]), (d2, vt[1])):
        d = d.double().numpy()
        assert abs(np.linalg.norm(d) - 1) < 1e-6
        sign = np.sign(d @ v)
        np.testing.assert_allclose(sign * d, v, atol=1e-6)
    assert abs(d1.double() @ d2.double()) < 1e-6
    ratio = s ** 2 / (s ** 2).sum()
    np.testing.assert_allclose(info["explained_variance_ratio"], ratio[:2], rtol=1e-7)
    assert info["explained_variance_ratio"][0] > info["explained_variance_ratio"][1] > 0
    # and they span the plane the trajectory was built in
    U = np.stack([u1, u2], axis=1)
    for d in (d1, d2):
        assert np.linalg.norm(U.T @ d.double().numpy()) > 0.99


def test_project_recovers_coordinates_in_plane():
    snaps, final, _, _ = trajectory(seed=1)
    d1, d2, _ = planes.pca_plane(snaps, final)
    g = torch.Generator().manual_seed(0)
    ab = torch.rand(30, 2, generator=g, dtype=torch.float64) * 8 - 4
    pts = (final.double() + ab[:, :1] * d1.double() + ab[:, 1:] * d2.double()).float()
    xy, off = planes.project(pts, final, d1, d2)
    assert xy.shape == (30, 2) and off.shape == (30,)
    assert xy.dtype == np.float64 and off.dtype == np.float64
    np.testing.assert_allclose(xy, ab.numpy(), atol=1e-5)
    assert off.max() < 1e-5
    # the final weights are the origin
    xy0, off0 = planes.project(final[None], final, d1, d2)
    np.testing.assert_allclose(xy0, [[0.0, 0.0]], atol=1e-12)


def test_project_non_orthonormal_directions_and_offplane_distance():
    g = torch.Generator().manual_seed(3)
    P = 40
    origin = torch.randn(P, generator=g)
    d1 = torch.randn(P, generator=g) * 3.0            # not unit, not orthogonal (like random planes)
    d2 = torch.randn(P, generator=g) * 0.2 + 0.5 * d1
    A = torch.stack([d1, d2], 1).double()
    # a unit normal to the plane
    n = torch.randn(P, generator=g).double()
    n = n - A @ torch.linalg.lstsq(A, n[:, None]).solution[:, 0]
    n = n / n.norm()
    ab = torch.tensor([[1.5, -2.0], [-0.25, 0.75], [0.0, 0.0]], dtype=torch.float64)
    dist = torch.tensor([0.0, 2.5, 0.7], dtype=torch.float64)
    pts = origin.double() + ab @ A.T + dist[:, None] * n
    xy, off = planes.project(pts, origin, d1, d2)
    np.testing.assert_allclose(xy, ab.numpy(), atol=1e-5)
    np.testing.assert_allclose(off, dist.numpy(), atol=1e-5)


def test_extents_range_and_span():
    xy = np.array([[-3.0, 1.0], [5.0, 2.0]])
    assert planes.extents(spec(range=[[-1.0, 2.0], [0.5, 3.0]]), xy) == ((-1.0, 2.0), (0.5, 3.0))
    assert planes.extents(spec(span=2.5), xy) == ((-2.5, 2.5), (-2.5, 2.5))
    assert planes.extents(spec(span=[1.0, 4.0]), xy) == ((-1.0, 1.0), (-4.0, 4.0))
    # a random plane with neither: Li et al.'s [-1, 1], whatever the trajectory
    assert planes.extents(spec(method="random"), xy) == ((-1.0, 1.0), (-1.0, 1.0))
    assert planes.extents(spec(method="random", span=0.5), xy) == ((-0.5, 0.5), (-0.5, 0.5))


def test_extents_fit_the_trajectory_with_margin():
    xy = np.array([[-2.0, -1.0], [3.0, 0.5], [0.5, 0.0]])
    (a0, a1), (b0, b1) = planes.extents(spec(margin=0.5), xy)
    assert (a0, a1) == pytest.approx((-2.0 - 2.5, 3.0 + 2.5))
    assert (b0, b1) == pytest.approx((-1.0 - 0.75, 0.5 + 0.75))
    (a0, a1), (b0, b1) = planes.extents(spec(margin=0.0), xy)
    assert (a0, a1, b0, b1) == pytest.approx((-2.0, 3.0, -1.0, 0.5))


def test_extents_keep_origin_and_widen_a_thin_axis():
    # all points on one side: the origin (final weights) is still inside
    xy = np.array([[1.0, 1.0], [2.0, 3.0]])
    (a0, a1), (b0, b1) = planes.extents(spec(margin=0.0), xy)
    assert a0 <= 0 <= a1 and b0 <= 0 <= b1
    assert (a0, a1, b0, b1) == pytest.approx((0.0, 2.0, 0.0, 3.0))
    # a flat trajectory: the thin axis becomes a quarter of the wide one, centred
    xy = np.array([[-4.0, 0.1], [4.0, 0.1], [0.0, 0.1]])
    (a0, a1), (b0, b1) = planes.extents(spec(margin=0.1), xy)
    assert (a0, a1) == pytest.approx((-4.8, 4.8))
    assert (b1 - b0) == pytest.approx(2.0 * 1.2)
    assert (b0 + b1) / 2 == pytest.approx(0.05)
    for x, y in xy:
        assert a0 <= x <= a1 and b0 <= y <= b1


@pytest.mark.parametrize("steps,count,schedule", [
    (1, 3, "log"), (2, 3, "linear"), (10, 5, "log"), (10, 11, "log"), (10, 50, "linear"),
    (100, 20, "log"), (100, 20, "linear"), (1500, 240, "log"), (2000, 200, "linear"),
    (12345, 7, "log"), (1_000_000, 300, "log")])
def test_snapshot_steps(steps, count, schedule):
    s = snapshot_steps(steps, count, schedule)
    assert s.dtype.kind == "i"
    assert s[0] == 0 and s[-1] == steps
    assert len(s) == min(count, steps + 1)
    assert np.all(np.diff(s) > 0)


def test_snapshot_schedules():
    log = snapshot_steps(1000, 30, "log")
    lin = snapshot_steps(1000, 30, "linear")
    # log spacing is dense early, linear is even
    assert (log < 100).sum() > (lin < 100).sum()
    gaps = np.diff(lin)
    assert gaps.max() - gaps.min() <= 1
    assert np.all(np.diff(log)[1:] >= np.diff(log)[:-1] - 1)     # gaps (roughly) grow
