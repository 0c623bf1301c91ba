"""Files that appear only when complete: one file, or a set of them, written under temporary
names beside the output and renamed into place, the file a viewer opens last."""
from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Callable

from studio import atomic

#: the least number of digits in a sequence's file numbers (400 grids at most per scene: 000..399)
FRAME_DIGITS = 3

#: a file to write: its path, and the function that writes its bytes to an open binary file
Save = tuple[Path, Callable]


def paths_file(out: Path) -> Path:
    """Where the paths go beside ``out``: ``<stem>_paths.<ext>``."""
    return out.with_name(f"{out.stem}_paths{out.suffix}")


def frame_files(out: Path, count: int) -> list[Path]:
    """``<stem>_grid000.<ext>``, ``<stem>_grid001.<ext>``, ...: zero-padded to the width of the
    largest number (at least FRAME_DIGITS), so the names sort in order; "grid" keeps them apart
    from ``<stem>_paths`` for importers that take every file sharing a typed prefix."""
    w = max(FRAME_DIGITS, len(str(count - 1)))
    return [out.with_name(f"{out.stem}_grid{k:0{w}d}{out.suffix}") for k in range(count)]


def stale_frames(out: Path, count: int) -> list[Path]:
    """Numbered files of an earlier, longer sequence export to the same name (numbers from
    ``count`` on): left in place they would join the new sequence in Blender and ParaView."""
    w = max(FRAME_DIGITS, len(str(count - 1)))
    pattern = f"{glob.escape(out.stem)}_grid{'[0-9]' * w}{glob.escape(out.suffix)}"
    return sorted(p for p in out.parent.glob(pattern) if int(p.stem[-w:]) >= count)


def write_atomic(files: list[Save]) -> None:
    """Write each file under a temporary name in its folder, then rename them all into place,
    the first (the main file) last; on any failure remove the temporaries."""
    tmps = []
    try:
        for path, save in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = atomic.temporary(path)
            tmps.append((tmp, path))
            with open(tmp, "wb") as fh:
                save(fh)
        for tmp, path in reversed(tmps):
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in tmps:
            tmp.unlink(missing_ok=True)
        raise


def write_set(files: list[Save], stale: list[Path] = ()) -> None:
    """Write a set of files in one folder all or nothing: each into a temporary folder beside
    them (``.<first name>.export-tmp-<pid>``), then, once all are complete, move each earlier
    file aside and the new one into place, in order (the last is the one a viewer opens), and
    move ``stale`` files aside too.  A failure while writing touches nothing; one while moving
    (rare: renames in one folder) removes the new files placed and puts the earlier ones back.
    The earlier files are deleted with the temporary folder."""
    folder = files[0][0].parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{files[0][0].name}.export-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "new").mkdir(parents=True)
    (tmp / "old").mkdir()
    try:
        for path, save in files:
            with open(tmp / "new" / path.name, "wb") as fh:
                save(fh)
        placed, aside = [], []
        try:
            for path in stale:
                os.replace(path, tmp / "old" / path.name)
                aside.append(path)
            for path, _ in files:
                if path.exists():
                    os.replace(path, tmp / "old" / path.name)
                    aside.append(path)
                os.replace(tmp / "new" / path.name, path)
                placed.append(path)
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            for path in aside:
                os.replace(tmp / "old" / path.name, path)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
