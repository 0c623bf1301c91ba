"""The run's types: what a network is scored on (:class:`Task`) and its weights over training
(:class:`Run`, holding a :class:`Trajectory`), with the helpers that move weights between a model and
a flat vector.  The factory that makes them is build.py; training (train.py) and loading (loading.py)
fill a Trajectory."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from compute.data import Dataset
from compute.losses import Loss


@dataclass
class Trajectory:
    steps: np.ndarray          # (T,) int64, training step of each snapshot (0 = initial weights)
    params: torch.Tensor       # (T, P) float32, flattened parameters at each snapshot
    train_loss: np.ndarray     # (T,) loss on the training data (or train.log_samples of it)
    eval_loss: np.ndarray      # (T,) loss on the evaluation subset (the data of the grid)
    eval_accuracy: np.ndarray  # (T,)
    train_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) same data as train_loss
    lr: np.ndarray = field(default_factory=lambda: np.zeros(0))     # (T,) learning rate of the step that
                                                                    # made the snapshot (step 0: the first's)
    epoch: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) step / steps per epoch
    info: dict = field(default_factory=dict)   # resolved settings for the provenance record

    def log(self) -> dict[str, list]:
        """The per-snapshot log as columns of plain numbers (JSON-ready): studio/store.py's LOG_COLUMNS."""
        return {"step": [int(s) for s in self.steps], "epoch": [float(v) for v in self.epoch],
                "lr": [float(v) for v in self.lr], "train_loss": [float(v) for v in self.train_loss],
                "train_accuracy": [float(v) for v in self.train_accuracy],
                "eval_loss": [float(v) for v in self.eval_loss],
                "eval_accuracy": [float(v) for v in self.eval_accuracy]}


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def set_flat(model: nn.Module, flat: torch.Tensor) -> None:
    i = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(flat[i:i + n].view_as(p))
            i += n


#: where a run's weights came from (meta.json's training.source)
SOURCES = ("trained", "checkpoints", "weights", "recorder")


@dataclass
class Task:
    """What a network is scored on: the model, the data, the evaluation subset, the loss."""
    model: nn.Module
    data: Dataset                 # all of it, on the CPU (training uses it)
    eval: Dataset                 # the evaluation subset, on the device: the data of the grid
    eval_index: torch.Tensor      # its indices in ``data``
    loss: Loss

    @property
    def device(self) -> torch.device:
        return self.eval.x.device

    def place(self, run: "Run") -> None:
        """The model set to the run's final weights and buffers, in evaluation mode."""
        self.place_flat(run.params[run.final], run.buffers)

    def place_flat(self, params: torch.Tensor, buffers: dict) -> None:
        set_flat(self.model, params.to(self.device))
        set_buffers(self.model, buffers)
        self.model.eval()


@dataclass
class Run:
    """A network's weights over training: snapshot k is ``params[k]`` at training step ``steps[k]``."""
    trajectory: Trajectory               # steps, params (T, P), the per-snapshot log, info
    final: int                           # index of the final weights (the last, unless the scene says)
    buffers: dict[str, torch.Tensor]     # the final weights' buffers, on the CPU
    source: str                          # one of SOURCES
    seconds: float                       # training or loading
    train_key: Optional[str] = None      # the model store's key (trained runs)
    files: list[str] = field(default_factory=list)     # the checkpoint files, in step order

    @property
    def steps(self) -> np.ndarray:
        return self.trajectory.steps

    @property
    def params(self) -> torch.Tensor:
        return self.trajectory.params


def set_buffers(model: nn.Module, buffers: dict) -> None:
    """Copy buffers (tensors, or the model store's read-only arrays) into the model's, by name."""
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name in buffers:
                v = buffers[name]
                b.copy_(v if torch.is_tensor(v) else torch.from_numpy(np.array(v)))
