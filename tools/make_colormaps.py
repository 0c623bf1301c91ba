"""Generate the dark-room colormaps in assets/colormaps/ from their designed stops.

    .venv/bin/python tools/make_colormaps.py          # rewrite ember.csv, aurora.csv, ice.csv
    .venv/bin/python tools/make_colormaps.py --check  # exit 1 if a committed file differs

The maps are made for films projected in a dark room: they start near black, tinted (the
lowest loss sinks into the dark, as with magma, but keeps a hue), never reach pure white (a
projector's white is glaring over a large terrain), and their lightness rises steadily from
end to end, so "higher" always reads as "brighter".

Each map is a list of stops.  Between stops the colour is interpolated in Oklab (Björn
Ottosson's perceptual space: equal steps look about equally large), with the lightness L
taken from a straight ramp between the first and the last stop's L, so lightness increases
evenly whatever the hues.  A colour outside the sRGB gamut is brought in by reducing its
chroma at constant L and hue.  The result is checked: CIE L* (from the relative luminance)
must increase strictly from row to row, or the script fails.

Only NumPy is needed; the output is 256 rows ``r,g,b`` in [0, 1] with six decimals.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "assets" / "colormaps"

# name -> (description, stops from low to high: hex colours, evenly spaced)
MAPS: dict[str, tuple[str, list[str]]] = {
    "ember": ("near black, deep red, orange, pale gold",
              ["#0c0405", "#3d0a0c", "#7c1712", "#bd3a14", "#e9722a", "#f5ad55", "#f7dfa4"]),
    "aurora": ("deep navy, teal, green, pale mint",
               ["#060a1c", "#0c2346", "#0b4a63", "#0e7870", "#2aa574", "#7ccf8c", "#d2f5dc"]),
    "ice": ("black-blue, blue, cyan, near white",
            ["#04060f", "#0b1a45", "#14408a", "#1676be", "#2fadd9", "#86dcef", "#e2f4fa"]),
}


# ----------------------------------------------------------------------------- colour spaces

def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.abs(c) ** (1 / 2.4) * np.sign(c) - 0.055)


_M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
                [0.2119034982, 0.6806995451, 0.1073969566],
                [0.0883024619, 0.2817188376, 0.6299787005]])
_M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                [1.9779984951, -2.4285922050, 0.4505937099],
                [0.0259040371, 0.7827717662, -0.8086757660]])


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    lms = srgb_to_linear(rgb) @ _M1.T
    return np.cbrt(lms) @ _M2.T


def oklab_to_linear(lab: np.ndarray) -> np.ndarray:
    lms = (np.asarray(lab, np.float64) @ np.linalg.inv(_M2).T) ** 3
    return lms @ np.linalg.inv(_M1).T


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* (0 to 100) of sRGB colours in [0, 1]: the luminance proxy the tests use too."""
    y = srgb_to_linear(rgb) @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


def hex_rgb(h: str) -> np.ndarray:
    h = h.lstrip("#")
    return np.array([int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])


# ----------------------------------------------------------------------------- the maps

def _in_gamut(lab: np.ndarray) -> np.ndarray:
    lin = oklab_to_linear(lab)
    return np.all((lin >= -1e-9) & (lin <= 1 + 1e-9), axis=-1)


def build(stops: list[str], n: int = 256) -> np.ndarray:
    labs = np.array([srgb_to_oklab(hex_rgb(s)) for s in stops])
    if np.any(np.diff(labs[:, 0]) <= 0):
        raise ValueError(f"stops {stops}: their Oklab lightness must increase from stop to stop")
    x = np.linspace(0, 1, len(stops))
    t = np.linspace(0, 1, n)
    a = np.interp(t, x, labs[:, 1])
    b = np.interp(t, x, labs[:, 2])
    # lightness: an even ramp from the first stop's to the last stop's
    L = labs[0, 0] + t * (labs[-1, 0] - labs[0, 0])
    lab = np.stack([L, a, b], axis=1)
    # out of gamut: shrink the chroma (a, b) at constant L until it fits (bisection)
    bad = ~_in_gamut(lab)
    if bad.any():
        lo, hi = np.zeros(bad.sum()), np.ones(bad.sum())
        for _ in range(40):
            mid = (lo + hi) / 2
            trial = lab[bad].copy()
            trial[:, 1:] *= mid[:, None]
            ok = _in_gamut(trial)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        lab[bad, 1:] *= lo[:, None]
    rgb = np.clip(linear_to_srgb(np.clip(oklab_to_linear(lab), 0, 1)), 0, 1)
    rgb = np.round(rgb, 6)
    Ls = lightness(rgb)
    if not np.all(np.diff(Ls) > 0):
        i = int(np.argmin(np.diff(Ls)))
        raise ValueError(f"stops {stops}: CIE L* does not increase at row {i + 1} ({Ls[i]:.3f} -> {Ls[i + 1]:.3f})")
    return rgb


def render_csv(name: str) -> str:
    desc, stops = MAPS[name]
    rgb = build(stops)
    head = (f"# {name}: 256 RGB entries in [0,1], low to high; {desc}. Generated by tools/make_colormaps.py "
            f"from the stops {' '.join(stops)} (Oklab, lightness rising evenly)\n")
    return head + "".join(f"{r:.6f},{g:.6f},{b:.6f}\n" for r, g, b in rgb)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = ap.parse_args(argv)
    stale = []
    for name in MAPS:
        text = render_csv(name)
        path = OUT / f"{name}.csv"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run tools/make_colormaps.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
