"""Wavefront OBJ (Blender, MeshLab, most 3-D tools): the terrain and each path as objects."""
from __future__ import annotations

from typing import Optional

import numpy as np

from export.formats.text import header_comments, text_columns, text_rows
from export.geometry import Paths, Surface

_OBJ_V = "v %.7g %.7g %.7g %.4f %.4f %.4f\n"


def write(fh, surf: Optional[Surface], paths: Optional[Paths], info: dict) -> None:
    """``o terrain`` with ``v x y z r g b`` (vertex colours from the colormap by log loss) and
    ``f a b c`` (1-based), then each path as ``o path_NAME`` with its vertices (white) and ``l``
    polylines.  OBJ has no per-vertex numbers: the loss is in the colours (and exactly in the PLY,
    VTP and CSV exports).  ``surf`` or ``paths`` None leaves that part out (a sequence's frames
    hold the terrain, its paths file the paths)."""
    lines = [f"# {c}" for c in header_comments(info)]
    if surf is not None:
        lines += ["# vertex colours: the loss on a log scale, lowest loss at the colormap's low end",
                  "o terrain"]
    fh.write(("\n".join(lines + [""])).encode("ascii"))
    if surf is not None:
        text_columns(fh, _OBJ_V, [surf.xyz, surf.rgb], scale=[1, 1, 1, 1 / 255, 1 / 255, 1 / 255])
        for faces in surf.face_blocks():
            text_rows(fh, "f %d %d %d\n", faces.astype(np.int64) + 1)
    if paths is None:
        return
    base = (len(surf.xyz) if surf is not None else 0) + 1     # OBJ numbers vertices through the whole file
    for pid, name in enumerate(paths.names):
        sel = np.flatnonzero(paths.path == pid)     # contiguous, in order: numbers base + Paths index
        fh.write(f"o path_{_obj_name(name)}\n".encode("ascii"))
        text_columns(fh, _OBJ_V, [paths.xyz[sel], np.ones((len(sel), 3))])
        for s, e, p in paths.lines:
            if p == pid:
                fh.write(("l " + " ".join(str(base + i) for i in range(s, e)) + "\n").encode("ascii"))


def _obj_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
