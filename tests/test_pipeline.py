"""compute/pipeline.py: the compute stage as a whole (cache hits, broken entries)."""
from __future__ import annotations

import numpy as np
import torch

from studio import cache
from studio.scene import load_scene
from tests.conftest import write_scene

TINY = """
landscape:
  data: {name: spirals, samples: 64}
  model: {name: mlp, widths: [4]}
  train: {steps: 10, snapshots: 4}
  grid: {resolution: [6, 5], eval_samples: 32}
"""


def test_a_truncated_entry_is_not_a_cache_hit(tmp_path, capfd):
    from compute.pipeline import run
    torch.set_num_threads(1)
    scene = load_scene(write_scene(tmp_path, TINY))
    root = tmp_path / "cache"
    entry = run(scene, root, device="cpu", progress=False)
    good = np.load(entry / "loss.npy").copy()
    capfd.readouterr()
    run(scene, root, device="cpu", progress=False)
    assert "nothing to do" in capfd.readouterr().err
    data = (entry / "loss.npy").read_bytes()
    (entry / "loss.npy").write_bytes(data[:len(data) - 40])          # cut short, as by a full disk
    assert cache.problem(root, scene.cache_key()) is not None
    run(scene, root, device="cpu", progress=False)
    err = capfd.readouterr().err
    assert "loss.npy" in err or "not readable" in err, err
    assert "computing it again" in err and "cache hit" not in err
    assert np.array_equal(np.load(entry / "loss.npy"), good)          # recomputed, the same grid
