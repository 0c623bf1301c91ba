"""From a cache entry to what the 3-D formats write: the terrain's vertices (coloured as the film
colours them), its triangles, and the paths as polylines.

Geometry, in plane coordinates: a grid vertex is (alpha, beta, height), alpha along x, beta along
y, height = loss * S (``linear``) or log10(loss) * S (``log``; studio.scale.plane_height).  A
path vertex is (x, y, height of its surface loss), so the paths lie on the terrain.

Non-finite losses: those vertices are left out and the rest numbered without gaps, so every
written vertex is finite (NaN coordinates upset Blender's and ParaView's bounds, normals and
cameras); a grid cell with a non-finite corner has no triangles; a path is cut where its surface
loss is not finite.

Large grids are handled with whole-array operations, and the triangles made a block of rows at a
time (BLOCK), so memory stays within a few copies of the grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from studio.cache import Landscape
from studio.scale import HeightMap, loss_color_scale, lut_index, plane_height

#: rows (vertices, faces, lines of text) handled at a time: bounds the memory of a large export
BLOCK = 65536


@dataclass
class Surface:
    """The terrain as written by the 3-D formats: finite vertices only.  The triangles are made
    block by block (:meth:`face_blocks`), so a million-point mesh never holds all its faces."""
    xyz: np.ndarray                 # (n, 3) float32: alpha, beta, height
    loss: np.ndarray                # (n,) float32
    grids: dict                     # name -> (n,) float32: the entry's extra grids (accuracy, ...)
    rgb: np.ndarray                 # (n, 3) uint8: the colormap by log loss
    index: Optional[np.ndarray]     # (ny, nx) int32: each grid vertex's number, -1 dropped; None: points
    shape: tuple                    # (ny, nx) of the strided grid
    dropped: int                    # vertices left out (non-finite)

    @property
    def mesh(self) -> bool:
        return self.index is not None

    def _cells(self, r0: int, r1: int) -> np.ndarray:
        """Whether each cell of cell rows r0..r1 has its four corners."""
        k = self.index[r0:r1 + 1] >= 0
        return k[:-1, :-1] & k[:-1, 1:] & k[1:, :-1] & k[1:, 1:]

    @property
    def n_faces(self) -> int:
        if not self.mesh:
            return 0
        return 2 * sum(int(self._cells(r0, r1).sum()) for r0, r1 in self._row_blocks())

    def _row_blocks(self):
        ny, nx = self.shape
        rows = max(1, BLOCK // max(1, nx))
        for r0 in range(0, ny - 1, rows):
            yield r0, min(ny - 1, r0 + rows)

    def face_blocks(self):
        """(m, 3) int32 triangles, a block of grid rows at a time, two per cell with four finite
        corners, counter-clockwise seen from above (the normals point up out of the terrain)."""
        if not self.mesh:
            return
        for r0, r1 in self._row_blocks():
            idx = self.index[r0:r1 + 1]
            cell = self._cells(r0, r1)
            c00, c10, c01, c11 = idx[:-1, :-1][cell], idx[:-1, 1:][cell], idx[1:, :-1][cell], idx[1:, 1:][cell]
            f = np.empty((2 * len(c00), 3), dtype=np.int32)
            # (+x, then +x+y) and (+x+y, then +y) from the cell's lower-left corner
            f[0::2, 0], f[0::2, 1], f[0::2, 2] = c00, c10, c11
            f[1::2, 0], f[1::2, 1], f[1::2, 2] = c00, c11, c01
            yield f


@dataclass
class Paths:
    """The entry's paths as polylines: finite vertices only, and the runs that join them."""
    names: list                     # path id -> name
    xyz: np.ndarray                 # (k, 3) float32
    path: np.ndarray                # (k,) int32: path id
    step: np.ndarray                # (k,) int64
    loss: np.ndarray                # (k,) float64: true loss at that step
    surface_loss: np.ndarray        # (k,) float64: loss at the projected point (the height)
    lines: list                     # (start, stop, path id): vertex ranges of 2 or more points


