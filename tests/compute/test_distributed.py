"""compute/distributed.py: torchrun's processes (gloo, CPU) make the landscape one process makes:
bit for bit with equal thread counts, to float32 rounding as documented (torchrun gives each
process one thread, a plain run uses every core)."""
import subprocess
import sys

import numpy as np
import pytest

from studio import cache
from studio.scene import load_scene
from tests.conftest import ROOT, process_env, torchrun_compute

SCENE = """
landscape:
  data: {samples: 256}
  model: {widths: [16, 16]}
  train: {steps: 80, snapshots: 20}
  grid: {resolution: [48, 37], eval_samples: 128}
  descents:
    - {name: sgd, optimizer: sgd, lr: 0.5, start: [0.0, 0.0], steps: 20}
"""


@pytest.mark.slow
def test_two_processes_make_the_same_entry(tmp_path):
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    one, two = tmp_path / "one", tmp_path / "two"
    r = subprocess.run([sys.executable, "-m", "compute", str(scene), "--cache-dir", str(one), "--quiet",
                        "--device", "cpu"], cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = torchrun_compute(scene, two, "--device", "cpu")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "grid on 2 processes" in r.stderr
    sc = load_scene(scene)
    key = sc.cache_key()
    a = cache.read(one, key, descents=sc.landscape.descents)
    b = cache.read(two, key, descents=sc.landscape.descents)
    assert np.array_equal(a.loss, b.loss, equal_nan=True)
    assert np.isfinite(a.loss).all()
    np.testing.assert_array_equal(a.alpha, b.alpha)
    np.testing.assert_array_equal(a.beta, b.beta)
    for name in ("training", "sgd"):
        np.testing.assert_array_equal(a.paths[name].xy, b.paths[name].xy)
        np.testing.assert_array_equal(a.paths[name].loss, b.paths[name].loss)
    # only rank 0 wrote: one finished entry, no partial or temporary directories left
    assert sorted(p.name for p in two.iterdir()) == sorted([key, "models"])
    assert [p.name for p in (two / "models").iterdir()] == [sc.train_key()]


COMPILED = SCENE.replace("grid: {resolution: [48, 37], eval_samples: 128}",
                         "grid: {resolution: [250, 200], eval_samples: 128}")   # 50,000 points: compiled


@pytest.mark.slow
def test_the_documented_commands_agree_to_float32_rounding(tmp_path):
    """README's commands as a user runs them: `python -m compute` with every core, and `torchrun
    --nproc_per_node=2` (one thread a process), on a grid large enough to be compiled."""
    scene = tmp_path / "s.yaml"
    scene.write_text(COMPILED)
    one, two = tmp_path / "one", tmp_path / "two"
    r = subprocess.run([sys.executable, "-m", "compute", str(scene), "--cache-dir", str(one), "--quiet"],
                       cwd=ROOT, env=process_env(None), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = torchrun_compute(scene, two, threads=None, timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    key = load_scene(scene).cache_key()
    a, b = cache.read(one, key), cache.read(two, key)
    assert a.meta["engine"]["compiled"] and b.meta["engine"]["compiled"]
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-5, atol=0)
    np.testing.assert_allclose(b.paths["training"].xy, a.paths["training"].xy, rtol=1e-4, atol=1e-6)
