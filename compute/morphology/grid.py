"""Figures of the loss grid alone (NumPy only; no torch, no model).

Conventions (the cache's): ``loss`` is (ny, nx), ``loss[j, i]`` the loss at the plane point
(``alpha[i]``, ``beta[j]``); both axes strictly increasing.  Plane units are the plane's
coordinates (a, b); for unit orthogonal directions (``pca``, ``hessian``, ``checkpoints``) one
plane unit is a distance of one in weight space, for Li et al.'s normalized random directions it
is a step the size of the weights.

Each grid node stands for its cell: the part of the window nearer to it than to any other node
(``cell_areas``), so an interior node of a uniform grid has the area dx*dy and an edge node half
of it.  Non-finite cells (NaN, +-inf) are holes: never in a basin, never a minimum, never part of
a curvature stencil.

Resolution.  A figure measured at a radius says so when the grid cannot see that radius: the
Keskar disc and the basin's equivalent radius must be at least the grid's spacing there (the
larger step of the two axes), else the figure is NaN (null in the JSON) with ``resolved`` False
and the ``spacing`` it would need, never the 0 or the one cell's area a coarse grid would give.

* :func:`grid_minimum`      the lowest finite node.
* :func:`basin`             the connected region around it below a level (area, radius, mask).
* :func:`keskar_sharpness`  the worst rise within a radius of the origin (Keskar et al. 2017).
* :func:`local_minima`      local minima and their prominence (descending flood by union-find).
* :func:`roughness`         the RMS Frobenius norm of the discrete Hessian of the surface.
* :func:`bilinear`          the grid interpolated at one point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from compute.morphology.jsonable import Jsonable
from compute.morphology.prominence import prominences


# --------------------------------------------------------------------------- the grid

def _grid(loss, alpha, beta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loss float64, alpha float64, beta float64), checked: shapes agree, axes strictly increasing."""
    L = np.asarray(loss, dtype=np.float64)
    a = np.asarray(alpha, dtype=np.float64).reshape(-1)
    b = np.asarray(beta, dtype=np.float64).reshape(-1)
    if L.ndim != 2 or L.shape != (len(b), len(a)):
        raise ValueError(f"loss must be (len(beta), len(alpha)) = ({len(b)}, {len(a)}); got {L.shape}")
    for name, x in (("alpha", a), ("beta", b)):
        if len(x) < 2 or not np.all(np.isfinite(x)) or not np.all(np.diff(x) > 0):
            raise ValueError(f"{name} must hold at least two finite, strictly increasing values")
    return L, a, b


def cell_widths(x: np.ndarray) -> np.ndarray:
    """The width of each node's cell along one axis: half-way to each neighbour, and only the inner
    half at the two ends (the cells tile [x[0], x[-1]] exactly)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.empty_like(x)
    w[1:-1] = (x[2:] - x[:-2]) / 2
    w[0] = (x[1] - x[0]) / 2
    w[-1] = (x[-1] - x[-2]) / 2
    return w


def cell_areas(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """(ny, nx) areas of the nodes' cells, plane units^2 (see ``cell_widths``)."""
    return np.outer(cell_widths(beta), cell_widths(alpha))


def _lowest(L: np.ndarray) -> tuple[int, int]:
    finite = np.isfinite(L)
    if not finite.any():
        raise ValueError("the loss grid has no finite value")
    j, i = np.unravel_index(int(np.argmin(np.where(finite, L, np.inf))), L.shape)
    return int(j), int(i)


def _on_edge(j: int, i: int, shape: tuple[int, int]) -> bool:
    return j in (0, shape[0] - 1) or i in (0, shape[1] - 1)


def node_step(x: np.ndarray, i: int) -> float:
    """The grid's step at node ``i`` of an axis: the larger of its one or two neighbouring gaps."""
    d = np.diff(x)
    return float(max(d[max(i - 1, 0)], d[min(i, len(d) - 1)]))


