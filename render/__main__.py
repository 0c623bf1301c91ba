"""The render stage: draw the cached landscape as a film.

Usage:
    python -m render SCENE.yaml [--cache-dir cache] [--out PATH]
                     [--size WxH | --size 720p|1080p|1440p|4k] [--fps N] [--duration S]
                     [--frames N] [--format mp4|mov|webm|gif|png] [--preview] [--still SECONDS [--clean] --out PATH.png]
                     [--storyboard [N]] [--report] [--view]

Reads the scene's ``render:`` and ``output:`` sections and the cache entry of
its ``landscape:`` section (run ``python -m compute SCENE`` first; ``make
video`` chains both).  Writes ``out/<scene name>.mp4`` (``.mov``, ``.webm`` or
``.gif`` with that ``output.format``; with ``png``, the directory
``out/<scene name>_frames``) unless the scene or ``--out`` says otherwise.  ``--preview`` renders at a third of the size, every second grid
point, 15 fps and no supersampling, for iterating on a camera path.  ``--still``
writes one image at any size up to 32768 x 32768, drawn in tiles when it is
larger than the GL draws in one piece (``STUDIO_MAX_TILE`` lowers that size); ``--clean`` leaves
out the title card, captions, read-out and marks' labels (a poster).
A scene with ``compare:`` reads each panel's cache entry and renders them as one
comparison film (render/compare.py).  ``--storyboard`` writes a contact sheet of N stills at even
times with their time codes and cameras (``out/<name>_storyboard.png``, render/storyboard.py);
``--report`` the landscape's report, its heat map and figures (``out/<name>_report.png``,
render/report.py).  ``--view`` opens a window to orbit, scrub and print the camera as a keyframe
(render/viewer.py; needs a display).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from render.options import Options
from studio import cache, cli
from studio.scene import FILM_FORMATS, SIZE_PRESETS, frames_path, load_scene, transparency_error


#: largest film frame and largest still (a 32768 x 32768 still is 3 GB of pixels)
MAX_FILM, MAX_STILL = 16384, 32768


def _size(text: str) -> tuple[int, int]:
    if text.lower() in SIZE_PRESETS:
        return tuple(SIZE_PRESETS[text.lower()])
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"--size must look like 1920x1080 or be one of "
                                         f"{', '.join(SIZE_PRESETS)}, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= MAX_STILL and 16 <= h <= MAX_STILL) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"--size: even width and height from 16 to {MAX_STILL} (films: "
                                         f"{MAX_FILM}), got {text!r}")
    return w, h


def main(argv: list[str] | None = None) -> int:
    return cli.run(_render, argv)


def _render(argv: list[str]) -> int:
    """The command line, read top to bottom: the scene, the film's options, the cache entries, then
    what was asked for (a report, the viewer, a storyboard, a still or the film)."""
    args = cli.parse(parser(), argv)
    scene = load_scene(args.scene, args.set)
    if args.view:                                   # no window here: say so before reading anything
        from render.viewer import require_display
        require_display(args.scene)
    opts, fmt = _options(args, scene)
    ls, panels, notes, sweep = _entries(args, scene)
    if args.report:
        return _report(args, scene, ls, panels)
    from render.look import LookError
    if args.view:
        if panels:
            raise cli.UserError(f"{args.scene}: --view shows one landscape; a comparison (compare:) is not supported")
        from render.viewer import view
        return view(scene, ls, opts, args.scene, screenshot=args.out, fit=args.size is None)
    try:
        if args.storyboard is not None:
            return _write_storyboard(args, scene, ls, panels, notes, opts)
        if args.still is not None:
            return _write_still(args, scene, ls, panels, notes, opts)
        out = _film_path(args, scene, fmt)
        stats = _write_film(args, scene, ls, panels, notes, opts, fmt, out)
    except LookError as e:                # found only when the look is built: say which scene
        raise LookError(f"{args.scene}: {e}") from None
    except OSError as e:                  # where the output goes: a folder that cannot be made, a full disk
        raise cli.UserError(f"cannot write {e.filename or 'the output'}: {e.strerror or e}") from None
    print(f"[render] wrote {out}: {stats['frames']} frames {opts.width}x{opts.height} at {opts.fps} fps in "
          f"{stats['seconds']:.1f} s ({stats['fps']:.2f} frames/s)", file=sys.stderr)
    if sweep is not None:
        from render.sweep import write_outputs
        files = write_outputs(scene, sweep, out.with_suffix("") if fmt in FILM_FORMATS else out)
        print(f"[render] wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m render", description=__doc__.split("\n")[0])
    cli.add_scene_arguments(ap)
    ap.add_argument("--out", default=None,
                    help="output file (.mp4, or the --format's suffix), directory (--format png) or image "
                         "(.png with --still)")
    ap.add_argument("--size", type=_size, default=None,
                    help=f"WxH or a preset ({', '.join(SIZE_PRESETS)}); overrides render.size")
    ap.add_argument("--format", choices=[*FILM_FORMATS, "png"], default=None,
                    help="mp4 (H.264), mov (ProRes 422 HQ), webm (VP9), gif, or png (a directory of frames); "
                         "overrides output.format")
    ap.add_argument("--fps", type=int, default=None)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--frames", type=int, default=None, help="render only the first N frames")
    ap.add_argument("--preview", action="store_true", help="small, fast film for checking a camera path")
    ap.add_argument("--still", type=float, default=None, metavar="SECONDS", help="write one PNG at this time")
    ap.add_argument("--clean", action="store_true",
                    help="the landscape alone: no title card, captions, read-out or marks' labels (a poster, with "
                         "--still at any --size)")
    ap.add_argument("--storyboard", type=int, nargs="?", const=12, default=None, metavar="N",
                    help="write a contact sheet of N stills (default 12) at even times, with time codes and cameras")
    ap.add_argument("--report", action="store_true",
                    help="write the landscape's report: heat map, basins, convexity map and figures")
    ap.add_argument("--view", action="store_true",
                    help="open a window to find shots by eye (render/viewer.py; --out: where its screenshot key writes)")
    ap.add_argument("--quiet", action="store_true")
    return ap


def _options(args, scene) -> tuple[Options, str]:
    """The film's options (the scene's render: section, as the command line changes it) and its format."""
    r = scene.render
    w, h = args.size or tuple(r.size)
    if args.still is None and max(w, h) > MAX_FILM:
        raise cli.UserError(f"--size: a film's frames are at most {MAX_FILM} pixels on a side (stills: "
                            f"{MAX_STILL}), got {w}x{h}")
    fps = args.fps or r.fps
    duration = args.duration or r.duration
    fmt = args.format or scene.output.format
    problem = transparency_error(args.scene, scene, fmt, args.set) if args.still is None else None
    if problem:
        raise cli.UserError(problem)
    stride, supersample = 1, None
    if args.preview:
        w, h = max(16, (w // 3) // 2 * 2), max(16, (h // 3) // 2 * 2)
        fps, stride, supersample = min(fps, 15), 2, 1
    if args.fps is not None and args.fps < 1:
        raise cli.UserError("--fps must be at least 1")
    return Options(w, h, fps, duration, stride, supersample=supersample, clean=args.clean), fmt


def _entries(args, scene) -> tuple:
    """``(ls, panels, notes, sweep)``: the grid entry, with the scene's in-plane descents (each must
    have been computed); or the entries of a comparison's or a sweep's panels, as (caption, scene,
    landscape), with a sweep's figures lines and its SweepPanels."""
    if scene.sweep is not None:
        panels, notes, sweep = _sweep_panels(args, scene)
        return None, panels, notes, sweep
    if scene.compare is not None:
        return None, _compare_panels(args, scene), None, None
    ls = cache.read(Path(args.cache_dir), scene.cache_key(), args.scene, descents=scene.landscape.descents)
    return ls, [], None, None


