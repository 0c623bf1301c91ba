"""The render stage: draw the cached landscape as a film.

Usage:
    python -m render SCENE.yaml [--cache-dir cache] [--out PATH.mp4]
                     [--size WxH] [--fps N] [--duration S] [--frames N]
                     [--preview] [--still SECONDS --out PATH.png]

Reads the scene's ``render:`` and ``output:`` sections and the cache entry of
its ``landscape:`` section (run ``python -m compute SCENE`` first; ``make
video`` chains both).  Writes ``out/<scene name>.mp4`` unless the scene or
``--out`` says otherwise.  ``--preview`` renders at a third of the size, every
second grid point and 15 fps, for iterating on a camera path.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from studio import cache
from studio.scene import SceneError, load_scene


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"--size must look like 1920x1080, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 16384 and 16 <= h <= 16384) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"--size: even width and height from 16 to 16384, got {text!r}")
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m render", description=__doc__.split("\n")[0])
    ap.add_argument("scene")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--out", default=None, help="output file (.mp4, or .png with --still)")
    ap.add_argument("--size", type=_size, default=None, help="WxH, overrides render.size")
    ap.add_argument("--fps", type=int, default=None)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--frames", type=int, default=None, help="render only the first N frames")
    ap.add_argument("--preview", action="store_true", help="small, fast film for checking a camera path")
    ap.add_argument("--still", type=float, default=None, metavar="SECONDS", help="write one PNG at this time")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        scene = load_scene(args.scene)
    except SceneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    r = scene.render
    w, h = args.size or tuple(r.size)
    fps = args.fps or r.fps
    duration = args.duration or r.duration
    stride = 1
    if args.preview:
        w, h = max(16, (w // 3) // 2 * 2), max(16, (h // 3) // 2 * 2)
        fps, stride = min(fps, 15), 2
    if args.fps is not None and args.fps < 1:
        print("error: --fps must be at least 1", file=sys.stderr)
        return 2
    try:
        # the grid entry, plus the scene's in-plane descents (each must have been computed)
        ls = cache.read(Path(args.cache_dir), scene.cache_key(), args.scene, descents=scene.landscape.descents)
    except cache.CacheError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    from render.film import Options, render_film, render_still
    from render.gl import GLUnavailable
    opts = Options(w, h, fps, duration, stride)
    try:
        if args.still is not None:
            out = Path(args.out) if args.out else scene.output_path().with_suffix(f".{args.still:g}s.png")
            render_still(scene, ls, out, opts, args.still)
            print(f"[render] wrote {out} ({w}x{h}, t={args.still:g} s)", file=sys.stderr)
            return 0
        out = Path(args.out) if args.out else scene.output_path()
        if args.preview and not args.out:
            out = out.with_name(f"{out.stem}.preview.mp4")
        stats = render_film(scene, ls, out, opts, scene.output.crf, scene.output.preset,
                            progress=not args.quiet, max_frames=args.frames)
    except GLUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    print(f"[render] wrote {out}: {stats['frames']} frames {w}x{h} at {fps} fps in {stats['seconds']:.1f} s "
          f"({stats['fps']:.2f} frames/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
