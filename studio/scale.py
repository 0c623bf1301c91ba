"""The scale from loss to height and colour: one rule for the film and the export (NumPy only).

The render stage (render/look.py, render/compare.py) and the export (export/) both take their
scales from here, so a landscape's colours and proportions in Blender or ParaView are the film's.

Definitions:

- A **height scale** (:class:`HeightMap`, made by :func:`height_map`) takes a loss to a level in
  [0, 1]: the mode's transform of the loss (``linear`` and ``clip``: the loss itself; ``log``: its
  natural log, a loss below LOG_FLOOR counting as LOG_FLOOR), from the lowest finite loss (level
  0) to a quantile of the finite loss (level 1; :func:`top_quantile`: the scene's
  ``clip_quantile``, else DEFAULT_QUANTILE of the mode).  Higher losses are flattened onto the
  top.  The film's terrain is WORLD_WIDTH units wide and its top stands ``exaggeration`` times
  that high: ``render.look.exaggeration`` is the terrain's height over its width.
- The **colour scale by loss** (:func:`loss_color_scale`) is the log height scale of the same
  losses with the same quantile, whatever the height mode; a level picks its colormap entry by
  :func:`lut_index`.  An extra grid (accuracy) is coloured over its finite range
  (:func:`range_scale`).
- **Scales over several grids** (a landscape over training, a comparison's panels) come from a
  :class:`LossSample`: every grid at a stride (SAMPLE_LIMIT values at most) for the quantile, and
  the exact lowest and highest finite loss (:func:`loss_sample`, :meth:`LossSample.pool`,
  :func:`shared_scales`).
- **The export's heights** keep the loss itself on the z axis: ``z = S * loss`` or
  ``S * log10(loss)`` (:func:`plane_height`, modes PLANE_HEIGHTS), so a file's z reads back as a
  loss; :func:`plane_z_scale` is the S that gives a plane the film's proportions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:                      # types only: this module needs nothing but NumPy
    from studio.cache import Landscape
    from studio.scene import LookSpec

#: the top of the scale (a quantile of the finite loss) when the scene gives no clip_quantile
DEFAULT_QUANTILE = {"linear": 0.995, "log": 0.995, "clip": 0.95}
#: the smallest loss a log scale takes (a loss of 0 would have no logarithm)
LOG_FLOOR = 1e-12
#: at most this many values sampled from a landscape over training for its scale (about 16 MB of
#: float32 however long the sequence): the film and the export sample alike
SAMPLE_LIMIT = 4_000_000
#: the width of the film's terrain in world units (x in [-1, 1]); its top stands at
#: ``exaggeration * WORLD_WIDTH``
WORLD_WIDTH = 2.0
#: the export's heights: the loss, or its log10, times a z-scale
PLANE_HEIGHTS = ("linear", "log")


@dataclass
class HeightMap:
    mode: str               # linear, log or clip (clip transforms like linear)
    lo: float
    hi: float
    top: float              # world height of the highest shown value
    quantile: float = 0.995  # the quantile of the finite loss that ``hi`` is

    def level(self, loss: np.ndarray) -> np.ndarray:
        """Loss -> normalized height in [0, 1] (NaN stays NaN)."""
        v = _transform(np.asarray(loss, dtype=np.float64), self.mode)
        return np.clip((v - self.lo) / (self.hi - self.lo), 0.0, 1.0)


def _transform(loss: np.ndarray, mode: str) -> np.ndarray:
    if mode == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.maximum(loss, LOG_FLOOR))
    return loss


def top_quantile(mode: str, quantile: float | None = None) -> float:
    """The quantile of the finite loss at the top of a ``mode`` scale: ``quantile`` (the scene's
    ``clip_quantile``) if given, else the mode's default."""
    return DEFAULT_QUANTILE[mode] if quantile is None else float(quantile)


@dataclass(frozen=True)
class LossSample:
    """The losses a scale is taken from: ``values`` (any shape, non-finite ones ignored) for the
    top's quantile, and the exact lowest and highest finite loss (NaN when none is finite), so a
    strided sample of many grids still puts the lowest loss of all at the bottom."""
    values: np.ndarray
    lowest: float
    highest: float

    @classmethod
    def of(cls, loss: np.ndarray) -> "LossSample":
        """Every value of a grid (not copied)."""
        loss = np.asarray(loss)
        fin = loss[np.isfinite(loss)]
        if fin.size == 0:
            return cls(loss, float("nan"), float("nan"))
        return cls(loss, float(fin.min()), float(fin.max()))

    @classmethod
    def pool(cls, samples: Sequence["LossSample"]) -> "LossSample":
        """Several samples as one (a comparison's panels together)."""
        values = np.concatenate([np.asarray(s.values, np.float32).ravel() for s in samples])
        lows = [s.lowest for s in samples if np.isfinite(s.lowest)]
        highs = [s.highest for s in samples if np.isfinite(s.highest)]
        return cls(values, min(lows, default=float("nan")), max(highs, default=float("nan")))


