"""The batched grid engine against the plain one-point-at-a-time reference."""
from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from compute.data import spirals
from compute.engine import GridEngine, loss_fn_on_plane, reference_loss
from compute.plane import Plane
from compute.models import mlp

pytestmark = pytest.mark.usefixtures("torch_one_thread")


MODELS = [  # (activation, hidden widths, classes)
    ("relu", [16, 16], 2),
    ("relu", [12, 10, 8], 3),
    ("tanh", [16, 16], 3),
    ("tanh", [12, 10, 8], 2),
    ("gelu", [10, 10], 2),
]


def setup(activation, widths, classes, seed=0, n=200, scale=0.5):
    torch.manual_seed(seed)
    model = mlp(2, widths, classes, activation)
    x, y = spirals(n, classes, seed=seed + 1)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    g = torch.Generator().manual_seed(seed + 2)
    # raw Gaussian directions, biases included, so every parameter moves
    d1 = {k: scale * torch.randn(v.shape, generator=g) for k, v in origin.items()}
    d2 = {k: scale * torch.randn(v.shape, generator=g) for k, v in origin.items()}
    return model, Plane(origin, d1, d2), x, y


def random_points(k=36, seed=3, lim=2.0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(k, generator=g) * 2 - 1) * lim
    b = (torch.rand(k, generator=g) * 2 - 1) * lim
    a[0], b[0] = 0.0, 0.0
    return a, b


def references(model, plane, a, b, x, y):
    ref32 = np.array([reference_loss(model, plane, float(p), float(q), x, y) for p, q in zip(a, b)])
    m64 = copy.deepcopy(model).double()
    p64 = Plane(*({k: v.double() for k, v in d.items()} for d in (plane.origin, plane.d1, plane.d2)))
    ref64 = np.array([reference_loss(m64, p64, float(p), float(q), x.double(), y) for p, q in zip(a, b)])
    return ref32, ref64


def assert_close_to_reference(got, ref32, ref64):
    got = got.double().numpy()
    assert got.shape == ref32.shape
    assert np.all(np.isfinite(got))
    tol = np.maximum(1e-4 * np.abs(ref32), 1e-5)
    bad = np.abs(got - ref32) > tol
    assert not bad.any(), f"engine vs reference: {got[bad]} != {ref32[bad]}"
    # the float32 engine is about as close to the float64 truth as the float32 reference is
    err_engine = np.abs(got - ref64).max()
    err_ref = np.abs(ref32 - ref64).max()
    assert err_engine <= 10 * err_ref + 1e-6, (err_engine, err_ref)


@pytest.mark.parametrize("activation,widths,classes", MODELS)
@pytest.mark.parametrize("chunk", [None, 7])
def test_linear_engine_matches_reference(activation, widths, classes, chunk):
    model, plane, x, y = setup(activation, widths, classes)
    eng = GridEngine(model, plane, x, y, chunk=chunk)
    assert eng.method == "linear"
    if chunk:
        assert eng.chunk == chunk            # 36 points: several chunks and a short last one
    a, b = random_points()
    got = eng.losses(a, b)
    assert_close_to_reference(got, *references(model, plane, a, b, x, y))


@pytest.mark.parametrize("activation,widths,classes", MODELS[:3])
def test_vmap_engine_matches_reference(activation, widths, classes):
    model, plane, x, y = setup(activation, widths, classes, seed=5)
    eng = GridEngine(model, plane, x, y, method="vmap", chunk=10)
    assert eng.method == "vmap"
    a, b = random_points(seed=7)
    assert_close_to_reference(eng.losses(a, b), *references(model, plane, a, b, x, y))


def test_no_hidden_layer():
    model, plane, x, y = setup("tanh", [], 3)
    eng = GridEngine(model, plane, x, y, chunk=5)
    assert eng.method == "linear"
    a, b = random_points(seed=11)
    assert_close_to_reference(eng.losses(a, b), *references(model, plane, a, b, x, y))


def test_other_models_take_the_general_path():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 12), nn.Tanh(), nn.Linear(12, 3))   # torch's Tanh: not an Activation
    x, y = spirals(150, 3, seed=2)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1 = {k: torch.randn_like(v) * 0.4 for k, v in origin.items()}
    d2 = {k: torch.randn_like(v) * 0.4 for k, v in origin.items()}
    plane = Plane(origin, d1, d2)
    eng = GridEngine(model, plane, x, y)
    assert eng.method == "graph"
    with pytest.raises(ValueError, match="linear"):
        GridEngine(model, plane, x, y, method="linear")
    a, b = random_points(seed=13)
    assert_close_to_reference(eng.losses(a, b), *references(model, plane, a, b, x, y))


