"""compute/losses.py: every built-in loss and the user's own, on every grid-engine path, against
the plain per-point reference (load the weights, run the model, apply the loss)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from compute.engine import GridEngine, reference_loss
from compute.plane import Plane
from compute.losses import Loss, LossError, check_custom, check_fit
from compute.models import build_model
from compute.plane import random_plane

torch.set_num_threads(1)
RTOL = 2e-5


def _plane(model: nn.Module, seed: int = 0) -> Plane:
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1, d2, _ = random_plane(origin, seed)
    return Plane(origin, d1, d2)


def _grid_vs_reference(model, loss: Loss, x, y, method: str = "auto", batchnorm: str = "running") -> str:
    """The engine's losses at a few plane points equal the reference's to float32 rounding; returns
    the path the engine took."""
    torch.manual_seed(1)
    plane = _plane(model)
    a = torch.tensor([0.0, 0.3, -0.7, 0.9, -0.2])
    b = torch.tensor([0.0, -0.5, 0.4, 0.8, 0.1])
    eng = GridEngine(model, plane, x, y, chunk=2, method=method, batchnorm=batchnorm, loss=loss)
    got = eng.losses(a, b).numpy()
    ref = np.array([reference_loss(model, plane, float(p), float(q), x, y, batchnorm, loss) for p, q in zip(a, b)])
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=1e-7)
    assert np.all(np.isfinite(ref)) and np.ptp(ref) > 0            # a real landscape, not a constant
    return eng.method


def _classes(n=48, f=3, c=4):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, f, generator=g), torch.randint(0, c, (n,), generator=g)


def _images(n=24, c=2, s=6):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, c, s, s, generator=g)


@pytest.mark.parametrize("name", ["cross_entropy", "nll"])
@pytest.mark.parametrize("model_name", ["mlp", "convnet"])
def test_class_losses_on_the_batched_paths(name, model_name):
    torch.manual_seed(0)
    if model_name == "mlp":
        x, y = _classes()
        model = build_model({"name": "mlp", "widths": [8, 6], "activation": "tanh"}, (3,), 4)
        want = "linear"
    else:
        x = _images()
        y = torch.arange(len(x)) % 3
        model = build_model({"name": "convnet", "channels": [3], "activation": "relu", "pool_every": 1,
                             "batchnorm": True}, (2, 6, 6), 3)
        want = "conv"
    assert _grid_vs_reference(model, Loss(name), x, y) == want


@pytest.mark.parametrize("name", ["mse", "l1", "smooth_l1", "bce_with_logits"])
def test_float_target_losses_on_the_linear_path(name):
    torch.manual_seed(0)
    x = torch.rand(40, 2) * 2 - 1
    y = torch.sigmoid(3 * x[:, :1] * x[:, 1:])                       # (N, 1) in [0, 1]
    model = build_model({"name": "mlp", "widths": [8], "activation": "tanh"}, (2,), 1, "regression")
    assert _grid_vs_reference(model, Loss(name), x, y) == "linear"
    # and the same numbers on the generic path
    assert _grid_vs_reference(model, Loss(name), x, y, method="vmap") == "vmap"


@pytest.mark.parametrize("batchnorm", ["running", "batch"])
def test_mse_on_the_conv_path_with_batchnorm(batchnorm):
    torch.manual_seed(0)
    x = _images()
    y = x.mean(dim=(1, 2, 3))[:, None]                               # regress the mean brightness
    model = build_model({"name": "convnet", "channels": [3], "activation": "relu", "pool_every": 1,
                         "batchnorm": True}, (2, 6, 6), 1, "regression")
    with torch.no_grad():                                            # trained-like running statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    assert _grid_vs_reference(model, Loss("mse"), x, y, batchnorm=batchnorm) == "conv"


def test_unlabelled_images_reconstructed_by_a_flat_mlp():
    """An autoencoder's target is its input: an MLP's flat output is compared in the image's shape."""
    torch.manual_seed(0)
    x = _images(n=16, c=1, s=4)
    model = build_model({"name": "mlp", "widths": [5], "activation": "tanh"}, (1, 4, 4), 16, "unlabelled")
    assert _grid_vs_reference(model, Loss("mse"), x, None) == "linear"
    plane = _plane(model)
    ref = reference_loss(model, plane, 0.0, 0.0, x, None, "running", Loss("mse"))
    with torch.no_grad():
        assert ref == pytest.approx(F.mse_loss(model(x).reshape(x.shape), x).item(), rel=1e-6)


