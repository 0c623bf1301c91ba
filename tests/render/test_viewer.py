"""render/viewer.py: the camera moves and the keyframe line (no GL), the no-display message, and the
window itself under Xvfb: keys and the mouse move the view, ``k`` prints a keyframe, ``c`` saves a
screenshot, and a still rendered from a scene with that keyframe pasted in is the screenshot."""
from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT, camera_entries

from render.viewer import dolly, keyframe_line, orbit, pan, zoom

STATE = {"target": [0.1, -0.2, 0.3], "azimuth": 30.0, "elevation": 25.0, "distance": 4.0, "fov": 35.0, "roll": 0.0}


# --------------------------------------------------------------------------- without a window
def test_keyframe_line_is_a_valid_keyframe_of_the_state():
    s = dict(STATE, target=[1e-6, -0.123456, 0.5], azimuth=-400.126, distance=3.45678)
    line = keyframe_line(4.0, s)
    assert line.startswith("- {t: 4.0, target: [") and "roll" not in line
    entry = yaml.safe_load(line)[0]                    # pastes under `camera:` as a list item
    key = camera_entries([entry])[0]                   # and the scene schema takes it
    assert key.t == 4.0 and key.target == [0.0, -0.1235, 0.5]
    assert key.azimuth == -400.13 and key.elevation == 25.0 and key.distance == 3.4568 and key.fov == 35.0
    rolled = yaml.safe_load(keyframe_line(1.25, dict(STATE, roll=-7.5)))[0]
    assert rolled["roll"] == -7.5 and rolled["t"] == 1.25


def test_camera_moves():
    from render.camera import perspective, view_matrix
    o = orbit(STATE, 10, -20)
    assert o["azimuth"] == pytest.approx(27.0) and o["elevation"] == pytest.approx(19.0)
    assert orbit(STATE, 0, 1e4)["elevation"] == 89.0                 # within the schema's range
    assert dolly(STATE, 2)["distance"] == pytest.approx(4.0 * 0.81)   # closer
    assert zoom(STATE, 1)["fov"] < 35.0 < zoom(STATE, -1)["fov"]
    # a pan moves the point that was the target with the cursor: (dx, dy) pixels, y down
    w, h, dx, dy = 320, 180, 40.0, -25.0
    p = pan(STATE, dx, dy, h)
    assert (p["azimuth"], p["distance"]) == (STATE["azimuth"], STATE["distance"])
    clip = perspective(p["fov"], w / h, 0.1, 100) @ view_matrix(p) @ np.r_[STATE["target"], 1.0]
    x, y = clip[:2] / clip[3]
    assert (x * w / 2, -y * h / 2) == pytest.approx((dx, dy), abs=1e-6)


def _env_without_display() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_without_a_display_it_says_so_in_one_line(scene_with_cache):
    scene, cache_dir = scene_with_cache()
    r = subprocess.run([sys.executable, "-m", "render", str(scene), "--cache-dir", str(cache_dir), "--view"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=_env_without_display())
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: no display") and f"make storyboard SCENE={scene}" in lines[0]


# --------------------------------------------------------------------------- the window, under Xvfb
def _need_x_tools():
    missing = [t for t in ("Xvfb", "xdotool") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install -y xvfb xdotool; `make test` installs "
                    f"them when run as root)")
    try:
        import glfw  # noqa: F401
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"the viewer's window library glfw is not available: {e}")


@pytest.fixture
def xvfb():
    """A virtual X display on a free display number (Xvfb -displayfd) -> its DISPLAY."""
    _need_x_tools()
    rfd, wfd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(wfd), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                            pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(wfd)
    with os.fdopen(rfd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class _Viewer:
    """A viewer process: its keyframe lines (stdout) as they come, its log (stderr) in a file."""

    def __init__(self, args: list[str], display: str, log: Path):
        env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(ROOT))
        env.pop("WAYLAND_DISPLAY", None)
        self.display, self.log = display, log
        self.proc = subprocess.Popen([sys.executable, "-m", "render", *args], cwd=ROOT, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=open(log, "w"))
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(x.rstrip("\n")) for x in self.proc.stdout],
                         daemon=True).start()

    def wait_log(self, text: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log.read_text():
                return
            assert self.proc.poll() is None, f"the viewer ended ({self.proc.returncode}): {self.log.read_text()}"
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} from the viewer in {timeout} s: {self.log.read_text()}")

    def line(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no keyframe line in {timeout} s: {self.log.read_text()}") from None

    def xdotool(self, *args: str) -> str:
        r = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=self.display), capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()


