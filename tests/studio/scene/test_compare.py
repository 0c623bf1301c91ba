"""The scene's compare: section: studio/scene/spec.py (deep_merge, panel_landscape, Scene.panels:
panels as the scene with merged landscapes), studio/scene/film.py (PanelSpec, CompareSpec) and
studio/scene/checks.py (the checks of each merged panel): merging, a panel's errors (its dotted key
under the panel and its own line, from load_scene and from the command line) and the panels' cache
keys.  Comparison films are tests/render/test_compare.py's, computing the panels
tests/compute/test_compute_main.py's."""
from __future__ import annotations

import textwrap

import pytest

from studio.scene import deep_merge, load_scene
from tests.conftest import ROOT, cli_error, write_scene
from tests.conftest import scene_error as error_of


def write(tmp_path, text, name="cmp.yaml"):
    return write_scene(tmp_path, text, name)


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"model": {"widths": [64, 64], "activation": "relu"}, "train": {"steps": 100, "lr": 0.1},
            "descents": [{"name": "a", "start": [0, 0]}]}
    over = {"model": {"widths": [8]}, "train": {"batch_size": 32}, "descents": [{"name": "b", "start": [1, 1]}],
            "grid": {"resolution": [10, 10]}}
    out = deep_merge(base, over)
    assert out == {"model": {"widths": [8], "activation": "relu"},              # a list replaces
                   "train": {"steps": 100, "lr": 0.1, "batch_size": 32},        # mappings merge
                   "descents": [{"name": "b", "start": [1, 1]}],                # lists replace whole
                   "grid": {"resolution": [10, 10]}}                            # new keys come in
    assert base["model"]["widths"] == [64, 64] and "batch_size" not in base["train"]     # inputs untouched
    out["grid"]["resolution"].append(3)
    assert over["grid"]["resolution"] == [10, 10]                               # no shared lists
    assert deep_merge({"a": {"b": 1}}, {"a": 5}) == {"a": 5}                    # a scalar replaces a mapping


def test_panels_are_the_scene_with_merged_landscapes(tmp_path):
    p = write(tmp_path, """
        title: Batch sizes
        landscape:
          model: {widths: [16, 16], activation: relu}
          train: {steps: 300, lr: 0.05}
          grid: {resolution: [20, 20]}
        render: {duration: 6}
        compare:
          panels:
            - caption: small
              landscape: {train: {batch_size: 32}}
            - caption: large
              landscape: {train: {batch_size: 0}, model: {skip: false}}
        """)
    msg = error_of(p)
    # a key the model does not have: named under the panel, at the panel's line
    assert msg.startswith(f"{p}:12: unknown key 'compare.panels[1].landscape.model.skip'"), msg
    assert "allowed keys under compare.panels[1].landscape.model: name, widths, activation" in msg
    p.write_text(p.read_text().replace(", model: {skip: false}", ""))
    scene = load_scene(p)
    (c0, s0), (c1, s1) = scene.panels()
    assert (c0, c1) == ("small", "large")
    assert s0.landscape.train.batch_size == 32 and s1.landscape.train.batch_size == 0
    for s in (s0, s1):                               # everything else is the scene's
        assert s.landscape.model.widths == [16, 16] and s.landscape.model.activation == "relu"
        assert s.landscape.train.steps == 300 and s.landscape.train.lr == 0.05
        assert s.compare is None and s.panels() == [] and s.title == "Batch sizes" and s.render == scene.render
    # batch_size 0 is the default: the second panel is the scene's own landscape, the first is not
    assert s1.cache_key() == scene.cache_key() != s0.cache_key()


def test_a_panel_may_change_the_kind_of_model_or_data(tmp_path):
    # the spirals keys do not fit shapes: naming another kind replaces the section instead of merging
    p = write(tmp_path, """
        landscape:
          data: {samples: 512, turns: 2.0}
          model: {widths: [8]}
        compare:
          panels:
            - {landscape: {}}
            - {landscape: {data: {name: shapes, size: 8}, model: {name: convnet, channels: [4]}}}
        """)
    (_, a), (_, b) = load_scene(p).panels()
    assert a.landscape.data.name == "spirals" and a.landscape.data.turns == 2.0
    assert b.landscape.data.name == "shapes" and b.landscape.data.size == 8 and b.landscape.data.samples == 1024
    assert b.landscape.model.name == "convnet" and b.landscape.model.channels == [4]


