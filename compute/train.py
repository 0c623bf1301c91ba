"""Training that records its trajectory: parameter snapshots with their losses."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm


@dataclass
class Trajectory:
    steps: np.ndarray          # (T,) int64, training step of each snapshot (0 = initial weights)
    params: torch.Tensor       # (T, P) float32, flattened parameters at each snapshot
    train_loss: np.ndarray     # (T,) loss on the training data
    eval_loss: np.ndarray      # (T,) loss on the evaluation subset (the data of the grid)
    eval_accuracy: np.ndarray  # (T,)


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


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def set_flat(model: nn.Module, flat: torch.Tensor) -> None:
    i = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(flat[i:i + n].view_as(p))
            i += n


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    out = model(x)
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ex: torch.Tensor, ey: torch.Tensor,
          spec: dict, progress: bool = True) -> Trajectory:
    """Train ``model`` on (x, y) as ``spec`` (the scene's train: section) says."""
    torch.manual_seed(spec["seed"])
    opt_name, lr = spec["optimizer"], spec["lr"]
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    elif opt_name == "momentum":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    keep = set(snapshot_steps(spec["steps"], spec["snapshots"], spec.get("schedule", "log")).tolist())
    g = torch.Generator(device="cpu").manual_seed(spec["seed"])
    bs = spec["batch_size"] or len(y)
    steps, snaps, tl, el, ea = [], [], [], [], []

    def record(step):
        steps.append(step)
        snaps.append(flat_params(model).cpu())
        tl.append(evaluate(model, x, y)[0])
        l, a = evaluate(model, ex, ey)
        el.append(l)
        ea.append(a)

    record(0)
    bar = tqdm(range(1, spec["steps"] + 1), desc="train", unit="step", disable=not progress,
               mininterval=0.5, dynamic_ncols=True)
    for step in bar:
        model.train()
        if bs < len(y):
            idx = torch.randint(len(y), (bs,), generator=g).to(x.device)
            xb, yb = x[idx], y[idx]
        else:
            xb, yb = x, y
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in keep:
            record(step)
            bar.set_postfix(loss=f"{tl[-1]:.4f}", acc=f"{ea[-1]:.3f}", refresh=False)
    bar.close()
    return Trajectory(np.array(steps, dtype=np.int64), torch.stack(snaps), np.array(tl), np.array(el),
                      np.array(ea))
