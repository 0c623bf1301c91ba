"""Every plane method, each checked against its definition: include_biases and orthogonalize for
random planes, the Hessian's eigenvectors against the full Hessian, checkpoint and interpolation
planes through their snapshots, default extents, and the pipeline on a tiny scene for each
method.  The scene's messages for bad plane inputs are tests/studio/scene/test_landscape.py's."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compute.plane import directions
from compute import plane as planes
from compute.models import mlp
from studio import cache
from studio.scene import load_scene
from tests.conftest import plane_spec as spec
from tests.conftest import plane_weights as weights

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def group_norms(v, how):
    return directions._groups(v, how).norm(dim=1)


def flat(d):
    return planes.flatten(d).double()


def cosine(u, v):
    return float(u @ v / (u.norm() * v.norm()))


# --------------------------------------------------------------------------- random: include_biases

@pytest.mark.parametrize("how", ["filter", "layer"])
@pytest.mark.parametrize("include_biases", [False, True])
def test_filter_norms_with_and_without_biases(how, include_biases):
    _, w = weights()
    d1, d2, _ = planes.random_plane(w, 7, how, include_biases)
    for d in (d1, d2):
        for k, v in d.items():
            if w[k].dim() >= 2:
                torch.testing.assert_close(group_norms(v, how), group_norms(w[k], how), rtol=1e-5, atol=1e-7)
            elif include_biases:
                # a 1-D parameter is one group: the whole vector has the parameter's norm
                assert v.norm().item() == pytest.approx(w[k].norm().item(), rel=1e-5)
                assert not torch.allclose(v.abs(), w[k].abs(), rtol=1e-2)       # random, not a copy
            else:
                assert torch.count_nonzero(v) == 0, f"{k}: biases get no direction"
    # the weight parts do not depend on include_biases: the same Gaussian draws
    e1, _, _ = planes.random_plane(w, 7, how, not include_biases)
    for k in w:
        if w[k].dim() >= 2:
            assert torch.equal(d1[k], e1[k])


def test_include_biases_weight_and_none():
    _, w = weights()
    g = {k: torch.randn(v.shape, generator=torch.Generator().manual_seed(1)) for k, v in w.items()}
    for how, expect in (("weight", lambda k: g[k] * w[k]), ("none", lambda k: g[k])):
        d = planes.normalize_direction(g, w, how, include_biases=True)
        for k in w:
            torch.testing.assert_close(d[k], expect(k))


# --------------------------------------------------------------------------- random: orthogonalize

@pytest.mark.parametrize("how", ["filter", "layer", "weight", "none"])
@pytest.mark.parametrize("include_biases", [False, True])
def test_orthogonalize(how, include_biases):
    _, w = weights()
    p1, p2, plain = planes.random_plane(w, 3, how, include_biases)
    d1, d2, info = planes.random_plane(w, 3, how, include_biases, orthogonalize=True)
    # d1 is untouched; the cosine before is the plain plane's, after it is ~0, and both are reported
    assert torch.equal(flat(d1), flat(p1))
    assert abs(plain["cosine"]) > 1e-3
    assert info["cosine_before_orthogonalization"] == pytest.approx(plain["cosine"], rel=1e-9)
    assert abs(info["cosine"]) < 1e-6
    assert abs(cosine(flat(d1), flat(d2))) < 1e-6
    assert info["cosine"] == pytest.approx(cosine(flat(d1), flat(d2)), abs=1e-9)
    # ... and the normalization is intact
    for k in w:
        if w[k].dim() < 2 and not include_biases:
            assert torch.count_nonzero(d2[k]) == 0
        elif how in ("filter", "layer"):
            torch.testing.assert_close(group_norms(d2[k], how), group_norms(w[k], how), rtol=1e-5, atol=1e-6)
    if how == "weight":
        # d2 = (g - c * d1*w) * w: it differs from the plain direction by a multiple of d1*w*w
        z = flat({k: d1[k] * w[k] * w[k] * (w[k].dim() >= 2 or include_biases) for k in w})
        diff = flat(d2) - flat(p2)
        assert abs(abs(cosine(diff, z)) - 1) < 1e-6
    if how == "none":
        # plain Gram-Schmidt: the change is along d1
        assert abs(abs(cosine(flat(d2) - flat(p2), flat(d1))) - 1) < 1e-6
    # the change is small: the direction stays close to the one drawn (for ``weight`` the Gaussian
    # is what changes, by a multiple of d1*w, so the direction moves a little more)
    assert cosine(flat(d2), flat(p2)) > (0.9 if how == "weight" else 0.99)
    # seeded and deterministic
    _, again, _ = planes.random_plane(w, 3, how, include_biases, orthogonalize=True)
    assert torch.equal(flat(d2), flat(again))


# --------------------------------------------------------------------------- hessian

def tiny_problem():
    torch.manual_seed(0)
    model = mlp(2, [6], 3, "tanh").double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    # train a little so the point is near (not at) a minimum
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    w = planes.flatten({k: v.detach() for k, v in model.named_parameters()})
    return model, w, x, y


def full_hessian(model, w, x, y):
    from torch.func import functional_call
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]

    def f(v):
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(v, sizes), shapes)}
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(f, w.double()).numpy()


def test_hessian_eigenvectors_match_the_full_hessian():
    model, w, x, y = tiny_problem()
    H = full_hessian(model, w, x, y)
    lam, U = np.linalg.eigh(H)
    tol = 1e-6
    d1, d2, info = planes.hessian_plane(model, w.float(), x.float(), y, iterations=200, tolerance=tol, seed=0)
    assert info["converged"] and info["lanczos_steps"] <= min(200, w.numel())
    assert info["hessian_vector_products"] == info["lanczos_steps"] + 2
    scale = np.abs(lam).max()
    for v, ev, i in ((d1, info["eigenvalues"][0], -1), (d2, info["eigenvalues"][1], -2)):
        v = v.double().numpy()
        assert abs(np.linalg.norm(v) - 1) < 1e-6
        # H v = lambda v, with the full Hessian, within the tolerance asked for
        assert np.linalg.norm(H @ v - ev * v) <= 2 * tol * scale
        assert ev == pytest.approx(lam[i], rel=1e-6, abs=1e-9)
        assert abs(v @ U[:, i]) > 1 - 1e-4          # the eigenvector itself (the gap is wide here)
    assert info["eigenvalues"][0] >= info["eigenvalues"][1]
    assert abs(float(d1.double() @ d2.double())) < 1e-6
    assert max(info["residuals"]) <= tol
    assert info["min_eigenvalue_estimate"] >= lam[0] - 1e-9
    # seeded: the same vectors again; a fixed sign (largest entry positive)
    e1, e2, _ = planes.hessian_plane(model, w.float(), x.float(), y, iterations=200, tolerance=tol, seed=0)
    assert torch.equal(d1, e1) and torch.equal(d2, e2)
    assert d1[d1.abs().argmax()] > 0


def symmetric_operator(eigenvalues, seed=0):
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(g.normal(size=(len(eigenvalues), len(eigenvalues))))
    A = torch.tensor(q @ np.diag(eigenvalues) @ q.T)
    return A, (lambda v: A @ v), q


def test_hessian_top2_picks_largest_algebraic_when_a_negative_one_dominates():
    ev = np.concatenate([[-9.0, -4.0, 3.0, 2.0], np.linspace(-1, 1, 56)])
    A, hvp, q = symmetric_operator(ev)
    v1, v2, info = planes.hessian_top2(hvp, 60, iterations=60, tolerance=1e-8, seed=0)
    assert info["eigenvalues"] == pytest.approx([3.0, 2.0], rel=1e-7)
    assert abs(float(v1 @ torch.tensor(q[:, 2]))) > 1 - 1e-6
    assert abs(float(v2 @ torch.tensor(q[:, 3]))) > 1 - 1e-6
    assert info["negative_curvature_dominates"] is True
    assert info["min_eigenvalue_estimate"] == pytest.approx(-9.0, rel=1e-6)


def test_hessian_top2_stops_at_the_iteration_limit_and_on_an_invariant_space():
    ev = np.linspace(1.0, 1.3, 80)                    # tightly clustered: slow to converge
    _, hvp, _ = symmetric_operator(ev, seed=2)
    _, _, info = planes.hessian_top2(hvp, 80, iterations=5, tolerance=1e-12, seed=0)
    assert info["lanczos_steps"] == 5 and info["converged"] is False
    # a rank-3 operator: the Krylov space closes after three steps, the pairs are exact
    _, hvp, q = symmetric_operator(np.concatenate([[5.0, 4.0, 1.0], np.zeros(17)]), seed=3)
    v1, v2, info = planes.hessian_top2(hvp, 20, iterations=50, tolerance=1e-14, seed=0)
    assert info["converged"] and info["lanczos_steps"] <= 4
    assert info["eigenvalues"] == pytest.approx([5.0, 4.0], rel=1e-10)


def test_curvature_span():
    # the quadratic model climbs back by the depth of training at the edge
    s = planes.curvature_span(2.0, 0.7, 0.1)
    assert 0.5 * 2.0 * s ** 2 == pytest.approx(0.6)
    assert planes.curvature_span(2.0, 0.7, 0.7) == pytest.approx(np.sqrt(2 * 0.035 / 2.0))  # at least 5%
    assert planes.curvature_span(-1.0, 0.7, 0.1) is None


# --------------------------------------------------------------------------- checkpoints, interpolate

def snapshots(seed=0, T=12):
    """A trajectory of an MLP's weights: (model, params (T, P), steps)."""
    torch.manual_seed(seed)
    model = mlp(2, [8, 8], 3, "tanh")
    P = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(seed)
    final = torch.randn(P, generator=g)
    walk = torch.cumsum(torch.randn(T, P, generator=g) * 0.3, dim=0)
    params = final + walk - walk[-1]
    steps = np.array([0, 1, 2, 4, 8, 16, 32, 64, 100, 150, 200, 300][:T], dtype=np.int64)
    return model, params, steps


