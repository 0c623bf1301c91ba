"""studio/scene/landscape.py and the sections it holds (studio/scene/network.py: model;
studio/scene/data.py: data; studio/scene/training.py: train), with the checks across them
(studio/scene/checks.py): one clear line for a bad model, a model on the wrong data, a bad data
set, a meaningless plane, and the train: section's schedules, snapshots and epochs (validation
only); the ``minima`` plane's scenes: its seeds, the paths it may draw, its cache key and each
network's train key.  What the compute stage does with them is the tests of compute/'s modules."""
from __future__ import annotations

import pytest

from studio.scene import SceneError, load_scene, scene_from_dict
from tests.conftest import MINIMA_SCENE as TINY
from tests.conftest import scene_error, write_scene

write = write_scene


@pytest.mark.parametrize("landscape,pieces", [
    ("model: {name: resnet, depth: 21}", [":3: landscape.model.depth: bad value 21; allowed: one of 20, 32, 44, "
                                          "56 or 110"]),
    ("model: {name: resnet, skp: false}", ["unknown key 'landscape.model.skp'", "did you mean 'skip'?"]),
    ("model: {name: vgg, config: vgg16}", ["landscape.model.config: bad value \"vgg16\"", "'vgg9' or 'vgg11'"]),
    ("model: {name: resnett}", ["landscape.model.name: bad value \"resnett\"", "'torchvision', 'custom'",
                                "did you mean 'resnet'?"]),
    ("model: {name: resnet}", ["model 'resnet' needs image data"]),
    ("data: {name: mnist}\n  model: {name: torchvision, arch: resnet18}",
     ["torchvision models take RGB images (3 channels)", "'mnist' here is grayscale"]),
    ("model: {name: torchvision, arch: ResNet18}", ["landscape.model.arch: bad value \"ResNet18\"", "lower case"]),
    ("model: {name: custom, entry: my_models.net}", ["landscape.model.entry: bad value \"my_models.net\"",
                                                     "'module:function'"]),
    ("model: {name: custom, entry: 'm:f', args: {classes: 3}}", ["landscape.model.args:",
                                                                  "classes is passed by the compute stage"]),
    ("data: {name: custom, entry: 'm:f', version: -1}", ["landscape.data.version: bad value -1"]),
])
def test_scene_errors(tmp_path, landscape, pieces):
    p = tmp_path / "s.yaml"
    p.write_text(f"title: t\nlandscape:\n  {landscape}\n")
    with pytest.raises(SceneError) as e:
        load_scene(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "\n" not in msg
    for piece in pieces:
        assert piece in msg, (piece, msg)


def test_scene_errors_for_models_on_the_wrong_data(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("title: t\nlandscape:\n  model: {name: convnet}\n")
    with pytest.raises(SceneError, match="convnet.*needs image data"):
        load_scene(p)
    p.write_text("title: t\nlandscape:\n  data: {name: shapes, sise: 3}\n")
    with pytest.raises(SceneError, match=r"unknown key 'landscape.data.sise'.*did you mean 'size'"):
        load_scene(p)
    p.write_text("title: t\nlandscape:\n  data: {name: mnst}\n")
    with pytest.raises(SceneError, match=r":3: landscape.data.name: bad value \"mnst\".*did you mean 'mnist'"):
        load_scene(p)


BAD = {
    "checkpoints without steps": (
        "{method: checkpoints}",
        "landscape.plane: method 'checkpoints' needs checkpoints: 2 or 3 training steps, "
        "e.g. checkpoints: [0, 300, 1500]"),
    "interpolate without steps": (
        "{method: interpolate}",
        "landscape.plane: method 'interpolate' needs checkpoints: 2 training steps, e.g. checkpoints: [0, 1500]"),
    "interpolate with three": (
        "{method: interpolate, checkpoints: [0, 10, 20]}",
        "landscape.plane: method 'interpolate' needs exactly 2 checkpoints, [from_step, to_step]; "
        "got 3: [0, 10, 20]"),
    "one checkpoint": (
        "{method: checkpoints, checkpoints: [5]}",
        "landscape.plane.checkpoints: bad value [5]: checkpoints must list 2 or 3 training steps, got 1"),
    "four checkpoints": (
        "{method: checkpoints, checkpoints: [1, 2, 3, 4]}",
        "landscape.plane.checkpoints: bad value [1, 2, 3, 4]: checkpoints must list 2 or 3 training steps, got 4"),
    "repeated checkpoint": (
        "{method: checkpoints, checkpoints: [5, 5]}",
        "landscape.plane.checkpoints: bad value [5, 5]: checkpoints must be distinct steps of at least 0"),
    "checkpoint after training": (
        "{method: interpolate, checkpoints: [0, 500]}",
        "landscape.plane.checkpoints: bad value 500: training runs 100 steps (landscape.train.steps), "
        "so a checkpoint must be a step from 0 to 100"),
    "checkpoints for pca": (
        "{method: pca, checkpoints: [0, 50]}",
        "landscape.plane: checkpoints are for the methods 'checkpoints' and 'interpolate', not 'pca'; "
        "remove them or change the method"),
    "span and range": (
        "{method: hessian, span: 1, range: [[0, 1], [0, 1]]}",
        "landscape.plane: give either span or range, not both"),
    "hessian iterations": (
        "{method: hessian, hessian: {iterations: 0}}",
        "landscape.plane.hessian.iterations: bad value 0; allowed: a value of at least 1"),
    "hessian typo": (
        "{method: hessian, hessian: {tolerence: 0.01}}",
        "unknown key 'landscape.plane.hessian.tolerence'; allowed keys under landscape.plane.hessian: "
        "iterations, tolerance, samples; did you mean 'tolerance'?"),
    "method": (
        "{method: eigen}",
        "landscape.plane.method: bad value \"eigen\"; allowed: one of 'pca', 'random', 'hessian', "
        "'checkpoints', 'interpolate' or 'minima'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_plane_scene_messages(tmp_path, case):
    plane, expected = BAD[case]
    p = tmp_path / "s.yaml"
    p.write_text(f"title: t\nlandscape:\n  train: {{steps: 100}}\n  plane: {plane}\n")
    with pytest.raises(SceneError) as ei:
        load_scene(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}:4: "), msg
    assert expected in msg, msg
    assert "{'" not in msg and "\n" not in msg                 # no mapping dumped into the message


def test_plane_scene_message_line_in_block_style(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("title: t\nlandscape:\n  train: {steps: 100}\n  plane:\n    method: checkpoints\n"
                 "    checkpoints:\n      - 0\n      - 40\n      - 400\n")
    with pytest.raises(SceneError, match=r":9: landscape.plane.checkpoints: bad value 400: training runs 100"):
        load_scene(p)
    p.write_text("title: t\nlandscape:\n  train: {steps: 100}\n  plane:\n    method: checkpoints\n"
                 "    checkpoints: [0, 40, 100]\n")
    assert load_scene(p).landscape.plane.checkpoints == [0, 40, 100]


@pytest.mark.parametrize("train_yaml,line,parts", [
    ("{steps: 100, epochs: 3}", 3, ["landscape.train", "give steps (100) or epochs (3), not both"]),
    ("{lr_schedule: step}", 3, ["landscape.train", "lr_schedule: step needs step_size"]),
    ("{lr_schedule: step, step_size: 10, milestones: [50]}", 3, ["landscape.train", "not both"]),
    ("\n    lr: 0.01\n    lr_schedule: cosine\n    lr_min: 0.5", 6,
     ["landscape.train.lr_min", "bad value 0.5", "less than lr (0.01)"]),
    ("{lr_schedule: cosine, step_size: 5}", 3, ["landscape.train.step_size", "for lr_schedule: step"]),
    ("{lr_min: 0.001}", 3, ["landscape.train.lr_min", "for lr_schedule: cosine"]),
    ("{optimizer: adam, nesterov: true}", 3, ["landscape.train.nesterov", "sgd and momentum, not 'adam'"]),
    ("{optimizer: sgd, nesterov: true}", 3, ["landscape.train", "nesterov needs momentum"]),
    ("{optimizer: lamb}", 3, ["landscape.train.optimizer", "'sgd', 'momentum', 'adam' or 'adamw'"]),
    ("{every: 10, snapshots: 50}", 3, ["landscape.train", "every", "or snapshots, not both"]),
    ("{steps: 100, every: 100}", 3, ["landscape.train.every", "bad value 100", "at most 99"]),
    ("{steps: 1000000, every: 2}", 3, ["landscape.train.every", "500,001 snapshots", "at most 100,000"]),
    ("{steps: 100, warmup: 100}", 3, ["landscape.train.warmup", "shorter than training (100 steps)"]),
    ("{steps: 100, lr_schedule: step, milestones: [20, 100]}", 3,
     ["landscape.train.milestones", "milestone 100 is not before the end"]),
    ("{lr_schedule: step, milestones: [20, 10]}", 3, ["landscape.train.milestones", "strictly increasing"]),
    ("{epochs: 0}", 3, ["landscape.train.epochs", "at least 1"]),
])
def test_train_scene_errors(tmp_path, train_yaml, line, parts):
    p = write(tmp_path, f"title: t\nlandscape:\n  train: {train_yaml}\n")
    with pytest.raises(SceneError) as ei:
        load_scene(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    for part in parts:
        assert part in msg, msg


def test_epochs_checked_against_the_data(tmp_path):
    # 512 samples in batches of 100: 6 steps an epoch, 2 epochs: 12 steps
    p = write(tmp_path, "landscape:\n  data: {samples: 512}\n  train: {epochs: 2, batch_size: 100, every: 12}\n")
    with pytest.raises(SceneError, match=r"landscape.train.every: bad value 12: training runs 2 epochs of 6 "
                                         r"steps, 12 steps"):
        load_scene(p)
    p = write(tmp_path, "landscape:\n  data: {samples: 512}\n  train: {epochs: 2, batch_size: 100}\n"
                        "  plane: {method: interpolate, checkpoints: [0, 13]}\n")
    with pytest.raises(SceneError, match=r"bad value 13: training runs 12 steps \(landscape.train.epochs\)"):
        load_scene(p)
    ok = write(tmp_path, "landscape:\n  data: {samples: 512}\n  train: {epochs: 2, batch_size: 100, every: 5}\n"
                         "  plane: {method: interpolate, checkpoints: [0, 12]}\n")
    assert load_scene(ok).landscape.train.total_steps(512) == 12


# --------------------------------------------------------------------------- the minima plane's scenes

MINIMA_BAD = {
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


@pytest.mark.parametrize("case", sorted(MINIMA_BAD))
def test_bad_minima_scenes_are_one_clear_line(tmp_path, case):
    text, parts = MINIMA_BAD[case]
    msg = scene_error(write(tmp_path, text))
    assert msg.startswith(str(tmp_path / "scene.yaml")), msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_a_minima_scene_may_draw_and_follow_its_three_paths(tmp_path):
    scene = load_scene(write(tmp_path, TINY + "render:\n  paths: {training: {}, training_2: {}, training_3: {}}\n"
                                              "  camera:\n    - {shot: follow, path: training_3, from: 0, to: 4}\n"))
    assert list(scene.render.paths) == ["training", "training_2", "training_3"]
    msg = scene_error(write(tmp_path, TINY + "render:\n  paths: {training_4: {}}\n"))
    assert "unknown path 'training_4'" in msg and "'training', 'training_2', 'training_3'" in msg, msg


def test_the_cache_key_covers_the_seeds_and_their_order():
    def key(seeds, **plane):
        return scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": seeds, **plane}}}).cache_key()
    keys = {key([0, 1, 2]), key([0, 1, 3]), key([1, 0, 2]), key([0, 1, 2], margin=0.5)}
    assert len(keys) == 4                        # the first seed is the origin: the order matters
    # a scene that leaves the new keys out keeps its key (tests/studio/scene/test_keys.py has the shipped ones;
    # this one's plane has a probed window, compute/plane/window.py)
    assert scene_from_dict({}).cache_key() == "3a170af956a04040"


def test_each_network_trains_under_the_train_key_of_its_seed():
    from compute.plane.minima import seed_scene
    scene = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 7, 2]}}})
    assert seed_scene(scene, 0).train_key() == scene_from_dict({}).train_key()      # shares the default run
    assert seed_scene(scene, 7).train_key() == \
        scene_from_dict({"landscape": {"train": {"seed": 7}}}).train_key()


def test_a_section_is_its_typed_spec_from_a_scene_or_from_plain_data():
    """The compute stage's builders take their section through studio.scene.section: a loaded
    scene's typed spec as it is, plain data from Python validated with the defaults filled in."""
    from pydantic import ValidationError
    from studio.scene import LandscapeSpec, TrainSpec, section
    ls = LandscapeSpec()
    assert section("train", ls.train) is ls.train and section("plane", ls.plane) is ls.plane
    t = section("train", {"lr": 0.5, "lr_schedule": "cosine"})
    assert isinstance(t, TrainSpec) and t.lr == 0.5 and t.steps == TrainSpec().steps
    assert type(section("data", {"name": "shapes"})).__name__ == "ShapesSpec"
    assert section("weights", None) is None
    with pytest.raises(ValidationError, match="lr"):
        section("train", {"lr": -1})
