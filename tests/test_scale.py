"""Scale, in both senses: a 4096 x 4096 grid (16.7 million points) works, in memory bounded by the
chunk plus the result; and the loss -> height and colour scale is one (studio/scale.py) for the film
and the export, so an exported landscape has the film's colours and proportions."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

SCENE = """
landscape:
  data: {samples: 64}
  model: {widths: [4]}
  train: {steps: 20, snapshots: 5}
  grid: {resolution: [RES, RES], eval_samples: 16}
"""

# runs the compute stage in this process and reports its peak resident memory (KiB)
WRAPPER = """
import resource, runpy, sys
sys.argv = ["compute"] + sys.argv[1:]
try:
    runpy.run_module("compute", run_name="__main__")
except SystemExit as e:
    if e.code:
        raise
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _run(tmp_path, res: int) -> tuple[int, dict, np.ndarray]:
    scene = tmp_path / f"s{res}.yaml"
    scene.write_text(SCENE.replace("RES", str(res)))
    cache = tmp_path / f"cache{res}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", WRAPPER, str(scene), "--cache-dir", str(cache), "--quiet",
                        "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    rss = int(r.stdout.split("MAXRSS")[1].split()[0])
    entry = next(p for p in cache.iterdir() if not p.name.startswith(".") and p.name != "models")
    meta = json.loads((entry / "meta.json").read_text())
    return rss, meta, np.load(entry / "loss.npy", mmap_mode="r")


@pytest.mark.slow
def test_4096_grid_in_bounded_memory(tmp_path):
    small_rss, _, _ = _run(tmp_path, 64)
    rss, meta, loss = _run(tmp_path, 4096)
    assert loss.shape == (4096, 4096) and loss.dtype == np.float32
    assert np.isfinite(loss).all()
    result_mib = loss.nbytes / 2**20                     # 64 MiB
    grown_mib = (rss - small_rss) / 1024
    # the memory map of the result, a chunk, and torch.compile's own memory (only the large grid
    # compiles): about 180 MiB; then the figures, measured on every 4th row and column (1024 x 1024
    # nodes, compute/describe.py: FIGURE_GRID), about 110 MiB more.  Nothing holds the 16.7 million
    # points twice: that alone would be 64 MiB more for every copy
    print(f"peak resident memory grew by {grown_mib:.0f} MiB for a {result_mib:.0f} MiB result")
    assert grown_mib < 4 * result_mib + 128, (grown_mib, result_mib)
    assert meta["loss_stats"]["nonfinite"] == 0


# --------------------------------------------------------------------------- the loss -> height and colour scale
# One scale (studio/scale.py) for the film and the export: the same colours, the same proportions.

def _landscape(nx: int = 40, ny: int = 30):
    """The test bowl with a diverged corner and losses spanning decades (so log and linear differ)."""
    from dataclasses import replace
    from tests.conftest import synthetic_landscape
    ls = synthetic_landscape("s" * 16, nx=nx, ny=ny, nan_block=True)
    return replace(ls, loss=(np.asarray(ls.loss) ** 3 * 40).astype(np.float32))


def test_render_and_export_take_the_scale_from_one_module():
    import ast
    from export import geometry
    from render import compare, look
    from studio import scale
    assert look.HeightMap is scale.HeightMap and look.height_map is scale.height_map
    assert look.loss_sample is scale.loss_sample and compare.shared_scales is scale.shared_scales
    assert geometry.loss_color_scale is scale.loss_color_scale and geometry.lut_index is look.lut_index
    # and no second definition of the scale's rules or constants anywhere else in either stage
    rules = {"HeightMap", "height_map", "loss_sample", "shared_scales", "color_by_loss", "sequence_scale",
             "DEFAULT_QUANTILE", "LOG_FLOOR", "COLOR_QUANTILE", "SCALE_SAMPLES", "SAMPLE_LIMIT"}
    for f in sorted((ROOT / "render").rglob("*.py")) + sorted((ROOT / "export").rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Name)}
        assert not defined & rules, f"{f.relative_to(ROOT)} defines {sorted(defined & rules)}"


