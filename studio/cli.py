"""What the command lines share (python -m compute, render, export, compute.gpucheck): the scene's
arguments, the cache root, and one way to end on anything a user can cause.

Every error a user can cause derives from :class:`UserError`: its message is for the user as it
is (one line a problem), and its ``exit_code`` says what kind it was.  :func:`run` turns one into
``error: ...`` lines and that code, and Ctrl-C into one line and 130, with no traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence


class UserError(Exception):
    """A problem with the user's scene, files, cache or command line, not with this program."""
    #: 2: a scene, option or file to fix; 3: the cache lacks what is asked (compute it first);
    #: 4: no OpenGL here
    exit_code = 2


def cache_dir(text: str) -> Path:
    """``--cache-dir``: a folder (made when missing), never a file."""
    p = Path(text).expanduser()
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder; give a folder for the cache (it is "
                                         f"made when missing)")
    return p


CACHE_HELP = ("cache root (default: $LANDSCAPE_STUDIO_CACHE, else cache/ in the scene's project: the nearest folder "
              "above the scene holding pyproject.toml, setup.py, .git or cache/; else next to the scene)")


def add_scene_arguments(ap: argparse.ArgumentParser, cache_help: str = CACHE_HELP) -> None:
    """The scene file, ``--set KEY=VALUE`` overrides and ``--cache-dir``, as every stage takes them;
    ``parse`` fills in the cache folder a scene has when none is named."""
    ap.add_argument("scene", help="scene file (YAML)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scene value, e.g. --set landscape.grid.resolution=[150,150] (repeatable; "
                         "enters the cache key like the file's values)")
    ap.add_argument("--cache-dir", type=cache_dir, default=None, help=cache_help)


def parse(ap: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """The command line, with ``cache_dir`` the scene's own where none was named (studio.cache.default_root)."""
    from studio.cache import default_root
    args = ap.parse_args(argv)
    if getattr(args, "cache_dir", "") is None:
        args.cache_dir = default_root(args.scene)
    return args


def run(main: Callable[[list[str]], int], argv: Sequence[str] | None = None,
        interrupted: str = "interrupted; nothing written") -> int:
    """``main(argv)``, with a user's error as ``error:`` lines and its exit code, and Ctrl-C as one
    line and 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main(argv)
    except UserError as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
