"""render/compare.py: comparison films (the scene's compare: section) on synthetic cache entries:
shared scales, split-screen and sequence frames, a landscape over training beside a still one, the
command line.  The compare: section itself (merging, errors, cache keys) is
tests/studio/scene/test_compare.py's, computing the panels tests/compute/test_compute_main.py's."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from studio.scene import load_scene
from tests.conftest import ROOT, synthetic_landscape, synthetic_sequence, write_scene


def _ring(loss_like):
    """A landscape unlike the bowl: a high plateau with a narrow, deep well off centre."""
    ny, nx = loss_like.shape
    a, b = np.meshgrid(np.linspace(-2.0, 1.0, nx), np.linspace(-1.0, 1.5, ny))
    return (4.0 - 3.95 * np.exp(-((a + 0.6) ** 2 + (b - 0.3) ** 2) / 0.08)).astype(np.float32)


def _compare_scene(tmp_path, compare_yaml, render_yaml="", panels=2, nx=120, ny=100):
    """A compare scene whose panels differ by grid.seed (so each has its own cache entry), with
    synthetic entries: the rippled bowl, then a plateau with a well, alternately."""
    from studio import cache
    seeds = "".join(f"\n    - {{caption: 'Panel {k + 1}', landscape: {{grid: {{seed: {k + 1}}}}}}}"
                    for k in range(panels))
    p = tmp_path / "cmp.yaml"
    p.write_text(f"title: Two landscapes\nlandscape: {{grid: {{resolution: [{nx}, {ny}]}}}}\n"
                 f"render:\n  size: [320, 180]\n  fps: 10\n  duration: 2.0\n{render_yaml}"
                 f"compare:\n{compare_yaml}  panels:{seeds}\n")
    scene = load_scene(p)
    for k, (_, ps) in enumerate(scene.panels()):
        ls = synthetic_landscape(ps.cache_key(), nx, ny)
        if k % 2:
            ls = dataclasses.replace(ls, loss=_ring(ls.loss))
        cache.write(tmp_path / "cache", ls)
    return p, tmp_path / "cache"


def _compare_film(p, c, w=320, h=180):
    from render.compare import CompareFilm
    from render.film import Options
    from studio import cache
    scene = load_scene(p)
    panels = [(cap, ps, cache.read(c, ps.cache_key())) for cap, ps in scene.panels()]
    return scene, panels, CompareFilm(scene, panels, Options(w, h, 10, 2.0))


def _background(img, bg=(5, 6, 10), tol=24):
    return np.abs(img.astype(int) - np.array(bg)).max(axis=-1) <= tol


def test_shared_scale_is_one_height_map_from_all_losses(gl, tmp_path):
    from render.look import height_map
    p, c = _compare_scene(tmp_path, "  shared_scale: true\n")
    scene, panels, film = _compare_film(p, c)
    with film:
        maps = [f.terrain.heights for f in film.films]
    # the plain rule on both grids' losses together: log, lowest value to the 99.5th percentile
    both = np.log(np.concatenate([np.asarray(ls.loss, np.float64).ravel() for _, _, ls in panels]))
    assert maps[0].lo == maps[1].lo == pytest.approx(both.min(), rel=1e-12)
    assert maps[0].hi == maps[1].hi == pytest.approx(np.quantile(both, 0.995), rel=1e-12)
    own = [height_map(np.asarray(ls.loss), "log", 0.6) for _, _, ls in panels]
    assert own[0].hi != pytest.approx(own[1].hi)              # so sharing changes something
    # equal losses, equal heights: the same loss value lands at the same level in both terrains
    assert maps[0].level(np.array([0.5])) == maps[1].level(np.array([0.5]))

    (tmp_path / "own").mkdir()
    p2, c2 = _compare_scene(tmp_path / "own", "  shared_scale: false\n")
    scene, panels, film = _compare_film(p2, c2)
    with film:
        for f, (_, _, ls) in zip(film.films, panels):
            ref = height_map(np.asarray(ls.loss), "log", 0.6)
            assert (f.terrain.heights.lo, f.terrain.heights.hi) == (ref.lo, ref.hi)


def test_shared_colour_scale_for_color_by_loss():
    from render.compare import shared_scales
    from studio.scene import LookSpec
    a, b = synthetic_landscape("a" * 16), synthetic_landscape("b" * 16)
    b = dataclasses.replace(b, loss=_ring(b.loss))
    hm, cs = shared_scales([a, b], LookSpec(height="linear", color_by="loss"))
    both = np.concatenate([np.asarray(a.loss, np.float64).ravel(), np.asarray(b.loss, np.float64).ravel()])
    assert (hm.mode, hm.lo, hm.hi) == ("linear", both.min(), pytest.approx(np.quantile(both, 0.995)))
    assert (cs.mode, cs.lo) == ("log", pytest.approx(np.log(both.min())))
    assert cs.hi == pytest.approx(np.quantile(np.log(both), 0.995))
    _, none = shared_scales([a, b], LookSpec())
    assert none is None                                       # colour by height follows the heights


def test_split_cells():
    from render.compare import split_cells
    assert split_cells(2, 1920, 1080, 4) == [(0, 0, 958, 1080), (962, 0, 958, 1080)]
    four = split_cells(4, 1920, 1080, 4)
    assert four == [(0, 0, 958, 538), (962, 0, 958, 538), (0, 542, 958, 538), (962, 542, 958, 538)]
    three = split_cells(3, 1920, 1080, 4)
    assert three[:2] == four[:2] and three[2] == (481, 542, 958, 538)     # the last one centred


def test_split_frame_shows_both_landscapes_with_a_divider(gl, tmp_path):
    from render.compare import GAP_RGB
    p, c = _compare_scene(tmp_path, "  layout: split\n", render_yaml="  title_card: false\n")
    scene, panels, film = _compare_film(p, c)
    with film:
        img = film.frame(1.5)
        cells, parts = film.cells, [f.frame(1.5) for f in film.films]
        cams = [f.camera.state(1.3) for f in film.films]
        opening = film.frame(0.0)
    assert img.shape == (180, 320, 3)
    (x0, _, w0, _), (x1, _, w1, _) = cells
    left, right = img[:, x0:x0 + w0], img[:, x1:x1 + w1]
    for half in (opening[:, x0:x0 + w0], opening[:, x1:x1 + w1]):
        assert 0.1 < 1 - _background(half).mean() < 0.9            # a landscape in each, whole at first
    assert left.shape == right.shape
    assert np.abs(left.astype(int) - right.astype(int)).mean() > 8   # and they are different ones
    # the divider: every pixel between the cells is the gap colour
    gap = img[:, x0 + w0:x1]
    assert gap.shape[1] == film.gap >= 2 and (gap == np.array(GAP_RGB, np.uint8)).all()
    # each cell is its panel's film at the cell's size, with only the caption drawn over its top
    for (x, y, w, h), part in zip(cells, parts):
        assert part.shape == (h, w, 3)
        np.testing.assert_array_equal(img[60:, x:x + w], part[60:])
        assert (img[:40, x:x + w] != part[:40]).any()                # the caption
    # the cameras fly in step
    for k in ("target", "azimuth", "elevation", "distance", "fov"):
        assert np.allclose(cams[0][k], cams[1][k]), k


def test_three_panels_centre_the_last(gl, tmp_path):
    from render.compare import GAP_RGB
    p, c = _compare_scene(tmp_path, "", render_yaml="  title_card: false\n", panels=3, nx=60, ny=50)
    scene, panels, film = _compare_film(p, c, 320, 180)
    with film:
        img = film.frame(1.5)
        cells = film.cells
    x, y, w, h = cells[2]
    assert x > 0 and x + w < 320 and y > 0
    # beside the bottom panel: background, bounded by dividers
    assert _background(img[y:, :x - film.gap], tol=30).all()
    assert (img[y:, x - film.gap:x] == np.array(GAP_RGB, np.uint8)).all()
    assert 1 - _background(img[y:y + h, x:x + w]).mean() > 0.1


def test_sequence_shows_one_panel_then_the_next_with_a_crossfade(gl, tmp_path):
    p, c = _compare_scene(tmp_path, "  layout: sequence\n  transition: 0.6\n",
                          render_yaml="  title_card: false\n")
    scene, panels, film = _compare_film(p, c)
    with film:
        assert film.slot == 1.0
        # each panel's slot runs its film over the whole duration
        assert film.local_time(0, 0.0) == 0.0 and film.local_time(0, 0.5) == 1.0
        assert film.local_time(1, 1.0) == 0.0 and film.local_time(1, 2.0) == 2.0
        assert film.blend_at(0.5) == (0, 0, 0.0) and film.blend_at(1.5) == (1, 1, 0.0)
        a, b, u = film.blend_at(1.0)
        assert (a, b) == (0, 1) and u == pytest.approx(0.5)
        first, second, mid = film.frame(0.5), film.frame(1.5), film.frame(1.0)
        own0 = film.films[0].frame(film.local_time(0, 0.5))
        own1 = film.films[1].frame(film.local_time(1, 1.5))
        end0, start1 = film.films[0].frame(2.0), film.films[1].frame(0.0)
    below = slice(60, None)                     # under the slot's caption

    def mad(x, y):
        return np.abs(x[below].astype(int) - y[below].astype(int)).mean()

    assert mad(first, own0) == 0 and mad(second, own1) == 0
    assert mad(first, second) > 8 and mad(own0, own1) > 8
    blend = (end0.astype(float) + start1.astype(float)) / 2
    assert np.abs(mid[below].astype(float) - blend[below]).max() <= 1
    assert mad(mid, end0) > 3 and mad(mid, start1) > 3


def test_a_landscape_over_training_beside_a_still_one(gl, tmp_path):
    """A split comparison whose second panel morphs over training: one height scale from the still
    grid and every grid of the sequence, one camera ground from the highest moment of each."""
    from render.compare import CompareFilm, _common_ground
    from render.film import Options
    p = write_scene(tmp_path, """
        title: ''
        landscape: {grid: {resolution: [60, 50]}}
        render:
          size: [320, 180]
          fps: 10
          duration: 3
          paths: {training: {start: 0.2, end: 2.6}}
        compare:
          panels:
            - {caption: still}
            - {caption: learning, landscape: {sequence: {count: 4}}}
        """, "cmp.yaml")
    scene = load_scene(p)
    (_, still), (_, moving) = scene.panels()
    seq = synthetic_sequence(k_all=4, nx=60, ny=50)
    a = dataclasses.replace(synthetic_landscape(still.cache_key(), 60, 50), meta={"landscape": {}})
    b = dataclasses.replace(seq, key=moving.cache_key())
    panels = [(cap, ps, ls) for (cap, ps), ls in zip(scene.panels(), (a, b))]
    with CompareFilm(scene, panels, Options(320, 180, 10, 3.0)) as film:
        f0, f1 = film.films
        assert f0.morph is None and f1.morph is not None
        # one scale: the lowest loss of the still grid and of every grid of the sequence at 0
        every = np.log(np.concatenate([np.asarray(a.loss, np.float64).ravel(),
                                       np.asarray(seq.sequence.loss, np.float64).ravel()]))
        assert f1.morph.heights is f0.terrain.heights
        assert f0.terrain.heights.lo == pytest.approx(every.min(), rel=1e-12)
        assert f0.terrain.heights.hi == pytest.approx(np.quantile(every, 0.995), rel=1e-9)
        # the ground: at each cell the highest of the still terrain and every moment of the other
        hm = f0.terrain.heights
        levels = np.stack([hm.level(np.asarray(a.loss))] + [hm.level(g) for g in seq.sequence.loss])
        np.testing.assert_allclose(_common_ground([panels[0][2], panels[1][2]], [hm, hm], 1),
                                   levels.max(axis=0) * hm.top, rtol=1e-6)
        early, late = film.frame(0.3), film.frame(2.9)
        x, y, w, h = film.cells[1]
        # the learning panel changes as the network learns, the still one only by its trail
        moved = np.abs(early[:, x:].astype(int) - late[:, x:].astype(int)).mean()
        assert moved > 2, moved


def test_split_film_and_still_from_the_command_line(gl, tmp_path):
    from PIL import Image
    from render.writer import probe
    p, c = _compare_scene(tmp_path, "  layout: split\n",
                          render_yaml="  captions: [{text: 'Same camera', from: 0.2, to: 1.8}]\n")
    out = tmp_path / "out" / "cmp.mp4"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(out),
                        "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert probe(out) == {"codec": "h264", "pix_fmt": "yuv420p", "width": 320, "height": 180, "frames": 20}
    still = tmp_path / "still.png"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(still),
                        "--still", "1.0", "--size", "400x300"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    im = np.asarray(Image.open(still))
    assert im.shape == (300, 400, 3)
    # a missing panel entry: the single film's message, naming the panel
    (c / load_scene(p).panels()[1][1].cache_key() / "meta.json").unlink()
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out",
                        str(tmp_path / "x.mp4")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 3
    assert "compare.panels[1] (Panel 2)" in r.stderr and "python -m compute" in r.stderr
    assert not (tmp_path / "x.mp4").exists()


# ----------------------------------------------------------------------------- grids of up to 16

@pytest.mark.parametrize("n", range(1, 17))
def test_split_cells_tile_the_frame_in_rows_up_to_sixteen(n):
    from render.compare import GRID_SHAPES, MAX_PANELS, split_cells
    from studio.scene.film import MAX_GRID
    assert MAX_PANELS == MAX_GRID == 16                       # what the schema allows, the layout draws
    w, h, g = 1920, 1008, 4
    cells = split_cells(n, w, h, g)
    cols, rows = GRID_SHAPES[n]
    assert len(cells) == n and cols * rows >= n > (cols - 1) * rows if n > 1 else True
    covered = np.zeros((h, w), int)
    for x, y, cw, ch in cells:
        assert x >= 0 and y >= 0 and x + cw <= w and y + ch <= h and cw > 0 and ch > 0
        covered[y:y + ch, x:x + cw] += 1
    assert covered.max() == 1                                 # no two panels overlap
    by_row = {}
    for x, y, cw, ch in cells:
        by_row.setdefault(y, []).append((x, cw))
    assert len(by_row) == rows
    for y, row in by_row.items():
        xs = sorted(row)
        for (x0, w0), (x1, _) in zip(xs, xs[1:]):
            assert x1 - (x0 + w0) == g                        # the divider between neighbours
        left, right = xs[0][0], w - (xs[-1][0] + xs[-1][1])
        assert abs(left - right) <= 1 if len(row) < cols else left == right == 0     # a short row centred
    # the cells are as near the frame's shape as the count allows: none flatter than 1:3 or taller than 3:1
    assert all(1 / 3 < (cw / ch) / (w / h) < 3 for _, _, cw, ch in cells)


def test_split_cells_refuses_more_than_the_grid_holds():
    from render.compare import split_cells
    with pytest.raises(ValueError, match="1 to 16 panels, got 17"):
        split_cells(17, 1920, 1080, 4)


def test_six_panels_split_into_three_by_two(gl, tmp_path):
    from render.compare import GAP_RGB
    p, c = _compare_scene(tmp_path, "  layout: split\n", render_yaml="  title_card: false\n", panels=6)
    scene, panels, film = _compare_film(p, c)
    with film:
        img = film.frame(1.5)
        cells, parts = film.cells, [f.frame(1.5) for f in film.films]
    assert len({(x, y) for x, y, _, _ in cells}) == 6 and len({y for _, y, _, _ in cells}) == 2
    for (x, y, w, h), part in zip(cells, parts):
        # each cell is its panel's own frame (the caption and its band aside, at the top: compare the
        # bottom third, clear of them even in cells this small)
        np.testing.assert_array_equal(img[y + 2 * h // 3:y + h, x:x + w], part[2 * h // 3:])
    x, y, w, h = cells[0]
    assert (img[y:y + h, x + w:x + w + film.gap] == GAP_RGB).all()


# ----------------------------------------------------------------------------- a sweep's gallery film

SWEEP_FILM = """title: A sweep
landscape:
  grid: {resolution: [60, 50]}
  plane: {method: random}
  train: {steps: 40, snapshots: 8}
