"""The cache: the contract between the compute stage and the render stage.

One directory per landscape key, ``cache/<key>/``, written atomically (built
under a temporary name, then renamed), holding plain NumPy arrays and a JSON
provenance record:

    loss.npy            (ny, nx) float32   loss on the grid; NaN where it diverged
    alpha.npy           (nx,)    float64   first plane coordinate of each column
    beta.npy            (ny,)    float64   second plane coordinate of each row
    path_<name>.npz     one per trajectory (``training``; a ``minima`` plane's other two runs
                        too, ``training_2`` and ``training_3``):
                          xy            (T, 2) float64  plane coordinates
                          loss          (T,)   float64  true loss at that step (full weights)
                          surface_loss  (T,)   float64  loss at the projected point, on the plane
                          offplane      (T,)   float64  distance of the weights from the plane
                          step          (T,)   int64    training step
    origin.npy          (P,)     float32   the plane's origin: the flat weight vector at (0, 0)
    d1.npy, d2.npy      (P,)     float32   its two directions; a point (a, b) stands for the weights
                                           origin + a*d1 + b*d2 (P parameters, concatenated in the
                                           model's named_parameters order).  With the landscape
                                           section they rebuild the plane without retraining, so
                                           descents can be added to a finished entry.
    descent_<hash>.npz  one per in-plane descent (landscape.descents), same arrays as a
                        path_<name>.npz: xy (steps+1, 2) float64, loss, surface_loss (= loss:
                        the path lies on the plane), offplane (zeros), step (0, 1, ...).
                        <hash> is :func:`descent_key` of the resolved descent (name included),
                        so editing a descent adds a file and never touches the grid.  A path
                        that met a non-finite loss ends at the last finite point.
    grid_<name>.npy     optional, (ny, nx) float32: further quantities on the same grid (e.g.
                        ``grid_accuracy.npy``, accuracy in [0, 1]); listed in meta.json's
                        ``grids``.  Optional files: an entry without them is still valid, and
                        the render stage says which one it needs when asked to show it.
    meta.json           resolved landscape section, key, format version, seeds,
                        versions, device, parameter count, timings, loss statistics,
                        ``training`` (the trained model's ``train_key``, the run's settings and
                        the per-snapshot ``log``: columns LOG_COLUMNS; see :func:`training_log`),
                        ``plane`` (method, extent and the method's own record: a ``minima``
                        plane's ``marks`` say where its three networks sit; scenes/README.md),
                        and ``descents``: {hash: {"spec": resolved descent, "steps_done": n,
                        "stopped": null or why it ended early, "seconds": s}},
                        and with a sequence ``sequence``: its provenance (grids, steps, ...)
    sequence_loss.npy   (K, ny, nx) float32  with ``landscape.sequence`` (meta.json's
                        ``sequence`` set): grid k is the loss around training snapshot
                        index[k], on the same alpha and beta (:class:`GridSequence`);
                        read as a read-only memory map
    sequence.npz        step (K,) int64, index (K,) int64 (strictly increasing snapshot
                        indices into the training path), xy (K, 2) float64 (each
                        snapshot's place on the plane); K >= 1
    figures.json        optional, the landscape's morphology (compute/morphology,
                        docs/figures.md): {"options": the scene's landscape.figures,
                        "figures": the figures as plain values (null where the training
                        diverged: then "diverged": true), "seconds", "device", and why
                        some were left out: "note", "omitted"}
    figures.npz         optional, with figures.json: ``basin_absolute``, ``basin_relative``
                        (ny, nx) bool masks (of every k-th row and column of a grid over
                        1024 a side), and with a convexity map ``convexity_ratio``,
                        ``convexity_lambda_min``, ``convexity_lambda_max`` (k, k) float64
                        and ``convexity_alpha``, ``convexity_beta`` (k,)

Descents and figures are computed on top of a finished entry (``add_descents``,
``write_figures``): each file is written under a temporary name and renamed into
place, then meta.json (figures: figures.json, after figures.npz) is rewritten the
same way, under an advisory lock on the entry directory.  :func:`read` does not
look at the figures; ``read_figures`` gives None for an entry without readable
ones, and the compute stage measures them again.
``read(root, key, scene_path, descents=[...])`` returns each requested descent in
``Landscape.paths`` under its name (a missing one is a :class:`CacheError` that
says to run ``python -m compute SCENE``).  The plane vectors are read only on
request (``read_plane``), so the render stage never loads them.

While the compute stage works, its rows go to ``cache/.<key>.partial/`` with a
progress record, so an interrupted run resumes there.  A directory named
``cache/<key>/`` is only ever a finished entry.

This module uses NumPy only; both stages import it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from studio import atomic
from studio.cachefiles import (FORMAT_VERSION, CacheError, _check, _entry_dir, _EntryLock, _readonly,
                               _remove_dead_temps)
from studio.store import (LOG_COLUMNS, MODELS, TrainedModel, check_log, has_model, model_dir, read_model,
                          training_log, write_model)

#: the names importers take from here, the model store's (studio/store.py) and CacheError and
#: FORMAT_VERSION (studio/cachefiles.py) included
__all__ = ["FORMAT_VERSION", "DEFAULT_ROOT", "CACHE_ENV", "default_root", "CacheError", "Path2D", "PlaneVectors", "Descent", "GridSequence",
           "Landscape", "canonical_descent", "descent_key", "describe_descent", "entry_dir", "partial_dir",
           "exists", "problem", "validate", "write", "add_descents", "missing_descents", "read_plane", "read",
           "MODELS", "LOG_COLUMNS", "TrainedModel", "model_dir", "has_model", "check_log", "training_log",
           "write_model", "read_model", "write_figures", "read_figures"]

DEFAULT_ROOT = Path("cache")
#: the environment variable that names one cache root for every scene
CACHE_ENV = "LANDSCAPE_STUDIO_CACHE"
#: what marks a folder as a project's: the cache goes in its cache/ folder
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git", "cache")


def default_root(scene: "str | Path | None") -> Path:
    """Where a scene's landscapes are cached when no cache folder is named: ``$LANDSCAPE_STUDIO_CACHE``
    if set; else ``cache/`` in the scene's project, the nearest folder above the scene file (its own
    included) that holds ``pyproject.toml``, ``setup.py``, ``setup.cfg``, ``.git`` or a ``cache/``
    folder; else ``cache/`` next to the scene.  A scene without a file (a dict from Python) uses the
    working directory's ``cache/``.  So the same scene finds its landscapes from any working
    directory: a notebook in another folder, a script run from elsewhere."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    if scene is None or str(scene) in ("", "SCENE"):
        return DEFAULT_ROOT
    folder = Path(scene).expanduser().resolve().parent
    home = Path.home().resolve()
    for d in (folder, *folder.parents):
        if d == home or d == Path(d.anchor):
            break
        if any((d / m).exists() for m in PROJECT_MARKERS):
            return d / "cache"
    return folder / "cache"


