"""The scene's text: YAML with its nodes kept, ``--set`` overrides, and :class:`Source`, which says
where a value came from (``FILE:LINE``, or ``FILE (--set KEY)`` for the command line's) and how
it was written there."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from studio.scene.base import SceneError


class _Loader(yaml.SafeLoader):
    """Safe YAML, plus numbers like ``1e-3`` read as floats (YAML 1.1 wants ``1.0e-3``;
    PyYAML would hand a learning rate written ``1e-3`` over as the text "1e-3")."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _duplicate_key(node, loc: tuple = (), _seen: set | None = None):
    """(dotted key, first key node, repeated key node) for the first key given twice in a mapping."""
    _seen = set() if _seen is None else _seen
    if id(node) in _seen:                        # an alias: its node was checked where it was defined
        return None
    _seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else None
            if name is not None and name in seen:
                return _dotted(loc + (name,)), seen[name], k
            if name is not None:
                seen[name] = k
            found = _duplicate_key(v, loc + (name,), _seen)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found = _duplicate_key(v, loc + (i,), _seen)
            if found:
                return found
    return None


def parse_overrides(items: "list[str] | tuple[str, ...]") -> list[tuple[tuple[str, ...], Any]]:
    """``KEY=VALUE`` strings from the command line (``--set landscape.grid.resolution=[150,150]``)
    -> (dotted key as a tuple, value read as YAML)."""
    out = []
    for item in items:
        key, eq, text = item.partition("=")
        parts = tuple(key.strip().split("."))
        if not eq or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in parts):
            raise SceneError(f"--set {item}: give KEY=VALUE with a dotted key, e.g. "
                             f"--set landscape.grid.resolution=[150,150] or --set render.duration=8")
        try:
            value = yaml.load(text, Loader=_Loader) if text.strip() else None
        except yaml.YAMLError as e:
            raise SceneError(f"--set {item}: the value is not valid YAML ({getattr(e, 'problem', None) or e})") from None
        out.append((parts, value))
    return out


def _apply_overrides(path: Path, raw: dict, overrides) -> dict:
    import copy
    raw = copy.deepcopy(raw)
    for parts, value, *_ in overrides:
        d = raw
        for i, p in enumerate(parts[:-1]):
            nxt = d.get(p)
            if nxt is None:
                nxt = d[p] = {}
            if not isinstance(nxt, dict):
                raise SceneError(f"{path} (--set {'.'.join(parts)}): {'.'.join(parts[:i + 1])} is "
                                 f"{type(nxt).__name__}, not a mapping of keys; set it whole instead")
            d = nxt
        d[parts[-1]] = value
    return raw


def _node_at(node, loc: tuple) -> Any:
    """The YAML node at a pydantic error location (for line numbers); the deepest one found."""
    found = node
    for part in loc:
        if isinstance(found, yaml.MappingNode):
            nxt = None
            for k, v in found.value:
                if k.value == part:
                    nxt = v
                    break
            if nxt is None:
                return found
            found = nxt
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int) and part < len(found.value):
            found = found.value[part]
        else:
            return found
    return found


def _key_node(node, loc: tuple):
    """For an unknown key, the node of the key itself."""
    parent = _node_at(node, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _ in parent.value:
            if k.value == loc[-1]:
                return k
    return parent



def _exact_node(node, loc: tuple):
    """The YAML node at ``loc`` exactly, or None when the text does not give that key."""
    found = node
    for part in loc:
        if isinstance(found, yaml.MappingNode):
            found = next((v for k, v in found.value if k.value == part), None)
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int) and part < len(found.value):
            found = found.value[part]
        else:
            return None
        if found is None:
            return None
    return found


def _covers(parts: tuple, loc: tuple) -> bool:
    """Whether an override of ``parts`` set the value at ``loc``: it set the key, a section around
    it, or (for a check across a section's keys) a key inside the section."""
    loc = tuple(str(x) for x in loc)
    return loc[:len(parts)] == parts or parts[:len(loc)] == loc


