"""Export a cached landscape to 3-D tools: PLY (Blender, MeshLab), OBJ, VTP (ParaView) and CSV.

Usage:
    python -m compute export SCENE --format ply|obj|vtp|csv [--out PATH] [--cache-dir cache]
                                   [--stride N] [--mesh | --points] [--z-scale S]
                                   [--height linear|log] [--panel N] [--sequence | --grid K]

Reads the scene's cache entry (the grid, the training path and the scene's descents) and
computes nothing: a missing entry or descent is the cache reader's error, which says to run
``python -m compute SCENE`` first.  Writes ``out/<scene name>.<format>`` unless ``--out`` says
otherwise, and for PLY, VTP and CSV the paths next to it as ``<name>_paths.<format>``.  A
scene with ``compare:`` holds one landscape per panel: ``--panel N`` picks one
(``out/<scene name>_panelN.<format>``).

Geometry, in plane coordinates: a grid vertex is (alpha, beta, height), alpha along x, beta
along y, height = loss * S (``--height linear``, the default) or log10(loss) * S (``log``; a
loss of 0 counts as 1e-12, as in the film).  A path vertex is (x, y, height of its surface
loss), so the paths lie on the terrain.

Non-finite losses: the 3-D formats drop those vertices and renumber the rest, so every
written vertex is finite (NaN coordinates upset Blender's and ParaView's bounds, normals and
cameras); a grid cell with a non-finite corner has no triangles; a path is cut where its
surface loss is not finite.  The CSV keeps every grid vertex (the loss written as ``nan``),
so it stays a full grid.

A landscape over training (``landscape.sequence``): ``--sequence`` writes every grid as its own
numbered file ``<out stem>_grid000.<format>``, ``_grid001``, ... (Blender's mesh-sequence importers and
ParaView's file series read numbered files as an animation), all coloured on one scale from all
grids together, plus the paths file (for OBJ too), ``<out stem>_sequence.csv`` (grid, step and
where the training path's head stands on each grid) and, for VTP, a ParaView collection
``<out stem>.pvd`` whose times are the training steps.  ``--grid K`` writes grid K alone
(``out/<scene name>_gridK.<format>``).  The grids are mapped from the cache and written one at
a time.

Files are written under a temporary name in the output's folder and renamed into place, the
main file last: a failed export leaves no partial file (an older export stays as it was).  A
sequence's files are all written into a temporary folder beside the output first and moved
into place together.

NumPy only (no torch, no vispy): large grids are written with whole-array operations, text
formats in blocks of rows, so memory stays within a few copies of the grid.
"""
from __future__ import annotations

import argparse
import base64
import csv
import glob
import io
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from studio.cache import Landscape

FORMATS = ("ply", "obj", "vtp", "csv")
HEIGHTS = ("linear", "log")

#: the smallest loss the log height takes (the render stage floors the same way)
LOG_FLOOR = 1e-12
#: the top of the colour scale: this quantile of the finite loss (the film's default)
COLOR_QUANTILE = 0.995
#: rows per block when formatting text (bounds the memory of the text formats)
TEXT_BLOCK = 65536


class ExportError(ValueError):
    """An export that cannot be done as asked; the message says why and what to do."""


# --------------------------------------------------------------------------- geometry

