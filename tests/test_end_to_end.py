"""The whole chain on a tiny scene, as `make video` runs it: compute, then render, then reuse."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCENE = """
title: "Tiny"
landscape:
  data: {samples: 256}
  model: {widths: [16, 16]}
  train: {steps: 150, snapshots: 30}
  grid: {resolution: [80, 60], eval_samples: 128}
render:
  size: [256, 144]
  fps: 10
  duration: 1.5
  camera:
    - {t: 0, azimuth: -30, elevation: 40}
    - {t: 1.5, azimuth: 20, elevation: 30, ease: in_out}
  captions:
    - {text: "hello", from: 0.2, to: 1.2}
output: {path: OUT, preset: ultrafast}
"""


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_scene_to_film_and_cache_reuse(gl, tmp_path):
    from render.writer import probe
    out = tmp_path / "out" / "tiny.mp4"
    scene = tmp_path / "tiny.yaml"
    scene.write_text(SCENE.replace("OUT", str(out)))
    cache = str(tmp_path / "cache")
    r = run("compute", str(scene), "--cache-dir", cache, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stderr
    r = run("render", str(scene), "--cache-dir", cache, "--quiet")
    assert r.returncode == 0, r.stderr
    assert probe(out) == {"codec": "h264", "pix_fmt": "yuv420p", "width": 256, "height": 144, "frames": 15}

    # a camera-only edit: the compute stage finds its landscape in the cache
    scene.write_text(SCENE.replace("OUT", str(out)).replace("azimuth: 20", "azimuth: 80"))
    r = run("compute", str(scene), "--cache-dir", cache, "--quiet")
    assert r.returncode == 0 and "cache hit" in r.stderr, r.stderr
    r = run("render", str(scene), "--cache-dir", cache, "--quiet")
    assert r.returncode == 0, r.stderr

    # a grid edit recomputes
    scene.write_text(SCENE.replace("OUT", str(out)).replace("[80, 60]", "[40, 30]"))
    r = run("compute", str(scene), "--cache-dir", cache, "--quiet")
    assert r.returncode == 0 and "cache hit" not in r.stderr and "wrote" in r.stderr
