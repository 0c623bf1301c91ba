"""The scene's JSON Schema for editors (schemas/scene.schema.json, `make schema`): the committed
file is the one the schema makes, it is a valid draft-07 schema, every shipped scene names it on
its first line and passes it, and it catches what an editor should flag as you type."""
from __future__ import annotations

import json

import pytest
import yaml

from studio.scene import jsonschema as scene_schema
from studio.scene.source import _Loader
from tests.conftest import ROOT, SCENES

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extras: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(scene_schema.PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_committed_schema_is_current():
    assert scene_schema.PATH.read_text(encoding="utf-8") == scene_schema.text(), \
        "schemas/scene.schema.json is stale: run `make schema`"


def test_every_scene_names_the_schema_on_its_first_line():
    assert scene_schema.modeline_problems() == []
    assert (ROOT / "scenes" / scene_schema.MODELINE.split("$schema=")[1]).resolve() == scene_schema.PATH


@pytest.mark.parametrize("path", SCENES, ids=[p.name for p in SCENES])
def test_every_scene_passes_the_schema(validator, path):
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, errors


def test_the_schema_has_the_keys_editors_need(validator):
    schema = validator.schema
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    text = json.dumps(schema)
    assert "$defs" not in text and "x-allowed" not in text and "source" not in schema["properties"]
    # every key has a description for an editor's hover
    def undescribed(node, where=""):
        for key, prop in node.get("properties", {}).items():
            if "description" not in prop and key not in ("name", "shot"):
                yield f"{where}.{key}"
    missing = [k for name, d in schema["definitions"].items() for k in undescribed(d, name)]
    missing += list(undescribed(schema))
    assert not missing, missing


GOOD = [
    {"title": "x", "landscape": {"loss": "mse", "data": {"name": "regression"}}},
    {"landscape": {"loss": "my_losses:hinge", "data": {"samples": 100}, "model": {"widths": [8]}}},
    {"render": {"size": "4k", "look": {"background": "Transparent", "colormap": "assets/colormaps/ember.csv"}}},
    {"render": {"camera": [{"t": 0, "azimuth": 10}, {"shot": "orbit", "from": 0, "to": 2, "turns": 1}]}},
    {"compare": {"panels": [{}, {"caption": "b", "landscape": {"train": {"batch_size": 32}}}]}},
]
BAD = [
    ({"landscape": {"data": {"name": "shapes", "turns": 2}}}, "'turns' was unexpected"),
    ({"landscape": {"data": {"name": "shapez"}}}, "'shapez' is not one of"),
    ({"landscape": {"data": {"turns": 2, "size": 3}}}, "'size' was unexpected"),
    ({"landscape": {"model": {"name": "convnet", "widths": [8]}}}, "'widths' was unexpected"),
    ({"landscape": {"grid": {"resolution": [1, 5]}}}, "1 is less than the minimum of 2"),
    ({"landscape": {"loss": "msee"}}, "is not valid under any of the given schemas"),
    ({"render": {"camera": [{"shot": "orbt", "from": 0, "to": 1}]}}, "'orbt' is not one of"),
    ({"render": {"camera": [{"shot": "orbit", "from": 0, "to": 2, "tunrs": 1}]}}, "'tunrs' was unexpected"),
    ({"render": {"camera": [{"t": 0, "azimth": 3}]}}, "'azimth' was unexpected"),
    ({"render": {"look": {"background": "red"}}}, "is not valid under any of the given schemas"),
    ({"render": {"look": {"colormap": "magm"}}}, "is not valid under any of the given schemas"),
    ({"render": {"size": [101, 100]}}, "is not valid under any of the given schemas"),
    ({"compare": {"panels": [{}, {"landscape": {"trian": {}}}]}}, "is not valid under any of the given schemas"),
    ({"titel": "x"}, "'titel' was unexpected"),
]


@pytest.mark.parametrize("data", GOOD)
def test_what_the_studio_loads_the_schema_accepts(validator, data):
    from studio.scene import scene_from_dict
    scene_from_dict(data)
    assert list(validator.iter_errors(data)) == []


@pytest.mark.parametrize("data, message", BAD)
def test_what_an_editor_should_flag(validator, data, message):
    messages = [e.message for e in validator.iter_errors(data)]
    assert any(message in m for m in messages), messages


def test_make_schema_writes_the_file_and_check_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scene_schema, "PATH", tmp_path / "schemas" / "scene.schema.json")
    monkeypatch.setattr(scene_schema, "ROOT", tmp_path)
    assert scene_schema.main(["--check"]) == 1 and "stale" in capsys.readouterr().out
    assert scene_schema.main([]) == 0 and scene_schema.main(["--check"]) == 0
    assert json.loads((tmp_path / "schemas" / "scene.schema.json").read_text())["title"]