def vertex_colors(loss: np.ndarray, lut: np.ndarray, colors: HeightMap) -> np.ndarray:
    """uint8 RGB of finite losses: the entry of the (N, 3) colormap ``lut`` the film picks for
    each loss on the colour scale ``colors`` (studio.scale.loss_color_scale), in 8 bits."""
    lut8 = np.clip(np.rint(np.asarray(lut, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return lut8[lut_index(colors.level(loss), len(lut8))]


def build_surface(ls: Landscape, *, stride: int = 1, mesh: bool = True, height_mode: str = "linear",
                  z_scale: float = 1.0, lut: Optional[np.ndarray] = None,
                  colors: Optional[HeightMap] = None) -> Surface:
    """The strided grid's finite vertices (row-major: beta rows, alpha columns) and, for a
    mesh, two triangles per cell whose four corners are all finite.  ``colors``: the colour
    scale (None: the grid's own, as the film's ``color_by: loss`` with the default quantile);
    ``lut``: the colormap (None: grey)."""
    loss = np.asarray(ls.loss)[::stride, ::stride]
    a = np.asarray(ls.alpha)[::stride]
    b = np.asarray(ls.beta)[::stride]
    ny, nx = loss.shape
    z = plane_height(loss, height_mode, z_scale)
    keep = np.isfinite(z)
    n = int(keep.sum())
    xyz = np.empty((n, 3), dtype=np.float32)
    xyz[:, 0] = np.broadcast_to(a.astype(np.float32)[None, :], (ny, nx))[keep]
    xyz[:, 1] = np.broadcast_to(b.astype(np.float32)[:, None], (ny, nx))[keep]
    xyz[:, 2] = z[keep]
    grids = {name: np.asarray(g)[::stride, ::stride][keep].astype(np.float32)
             for name, g in sorted(ls.grids.items())}
    vloss = loss[keep].astype(np.float32)
    if colors is None:
        colors = loss_color_scale(np.asarray(ls.loss))
    rgb = vertex_colors(vloss, lut if lut is not None else _grey_lut(), colors)
    index = None
    if mesh:
        index = np.full(ny * nx, -1, dtype=np.int32)
        index[keep.ravel()] = np.arange(n, dtype=np.int32)
        index = index.reshape(ny, nx)
    return Surface(xyz, vloss, grids, rgb, index, (ny, nx), ny * nx - n)


def _grey_lut() -> np.ndarray:
    return np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[:, None], 3, axis=1)


def build_paths(ls: Landscape, *, height_mode: str = "linear", z_scale: float = 1.0) -> Paths:
    """Every path of the entry (training first, then the descents as read), cut into polylines
    where the surface loss is not finite."""
    names, parts, lines = [], [], []
    start = 0
    for pid, (name, p) in enumerate(ls.paths.items()):
        names.append(name)
        z = plane_height(p.surface_loss, height_mode, z_scale)
        ok = np.isfinite(z)
        idx = np.flatnonzero(ok)
        parts.append((pid, idx, p, z))
        # runs of consecutive kept points: a new run wherever the original index jumps
        if len(idx):
            cuts = np.flatnonzero(np.diff(idx) != 1) + 1
            for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(idx)]):
                if e - s >= 2:
                    lines.append((start + int(s), start + int(e), pid))
        start += len(idx)
    k = start
    xyz = np.empty((k, 3), dtype=np.float32)
    path = np.empty(k, dtype=np.int32)
    step = np.empty(k, dtype=np.int64)
    loss = np.empty(k, dtype=np.float64)
    surf = np.empty(k, dtype=np.float64)
    o = 0
    for pid, idx, p, z in parts:
        m = len(idx)
        xyz[o:o + m, :2] = np.asarray(p.xy)[idx]
        xyz[o:o + m, 2] = z[idx]
        path[o:o + m] = pid
        step[o:o + m] = np.asarray(p.step)[idx]
        loss[o:o + m] = np.asarray(p.loss)[idx]
        surf[o:o + m] = np.asarray(p.surface_loss)[idx]
        o += m
    return Paths(names, xyz, path, step, loss, surf, lines)
