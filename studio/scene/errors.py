"""Pydantic's validation errors as the scene's own messages: each problem one line, ``WHERE: KEY:
bad value V; allowed: ...`` (the value as the file wrote it), or for an unknown key the allowed keys
at that level and the closest one; and later stages' errors about a key, placed at its line."""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from studio.scene import keydoc
from studio.scene.camera import _CAMERA_MODELS, SHOTS, CameraKey
from studio.scene.landscape import _TAGGED
from studio.scene.source import Source, _dotted
from studio.scene.spec import Scene

#: the names pydantic gives a union's plain branches in an error's location (``span.float``)
BRANCH_TAGS = ("float", "int", "str", "bool")

#: a problem: where the value came from (``FILE:LINE``, ``FILE (--set KEY)``) and what is wrong
Problem = tuple[str, str]


def locate_error(path: str | Path, message: str, overrides: "list[str] | tuple[str, ...]" = (),
                 panel: int | None = None) -> str:
    """A later stage's error about a scene key (``"landscape.model.arch: bad value ..."``, raised
    where only building the model or reading the data can tell) with the file and line of that
    key, as a load-time error has them: ``FILE:LINE: key: ...``, ``FILE (--set key): ...`` when the
    value came from the command line, and for comparison panel ``panel`` the panel's own key where
    the panel sets it (``compare.panels[i].landscape...``)."""
    m = re.match(r"((?:landscape|render|output)(?:\.[A-Za-z_]\w*)*): ", message)
    if m is None:
        return f"{path}: " + (f"compare.panels[{panel}]: " if panel is not None else "") + message
    where, text = place(Source.read(path, overrides), m.group(1), message[m.end():], panel)
    return f"{where}: {text}"


def place(src: Source, key: str, message: str, panel: int | None = None) -> Problem:
    """A problem with the dotted ``key``: where its value came from and the message under the key,
    for comparison panel ``panel`` under the panel's own key where the panel sets it."""
    loc = tuple(key.split("."))
    if panel is None:
        return src.where(loc), f"{key}: {message}"
    ps = src.panel(panel)
    if ps.owns(loc) or len(loc) == 1:
        return ps.where(loc), f"compare.panels[{panel}].{key}: {message}"
    return src.where(loc), f"compare.panels[{panel}]: {key}: {message}"


def _model_at(loc: tuple):
    """The pydantic model class that owns the last key of loc (for listing allowed keys)."""
    model: Any = Scene
    for n, part in enumerate(loc[:-1]):
        if isinstance(part, int) or model is None:
            continue
        if _is_camera_tag(loc, n):                 # a render.camera entry: the keyframe or the shot it is
            model = _CAMERA_MODELS[part]
            continue
        if _is_union_tag(loc, n):                  # landscape.data / .model: the kind its name picks
            model = _TAGGED[tuple(loc[n - 2:n])][part]
            continue
        fields = model.model_fields if hasattr(model, "model_fields") else {}
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is None:
            # a dict key (e.g. render.paths.training): the values are of the model already found
            continue
        ann = field.annotation
        model = _inner_model(ann)
    return model


def _inner_model(ann):
    import typing
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _inner_model(arg)
        if m is not None:
            return m
    return None


def _allowed_keys(model) -> list[str]:
    keys = []
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        keys.append(f.alias or name)
    return keys


_ALLOWED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
}


def _describe_allowed(err: dict) -> str:
    t, ctx = err["type"], err.get("ctx", {}) or {}
    if t in _ALLOWED:
        return _ALLOWED[t]
    if t == "greater_than":
        return f"a value greater than {keydoc.number(ctx['gt'])}"
    if t == "greater_than_equal":
        return f"a value of at least {keydoc.number(ctx['ge'])}"
    if t == "less_than":
        return f"a value less than {keydoc.number(ctx['lt'])}"
    if t == "less_than_equal":
        return f"a value of at most {keydoc.number(ctx['le'])}"
    if t == "literal_error":
        return f"one of {ctx['expected']}"
    if t == "too_short":
        return f"at least {ctx.get('min_length')} items"
    if t == "too_long":
        return f"at most {ctx.get('max_length')} items"
    if t == "missing":
        return "this key is required"
    return ""


