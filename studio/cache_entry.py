"""One cache entry as an object: its key, its finished folder and its partial one, and the reads and
writes of its files.

The compute stage makes one :class:`CacheEntry` for a scene and hands it on (to the grid, the
descents added to a cache hit, the figures), so no part of it works out the entry's folders from
(root, key) again, as a film's file writer owns the film's files.  The format of the files
themselves is studio/cache.py's; this is the handle on one entry.  Nothing here imports torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from studio import cache


@dataclass(frozen=True)
class CacheEntry:
    root: Path
    key: str
    #: the scene file, for messages (``SCENE`` for a scene from Python)
    scene_path: str = "SCENE"

    @classmethod
    def of(cls, scene, root: "str | Path") -> "CacheEntry":
        """The entry of a scene (``studio.scene.Scene``) under the cache root ``root``."""
        return cls(Path(root), scene.cache_key(), scene.source or "SCENE")

    # ------------------------------------------------------------------ where
    @property
    def dir(self) -> Path:
        """The finished entry's folder (it exists only once the entry is whole)."""
        return cache.entry_dir(self.root, self.key)

    @property
    def partial(self) -> Path:
        """The folder an interrupted computation keeps its work in (run, plane, row blocks)."""
        return cache.partial_dir(self.root, self.key)

    def exists(self) -> bool:
        return cache.exists(self.root, self.key)

    def problem(self) -> Optional[str]:
        """Why the finished entry does not read back whole, or None."""
        return cache.problem(self.root, self.key)

    # ------------------------------------------------------------------ reading
    def meta(self) -> dict:
        """The provenance record (``meta.json``) alone, without the arrays."""
        return json.loads((self.dir / "meta.json").read_text())

    def read(self, descents: Iterable[Any] = (), mmap: bool = False) -> cache.Landscape:
        return cache.read(self.root, self.key, self.scene_path, descents=descents, mmap=mmap)

    def plane(self) -> Optional[cache.PlaneVectors]:
        return cache.read_plane(self.root, self.key, self.scene_path)

    def figures(self) -> Optional[tuple[dict, dict[str, np.ndarray]]]:
        return cache.read_figures(self.root, self.key)

    def missing_descents(self, descents: Iterable[Any]) -> list[dict]:
        return cache.missing_descents(self.root, self.key, descents)

    # ------------------------------------------------------------------ writing
    def write(self, landscape: cache.Landscape) -> Path:
        """The finished entry, written atomically (its partial folder is the caller's to remove)."""
        if landscape.key != self.key:
            raise ValueError(f"a landscape of key {landscape.key} written as the entry {self.key}")
        return cache.write(self.root, landscape)

    def add_descents(self, descents: Iterable[cache.Descent]) -> Path:
        return cache.add_descents(self.root, self.key, descents)

    def write_figures(self, record: dict, arrays: dict[str, np.ndarray]) -> Path:
        return cache.write_figures(self.root, self.key, record, arrays)
