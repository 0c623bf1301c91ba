"""Data sets.  Everything here works with no network at run time."""
from __future__ import annotations

import math

import torch


def spirals(samples: int, classes: int = 2, turns: float = 1.75, noise: float = 0.2,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved spiral arms in the plane, one per class, scaled to about [-1, 1]^2.

    ``noise`` is the standard deviation of the Gaussian jitter in units of the
    gap between neighbouring arms, so the task's difficulty does not change
    with the number of arms or turns.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(samples) % classes
    t = torch.rand(samples, generator=g, dtype=torch.float64)
    r = 0.08 + 0.92 * t                                    # radius from the centre outwards
    angle = 2 * math.pi * (turns * t + y.double() / classes)
    gap = 1.0 / (turns * classes)                          # radial distance between arms
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    x = x + noise * gap * torch.randn(samples, 2, generator=g, dtype=torch.float64)
    return x.float(), y


def build_data(spec: dict) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """-> (x, y, input features, classes)"""
    if spec["name"] == "spirals":
        x, y = spirals(spec["samples"], spec["classes"], spec["turns"], spec["noise"], spec["seed"])
        return x, y, 2, spec["classes"]
    raise ValueError(f"landscape.data.name: unknown data set {spec['name']!r}")


def eval_subset(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed, seeded, class-balanced subset of n samples -> (x, y, indices)."""
    n = min(n, len(y))
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    per = [torch.nonzero(y == c).flatten() for c in classes]
    per = [p[torch.randperm(len(p), generator=g)] for p in per]
    take, k = [], 0
    # round-robin over classes so the subset stays balanced
    while len(take) < n:
        for p in per:
            if k < len(p) and len(take) < n:
                take.append(p[k].item())
        k += 1
    idx = torch.tensor(sorted(take))
    return x[idx], y[idx], idx