def test_origin_is_the_models_loss():
    model, plane, x, y = setup("tanh", [16, 16], 2)
    expected = nn.functional.cross_entropy(model(x), y).item()      # model still holds the origin
    eng = GridEngine(model, plane, x, y)
    got = eng.losses(torch.zeros(3), torch.zeros(3))
    assert torch.allclose(got, torch.full((3,), expected), rtol=1e-5)
    # and the differentiable restriction to the plane agrees
    f = loss_fn_on_plane(model, plane, x, y)
    assert f(torch.tensor([0.3, -0.7])).item() == pytest.approx(
        eng.losses(torch.tensor([0.3]), torch.tensor([-0.7])).item(), rel=1e-5)


@pytest.mark.parametrize("start,rows_per_block", [(0, None), (0, 3), (4, 3), (5, 1), (10, 4)])
def test_rows_blocks(start, rows_per_block):
    model, plane, x, y = setup("relu", [12, 10], 3)
    eng = GridEngine(model, plane, x, y, chunk=16)
    nx, ny = 13, 11
    alpha = torch.linspace(-1.5, 1.0, nx)
    beta = torch.linspace(-0.5, 2.0, ny)
    A, B = torch.meshgrid(alpha, beta, indexing="xy")                 # (ny, nx): row j is beta[j]
    full = eng.losses(A.reshape(-1), B.reshape(-1)).reshape(ny, nx)
    firsts, blocks = [], []
    for j, block in eng.rows(alpha, beta, start=start, rows_per_block=rows_per_block):
        firsts.append(j)
        blocks.append(block)
        assert block.ndim == 2 and block.shape[1] == nx
        if rows_per_block:
            assert block.shape[0] == min(rows_per_block, ny - j)
    assert firsts[0] == start
    assert firsts == sorted(firsts)
    assert all(j + b.shape[0] == k for j, b, k in zip(firsts, blocks, firsts[1:] + [ny]))   # contiguous, to the end
    got = torch.cat(blocks)
    assert got.shape == (ny - start, nx)
    assert torch.allclose(got, full[start:], rtol=1e-6, atol=1e-7)
    # spot-check the orientation against the reference: row j is beta[j], column i is alpha[i]
    i, j = 2, ny - 1
    ref = reference_loss(model, plane, float(alpha[i]), float(beta[j]), x, y)
    assert got[j - start, i].item() == pytest.approx(ref, rel=1e-4, abs=1e-5)


def test_rows_past_the_end_is_empty():
    model, plane, x, y = setup("relu", [8], 2)
    eng = GridEngine(model, plane, x, y)
    assert list(eng.rows(torch.linspace(0, 1, 5), torch.linspace(0, 1, 4), start=4)) == []


@pytest.mark.parametrize("method", ["linear", "vmap"])
@pytest.mark.parametrize("activation,widths", [("relu", [16, 16]), ("tanh", [16, 16]), ("tanh", [])])
def test_divergent_points_give_nonfinite_values_not_errors(method, activation, widths):
    model, plane, x, y = setup(activation, widths, 3)
    huge = Plane(plane.origin, {k: torch.full_like(v, 1e30) for k, v in plane.d1.items()},
                 {k: torch.full_like(v, -1e30) for k, v in plane.d2.items()})
    eng = GridEngine(model, huge, x, y, method=method, chunk=4)
    a = torch.tensor([0.0, 1e10, -1e10, 0.0, 3e9, 1e12, 0.0])
    b = torch.tensor([0.0, 0.0, 1e10, 0.0, -3e9, 1e12, 0.0])
    got = eng.losses(a, b)
    assert got.shape == (7,)
    far = torch.tensor([False, True, True, False, True, True, False])
    assert not torch.isfinite(got[far]).any(), got
    # a diverged point does not spoil its neighbours in the same chunk
    expected = reference_loss(model, plane, 0.0, 0.0, x, y)
    assert torch.allclose(got[~far], torch.full((3,), expected), rtol=1e-5)
    # the row iterator goes through them too
    rows = list(eng.rows(torch.tensor([0.0, 1e10]), torch.tensor([0.0, 1e10, -1e11])))
    grid = torch.cat([blk for _, blk in rows])
    assert grid.shape == (3, 2)
    assert torch.isfinite(grid[0, 0]) and not torch.isfinite(grid[0, 1]) and not torch.isfinite(grid[1:]).any()


# ---------------------------------------------------------------- ConvNet path, BatchNorm, precision

