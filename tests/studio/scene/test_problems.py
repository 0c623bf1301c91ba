"""Problems with the scene's own values that used to pass without a word or with a misleading
message: each is now one line naming the file (and line, or --set KEY), the key, the value as
written and what to do.  Validation only: no torch, fast."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio.scene import SceneError, load_scene, locate_error
from tests.conftest import ROOT, cli_error, cli_errors, write_scene

write = write_scene


def problems(path: Path, overrides=()) -> list[str]:
    """The lines of the scene's error (each one problem)."""
    with pytest.raises(SceneError) as e:
        load_scene(path, overrides)
    lines = str(e.value).splitlines()
    assert all(line.startswith(str(path)) for line in lines), lines
    return lines


def problem(path: Path, overrides=()) -> str:
    lines = problems(path, overrides)
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------- the file itself

@pytest.mark.parametrize("text", ["", "\n\n", "# a comment\n# and another\n", "---\n"])
def test_an_empty_scene_file_is_refused(tmp_path, text):
    scene = tmp_path / "empty.yaml"
    scene.write_text(text)
    msg = problem(scene)
    assert msg.startswith(f"{scene}: the scene file is empty"), msg
    assert "start from a copy of scenes/default.yaml" in msg
    assert cli_error(tmp_path, scene) == msg          # and the command line writes nothing


def test_source_is_not_a_key_of_the_file(tmp_path):
    scene = write(tmp_path, "title: t\nsource: elsewhere.yaml\n")
    assert problem(scene) == (f"{scene}:2: unknown key 'source'; allowed keys under (top level): title, landscape, "
                              f"render, output, compare")


# --------------------------------------------------------------------------- several problems at once

def test_every_problem_is_listed_with_its_line(tmp_path):
    scene = write(tmp_path, """
        landscape:
          grid: {resolutoin: [10, 10]}
          train: {stpes: 10}
        render:
          fsp: 12
        """)
    lines = problems(scene)
    assert [line.split(": ", 1)[0] for line in lines] == [f"{scene}:2", f"{scene}:3", f"{scene}:5"]
    assert "did you mean 'resolution'" in lines[0] and "did you mean 'steps'" in lines[1]
    assert "did you mean 'fps'" in lines[2]
    assert cli_errors(tmp_path, scene) == lines


def test_at_most_five_problems_then_a_count(tmp_path):
    scene = write(tmp_path, "render:\n" + "".join(f"  k{i}: 1\n" for i in range(8)))
    lines = problems(scene)
    assert len(lines) == 6 and all(f"{scene}:{i + 2}: unknown key 'render.k{i}'" in lines[i] for i in range(5))
    assert lines[5] == f"{scene}: 3 more problems not shown; fix these and run again"


def test_problems_across_sections_are_listed_too(tmp_path):
    scene = write(tmp_path, """
        render:
          duration: 10
          paths: {sgd: {}}
          camera:
            - {t: 0, azimuth: 10}
            - {t: 12, azimuth: 30}
          captions:
            - {text: late, from: 11, to: 12}
        """)
    lines = problems(scene)
    assert len(lines) == 3
    assert lines[0].startswith(f"{scene}:3: render.paths: unknown path 'sgd'")
    assert lines[1].startswith(f"{scene}:6: render.camera[1].t: bad value 12")
    assert lines[2].startswith(f"{scene}:8: render.captions[0].from: bad value 11")


# --------------------------------------------------------------------------- the film's end

def test_a_keyframe_after_the_end_is_refused(tmp_path):
    scene = write(tmp_path, """
        render:
          duration: 10
          camera:
            - {t: 0, azimuth: 10}
            - {t: 10, azimuth: 20}
            - {t: 14.5, azimuth: 30}
        """)
    assert problem(scene) == (f"{scene}:6: render.camera[2].t: bad value 14.5: the keyframe is after the film's "
                              f"end, and the film ends at 10 s (render.duration); give a time from 0 to 10, or "
                              f"lengthen render.duration")
    # shortening the film from the command line names the option that did it
    scene = write(tmp_path, "render:\n  camera:\n    - {t: 0}\n    - {t: 12}\n")
    assert load_scene(scene).render.duration == 14
    assert problem(scene, ["render.duration=8"]).startswith(f"{scene}:4: render.camera[1].t: bad value 12: ")


