"""A user's own project, from its checkpoints to a film, with a scene of five lines and nothing else
written: a residual CNN class with constructor arguments of its own and its own forward, data from
a function, checkpoints in the PyTorch tutorial's layout, the compute and render stages run from the
project's folder as a user runs them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

MODEL = '''
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)
        self.c2, self.b2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(out)) + x)


class TinyResNet(nn.Module):
    def __init__(self, num_classes=10, ch=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU())
        self.block = Block(ch)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
'''

DATA = '''
import torch


def bars(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 1, 10, 10, generator=g) * 0.8
    for i in range(n):
        if y[i] == 0:
            x[i, 0, 4:6, :] += 1.5
        elif y[i] == 1:
            x[i, 0, :, 4:6] += 1.5
        else:
            x[i, 0].diagonal().add_(1.5)
    return x, y


def eval_data(n=64):
    return bars(n, 1)
'''

TRAIN = '''
import os, sys, torch
import torch.nn.functional as F
sys.path.insert(0, os.getcwd())
from data import bars
from model import TinyResNet
torch.manual_seed(0)
x, y = bars(256, 0)
net = TinyResNet(num_classes=3, ch=8)
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
os.makedirs("runs/sgd", exist_ok=True)
for step in range(41):
    idx = torch.randint(0, len(x), (32,))
    loss = F.cross_entropy(net(x[idx]), y[idx])
    if step % 5 == 0:
        torch.save({"epoch": 0, "step": step, "model_state_dict": net.state_dict(),
                    "optimizer_state_dict": opt.state_dict(), "loss": loss.item()}, f"runs/sgd/ckpt_{step}.pt")
    opt.zero_grad(); loss.backward(); opt.step()
'''

SCENE = '''landscape:
  data:    {name: custom, entry: "data:eval_data"}
  model:   {name: custom, entry: "model:TinyResNet", args: {num_classes: 3, ch: 8}}
  weights: {files: "runs/sgd/ckpt_*.pt"}
  plane:   {method: pca}
  grid:    {resolution: [24, 20], eval_samples: 64}
'''


def _project(root: Path) -> Path:
    (root / "films").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    for name, text in (("model.py", MODEL), ("data.py", DATA), ("train.py", TRAIN)):
        (root / name).write_text(text)
    scene = root / "films" / "bars_first_look.yaml"
    scene.write_text(SCENE)
    return scene


def _run(args, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LANDSCAPE_STUDIO_CACHE",)}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_a_users_project_from_checkpoints_to_a_film(tmp_path, gl, monkeypatch):
    root = tmp_path / "project"
    scene = _project(root)
    assert _run(["train.py"], root).returncode == 0
    assert len(list((root / "runs" / "sgd").glob("ckpt_*.pt"))) == 9
    r = _run(["-m", "compute", "films/bars_first_look.yaml"], root)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stderr
    assert "Traceback" not in log and "FutureWarning" not in log
    assert "loaded 9 checkpoints" in log and "drawn as 8 straight segments" in log      # say: save more
    assert "window" in log and "grid 24x20: the general path" in log and " at " in log  # probe, path, estimate
    from studio import cache
    from studio.scene import load_scene
    monkeypatch.chdir(root)                   # the weights' paths are the working directory's, as documented
    sc = load_scene(scene)
    meta = cache.read(root / "cache", sc.cache_key()).meta              # the project's cache/, found from cwd
    assert meta["engine"]["method"] == "graph" and meta["model_class"] == "TinyResNet"
    assert "window" in meta["plane"]
    out = tmp_path / "film.mp4"
    r = _run(["-m", "render", "films/bars_first_look.yaml", "--size", "320x180", "--fps", "8", "--duration", "3",
              "--out", str(out)], root)
    assert r.returncode == 0, r.stderr[-3000:]
    from render.writer import probe
    assert probe(out) == {"codec": "h264", "pix_fmt": "yuv420p", "width": 320, "height": 180, "frames": 24}
    from render.film import Film, Options
    ls = cache.read(root / "cache", sc.cache_key())
    with Film(sc, ls, Options(320, 180, 8, 3.0)) as film:
        first, last = film.frame(1.2), film.frame(3.0)
        end = film.trails[0][0].points[-1]
        state = film.camera.state(3.0)
        title, subtitle = sc.film_title, film.overlays.subtitle
    from render.camera.auto import Field, visible
    from render.camera.projection import project_points
    px = project_points(end[None, :], state, 320, 180, 3.0)[0]
    assert 0 < px[0] < 320 and 0 < px[1] < 180                                        # the end in the frame
    terrain = film.terrain
    assert visible(Field(terrain.level * terrain.heights.top, terrain.half_y), state, end[None, :]).all()
    assert title == "Bars first look" and subtitle.startswith("TinyResNet (") and "64 images 1x10x10" in subtitle
    assert first.std() > 10 and last.std() > 10 and np.abs(first.astype(int) - last).mean() > 5
