"""What the formats share: rows of numbers as text a block at a time, and header comments."""
from __future__ import annotations

from typing import Optional

import numpy as np

from export.geometry import BLOCK


def text_rows(fh, fmt: str, arr: np.ndarray) -> None:
    """Write one formatted line per row of a 2-D array (one C-level ``%`` per block of rows:
    about a second per million rows)."""
    for s in range(0, len(arr), BLOCK):
        block = arr[s:s + BLOCK]
        fh.write(((fmt * len(block)) % tuple(block.ravel().tolist())).encode("ascii"))


def text_columns(fh, fmt: str, columns: list, dtype=np.float64, scale: Optional[list] = None) -> None:
    """Like :func:`text_rows` for side-by-side columns (1-D or 2-D arrays of equal length),
    stacked a block at a time so the text formats never hold a float64 copy of everything."""
    n = len(columns[0])
    widths = [1 if np.ndim(c) == 1 else c.shape[1] for c in columns]
    for s in range(0, n, BLOCK):
        e = min(n, s + BLOCK)
        block = np.empty((e - s, sum(widths)), dtype=dtype)
        j = 0
        for c, w in zip(columns, widths):
            block[:, j:j + w] = np.reshape(c[s:e], (e - s, w))
            j += w
        if scale is not None:
            block *= np.asarray(scale, dtype=dtype)
        text_rows(fh, fmt, block)


def header_comments(info: dict) -> list[str]:
    return [f"{k}: {v}" for k, v in info.items()]
