"""The scene package keeps its promises across changes to its code: the cache keys of the shipped
scenes (and their comparison panels) stay what they were, so no cached landscape is recomputed by
a refactoring; the public names of ``studio.scene`` are all there; ``FORMAT_VERSION`` has one home,
studio/cache.py; and every module stays short enough to read in one sitting.  And what a scene's
cache key (Scene.cache_key, studio/scene/spec.py) covers: the landscape (a custom entry's args and
version too), not the render section, the title, the output or the file's layout.

A scene whose text (or whose user files: entries' modules, weights) changed since the keys below
were recorded is skipped: its key is meant to change.  Record new keys by hand after a deliberate
change of what a key covers (and bump FORMAT_VERSION when the meaning of a cached value changes)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from studio.scene import load_scene
from tests.conftest import ROOT, write_scene
from tests.conftest import TINY_SCENE as TINY

MODELINE = "# yaml-language-server:"

#: scene file -> sha256 (16 hex) of its text without the schema line, the digests of its user
#: files (Scene.inputs), its grid and training keys, and each panel's (caption, key, train key)
KEYS = {
    'autoencoder.yaml': dict(
        text='599a04a8c3065bad', key='ed3e1d704095771a', train_key='f50b857b22ad145d',
        inputs={'data_source': '4912c23577150b9c9fa325a5e93fca10dee8bbf7990d8578beee3887edef1e61'},
        panels=[]),
    'batch_sizes.yaml': dict(
        text='83e0a4978b4fb0e0', key='6181036367ee2e41', train_key='d7d7d69721b49c99',
        inputs={},
        panels=[
            ('Batch size 32', '4903c61b69a02ff9', '85c1a7085fc9af98'),
            ('Full batch (1024)', '6181036367ee2e41', 'd7d7d69721b49c99'),
        ]),
    'batch_sizes_over_training.yaml': dict(
        text='26c23b4d6c4660be', key='87bdc424289911a2', train_key='01c7fb3539d95a86',
        inputs={},
        panels=[
            ('Batch size 32', '22e9ea940189ce54', 'c76f8ce5a99494ff'),
            ('Full batch (1024)', '87bdc424289911a2', '01c7fb3539d95a86'),
        ]),
    'charlm.yaml': dict(
        text='871399476948f882', key='f96764640e6ea802', train_key='14031a5fece48c54',
        inputs={
            'data_source': 'c7dc45c9ef4b50810466015a7b85d55f26192ea9151a63a477e26801b772c5f7',
            'model_source': 'c7dc45c9ef4b50810466015a7b85d55f26192ea9151a63a477e26801b772c5f7',
            'weights': 'eb149cc9ea65c52f367fb8eeafc308db6b0c51caf781a5a766201383e99f84bf',
        },
        panels=[]),
    'custom_model.yaml': dict(
        text='ef3650929dcd743d', key='c14ef16ffeedd0d3', train_key='d9f683501f2b5f4b',
        inputs={
            'data_source': '0a2bb1e7f5db9a31c5503fcd096a00878909da7d9f64ce46ccb2144dd3baefa1',
            'model_source': '0a2bb1e7f5db9a31c5503fcd096a00878909da7d9f64ce46ccb2144dd3baefa1',
        },
        panels=[]),
    'default.yaml': dict(
        text='a01cc130ad1d0521', key='a9f7c8d26761f351', train_key='3b25c5dfb347d5ed',
        inputs={},
        panels=[]),
    'flyover.yaml': dict(
        text='ffe4cd5fef527bb1', key='6584cc1068dcc40e', train_key='3b25c5dfb347d5ed',
        inputs={},
        panels=[]),
    'follow.yaml': dict(
        text='abbd97cb7acbe6f7', key='6584cc1068dcc40e', train_key='3b25c5dfb347d5ed',
        inputs={},
        panels=[]),
    'imagenette_convnet.yaml': dict(
        text='b91283db836fe0fc', key='17d1281d21d1db16', train_key='9e7c1244864ba383',
        inputs={},
        panels=[]),
    'learning.yaml': dict(
        text='4c1137b9930da6bf', key='bbae78a217761a52', train_key='3b25c5dfb347d5ed',
        inputs={},
        panels=[]),
    'lr_sweep.yaml': dict(
        text='fabebf49cb14ed7b', key='ec13bae3c101abaf', train_key='2f8844f7a906c8ed',
        inputs={},
        panels=[
            ('learning rate = 0.01, at initialization', 'ef9ca233a52e7568', '28185fa7eea8be76'),
            ('learning rate = 0.01, after 30 steps', '0f7248b40ec03939', '28185fa7eea8be76'),
            ('learning rate = 0.01, at the end', '9351d48c980622b2', '28185fa7eea8be76'),
            ('learning rate = 0.1, at initialization', 'c8489ebe1a2fbc3f', '2f8844f7a906c8ed'),
            ('learning rate = 0.1, after 30 steps', 'a149dcdd6f7d4173', '2f8844f7a906c8ed'),
            ('learning rate = 0.1, at the end', 'ec13bae3c101abaf', '2f8844f7a906c8ed'),
            ('learning rate = 0.3, at initialization', 'aadd9104e3f28102', 'e0abf49244ef0df9'),
            ('learning rate = 0.3, after 30 steps', '10fa1fd190eee707', 'e0abf49244ef0df9'),
            ('learning rate = 0.3, at the end', 'a2b5c4f2713fda97', 'e0abf49244ef0df9'),
            ('learning rate = 1.0, at initialization', '85d82b0893348935', 'ac0c613bdfae577b'),
            ('learning rate = 1.0, after 30 steps', '925fea53e5c8cb9b', 'ac0c613bdfae577b'),
            ('learning rate = 1.0, at the end', '582fbba6a795d350', 'ac0c613bdfae577b'),
            ('learning rate = 3.0, at initialization', 'db8110f2fae6329a', '6f0c19522bbce9ce'),
            ('learning rate = 3.0, after 30 steps', 'bdf84327d8996de7', '6f0c19522bbce9ce'),
            ('learning rate = 3.0, at the end', '1977d7a98aa1aca5', '6f0c19522bbce9ce'),
            ('learning rate = 10.0, at initialization', '54a7899d8d60b2a9', '761b4ddab0c070b2'),
            ('learning rate = 10.0, after 30 steps', 'ea33564ddd2b8582', '761b4ddab0c070b2'),
            ('learning rate = 10.0, at the end', '5b7d26ec170d3129', '761b4ddab0c070b2'),
        ]),
    'optimizers.yaml': dict(
        text='099f1d4476631e86', key='6584cc1068dcc40e', train_key='3b25c5dfb347d5ed',
        inputs={},
        panels=[]),
    'orbit.yaml': dict(
        text='e9623e1196208fd9', key='6584cc1068dcc40e', train_key='3b25c5dfb347d5ed',
        inputs={},
        panels=[]),
    'regression.yaml': dict(
        text='6985827c1d6a74c0', key='8c190415041db792', train_key='47ce71f73d764097',
        inputs={},
        panels=[]),
    'resnet_skip_vs_noskip.yaml': dict(
        text='d3a3cfdb7a108fef', key='713efaff49068b69', train_key='658f64ea20355e64',
        inputs={},
        panels=[
            ('ResNet-56, with skip connections', '713efaff49068b69', '658f64ea20355e64'),
            ('ResNet-56, no skip connections', 'ac6b6ef92d34c406', '89e7d890f9d755c6'),
        ]),
    'shapes_convnet.yaml': dict(
        text='3d9cba15bf5d54aa', key='58b1e95f0cbe61f2', train_key='2c8f60a3c0cf791b',
        inputs={},
        panels=[]),
    'three_minima.yaml': dict(
        text='338b4487e243fdf8', key='9d19c0d29cb8290f', train_key='3b25c5dfb347d5ed',
        inputs={},
        panels=[]),
}


def _text_digest(path: Path) -> str:
    body = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(MODELINE))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(KEYS))
def test_the_cache_keys_of_the_shipped_scenes_stay(name):
    from studio.scene import SceneError, load_scene
    path = ROOT / "scenes" / name
    want = KEYS[name]
    if not path.is_file() or _text_digest(path) != want["text"]:
        pytest.skip(f"scenes/{name} changed since its keys were recorded")
    try:
        scene = load_scene(path)
    except SceneError as e:                     # e.g. a run folder of the user's that is not here
        pytest.skip(f"scenes/{name} does not load here: {e}")
    if scene.inputs() != want["inputs"]:
        pytest.skip(f"the user files scenes/{name} names changed since its keys were recorded")
    assert (scene.cache_key(), scene.train_key()) == (want["key"], want["train_key"])
    assert [(c, s.cache_key(), s.train_key()) for c, s in scene.panels()] == want["panels"]


def test_the_default_scenes_keys_stay():
    """Keys that depend on no file at all.  (A scene that leaves plane.margin out has a probed window,
    compute/plane/window.py, and got a key of its own when the probe came: recorded again then.)"""
    from studio.scene import Scene, scene_from_dict
    assert (Scene().cache_key(), Scene().train_key()) == ("3a170af956a04040", "5bfd27b50fbebc02")
    s = scene_from_dict({"landscape": {"data": {"name": "shapes"}, "model": {"name": "convnet"},
                                       "grid": {"resolution": [100, 100]},
                                       "descents": [{"name": "a", "start": [0, 0]}]}})
    assert (s.cache_key(), s.train_key()) == ("c58f7359cd5b21c3", "5239a7ccd6edb727")


def test_format_version_lives_in_the_cache_module():
    import studio.cache
    import studio.scene
    from studio.scene import spec
    assert studio.scene.FORMAT_VERSION is studio.cache.FORMAT_VERSION
    assert spec.FORMAT_VERSION is studio.cache.FORMAT_VERSION


#: what `from studio.scene import X` gave before the module became a package
PUBLIC = ["FORMAT_VERSION", "SceneError", "DataSpec", "ShapesSpec", "MnistSpec", "FashionMnistSpec", "Cifar10Spec",
          "ImagenetteSpec", "FolderSpec", "RegressionSpec", "CustomDataSpec", "AnyData", "ModelSpec", "ConvNetSpec",
          "ResNetSpec", "VGGSpec", "TorchvisionSpec", "CustomModelSpec", "AnyModel", "LOSSES", "LossSpec",
          "WeightsSpec", "TrainSpec", "MAX_SNAPSHOTS", "MAX_STEPS", "train_steps", "train_run_problem", "section",
          "HessianSpec", "PlaneSpec", "GridSpec", "DescentSpec", "SequenceSpec", "LandscapeSpec", "TRANSPARENT",
          "LookSpec", "PathStyle", "EASINGS", "CameraKey", "CameraEntry", "SHOTS", "OrbitShot", "DollyShot",
          "ZoomShot", "CraneShot", "FollowShot", "Caption", "SIZE_PRESETS", "RenderSpec", "FILM_FORMATS",
          "ALPHA_FORMATS", "frames_path", "OutputSpec", "PanelSpec", "CompareSpec", "Scene", "deep_merge",
          "panel_landscape", "grid_section", "landscape_key", "parse_overrides", "load_scene", "scene_from_dict",
          "alpha_problem", "transparency_error", "locate_error"]


def test_the_public_names_are_all_there():
    import studio.scene
    missing = [n for n in PUBLIC if not hasattr(studio.scene, n)]
    assert not missing, missing
    assert sorted(studio.scene.__all__) == sorted(PUBLIC)
    doc = studio.scene.__doc__
    assert all(n in doc for n in ("load_scene", "scene_from_dict", "locate_error", "Scene", "SceneError"))


def test_every_module_of_the_package_is_short():
    long = {p.name: n for p in (ROOT / "studio" / "scene").glob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


# --------------------------------------------------------------------------- what a key covers

def test_default_scene_keys_unchanged():
    root = ROOT
    assert load_scene(root / "scenes" / "default.yaml").cache_key() == "a9f7c8d26761f351"


def test_cache_key_covers_entry_args_and_version(tmp_path):
    def key(model: str) -> str:
        p = tmp_path / "k.yaml"
        p.write_text(f"landscape:\n  model: {model}\n")
        return load_scene(p).cache_key()
    base = key("{name: custom, entry: 'm:f'}")
    assert key("{name: custom, entry: 'm:f', args: {}, version: 0}") == base       # defaults written out
    others = [key("{name: custom, entry: 'm:g'}"), key("{name: custom, entry: 'm:f', args: {h: 3}}"),
              key("{name: custom, entry: 'm:f', version: 1}")]
    assert len({base, *others}) == 4


def key_of(tmp_path: Path, text: str) -> str:
    return load_scene(write_scene(tmp_path, text, "k.yaml")).cache_key()


SAME = {
    "render fps": ("fps: 24", "fps: 12"),
    "camera": ("azimuth: 40", "azimuth: -40"),
    "render look": ("render:\n", "render:\n  look: {colormap: inferno, exaggeration: 1.2}\n"),
    "title": ("title: tiny", "title: something else"),
    "output": ("title: tiny", "title: tiny\noutput: {crf: 30, path: elsewhere.mp4}"),
    "defaults written out": ("eval_samples: 128}", "eval_samples: 128, seed: 0}"),
    "flow vs block style": ("  grid: {resolution: [24, 20], eval_samples: 128}",
                            "  grid:\n    eval_samples: 128\n    resolution:\n      - 24\n      - 20"),
    "comment": ("title: tiny", "# a comment\ntitle: tiny"),
}

DIFFERENT = {
    "grid resolution": ("[24, 20]", "[24, 21]"),
    "eval samples": ("eval_samples: 128", "eval_samples: 64"),
    "model widths": ("widths: [16, 16]", "widths: [16, 8]"),
    "activation": ("widths: [16, 16]", "widths: [16, 16], activation: relu"),
    "data seed": ("samples: 512", "samples: 512, seed: 1"),
    "data samples": ("samples: 512", "samples: 256"),
    "train steps": ("steps: 100", "steps: 101"),
    "plane method": ("  grid:", "  plane: {method: random}\n  grid:"),
    "plane span": ("  grid:", "  plane: {span: 2}\n  grid:"),
}


def test_cache_key_ignores_render_and_presentation(tmp_path):
    base = key_of(tmp_path, TINY)
    assert len(base) == 16 and int(base, 16) >= 0
    for name, (old, new) in SAME.items():
        assert old in TINY, name
        assert key_of(tmp_path, TINY.replace(old, new)) == base, name


def test_cache_key_follows_the_landscape(tmp_path):
    base = key_of(tmp_path, TINY)
    keys = {base}
    for name, (old, new) in DIFFERENT.items():
        assert old in TINY, name
        k = key_of(tmp_path, TINY.replace(old, new))
        assert k != base, name
        keys.add(k)
    assert len(keys) == len(DIFFERENT) + 1