def _field_schema(err_loc: tuple) -> dict:
    """The JSON Schema of the key at a pydantic error location (the list's key for an item), or {}."""
    loc = list(err_loc)
    while loc and (isinstance(loc[-1], int) or "[" in str(loc[-1]) or loc[-1] in BRANCH_TAGS):
        loc.pop()
    model = _model_at(tuple(loc)) if loc else None
    return keydoc.field_schema(model, str(loc[-1])) if model is not None else {}


def _list_expected(err: dict, src: Source, loc: tuple) -> str:
    """What the list at ``loc`` holds (``a list of two integers, each 2 to 8192``), with the list a
    scalar given there likely meant (``e.g. [200, 200]``); empty when the schema does not say."""
    schema = _field_schema(err["loc"])
    lists = [b for b in [schema, *keydoc.branches(schema)] if b.get("type") == "array"]
    if not lists:
        return ""
    scalar = isinstance(err.get("input"), (int, float)) and not isinstance(err.get("input"), bool)
    eg = keydoc.example(lists[0], (src.written(loc) or "") if scalar else "")
    text = keydoc.list_of(lists[0])
    if text.endswith("mappings") and schema.get("x-allowed", "").startswith("a list of"):
        text = schema["x-allowed"]                  # what the mappings are: keyframes and shots, captions
    return keydoc.plain(text) + (f", e.g. {eg}" if eg else "")


def _hint(err: dict, src: Source, loc: tuple) -> str:
    """A few words where YAML read a scalar as another type than the text it looks like, or a
    count was written as a float: ``(YAML reads no as false; write it in quotes: "no")``."""
    value, written = err.get("input"), src.written(loc)
    quoted = written is not None and written.startswith(("'", '"'))
    if written and not quoted and isinstance(value, bool) and err["type"] in ("string_type", "literal_error"):
        return f" (YAML reads {written} as {'true' if value else 'false'}; write it in quotes: \"{written}\")"
    if written and not quoted and err["type"] == "string_type" and not isinstance(value, (list, dict)):
        return f" (write it in quotes: \"{written}\")"
    if err["type"] in ("int_type", "int_from_float") and isinstance(value, float) and value.is_integer():
        return f" (write {int(value)})"
    return ""


def _is_camera_tag(loc: tuple, n: int) -> bool:
    """Whether loc[n] is the tag pydantic puts after a render.camera entry's index (which kind it is)."""
    return (isinstance(loc[n], str) and loc[n] in _CAMERA_MODELS and n >= 3 and isinstance(loc[n - 1], int)
            and tuple(loc[n - 3:n - 1]) == ("render", "camera"))


def _is_union_tag(loc: tuple, n: int) -> bool:
    """Whether loc[n] is the tag pydantic puts after landscape.data or landscape.model (its kind)."""
    return n >= 2 and tuple(loc[n - 2:n]) in _TAGGED and loc[n] in _TAGGED[tuple(loc[n - 2:n])]


def _clean_loc(loc: tuple) -> tuple:
    """A pydantic error location without its union-branch tags ('float', 'list[float]', ...) and
    without the kind of a render.camera entry ('keyframe', 'orbit', ...)."""
    return tuple(p for n, p in enumerate(loc)
                 if not (isinstance(p, str) and ("[" in p or p in BRANCH_TAGS or _is_camera_tag(loc, n)
                                                 or _is_union_tag(loc, n))))