sweep: {key: train.lr, label: learning rate, values: [0.01, 0.1, 10.0], moments: [init, end]}
render:
  size: [640, 360]
  fps: 10
  duration: 4.0
  title_card: false
"""


def _sweep_film(tmp_path, notes=True):
    """A sweep of three values at two moments with synthetic entries; the last value's end diverged."""
    from render.compare import CompareFilm
    from render.film import Options
    from studio import cache
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = write_scene(tmp_path, SWEEP_FILM, "sweep.yaml")
    scene = load_scene(p)
    panels = []
    for caption, sc, value, moment in scene.sweep_panels():
        ls = synthetic_landscape(sc.cache_key(), 60, 50)
        if value == 10.0 and moment == "end":
            ls = dataclasses.replace(ls, loss=np.full_like(np.asarray(ls.loss), np.nan))
        elif value == 0.1:
            ls = dataclasses.replace(ls, loss=_ring(ls.loss))
        cache.write(tmp_path / "cache", ls)
        panels.append((scene.sweep.caption(value), sc, cache.read(tmp_path / "cache", sc.cache_key())))
    texts = [f"note {k}" for k in range(len(panels))] if notes else None
    return scene, panels, CompareFilm(scene, panels, Options(640, 360, 10, 4.0), texts)


def test_a_sweep_film_is_one_page_a_moment_under_one_camera(gl, tmp_path):
    from render.compare import DivergedPanel
    scene, panels, film = _sweep_film(tmp_path)
    with film:
        # panels go value by value (each value's moments in turn): page j holds every value's moment j
        assert film.layout.pages == [[0, 2, 4], [1, 3, 5]]
        assert film.layout.page_captions == ["At initialization", "At the end"]
        assert isinstance(film.films[5], DivergedPanel) and not isinstance(film.films[4], DivergedPanel)
        # one camera: every page at the film's own time, the same view in every panel
        assert film.local_time(1, 3.0) == 3.0 and film.local_time(0, 0.7) == 0.7
        cams = [f.camera.state(1.0) for f in film.films if not isinstance(f, DivergedPanel)]
        assert all(c == cams[0] for c in cams)
        # the grid leaves a strip at the bottom for the moments' names
        assert film.strip_h > 0 and max(y + h for _, y, _, h in film.cells) <= 360 - film.strip_h
        first, second = film.frame(0.5), film.frame(3.5)
        x, y, w, h = film.cells[5]
        # the bottom quarter of the cell, clear of its caption and band
        diverged_cell = second[y + 3 * h // 4:y + h, x:x + w].astype(int)
        landscape_cell = first[y + 3 * h // 4:y + h, x:x + w].astype(int)      # the same cell on page 0
    assert first.shape == second.shape == (360, 640, 3)
    # the diverged panel is a dark red cell (red above green and blue), not a landscape or a hole;
    # the same value at initialization, on the first page, is a landscape
    assert (diverged_cell[..., 0] > diverged_cell[..., 1] + 12).mean() > 0.8
    assert (landscape_cell[..., 0] > landscape_cell[..., 1] + 12).mean() < 0.5
    assert landscape_cell.std() > 5


def test_a_sweep_film_crossfades_pages_and_lights_the_current_moment(gl, tmp_path):
    scene, panels, film = _sweep_film(tmp_path)
    with film:
        assert film.slot == 2.0 and film.half == pytest.approx(0.75)
        a, b, u = film.blend_at(2.0)
        assert (a, b) == (0, 1) and u == pytest.approx(0.5)
        mid = film.frame(2.0).astype(np.float32)
        p0, p1 = film._page(0, 2.0).astype(np.float32), film._page(1, 2.0).astype(np.float32)
        strip = slice(360 - film.strip_h, 360)
        early, late = film.frame(0.5)[strip], film.frame(3.5)[strip]
    # the pictures halfway through the crossfade are the two pages mixed half and half (each cell's
    # bottom third: clear of the captions drawn over the mix)
    for x, y, w, h in film.cells[::2]:
        part = (slice(y + 2 * h // 3, y + h), slice(x, x + w))
        np.testing.assert_allclose(mid[part], 0.5 * p0[part] + 0.5 * p1[part], atol=1.01)
    assert np.abs(p0 - p1).mean() > 3                      # two different pages, not one
    # the strip's lit name moves from the first half (the first moment) to the second
    def lit(img, half):
        part = img[:, :320] if half == 0 else img[:, 320:]
        return int((part.max(axis=-1) > 200).sum())
    assert lit(early, 0) > lit(early, 1) and lit(late, 1) > lit(late, 0)


def test_a_sweep_film_captions_each_panel_with_its_value_and_figures(gl, tmp_path):
    _, _, plain = _sweep_film(tmp_path / "a", notes=False)
    _, _, noted = _sweep_film(tmp_path / "b")
    with plain, noted:
        a, b = plain.frame(1.0).astype(int), noted.frame(1.0).astype(int)
        x, y, w, h = noted.cells[0]
        tiles = [film.tiles.get(("panel", 0, overlay_scale(film), w), None) for film in (plain, noted)]
    # the note is a second line under the value: a taller caption at the cell's top, the rest alike
    assert tiles[1].size[1] > tiles[0].size[1] * 1.4
    top, bottom = (slice(y, y + h // 3), slice(x, x + w)), (slice(y + 2 * h // 3, y + h), slice(x, x + w))
    assert np.abs(a[top] - b[top]).max() > 60 and np.array_equal(a[bottom], b[bottom])


def overlay_scale(film) -> float:
    from render import overlay
    return overlay.text_scale(film.opts.height)
