"""The benchmarks run (quick mode) and write the rows a script can check."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _run(module, *args, tmp):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", module, "--quick", "--json", str(tmp / "bench.json"), *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_compute_and_render_benches_write_their_rows(tmp_path, gl):
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- bench:compute:start -->\nold\n<!-- bench:compute:end -->\n"
                      "<!-- bench:compute-targets:start -->\nold\n<!-- bench:compute-targets:end -->\n"
                      "<!-- bench:compute-profile:start -->\nold\n<!-- bench:compute-profile:end -->\n"
                      "<!-- bench:render:start -->\nold\n<!-- bench:render:end -->\n")
    out = _run("compute.bench", "--readme", str(readme), "--profile", tmp=tmp_path)
    assert "| loop (loop) |" in out and "| matmul / convolution | loss |" in out and "÷ studio classes+compile" in out
    _run("render.bench", "--sizes", "720p", "--readme", str(readme), tmp=tmp_path)
    rows = json.loads((tmp_path / "bench.json").read_text())
    compute = [r for r in rows if r["stage"] == "compute"]
    render = [r for r in rows if r["stage"] == "render"]
    assert {r["method"] for r in compute} >= {"loop", "engine", "engine+compile", "vmap", "graph", "studio classes"}
    for r in compute:
        assert {"model", "method", "device", "points_per_s", "baseline", "ratio", "ratio_spread", "peer_ratio"} <= r.keys()
        assert r["points_per_s"] > 0 and r["baseline"] == "loop"
        assert r["ratio_spread"][0] <= r["ratio"] <= r["ratio_spread"][1] and 0 < r["peak_fraction"]
    loops = [r for r in compute if r["method"] == "loop"]
    assert all(r["ratio"] == pytest.approx(1.0) for r in loops) and len(loops) == 6
    # the general path runs the user's networks, and the targets are ratios of this run
    general = {r["model"].split(" ")[0]: r["detail"] for r in compute if r["method"] == "engine"}
    assert all(general[k].startswith("graph") for k in ("user's", "resnet-20", "charlm")), general
    # the two targets over the loss-landscapes peer are measured only where it is installed
    from compute.bench.timing import peer_available
    goals = [r for r in rows if r["stage"] == "compute-targets"]
    assert len(goals) == (6 if peer_available() else 4) and all(g["spread"][0] <= g["ratio"] <= g["spread"][1] for g in goals)
    assert {r["method"].split(" (")[0] for r in render} >= {"points", "vispy Markers", "whole film"}
    assert all(r["frames_per_s"] > 0 for r in render)
    text = readme.read_text()
    assert "old" not in text and "| loop (loop) |" in text and "| render |" in text and "÷ loop |" in text
    assert "| linear, compiled," in text and "| conv, compiled," in text and "| graph, compiled," in text


def test_the_effects_table_adds_one_effect_at_a_time(gl):
    """render.bench --effects: one row per look of EFFECTS, the last the full look, each a frame's GL
    and finishing time and its CPU, against the surface's.  Structure and consistency only: which
    effect costs more is a timing, and timings flake on shared cores."""
    import math

    from render.bench import EFFECTS, FULL_LOOK, effects_table, synthetic, time_effects
    assert EFFECTS[-1][1] == FULL_LOOK and EFFECTS[0][1] == {}
    # each look is the one before with one more setting, the earlier ones unchanged
    for (_, before), (name, after) in zip(EFFECTS, EFFECTS[1:]):
        added = set(after) - set(before)
        assert len(added) == 1 and {k: after[k] for k in before} == before, name
    rows = time_effects(synthetic(80), 320, 180, 1, 1)
    assert [r["method"] for r in rows] == [name for name, _ in EFFECTS]
    assert all(r["stage"] == "render-effects" and r["model"] == "1M points, 320x180" for r in rows)
    for r in rows:
        assert all(math.isfinite(r[k]) and r[k] > 0 for k in ("ms_draw", "ms_finish", "ms_cpu")), r
        assert r["cpu_vs_surface"] == pytest.approx(r["ms_cpu"] / rows[0]["ms_cpu"], rel=1e-12)
    assert rows[0]["cpu_vs_surface"] == 1.0
    lines = effects_table(rows).splitlines()
    assert len(lines) == len(rows) + 2
    for r, line in zip(rows, lines[2:]):
        assert line.startswith(f"| {r['method']} | {r['model']} | {r['ms_draw']:.0f} | {r['ms_finish']:.0f} | ")
        assert line.endswith(f"| {r['cpu_vs_surface']:.2f} |")


def test_gpu_bench_without_a_gpu_says_so_in_one_line(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    r = subprocess.run([sys.executable, "-m", "compute.bench", "--device", "cuda", "--json", str(tmp_path / "b.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("compute.bench: no CUDA device here")
    assert not (tmp_path / "b.json").exists()


def _fake_peer(monkeypatch, calls):
    """A stand-in for the loss-landscapes package that records how it is called."""
    import types

    import numpy as np
    pkg = types.ModuleType("loss_landscapes")
    metrics = types.ModuleType("loss_landscapes.metrics")
    metrics.Loss = lambda fn, x, y: (fn, x, y)

    def random_plane(model, metric, distance=1, steps=20, normalization="filter", deepcopy_model=False):
        calls.append(steps)
        return np.zeros((steps, steps))

    pkg.random_plane, pkg.metrics = random_plane, metrics
    monkeypatch.setitem(sys.modules, "loss_landscapes", pkg)
    monkeypatch.setitem(sys.modules, "loss_landscapes.metrics", metrics)


def test_the_peer_is_called_as_its_users_call_it(monkeypatch):
    """A grid of at least 25 x 25 points a call (its users ask for 25 to 100 steps a side): with
    6 x 6 its per-call setup was most of what was timed.  Its points are counted as steps^2."""
    import torch

    from compute import bench
    from compute.bench.timing import peer_method
    from compute.data import spirals
    from compute.models import mlp
    calls = []
    _fake_peer(monkeypatch, calls)
    torch.manual_seed(0)
    x, y = spirals(64)
    m = peer_method(mlp(2, [4], 2, "tanh"), x, y, torch.device("cpu"), bench.PEER_STEPS)
    points, _ = m.run(0.01)
    assert bench.PEER_STEPS >= 25 and set(calls) == {bench.PEER_STEPS}
    assert points == len(calls) * bench.PEER_STEPS ** 2
    assert f"steps={bench.PEER_STEPS}: {bench.PEER_STEPS ** 2:,} points a call" in m.detail


def test_ratios_are_taken_round_by_round_and_reported_with_their_spread():
    """A ratio's median and spread over the rounds: a round where the whole machine was slow (both
    methods at half speed) does not move it."""
    from compute.bench.timing import Method, ratio
    loop = Method(None, "loop", rates=[100.0, 50.0, 100.0, 100.0])
    engine = Method(None, "engine", rates=[400.0, 200.0, 380.0, 420.0])
    assert ratio(engine, loop) == (4.0, 3.8, 4.2)


def test_the_tables_give_ratios_with_their_spread_and_the_targets():
    from compute import bench
    row = {"stage": "compute", "model": "m", "method": "engine", "detail": "linear, chunk 8", "device": "cpu",
           "points_per_s": 9000.0, "ratio": 4.0, "ratio_spread": [3.5, 4.4], "peer_ratio": 3.0,
           "peer_ratio_spread": [2.9, 3.1], "peak_fraction": 0.5}
    loop = dict(row, method="loop", detail="loop", points_per_s=2250.0, ratio=1.0, ratio_spread=[1.0, 1.0],
                peer_ratio=0.75, peer_ratio_spread=[0.7, 0.8])
    text = bench.table([loop, row, dict(row, peer_ratio=None)])
    lines = text.splitlines()
    assert "× loop [min–max] | × loss-landscapes [min–max] |" in lines[0]
    assert lines[3].endswith("| 9,000 | 4.00 [3.50–4.40] | 3.00 [2.90–3.10] | 50.0% |")
    assert lines[4].endswith("| 9,000 | 4.00 [3.50–4.40] |  | 50.0% |")             # no peer measured
    goals = [{"model": "r", "method": "engine+compile", "over": "loop", "ratio": 1.3, "spread": [1.2, 1.4],
              "goal": 3.0, "met": False}]
    assert bench.target_table(goals).splitlines()[2] == "| r | engine+compile ÷ loop | 1.30 [1.20–1.40] | ≥ 3 (not met) |"
    prof = {"m": {"method": "conv", "chunk": 8, "compiled": True, "ms": 10.0,
                  "parts": {"matmul / convolution": 8.0, "loss": 0.5, "other fused kernels": 1.0, "rest": 0.5}}}
    lines = bench.profile_table(prof).splitlines()
    assert lines[2] == "| m | conv, compiled, 8 | 10.00 | 80% | 5% | 10% | 5% |"
