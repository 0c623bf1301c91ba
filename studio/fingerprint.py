"""What a scene's cache key must cover beyond its text: the user's files and the user's code.

The cache key of a scene is a hash of its ``landscape:`` section.  Two inputs are named there only
by reference, so the text alone would keep serving a stale entry after they change:

* **Checkpoint files** the user trained elsewhere.  A retrained run written under the same file
  names must recompute; an unchanged run must stay a cache hit even when its files were copied,
  touched or moved.  So the key covers their *contents* (:func:`files_digest`), in the scene's
  order, and neither their absolute paths nor their modification times.
* **The user's own code**: an ``entry: "package.module:function"`` (a custom model, data set or
  loss).  After the user edits their model the rerun must recompute, so the key covers the source
  bytes of the module file that defines the function and of every module of the user's it
  imports, directly or through others (:func:`user_sources`): a small entry file that imports the
  network from ``model.py`` recomputes when ``model.py`` changes.  Those files are found *without
  importing them* (:func:`find_module_file`; the imports are read from the source's syntax tree):
  scenes are loaded by the render stage too, and loading a scene must never run user code.  The
  search order is the compute stage's importer's (``compute/entry.py``): the scene file's folder
  and the one above it (:func:`scene_folders`), then the working directory, then ``sys.path``.  The user's own modules are those not installed:
  not in the standard library, not in a site-packages folder, not the studio's own packages.

Digests are SHA-256 in hex (about 1 GB/s on one core, with OpenSSL), files read in 4 MiB chunks
into one reused buffer, so a few hundred MB of checkpoints take well under a second or two.

Nothing here imports torch or vispy: both stages load scenes.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import sys
from pathlib import Path

#: bytes read per call; large enough that the per-call overhead vanishes, small enough to be cheap
CHUNK = 4 << 20

#: (resolved path, device, inode, size, mtime_ns) -> hex digest; see files_digest
_MEMO: dict[tuple, str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex.  Always reads the file (no memo)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _stat_key(path: Path) -> tuple:
    st = os.stat(path)
    return (str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _memo_digest(path: Path) -> str:
    """file_digest, remembered for this process under the file's identity, size and mtime.

    The file is stat'ed before and after reading; if it changed meanwhile the digest is used but
    not remembered (it may mix two versions; the next call reads again)."""
    key = _stat_key(path)
    if key in _MEMO:
        return _MEMO[key]
    digest = file_digest(path)
    if _stat_key(path) == key:
        _MEMO[key] = digest
    return digest


def files_digest(paths: list[Path]) -> str:
    """One SHA-256 (hex) over the contents of ``paths``, in the given order.

    Covered: how many files there are, their order and each one's bytes.  Not covered: their
    names, folders and modification times, so moving or copying the whole run folder elsewhere,
    or touching the files, keeps the digest; renaming files only matters where it changes the
    order a glob sorts them in (their order is their role: the trajectory's).

    Per process, each file's digest is remembered under (resolved path, device, inode, size,
    mtime_ns), so loading the same scene twice in one process hashes once.  That is safe because
    rewriting a file's content changes its size or its mtime (nanoseconds) in practice; across
    processes nothing is remembered and every file is read again."""
    h = hashlib.sha256(b"landscape-studio files v1\n")
    h.update(f"{len(paths)}\n".encode())
    for i, p in enumerate(paths):
        h.update(f"{i}:{_memo_digest(Path(p))}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- the user's code

def scene_folders(scene_folder: "Path | None") -> list[Path]:
    """The folders a scene's own files and modules are looked for in before the working directory:
    the scene's folder, then the one above it, so a project's ``films/first.yaml`` finds the
    project's ``model.py`` and ``runs/`` whatever directory the studio runs from."""
    if scene_folder is None:
        return []
    folder = Path(scene_folder).expanduser().resolve()
    return [folder] if folder.parent == folder else [folder, folder.parent]


def _search_folders(scene_folder: Path | None) -> list[Path]:
    """The compute stage's import order: the scene's folders, the working directory, sys.path
    (``''`` in sys.path is the working directory); each folder once."""
    cwd = Path.cwd()
    out: list[Path] = []
    for d in [*scene_folders(scene_folder), cwd, *sys.path]:
        folder = (cwd / d).resolve()           # cwd / "" is cwd
        if folder not in out and folder.is_dir():   # zip files on sys.path are skipped
            out.append(folder)
    return out


