"""The art form's look (render.look: style, light, occlusion, edge, bloom, depth_of_field, min_grid):
points that read as points, the dissolving border, the post passes against tiling, coarse grids."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FILM_BARE as RENDER
from tests.conftest import background_fraction as _background_fraction
from tests.conftest import frame_diff as _diff
from tests.conftest import render_film as _film
from tests.conftest import render_frame as _frame
from tests.conftest import synthetic_landscape

CLOSE = ("  camera: [{t: 0, target: [0.3, 0.0, 0.05], distance: 0.3, elevation: 40, azimuth: 20, fov: 40}]\n")


def test_points_show_gaps_in_a_close_shot_and_the_surface_does_not(gl, scene_with_cache):
    gaps = {}
    for style in ("surface", "points"):
        p, c = scene_with_cache(RENDER + "  title_card: false\n"
                                f"  look: {{style: {style}, colormap: viridis, fog: 0, edge: 0}}\n" + CLOSE)
        crop = _frame(p, c, 0.5)[20:140, 60:260]          # the middle of the close-up: terrain only
        gaps[style] = _background_fraction(crop, (5, 6, 10), tol=20)
    assert gaps["surface"] < 0.01, gaps
    assert gaps["points"] > 0.1, gaps


def test_points_are_jittered_and_stable():
    from render.look import Finish, build_terrain
    ls = synthetic_landscape("k")
    a = build_terrain(ls, "log", 0.6, "magma", 0.5, finish=Finish(styles=("points",)))
    b = build_terrain(ls, "log", 0.6, "magma", 0.5, finish=Finish(styles=("points",)))
    plain = build_terrain(ls, "log", 0.6, "magma", 0.5)
    assert np.array_equal(a.positions, b.positions)         # seeded: the same in every frame
    # off the grid's rows: no two points share a y (rows would line up with pixel rows)
    assert len(np.unique(plain.positions[:, 1])) == 100
    assert len(np.unique(a.positions[:, 1])) > 0.9 * len(a.positions)


def _project(film, t, pts):
    from render import camera as cam
    s = film.camera.state(t)
    near, far = cam.clip_planes(s, film.terrain.radius)
    mvp = cam.perspective(s["fov"], film.opts.width / film.opts.height, near, far) @ cam.view_matrix(s)
    h = np.c_[pts, np.ones(len(pts))] @ mvp.T
    x = (h[:, 0] / h[:, 3] * 0.5 + 0.5) * film.opts.width
    y = (1 - (h[:, 1] / h[:, 3] * 0.5 + 0.5)) * film.opts.height
    return np.clip(x.astype(int), 0, film.opts.width - 1), np.clip(y.astype(int), 0, film.opts.height - 1)


def test_the_border_dissolves(gl, scene_with_cache):
    # from above, over a transparent background: the frame's alpha is the terrain's coverage
    top = ("  title_card: false\n  look: {background: transparent, fog: 0, edge: 0.08}\n"
           "  camera: [{t: 0, target: [0, 0, 0.3], distance: 4.2, elevation: 85, azimuth: -90, fov: 35}]\n")
    p, c = scene_with_cache(RENDER + top)
    with _film(p, c) as film:
        img = film.frame(0.5)
        level = film.terrain.level
        ny, nx = level.shape
        xs, ys = np.linspace(-1, 1, nx), np.linspace(-film.terrain.half_y, film.terrain.half_y, ny)
        z = np.nan_to_num(level) * film.terrain.heights.top

        def band(lo, hi):          # grid cells whose distance to the border is in [lo, hi) of the width
            d = np.minimum(np.minimum(np.arange(ny), ny - 1 - np.arange(ny))[:, None],
                           np.minimum(np.arange(nx), nx - 1 - np.arange(nx))[None, :]) / (nx - 1)
            iy, ix = np.nonzero((d >= lo) & (d < hi))
            px, py = _project(film, 0.5, np.c_[xs[ix], ys[iy], z[iy, ix]])
            return img[py, px, 3].astype(float).mean()
        border, inside = band(0.0, 0.015), band(0.12, 0.2)
    assert inside > 200, inside
    assert border < 0.6 * inside, (border, inside)


POST = ("  title_card: false\n"
        "  look: {style: points, bloom: 1.0, depth_of_field: 0.7, background: ['#182038', '#05060a']}\n"
        "  paths: {training: {color: '#ffcc00', width: 14, end: 0.8}}\n"
        "  camera: [{t: 0, target: [0, 0, 0.2], distance: 2.6, elevation: 30, azimuth: -40, fov: 35}]\n")


def test_bloom_and_depth_of_field_do_something(gl, scene_with_cache):
    def frame(look):
        p, c = scene_with_cache(RENDER + POST.replace("bloom: 1.0, depth_of_field: 0.7", look))
        return _frame(p, c, 1.0)
    plain, bloom, dof = frame("bloom: 0, depth_of_field: 0"), frame("bloom: 1.0"), frame("bloom: 0, depth_of_field: 0.7")
    assert (bloom >= plain).all()                             # bloom only adds light...
    grown = (bloom.astype(int) - plain).sum(axis=-1)
    assert (grown > 6).sum() > 300, (grown > 6).sum()         # ...spilling around the bright trail
    assert _diff(dof, plain)[0] > 1.0


@pytest.mark.parametrize("look", ["bloom: 1.0, depth_of_field: 0.7", "bloom: 1.5, depth_of_field: 0"])
def test_post_passes_do_not_show_the_tiles(gl, scene_with_cache, look):
    yaml = RENDER + POST.replace("bloom: 1.0, depth_of_field: 0.7", look)
    p, c = scene_with_cache(yaml)
    one = _frame(p, c, 1.0, 640, 360)
    tiled = _frame(p, c, 1.0, 640, 360, max_tile=160)
    mad, p99, _ = _diff(one, tiled)
    assert mad < 0.5 and p99 < 8, (mad, p99)


def test_a_coarse_grid_is_drawn_smooth():
    from render.look import Finish, build_terrain
    ls = synthetic_landscape("k", nx=40, ny=40)
    t = build_terrain(ls, "log", 0.6, "magma", 0.5, finish=Finish(min_grid=256))
    raw = build_terrain(ls, "log", 0.6, "magma", 0.5)
    assert t.level.shape == (274, 274) and raw.level.shape == (40, 40)      # 7 points a cell
    # the grid's own values at its points, and in between values between theirs (no flat squares)
    assert np.allclose(t.level[::7, ::7], raw.level, equal_nan=True)
    row = t.level[60, :]
    assert len(np.unique(np.round(row[np.isfinite(row)], 6))) > 150        # the grid's row: 40


def _border_distance(ny: int, nx: int) -> np.ndarray:
    return np.minimum(np.minimum(np.arange(ny), ny - 1 - np.arange(ny))[:, None],
                      np.minimum(np.arange(nx), nx - 1 - np.arange(nx))[None, :]) / (max(nx, ny) - 1)


def test_the_border_frays_in_patches_not_single_points():
    from render.terrain_style import frayed_edge
    n, width = 300, 0.08
    keep, fade = frayed_edge(np.ones((n, n), bool), width, seed=3)
    kept = keep.reshape(n, n)
    d = _border_distance(n, n)
    assert kept[d >= 1.3 * width].all()                      # inside the band: every point
    assert kept[d == 0].mean() < 0.1                          # at the very border: few
    band = (d > 0) & (d < width)
    assert 0.2 < kept[band].mean() < 0.8                      # in between: thinning out
    # a kept point in the band has kept neighbours: patches, not salt
    pad = np.pad(kept, 1)
    neighbours = sum(np.roll(np.roll(pad, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))[1:-1, 1:-1] - kept
    alone = kept & band & (neighbours == 0)
    assert alone.sum() < 0.01 * (kept & band).sum(), alone.sum()
    # the fade of the points left: 0 inside, rising towards the border
    f = np.zeros((n, n))
    f[kept] = fade
    assert (f[d >= 1.3 * width] == 0).all() and f[band & kept].mean() > 0.05
    again, _ = frayed_edge(np.ones((n, n), bool), width, seed=3)
    other, _ = frayed_edge(np.ones((n, n), bool), width, seed=4)
    assert np.array_equal(keep, again) and not np.array_equal(keep, other)   # seeded


def test_the_border_frays_only_among_the_points_drawn():
    from render.terrain_style import frayed_edge
    ok = np.ones((100, 100), bool)
    ok[:, :50] = False                                        # half the grid has no terrain
    keep, fade = frayed_edge(ok, 0.1, seed=1)
    assert keep.shape == (50 * 100,) and len(fade) == keep.sum()       # one per point drawn
    whole, none = frayed_edge(ok, 0.0, seed=1)                           # edge: 0, a hard border
    assert whole.shape == (5000,) and whole.all() and not none.any()


def test_the_finish_scales_with_the_frame_height():
    from render.look import Finish
    assert Finish(min_grid=256).at_height(2160).min_grid == 512         # 4K: twice the points a side
    assert Finish(min_grid=256).at_height(1080).min_grid == 256
    assert Finish(min_grid=256).at_height(360).min_grid == 256          # never coarser than 1080's
    assert Finish(min_grid=0).at_height(2160).min_grid == 0             # off stays off
