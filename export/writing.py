"""Writing a landscape: one grid (:func:`export`) or every grid of a landscape over training
(:func:`export_sequence`), in any format, with the paths beside it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from export.files import Save, frame_files, paths_file, stale_frames, write_atomic, write_set
from export.formats import csv, obj, ply, vtp
from export.geometry import Surface, build_paths, build_surface
from export.options import check_options, z_formula
from export.sequence import grid_caption, grid_landscape, resolve_grid, sequence_count
from studio.cache import Landscape
from studio.scale import HeightMap, loss_color_scale, loss_sample

#: the formats that write the terrain and the paths as two files, by module (looked up when a
#: file is written)
_TWO_FILES = {"ply": ply, "vtp": vtp}


def export(ls: Landscape, out: str | Path, fmt: str, *, stride: int = 1, mesh: bool = True,
           height_mode: str = "linear", z_scale: float = 1.0, lut: Optional[np.ndarray] = None,
           info: Optional[dict] = None, grid: Optional[int] = None,
           colors: Optional[HeightMap] = None) -> list[Path]:
    """Write ``ls`` to ``out`` in ``fmt`` (and the paths to ``<out>_paths.<ext>`` for ply, vtp and
    csv); returns the files written, the main one first.  ``grid``: for an entry with a sequence,
    write its grid ``grid`` (negative counts from the end) instead of the still grid.  ``colors``:
    the colour scale (None: the written grid's own, studio.scale.loss_color_scale)."""
    check_options(fmt, stride, height_mode, z_scale)
    out = Path(out)
    info = dict(info or {})
    paths_ls = ls
    if grid is not None:
        k = resolve_grid(ls, grid)
        info["sequence"] = grid_caption(ls, k)
        ls = grid_landscape(ls, k)
    if fmt == "csv":
        files = [(out, lambda fh: csv.write_grid(fh, ls, stride)),
                 (paths_file(out), lambda fh: csv.write_paths(fh, paths_ls))]
    else:
        surf = build_surface(ls, stride=stride, mesh=mesh, height_mode=height_mode, z_scale=z_scale, lut=lut,
                             colors=colors)
        paths = build_paths(paths_ls, height_mode=height_mode, z_scale=z_scale)
        info = _describe(info, surf, stride, height_mode, z_scale)
        if fmt == "obj":
            files = [(out, lambda fh: obj.write(fh, surf, paths, info))]
        else:
            writer = _TWO_FILES[fmt]
            files = [(out, lambda fh: writer.write_surface(fh, surf, info)),
                     (paths_file(out), lambda fh: writer.write_paths(fh, paths, info))]
    write_atomic(files)
    return [p for p, _ in files]


def export_sequence(ls: Landscape, out: str | Path, fmt: str, *, stride: int = 1, mesh: bool = True,
                    height_mode: str = "linear", z_scale: float = 1.0, lut: Optional[np.ndarray] = None,
                    info: Optional[dict] = None, colors: Optional[HeightMap] = None) -> list[Path]:
    """Every grid of the entry's sequence as its own file, ``<stem>_grid000.<ext>`` ... (see
    :func:`export.files.frame_files`), coloured on one scale for all grids, then the paths as
    :func:`export` writes them (``<stem>_paths.<ext>``, for OBJ too), the index
    ``<stem>_sequence.csv`` and, for VTP, the ParaView collection ``<stem>.pvd``.  One grid is in
    memory at a time.  All files are written into a temporary folder beside ``out`` and moved into
    place at the end (numbered files of an earlier, longer export are removed): a failure leaves
    the earlier export as it was.  ``colors``: the colour scale (None: the sequence's, from a
    sample of every grid, studio.scale.loss_sample).  Returns the files, frames first."""
    check_options(fmt, stride, height_mode, z_scale)
    out = Path(out)
    count = sequence_count(ls)
    frames = frame_files(out, count)
    info = dict(info or {})
    files: list[Save] = []
    if fmt == "csv":
        for k, f in enumerate(frames):
            files.append((f, lambda fh, k=k: csv.write_grid(fh, grid_landscape(ls, k), stride)))
        files.append((paths_file(out), lambda fh: csv.write_paths(fh, ls)))
    else:
        if colors is None:
            colors = loss_color_scale(loss_sample(ls))
        info["colours"] = (f"log loss scale {np.exp(colors.lo):.6g} .. {np.exp(colors.hi):.6g}, "
                           f"shared by all {count} grids")

        def frame(fh, k):
            # built when its file is written, so one grid's surface is in memory at a time
            surf = build_surface(grid_landscape(ls, k), stride=stride, mesh=mesh, height_mode=height_mode,
                                 z_scale=z_scale, lut=lut, colors=colors)
            finfo = dict(_describe(info, surf, stride, height_mode, z_scale), sequence=grid_caption(ls, k))
            if fmt == "obj":
                obj.write(fh, surf, None, finfo)
            else:
                _TWO_FILES[fmt].write_surface(fh, surf, finfo)

        for k, f in enumerate(frames):
            files.append((f, lambda fh, k=k: frame(fh, k)))
        paths = build_paths(ls, height_mode=height_mode, z_scale=z_scale)
        pinfo = dict(info, z=z_formula(height_mode, z_scale))
        if fmt == "obj":
            files.append((paths_file(out), lambda fh: obj.write(fh, None, paths, pinfo)))
        else:
            files.append((paths_file(out), lambda fh: _TWO_FILES[fmt].write_paths(fh, paths, pinfo)))
    files.append((out.with_name(f"{out.stem}_sequence.csv"), lambda fh: csv.write_sequence_index(fh, ls)))
    if fmt == "vtp":
        files.append((out.with_suffix(".pvd"), lambda fh: vtp.write_collection(fh, frames, ls.sequence.step)))
    write_set(files, stale_frames(out, count))
    return [p for p, _ in files]


def _describe(info: dict, surf: Surface, stride: int, height_mode: str, z_scale: float) -> dict:
    """The header's description of a terrain file: ``info`` and how its geometry was made."""
    return dict(info, z=z_formula(height_mode, z_scale), grid=f"{surf.shape[1]} x {surf.shape[0]} (alpha x beta), "
                f"stride {stride}", dropped=f"{surf.dropped} non-finite vertices")
