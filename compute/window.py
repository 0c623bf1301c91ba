"""The automatic window: a plane's fitted window checked by a coarse probe before the grid.

A ``pca`` or ``checkpoints`` window fitted to the training path shows where training went; the
lowest ground near it may lie beyond where training stopped (the minimum SGD was still walking
towards).  Where the scene leaves ``plane.margin`` out, the compute stage evaluates a coarse probe
grid over a window ``PROBE_REACH`` window-widths larger on every side and, where the probe finds
ground meaningfully lower than anything inside the window, widens the window to take it in with
room around it.  Otherwise the fitted window stays, and the log says what the probe found.

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
#: room left around the lower ground in a widened window, as a share of the fitted window's larger side
ROOM = 0.25


@dataclass(frozen=True)
class Probe:
    """What the probe found: its window, the lowest loss inside the fitted window and outside it,
    where the outside one is, and the window to use."""
    probe: list
    inside: float
    outside: float
    at: tuple[float, float]
    window: list
    widened: bool

    def record(self) -> dict:
        return {"probe_window": self.probe, "probe_side": PROBE_SIDE, "inside_min": self.inside,
                "outside_min": self.outside, "outside_at": list(self.at), "widened": self.widened}

    def says(self, fitted: list) -> str:
        """One line for the log."""
        if self.widened:
            (a0, a1), (b0, b1) = self.window
            return (f"window widened: a {PROBE_SIDE}x{PROBE_SIDE} probe over 3 times the path's window finds lower "
                    f"ground beyond it (loss {self.outside:.4g} at ({self.at[0]:.3g}, {self.at[1]:.3g}) against "
                    f"{self.inside:.4g} inside); the grid covers a in [{a0:.3g}, {a1:.3g}], b in [{b0:.3g}, {b1:.3g}] "
                    f"(give plane.margin to keep the path's window)")
        return (f"window: the path's window holds the lowest ground a {PROBE_SIDE}x{PROBE_SIDE} probe over 3 times it "
                f"finds (loss {self.inside:.4g} inside, {self.outside:.4g} beyond)")


def probe_window(window: list, losses) -> Probe:
    """Evaluate ``losses(a, b)`` (1-D tensors -> losses) on the probe grid around ``window`` and
    choose the window (see the module docstring)."""
    (a0, a1), (b0, b1) = window
    wa, wb = a1 - a0, b1 - b0
    pa = (a0 - PROBE_REACH * wa, a1 + PROBE_REACH * wa)
    pb = (b0 - PROBE_REACH * wb, b1 + PROBE_REACH * wb)
    ax, bx = np.linspace(*pa, PROBE_SIDE), np.linspace(*pb, PROBE_SIDE)
    aa, bb = np.meshgrid(ax, bx)
    loss = np.asarray(losses(torch.tensor(aa.ravel(), dtype=torch.float32),
                             torch.tensor(bb.ravel(), dtype=torch.float32)), dtype=np.float64).reshape(aa.shape)
    ok = np.isfinite(loss)
    inside = (aa >= a0) & (aa <= a1) & (bb >= b0) & (bb <= b1)
    lo_in = float(np.min(loss[inside & ok])) if (inside & ok).any() else np.inf
    out = ~inside & ok
    if not out.any():
        return Probe([list(pa), list(pb)], lo_in, np.inf, (np.nan, np.nan), window, False)
    j = np.argmin(np.where(out, loss, np.inf))
    lo_out, at = float(loss.flat[j]), (float(aa.flat[j]), float(bb.flat[j]))
    relief = float(np.median(loss[ok])) - lo_in
    lower = np.isfinite(lo_in) and lo_out < lo_in - LOWER * max(relief, 0.0) and lo_out < lo_in
    if not lower:
        return Probe([list(pa), list(pb)], lo_in, lo_out, at, window, False)
    room = ROOM * max(wa, wb)
    wide = [[max(pa[0], min(a0, at[0] - room)), min(pa[1], max(a1, at[0] + room))],
            [max(pb[0], min(b0, at[1] - room)), min(pb[1], max(b1, at[1] + room))]]
    return Probe([list(pa), list(pb)], lo_in, lo_out, at, [[float(v) for v in r] for r in wide], True)
