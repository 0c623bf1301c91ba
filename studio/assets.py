"""Files the films use: colormaps and fonts under assets/."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def colormap_names() -> list[str]:
    return sorted(p.stem for p in (ASSETS / "colormaps").glob("*.csv"))


@lru_cache(maxsize=None)
def colormap(name: str) -> np.ndarray:
    """A (256, 3) float32 lookup table in [0, 1], low to high."""
    path = ASSETS / "colormaps" / f"{name}.csv"
    if not path.is_file():
        raise ValueError(f"unknown colormap {name!r}; allowed: {', '.join(colormap_names())}")
    lut = np.loadtxt(path, delimiter=",", comments="#", dtype=np.float64)
    if lut.ndim != 2 or lut.shape[1] != 3 or len(lut) < 2 or lut.min() < 0 or lut.max() > 1:
        raise ValueError(f"{path}: a colormap file holds rows 'r,g,b' with values in [0, 1], at least 2 rows")
    if len(lut) != 256:
        x = np.linspace(0, 1, len(lut))
        t = np.linspace(0, 1, 256)
        lut = np.stack([np.interp(t, x, lut[:, i]) for i in range(3)], axis=1)
    return lut.astype(np.float32)


def font(bold: bool = False) -> Path:
    return ASSETS / "fonts" / ("OpenSans-Bold.ttf" if bold else "OpenSans-Regular.ttf")