@dataclass(frozen=True)
class Path2D:
    name: str
    xy: np.ndarray
    loss: np.ndarray
    surface_loss: np.ndarray
    offplane: np.ndarray
    step: np.ndarray


@dataclass(frozen=True)
class PlaneVectors:
    """The plane through weight space: flat float32 vectors in named_parameters order."""
    origin: np.ndarray
    d1: np.ndarray
    d2: np.ndarray


@dataclass(frozen=True)
class Descent:
    """An in-plane descent: its resolved spec (see :func:`canonical_descent`), its path, and notes
    (``steps_done``, ``stopped``: None or why it ended early, ``seconds``)."""
    spec: dict
    path: Path2D
    info: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return descent_key(self.spec)


@dataclass(frozen=True)
class GridSequence:
    """A landscape over training: grid k is the loss around the training snapshot ``index[k]`` (at
    step ``step[k]``), on the plane carried along with the weights so that the grid's point
    ``xy[k]`` (the snapshot's place on the entry's plane) is the snapshot itself.  Same alpha and
    beta as the entry's still grid.  :func:`read` maps ``loss`` from disk (read-only), so a long
    sequence is never all in memory."""
    loss: np.ndarray        # (K, ny, nx) float32, NaN where a cell diverged
    step: np.ndarray        # (K,) int64 training steps
    index: np.ndarray       # (K,) int64 index of each grid's snapshot in the training path
    xy: np.ndarray          # (K, 2) float64 the snapshot's plane coordinates


