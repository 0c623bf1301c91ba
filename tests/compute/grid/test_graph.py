"""The general grid path (compute/grid/graph/): networks written the way users write them, held to
the per-point reference (float32, and float64 for how close), and what happens where it cannot run."""
from __future__ import annotations

import copy
import math
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from compute import grid
from compute.engine import GridEngine, reference_loss
from compute.plane import Plane
from compute.losses import CROSS_ENTROPY, Loss
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("torch_one_thread")

A = torch.tensor([0.0, 0.35, -0.6, 0.9, -0.2, 0.05])
B = torch.tensor([0.0, -0.45, 0.3, 0.8, -0.9, 0.6])


def plane_of(model: nn.Module, seed: int = 1, scale: float = 0.3) -> Plane:
    """Gaussian directions for every parameter (biases and norms too), so every weight moves."""
    g = torch.Generator().manual_seed(seed)
    o = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1 = {k: scale * torch.randn(v.shape, generator=g) * (v.norm() / math.sqrt(v.numel()) + 0.1) for k, v in o.items()}
    d2 = {k: scale * torch.randn(v.shape, generator=g) * (v.norm() / math.sqrt(v.numel()) + 0.1) for k, v in o.items()}
    return Plane(o, d1, d2)


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """BatchNorm running statistics and affine weights away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                    m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


def references(model, plane, x, y, batchnorm="running", loss=CROSS_ENTROPY):
    """The per-point reference at (A, B) in float32 and in float64."""
    ref32 = np.array([reference_loss(model, plane, float(a), float(b), x, y, batchnorm, loss) for a, b in zip(A, B)])
    m64 = copy.deepcopy(model).double()
    p64 = Plane(*({k: v.double() for k, v in d.items()} for d in (plane.origin, plane.d1, plane.d2)))
    x64 = x.double() if x.is_floating_point() else x
    y64 = y.double() if y is not None and y.is_floating_point() else y
    ref64 = np.array([reference_loss(m64, p64, float(a), float(b), x64, y64, batchnorm, loss) for a, b in zip(A, B)])
    return ref32, ref64


def check(model, x, y, batchnorm="running", loss=CROSS_ENTROPY, method="graph", **kw) -> GridEngine:
    """The engine on ``method`` equals the reference to float32 rounding, and is about as close to the
    float64 truth as the float32 reference is."""
    model = model.eval()
    plane = plane_of(model)
    engine = GridEngine(model, plane, x, y, method=method, batchnorm=batchnorm, loss=loss, **kw)
    got = engine.losses(A, B).double().numpy()
    ref32, ref64 = references(model, plane, x, y, batchnorm, loss)
    assert np.isfinite(ref32).all() and np.ptp(ref32) > 1e-3, "the points must give different losses"
    np.testing.assert_allclose(got, ref32, rtol=1e-4, atol=1e-6)
    assert np.abs(got - ref64).max() <= 10 * np.abs(ref32 - ref64).max() + 1e-6
    return engine


def images(n=12, c=3, s=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, s, s, generator=g), torch.randint(0, classes, (n,), generator=g)


# ---------------------------------------------------------------- networks as users write them

def users_bn_convnet():
    torch.manual_seed(0)
    return trained_like(nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 3 * 3, 10)))


@pytest.mark.parametrize("batchnorm", ["running", "batch"])
def test_users_batchnorm_convnet(batchnorm):
    x, y = images(n=20, c=1, s=12, classes=10)
    e = check(users_bn_convnet(), x, y, batchnorm)
    code = e.strategy.kernel.code
    assert "runtime_conv(" in code and "vmapped" not in code      # one grouped convolution a layer
    # the two modes are different numbers: both are really tested
    other = GridEngine(users_bn_convnet(), plane_of(users_bn_convnet()), x, y, method="graph",
                       batchnorm="batch" if batchnorm == "running" else "running")
    assert not torch.allclose(e.losses(A, B), other.losses(A, B), rtol=1e-3)


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("batchnorm", ["running", "batch"])
def test_resnet20(skip, batchnorm):
    from compute.models import ResNet
    torch.manual_seed(0)
    x, y = images(n=8, s=8)
    check(trained_like(ResNet(3, 4, 20, width=4, skip=skip)), x, y, batchnorm)


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "mobilenet_v3_small"])
def test_torchvision(arch):
    import torchvision
    torch.manual_seed(0)
    model = trained_like(torchvision.models.get_model(arch, weights=None, num_classes=4))
    x, y = images(n=4, s=32)
    check(model, x, y)


def test_charlm_transformer():
    sys.path.insert(0, str(ROOT / "scenes"))
    try:
        from examples.charlm import model
    finally:
        sys.path.remove(str(ROOT / "scenes"))
    torch.manual_seed(0)
    net = model(input_shape=(16,), classes=20, width=24, layers=2, heads=4)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 20, (6, 16), generator=g)
    check(net, x, torch.roll(x, -1, 1))


class SkipNet(nn.Module):
    """A user's own class and forward: a convolution, a block whose input is added back, a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.SiLU(),
                                  nn.Conv2d(8, 8, 3, padding=1))
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        h = F.relu(self.stem(x))
        h = h + self.body(h)                     # the skip
        h = F.avg_pool2d(h, 2)
        return self.head(h.mean(dim=(2, 3)))


