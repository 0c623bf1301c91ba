"""The cache: the contract between the compute stage and the render stage.

One directory per landscape key, ``cache/<key>/``, written atomically (built
under a temporary name, then renamed), holding plain NumPy arrays and a JSON
provenance record:

    loss.npy            (ny, nx) float32   loss on the grid; NaN where it diverged
    alpha.npy           (nx,)    float64   first plane coordinate of each column
    beta.npy            (ny,)    float64   second plane coordinate of each row
    path_<name>.npz     one per trajectory:
                          xy            (T, 2) float64  plane coordinates
                          loss          (T,)   float64  true loss at that step (full weights)
                          surface_loss  (T,)   float64  loss at the projected point, on the plane
                          offplane      (T,)   float64  distance of the weights from the plane
                          step          (T,)   int64    training step
    meta.json           resolved landscape section, key, format version, seeds,
                        versions, device, parameter count, timings, loss statistics

While the compute stage works, its rows go to ``cache/.<key>.partial/`` with a
progress record, so an interrupted run resumes there.  A directory named
``cache/<key>/`` is only ever a finished entry.

This module uses NumPy only; both stages import it.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.scene import FORMAT_VERSION

DEFAULT_ROOT = Path("cache")


class CacheError(RuntimeError):
    pass


@dataclass(frozen=True)
class Path2D:
    name: str
    xy: np.ndarray
    loss: np.ndarray
    surface_loss: np.ndarray
    offplane: np.ndarray
    step: np.ndarray


@dataclass(frozen=True)
class Landscape:
    key: str
    loss: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    paths: dict[str, Path2D] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def entry_dir(root: Path, key: str) -> Path:
    return Path(root) / key


def partial_dir(root: Path, key: str) -> Path:
    return Path(root) / f".{key}.partial"


def exists(root: Path, key: str) -> bool:
    return (entry_dir(root, key) / "meta.json").is_file()


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def _check(name: str, a: np.ndarray, shape: tuple, kinds: str, finite: bool = False) -> None:
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        raise CacheError(f"{name}: expected shape {shape}, found {a.shape}")
    if a.dtype.kind not in kinds:
        raise CacheError(f"{name}: expected dtype kind {kinds!r}, found {a.dtype}")
    if finite and not np.all(np.isfinite(a)):
        raise CacheError(f"{name}: holds non-finite values")


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
        t = len(p.step)
        _check(f"path {p.name}: xy", p.xy, (t, 2), "f", finite=True)
        _check(f"path {p.name}: loss", p.loss, (t,), "f")
        _check(f"path {p.name}: surface_loss", p.surface_loss, (t,), "f")
        _check(f"path {p.name}: offplane", p.offplane, (t,), "f")
        _check(f"path {p.name}: step", p.step, (t,), "iu")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_temps(root: Path) -> None:
    """Remove temporary entries left by writers that were killed (their process is gone)."""
    for d in root.glob(".*.tmp-*"):
        try:
            pid = int(d.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def write(root: Path, ls: Landscape) -> Path:
    """Write a finished entry atomically; returns its directory."""
    validate(ls)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = entry_dir(root, ls.key)
    tmp = root / f".{ls.key}.tmp-{os.getpid()}"
    _remove_dead_temps(root)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        np.save(tmp / "loss.npy", ls.loss)
        np.save(tmp / "alpha.npy", ls.alpha)
        np.save(tmp / "beta.npy", ls.beta)
        for p in ls.paths.values():
            np.savez(tmp / f"path_{p.name}.npz", xy=p.xy, loss=p.loss, surface_loss=p.surface_loss,
                     offplane=p.offplane, step=p.step)
        meta = dict(ls.meta, key=ls.key, format_version=FORMAT_VERSION, paths=sorted(ls.paths))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read(root: Path, key: str, scene_path: str = "SCENE") -> Landscape:
    """Load and check a finished entry; arrays come back read-only."""
    d = entry_dir(root, key)
    fix = f"run `python -m compute {scene_path}` to compute it"
    if not (d / "meta.json").is_file():
        raise CacheError(f"no landscape in the cache for this scene (key {key}, looked in {d}); {fix}")
    try:
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise CacheError(f"cache entry {d} has format version {meta.get('format_version')}, "
                             f"this program reads version {FORMAT_VERSION}")
        loss = np.load(d / "loss.npy")
        alpha = np.load(d / "alpha.npy")
        beta = np.load(d / "beta.npy")
        paths = {}
        for name in meta.get("paths", []):
            with np.load(d / f"path_{name}.npz") as z:
                paths[name] = Path2D(name, *(_readonly(z[k]) for k in
                                             ("xy", "loss", "surface_loss", "offplane", "step")))
        ls = Landscape(key, _readonly(loss), _readonly(alpha), _readonly(beta), paths, meta)
        validate(ls)
    except CacheError as e:
        raise CacheError(f"cache entry {d} is not usable: {e}; delete it and {fix}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CacheError(f"cache entry {d} is not readable ({e}); delete it and {fix}") from None
    return ls
