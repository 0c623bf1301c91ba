"""The export stage: a cached landscape to 3-D tools (PLY, OBJ, VTP, CSV), NumPy only.

From the shell: ``python -m export SCENE --format ply|obj|vtp|csv`` (export/__main__.py; the usage
is there).  ``python -m compute export SCENE ...`` is the same command.

Modules:

    __main__.py     the command line: format, scene and panel, cache entry, grid, scale, summary
    options.py      what may be asked: the formats, the heights, their checks, ``ExportError``
    geometry.py     surfaces and paths in plane coordinates, as every format writes them
    sequence.py     a landscape over training: its grids one at a time, the path's head on each
    writing.py      one grid, or every grid of a sequence, in one format, with the paths beside it
    files.py        files (and sets of files) that appear only when complete
    formats/        one writer per format: ply, obj, vtp, csv, and the text they share (``text.py``)

Public API:

- :func:`export` (export/writing.py): one grid (the still grid, or grid K of a landscape over
  training) and the paths, in one format, as files that appear only when complete.
- :func:`export_sequence` (export/writing.py): every grid of a landscape over training as
  numbered files on one colour scale, the paths, an index CSV and, for VTP, a ParaView ``.pvd``.
- :class:`ExportError`, ``FORMATS``, ``HEIGHTS`` (export/options.py): what may be asked.
- :func:`build_surface`, :func:`build_paths`, :class:`Surface`, :class:`Paths`
  (export/geometry.py): the typed geometry every format writes.
- :func:`resolve_grid`, :func:`grid_landscape`, :func:`head_losses` (export/sequence.py): the
  grids of a landscape over training and where the training path's head stands on each.
- :func:`frame_files` (export/files.py): a sequence's numbered file names.
- export/formats/: one module per format (see its ``__init__``).

The scale (loss to height and colour, the quantiles, a sample of many grids, the default
z-scale) is the film's, from studio/scale.py.  Neither torch nor vispy is imported
(tests/test_separation.py).
"""
from export.files import frame_files
from export.geometry import Paths, Surface, build_paths, build_surface
from export.options import FORMATS, HEIGHTS, ExportError
from export.sequence import grid_landscape, head_losses, resolve_grid
from export.writing import export, export_sequence

__all__ = ["FORMATS", "HEIGHTS", "ExportError", "Paths", "Surface", "build_paths", "build_surface", "export",
           "export_sequence", "frame_files", "grid_landscape", "head_losses", "resolve_grid"]
