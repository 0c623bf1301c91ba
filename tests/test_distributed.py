"""torchrun: two processes (gloo, CPU) produce the same cache entry as one."""
import os
import subprocess
import sys

import numpy as np
import pytest

from studio import cache
from studio.scene import load_scene
from tests.conftest import ROOT

SCENE = """
landscape:
  data: {samples: 256}
  model: {widths: [16, 16]}
  train: {steps: 80, snapshots: 20}
  grid: {resolution: [48, 37], eval_samples: 128}
  descents:
    - {name: sgd, optimizer: sgd, lr: 0.5, start: [0.0, 0.0], steps: 20}
"""


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


@pytest.mark.slow
def test_two_processes_make_the_same_entry(tmp_path):
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    one, two = tmp_path / "one", tmp_path / "two"
    r = subprocess.run([sys.executable, "-m", "compute", str(scene), "--cache-dir", str(one), "--quiet",
                        "--device", "cpu"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "compute", str(scene), "--cache-dir", str(two), "--quiet", "--device", "cpu"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
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