def height(loss: np.ndarray, mode: str = "linear", z_scale: float = 1.0) -> np.ndarray:
    """Loss to height (float32, computed in float32 so a million-point grid costs no float64
    copies): ``loss * z_scale`` or ``log10(loss) * z_scale``; NaN stays NaN."""
    loss = np.asarray(loss, dtype=np.float32)
    if mode == "log":
        h = np.log10(np.maximum(loss, np.float32(LOG_FLOOR)))     # maximum keeps NaN
    elif mode == "linear":
        h = loss.copy()
    else:
        raise ExportError(f"height mode {mode!r}; allowed: {', '.join(HEIGHTS)}")
    if z_scale != 1:
        h *= np.float32(z_scale)
    return h


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
        rows = max(1, TEXT_BLOCK // max(1, nx))
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


def color_by_loss(loss: np.ndarray, lut: np.ndarray, scale: Optional[tuple] = None) -> np.ndarray:
    """uint8 RGB from a (256, 3) colormap by log loss, from the lowest finite loss to the
    COLOR_QUANTILE of the finite loss (as the film's ``color_by: loss``); grey where not finite.
    ``scale``: (lo, hi) in natural-log loss instead, e.g. one scale shared by a sequence's grids."""
    loss = np.asarray(loss, dtype=np.float32)
    fin = np.isfinite(loss)
    out = np.full(loss.shape + (3,), 128, dtype=np.uint8)
    if not fin.any():
        return out
    lv = np.log(np.maximum(loss[fin], np.float32(LOG_FLOOR)))
    if scale is not None:
        lo, hi = float(scale[0]), float(scale[1])
    else:
        lo, hi = float(lv.min()), float(np.quantile(lv, COLOR_QUANTILE))
    t = np.clip((lv - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(lv)
    lut8 = np.clip(np.rint(np.asarray(lut, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    out[fin] = lut8[np.rint(t * (len(lut8) - 1)).astype(np.intp)]
    return out


def build_surface(ls: Landscape, *, stride: int = 1, mesh: bool = True, height_mode: str = "linear",
                  z_scale: float = 1.0, lut: Optional[np.ndarray] = None,
                  color_scale: Optional[tuple] = None) -> Surface:
    """The strided grid's finite vertices (row-major: beta rows, alpha columns) and, for a
    mesh, two triangles per cell whose four corners are all finite.  ``color_scale``: see
    :func:`color_by_loss` (None: the grid's own)."""
    loss = np.asarray(ls.loss)[::stride, ::stride]
    a = np.asarray(ls.alpha)[::stride]
    b = np.asarray(ls.beta)[::stride]
    ny, nx = loss.shape
    z = height(loss, height_mode, z_scale)
    keep = np.isfinite(z)
    n = int(keep.sum())
    xyz = np.empty((n, 3), dtype=np.float32)
    xyz[:, 0] = np.broadcast_to(a.astype(np.float32)[None, :], (ny, nx))[keep]
    xyz[:, 1] = np.broadcast_to(b.astype(np.float32)[:, None], (ny, nx))[keep]
    xyz[:, 2] = z[keep]
    grids = {name: np.asarray(g)[::stride, ::stride][keep].astype(np.float32)
             for name, g in sorted(ls.grids.items())}
    vloss = loss[keep].astype(np.float32)
    rgb = color_by_loss(vloss, lut if lut is not None else _grey_lut(), color_scale)
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
        z = height(p.surface_loss, height_mode, z_scale)
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


# --------------------------------------------------------------------------- writers

def _text_rows(fh, fmt: str, arr: np.ndarray) -> None:
    """Write one formatted line per row of a 2-D array (one C-level ``%`` per block of rows:
    about a second per million rows)."""
    for s in range(0, len(arr), TEXT_BLOCK):
        block = arr[s:s + TEXT_BLOCK]
        fh.write(((fmt * len(block)) % tuple(block.ravel().tolist())).encode("ascii"))


def _text_columns(fh, fmt: str, columns: list, dtype=np.float64, scale: Optional[list] = None) -> None:
    """Like :func:`_text_rows` for side-by-side columns (1-D or 2-D arrays of equal length),
    stacked a block at a time so the text formats never hold a float64 copy of everything."""
    n = len(columns[0])
    widths = [1 if np.ndim(c) == 1 else c.shape[1] for c in columns]
    for s in range(0, n, TEXT_BLOCK):
        e = min(n, s + TEXT_BLOCK)
        block = np.empty((e - s, sum(widths)), dtype=dtype)
        j = 0
        for c, w in zip(columns, widths):
            block[:, j:j + w] = np.reshape(c[s:e], (e - s, w))
            j += w
        if scale is not None:
            block *= np.asarray(scale, dtype=dtype)
        _text_rows(fh, fmt, block)


def _header_comments(info: dict) -> list[str]:
    return [f"{k}: {v}" for k, v in info.items()]


def write_ply(fh, surf: Surface, info: dict) -> None:
    """Binary little-endian PLY: vertex (float x y z, float loss, float per extra grid, uchar
    red green blue) and face (list uchar int vertex_indices); a point cloud has 0 faces."""
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("loss", "<f4")]
    fields += [(name, "<f4") for name in surf.grids]
    fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    head = ["ply", "format binary_little_endian 1.0"]
    head += [f"comment {c}" for c in _header_comments(info)]
    head.append(f"element vertex {len(surf.xyz)}")
    head += [f"property {'float' if t == '<f4' else 'uchar'} {name}" for name, t in fields]
    head += [f"element face {surf.n_faces}", "property list uchar int vertex_indices", "end_header"]
    fh.write(("\n".join(head) + "\n").encode("ascii"))
    for s in range(0, len(surf.xyz), TEXT_BLOCK):            # interleaved a block at a time
        e = min(len(surf.xyz), s + TEXT_BLOCK)
        v = np.empty(e - s, dtype=np.dtype(fields))
        v["x"], v["y"], v["z"] = surf.xyz[s:e, 0], surf.xyz[s:e, 1], surf.xyz[s:e, 2]
        v["loss"] = surf.loss[s:e]
        for name, g in surf.grids.items():
            v[name] = g[s:e]
        v["red"], v["green"], v["blue"] = surf.rgb[s:e, 0], surf.rgb[s:e, 1], surf.rgb[s:e, 2]
        fh.write(v.tobytes())
    for faces in surf.face_blocks():
        f = np.empty(len(faces), dtype=np.dtype([("n", "u1"), ("v", "<i4", (3,))]))   # packed: 13 bytes
        f["n"] = 3
        f["v"] = faces
        fh.write(f.tobytes())


def write_ply_paths(fh, paths: Paths, info: dict) -> None:
    """The paths as a PLY of vertices (x y z, int path, int step, float loss, float
    surface_loss) joined by ``element edge`` (int vertex1, int vertex2): Blender imports the
    edges as loose edges of one object (and the other properties as attributes), MeshLab as
    edges."""
    edges = _edges(paths)
    head = ["ply", "format binary_little_endian 1.0"]
    head += [f"comment {c}" for c in _header_comments(info)]
    head += [f"comment path {i}: {name}" for i, name in enumerate(paths.names)]
    head += [f"element vertex {len(paths.xyz)}", "property float x", "property float y", "property float z",
             "property int path", "property int step", "property float loss", "property float surface_loss",
             f"element edge {len(edges)}", "property int vertex1", "property int vertex2", "end_header"]
    fh.write(("\n".join(head) + "\n").encode("ascii"))
    v = np.empty(len(paths.xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("path", "<i4"),
                                        ("step", "<i4"), ("loss", "<f4"), ("surface_loss", "<f4")])
    v["x"], v["y"], v["z"] = paths.xyz[:, 0], paths.xyz[:, 1], paths.xyz[:, 2]
    v["path"], v["step"], v["loss"], v["surface_loss"] = paths.path, paths.step, paths.loss, paths.surface_loss
    fh.write(v.tobytes())
    fh.write(edges.astype("<i4").tobytes())


def _edges(paths: Paths) -> np.ndarray:
    """(e, 2) consecutive vertex pairs along every polyline."""
    if not paths.lines:
        return np.empty((0, 2), dtype=np.int32)
    firsts = np.concatenate([np.arange(s, e - 1) for s, e, _ in paths.lines])
    return np.stack([firsts, firsts + 1], axis=1).astype(np.int32)


_OBJ_V = "v %.7g %.7g %.7g %.4f %.4f %.4f\n"


def write_obj(fh, surf: Optional[Surface], paths: Optional[Paths], info: dict) -> None:
    """Wavefront OBJ: ``o terrain`` with ``v x y z r g b`` (vertex colours from the colormap by
    log loss) and ``f a b c`` (1-based), then each path as ``o path_NAME`` with its vertices
    (white) and ``l`` polylines.  OBJ has no per-vertex numbers: the loss is in the colours (and
    exactly in the PLY, VTP and CSV exports).  ``surf`` or ``paths`` None leaves that part out
    (a sequence's frames hold the terrain, its paths file the paths)."""
    lines = [f"# {c}" for c in _header_comments(info)]
    if surf is not None:
        lines += ["# vertex colours: the loss on a log scale, lowest loss at the colormap's low end",
                  "o terrain"]
    fh.write(("\n".join(lines + [""])).encode("ascii"))
    if surf is not None:
        _text_columns(fh, _OBJ_V, [surf.xyz, surf.rgb], scale=[1, 1, 1, 1 / 255, 1 / 255, 1 / 255])
        for faces in surf.face_blocks():
            _text_rows(fh, "f %d %d %d\n", faces.astype(np.int64) + 1)
    if paths is None:
        return
    base = (len(surf.xyz) if surf is not None else 0) + 1     # OBJ numbers vertices through the whole file
    for pid, name in enumerate(paths.names):
        sel = np.flatnonzero(paths.path == pid)     # contiguous, in order: numbers base + Paths index
        fh.write(f"o path_{_obj_name(name)}\n".encode("ascii"))
        _text_columns(fh, _OBJ_V, [paths.xyz[sel], np.ones((len(sel), 3))])
        for s, e, p in paths.lines:
            if p == pid:
                fh.write(("l " + " ".join(str(base + i) for i in range(s, e)) + "\n").encode("ascii"))


def _obj_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


_VTK_TYPES = {np.dtype("<f4"): "Float32", np.dtype("<f8"): "Float64", np.dtype("<i4"): "Int32",
              np.dtype("<i8"): "Int64", np.dtype("u1"): "UInt8"}
_NUMPY_TYPES = {v: k for k, v in _VTK_TYPES.items()}


class _Base64:
    """A base64 encoder over a stream of byte chunks: whole 3-byte groups are encoded as they
    come, so the chunks' encodings join into the encoding of their concatenation."""

    def __init__(self, fh):
        self.fh, self.rest = fh, b""

    def write(self, data) -> None:
        data = self.rest + bytes(data)
        n = len(data) // 3 * 3
        self.fh.write(base64.b64encode(data[:n]))
        self.rest = data[n:]

    def close(self) -> None:
        self.fh.write(base64.b64encode(self.rest))
        self.rest = b""


def _vtk_array(fh, chunks, vtk_type: str, nbytes: int, indent: str, name: Optional[str] = None,
               components: int = 1) -> None:
    """One binary DataArray: the base64 of a UInt64 byte count followed by the little-endian
    data, encoded together (VTK's layout for uncompressed inline binary, header_type UInt64).
    ``chunks``: arrays whose bytes, in order, are the data (so large arrays stream)."""
    attrs = f'type="{vtk_type}"' + (f' Name="{name}"' if name else "")
    if components > 1:
        attrs += f' NumberOfComponents="{components}"'
    fh.write(f'{indent}<DataArray {attrs} format="binary">\n{indent}  '.encode("ascii"))
    enc = _Base64(fh)
    enc.write(np.array(nbytes, dtype="<u8").tobytes())
    done = 0
    dtype = _NUMPY_TYPES[vtk_type]
    for c in chunks:
        c = np.ascontiguousarray(c, dtype=dtype)
        for s in range(0, c.size, 3 * TEXT_BLOCK):           # bounded pieces of the array
            piece = c.reshape(-1)[s:s + 3 * TEXT_BLOCK]
            enc.write(piece.tobytes())
            done += piece.nbytes
    enc.close()
    if done != nbytes:
        raise RuntimeError(f"DataArray {name}: wrote {done} bytes, announced {nbytes}")
    fh.write(f"\n{indent}</DataArray>\n".encode("ascii"))


def _vtk_whole(fh, a: np.ndarray, indent: str, name: Optional[str] = None, components: int = 1) -> None:
    a = np.asarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    _vtk_array(fh, [a], _VTK_TYPES[a.dtype], a.nbytes, indent, name, components)


def _vtk_head(fh, info: dict, extra: list[str] = ()) -> None:
    comment = "; ".join(_header_comments(info) + list(extra)).replace("--", "- -")
    fh.write(('<?xml version="1.0"?>\n'
              f"<!-- {comment} -->\n"
              '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
              "  <PolyData>\n").encode("ascii"))


def _vtk_tail(fh) -> None:
    fh.write(b"    </Piece>\n  </PolyData>\n</VTKFile>\n")


def _offset_blocks(count: int, size: int):
    """The end offsets size, 2*size, ... of ``count`` cells of ``size`` points, as int32 blocks."""
    for s in range(0, count, TEXT_BLOCK):
        yield np.arange(s + 1, min(count, s + TEXT_BLOCK) + 1, dtype="<i4") * size


def write_vtp(fh, surf: Surface, info: dict) -> None:
    """VTK XML PolyData: Points, PointData (Scalars ``loss``, then any extra grids), and Polys
    (triangles) or, for a point cloud, Verts (one per point).  Connectivity and offsets are
    Int32 (half the size of Int64; ParaView reads either)."""
    n = len(surf.xyz)
    nf = surf.n_faces
    nv, npoly = (0, nf) if surf.mesh else (n, 0)
    _vtk_head(fh, info)
    fh.write((f'    <Piece NumberOfPoints="{n}" NumberOfVerts="{nv}" NumberOfLines="0" '
              f'NumberOfStrips="0" NumberOfPolys="{npoly}">\n'
              '      <PointData Scalars="loss">\n').encode("ascii"))
    _vtk_whole(fh, surf.loss, "        ", "loss")
    for name, g in surf.grids.items():
        _vtk_whole(fh, g, "        ", name)
    fh.write(b"      </PointData>\n      <Points>\n")
    _vtk_whole(fh, surf.xyz, "        ", "Points", 3)
    fh.write(b"      </Points>\n")
    ind = "        "
    if surf.mesh:
        fh.write(b"      <Polys>\n")
        _vtk_array(fh, surf.face_blocks(), "Int32", 12 * nf, ind, "connectivity")
        _vtk_array(fh, _offset_blocks(nf, 3), "Int32", 4 * nf, ind, "offsets")
        fh.write(b"      </Polys>\n")
    else:
        fh.write(b"      <Verts>\n")
        _vtk_array(fh, (np.arange(s, min(n, s + TEXT_BLOCK), dtype="<i4") for s in range(0, n, TEXT_BLOCK)),
                   "Int32", 4 * n, ind, "connectivity")
        _vtk_array(fh, _offset_blocks(n, 1), "Int32", 4 * n, ind, "offsets")
        fh.write(b"      </Verts>\n")
    _vtk_tail(fh)


def write_vtp_paths(fh, paths: Paths, info: dict) -> None:
    """The paths as VTK XML PolyData: Points, PointData (Scalars ``loss``: the true loss;
    ``surface_loss``, ``step``, ``path``), Lines (one per polyline) and CellData ``path`` (the
    path id of each line; the ids are in the file's comment)."""
    k = len(paths.xyz)
    names = [f"path {i}: {name}" for i, name in enumerate(paths.names)]
    ind = "        "
    _vtk_head(fh, info, names)
    fh.write((f'    <Piece NumberOfPoints="{k}" NumberOfVerts="0" NumberOfLines="{len(paths.lines)}" '
              'NumberOfStrips="0" NumberOfPolys="0">\n'
              '      <PointData Scalars="loss">\n').encode("ascii"))
    _vtk_whole(fh, paths.loss, ind, "loss")
    _vtk_whole(fh, paths.surface_loss, ind, "surface_loss")
    _vtk_whole(fh, paths.step, ind, "step")
    _vtk_whole(fh, paths.path, ind, "path")
    fh.write(b'      </PointData>\n      <CellData Scalars="path">\n')
    _vtk_whole(fh, np.array([pid for _, _, pid in paths.lines], dtype=np.int32), ind, "path")
    fh.write(b"      </CellData>\n      <Points>\n")
    _vtk_whole(fh, paths.xyz, ind, "Points", 3)
    fh.write(b"      </Points>\n      <Lines>\n")
    conn = (np.concatenate([np.arange(s, e) for s, e, _ in paths.lines]) if paths.lines
            else np.empty(0, dtype=np.int64))
    _vtk_whole(fh, conn.astype(np.int32), ind, "connectivity")
    _vtk_whole(fh, np.cumsum([e - s for s, e, _ in paths.lines], dtype=np.int64).astype(np.int32), ind, "offsets")
    fh.write(b"      </Lines>\n")
    _vtk_tail(fh)


def write_csv(fh, ls: Landscape, stride: int = 1) -> None:
    """One row per (strided) grid vertex, beta rows then alpha columns: alpha, beta, loss and
    any extra grids; a non-finite value is written ``nan``."""
    loss = np.asarray(ls.loss)[::stride, ::stride]
    a = np.asarray(ls.alpha)[::stride]
    b = np.asarray(ls.beta)[::stride]
    names = sorted(ls.grids)
    fh.write((",".join(["alpha", "beta", "loss"] + names) + "\n").encode("ascii"))
    nx = len(a)
    rows_per_block = max(1, TEXT_BLOCK // nx)
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
        _text_rows(fh, fmt, block)


def write_paths_csv(fh, ls: Landscape) -> None:
    """Every point of every path: path, index, step, alpha, beta, loss, surface_loss."""
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["path", "index", "step", "alpha", "beta", "loss", "surface_loss"])
    for name, p in ls.paths.items():
        for i in range(len(p.step)):
            w.writerow([name, i, int(p.step[i]), repr(float(p.xy[i, 0])), repr(float(p.xy[i, 1])),
                        repr(float(p.loss[i])), repr(float(p.surface_loss[i]))])
    fh.write(text.getvalue().encode("utf-8"))


# --------------------------------------------------------------------------- files

def _paths_file(out: Path) -> Path:
    return out.with_name(f"{out.stem}_paths{out.suffix}")


def _write_atomic(files: list[tuple[Path, Callable]]) -> None:
    """Write each file under a temporary name in its folder, then rename them all into place,
    the first (the main file) last; on any failure remove the temporaries."""
    tmps = []
    try:
        for path, save in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmps.append((tmp, path))
            with open(tmp, "wb") as fh:
                save(fh)
        for tmp, path in reversed(tmps):
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in tmps:
            tmp.unlink(missing_ok=True)
        raise


def _check_options(fmt: str, stride: int, height_mode: str, z_scale: float) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if int(stride) < 1:
        raise ExportError(f"stride {stride}: must be at least 1")
    if height_mode not in HEIGHTS:
        raise ExportError(f"height {height_mode!r}; allowed: {', '.join(HEIGHTS)}")
    if not (np.isfinite(z_scale) and z_scale != 0):
        raise ExportError(f"z-scale {z_scale}: must be a finite, non-zero number")


def _geometry_info(info: dict, surf: Surface, stride: int, height_mode: str, z_scale: float) -> dict:
    zdesc = "loss" if height_mode == "linear" else "log10(loss)"
    return dict(info, z=f"{zdesc} * {z_scale:g}", grid=f"{surf.shape[1]} x {surf.shape[0]} (alpha x beta), "
                f"stride {stride}", dropped=f"{surf.dropped} non-finite vertices")


def export(ls: Landscape, out: str | Path, fmt: str, *, stride: int = 1, mesh: bool = True,
           height_mode: str = "linear", z_scale: float = 1.0, lut: Optional[np.ndarray] = None,
           info: Optional[dict] = None, grid: Optional[int] = None) -> list[Path]:
    """Write ``ls`` to ``out`` in ``fmt`` (and the paths to ``<out>_paths.<ext>`` for ply, vtp and
    csv); returns the files written, the main one first.  ``grid``: for an entry with a sequence,
    write its grid ``grid`` (negative counts from the end) instead of the still grid, coloured on
    its own scale."""
    _check_options(fmt, stride, height_mode, z_scale)
    out = Path(out)
    info = dict(info or {})
    paths_ls = ls
    if grid is not None:
        k = resolve_grid(ls, grid)
        q = ls.sequence
        info["sequence"] = f"grid {k} of {len(q.step)} (numbered from 0), training step {int(q.step[k])}"
        ls = grid_landscape(ls, k)
    if fmt == "csv":
        files = [(out, lambda fh: write_csv(fh, ls, stride)),
                 (_paths_file(out), lambda fh: write_paths_csv(fh, paths_ls))]
    else:
        surf = build_surface(ls, stride=stride, mesh=mesh, height_mode=height_mode, z_scale=z_scale, lut=lut)
        paths = build_paths(paths_ls, height_mode=height_mode, z_scale=z_scale)
        info = _geometry_info(info, surf, stride, height_mode, z_scale)
        if fmt == "ply":
            files = [(out, lambda fh: write_ply(fh, surf, info)),
                     (_paths_file(out), lambda fh: write_ply_paths(fh, paths, info))]
        elif fmt == "vtp":
            files = [(out, lambda fh: write_vtp(fh, surf, info)),
                     (_paths_file(out), lambda fh: write_vtp_paths(fh, paths, info))]
        else:
            files = [(out, lambda fh: write_obj(fh, surf, paths, info))]
    _write_atomic(files)
    return [p for p, _ in files]


# --------------------------------------------------------------------------- a landscape over training

#: values sampled from all of a sequence's grids together for the top of the shared colour scale
#: (about 16 MB of float32 however long the sequence; the film's own scale samples as many)
SCALE_SAMPLES = 4_000_000
#: the least number of digits in a sequence's file numbers (400 grids at most per scene: 000..399)
FRAME_DIGITS = 3


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
    from dataclasses import replace
    return replace(ls, loss=ls.sequence.loss[k], grids={}, sequence=None)


@dataclass
class SequenceScale:
    """One scale for every grid of a sequence: the colours' natural-log loss range and the
    heights the grids reach (for the command's summary)."""
    color: Optional[tuple]          # (lo, hi) in log loss; None where no grid has a finite loss
    z: tuple                        # (lowest, highest) height over all grids; (0, 0) if none


def sequence_scale(ls: Landscape, stride: int = 1, height_mode: str = "linear", z_scale: float = 1.0
                   ) -> SequenceScale:
    """The shared scale from all grids, one (strided) grid in memory at a time: the bottom is the
    lowest finite loss of any grid (exact), the top the COLOR_QUANTILE of an evenly strided
    sample of every grid (every value when the grids together hold at most SCALE_SAMPLES)."""
    q = ls.sequence
    k_all = len(q.step)
    ny, nx = len(range(0, q.loss.shape[1], stride)), len(range(0, q.loss.shape[2], stride))
    s = max(1, int(np.ceil(np.sqrt(ny * nx * k_all / SCALE_SAMPLES))))
    lo, zlo, zhi, sample = np.inf, np.inf, -np.inf, []
    for k in range(k_all):
        g = np.asarray(q.loss[k, ::stride, ::stride], dtype=np.float32)
        fin = g[np.isfinite(g)]
        if fin.size:
            lo = min(lo, float(fin.min()))
            z = height(np.array([fin.min(), fin.max()], dtype=np.float32), height_mode, z_scale)
            zlo, zhi = min(zlo, float(z.min())), max(zhi, float(z.max()))
        sub = g[::s, ::s]
        sample.append(sub[np.isfinite(sub)])
    sample = np.concatenate(sample)
    if not np.isfinite(lo):
        return SequenceScale(None, (0.0, 0.0))
    log_lo = float(np.log(np.maximum(np.float32(lo), np.float32(LOG_FLOOR))))
    log_hi = float(np.quantile(np.log(np.maximum(sample, np.float32(LOG_FLOOR))), COLOR_QUANTILE)) \
        if sample.size else log_lo
    return SequenceScale((log_lo, max(log_lo, log_hi)), (zlo, zhi))


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


def write_sequence_index(fh, ls: Landscape) -> None:
    """One row per grid: grid, step, head_alpha, head_beta, head_loss (see :func:`head_losses`)."""
    q = ls.sequence
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["grid", "step", "head_alpha", "head_beta", "head_loss"])
    for k, hl in enumerate(head_losses(ls)):
        w.writerow([k, int(q.step[k]), repr(float(q.xy[k, 0])), repr(float(q.xy[k, 1])), repr(float(hl))])
    fh.write(text.getvalue().encode("ascii"))


def write_pvd(fh, files: list[Path], steps: np.ndarray) -> None:
    """A ParaView collection: one DataSet per grid, its ``timestep`` the training step, its file
    relative to the collection's folder (the numbered files lie beside it)."""
    from xml.sax.saxutils import quoteattr
    rows = "".join(f'    <DataSet timestep="{int(s)}" group="" part="0" file={quoteattr(f.name)}/>\n'
                   for f, s in zip(files, steps))
    fh.write(('<?xml version="1.0"?>\n'
              '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
              "  <Collection>\n" + rows + "  </Collection>\n</VTKFile>\n").encode("utf-8"))


def frame_files(out: Path, count: int) -> list[Path]:
    """``<stem>_grid000.<ext>``, ``<stem>_grid001.<ext>``, ...: zero-padded to the width of the
    largest number (at least FRAME_DIGITS), so the names sort in order; "grid" keeps them apart
    from ``<stem>_paths`` for importers that take every file sharing a typed prefix."""
    w = max(FRAME_DIGITS, len(str(count - 1)))
    return [out.with_name(f"{out.stem}_grid{k:0{w}d}{out.suffix}") for k in range(count)]


def _stale_frames(out: Path, count: int) -> list[Path]:
    """Numbered files of an earlier, longer sequence export to the same name (numbers from
    ``count`` on): left in place they would join the new sequence in Blender and ParaView."""
    w = max(FRAME_DIGITS, len(str(count - 1)))
    pattern = f"{glob.escape(out.stem)}_grid{'[0-9]' * w}{glob.escape(out.suffix)}"
    return sorted(p for p in out.parent.glob(pattern) if int(p.stem[-w:]) >= count)


def export_sequence(ls: Landscape, out: str | Path, fmt: str, *, stride: int = 1, mesh: bool = True,
                    height_mode: str = "linear", z_scale: float = 1.0, lut: Optional[np.ndarray] = None,
                    info: Optional[dict] = None, scale: Optional[SequenceScale] = None) -> list[Path]:
    """Every grid of the entry's sequence as its own file, ``<stem>_grid000.<ext>`` ... (see
    :func:`frame_files`), coloured on one scale for all grids (:func:`sequence_scale`), then
    the paths as :func:`export` writes them (``<stem>_paths.<ext>``, for OBJ too), the index
    ``<stem>_sequence.csv`` and, for VTP, the ParaView collection ``<stem>.pvd``.  One grid is
    in memory at a time.  All files are written into a temporary folder beside ``out`` and moved
    into place at the end (numbered files of an earlier, longer export are removed): a failure
    leaves the earlier export as it was.  ``scale``: :func:`sequence_scale` with the same stride,
    height and z-scale, if already at hand.  Returns the files, frames first."""
    _check_options(fmt, stride, height_mode, z_scale)
    out = Path(out)
    count = sequence_count(ls)
    q = ls.sequence
    frames = frame_files(out, count)
    info = dict(info or {})
    files: list[tuple[Path, Callable]] = []
    if fmt == "csv":
        for k, f in enumerate(frames):
            files.append((f, lambda fh, k=k: write_csv(fh, grid_landscape(ls, k), stride)))
        files.append((_paths_file(out), lambda fh: write_paths_csv(fh, ls)))
    else:
        if scale is None:
            scale = sequence_scale(ls, stride, height_mode, z_scale)
        if scale.color is not None:
            info["colours"] = (f"log loss scale {np.exp(scale.color[0]):.6g} .. {np.exp(scale.color[1]):.6g}, "
                               f"shared by all {count} grids")
        writer = {"ply": write_ply, "vtp": write_vtp, "obj": lambda fh, s, i: write_obj(fh, s, None, i)}[fmt]

        def frame(fh, k):
            # built when its file is written, so one grid's surface is in memory at a time
            surf = build_surface(grid_landscape(ls, k), stride=stride, mesh=mesh, height_mode=height_mode,
                                 z_scale=z_scale, lut=lut, color_scale=scale.color)
            writer(fh, surf, dict(_geometry_info(info, surf, stride, height_mode, z_scale),
                                  sequence=f"grid {k} of {count} (numbered from 0), training step {int(q.step[k])}"))

        for k, f in enumerate(frames):
            files.append((f, lambda fh, k=k: frame(fh, k)))
        paths = build_paths(ls, height_mode=height_mode, z_scale=z_scale)
        pinfo = dict(info, z=f"{'loss' if height_mode == 'linear' else 'log10(loss)'} * {z_scale:g}")
        files.append((_paths_file(out), {"ply": lambda fh: write_ply_paths(fh, paths, pinfo),
                                         "vtp": lambda fh: write_vtp_paths(fh, paths, pinfo),
                                         "obj": lambda fh: write_obj(fh, None, paths, pinfo)}[fmt]))
    files.append((out.with_name(f"{out.stem}_sequence.csv"), lambda fh: write_sequence_index(fh, ls)))
    if fmt == "vtp":
        files.append((out.with_suffix(".pvd"), lambda fh: write_pvd(fh, frames, q.step)))
    _write_set(files, _stale_frames(out, count))
    return [p for p, _ in files]


def _write_set(files: list[tuple[Path, Callable]], stale: list[Path] = ()) -> None:
    """Write a set of files in one folder all or nothing: each into a temporary folder beside
    them (``.<first name>.export-tmp-<pid>``), then, once all are complete, move each earlier
    file aside and the new one into place, in order (the last is the one a viewer opens), and
    move ``stale`` files aside too.  A failure while writing touches nothing; one while moving
    (rare: renames in one folder) removes the new files placed and puts the earlier ones back.
    The earlier files are deleted with the temporary folder."""
    import shutil
    folder = files[0][0].parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{files[0][0].name}.export-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "new").mkdir(parents=True)
    (tmp / "old").mkdir()
    try:
        for path, save in files:
            with open(tmp / "new" / path.name, "wb") as fh:
                save(fh)
        placed, aside = [], []
        try:
            for path in stale:
                os.replace(path, tmp / "old" / path.name)
                aside.append(path)
            for path, _ in files:
                if path.exists():
                    os.replace(path, tmp / "old" / path.name)
                    aside.append(path)
                os.replace(tmp / "new" / path.name, path)
                placed.append(path)
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            for path in aside:
                os.replace(tmp / "old" / path.name, path)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- command line

def _stride(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}")
    return v


def _zscale(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not np.isfinite(v) or v == 0:
        raise argparse.ArgumentTypeError(f"a finite, non-zero number, got {text!r}")
    return v


def _human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m compute export",
        description="Export a scene's cached landscape (grid and paths) to PLY, OBJ, VTP or CSV; computes nothing.")
    ap.add_argument("scene", help="scene file (YAML); its landscape must be in the cache")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scene value, e.g. --set landscape.grid.resolution=[150,150] (repeatable; "
                         "enters the cache key like the file's values)")
    ap.add_argument("--format", choices=FORMATS, default=None,
                    help="ply (Blender, MeshLab), obj, vtp (ParaView) or csv; default: from --out's suffix")
    ap.add_argument("--out", default=None, metavar="PATH", help="output file (default: out/<scene name>.<format>)")
    ap.add_argument("--cache-dir", default="cache", help="cache root (default: cache)")
    ap.add_argument("--stride", type=_stride, default=1, metavar="N", help="keep every Nth grid row and column (default 1)")
    shape = ap.add_mutually_exclusive_group()
    shape.add_argument("--mesh", dest="points", action="store_false", default=None,
                       help="a triangle mesh (the default for ply, obj, vtp)")
    shape.add_argument("--points", dest="points", action="store_true", default=None,
                       help="a point cloud instead of a mesh")
    ap.add_argument("--z-scale", type=_zscale, default=None, metavar="S", help="multiplies the height (default 1)")
    ap.add_argument("--height", choices=HEIGHTS, default=None,
                    help="height = loss (linear, the default) or log10(loss), times --z-scale")
    ap.add_argument("--panel", type=_stride, default=None, metavar="N",
                    help="for a scene with compare: which panel's landscape (1, 2, ...)")
    over = ap.add_mutually_exclusive_group()
    over.add_argument("--sequence", action="store_true",
                      help="for a landscape over training (landscape.sequence): every grid as its own numbered "
                           "file <out>_grid000.<format>, ..., on one colour scale, with <out>_sequence.csv "
                           "(and <out>.pvd for vtp)")
    over.add_argument("--grid", type=int, default=None, metavar="K",
                      help="for a landscape over training: just grid K (0 is the first, -1 the last)")
    args = ap.parse_args(argv)

    fmt = args.format
    if args.out is not None:
        suffix = Path(args.out).suffix.lower().lstrip(".")
        if fmt is None:
            if suffix not in FORMATS:
                print(f"error: --out {args.out}: give --format ({'|'.join(FORMATS)}) or an --out ending in "
                      f"one of .{', .'.join(FORMATS)}", file=sys.stderr)
                return 2
            fmt = suffix
        elif suffix != fmt:
            print(f"error: --out {args.out}: a {fmt} file's name ends in .{fmt}", file=sys.stderr)
            return 2
    if fmt is None:
        print(f"error: --format is required ({'|'.join(FORMATS)})", file=sys.stderr)
        return 2
    if fmt == "csv":
        given = [o for o, v in (("--mesh/--points", args.points), ("--z-scale", args.z_scale),
                                ("--height", args.height)) if v is not None]
        if given:
            print(f"error: {', '.join(given)}: shape{'s' if len(given) == 1 else ''} the 3-D formats (ply, obj, "
                  f"vtp); the csv holds the plain loss on the grid", file=sys.stderr)
            return 2

    from studio import cache
    from studio.assets import ColormapError, colormap
    from studio.scene import load_scene_or_report
    scene = load_scene_or_report(args.scene, args.set)
    if scene is None:
        return 2
    panels = scene.panels() if hasattr(scene, "panels") else []
    stem = scene.name
    if panels:                            # a comparison: each panel is its own cache entry
        if args.panel is None or args.panel > len(panels):
            print(f"error: {args.scene} compares {len(panels)} landscapes: choose one with --panel 1 to "
                  f"{len(panels)}", file=sys.stderr)
            return 2
        scene = panels[args.panel - 1][1]
        stem = f"{stem}_panel{args.panel}"
    elif args.panel is not None:
        print(f"error: --panel: {args.scene} has no compare: section (one landscape)", file=sys.stderr)
        return 2
    try:
        ls = cache.read(Path(args.cache_dir), scene.cache_key(), args.scene, descents=scene.landscape.descents)
    except cache.CacheError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    try:
        lut = colormap(scene.render.look.colormap)
    except ColormapError as e:
        print(f"error: {args.scene}: render.look.colormap: {e}", file=sys.stderr)
        return 2
    grid = None
    if args.sequence or args.grid is not None:
        flag = "--sequence" if args.sequence else f"--grid {args.grid}"
        if ls.sequence is None:
            print(f"error: {flag}: the cache entry for {args.scene} holds no landscape over training (the scene "
                  f"has no landscape.sequence); leave out {flag.split()[0]} to export its grid", file=sys.stderr)
            return 2
        if args.grid is not None:
            try:
                grid = resolve_grid(ls, args.grid)
            except ExportError:
                n = len(ls.sequence.step)
                print(f"error: --grid {args.grid}: {args.scene}'s landscape over training has {n} grids: give 0 to "
                      f"{n - 1}, or -{n} to -1 counting from the end", file=sys.stderr)
                return 2
            stem = f"{stem}_grid{grid}"
    out = Path(args.out) if args.out else Path("out") / f"{stem}.{fmt}"
    info = {"scene": Path(args.scene).name, "cache key": ls.key, "x": "alpha", "y": "beta",
            "colormap": Path(scene.render.look.colormap).name}
    shape = dict(stride=args.stride, mesh=not args.points, height_mode=args.height or "linear",
                 z_scale=args.z_scale or 1.0, lut=lut, info=info)
    t0 = time.perf_counter()
    try:
        if args.sequence:
            scale = None if fmt == "csv" else sequence_scale(ls, args.stride, shape["height_mode"], shape["z_scale"])
            files = export_sequence(ls, out, fmt, scale=scale, **shape)
        else:
            files = export(ls, out, fmt, grid=grid, **shape)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    if args.sequence:
        n = len(ls.sequence.step)
        frames, rest = files[:n], files[n:]
        total = sum(f.stat().st_size for f in frames)
        sizes = (f"{n} grids {frames[0]} .. {frames[-1].name} ({_human(total)} in all), "
                 + ", ".join(f"{f} ({_human(f.stat().st_size)})" for f in rest))
    else:
        sizes = ", ".join(f"{f} ({_human(f.stat().st_size)})" for f in files)
    print(f"[export] wrote {sizes} in {dt:.1f} s", file=sys.stderr)
    if fmt != "csv":
        if args.sequence:
            zlo, zhi = scale.z
            what = "z over all grids"
        else:
            g = ls.sequence.loss[grid] if grid is not None else ls.loss
            fin = np.asarray(g)[np.isfinite(g)]
            h = height(fin, args.height or "linear", args.z_scale or 1.0) if fin.size else np.zeros(1, np.float32)
            zlo, zhi, what = float(h.min()), float(h.max()), "z"
        print(f"[export] x (alpha) {ls.alpha[0]:.4g} .. {ls.alpha[-1]:.4g}, y (beta) {ls.beta[0]:.4g} .. "
              f"{ls.beta[-1]:.4g}, {what} {zlo:.4g} .. {zhi:.4g} (--z-scale scales z)", file=sys.stderr)
    if ls.sequence is not None and not args.sequence and grid is None:
        print(f"[export] this entry also holds a landscape over training ({len(ls.sequence.step)} grids): "
              f"--sequence exports every grid, --grid K one of them", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