@pytest.mark.parametrize("height, quantile", [("log", None), ("linear", 0.8), ("clip", None)])
def test_export_colours_are_the_films_terrain_colours(tmp_path, capsys, monkeypatch, height, quantile):
    # python -m export with a scene's look, against the render stage's terrain coloured by loss with
    # the same look (no shading): the same colormap entry for every vertex
    from export.__main__ import main
    from render.look import build_terrain
    from studio import cache
    from studio.assets import colormap
    from studio.scene import load_scene
    from tests.conftest import read_ply
    ls = _landscape()
    q = "" if quantile is None else f", clip_quantile: {quantile}"
    scene_path = tmp_path / "film.yaml"
    scene_path.write_text(f"landscape: {{grid: {{resolution: [40, 30]}}}}\n"
                          f"render: {{look: {{colormap: viridis, height: {height}{q}}}}}\n")
    scene = load_scene(scene_path)
    from dataclasses import replace
    cache.write(tmp_path / "cache", replace(ls, key=scene.cache_key()))
    monkeypatch.chdir(tmp_path)
    assert main([str(scene_path), "--format", "ply", "--cache-dir", str(tmp_path / "cache")]) == 0
    v = read_ply(tmp_path / "out" / "film.ply")[0]["vertex"]
    exported = np.stack([v["red"], v["green"], v["blue"]], axis=1)
    film = build_terrain(ls, height, 0.6, "viridis", 0.0, quantile=quantile, color_by="loss")
    assert len(film.colors) == len(exported) == 40 * 30 - 25               # the same cells, in the same order
    assert np.array_equal(exported, np.rint(film.colors.astype(np.float64) * 255).astype(np.uint8))
    lut8 = np.rint(colormap("viridis").astype(np.float64) * 255).astype(np.uint8)
    assert (exported == lut8[0]).all(axis=1).any() and (exported == lut8[255]).all(axis=1).any()   # all of it


@pytest.mark.parametrize("mode", ["linear", "log"])
def test_export_default_heights_are_the_films_terrain(mode):
    # with the default z-scale the exported terrain is the film's, scaled from its width of 2 to the
    # plane's width: between the lowest loss and the top of the scale every height agrees (up to
    # the z-scale's three significant digits)
    from export.geometry import build_surface
    from render.look import build_terrain
    from studio.scale import height_map, plane_height, plane_z_scale
    ls = _landscape()
    film = build_terrain(ls, mode, 0.45, "viridis", 0.5)
    width = float(ls.alpha[-1] - ls.alpha[0])
    s = plane_z_scale(height_map(np.asarray(ls.loss), mode, 0.45), width)
    surf = build_surface(ls, height_mode=mode, z_scale=s)
    lowest = float(plane_height(np.nanmin(ls.loss), mode, s))
    below_top = film.positions[:, 2] < film.heights.top                   # the film flattens the rest
    assert below_top.mean() > 0.9
    exported = (surf.xyz[below_top, 2] - lowest) / width
    np.testing.assert_allclose(exported, film.positions[below_top, 2] / 2, rtol=5e-3, atol=1e-6)
    assert film.heights.top == pytest.approx(2 * 0.45)


def test_a_sequence_has_one_scale_for_film_and_export(tmp_path, monkeypatch):
    # a landscape over training: the film's morphing terrain and the export's numbered files take one
    # scale from a sample of every grid, and a strided sample keeps the exact lowest loss at the bottom
    from dataclasses import replace
    from export import export_sequence
    from render.look import TerrainSequence
    from studio import scale
    from studio.assets import colormap
    from studio.cache import GridSequence
    from tests.conftest import read_ply
    base = _landscape(nx=9, ny=7)
    g = np.stack([np.asarray(base.loss) * (1.5 - 0.3 * k) + 0.01 for k in range(4)]).astype(np.float32)
    g[2, 3, 5] = 1e-4                               # the lowest loss, on a cell a stride of 2 skips
    seq = GridSequence(g, np.arange(4) * 10, np.arange(4) * 15, np.zeros((4, 2)))
    ls = replace(base, sequence=seq)
    monkeypatch.setattr(scale, "SAMPLE_LIMIT", 60)  # ceil(sqrt(4 * 63 / 60)) = 3: every 3rd row and column
    sample = scale.loss_sample(ls)
    assert sample.values.size == 4 * 3 * 3 and sample.lowest == pytest.approx(1e-4)
    morph = TerrainSequence(ls, "log", 0.6, "viridis", 0.0, color_by="loss")
    assert morph.heights.lo == pytest.approx(np.log(1e-4))               # the exact lowest, at height 0
    assert morph.color_scale == scale.loss_color_scale(sample)
    files = export_sequence(ls, tmp_path / "s.ply", "ply", lut=colormap("viridis"))
    for k in range(4):
        v = read_ply(files[k])[0]["vertex"]
        exported = np.stack([v["red"], v["green"], v["blue"]], axis=1)
        drawn = morph.grid(k)
        keep = np.isfinite(np.asarray(g[k])).ravel()                    # the film draws every cell
        assert np.array_equal(exported, np.rint(drawn.colors[keep].astype(np.float64) * 255).astype(np.uint8))
