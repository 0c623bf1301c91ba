"""Training (compute/run/train.py): optimizers against their plain update rules, learning-rate schedules
against their closed forms and torch's schedulers, epochs, snapshot schedules, the per-snapshot log,
determinism, mixed precision, and training once for many landscapes through the trained-model store
(its key, cache hits, damaged entries).  The store's format is tests/studio/test_cache.py's, the train:
section's scene errors tests/studio/scene/test_landscape.py's."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from studio import cache
from studio.scene import TrainSpec, load_scene
from tests.conftest import write_scene

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from compute.run.train import (evaluate, keep_steps, lr_at, snapshot_steps,  # noqa: E402
                           steps_per_epoch, total_steps, train)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def spec(**kw) -> TrainSpec:
    """A resolved train: section, as the compute stage gets it."""
    return TrainSpec(**kw)


def toy(n=48, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = torch.randint(classes, (n,), generator=g)
    return x, y


def tiny_model(seed=0, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, classes))


def write(tmp_path, text, name="s.yaml"):
    return write_scene(tmp_path, text, name)


# --------------------------------------------------------------------------- optimizers

def plain_run(opt: dict, lrs: list[float], x, y):
    """The optimizers' update rules written out (torch's documented algorithms), full batch, on a
    fresh copy of tiny_model(); -> flat weights after each step."""
    model = tiny_model()
    ps = [p.detach().clone() for p in model.parameters()]
    state = [dict(b=None, m=torch.zeros_like(p), v=torch.zeros_like(p)) for p in ps]
    name, wd = opt["name"], opt.get("wd", 0.0)
    mom, nesterov = opt.get("momentum", 0.0), opt.get("nesterov", False)
    b1, b2, eps = 0.9, 0.999, 1e-8
    out = [torch.cat([p.reshape(-1) for p in ps])]
    for t, lr in enumerate(lrs, start=1):
        leaves = [p.clone().requires_grad_(True) for p in ps]
        h = torch.tanh(x @ leaves[0].T + leaves[1])
        loss = F.cross_entropy(h @ leaves[2].T + leaves[3], y)
        grads = torch.autograd.grad(loss, leaves)
        new = []
        for p, g, s in zip(ps, grads, state):
            if name == "sgd":
                g = g + wd * p
                if mom:
                    s["b"] = g.clone() if s["b"] is None else mom * s["b"] + g
                    g = g + mom * s["b"] if nesterov else s["b"]
                p = p - lr * g
            else:
                if name == "adamw":
                    p = p * (1 - lr * wd)
                else:
                    g = g + wd * p
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                mhat = s["m"] / (1 - b1 ** t)
                vhat = s["v"] / (1 - b2 ** t)
                p = p - lr * mhat / (vhat.sqrt() + eps)
            new.append(p)
        ps = new
        out.append(torch.cat([p.reshape(-1) for p in ps]))
    return torch.stack(out)


LR = 0.05
# (train: keys, the plain rule's settings, the learning rate of each of 5 steps)
OPTIMIZERS = {
    "sgd": (dict(optimizer="sgd"), dict(name="sgd"), [LR] * 5),
    "sgd_l2": (dict(optimizer="sgd", weight_decay=0.1), dict(name="sgd", wd=0.1), [LR] * 5),
    "momentum": (dict(optimizer="momentum"), dict(name="sgd", momentum=0.9), [LR] * 5),
    "momentum_nesterov": (dict(optimizer="momentum", momentum=0.5, nesterov=True),
                          dict(name="sgd", momentum=0.5, nesterov=True), [LR] * 5),
    "sgd_all": (dict(optimizer="sgd", momentum=0.8, nesterov=True, weight_decay=0.05),
                dict(name="sgd", momentum=0.8, nesterov=True, wd=0.05), [LR] * 5),
    "adam": (dict(optimizer="adam"), dict(name="adam"), [LR] * 5),
    "adam_l2": (dict(optimizer="adam", weight_decay=0.2), dict(name="adam", wd=0.2), [LR] * 5),
    "adamw": (dict(optimizer="adamw"), dict(name="adamw", wd=0.01), [LR] * 5),
    "adamw_0.3": (dict(optimizer="adamw", weight_decay=0.3), dict(name="adamw", wd=0.3), [LR] * 5),
    # warmup 2 then a drop by half after every step: lr/2, lr, lr, lr/2, lr/4
    "sgd_warmup_step": (dict(optimizer="sgd", warmup=2, lr_schedule="step", step_size=1, gamma=0.5),
                        dict(name="sgd"), [LR / 2, LR, LR, LR / 2, LR / 4]),
    "adamw_milestones": (dict(optimizer="adamw", lr_schedule="step", milestones=[2, 4], gamma=0.1),
                         dict(name="adamw", wd=0.01), [LR, LR, LR / 10, LR / 10, LR / 100]),
}


@pytest.mark.parametrize("case", list(OPTIMIZERS))
def test_optimizer_matches_plain_update_rule(case):
    keys, rule, lrs = OPTIMIZERS[case]
    x, y = toy()
    ex, ey = x[:16], y[:16]
    traj = train(tiny_model(), x, y, ex, ey, spec(lr=LR, steps=5, every=1, **keys), progress=False)
    ref = plain_run(rule, lrs, x, y)
    assert traj.steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert traj.params.shape == ref.shape
    assert torch.equal(traj.params[0], ref[0])
    # each step moves the weights by ~lr * 1: compare the moves themselves
    assert torch.allclose(traj.params, ref, rtol=1e-5, atol=1e-6), (traj.params - ref).abs().max()
    # the log's learning rate: the one each step used (step 0: the first step's)
    assert traj.lr == pytest.approx([lrs[0]] + lrs, rel=1e-12)


def test_optimizers_differ():
    """The options change the run (a guard against an option that is silently dropped)."""
    x, y = toy()
    runs = {c: train(tiny_model(), x, y, x, y, spec(lr=LR, steps=5, every=1, **OPTIMIZERS[c][0]),
                     progress=False).params[-1] for c in OPTIMIZERS}
    names = list(runs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not torch.equal(runs[a], runs[b]), (a, b)


# --------------------------------------------------------------------------- learning-rate schedules

def torch_lrs(make, total, lr):
    """The rate of each of ``total`` steps under one of torch's schedulers stepped once per step."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_schedule():
    s = spec(lr=0.2, lr_schedule="step", step_size=30, gamma=0.5, steps=100)
    got = [lr_at(s, t, 100) for t in range(1, 101)]
    assert got == pytest.approx([0.2 * 0.5 ** ((t - 1) // 30) for t in range(1, 101)], rel=1e-12)
    assert got[29] == 0.2 and got[30] == pytest.approx(0.1) and got[99] == pytest.approx(0.2 / 8)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 30, 0.5), 100, 0.2)
    assert got == pytest.approx(ref, rel=1e-12)


def test_milestone_schedule():
    s = spec(lr=1.0, lr_schedule="step", milestones=[10, 25], gamma=0.1, steps=40)
    got = [lr_at(s, t, 40) for t in range(1, 41)]
    assert got[9] == 1.0 and got[10] == pytest.approx(0.1) and got[25] == pytest.approx(0.01)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [10, 25], 0.1), 40, 1.0)
    assert got == pytest.approx(ref, rel=1e-12)


