"""The built-in ResNets and VGGs, torchvision models by name and the user's own model and data
entries: parameter counts against the published ones, shapes, the grid engine against the plain
per-point reference on each family (BatchNorm's running and per-point batch statistics), the plane
methods end to end, and the build-time errors.  The model section's scene errors are
tests/studio/scene/test_landscape.py's, the title card's line tests/render/test_overlay.py's."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

from compute import plane as planes
from compute.data import DataError, build_data
from compute.engine import GridEngine, reference_loss
from compute.plane import Plane
from compute.entry import EntryError, scene_folder
from compute.models import ModelError, ResNet, build_model, parameter_count, vgg
from render.overlay import describe
from studio import cache
from studio.scene import LandscapeSpec, SceneError, load_scene
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def model_spec(**kw) -> dict:
    """A resolved landscape.model section, defaults filled in, as the pipeline sees it."""
    data = {"name": "shapes", "channels": 3} if kw.get("name") == "torchvision" else {"name": "shapes"}
    return LandscapeSpec.model_validate({"data": data, "model": kw}).model_dump(mode="json")["model"]


# --------------------------------------------------------------------------- counts and shapes

def cifar_resnet_count(depth: int, width: int = 16, classes: int = 10, skip: bool = True) -> int:
    """Parameters of the CIFAR ResNet counted by hand: bias-free 3x3 convolutions, two BatchNorm
    parameters per channel, option-B shortcuts (1x1 conv + BN) where the shape changes."""
    n = (depth - 2) // 6
    conv = lambda cin, cout, k=3: cin * cout * k * k
    total = conv(3, width) + 2 * width                                   # stem
    cin = width
    for cout in (width, 2 * width, 4 * width):
        for _ in range(n):
            total += conv(cin, cout) + conv(cout, cout) + 4 * cout
            if skip and cin != cout:
                total += conv(cin, cout, 1) + 2 * cout
            cin = cout
    return total + 4 * width * classes + classes                        # linear classifier


@pytest.mark.parametrize("depth,published", [(20, 0.27e6), (56, 0.85e6)])
def test_resnet_parameter_counts_match_the_published_ones(depth, published):
    skip, noskip = ResNet(3, 10, depth), ResNet(3, 10, depth, skip=False)
    assert parameter_count(skip) == cifar_resnet_count(depth)
    assert parameter_count(noskip) == cifar_resnet_count(depth, skip=False)
    # He et al. 2016, table 6: 0.27M (ResNet-20), 0.85M (ResNet-56)
    assert abs(parameter_count(skip) - published) / published < 0.015
    # the two projection shortcuts (16->32, 32->64 channels) are all that noskip lacks
    assert parameter_count(skip) - parameter_count(noskip) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert (parameter_count(ResNet(3, 10, 20)), parameter_count(ResNet(3, 10, 56))) == (272_474, 855_770)


def test_resnet_skip_and_noskip_differ_only_in_the_shortcuts():
    torch.manual_seed(3)
    a = ResNet(3, 10, 20)
    torch.manual_seed(3)
    b = ResNet(3, 10, 20, skip=False)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    extra = sorted(set(pa) - set(pb))
    assert extra == ["layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.bias", "layer2.0.shortcut.1.weight",
                     "layer3.0.shortcut.0.weight", "layer3.0.shortcut.1.bias", "layer3.0.shortcut.1.weight"]
    # the same seed gives the same initial weights wherever the two nets share them
    assert set(pb) <= set(pa) and all(torch.equal(pa[k], pb[k]) for k in pb)
    # with each block's residual branch switched off (its last BatchNorm scaled to 0), a block of
    # the skip net passes its (non-negative) input through; the noskip net outputs zeros there
    for net in (a, b):
        for m in net.modules():
            if hasattr(m, "bn2"):
                nn.init.zeros_(m.bn2.weight)
                nn.init.zeros_(m.bn2.bias)
    a.eval(), b.eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        stem = torch.relu(a.bn1(a.conv1(x)))
        assert torch.equal(a.layer1(stem), stem)
        assert torch.count_nonzero(b.layer1(stem)) == 0
        assert torch.allclose(b(x), b.fc.bias.expand(4, -1))
        assert not torch.allclose(a(x), a.fc.bias.expand(4, -1))


def test_resnet_without_batchnorm_and_on_other_shapes():
    net = ResNet(1, 3, 20, width=4, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))
    assert net(torch.randn(2, 1, 12, 9)).shape == (2, 3)           # global pooling: any image size
    assert build_model(model_spec(name="resnet", depth=32, width=2), (3, 8, 8), 5)(
        torch.randn(2, 3, 8, 8)).shape == (2, 5)
    assert sum(isinstance(m, nn.Conv2d) for m in ResNet(3, 10, 110).modules()) == 109 + 2


def test_vgg_layers_counts_and_small_images():
    # Li et al.'s VGG-9 on CIFAR-10: 7 convolutions, a hidden linear layer of 256, the classifier
    net = vgg(3, 32, 32, 10, "vgg9", 64, True)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256]
    assert [(l.in_features, l.out_features) for l in linears] == [(256 * 4 * 4, 256), (256, 10)]
    conv_params = sum(c.in_channels * c.out_channels * 9 + c.out_channels for c in convs)
    bn_params = 2 * (sum(c.out_channels for c in convs) + 256)
    assert parameter_count(net) == conv_params + bn_params + (4096 * 256 + 256) + (256 * 10 + 10) == 2_789_706
    # VGG-11 (configuration A): 8 convolutions, 3 linear layers; 5 pools on 32 pixels -> 1 x 1
    net = vgg(3, 32, 32, 10, "vgg11", 64, False)
    assert sum(isinstance(m, nn.Conv2d) for m in net) == 8 and sum(isinstance(m, nn.Linear) for m in net) == 3
    assert net[-1].in_features == 512 and net[-5].in_features == 512
    # on 12 x 12 images the pools stop at 1 pixel instead of failing
    small = build_model(model_spec(name="vgg", config="vgg11", width=2), (1, 12, 12), 4)
    assert sum(isinstance(m, nn.MaxPool2d) for m in small) == 3 and small(torch.randn(2, 1, 12, 12)).shape == (2, 4)


def test_torchvision_model_by_name_random_init_and_errors():
    net = build_model(model_spec(name="torchvision", arch="resnet18"), (3, 16, 16), 7)
    assert net.fc.out_features == 7 and net(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert 11.0e6 < parameter_count(net) < 11.3e6                  # ResNet-18: 11.2M with 7 classes
    with pytest.raises(ModelError) as e:
        build_model(model_spec(name="torchvision", arch="resnet19"), (3, 16, 16), 7)
    msg = str(e.value)
    assert isinstance(e.value, SceneError) and msg.startswith("landscape.model.arch: bad value 'resnet19'")
    assert "did you mean" in msg and "'resnet18'" in msg
    # not a classification model (detection models live in a sub-module)
    with pytest.raises(ModelError, match="not a classification model"):
        build_model(model_spec(name="torchvision", arch="fasterrcnn_resnet50_fpn"), (3, 16, 16), 7)
    # images too small for the architecture: one line naming the shape
    with pytest.raises(ModelError, match=r"torchvision squeezenet1_1 fails on samples of shape \(3, 16, 16\): "
                                         r"RuntimeError: .*see landscape.data's size"):
        build_model(model_spec(name="torchvision", arch="squeezenet1_1"), (3, 16, 16), 7)


# --------------------------------------------------------------------------- engine against the reference

def case(spec: dict, shape: tuple, classes: int = 3, n: int = 8, seed: int = 0):
    """A model with trained-looking running statistics and a filter-normalized random plane
    (biases and BatchNorm parameters moving too, so every parameter is exercised)."""
    torch.manual_seed(seed)
    model = build_model(spec, shape, classes)
    x, y = torch.randn(n, *shape), torch.arange(n) % classes
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(1.5 * x + 0.3)                       # running statistics away from 0 and 1
    model.eval()
    w = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1, d2, _ = planes.random_plane(w, seed, "filter", True, False)
    return model, Plane(w, d1, d2), x, y


A = torch.tensor([0.0, 0.6, -0.8, 1.0])
B = torch.tensor([0.0, -0.4, 0.5, 0.9])


def check_engine(model, plane, x, y, batchnorm, method="auto", chunk=3):
    e = GridEngine(model, plane, x, y, chunk=chunk, batchnorm=batchnorm, method=method)
    got = e.losses(A, B)
    ref = torch.tensor([reference_loss(model, plane, float(a), float(b), x, y, batchnorm=batchnorm)
                        for a, b in zip(A, B)])
    assert torch.isfinite(ref).all()
    assert torch.allclose(got, ref, rtol=2e-5, atol=1e-6), (got, ref)
    return e, got


FAMILIES = {
    "resnet20": (dict(name="resnet", depth=20, width=2), (3, 8, 8), "graph"),
    "resnet20-noskip": (dict(name="resnet", depth=20, width=2, skip=False), (3, 8, 8), "graph"),
    "vgg9": (dict(name="vgg", config="vgg9", width=2), (3, 8, 8), "conv"),
    "vgg11": (dict(name="vgg", config="vgg11", width=2), (1, 12, 10), "conv"),
    "torchvision-resnet18": (dict(name="torchvision", arch="resnet18"), (3, 16, 16), "graph"),
}


@pytest.mark.parametrize("batchnorm", ["running", "batch"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_engine_matches_the_reference(family, batchnorm):
    spec, shape, method = FAMILIES[family]
    model, plane, x, y = case(model_spec(**spec), shape)
    e, got = check_engine(model, plane, x, y, batchnorm)
    assert e.method == method and e.batchnorm == batchnorm
    # the VGGs take the batched conv path, the others the general path; torch.func's vmap agrees too
    check_engine(model, plane, x, y, batchnorm, method="vmap")
    # the two BatchNorm modes are different numbers (a real test of both, not one path twice)
    other = GridEngine(model, plane, x, y, chunk=3, batchnorm="batch" if batchnorm == "running" else "running")
    assert not torch.allclose(got, other.losses(A, B), rtol=1e-3)


def test_resnet_without_batchnorm_and_the_point_by_point_fallback():
    model, plane, x, y = case(model_spec(name="resnet", depth=20, width=2, batchnorm=False), (1, 6, 10))
    e, _ = check_engine(model, plane, x, y, "batch")
    assert e.batchnorm == "running"                 # nothing to normalize: the mode does not apply

    class Branchy(nn.Module):
        """A model vmap cannot batch: it branches on a value."""
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x):
            h = torch.tanh(self.a(x))
            return self.b(h if h.sum().item() > -1e9 else -h)

    torch.manual_seed(0)
    m = Branchy().eval()
    w = {k: v.detach().clone() for k, v in m.named_parameters()}
    pl = Plane(w, {k: torch.randn_like(v) for k, v in w.items()}, {k: torch.randn_like(v) for k, v in w.items()})
    x, y = torch.randn(10, 4), torch.arange(10) % 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e, _ = check_engine(m, pl, x, y, "running")
    assert e.method == "loop" and any("one point at a time" in str(c.message) for c in caught)


def test_random_plane_gives_batchnorm_and_biases_no_direction():
    model = ResNet(3, 10, 20, width=4)
    w = {k: v.detach() for k, v in model.named_parameters()}
    d1, d2, _ = planes.random_plane(w, 0, "filter", False, False)
    one_d = [k for k, v in w.items() if v.dim() == 1]
    assert any(".bn" in k for k in one_d) and "fc.bias" in one_d
    for k, v in w.items():
        if v.dim() == 1:
            assert torch.count_nonzero(d1[k]) == 0 and torch.count_nonzero(d2[k]) == 0
        else:                               # each filter rescaled to its own norm in the weights
            assert torch.allclose(d1[k].reshape(len(v), -1).norm(dim=1), v.reshape(len(v), -1).norm(dim=1),
                                  rtol=1e-4)


# --------------------------------------------------------------------------- the compute stage, end to end

TINY = """
title: tiny
landscape:
  data: {DATA}
  model: {MODEL}
  train: {steps: 6, snapshots: 4, lr: 0.01}
  plane: {PLANE}
  grid: {resolution: [4, 3], eval_samples: 16}
