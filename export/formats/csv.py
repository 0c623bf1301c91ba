"""CSV (spreadsheets, pandas): the grid, the paths, and a landscape over training's index.  Every
value is kept, a non-finite one written ``nan``, so the grid stays a full grid."""
from __future__ import annotations

import csv
import io

import numpy as np

from export.formats.text import text_rows
from export.geometry import BLOCK
from export.sequence import head_losses
from studio.cache import Landscape


def write_grid(fh, ls: Landscape, stride: int = 1) -> None:
    """One row per (strided) grid vertex, beta rows then alpha columns: alpha, beta, loss and
    any extra grids; a non-finite value is written ``nan``."""
    loss = np.asarray(ls.loss)[::stride, ::stride]
    a = np.asarray(ls.alpha)[::stride]
    b = np.asarray(ls.beta)[::stride]
    names = sorted(ls.grids)
    fh.write((",".join(["alpha", "beta", "loss"] + names) + "\n").encode("ascii"))
    nx = len(a)
    rows_per_block = max(1, BLOCK // nx)
    # %r: the shortest text that reads back as the same float64 coordinate; %.9g: float32 exactly
    fmt = "%r,%r" + ",%.9g" * (1 + len(names)) + "\n"
    for r0 in range(0, len(b), rows_per_block):
        r1 = min(len(b), r0 + rows_per_block)
        block = np.empty(((r1 - r0) * nx, 3 + len(names)), dtype=np.float64)
        block[:, 0] = np.tile(a, r1 - r0)
        block[:, 1] = np.repeat(b[r0:r1], nx)
        block[:, 2] = loss[r0:r1].ravel()
        for i, name in enumerate(names):
            block[:, 3 + i] = np.asarray(ls.grids[name])[::stride, ::stride][r0:r1].ravel()
        text_rows(fh, fmt, block)


def write_paths(fh, ls: Landscape) -> None:
    """Every point of every path: path, index, step, alpha, beta, loss, surface_loss."""
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["path", "index", "step", "alpha", "beta", "loss", "surface_loss"])
    for name, p in ls.paths.items():
        for i in range(len(p.step)):
            w.writerow([name, i, int(p.step[i]), repr(float(p.xy[i, 0])), repr(float(p.xy[i, 1])),
                        repr(float(p.loss[i])), repr(float(p.surface_loss[i]))])
    fh.write(text.getvalue().encode("utf-8"))


def write_sequence_index(fh, ls: Landscape) -> None:
    """One row per grid of a landscape over training: grid, step, head_alpha, head_beta,
    head_loss (where the training path's head stands on that grid: export.sequence.head_losses)."""
    q = ls.sequence
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["grid", "step", "head_alpha", "head_beta", "head_loss"])
    for k, hl in enumerate(head_losses(ls)):
        w.writerow([k, int(q.step[k]), repr(float(q.xy[k, 0])), repr(float(q.xy[k, 1])), repr(float(hl))])
    fh.write(text.getvalue().encode("ascii"))