def test_cosine_schedule():
    lr, lo, total = 0.3, 0.01, 200
    s = spec(lr=lr, lr_schedule="cosine", lr_min=lo, steps=total)
    got = [lr_at(s, t, total) for t in range(1, total + 1)]
    assert got == pytest.approx([lo + (lr - lo) * (1 + math.cos(math.pi * (t - 1) / total)) / 2
                                 for t in range(1, total + 1)], rel=1e-12)
    assert got[0] == lr and got[100] == pytest.approx((lr + lo) / 2)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total, lo), total, lr)
    assert got == pytest.approx(ref, rel=1e-9)


def test_warmup_then_cosine():
    lr, w, total = 0.1, 10, 110
    s = spec(lr=lr, lr_schedule="cosine", warmup=w, steps=total)
    assert [lr_at(s, t, total) for t in range(1, w + 1)] == pytest.approx([lr * t / w for t in range(1, w + 1)])
    # after the warmup, cosine over the remaining 100 steps from lr to 0
    assert lr_at(s, w + 1, total) == lr
    assert lr_at(s, w + 51, total) == pytest.approx(lr / 2)
    assert lr_at(s, total, total) == pytest.approx(lr * (1 + math.cos(math.pi * 99 / 100)) / 2)
    # warmup alone, on a constant rate
    c = spec(lr=lr, warmup=4, steps=20)
    assert [lr_at(c, t, 20) for t in (1, 2, 4, 5, 20)] == pytest.approx([lr / 4, lr / 2, lr, lr, lr])


