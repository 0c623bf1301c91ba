"""``Jsonable``: the ``to_json`` every figure's dataclass shares.

A figure's JSON is a dict of plain Python values: numbers, booleans, strings, lists, dicts.  A
number that is not finite (an infinite prominence, a ratio of nothing, a figure that could not be
computed) is ``null``, so ``json.dumps(..., allow_nan=False)`` always works.  Fields marked
``metadata={"array": True}`` (a basin's mask) are left out: they go to the cache as arrays
(``Figures.arrays``).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np


def plain(x):
    """``x`` as a JSON value: numpy scalars and arrays to Python numbers and lists, non-finite
    floats to None, figures to their ``to_json()``."""
    if isinstance(x, Jsonable):
        return x.to_json()
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()] if x.ndim else plain(x.item())
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


class Jsonable:
    """Mixin for the figures' frozen dataclasses."""

    def to_json(self) -> dict:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not f.metadata.get("array")}
