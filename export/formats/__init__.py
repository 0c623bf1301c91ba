"""The file formats, one module each, all writing to a binary file object ``fh``:

- :mod:`export.formats.ply`: ``write_surface`` (binary PLY: vertices with loss, extra grids and
  colours, triangles) and ``write_paths`` (vertices joined by ``element edge``).
- :mod:`export.formats.obj`: ``write`` (Wavefront OBJ: the terrain and each path as objects).
- :mod:`export.formats.vtp`: ``write_surface`` and ``write_paths`` (VTK XML PolyData, inline
  base64 binary) and ``write_collection`` (a ParaView ``.pvd`` over a sequence's files).
- :mod:`export.formats.csv`: ``write_grid`` (every grid vertex), ``write_paths`` (every path
  point) and ``write_sequence_index`` (a landscape over training's grids and heads).

:mod:`export.formats.text` holds what the text formats share: formatting a block of rows with
one ``%``, and the header's ``key: value`` comments.
"""
