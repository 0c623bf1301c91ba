"""What every part of the schema shares: the strict base model, the scene error, and the
checks of values several sections take (colours, ``module:function`` entries and their args)."""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from studio.cli import UserError


class SceneError(UserError, ValueError):
    """A scene file that cannot be used; the message is meant for the user as is."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def doc(default: str | None = None, allowed: str | None = None, applies: str | None = None,
        **schema: Any) -> dict:
    """A Field's ``json_schema_extra``: what scenes/README.md's tables say where the constraints alone
    would say less (markdown; ``x-default``, ``x-allowed``, ``x-applies``, left out of the schema
    editors get), and further JSON Schema for editors (``items`` bounds a validator checks)."""
    extra = {"x-default": default, "x-allowed": allowed, "x-applies": applies}
    return {**{k: v for k, v in extra.items() if v is not None}, **schema}


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_ENTRY = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*:{_IDENT}(?:\.{_IDENT})*$")


def _json_plain(v: Any, where: str = "args") -> None:
    """Raise unless v is made of what JSON holds (the cache key hashes it as JSON): text, numbers,
    true/false, null, lists and mappings with text keys."""
    if v is None or isinstance(v, (str, bool, int)):
        return
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{where} must be finite numbers, got {v}")
        return
    if isinstance(v, list):
        for i, x in enumerate(v):
            _json_plain(x, f"{where}[{i}]")
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be text, got {k!r}")
            _json_plain(x, f"{where}.{k}")
        return
    raise ValueError(f"{where} may hold text, numbers, true/false, null, lists and mappings; got "
                     f"{type(v).__name__} {v!r}")


def _check_entry(v: str) -> str:
    module, colon, function = v.partition(":")
    if colon and module.endswith(".py"):
        raise ValueError(f"an entry names a module, not its file: drop the .py and write "
                         f"'{module[:-3].replace('/', '.')}:{function}'")
    if colon and "/" in module:
        raise ValueError(f"an entry names a module with dots, not a path with slashes: write "
                         f"'{module.strip('/').replace('/', '.')}:{function}' (for a folder next to the scene "
                         f"with an __init__.py)")
    if not _ENTRY.match(v):
        raise ValueError("an entry is 'module:function', e.g. 'tiny_models:ring_net' for the function "
                         "ring_net in tiny_models.py next to the scene (dotted names like "
                         "'package.module:function' work too)")
    return v


class _EntrySpec(_Strict):
    """The user's own function, ``entry: "module:function"`` (compute/entry.py).  The cache key
    covers entry, args and version, and the source of the user's modules behind the entry
    (studio/fingerprint.py: source_digest)."""
    entry: str = Field(description="the function: `module:function`, a module importable from the scene's folder "
                                   "or the one above it, the working directory or the installed packages, and a function in it",
                       json_schema_extra=doc(allowed="`\"module:function\"`"))
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments the function is called with",
                                 json_schema_extra=doc(default="`{}`", allowed="a mapping of text, numbers, "
                                                                               "true/false, lists and mappings"))
    version: int = Field(0, ge=0, description="change it to recompute by hand (the cache key already covers the "
                                              "module file that defines the function and the modules of yours it "
                                              "imports, so editing them recomputes by itself)")

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str) -> str:
        return _check_entry(v)

    @field_validator("args")
    @classmethod
    def _args(cls, v: dict) -> dict:
        _json_plain(v)
        return v


_HEX = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _check_color(v: str) -> str:
    if not _HEX.match(v):
        raise ValueError(f"a colour must be '#rrggbb' or '#rrggbbaa', got {v!r}")
    return v


def _kind(default: str, kinds: dict):
    """A discriminator on ``name`` that defaults to ``default`` when the key is left out."""
    def kind(v: Any) -> str:
        n = v.get("name", default) if isinstance(v, dict) else getattr(v, "name", default)
        return n if isinstance(n, str) and n in kinds else "unknown"
    return kind

