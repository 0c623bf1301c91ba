"""A classifier of token sequences, written as users write one: an ``nn.Embedding`` first, torch's
own ``nn.TransformerEncoder``, data that returns int64 token ids with class labels.  The ids reach
the model as ids (compute/data.py), the grid runs on the general path, the Hessian figures work
through attention (compute/plane/hessian.py), and the film's description says what the data is."""
from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from studio import cache  # noqa: E402
from studio.scene import load_scene  # noqa: E402
from tests.conftest import write_scene  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

NETS = '''
import torch
import torch.nn as nn


class SeqClassifier(nn.Module):
    def __init__(self, vocab=4, dim=8, heads=2, length=6, classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, length, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=16, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens) + self.pos).mean(dim=1))
'''

DATA = '''
import torch


def sequences(n=64, length=6):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (n, length), generator=g)
    return x, ((x == 1).sum(1) > (x == 2).sum(1)).long()
'''


@pytest.fixture
def project(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    (tmp_path / "tokdata.py").write_text(DATA)
    yield tmp_path
    for m in ("nets", "tokdata"):
        sys.modules.pop(m, None)


def test_token_ids_stay_ids_and_image_bytes_become_values():
    from compute.data import _classes
    ids = torch.randint(0, 9, (10, 5))
    y = torch.arange(10) % 2
    assert _classes(ids, y, None, "e").x.dtype == torch.int64
    assert _classes(ids.int(), y, None, "e").x.dtype == torch.int64
    images = torch.randint(0, 255, (10, 1, 4, 4), dtype=torch.uint8)
    d = _classes(images, y, None, "e")
    assert d.x.dtype == torch.float32 and d.x.equal(images.float())
    assert _classes(ids, y, None, "e").as_float().x.dtype == torch.float32   # for the built-in models
    from compute.entry import EntryError
    with pytest.raises(EntryError, match="negative value .*token ids"):
        _classes(ids - 3, y, None, "e")


def test_a_token_classifier_films_like_any_network(project):
    scene = write_scene(project, "landscape:\n"
                                 "  data: {name: custom, entry: 'tokdata:sequences'}\n"
                                 "  model: {name: custom, entry: 'nets:SeqClassifier'}\n"
                                 "  train: {steps: 12, batch_size: 16, every: 4}\n"
                                 "  grid: {resolution: [5, 4], eval_samples: 32}\n"
                                 "  figures: {hessian_budget: 100}\n", "counting.yaml")
    from compute.pipeline import run
    from render.overlay import describe
    sc = load_scene(scene)
    run(sc, project / "cache", device="cpu", progress=False)
    ls = cache.read(project / "cache", sc.cache_key())
    assert ls.loss.shape == (4, 5) and np.isfinite(ls.loss).all()
    assert ls.meta["engine"]["method"] == "graph" and not ls.meta["engine"]["fallback"]
    assert ls.meta["data"]["inputs"] == "tokens"
    assert "32 sequences of 6 tokens, 2 classes" in describe(ls.meta)
    record, _ = cache.read_figures(project / "cache", sc.cache_key())
    figures = record["figures"]
    assert figures["top_eigenvalue"] is not None, record
    assert np.isfinite(figures["top_eigenvalue"]["value"])


def test_the_hessian_goes_through_attention(project):
    """H v through torch's fused attention, against central differences of the gradient."""
    sys.path.insert(0, str(project))
    try:
        from nets import SeqClassifier
    finally:
        sys.path.remove(str(project))
    from compute.plane.hessian import hvp_function
    from compute.run.types import flat_params
    torch.manual_seed(0)
    model = SeqClassifier().eval()
    x = torch.randint(0, 4, (8, 6))
    y = torch.arange(8) % 2
    at = flat_params(model).detach().double()
    v = torch.randn_like(at)
    hv = hvp_function(model.double(), at, x, y)(v)

    def grad_at(w):
        w = w.clone().requires_grad_(True)
        params, i = {}, 0
        for n, p in model.named_parameters():
            params[n] = w[i:i + p.numel()].view(p.shape)
            i += p.numel()
        out = torch.func.functional_call(model, params, (x,))
        return torch.autograd.grad(nn.functional.cross_entropy(out, y), w)[0]
    eps = 1e-4
    fd = (grad_at(at + eps * v) - grad_at(at - eps * v)) / (2 * eps)
    assert torch.allclose(hv, fd, rtol=1e-4, atol=1e-6), (hv - fd).abs().max()