@dataclass(frozen=True)
class Landscape:
    key: str
    loss: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    paths: dict[str, Path2D] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    #: written by :func:`write` when given; :func:`read` leaves it None (see :func:`read_plane`)
    plane: Optional[PlaneVectors] = None
    #: descents by :func:`descent_key`: written by :func:`write`; :func:`read` fills in the requested
    #: ones (their paths are also in ``paths``, under their names)
    descents: dict[str, Descent] = field(default_factory=dict)
    #: optional extra grids by name (``accuracy``, ...), each (ny, nx) float32 like ``loss``
    grids: dict[str, np.ndarray] = field(default_factory=dict)
    #: the landscape over training, when the scene asks for one (landscape.sequence)
    sequence: Optional[GridSequence] = None


_DESCENT_KEYS = ("name", "optimizer", "lr", "momentum", "start", "steps")


def canonical_descent(spec: Any) -> dict:
    """A descent (a ``studio.scene.DescentSpec`` or its resolved dict) as plain, typed data."""
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump(mode="json")
    missing = [k for k in _DESCENT_KEYS if k not in spec]
    if missing:
        raise CacheError(f"descent spec lacks {', '.join(missing)}: {spec!r}")
    return {"name": str(spec["name"]), "optimizer": str(spec["optimizer"]), "lr": float(spec["lr"]),
            "momentum": float(spec["momentum"]), "start": [float(v) for v in spec["start"]],
            "steps": int(spec["steps"])}