def _write_storyboard(args, scene, ls, panels, notes, opts: Options) -> int:
    out = Path(args.out) if args.out else scene.output_path().with_name(f"{scene.name}_storyboard.png")
    _storyboard(scene, ls, panels, notes, out, opts, args.storyboard)
    print(f"[render] wrote {out} ({args.storyboard} stills of {opts.width}x{opts.height})", file=sys.stderr)
    return 0


def _write_still(args, scene, ls, panels, notes, opts: Options) -> int:
    out = Path(args.out) if args.out else scene.output_path().with_suffix(f".{args.still:g}s.png")
    if panels:
        from render.compare import render_compare_still
        render_compare_still(scene, panels, out, opts, args.still, notes)
    else:
        from render.film import render_still
        render_still(scene, ls, out, opts, args.still)
    print(f"[render] wrote {out} ({opts.width}x{opts.height}, t={args.still:g} s)", file=sys.stderr)
    return 0


def _film_path(args, scene, fmt: str) -> Path:
    """Where the film goes: --out, or the scene's output path (adapted to --format, and to --preview)."""
    out = Path(args.out) if args.out else scene.output_path()
    if not args.out and fmt != scene.output.format:      # --format changed it: the scene's path, adapted
        out = frames_path(out, fmt)
    if fmt in FILM_FORMATS and out.suffix.lower() != FILM_FORMATS[fmt]:
        raise cli.UserError(f"--out: a {fmt} film's path ends in {FILM_FORMATS[fmt]} (--format picks mp4, mov, "
                            f"webm, gif, or png for a directory of frames), got {out}")
    if fmt == "png" and out.suffix.lower() in (*FILM_FORMATS.values(), ".png"):
        raise cli.UserError(f"--out: PNG frames go into a directory; give a directory path, got {out}")
    if args.preview and not args.out:
        out = out.with_name(f"{out.stem}.preview{out.suffix}" if fmt in FILM_FORMATS else f"{out.name}.preview")
    return out


