"""The scene's JSON Schema for editors (``schemas/scene.schema.json``), made from the pydantic models.

``make schema`` writes it (``python -m studio.scene.jsonschema``); tests/studio/scene/test_schema.py fails
when the committed file is not what this module makes, and checks every scene in ``scenes/``
against it.  Every example scene names it on its first line, for YAML language servers::

    # yaml-language-server: $schema=../schemas/scene.schema.json

The strict validation stays load_scene's (cross-checks, messages); the schema gives an editor the
keys, their descriptions, defaults and bounds.  Pydantic's schema is reworked where editors need
it (YAML language servers implement JSON Schema draft-07):

- draft-07: ``$defs`` become ``definitions``, and a ``$ref`` with other keywords beside it (which
  draft-07 ignores) goes into an ``allOf``;
- a section that is one of several models chosen by a key (``landscape.data`` and ``.model`` by
  ``name``, a ``render.camera`` entry by ``shot``) becomes an ``if``/``then`` per kind, so an editor
  names the key that is wrong instead of "matches none of the alternatives", and the kind a
  missing ``name`` means (``spirals``, ``mlp``; an entry without ``shot`` is a keyframe) applies;
- ``landscape.loss`` may be text (a built-in loss's name or ``module:function``);
- a panel's ``landscape`` keys are the landscape's;
- the README's keys (``x-default``, ``x-allowed``, ``x-applies``, ``x-noun``), pydantic's titles (the key's
  name again), whole sections as defaults and the loader's own ``source`` are left out.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from studio.scene.network import LOSSES
from studio.scene.spec import Scene

ROOT = Path(__file__).resolve().parents[2]
#: where the schema is committed
PATH = ROOT / "schemas" / "scene.schema.json"
#: the line every example scene starts with (relative to scenes/)
MODELINE = "# yaml-language-server: $schema=../schemas/scene.schema.json"

DOC_KEYS = ("x-default", "x-allowed", "x-applies", "x-noun")


def editor_schema() -> dict:
    """The JSON Schema (draft-07) of a scene file."""
    schema = Scene.model_json_schema(by_alias=True)
    defs = schema.pop("$defs")
    schema["properties"].pop("source")
    landscape = defs["LandscapeSpec"]["properties"]
    for key in ("data", "model"):
        landscape[key] = _tagged(landscape[key], defs, "name")
    camera = defs["RenderSpec"]["properties"]["camera"]
    camera["items"] = _tagged(camera["items"], defs, "shot")
    landscape["loss"] = {
        "description": landscape["loss"]["description"],
        "anyOf": [{"type": "string", "anyOf": [{"enum": list(LOSSES)},
                                               {"pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"}]},
                  {"$ref": "#/$defs/LossSpec"}]}
    defs["PanelSpec"]["properties"]["landscape"]["propertyNames"] = {"enum": list(landscape)}
    schema = _clean({**schema, "$defs": defs})
    return _draft7({"$schema": "http://json-schema.org/draft-07/schema#",
                    "title": "Loss-landscape film studio scene",
                    "description": "A scene file (scenes/README.md); python -m compute and python -m render check "
                                   "it strictly.", **schema})


def _tagged(union: dict, defs: dict, key: str) -> dict:
    """A ``oneOf`` of models told apart by ``key`` as an object whose ``key`` is one of the kinds,
    with an ``if``/``then`` per kind; the model without ``key`` (or with a default for it) is the
    kind a missing ``key`` means."""
    refs = [b["$ref"].rsplit("/", 1)[1] for b in union.pop("oneOf")]
    kinds, rules, default = [], [], None
    for ref in refs:
        prop = defs[ref]["properties"].get(key)
        if prop is None or key not in defs[ref].get("required", []):
            default = ref
        if prop is not None:
            kinds.append(prop["const"])
            rules.append({"if": {"properties": {key: {"const": prop["const"]}}, "required": [key]},
                          "then": {"$ref": f"#/$defs/{ref}"}})
    if default is not None:
        rules.append({"if": {"not": {"required": [key]}}, "then": {"$ref": f"#/$defs/{default}"}})
    prop = {"enum": kinds}
    if default is not None and key in defs[default]["properties"]:
        prop["default"] = defs[default]["properties"][key]["const"]
        prop["description"] = defs[default]["properties"][key].get("description", "")
    return {**union, "type": "object", "properties": {key: prop}, **({} if default else {"required": [key]}),
            "allOf": rules}


def _clean(node):
    """Without the README's keys, pydantic's titles and whole sections as defaults."""
    if isinstance(node, list):
        return [_clean(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in DOC_KEYS or k == "title" and isinstance(v, str):
            continue
        if k == "default" and isinstance(v, dict) and v:
            continue
        if k == "properties":
            out[k] = {name: _clean(p) for name, p in v.items()}      # a key may be called "title"
        else:
            out[k] = _clean(v)
    return out


def _draft7(node):
    """``$defs`` as draft-07's ``definitions``; a ``$ref`` beside other keywords into an ``allOf``."""
    if isinstance(node, list):
        return [_draft7(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {("definitions" if k == "$defs" else k): _draft7(v) for k, v in node.items()}
    if "$ref" in node:
        node["$ref"] = node["$ref"].replace("#/$defs/", "#/definitions/")
        if len(node) > 1:
            node = {"allOf": [{"$ref": node.pop("$ref")}], **node}
    return node


def text() -> str:
    """The schema as committed: sorted keys, two-space indents, a final newline."""
    return json.dumps(editor_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m studio.scene.jsonschema [--check]``: write schemas/scene.schema.json, or with
    ``--check`` say whether it is current (exit status 1 if not)."""
    import sys
    argv = sys.argv[1:] if argv is None else argv
    new = text()
    if "--check" in argv:
        ok = PATH.is_file() and PATH.read_text(encoding="utf-8") == new
        print(f"{PATH.relative_to(ROOT)} is {'current' if ok else 'stale: run make schema'}")
        return 0 if ok else 1
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(new, encoding="utf-8")
    print(f"wrote {PATH.relative_to(ROOT)}")
    return 0


def modeline_problems(folder: Path = ROOT / "scenes") -> list[str]:
    """Example scenes whose first line does not name the schema."""
    return [str(p.relative_to(ROOT)) for p in sorted(folder.glob("*.yaml"))
            if not re.match(re.escape(MODELINE) + r"\s*$", p.read_text(encoding="utf-8").split("\n", 1)[0])]


if __name__ == "__main__":
    raise SystemExit(main())
