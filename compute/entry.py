"""The user's own functions: a scene's ``entry: "module:function"`` (custom models and data).

The module is imported with the scene's folder and the one above it first on ``sys.path``
(studio/fingerprint.py: scene_folders), then the working directory, then the installed packages, so
a ``tiny_models.py`` next to the scene, or a project's ``model.py`` above its ``films/`` folder, is
found whatever directory the compute stage runs from.  The pipeline says which folder that is (:func:`scene_folder`).

Every failure (no such module, no such function, the function raising or returning the wrong
thing) is one :class:`EntryError` naming the scene key and the entry; it is a ``DataError``, so
the command line prints it as one ``error:`` line and no cache entry is left behind.
"""
from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from compute.errors import DataError
from studio.fingerprint import scene_folders

#: folders searched before the working directory (the current scene's, while scene_folder is active)
_FOLDERS: list[list[str]] = []


class EntryError(DataError):
    """A custom model or data entry that cannot be imported, called or used."""


@contextlib.contextmanager
def scene_folder(scene_source: str | os.PathLike | None):
    """While active, custom entries are looked up in the scene file's folders first."""
    folders = [str(f) for f in scene_folders(Path(scene_source).parent)] if scene_source else []
    _FOLDERS.insert(0, folders)
    try:
        yield
    finally:
        _FOLDERS.remove(folders)


def _search_path() -> list[str]:
    out = []
    for d in [*(f for fs in _FOLDERS for f in fs), os.getcwd()]:
        if d not in out:
            out.append(d)
    return out


@contextlib.contextmanager
def _on_path():
    """The scene's folders and the working directory first on sys.path, for the import and the call
    (a module may import its neighbours lazily, inside the function)."""
    saved = list(sys.path)
    sys.path[:0] = _search_path()
    importlib.invalidate_caches()          # files written since start-up (a scene's new module)
    try:
        yield
    finally:
        sys.path[:] = saved


def _where() -> str:
    cwd = os.getcwd()
    scene = [d for d in _search_path() if d != cwd]
    if scene:
        return f"the scene's folders ({', '.join(scene)}), the working directory ({cwd}) or the installed packages"
    return f"the working directory ({cwd}) or the installed packages"


def user_frame(e: BaseException) -> str:
    """' (file.py:12)': the innermost frame of the traceback outside this project's code."""
    skip = (str(Path(__file__).resolve().parent) + os.sep, "site-packages", "dist-packages", "<")
    lib = str(Path(os.__file__).resolve().parent) + os.sep                  # the standard library
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not any(s in f.filename for s in skip) and not f.filename.startswith(lib)]
    if not frames:
        return ""
    f = frames[-1]
    return f" ({Path(f.filename).name}:{f.lineno})"


def resolve(entry: str, key: str) -> Callable:
    """The function an entry names, imported as the module docstring says."""
    module_name, _, attr = entry.partition(":")
    bad = f"{key}.entry: bad value {entry!r}"
    with _on_path():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
                raise EntryError(f"{bad}: no module {e.name!r} in {_where()}; put {e.name}.py next to the "
                                 f"scene, or fix the module name before the ':'") from None
            raise EntryError(f"{bad}: importing {module_name!r} failed: {e}{user_frame(e)} (a module it "
                             f"imports is not installed)") from None
        except Exception as e:  # noqa: BLE001 - the user's module: any error is reported, in one line
            where = f" ({Path(e.filename).name}:{e.lineno})" if isinstance(e, SyntaxError) and e.filename \
                else user_frame(e)
            raise EntryError(f"{bad}: importing {module_name!r} raised {type(e).__name__}: {e}{where}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                           and getattr(v, "__module__", None) == module.__name__)
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            has = f"; it defines {', '.join(names)}" if names else "; it defines no functions"
            raise EntryError(f"{bad}: module {module_name!r} ({_file_of(module)}) has no {part!r}{has}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EntryError(f"{bad}: {attr!r} in module {module_name!r} is a {type(obj).__name__}, not a function")
    return obj


def _file_of(module) -> str:
    f = getattr(module, "__file__", None)
    return str(Path(f).name) if f else "built in"


def call(entry: str, key: str, kwargs: dict, offered: dict | None = None) -> Any:
    """Import the entry's function and call it with ``kwargs`` (the scene's ``args``) and those of
    ``offered`` it takes: a keyword of that name in its signature, or ``**kwargs``.  So a model
    class named directly (``entry: "model:TinyResNet"``, called as ``TinyResNet(num_classes=10)``)
    needs no wrapper that takes ``input_shape`` and ``classes``.  Its errors become one EntryError."""
    fn = resolve(entry, key)
    kwargs = {**_accepted(fn, offered or {}), **kwargs}
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    with _on_path():
        try:
            inspect.signature(fn).bind(**kwargs)
        except TypeError as e:
            raise EntryError(f"{key}.entry: {entry} cannot be called as {attr_name(entry)}({shown}): {e}; "
                             f"check {key}.args") from None
        except ValueError:                   # no signature to check (a builtin): just call it
            pass
        try:
            return fn(**kwargs)
        except Exception as e:  # noqa: BLE001 - the user's code: reported in one line, with where
            raise EntryError(f"{key}.entry: {entry}({shown}) raised {type(e).__name__}: {e}"
                             f"{user_frame(e)}") from None


def _accepted(fn: Callable, offered: dict) -> dict:
    """The keywords of ``offered`` that ``fn`` takes by name (all of them for ``**kwargs``, or where
    it has no signature to read)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return dict(offered)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(offered)
    names = {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return {k: v for k, v in offered.items() if k in names}


def attr_name(entry: str) -> str:
    return entry.partition(":")[2]