def test_log_records_the_schedule():
    x, y = toy()
    s = spec(lr=0.1, lr_schedule="cosine", lr_min=0.001, warmup=5, steps=40, every=5)
    traj = train(tiny_model(), x, y, x, y, s, progress=False)
    assert traj.steps.tolist() == list(range(0, 41, 5))
    assert traj.lr == pytest.approx([lr_at(s, max(int(t), 1), 40) for t in traj.steps], rel=1e-12)
    assert traj.lr[1] == pytest.approx(0.1)        # step 5: the end of the warmup


# --------------------------------------------------------------------------- epochs and batches

def test_epochs_to_steps():
    assert steps_per_epoch(1000, 64) == 16          # ceil(1000 / 64)
    assert steps_per_epoch(1024, 64) == 16
    assert steps_per_epoch(1000, 0) == 1            # the whole set each step
    assert steps_per_epoch(1000, 5000) == 1
    assert total_steps(spec(epochs=3, batch_size=64), 1000) == 48
    assert total_steps(spec(steps=77, batch_size=64), 1000) == 77
    assert TrainSpec(epochs=3, batch_size=64).total_steps(1000) == 48
    x, y = toy(n=50)
    traj = train(tiny_model(), x, y, x, y, spec(epochs=4, batch_size=8, snapshots=5, schedule="linear"),
                 progress=False)
    assert traj.steps[-1] == 4 * 7 and traj.info["steps"] == 28
    assert traj.epoch == pytest.approx(traj.steps / 7)
    assert traj.epoch[-1] == 4.0


