"""render/report.py: the landscape's report, from the entry and its figures."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from studio import cache
from studio.scene import load_scene
from tests.conftest import ROOT


def test_the_report_draws_the_landscape_and_its_figures(tmp_path, scene_with_cache):
    from compute.morphology import measure
    p, root = scene_with_cache("render: {size: [320, 180]}\n")
    key = load_scene(p).cache_key()
    ls = cache.read(root, key)
    f = measure(np.asarray(ls.loss, dtype=np.float64), ls.alpha, ls.beta, xy=ls.paths["training"].xy,
                offplane=ls.paths["training"].offplane)
    cache.write_figures(root, key, {"options": {}, "figures": f.to_json()}, f.arrays())
    out = tmp_path / "report.png"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(root), "--report", "--out",
                        str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64)
    assert img.shape[1] == 2400 and abs(img.shape[0] - 1400) <= 1 and img.std() > 20


def test_without_figures_it_says_what_to_run(tmp_path, scene_with_cache):
    p, root = scene_with_cache()
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(root), "--report"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 3 and "python -m compute describe" in r.stderr and "Traceback" not in r.stderr
