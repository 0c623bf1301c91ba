"""grid.accuracy: the compute stage records the accuracy at every grid point; render can colour by it."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from compute.data import build_data, eval_subset
from compute.engine import GridEngine
from compute.plane import Plane
from compute.models import build_model, convnet, mlp
from studio import cache
from studio.scene import load_scene
from tests.conftest import ROOT

SCENE = """
landscape:
  data: {samples: 200}
  model: {widths: [12]}
  train: {steps: 60, snapshots: 10}
  grid: {resolution: [14, 11], eval_samples: 64, accuracy: true}
render:
  size: [320, 180]
  look: {color_by: accuracy}
"""


def _reference_accuracy(model, plane, a, b, x, y):
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(plane.origin[name] + a * plane.d1[name] + b * plane.d2[name])
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("kind", ["linear", "conv", "graph", "vmap"])
def test_engine_accuracy_matches_reference(kind):
    torch.manual_seed(0)
    if kind == "conv":
        m = convnet(3, 8, [4, 6], 3).eval()
        x, y = torch.randn(20, 3, 8, 8), torch.randint(0, 3, (20,))
    else:
        m = mlp(2, [8, 8], 3).eval()
        x, y = torch.randn(40, 2), torch.randint(0, 3, (40,))
    o = {k: v.detach().clone() for k, v in m.named_parameters()}
    pl = Plane(o, {k: torch.randn_like(v) for k, v in o.items()}, {k: torch.randn_like(v) for k, v in o.items()})
    method = kind if kind in ("graph", "vmap") else "auto"
    e = GridEngine(m, pl, x, y, chunk=3, method=method, accuracy=True)
    a, b = torch.linspace(-1, 1, 7), torch.linspace(1, -1, 7)
    got = e.evaluate(a, b)
    assert got.shape == (7, 2)
    ref = [_reference_accuracy(m, pl, a[i].item(), b[i].item(), x, y) for i in range(7)]
    np.testing.assert_allclose(got[:, 1].numpy(), ref, atol=1e-6)
    # the loss column is what the engine gives without accuracy
    plain = GridEngine(m, pl, x, y, chunk=3, method=method).losses(a, b)
    torch.testing.assert_close(got[:, 0], plain)


def test_pipeline_writes_the_accuracy_grid(tmp_path, gl):
    p = tmp_path / "s.yaml"
    p.write_text(SCENE)
    c = tmp_path / "cache"
    r = subprocess.run([sys.executable, "-m", "compute", str(p), "--cache-dir", str(c), "--quiet",
                        "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sc = load_scene(p)
    ls = cache.read(c, sc.cache_key())
    acc = ls.grids["accuracy"]
    assert acc.shape == ls.loss.shape == (11, 14) and acc.dtype == np.float32
    assert np.isfinite(acc).all() and acc.min() >= 0 and acc.max() <= 1 and acc.max() > acc.min()
    # spot check against the plain reference at one cell
    pv = cache.read_plane(c, sc.cache_key())
    spec = sc.landscape
    x, y, shape, n_cls, _ = build_data(spec.data)
    ex, ey, _ = eval_subset(x, y, spec.grid.eval_samples, spec.grid.seed)
    model = build_model(spec.model, shape, n_cls)
    from compute.plane import split
    plane = Plane(split(model, torch.from_numpy(np.array(pv.origin))), split(model, torch.from_numpy(np.array(pv.d1))),
                  split(model, torch.from_numpy(np.array(pv.d2))))
    j, i = 4, 9
    ref = _reference_accuracy(model, plane, float(ls.alpha[i]), float(ls.beta[j]), ex, ey)
    assert abs(acc[j, i] - ref) < 1e-6
    out = tmp_path / "still.png"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--still", "1",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
