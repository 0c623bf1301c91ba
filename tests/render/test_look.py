"""render/look.py without a GL context: the height scale (clip quantiles), colour by (loss,
accuracy), contour lines, and trails clipped to the grid.  The scene's look keys are
tests/studio/scene/test_look.py's, the colormaps tests/studio/test_assets.py's."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.cache import Path2D
from studio.scene import load_scene
from tests.conftest import DESCENT_TRAILS_SCENE as RENDER_SCENE
from tests.conftest import synthetic_landscape, synthetic_with_descents, write_scene


# ----------------------------------------------------------------------------- heights and colours

def test_clip_quantile_sets_the_top_of_the_scale():
    from render.look import height_map
    from studio.scale import DEFAULT_QUANTILE
    ls = synthetic_landscape("k")
    loss = np.asarray(ls.loss)
    full = height_map(loss, "linear", 0.6)
    low = height_map(loss, "linear", 0.6, quantile=0.8)
    assert full.quantile == DEFAULT_QUANTILE["linear"] == 0.995
    assert low.hi == pytest.approx(np.quantile(loss, 0.8)) and low.hi < full.hi
    assert low.lo == full.lo == pytest.approx(loss.min())
    # 20% of the cells are flattened onto the top; with the default only 0.5%
    assert np.mean(low.level(loss) >= 1.0) == pytest.approx(0.2, abs=0.01)
    assert np.mean(full.level(loss) >= 1.0) == pytest.approx(0.005, abs=0.002)
    # clip is linear with a lower default top (the 95th percentile); the quantile applies to log too
    clip = height_map(loss, "clip", 0.6)
    assert clip.hi == pytest.approx(np.quantile(loss, 0.95))
    np.testing.assert_allclose(height_map(loss, "clip", 0.6, 0.8).level(loss), low.level(loss))
    lg = height_map(loss, "log", 0.6, quantile=0.8)
    assert lg.hi == pytest.approx(np.log(np.quantile(loss, 0.8)))


def test_clip_quantile_changes_the_drawn_terrain():
    from render.look import build_terrain
    ls = synthetic_landscape("k")
    a = build_terrain(ls, "linear", 0.6, "magma", 0.5)
    b = build_terrain(ls, "linear", 0.6, "magma", 0.5, quantile=0.7)
    top = 2 * 0.6
    assert a.positions[:, 2].max() == pytest.approx(top) and b.positions[:, 2].max() == pytest.approx(top)
    # the same cells stand higher on the lower scale, and 30% of them form the plateau
    assert b.positions[:, 2].mean() > a.positions[:, 2].mean() * 1.3
    assert np.mean(b.positions[:, 2] >= top - 1e-6) == pytest.approx(0.3, abs=0.01)


def test_color_by_loss_follows_the_log_loss_whatever_the_height():
    from render.look import build_terrain
    ls = synthetic_landscape("k")
    by_height = build_terrain(ls, "linear", 0.6, "viridis", 0.0)
    by_loss = build_terrain(ls, "linear", 0.6, "viridis", 0.0, color_by="loss")
    log_height = build_terrain(ls, "log", 0.6, "viridis", 0.0)
    # same heights, other colours; colour by loss is the colour of the log height
    np.testing.assert_array_equal(by_height.positions, by_loss.positions)
    assert np.abs(by_height.colors - by_loss.colors).mean() > 0.05
    np.testing.assert_allclose(by_loss.colors, log_height.colors, atol=1e-6)


def test_color_by_accuracy_needs_an_accuracy_grid():
    from render.look import LookError, build_terrain
    ls = synthetic_landscape("k0123456789abcde")
    with pytest.raises(LookError) as e:
        build_terrain(ls, "log", 0.6, "magma", 0.5, color_by="accuracy")
    msg = str(e.value)
    assert "render.look.color_by" in msg and "accuracy grid" in msg and "k0123456789abcde" in msg
    assert "it has none" in msg and "extra grids: none" in msg and "height or loss" in msg
    # with the grid, the colour follows it: high accuracy at the bottom of the bowl
    ls = synthetic_landscape("k", accuracy=True)
    t = build_terrain(ls, "log", 0.6, "magma", 0.0, color_by="accuracy")
    low = t.positions[:, 2] < np.quantile(t.positions[:, 2], 0.05)
    high = t.positions[:, 2] > np.quantile(t.positions[:, 2], 0.95)
    assert t.colors[low].mean() > t.colors[high].mean() + 0.2


# --------------------------------------------------------------------------- contour lines

def test_contour_lines_sit_on_their_levels_at_one_width_on_any_slope():
    from render.look import CONTOUR_HALF_WIDTH, contour_lines
    x = np.linspace(0.0, 1.0, 401)
    for ramp in (x, x ** 2):                          # a steady slope, and one that steepens 800-fold
        on = contour_lines(np.tile(ramp, (5, 1)), 4)[2]
        for level in (0.25, 0.5, 0.75):
            centre = int(np.argmin(np.abs(ramp - level)))
            assert on[centre] > 0.6, (level, on[centre])
            # the line's width in cells is the same wherever it is (not a band of values)
            width = int((on[max(centre - 20, 0):centre + 20] > 0).sum())
            assert 2 <= width <= 2 * CONTOUR_HALF_WIDTH + 1, (level, width)
        # nothing between the lines, none at the ends (0 and 1 are not lines)
        assert on[(np.abs(ramp[:, None] - [0.25, 0.5, 0.75]).min(axis=1) > 0.02) & (ramp > 0.03)].max() == 0
        assert (on > 0).sum() <= 3 * (2 * CONTOUR_HALF_WIDTH + 1)
    assert not contour_lines(np.tile(x, (5, 1)), 0).any()
    nan = np.tile(x, (5, 1))
    nan[:, 180:220] = np.nan
    assert np.isfinite(contour_lines(nan, 4)).all()


def test_contours_darken_the_terrain_only_on_their_lines():
    from render.look import CONTOUR_STRENGTH, build_terrain, contour_lines
    ls = synthetic_landscape("c" * 16, 160, 120)
    plain = build_terrain(ls, "log", 0.6, "magma", 0.5)
    lined = build_terrain(ls, "log", 0.6, "magma", 0.5, contours=8)
    np.testing.assert_array_equal(plain.positions, lined.positions)
    on = contour_lines(plain.level, 8).ravel()[np.isfinite(plain.level).ravel()]
    want = plain.colors * (1 - CONTOUR_STRENGTH * on)[:, None]
    lit = plain.colors < 0.999                          # colours the slope light did not clip at white
    np.testing.assert_allclose(lined.colors[lit], want[lit], rtol=1e-5, atol=1e-6)
    assert (lined.colors <= plain.colors + 1e-6).all()
    assert 0.02 < (on > 0).mean() < 0.3                # lines, not a wash


# --------------------------------------------------------------------------- trails

def test_trail_is_clipped_to_the_grid():
    from render.look import build_terrain, build_trail
    scene_path = Path(__import__("tempfile").mkdtemp()) / "s.yaml"
    try:
        scene = load_scene(write_scene(scene_path.parent, RENDER_SCENE, scene_path.name))
    finally:
        shutil.rmtree(scene_path.parent)
    ls = synthetic_with_descents(scene)
    terrain = build_terrain(ls, "log", 0.6, "magma", 0.5)
    paths = {d.path.name: d.path for d in ls.descents.values()}

    red = build_trail(paths["red"], ls, terrain)
    assert len(red.points) > 1000 and red.over_grid(0) and red.over_grid(40)

    green = build_trail(paths["green"], ls, terrain)
    pts = green.points
    assert np.all(np.abs(pts[:, 0]) <= 1 + 1e-6) and np.all(np.abs(pts[:, 1]) <= terrain.half_y + 1e-6)
    assert np.all(np.isfinite(pts)) and np.all(np.diff(green.progress) >= 0)
    # the trail stops at the grid's edge: beta = 1.5 is reached at t = 23/30, snapshot index 30.67
    exit_p = 40 * 2.3 / 3.0
    assert pts[:, 1].max() == pytest.approx(terrain.half_y, abs=1e-5)
    assert green.progress.max() == pytest.approx(exit_p, abs=1e-6)
    assert len(pts) > 1000                        # samples spread over the part that is drawn
    pos, k, step, *_ = green.head(38.0)           # beyond the edge: the head waits there
    assert k == len(pts) and pos[1] == pytest.approx(terrain.half_y, abs=1e-5)
    assert step == pytest.approx(38.0)
    assert green.over_grid(10.0) and not green.over_grid(38.0)

    blue = build_trail(paths["blue"], ls, terrain)
    assert blue.points.shape == (0, 3)
    pos, k, *_ = blue.head(20.0)
    assert pos is None and k == 0 and not blue.over_grid(20.0)

    # a path that leaves and comes back is drawn in two pieces, none of it outside
    xy = np.array([[-1.5, 0.0], [2.5, 0.0], [2.5, 1.0], [0.0, 1.0], [0.0, 0.5]])
    back = build_trail(Path2D("b", xy, np.ones(5), np.ones(5), np.zeros(5), np.arange(5)), ls, terrain)
    assert np.all(np.abs(back.points[:, 0]) <= 1 + 1e-6)
    assert not back.over_grid(1.5) and back.over_grid(3.5)
    inside_pieces = np.diff(back.progress) > 1.0                 # one jump: over the part outside
    assert inside_pieces.sum() == 1
