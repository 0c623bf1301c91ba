"""studio/scene/film.py: the scene's render: keys beside the look (size presets, loops, captions)
and its output: section (formats, paths and the default path, through Scene.output_path in
studio/scene/spec.py), with their one-line errors."""
from __future__ import annotations

import pytest

from studio.scene import SIZE_PRESETS, load_scene
from tests.conftest import ROOT, assert_scene_error, write_scene
from tests.conftest import scene_error as error

write = write_scene


def test_size_presets(tmp_path):
    for name, wh in SIZE_PRESETS.items():
        assert load_scene(write(tmp_path, f"render: {{size: {name}}}\n")).render.size == wh
    assert SIZE_PRESETS["720p"] == [1280, 720] and SIZE_PRESETS["4k"] == [3840, 2160]
    msg = error(write(tmp_path, "render:\n  size: 8k\n"))
    assert ":2: render.size: bad value \"8k\"; allowed: one of '720p', '1080p', '1440p' or '4k' or a list" in msg


def test_output_format_and_paths(tmp_path):
    s = load_scene(write(tmp_path, "output: {format: png}\n", "clip.yaml"))
    assert s.output_path() == ROOT.joinpath("out", "clip_frames").relative_to(ROOT)
    s = load_scene(write(tmp_path, "output: {format: png, path: renders/frames}\n"))
    assert str(s.output_path()) == "renders/frames"
    assert str(load_scene(write(tmp_path, "title: x\n", "f.yaml")).output_path()) == "out/f.mp4"


def test_the_default_output_path_follows_the_format(tmp_path):
    for fmt, name in (("mp4", "scene.mp4"), ("gif", "scene.gif"), ("mov", "scene.mov"), ("png", "scene_frames")):
        assert load_scene(write(tmp_path, f"output: {{format: {fmt}}}\n")).output_path().name == name


# (scene text, line, pieces of the message)
CASES = {
    "png_path_is_a_file": ("output:\n  format: png\n  path: out/film.mp4\n", 3,
                           ["output.path", '"out/film.mp4"', "directory"]),
    "mp4_path_is_a_directory": ("output:\n  path: out/frames\n", 2,
                                ["output.path", '"out/frames"', "must end in .mp4", "or png, a directory"]),
    "format_path_mismatch": ("output: {format: webm, path: out/film.mp4}\n", 1,
                             ["output.path", '"out/film.mp4"', "must end in .webm"]),
    "loop_too_long": ("render:\n  duration: 6\n  loop: 4\n", 3, ["render.loop", "at most 3 s, got 4"]),
    "format_typo": ("output:\n  format: avi\n", 2, ["output.format", '"avi"', "'mp4'", "'mov'", "'webm'", "'gif'",
                                                     "'png'"]),
    "lower_third_typo": ("render:\n  captions:\n    - {text: a, from: 0, to: 1, position: lower-third}\n", 3,
                         ["render.captions[0].position", "'lower_third'"]),
    "empty_subtitle": ("render:\n  captions:\n    - {text: a, subtitle: '', from: 0, to: 1}\n", 3,
                       ["render.captions[0].subtitle", "at least 1"]),
    "caption_key_typo": ("render:\n  captions:\n    - {text: a, from: 0, to: 1, subtitel: b}\n", 3,
                         ["'render.captions[0].subtitel'", "did you mean 'subtitle'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_keys_are_strict(tmp_path, case):
    assert_scene_error(tmp_path, *CASES[case])
