"""A landscape's figures (compute/morphology, docs/figures.md) in words: the lines that
``python -m compute describe`` prints and the render stage's report shows.  NumPy only."""
from __future__ import annotations

import math

import numpy as np


def _f(v, fmt: str = ".4g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


#: what makes a coarse grid fine enough, for the lines of figures it does not resolve
FINER = "raise landscape.grid.resolution or narrow the window"


def _resolved(figure: dict, fewest: int) -> bool:
    """Whether a figure measured at a radius was resolved by the grid: its ``resolved``, or for a
    record measured before that was recorded, from its node count (Keskar's disc: more than the
    origin's node; a basin: the 4 nodes of a radius of one step on square cells)."""
    if "resolved" in figure:
        return bool(figure["resolved"])
    return (figure.get("cells") or 0) >= fewest


def _basin(label: str, b: dict) -> str:
    edge = " (reaches the window's edge)" if b.get("touches_edge") else ""
    if _resolved(b, 4):
        return f"{label}area {_f(b['area'])} plane units^2, equivalent radius {_f(b['radius'])}{edge}"
    step = f" of spacing {_f(b['spacing'], '.3g')}" if b.get("spacing") is not None else ""
    return (f"{label}narrower than the grid resolves: {b.get('cells')} node{'' if b.get('cells') == 1 else 's'}"
            f"{step}, not measured ({FINER}){edge}")


def _keskar(k: dict) -> str:
    head = "Keskar sharpness          "
    if k.get("origin_inside") is False:
        return f"{head}n/a: the plane's origin is outside the window"
    if not _resolved(k, 2):
        why = (f"the grid's spacing {_f(k['spacing'], '.3g')} is wider than the radius {_f(k['radius'], 'g')}"
               if k.get("spacing") is not None else f"{k.get('cells')} grid node(s) within radius "
                                                      f"{_f(k['radius'], 'g')} of the origin")
        return f"{head}not resolved: {why}, not measured ({FINER}, or raise landscape.figures.keskar_radius)"
    return (f"{head}+{_f(k['increase'])} within radius {_f(k['radius'], 'g')} of the origin "
            f"({_f(100 * k['relative'] if k.get('relative') is not None else None, '.3g')}% of 1 + L(0))")


def describe(figures: dict) -> list[str]:
    """The figures as lines of text, one a figure (docs/figures.md defines each).  A figure the
    grid does not resolve (a basin or a Keskar disc narrower than its spacing) says so."""
    f = figures
    m, ba, br, k = f["minimum"], f["basin_absolute"], f["basin_relative"], f["keskar"]
    lines = [
        f"minimum on the grid       loss {_f(m['loss'])} at (a, b) = ({_f(m['a'], '.3g')}, {_f(m['b'], '.3g')}), "
        f"{_f(m['distance'], '.3g')} from the plane's origin" + (" (on the window's edge)" if m.get("on_edge") else ""),
        _basin(f"basin, loss <= min + {_f(ba['margin'], 'g')}  ", ba),
        _basin(f"basin, loss <= min x {_f(1 + br['margin'], 'g')}    ", br),
    ]
    if f.get("top_eigenvalue"):
        e = f["top_eigenvalue"]
        lines.append(f"top Hessian eigenvalue    {_f(e['value'])} (Lanczos, {e['lanczos_steps']} steps"
                     f"{'' if e.get('converged') else ', not converged'})")
    if f.get("trace"):
        t = f["trace"]
        lines.append(f"Hessian trace             {_f(t['mean'])} +- {_f(t['stderr'], '.2g')} (Hutchinson, "
                     f"{t['samples']} samples, one standard error)")
    lines.append(_keskar(k))
    mn, r = f["minima"], f["roughness"]
    lines.append(f"local minima              {mn['count']} with prominence above {_f(mn['threshold'], '.3g')} "
                 f"({mn['interior']} inside the window)")
    lines.append(f"roughness                 {_f(r['rms_hessian'])} (RMS of the grid's Hessian norm, loss per "
                 f"plane unit^2{', of ln loss' if r.get('log') else ''})")
    if f.get("convexity"):
        ratio = np.asarray([v for row in f["convexity"]["ratio"] for v in row if v is not None], dtype=np.float64)
        if ratio.size:
            lines.append(f"convexity |lmin/lmax|     median {_f(float(np.median(ratio)), '.3g')}, largest "
                         f"{_f(float(ratio.max()), '.3g')} over {len(f['convexity']['alpha'])}x"
                         f"{len(f['convexity']['beta'])} points (0: convex; near 1: as curved down as up)")
    if f.get("path"):
        p = f["path"]
        lines.append(f"path off the plane        largest {_f(p['max_offplane'], '.3g')} at step {p['step']}, mean "
                     f"{_f(p['mean_offplane'], '.3g')}; {_f(p['ratio'], '.3g')} of the path's extent on the plane")
    return lines


#: what each grid path is, in words (compute/grid/: the engine's strategies)
PATHS = {"graph": "the general path (the model's graph, batched)",
         "linear": "the MLP path", "conv": "the ConvNet path",
         "vmap": "torch.func's vmap", "loop": "one point at a time (torch.func)"}


def grid_summary(meta: dict) -> str:
    """How an entry's grid was evaluated, in one line: the path, compiled or not, points a pass,
    points per second; and where the general path did not run the model, why."""
    e, t = meta.get("engine", {}), meta.get("timings", {})
    method = e.get("method", "?")
    rate = t.get("grid_points_per_s")
    chunk = e.get("chunk", "?")
    line = (f"{PATHS.get(method, method)}{', compiled' if e.get('compiled') else ''}, {chunk} "
            f"point{'' if chunk == 1 else 's'} a pass" + (f", {rate:,.0f} points/s" if rate else "") + f" on {meta.get('device', '?')}")
    if e.get("fallback"):
        line += f"; the general path could not batch the model: {e['fallback']}"
    return line
