"""What a sweep writes (``sweep:``, studio/scene/sweep.py) besides its gallery film (render/compare.py:
one page a moment, one panel a value): from its panels' cache entries and figures,

* ``out/<name>_sheet.png``: a contact sheet, one column a value and one row a moment, each cell a
  still of that panel's landscape captioned with its value, its moment and its key figures; a panel
  whose training diverged (no finite loss on its grid) is drawn as such;
* ``out/<name>_figures.csv`` and ``.json``: the figures by value and moment (docs/figures.md);
* ``out/<name>_chart.png``: what the sweep found: each figure against the swept value, one line a
  moment; for a learning rate, the top Hessian eigenvalue beside 2 / learning rate (gradient
  descent is stable along a direction only while its curvature is below 2 / eta).
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from render.compare import DivergedPanel, diverged
from render.report import style_axes
from render.overlay import load_font
from studio import atomic
from studio.cache import Landscape
from studio.scene import Scene
from studio.scene.sweep import moment_name

#: the table's columns: (name, where in the figures record, format)
COLUMNS = (("grid_min_loss", ("minimum", "loss")), ("basin_radius", ("basin_absolute", "radius")),
           ("basin_radius_relative", ("basin_relative", "radius")), ("top_eigenvalue", ("top_eigenvalue", "value")),
           ("hessian_trace", ("trace", "mean")), ("hessian_trace_stderr", ("trace", "stderr")),
           ("keskar_sharpness", ("keskar", "increase")), ("local_minima", ("minima", "count")),
           ("roughness", ("roughness", "rms_hessian")), ("max_offplane", ("path", "max_offplane")))


@dataclass(frozen=True)
class SweepPanel:
    caption: str
    value: object
    moment: object
    landscape: Landscape
    figures: dict | None           # the entry's figures record (studio.cache.read_figures), if measured
    scene: Scene | None = None     # the panel's own scene (the key set to the value, the plane at the moment)

    @property
    def diverged(self) -> bool:
        return diverged(self.landscape)

    def figure(self, where: tuple[str, str]):
        f = (self.figures or {}).get("figures") or {}
        part = f.get(where[0]) or {}
        return part.get(where[1])


# --------------------------------------------------------------------------- the table

def table_rows(scene: Scene, panels: list[SweepPanel]) -> list[dict]:
    rows = []
    for p in panels:
        meta = p.landscape.meta
        training = meta.get("training") or {}
        row = {"key": scene.sweep.key, "value": p.value, "moment": p.moment,
               "step": (meta.get("plane") or {}).get("origin_step"),
               "final_eval_loss": training.get("final_eval_loss"), "diverged": p.diverged,
               "cache_key": p.landscape.key}
        row.update({name: p.figure(where) for name, where in COLUMNS})
        rows.append(row)
    return rows


def write_table(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """The rows as CSV and JSON beside each other (``out`` without its suffix)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    c = atomic.write_text(out.with_suffix(".csv"), buf.getvalue())
    j = atomic.write_text(out.with_suffix(".json"), json.dumps(rows, indent=1, allow_nan=False) + "\n")
    return c, j


# --------------------------------------------------------------------------- the contact sheet