"""

RUNS = {  # model, data, plane: each plane method on a different family
    "resnet-hessian": ("{name: resnet, depth: 20, width: 2}", "{name: shapes, samples: 24, size: 8}",
                       "{method: hessian, hessian: {iterations: 12, tolerance: 0.01}}"),
    "resnet-noskip-pca": ("{name: resnet, depth: 20, width: 2, skip: false}",
                          "{name: shapes, samples: 24, size: 8}", "{method: pca}"),
    "vgg-random": ("{name: vgg, width: 2}", "{name: shapes, samples: 24, size: 8}", "{method: random}"),
    # a small torchvision model (0.34M weights, BatchNorm, channel shuffles): each snapshot of a
    # ResNet-18 is 45 MB to store
    "torchvision-pca": ("{name: torchvision, arch: shufflenet_v2_x0_5}",
                        "{name: shapes, samples: 24, size: 8, channels: 3}", "{method: pca}"),
}


@pytest.mark.parametrize("run_name", list(RUNS))
def test_each_family_through_the_compute_stage(tmp_path, run_name):
    from compute.pipeline import run
    model, data, plane = RUNS[run_name]
    p = tmp_path / "s.yaml"
    p.write_text(TINY.replace("{MODEL}", model).replace("{DATA}", data).replace("{PLANE}", plane))
    scene = load_scene(p)
    run(scene, tmp_path / "cache", device="cpu", progress=False)
    ls = cache.read(tmp_path / "cache", scene.cache_key())
    assert ls.loss.shape == (3, 4) and np.isfinite(ls.loss).all()
    assert ls.meta["engine"]["method"] == ("conv" if run_name.startswith("vgg") else "graph")
    assert ls.meta["engine"]["fallback"] is None
    path = ls.paths["training"]
    # the origin is the trained network: its loss on the plane is the recorded one, BatchNorm's
    # trained running statistics included (the grid's model is rebuilt from the scene)
    np.testing.assert_allclose(path.xy[-1], [0, 0], atol=1e-5)
    assert path.surface_loss[-1] == pytest.approx(path.loss[-1], rel=1e-4)
    if run_name.endswith("hessian"):
        assert ls.meta["plane"]["eigenvalues"][0] >= ls.meta["plane"]["eigenvalues"][1]


def test_descents_on_a_cache_hit_use_the_trained_batchnorm_statistics(tmp_path):
    """A descent added to a finished entry runs on a model rebuilt from the scene: its BatchNorm
    statistics come from the model store, so its first point's loss is the trained network's."""
    from compute.pipeline import run
    text = TINY.replace("{MODEL}", "{name: resnet, depth: 20, width: 2}").replace(
        "{DATA}", "{name: shapes, samples: 24, size: 8}").replace("{PLANE}", "{method: pca}")
    starts = {}
    for name in ("first", "later"):               # "later" is computed on the cached grid
        p = tmp_path / f"{name}.yaml"
        p.write_text(text + f"  descents: [{{name: {name}, start: [0, 0], steps: 1, lr: 0.0001}}]\n")
        scene = load_scene(p)
        run(scene, tmp_path / "cache", device="cpu", progress=False)
        ls = cache.read(tmp_path / "cache", scene.cache_key(), descents=scene.landscape.descents)
        starts[name] = ls.paths[name].loss[0]
    trained = ls.paths["training"].loss[-1]
    assert starts["first"] == pytest.approx(trained, rel=1e-4)
    assert starts["later"] == pytest.approx(trained, rel=1e-4)


# --------------------------------------------------------------------------- the user's own entries

MODULE = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, features, classes, hidden):
        super().__init__()
        self.a, self.b = nn.Linear(features, hidden), nn.Linear(hidden, classes)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def net(input_shape, classes, hidden=5):
    return Net(input_shape[0], classes, hidden)


def blobs(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 2, generator=g) * 0.3 + torch.stack([y.float(), (y == 1).float()], 1)
    return x, y


def blobs_with_classes(n=40):
    x, y = blobs(n)
    return x.numpy(), y.numpy(), 4


def not_a_model(input_shape, classes):
    return [1, 2, 3]


def wrong_outputs(input_shape, classes):
    return nn.Linear(input_shape[0], classes + 1)


def float_labels(third=None):
    return (torch.randn(8, 2), torch.rand(8)) + ((third,) if third is not None else ())


def broken(n=3):
    return 1 / 0


class TinyNet(nn.Module):
    """A user's class named directly as the entry: its own constructor arguments, no input_shape."""
    def __init__(self, num_classes=3, ch=4):
        super().__init__()
        self.a, self.b = nn.Linear(2, ch), nn.Linear(ch, num_classes)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def only_classes(classes, hidden=4):
    return Net(2, classes, hidden)


