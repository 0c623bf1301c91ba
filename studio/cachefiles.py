"""What a landscape entry (studio/cache.py) and a stored trained model (studio/store.py) share on
disk: the format version, ``CacheError``, the array checks, the atomic folder an entry is built
in (clearing what killed writers left), and the lock on a finished entry that files are added to.
NumPy only.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from studio import atomic
from studio.cli import UserError

#: Bump when the cache layout or the meaning of a landscape key changes (the scene's cache keys
#: hash it, studio.scene.spec).
FORMAT_VERSION = 1


class CacheError(UserError, RuntimeError):
    exit_code = 3
    pass


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_temps(root: Path) -> None:
    """Remove temporary entries (or files of an entry) left by writers that were killed."""
    for d in root.glob(".*.tmp-*"):
        try:
            pid = int(d.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
            else:
                d.unlink(missing_ok=True)


def _entry_dir(base: Path, name: str):
    """studio/atomic.py's temporary folder for entry ``name`` under ``base``, after clearing what
    killed writers left there."""
    base.mkdir(parents=True, exist_ok=True)
    _remove_dead_temps(base)
    return atomic.directory(base / name)


class _EntryLock:
    """An advisory lock on an entry directory (flock), so two writers adding descents to the same
    entry do not lose each other's meta.json index."""

    def __init__(self, d: Path):
        self.d = d

    def __enter__(self):
        self.fd = os.open(self.d, os.O_RDONLY)
        try:
            import fcntl
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except (ImportError, OSError):          # no flock here: the renames alone keep files whole
            pass
        return self

    def __exit__(self, *exc):
        os.close(self.fd)                        # closing releases the lock