def _camera_kind_error(src: Source, loc: tuple, value: Any) -> Problem:
    """A render.camera entry that is neither a keyframe nor a known shot."""
    shots = ", ".join(repr(k) for k in SHOTS[:-1]) + f" or {SHOTS[-1]!r}"
    if isinstance(value, dict) and "shot" in value:
        shot = value["shot"]
        close = difflib.get_close_matches(shot, SHOTS, n=1) if isinstance(shot, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = loc + ("shot",)
        return src.where(where), (f"{_dotted(where)}: bad value {src.shown(where, shot)}; allowed: one of "
                                  f"{shots}{hint}")
    return src.where(loc), (f"{_dotted(loc)}: an entry with 'from' and 'to' is a shot: give it 'shot:' one of "
                            f"{shots} (a keyframe has 't' instead)")


def format_errors(src: Source, exc: ValidationError) -> list[Problem]:
    """Every problem of a validation error, in the file's order (pydantic's).  A union's branches
    are one problem, and a missing required key next to an unknown one is the unknown one's typo."""
    errs = exc.errors(include_url=False)
    problems = []
    while errs:
        problem, used = _one_problem(src, errs)
        problems.append(problem)
        errs = [e for e in errs if not any(e is u for u in used)]
    return problems


def _one_problem(src: Source, errs: list[dict]) -> tuple[Problem, list[dict]]:
    """The first problem of ``errs``, and the errors it accounts for."""
    err = errs[0]
    loc = _clean_loc(err["loc"])
    used = [err]
    if err["type"] == "missing":
        # a required key missing next to an unknown one is most often a typo of it: name that
        typo = [e for e in errs if e["type"] == "extra_forbidden" and _clean_loc(e["loc"])[:-1] == loc[:-1]]
        if typo:
            err = typo[0]
            loc = _clean_loc(err["loc"])
            used.append(err)
    # unions produce one error per branch, none of them another problem
    under = [e for e in errs if _clean_loc(e["loc"])[:len(loc)] == loc]
    used += under
    if len(err["loc"]) != len(loc) and err["type"].endswith("_type"):
        # the value is not of this branch's type; a branch that got further names the real problem
        deeper = [e for e in under if len(_clean_loc(e["loc"])) > len(loc)]
        if deeper:
            err = deeper[0]
            loc = _clean_loc(err["loc"])
    key = _dotted(loc)
    # the branches at this key together say what is allowed
    branches = [e for e in errs if _clean_loc(e["loc"]) == loc]
    if err["type"] == "union_tag_invalid" and loc[:2] == ("render", "camera"):
        return _camera_kind_error(src, loc, err.get("input")), used
    if err["type"] == "union_tag_invalid" and loc in _TAGGED:
        kinds = list(_TAGGED[loc])
        value = err.get("input")
        name = value.get("name") if isinstance(value, dict) else None
        at = loc + ("name",) if isinstance(value, dict) and "name" in value else loc
        close = difflib.get_close_matches(name, kinds, n=1) if isinstance(name, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (src.where(at), f"{_dotted(loc + ('name',))}: bad value {src.shown(loc + ('name',), name)}; "
                               f"allowed: one of {', '.join(repr(k) for k in kinds)}{hint}"), used
    if err["type"] == "extra_forbidden":
        model = _model_at(err["loc"])
        allowed = _allowed_keys(model) if model is not None else []
        if model is CameraKey:                      # an entry is a keyframe unless it names a shot
            allowed.append("shot")
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (src.where(loc, key=True), f"unknown key {key!r}; allowed keys under {_dotted(loc[:-1])}: "
                                          f"{', '.join(allowed)}{hint}"), used
    where = src.where(loc)
    value = err.get("input")
    if err["type"] == "missing":
        return (where, f"{key}: missing required key"), used
    shown = src.shown(loc, value)
    if err["type"] in ("value_error", "assertion_error"):
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        if isinstance(value, dict):       # a check across the keys of a section: the message names them
            return (where, f"{key}: {msg}"), used
        return (where, f"{key}: bad value {shown}: {msg}"), used
    allowed = _describe_allowed(err)
    alts = []
    for e in branches:
        d = _describe_allowed(e)
        if d and d not in alts:
            alts.append(d)
    if len(alts) > 1:
        allowed = " or ".join(alts)
    if "list_type" in (e["type"] for e in branches):
        allowed = re.sub(r"\ba list$", lambda m: _list_expected(err, src, loc) or m.group(0), allowed)
    allowed = f"; allowed: {allowed}{_hint(err, src, loc)}" if allowed else f" ({err['msg']})"
    return (where, f"{key}: bad value {shown}{allowed}"), used
