"""VTK XML PolyData (ParaView): the terrain, the paths as lines, and a ``.pvd`` collection over a
landscape over training's files.  Arrays are inline binary (base64 of a UInt64 byte count and
the little-endian data), streamed in chunks."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Optional

import numpy as np

from export.formats.text import header_comments
from export.geometry import BLOCK, Paths, Surface

_VTK_TYPES = {np.dtype("<f4"): "Float32", np.dtype("<f8"): "Float64", np.dtype("<i4"): "Int32",
              np.dtype("<i8"): "Int64", np.dtype("u1"): "UInt8"}
_NUMPY_TYPES = {v: k for k, v in _VTK_TYPES.items()}


def write_surface(fh, surf: Surface, info: dict) -> None:
    """Points, PointData (Scalars ``loss``, then any extra grids), and Polys (triangles) or, for a
    point cloud, Verts (one per point).  Connectivity and offsets are Int32 (half the size of
    Int64; ParaView reads either)."""
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
        _vtk_array(fh, (np.arange(s, min(n, s + BLOCK), dtype="<i4") for s in range(0, n, BLOCK)),
                   "Int32", 4 * n, ind, "connectivity")
        _vtk_array(fh, _offset_blocks(n, 1), "Int32", 4 * n, ind, "offsets")
        fh.write(b"      </Verts>\n")
    _vtk_tail(fh)


def write_paths(fh, paths: Paths, info: dict) -> None:
    """Points, PointData (Scalars ``loss``: the true loss; ``surface_loss``, ``step``, ``path``),
    Lines (one per polyline) and CellData ``path`` (the path id of each line; the ids are in the
    file's comment)."""
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


def write_collection(fh, files: list[Path], steps: np.ndarray) -> None:
    """A ParaView collection (``.pvd``): one DataSet per grid, its ``timestep`` the training step,
    its file relative to the collection's folder (the numbered files lie beside it)."""
    from xml.sax.saxutils import quoteattr
    rows = "".join(f'    <DataSet timestep="{int(s)}" group="" part="0" file={quoteattr(f.name)}/>\n'
                   for f, s in zip(files, steps))
    fh.write(('<?xml version="1.0"?>\n'
              '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
              "  <Collection>\n" + rows + "  </Collection>\n</VTKFile>\n").encode("utf-8"))


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
        for s in range(0, c.size, 3 * BLOCK):               # bounded pieces of the array
            piece = c.reshape(-1)[s:s + 3 * BLOCK]
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
    comment = "; ".join(header_comments(info) + list(extra)).replace("--", "- -")
    fh.write(('<?xml version="1.0"?>\n'
              f"<!-- {comment} -->\n"
              '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
              "  <PolyData>\n").encode("ascii"))


def _vtk_tail(fh) -> None:
    fh.write(b"    </Piece>\n  </PolyData>\n</VTKFile>\n")


def _offset_blocks(count: int, size: int):
    """The end offsets size, 2*size, ... of ``count`` cells of ``size`` points, as int32 blocks."""
    for s in range(0, count, BLOCK):
        yield np.arange(s + 1, min(count, s + BLOCK) + 1, dtype="<i4") * size