CASES = {
    # a bad value inside the panel: its dotted key under the panel and its own line
    "bad_value": ("""
        landscape: {model: {widths: [8]}}
        compare:
          panels:
            - caption: a
              landscape:
                model: {widths: [8, 8]}
            - caption: b
              landscape:
                model:
                  widths: [0]
        """, 10, ["compare.panels[1].landscape.model.widths: bad value [0]", "from 1 to 65536"]),
    "unknown_key": ("""
        compare:
          panels:
            - {landscape: {trian: {steps: 10}}}
            - {}
        """, 3, ["unknown key 'compare.panels[0].landscape.trian'", "did you mean 'train'"]),
    "wrong_kind": ("""
        compare:
          panels:
            - {}
            - landscape:
                model: {name: convnt}
        """, 5, ["compare.panels[1].landscape.model.name: bad value \"convnt\"", "did you mean 'convnet'"]),
    # a check across the merged landscape's sections
    "checkpoint_late": ("""
        landscape: {train: {steps: 100}}
        compare:
          panels:
            - {}
            - landscape:
                plane: {method: interpolate, checkpoints: [0, 500]}
        """, 6, ["compare.panels[1].landscape.plane.checkpoints: bad value 500",
                 "compare.panels[1].landscape.train.steps"]),
    # a drawn path a panel does not make
    "missing_descent": ("""
        landscape:
          descents: [{name: sgd, start: [0.5, 0.5]}]
        render:
          paths: {training: {}, sgd: {}}
        compare:
          panels:
            - {}
            - landscape:
                descents: [{name: adam, optimizer: adam, start: [0.5, 0.5]}]
        """, 9, ["compare.panels[1]: render.paths draws 'sgd'", "it makes: training, adam"]),
    "too_few_panels": ("""
        compare:
          panels:
            - {}
        """, 3, ["compare.panels: bad value", "at least 2 items"]),
    "too_many_panels": ("""
        compare:
          panels: [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]
        """, 2, ["compare.panels", "at most 16 items"]),
    "layout": ("""
        compare:
          layout: grid
          panels: [{}, {}]
        """, 2, ["compare.layout: bad value \"grid\"", "'split'", "'sequence'"]),
    "transition_too_long": ("""
        render: {duration: 6}
        compare:
          layout: sequence
          transition: 4
          panels: [{}, {}]
        """, 4, ["compare.transition: bad value 4", "3 s of the 6 s film"]),
    "unknown_panel_key": ("""
        compare:
          panels:
            - {}
            - {captoin: relu}
        """, 4, ["unknown key 'compare.panels[1].captoin'", "allowed keys under compare.panels[1]: caption, "
                 "landscape", "did you mean 'caption'"]),
    "landscape_not_a_mapping": ("""
        compare:
          panels:
            - {landscape: [1, 2]}
            - {}
        """, 3, ["compare.panels[0].landscape: bad value [1, 2]", "a mapping of keys"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_panel_errors_name_the_panel_key_and_line(tmp_path, case):
    text, line, parts = CASES[case]
    p = write(tmp_path, text)
    msg = error_of(p)
    assert "\n" not in msg
    assert msg.startswith(f"{p}:{line}: "), msg
    for part in parts:
        assert part in msg, (part, msg)


def test_a_landscape_over_training_can_be_a_panel(tmp_path):
    from studio.scene import LandscapeSpec
    if "sequence" not in LandscapeSpec.model_fields:
        pytest.skip("no landscape.sequence in this schema")
    panels = "compare:\n  panels:\n    - {}\n    - landscape:\n        sequence: {count: 4}\n"
    p = write(tmp_path, panels)
    (_, a), (_, b) = load_scene(p).panels()
    assert a.landscape.sequence is None and b.landscape.sequence.count == 4
    assert a.cache_key() != b.cache_key()
    # a sequence panel is checked like a scene's own landscape: no descents on a moving landscape
    p = write(tmp_path, panels + "        descents: [{name: sgd, start: [0.1, 0.1]}]\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:5: compare.panels[1].landscape: "), msg
    assert "remove compare.panels[1].landscape.descents or compare.panels[1].landscape.sequence" in msg, msg


def test_panel_error_from_the_command_line_writes_nothing(tmp_path):
    p = write(tmp_path, CASES["bad_value"][0])
    msg = cli_error(tmp_path, p)
    assert msg.startswith(f"{p}:10: compare.panels[1].landscape.model.widths"), msg


def test_cache_keys_follow_the_panels_landscapes(tmp_path):
    default = load_scene(ROOT / "scenes" / "default.yaml")
    assert default.compare is None and default.panels() == []
    assert default.cache_key() == "a9f7c8d26761f351"          # a scene without compare: unchanged
    text = (ROOT / "scenes" / "default.yaml").read_text()
    p = write(tmp_path, text + textwrap.dedent("""
        compare:
          panels:
            - {landscape: {grid: {resolution: [1000, 1000]}}}
            - {landscape: {model: {widths: [64, 64]}}}
            - {landscape: {model: {widths: [64, 32]}}}
            - {landscape: {descents: [{name: sgd, start: [0.2, 0.2]}]}}
        """))
    scene = load_scene(p)
    assert scene.cache_key() == "a9f7c8d26761f351"            # compare never enters the key
    keys = [s.cache_key() for _, s in scene.panels()]
    # the same landscape (a value the scene already has; descents are keyed apart): the same entry
    assert keys[0] == keys[1] == keys[3] == "a9f7c8d26761f351"
    assert keys[2] != keys[0]


def test_each_panel_labels_its_own_paths(tmp_path):
    from studio.scene import SceneError, load_scene
    from tests.conftest import write_scene
    text = ("landscape: {grid: {resolution: [10, 10]}}\nrender:\n  paths: {training: {label: training}}\n"
            "compare:\n  panels:\n    - {caption: A, labels: {training: SGD}, landscape: {train: {optimizer: sgd}}}\n"
            "    - {caption: B, labels: {training: ''}, landscape: {train: {optimizer: adam}}}\n"
            "    - {caption: C, landscape: {train: {lr: 0.02}}}\n")
    scene = load_scene(write_scene(tmp_path, text))
    labels = [sc.render.paths["training"].label for _, sc in scene.panels()]
    assert labels == ["SGD", "", "training"]
    assert scene.panels()[0][1].cache_key() == load_scene(write_scene(
        tmp_path, text.replace("labels: {training: SGD}, ", ""), "other.yaml")).panels()[0][1].cache_key()
    bad = write_scene(tmp_path, text.replace("labels: {training: SGD}", "labels: {adam: SGD}"), "bad.yaml")
    with pytest.raises(SceneError, match=r"bad.yaml:6: compare.panels\[0\].labels: 'adam' is not a path render.paths "
                                         r"draws \(training\)"):
        load_scene(bad)
