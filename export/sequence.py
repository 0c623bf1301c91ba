"""A landscape over training (``landscape.sequence``): its grids, picked one at a time, and where
the training path's head stands on each."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from export.options import ExportError
from studio.cache import Landscape


def sequence_count(ls: Landscape) -> int:
    """How many grids the entry's sequence holds; an ExportError for an entry without one."""
    if ls.sequence is None:
        raise ExportError(f"cache entry {ls.key} holds no landscape over training (its scene has no "
                          f"landscape.sequence), so there are no grids to pick; export its grid without "
                          f"--sequence or --grid")
    return int(len(ls.sequence.step))


def resolve_grid(ls: Landscape, k: int) -> int:
    """Grid number ``k`` of the entry's sequence (negative counts from the end) as 0..K-1."""
    n = sequence_count(ls)
    if not -n <= int(k) < n:
        raise ExportError(f"grid {k}: the sequence has {n} grid{'s' if n != 1 else ''}, numbered 0 to {n - 1} "
                          f"(or -{n} to -1 counting from the end)")
    return int(k) % n


def grid_landscape(ls: Landscape, k: int) -> Landscape:
    """The entry with grid ``k`` of its sequence (a view of the mapped file, not a copy) in place
    of the still grid.  The still grid's extra grids (accuracy) belong to the still grid, so
    they are left out; the paths stay."""
    return replace(ls, loss=ls.sequence.loss[k], grids={}, sequence=None)


def grid_caption(ls: Landscape, k: int) -> str:
    """Which grid a file holds, for its header."""
    q = ls.sequence
    return f"grid {k} of {len(q.step)} (numbered from 0), training step {int(q.step[k])}"


def head_losses(ls: Landscape) -> np.ndarray:
    """(K,) float64: each grid's loss at its snapshot's plane coordinates ``xy[k]`` (where the
    training path's head stands on grid k), by bilinear interpolation between the grid's
    vertices; NaN where xy[k] lies outside the grid's window or a cell corner it draws on is
    not finite."""
    q = ls.sequence
    alpha, beta = np.asarray(ls.alpha, dtype=np.float64), np.asarray(ls.beta, dtype=np.float64)
    nx, ny = len(alpha), len(beta)
    out = np.full(len(q.step), np.nan)
    for k in range(len(q.step)):
        x, y = float(q.xy[k, 0]), float(q.xy[k, 1])
        if not (alpha[0] <= x <= alpha[-1] and beta[0] <= y <= beta[-1]):
            continue
        fx, fy = np.interp(x, alpha, np.arange(nx)), np.interp(y, beta, np.arange(ny))
        i0, j0 = min(int(fx), max(nx - 2, 0)), min(int(fy), max(ny - 2, 0))
        tx, ty = fx - i0, fy - j0
        total = 0.0
        for dj, wy in ((0, 1 - ty), (1, ty)):
            for di, wx in ((0, 1 - tx), (1, tx)):
                if wx * wy > 0:             # a corner with no weight may be NaN without harm
                    total += wx * wy * float(q.loss[k, j0 + dj, i0 + di])
        out[k] = total
    return out