def plain_value(value: Any) -> str:
    """A value as one line of JSON (YAML's flow style), for messages."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))              # 9, not 9.0: as a number is usually written
    try:
        if isinstance(value, (int, float, str, bool, list, dict)) or value is None:
            return json.dumps(value)
    except (TypeError, ValueError):         # e.g. a YAML date inside a list
        pass
    return repr(value)


class Source:
    """A scene's text as read: the file's path, its YAML nodes and the ``--set`` overrides laid over
    it.  Every message about a value says where the value came from (:meth:`where`) and shows it as
    written (:meth:`shown`): ``2e3`` as ``2e3``, not as the float it was read as."""

    def __init__(self, path: Path, text: str | None = None, root=None,
                 overrides: "list[str] | tuple[str, ...]" = ()):
        self.path = Path(path)
        self.text = text
        self.root = root
        items = [(parts, value, item.partition("=")[2].strip())
                 for item, (parts, value) in zip(overrides, parse_overrides(overrides))]
        self.overrides = items

    @classmethod
    def read(cls, path: str | Path, overrides: "list[str] | tuple[str, ...]" = ()) -> "Source":
        """The scene file's source for messages; without nodes when it cannot be read or parsed."""
        try:
            text = Path(path).read_text(encoding="utf-8")
            root = yaml.compose(text, Loader=_Loader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            text, root = None, None
        return cls(Path(path), text, root, overrides)

    # -- where a value came from

    def override(self, loc: tuple) -> tuple | None:
        """The last ``--set`` (parts, value, text) that set the value at ``loc``, or None."""
        found = [o for o in self.overrides if _covers(o[0], loc)]
        return found[-1] if found else None

    def node(self, loc: tuple, key: bool = False):
        """The nearest node the file has for ``loc`` (with ``key``, the key's own node)."""
        if self.root is None:
            return None
        return _key_node(self.root, loc) if key else _node_at(self.root, loc)

    def where(self, loc: tuple = (), key: bool = False) -> str:
        """``FILE:LINE`` of the value at ``loc`` (the nearest key the file gives), ``FILE (--set
        KEY)`` when the command line set it, or ``FILE``."""
        o = self.override(loc)
        if o is not None:
            return f"{self.path} (--set {'.'.join(o[0])})"
        node = self.node(loc, key)
        if node is None or node.start_mark is None:
            return str(self.path)
        return f"{self.path}:{node.start_mark.line + 1}"

    def origin(self, loc: tuple) -> str:
        """Where the value at ``loc`` is, for a message that names a second key: ``line 12`` or
        ``--set KEY``."""
        o = self.override(loc)
        if o is not None:
            return f"--set {'.'.join(o[0])}"
        node = self.node(loc)
        return f"line {node.start_mark.line + 1}" if node is not None and node.start_mark is not None else "in the file"

    # -- how it was written

    def written(self, loc: tuple) -> str | None:
        """The text of the value at ``loc`` as the file or ``--set`` wrote it, if on one line."""
        o = self.override(loc)
        if o is not None:
            return o[2] if tuple(str(x) for x in loc) == o[0] and "\n" not in o[2] else None
        node = _exact_node(self.root, loc) if self.root is not None else None
        if node is None or self.text is None or node.start_mark is None or node.end_mark is None:
            return None
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and not node.flow_style:
            return None                         # a block list or mapping: not one piece of text
        text = self.text[node.start_mark.index:node.end_mark.index].strip()
        return text if text and "\n" not in text and len(text) <= 200 else None

    def shown(self, loc: tuple, value: Any) -> str:
        """The bad value at ``loc`` for a message: as written (``2e3``, ``[200,200]``, ``'a b'``), text
        written without quotes in double quotes (``"fast"``), else as one line of JSON."""
        written = self.written(loc)
        if written is None or isinstance(value, str) and not written.startswith(("'", '"')):
            return plain_value(value)
        return written

    def panel(self, i: int) -> "PanelSource":
        return PanelSource(self, i)


class PanelSource(Source):
    """Compare panel ``i``'s merged landscape: its keys are ``landscape...`` (the merged section),
    found in the panel's own ``landscape:`` where it gives them, else the scene's."""

    def __init__(self, scene: Source, i: int):
        super().__init__(scene.path, scene.text, scene.root)
        self.scene = scene
        self.overrides = scene.overrides
        self.base = ("compare", "panels", i)

    def owns(self, loc: tuple) -> bool:
        """Whether the panel's text (or a --set of it) gives the key itself."""
        inside = self.base + tuple(loc)
        return (self.root is not None and _exact_node(self.root, inside) is not None) or \
            self.scene.override(inside) is not None

    def override(self, loc: tuple) -> tuple | None:
        inside = self.scene.override(self.base + tuple(loc))
        return inside if inside is not None or self.owns(loc) else self.scene.override(loc)

    def node(self, loc: tuple, key: bool = False):
        panel = self.scene.node(self.base)
        if not isinstance(panel, yaml.MappingNode) or panel is self.scene.node(self.base[:2]):
            return panel
        inner = next((v for k, v in panel.value if k.value == "landscape"), None)
        if inner is None or not loc or loc[0] != "landscape":
            return inner or panel
        return _key_node(inner, loc[1:]) if key and len(loc) > 1 else _node_at(inner, loc[1:])

    def written(self, loc: tuple) -> str | None:
        return self.scene.written(self.base + tuple(loc) if self.owns(loc) else loc)