def test_a_caption_after_the_end_is_refused(tmp_path):
    scene = write(tmp_path, """
        render:
          duration: 6
          captions:
            - {text: in time, from: 1, to: 8}
            - {text: too late, from: 6, to: 8}
        """)
    assert problem(scene) == (f"{scene}:5: render.captions[1].from: bad value 6: the caption starts at or after the "
                              f"film's end, and the film ends at 6 s (render.duration); show it before 6 s, or "
                              f"lengthen render.duration")


def test_a_trail_completed_after_the_end_is_refused(tmp_path):
    scene = write(tmp_path, """
        render:
          duration: 6
          paths:
            training: {end: 7.5}
        """)
    assert problem(scene) == (f"{scene}:4: render.paths.training.end: bad value 7.5: the trail would be complete "
                              f"after the film, and the film ends at 6 s (render.duration); give an end of at most "
                              f"6, or lengthen render.duration")
    scene = write(tmp_path, "render:\n  duration: 6\n  paths:\n    training: {start: 4, end: 3}\n")
    assert "render.paths.training.start: bad value 4: the trail would start at or after its end (3 s)" in problem(scene)
    scene = write(tmp_path, "render:\n  duration: 6\n  paths:\n    training: {start: 6}\n")
    assert "the trail would start at or after the film's end" in problem(scene)


# --------------------------------------------------------------------------- values as written, lists

def test_the_bad_value_is_shown_as_written(tmp_path):
    scene = write(tmp_path, "landscape:\n  train: {steps: 2e3}\n")
    assert problem(scene) == f"{scene}:2: landscape.train.steps: bad value 2e3; allowed: an integer (write 2000)"
    scene = write(tmp_path, "landscape:\n  grid: {resolution: [1_000, 0x10, 1]}\n")
    assert "bad value [1_000, 0x10, 1]" in problem(scene)
    # from the command line: as typed there
    assert problem(ROOT / "scenes" / "default.yaml", ["landscape.train.steps=2e3"]).endswith(
        "(--set landscape.train.steps): landscape.train.steps: bad value 2e3; allowed: an integer (write 2000)")


def test_text_that_yaml_reads_as_something_else(tmp_path):
    scene = write(tmp_path, "title: no\n")
    assert problem(scene) == (f"{scene}:1: title: bad value no; allowed: text (YAML reads no as false; write it in "
                              f"quotes: \"no\")")
    scene = write(tmp_path, "title: 2024\n")
    assert problem(scene).endswith('allowed: text (write it in quotes: "2024")')


@pytest.mark.parametrize("text, expected", [
    ("landscape:\n  grid: {resolution: 200}\n",
     "landscape.grid.resolution: bad value 200; allowed: a list of two integers, each 2 to 8192, e.g. [200, 200]"),
    ("render:\n  size: 640\n",
     "render.size: bad value 640; allowed: one of '720p', '1080p', '1440p' or '4k' or a list of two integers, "
     "each 16 to 8192, e.g. [640, 640]"),
    ("landscape:\n  model: {widths: 64}\n",
     "landscape.model.widths: bad value 64; allowed: a list of 1 to 16 integers, each 1 to 65536, e.g. [64]"),
    ("landscape:\n  descents: [{name: a, start: 0.5}]\n",
     "landscape.descents[0].start: bad value 0.5; allowed: a list of two numbers, e.g. [0.5, 0.5]"),
    ("landscape:\n  plane: {method: checkpoints, checkpoints: 300}\n",
     "landscape.plane.checkpoints: bad value 300; allowed: a list of 2 or 3 integers, each ≥ 0"),
    ("landscape:\n  plane: {range: 1}\n", "landscape.plane.range: bad value 1; allowed: a list of two lists of two "
                                          "numbers"),
    ("landscape:\n  plane: {span: wide}\n",
     'landscape.plane.span: bad value "wide"; allowed: a number or a list of two numbers, each > 0'),
    ("render:\n  camera: {t: 0}\n", "render.camera: bad value {t: 0}; allowed: a list of keyframes and shots"),
])
def test_a_list_key_says_what_the_list_holds(tmp_path, text, expected):
    scene = write(tmp_path, text)
    assert problem(scene) == f"{scene}:2: {expected}"


