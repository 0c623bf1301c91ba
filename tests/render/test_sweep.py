"""studio/scene/sweep.py and render/sweep.py: one landscape key over values and moments; one cache
entry per panel, shared scales, a diverging panel drawn as such, and one-line errors."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from studio import cache
from studio.scene import load_scene
from tests.conftest import cli_error, torchrun_compute, write_scene

SWEEP = """
landscape:
  data: {name: regression, function: chirp, samples: 64}
  model: {name: mlp, widths: [8]}
  loss: mse
  train: {optimizer: sgd, lr: 0.01, steps: 40, snapshots: 6}
  plane: {method: random}
  grid: {resolution: [6, 5], eval_samples: 32}
  figures: {convexity_k: 3, trace_samples: 8, iterations: 10, hessian_budget: 100}
sweep: {key: train.lr, values: [0.01, 10], moments: [init, 20, end]}
render: {size: [320, 180], duration: 4}
"""


def test_a_sweep_is_one_panel_per_value_and_moment(tmp_path):
    scene = load_scene(write_scene(tmp_path, SWEEP))
    panels = scene.sweep_panels()
    assert [(v, m) for _, _, v, m in panels] == [(0.01, "init"), (0.01, 20), (0.01, "end"),
                                                 (10, "init"), (10, 20), (10, "end")]
    assert [sc.landscape.train.lr for _, sc, _, _ in panels] == [0.01] * 3 + [10] * 3
    assert [sc.landscape.plane.at for _, sc, _, _ in panels] == [0, 20, None] * 2
    keys = {sc.cache_key() for _, sc, _, _ in panels}
    assert len(keys) == 6                                         # every panel its own entry
    assert len({sc.train_key() for _, sc, _, _ in panels}) == 2   # one training run a value
    assert panels[0][0] == "train.lr = 0.01, at initialization"


@pytest.mark.slow
def test_a_sweep_computes_and_a_diverging_panel_renders(tmp_path, gl):
    # computed in one process, then filmed: the gallery film, sheet, table and chart
    p = write_scene(tmp_path, SWEEP)
    env = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 600}
    r = subprocess.run([sys.executable, "-m", "compute", str(p), "--quiet"], **env)
    assert r.returncode == 0, r.stderr
    scene = load_scene(p)
    entries = {(v, m): cache.read(tmp_path / "cache", sc.cache_key()) for _, sc, v, m in scene.sweep_panels()}
    # the moment is the plane's origin: the training path crosses (0, 0) at that step
    e = entries[(0.01, 20)]
    i = list(e.paths["training"].step).index(e.meta["plane"]["origin_step"])
    np.testing.assert_allclose(e.paths["training"].xy[i], [0, 0], atol=1e-6)
    assert e.meta["plane"]["origin_step"] == min(e.paths["training"].step, key=lambda s: abs(s - 20))
    # lr 10 diverges: its final landscape is NaN, said so, and nothing crashed
    end = entries[(10, "end")]
    assert not np.isfinite(end.loss).any() and end.meta["plane"].get("diverged")
    assert cache.read_figures(tmp_path / "cache", end.key)[0]["figures"] is None
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--fps", "5"], **env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    # the gallery film: the two values side by side, one page a moment (render/compare.py)
    from render.writer import probe
    assert probe(out / "scene.mp4") == {"codec": "h264", "pix_fmt": "yuv420p", "width": 320, "height": 180,
                                        "frames": 20}
    rows = list(csv.DictReader(open(out / "scene_figures.csv")))
    assert [(r["value"], r["moment"]) for r in rows] == [("0.01", "init"), ("0.01", "20"), ("0.01", "end"),
                                                         ("10", "init"), ("10", "20"), ("10", "end")]
    assert rows[-1]["diverged"] == "True" and rows[0]["diverged"] == "False" and float(rows[0]["top_eigenvalue"]) > 0
    assert json.loads((out / "scene_figures.json").read_text())[0]["key"] == "train.lr"
    from PIL import Image
    sheet = np.asarray(Image.open(out / "scene_sheet.png").convert("RGB"), dtype=np.float64)
    assert sheet.std() > 10                                       # drawn, not blank
    assert (out / "scene_chart.png").stat().st_size > 10_000


def test_shared_scales_over_the_panels(tmp_path):
    """The sheet's panels take one scale from every finite panel (studio/scale.py: shared_scales)."""
    from studio.scale import shared_scales
    from tests.conftest import synthetic_landscape
    a, b = synthetic_landscape("a"), synthetic_landscape("b")
    b = cache.Landscape("b", np.asarray(b.loss) * 3, b.alpha, b.beta)
    scene = load_scene(write_scene(tmp_path, SWEEP))
    hm, _ = shared_scales([a, b], scene.render.look)
    ha, _ = shared_scales([a], scene.render.look)
    assert hm.hi > ha.hi and hm.lo == ha.lo  # the higher panel raises the top of the shared scale


@pytest.mark.parametrize("sweep, piece", [
    ("{key: train.lrr, values: [0.1, 1]}", "sweep.key: 'train.lrr' is not a key of the landscape section"),
    ("{key: train.lr, values: []}", "sweep.values: bad value []"),
    ("{key: train.lr, values: [" + ", ".join(str(0.01 * (i + 1)) for i in range(17)) + "]}", "sweep.values"),
    ("{key: render.size, values: [[64, 64]]}", "a sweep varies a key of the landscape section"),
    ("{key: train.lr, values: [0.1, -1]}", "sweep.values: -1 is not a value landscape.train.lr takes"),
])
def test_a_sweeps_bad_input_is_one_line(tmp_path, sweep, piece):
    text = SWEEP.replace("sweep: {key: train.lr, values: [0.01, 10], moments: [init, 20, end]}", f"sweep: {sweep}")
    msg = cli_error(tmp_path, write_scene(tmp_path, text))
    assert piece in msg, msg


@pytest.mark.slow
def test_a_sweeps_panels_spread_over_processes(tmp_path, torch_one_thread):
    """Under torchrun each panel's rows are shared out like a single grid's: every panel's entry equals
    the one-process run's (one thread per process in both, so the rounding is the same)."""
    from compute.__main__ import main
    p = write_scene(tmp_path, SWEEP.replace("values: [0.01, 10], moments: [init, 20, end]",
                                            "values: [0.01, 0.1], moments: [init, end]"))
    r = torchrun_compute(p, tmp_path / "two", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("grid on 2 processes") == 4 and "panel 4/4" in r.stderr
    assert main([str(p), "--cache-dir", str(tmp_path / "one"), "--quiet", "--device", "cpu"]) == 0
    for _, sc, _, _ in load_scene(p).sweep_panels():
        a, b = cache.read(tmp_path / "one", sc.cache_key()), cache.read(tmp_path / "two", sc.cache_key())
        assert np.array_equal(a.loss, b.loss, equal_nan=True)
