"""How honest the plane is about the training path (NumPy only).

A plane shows the path's projection; the weights themselves may be far from it, and then the
terrain under the drawn path is not the loss the network had.  ``path_honesty`` says how far the
path leaves the plane, at which snapshot, and how that compares with the path's extent on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compute.morphology.jsonable import Jsonable


@dataclass(frozen=True)
class PathHonesty(Jsonable):
    """The training path's distance from the plane (``offplane``: |theta_t - projection|, weight
    space) against its extent on the plane.

    ``extent`` is the path's diameter on the plane, the largest distance between two of its
    projected points, measured in weight space (with the directions' Gram matrix; in plane units
    for orthonormal directions), so ``ratio`` = max / extent compares like with like: well below 1,
    the film's path is faithful; near or above 1, the path mostly moves off the plane."""
    max_offplane: float         # weight-space distance
    index: int                  # the snapshot where it is largest (first on a tie)
    step: int | None            # its training step, when steps were given
    a: float                    # its plane position
    b: float
    mean_offplane: float
    extent: float               # weight-space distance
    ratio: float                # max_offplane / extent (inf for a path that does not move on the plane)
    snapshots: int


def _diameter(p: np.ndarray, block: int = 2048) -> float:
    """The largest distance between two rows of p (T, 2), blockwise (O(T^2) time, O(block * T)
    memory)."""
    best = 0.0
    for i in range(0, len(p), block):
        d = p[i:i + block, None, :] - p[None, :, :]
        best = max(best, float(np.sqrt((d * d).sum(-1).max())))
    return best


def plane_gram(d1, d2) -> np.ndarray:
    """The 2 x 2 Gram matrix [[d1.d1, d1.d2], [d2.d1, d2.d2]] of two flat directions (NumPy arrays or
    tensors), in float64: a plane step (da, db) has the weight-space length sqrt(c^T G c)."""
    u = np.asarray(d1, dtype=np.float64).reshape(-1)
    v = np.asarray(d2, dtype=np.float64).reshape(-1)
    return np.array([[u @ u, u @ v], [u @ v, v @ v]])


def path_honesty(xy: np.ndarray, offplane: np.ndarray, steps: np.ndarray | None = None,
                 gram: np.ndarray | None = None) -> PathHonesty:
    """See :class:`PathHonesty`.  ``xy`` (T, 2) the path's plane coordinates, ``offplane`` (T,) its
    distances from the plane, ``steps`` (T,) its training steps (optional), ``gram`` the directions'
    Gram matrix (``plane_gram``; None: orthonormal directions, the identity)."""
    xy = np.asarray(xy, dtype=np.float64)
    off = np.asarray(offplane, dtype=np.float64).reshape(-1)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(off) or len(off) == 0:
        raise ValueError(f"xy must be (T, 2) and offplane (T,) with T >= 1; got {xy.shape} and {off.shape}")
    G = np.eye(2) if gram is None else np.asarray(gram, dtype=np.float64)
    s, U = np.linalg.eigh((G + G.T) / 2)
    metric = U * np.sqrt(np.clip(s, 0, None))                 # |c|_G = |c @ metric|
    extent = _diameter(xy @ metric)
    k = int(np.argmax(off))
    mx = float(off[k])
    ratio = mx / extent if extent > 0 else (math.inf if mx > 0 else 0.0)
    step = None if steps is None else int(np.asarray(steps).reshape(-1)[k])
    return PathHonesty(mx, k, step, float(xy[k, 0]), float(xy[k, 1]), float(off.mean()), extent, ratio, len(off))