# --------------------------------------------------------------------------- --set everywhere

def test_values_from_the_command_line_are_blamed_on_the_option(tmp_path):
    scene = write(tmp_path, """
        landscape:
          model: {widths: [8]}
        render:
          duration: 10
          camera:
            - {t: 0, azimuth: 10}
        """)
    # a value check, a check across sections and a cross-check on the camera's timeline
    lines = problems(scene, ["landscape.model.widths=[0]", "render.duration=-1"])
    assert lines == [f"{scene} (--set landscape.model.widths): landscape.model.widths: bad value [0]: every width "
                     f"must be an integer from 1 to 65536, got 0",
                     f"{scene} (--set render.duration): render.duration: bad value -1; allowed: a value greater "
                     f"than 0"]
    msg = problem(scene, ["render.camera=[{shot: orbit, from: 0, to: 4, turns: 1}, {t: 2, azimuth: 5}]"])
    assert msg.startswith(f"{scene} (--set render.camera): render.camera[1].azimuth: the keyframe at t=2 sets "
                          f"azimuth inside the orbit shot render.camera[0] (--set render.camera, from 0 to 4)"), msg
    msg = problem(scene, ["landscape.plane={method: interpolate, checkpoints: [0, 5000]}"])
    assert msg.startswith(f"{scene} (--set landscape.plane): landscape.plane.checkpoints: bad value 5000: "), msg
    msg = problem(scene, ["render.look.colormap=nowhere.csv"])
    assert msg.startswith(f"{scene} (--set render.look.colormap): render.look.colormap: bad value \"nowhere.csv\""), msg
    # the command line prints the same
    assert cli_error(tmp_path, scene, "--set", "render.look.colormap=nowhere.csv") == msg


def test_a_panel_from_the_command_line_is_blamed_on_the_option(tmp_path):
    scene = write(tmp_path, "landscape:\n  model: {widths: [8]}\ncompare:\n  panels: [{}, {}]\n")
    msg = problem(scene, ["compare={panels: [{}, {landscape: {model: {widths: [0]}}}]}"])
    assert msg.startswith(f"{scene} (--set compare): compare.panels[1].landscape.model.widths: bad value [0]"), msg
    # a panel that sets a key itself wins over a --set of the scene's landscape
    scene = write(tmp_path, "compare:\n  panels:\n    - {}\n    - landscape:\n        model: {arch: vgg99}\n")
    error = "landscape.model.arch: bad value 'vgg99': not a classification model"
    assert locate_error(scene, error, ["landscape.model.arch=resnet19"], panel=1) == \
        f"{scene}:5: compare.panels[1].{error}"
    assert locate_error(scene, error, ["landscape.model.arch=resnet19"], panel=0) == \
        f"{scene} (--set landscape.model.arch): compare.panels[0]: {error}"


# --------------------------------------------------------------------------- entries

@pytest.mark.parametrize("where, text", [
    ("landscape.model.entry", "landscape:\n  model: {name: custom, entry: \"my_models.py:net\"}\n"),
    ("landscape.data.entry", "landscape:\n  data: {name: custom, entry: my_models.py:net}\n"),
    ("landscape.loss.entry", "landscape:\n  loss: my_models.py:net\n"),
])
def test_an_entry_naming_a_file_says_to_drop_the_suffix(tmp_path, where, text):
    scene = write(tmp_path, text)
    msg = problem(scene)
    assert msg.startswith(f"{scene}:2: {where}: bad value "), msg
    assert msg.endswith("an entry names a module, not its file: drop the .py and write 'my_models:net'"), msg
    assert ".py.py" not in msg