def reconstruct(origin, d1, d2, xy):
    return origin.double() + xy[0] * d1.double() + xy[1] * d2.double()


def check_marks_on_plane(params, steps, origin, d1, d2, info):
    for m in info["marks"]:
        i = int(np.nonzero(steps == m["step"])[0][0])
        snap = params[i].double()
        err = (reconstruct(origin, d1, d2, m["xy"]) - snap).norm() / snap.norm()
        assert err < 1e-5, m
        # and least squares puts the snapshot at the same coordinates
        xy, off = planes.project(params[i:i + 1], origin, d1, d2)
        np.testing.assert_allclose(xy[0], m["xy"], atol=1e-5)
        assert off[0] < 1e-4


def test_three_checkpoints():
    model, params, steps = snapshots()
    # final weights among them: the origin, whatever the order; 30 -> the snapshot at 32
    origin, d1, d2, info = planes.checkpoint_plane(params, steps, [4, 300, 30], model, 0)
    assert info["origin_step"] == 300 and torch.equal(origin, params[-1])
    assert [m["step"] for m in info["marks"]] == [4, 300, 32]
    assert [m["requested_step"] for m in info["marks"]] == [4, 300, 30]
    assert info["marks"][1]["xy"] == [0.0, 0.0]
    a, b = info["marks"][0]["xy"]
    assert a == pytest.approx(float((params[3] - params[-1]).double().norm()), rel=1e-6) and abs(b) < 1e-9
    assert info["marks"][2]["xy"][1] > 0
    # orthonormal directions: plane units are weight-space distance
    for v in (d1, d2):
        assert float(v.double().norm()) == pytest.approx(1.0, abs=1e-6)
    assert abs(float(d1.double() @ d2.double())) < 1e-6
    check_marks_on_plane(params, steps, origin, d1, d2, info)
    # without the final weights: the first listed is the origin
    origin, d1, d2, info = planes.checkpoint_plane(params, steps, [16, 2, 100], model, 0)
    assert info["origin_step"] == 16 and torch.equal(origin, params[5])
    assert info["marks"][0]["xy"] == [0.0, 0.0]
    check_marks_on_plane(params, steps, origin, d1, d2, info)


