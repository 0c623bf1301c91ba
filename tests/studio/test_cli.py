"""studio/cli.py: what the command lines share; a user's error or Ctrl-C ends in one line and an exit
code, with no traceback and nothing half-written."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from studio import cli
from studio.cache import CacheError
from studio.scene import SceneError
from tests.conftest import ROOT


def test_a_users_error_is_its_lines_and_its_code(capsys):
    def fails(argv):
        raise SceneError("scene.yaml:3: landscape.grid.resolution: bad value 200\nscene.yaml:7: title: bad value")

    assert cli.run(fails, []) == 2
    assert capsys.readouterr().err.splitlines() == ["error: scene.yaml:3: landscape.grid.resolution: bad value 200",
                                                    "error: scene.yaml:7: title: bad value"]

    def missing(argv):
        raise CacheError("no landscape in the cache for this scene")

    assert cli.run(missing, []) == 3


def test_ctrl_c_is_one_line_and_130(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    assert cli.run(interrupted, [], interrupted="interrupted; nothing written") == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted; nothing written" and "Traceback" not in err


@pytest.mark.parametrize("stage", ["compute", "render", "export"])
def test_a_cache_dir_that_is_a_file(tmp_path, stage):
    f = tmp_path / "notes.txt"
    f.write_text("not a cache")
    scene = tmp_path / "s.yaml"
    scene.write_text("title: x\n")
    r = subprocess.run([sys.executable, "-m", stage, str(scene), "--cache-dir", str(f)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"--cache-dir: {f} is a file, not a folder" in r.stderr


def test_ctrl_c_during_a_render_leaves_nothing(tmp_path, scene_with_cache, gl):
    p, root = scene_with_cache("render: {size: [320, 180], duration: 60, fps: 30}\n")
    out = tmp_path / "film.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "render", str(p), "--cache-dir", str(root), "--out", str(out),
                             "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, EGL_PLATFORM="surfaceless"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list(tmp_path.glob(".film*")):
        time.sleep(0.05)                          # until the encoder has a partial file
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "interrupted; nothing written" in err and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".film*")), list(tmp_path.iterdir())