def test_custom_forward_with_a_skip():
    torch.manual_seed(0)
    x, y = images()
    check(SkipNet(), x, y)


class Attention(nn.Module):
    """Embedding, LayerNorm, nn.MultiheadAttention with a causal mask, a GELU MLP, dropout."""

    def __init__(self, vocab=17, width=16, batch_first=True):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(12, width) * 0.1)
        self.ln = nn.LayerNorm(width)
        self.att = nn.MultiheadAttention(width, 4, dropout=0.1, batch_first=batch_first)
        self.mlp = nn.Sequential(nn.Linear(width, 32), nn.GELU(), nn.Dropout(0.2), nn.Linear(32, width))
        self.out = nn.Linear(width, vocab)
        self.batch_first = batch_first

    def forward(self, x):
        t = x.shape[1]
        h = self.ln(self.tok(x) + self.pos[:t])
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        q = h if self.batch_first else h.transpose(0, 1)
        a, _ = self.att(q, q, q, attn_mask=mask)
        h = h + (a if self.batch_first else a.transpose(0, 1))
        return self.out(h + self.mlp(h))


@pytest.mark.parametrize("batch_first", [True, False])
def test_layernorm_and_multihead_attention(batch_first):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 17, (5, 12), generator=g)
    check(Attention(batch_first=batch_first), x, torch.roll(x, -1, 1))


def test_transformer_encoder_layer_and_sdpa():
    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(3, 16)
            self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.q = nn.Linear(16, 16)
            self.out = nn.Linear(16, 2)

        def forward(self, x):
            h = self.layer(self.inp(x))
            q = self.q(h).view(h.shape[0], h.shape[1], 2, 8).transpose(1, 2)     # (N, heads, T, d)
            z = F.scaled_dot_product_attention(q, q, q, is_causal=True).transpose(1, 2).reshape(h.shape)
            return self.out(z.mean(dim=1))

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    check(Enc(), torch.randn(6, 7, 3, generator=g), torch.randint(0, 2, (6,), generator=g))


@pytest.mark.parametrize("act", [nn.Tanh, nn.GELU, nn.SiLU, nn.Softplus, nn.LeakyReLU, nn.ELU, nn.Sigmoid])
def test_users_mlp_with_torchs_activations(act):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 12), act(), nn.Linear(12, 12), act(), nn.Linear(12, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 2, generator=g), torch.randint(0, 3, (40,), generator=g)
    e = check(model, x, y)
    assert e.method == "graph"
    assert GridEngine(model, plane_of(model), x, y).method == "graph"      # auto takes it too