def _find_in(folders: list[Path], name: str) -> tuple[Path | None, list[Path]]:
    """Where ``name`` is in ``folders``, as the import system's path finder looks: the first
    folder holding a package ``name/__init__.py`` or a module ``name.py`` (a package before a
    module in the same folder) wins.  -> (its file, its package folders if it is a package).
    Folders ``name/`` without ``__init__.py`` only count when no regular one exists: together
    they are a namespace package (no file, but submodules can be looked up in them)."""
    namespace: list[Path] = []
    for folder in folders:
        pkg = folder / name
        if (pkg / "__init__.py").is_file():
            return pkg / "__init__.py", [pkg]
        if (folder / f"{name}.py").is_file():
            return folder / f"{name}.py", []
        if pkg.is_dir():
            namespace.append(pkg)
    return None, namespace


def find_module_file(module: str, scene_folder: Path | None) -> Path | None:
    """The source file of ``module`` (``a.b.c`` is ``a/b/c.py`` or ``a/b/c/__init__.py``), looked
    up as the compute stage imports it (see the module docstring), without importing anything.

    The top-level name is searched in the scene's folders, the working directory and sys.path;
    each further part only inside the package found before it, as Python does.  None when it is
    not found, is a namespace package (no file), or only exists as compiled code: the compute
    stage reports the import error properly later."""
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    folders = _search_folders(Path(scene_folder) if scene_folder is not None else None)
    found: Path | None = None
    for part in parts:
        if not folders:                     # the previous part was a plain module, not a package
            return None
        found, folders = _find_in(folders, part)
        if found is None and not folders:
            return None
    return found


def source_digest(entry: str, scene_folder: Path | None) -> str | None:
    """SHA-256 (hex) of the user's code behind ``entry`` (``"mod.sub:func"``): the module file that
    defines it and the user's modules it imports (:func:`user_sources`), or None when the module's
    file cannot be found (see :func:`find_module_file`).  With no module of the user's imported, it
    is the digest of the one file."""
    module = entry.partition(":")[0].strip()
    files = user_sources(module, scene_folder) if module else []
    if not files:
        return None
    (_, first), rest = files[0], files[1:]
    digest = file_digest(first)
    if not rest:
        return digest
    h = hashlib.sha256(f"landscape-studio sources v1\n{digest}\n".encode())
    for name, path in rest:
        h.update(f"{name}:{file_digest(path)}\n".encode())
    return h.hexdigest()


def user_sources(module: str, scene_folder: Path | None) -> list[tuple[str, Path]]:
    """(module name, file) of ``module`` and of every module of the user's it imports, directly or
    through another: the entry's module first, then the others by name.  Imports are read from each
    file's syntax tree (``import a.b``, ``from a import b``, relative imports, imports inside
    functions), never run; a module that is installed (:func:`_installed`) is not followed, except
    the entry's own (a model function from an installed package of the user's still counts)."""
    found: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = find_module_file(name, scene_folder)
        if path is None or (name != module and _installed(path)) or path in found.values():
            continue
        found[name] = path
        todo.extend(n for n in _imports(path, name) if n not in found)
    first = [(module, found.pop(module))] if module in found else []
    return first + sorted(found.items())


def _imports(path: Path, module: str) -> list[str]:
    """The modules a source file imports (and, for ``from a import b``, ``a.b`` too, which may be a
    submodule), resolving relative imports against its package.  A file that does not parse
    imports nothing here (the compute stage reports it when it imports it)."""
    import ast
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                out += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".") if package else []
                up = up[:len(up) - (node.level - 1)] if node.level > 1 else up
                base = ".".join([*up, base] if base else up)
            if base:
                out.append(base)
                out += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return out


def _installed_roots() -> list[str]:
    """Folders whose modules are installed code, not the user's: the standard library, every
    site-packages, and this studio's own packages."""
    import site
    import sysconfig
    roots = [sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    try:
        roots += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:                               # a virtualenv's old site module
        pass
    studio = Path(__file__).resolve().parent.parent
    roots += [str(studio / pkg) for pkg in ("studio", "compute", "render", "export")]
    return [str(Path(r).resolve()) + os.sep for r in roots if r]


def _installed(path: Path) -> bool:
    p = str(Path(path).resolve())
    parts = Path(p).parts
    return ("site-packages" in parts or "dist-packages" in parts
            or any(p.startswith(root) for root in _installed_roots()))


# --------------------------------------------------------------------------- the user's files

def _natural(path: Path) -> tuple:
    """Sort key: digit runs compare as numbers, so step_9.pt comes before step_10.pt; the plain
    path breaks ties (step_07 and step_7), so the order never depends on the folder listing."""
    s = str(path)
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)], s


def user_folders(scene_source: "str | os.PathLike | None") -> list[Path]:
    """Where a scene's relative paths (weight files, a run folder) are looked for, in order: the
    scene file's folder, the folder above it (:func:`scene_folders`), then the working directory,
    each once: the order its ``module:function`` entries are imported in.  So a project's
    ``films/first.yaml`` with ``files: "runs/*.pt"`` finds ``films/runs`` if it is there, and the
    project's ``runs`` otherwise, whatever directory the studio runs from."""
    out = scene_folders(Path(scene_source).parent) if scene_source else []
    cwd = Path.cwd().resolve()
    return out + [cwd] if cwd not in out else out