def test_two_checkpoints_with_a_random_second_axis():
    model, params, steps = snapshots(1)
    origin, d1, d2, info = planes.checkpoint_plane(params, steps, [8, 150], model, seed=5)
    assert info["origin_step"] == 8 and [m["step"] for m in info["marks"]] == [8, 150]
    assert info["marks"][1]["xy"][0] > 0 and abs(info["marks"][1]["xy"][1]) < 1e-9
    for v in (d1, d2):
        assert float(v.double().norm()) == pytest.approx(1.0, abs=1e-6)
    assert abs(float(d1.double() @ d2.double())) < 1e-6
    check_marks_on_plane(params, steps, origin, d1, d2, info)
    # d2 is filter-normalized relative to the origin, then scaled as a whole: the ratios of its
    # filter norms to the origin's are one common factor; biases get none
    o, d = planes.split(model, origin), planes.split(model, d2)
    ratios = torch.cat([d[k].norm(dim=1) / o[k].norm(dim=1) for k in o if o[k].dim() == 2])
    torch.testing.assert_close(ratios, torch.full_like(ratios, float(ratios.mean())), rtol=1e-4, atol=0)
    assert all(torch.count_nonzero(d[k]) == 0 for k in o if o[k].dim() == 1)
    # seeded
    _, _, e2, _ = planes.checkpoint_plane(params, steps, [8, 150], model, seed=5)
    _, _, f2, _ = planes.checkpoint_plane(params, steps, [8, 150], model, seed=6)
    assert torch.equal(d2, e2) and not torch.allclose(d2, f2)