def _conv_case(batchnorm: bool, seed: int = 0):
    from compute.models import convnet
    torch.manual_seed(seed)
    m = convnet(3, 8, [6, 8], 5, "relu", 1, batchnorm).eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 2.0)
    x = torch.randn(24, 3, 8, 8)
    y = torch.randint(0, 5, (24,))
    o = {k: v.detach().clone() for k, v in m.named_parameters()}
    d1 = {k: torch.randn_like(v) * 0.2 for k, v in o.items()}
    d2 = {k: torch.randn_like(v) * 0.2 for k, v in o.items()}
    return m, Plane(o, d1, d2), x, y


@pytest.mark.parametrize("bn_mode", ["running", "batch"])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_conv_path_matches_reference(batchnorm, bn_mode):
    m, pl, x, y = _conv_case(batchnorm)
    e = GridEngine(m, pl, x, y, chunk=5, batchnorm=bn_mode)
    assert e.method == "conv"
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(17, generator=g), torch.randn(17, generator=g)
    got = e.losses(a, b)
    ref = torch.tensor([reference_loss(m, pl, a[i].item(), b[i].item(), x, y, batchnorm=bn_mode)
                        for i in range(17)])
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    if batchnorm:
        # the two BatchNorm modes really differ, and the reference left the running statistics alone
        other = GridEngine(m, pl, x, y, chunk=5, batchnorm="running" if bn_mode == "batch" else "batch")
        assert (other.losses(a, b) - got).abs().max() > 1e-3
        bn = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)][0]
        assert bn.running_var.min() >= 0.5 and bn.momentum == 0.1 and not bn.training


def test_reduced_precision_is_refused_on_the_cpu():
    m, pl, x, y = _conv_case(False)
    for p in ("tf32", "bf16"):
        with pytest.raises(ValueError, match="CUDA"):
            GridEngine(m, pl, x, y, precision=p)


def test_compiled_kernel_matches_eager():
    m, pl, x, y = _conv_case(True)
    a, b = torch.linspace(-1, 1, 11), torch.linspace(1, -1, 11)
    eager = GridEngine(m, pl, x, y, chunk=4).losses(a, b)
    compiled = GridEngine(m, pl, x, y, chunk=4, compile=True).losses(a, b)     # 11 = 4 + 4 + 3: padded
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)