def _folders(base: "Path | list[Path]") -> list[Path]:
    return [Path(b) for b in base] if isinstance(base, (list, tuple)) else [Path(base)]


def _where(folders: list[Path]) -> str:
    if len(folders) == 1:
        return f"the working directory ({folders[0]})" if folders[0].resolve() == Path.cwd().resolve() \
            else f"{folders[0]}"
    return (f"{', '.join(str(f) for f in folders[:-1])} or {folders[-1]} (the scene's folder and the one "
            f"above it, then the working directory)")


def find_path(item: str, base: "Path | list[Path]") -> Path:
    """A relative path the scene names (``~`` expanded): in the first of ``base``'s folders where it
    exists, else where it would be in the first."""
    folders = _folders(base)
    candidates = [f / os.path.expanduser(item) for f in folders]
    return next((c for c in candidates if c.exists()), candidates[0])


def expand_files(spec: str | list[str], base: "Path | list[Path]") -> list[Path]:
    """The files a scene names.

    A string is a glob pattern (``~`` expanded, ``**`` matching any number of folders; relative to
    the first folder of ``base`` (one folder, or :func:`user_folders`) where it matches): the
    matching files, folders skipped, in natural order (digit runs compare as numbers: ``step_9.pt``
    before ``step_10.pt``; otherwise by path).  A list names files one by one (``~`` expanded, each
    found as :func:`find_path` finds it), kept in its order.

    Raises ValueError, one line naming the pattern or path as written, for a pattern that matches
    no file, a listed file that does not exist, and a listed path that is a folder."""
    folders = _folders(base)
    if isinstance(spec, str):
        pattern = os.path.expanduser(spec)
        for folder in folders:
            full = pattern if os.path.isabs(pattern) else os.path.join(glob.escape(str(folder)), pattern)
            files = [Path(p) for p in glob.glob(full, recursive=True) if os.path.isfile(p)]
            if files:
                return sorted(files, key=_natural)
        where = "" if os.path.isabs(pattern) else f"; relative patterns are taken from {_where(folders)}"
        raise ValueError(f"{spec!r} matches no file{where}")
    out = []
    for item in spec:
        p = find_path(item, folders)
        if p.is_dir():
            raise ValueError(f"{item!r} is a folder, not a file; list its files, or give a pattern such as "
                             f"'{item.rstrip('/')}/*'")
        if not p.is_file():
            where = p if os.path.isabs(os.path.expanduser(item)) else _where(folders)
            raise ValueError(f"{item!r}: no such file in {where}")
        out.append(p)
    return out


def run_folder_files(folder: str, base: "Path | list[Path]") -> list[Path]:
    """A recorder's run folder (compute/run/recorder.py) as the files its key covers: its ``run.json``
    and the snapshot files it lists, read as plain JSON (no torch).  Raises ValueError, one line,
    for a folder that is not there or holds no readable run.json; compute/run/recorder.py: read_run
    checks the rest when the compute stage loads the run."""
    import json
    root = find_path(folder, base)
    manifest = root / "run.json"
    if not root.is_dir():
        raise ValueError(f"{folder!r} is not a folder ({root}); write one with compute.run.recorder.Recorder from your "
                         f"training loop, or name checkpoint files with landscape.weights.files")
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        names = [s["file"] for s in doc["snapshots"]]
    except OSError:
        raise ValueError(f"{folder!r} has no run.json, so it is not a run folder written by "
                         f"compute.run.recorder.Recorder; for plain checkpoint files use landscape.weights.files") from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{manifest} is not a readable run.json (written by compute.run.recorder.Recorder)") from None
    files = [root / n for n in names]
    missing = [n for n, f in zip(names, files) if not f.is_file()]
    if missing:
        raise ValueError(f"{folder!r}: run.json lists {missing[0]}, which is not in the folder"
                         + (f" ({len(missing)} files missing)" if len(missing) > 1 else ""))
    return [manifest, *files]


def weights_files(spec: dict, base: "Path | list[Path]") -> list[Path]:
    """Every file a resolved ``landscape.weights`` section reads, in a fixed order: the checkpoints
    (or the run folder's run.json and snapshots), then a separate ``final`` file."""
    files = run_folder_files(spec["run"], base) if spec.get("run") else expand_files(spec["files"], base)
    final = spec.get("final")
    if isinstance(final, str):
        extra = expand_files([final], base)[0]
        if all(extra.resolve() != f.resolve() for f in files):
            files.append(extra)
    return files
