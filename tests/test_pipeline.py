"""compute/pipeline.py: the compute stage as a whole (cache hits, broken entries)."""
from __future__ import annotations

import numpy as np
import torch

from studio import cache
from studio.scene import load_scene
from tests.conftest import write_scene

TINY = """
landscape:
  data: {name: spirals, samples: 64}
  model: {name: mlp, widths: [4]}
  train: {steps: 10, snapshots: 4}
  grid: {resolution: [6, 5], eval_samples: 32}
"""


def test_a_truncated_entry_is_not_a_cache_hit(tmp_path, capfd):
    from compute.pipeline import run
    torch.set_num_threads(1)
    scene = load_scene(write_scene(tmp_path, TINY))
    root = tmp_path / "cache"
    entry = run(scene, root, device="cpu", progress=False)
    good = np.load(entry / "loss.npy").copy()
    capfd.readouterr()
    run(scene, root, device="cpu", progress=False)
    assert "nothing to do" in capfd.readouterr().err
    data = (entry / "loss.npy").read_bytes()
    (entry / "loss.npy").write_bytes(data[:len(data) - 40])          # cut short, as by a full disk
    assert cache.problem(root, scene.cache_key()) is not None
    run(scene, root, device="cpu", progress=False)
    err = capfd.readouterr().err
    assert "loss.npy" in err or "not readable" in err, err
    assert "computing it again" in err and "cache hit" not in err
    assert np.array_equal(np.load(entry / "loss.npy"), good)          # recomputed, the same grid


KINDS = '''
import torch

def images():                                   # no labels: an autoencoder's data
    g = torch.Generator().manual_seed(0)
    return torch.rand(48, 1, 4, 4, generator=g)

def tokens():                                   # sequences and their next tokens
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (40, 6), generator=g)
    return x, torch.roll(x, -1, dims=1), 5

class Tiny(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 4)
        self.out = torch.nn.Linear(4, vocab)

    def forward(self, t):
        return self.out(torch.tanh(self.emb(t)))

def tiny(input_shape, classes):
    return Tiny(classes)
'''


def test_every_kind_of_data_trains_and_films(tmp_path):
    """Regression, data without labels and token sequences, trained by the studio end to end;
    accuracy appears only where there are classes."""
    from compute.pipeline import run
    torch.set_num_threads(1)
    (tmp_path / "kinds.py").write_text(KINDS)
    cases = {
        "regression": ("{name: regression, function: chirp, samples: 64}", "{name: mlp, widths: [6]}", "mse"),
        "unlabelled": ("{name: custom, entry: 'kinds:images'}", "{name: mlp, widths: [3]}", "mse"),
        "tokens": ("{name: custom, entry: 'kinds:tokens'}", "{name: custom, entry: 'kinds:tiny'}", "cross_entropy"),
    }
    for kind, (data, model, loss) in cases.items():
        text = f"""
            landscape:
              data: {data}
              model: {model}
              loss: {loss}
              train: {{steps: 12, snapshots: 4}}
              grid: {{resolution: [5, 4], eval_samples: 24}}
            """
        scene = load_scene(write_scene(tmp_path, text, f"{kind}.yaml"))
        ls = cache.read(tmp_path / "cache", scene.cache_key()) if run(scene, tmp_path / "cache", device="cpu",
                                                                      progress=False) else None
        assert ls.meta["data"]["kind"] == kind and np.isfinite(ls.loss).all()
        log = ls.meta["training"]["log"]
        assert log["eval_loss"][-1] < log["eval_loss"][0], kind          # it learned something
        has_accuracy = kind == "tokens"
        assert (log["eval_accuracy"][-1] is not None) == has_accuracy, kind
