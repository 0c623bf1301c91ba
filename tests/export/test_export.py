"""Exports to 3-D tools (export/, `python -m export`): every format written from a
small cache entry and read back with plain readers written for the tests (a binary PLY parser in
conftest.py, an OBJ line parser, an XML + base64 reader for VTP, the csv module), then held to a
reference built cell by cell in Python: vertex and face counts, the loss at known vertices, NaN
handling, the paths' polylines, errors, and files that appear only when complete.  A landscape
over training (landscape.sequence): every grid as a numbered file on one colour scale, the index
and the ParaView collection, one grid with --grid, one grid in memory at a time, all or nothing.
The command's default height scale is the film's proportions, and `python -m compute export` is
the same command."""
from __future__ import annotations

import base64
import csv
import os
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import export
from export.__main__ import main as export_main
from export.formats import csv as csv_format, ply, vtp
from studio import cache, scale
from studio.assets import colormap
from studio.cache import Descent, Landscape, Path2D
from studio.scene import load_scene
from tests.conftest import ROOT, read_ply

NX, NY = 7, 5
NAN_AT = [(2, 3), (4, 6)]         # (row j = beta, column i = alpha): one inside the grid, one corner

SCENE = """
title: export test
landscape:
  grid: {resolution: [7, 5]}
  descents:
    - {name: sgd, optimizer: sgd, lr: 0.1, start: [1.5, 1.0], steps: 4}
render:
  look: {colormap: viridis}
"""


# --------------------------------------------------------------------------- the entry

def bowl(a, b):
    return 0.1 + a ** 2 + 2 * b ** 2


def small_entry(key: str, descent_spec: dict | None = None) -> Landscape:
    alpha = np.linspace(-1.0, 2.0, NX)
    beta = np.linspace(-0.5, 1.5, NY)
    A, B = np.meshgrid(alpha, beta)
    loss = bowl(A, B).astype(np.float32)
    for j, i in NAN_AT:
        loss[j, i] = np.nan
    acc = (1 - loss / 20).astype(np.float32)
    T = 8
    xy = np.stack([np.linspace(-0.9, 1.9, T), np.linspace(1.4, -0.4, T)], axis=1)
    surf = bowl(xy[:, 0], xy[:, 1])
    surf[3] = np.nan                        # cuts the training path into 3 + 4 points
    train = Path2D("training", xy, surf * 1.5 + 0.01, surf, np.linspace(1, 0, T), np.arange(T, dtype=np.int64) * 5)
    descents = {}
    if descent_spec is not None:
        dxy = np.array([[1.5, 1.0], [1.2, 0.7], [0.8, 0.4], [3.0, 0.2], [0.1, 0.0]])   # one point beyond the grid
        dl = bowl(dxy[:, 0], dxy[:, 1])
        p = Path2D("sgd", dxy, dl, dl, np.zeros(5), np.arange(5, dtype=np.int64))
        descents[cache.descent_key(descent_spec)] = Descent(descent_spec, p)
    return Landscape(key, loss, alpha, beta, {"training": train}, {"note": "export test"},
                     descents=descents, grids={"accuracy": acc})


@pytest.fixture
def entry(tmp_path):
    """A scene and its cache entry (with one in-plane descent), read back through the cache reader
    -> (scene path, cache root, Landscape as read)."""
    scene_path = tmp_path / "film.yaml"
    scene_path.write_text(textwrap.dedent(SCENE).lstrip())
    scene = load_scene(scene_path)
    spec = cache.canonical_descent(scene.landscape.descents[0])
    root = tmp_path / "cache"
    cache.write(root, small_entry(scene.cache_key(), spec))
    ls = cache.read(root, scene.cache_key(), str(scene_path), descents=scene.landscape.descents)
    assert list(ls.paths) == ["training", "sgd"]
    return scene_path, root, ls


# --------------------------------------------------------------------------- the reference

def reference(ls: Landscape, stride: int = 1, mode: str = "linear", z_scale: float = 1.0):
    """Kept vertices in row-major order as {(j, i): new index}, their (x, y, z, loss), and the
    triangles as vertex-index triples, built one cell at a time."""
    loss = np.asarray(ls.loss)[::stride, ::stride].astype(np.float64)
    a, b = np.asarray(ls.alpha)[::stride], np.asarray(ls.beta)[::stride]
    number, verts = {}, []
    for j in range(loss.shape[0]):
        for i in range(loss.shape[1]):
            v = loss[j, i]
            if np.isfinite(v):
                number[(j, i)] = len(verts)
                z = v * z_scale if mode == "linear" else np.log10(v) * z_scale
                verts.append((a[i], b[j], z, v))
    faces = []
    for j in range(loss.shape[0] - 1):
        for i in range(loss.shape[1] - 1):
            c = [(j, i), (j, i + 1), (j + 1, i), (j + 1, i + 1)]
            if all(k in number for k in c):
                n00, n10, n01, n11 = (number[k] for k in c)
                faces += [(n00, n10, n11), (n00, n11, n01)]
    return number, np.array(verts), faces


def runs(surface_loss: np.ndarray) -> list[list[int]]:
    """Indices of the finite runs of a path (the polylines), by a plain loop."""
    out, cur = [], []
    for k, v in enumerate(surface_loss):
        if np.isfinite(v):
            cur.append(k)
        else:
            out.append(cur)
            cur = []
    out.append(cur)
    return [r for r in out if r]


# --------------------------------------------------------------------------- readers

def read_obj(path: Path) -> dict:
    """OBJ lines -> {"v": [(x, y, z, r, g, b)], "objects": {name: {"f": [...], "l": [...]}}} with
    1-based indices turned 0-based."""
    v, objects, cur = [], {}, None
    for line in path.read_text(encoding="ascii").splitlines():
        w = line.split()
        if not w or w[0] == "#":
            continue
        if w[0] == "o":
            cur = objects.setdefault(w[1], {"f": [], "l": [], "v": []})
        elif w[0] == "v":
            assert len(w) == 7, line
            cur["v"].append(len(v))
            v.append(tuple(float(x) for x in w[1:]))
        elif w[0] in ("f", "l"):
            cur[w[0]].append(tuple(int(x) - 1 for x in w[1:]))
        else:
            raise AssertionError(f"unexpected OBJ line {line!r}")
    return {"v": np.array(v).reshape(-1, 6), "objects": objects}


VTK_TYPES = {"Float32": "<f4", "Float64": "<f8", "Int32": "<i4", "Int64": "<i8", "UInt8": "u1"}


def vtk_array(el: ET.Element) -> np.ndarray:
    """Decode a binary DataArray: base64 of a UInt64 byte count followed by the data."""
    assert el.get("format") == "binary"
    raw = base64.b64decode("".join(el.text.split()))
    (nbytes,) = struct.unpack("<Q", raw[:8])
    assert nbytes == len(raw) - 8, (nbytes, len(raw))
    a = np.frombuffer(raw[8:], dtype=VTK_TYPES[el.get("type")])
    k = int(el.get("NumberOfComponents", "1"))
    return a.reshape(-1, k) if k > 1 else a


