"""studio/scene/look.py: the scene's render.look keys as the scene file gives them (colormaps by
name or as a .csv file, custom colormap files and their errors, clip heights, background
gradients, supersampling, colour by, point units, styles) and their one-line errors.  How
render/look.py draws them is tests/render/test_look.py's."""
from __future__ import annotations

import numpy as np
import pytest

from studio import assets
from studio.scene import load_scene
from tests.conftest import DARK_ROOM, ROOT, assert_scene_error, write_scene
from tests.conftest import scene_error as error

write = write_scene


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


def test_clip_scene_keys(tmp_path):
    s = load_scene(write(tmp_path, "render: {look: {height: clip, clip_quantile: 0.9}}\n"))
    assert s.render.look.height == "clip" and s.render.look.clip_quantile == 0.9
    msg = error(write(tmp_path, "render:\n  look:\n    clip_quantile: 1.5\n"))
    assert ":3: render.look.clip_quantile: bad value 1.5; allowed: a value of at most 1" in msg


def test_background_gradient_and_supersample_keys(tmp_path):
    s = load_scene(write(tmp_path, "render: {look: {background: ['#101424', '#05060a'], supersample: 3}}\n"))
    assert s.render.look.background_colors() == ("#101424", "#05060a")
    assert s.render.look.supersample == 3
    assert load_scene(write(tmp_path, "title: x\n")).render.look.background_colors() == ("#05060a",)


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
    "transparent_typo": ("render:\n  look:\n    background: transparant\n", 3,
                         ["render.look.background", "'transparant'", "'transparent'", "#rrggbb"]),
    "look_key_typo": ("render:\n  look:\n    supersampling: 2\n", 3,
                      ["'render.look.supersampling'", "did you mean 'supersample'", "clip_quantile", "color_by"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_keys_are_strict(tmp_path, case):
    assert_scene_error(tmp_path, *CASES[case])


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


def test_styles_parse():
    from studio.scene.look import parse_style
    assert parse_style("points+contours") == ("points", "contours")
    assert parse_style(["wireframe", "surface"]) == ("surface", "wireframe")
    with pytest.raises(ValueError, match="at most one base"):
        parse_style("surface+points")
    with pytest.raises(ValueError, match="did you mean 'points'"):
        parse_style("pionts")