def descent_key(spec: Any) -> str:
    """First 16 hex digits of the sha256 of the canonical JSON of the resolved descent (name included)."""
    canon = json.dumps(canonical_descent(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def describe_descent(spec: Any) -> str:
    s = canonical_descent(spec)
    mom = f", momentum {s['momentum']:g}" if s["optimizer"] in ("momentum", "nesterov") else ""
    return (f"{s['name']!r} ({s['optimizer']}, lr {s['lr']:g}{mom}, from [{s['start'][0]:g}, "
            f"{s['start'][1]:g}], {s['steps']} steps)")


def entry_dir(root: Path, key: str) -> Path:
    return Path(root) / key


def partial_dir(root: Path, key: str) -> Path:
    return Path(root) / f".{key}.partial"


def exists(root: Path, key: str) -> bool:
    return (entry_dir(root, key) / "meta.json").is_file()


def problem(root: Path, key: str) -> Optional[str]:
    """Why a finished entry cannot be used (a truncated array, a bad header, missing plane vectors),
    or None: the checks :func:`read` and :func:`read_plane` make, for the compute stage to run on a
    cache hit before it trusts the entry."""
    try:
        read(root, key)
        if read_plane(root, key) is None:
            return f"cache entry {entry_dir(root, key)} has no plane vectors"
    except CacheError as e:
        return str(e).split("; delete ")[0]
    return None


_GRID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def validate(ls: Landscape) -> None:
    _check("loss", ls.loss, (None, None), "f")
    ny, nx = ls.loss.shape
    if ls.loss.dtype != np.float32:
        raise CacheError(f"loss: expected float32, found {ls.loss.dtype}")
    _check("alpha", ls.alpha, (nx,), "f", finite=True)
    _check("beta", ls.beta, (ny,), "f", finite=True)
    if not (np.all(np.diff(ls.alpha) > 0) and np.all(np.diff(ls.beta) > 0)):
        raise CacheError("alpha and beta must increase strictly")
    for p in ls.paths.values():
        _validate_path(p)
    for name, g in ls.grids.items():
        if not _GRID_NAME.match(name):
            raise CacheError(f"grid name {name!r}: lower-case letters, digits and _, starting with a letter")
        _check(f"grid {name}", g, (ny, nx), "f")
        if g.dtype != np.float32:
            raise CacheError(f"grid {name}: expected float32, found {g.dtype}")
    if ls.plane is not None:
        _validate_plane(ls.plane)
    for h, d in ls.descents.items():
        _validate_descent(h, d)
    if ls.sequence is not None:
        _validate_sequence(ls.sequence, ny, nx)


def _validate_sequence(q: GridSequence, ny: int, nx: int) -> None:
    k = len(q.step)
    _check("sequence loss", q.loss, (k, ny, nx), "f")
    if q.loss.dtype != np.float32:
        raise CacheError(f"sequence loss: expected float32, found {q.loss.dtype}")
    _check("sequence step", q.step, (k,), "iu")
    _check("sequence index", q.index, (k,), "iu")
    _check("sequence xy", q.xy, (k, 2), "f", finite=True)
    if k < 1 or np.any(np.diff(q.index) <= 0):
        raise CacheError("sequence: needs at least one grid, at increasing snapshot indices")


def _validate_path(p: Path2D) -> None:
    t = len(p.step)
    _check(f"path {p.name}: xy", p.xy, (t, 2), "f", finite=True)
    _check(f"path {p.name}: loss", p.loss, (t,), "f")
    _check(f"path {p.name}: surface_loss", p.surface_loss, (t,), "f")
    _check(f"path {p.name}: offplane", p.offplane, (t,), "f")
    _check(f"path {p.name}: step", p.step, (t,), "iu")
    if t < 1:
        raise CacheError(f"path {p.name}: has no points")


def _validate_plane(pv: PlaneVectors) -> None:
    n = None
    for name in ("origin", "d1", "d2"):
        a = getattr(pv, name)
        # not finite where the training diverged (meta.json's plane.diverged): the grid is NaN there
        _check(name, a, (n,), "f")
        if a.dtype != np.float32:
            raise CacheError(f"{name}: expected float32, found {a.dtype}")
        n = a.shape[0]


def _validate_descent(h: str, d: Descent) -> None:
    if h != d.key:
        raise CacheError(f"descent {d.spec.get('name')!r}: stored under {h}, but its spec hashes to {d.key}")
    if d.path.name != d.spec["name"]:
        raise CacheError(f"descent {h}: path named {d.path.name!r}, spec named {d.spec['name']!r}")
    _validate_path(d.path)


def _save_path(f, p: Path2D) -> None:
    np.savez(f, xy=p.xy, loss=p.loss, surface_loss=p.surface_loss, offplane=p.offplane, step=p.step)


def _load_path(file: Path, name: str) -> Path2D:
    with np.load(file) as z:
        return Path2D(name, *(_readonly(z[k]) for k in ("xy", "loss", "surface_loss", "offplane", "step")))


def _descent_index(descents: dict[str, Descent]) -> dict:
    return {h: dict(d.info, spec=d.spec) for h, d in descents.items()}


def write(root: Path, ls: Landscape) -> Path:
    """Write a finished entry atomically; returns its directory."""
    validate(ls)
    with _entry_dir(Path(root), ls.key) as tmp:
        np.save(tmp / "loss.npy", ls.loss)
        np.save(tmp / "alpha.npy", ls.alpha)
        np.save(tmp / "beta.npy", ls.beta)
        for p in ls.paths.values():
            _save_path(tmp / f"path_{p.name}.npz", p)
        if ls.plane is not None:
            for name in ("origin", "d1", "d2"):
                np.save(tmp / f"{name}.npy", getattr(ls.plane, name))
        for h, d in ls.descents.items():
            _save_path(tmp / f"descent_{h}.npz", d.path)
        for name, g in ls.grids.items():
            np.save(tmp / f"grid_{name}.npy", g)
        if ls.sequence is not None:
            np.save(tmp / "sequence_loss.npy", ls.sequence.loss)
            np.savez(tmp / "sequence.npz", step=ls.sequence.step, index=ls.sequence.index, xy=ls.sequence.xy)
        meta = dict(ls.meta, key=ls.key, format_version=FORMAT_VERSION, paths=sorted(ls.paths),
                    descents=_descent_index(ls.descents), grids=sorted(ls.grids))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return entry_dir(root, ls.key)


def add_descents(root: Path, key: str, descents: Iterable[Descent] = (),
                 plane: Optional[PlaneVectors] = None) -> Path:
    """Add descents (and, for an entry written without them, the plane vectors) to a finished entry.

    Nothing else in the entry changes: each file is written atomically, then meta.json's
    ``descents`` index is rewritten atomically.  Returns the entry's directory."""
    d = entry_dir(root, key)
    if not (d / "meta.json").is_file():
        raise CacheError(f"no finished cache entry {d} to add descents to")
    descents = list(descents)
    for ds in descents:
        _validate_descent(ds.key, ds)
    if plane is not None:
        _validate_plane(plane)
    with _EntryLock(d):
        _remove_dead_temps(d)                    # files of writers that were killed mid-way
        if plane is not None:
            for name in ("origin", "d1", "d2"):
                atomic.write_file(d / f"{name}.npy", lambda f, a=getattr(plane, name): np.save(f, a))
        for ds in descents:
            atomic.write_file(d / f"descent_{ds.key}.npz", lambda f, ds=ds: _save_path(f, ds.path))
        meta = json.loads((d / "meta.json").read_text())
        index = dict(meta.get("descents") or {})
        index.update(_descent_index({ds.key: ds for ds in descents}))
        meta["descents"] = index
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        atomic.write_file(d / "meta.json", lambda fh: fh.write(text.encode()))
    return d


def missing_descents(root: Path, key: str, descents: Iterable[Any]) -> list[dict]:
    """The resolved descents among ``descents`` that the entry does not hold yet."""
    d = entry_dir(root, key)
    out = []
    for spec in descents:
        c = canonical_descent(spec)
        if not (d / f"descent_{descent_key(c)}.npz").is_file():
            out.append(c)
    return out


def read_plane(root: Path, key: str, scene_path: str = "SCENE") -> Optional[PlaneVectors]:
    """The entry's plane vectors (read-only memory maps), or None for an entry written without them."""
    d = entry_dir(root, key)
    files = [d / f"{n}.npy" for n in ("origin", "d1", "d2")]
    if not any(f.is_file() for f in files):
        return None
    try:
        pv = PlaneVectors(*(np.load(f, mmap_mode="r") for f in files))
        _validate_plane(pv)
    except CacheError as e:
        raise CacheError(f"cache entry {d}: plane vectors not usable: {e}; delete the entry and run "
                         f"`python -m compute {scene_path}` to compute it") from None
    except (OSError, ValueError) as e:
        raise CacheError(f"cache entry {d}: plane vectors not readable ({e}); delete the entry and run "
                         f"`python -m compute {scene_path}` to compute it") from None
    return pv


def read(root: Path, key: str, scene_path: str = "SCENE", descents: Iterable[Any] = (),
         mmap: bool = False) -> Landscape:
    """Load and check a finished entry; arrays come back read-only (``mmap``: the loss grid mapped
    from disk, not read into memory).

    ``descents`` (``studio.scene.DescentSpec`` objects or their resolved dicts): the in-plane
    descents to load as well; each comes back in ``paths`` under its name (and in ``descents``
    under its hash).  One the entry does not hold is an error that says to run the compute stage."""
    d = entry_dir(root, key)
    fix = f"run `python -m compute {scene_path}` to compute it"
    if not (d / "meta.json").is_file():
        raise CacheError(f"no landscape in the cache for this scene (key {key}, looked in {d}); {fix}")
    specs = [canonical_descent(s) for s in descents]
    try:
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise CacheError(f"cache entry {d} has format version {meta.get('format_version')}, "
                             f"this program reads version {FORMAT_VERSION}")
        loss = np.load(d / "loss.npy", mmap_mode="r" if mmap else None)
        alpha = np.load(d / "alpha.npy")
        beta = np.load(d / "beta.npy")
        paths = {}
        for name in meta.get("paths", []):
            paths[name] = _load_path(d / f"path_{name}.npz", name)
        grids = {name: _readonly(np.load(d / f"grid_{name}.npy")) for name in meta.get("grids", [])}
        seq = None
        if meta.get("sequence"):
            with np.load(d / "sequence.npz") as z:
                seq = GridSequence(np.load(d / "sequence_loss.npy", mmap_mode="r"), _readonly(z["step"]),
                                   _readonly(z["index"]), _readonly(z["xy"]))
        ls = Landscape(key, _readonly(loss), _readonly(alpha), _readonly(beta), paths, meta, grids=grids,
                       sequence=seq)
        validate(ls)
    except CacheError as e:
        raise CacheError(f"cache entry {d} is not usable: {e}; delete it and {fix}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CacheError(f"cache entry {d} is not readable ({e}); delete it and {fix}") from None
    index = meta.get("descents") or {}
    for spec in specs:
        h = descent_key(spec)
        f = d / f"descent_{h}.npz"
        if not f.is_file():
            raise CacheError(f"the cache entry {d} has no descent {describe_descent(spec)} yet (the grid is "
                             f"there: computing it takes seconds); run `python -m compute {scene_path}` "
                             f"to compute it")
        try:
            ds = Descent(spec, _load_path(f, spec["name"]), {k: v for k, v in (index.get(h) or {}).items()
                                                             if k != "spec"})
            _validate_descent(h, ds)
        except CacheError as e:
            raise CacheError(f"cache entry {d}: descent file {f.name} is not usable: {e}; delete the file "
                             f"and {fix}") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CacheError(f"cache entry {d}: descent file {f.name} is not readable ({e}); delete the "
                             f"file and {fix}") from None
        paths[spec["name"]] = ds.path
        ls.descents[h] = ds
    return ls


# --------------------------------------------------------------------------- figures

def write_figures(root: Path, key: str, record: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Store an entry's figures (replacing earlier ones), each file atomically, under the entry's lock."""
    d = entry_dir(root, key)
    if not (d / "meta.json").is_file():
        raise CacheError(f"no finished cache entry {d} to add figures to")
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n"
    with _EntryLock(d):
        _remove_dead_temps(d)
        atomic.write_file(d / "figures.npz", lambda f: np.savez_compressed(f, **arrays))
        atomic.write_file(d / "figures.json", lambda fh: fh.write(text.encode()))
    return d


def read_figures(root: Path, key: str) -> Optional[tuple[dict, dict[str, np.ndarray]]]:
    """(record, arrays) of an entry's figures (the module docstring's figures.json and figures.npz),
    or None when it has none or they are not readable (a file cut short, not JSON, not an npz, a
    record without ``figures``).  None, not an error: figures are derived from the entry and cheap
    to measure again, so the compute stage (compute/describe.py: ``current``) measures them again,
    and ``python -m compute describe --force`` replaces them, instead of stopping on them."""
    d = entry_dir(root, key)
    if not (d / "figures.json").is_file() or not (d / "figures.npz").is_file():
        return None
    try:
        record = json.loads((d / "figures.json").read_text())
        with np.load(d / "figures.npz") as z:
            arrays = {k: _readonly(z[k]) for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if not isinstance(record, dict) or "figures" not in record:
        return None
    # (``figures`` is null where the training diverged and the grid holds no finite loss)
    return record, arrays
