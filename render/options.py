"""What a film is asked for: its size, frame rate, duration and how finely it is drawn
(``Options``).  The film (render/film.py), its frames' way to a file (render/frames.py), a
comparison (render/compare.py) and the command line (render/__main__.py) all take one."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Options:
    width: int
    height: int
    fps: int
    duration: float
    stride: int = 1          # draw every stride-th grid point (previews)
    supersample: int | None = None   # None: the scene's render.look.supersample
    max_tile: int | None = None      # largest piece drawn at once (None: the GL's limit, or STUDIO_MAX_TILE)
    clean: bool = False      # the landscape alone: no title card, captions, read-out or marks' labels (a poster)