def test_the_users_own_loss_is_exported_with_the_model():
    torch.manual_seed(0)
    x, y = _classes()

    def margin(model, batch, scale=1.0):                # a multi-class hinge loss, written by a user
        inputs, targets = batch
        out = model(inputs)
        right = out.gather(1, targets[:, None])
        return scale * F.relu(1 + out - right).mean()

    loss = Loss("custom", margin, "mine:margin", {"scale": 2.0})
    model = build_model({"name": "mlp", "widths": [8], "activation": "tanh"}, (3,), 4)
    assert _grid_vs_reference(model, loss, x, y) == "graph"
    assert _grid_vs_reference(model, loss, x, y, method="vmap") == "vmap"
    # and with a module that is not a stack of layers: its attributes are reached inside the loss
    body = nn.Sequential(nn.Linear(3, 6), nn.Tanh())
    model = nn.ModuleDict({"body": body, "head": nn.Linear(6, 4)})

    def two_part(model, batch):
        inputs, targets = batch
        return F.cross_entropy(model["head"](model["body"](inputs)), targets)

    assert _grid_vs_reference(model, Loss("custom", two_part, "mine:two_part"), x, y) == "graph"


def test_token_sequences_scored_over_every_position():
    torch.manual_seed(0)
    vocab, T = 7, 5
    x = torch.randint(0, vocab, (12, T))
    y = torch.roll(x, -1, dims=1)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, 4)
            self.out = nn.Linear(4, vocab)

        def forward(self, t):
            return self.out(torch.tanh(self.emb(t)))

    model = Tiny()
    assert _grid_vs_reference(model, Loss("cross_entropy"), x, y) == "graph"
    assert _grid_vs_reference(model, Loss("cross_entropy"), x, y, method="vmap") == "vmap"
    with torch.no_grad():
        want = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1)).item()
    assert Loss("cross_entropy")(model, x, y).item() == pytest.approx(want, rel=1e-6)


def test_accuracy_only_for_class_losses():
    assert Loss("cross_entropy").classification and Loss("nll").classification
    assert not any(Loss(n).classification for n in ("mse", "l1", "smooth_l1", "bce_with_logits"))
    assert not Loss("custom", lambda m, b: 0, "m:f").classification


@pytest.mark.parametrize("name, kind, needs", [
    ("cross_entropy", "regression", "integer class labels"),
    ("nll", "unlabelled", "integer class labels"),
    ("mse", "classes", "float targets"),
    ("bce_with_logits", "tokens", "float targets"),
])
def test_a_loss_that_does_not_fit_the_data(name, kind, needs):
    with pytest.raises(LossError, match=rf"landscape.loss: bad value '{name}': it needs {needs}"):
        check_fit(Loss(name), kind)


@pytest.mark.parametrize("fn, message", [
    (lambda model, batch: 3.0, r"returned a float; it should return a scalar torch tensor"),
    (lambda model, batch: model(batch[0]), r"returned a tensor of shape \(8, 4\).*reduce it"),
    (lambda model, batch: 1 / 0, r"raised ZeroDivisionError: division by zero \(test_losses.py:\d+\)"),
])
def test_a_custom_loss_that_cannot_be_used(fn, message):
    from compute.entry import EntryError
    x, y = _classes()
    model = build_model({"name": "mlp", "widths": [4], "activation": "tanh"}, (3,), 4)
    with pytest.raises(EntryError, match=r"^landscape.loss.entry: mine:bad\(model, batch\) " + message):
        check_custom(Loss("custom", fn, "mine:bad"), model, x, y)