def loss_sample(ls: Landscape, limit: int | None = None) -> LossSample:
    """The losses a landscape shows, for its scales: its grid, or for a landscape over training a
    sample of every grid together: each grid's every s-th row and column, s the smallest stride
    that keeps the sample within ``limit`` values (SAMPLE_LIMIT), with the exact lowest and highest
    loss of all grids.  The grids are mapped from the cache and read one at a time."""
    if ls.sequence is None:
        return LossSample.of(np.asarray(ls.loss))
    limit = SAMPLE_LIMIT if limit is None else limit
    k_all, ny, nx = ls.sequence.loss.shape
    s = max(1, int(np.ceil(np.sqrt(ny * nx * k_all / limit))))
    values, lowest, highest = [], np.inf, -np.inf
    for k in range(k_all):
        g = np.asarray(ls.sequence.loss[k], np.float32)
        fin = g[np.isfinite(g)]
        if fin.size:
            lowest, highest = min(lowest, float(fin.min())), max(highest, float(fin.max()))
        values.append(g[::s, ::s].ravel())
    if not np.isfinite(lowest):
        lowest = highest = float("nan")
    return LossSample(np.concatenate(values), lowest, highest)


def height_map(loss: np.ndarray | LossSample, mode: str, exaggeration: float,
               quantile: float | None = None) -> HeightMap:
    """The scale from loss to height: from the lowest finite loss (height 0) to the ``quantile``
    of the finite loss (height ``2 * exaggeration``), in the mode's transform (log for ``log``,
    the loss itself for ``linear`` and ``clip``).  ``loss``: the losses, or a :class:`LossSample`
    of them (its quantile from the sampled values, its bottom the exact lowest loss)."""
    q = top_quantile(mode, quantile)
    values = loss.values if isinstance(loss, LossSample) else loss
    finite = values[np.isfinite(values)]
    v = _transform(finite.astype(np.float64), mode)
    if v.size == 0:
        return HeightMap(mode, 0.0, 1.0, WORLD_WIDTH * exaggeration, q)
    lo, hi = float(v.min()), float(np.quantile(v, q))
    if isinstance(loss, LossSample) and loss.lowest < finite.min():    # the sample's stride missed it
        lo = float(_transform(np.float64(loss.lowest), mode))
    if hi - lo < 1e-12:
        hi = lo + 1.0
    return HeightMap(mode, lo, hi, WORLD_WIDTH * exaggeration, q)


def loss_color_scale(loss: np.ndarray | LossSample, quantile: float | None = None) -> HeightMap:
    """The colour scale by loss (``color_by: loss``): the loss on a log scale from its lowest
    finite value to its ``quantile`` (the height scale's, so colours and heights share a top),
    whatever the height mode."""
    return height_map(loss, "log", 1.0, quantile)


def range_scale(values: np.ndarray) -> HeightMap:
    """A linear scale over the finite range of ``values`` (an extra grid such as accuracy, coloured
    from its lowest to its highest value)."""
    v = np.asarray(values, np.float64)
    fin = v[np.isfinite(v)]
    lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
    return HeightMap("linear", lo, hi if hi - lo >= 1e-12 else lo + 1.0, 1.0)


def lut_index(level: np.ndarray, size: int = 256) -> np.ndarray:
    """The entry of a ``size``-entry colormap for each level in [0, 1] (the nearest; NaN takes the
    first)."""
    return np.clip(np.rint(np.nan_to_num(level, nan=0.0) * (size - 1.0)), 0, size - 1).astype(np.int32)


def shared_scales(lss: list[Landscape], look: LookSpec) -> tuple[HeightMap, HeightMap | None]:
    """One height scale for all landscapes (the lowest finite loss of any of them at height 0, the
    look's quantile of all their finite losses together at the top) and, for ``color_by`` loss or
    a grid, one colour scale likewise (None for height, or when a panel lacks the grid: its Film
    then says what is missing)."""
    union = LossSample.pool([loss_sample(ls) for ls in lss])
    hm = height_map(union, look.height, look.exaggeration, look.clip_quantile)
    if look.color_by == "height":
        return hm, None
    if look.color_by == "loss":
        return hm, loss_color_scale(union, hm.quantile)
    grids = [ls.grids.get(look.color_by) for ls in lss]
    if any(g is None for g in grids):
        return hm, None
    return hm, range_scale(np.concatenate([np.asarray(g, np.float64)[np.isfinite(g)] for g in grids]))


def plane_height(loss: np.ndarray, mode: str = "linear", z_scale: float = 1.0) -> np.ndarray:
    """The export's height of a loss (float32, computed in float32 so a million-point grid costs
    no float64 copies): ``loss * z_scale`` or ``log10(loss) * z_scale``; NaN stays NaN."""
    loss = np.asarray(loss, dtype=np.float32)
    if mode == "log":
        h = np.log10(np.maximum(loss, np.float32(LOG_FLOOR)))     # maximum keeps NaN
    elif mode == "linear":
        h = loss.copy()
    else:
        raise ValueError(f"height mode {mode!r}; allowed: {', '.join(PLANE_HEIGHTS)}")
    if z_scale != 1:
        h *= np.float32(z_scale)
    return h


def plane_z_scale(heights: HeightMap, width: float) -> float:
    """The z-scale S that gives :func:`plane_height` (in ``heights.mode``: ``linear``, or ``log``
    for log10) the film's proportions on a plane ``width`` wide: between the losses at the bottom
    and the top of ``heights``, the film's terrain rises ``heights.top`` over WORLD_WIDTH, so the
    plane rises ``width * heights.top / WORLD_WIDTH``.  Rounded to three significant digits, so
    the scale a command prints is the one it used, and typed back as a z-scale gives the same
    file."""
    span = heights.hi - heights.lo             # in the scale's transform: natural log for log
    if heights.mode == "log":
        span /= np.log(10)                     # the plane's log heights are log10
    return float(f"{width * heights.top / WORLD_WIDTH / span:.3g}")
