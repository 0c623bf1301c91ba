"""Your own model and data for a scene: a worked example (scenes/custom_model.yaml uses both).

A scene names a function here with `entry: "examples.tiny_models:ring_net"` (module path, a
colon, the function).  The compute stage imports this file with the scene's folder (and the
one above it) first on Python's path, calls the function with the scene's `args:` and checks
what it returns:

* a model function is called as `ring_net(input_shape=..., classes=..., **args)` and returns a
  torch.nn.Module whose output for a batch (N, *input_shape) is (N, classes) logits;
* a data function is called as `rings(**args)` and returns (x, y) or (x, y, classes): x (N, ...)
  a float tensor, one sample per row, y (N,) integer class indices from 0.

The cache key covers the entry text and args and this file's code (and that of any module of yours
it imports): editing a function recomputes the landscape.
"""
import math

import torch
import torch.nn as nn


def rings(samples: int = 512, count: int = 3, noise: float = 0.06, seed: int = 0):
    """Concentric rings in the plane, one class per ring (radii 1/count, 2/count, ..., 1), with
    Gaussian jitter -> (x (samples, 2), y (samples,), count).  Classes take turns, so they are
    balanced."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(samples) % count
    radius = (y.float() + 1) / count
    angle = 2 * math.pi * torch.rand(samples, generator=g)
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    x = x + noise * torch.randn(samples, 2, generator=g)
    return x, y, count


class RingNet(nn.Module):
    """A small network that is not a plain stack of layers: tanh layers with a residual
    connection, then a linear read-out.  (The grid engine reads any module like this one with
    torch.export and evaluates many grid points a pass from its graph.)"""

    def __init__(self, features: int, classes: int, hidden: int):
        super().__init__()
        self.inp = nn.Linear(features, hidden)
        self.mid = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = h + torch.tanh(self.mid(h))          # the residual connection
        return self.out(h)


def ring_net(input_shape, classes, hidden: int = 16):
    """The model function: input_shape is one sample's shape ((2,) for the rings), classes the
    number of classes the data has; hidden comes from the scene's args."""
    if len(input_shape) != 1:
        raise ValueError(f"ring_net takes points (features,), not {tuple(input_shape)}")
    return RingNet(input_shape[0], classes, hidden)