def write_sheet(scene: Scene, panels: list[SweepPanel], out: Path, cell: tuple[int, int] = (480, 270),
                t: float | None = None) -> Path:
    """The contact sheet: one column a value, one row a moment; every still drawn at time ``t`` (by
    default three quarters into the film: the camera settled, the path drawn)."""
    from render.film import Film, Options
    sw = scene.sweep
    cols, rows = len(sw.values), len(sw.moments)
    w, h = cell
    label = max(40, h // 5)
    pad, head = 8, 44
    sheet = Image.new("RGB", (cols * (w + pad) + pad, head + rows * (h + label + pad) + pad), (11, 12, 17))
    draw = ImageDraw.Draw(sheet)
    big, small = load_font(22), load_font(max(11, label // 4))
    draw.text((pad, 10), f"{scene.title or scene.name}: {sw.label or sw.key} over {cols} values, "
                         f"{rows} moment{'s' if rows > 1 else ''}", fill=(232, 233, 238), font=big)
    t = scene.render.duration * 0.75 if t is None else t
    # one height and colour scale for every panel that has a finite loss, so equal losses look equal
    from render.film import PanelOptions
    from studio.scale import shared_scales
    finite = [p.landscape for p in panels if not p.diverged]
    hm, cs = shared_scales(finite, scene.render.look) if finite else (None, None)
    for k, p in enumerate(panels):
        i, j = sw.values.index(p.value), sw.moments.index(p.moment)
        x, y = pad + i * (w + pad), head + j * (h + label + pad)
        if p.diverged:
            img = Image.fromarray(DivergedPanel(w, h).frame(t))
        else:
            # small multiples: the terrain alone (no title, captions, trails or read-out), on the shared scale
            sc = scene.model_copy(update={"title": "", "sweep": None,
                                          "render": scene.render.model_copy(update={"paths": {}, "captions": []})})
            panel = PanelOptions(heights=hm, color_scale=cs, overlays=False)
            with Film(sc, p.landscape, Options(w, h, 30, scene.render.duration, 1), panel) as film:
                img = Image.fromarray(np.ascontiguousarray(np.asarray(film.frame(t))[..., :3], dtype=np.uint8))
        sheet.paste(img, (x, y))
        lines = [f"{sw.label or sw.key} = {p.value}, {moment_name(p.moment)}", figures_line(scene, p)]
        for n, line in enumerate(lines):
            draw.text((x + 2, y + h + 3 + n * (small.size + 3)), line, fill=(225, 228, 235) if n == 0 else
                      (150, 155, 168), font=small)
    return atomic.write_file(out, lambda fh: sheet.save(fh, format="PNG"))


def figures_line(scene: Scene, p: SweepPanel) -> str:
    """A panel's key figures in one line (its caption's second line in the film and on the sheet): the
    lowest loss and the top Hessian eigenvalue, and for a learning rate 2 / eta, the curvature above
    which its steps are unstable (the basin radius and the rest are in the table)."""
    if p.diverged:
        return "training diverged: no finite loss on this grid"
    parts = []
    loss = p.figure(("minimum", "loss"))
    if loss is not None:
        parts.append(f"min loss {loss:.3g}")
    eig = p.figure(("top_eigenvalue", "value"))
    if eig is not None:
        parts.append(f"top eigenvalue {eig:.3g}")
        if isinstance(p.value, (int, float)) and scene.sweep.key == "train.lr" and p.value > 0:
            parts.append(f"2/lr {2 / p.value:.3g}")
    return "  \u00b7  ".join(parts)


def write_outputs(scene: Scene, panels: list[SweepPanel], base: Path) -> list[Path]:
    """The sweep's contact sheet, figures table (CSV, JSON) and chart beside ``base`` (the film's path
    without its suffix): ``<base>_sheet.png``, ``<base>_figures.csv`` / ``.json``, ``<base>_chart.png``."""
    sheet = write_sheet(scene, panels, base.with_name(f"{base.name}_sheet.png"))
    rows = table_rows(scene, panels)
    return [sheet, *write_table(rows, base.with_name(f"{base.name}_figures.csv")),
            write_chart(scene, rows, base.with_name(f"{base.name}_chart.png"))]


def write_chart(scene: Scene, rows: list[dict], out: Path) -> Path:
    """Each figure against the swept value (log axis where the values are positive numbers spread over
    a decade or more), one line a moment; a learning rate also gets 2 / eta beside the sharpness."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sw = scene.sweep
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sw.values)
    xs = list(range(len(sw.values))) if not numeric else [float(v) for v in sw.values]
    logx = numeric and min(xs) > 0 and max(xs) / min(xs) >= 10
    shown = (("top_eigenvalue", "top Hessian eigenvalue"), ("grid_min_loss", "lowest loss on the grid"),
             ("basin_radius", "basin radius (plane units)"), ("hessian_trace", "Hessian trace"))
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), dpi=130, facecolor="#0b0c10")
    for ax, (column, title) in zip(axes.flat, shown):
        style_axes(ax, title, 11)
        for moment in sw.moments:
            ys = [_value(r, column) for r in rows if r["moment"] == moment]
            ax.plot(xs, ys, marker="o", label=moment_name(moment))
        if column == "top_eigenvalue" and sw.key == "train.lr" and numeric:
            ax.plot(xs, [2 / x for x in xs], color="#ffffff", linestyle="--", linewidth=1.2,
                    label="2 / learning rate (the edge of stability)")
        if logx:
            ax.set_xscale("log")
        if column in ("top_eigenvalue", "hessian_trace") and _positive(rows, column):
            ax.set_yscale("log")
        if not numeric:
            ax.set_xticks(xs, [str(v) for v in sw.values])
        ax.set_xlabel(sw.label or sw.key, color="#9a9fad")
        ax.legend(fontsize=8, facecolor="#16181f", labelcolor="#e8e9ee", edgecolor="#3a3d47")
    fig.suptitle(f"{scene.title or scene.name}: what the sweep found", color="#e8e9ee", x=0.05, ha="left")
    fig.tight_layout()
    try:
        return atomic.write_file(out, lambda fh: fig.savefig(fh, format="png", facecolor=fig.get_facecolor()))
    finally:
        plt.close(fig)


def _value(row: dict, column: str) -> float:
    v = row.get(column)
    return float("nan") if v is None or row.get("diverged") else float(v)


def _positive(rows: list[dict], column: str) -> bool:
    vals = [_value(r, column) for r in rows]
    return all(v > 0 for v in vals if math.isfinite(v)) and any(math.isfinite(v) for v in vals)
