"""Files the films use: colormaps and fonts under assets/, and colormap files a scene names."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.cli import UserError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PROJECT = ASSETS.parent


class ColormapError(UserError, ValueError):
    """A colormap file that cannot be used; the message names the file (and line) and the problem."""


def colormap_names() -> list[str]:
    return sorted(p.stem for p in (ASSETS / "colormaps").glob("*.csv"))


def is_colormap_file(spec: str) -> bool:
    """Whether a ``render.look.colormap`` value names a file (``*.csv``) rather than a shipped map."""
    return spec.lower().endswith(".csv")


def resolve_colormap_file(spec: str, scene_dir: Path | None = None) -> Path:
    """The file a scene's ``colormap: path/to/map.csv`` means: absolute as given, else relative to
    the scene file's directory, else to the project.  Raises :class:`ColormapError` naming the
    places looked in."""
    p = Path(spec).expanduser()
    if p.is_absolute():
        cands = [p]
    else:
        cands = ([scene_dir / p] if scene_dir is not None else []) + [PROJECT / p]
    for c in cands:
        if c.is_file():
            return c.resolve()
    where = " or ".join(str(c) for c in dict.fromkeys(cands))
    raise ColormapError(f"colormap file not found (looked for {where})")


def load_colormap_file(path: str | Path) -> np.ndarray:
    """Parse a colormap file: one colour per line as ``r,g,b`` with values in [0, 1], low to
    high; ``#`` starts a comment, blank lines are skipped; at least 2 colours.  Returns an
    (N, 3) float64 array.  Errors name the file and line (:class:`ColormapError`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ColormapError(f"{path}: not a UTF-8 text file (byte {e.start}); a colormap is a text file of "
                            f"'r,g,b' rows") from None
    except OSError as e:
        raise ColormapError(f"{path}: cannot read the colormap file ({e.strerror or e})") from None
    rows = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3:
            raise ColormapError(f"{path}:{n}: expected 3 comma-separated numbers 'r,g,b', got {len(fields)} "
                                f"field{'s' if len(fields) != 1 else ''}: {raw.strip()!r}")
        vals = []
        for f in fields:
            try:
                v = float(f)
            except ValueError:
                raise ColormapError(f"{path}:{n}: {f!r} is not a number; a row is 'r,g,b' with values "
                                    f"from 0 to 1") from None
            if not np.isfinite(v) or not 0.0 <= v <= 1.0:
                raise ColormapError(f"{path}:{n}: value {f} is outside [0, 1]; colours are given as fractions "
                                    f"(divide 0-255 values by 255)")
            vals.append(v)
        rows.append(vals)
    if len(rows) < 2:
        raise ColormapError(f"{path}: {len(rows)} colour row{'s' if len(rows) != 1 else ''}; a colormap needs "
                            f"at least 2 rows 'r,g,b' (low to high)")
    return np.array(rows, dtype=np.float64)


@lru_cache(maxsize=None)
def colormap(spec: str) -> np.ndarray:
    """A (256, 3) float32 lookup table in [0, 1], low to high, for a shipped map's name or the
    path of a colormap file (any number of rows of at least 2, resampled to 256)."""
    if is_colormap_file(spec):
        lut = load_colormap_file(resolve_colormap_file(spec))
    else:
        path = ASSETS / "colormaps" / f"{spec}.csv"
        if not path.is_file():
            raise ColormapError(f"unknown colormap {spec!r}; allowed: {', '.join(colormap_names())}, or the "
                                f"path of a .csv file")
        lut = load_colormap_file(path)
    if len(lut) != 256:
        x = np.linspace(0, 1, len(lut))
        t = np.linspace(0, 1, 256)
        lut = np.stack([np.interp(t, x, lut[:, i]) for i in range(3)], axis=1)
    return lut.astype(np.float32)


def font(bold: bool = False) -> Path:
    return ASSETS / "fonts" / ("OpenSans-Bold.ttf" if bold else "OpenSans-Regular.ttf")