def test_an_entry_with_slashes_says_to_use_dots(tmp_path):
    scene = write(tmp_path, "landscape:\n  model: {name: custom, entry: \"examples/tiny_models:ring_net\"}\n")
    assert problem(scene).endswith("an entry names a module with dots, not a path with slashes: write "
                                   "'examples.tiny_models:ring_net' (for a folder next to the scene with an "
                                   "__init__.py)")


# --------------------------------------------------------------------------- sizes the data set bounds

def test_eval_samples_above_the_data_sets_size_is_refused(tmp_path):
    scene = write(tmp_path, "landscape:\n  data: {samples: 100}\n  grid: {eval_samples: 200}\n")
    assert problem(scene) == (f"{scene}:3: landscape.grid.eval_samples: bad value 200: the evaluation subset can "
                              f"have at most 100 samples, the data set's size (landscape.data.samples); give at most "
                              f"100 or raise the data set's size")
    # left at its default, it is the whole data set (the default's key, computed once)
    assert load_scene(write(tmp_path, "landscape:\n  data: {samples: 100}\n")).landscape.grid.eval_samples == 1024
    # a data set on disk: at most the subset the scene takes of it
    scene = write(tmp_path, "landscape:\n  data: {name: mnist, train_samples: 500}\n  grid: {eval_samples: 600}\n")
    assert "at most 500 samples, the data set's size (landscape.data.train_samples)" in problem(scene)
    # custom data: its size is known only when the compute stage calls the function
    ok = "landscape:\n  data: {name: custom, entry: 'm:f'}\n  grid: {eval_samples: 100000}\n"
    assert load_scene(write(tmp_path, ok)).landscape.grid.eval_samples == 100000


def test_a_panel_with_a_smaller_data_set_is_checked_too(tmp_path):
    scene = write(tmp_path, """
        landscape:
          grid: {eval_samples: 512}
        compare:
          panels:
            - {}
            - landscape: {data: {samples: 256}}
        """)
    # at the line of the panel whose landscape it is
    assert problem(scene).startswith(f"{scene}:6: compare.panels[1].landscape.grid.eval_samples: bad value 512: ")


# --------------------------------------------------------------------------- paths on disk

def test_an_output_path_that_cannot_be_written(tmp_path):
    (tmp_path / "film.mp4").mkdir()
    (tmp_path / "frames").write_text("")
    (tmp_path / "notes.txt").write_text("")
    cases = {f"output: {{path: {tmp_path / 'film.mp4'}}}\n": "that is a folder; the film is one file",
             f"output: {{format: png, path: {tmp_path / 'frames'}}}\n":
                 "that is a file, and PNG frames go into a folder",
             f"output: {{path: {tmp_path / 'notes.txt' / 'film.mp4'}}}\n": f"{tmp_path / 'notes.txt'} is a file",
             "output: {format: png, path: ''}\n": "output.path: bad value \"\": give a path"}
    for text, part in cases.items():
        msg = problem(write(tmp_path, text))
        assert part in msg and ": output.path: bad value" in msg, msg


def test_the_output_path_expands_the_home_folder(tmp_path):
    scene = load_scene(write(tmp_path, "output: {path: ~/films/x.mp4}\n"))
    assert scene.output_path() == Path(os.path.expanduser("~/films/x.mp4"))


def test_a_data_root_that_is_a_file(tmp_path):
    (tmp_path / "data.zip").write_text("")
    scene = write(tmp_path, f"landscape:\n  data: {{name: cifar10, root: {tmp_path / 'data.zip'}}}\n")
    assert problem(scene).endswith("that is a file; give the folder that holds the data set")