class Recorder(nn.Module):
    """Passes its input on; in training mode it remembers which samples it saw (feature 0 holds
    the sample's index)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x[:, 0].round().long().tolist())
        return x


def test_shuffled_batches_cover_each_epoch():
    n, bs, epochs = 30, 8, 3
    x = torch.stack([torch.arange(n, dtype=torch.float32), torch.zeros(n)], 1)
    y = torch.arange(n) % 2
    rec = Recorder()
    torch.manual_seed(0)
    model = nn.Sequential(rec, nn.Linear(2, 2))
    train(model, x, y, x, y, spec(epochs=epochs, batch_size=bs, batches="shuffled", snapshots=3, lr=0.01),
          progress=False)
    assert len(rec.seen) == epochs * 4                       # ceil(30 / 8) batches an epoch
    assert [len(b) for b in rec.seen[:4]] == [8, 8, 8, 6]
    for e in range(epochs):
        seen = sum(rec.seen[4 * e:4 * e + 4], [])
        assert sorted(seen) == list(range(n))                # every sample once an epoch
    assert sum(rec.seen[:4], []) != sum(rec.seen[4:8], [])   # a new order each epoch
    # the default draws at random with replacement (as always): some sample repeats in 3 epochs
    rec2 = Recorder()
    torch.manual_seed(0)
    train(nn.Sequential(rec2, nn.Linear(2, 2)), x, y, x, y, spec(epochs=epochs, batch_size=bs, snapshots=3),
          progress=False)
    drawn = sum(rec2.seen[:4], [])
    assert len(drawn) == 32 and len(set(drawn)) < 30


# --------------------------------------------------------------------------- snapshots

@pytest.mark.parametrize("total,every,count", [(100, 10, 11), (100, 7, 16), (5, 1, 6), (1000, 333, 5),
                                               (1000, 999, 3)])
def test_every_schedule(total, every, count):
    s = keep_steps(spec(every=every), total)
    assert s[0] == 0 and s[-1] == total and len(s) == count
    assert np.all(np.diff(s)[:-1] == every) and 0 < s[-1] - s[-2] <= every


@pytest.mark.parametrize("schedule", ["log", "linear"])
@pytest.mark.parametrize("total,count", [(100, 20), (1500, 240), (12, 50)])
def test_count_schedules(schedule, total, count):
    s = keep_steps(spec(snapshots=count, schedule=schedule), total)
    assert s[0] == 0 and s[-1] == total and len(s) == min(count, total + 1)
    assert np.array_equal(s, snapshot_steps(total, count, schedule))


def test_training_keeps_the_scheduled_snapshots():
    x, y = toy()
    for keys in (dict(snapshots=7), dict(snapshots=7, schedule="linear"), dict(every=9)):
        s = spec(steps=60, lr=0.05, **keys)
        traj = train(tiny_model(), x, y, x[:10], y[:10], s, progress=False)
        assert np.array_equal(traj.steps, keep_steps(s, 60))
        assert traj.params.shape[0] == len(traj.steps)
        for col in ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "lr", "epoch"):
            assert getattr(traj, col).shape == traj.steps.shape, col


# --------------------------------------------------------------------------- the log

def test_log_values_match_direct_evaluation():
    x, y = toy(n=60)
    ex, ey = x[:20], y[:20]
    model = tiny_model()
    traj = train(model, x, y, ex, ey, spec(steps=30, lr=0.1, snapshots=4, batch_size=16), progress=False)
    # the final snapshot is the model as it ends; the log is measured on it
    last = model(x)
    assert traj.train_loss[-1] == pytest.approx(F.cross_entropy(last, y).item(), rel=1e-6)
    assert traj.train_accuracy[-1] == pytest.approx((last.argmax(1) == y).float().mean().item())
    out = model(ex)
    assert traj.eval_loss[-1] == pytest.approx(F.cross_entropy(out, ey).item(), rel=1e-6)
    assert traj.eval_accuracy[-1] == pytest.approx((out.argmax(1) == ey).float().mean().item())
    # step 0: the initial weights
    first = tiny_model()
    assert traj.train_loss[0] == pytest.approx(F.cross_entropy(first(x), y).item(), rel=1e-6)
    assert "all 60 training samples" in traj.info["log_data"]


def test_log_samples_subset():
    from compute.data import eval_subset
    x, y = toy(n=200)
    model = tiny_model()
    traj = train(model, x, y, x[:20], y[:20], spec(steps=10, snapshots=3, log_samples=50, seed=3),
                 progress=False)
    sx, sy, _ = eval_subset(x, y, 50, 3)
    assert traj.train_loss[-1] == pytest.approx(F.cross_entropy(model(sx), sy).item(), rel=1e-6)
    assert traj.train_loss[-1] != pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)
    assert "50 of the 200" in traj.info["log_data"]


def test_evaluate_in_chunks_equals_one_pass():
    from compute.run import train as tr
    x, y = toy(n=100)
    model = tiny_model()
    whole = evaluate(model, x, y)
    old = tr._EVAL_CHUNK
    tr._EVAL_CHUNK = 16
    try:
        chunked = evaluate(model, x, y)
    finally:
        tr._EVAL_CHUNK = old
    assert chunked == pytest.approx(whole, rel=1e-6)


# --------------------------------------------------------------------------- real tasks, determinism

def data_and_model(landscape):
    from compute.data import build_data, eval_subset
    from compute.models import build_model
    x, y, shape, n, _ = build_data(landscape.data)
    ex, ey, _ = eval_subset(x, y, 128, 0)
    torch.manual_seed(landscape.train.seed)
    return x, y, ex, ey, build_model(landscape.model, shape, n)


def landscape_of(tmp_path, text):
    return load_scene(write(tmp_path, text)).landscape


def test_training_learns_spirals(tmp_path):
    ls = landscape_of(tmp_path, """
        landscape:
          data: {samples: 512, turns: 1.0}
          model: {widths: [32, 32], activation: tanh}
          train: {optimizer: adamw, lr: 0.02, steps: 300, batch_size: 128, lr_schedule: cosine, snapshots: 10}
        """)
    x, y, ex, ey, model = data_and_model(ls)
    traj = train(model, x, y, ex, ey, ls.train, progress=False)
    assert traj.train_loss[-1] < 0.4 * traj.train_loss[0]
    assert traj.train_accuracy[-1] > 0.85 and traj.eval_accuracy[-1] > 0.85


def test_training_learns_shapes_with_a_convnet(tmp_path):
    ls = landscape_of(tmp_path, """
        landscape:
          data: {name: shapes, samples: 256, size: 12, classes: 3}
          model: {name: convnet, channels: [4, 8]}
          train: {optimizer: adam, lr: 0.01, epochs: 10, batch_size: 32, batches: shuffled, snapshots: 5}
        """)
    x, y, ex, ey, model = data_and_model(ls)
    traj = train(model, x, y, ex, ey, ls.train, progress=False)
    assert traj.steps[-1] == 80                    # 10 epochs of 256 / 32 steps
    assert traj.train_loss[-1] < 0.4 * traj.train_loss[0]
    assert traj.train_accuracy[-1] > 0.8 and traj.eval_accuracy[-1] > 0.8


def test_deterministic(tmp_path):
    ls = landscape_of(tmp_path, """
        landscape:
          data: {samples: 256}
          model: {widths: [16]}
          train: {optimizer: adamw, lr: 0.01, steps: 60, batch_size: 32, batches: shuffled, warmup: 5,
                  lr_schedule: cosine, every: 20, seed: 4}
        """)
    runs = []
    for _ in range(2):
        x, y, ex, ey, model = data_and_model(ls)
        runs.append(train(model, x, y, ex, ey, ls.train, progress=False))
    assert torch.equal(runs[0].params, runs[1].params)
    assert np.array_equal(runs[0].eval_loss, runs[1].eval_loss)
    # and a different seed is a different run
    other = ls.model_copy(update={"train": ls.train.model_copy(update={"seed": 5})})
    x, y, ex, ey, model = data_and_model(other)
    assert not torch.equal(train(model, x, y, ex, ey, other.train, progress=False).params, runs[0].params)


def test_amp_on_cpu_is_ignored_with_a_note(capfd):
    x, y = toy()
    a = train(tiny_model(), x, y, x, y, spec(steps=5, snapshots=3, amp=True), progress=False)
    assert "amp ignored" in capfd.readouterr().err
    b = train(tiny_model(), x, y, x, y, spec(steps=5, snapshots=3), progress=False)
    assert torch.equal(a.params, b.params)
    assert a.info["amp"].startswith("ignored")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_amp_code_path(monkeypatch, dtype):
    """The autocast path (and, for fp16, the gradient scaler) run here on the CPU by pretending the
    CPU supports it, so it is exercised without a GPU: it learns, keeps fp32 weights, and is not
    the fp32 run (autocast really engaged)."""
    from compute.run import train as tr
    monkeypatch.setattr(tr, "amp_mode", lambda spec, device: (getattr(torch, dtype), "test"))
    x, y = toy(n=256, classes=2)
    y = (x[:, 0] * x[:, 1] > 0).long()
    s = spec(steps=150, lr=0.02, snapshots=4, amp=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2))
    a = train(model, x, y, x, y, s, progress=False)
    assert a.params.dtype == torch.float32 and next(model.parameters()).dtype == torch.float32
    assert a.train_loss[-1] < 0.7 * a.train_loss[0]
    monkeypatch.setattr(tr, "amp_mode", lambda spec, device: (None, "off"))
    torch.manual_seed(0)
    b = train(nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2)), x, y, x, y, s, progress=False)
    assert torch.equal(a.params[0], b.params[0]) and not torch.equal(a.params[-1], b.params[-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision needs a CUDA GPU")
def test_amp_on_cuda_trains():
    dev = torch.device("cuda")
    x, y = toy(n=512, classes=2)
    y = (x[:, 0] * x[:, 1] > 0).long()
    x, y = x.to(dev), y.to(dev)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 2)).to(dev)
    traj = train(model, x, y, x, y, spec(steps=300, lr=0.01, snapshots=5, amp=True), progress=False)
    assert traj.info["amp"] in ("bf16 autocast", "fp16 autocast with GradScaler")
    assert traj.params.dtype == torch.float32           # the weights stay fp32
    assert traj.train_loss[-1] < 0.5 * traj.train_loss[0]


# --------------------------------------------------------------------------- the trained-model store

TINY = """
title: tiny
landscape:
  data: {samples: 256}
  model: {widths: [8]}
  train: {steps: 40, snapshots: 8, lr: 0.05}
  plane: {method: pca}
  grid: {resolution: [6, 5], eval_samples: 64}