def anything(**kw):
    return Net(kw["input_shape"][0], kw["classes"], kw.get("hidden", 3))
'''


@pytest.fixture
def user_module(tmp_path):
    """A module next to a scene in tmp_path, under a name of its own (modules stay imported)."""
    name = f"user_mod_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    yield name
    sys.modules.pop(name, None)


def entry(kind: str, module: str, fn: str, **args) -> dict:
    sec = {"name": "custom", "entry": f"{module}:{fn}", "args": args}
    ls = LandscapeSpec.model_validate({kind: sec, **({"data": {"name": "spirals"}} if kind == "model" else {})})
    return ls.model_dump(mode="json")[kind]


def test_user_model_and_data_next_to_the_scene(tmp_path, user_module):
    with scene_folder(tmp_path / "scene.yaml"):
        x, y, shape, classes, _ = build_data(entry("data", user_module, "blobs", n=30))
        assert x.shape == (30, 2) and x.dtype == torch.float32 and shape == (2,) and classes == 3
        assert y.dtype == torch.int64 and torch.bincount(y).tolist() == [10, 10, 10]
        # NumPy arrays and an explicit class count (more classes than the labels show)
        x2, y2, _, classes2, _ = build_data(entry("data", user_module, "blobs_with_classes"))
        assert torch.equal(x2, build_data(entry("data", user_module, "blobs"))[0]) and classes2 == 4
        net = build_model(entry("model", user_module, "net", hidden=7), shape, classes)
    assert net.a.out_features == 7 and net(x).shape == (30, 3)
    # the engine's general path on the user's module
    w = {k: v.detach().clone() for k, v in net.named_parameters()}
    plane = Plane(w, {k: torch.randn_like(v) for k, v in w.items()}, {k: torch.randn_like(v) for k, v in w.items()})
    e, _ = check_engine(net.eval(), plane, x, y, "running")
    assert e.method == "graph"
    # a scene in a project's films/ folder finds the module in the project, above it
    sys.modules.pop(user_module, None)
    with scene_folder(tmp_path / "films" / "first.yaml"):
        assert build_data(entry("data", user_module, "blobs", n=30))[0].shape == (30, 2)
    # outside the scene's folders (and not in the working directory) it is not found
    sys.modules.pop(user_module, None)
    with pytest.raises(EntryError, match="no module"):
        build_data(entry("data", user_module, "blobs"))


def test_the_entry_is_called_with_the_keywords_it_takes(tmp_path, user_module):
    """A model class named directly gets only its own args; a function gets input_shape and classes
    where its signature names them, or takes **kwargs."""
    with scene_folder(tmp_path / "scene.yaml"):
        tiny = build_model(entry("model", user_module, "TinyNet", num_classes=3, ch=9), (2,), 3)
        assert tiny.a.out_features == 9 and tiny(torch.zeros(5, 2)).shape == (5, 3)
        only = build_model(entry("model", user_module, "only_classes", hidden=6), (2,), 3)
        assert only.a.out_features == 6
        anything = build_model(entry("model", user_module, "anything"), (2,), 3)
        assert anything.b.out_features == 3
        with pytest.raises(EntryError, match=r"TinyNet\(num_classes=3, width=2\)"):
            build_model(entry("model", user_module, "TinyNet", num_classes=3, width=2), (2,), 3)


@pytest.mark.parametrize("kind,fn,args,pieces", [
    ("model", "nett", {}, ["landscape.model.entry: bad value", "has no 'nett'", "did you mean 'net'?"]),
    ("data", "blobs", {"m": 3}, ["landscape.data.entry:", "blobs(m=3)", "unexpected keyword argument 'm'",
                                 "check landscape.data.args"]),
    ("model", "not_a_model", {}, ["landscape.model.entry:", "not_a_model returned a list",
                                  "torch.nn.Module"]),
    ("model", "wrong_outputs", {}, ["landscape.model.entry: the model of", "gives shape (2, 4)",
                                    "logits of shape (2, 3)"]),
    ("data", "float_labels", {"third": 3}, ["landscape.data.entry:", "returned a third item with float targets y",
                                             "number of classes, for integer labels"]),
    ("data", "broken", {}, ["landscape.data.entry:", "raised ZeroDivisionError: division by zero",
                            ".py:"]),
])
def test_user_entry_errors_name_the_key_and_the_entry(tmp_path, user_module, kind, fn, args, pieces):
    with scene_folder(tmp_path / "scene.yaml"), pytest.raises(DataError) as e:
        spec = entry(kind, user_module, fn, **args)
        if kind == "data":
            build_data(spec)
        else:
            build_model(spec, (2,), 3)
    msg = str(e.value)
    assert isinstance(e.value, SceneError) and "\n" not in msg
    assert f"{user_module}:{fn}" in msg
    for piece in pieces:
        assert piece in msg, (piece, msg)


def test_a_missing_user_module_stops_the_cli_with_one_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("title: t\nlandscape:\n  model: {name: custom, entry: 'no_such_module_here:net'}\n"
                 "  train: {steps: 5, snapshots: 3}\n  grid: {resolution: [4, 4], eval_samples: 8}\n")
    r = subprocess.run([sys.executable, "-m", "compute", str(p), "--cache-dir", str(tmp_path / "c"), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith(f"error: {p}:3: landscape.model.entry: bad value 'no_such_module_here:net': no module")
    assert str(tmp_path) in err                         # where it looked: the scene's folder
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def _forget_examples():
    for m in [m for m in sys.modules if m == "examples" or m.startswith("examples.")]:
        sys.modules.pop(m)


def test_the_worked_example(tmp_path):
    """scenes/custom_model.yaml and scenes/examples/ copied to a folder of their own: the entries
    resolve from the scene's folder (not the working directory); a smaller grid, fewer steps."""
    import shutil
    shutil.copytree(ROOT / "scenes" / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "scenes" / "custom_model.yaml").read_text()
    assert "steps: 800" in text and "[200, 200]" in text
    p = tmp_path / "custom_model.yaml"
    p.write_text(text.replace("steps: 800", "steps: 30").replace("[200, 200]", "[6, 5]"))
    _forget_examples()
    try:
        from compute.pipeline import run
        scene = load_scene(p)
        run(scene, tmp_path / "cache", device="cpu", progress=False)
        ls = cache.read(tmp_path / "cache", scene.cache_key())
    finally:
        _forget_examples()
    assert ls.loss.shape == (5, 6) and np.isfinite(ls.loss).all() and ls.meta["data"]["classes"] == 3
    assert ls.meta["parameters"] == (2 * 16 + 16) + (16 * 16 + 16) + (16 * 3 + 3)
    assert describe(ls.meta).startswith("RingNet (371 weights)  ·  256 samples of 2 features, 3 classes")
