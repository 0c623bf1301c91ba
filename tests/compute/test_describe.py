"""compute/describe.py: the figures an entry holds depend on the scene, not on the clock; describe
prints the stored ones and measures only when there are none, the options changed, or it is asked."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compute.describe import HVP_FORWARDS, hessian_plan, options_of
from studio.scene import Scene
from tests.conftest import ROOT, write_scene

#: a scene's default figures: a 5 x 5 convexity map of 10 Lanczos steps, 30 steps and 32 vectors
DEFAULTS = options_of(Scene())


def test_the_default_film_gets_every_hessian_figure():
    options, on, why = hessian_plan(DEFAULTS, 256, 1000 * 1000, 1024, 0.5)
    assert on and why is None and options == DEFAULTS


def test_a_small_grid_of_a_large_model_leaves_out_the_convexity_map_then_the_rest():
    """charlm's 120 x 120 grid on 48 sequences: the map's 500 products would cost more than half the
    grid; the 62 of the eigenvalue and the trace fit.  A 20 x 20 grid fits neither."""
    options, on, why = hessian_plan(DEFAULTS, 256, 120 * 120, 48, 0.5)
    assert on and options.convexity_k == 0 and options.iterations == DEFAULTS.iterations
    assert why.startswith("no convexity map: 500 Hessian-vector products on 256 samples")
    assert "figures.hessian_budget (0.5)" in why and "figures.convexity_k" in why
    share = 500 * HVP_FORWARDS * 256 / (120 * 120 * 48)
    assert f"{share:.2g} times the grid's 14,400 points on 48 samples" in why
    options, on, why = hessian_plan(DEFAULTS, 256, 20 * 20, 48, 0.5)
    assert not on and why.startswith("no Hessian figures: 562 Hessian-vector products")
    # a larger share, or fewer samples, brings them back; the plan is the same on every call
    assert hessian_plan(DEFAULTS, 256, 120 * 120, 48, 8.0)[1:] == (True, None)
    assert hessian_plan(DEFAULTS, 32, 120 * 120, 48, 0.5)[1:] == (True, None)
    assert hessian_plan(DEFAULTS, 256, 120 * 120, 48, 0.5) == hessian_plan(DEFAULTS, 256, 120 * 120, 48, 0.5)


def test_the_report_gives_the_true_reason_for_a_missing_map():
    from render.report import missing_convexity
    why = "no convexity map: 500 Hessian-vector products on 256 samples are 1.1 times the grid's ..."
    assert missing_convexity({"omitted": {"convexity": why}, "options": {"convexity_k": 5}}) == why
    assert missing_convexity({"omitted": {"hessian": "no Hessian figures: x"}}) == "no Hessian figures: x"
    assert "hessian: false" in missing_convexity({"omitted": {}, "options": {"hessian": False}})
    assert "convexity_k: 0" in missing_convexity({"options": {"convexity_k": 0}})


SCENE = """
landscape:
  data: {name: spirals, samples: 64}
  model: {name: mlp, widths: [6]}
  train: {steps: 20, snapshots: 4}
  grid: {resolution: [50, 50], eval_samples: 48}
  figures: {samples: 32, hessian_budget: 0.5}
"""


@pytest.mark.slow
def test_describe_prints_what_is_stored_and_measures_when_asked(tmp_path):
    """The compute stage stores the figures (here without the map: 50 x 50 points are too few for it,
    whatever the machine); describe prints them as stored, measures again only with --force or
    other options, and says why the map is missing."""
    p = write_scene(tmp_path, SCENE)
    cache_dir = tmp_path / "cache"
    run = lambda *a: subprocess.run([sys.executable, "-m", "compute", *a], cwd=ROOT, capture_output=True,  # noqa
                                    text=True, timeout=300)
    r = run(str(p), "--cache-dir", str(cache_dir))
    assert r.returncode == 0, r.stderr
    assert "figures: no convexity map:" in r.stderr and "Hessian-vector products on 32 samples, about" in r.stderr
    figures = next(cache_dir.glob("*/figures.json"))
    stored = figures.read_text()
    record = json.loads(stored)
    assert record["omitted"]["convexity"].startswith("no convexity map") and record["figures"]["top_eigenvalue"]
    r = run("describe", str(p), "--cache-dir", str(cache_dir))
    assert r.returncode == 0 and "figures measured" not in r.stderr and figures.read_text() == stored
    assert "grid evaluated by the MLP path" in r.stdout and "top Hessian eigenvalue" in r.stdout
    r = run("describe", str(p), "--cache-dir", str(cache_dir), "--force")
    assert r.returncode == 0 and "figures measured" in r.stderr
    again = json.loads(figures.read_text())
    assert again["figures"]["top_eigenvalue"] == record["figures"]["top_eigenvalue"]   # the same numbers
    # figures an earlier version stored (no version, or another) are measured again, and it says why
    figures.write_text(json.dumps({k: v for k, v in again.items() if k != "version"}))
    r = run("describe", str(p), "--cache-dir", str(cache_dir))
    assert r.returncode == 0 and "measured by an earlier version" in r.stderr and "figures measured" in r.stderr
    assert json.loads(figures.read_text())["version"] == again["version"]


def test_the_hessian_figures_raise_no_warning_of_torchs_own():
    """torch scripts its forward-AD decompositions on the first jvp and warns that torch.jit.script is
    deprecated: loaded quietly beforehand, a fresh process with warnings as errors measures a product."""
    code = ("import torch\nfrom compute.morphology import model_hvp\nfrom compute.losses import CROSS_ENTROPY\n"
            "from compute.models import mlp\nm = mlp(2, [4], 2)\nx, y = torch.randn(8, 2), torch.randint(0, 2, (8,))\n"
            "flat = torch.cat([p.detach().reshape(-1) for p in m.parameters()])\n"
            "print(model_hvp(m, x, y, CROSS_ENTROPY)(flat)(torch.ones_like(flat, dtype=torch.float64)).shape)\n")
    r = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "FutureWarning" not in r.stderr
