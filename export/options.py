"""What an export may be asked for: the formats, the heights, and the checks on both."""
from __future__ import annotations

import numpy as np

from studio.cli import UserError
from studio.scale import PLANE_HEIGHTS

FORMATS = ("ply", "obj", "vtp", "csv")
HEIGHTS = PLANE_HEIGHTS


class ExportError(UserError, ValueError):
    """An export that cannot be done as asked; the message says why and what to do."""


def check_options(fmt: str, stride: int, height_mode: str, z_scale: float) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if int(stride) < 1:
        raise ExportError(f"stride {stride}: must be at least 1")
    if height_mode not in HEIGHTS:
        raise ExportError(f"height {height_mode!r}; allowed: {', '.join(HEIGHTS)}")
    if not (np.isfinite(z_scale) and z_scale != 0):
        raise ExportError(f"z-scale {z_scale}: must be a finite, non-zero number")


def z_formula(height_mode: str, z_scale: float) -> str:
    """How z is made, as the files' headers and the command's summary say it: ``loss * 12.5``."""
    return f"{'loss' if height_mode == 'linear' else 'log10(loss)'} * {z_scale:g}"
