"""What a key allows and defaults to, in words, from its JSON Schema (pydantic's, of the models in
this package), so scenes/README.md's tables (docs.py) and the error messages (errors.py) say the
same thing.  Markdown (values in backticks); :func:`plain` for messages.

A Field can say more than its constraints with ``doc(default=..., allowed=..., applies=...)``
(base.py), stored in the schema as ``x-default``, ``x-allowed`` and ``x-applies``; a list's items
can name themselves with ``x-noun`` (``colours``)."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

COUNTS = {1: "one", 2: "two", 3: "three", 4: "four"}
NOUNS = {"integer": "integers", "number": "numbers", "string": "texts", "boolean": "true/false values",
         "object": "mappings", "array": "lists"}


def plain(text: str) -> str:
    """Markdown of this module as a message's text."""
    return text.replace("`", "")


def number(x: Any) -> str:
    """1000000 as 1,000,000 (powers of two such as 65536 stay as they are), 0.5 as 0.5."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 and x & (x - 1) else str(x)
    return f"{x:g}"


def value(v: Any) -> str:
    """A default or allowed value in backticks, as YAML writes it."""
    if isinstance(v, bool):
        return f"`{'true' if v else 'false'}`"
    if v is None:
        return "none"
    if isinstance(v, str):
        return f"`{v}`"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f"`{json.dumps(v, separators=(', ', ': '))}`"


def bounds(p: dict) -> str:
    """A number's range: ``1 to 240``, ``> 0, at most 10``, ``≥ 0``."""
    lo, lo_x = (p["minimum"], False) if "minimum" in p else (p.get("exclusiveMinimum"), True)
    hi, hi_x = (p["maximum"], False) if "maximum" in p else (p.get("exclusiveMaximum"), True)
    if lo is not None and hi is not None:
        if not lo_x and not hi_x:
            return f"{number(lo)} to {number(hi)}"
        if not lo_x:
            return f"{number(lo)} to < {number(hi)}"
        return f"> {number(lo)}, " + (f"< {number(hi)}" if hi_x else f"at most {number(hi)}")
    if lo is not None:
        return f"{'>' if lo_x else '≥'} {number(lo)}"
    if hi is not None:
        return f"{'<' if hi_x else 'at most'} {number(hi)}"
    return ""


def branches(p: dict) -> list[dict]:
    return [b for b in p.get("anyOf") or p.get("oneOf") or [] if b.get("type") != "null"]


def allowed(p: dict) -> str:
    """What the property schema ``p`` allows, in words."""
    if "x-allowed" in p:
        return p["x-allowed"]
    alts = branches(p)
    if alts:
        return ", or ".join(dict.fromkeys(allowed(b) for b in alts))
    if "const" in p:
        return value(p["const"])
    if "enum" in p:
        return ", ".join(value(v) for v in p["enum"])
    if "$ref" in p or p.get("type") == "object" and "properties" in p:
        return "keys below"
    t = p.get("type")
    if t == "boolean":
        return "`true`, `false`"
    if t in ("integer", "number"):
        b = bounds(p)
        kind = "an integer" if t == "integer" else "a number"
        return b if b else kind
    if t == "string":
        return "text"
    if t == "array":
        return items(p)
    if t == "object":
        return "a mapping"
    return ""


def items(p: dict) -> str:
    """A list's length and items: ``two integers, each 2 to 8192``, ``two lists of two numbers``,
    ``a list of mappings``."""
    item = p.get("items") or {}
    if item.get("type") == "array":
        noun = "lists of " + items(item).removeprefix("a list of ")
    else:
        noun = item.get("x-noun") or NOUNS.get(item.get("type"), "mappings" if "$ref" in item or branches(item)
                                               else "values")
    each = bounds(item) if item.get("type") in ("integer", "number") else ""
    lo, hi = p.get("minItems"), p.get("maxItems")
    if lo is not None and lo == hi:
        count = COUNTS.get(lo, str(lo))
    elif lo and hi == lo + 1:
        count = f"{lo} or {hi}"
    elif lo and hi is not None:
        count = f"{lo} to {hi}"
    elif hi is not None:
        count = f"up to {hi}"
    elif lo:
        count = f"{COUNTS.get(lo, lo)} or more"
    else:
        count = "a list of"
    if count == "one":
        noun = noun.replace("s", "", 1) if noun.startswith("lists") else noun[:-1]
    return f"{count} {noun}" + (f", each {each}" if each else "")


def list_of(p: dict) -> str:
    """``a list of two integers, each 2 to 8192``."""
    text = items(p)
    return text if text.startswith("a list of") else "a list of " + text


def default(p: dict, required: bool = False) -> str:
    """The default, in words: ``required`` for a key without one."""
    if "x-default" in p:
        return p["x-default"]
    if "default" in p:
        return value(p["default"])
    return "required" if required else ""


def example(p: dict, written: str) -> str:
    """The list a scalar given for list ``p`` likely meant: ``200`` for a resolution is ``[200, 200]``,
    ``64`` for the widths ``[64]``; else the field's first example."""
    n, hi = p.get("minItems"), p.get("maxItems")
    if (p.get("items") or {}).get("type") not in ("integer", "number"):
        written = ""
    if written and n is not None and n == hi:
        return "[" + ", ".join([written] * n) + "]"
    if written and (n or 0) <= 1:
        return f"[{written}]"
    if p.get("examples"):
        return json.dumps(p["examples"][0], separators=(", ", ": "))
    return ""


@lru_cache(maxsize=None)
def model_schema(model: type) -> dict:
    return model.model_json_schema(by_alias=True)


def field_schema(model: type, key: str) -> dict:
    """The JSON Schema of ``model``'s key ``key`` (its alias, as the file writes it), or {}."""
    return model_schema(model).get("properties", {}).get(key, {})