def read_vtp(path: Path) -> dict:
    root = ET.parse(path).getroot()
    assert root.tag == "VTKFile" and root.get("type") == "PolyData"
    assert root.get("header_type") == "UInt64" and root.get("byte_order") == "LittleEndian"
    pieces = root.findall("PolyData/Piece")
    assert len(pieces) == 1
    piece = pieces[0]
    out = {"counts": {k: int(piece.get(f"NumberOf{k}"))
                      for k in ("Points", "Verts", "Lines", "Strips", "Polys")},
           "points": vtk_array(piece.find("Points/DataArray")),
           "point_scalars": piece.find("PointData").get("Scalars"),
           "point_data": {el.get("Name"): vtk_array(el) for el in piece.findall("PointData/DataArray")},
           "cell_data": {el.get("Name"): vtk_array(el) for el in piece.findall("CellData/DataArray")}}
    for kind in ("Verts", "Lines", "Polys"):
        el = piece.find(kind)
        if el is not None:
            arrays = {a.get("Name"): vtk_array(a) for a in el.findall("DataArray")}
            conn, offs = arrays["connectivity"], arrays["offsets"]
            starts = np.r_[0, offs[:-1]]
            out[kind] = [tuple(int(v) for v in conn[s:e]) for s, e in zip(starts, offs)]
            assert (offs[-1] if len(offs) else 0) == len(conn)
    return out


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- helpers

def check_vertices(xyz: np.ndarray, loss: np.ndarray, ls: Landscape, stride=1, mode="linear", z_scale=1.0,
                   rtol=0.0):
    number, verts, faces = reference(ls, stride, mode, z_scale)
    assert len(xyz) == len(verts)
    np.testing.assert_allclose(xyz[:, 0], verts[:, 0].astype(np.float32), rtol=rtol)
    np.testing.assert_allclose(xyz[:, 1], verts[:, 1].astype(np.float32), rtol=rtol)
    np.testing.assert_allclose(xyz[:, 2], verts[:, 2], rtol=max(rtol, 1e-6), atol=1e-6)
    if loss is not None:
        assert np.array_equal(loss, verts[:, 3].astype(np.float32))     # exactly the cached float32
    assert np.all(np.isfinite(xyz))
    return number, faces


def check_faces_up(xyz: np.ndarray, faces) -> None:
    f = np.asarray(faces)
    p = xyz[f].astype(np.float64)
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert np.all(n[:, 2] > 0), "triangles must be counter-clockwise seen from above"


def check_paths(xyz, path_id, step, loss, lines, ls: Landscape, mode="linear", z_scale=1.0, rtol=0.0):
    """Path vertices in order (training first), polylines = the finite runs of each path."""
    k, expect_lines = 0, []
    for pid, (name, p) in enumerate(ls.paths.items()):
        for r in runs(p.surface_loss):
            expect_lines.append(tuple(range(k, k + len(r))))
            for q, idx in enumerate(r):
                sl = p.surface_loss[idx]
                z = sl * z_scale if mode == "linear" else np.log10(sl) * z_scale
                np.testing.assert_allclose(xyz[k + q], [p.xy[idx, 0], p.xy[idx, 1], z], rtol=max(rtol, 1e-6),
                                           atol=1e-6)
                if path_id is not None:
                    assert path_id[k + q] == pid
                if step is not None:
                    assert step[k + q] == p.step[idx]
                if loss is not None:
                    assert loss[k + q] == pytest.approx(p.loss[idx], rel=1e-6)
            k += len(r)
    assert len(xyz) == k
    assert [tuple(l) for l in lines] == expect_lines
    return expect_lines


# --------------------------------------------------------------------------- formats

def test_reference_counts_are_what_the_grid_implies(entry):
    # the hand count: 2 NaN vertices; the inner one removes 4 cells, the corner one 1
    _, _, ls = entry
    number, verts, faces = reference(ls)
    assert len(verts) == NX * NY - 2
    assert len(faces) == 2 * ((NX - 1) * (NY - 1) - 5)
    assert runs(ls.paths["training"].surface_loss) == [[0, 1, 2], [4, 5, 6, 7]]


