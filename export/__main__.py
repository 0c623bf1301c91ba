"""Export a cached landscape to 3-D tools: PLY (Blender, MeshLab), OBJ, VTP (ParaView) and CSV.

Usage:
    python -m export SCENE --format ply|obj|vtp|csv [--out PATH] [--cache-dir cache] [--set KEY=VALUE]
                           [--stride N] [--mesh | --points] [--z-scale S] [--height linear|log]
                           [--panel N] [--sequence | --grid K]
    python -m compute export SCENE ...        (the same command)

Reads the scene's cache entry (the grid, the training path and the scene's descents) and
computes nothing: a missing entry or descent is the cache reader's error, which says to run
``python -m compute SCENE`` first.  Writes ``out/<scene name>.<format>`` unless ``--out`` says
otherwise, and for PLY, VTP and CSV the paths next to it as ``<name>_paths.<format>``.  A
scene with ``compare:`` holds one landscape per panel: ``--panel N`` picks one
(``out/<scene name>_panelN.<format>``).

Geometry, in plane coordinates: a grid vertex is (alpha, beta, height), alpha along x, beta
along y, height = loss * S (``--height linear``, the default) or log10(loss) * S (``log``; a
loss of 0 counts as 1e-12, as in the film).  A path vertex is (x, y, height of its surface
loss), so the paths lie on the terrain.  S is ``--z-scale``, by default the film's proportions:
from the lowest loss to the top of the film's scale (the quantile of the loss its terrain tops
out at) the height rises ``render.look.exaggeration`` times the plane's width (alpha's extent),
as the film's terrain does; the command prints the S it used.

Colours (PLY, OBJ): the scene's ``render.look.colormap`` by the loss on a log scale, the film's
``color_by: loss`` with the film's quantile (studio/scale.py, shared with the render stage).

Non-finite losses: the 3-D formats drop those vertices and renumber the rest, so every
written vertex is finite (NaN coordinates upset Blender's and ParaView's bounds, normals and
cameras); a grid cell with a non-finite corner has no triangles; a path is cut where its
surface loss is not finite.  The CSV keeps every grid vertex (the loss written as ``nan``),
so it stays a full grid.

A landscape over training (``landscape.sequence``): ``--sequence`` writes every grid as its own
numbered file ``<out stem>_grid000.<format>``, ``_grid001``, ... (Blender's mesh-sequence importers and
ParaView's file series read numbered files as an animation), all on one scale from all grids
together, plus the paths file (for OBJ too), ``<out stem>_sequence.csv`` (grid, step and where
the training path's head stands on each grid) and, for VTP, a ParaView collection
``<out stem>.pvd`` whose times are the training steps.  ``--grid K`` writes grid K alone, on its
own scale (``out/<scene name>_gridK.<format>``).  The grids are mapped from the cache and written
one at a time.

Files are written under a temporary name in the output's folder and renamed into place, the
main file last: a failed export leaves no partial file (an older export stays as it was).  A
sequence's files are all written into a temporary folder beside the output first and moved
into place together.

NumPy only (no torch, no vispy): large grids are written with whole-array operations, text
formats in blocks of rows, so memory stays within a few copies of the grid.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.options import FORMATS, HEIGHTS, ExportError, z_formula
from export.sequence import resolve_grid
from export.writing import export, export_sequence
from studio import cache, cli
from studio.assets import ColormapError, colormap
from studio.scale import (LossSample, height_map, loss_color_scale, loss_sample, plane_height, plane_z_scale,
                          top_quantile)
from studio.scene import load_scene


def main(argv: list[str] | None = None) -> int:
    return cli.run(_export, argv)


def _export(argv: list[str]) -> int:
    """The command line, read top to bottom: the format, the scene and its panel, the cache entry
    (read, never computed), which grid, the film's scale, the files, and what was written."""
    args = cli.parse(parser(), argv)
    fmt = _format(args)
    scene, stem = _panel(args, load_scene(args.scene, args.set))
    ls = cache.read(Path(args.cache_dir), scene.cache_key(), args.scene, descents=scene.landscape.descents)
    look = scene.render.look
    try:
        lut = colormap(look.colormap)
    except ColormapError as e:
        raise ExportError(f"{args.scene}: render.look.colormap: {e}") from None
    grid, stem = _grid(args, ls, stem)
    out = Path(args.out) if args.out else Path("out") / f"{stem}.{fmt}"
    scale = _scale(args, ls, look, fmt, grid)
    info = {"scene": Path(args.scene).name, "cache key": ls.key, "x": "alpha", "y": "beta",
            "colormap": Path(look.colormap).name}
    shape = dict(stride=args.stride, mesh=not args.points, height_mode=scale.height_mode, z_scale=scale.z_scale,
                 lut=lut, info=info, colors=scale.colors)
    t0 = time.perf_counter()
    try:
        if args.sequence:
            files = export_sequence(ls, out, fmt, **shape)
        else:
            files = export(ls, out, fmt, grid=grid, **shape)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    _summary(args, ls, look, fmt, grid, scale, files, time.perf_counter() - t0)
    return 0