def span_step(x: np.ndarray, lo: float, hi: float) -> float:
    """The grid's largest step over [lo, hi] of an axis: of the gaps that overlap it (the nearest
    gap where none does, the interval lying beyond the axis's ends)."""
    d = np.diff(x)
    k = np.flatnonzero((x[:-1] < hi) & (x[1:] > lo))
    if not len(k):
        k = [int(np.clip(np.searchsorted(x, (lo + hi) / 2) - 1, 0, len(d) - 1))]
    return float(d[k].max())


# --------------------------------------------------------------------------- the minimum

@dataclass(frozen=True)
class GridMinimum(Jsonable):
    """The lowest finite node of the grid (the first in row-major order on a tie)."""
    loss: float                 # loss units
    a: float                    # plane units
    b: float
    distance: float             # sqrt(a^2 + b^2): from the plane's origin, plane units
    row: int                    # index into beta
    col: int                    # index into alpha
    on_edge: bool               # on the window's border: the landscape may descend further outside


def grid_minimum(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> GridMinimum:
    L, a, b = _grid(loss, alpha, beta)
    j, i = _lowest(L)
    return GridMinimum(float(L[j, i]), float(a[i]), float(b[j]), math.hypot(a[i], b[j]), j, i,
                       _on_edge(j, i, L.shape))


# --------------------------------------------------------------------------- basin

@dataclass(frozen=True)
class Basin(Jsonable):
    """The connected (4-neighbour) region of nodes around the grid minimum whose loss is at most
    ``level``.  ``mask`` (ny, nx) bool marks it (for drawing its outline; not in the JSON)."""
    kind: str                   # "absolute": level = min + margin; "relative": min + margin*|min|
    margin: float
    level: float                # loss units
    area: float                 # plane units^2: the sum of the region's cell areas
    radius: float               # sqrt(area / pi), plane units
    cells: int
    touches_edge: bool          # the region reaches the window's border: the area is a lower bound
    spacing: float              # the grid's step at the minimum (the larger axis's), plane units
    resolved: bool              # radius >= spacing; False: area and radius are NaN (too few nodes)
    mask: np.ndarray = field(repr=False, compare=False, metadata={"array": True})


def basin(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray, margin: float,
          relative: bool = False) -> Basin:
    """The basin of the grid minimum m: the 4-connected component containing m's node of
    {finite nodes with loss <= level}, level = m + margin (absolute) or m + margin*|m| (relative,
    i.e. m*(1 + margin) for a positive minimum).  The area sums the nodes' cells (``cell_areas``):
    on a uniform grid, cells * dx * dy for a basin inside the window.

    A basin narrower than the grid resolves (its equivalent radius below the grid's step at the
    minimum: on square cells, fewer than 4 nodes) has area and radius NaN and ``resolved`` False:
    its nodes' cells say only that it is smaller than a few cells, not how small (one node stands
    for anything from a pinprick to nearly the 2 x 2 cells around it)."""
    if not margin >= 0:
        raise ValueError(f"margin must be a number >= 0; got {margin!r}")
    L, a, b = _grid(loss, alpha, beta)
    j, i = _lowest(L)
    m = L[j, i]
    level = float(m + margin * abs(m)) if relative else float(m + margin)
    inside = np.isfinite(L) & (L <= level)
    mask = component4(inside, (j, i))
    area = float(cell_areas(a, b)[mask].sum())
    edge = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    radius = math.sqrt(area / math.pi)
    spacing = max(node_step(a, i), node_step(b, j))
    resolved = radius * (1 + 1e-9) >= spacing                  # a linspace's steps, up to rounding
    if not resolved:
        area = radius = math.nan
    return Basin("relative" if relative else "absolute", float(margin), level, area, radius,
                 int(mask.sum()), edge, spacing, resolved, mask)


def component4(mask: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The 4-connected component of the True cells of ``mask`` holding ``seed`` (row, col), as a
    bool array; all False if the seed is not in the mask.

    A scanline flood fill: each row's True cells as runs [start, end), and a search over runs,
    where a run touches the runs of the rows above and below whose columns overlap it.  The cost is
    the number of runs (about rows x runs per row), not of cells, so a million-cell grid takes
    milliseconds."""
    mask = np.asarray(mask, dtype=bool)
    ny, nx = mask.shape
    out = np.zeros_like(mask)
    sj, si = seed
    if not mask[sj, si]:
        return out
    pad = np.zeros((ny, nx + 2), dtype=np.int8)
    pad[:, 1:-1] = mask
    d = np.diff(pad, axis=1)
    rows, starts = np.nonzero(d == 1)                      # row-major: runs in order, row by row
    _, ends = np.nonzero(d == -1)                          # exclusive ends, aligned with starts
    first = np.searchsorted(rows, np.arange(ny + 1))       # runs of row r: first[r] .. first[r+1]
    r0, r1 = first[sj], first[sj + 1]
    k = r0 + int(np.searchsorted(starts[r0:r1], si, side="right")) - 1
    seen = np.zeros(len(starts), dtype=bool)
    seen[k] = True
    todo = [k]
    while todo:
        k = todo.pop()
        r, s, e = rows[k], starts[k], ends[k]
        for rr in (r - 1, r + 1):
            if not 0 <= rr < ny:
                continue
            lo, hi = first[rr], first[rr + 1]
            # runs of row rr with start < e and end > s (they share a column with [s, e))
            a = lo + int(np.searchsorted(ends[lo:hi], s, side="right"))
            z = lo + int(np.searchsorted(starts[lo:hi], e, side="left"))
            for q in range(a, z):
                if not seen[q]:
                    seen[q] = True
                    todo.append(q)
    for k in np.flatnonzero(seen):
        out[rows[k], starts[k]:ends[k]] = True
    return out


# --------------------------------------------------------------------------- interpolation

def bilinear(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray, a: float, b: float) -> float:
    """The grid's bilinear interpolant at (a, b); exact at a node (only nodes of nonzero weight
    count, so a NaN neighbour does not spoil a node or an edge).  NaN outside the window."""
    L, x, y = _grid(loss, alpha, beta)
    if not (x[0] <= a <= x[-1] and y[0] <= b <= y[-1]):
        return math.nan
    i = min(int(np.searchsorted(x, a, side="right")) - 1, len(x) - 2)
    j = min(int(np.searchsorted(y, b, side="right")) - 1, len(y) - 2)
    ta = (a - x[i]) / (x[i + 1] - x[i])
    tb = (b - y[j]) / (y[j + 1] - y[j])
    total = 0.0
    for dj, wb in ((0, 1 - tb), (1, tb)):
        for di, wa in ((0, 1 - ta), (1, ta)):
            w = wa * wb
            if w != 0:
                total += w * L[j + dj, i + di]
    return float(total)


# --------------------------------------------------------------------------- Keskar sharpness

@dataclass(frozen=True)
class KeskarSharpness(Jsonable):
    """Keskar et al. (2017)'s sharpness, on the plane: the worst rise of the loss within a disc of
    ``radius`` around the origin, max over nodes with a^2 + b^2 <= radius^2 (and the origin itself)
    of L(a, b) - L(0, 0), and that rise over 1 + L(0, 0).  Keskar et al. report 100 x
    ``relative`` (over a box in the full weight space, not a disc on a plane).  A disc narrower
    than the grid's spacing holds no node but the origin's (or none): then the figure is not
    measured (``resolved`` False, increase, relative, a and b NaN), not a rise of 0."""
    radius: float               # plane units
    loss_origin: float          # L(0, 0): the node there, or the grid's bilinear interpolant
    increase: float             # loss units, >= 0
    relative: float             # increase / (1 + loss_origin)
    a: float                    # where the worst rise is (the origin when there is none)
    b: float
    cells: int                  # finite nodes inside the disc
    truncated: bool             # the disc reaches beyond the window: a lower bound
    origin_inside: bool         # False: (0, 0) is outside the window and every figure is NaN
    spacing: float              # the grid's largest step over the disc (either axis), plane units
    resolved: bool              # radius >= spacing; False: the rise and where it is are NaN


def keskar_sharpness(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray, radius: float) -> KeskarSharpness:
    """See :class:`KeskarSharpness`.  A node counts as inside the disc up to a relative rounding of
    1e-9 of radius^2 (nodes of a linspace exactly on the circle count).

    Resolved when the radius is at least the grid's largest step over the disc: then the disc
    holds nodes around the origin on every side, and the worst rise among them is the disc's up
    to the grid's spacing.  A radius of 0 is resolved on any grid (no rise within it)."""
    if not radius >= 0:
        raise ValueError(f"radius must be a number >= 0; got {radius!r}")
    L, a, b = _grid(loss, alpha, beta)
    l0 = bilinear(L, a, b, 0.0, 0.0)
    truncated = bool(radius > min(-a[0], a[-1], -b[0], b[-1]))
    spacing = max(span_step(a, -radius, radius), span_step(b, -radius, radius))
    resolved = bool(radius == 0 or radius * (1 + 1e-9) >= spacing)
    A, B = np.meshgrid(a, b)
    disc = (A * A + B * B <= radius * radius * (1 + 1e-9)) & np.isfinite(L)
    nan = math.nan
    if not math.isfinite(l0):
        inside = bool(a[0] <= 0 <= a[-1] and b[0] <= 0 <= b[-1])
        return KeskarSharpness(float(radius), l0, nan, nan, nan, nan, 0, truncated, inside, spacing, resolved)
    if not resolved:
        return KeskarSharpness(float(radius), l0, nan, nan, nan, nan, int(disc.sum()), truncated, True, spacing,
                               False)
    rise, at = 0.0, (0.0, 0.0)
    if disc.any():
        k = int(np.argmax(np.where(disc, L, -np.inf)))
        if L.flat[k] - l0 > 0:
            rise, at = float(L.flat[k] - l0), (float(A.flat[k]), float(B.flat[k]))
    return KeskarSharpness(float(radius), l0, rise, rise / (1 + l0), at[0], at[1], int(disc.sum()), truncated, True,
                           spacing, True)


# --------------------------------------------------------------------------- local minima

@dataclass(frozen=True)
class LocalMinima(Jsonable):
    """The grid's local minima whose prominence exceeds ``threshold``, lowest first.

    A local minimum is a finite node lower than each of its finite 8 neighbours in the order of
    (loss, row-major index): ties are broken by position, so a flat-bottomed pit has one minimum.
    Its prominence is the least rise from it needed to reach a lower node, over every path of
    8-neighbour steps through finite nodes: the saddle level minus its loss (0 for a dent in a
    flat plateau).  The lowest minimum of each connected region of finite nodes (normally just
    the global minimum) has no lower node to reach: its prominence is infinite and it always
    counts.  A node on the border is compared with its neighbours inside the window only."""
    threshold: float            # loss units; minima with prominence > threshold count
    count: int
    interior: int               # of those, not on the window's border
    a: np.ndarray = field(compare=False, metadata={"listed": True})
    b: np.ndarray = field(compare=False, metadata={"listed": True})
    loss: np.ndarray = field(compare=False, metadata={"listed": True})
    prominence: np.ndarray = field(compare=False, metadata={"listed": True})
    on_edge: np.ndarray = field(compare=False, metadata={"listed": True})
    row: np.ndarray = field(compare=False, metadata={"listed": True})
    col: np.ndarray = field(compare=False, metadata={"listed": True})

    #: the JSON lists the first this many minima (lowest first); ``count`` counts them all
    LISTED = 100

    def to_json(self) -> dict:
        keep = slice(0, self.LISTED)
        out = {"threshold": _num(self.threshold), "count": self.count, "interior": self.interior}
        out["minima"] = [{"a": _num(a), "b": _num(b), "loss": _num(l), "prominence": _num(p), "on_edge": bool(e)}
                         for a, b, l, p, e in zip(self.a[keep], self.b[keep], self.loss[keep],
                                                  self.prominence[keep], self.on_edge[keep])]
        return out


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def local_minima(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
                 threshold: float | None = None) -> LocalMinima:
    """The local minima with prominence > ``threshold`` (see :class:`LocalMinima`), lowest first.
    ``threshold`` None: 1% of the grid's finite loss range (max - min)."""
    L, a, b = _grid(loss, alpha, beta)
    _lowest(L)                                                  # some finite value, or an error
    if threshold is None:
        fin = L[np.isfinite(L)]
        threshold = 0.01 * float(fin.max() - fin.min())
    if not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0; got {threshold!r}")
    idx, prom = prominences(L)
    keep = prom > threshold
    idx, prom = idx[keep], prom[keep]
    values = L.reshape(-1)[idx]
    by = np.lexsort((idx, values))
    idx, prom, values = idx[by], prom[by], values[by]
    rows, cols = np.divmod(idx, L.shape[1])
    edge = (rows == 0) | (rows == L.shape[0] - 1) | (cols == 0) | (cols == L.shape[1] - 1)
    return LocalMinima(float(threshold), int(len(idx)), int((~edge).sum()), a[cols], b[rows], values, prom, edge,
                       rows, cols)


# --------------------------------------------------------------------------- roughness

@dataclass(frozen=True)
class Roughness(Jsonable):
    """The RMS, over the interior nodes, of the Frobenius norm of the surface's discrete Hessian,
    sqrt(mean(L_aa^2 + 2 L_ab^2 + L_bb^2)) (weighted by cell area), in loss units per plane
    unit^2 (of log loss with ``log``).  Zero for a plane; a ripple A sin(2 pi a / w) alone gives
    A (2 pi / w)^2 / sqrt(2), growing with the square of its frequency, so fine-grained ruggedness
    outweighs a smooth bowl's constant curvature."""
    rms_hessian: float
    log: bool                   # of ln(loss) (nodes with loss <= 0 left out)
    cells: int                  # interior nodes whose 3 x 3 stencil is finite


def second_derivatives(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L_aa, L_bb, L_ab) at the interior nodes, (ny - 2, nx - 2) each, by the three-point second
    difference on each axis (exact for quadratics on uneven axes too) and the central difference of
    central differences for the mixed term; all three vanish exactly for a linear function."""
    L, a, b = _grid(loss, alpha, beta)
    h1, h2 = np.diff(a)[:-1], np.diff(a)[1:]                     # (nx - 2,)
    k1, k2 = np.diff(b)[:-1][:, None], np.diff(b)[1:][:, None]   # (ny - 2, 1)
    c = L[1:-1, 1:-1]
    laa = 2 * (L[1:-1, :-2] / (h1 * (h1 + h2)) - c / (h1 * h2) + L[1:-1, 2:] / (h2 * (h1 + h2)))
    lbb = 2 * (L[:-2, 1:-1] / (k1 * (k1 + k2)) - c / (k1 * k2) + L[2:, 1:-1] / (k2 * (k1 + k2)))
    lab = ((L[2:, 2:] - L[2:, :-2]) - (L[:-2, 2:] - L[:-2, :-2])) / ((h1 + h2) * (k1 + k2))
    return laa, lbb, lab


def roughness(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray, log: bool = False) -> Roughness:
    """See :class:`Roughness`.  Why this statistic: it is zero exactly when the surface is locally
    linear (a plane gives 0 up to rounding: of the order of eps |L| / dx^2, eps the values'
    precision); it does not depend on how the plane's axes are turned (the Laplacian would read a
    saddle a^2 - b^2 as flat, second differences along the axes alone miss a twist a*b); and it is
    a derivative of the surface, not of the sampling, so refining the grid leaves it unchanged for
    a smooth landscape.  NaN when no interior node has a finite stencil."""
    L, a, b = _grid(loss, alpha, beta)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            L = np.where(L > 0, np.log(np.where(L > 0, L, 1.0)), np.nan)
    if min(L.shape) < 3:
        return Roughness(math.nan, bool(log), 0)
    with np.errstate(invalid="ignore", over="ignore"):
        laa, lbb, lab = second_derivatives(L, a, b)
        f2 = laa * laa + lbb * lbb + 2 * lab * lab
    ok = np.isfinite(f2)
    if not ok.any():
        return Roughness(math.nan, bool(log), 0)
    w = cell_areas(a, b)[1:-1, 1:-1][ok]
    return Roughness(float(math.sqrt(np.sum(w * f2[ok]) / np.sum(w))), bool(log), int(ok.sum()))
