"""The automatic window: a plane's fitted window checked by a coarse probe before the grid.

A ``pca`` or ``checkpoints`` window fitted to the training path shows where training went; the
lowest ground near it may lie beyond where training stopped (the minimum SGD was still walking
towards).  Where the scene leaves ``plane.margin`` out, the compute stage looks before the grid:

* a descent in the plane from where training ended (Adam on the exact in-plane gradient,
  ``DESCENT_STEPS`` steps of ``DESCENT_LR`` window widths): it follows a valley floor, however
  narrow, to the low ground it leads to;
* a coarse probe grid over a window ``PROBE_REACH`` window-widths larger on every side: a lower
  basin the descent does not lead to.

Where either finds ground meaningfully lower outside the window than anything inside it, or the
descent leaves the window and ends as deep as the window's lowest (the valley training ended in
runs on beyond the edge), or the lowest ground inside lies at an edge (its basin cut off: it would
read as a slope), the window is widened to take that ground in with ``ROOM`` around it, within the
probe's reach.  Otherwise the fitted window stays, and the log says what was found.

A margin the scene gives is kept as given, with no probe: the scene's window is the author's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: the fitted window's margin (a fraction of the path's extent on each side) where the scene gives none
FIT_MARGIN = 0.35
#: probe grid points a side
PROBE_SIDE = 25
#: how far the probe reaches beyond the window on each side, in window widths
PROBE_REACH = 1.0
#: lower ground counts where it is below the window's lowest by this share of the probe's relief
#: (its median minus the window's lowest)
LOWER = 0.05
#: room left around the lower ground in a widened window, as a share of the fitted window's side on each axis
ROOM = 0.25
#: the descent's end beyond the window as deep as the lowest inside within this share of the probe's relief
#: in log loss (its median over the lowest inside): the valley runs on
VALLEY = 0.15
#: the descent from where training ended: its steps, and Adam's step as a share of the window's larger side
DESCENT_STEPS = 150
DESCENT_LR = 0.02


@dataclass(frozen=True)
class Probe:
    """What the look around the fitted window found: the probe's window, the lowest loss inside the
    fitted window and beyond it, where the ground that moved the window is, why the window was
    widened ("lower": lower ground beyond; "valley": the valley training ended in runs on beyond the
    edge, as deep; "edge": the lowest ground inside lies at an edge, its basin cut off; or None),
    and the window to use."""
    probe: list
    inside: float
    outside: float
    at: tuple[float, float]
    window: list
    why: str | None = None

    @property
    def widened(self) -> bool:
        return self.why is not None

    def record(self) -> dict:
        return {"probe_window": self.probe, "probe_side": PROBE_SIDE, "inside_min": self.inside,
                "outside_min": self.outside, "outside_at": list(self.at), "widened": self.widened,
                "why": self.why}

    def says(self, fitted: list) -> str:
        """One line for the log."""
        if self.widened:
            (a0, a1), (b0, b1) = self.window
            where = f"({self.at[0]:.3g}, {self.at[1]:.3g})"
            found = {"lower": f"lower ground beyond the path's window (loss {self.outside:.4g} at {where} against "
                              f"{self.inside:.4g} inside)",
                     "valley": f"the valley where training ended running on beyond the window's edge (loss "
                               f"{self.outside:.4g} at {where} against {self.inside:.4g} inside)",
                     "edge": f"the lowest ground at the window's edge, its basin cut off there (loss {self.inside:.4g} "
                             f"at {where})"}[self.why]
            return (f"window widened: a descent from where training ended and a {PROBE_SIDE}x{PROBE_SIDE} probe over "
                    f"3 times the path's window find {found}; the grid covers a in [{a0:.3g}, {a1:.3g}], "
                    f"b in [{b0:.3g}, {b1:.3g}] (give plane.margin to keep the path's window)")
        return (f"window: the path's window holds the lowest ground a descent from where training ended and a "
                f"{PROBE_SIDE}x{PROBE_SIDE} probe over 3 times it find (loss {self.inside:.4g} inside, "
                f"{self.outside:.4g} beyond)")


def probe_window(window: list, losses, walked: tuple[np.ndarray, np.ndarray] | None = None) -> Probe:
    """Evaluate ``losses(a, b)`` (1-D tensors -> losses) on the probe grid around ``window`` and,
    with the points and losses of the descent from where training ended (``walked``), choose the
    window (see the module docstring)."""
    (a0, a1), (b0, b1) = window
    wa, wb = a1 - a0, b1 - b0
    pa = (a0 - PROBE_REACH * wa, a1 + PROBE_REACH * wa)
    pb = (b0 - PROBE_REACH * wb, b1 + PROBE_REACH * wb)
    aa, bb = np.meshgrid(np.linspace(*pa, PROBE_SIDE), np.linspace(*pb, PROBE_SIDE))
    loss = np.asarray(losses(torch.tensor(aa.ravel(), dtype=torch.float32),
                             torch.tensor(bb.ravel(), dtype=torch.float32)), dtype=np.float64).ravel()
    xy, wl = (np.asarray(walked[0], np.float64).reshape(-1, 2), np.asarray(walked[1], np.float64).ravel()) \
        if walked is not None else (np.empty((0, 2)), np.empty(0))
    pts = np.concatenate([np.c_[aa.ravel(), bb.ravel()], xy])            # the probe's points, then the descent's
    vals = np.concatenate([loss, wl])
    ok = np.isfinite(vals)
    inside = (pts[:, 0] >= a0) & (pts[:, 0] <= a1) & (pts[:, 1] >= b0) & (pts[:, 1] <= b1)
    if not (inside & ok).any():
        return Probe([list(pa), list(pb)], np.inf, np.inf, (np.nan, np.nan), window)
    i = np.flatnonzero(inside & ok)[np.argmin(vals[inside & ok])]
    lo_in, low_at = float(vals[i]), (float(pts[i, 0]), float(pts[i, 1]))
    out = ~inside & ok
    probe = [list(pa), list(pb)]
    room = (ROOM * wa, ROOM * wb)
    if not out.any():
        return _edge(probe, window, lo_in, low_at, room, (pa, pb))
    j = np.flatnonzero(out)[np.argmin(vals[out])]
    lo_out, at = float(vals[j]), (float(pts[j, 0]), float(pts[j, 1]))
    relief = max(float(np.median(loss[np.isfinite(loss)])) - lo_in, 0.0)
    why = "lower" if lo_out < lo_in - LOWER * relief and lo_out < lo_in else None
    if why is None and len(xy) and not inside[-1] and _as_deep(float(wl[-1]), lo_in, lo_in + relief):
        why, lo_out, at = "valley", float(wl[-1]), (float(xy[-1, 0]), float(xy[-1, 1]))
    if why is None:
        edge = _edge(probe, window, lo_in, low_at, room, (pa, pb))
        return Probe(probe, lo_in, lo_out, at if not edge.widened else edge.at, edge.window, edge.why)
    return Probe(probe, lo_in, lo_out, at, _around(window, at, room, (pa, pb)), why)


def _around(window: list, at: tuple[float, float], room: tuple[float, float], reach: tuple) -> list:
    """The window grown to hold ``at`` with ``room`` (on a, on b) on every side, within the probe's ``reach``."""
    (a0, a1), (b0, b1) = window
    (pa, pb), (ra, rb) = reach, room
    wide = [[max(pa[0], min(a0, at[0] - ra)), min(pa[1], max(a1, at[0] + ra))],
            [max(pb[0], min(b0, at[1] - rb)), min(pb[1], max(b1, at[1] + rb))]]
    return [[float(v) for v in r] for r in wide]


def _edge(probe: list, window: list, lowest: float, at: tuple[float, float], room: tuple, reach: tuple) -> Probe:
    """The lowest ground inside the window, but nearer an edge than ``room``: its basin is cut off
    there, so that side moves out ("edge"); else the window as fitted."""
    wide = _around(window, at, room, reach)
    why = "edge" if wide != [[float(v) for v in r] for r in window] else None
    return Probe(probe, lowest, np.inf, at, wide if why else window, why)


def _as_deep(value: float, lowest: float, median: float) -> bool:
    """Whether a loss is about as low as ``lowest``: within VALLEY of the relief, in log loss."""
    if not (np.isfinite(value) and lowest > 0 and median > lowest):
        return bool(np.isfinite(value) and value <= lowest)
    return np.log(value / lowest) <= VALLEY * np.log(median / lowest)
