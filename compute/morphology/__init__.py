"""The landscape's morphology as numbers: how deep and wide its basin, how sharp its minimum, how
rough the ground, how honest the plane is about the path.  Definitions, formulas and units:
``docs/figures.md``.

The modules, one line each:

    grid.py      figures of the loss grid alone (NumPy): minimum, basins, Keskar, minima, roughness
    prominence.py  every local minimum's prominence (the merge tree), for grid.py's minima
    hessian.py   figures of the Hessian at the origin and over the window (torch): Lanczos, trace, convexity
    path.py      how far the training path strays from the plane (NumPy)
    figures.py   FigureOptions, Figures (all of them together) and measure, which makes them
    jsonable.py  the figures' shared to_json: plain values, non-finite numbers as null

Pure functions of plain arrays, tensors and callables (no scene, no cache), each returning a small
frozen dataclass with ``to_json()``:

grid (NumPy; ``loss`` (ny, nx), ``alpha`` (nx,), ``beta`` (ny,)), ``compute/morphology/grid.py``:
    grid_minimum(loss, alpha, beta) -> GridMinimum
    basin(loss, alpha, beta, margin, relative=False) -> Basin            (area, radius, mask)
    keskar_sharpness(loss, alpha, beta, radius) -> KeskarSharpness
    local_minima(loss, alpha, beta, threshold=None) -> LocalMinima        (count above a prominence)
    prominences(loss) -> (flat indices, prominences)                      (every local minimum)
    roughness(loss, alpha, beta, log=False) -> Roughness                  (RMS |discrete Hessian|_F)
    bilinear, cell_areas, component4, second_derivatives                  (the pieces)
    node_step, span_step                   (the grid's spacing: a figure finer than it is not resolved)

Hessian (torch; ``hvp``: v -> H v, ``hvp_at``: at -> hvp), ``compute/morphology/hessian.py``:
    model_hvp(model, x, y, loss=CROSS_ENTROPY, dtype=float64) -> hvp_at
    top_eigenvalue(hvp, n, *, iterations, tolerance, seed) -> TopEigenvalue
    hutchinson_trace(hvp, n, *, samples, seed, batch) -> TraceEstimate
    convexity_map(hvp_at, origin, d1, d2, alpha_range, beta_range, *, k, iterations, seed) -> ConvexityMap

path (NumPy), ``compute/morphology/path.py``:
    path_honesty(xy, offplane, steps=None, gram=None) -> PathHonesty
    plane_gram(d1, d2) -> (2, 2)

all together, ``compute/morphology/figures.py``:
    measure(loss, alpha, beta, options=FigureOptions(), *, hvp_at, origin, d1, d2, xy, offplane,
            steps, gram) -> Figures                                        (.to_json(), .arrays())

The grid and path modules import NumPy only; the Hessian module (and so this package) torch.
"""
from compute.morphology.figures import FigureOptions, Figures, measure
from compute.morphology.grid import (Basin, GridMinimum, KeskarSharpness, LocalMinima, Roughness, basin, bilinear,
                                     cell_areas, component4, grid_minimum, keskar_sharpness, local_minima,
                                     roughness, second_derivatives)
from compute.morphology.prominence import prominences
from compute.morphology.hessian import (ConvexityMap, TopEigenvalue, TraceEstimate, convexity_map,
                                        hutchinson_trace, model_hvp, rademacher, top_eigenvalue)
from compute.morphology.path import PathHonesty, path_honesty, plane_gram

__all__ = ["Basin", "ConvexityMap", "FigureOptions", "Figures", "GridMinimum", "KeskarSharpness", "LocalMinima",
           "PathHonesty", "Roughness", "TopEigenvalue", "TraceEstimate", "basin", "bilinear", "cell_areas",
           "component4", "convexity_map", "grid_minimum", "hutchinson_trace", "keskar_sharpness", "local_minima",
           "measure", "model_hvp", "path_honesty", "plane_gram", "prominences", "rademacher", "roughness",
           "second_derivatives", "top_eigenvalue"]