def test_checkpoint_errors():
    model, params, steps = snapshots()
    with pytest.raises(ValueError, match=r"steps 63 and 64 both fall on the snapshot at step 64.*train.snapshots"):
        planes.checkpoint_plane(params, steps, [0, 63, 64], model, 0)
    line = params[0] + torch.linspace(0, 1, len(steps))[:, None] * (params[-1] - params[0])
    with pytest.raises(ValueError, match="lie on one line"):
        planes.checkpoint_plane(line, steps, [0, 100, 300], model, 0)
    same = params.clone()
    same[1] = same[0]
    with pytest.raises(ValueError, match="are equal"):
        planes.checkpoint_plane(same, steps, [0, 1], model, 0)
    with pytest.raises(ValueError, match="are equal"):
        planes.interpolate_plane(same, steps, [0, 1], model, 0)


@pytest.mark.parametrize("include_biases", [False, True])
def test_interpolate(include_biases):
    model, params, steps = snapshots(2)
    origin, d1, d2, info = planes.interpolate_plane(params, steps, [2, 200], model, 3, "filter", include_biases)
    A, B = params[2], params[10]
    assert torch.equal(origin, A) and info["origin_step"] == 2
    assert [(m["step"], m["xy"]) for m in info["marks"]] == [(2, [0.0, 0.0]), (200, [1.0, 0.0])]
    # A at (0, 0), B at (1, 0): by construction and by least squares
    torch.testing.assert_close(origin + d1, B, rtol=0, atol=1e-6)
    xy, off = planes.project(torch.stack([A, B]), origin, d1, d2)
    np.testing.assert_allclose(xy, [[0, 0], [1, 0]], atol=1e-6)
    assert off.max() < 1e-5
    assert info["distance"] == pytest.approx(float((B - A).double().norm()), rel=1e-6)
    # d2: exactly orthogonal to the segment, filter-normalized relative to A
    assert abs(info["cosine"]) < 1e-6 and abs(cosine(d1.double(), d2.double())) < 1e-6
    a, d = planes.split(model, A), planes.split(model, d2)
    for k in a:
        if a[k].dim() >= 2:
            torch.testing.assert_close(d[k].norm(dim=1), a[k].norm(dim=1), rtol=1e-5, atol=1e-7)
        elif include_biases:
            assert d[k].norm().item() == pytest.approx(a[k].norm().item(), rel=1e-5)
        else:
            assert torch.count_nonzero(d[k]) == 0
    check_marks_on_plane(params, steps, origin, d1, d2, info)


