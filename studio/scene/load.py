"""``load_scene``: a scene file (or a dict) to a validated :class:`Scene`, every check run.

Problems are collected, not stopped at: a scene with three typos gets three lines (at most
:data:`SHOWN`, then a count), each ``WHERE: KEY: ...`` with WHERE the file and line of the value,
or ``FILE (--set KEY)`` for a value from the command line."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from studio.scene.base import SceneError
from studio.scene.checks import cross_checks
from studio.scene.errors import Problem, format_errors
from studio.scene.source import Source, _apply_overrides, _duplicate_key, _Loader
from studio.scene.spec import Scene

#: most problems one message lists
SHOWN = 5


def load_scene(path: str | Path, overrides: "list[str] | tuple[str, ...]" = ()) -> Scene:
    """The validated scene of file ``path``; ``overrides``: ``KEY=VALUE`` strings (the command
    lines' ``--set``) laid over the file's values before validation, so a scene can be run at
    other settings (a smaller grid on a CPU) without editing it; they enter the cache key like
    any value of the file."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.yaml"))[:3]
        hint = f", e.g. {path / found[0]} (it holds {', '.join(found)})" if found else " (it holds no .yaml file)"
        raise SceneError(f"{path}: this is a directory, not a scene file; give the path of a .yaml file{hint}")
    if not path.is_file():
        what = "not found" if not path.exists() else "not a regular file"
        raise SceneError(f"{path}: scene file {what} (give the path of a .yaml file, e.g. scenes/default.yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SceneError(f"{path}: not a UTF-8 text file (byte {e.start}); a scene is a YAML text file") from None
    except OSError as e:
        raise SceneError(f"{path}: cannot read the scene file ({e.strerror or e})") from None
    return _load_text(path, text, overrides)


def scene_from_dict(data: dict, name: str = "scene", overrides: "list[str] | tuple[str, ...]" = ()) -> Scene:
    """A scene given as Python data (a notebook's dict) instead of a file: the same validation and
    errors as :func:`load_scene`, with ``name`` standing for the file (``out/<name>.mp4``); custom
    entries are found in the working directory."""
    if not isinstance(data, dict):
        raise SceneError(f"{name}: a scene is a mapping of keys (title, landscape, render, output), got "
                         f"{type(data).__name__}")
    return _load_text(Path(f"{name}.yaml"), yaml.safe_dump(data, sort_keys=False), overrides)


def _load_text(path: Path, text: str, overrides: "list[str] | tuple[str, ...]") -> Scene:
    src = Source(path, text, None, overrides)
    try:
        node = yaml.compose(text, Loader=_Loader)
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise SceneError(f"{where}: YAML syntax error: {problem}") from None
    src.root = node
    dup = _duplicate_key(node)
    if dup is not None:
        key, first, again = dup
        raise SceneError(f"{path}:{again.start_mark.line + 1}: {key}: duplicate key (first given on line "
                         f"{first.start_mark.line + 1}); give each key once")
    if raw is None:
        raise SceneError(f"{path}: the scene file is empty (nothing but comments or blank lines), which would "
                         f"film the whole default scene; start from a copy of scenes/default.yaml, or give the "
                         f"keys you change (title, landscape, render, output)")
    if not isinstance(raw, dict):
        raise SceneError(f"{path}:1: the scene must be a mapping of keys (title, landscape, render, output), "
                         f"got {type(raw).__name__}")
    if "source" in raw:     # Scene.source is where the scene was read from, set below
        raw = {k: v for k, v in raw.items() if k != "source"}
        extra = [(src.where(("source",), key=True), "unknown key 'source'; allowed keys under (top level): "
                                                    "title, landscape, render, output, compare")]
    else:
        extra = []
    raw = _apply_overrides(path, raw, src.overrides)
    try:
        scene = Scene.model_validate(raw)
    except ValidationError as e:
        raise _error(path, extra + format_errors(src, e)) from None
    problems = extra + cross_checks(src, scene)
    scene, more = _resolve_files(src, scene)
    if problems or more:
        raise _error(path, problems + more)
    return scene.model_copy(update={"source": str(path)})


def _error(path: Path, problems: list[Problem]) -> SceneError:
    """One message for a scene's problems: a line each, the first :data:`SHOWN` of them."""
    problems = sorted(dict.fromkeys(problems), key=_line)
    lines = [f"{where}: {what}" for where, what in problems[:SHOWN]]
    rest = len(problems) - SHOWN
    if rest > 0:
        lines.append(f"{path}: {rest} more problem{'s' if rest > 1 else ''} not shown; fix these and run again")
    return SceneError("\n".join(lines))


def _line(problem: Problem) -> float:
    """A problem's line in the file, to list problems in the file's order (--set ones last)."""
    head = problem[0].rpartition(":")[2]
    return int(head) if head.isdigit() else float("inf")


def _resolve_files(src: Source, scene: "Scene") -> tuple["Scene", list[Problem]]:
    """A colormap given as a file: found relative to the scene's folder or the project, parsed and
    checked now (errors name the scene line and the colormap file's line); the scene keeps its
    absolute path, so the render stage reads the same file from any working directory."""
    from studio.assets import ColormapError, is_colormap_file, load_colormap_file, resolve_colormap_file
    look = scene.render.look
    if not is_colormap_file(look.colormap):
        return scene, []
    loc = ("render", "look", "colormap")
    try:
        found = resolve_colormap_file(look.colormap, src.path.parent)
        load_colormap_file(found)
    except ColormapError as e:
        return scene, [(src.where(loc), f"render.look.colormap: bad value {src.shown(loc, look.colormap)}: {e}")]
    look = look.model_copy(update={"colormap": str(found)})
    return scene.model_copy(update={"render": scene.render.model_copy(update={"look": look})}), []
