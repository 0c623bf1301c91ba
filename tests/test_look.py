"""render.look without a GL context: colormaps (shipped, generated, custom files), the height
scale, colour by, contour lines; and the scene keys of the look and the output (extra grids in the
cache, size presets, output formats) as the render stage reads them."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from studio import assets, cache
from studio.scene import SIZE_PRESETS, SceneError, load_scene
from tests.conftest import ROOT, synthetic_landscape, write_scene

sys.path.insert(0, str(ROOT / "tools"))
import make_colormaps  # noqa: E402

DARK_ROOM = ("ember", "aurora", "ice")


write = write_scene


def error(path) -> str:
    with pytest.raises(SceneError) as e:
        load_scene(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    return msg


# ----------------------------------------------------------------------------- colormaps

def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* from sRGB (the luminance proxy): relative luminance, then the cube-root curve."""
    c = np.asarray(rgb, np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


@pytest.mark.parametrize("name", DARK_ROOM)
def test_dark_room_maps_rise_in_lightness(name):
    lut = assets.colormap(name)
    assert lut.shape == (256, 3) and lut.dtype == np.float32
    L = lightness(lut)
    assert np.all(np.diff(L) > 0), f"{name}: lightness falls at row {int(np.argmin(np.diff(L)))}"
    # near black at the bottom, light but not a glaring white at the top, and a long ramp between
    assert L[0] < 6 and 80 < L[-1] < 98.5, (L[0], L[-1])
    # evenly: no stretch of the map takes a big share of the lightness range
    steps = np.diff(L)
    assert steps.max() < 4 * steps.mean()


def test_perceptual_maps_rise_in_lightness_too():
    # the luminance proxy agrees with the known sequential maps (twilight is cyclic: left out)
    for name in ("viridis", "magma", "inferno", "cividis"):
        L = lightness(assets.colormap(name))
        assert np.all(np.diff(L) > -0.05), name


def test_generated_maps_are_up_to_date():
    # the committed CSV files are what tools/make_colormaps.py makes from its stops
    for name in make_colormaps.MAPS:
        assert (ROOT / "assets" / "colormaps" / f"{name}.csv").read_text() == make_colormaps.render_csv(name)
    r = subprocess.run([sys.executable, "tools/make_colormaps.py", "--check"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_generator_refuses_stops_that_get_darker():
    with pytest.raises(ValueError, match="lightness must increase"):
        make_colormaps.build(["#000000", "#ffffff", "#808080"])


def test_new_maps_are_valid_scene_values(tmp_path):
    for name in DARK_ROOM:
        s = load_scene(write(tmp_path, f"render: {{look: {{colormap: {name}}}}}\n"))
        assert s.render.look.colormap == name


def test_custom_colormap_file_next_to_the_scene(tmp_path):
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "duo.csv").write_text("# two stops\n0, 0, 0.2\n\n1,0.5,0   # top\n")
    scene = write(tmp_path, "render:\n  look:\n    colormap: maps/duo.csv\n")
    s = load_scene(scene)
    assert s.render.look.colormap == str((tmp_path / "maps" / "duo.csv").resolve())
    lut = assets.colormap(s.render.look.colormap)
    assert lut.shape == (256, 3)
    np.testing.assert_allclose(lut[0], [0, 0, 0.2], atol=1e-6)
    np.testing.assert_allclose(lut[-1], [1, 0.5, 0], atol=1e-6)
    np.testing.assert_allclose(lut[128], [128 / 255, 64 / 255, 0.2 * 127 / 255], atol=1e-6)


def test_custom_colormap_file_relative_to_the_project(tmp_path):
    scene = write(tmp_path, "render: {look: {colormap: assets/colormaps/ember.csv}}\n")
    s = load_scene(scene)
    np.testing.assert_array_equal(assets.colormap(s.render.look.colormap), assets.colormap("ember"))


@pytest.mark.parametrize("content, line, parts", [
    ("0,0,0\n0.5,0.5\n1,1,1\n", 2, ["expected 3 comma-separated numbers", "got 2 fields"]),
    ("# header\n0,0,0\n1,x,1\n", 3, ["'x' is not a number"]),
    ("0,0,0\n1,1,255\n", 2, ["value 255 is outside [0, 1]", "divide 0-255 values by 255"]),
    ("0,0,0\n", None, ["1 colour row", "at least 2 rows"]),
    ("# nothing\n\n", None, ["0 colour rows"]),
])
def test_custom_colormap_errors_name_file_and_line(tmp_path, content, line, parts):
    cm = tmp_path / "bad.csv"
    cm.write_text(content)
    scene = write(tmp_path, "title: x\nrender:\n  look:\n    colormap: bad.csv\n")
    msg = error(scene)
    assert f"{scene}:4: render.look.colormap" in msg, msg
    assert (f"{cm}:{line}:" if line else f"{cm}:") in msg, msg
    for p in parts:
        assert p in msg, msg


def test_custom_colormap_missing_file_says_where_it_looked(tmp_path):
    scene = write(tmp_path, "render: {look: {colormap: nowhere/map.csv}}\n")
    msg = error(scene)
    assert "render.look.colormap" in msg and "not found" in msg
    assert str(tmp_path / "nowhere" / "map.csv") in msg and str(ROOT / "nowhere" / "map.csv") in msg


def test_unknown_colormap_name_lists_names_and_files(tmp_path):
    msg = error(write(tmp_path, "render: {look: {colormap: embr}}\n"))
    assert "did you mean 'ember'" in msg and "aurora" in msg and ".csv" in msg


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


def test_clip_scene_keys(tmp_path):
    s = load_scene(write(tmp_path, "render: {look: {height: clip, clip_quantile: 0.9}}\n"))
    assert s.render.look.height == "clip" and s.render.look.clip_quantile == 0.9
    msg = error(write(tmp_path, "render:\n  look:\n    clip_quantile: 1.5\n"))
    assert ":3: render.look.clip_quantile: bad value 1.5; allowed: a value of at most 1" in msg


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


def test_extra_grids_round_trip_through_the_cache(tmp_path):
    ls = synthetic_landscape("a" * 16, accuracy=True)
    cache.write(tmp_path, ls)
    assert (tmp_path / ls.key / "grid_accuracy.npy").is_file()
    back = cache.read(tmp_path, ls.key)
    assert sorted(back.grids) == ["accuracy"] and back.meta["grids"] == ["accuracy"]
    np.testing.assert_array_equal(back.grids["accuracy"], ls.grids["accuracy"])
    assert not back.grids["accuracy"].flags.writeable
    # an entry without extra grids reads with none
    plain = synthetic_landscape("b" * 16)
    cache.write(tmp_path, plain)
    assert cache.read(tmp_path, plain.key).grids == {}


def test_extra_grid_of_the_wrong_shape_is_refused(tmp_path):
    ls = synthetic_landscape("c" * 16)
    bad = cache.Landscape(ls.key, ls.loss, ls.alpha, ls.beta, ls.paths, ls.meta,
                          grids={"accuracy": np.zeros((3, 3), np.float32)})
    with pytest.raises(cache.CacheError, match="grid accuracy: expected shape"):
        cache.write(tmp_path, bad)


# ----------------------------------------------------------------------------- scene keys

def test_size_presets(tmp_path):
    for name, wh in SIZE_PRESETS.items():
        assert load_scene(write(tmp_path, f"render: {{size: {name}}}\n")).render.size == wh
    assert SIZE_PRESETS["720p"] == [1280, 720] and SIZE_PRESETS["4k"] == [3840, 2160]
    msg = error(write(tmp_path, "render:\n  size: 8k\n"))
    assert ":2: render.size: bad value \"8k\"; allowed: one of '720p', '1080p', '1440p' or '4k' or a list" in msg


def test_cli_size_accepts_presets():
    import argparse
    from render.__main__ import _size
    assert _size("4k") == (3840, 2160) and _size("720p") == (1280, 720) and _size("640x360") == (640, 360)
    assert _size("20000x10000") == (20000, 10000)          # stills may be larger than films
    with pytest.raises(argparse.ArgumentTypeError, match="1920x1080"):
        _size("big")


def test_background_gradient_and_supersample_keys(tmp_path):
    s = load_scene(write(tmp_path, "render: {look: {background: ['#101424', '#05060a'], supersample: 3}}\n"))
    assert s.render.look.background_colors() == ("#101424", "#05060a")
    assert s.render.look.supersample == 3
    assert load_scene(write(tmp_path, "title: x\n")).render.look.background_colors() == ("#05060a",)


def test_output_format_and_paths(tmp_path):
    s = load_scene(write(tmp_path, "output: {format: png}\n", "clip.yaml"))
    assert s.output_path() == ROOT.joinpath("out", "clip_frames").relative_to(ROOT)
    s = load_scene(write(tmp_path, "output: {format: png, path: renders/frames}\n"))
    assert str(s.output_path()) == "renders/frames"
    assert str(load_scene(write(tmp_path, "title: x\n", "f.yaml")).output_path()) == "out/f.mp4"


# (scene text, line, pieces of the message)
CASES = {
    "supersample_too_large": ("render:\n  look:\n    supersample: 4\n", 3,
                              ["render.look.supersample", "bad value 4", "at most 3"]),
    "supersample_not_integer": ("render:\n  look:\n    supersample: 2.0\n", 3,
                                ["render.look.supersample", "2.0", "an integer"]),
    "gradient_of_three": ("render:\n  look:\n    background: ['#000000', '#111111', '#222222']\n", 3,
                          ["render.look.background", "two colours [top, bottom], got 3"]),
    "gradient_bad_colour": ("render:\n  look:\n    background: ['#000000', navy]\n", 3,
                            ["render.look.background", "'navy'", "#rrggbb"]),
    "color_by_typo": ("render:\n  look:\n    color_by: accuarcy\n", 3,
                      ["render.look.color_by", '"accuarcy"', "'height'", "'loss'", "'accuracy'"]),
    "height_mode": ("render:\n  look:\n    height: sqrt\n", 3,
                    ["render.look.height", '"sqrt"', "'linear'", "'log'", "'clip'"]),
    "point_units": ("render:\n  look:\n    point_units: inches\n", 3,
                    ["render.look.point_units", "'pixels'", "'world'"]),
    "world_point_too_big": ("render:\n  look:\n    point_units: world\n    point_size: 2\n", 4,
                            ["render.look.point_size", "bad value 2", "landscape units", "at most 0.5"]),
    "world_without_depth_scale": ("render:\n  look:\n    point_units: world\n    depth_scale: false\n", 4,
                                  ["render.look.depth_scale", "point_units: pixels"]),
    "png_path_is_a_file": ("output:\n  format: png\n  path: out/film.mp4\n", 3,
                           ["output.path", '"out/film.mp4"', "directory"]),
    "mp4_path_is_a_directory": ("output:\n  path: out/frames\n", 2,
                                ["output.path", '"out/frames"', "must end in .mp4", "or png, a directory"]),
    "format_path_mismatch": ("output: {format: webm, path: out/film.mp4}\n", 1,
                             ["output.path", '"out/film.mp4"', "must end in .webm"]),
    "loop_too_long": ("render:\n  duration: 6\n  loop: 4\n", 3, ["render.loop", "at most 3 s, got 4"]),
    "format_typo": ("output:\n  format: avi\n", 2, ["output.format", '"avi"', "'mp4'", "'mov'", "'webm'", "'gif'",
                                                     "'png'"]),
    "transparent_typo": ("render:\n  look:\n    background: transparant\n", 3,
                         ["render.look.background", "'transparant'", "'transparent'", "#rrggbb"]),
    "lower_third_typo": ("render:\n  captions:\n    - {text: a, from: 0, to: 1, position: lower-third}\n", 3,
                         ["render.captions[0].position", "'lower_third'"]),
    "empty_subtitle": ("render:\n  captions:\n    - {text: a, subtitle: '', from: 0, to: 1}\n", 3,
                       ["render.captions[0].subtitle", "at least 1"]),
    "look_key_typo": ("render:\n  look:\n    supersampling: 2\n", 3,
                      ["'render.look.supersampling'", "did you mean 'supersample'", "clip_quantile", "color_by"]),
    "caption_key_typo": ("render:\n  captions:\n    - {text: a, from: 0, to: 1, subtitel: b}\n", 3,
                         ["'render.captions[0].subtitel'", "did you mean 'subtitle'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_keys_are_strict(tmp_path, case):
    text, line, parts = CASES[case]
    scene = write(tmp_path, text)
    msg = error(scene)
    assert f"{scene}:{line}:" in msg, msg
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


def test_good_look_loads(tmp_path):
    s = load_scene(write(tmp_path, """
        render:
          size: 720p
          look: {height: clip, clip_quantile: 0.9, colormap: aurora, color_by: loss, point_units: world,
                 point_size: 0.01, background: ["#101424", "#05060a"], supersample: 2}
          captions:
            - {text: "Adam", subtitle: "lr 0.01", position: lower_third, from: 1, to: 3}
        output: {format: png, path: out/frames}
        """))
    look = s.render.look
    assert (look.height, look.point_units, look.point_size, look.supersample) == ("clip", "world", 0.01, 2)
    assert s.render.captions[0].subtitle == "lr 0.01" and s.render.size == [1280, 720]


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


def test_the_default_output_path_follows_the_format(tmp_path):
    for fmt, name in (("mp4", "scene.mp4"), ("gif", "scene.gif"), ("mov", "scene.mov"), ("png", "scene_frames")):
        assert load_scene(write(tmp_path, f"output: {{format: {fmt}}}\n")).output_path().name == name
