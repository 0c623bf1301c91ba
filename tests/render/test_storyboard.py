"""render/storyboard.py: a contact sheet of stills at even times, with time codes and cameras."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from render.storyboard import camera_line, storyboard_times
from tests.conftest import ROOT


def test_times_are_even_and_inside_the_film():
    t = storyboard_times(12.0, 6)
    assert t == [1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    assert all(0 < x < 12 for x in storyboard_times(10.0, 7))


def test_a_camera_line_is_a_keyframe():
    import yaml
    line = camera_line({"target": [0.1, -0.2, 0.5], "azimuth": -30.04, "elevation": 40.0, "distance": 4.5,
                        "fov": 35.0})
    assert yaml.safe_load("{" + line + "}") == {"target": [0.1, -0.2, 0.5], "azimuth": -30.0, "elevation": 40.0,
                                                "distance": 4.5, "fov": 35}


def test_the_command_writes_one_sheet(tmp_path, scene_with_cache, gl):
    p, root = scene_with_cache("render: {size: [320, 180], duration: 6}\n")
    out = tmp_path / "board.png"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(root), "--storyboard", "4",
                        "--size", "160x90", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64)
    assert img.shape[1] > 4 * 160 and img.shape[0] > 90          # four cells a row, with their labels
    pad = 6                                                       # storyboard: max(6, cell width / 60)
    cells = [img[pad:pad + 90, pad + k * (160 + pad):pad + k * (160 + pad) + 160] for k in range(4)]
    assert all(c.std() > 5 for c in cells)                        # every still drawn
    assert np.abs(cells[0] - cells[-1]).mean() > 1                # the camera moved between them