def test_denormals_are_flushed_on_every_thread():
    """compute.numerics.flush_denormals, called before torch starts its thread pool (as the stage's
    entry points do), makes the worker threads flush them too (set later, the flag reaches the
    main thread only)."""
    import subprocess
    import sys
    from tests.conftest import ROOT
    code = ("from compute.numerics import flush_denormals; flush_denormals(); import torch; "
            "torch.set_num_threads(2); "
            "y = torch.full((4_000_000,), 1e-40); print(int((y * 1.5).count_nonzero()))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


# ---------------------------------------------------------------- strategies (compute/grid/)

def test_one_strategy_per_method_behind_one_interface():
    from compute import grid
    from compute.losses import CROSS_ENTROPY
    model, plane, x, y = setup("tanh", [8], 2)
    m, pl, xc, yc = _conv_case(True)
    cases = {"linear": (model, plane, x, y), "conv": (m, pl, xc, yc), "graph": (m, pl, xc, yc),
             "vmap": (model, plane, x, y), "loop": (model, plane, x, y)}
    a, b = random_points(k=5, seed=2)
    for method, (mm, pp, xx, yy) in cases.items():
        s = grid.choose(grid.Problem(mm, pp, xx, yy, CROSS_ENTROPY), method)
        assert isinstance(s, grid.STRATEGIES[method]) and s.name == method
        s.prepare()
        eng = GridEngine(mm, pp, xx, yy, method=method)
        assert eng.method == method and type(eng.strategy) is type(s)
        with torch.no_grad():
            torch.testing.assert_close(s.losses(a, b), eng.losses(a, b), rtol=0, atol=0)
    # auto takes the first that fits; an unknown method is refused by name
    assert grid.choose(grid.Problem(model, plane, x, y, CROSS_ENTROPY)).name == "linear"
    assert grid.choose(grid.Problem(m, pl, xc, yc, CROSS_ENTROPY)).name == "conv"
    with pytest.raises(ValueError, match="linear, conv, graph, vmap, loop"):
        GridEngine(model, plane, x, y, method="batched")


def _pooled_convnet(first_pool, size=8, batchnorm=True, seed=0):
    """Conv (+BN) + activation + ``first_pool``, a second conv block with a max-pool, a linear head."""
    from compute.models import Activation
    torch.manual_seed(seed)
    layers = [nn.Conv2d(3, 6, 3, padding=1)] + ([nn.BatchNorm2d(6)] if batchnorm else [])
    layers += [Activation("relu"), first_pool, nn.Conv2d(6, 8, 3, padding=1), Activation("tanh"), nn.MaxPool2d(2),
               nn.Flatten()]
    m = nn.Sequential(*layers)
    with torch.no_grad():
        feats = m(torch.zeros(1, 3, size, size)).shape[1]
    m = nn.Sequential(*layers, nn.Linear(feats, 4)).eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(20, 3, size, size, generator=g)
    y = torch.randint(0, 4, (20,), generator=g)
    o = {k: v.detach().clone() for k, v in m.named_parameters()}
    d1 = {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in o.items()}
    d2 = {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in o.items()}
    return m, Plane(o, d1, d2), x, y


@pytest.mark.parametrize("bn_mode", ["running", "batch"])
@pytest.mark.parametrize("pool,size,windowed", [(nn.MaxPool2d(2), 8, True), (nn.AvgPool2d(2), 8, True),
                                                (nn.MaxPool2d(2), 7, False), (nn.MaxPool2d(3, 2), 8, False)])
def test_conv_first_block_from_its_windows(pool, size, windowed, bn_mode):
    """The first convolution, its BatchNorm, activation and a 2x2 pool are evaluated from the 2x2
    windows of the products (no full-size maps); other pools and odd sizes take the plain path.
    Both equal the reference."""
    m, pl, x, y = _pooled_convnet(pool, size)
    e = GridEngine(m, pl, x, y, chunk=3, batchnorm=bn_mode)
    assert e.method == "conv" and e.strategy.windowed is windowed
    a, b = random_points(k=7, seed=4, lim=1.0)
    ref = torch.tensor([reference_loss(m, pl, float(p), float(q), x, y, batchnorm=bn_mode) for p, q in zip(a, b)])
    torch.testing.assert_close(e.losses(a, b), ref, rtol=1e-4, atol=1e-5)


def test_conv_windowed_path_compiled_and_on_a_new_plane():
    m, pl, x, y = _pooled_convnet(nn.MaxPool2d(2))
    own = Plane(*({k: v.clone() for k, v in d.items()} for d in (pl.origin, pl.d1, pl.d2)))
    other = Plane(pl.origin, {k: -v for k, v in pl.d2.items()}, pl.d1)
    a, b = torch.linspace(-1, 1, 9), torch.linspace(0.5, -1, 9)
    e = GridEngine(m, own, x, y, chunk=4, compile=True)
    torch.testing.assert_close(e.losses(a, b), GridEngine(m, pl, x, y, chunk=4).losses(a, b), rtol=1e-5, atol=1e-6)
    e.set_plane(other)                      # copied into the held products: no second compile
    assert e.compiled
    torch.testing.assert_close(e.losses(a, b), GridEngine(m, other, x, y, chunk=4).losses(a, b),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_passes_reuse_freed_memory_instead_of_faulting_pages_in():
    """Freed scratch blocks stay in the heap (compute.engine.keep_freed_memory): a pass of a
    64-wide MLP on 1024 samples took ~120 fresh pages a grid point before."""
    import resource
    torch.manual_seed(0)
    model = mlp(2, [64, 64], 2, "tanh")
    x, y = spirals(1024)
    o = {k: v.detach().clone() for k, v in model.named_parameters()}
    plane = Plane(o, {k: 0.1 * torch.randn_like(v) for k, v in o.items()},
                  {k: 0.1 * torch.randn_like(v) for k, v in o.items()})
    e = GridEngine(model, plane, x, y, chunk=16)
    a, b = random_points(k=128, seed=1)
    e.losses(a, b)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        e.losses(a, b)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults / (3 * 128) < 10, faults


def test_every_compiled_engine_is_compiled_past_dynamos_recompile_limit():
    """torch.compile keeps compiled code per code object, up to 8 versions: the ninth engine of one
    strategy (a sweep's ninth panel) ran eagerly without a word.  Each engine now compiles its own."""
    from torch._dynamo.utils import counters
    x, y = spirals(60, 2, seed=1)
    for width in range(3, 13):                          # ten networks of different shapes
        model, plane, _, _ = setup("relu", [width], 2)
        before = counters["stats"]["unique_graphs"]
        e = GridEngine(model, plane, x, y, compile=True, chunk=4)
        e.losses(torch.zeros(4), torch.zeros(4))
        assert e.compiled and counters["stats"]["unique_graphs"] == before + 1, width
