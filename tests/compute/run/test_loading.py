"""compute/run/loading.py and compute/run/build.py: the user's own weights (landscape.weights) as a run.

A run loaded from checkpoint files gives the same plane, trajectory and grid as the same run
trained in the studio, bit for bit on the CPU; the cache key covers the files' contents; the
recorder's run folder reproduces its recorded losses."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from studio import cache
from studio.scene import SceneError, load_scene
from tests.conftest import write_scene

torch.set_num_threads(1)

TRAINED = """
landscape:
  data: {name: spirals, samples: 96}
  model: {name: mlp, widths: [6]}
  train: {steps: 20, every: 5}
  plane: PLANE
  grid: {resolution: [6, 5], eval_samples: 48}
"""
PLANES = {"pca": "{method: pca}", "checkpoints": "{method: checkpoints, checkpoints: [0, 10, 20]}",
          "interpolate": "{method: interpolate, checkpoints: [5, 20]}", "random": "{method: random}",
          "hessian": "{method: hessian, hessian: {iterations: 8}}"}


def compute(path: Path, root: Path) -> Path:
    from compute.pipeline import run
    return run(load_scene(path), root, device="cpu", progress=False)


def write_checkpoints(scene_path: Path, root: Path, folder: Path, layouts=("bare",)) -> list[int]:
    """The studio's stored run of a scene written out as checkpoint files, one per snapshot, in
    the given layouts in turn (bare state_dict, Lightning's, DataParallel's)."""
    from compute.models import build_model
    from compute.run.types import set_flat
    scene = load_scene(scene_path)
    tm = cache.read_model(root, scene.train_key())
    model = build_model(scene.landscape.model, (2,), 2)
    folder.mkdir(parents=True, exist_ok=True)
    steps = [int(s) for s in tm.log["step"]]
    for i, step in enumerate(steps):
        set_flat(model, torch.from_numpy(np.array(tm.params[i])))
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        layout = layouts[i % len(layouts)]
        if layout == "lightning":
            obj = {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 1, "global_step": step}
        elif layout == "ddp":
            obj = {f"module.{k}": v for k, v in sd.items()}
        else:
            obj = sd
        torch.save(obj, folder / f"epoch=0-step={step}.ckpt")
    return steps


@pytest.mark.parametrize("plane", list(PLANES))
def test_files_give_the_trained_runs_landscape_bit_for_bit(tmp_path, plane):
    root = tmp_path / "cache"
    trained = write_scene(tmp_path, TRAINED.replace("PLANE", PLANES[plane]), "trained.yaml")
    a = cache.read(root, load_scene(trained).cache_key()) if compute(trained, root) else None
    write_checkpoints(trained, root, tmp_path / "run", ("bare", "lightning", "ddp"))
    loaded = write_scene(tmp_path, TRAINED.replace("PLANE", PLANES[plane]).replace(
        "  train: {steps: 20, every: 5}\n", f"  weights: {{files: '{tmp_path}/run/*.ckpt'}}\n"), "loaded.yaml")
    b = cache.read(root, load_scene(loaded).cache_key()) if compute(loaded, root) else None
    assert np.array_equal(a.loss, b.loss)
    assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.beta, b.beta)
    pa, pb = cache.read_plane(root, a.key), cache.read_plane(root, b.key)
    for k in ("origin", "d1", "d2"):
        assert np.array_equal(getattr(pa, k), getattr(pb, k)), k
    ta, tb = a.paths["training"], b.paths["training"]
    for k in ("xy", "loss", "surface_loss", "offplane", "step"):
        assert np.array_equal(getattr(ta, k), getattr(tb, k)), k
    assert b.meta["training"]["source"] == "checkpoints" and len(b.meta["training"]["files"]) == 5
    assert b.meta["training"]["log"]["lr"] == [None] * 5         # not known for the user's own run


@pytest.mark.parametrize("batchnorm", ["running", "batch"])
def test_batchnorm_buffers_come_from_the_files(tmp_path, batchnorm):
    """A ConvNet with BatchNorm: the grid of the loaded run equals the trained one in both modes,
    because the final file carries the trained running statistics."""
    text = f"""
        landscape:
          data: {{name: shapes, samples: 64, size: 8, classes: 2}}
          model: {{name: convnet, channels: [3], batchnorm: true}}
          train: {{steps: 12, batch_size: 16, every: 4}}
          plane: {{method: pca}}
          grid: {{resolution: [5, 4], eval_samples: 32, batchnorm: {batchnorm}}}
        """
    root = tmp_path / "cache"
    trained = write_scene(tmp_path, text, "trained.yaml")
    compute(trained, root)
    scene = load_scene(trained)
    tm = cache.read_model(root, scene.train_key())
    from compute.run.build import build_task
    from compute.run.types import set_flat
    task = build_task(scene, torch.device("cpu"))
    (tmp_path / "run").mkdir()
    for i, step in enumerate(tm.log["step"]):
        set_flat(task.model, torch.from_numpy(np.array(tm.params[i])))
        with torch.no_grad():
            for name, b in task.model.named_buffers():
                b.copy_(torch.from_numpy(np.array(tm.buffers[name])))
        torch.save(task.model.state_dict(), tmp_path / "run" / f"step_{int(step)}.pt")
    loaded = write_scene(tmp_path, text.replace("train: {steps: 12, batch_size: 16, every: 4}",
                                                f"weights: {{files: '{tmp_path}/run/step_*.pt'}}"), "loaded.yaml")
    compute(loaded, root)
    a = cache.read(root, scene.cache_key())
    b = cache.read(root, load_scene(loaded).cache_key())
    assert np.array_equal(a.loss, b.loss)
    assert np.array_equal(a.paths["training"].xy, b.paths["training"].xy)


def test_the_key_covers_contents_not_times(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    trained = write_scene(tmp_path, TRAINED.replace("PLANE", PLANES["pca"]), "trained.yaml")
    compute(trained, root)
    write_checkpoints(trained, root, tmp_path / "run")
    loaded = write_scene(tmp_path, TRAINED.replace("PLANE", PLANES["pca"]).replace(
        "  train: {steps: 20, every: 5}\n", "  weights: {files: 'run/*.ckpt'}\n"), "loaded.yaml")
    monkeypatch.chdir(tmp_path)                # relative patterns are taken from the working directory
    key = load_scene(loaded).cache_key()
    files = sorted((tmp_path / "run").glob("*.ckpt"))
    os.utime(files[2], (1, 1))                 # touched: the same key
    assert load_scene(loaded).cache_key() == key
    sd = torch.load(files[2], weights_only=True)
    sd["0.bias"] = sd["0.bias"] + 1e-3         # retrained: a new key
    torch.save(sd, files[2])
    assert load_scene(loaded).cache_key() != key


def test_relative_paths_are_found_beside_the_scene_from_any_folder(tmp_path, monkeypatch):
    """A project's films/first.yaml names 'runs/*.ckpt': found in films/ when the runs are there,
    else in the project's folder above it, else in the working directory, with one key and one
    landscape every way."""
    root = tmp_path / "cache"
    trained = write_scene(tmp_path, TRAINED.replace("PLANE", PLANES["pca"]), "trained.yaml")
    compute(trained, root)
    films = tmp_path / "project" / "films"
    films.mkdir(parents=True)
    write_checkpoints(trained, root, films / "runs")
    text = TRAINED.replace("PLANE", PLANES["pca"]).replace(
        "  train: {steps: 20, every: 5}\n", "  weights: {files: 'runs/*.ckpt', final: 'runs/epoch=0-step=20.ckpt'}\n")
    scene = write_scene(films, text, "first.yaml")
    keys = []
    for cwd in (tmp_path, films, tmp_path / "project"):
        monkeypatch.chdir(cwd)
        keys.append(load_scene(scene).cache_key())
    assert len(set(keys)) == 1
    monkeypatch.chdir(tmp_path)
    entry = cache.read(root, keys[0]) if compute(scene, root) else None
    assert entry.meta["training"]["snapshots"] == 5
    # the project's runs/, above films/: found from any folder, and the same key
    (films / "runs").rename(tmp_path / "project" / "runs")
    for cwd in (tmp_path, films):
        monkeypatch.chdir(cwd)
        assert load_scene(scene).cache_key() == keys[0]
    # elsewhere: the working directory's, and the message names every folder looked in
    (tmp_path / "project" / "runs").rename(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    assert load_scene(scene).cache_key() == keys[0]
    monkeypatch.chdir(films)
    with pytest.raises(SceneError) as e:
        load_scene(scene)
    assert "landscape.weights.final: 'runs/epoch=0-step=20.ckpt': no such file in " in str(e.value)
    assert f"{films} or {tmp_path / 'project'} (the scene's folder and the one above it" in str(e.value)


def test_one_trained_model_has_no_path(tmp_path):
    """A single weights file: random and Hessian planes, descents, no training path; the plane
    methods that need a trajectory say so."""
    root = tmp_path / "cache"
    trained = write_scene(tmp_path, TRAINED.replace("PLANE", PLANES["random"]), "trained.yaml")
    compute(trained, root)
    write_checkpoints(trained, root, tmp_path / "run")
    final = sorted((tmp_path / "run").glob("*.ckpt"), key=lambda p: int(p.stem.split("=")[-1]))[-1]
    (tmp_path / "model.pt").write_bytes(final.read_bytes())
    text = TRAINED.replace("PLANE", PLANES["random"]).replace(
        "  train: {steps: 20, every: 5}\n", f"  weights: {{files: '{tmp_path}/model.pt'}}\n"
                                            f"  descents:\n    - {{name: sgd, start: [0.5, 0.5], steps: 5}}\n")
    one = write_scene(tmp_path, text, "one.yaml")
    entry = cache.read(root, load_scene(one).cache_key(), descents=load_scene(one).landscape.descents) \
        if compute(one, root) else None
    assert "training" not in entry.paths and "sgd" in entry.paths
    assert entry.meta["training"]["source"] == "weights"
    a = cache.read(root, load_scene(trained).cache_key())
    assert np.array_equal(a.loss, entry.loss)                  # the same final weights, the same plane


def test_recorder_run_reproduces_its_recorded_losses(tmp_path):
    """A user's loop with the recorder; the scene films its folder.  The loss the user recorded
    (on the evaluation data, in evaluation mode) is the loss the studio measures at each snapshot."""
    from compute.data import spirals
    from compute.run.recorder import Recorder
    x, y = spirals(96)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with Recorder(tmp_path / "run", net, total_steps=30, snapshots=8) as rec:
        for step in range(1, 31):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if rec.should_save(step):
                with torch.no_grad():
                    rec.snapshot(step, loss=torch.nn.functional.cross_entropy(net(x), y).item())
    text = f"""
        landscape:
          data: {{name: spirals, samples: 96}}
          model: {{name: mlp, widths: [6]}}
          weights: {{run: '{tmp_path}/run'}}
          grid: {{resolution: [5, 5], eval_samples: 96}}
        """
    p = write_scene(tmp_path, text)
    entry = cache.read(tmp_path / "cache", load_scene(p).cache_key()) if compute(p, tmp_path / "cache") else None
    log = entry.meta["training"]["log"]
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["snapshots"]
    assert log["step"] == [s["step"] for s in recorded]
    for measured, rec_, step in zip(log["eval_loss"], log["train_loss"], log["step"]):
        if step > 0:
            assert measured == pytest.approx(rec_, rel=1e-6), step
    assert entry.meta["training"]["source"] == "recorder"


def test_the_python_function_returns_the_entry(tmp_path, monkeypatch):
    from compute import landscape
    monkeypatch.chdir(tmp_path)
    scene = {"landscape": {"data": {"name": "regression", "function": "chirp", "samples": 64}, "loss": "mse",
                           "train": {"steps": 10, "snapshots": 4}, "grid": {"resolution": [5, 4], "eval_samples": 32}}}
    ls = landscape(scene, ["landscape.grid.resolution=[6, 4]"], progress=False)
    assert ls.loss.shape == (4, 6) and ls.meta["loss"]["name"] == "mse"
    assert ls.meta["engine"]["method"] == "linear" and ls.meta["data"]["kind"] == "regression"
    again = cache.read(tmp_path / "cache", ls.key)
    assert np.array_equal(again.loss, ls.loss)


def test_a_torchvision_network_takes_a_local_weights_file(tmp_path):
    """A torchvision network by name with a weights file already on disk (nothing downloaded) and
    more outputs than the data has classes (as ImageNet weights have 1000)."""
    import torchvision
    torch.manual_seed(3)
    net = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=10).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
    torch.save({"model": net.state_dict(), "epoch": 90}, tmp_path / "mobilenet.pth")
    text = f"""
        landscape:
          data: {{name: shapes, samples: 32, size: 32, channels: 3, classes: 4}}
          model: {{name: torchvision, arch: mobilenet_v3_small, classes: 10}}
          weights: {{files: '{tmp_path}/mobilenet.pth'}}
          plane: {{method: random}}
          grid: {{resolution: [3, 3], eval_samples: 8}}
        """
    p = write_scene(tmp_path, text)
    entry = cache.read(tmp_path / "cache", load_scene(p).cache_key()) if compute(p, tmp_path / "cache") else None
    from compute.run.build import build_task
    task = build_task(load_scene(p), torch.device("cpu"))
    with torch.no_grad():
        want = torch.nn.functional.cross_entropy(net(task.eval.x), task.eval.y).item()
    assert entry.loss[1, 1] == pytest.approx(want, rel=1e-5)          # the grid's centre: the file's weights
    assert entry.meta["training"]["source"] == "weights" and entry.meta["data"]["outputs"] == 4
