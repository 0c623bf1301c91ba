"""The compute stage: train, pick a plane, sample the loss on a grid, cache it.

Usage:
    python -m compute SCENE.yaml [--cache-dir cache] [--device cpu|cuda] [--force] [--quiet]
    python -m compute describe SCENE.yaml [--json] [--force]   (the landscape's figures; compute/describe.py)
    python -m compute export SCENE.yaml ...   (the same as python -m export SCENE.yaml ...; --help)

Reads the scene's ``landscape:`` section, and writes ``cache/<key>/`` where
<key> hashes that section without its descents (see studio/cache.py).  A
finished entry is reused, and only the scene's descents it lacks are computed
on its stored plane (seconds); an interrupted run resumes from its last
written rows.  A scene with ``compare:`` computes each panel's landscape in
turn (one cache entry each), under torchrun too.
"""
from __future__ import annotations

import argparse
import os
import sys

from studio import cli
from studio.scene import SceneError, load_scene, locate_error


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:            # the export stage's alias: reads the cache, no torch
        from export.__main__ import main as export_main
        return export_main(argv[1:])
    if argv[:1] == ["describe"]:          # the landscape's figures (compute/describe.py)
        from compute.describe import main as describe_main
        return cli.run(describe_main, argv[1:])
    # an interrupted grid keeps its rows in cache/.KEY.partial/, and the next run resumes there
    return cli.run(_compute, argv, interrupted="interrupted; the rows computed so far are kept, and the same "
                                              "command resumes from them")


#: the other commands ``python -m compute`` takes before a scene, for --help
COMMANDS = ("commands (before the scene):\n"
            "  python -m compute describe SCENE [--json] [--force]   the landscape's figures, measured once\n"
            "  python -m compute export SCENE [--format ...]         the cached landscape as PLY, OBJ, VTP or CSV\n"
            "  (each takes --help)")


def _compute(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m compute", description=__doc__.split("\n")[0], epilog=COMMANDS,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_scene_arguments(ap)
    ap.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    ap.add_argument("--force", action="store_true", help="recompute even if the cache has this landscape")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = cli.parse(ap, argv)
    scene = load_scene(args.scene, args.set)      # its problems reach cli.run as error: lines, exit 2
    from compute.numerics import flush_denormals
    flush_denormals()                     # torch is imported only once the scene is valid
    from compute.data import DataError
    from compute.pipeline import run
    # a comparison: each panel's landscape in turn, each its own cache entry (a hit is reused); under
    # torchrun the process group is held across the panels
    panels = scene.panels() or [("", scene)]
    from compute import distributed
    group = distributed.init(args.device) if len(panels) > 1 else None
    i = None
    try:
        for i, (caption, sc) in enumerate(panels):
            if len(panels) > 1 and os.environ.get("RANK", "0") == "0":
                print(f"[compute] panel {i + 1}/{len(panels)}: {caption or sc.cache_key()}", file=sys.stderr,
                      flush=True)
            run(sc, args.cache_dir, device=args.device, progress=not args.quiet, force=args.force)
    except DataError as e:                # found only now (data not on disk, a model that fails): its key's line
        raise SceneError(locate_error(args.scene, str(e), args.set, i if len(panels) > 1 else None)) from None
    finally:
        if group is not None:
            distributed.finish(group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
