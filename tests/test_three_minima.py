"""The ``minima`` plane (compute/minima.py, render/marks.py): the plane through three trained
networks.  Its scene errors, its cache key, the plane passing exactly through the three final
weights, the entry the compute stage writes for a tiny scene (three paths ending at the three marked
networks, three trained models in the store, a rerun a cache hit), and the film's marks."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.scene import SceneError, load_scene, scene_from_dict

ROOT = Path(__file__).resolve().parent.parent

#: the smallest scene that trains three networks and samples a grid on their plane
TINY = """
landscape:
  data: {name: spirals, samples: 64}
  model: {name: mlp, widths: [6]}
  train: {steps: 40, snapshots: 6, lr: 0.05}
  plane: {method: minima, seeds: [3, 1, 2]}
  grid: {resolution: [9, 8], eval_samples: 32}
  figures: {hessian: false}
"""


def write(tmp_path: Path, text: str, name: str = "scene.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(SceneError) as ei:
        load_scene(write(tmp_path, text))
    msg = str(ei.value)
    assert "\n" not in msg, msg
    return msg


# --------------------------------------------------------------------------- the scene

BAD = {
    "two_seeds": ("landscape:\n  plane: {method: minima, seeds: [0, 1]}\n",
                  ["scene.yaml:2:", "landscape.plane.seeds: bad value [0, 1]", "3 training seeds", "got 2"]),
    "four_seeds": ("landscape:\n  plane:\n    method: minima\n    seeds: [0, 1, 2, 3]\n",
                   ["scene.yaml:4:", "landscape.plane.seeds", "got 4"]),
    "duplicate": ("landscape:\n  plane: {method: minima, seeds: [4, 1, 4]}\n",
                  ["landscape.plane.seeds: bad value [4, 1, 4]", "4 is given twice"]),
    "no_seeds": ("landscape:\n  plane: {method: minima}\n",
                 ["needs plane.seeds", "seeds: [0, 1, 2]", "landscape.weights.files"]),
    "seeds_elsewhere": ("landscape:\n  plane: {method: pca, seeds: [0, 1, 2]}\n",
                        ["landscape.plane:", "seeds are for the method 'minima'", "not 'pca'"]),
    "train_seed": ("landscape:\n  train: {seed: 5}\n  plane: {method: minima, seeds: [0, 1, 2]}\n",
                   ["train.seed (5) is set by plane.seeds", "remove train.seed"]),
    "plane_seed": ("landscape:\n  plane: {method: minima, seeds: [0, 1, 2], seed: 3}\n",
                   ["landscape.plane:", "seed (3) seeds random directions", "remove seed"]),
    "at": ("landscape:\n  plane: {method: minima, seeds: [0, 1, 2], at: 100}\n",
           ["at (a moment of training)", "'minima' places its origin on the first network"]),
    "checkpoints": ("landscape:\n  plane: {method: minima, seeds: [0, 1, 2], checkpoints: [0, 10]}\n",
                    ["checkpoints are for the methods", "not 'minima'"]),
    "sequence": ("landscape:\n  plane: {method: minima, seeds: [0, 1, 2]}\n  sequence: {count: 4}\n",
                 ["a sequence follows one network's training", "remove landscape.sequence"]),
    "seeds_and_weights": ("landscape:\n  weights: {files: [a.pt, b.pt, c.pt]}\n"
                          "  plane: {method: minima, seeds: [0, 1, 2]}\n",
                          ["plane.seeds train the three networks here", "remove one of them"]),
    "two_files": ("landscape:\n  weights: {files: [a.pt, b.pt]}\n  plane: {method: minima}\n",
                  ["with landscape.weights takes files: a list of exactly 3 weight files"]),
    "a_glob": ("landscape:\n  weights: {files: 'runs/*.pt'}\n  plane: {method: minima}\n",
               ["a list of exactly 3 weight files"]),
    "unknown_path": ("landscape:\n  plane: {method: pca}\nrender:\n  paths: {training_2: {}}\n",
                     ["scene.yaml:4:", "unknown path 'training_2'", "allowed: 'training' and the names"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_minima_scenes_are_one_clear_line(tmp_path, case):
    text, parts = BAD[case]
    msg = error(tmp_path, text)
    assert msg.startswith(str(tmp_path / "scene.yaml")), msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_a_minima_scene_may_draw_and_follow_its_three_paths(tmp_path):
    scene = load_scene(write(tmp_path, TINY + "render:\n  paths: {training: {}, training_2: {}, training_3: {}}\n"
                                              "  camera:\n    - {shot: follow, path: training_3, from: 0, to: 4}\n"))
    assert list(scene.render.paths) == ["training", "training_2", "training_3"]
    msg = error(tmp_path, TINY + "render:\n  paths: {training_4: {}}\n")
    assert "unknown path 'training_4'" in msg and "'training', 'training_2', 'training_3'" in msg, msg


def test_the_cache_key_covers_the_seeds_and_their_order():
    def key(seeds, **plane):
        return scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": seeds, **plane}}}).cache_key()
    keys = {key([0, 1, 2]), key([0, 1, 3]), key([1, 0, 2]), key([0, 1, 2], margin=0.5)}
    assert len(keys) == 4                        # the first seed is the origin: the order matters
    # a scene that leaves the new keys out keeps its key (tests/test_scene_keys.py has the shipped ones)
    assert scene_from_dict({}).cache_key() == "157f92f12f3070b4"


def test_each_network_trains_under_the_train_key_of_its_seed():
    from compute.minima import seed_scene
    scene = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 7, 2]}}})
    assert seed_scene(scene, 0).train_key() == scene_from_dict({}).train_key()      # shares the default run
    assert seed_scene(scene, 7).train_key() == \
        scene_from_dict({"landscape": {"train": {"seed": 7}}}).train_key()


# --------------------------------------------------------------------------- the plane

def test_the_plane_passes_through_the_three_final_weights_exactly():
    from compute.minima import minima_plane
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
    from compute.minima import minima_plane
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
    (a0, a1), (b0, b1) = extents({"method": "minima", "margin": 0.25}, np.array([[30.0, 200.0]]), marks)
    assert np.isclose(a1 - a0, b1 - b0) and np.isclose(a1 - a0, 60 * 1.5)
    assert a0 < 0 and a1 > 60 and b0 < 0 and b1 > 50
    assert extents({"method": "minima", "margin": 0.25, "span": 5.0}, None, marks) == ((-5.0, 5.0), (-5.0, 5.0))


def test_a_resumed_compute_stage_finds_the_other_runs_paths(tmp_path):
    from compute.placing import PlaneFit
    extra = {"training_2": {"xy": np.ones((4, 2)), "offplane": np.arange(4.0), "loss": np.full(4, 0.5),
                            "step": np.arange(4, dtype=np.int64) * 10}}
    fit = PlaneFit(torch.zeros(5), torch.ones(5), torch.ones(5), {"marks": []}, np.zeros((4, 2)), np.zeros(4),
                   [[-1.0, 1.0], [-1.0, 1.0]], extra)
    fit.save(tmp_path / "plane.pt")
    back = PlaneFit.read(tmp_path / "plane.pt")
    assert list(back.extra_paths) == ["training_2"]
    for k, v in extra["training_2"].items():
        assert np.array_equal(back.extra_paths["training_2"][k], v) and back.extra_paths["training_2"][k].dtype == v.dtype


# --------------------------------------------------------------------------- the compute stage

@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory):
    from compute.pipeline import run
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("minima")
    scene = load_scene(write(tmp, TINY))
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
    model_spec = load_scene(write(tmp_path, TINY)).landscape_dict()["model"]
    names = []
    for k, name in enumerate(("left", "right", "top")):        # three networks, untrained but distinct
        torch.manual_seed(10 + k)
        torch.save(build_model(model_spec, (2,), 2).state_dict(), tmp_path / f"{name}.pt")
        names.append(f"{name}.pt")
    text = TINY.replace("  train: {steps: 40, snapshots: 6, lr: 0.05}\n", f"  weights: {{files: {names}}}\n") \
               .replace("plane: {method: minima, seeds: [3, 1, 2]}", "plane: {method: minima}")
    scene = load_scene(write(tmp_path, text, "files.yaml"))
    entry = run(scene, tmp_path / "cache", device="cpu", progress=False)
    ls = cache.read(tmp_path / "cache", scene.cache_key())
    marks = ls.meta["plane"]["marks"]
    assert [m["label"] for m in marks] == ["left", "right", "top"] and [m["file"] for m in marks] == names
    assert "seeds" not in ls.meta["plane"] and ls.paths == {}          # one set of weights each: no paths
    assert all(m["offplane"] < 1e-4 for m in marks) and marks[0]["xy"] == [0.0, 0.0]
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())
    assert entry.is_dir()


# --------------------------------------------------------------------------- the film

def _minima_landscape(scene, nx=60, ny=60):
    from studio.cache import Landscape, Path2D
    alpha, beta = np.linspace(-20, 80, nx), np.linspace(-20, 80, ny)
    A, B = np.meshgrid(alpha, beta)
    places = [(0.0, 0.0), (60.0, 0.0), (30.0, 52.0)]
    loss = 2.0 - sum(1.9 * np.exp(-((A - a) ** 2 + (B - b) ** 2) / 150) for a, b in places)
    paths, marks = {}, []
    for k, (name, (a, b)) in enumerate(zip(("training", "training_2", "training_3"), places)):
        t = np.linspace(0, 1, 20)[:, None]
        xy = (1 - t) * np.array([30.0, 17.0]) + t * np.array([a, b])
        paths[name] = Path2D(name, xy, np.linspace(1, 0.1, 20), np.linspace(1, 0.1, 20), np.linspace(9, 0, 20),
                             np.arange(20) * 5)
        marks.append({"seed": k, "label": f"seed {k}", "path": name, "xy": [a, b], "eval_loss": 0.1})
    meta = {"plane": {"method": "minima", "marks": marks}, "training": {"source": "trained"}}
    return Landscape(scene.cache_key(), loss.astype(np.float32), alpha, beta, paths, meta)


def test_a_minima_film_draws_all_three_trails_by_default():
    from render.marks import MINIMA_COLORS, with_minima_paths
    scene = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}}})
    ls = _minima_landscape(scene)
    filmed = with_minima_paths(scene, ls.meta)
    assert list(filmed.render.paths) == ["training", "training_2", "training_3"]
    assert [s.color for s in filmed.render.paths.values()] == list(MINIMA_COLORS)
    assert [s.label for s in filmed.render.paths.values()] == ["seed 0", "seed 1", "seed 2"]
    own = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}},
                           "render": {"paths": {"training_2": {}}}})
    assert with_minima_paths(own, ls.meta) is own                    # the scene's own choice stands
    assert with_minima_paths(scene, dict(ls.meta, training={"source": "weights"})) is scene


def test_the_marks_stand_on_the_terrain_at_the_three_networks():
    from render.look import build_terrain
    from render.marks import MarkLayer, build_marks
    scene = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}}})
    ls = _minima_landscape(scene)
    terrain = build_terrain(ls, "log", 0.5, "magma", 0.5)
    marks = build_marks(scene, ls.alpha, ls.beta, ls.meta, terrain)
    assert [m.label for m in marks] == ["seed 0", "seed 1", "seed 2"]
    for m, (a, b) in zip(marks, [(0.0, 0.0), (60.0, 0.0), (30.0, 52.0)]):
        centre = m.ring[:, :2].mean(axis=0)
        assert np.allclose(centre, [(a + 20) / 100 * 2 - 1, (b + 20) / 100 * 2 - 1], atol=1e-3)
        assert np.allclose(m.stem[0, :2], centre, atol=1e-3) and m.top[2] > m.stem[0, 2]
    off = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}},
                           "render": {"marks": False}})
    assert build_marks(off, ls.alpha, ls.beta, ls.meta, terrain) == []
    # the labels: drawn once the title has gone, over the stem's top
    layer = MarkLayer(scene, ls.alpha, ls.beta, ls.meta, terrain, 360, 10.0)
    img = np.zeros((360, 640, 3), np.uint8)
    layer.draw_labels(img, np.eye(4), 0.0)
    assert img.max() == 0
    layer.draw_labels(img, np.eye(4), 9.0)
    assert img.max() > 200
    assert len(layer.sprites(9.0, 1.0)) == 4 * 3 and layer.sprites(0.0, 1.0) == []


def test_a_minima_film_frame_shows_the_marks(gl, tmp_path):
    from render.film import Film, Options
    scene = scene_from_dict({"title": "", "landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}},
                             "render": {"look": {"supersample": 1}}})
    ls = _minima_landscape(scene)
    opts = Options(320, 180, 10, 6.0)
    with Film(scene, ls, opts) as film:
        assert [t.name for t, _ in film.trails] == ["training", "training_2", "training_3"]
        with_marks = film.frame(5.5).astype(int)
    off = scene.model_copy(update={"render": scene.render.model_copy(update={"marks": False})})
    with Film(off, ls, opts) as film:
        without = film.frame(5.5).astype(int)
    assert np.abs(with_marks - without).sum(axis=2).max() > 100        # rings, stems and labels drawn
