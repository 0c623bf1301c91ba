"""Data without labels for an autoencoder (scenes/autoencoder.yaml): small generated images.

A scene names the function with `entry: "examples.autoencoder:blobs"`.  It returns the images
alone, with no labels: the studio then scores a model by how well it gives its input back (the
loss compares the output with the input; an MLP's flat output is compared in the image's shape).
"""
import math

import torch


def blobs(samples: int = 512, size: int = 12, seed: int = 0):
    """Grayscale images of one soft elliptical blob each, at a random place, size and tilt, over a
    faint gradient -> x (samples, 1, size, size) in [0, 1].  Five numbers make each image, so a
    bottleneck of a few units can hold most of it: a landscape with a clear floor."""
    g = torch.Generator().manual_seed(seed)
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    py, px = c[:, None], c[None, :]
    cx, cy = (0.25 + 0.5 * torch.rand(2, samples, generator=g))
    sx, sy = (0.08 + 0.12 * torch.rand(2, samples, generator=g))
    tilt = math.pi * torch.rand(samples, generator=g)
    slope = 0.3 * (torch.rand(samples, generator=g) - 0.5)
    out = torch.empty(samples, 1, size, size)
    for i in range(samples):
        dx, dy = px - cx[i], py - cy[i]
        u = dx * torch.cos(tilt[i]) + dy * torch.sin(tilt[i])
        v = -dx * torch.sin(tilt[i]) + dy * torch.cos(tilt[i])
        blob = torch.exp(-0.5 * ((u / sx[i]) ** 2 + (v / sy[i]) ** 2))
        out[i, 0] = (0.8 * blob + 0.15 + slope[i] * (px - 0.5)).clamp(0, 1)
    return out