"""


def test_train_key():
    def key(text):
        import yaml
        from studio.scene import Scene
        return Scene.model_validate(yaml.safe_load(textwrap.dedent(text))).train_key()

    base = key(TINY)
    same = [TINY.replace("method: pca", "method: random"),
            TINY.replace("[6, 5]", "[40, 30]"),
            TINY.replace("grid: {", "descents: [{name: d, start: [0.1, 0.2]}]\n  grid: {"),
            TINY.replace("lr: 0.05", "lr: 0.05, lr_schedule: constant, amp: false")]   # defaults written out
    for t in same:
        assert key(t) == base
    for t in (TINY.replace("eval_samples: 64", "eval_samples: 65"),
              TINY.replace("[6, 5]", "[6, 5], seed: 1"),
              TINY.replace("lr: 0.05", "lr: 0.06"),
              TINY.replace("lr: 0.05", "lr: 0.05, amp: true"),
              TINY.replace("widths: [8]", "widths: [9]"),
              TINY.replace("samples: 256", "samples: 257")):
        assert key(t) != base


def run_compute(scene_path: Path, root: Path, capfd, force=False) -> str:
    from compute.pipeline import run
    run(load_scene(scene_path), root, device="cpu", progress=False, force=force)
    return capfd.readouterr().err


def test_model_cache_hit_skips_training(tmp_path, capfd, monkeypatch):
    from compute.run import build as runs
    root = tmp_path / "cache"
    a = write(tmp_path, TINY, "a.yaml")
    err = run_compute(a, root, capfd)
    scene_a = load_scene(a)
    tkey = scene_a.train_key()
    assert f"stored the trained model in {root / 'models' / tkey}" in err
    assert cache.has_model(root, tkey)

    def no_training(*args, **kw):
        raise AssertionError("trained although the model store has this model")

    monkeypatch.setattr(runs, "train", no_training)
    b = write(tmp_path, TINY.replace("method: pca", "method: random").replace("[6, 5]", "[7, 4]"), "b.yaml")
    scene_b = load_scene(b)
    assert scene_b.cache_key() != scene_a.cache_key() and scene_b.train_key() == tkey
    err = run_compute(b, root, capfd)
    assert f"trained model from {root / 'models' / tkey} (trained in" in err
    ma = cache.read(root, scene_a.cache_key()).meta["training"]
    mb = cache.read(root, scene_b.cache_key()).meta["training"]
    assert ma["train_key"] == mb["train_key"] == tkey
    assert ma["from_cache"] is False and mb["from_cache"] is True
    assert ma["log"] == mb["log"]                                  # the same run, bit for bit
    log = cache.training_log(cache.read(root, scene_b.cache_key()).meta)
    assert log["step"].tolist() == keep_steps(load_scene(a).landscape.train, 40).tolist()
    assert set(log) == set(cache.LOG_COLUMNS)
    # the same trained weights give the same path: the trajectory's losses agree
    pa = cache.read(root, scene_a.cache_key()).paths["training"]
    pb = cache.read(root, scene_b.cache_key()).paths["training"]
    assert np.array_equal(pa.loss, pb.loss) and np.array_equal(pa.step, pb.step)
    # another training section trains (here: refuses to, as patched)
    c = write(tmp_path, TINY.replace("lr: 0.05", "lr: 0.04"), "c.yaml")
    with pytest.raises(AssertionError, match="trained although"):
        run_compute(c, root, capfd)


def test_run_from_the_store_equals_a_fresh_one(tmp_path, monkeypatch):
    """A ConvNet with BatchNorm: the stored run restores the weights, the running statistics and the
    log, so the plane and the projected path are the fresh run's, bit for bit."""
    from compute.run import build as runs
    from compute.plane.fit import fit_plane
    text = """
        landscape:
          data: {name: shapes, samples: 128, size: 8, classes: 2}
          model: {name: convnet, channels: [3], batchnorm: true}
          train: {steps: 12, batch_size: 32, every: 4}
          plane: {method: hessian, hessian: {iterations: 6}}
          grid: {resolution: [4, 4], eval_samples: 32}
        """
    scene = load_scene(write(tmp_path, text))
    cpu = torch.device("cpu")

    def made():
        task = runs.build_task(scene, cpu)
        run = runs.build_run(scene, task, False, cache_root=tmp_path / "cache")
        return run, fit_plane(scene.landscape.plane, run, task)

    fresh, fresh_fit = made()
    monkeypatch.setattr(runs, "train", lambda *a, **k: pytest.fail("trained again"))
    hit, hit_fit = made()
    assert torch.equal(fresh.params, hit.params)
    assert set(fresh.buffers) == set(hit.buffers) and fresh.buffers
    assert any(not torch.equal(b, torch.zeros_like(b)) for k, b in hit.buffers.items() if "running_mean" in k)
    for k in fresh.buffers:
        assert torch.equal(fresh.buffers[k], torch.as_tensor(hit.buffers[k])), k
    for k, (a, b) in enumerate(zip(fresh_fit.plane.flat(), hit_fit.plane.flat())):
        assert torch.equal(a, b), ("origin", "d1", "d2")[k]
    assert np.array_equal(fresh_fit.xy, hit_fit.xy)
    for c in ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "lr", "epoch", "steps"):
        assert np.array_equal(getattr(fresh.trajectory, c), getattr(hit.trajectory, c)), c
    assert fresh.trajectory.info["from_cache"] is False and hit.trajectory.info["from_cache"] is True
    rec = runs.training_record(hit, hit_fit.offplane)
    assert rec["train_key"] == scene.train_key() and len(rec["log"]["step"]) == 4 and rec["source"] == "trained"


def test_model_store_damaged_or_forced_retrains(tmp_path, capfd):
    root = tmp_path / "cache"
    a = write(tmp_path, TINY, "a.yaml")
    run_compute(a, root, capfd)
    tkey = load_scene(a).train_key()
    before = cache.read_model(root, tkey)
    (cache.model_dir(root, tkey) / "params.npy").write_bytes(b"not an array")
    b = write(tmp_path, TINY.replace("[6, 5]", "[5, 5]"), "b.yaml")
    err = run_compute(b, root, capfd)
    assert "is not readable" in err and "training again" in err
    assert np.array_equal(cache.read_model(root, tkey).params, before.params)   # stored again, same run
    err = run_compute(a, root, capfd, force=True)
    assert "trained model from" not in err and "stored the trained model" in err
