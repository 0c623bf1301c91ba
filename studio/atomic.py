"""Files and folders that appear only when complete.

Every writer of this project (cache entries, run and plane records, progress records, films'
frames, stills, storyboards, reports, recorder snapshots, bench rows) writes under a temporary
name beside the target and renames it into place, so a reader, a crash or Ctrl-C sees the old
file or the new one, never half of one.  This module is that rule's one home.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Callable, Iterator


def temporary(path: Path) -> Path:
    """The temporary name beside ``path`` a writer uses (hidden, and unique to this process)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_file(path: str | os.PathLike, save: Callable[[BinaryIO], None], sync: bool = True) -> Path:
    """``save(file)`` into a temporary file beside ``path`` (its folder made if missing), synced to
    disk, then renamed over ``path``; on any failure (Ctrl-C included) the temporary file is removed and ``path`` is as it
    was.  Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        with open(tmp, "wb") as fh:
            save(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str, sync: bool = True) -> Path:
    return write_file(path, lambda fh: fh.write(text.encode("utf-8")), sync)


@contextlib.contextmanager
def directory(final: Path) -> Iterator[Path]:
    """Yields an empty temporary folder beside ``final``; when the block ends normally its files are
    synced, an older ``final`` is removed and the folder renamed into place; when it raises, the
    temporary folder is removed and nothing else changes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(final)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        for f in tmp.iterdir():
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(src: Path, dst: Path) -> None:
    """Rename the finished folder ``src`` to ``dst``; a folder already at ``dst`` is moved aside first
    and deleted after (``dst`` is never a partly written folder)."""
    old = None
    if dst.is_dir() and not dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dst, old)
    elif dst.exists():
        raise FileExistsError(f"{dst} exists and is not a folder")
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
