"""The networks the compute bench times, and which ways of evaluating each one it times.

Each case is a network with its evaluation data, as its users would hold them: the studio's
MLPs and ConvNet (the default scene's kind), a user's BatchNorm ConvNet written with torch's own
layers (and the same network in the studio's classes, its twin), the studio's ResNet-20 and the
``charlm`` example's Transformer (the user's own class, from scenes/examples/).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn

from compute.data import spirals
from compute.models import Activation, ResNet, convnet, mlp

EXAMPLES = Path(__file__).resolve().parents[2] / "scenes"


@dataclass
class Case:
    name: str
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    #: the general path timed besides the automatic one (where auto takes a special strategy)
    graph_rows: bool = False
    #: the loss-landscapes peer (a call of 40 x 40 points takes seconds on the small models only)
    peer: bool = True
    #: the same network written with the studio's classes, timed beside it (engine+compile)
    twin: Optional[nn.Module] = None
    #: the torch.func vmap row (it builds every parameter of every point: slow on large models)
    vmap: bool = True
    notes: dict = field(default_factory=dict)


def users_bn_convnet(studio: nn.Sequential) -> nn.Sequential:
    """The studio's ConvNet as a user writes it: torch's nn.ReLU in place of the studio's Activation,
    the same layers and weights."""
    return nn.Sequential(*[nn.ReLU() if isinstance(m, Activation) else m for m in studio])


def charlm(context: int, width: int = 48, layers: int = 2, heads: int = 4, vocab: int = 60) -> nn.Module:
    """scenes/examples/charlm.py's Transformer, imported as the compute stage imports a user's module."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from examples.charlm import model
    finally:
        sys.path.remove(str(EXAMPLES))
    return model(input_shape=(context,), classes=vocab, width=width, layers=layers, heads=heads)


def cases(quick: bool):
    """The bench's cases, each built on first use (seeded).  ``quick``: smaller data, for a smoke test."""
    g = torch.Generator().manual_seed(0)
    x, y = spirals(1024)
    torch.manual_seed(0)
    yield Case("mlp 2-64-64-2 (tanh), 1024 samples", mlp(2, [64, 64], 2, "tanh"), x, y, graph_rows=True)
    x64 = torch.randn(1024, 64, generator=g)
    y64 = torch.randint(0, 10, (1024,), generator=g)
    yield Case("mlp 64-64-64-10 (relu), 1024 samples", mlp(64, [64, 64], 10, "relu"), x64, y64, graph_rows=True)
    n = 64 if quick else 128
    xc = torch.randn(n, 3, 16, 16, generator=g)
    yc = torch.randint(0, 10, (n,), generator=g)
    yield Case(f"convnet 3x16x16 [16,32,32], {n} samples", convnet(3, 16, [16, 32, 32], 10, "relu"), xc, yc,
               graph_rows=True)
    n = 60 if quick else 600
    studio = _trained_like(convnet(1, 12, [16, 32], 10, "relu", batchnorm=True))
    xb = torch.randn(n, 1, 12, 12, generator=g)
    yb = torch.randint(0, 10, (n,), generator=g)
    yield Case(f"user's BN convnet (nn.ReLU) 1x12x12 [16,32], {n} samples", users_bn_convnet(studio), xb, yb,
               peer=False, twin=studio)
    n = 8 if quick else 64
    xr = torch.randn(n, 3, 32, 32, generator=g)
    yr = torch.randint(0, 10, (n,), generator=g)
    resnet = _trained_like(ResNet(3, 10, 20, 16))
    yield Case(f"resnet-20 ({_weights(resnet)} weights) 3x32x32, {n} samples", resnet, xr, yr, peer=False)
    n = 32 if quick else 256
    xt = torch.randint(0, 60, (n, 32), generator=g)
    lm = charlm(32).eval()
    yield Case(f"charlm transformer ({_weights(lm)} weights), {n} sequences of 32", lm, xt, torch.roll(xt, -1, 1),
               peer=False)


def _weights(model: nn.Module) -> str:
    return f"{round(sum(p.numel() for p in model.parameters()) / 1000)}k"


def _trained_like(model: nn.Module) -> nn.Module:
    """BatchNorm running statistics away from (0, 1), as after training (seeded)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()
