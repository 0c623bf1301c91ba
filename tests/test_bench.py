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
                      "<!-- bench:render:start -->\nold\n<!-- bench:render:end -->\n")
    out = _run("compute.bench", "--readme", str(readme), tmp=tmp_path)
    assert "| compute |" in out
    _run("render.bench", "--sizes", "720p", "--readme", str(readme), tmp=tmp_path)
    rows = json.loads((tmp_path / "bench.json").read_text())
    compute = [r for r in rows if r["stage"] == "compute"]
    render = [r for r in rows if r["stage"] == "render"]
    assert {r["method"] for r in compute} >= {"loop", "engine", "engine+compile", "vmap"}
    for r in compute:
        assert {"model", "method", "device", "points_per_s", "baseline", "ratio"} <= r.keys()
        assert r["points_per_s"] > 0 and r["baseline"] == "loop"
        assert 0 < r["peak_fraction"]
    loops = [r for r in compute if r["method"] == "loop"]
    assert all(r["ratio"] == pytest.approx(1.0) for r in loops) and len(loops) == 3
    assert {r["method"].split(" (")[0] for r in render} >= {"points", "vispy Markers", "whole film"}
    assert all(r["frames_per_s"] > 0 for r in render)
    text = readme.read_text()
    assert "old" not in text and "| compute |" in text and "| render |" in text


def test_gpu_bench_without_a_gpu_says_so_in_one_line(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    r = subprocess.run([sys.executable, "-m", "compute.bench", "--device", "cuda", "--json", str(tmp_path / "b.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("compute.bench: no CUDA device here")
    assert not (tmp_path / "b.json").exists()