def _format(args) -> str:
    """The format: --format, or --out's suffix; the csv takes no 3-D shaping."""
    fmt = args.format
    if args.out is not None:
        suffix = Path(args.out).suffix.lower().lstrip(".")
        if fmt is None:
            if suffix not in FORMATS:
                raise ExportError(f"--out {args.out}: give --format ({'|'.join(FORMATS)}) or an --out ending in "
                                  f"one of .{', .'.join(FORMATS)}")
            fmt = suffix
        elif suffix != fmt:
            raise ExportError(f"--out {args.out}: a {fmt} file's name ends in .{fmt}")
    if fmt is None:
        raise ExportError(f"--format is required ({'|'.join(FORMATS)})")
    if fmt == "csv":
        given = [o for o, v in (("--mesh/--points", args.points), ("--z-scale", args.z_scale),
                                ("--height", args.height)) if v is not None]
        if given:
            raise ExportError(f"{', '.join(given)}: shape{'s' if len(given) == 1 else ''} the 3-D formats (ply, "
                              f"obj, vtp); the csv holds the plain loss on the grid")
    return fmt


def _panel(args, scene) -> tuple:
    """The scene whose landscape is exported (a comparison's panel: each is its own cache entry) and
    the files' stem."""
    panels = scene.panels()
    if panels:
        if args.panel is None or args.panel > len(panels):
            raise ExportError(f"{args.scene} compares {len(panels)} landscapes: choose one with --panel 1 to "
                              f"{len(panels)}")
        return panels[args.panel - 1][1], f"{scene.name}_panel{args.panel}"
    if args.panel is not None:
        raise ExportError(f"--panel: {args.scene} has no compare: section (one landscape)")
    return scene, scene.name


def _grid(args, ls, stem: str) -> tuple[int | None, str]:
    """Which grid: the still grid (None), grid K of a landscape over training, or all of them
    (--sequence, also None); and the stem, with ``_gridK`` for one grid of a sequence."""
    if not (args.sequence or args.grid is not None):
        return None, stem
    flag = "--sequence" if args.sequence else f"--grid {args.grid}"
    if ls.sequence is None:
        raise ExportError(f"{flag}: the cache entry for {args.scene} holds no landscape over training (the scene "
                          f"has no landscape.sequence); leave out {flag.split()[0]} to export its grid")
    if args.grid is None:
        return None, stem
    try:
        grid = resolve_grid(ls, args.grid)
    except ExportError:
        n = len(ls.sequence.step)
        raise ExportError(f"--grid {args.grid}: {args.scene}'s landscape over training has {n} grids: give 0 "
                          f"to {n - 1}, or -{n} to -1 counting from the end") from None
    return grid, f"{stem}_grid{grid}"


@dataclass(frozen=True)
class Scale:
    """The film's scale for the losses written: ``colors`` and the height (``z_scale``, unless
    --z-scale sets it); the csv holds the plain loss (no colours, z-scale 1).  ``shown``,
    ``quantile`` and ``width`` are what the summary reports the scale from."""
    height_mode: str
    colors: object = None
    z_scale: float = 1.0
    shown: LossSample | None = None
    quantile: float | None = None
    width: float | None = None


def _scale(args, ls, look, fmt: str, grid: int | None) -> Scale:
    height_mode = args.height or "linear"
    if fmt == "csv":
        return Scale(height_mode)
    shown = (loss_sample(ls) if args.sequence else
             LossSample.of(ls.sequence.loss[grid] if grid is not None else ls.loss))
    quantile = top_quantile(look.height, look.clip_quantile)
    colors = loss_color_scale(shown, quantile)
    width = float(ls.alpha[-1] - ls.alpha[0])
    heights = height_map(shown, height_mode, look.exaggeration, quantile)
    z_scale = args.z_scale if args.z_scale is not None else plane_z_scale(heights, width)
    return Scale(height_mode, colors, z_scale, shown, quantile, width)


