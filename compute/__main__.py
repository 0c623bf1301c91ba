"""The compute stage: train, pick a plane, sample the loss on a grid, cache it.

Usage:
    python -m compute SCENE.yaml [--cache-dir cache] [--device cpu|cuda] [--force] [--quiet]

Reads the scene's ``landscape:`` section, and writes ``cache/<key>/`` where
<key> hashes that section without its descents (see studio/cache.py).  A
finished entry is reused, and only the scene's descents it lacks are computed
on its stored plane (seconds); an interrupted run resumes from its last
written rows.
"""
from __future__ import annotations

import argparse
import sys

from studio.scene import load_scene_or_report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compute", description=__doc__.split("\n")[0])
    ap.add_argument("scene", help="scene file (YAML)")
    ap.add_argument("--cache-dir", default="cache", help="cache root (default: cache)")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    ap.add_argument("--force", action="store_true", help="recompute even if the cache has this landscape")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    scene = load_scene_or_report(args.scene)
    if scene is None:
        return 2
    from compute.data import DataError
    from compute.pipeline import run      # torch is imported only once the scene is valid
    try:
        run(scene, args.cache_dir, device=args.device, progress=not args.quiet, force=args.force)
    except DataError as e:                # a data set not on disk: one line, no traceback
        print(f"error: {args.scene}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