def _keyframe(line: str) -> dict:
    assert re.fullmatch(r"- \{t: .*\}", line), line
    return yaml.safe_load(line)[0]


def test_the_viewer_under_xvfb_shows_what_its_keyframe_films(gl, xvfb, scene_with_cache, tmp_path):
    from PIL import Image
    from studio import cache
    from studio.scene import load_scene
    from render.camera import vec_to_state
    from render.film import Film, Options
    scene, cache_dir = scene_with_cache(render_yaml="render: {duration: 3, fps: 10}\n")
    shot = tmp_path / "shot.png"
    v = _Viewer([str(scene), "--cache-dir", str(cache_dir), "--view", "--size", "320x180", "--out", str(shot)],
                xvfb, tmp_path / "viewer.log")
    try:
        v.wait_log("[view] ready")
        win = v.xdotool("search", "--name", "landscape viewer").splitlines()[0]
        at = lambda x, y: ["mousemove", "--window", win, str(x), str(y), "sleep", "0.2"]   # noqa: E731
        v.xdotool(*at(160, 90), "key", "k")
        start = _keyframe(v.line())
        assert start["t"] == 0.0
        # orbit (left drag), dolly in (wheel), on 0.5 s and a frame, zoom in, print, screenshot
        v.xdotool("mousedown", "1", "sleep", "0.2", *at(190, 100), *at(220, 110), "mouseup", "1", "sleep", "0.2",
                  "click", "4", "sleep", "0.2", "key", "Right", "key", "bracketright", "key", "comma", "key", "k")
        moved_line = v.line()
        moved = _keyframe(moved_line)
        assert moved["t"] == pytest.approx(0.6)
        assert moved["azimuth"] < start["azimuth"] - 3 and moved["elevation"] > start["elevation"]
        assert moved["distance"] < start["distance"] and moved["fov"] < start["fov"]
        v.xdotool("key", "c")
        v.wait_log(f"[view] wrote {shot}", timeout=30)
        # play the scene's own camera for a moment: the printed camera is the film's path at that time
        v.xdotool("key", "space", "sleep", "1.0", "key", "space", "key", "k")
        played = _keyframe(v.line())
        assert played["t"] > moved["t"]
        v.xdotool("key", "q")
        assert v.proc.wait(30) == 0, v.log.read_text()
    finally:
        if v.proc.poll() is None:
            v.proc.kill()
    assert "Traceback" not in v.log.read_text(), v.log.read_text()

    # the keyframe, pasted into the scene, films exactly what the window showed
    with_key = tmp_path / "with_key.yaml"
    with_key.write_text(scene.read_text().replace("render: {duration: 3, fps: 10}\n", "")
                        + f"render:\n  duration: 3\n  fps: 10\n  camera:\n    {moved_line}\n")
    sc = load_scene(with_key)
    ls = cache.read(cache_dir, sc.cache_key())
    with Film(sc, ls, Options(320, 180, 10, 3.0)) as film:
        still = film.frame(moved["t"])
    got = np.asarray(Image.open(shot).convert("RGB"))
    assert got.shape == still.shape
    diff = np.abs(got.astype(int) - still.astype(int))
    assert diff.mean() < 3, (diff.mean(), np.percentile(diff, 99))
    assert got.std() > 10                           # a picture, not a blank window

    # the played camera is the scene's own path at that time (before the ground guard)
    with Film(load_scene(scene), ls, Options(320, 180, 10, 3.0)) as film:
        path = vec_to_state(film.camera.vec(played["t"]))
    for k in ("azimuth", "elevation", "distance", "fov"):
        assert played[k] == pytest.approx(path[k], abs=0.01), k
    assert played["target"] == pytest.approx(list(path["target"]), abs=1e-3)