def _write_film(args, scene, ls, panels, notes, opts: Options, fmt: str, out: Path) -> dict:
    if panels:
        from render.compare import render_compare_film
        return render_compare_film(scene, panels, out, opts, scene.output.crf, scene.output.preset,
                                   progress=not args.quiet, max_frames=args.frames, fmt=fmt, notes=notes)
    from render.film import render_film
    return render_film(scene, ls, out, opts, scene.output.crf, scene.output.preset,
                       progress=not args.quiet, max_frames=args.frames, fmt=fmt)


def _compare_panels(args, scene) -> list:
    panels = []
    for i, (caption, ps) in enumerate(scene.panels()):
        try:
            panels.append((caption, ps, cache.read(Path(args.cache_dir), ps.cache_key(), args.scene,
                                                   descents=ps.landscape.descents)))
        except cache.CacheError as e:
            raise cache.CacheError(f"compare.panels[{i}]{f' ({caption})' if caption else ''}: {e}") from None
    return panels


def _sweep_panels(args, scene) -> tuple[list, list[str], list]:
    """A sweep's panels for its film (captioned by value, the moment being the page's caption), their
    key figures as the captions' second lines, and the SweepPanels for its sheet, table and chart."""
    from render.sweep import SweepPanel, figures_line
    root = Path(args.cache_dir)
    sweep = []
    for caption, sc, value, moment in scene.sweep_panels():
        try:
            entry = cache.read(root, sc.cache_key(), args.scene)
        except cache.CacheError as e:
            raise cache.CacheError(f"sweep panel {caption!r}: {e}") from None
        stored = cache.read_figures(root, entry.key)
        sweep.append(SweepPanel(caption, value, moment, entry, stored[0] if stored else None, sc))
    panels = [(scene.sweep.caption(p.value), p.scene, p.landscape) for p in sweep]
    return panels, [figures_line(scene, p) for p in sweep], sweep


def _storyboard(scene, ls, panels, notes, out: Path, opts, count: int) -> None:
    from render.storyboard import write_storyboard
    if panels:
        from render.compare import CompareFilm
        film = CompareFilm(scene, panels, opts, notes)
    else:
        from render.film import Film
        film = Film(scene, ls, opts)
    try:
        write_storyboard(film, out, opts.duration, count)
    finally:
        film.close()


def _report(args, scene, ls, panels) -> int:
    """The landscape's report (one per panel of a comparison), from its entry and figures."""
    from studio.figures import describe
    from render.report import write_report
    todo = [("", scene, ls)] if ls is not None else panels
    for i, (caption, sc, entry) in enumerate(todo):
        stored = cache.read_figures(Path(args.cache_dir), entry.key)
        if stored is None:
            raise cache.CacheError(f"{args.scene}: the landscape {entry.key} has no figures yet; run `python -m "
                                   f"compute describe {args.scene}` to measure them")
        suffix = f"_report{i + 1 if len(todo) > 1 else ''}.png"
        out = Path(args.out) if args.out and len(todo) == 1 else sc.output_path().with_name(f"{scene.name}{suffix}")
        title = " · ".join(t for t in (scene.title, caption) if t) or scene.name
        write_report(entry, stored[0], stored[1], out, title, describe(stored[0]["figures"]))
        print(f"[render] wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
