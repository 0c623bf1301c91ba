"""Binary little-endian PLY (Blender, MeshLab): the terrain, and the paths as loose edges."""
from __future__ import annotations

import numpy as np

from export.formats.text import header_comments
from export.geometry import BLOCK, Paths, Surface


def write_surface(fh, surf: Surface, info: dict) -> None:
    """Vertex (float x y z, float loss, float per extra grid, uchar red green blue) and face
    (list uchar int vertex_indices); a point cloud has 0 faces."""
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("loss", "<f4")]
    fields += [(name, "<f4") for name in surf.grids]
    fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    head = ["ply", "format binary_little_endian 1.0"]
    head += [f"comment {c}" for c in header_comments(info)]
    head.append(f"element vertex {len(surf.xyz)}")
    head += [f"property {'float' if t == '<f4' else 'uchar'} {name}" for name, t in fields]
    head += [f"element face {surf.n_faces}", "property list uchar int vertex_indices", "end_header"]
    fh.write(("\n".join(head) + "\n").encode("ascii"))
    for s in range(0, len(surf.xyz), BLOCK):                 # interleaved a block at a time
        e = min(len(surf.xyz), s + BLOCK)
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


def write_paths(fh, paths: Paths, info: dict) -> None:
    """The paths as vertices (x y z, int path, int step, float loss, float surface_loss) joined
    by ``element edge`` (int vertex1, int vertex2): Blender imports the edges as loose edges of
    one object (and the other properties as attributes), MeshLab as edges."""
    edges = _edges(paths)
    head = ["ply", "format binary_little_endian 1.0"]
    head += [f"comment {c}" for c in header_comments(info)]
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
