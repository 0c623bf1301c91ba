"""compute/plane/minima.py: the ``minima`` plane through three trained networks.  The plane passing exactly
through the three final weights (and no plane through networks that do not span one), its default
window (compute/plane/'s extents), a resumed compute stage finding the other runs' paths
(compute/plane/fit.py's PlaneFit), and the entry the compute stage writes for a tiny scene (three
paths ending at the three marked networks, three trained models in the store, a rerun a cache hit;
three weight files making the plane without training)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from studio.scene import load_scene
from tests.conftest import MINIMA_SCENE as TINY
from tests.conftest import plane_spec, write_scene


# --------------------------------------------------------------------------- the plane

def test_the_plane_passes_through_the_three_final_weights_exactly():
    from compute.plane.minima import minima_plane
    from compute.plane import project
    g = torch.Generator().manual_seed(0)
    finals = [torch.randn(500, generator=g) * s for s in (1.0, 1.3, 0.7)]
    origin, d1, d2 = minima_plane(finals, [{"seed": s} for s in range(3)])
    assert abs(float(d1.double().norm()) - 1) < 1e-6 and abs(float(d2.double().norm()) - 1) < 1e-6
    assert abs(float(d1.double() @ d2.double())) < 1e-6
    xy, off = project(torch.stack(finals), origin, d1, d2)
    scale = max(float(w.norm()) for w in finals)
    assert np.all(off < 1e-5 * scale), off                          # all three on the plane
    assert np.allclose(xy[0], [0, 0], atol=1e-5)
    assert np.allclose(xy[1], [float((finals[1] - finals[0]).norm()), 0], atol=1e-4)
    # true places: the plane's distances are the weight-space distances
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert abs(np.linalg.norm(xy[i] - xy[j]) - float((finals[i] - finals[j]).norm())) < 1e-3


@pytest.mark.parametrize("case", ["equal", "line", "diverged"])
def test_no_plane_through_networks_that_do_not_span_one(case):
    from compute.plane.minima import minima_plane
    from compute.plane import PlaneError
    w = torch.randn(50, generator=torch.Generator().manual_seed(1))
    v = torch.randn(50, generator=torch.Generator().manual_seed(2))
    finals = {"equal": [w, w.clone(), v], "line": [w, w + v, w + 2 * v],
              "diverged": [w, v, torch.full((50,), float("nan"))]}[case]
    with pytest.raises(PlaneError) as ei:
        minima_plane(finals, [{"seed": s} for s in (4, 5, 6)])
    msg = str(ei.value)
    assert msg.startswith("landscape.plane.seeds: ")
    assert {"equal": "seed 4 and seed 5 have the same final weights", "line": "lie on one line",
            "diverged": "seed 6 diverged"}[case] in msg, msg


def test_the_default_window_is_a_square_around_the_three():
    from compute.plane import extents
    marks = np.array([[0.0, 0.0], [60.0, 0.0], [30.0, 50.0]])
    (a0, a1), (b0, b1) = extents(plane_spec(method="minima", margin=0.25), np.array([[30.0, 200.0]]), marks)
    assert np.isclose(a1 - a0, b1 - b0) and np.isclose(a1 - a0, 60 * 1.5)
    assert a0 < 0 and a1 > 60 and b0 < 0 and b1 > 50
    assert extents(plane_spec(method="minima", margin=0.25, span=5.0), None, marks) == ((-5.0, 5.0), (-5.0, 5.0))


def test_a_resumed_compute_stage_finds_the_other_runs_paths(tmp_path):
    from compute.plane.fit import PlaneFit
    extra = {"training_2": {"xy": np.ones((4, 2)), "offplane": np.arange(4.0), "loss": np.full(4, 0.5),
                            "step": np.arange(4, dtype=np.int64) * 10}}
    from compute.plane import Plane
    layout = {"w": torch.zeros(2, 2), "b": torch.zeros(1)}
    plane = Plane.from_flat(layout, torch.arange(5.0), torch.ones(5), -torch.ones(5))
    fit = PlaneFit(plane, {"marks": []}, np.zeros((4, 2)), np.zeros(4), [[-1.0, 1.0], [-1.0, 1.0]], extra)
    fit.save(tmp_path / "plane.pt")
    back = PlaneFit.read(tmp_path / "plane.pt", layout)
    assert torch.equal(back.plane.origin["w"], torch.arange(4.0).view(2, 2)) and back.plane.d2["b"].item() == -1
    assert list(back.extra_paths) == ["training_2"]
    for k, v in extra["training_2"].items():
        assert np.array_equal(back.extra_paths["training_2"][k], v) and back.extra_paths["training_2"][k].dtype == v.dtype


# --------------------------------------------------------------------------- the compute stage

@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory):
    from compute.pipeline import run
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("minima")
    scene = load_scene(write_scene(tmp, TINY))
    root = tmp / "cache"
    return scene, root, run(scene, root, device="cpu", progress=False)


def test_the_entry_holds_three_paths_ending_at_the_three_marked_networks(tiny_entry):
    from studio import cache
    scene, root, entry = tiny_entry
    ls = cache.read(root, scene.cache_key())
    plane = ls.meta["plane"]
    assert plane["method"] == "minima" and plane["seeds"] == [3, 1, 2]
    assert sorted(ls.paths) == ["training", "training_2", "training_3"]
    marks = plane["marks"]
    assert [m["seed"] for m in marks] == [3, 1, 2] and [m["label"] for m in marks] == ["seed 3", "seed 1", "seed 2"]
    assert [m["path"] for m in marks] == ["training", "training_2", "training_3"]
    assert marks[0]["xy"] == [0.0, 0.0] and abs(marks[1]["xy"][1]) < 1e-6
    for m in marks:
        p = ls.paths[m["path"]]
        assert np.allclose(p.xy[-1], m["xy"], atol=1e-6)              # the path ends at its network
        assert m["offplane"] < 1e-4 and p.offplane[-1] < 1e-4           # which lies on the plane
        assert abs(p.loss[-1] - m["eval_loss"]) < 1e-9
        assert abs(p.surface_loss[-1] - m["eval_loss"]) < 1e-3 * max(m["eval_loss"], 1)   # the grid agrees there
        (a0, a1), (b0, b1) = plane["extent"]
        assert a0 < m["xy"][0] < a1 and b0 < m["xy"][1] < b1         # inside the window
    assert set(plane["distances"]) == {"1-2", "1-3", "2-3"}
    assert ls.meta["training"]["train_key"] == marks[0]["train_key"]
    assert len({m["train_key"] for m in marks}) == 3


def test_the_three_runs_are_in_the_model_store_and_a_rerun_is_a_cache_hit(tiny_entry, capfd):
    from compute.pipeline import run
    from studio import cache
    scene, root, entry = tiny_entry
    marks = json.loads((entry / "meta.json").read_text())["plane"]["marks"]
    assert all(cache.has_model(root, m["train_key"]) for m in marks)
    capfd.readouterr()
    run(scene, root, device="cpu", progress=False)
    assert "nothing to do" in capfd.readouterr().err


def test_three_weight_files_make_the_plane_without_training(tmp_path, monkeypatch):
    from compute.models import build_model
    from compute.pipeline import run
    from studio import cache
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)                      # weight files are named from the working directory
    model_spec = load_scene(write_scene(tmp_path, TINY)).landscape.model
    names = []
    for k, name in enumerate(("left", "right", "top")):        # three networks, untrained but distinct
        torch.manual_seed(10 + k)
        torch.save(build_model(model_spec, (2,), 2).state_dict(), tmp_path / f"{name}.pt")
        names.append(f"{name}.pt")
    text = TINY.replace("  train: {steps: 40, snapshots: 6, lr: 0.05}\n", f"  weights: {{files: {names}}}\n") \
               .replace("plane: {method: minima, seeds: [3, 1, 2]}", "plane: {method: minima}")
    scene = load_scene(write_scene(tmp_path, text, "files.yaml"))
    entry = run(scene, tmp_path / "cache", device="cpu", progress=False)
    ls = cache.read(tmp_path / "cache", scene.cache_key())
    marks = ls.meta["plane"]["marks"]
    assert [m["label"] for m in marks] == ["left", "right", "top"] and [m["file"] for m in marks] == names
    assert "seeds" not in ls.meta["plane"] and ls.paths == {}          # one set of weights each: no paths
    assert all(m["offplane"] < 1e-4 for m in marks) and marks[0]["xy"] == [0.0, 0.0]
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())
    assert entry.is_dir()