def test_ply_mesh_and_paths(entry, tmp_path):
    _, _, ls = entry
    lut = colormap("viridis")
    files = export.export(ls, tmp_path / "o" / "land.ply", "ply", lut=lut, info={"scene": "film.yaml"})
    assert files == [tmp_path / "o" / "land.ply", tmp_path / "o" / "land_paths.ply"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["land.ply", "land_paths.ply"]

    el, comments = read_ply(files[0])
    assert "scene: film.yaml" in comments
    v = el["vertex"]
    assert v.dtype.names == ("x", "y", "z", "loss", "accuracy", "red", "green", "blue")
    xyz = np.stack([v["x"], v["y"], v["z"]], axis=1)
    number, faces = check_vertices(xyz, v["loss"], ls)
    assert el["face"] == faces                          # same triangles, same order
    check_faces_up(xyz, el["face"])
    # known vertices: (beta row 1, alpha column 2) and the last column of the first row
    for j, i in [(1, 2), (0, NX - 1)]:
        k = number[(j, i)]
        assert v["loss"][k] == ls.loss[j, i]
        assert v["accuracy"][k] == ls.grids["accuracy"][j, i]
        assert (v["x"][k], v["y"][k]) == (np.float32(ls.alpha[i]), np.float32(ls.beta[j]))
    assert all((j, i) not in number for j, i in NAN_AT)
    # colours: the lowest loss at the colormap's low end, the highest at its top
    rgb = np.stack([v["red"], v["green"], v["blue"]], axis=1)
    lut8 = np.rint(lut * 255).astype(np.uint8)
    assert np.array_equal(rgb[np.argmin(v["loss"])], lut8[0])
    assert np.array_equal(rgb[np.argmax(v["loss"])], lut8[255])

    pel, pcomments = read_ply(files[1])
    assert pcomments[-2:] == ["path 0: training", "path 1: sgd"]
    pv = pel["vertex"]
    lines = check_paths(np.stack([pv["x"], pv["y"], pv["z"]], 1), pv["path"], pv["step"], pv["loss"],
                        _chains(pel["edge"]), ls)
    assert [len(l) for l in lines] == [3, 4, 5]          # training cut at its NaN; the descent whole
    assert len(pel["edge"]) == 2 + 3 + 4
    assert np.allclose(pv["surface_loss"][:3], ls.paths["training"].surface_loss[:3])


def _chains(edges) -> list[tuple]:
    """Join (a, b) edges into polylines (consecutive pairs b == next a)."""
    out = []
    for a, b in zip(edges["vertex1"].tolist(), edges["vertex2"].tolist()):
        if out and out[-1][-1] == a:
            out[-1].append(b)
        else:
            out.append([a, b])
    return [tuple(c) for c in out]


def test_ply_points_stride_and_log_height(entry, tmp_path):
    _, _, ls = entry
    out = tmp_path / "pts.ply"
    export.export(ls, out, "ply", mesh=False, stride=2, height_mode="log", z_scale=3.0)
    el, comments = read_ply(out)
    v = el["vertex"]
    assert el["face"] == []                              # a point cloud: no faces
    assert "z: log10(loss) * 3" in comments
    # every 2nd row and column: 4 x 3 vertices, (2, 3) is not on it but (4, 6) is
    xyz = np.stack([v["x"], v["y"], v["z"]], axis=1)
    check_vertices(xyz, v["loss"], ls, stride=2, mode="log", z_scale=3.0)
    assert len(v) == 4 * 3 - 1
    pv = read_ply(tmp_path / "pts_paths.ply")[0]["vertex"]
    check_paths(np.stack([pv["x"], pv["y"], pv["z"]], 1), pv["path"], None, None,
                runs_as_lines(ls), ls, mode="log", z_scale=3.0)


def runs_as_lines(ls: Landscape) -> list[tuple]:
    k, out = 0, []
    for p in ls.paths.values():
        for r in runs(p.surface_loss):
            out.append(tuple(range(k, k + len(r))))
            k += len(r)
    return out


def test_obj_mesh_colours_and_polylines(entry, tmp_path):
    _, _, ls = entry
    lut = colormap("viridis")
    out = tmp_path / "land.obj"
    assert export.export(ls, out, "obj", lut=lut, z_scale=2.0) == [out]
    obj = read_obj(out)
    assert list(obj["objects"]) == ["terrain", "path_training", "path_sgd"]
    terrain = obj["objects"]["terrain"]
    xyz = obj["v"][terrain["v"], :3]
    number, faces = check_vertices(xyz, None, ls, z_scale=2.0, rtol=1e-6)   # 7 significant digits
    assert terrain["f"] == faces and terrain["l"] == []
    check_faces_up(xyz, terrain["f"])
    k = number[(1, 2)]
    assert xyz[k, 2] == pytest.approx(2 * float(ls.loss[1, 2]), rel=1e-6)
    rgb = obj["v"][terrain["v"], 3:]
    assert np.all((rgb >= 0) & (rgb <= 1))
    loss = np.array([ls.loss[j, i] for (j, i) in sorted(number, key=number.get)])
    np.testing.assert_allclose(rgb[np.argmin(loss)], np.rint(lut[0] * 255) / 255, atol=1e-4)
    np.testing.assert_allclose(rgb[np.argmax(loss)], np.rint(lut[255] * 255) / 255, atol=1e-4)
    # the paths: own objects, their own vertices (after the terrain's), polylines cut at the NaN
    pv = [obj["objects"][f"path_{n}"]["v"] for n in ls.paths]
    assert pv[0][0] == len(xyz) and pv[1][0] == pv[0][-1] + 1
    lines = obj["objects"]["path_training"]["l"] + obj["objects"]["path_sgd"]["l"]
    allv = pv[0] + pv[1]
    check_paths(obj["v"][allv, :3], None, None, None, [tuple(i - len(xyz) for i in l) for l in lines], ls,
                z_scale=2.0, rtol=1e-6)
    assert [len(l) for l in lines] == [3, 4, 5]


def test_vtp_mesh_points_and_paths(entry, tmp_path):
    _, _, ls = entry
    out = tmp_path / "land.vtp"
    export.export(ls, out, "vtp")
    d = read_vtp(out)
    number, faces = check_vertices(d["points"], d["point_data"]["loss"], ls)
    assert d["point_scalars"] == "loss"
    assert d["counts"] == {"Points": len(number), "Verts": 0, "Lines": 0, "Strips": 0, "Polys": len(faces)}
    assert d["Polys"] == faces
    check_faces_up(d["points"], d["Polys"])
    k = number[(3, 5)]
    assert d["point_data"]["loss"][k] == ls.loss[3, 5]
    assert d["point_data"]["accuracy"][k] == ls.grids["accuracy"][3, 5]

    p = read_vtp(tmp_path / "land_paths.vtp")
    lines = check_paths(p["points"], p["point_data"]["path"], p["point_data"]["step"], p["point_data"]["loss"],
                        p["Lines"], ls)
    assert p["counts"]["Lines"] == len(lines) == 3 and p["counts"]["Polys"] == 0
    assert p["cell_data"]["path"].tolist() == [0, 0, 1]
    np.testing.assert_allclose(p["point_data"]["surface_loss"][:3], ls.paths["training"].surface_loss[:3])

    export.export(ls, tmp_path / "pts.vtp", "vtp", mesh=False)
    d = read_vtp(tmp_path / "pts.vtp")
    n = NX * NY - 2
    assert d["counts"]["Verts"] == n and d["counts"]["Polys"] == 0
    assert d["Verts"] == [(i,) for i in range(n)]
    assert "Polys" not in d


def test_csv_grid_and_paths(entry, tmp_path):
    _, _, ls = entry
    out = tmp_path / "land.csv"
    assert export.export(ls, out, "csv") == [out, tmp_path / "land_paths.csv"]
    rows = read_csv(out)
    assert list(rows[0]) == ["alpha", "beta", "loss", "accuracy"]
    assert len(rows) == NX * NY                          # every grid vertex, NaN ones included
    for j in range(NY):
        for i in range(NX):
            r = rows[j * NX + i]
            assert float(r["alpha"]) == ls.alpha[i] and float(r["beta"]) == ls.beta[j]    # exact float64
            v = np.float32(float(r["loss"]))
            if (j, i) in NAN_AT:
                assert r["loss"] == "nan"
            else:
                assert v == ls.loss[j, i]                # exact float32
            assert np.float32(float(r["accuracy"])) == ls.grids["accuracy"][j, i] or (j, i) in NAN_AT
    prow = read_csv(tmp_path / "land_paths.csv")
    assert list(prow[0]) == ["path", "index", "step", "alpha", "beta", "loss", "surface_loss"]
    assert [r["path"] for r in prow] == ["training"] * 8 + ["sgd"] * 5      # every point, NaN ones too
    t = ls.paths["training"]
    for k in (0, 3, 7):
        r = prow[k]
        assert int(r["index"]) == k and int(r["step"]) == t.step[k]
        assert (float(r["alpha"]), float(r["beta"])) == (t.xy[k, 0], t.xy[k, 1])
        if k == 3:                                       # the NaN point: kept, written as nan
            assert r["loss"] == r["surface_loss"] == "nan"
        else:
            assert (float(r["loss"]), float(r["surface_loss"])) == (t.loss[k], t.surface_loss[k])
    s = prow[8 + 3]
    assert (float(s["alpha"]), float(s["beta"])) == (3.0, 0.2)          # the point beyond the grid


def test_all_nan_grid_writes_empty_geometry(entry, tmp_path):
    _, _, ls = entry
    bad = Landscape(ls.key, np.full_like(ls.loss, np.nan), ls.alpha, ls.beta, ls.paths, ls.meta)
    for fmt in ("ply", "vtp", "obj"):
        export.export(bad, tmp_path / f"n.{fmt}", fmt)
    el, _ = read_ply(tmp_path / "n.ply")
    assert len(el["vertex"]) == 0 and el["face"] == []
    d = read_vtp(tmp_path / "n.vtp")
    assert d["counts"]["Points"] == 0 and d["Polys"] == []
    assert read_obj(tmp_path / "n.obj")["objects"]["terrain"]["v"] == []


def test_a_million_points_vectorized(tmp_path):
    # the default film's grid size: exact byte counts of the binary PLY (header aside)
    n = 1000
    a = np.linspace(-1, 1, n)
    loss = (a[None, :] ** 2 + a[:, None] ** 2 + 0.1).astype(np.float32)
    loss[500, 500] = np.nan
    ls = Landscape("big", loss, a, a.copy(), {}, {})
    out = tmp_path / "big.ply"
    export.export(ls, out, "ply")
    data = out.read_bytes()
    body = len(data) - (data.index(b"end_header\n") + len(b"end_header\n"))
    nv, nf = n * n - 1, 2 * ((n - 1) ** 2 - 4)
    assert body == nv * (4 * 4 + 3) + nf * 13
    head = data[:data.index(b"end_header")].decode("ascii").splitlines()
    assert f"element vertex {nv}" in head and f"element face {nf}" in head


# --------------------------------------------------------------------------- the command line

def run_cli(*args, cwd=ROOT, alias=False):
    """`python -m export ...` (``alias``: `python -m compute export ...`) in a subprocess; also
    reports whether torch got imported."""
    stage = "compute" if alias else "export"
    code = (f"import sys; from {stage}.__main__ import main; rc = main(sys.argv[1:]); "
            "print('TORCH', 'torch' in sys.modules); sys.exit(rc)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code, *(["export"] if alias else []), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def film_z_scale(loss: np.ndarray, alpha: np.ndarray, exaggeration: float = 0.6, quantile: float = 0.995) -> float:
    """The command's default z-scale, by hand: from the lowest loss to the quantile the terrain
    rises exaggeration x the plane's width (the film: 2 * exaggeration over x in [-1, 1]), to
    three significant digits (linear heights)."""
    fin = np.asarray(loss, np.float64)[np.isfinite(loss)]
    return float(f"{exaggeration * (alpha[-1] - alpha[0]) / (np.quantile(fin, quantile) - fin.min()):.3g}")


def test_cli_writes_the_default_path_without_torch(entry, tmp_path):
    scene_path, root, ls = entry
    r = run_cli(scene_path, "--format", "ply", "--cache-dir", root, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "TORCH False" in r.stdout                     # exporting never loads the compute stage's torch
    out = tmp_path / "out" / "film.ply"
    assert out.is_file() and (tmp_path / "out" / "film_paths.ply").is_file()
    assert "wrote" in r.stderr and str(Path("out") / "film.ply") in r.stderr
    el, comments = read_ply(out)
    s = film_z_scale(ls.loss, ls.alpha)                  # the film's proportions, printed
    check_vertices(np.stack([el["vertex"][c] for c in "xyz"], 1), el["vertex"]["loss"], ls, z_scale=s)
    assert f"height scale: z = loss * {s:g}, the film's proportions (render.look.exaggeration 0.6)" in r.stderr
    assert f"cache key: {ls.key}" in comments and "colormap: viridis" in comments and f"z: loss * {s:g}" in comments
    # the format from --out's suffix, and the python -m entry point itself
    r = subprocess.run([sys.executable, "-m", "export", str(scene_path), "--cache-dir", str(root),
                        "--out", str(tmp_path / "x" / "l.csv")], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(read_csv(tmp_path / "x" / "l.csv")) == NX * NY


def test_cli_z_scale_overrides_the_films(entry, tmp_path):
    scene_path, root, ls = entry
    r = run_cli(scene_path, "--format", "ply", "--cache-dir", root, "--z-scale", "2.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "height scale: z = loss * 2.5 (--z-scale)" in r.stderr
    el, _ = read_ply(tmp_path / "out" / "film.ply")
    check_vertices(np.stack([el["vertex"][c] for c in "xyz"], 1), el["vertex"]["loss"], ls, z_scale=2.5)


def test_compute_export_is_the_same_command(entry, tmp_path):
    # the alias: the same files and the same report, and still no torch
    scene_path, root, _ = entry
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    new = run_cli(scene_path, "--format", "vtp", "--cache-dir", root, cwd=tmp_path / "a")
    old = run_cli(scene_path, "--format", "vtp", "--cache-dir", root, cwd=tmp_path / "b", alias=True)
    assert new.returncode == old.returncode == 0, old.stderr
    assert "TORCH False" in old.stdout
    for name in ("film.vtp", "film_paths.vtp"):
        assert (tmp_path / "a" / "out" / name).read_bytes() == (tmp_path / "b" / "out" / name).read_bytes()
    drop_times = lambda err: [l.split(" in ")[0] if "wrote" in l else l for l in err.splitlines()]
    assert drop_times(new.stderr) == drop_times(old.stderr)
    r = subprocess.run([sys.executable, "-m", "compute", "export", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "--z-scale" in r.stdout


def test_cli_missing_entry_and_descent(tmp_path):
    scene_path = tmp_path / "film.yaml"
    scene_path.write_text(textwrap.dedent(SCENE).lstrip())
    r = run_cli(scene_path, "--format", "obj", "--cache-dir", tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no landscape in the cache"), r.stderr
    assert f"python -m compute {scene_path}" in lines[0]
    assert not (tmp_path / "out").exists()
    # the grid is there but the scene's descent is not: the reader's own message
    scene = load_scene(scene_path)
    cache.write(tmp_path / "cache", small_entry(scene.cache_key()))
    r = run_cli(scene_path, "--format", "obj", "--cache-dir", tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 3
    assert "no descent 'sgd'" in r.stderr and f"python -m compute {scene_path}" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, expect", [
    (["--format", "stl"], "invalid choice: 'stl'"),
    ([], "--format is required"),
    (["--out", "land.glb"], "give --format"),
    (["--format", "ply", "--out", "land.obj"], "a ply file's name ends in .ply"),
    (["--format", "csv", "--points"], "--mesh/--points: shapes the 3-D formats"),
    (["--format", "ply", "--stride", "0"], "--stride: a whole number of at least 1"),
    (["--format", "ply", "--z-scale", "0"], "--z-scale: a finite, non-zero number"),
    (["--format", "ply", "--height", "sqrt"], "invalid choice: 'sqrt'"),
    (["--format", "ply", "--mesh", "--points"], "not allowed with argument"),
])
def test_cli_bad_arguments(entry, tmp_path, capsys, args, expect):
    scene_path, root, _ = entry
    args = [str(tmp_path / a) if a.startswith("land.") else a for a in args]
    try:
        rc = export_main([str(scene_path), "--cache-dir", str(root), *args])
    except SystemExit as e:                              # argparse's own errors
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert expect in err, err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("land*"))


def test_bad_format_in_the_function(entry, tmp_path):
    _, _, ls = entry
    with pytest.raises(export.ExportError, match="format 'stl'; allowed: ply, obj, vtp, csv"):
        export.export(ls, tmp_path / "a.stl", "stl")
    with pytest.raises(export.ExportError, match="stride 0"):
        export.export(ls, tmp_path / "a.ply", "ply", stride=0)
    assert list(tmp_path.glob("a*")) == []


def test_a_comparison_panel(tmp_path, capsys):
    # a scene with compare: has one cache entry per panel; --panel picks which
    p = tmp_path / "cmp.yaml"
    p.write_text("title: cmp\nlandscape: {grid: {resolution: [7, 5]}}\ncompare:\n  panels:\n"
                 "    - {caption: wide, landscape: {}}\n"
                 "    - {caption: small, landscape: {grid: {resolution: [5, 4]}}}\n")
    scene = load_scene(p)
    if not hasattr(scene, "panels"):
        pytest.skip("this checkout's scenes have no compare: section")
    small = scene.panels()[1][1]
    a, b = np.linspace(0, 1, 5), np.linspace(0, 1, 4)
    loss = (a[None, :] + b[:, None] + 0.5).astype(np.float32)
    t = Path2D("training", np.zeros((2, 2)), np.ones(2), np.ones(2), np.zeros(2), np.arange(2))
    cache.write(tmp_path / "cache", Landscape(small.cache_key(), loss, a, b, {"training": t}, {}))
    base = [str(p), "--format", "csv", "--cache-dir", str(tmp_path / "cache")]
    assert export_main(base) == 2
    assert "compares 2 landscapes: choose one with --panel 1 to 2" in capsys.readouterr().err
    out = tmp_path / "o" / "cmp_panel2.csv"
    assert export_main(base + ["--panel", "2", "--out", str(out)]) == 0
    rows = read_csv(out)
    assert len(rows) == 20 and float(rows[-1]["loss"]) == pytest.approx(2.5)
    assert export_main(base + ["--panel", "1"]) == 3                # panel 1 not computed: the reader's error
    assert "python -m compute" in capsys.readouterr().err


def test_bad_scene_is_one_line(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("landscape:\n  grid: {resolution: [7, 5]}\n  plane: {methd: pca}\n")
    assert export_main([str(p), "--format", "ply", "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {p}:3:") and "methd" in err[0]


# --------------------------------------------------------------------------- complete files only

@pytest.mark.parametrize("fmt, fail_in", [("ply", "faces"), ("ply", "paths"), ("vtp", "faces"), ("obj", "faces"),
                                          ("csv", "paths")])
def test_output_appears_only_when_complete(entry, tmp_path, monkeypatch, fmt, fail_in):
    _, _, ls = entry
    out = tmp_path / f"land.{fmt}"
    companion = tmp_path / f"land_paths.{fmt}"
    out.write_bytes(b"the previous export")              # an older export stays untouched
    seen = []

    def failing_faces(self):
        yield np.zeros((2, 3), dtype=np.int32)
        seen.append((out.read_bytes(), sorted(p.name for p in tmp_path.iterdir())))
        raise OSError(28, "No space left on device")

    def failing_paths(*a, **k):
        seen.append((out.read_bytes(), sorted(p.name for p in tmp_path.iterdir())))
        raise OSError(28, "No space left on device")

    if fail_in == "faces":
        monkeypatch.setattr(export.Surface, "face_blocks", failing_faces)
    else:
        monkeypatch.setattr({"ply": ply, "csv": csv_format}[fmt], "write_paths", failing_paths)
    with pytest.raises(OSError, match="No space"):
        export.export(ls, out, fmt)
    # while writing: the old file in place, the new one under a hidden temporary name
    old, names = seen[0]
    assert old == b"the previous export"
    assert any(n.startswith(f".land.{fmt}.tmp-") for n in names), names
    # after the failure: the old file, no temporaries, no companion
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["film.yaml", f"land.{fmt}"]
    assert not companion.exists()
    monkeypatch.undo()
    export.export(ls, out, fmt)
    assert out.read_bytes() != b"the previous export" and sorted(p.name for p in tmp_path.glob(".*")) == []


# --------------------------------------------------------------------------- optional cross-checks

def test_vtk_reads_the_vtp(entry, tmp_path):
    vtk = pytest.importorskip("vtk")
    _, _, ls = entry
    export.export(ls, tmp_path / "land.vtp", "vtp")
    reader = vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(tmp_path / "land.vtp"))
    reader.Update()
    pd = reader.GetOutput()
    number, _, faces = reference(ls)
    assert pd.GetNumberOfPoints() == len(number) and pd.GetNumberOfPolys() == len(faces)
    assert pd.GetPointData().GetScalars().GetName() == "loss"


def test_meshio_reads_the_ply(entry, tmp_path):
    meshio = pytest.importorskip("meshio")
    _, _, ls = entry
    _, verts, faces = reference(ls)
    export.export(ls, tmp_path / "land.ply", "ply")
    m = meshio.read(tmp_path / "land.ply")
    assert len(m.points) == len(verts) and len(m.cells_dict["triangle"]) == len(faces)
    np.testing.assert_array_equal(m.point_data["loss"], verts[:, 3].astype(np.float32))


# --------------------------------------------------------------------------- a landscape over training

SEQ_SCENE = """
title: export sequence test
landscape:
  grid: {resolution: [7, 5]}
  sequence: {count: 4}
render:
  look: {colormap: viridis}
"""
SEQ_K = 4
SEQ_NAN = (1, 3, 3)               # (grid, row j, column i): a diverged cell in grid 1


def seq_grids() -> np.ndarray:
    """(K, NY, NX) float32: a bowl that deepens and sinks over training, distinct in every grid."""
    alpha = np.linspace(-1.0, 2.0, NX)
    beta = np.linspace(-0.5, 1.5, NY)
    A, B = np.meshgrid(alpha, beta)
    g = np.stack([bowl(A, B) * (1.5 - 0.4 * k) + 0.3 / (1 + k) for k in range(SEQ_K)]).astype(np.float32)
    g[SEQ_NAN] = np.nan
    return g


def seq_entry_landscape(key: str) -> Landscape:
    """The still grid of small_entry (no descent) plus a sequence of SEQ_K grids.  The heads:
    grid 0 inside a cell, grid 1 exactly on the vertex (row 3, column 2) next to its NaN cell (a
    corner of weight 0 must not make the value NaN), grid 2 inside a cell, grid 3 beyond the
    grid's alpha range (no value)."""
    base = small_entry(key)
    alpha, beta = base.alpha, base.beta
    T = 7
    xy = np.stack([np.linspace(-0.8, 1.8, T), np.linspace(1.3, -0.3, T)], axis=1)
    heads = np.array([[1.7, 1.2], [alpha[2], beta[3]], [0.3, 0.1], [2.5, 0.0]])
    idx = np.array([0, 2, 4, 6])
    xy[idx] = heads
    surf = bowl(xy[:, 0], xy[:, 1])
    steps = np.arange(T, dtype=np.int64) * 10
    train = Path2D("training", xy, surf * 1.5 + 0.01, surf, np.zeros(T), steps)
    seq = cache.GridSequence(seq_grids(), steps[idx], idx.astype(np.int64), xy[idx])
    return Landscape(key, base.loss, alpha, beta, {"training": train},
                     {"note": "export test", "sequence": {"grids": SEQ_K, "steps": steps[idx].tolist()}},
                     sequence=seq)


@pytest.fixture
def seq_entry(tmp_path):
    """A sequence scene and its entry written with cache.write, read back (grids memory-mapped)."""
    scene_path = tmp_path / "film.yaml"
    scene_path.write_text(textwrap.dedent(SEQ_SCENE).lstrip())
    scene = load_scene(scene_path)
    root = tmp_path / "cache"
    cache.write(root, seq_entry_landscape(scene.cache_key()))
    ls = cache.read(root, scene.cache_key(), str(scene_path))
    assert isinstance(ls.sequence.loss, np.memmap) and ls.sequence.loss.shape == (SEQ_K, NY, NX)
    return scene_path, root, ls


def grid_k(ls: Landscape, k: int) -> Landscape:
    """The reference's view of grid k: a plain in-memory copy in place of the still grid."""
    return Landscape(ls.key, np.array(ls.sequence.loss[k]), ls.alpha, ls.beta, ls.paths, ls.meta)


def bilinear_ref(g: np.ndarray, alpha, beta, x: float, y: float) -> float:
    """The value at (x, y) from the cell around it, by the textbook formula; NaN outside."""
    if not (alpha[0] <= x <= alpha[-1] and beta[0] <= y <= beta[-1]):
        return float("nan")
    i = min(int(np.searchsorted(alpha, x, side="right")) - 1, len(alpha) - 2)
    j = min(int(np.searchsorted(beta, y, side="right")) - 1, len(beta) - 2)
    tx = (x - alpha[i]) / (alpha[i + 1] - alpha[i])
    ty = (y - beta[j]) / (beta[j + 1] - beta[j])
    corners = [((1 - tx) * (1 - ty), g[j, i]), (tx * (1 - ty), g[j, i + 1]),
               ((1 - tx) * ty, g[j + 1, i]), (tx * ty, g[j + 1, i + 1])]
    return float(sum(w * float(v) for w, v in corners if w != 0))


def shared_colours(ls: Landscape, lut: np.ndarray) -> list[np.ndarray]:
    """Each grid's finite vertices' uint8 colours on one scale over all grids, computed directly:
    log loss from the lowest of all grids to the 0.995 quantile of all grids' finite values."""
    g = np.asarray(ls.sequence.loss, dtype=np.float32)
    lv_all = np.log(g[np.isfinite(g)].astype(np.float32))
    lo, hi = float(lv_all.min()), float(np.quantile(lv_all, 0.995))
    lut8 = np.rint(lut * 255).astype(np.uint8)
    out = []
    for k in range(len(g)):
        lv = np.log(g[k][np.isfinite(g[k])].astype(np.float32))        # row-major, as the vertices
        t = np.clip((lv - lo) / (hi - lo), 0, 1)
        out.append(lut8[np.rint(t * 255).astype(int)])
    return out


def test_sequence_ply_frames_paths_and_index(seq_entry, tmp_path):
    _, _, ls = seq_entry
    lut = colormap("viridis")
    out = tmp_path / "o" / "land.ply"
    files = export.export_sequence(ls, out, "ply", lut=lut, info={"scene": "film.yaml"})
    frames = [tmp_path / "o" / f"land_grid{k:03d}.ply" for k in range(SEQ_K)]
    assert files == frames + [tmp_path / "o" / "land_paths.ply", tmp_path / "o" / "land_sequence.csv"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(f.name for f in files)   # nothing else
    colours = shared_colours(ls, lut)
    for k in range(SEQ_K):
        el, comments = read_ply(frames[k])
        v = el["vertex"]
        assert v.dtype.names == ("x", "y", "z", "loss", "red", "green", "blue")   # no accuracy in a frame
        xyz = np.stack([v["x"], v["y"], v["z"]], axis=1)
        number, faces = check_vertices(xyz, v["loss"], grid_k(ls, k))       # exactly grid k's loss
        assert el["face"] == faces
        assert f"sequence: grid {k} of {SEQ_K} (numbered from 0), training step {ls.sequence.step[k]}" in comments
        rgb = np.stack([v["red"], v["green"], v["blue"]], axis=1)
        assert np.array_equal(rgb, colours[k])
    # grid 1 lost its NaN vertex and the triangles around it; grid 0 did not
    assert len(read_ply(frames[1])[0]["vertex"]) == len(read_ply(frames[0])[0]["vertex"]) - 1
    # one scale: only the lowest loss of all grids (in the last) is at the colormap's bottom
    lut8 = np.rint(lut * 255).astype(np.uint8)
    first, last = read_ply(frames[0])[0]["vertex"], read_ply(frames[-1])[0]["vertex"]
    first_rgb = np.stack([first[c] for c in ("red", "green", "blue")], 1)
    last_rgb = np.stack([last[c] for c in ("red", "green", "blue")], 1)
    assert np.array_equal(last_rgb[np.argmin(last["loss"])], lut8[0])
    assert not np.array_equal(first_rgb[np.argmin(first["loss"])], lut8[0])
    # the paths: as the still export writes them
    pv = read_ply(tmp_path / "o" / "land_paths.ply")[0]["vertex"]
    check_paths(np.stack([pv["x"], pv["y"], pv["z"]], 1), pv["path"], pv["step"], pv["loss"], runs_as_lines(ls), ls)
    # the index: one row per grid, the head's loss read off its own grid
    rows = read_csv(tmp_path / "o" / "land_sequence.csv")
    assert list(rows[0]) == ["grid", "step", "head_alpha", "head_beta", "head_loss"]
    assert [int(r["grid"]) for r in rows] == list(range(SEQ_K))
    assert [int(r["step"]) for r in rows] == ls.sequence.step.tolist() == [0, 20, 40, 60]
    for k, r in enumerate(rows):
        x, y = ls.sequence.xy[k]
        assert (float(r["head_alpha"]), float(r["head_beta"])) == (x, y)
        ref = bilinear_ref(ls.sequence.loss[k], ls.alpha, ls.beta, x, y)
        if k == 3:
            assert r["head_loss"] == "nan" and np.isnan(ref)       # beyond the grid
        else:
            assert float(r["head_loss"]) == pytest.approx(ref, rel=1e-12)
    assert float(rows[1]["head_loss"]) == ls.sequence.loss[1, 3, 2]  # on a vertex beside a NaN cell


def test_sequence_vtp_and_pvd(seq_entry, tmp_path):
    _, _, ls = seq_entry
    out = tmp_path / "land.vtp"
    files = export.export_sequence(ls, out, "vtp")
    assert [f.name for f in files] == [f"land_grid{k:03d}.vtp" for k in range(SEQ_K)] + [
        "land_paths.vtp", "land_sequence.csv", "land.pvd"]
    for k in (0, 1, 3):
        d = read_vtp(tmp_path / f"land_grid{k:03d}.vtp")
        number, faces = check_vertices(d["points"], d["point_data"]["loss"], grid_k(ls, k))
        assert d["Polys"] == faces and list(d["point_data"]) == ["loss"]
    root = ET.parse(tmp_path / "land.pvd").getroot()
    assert root.tag == "VTKFile" and root.get("type") == "Collection"
    sets = root.findall("Collection/DataSet")
    assert len(sets) == SEQ_K
    assert [int(s.get("timestep")) for s in sets] == ls.sequence.step.tolist()
    assert [s.get("file") for s in sets] == [f"land_grid{k:03d}.vtp" for k in range(SEQ_K)]   # beside the .pvd
    assert all(s.get("part") == "0" for s in sets)
    p = read_vtp(tmp_path / "land_paths.vtp")
    check_paths(p["points"], p["point_data"]["path"], p["point_data"]["step"], p["point_data"]["loss"],
                p["Lines"], ls)


def test_sequence_obj_and_csv(seq_entry, tmp_path):
    _, _, ls = seq_entry
    files = export.export_sequence(ls, tmp_path / "land.obj", "obj", z_scale=2.0)
    assert [f.name for f in files] == [f"land_grid{k:03d}.obj" for k in range(SEQ_K)] + [
        "land_paths.obj", "land_sequence.csv"]
    for k in (1, 2):
        obj = read_obj(tmp_path / f"land_grid{k:03d}.obj")
        assert list(obj["objects"]) == ["terrain"]                  # the paths are in their own file
        t = obj["objects"]["terrain"]
        _, faces = check_vertices(obj["v"][t["v"], :3], None, grid_k(ls, k), z_scale=2.0, rtol=1e-6)
        assert t["f"] == faces
    paths = read_obj(tmp_path / "land_paths.obj")
    assert list(paths["objects"]) == ["path_training"]
    lines = paths["objects"]["path_training"]["l"]
    check_paths(paths["v"][:, :3], None, None, None, lines, ls, z_scale=2.0, rtol=1e-6)

    files = export.export_sequence(ls, tmp_path / "grid.csv", "csv")
    assert [f.name for f in files] == [f"grid_grid{k:03d}.csv" for k in range(SEQ_K)] + [
        "grid_paths.csv", "grid_sequence.csv"]
    for k in (0, 1):
        rows = read_csv(tmp_path / f"grid_grid{k:03d}.csv")
        assert list(rows[0]) == ["alpha", "beta", "loss"] and len(rows) == NX * NY
        got = np.array([np.float32(float(r["loss"])) for r in rows]).reshape(NY, NX)
        np.testing.assert_array_equal(got, ls.sequence.loss[k])          # NaN where grid k has NaN
    assert len(read_csv(tmp_path / "grid_paths.csv")) == 7


def test_sequence_colour_scale_from_a_bounded_sample(seq_entry, monkeypatch):
    # the sequence's scale (studio.scale, as the film's): the sample of every grid, its colour scale
    # and the heights it reaches
    _, _, ls = seq_entry
    g = np.asarray(ls.sequence.loss)
    full = scale.loss_sample(ls)
    colors = scale.loss_color_scale(full)
    lv = np.log(g[np.isfinite(g)])
    assert (colors.lo, colors.hi) == pytest.approx((float(lv.min()), float(np.quantile(lv, 0.995))), rel=1e-6)
    assert (full.lowest, full.highest) == pytest.approx((float(np.nanmin(g)), float(np.nanmax(g))))
    # a small budget: every 3rd row and column of each grid (ceil(sqrt(4*35/16)) = 3) for the top,
    # the bottom still the exact lowest loss
    monkeypatch.setattr(scale, "SAMPLE_LIMIT", 16)
    s = scale.loss_sample(ls)
    colors = scale.loss_color_scale(s)
    sub = g[:, ::3, ::3]
    assert colors.lo == pytest.approx(float(lv.min()), rel=1e-6)
    assert colors.hi == pytest.approx(float(np.quantile(np.log(sub[np.isfinite(sub)]), 0.995)), rel=1e-6)
    z = scale.plane_height(np.array([s.lowest, s.highest]), "log", 2.0)
    assert z == pytest.approx((2 * np.log10(np.nanmin(g)), 2 * np.log10(np.nanmax(g))), rel=1e-6)


class OneGridAtATime:
    """Stands in for the memory-mapped (K, ny, nx) stack: hands out one grid (or part of one) per
    index and refuses to become one array, so an export that loads the whole stack fails."""

    def __init__(self, a: np.ndarray):
        self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim

    def __getitem__(self, key):
        first = key[0] if isinstance(key, tuple) else key
        assert isinstance(first, (int, np.integer)), f"a slice across grids: {key!r}"
        return self.a[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole sequence was loaded")

    def __len__(self):
        return len(self.a)


@pytest.mark.parametrize("fmt", ["ply", "vtp", "obj", "csv"])
def test_sequence_reads_one_grid_at_a_time(seq_entry, tmp_path, fmt):
    _, _, ls = seq_entry
    from dataclasses import replace
    lazy = replace(ls, sequence=replace(ls.sequence, loss=OneGridAtATime(np.array(ls.sequence.loss))))
    export.export_sequence(lazy, tmp_path / f"a.{fmt}", fmt)
    export.export_sequence(ls, tmp_path / f"b.{fmt}", fmt)
    for k in range(SEQ_K):                                # the same bytes as from the mapped file
        assert (tmp_path / f"a_grid{k:03d}.{fmt}").read_bytes() == (tmp_path / f"b_grid{k:03d}.{fmt}").read_bytes()


def test_one_grid_of_the_sequence(seq_entry, tmp_path):
    _, _, ls = seq_entry
    assert export.export(ls, tmp_path / "last.vtp", "vtp", grid=-1) == [tmp_path / "last.vtp",
                                                                      tmp_path / "last_paths.vtp"]
    export.export(ls, tmp_path / "three.vtp", "vtp", grid=SEQ_K - 1)
    assert (tmp_path / "last.vtp").read_bytes() == (tmp_path / "three.vtp").read_bytes()
    d = read_vtp(tmp_path / "last.vtp")
    check_vertices(d["points"], d["point_data"]["loss"], grid_k(ls, SEQ_K - 1))
    # grid 1 on its own: its NaN vertex gone, its loss exactly
    export.export(ls, tmp_path / "one.csv", "csv", grid=-3)
    got = np.array([np.float32(float(r["loss"])) for r in read_csv(tmp_path / "one.csv")]).reshape(NY, NX)
    np.testing.assert_array_equal(got, ls.sequence.loss[1])
    # without grid=: the still grid, as before
    export.export(ls, tmp_path / "still.vtp", "vtp")
    check_vertices(read_vtp(tmp_path / "still.vtp")["points"], read_vtp(tmp_path / "still.vtp")["point_data"]["loss"],
                   ls)
    for k in (SEQ_K, -SEQ_K - 1):
        with pytest.raises(export.ExportError, match=f"grid {k}: the sequence has 4 grids, numbered 0 to 3"):
            export.export(ls, tmp_path / "bad.ply", "ply", grid=k)
    assert not list(tmp_path.glob("bad*"))


def test_sequence_cli(seq_entry, tmp_path, capsys, monkeypatch):
    scene_path, root, ls = seq_entry
    monkeypatch.chdir(tmp_path)
    base = [str(scene_path), "--cache-dir", str(root)]
    assert export_main(base + ["--format", "vtp", "--sequence", "--z-scale", "3"]) == 0
    err = capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"film_grid{k:03d}.vtp" for k in range(SEQ_K)] + ["film_paths.vtp", "film_sequence.csv", "film.pvd"])
    assert "4 grids" in err and "z over all grids" in err
    d = read_vtp(tmp_path / "out" / "film_grid002.vtp")
    check_vertices(d["points"], d["point_data"]["loss"], grid_k(ls, 2), z_scale=3.0)
    # without --z-scale: the film's proportions over all grids together
    assert export_main(base + ["--format", "ply", "--sequence"]) == 0
    s_all = film_z_scale(ls.sequence.loss, ls.alpha)
    assert f"height scale: z = loss * {s_all:g}, the film's proportions" in capsys.readouterr().err
    el, _ = read_ply(tmp_path / "out" / "film_grid002.ply")
    check_vertices(np.stack([el["vertex"][c] for c in "xyz"], 1), el["vertex"]["loss"], grid_k(ls, 2), z_scale=s_all)
    # one grid: on its own scale, like its colours
    assert export_main(base + ["--format", "ply", "--grid", "-1"]) == 0
    el, comments = read_ply(tmp_path / "out" / "film_grid3.ply")
    check_vertices(np.stack([el["vertex"][c] for c in "xyz"], 1), el["vertex"]["loss"], grid_k(ls, 3),
                   z_scale=film_z_scale(ls.sequence.loss[3], ls.alpha))
    assert "sequence: grid 3 of 4 (numbered from 0), training step 60" in comments
    # no flag: the still grid, and a hint that there is more
    assert export_main(base + ["--format", "ply"]) == 0
    assert "--sequence exports every grid" in capsys.readouterr().err
    el, _ = read_ply(tmp_path / "out" / "film.ply")
    check_vertices(np.stack([el["vertex"][c] for c in "xyz"], 1), el["vertex"]["loss"], ls,
                   z_scale=film_z_scale(ls.loss, ls.alpha))


@pytest.mark.parametrize("args, expect", [
    (["--grid", "4"], "--grid 4: film.yaml's landscape over training has 4 grids: give 0 to 3, or -4 to -1"),
    (["--grid", "-5"], "--grid -5: film.yaml's landscape over training has 4 grids"),
    (["--grid", "x"], "invalid int value: 'x'"),
    (["--sequence", "--grid", "1"], "not allowed with argument"),
])
def test_sequence_cli_errors(seq_entry, tmp_path, capsys, monkeypatch, args, expect):
    scene_path, root, _ = seq_entry
    monkeypatch.chdir(tmp_path)
    try:
        rc = export_main([str(scene_path), "--cache-dir", str(root), "--format", "ply", *args])
    except SystemExit as e:
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert expect in err.replace(str(scene_path), "film.yaml"), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", [["--sequence"], ["--grid", "0"]])
def test_sequence_flags_on_an_entry_without_one(entry, tmp_path, capsys, monkeypatch, flag):
    scene_path, root, ls = entry
    monkeypatch.chdir(tmp_path)
    assert export_main([str(scene_path), "--cache-dir", str(root), "--format", "vtp", *flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no landscape over training" in err[0], err
    assert f"leave out {flag[0]}" in err[0]
    assert not (tmp_path / "out").exists()
    with pytest.raises(export.ExportError, match="holds no landscape over training"):
        export.export_sequence(ls, tmp_path / "x.ply", "ply")
    with pytest.raises(export.ExportError, match="holds no landscape over training"):
        export.export(ls, tmp_path / "x.ply", "ply", grid=0)
    assert not list(tmp_path.glob("x*"))


def _listing(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fail_in", ["writing", "moving"])
def test_sequence_appears_only_when_complete(seq_entry, tmp_path, monkeypatch, fail_in):
    _, _, ls = seq_entry
    folder = tmp_path / "o"
    folder.mkdir()
    # an earlier export of a longer sequence (6 grids) to the same name
    for k in range(6):
        (folder / f"land_grid{k:03d}.vtp").write_bytes(b"old %d" % k)
    (folder / "land.pvd").write_bytes(b"old pvd")
    (folder / "keep.txt").write_bytes(b"not ours")
    before = _listing(folder)
    if fail_in == "writing":
        calls = []

        def failing_vtp(fh, surf, info):
            calls.append(1)
            if len(calls) == 3:                                 # the third grid's file
                raise OSError(28, "No space left on device")
            fh.write(b"partial")
        monkeypatch.setattr(vtp, "write_surface", failing_vtp)
    else:
        real, moves = os.replace, []

        def failing_replace(src, dst):
            moves.append(dst)
            if Path(dst).name == "land_sequence.csv":           # late: most files already in place
                raise OSError(5, "Input/output error")
            return real(src, dst)
        monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        export.export_sequence(ls, folder / "land.vtp", "vtp")
    monkeypatch.undo()
    if fail_in == "writing":
        assert len(calls) == 3
    else:                                                      # the frames had been moved in already
        assert {folder / f"land_grid{k:03d}.vtp" for k in range(SEQ_K)} <= set(map(Path, moves))
    assert _listing(folder) == before                          # the earlier export whole, no temporaries
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    # and when it succeeds: the new set, the earlier grids 4 and 5 gone, other files untouched
    export.export_sequence(ls, folder / "land.vtp", "vtp")
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"land_grid{k:03d}.vtp" for k in range(SEQ_K)] + ["land_paths.vtp", "land_sequence.csv",
                                                                          "land.pvd", "keep.txt"])
    assert (folder / "keep.txt").read_bytes() == b"not ours"
    assert len(ET.parse(folder / "land.pvd").getroot().findall("Collection/DataSet")) == SEQ_K