class Odds(nn.Module):
    """Operations in the ways users write them: in place, views, cat, conv1d, a sort (no rule: vmap
    batches that one op), an explicit view with the batch size."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4 * 6 * 2, 3)

    def forward(self, x):
        h = self.c(x)
        h = self.bn(h)
        h.relu_()                                    # in place, the result not assigned
        s = torch.sort(h, dim=-1).values
        z = torch.cat([h, s], dim=1)
        z += 0.5 * z                                 # x += y
        return self.fc(z.view(x.size(0), -1))


def test_in_place_views_cat_and_an_op_without_a_rule():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    model = trained_like(Odds())
    e = check(model, torch.randn(10, 2, 6, generator=g), torch.randint(0, 3, (10,), generator=g))
    assert "vmapped" in e.strategy.kernel.code         # the sort, and only where it is


# ---------------------------------------------------------------- losses, accuracy, planes, compile

def test_the_users_own_loss():
    def hinge(model, batch, scale=1.0):
        inputs, targets = batch
        out = model(inputs)
        return scale * F.relu(1 + out - out.gather(1, targets[:, None])).mean()

    x, y = images(n=10)
    e = check(SkipNet(), x, y, loss=Loss("custom", hinge, "mine:hinge", {"scale": 2.0}))
    assert e.method == "graph"


def test_an_autoencoder_against_its_input():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1), nn.Sigmoid())
    x, _ = images(n=6, c=1, s=6)
    check(model, torch.sigmoid(x), None, loss=Loss("mse"))


def test_accuracy_column():
    x, y = images(n=16, c=1, s=12, classes=10)
    model = users_bn_convnet()
    plane = plane_of(model)
    e = GridEngine(model, plane, x, y, method="graph", accuracy=True)
    out = e.evaluate(A, B)
    for (a, b), (loss, acc) in zip(zip(A, B), out):
        with torch.no_grad():
            logits = torch.func.functional_call(model, plane.point(float(a), float(b)), (x,))
        assert acc.item() == pytest.approx((logits.argmax(1) == y).float().mean().item())
        assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-4)


def test_another_plane_and_compiled_kernel_agree_with_a_fresh_engine():
    """set_plane (a sequence's next grid) copies the new plane's values into the compiled kernel's
    constants: its losses equal a new engine's on that plane."""
    x, y = images(n=10, c=1, s=12, classes=10)
    model = users_bn_convnet()
    first, second = plane_of(model, seed=1), plane_of(model, seed=2)
    own = Plane(*({k: v.clone() for k, v in d.items()} for d in (first.origin, first.d1, first.d2)))
    e = GridEngine(model, own, x, y, method="graph", compile=True, chunk=4)
    torch.testing.assert_close(e.losses(A, B), GridEngine(model, first, x, y, method="graph").losses(A, B),
                               rtol=1e-5, atol=1e-6)
    e.set_plane(second)
    torch.testing.assert_close(e.losses(A, B), GridEngine(model, second, x, y, method="graph").losses(A, B),
                               rtol=1e-5, atol=1e-6)
    assert e.compiled


def test_chunk_from_the_memory_a_point_takes():
    """Points a pass from the kernel's live activations: ten times the data, about a tenth the points."""
    model = users_bn_convnet()
    small, large = images(n=20, c=1, s=12, classes=10), images(n=200, c=1, s=12, classes=10)
    e1 = GridEngine(model, plane_of(model), *small, method="graph")
    e2 = GridEngine(model, plane_of(model), *large, method="graph")
    per1, per2 = e1.strategy.point_bytes(False), e2.strategy.point_bytes(False)
    assert per2 == pytest.approx(10 * per1, rel=0.05)
    # at least two copies of the first feature maps a point (the maps and the next layer's input)
    assert per1 >= 2 * 20 * 6 * 12 * 12 * 4
    assert e1.chunk > e2.chunk >= 1


# ---------------------------------------------------------------- where the general path stops

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        if h.sum() > 0:                                  # a branch on a tensor's value
            h = -h
        return self.b(h)


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)

    def forward(self, x):
        return self.a(x + 0.0 * torch.randn_like(x))


class ViewWrite(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 6)

    def forward(self, x):
        h = self.a(x)
        h[:, 0].mul_(2.0)                                # an in-place change through a view
        return h[:, :3]


