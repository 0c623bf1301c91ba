"""A landscape's report: one PNG that a researcher reads before any table.

    python -m render SCENE --report [--out PATH]      ->  out/<scene>_report.png

Three panels from the cache entry and its figures (compute/describe.py, docs/figures.md):

* the landscape as a heat map of the log loss with contour lines, the training path, the grid's
  minimum and the outlines of both basins;
* Li et al.'s convexity map, |lambda_min / lambda_max| of the full Hessian over the window;
* the table of figures, in words.

Drawn with matplotlib (its Agg backend, no display): contours, colour bars and text layout are what
a plotting library does well and a point-cloud renderer does not.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from studio import atomic
from studio.cache import Landscape

#: the report's size in inches at its dpi (2400 x 1400 pixels)
SIZE, DPI = (16, 9.33), 150


def write_report(ls: Landscape, record: dict, arrays: dict, out: Path, title: str = "",
                 lines: list[str] | None = None) -> Path:
    """Draw the report of entry ``ls`` with its figures (``record``, ``arrays``: studio.cache's
    read_figures) at ``out``, written under a temporary name and renamed into place."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=SIZE, dpi=DPI, facecolor="#0b0c10")
    grid = fig.add_gridspec(2, 2, width_ratios=[1.35, 1], height_ratios=[0.85, 1.15], wspace=0.18, hspace=0.22,
                            left=0.04, right=0.98, top=0.92, bottom=0.05)
    fig.suptitle(title or f"landscape {ls.key}", color="#e8e9ee", fontsize=17, x=0.04, ha="left")
    _landscape(fig.add_subplot(grid[:, 0]), ls, record, arrays)
    _convexity(fig.add_subplot(grid[0, 1]), arrays, record)
    _table(fig.add_subplot(grid[1, 1]), lines or [])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic.write_file(out, lambda fh: fig.savefig(fh, format="png", facecolor=fig.get_facecolor()))
    finally:
        plt.close(fig)
    return out


def style_axes(ax, title: str, size: float = 12) -> None:
    """The dark style of the studio's charts (reports, sweeps) on one matplotlib axes."""
    ax.set_title(title, color="#e8e9ee", fontsize=size, loc="left")
    ax.set_facecolor("#0b0c10")
    ax.tick_params(colors="#9a9fad", labelsize=9)
    for s in ax.spines.values():
        s.set_color("#3a3d47")


def _landscape(ax, ls: Landscape, record: dict, arrays: dict) -> None:
    loss = np.asarray(ls.loss, dtype=np.float64)
    logl = np.log10(np.maximum(loss, 1e-12))
    extent = [ls.alpha[0], ls.alpha[-1], ls.beta[0], ls.beta[-1]]
    im = ax.imshow(logl, origin="lower", extent=extent, aspect="auto", cmap="magma", interpolation="bilinear")
    finite = logl[np.isfinite(logl)]
    if finite.size and np.ptp(finite) > 0:
        levels = np.linspace(finite.min(), np.quantile(finite, 0.98), 14)
        ax.contour(ls.alpha, ls.beta, logl, levels=levels, colors="#ffffff", linewidths=0.5, alpha=0.35)
    for name, colour in (("basin_absolute", "#7fe3ff"), ("basin_relative", "#b4ff9a")):
        mask = arrays.get(name)
        if mask is not None and mask.any():
            k = -(-len(ls.alpha) // mask.shape[1])          # a large grid's figures are on every k-th node
            ax.contour(ls.alpha[::k], ls.beta[::k], mask.astype(float), levels=[0.5], colors=colour,
                       linewidths=1.6)
    path = ls.paths.get("training")
    if path is not None:
        ax.plot(path.xy[:, 0], path.xy[:, 1], color="#ffd27f", linewidth=1.8, label="training path")
        ax.plot(*path.xy[0], "o", color="#ffd27f", markersize=5)
    m = record["figures"]["minimum"]
    ax.plot(m["a"], m["b"], marker="*", color="#ffffff", markersize=15, markeredgecolor="#000000",
            linestyle="none", label="grid minimum")
    ax.plot(0, 0, marker="+", color="#ffffff", markersize=12, linestyle="none", label="plane origin")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    margin = record["figures"]["basin_absolute"]["margin"]
    handles = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D
    extra = [Line2D([], [], color="#7fe3ff", label=f"basin: loss <= min + {margin:g}"),
             Line2D([], [], color="#b4ff9a", label="basin: loss <= 2 x min")]
    ax.legend(handles=[*handles[0], *extra], loc="upper right", fontsize=9, facecolor="#16181f",
              labelcolor="#e8e9ee", edgecolor="#3a3d47")
    style_axes(ax, "log10 loss on the plane, with contours, the path, the minimum and the basins")
    ax.set_xlabel("a", color="#9a9fad")
    ax.set_ylabel("b", color="#9a9fad")
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.04, pad=0.01)
    cb.ax.tick_params(colors="#9a9fad", labelsize=8)


def _convexity(ax, arrays: dict, record: dict) -> None:
    ratio = arrays.get("convexity_ratio")
    if ratio is None:
        ax.axis("off")
        ax.text(0.5, 0.5, textwrap.fill(missing_convexity(record), 60), color="#9a9fad", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)
        return
    a, b = arrays["convexity_alpha"], arrays["convexity_beta"]
    im = ax.imshow(np.asarray(ratio, dtype=np.float64), origin="lower", extent=[a[0], a[-1], b[0], b[-1]],
                   aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    style_axes(ax, "convexity: |lambda_min / lambda_max| of the Hessian (0: convex)")
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.ax.tick_params(colors="#9a9fad", labelsize=8)


def missing_convexity(record: dict) -> str:
    """Why an entry has no convexity map, as its figures record says."""
    omitted = record.get("omitted") or {}
    why = omitted.get("convexity") or omitted.get("hessian")
    if why:
        return why
    options = record.get("options") or {}
    if options.get("hessian") is False:
        return "no convexity map (landscape.figures.hessian: false)"
    return "no convexity map (landscape.figures.convexity_k: 0)"


def _table(ax, lines: list[str]) -> None:
    ax.axis("off")
    style_axes(ax, "figures (docs/figures.md)")
    import textwrap
    # the label's column (26 characters) stays clear: continuation lines are indented to it
    text = "\n".join("\n".join(textwrap.wrap(line, 78, subsequent_indent=" " * 26)) for line in lines)
    ax.text(0.0, 0.98, text, color="#dfe1e8", fontsize=7.8, family="monospace", transform=ax.transAxes,
            va="top", linespacing=1.45)
