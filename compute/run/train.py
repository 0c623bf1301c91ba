"""Training that records its trajectory: parameter snapshots with a per-snapshot log.

The scene's ``landscape.train`` section (studio/scene/: TrainSpec, scenes/README.md) as a plain
dict: optimizer (sgd, momentum, adam, adamw; momentum, nesterov, weight_decay), learning-rate
schedule (constant, step, cosine; warmup), steps or epochs, batches, snapshots (count and spacing,
or every k steps) and mixed precision on CUDA.

On the CPU the same spec gives bit-identical weights: every random draw comes from generators
seeded with ``train.seed`` in a fixed order, and an option left at its default passes nothing to
torch (its own default), so adding an option never changes the runs that do not use it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from studio.scene import TrainSpec, section
from compute.logs import log
from compute.losses import CROSS_ENTROPY, Loss
from compute.run.types import Trajectory, flat_params


#: above this many samples, the log's evaluations run in chunks (smaller sets in one pass)
_EVAL_CHUNK = 8192


# --------------------------------------------------------------------------- steps and schedules

def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: ceil(n_train / batch_size); 1 for full-batch training."""
    if batch_size <= 0 or batch_size >= n_train:
        return 1
    return -(-n_train // batch_size)


def total_steps(spec: TrainSpec, n_train: int) -> int:
    """The run's length in steps: ``epochs`` times the steps of an epoch, or ``steps`` (the rule's
    home is the scene's TrainSpec.total_steps, which the loader checks the run's length with)."""
    return section("train", spec).total_steps(n_train)


def lr_at(spec: TrainSpec, step: int, total: int) -> float:
    """The learning rate of optimizer step ``step`` (1 .. total).

    warmup w: steps 1 .. w rise linearly, lr * step / w.  After it, with u = step - w - 1:
      constant  lr
      step      lr * gamma ** (u // step_size), or lr * gamma ** (milestones below step): the rate
                drops after each milestone step (milestones count from the start of training)
      cosine    lr_min + (lr - lr_min) * (1 + cos(pi * u / (total - w))) / 2, as torch's
                CosineAnnealingLR with T_max = total - w stepped once per optimizer step
    """
    spec = section("train", spec)
    lr = float(spec.lr)
    w = int(spec.warmup or 0)
    if step <= w:
        return lr * step / w
    kind = spec.lr_schedule
    if kind == "constant":
        return lr
    u = step - w - 1
    if kind == "step":
        if spec.milestones:
            k = sum(1 for m in spec.milestones if m < step)
        else:
            k = u // int(spec.step_size)
        return lr * float(spec.gamma) ** k
    if kind == "cosine":
        lo = float(spec.lr_min or 0.0)
        return lo + (lr - lo) * (1 + math.cos(math.pi * u / (total - w))) / 2
    raise ValueError(f"unknown lr_schedule {kind!r}")


def _scheduled(spec: TrainSpec) -> bool:
    return spec.lr_schedule != "constant" or bool(spec.warmup)


def snapshot_steps(steps: int, count: int, schedule: str = "log") -> np.ndarray:
    """Which steps to keep: always 0 and the last; 'log' makes the fast early phase dense."""
    count = min(count, steps + 1)
    if schedule == "linear":
        s = np.linspace(0, steps, count)
    else:
        s = np.geomspace(1, steps + 1, count) - 1
    s = np.unique(np.round(s).astype(np.int64))
    # rounding merges early steps: top up with the densest missing ones
    if len(s) < count:
        extra = np.setdiff1d(np.arange(steps + 1), s)[: count - len(s)]
        s = np.union1d(s, extra)
    return s


def every_steps(steps: int, every: int) -> np.ndarray:
    """0, every, 2*every, ... and the last step."""
    return np.union1d(np.arange(0, steps + 1, every, dtype=np.int64), [steps]).astype(np.int64)


def keep_steps(spec: TrainSpec, total: int) -> np.ndarray:
    """The snapshot steps the spec asks for over a run of ``total`` steps."""
    spec = section("train", spec)
    if spec.every:
        return every_steps(total, int(spec.every))
    return snapshot_steps(total, spec.snapshots, spec.schedule)


# --------------------------------------------------------------------------- optimizer

def resolved_optimizer(spec: TrainSpec) -> dict:
    """The optimizer's settings with the per-optimizer defaults filled in."""
    spec = section("train", spec)
    name = spec.optimizer
    wd = spec.weight_decay
    out = {"name": name, "lr": float(spec.lr),
           # torch's AdamW default; the others decay nothing unless asked
           "weight_decay": float((0.01 if name == "adamw" else 0.0) if wd is None else wd),
           "decay": "decoupled" if name == "adamw" else "L2 (added to the gradient)"}
    if name in ("sgd", "momentum"):
        m = spec.momentum
        out["momentum"] = float((0.9 if name == "momentum" else 0.0) if m is None else m)
        out["nesterov"] = bool(spec.nesterov)
    return out


def make_optimizer(spec: TrainSpec, params) -> torch.optim.Optimizer:
    spec = section("train", spec)
    o = resolved_optimizer(spec)
    lr, wd = o["lr"], o["weight_decay"]
    # only non-default arguments are passed: a default keeps torch's own code path
    if o["name"] in ("sgd", "momentum"):
        kw = {}
        if o["momentum"]:
            kw["momentum"] = o["momentum"]
        if o["nesterov"]:
            kw["nesterov"] = True
        if wd:
            kw["weight_decay"] = wd
        return torch.optim.SGD(params, lr=lr, **kw)
    if o["name"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, **({"weight_decay": wd} if wd else {}))


def amp_mode(spec: TrainSpec, device: torch.device) -> tuple[torch.dtype | None, str]:
    """(autocast dtype or None, what the provenance says)."""
    spec = section("train", spec)
    if not spec.amp:
        return None, "off"
    if device.type != "cuda":
        return None, "ignored: mixed precision needs a CUDA GPU; trained in fp32"
    # bf16 where the GPU computes it (Ampere, compute capability 8, and later; AMD GPUs): torch's
    # is_bf16_supported() also says yes where bf16 is only emulated (a V100 or T4: slower than fp32),
    # and it asks about the current device, not necessarily this one
    if torch.version.hip or torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16, "bf16 autocast"
    return torch.float16, "fp16 autocast with GradScaler"


# --------------------------------------------------------------------------- training

@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, loss: Loss = CROSS_ENTROPY
             ) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` on (x, y); the accuracy is NaN where it means nothing (a loss
    of float targets, the user's own loss).  ``y`` None: the target is the input."""
    model.eval()
    target = x if y is None else y
    acc = loss.classification
    if len(x) <= _EVAL_CHUNK:
        out = model(x) if loss.builtin else None
        value = loss.of_output(out, target).item() if loss.builtin else loss(model, x, y).item()
        return value, loss.accuracy(out, target).item() if acc else math.nan
    # a large training set in chunks, so logging it needs no more memory than a batch does
    total, right, count = 0.0, 0.0, 0
    for i in range(0, len(x), _EVAL_CHUNK):
        xs, ts = x[i:i + _EVAL_CHUNK], target[i:i + _EVAL_CHUNK]
        if loss.builtin:
            out = model(xs)
            total += loss.of_output(out, ts, reduction="sum").item()
            right += float((out.argmax(-1) == ts).sum()) if acc else 0.0
            count += ts.numel() if loss.classification else len(xs)
        else:                               # the user's loss is a mean: weighted by the chunk's size
            total += loss(model, xs, None if y is None else ts).item() * len(xs)
            count += len(xs)
    if loss.builtin and not loss.classification:
        count = target.numel()              # elementwise losses average over every value
    return total / count, right / count if acc else math.nan


class _Snapshots:
    """The snapshots a training run keeps: the flat parameters and the log, step by step."""

    def __init__(self, model: nn.Module, train_data: tuple, eval_data: tuple, loss_fn: Loss, spec: TrainSpec,
                 total: int, spe: int):
        self.model, self.train_data, self.eval_data, self.loss_fn = model, train_data, eval_data, loss_fn
        self.spec, self.total, self.spe = spec, total, spe
        self.steps, self.params = [], []
        self.train_loss, self.train_acc, self.eval_loss, self.eval_acc, self.lr, self.epoch = [], [], [], [], [], []

    def record(self, step: int) -> None:
        self.steps.append(step)
        self.params.append(flat_params(self.model).cpu())
        loss, acc = evaluate(self.model, *self.train_data, self.loss_fn)
        self.train_loss.append(loss)
        self.train_acc.append(acc)
        loss, acc = evaluate(self.model, *self.eval_data, self.loss_fn)
        self.eval_loss.append(loss)
        self.eval_acc.append(acc)
        self.lr.append(lr_at(self.spec, max(step, 1), self.total))
        self.epoch.append(step / self.spe)

    def trajectory(self, info: dict) -> Trajectory:
        return Trajectory(np.array(self.steps, dtype=np.int64), torch.stack(self.params), np.array(self.train_loss),
                          np.array(self.eval_loss), np.array(self.eval_acc), np.array(self.train_acc),
                          np.array(self.lr), np.array(self.epoch, dtype=np.float64), info)


def _log_data(x: torch.Tensor, y: torch.Tensor | None, spec: TrainSpec,
              g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """The training data the log is measured on: all of it, or ``log_samples`` of it (a seeded
    subset, class-balanced for class labels; otherwise drawn from ``g``, the batches' generator,
    before the first batch) -> (x, y, what it is, in words)."""
    n, log_n = len(x), int(spec.log_samples or 0)
    if not 0 < log_n < n:
        return x, y, f"all {n} training samples"
    from compute.data import eval_subset
    balanced = y is not None and y.dim() == 1 and not y.is_floating_point()
    if balanced:
        _, _, lidx = eval_subset(x.cpu(), y.cpu(), log_n, spec.seed)
    else:
        lidx = torch.randperm(n, generator=g)[:log_n].sort().values
    lidx = lidx.to(x.device)
    tx, ty = x[lidx], (None if y is None else y[lidx])
    return tx, ty, (f"a seeded{', class-balanced' if balanced else ''} subset of {len(tx)} of the {n} training "
                    f"samples (train.log_samples)")


def _batches(x: torch.Tensor, y: torch.Tensor | None, spec: TrainSpec, spe: int, g: torch.Generator):
    """The batch of each step, forever, drawn from ``g``: the whole set, random draws with
    replacement, or each epoch a fresh permutation cut into ``spe`` batches (``batches: shuffled``)."""
    n = len(x)
    bs = spec.batch_size or n
    shuffled = spec.batches == "shuffled"
    perm, step = None, 0
    while True:
        step += 1
        if bs >= n:
            yield x, y
            continue
        if shuffled:
            j = (step - 1) % spe
            if j == 0:
                perm = torch.randperm(n, generator=g)
            idx = perm[j * bs:(j + 1) * bs].to(x.device)
        else:
            idx = torch.randint(n, (bs,), generator=g).to(x.device)
        yield x[idx], (None if y is None else y[idx])


def _step(model: nn.Module, opt, loss_fn: Loss, xb, yb, amp_dtype, scaler) -> None:
    """One optimizer step on a batch, in fp32 or under autocast (with a gradient scaler for fp16)."""
    if amp_dtype is None:
        loss = loss_fn(model, xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return
    with torch.autocast(device_type=xb.device.type, dtype=amp_dtype):
        out = model(xb)
    loss = loss_fn.of_output(out.float(), xb if yb is None else yb) if loss_fn.builtin else loss_fn(model, xb, yb)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, ex: torch.Tensor, ey: torch.Tensor | None,
          spec: TrainSpec, progress: bool = True, loss_fn: Loss = CROSS_ENTROPY) -> Trajectory:
    """Train ``model`` on (x, y) as ``spec`` (the scene's train: section) says.

    Snapshots (at :func:`keep_steps`) keep the flat parameters and the log: step, epoch, learning
    rate, loss and accuracy on the training data (all of it, or ``log_samples`` of it: a seeded,
    class-balanced subset) and on the evaluation subset (ex, ey)."""
    spec = section("train", spec)
    torch.manual_seed(spec.seed)
    n = len(x)
    total = total_steps(spec, n)
    spe = steps_per_epoch(n, spec.batch_size)
    opt = make_optimizer(spec, model.parameters())
    keep = set(keep_steps(spec, total).tolist())
    g = torch.Generator(device="cpu").manual_seed(spec.seed)
    batches = _batches(x, y, spec, spe, g)
    amp_dtype, amp_note = amp_mode(spec, x.device)
    if spec.amp and amp_dtype is None:
        log("train.amp: mixed precision needs a CUDA GPU; training on the CPU in fp32 (amp ignored)")
    scaler = torch.amp.GradScaler(x.device.type) if amp_dtype == torch.float16 else None
    tx, ty, log_data = _log_data(x, y, spec, g)
    snaps = _Snapshots(model, (tx, ty), (ex, ey), loss_fn, spec, total, spe)
    snaps.record(0)
    bar = tqdm(range(1, total + 1), desc="train", unit="step", disable=not progress,
               mininterval=0.5, dynamic_ncols=True)
    for step in bar:
        model.train()
        xb, yb = next(batches)
        if _scheduled(spec):
            for group in opt.param_groups:
                group["lr"] = lr_at(spec, step, total)
        _step(model, opt, loss_fn, xb, yb, amp_dtype, scaler)
        if step in keep:
            snaps.record(step)
            bar.set_postfix(loss=f"{snaps.train_loss[-1]:.4f}", acc=f"{snaps.eval_acc[-1]:.3f}", refresh=False)
    bar.close()
    bs, shuffled = spec.batch_size or n, spec.batches == "shuffled"
    info = {"steps": total, "steps_per_epoch": spe, "epochs": total / spe,
            "batch_size": bs, "batches": "shuffled each epoch" if shuffled and bs < n else
            ("random, with replacement" if bs < n else "the whole training set"),
            "optimizer": resolved_optimizer(spec), "lr_schedule": spec.lr_schedule,
            "warmup": int(spec.warmup or 0), "amp": amp_note, "snapshots": len(snaps.steps),
            "log_data": log_data, "eval_data": f"the grid's evaluation subset ({len(ex)} samples)"}
    return snaps.trajectory(info)