# --------------------------------------------------------------------------- extents

def test_default_extents_for_every_method_and_explicit_ones_win():
    xy = np.array([[-0.4, 0.1], [0.2, 0.3], [0.0, 0.0]])
    marks = np.array([[1.5, 0.0], [0.0, 0.0], [0.7, 0.9]])
    assert planes.extents(spec(method="random"), xy) == ((-1.0, 1.0), (-1.0, 1.0))
    assert planes.extents(spec(method="interpolate"), xy, marks[:2]) == ((-0.5, 1.5), (-1.0, 1.0))
    # hessian: a square, the larger of the curvature's reach and the trajectory's (with margin)
    assert planes.extents(spec(method="hessian"), xy, None, 2.0) == ((-2.0, 2.0), (-2.0, 2.0))
    h = 0.4 * 1.35
    (a0, a1), (b0, b1) = planes.extents(spec(method="hessian"), xy, None, 0.1)
    assert (a0, a1, b0, b1) == pytest.approx((-h, h, -h, h))
    assert planes.extents(spec(method="hessian"), None, None, None) == ((-1.0, 1.0), (-1.0, 1.0))
    # checkpoints: the marks and the trajectory, grown by the margin
    (a0, a1), (b0, b1) = planes.extents(spec(method="checkpoints", margin=0.0), xy, marks)
    assert (a0, a1, b0, b1) == pytest.approx((-0.4, 1.5, 0.0, 0.9))
    (a0, a1), (b0, b1) = planes.extents(spec(method="checkpoints", margin=0.5), xy, marks)
    assert (a0, a1, b0, b1) == pytest.approx((-0.4 - 0.95, 1.5 + 0.95, -0.45, 1.35))
    # pca fits the trajectory alone
    (a0, a1), (b0, b1) = planes.extents(spec(method="pca", margin=0.0), xy)
    assert (a0, a1, b0, b1) == pytest.approx((-0.4, 0.2, 0.0, 0.3))
    for method in ("pca", "random", "hessian", "checkpoints", "interpolate"):
        assert planes.extents(spec(method=method, span=0.3), xy, marks, 5.0) == ((-0.3, 0.3), (-0.3, 0.3))
        assert planes.extents(spec(method=method, span=[0.3, 2.0]), xy, marks, 5.0) == ((-0.3, 0.3), (-2.0, 2.0))
        r = [[-3.0, 1.0], [0.5, 2.0]]
        assert planes.extents(spec(method=method, range=r), xy, marks, 5.0) == ((-3.0, 1.0), (0.5, 2.0))


# --------------------------------------------------------------------------- the pipeline, each method

TINY = """
title: tiny
landscape:
  data: {samples: 256}
  model: {widths: [12, 12]}
  train: {steps: 60, snapshots: 16}
  plane: PLANE
  grid: {resolution: [16, 12], eval_samples: 64}
"""

PLANES = {
    "pca": "{method: pca}",
    "random": "{method: random, include_biases: true, orthogonalize: true, seed: 3}",
    "hessian": "{method: hessian, hessian: {iterations: 60, tolerance: 1.0e-5, samples: 48}}",
    "checkpoints": "{method: checkpoints, checkpoints: [0, 12, 60]}",
    "checkpoints2": "{method: checkpoints, checkpoints: [3, 30]}",
    "interpolate": "{method: interpolate, checkpoints: [0, 60]}",
}


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    from compute.pipeline import run
    tmp = tmp_path_factory.mktemp("methods")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    try:
        for name, plane in PLANES.items():
            p = tmp / f"{name}.yaml"
            p.write_text(textwrap.dedent(TINY).replace("PLANE", plane))
            scene = load_scene(p)
            run(scene, tmp / "cache", device="cpu", progress=False)
            out[name] = cache.read(tmp / "cache", scene.cache_key())
    finally:
        torch.set_num_threads(n)
    return out


