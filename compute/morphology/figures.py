"""``Figures``: every morphology figure of one landscape together, and ``measure`` that makes them.

The grid figures need only the grid; the Hessian figures need an ``hvp_at`` factory and the plane
(origin, d1, d2); the path figure needs the training path.  What is not given is None.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from compute.morphology.grid import (Basin, GridMinimum, KeskarSharpness, LocalMinima, Roughness, basin,
                                     grid_minimum, keskar_sharpness, local_minima, roughness)
from compute.morphology.jsonable import Jsonable, plain
from compute.morphology.path import PathHonesty, path_honesty, plane_gram

if TYPE_CHECKING:                       # torch only when the Hessian figures are asked for
    from compute.morphology.hessian import ConvexityMap, TopEigenvalue, TraceEstimate


@dataclass(frozen=True)
class FigureOptions:
    """The figures' parameters (each recorded with its figure, too)."""
    margin: float = 0.1                     # absolute basin: loss <= min + margin (loss units)
    relative_margin: float = 1.0            # relative basin: loss <= min + relative_margin * |min| (twice the min)
    keskar_radius: float = 0.1              # plane units
    prominence: float | None = None         # local minima: None = 1% of the grid's loss range
    log_roughness: bool = False             # roughness of ln(loss) instead of loss
    iterations: int = 50                    # Lanczos steps for the top eigenvalue
    tolerance: float = 1e-3                 # Lanczos residual tolerance (relative to |H|)
    trace_samples: int = 64                 # Hutchinson's Rademacher vectors
    convexity_k: int = 7                    # convexity map: k x k points; 0 = no map
    convexity_iterations: int = 12          # Lanczos steps for each of its two eigenvalues
    seed: int = 0


@dataclass(frozen=True)
class Figures(Jsonable):
    """One landscape's morphology.  ``to_json()``: a dict of plain values (non-finite numbers as
    null) for the entry's meta; ``arrays()``: the arrays to store beside the grid."""
    minimum: GridMinimum
    basin_absolute: Basin
    basin_relative: Basin
    keskar: KeskarSharpness
    minima: LocalMinima
    roughness: Roughness
    top_eigenvalue: TopEigenvalue | None = None
    trace: TraceEstimate | None = None
    convexity: ConvexityMap | None = None
    path: PathHonesty | None = None

    def to_json(self) -> dict:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def arrays(self) -> dict[str, np.ndarray]:
        """``basin_absolute`` and ``basin_relative`` (ny, nx) bool masks; with a convexity map,
        ``convexity_ratio``, ``convexity_lambda_min``, ``convexity_lambda_max`` (k, k) float64 and
        ``convexity_alpha``, ``convexity_beta`` (k,)."""
        out = {"basin_absolute": self.basin_absolute.mask, "basin_relative": self.basin_relative.mask}
        if self.convexity is not None:
            c = self.convexity
            out.update(convexity_ratio=c.ratio, convexity_lambda_min=c.lambda_min, convexity_lambda_max=c.lambda_max,
                       convexity_alpha=c.alpha, convexity_beta=c.beta)
        return out


def measure(loss: np.ndarray, alpha: np.ndarray, beta: np.ndarray, options: FigureOptions = FigureOptions(), *,
            hvp_at=None, origin=None, d1=None, d2=None, xy: np.ndarray | None = None,
            offplane: np.ndarray | None = None, steps: np.ndarray | None = None,
            gram: np.ndarray | None = None) -> Figures:
    """Every figure the inputs allow.

    * always, from the grid: minimum, both basins, Keskar sharpness, local minima, roughness;
    * with ``hvp_at`` (``hessian.model_hvp``) and ``origin`` (flat tensor): the top eigenvalue and
      the trace at the origin; with ``d1``, ``d2`` too and ``options.convexity_k`` > 0, the
      convexity map over the grid's window;
    * with ``xy`` and ``offplane``: the path's honesty; its extent is measured with ``gram``, or
      ``plane_gram(d1, d2)`` when the directions are given, or the identity."""
    o = options
    f = Figures(grid_minimum(loss, alpha, beta),
                basin(loss, alpha, beta, o.margin),
                basin(loss, alpha, beta, o.relative_margin, relative=True),
                keskar_sharpness(loss, alpha, beta, o.keskar_radius),
                local_minima(loss, alpha, beta, o.prominence),
                roughness(loss, alpha, beta, log=o.log_roughness))
    if hvp_at is not None and origin is not None:
        from compute.morphology.hessian import convexity_map, hutchinson_trace, top_eigenvalue
        hvp = hvp_at(origin)
        n, dev = origin.numel(), origin.device
        f = dataclasses.replace(
            f, top_eigenvalue=top_eigenvalue(hvp, n, iterations=o.iterations, tolerance=o.tolerance, seed=o.seed,
                                             device=dev),
            trace=hutchinson_trace(hvp, n, samples=o.trace_samples, seed=o.seed, device=dev))
        if d1 is not None and d2 is not None and o.convexity_k > 0:
            a, b = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
            f = dataclasses.replace(f, convexity=convexity_map(
                hvp_at, origin, d1, d2, (float(a[0]), float(a[-1])), (float(b[0]), float(b[-1])), k=o.convexity_k,
                iterations=o.convexity_iterations, tolerance=o.tolerance, seed=o.seed))
    if xy is not None and offplane is not None:
        if gram is None and d1 is not None and d2 is not None:
            gram = plane_gram(_numpy(d1), _numpy(d2))
        f = dataclasses.replace(f, path=path_honesty(xy, offplane, steps, gram))
    return f


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if hasattr(t, "detach") else np.asarray(t, dtype=np.float64)