@pytest.mark.parametrize("model,says", [
    (Branchy, ["a branch on a tensor's values", "test_graph.py:", "`if h.sum() > 0:`", "torch.where"]),
    (Noisy, ["random operation", "randn_like"]),
    (ViewWrite, ["in-place change of a view", "test_graph.py:"]),
])
def test_a_model_it_cannot_batch_falls_back_and_says_why(model, says):
    torch.manual_seed(0)
    m = model().eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 4, generator=g), torch.randint(0, 3, (10,), generator=g)
    with pytest.raises(grid.NotBatchable) as info:
        GridEngine(m, plane_of(m), x, y, method="graph")
    msg = str(info.value)
    assert "\n" not in msg and all(s in msg for s in says), msg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = GridEngine(m, plane_of(m), x, y)
    assert e.method in ("vmap", "loop") and e.fallback == msg
    assert any("general path cannot batch" in str(c.message) for c in caught)
    if model is not Noisy:                                       # deterministic: the fallback is exact
        got = e.losses(A, B)
        plane = plane_of(m)
        ref = torch.tensor([reference_loss(m, plane, float(a), float(b), x, y) for a, b in zip(A, B)])
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_a_kernel_that_disagrees_with_the_model_is_not_used(monkeypatch):
    """The check before the first row: a wrong rule (here: ReLU as the identity) is caught at two test
    points and the grid is evaluated by torch.func instead."""
    from compute.grid.graph import ops
    monkeypatch.setitem(ops.RULES, "aten::relu", lambda kx, op, bound, out: bound["self"])
    x, y = images(n=10, c=1, s=12, classes=10)
    model = users_bn_convnet()
    with pytest.raises(grid.NotBatchable, match="the batched kernel gives"):
        GridEngine(model, plane_of(model), x, y, method="graph")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = GridEngine(model, plane_of(model), x, y)
    assert e.method == "vmap" and "the batched kernel gives" in e.fallback


# ---------------------------------------------------------------- through the compute stage

USER_MODELS = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, features, classes, hidden, branchy):
        super().__init__()
        self.a, self.b = nn.Linear(features, hidden), nn.Linear(hidden, classes)
        self.branchy = branchy

    def forward(self, x):
        h = torch.tanh(self.a(x))
        if self.branchy and h.mean() > 10:
            h = h * 0
        return self.b(h)


def net(input_shape, classes, hidden=6, branchy=False):
    return Net(input_shape[0], classes, hidden, branchy)
'''

PIPELINE_SCENE = """
title: mine
landscape:
  data: {name: spirals, samples: 60}
  model: {name: custom, entry: "MODULE:net", args: {branchy: BRANCHY}}
  train: {steps: 6, snapshots: 3, lr: 0.05}
  plane: {method: pca}
  grid: {resolution: [5, 4], eval_samples: 30}
"""


@pytest.mark.parametrize("branchy", [False, True])
def test_the_compute_stage_records_and_says_which_path_ran(tmp_path, capsys, branchy):
    from studio import cache
    from studio.scene import load_scene
    from compute.pipeline import run
    module = f"users_net_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{module}.py").write_text(USER_MODELS)
    p = tmp_path / "scene.yaml"
    p.write_text(PIPELINE_SCENE.replace("MODULE", module).replace("BRANCHY", str(branchy).lower()))
    try:
        scene = load_scene(p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(scene, tmp_path / "cache", device="cpu", progress=False)
    finally:
        sys.modules.pop(module, None)
    meta = cache.read(tmp_path / "cache", scene.cache_key()).meta
    log = capsys.readouterr().err
    if not branchy:
        assert meta["engine"]["method"] == "graph" and meta["engine"]["fallback"] is None
        assert "grid 5x4: the general path" in log and "points/s" in log
    else:
        assert meta["engine"]["method"] in ("vmap", "loop")
        why = meta["engine"]["fallback"]
        assert f"{module}.py:14 `if self.branchy and h.mean() > 10:`" in why and "torch.where" in why
        assert "the general path could not batch the model: a branch on a tensor's values" in log
