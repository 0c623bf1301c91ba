"""The compute stage's one log: lines on stderr, prefixed, flushed at once (progress bars share it)."""
from __future__ import annotations

import sys


def log(msg: str) -> None:
    print(f"[compute] {msg}", file=sys.stderr, flush=True)
