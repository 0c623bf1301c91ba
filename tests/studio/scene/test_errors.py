"""Bad scene files: one clear line per problem (file, line, dotted key, the bad value as written,
what is allowed), exit status 2, and nothing created.  Validation runs before torch is imported,
so these are fast.  tests/studio/scene/test_problems.py has the problems the scene's own values make
(timing, sizes, paths, several problems at once)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio.scene import SceneError, load_scene
from tests.conftest import ROOT, cli_error, cli_errors, write_scene


write = write_scene


def direct_error(scene: Path) -> str:
    with pytest.raises(SceneError) as ei:
        load_scene(scene)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def check(msg: str, path: Path, line: int | None, *parts: str) -> None:
    assert msg.startswith(str(path)), msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


# (scene text, line, pieces the message must hold: dotted key, bad value, what is allowed)
CASES = {
    "unknown_top_level_key": (
        """
        title: hello
        titel: typo
        """,
        2, ["'titel'", "did you mean 'title'", "landscape", "render", "output"]),
    "unknown_nested_key": (
        """
        title: x
        landscape:
          grid:
            resolutoin: [10, 10]
        """,
        4, ["'landscape.grid.resolutoin'", "did you mean 'resolution'", "eval_samples", "seed"]),
    "unknown_nested_key_flow": (
        """
        landscape: {grid: {resolutoin: [10, 10]}}
        """,
        1, ["'landscape.grid.resolutoin'", "did you mean 'resolution'"]),
    "wrong_type": (
        """
        render:
          fps: fast
        """,
        2, ["render.fps", 'bad value "fast"', "an integer"]),
    "negative_resolution": (
        """
        landscape:
          grid:
            resolution: [-5, 10]
        """,
        3, ["landscape.grid.resolution", "[-5, 10]", "from 2 to 8192", "got -5"]),
    "fps_zero": (
        """
        title: t
        render:
          size: [640, 360]
          fps: 0
        """,
        4, ["render.fps", "bad value 0", "at least 1"]),
    "bad_literal": (
        """
        landscape:
          plane:
            method: banana
        """,
        3, ["landscape.plane.method", '"banana"', "'pca'", "'random'"]),
    "bad_colour": (
        """
        render:
          look:
            background: red
        """,
        3, ["render.look.background", '"red"', "#rrggbb"]),
    "bad_path_colour": (
        """
        render:
          paths:
            training:
              color: "#12345"
        """,
        4, ["render.paths.training.color", '"#12345"', "#rrggbb"]),
    "camera_times_not_increasing": (
        """
        render:
          camera:
            - {t: 0, azimuth: 10}
            - {t: 4, azimuth: 20}
            - {t: 2, azimuth: 30}
        """,
        3, ["render.camera", "[0.0, 4.0, 2.0]", "increase strictly"]),
    "bool_is_not_an_integer": (
        """
        landscape:
          train:
            steps: true
        """,
        3, ["landscape.train.steps", "true", "an integer"]),
    "text_is_not_a_number": (
        """
        landscape:
          train:
            lr: "0.01"
        """,
        3, ["landscape.train.lr", '"0.01"', "a number"]),
    "list_item": (
        """
        landscape:
          model:
            widths: [64, x]
        """,
        3, ["landscape.model.widths[1]", '"x"', "an integer"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_scene_via_cli(tmp_path, case):
    text, line, parts = CASES[case]
    scene = write(tmp_path, text)
    msg = cli_error(tmp_path, scene)
    check(msg, scene, line, *parts)
    # the library gives the same message the CLI prints
    assert direct_error(scene) == msg


def test_missing_scene_file(tmp_path):
    scene = tmp_path / "nope" / "missing.yaml"
    msg = cli_error(tmp_path, scene)
    check(msg, scene, None, "not found")
    assert direct_error(scene) == msg


def test_directory_is_not_a_scene(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    msg = direct_error(tmp_path / "dir.yaml")
    check(msg, tmp_path / "dir.yaml", None, "this is a directory, not a scene file", "(it holds no .yaml file)")
    assert "not found" not in msg
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "mine.yaml").write_text("title: x\n")
    msg = cli_error(tmp_path, tmp_path / "scenes")
    check(msg, tmp_path / "scenes", None, "this is a directory", f"e.g. {tmp_path / 'scenes' / 'mine.yaml'}")


def test_yaml_syntax_error_has_line(tmp_path):
    scene = write(tmp_path, """
        title: x
        landscape:
          grid: {resolution: [10, 10]
          plane: {method: pca}
        """)
    msg = cli_error(tmp_path, scene)
    check(msg, scene, 4, "YAML syntax error")
    assert direct_error(scene) == msg


def test_not_a_mapping(tmp_path):
    scene = write(tmp_path, "- a\n- b\n")
    msg = cli_error(tmp_path, scene)
    check(msg, scene, 1, "must be a mapping", "title, landscape, render, output", "got list")


def test_not_utf8(tmp_path):
    scene = tmp_path / "scene.yaml"
    scene.write_bytes(b"title: caf\xe9\n")
    msg = cli_error(tmp_path, scene)
    check(msg, scene, None, "UTF-8")


def test_duplicate_key_is_an_error(tmp_path):
    # YAML itself keeps the last of two equal keys silently; a strict scene must not
    scene = write(tmp_path, """
        render:
          fps: 30
          duration: 4
          fps: 60
        """)
    msg = cli_error(tmp_path, scene)
    check(msg, scene, 4, "render.fps", "duplicate key", "line 2")


def test_unknown_key_under_a_named_path_lists_the_path_keys(tmp_path):
    scene = write(tmp_path, """
        render:
          paths:
            training:
              colour: "#ffffff"
        """)
    msg = direct_error(scene)
    check(msg, scene, 4, "'render.paths.training.colour'", "did you mean 'color'", "width", "label")


def test_unknown_key_in_a_list_item(tmp_path):
    scene = write(tmp_path, """
        render:
          captions:
            - {text: hi, from: 0, to: 1, sise: 30}
        """)
    msg = direct_error(scene)
    check(msg, scene, 3, "'render.captions[0].sise'", "did you mean 'size'", "from", "to")


def test_union_value_names_every_allowed_form(tmp_path):
    scene = write(tmp_path, """
        landscape:
          plane:
            span: wide
        """)
    msg = direct_error(scene)
    check(msg, scene, 3, "landscape.plane.span", '"wide"', "allowed: a number or a list of two numbers, each > 0")
    assert msg.count(str(scene)) == 1         # the branches of one union are one problem

    scene = write(tmp_path, """
        landscape:
          plane:
            span: [1.5, x]
        """)
    msg = direct_error(scene)
    check(msg, scene, 3, "landscape.plane.span[1]", '"x"', "a number")


def test_several_problems_are_listed_in_the_files_order(tmp_path):
    scene = write(tmp_path, """
        render:
          fps: 0
          duration: -1
        landscape:
          train:
            steps: 0
        """)
    with pytest.raises(SceneError) as e:
        load_scene(scene)
    lines = str(e.value).splitlines()
    assert lines == [f"{scene}:2: render.fps: bad value 0; allowed: a value of at least 1",
                     f"{scene}:3: render.duration: bad value -1; allowed: a value greater than 0",
                     f"{scene}:6: landscape.train.steps: bad value 0; allowed: a value of at least 1"]
    assert "more problem" not in str(e.value)
    # the command line prints each as its own error line, and nothing else
    assert cli_errors(tmp_path, scene) == lines


def test_unprintable_values_do_not_crash_the_formatter(tmp_path):
    scene = write(tmp_path, "title: [2020-01-01]\n")
    msg = direct_error(scene)
    check(msg, scene, 1, "title", "2020", "text")


def test_exponent_numbers_are_numbers(tmp_path):
    # YAML 1.1 reads 1e-3 as text; a learning rate written that way must still work
    scene = write(tmp_path, """
        landscape:
          train: {lr: 1e-3, optimizer: sgd}
          data: {noise: 2.5E-1}
        """)
    s = load_scene(scene)
    assert s.landscape.train.lr == pytest.approx(1e-3)
    assert s.landscape.data.noise == pytest.approx(0.25)
    # an exponent does not turn a count into a float by accident: still strict, and the message
    # shows the value as written
    scene = write(tmp_path, "landscape: {train: {steps: 1e3}}\n")
    check(direct_error(scene), scene, 1, "landscape.train.steps: bad value 1e3; allowed: an integer (write 1000)")


def test_good_scene_loads(tmp_path):
    scene = write(tmp_path, """
        title: ok
        landscape:
          grid: {resolution: [10, 12]}
        render:
          fps: 24
          camera:
            - {t: 0, azimuth: 10}
            - {t: 2, azimuth: 30}
        """)
    s = load_scene(scene)
    assert s.landscape.grid.resolution == [10, 12]
    assert s.render.fps == 24
    assert s.source == str(scene)
    # a scene that gives one key takes the defaults for the rest (an empty file is an error)
    from studio.scene import LandscapeSpec
    assert load_scene(write(tmp_path, "title: only a title\n", "short.yaml")).landscape == LandscapeSpec()


def test_validation_fails_before_torch_is_imported(tmp_path):
    scene = write(tmp_path, "render: {fps: 0}\n")
    code = textwrap.dedent(f"""
        import sys
        from compute.__main__ import main
        rc = main([{str(scene)!r}, "--cache-dir", {str(tmp_path / "cache")!r}])
        assert rc == 2, rc
        assert "torch" not in sys.modules, "torch imported before the scene was validated"
        assert "vispy" not in sys.modules
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "render.fps" in r.stderr
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("text, key", [("render: {duration: .nan}\n", "render.duration"),
                                       ("render:\n  camera:\n    - {t: 0, azimuth: .inf}\n", "render.camera[0].azimuth")])
def test_nan_and_inf_are_rejected(tmp_path, text, key):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(SceneError) as e:
        load_scene(p)
    msg = str(e.value)
    assert key in msg and str(p) in msg and "finite" in msg


# --------------------------------------------------------------------------- --set overrides

def test_overrides_change_values_and_the_cache_key():
    from studio.scene import load_scene
    base = load_scene(ROOT / "scenes" / "default.yaml")
    small = load_scene(ROOT / "scenes" / "default.yaml", ["landscape.grid.resolution=[150,150]",
                                                          "render.duration=20", "landscape.plane.span=3"])
    assert small.landscape.grid.resolution == [150, 150] and small.render.duration == 20
    assert small.landscape.plane.span == 3
    assert small.cache_key() != base.cache_key()
    same = load_scene(ROOT / "scenes" / "default.yaml", ["landscape.grid.resolution=[1000,1000]"])
    assert same.cache_key() == base.cache_key()          # the file's own value: the same entry


@pytest.mark.parametrize("item, message", [
    ("landscape.grid.resolution=[0,5]", r"default.yaml \(--set landscape.grid.resolution\): "
                                        r"landscape.grid.resolution: bad value \[0,5\]"),      # as typed
    ("landscape.grid.resolutio=5", r"\(--set landscape.grid.resolutio\): unknown key .*did you mean 'resolution'"),
    ("nokey", r"--set nokey: give KEY=VALUE"),
    ("landscape.grid.resolution=[1,", r"--set landscape.grid.resolution=\[1,: the value is not valid YAML"),
    ("title.x=1", r"\(--set title.x\): title is str, not a mapping"),
])
def test_bad_overrides_name_the_option(item, message):
    from studio.scene import SceneError, load_scene
    with pytest.raises(SceneError, match=message):
        load_scene(ROOT / "scenes" / "default.yaml", [item])


def test_override_on_the_command_line_writes_nothing(tmp_path):
    import subprocess, sys
    r = subprocess.run([sys.executable, "-m", "compute", str(ROOT / "scenes" / "default.yaml"), "--cache-dir",
                        str(tmp_path / "c"), "--set", "landscape.train.lr=-1"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "(--set landscape.train.lr)" in r.stderr and "-1" in r.stderr
    assert not (tmp_path / "c").exists()


def test_later_errors_get_the_line_of_their_key(tmp_path):
    """Errors only building the model or reading the data can find (an unknown torchvision name, a
    user entry that fails) name the key; the command line adds the file and the key's line."""
    from studio.scene import locate_error
    p = tmp_path / "s.yaml"
    p.write_text("title: t\nlandscape:\n  data: {name: shapes, channels: 3}\n  model:\n    name: torchvision\n"
                 "    arch: resnet19\ncompare:\n  panels:\n    - {}\n    - landscape:\n        model: {arch: vgg99}\n")
    msg = "landscape.model.arch: bad value 'resnet19': not a classification model"
    assert locate_error(p, msg) == f"{p}:6: {msg}"
    # a key the file does not give: the line of the nearest section that is there
    assert locate_error(p, "landscape.data.root: no such folder").startswith(f"{p}:3: landscape.data.root: ")
    # a value from the command line
    assert locate_error(p, msg, ["landscape.model.arch=resnet19"]) == f"{p} (--set landscape.model.arch): {msg}"
    assert locate_error(p, msg, ["landscape.model={name: mlp}"]).startswith(f"{p} (--set landscape.model): ")
    assert locate_error(p, msg, ["render.fps=12"]) == f"{p}:6: {msg}"
    # a comparison panel that sets the key itself, and one that has it from the scene's landscape
    assert locate_error(p, msg, panel=1) == f"{p}:11: compare.panels[1].{msg}"
    assert locate_error(p, msg, panel=0) == f"{p}:6: compare.panels[0]: {msg}"
    # no key to find: the file alone
    assert locate_error(p, "something else went wrong") == f"{p}: something else went wrong"