def _summary(args, ls, look, fmt: str, grid: int | None, scale: Scale, files: list[Path], dt: float) -> None:
    """What was written, and its scale."""
    if args.sequence:
        n = len(ls.sequence.step)
        frames, rest = files[:n], files[n:]
        total = sum(f.stat().st_size for f in frames)
        sizes = (f"{n} grids {frames[0]} .. {frames[-1].name} ({human(total)} in all), "
                 + ", ".join(f"{f} ({human(f.stat().st_size)})" for f in rest))
    else:
        sizes = ", ".join(f"{f} ({human(f.stat().st_size)})" for f in files)
    report(f"wrote {sizes} in {dt:.1f} s")
    if fmt != "csv":
        formula = z_formula(scale.height_mode, scale.z_scale)
        if args.z_scale is not None:
            report(f"height scale: z = {formula} (--z-scale)")
        else:
            report(f"height scale: z = {formula}, the film's proportions "
                   f"(render.look.exaggeration {look.exaggeration:g}): from the lowest loss to the "
                   f"{scale.quantile:g} quantile, z rises {look.exaggeration:g} x the plane's width of "
                   f"{scale.width:.4g}; --z-scale S sets another")
        z = plane_height(np.array([scale.shown.lowest, scale.shown.highest]), scale.height_mode, scale.z_scale)
        zlo, zhi = (float(np.nanmin(z)), float(np.nanmax(z))) if np.isfinite(z).any() else (0.0, 0.0)
        report(f"x (alpha) {ls.alpha[0]:.4g} .. {ls.alpha[-1]:.4g}, y (beta) {ls.beta[0]:.4g} .. "
               f"{ls.beta[-1]:.4g}, {'z over all grids' if args.sequence else 'z'} {zlo:.4g} .. {zhi:.4g}")
    if ls.sequence is not None and not args.sequence and grid is None:
        report(f"this entry also holds a landscape over training ({len(ls.sequence.step)} grids): "
               f"--sequence exports every grid, --grid K one of them")


# --------------------------------------------------------------------------- the command line

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a scene's cached landscape (grid and paths) to PLY, OBJ, VTP or CSV; computes nothing.")
    cli.add_scene_arguments(ap)
    ap.add_argument("--format", choices=FORMATS, default=None,
                    help="ply (Blender, MeshLab), obj, vtp (ParaView) or csv; default: from --out's suffix")
    ap.add_argument("--out", default=None, metavar="PATH", help="output file (default: out/<scene name>.<format>)")
    ap.add_argument("--stride", type=whole_number, default=1, metavar="N",
                    help="keep every Nth grid row and column (default 1)")
    shape = ap.add_mutually_exclusive_group()
    shape.add_argument("--mesh", dest="points", action="store_false", default=None,
                       help="a triangle mesh (the default for ply, obj, vtp)")
    shape.add_argument("--points", dest="points", action="store_true", default=None,
                       help="a point cloud instead of a mesh")
    ap.add_argument("--z-scale", type=z_scale_value, default=None, metavar="S",
                    help="multiplies the height (default: the film's proportions, render.look.exaggeration "
                         "times the plane's width over the loss's range; printed)")
    ap.add_argument("--height", choices=HEIGHTS, default=None,
                    help="height = loss (linear, the default) or log10(loss), times --z-scale")
    ap.add_argument("--panel", type=whole_number, default=None, metavar="N",
                    help="for a scene with compare: which panel's landscape (1, 2, ...)")
    over = ap.add_mutually_exclusive_group()
    over.add_argument("--sequence", action="store_true",
                      help="for a landscape over training (landscape.sequence): every grid as its own numbered "
                           "file <out>_grid000.<format>, ..., on one scale, with <out>_sequence.csv "
                           "(and <out>.pvd for vtp)")
    over.add_argument("--grid", type=int, default=None, metavar="K",
                      help="for a landscape over training: just grid K (0 is the first, -1 the last)")
    return ap


def whole_number(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}")
    return v


def z_scale_value(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not np.isfinite(v) or v == 0:
        raise argparse.ArgumentTypeError(f"a finite, non-zero number, got {text!r}")
    return v


def report(line: str) -> None:
    print(f"[export] {line}", file=sys.stderr)


def human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


if __name__ == "__main__":
    sys.exit(main())