@pytest.mark.parametrize("name", list(PLANES))
def test_pipeline_writes_each_method(entries, name):
    ls = entries[name]
    m = ls.meta
    info = m["plane"]
    method = name.rstrip("2")
    assert info["method"] == method
    assert ls.loss.shape == (12, 16) and np.all(np.isfinite(ls.loss))
    assert info["extent"] == [[ls.alpha[0], ls.alpha[-1]], [ls.beta[0], ls.beta[-1]]]
    p = ls.paths["training"]
    assert p.xy.shape == (16, 2) and np.all(np.isfinite(p.xy)) and np.all(p.offplane >= 0)
    (a0, a1), (b0, b1) = info["extent"]
    if method in ("pca", "hessian", "checkpoints"):
        # the default extents hold the whole projected trajectory
        assert np.all((p.xy[:, 0] >= a0) & (p.xy[:, 0] <= a1) & (p.xy[:, 1] >= b0) & (p.xy[:, 1] <= b1))
    if method in ("pca", "random", "hessian"):
        assert info["origin_step"] == 60
        np.testing.assert_allclose(p.xy[-1], [0, 0], atol=1e-5)
        assert p.surface_loss[-1] == pytest.approx(p.loss[-1], rel=1e-4)
    if method == "pca":
        assert len(info["explained_variance_ratio"]) == 2
    if method == "random":
        assert abs(info["cosine"]) < 1e-6 and abs(info["cosine_before_orthogonalization"]) > 1e-4
        assert (a0, a1, b0, b1) == (-1.0, 1.0, -1.0, 1.0)
    if method == "hessian":
        assert info["converged"] and info["samples"] == 48
        assert info["eigenvalues"][0] >= info["eigenvalues"][1] and info["eigenvalues"][0] > 0
        assert 2 <= info["lanczos_steps"] <= 60 and max(info["residuals"]) <= 1e-5
        assert info["curvature_span"] > 0 and a1 >= info["curvature_span"] - 1e-12
        assert (a0, b0, b1) == (-a1, -a1, a1)
        assert info["d1_norm"] == pytest.approx(1, abs=1e-5) and info["d2_norm"] == pytest.approx(1, abs=1e-5)
    if method in ("checkpoints", "interpolate"):
        marks = info["marks"]
        assert [m_["requested_step"] for m_ in marks] == {"checkpoints": [0, 12, 60], "checkpoints2": [3, 30],
                                                         "interpolate": [0, 60]}[name]
        for mk in marks:
            # each mark is a snapshot of the trajectory, on the plane, where the stored path puts it
            i = int(np.nonzero(p.step == mk["step"])[0][0])
            np.testing.assert_allclose(p.xy[i], mk["xy"], atol=1e-5)
            assert p.offplane[i] < 1e-4
            assert p.surface_loss[i] == pytest.approx(p.loss[i], rel=1e-4)
            assert a0 <= mk["xy"][0] <= a1 and b0 <= mk["xy"][1] <= b1
        origin = [mk for mk in marks if mk["xy"] == [0.0, 0.0]]
        assert len(origin) == 1 and origin[0]["step"] == info["origin_step"]
        assert info["origin_step"] == {"checkpoints": 60, "checkpoints2": 3, "interpolate": 0}[name]
    if method == "interpolate":
        assert [mk["xy"] for mk in info["marks"]] == [[0.0, 0.0], [1.0, 0.0]]
        assert (a0, a1, b0, b1) == (-0.5, 1.5, -1.0, 1.0)
        assert info["d1_norm"] == pytest.approx(info["distance"], rel=1e-6)
