"""Planes through weight space: an origin and two directions.

A point (a, b) of a plane stands for the weights  origin + a*d1 + b*d2.  The
methods (the scene's ``plane.method``), after Li et al. 2018 ("Visualizing the
Loss Landscape of Neural Nets"):

* ``pca``         -- origin: the final weights.  The top two principal
                     directions of the training trajectory (snapshots minus
                     the final weights, centred), unit length; the explained
                     variance ratios go to the plane info.
* ``random``      -- origin: the final weights.  Two seeded Gaussian
                     directions, normalized (``normalize_direction``):
                     ``filter`` rescales each output unit / filter of a
                     direction to the norm of the same unit in the weights,
                     ``layer`` whole tensors, ``weight`` multiplies by the
                     weights elementwise, ``none`` leaves the Gaussian.  1-D
                     parameters (biases, norm layers) get a zero direction, or
                     with ``include_biases`` a direction rescaled as a whole to
                     the parameter's norm.  ``orthogonalize`` makes d2 exactly
                     orthogonal to d1 while keeping its normalization exact
                     (``orthogonal_direction``; both in plane/directions.py).
* ``hessian``     -- origin: the final weights.  The eigenvectors of the two
                     largest (algebraic) eigenvalues of the loss Hessian there,
                     on the evaluation subset, by Lanczos with full
                     reorthogonalization on Hessian-vector products
                     (``hessian_top2``, plane/hessian.py); unit length.
                     Default extent: a square sized by the curvature
                     (``curvature_span``) and the projected trajectory.
* ``checkpoints`` -- the plane through two or three training snapshots, found
                     by Gram-Schmidt, unit directions; the origin is the final
                     weights if they are among them, else the first listed.
                     With two, d2 is a random normalized direction made
                     orthogonal to d1, then scaled to unit length.
* ``interpolate`` -- origin: checkpoint A; d1 = B - A (so A is at a = 0 and
                     B at a = 1); d2 a random normalized direction (relative to
                     A's weights) exactly orthogonal to d1.
* ``minima``      -- the plane through three trained networks' final weights
                     (plane/minima.py, which trains or loads them; the
                     pipeline calls it instead of ``build_plane``); only its
                     default extent is here.

Random directions are always normalized relative to the plane's origin.  The
trajectory is put on any plane by least squares (``project``; it and PCA in
plane/projection.py), exact for non-orthogonal, non-unit directions too.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from studio.scene.landscape import PlaneSpec, SequenceSpec
from compute.losses import CROSS_ENTROPY, Loss
from compute.plane.core import Plane, PlaneError, flatten, split
from compute.plane.directions import _cos, normalize_direction, orthogonal_direction
from compute.plane.hessian import _hessian_subset, curvature_span, hessian_plane, hessian_top2, hvp_function
from compute.plane.projection import pca_plane, project

#: the names the package exports from here, those defined in directions.py, hessian.py and
#: projection.py included
__all__ = ["normalize_direction", "orthogonal_direction", "random_plane",
           "pca_plane", "hvp_function", "hessian_top2", "hessian_plane", "nearest_snapshots", "checkpoint_plane",
           "interpolate_plane", "curvature_span", "build_plane", "STILL", "project", "INTERPOLATE_EXTENT",
           "extents", "sequence_indices", "sequence_plane"]


# --------------------------------------------------------------------------- random

def _gaussians(origin: dict[str, torch.Tensor], seed: int, count: int) -> list[dict[str, torch.Tensor]]:
    """Seeded Gaussian directions, drawn on the CPU (the same numbers on every device)."""
    g = torch.Generator().manual_seed(seed)
    return [{k: torch.randn(v.shape, generator=g).to(v) for k, v in origin.items()} for _ in range(count)]


def random_plane(origin: dict[str, torch.Tensor], seed: int, how: str = "filter",
                 include_biases: bool = False, orthogonalize: bool = False):
    """-> (d1, d2) dicts like ``origin`` and info with their cosine (and, orthogonalized, the cosine
    before)."""
    g1, g2 = _gaussians(origin, seed, 2)
    d1 = normalize_direction(g1, origin, how, include_biases)
    d2 = normalize_direction(g2, origin, how, include_biases)
    info = {"cosine": _cos(flatten(d1), flatten(d2))}
    if orthogonalize:
        info["cosine_before_orthogonalization"] = info["cosine"]
        d2 = orthogonal_direction(g2, d1, origin, how, include_biases)
        info["cosine"] = _cos(flatten(d1), flatten(d2))
    return d1, d2, info

# --------------------------------------------------------------------------- checkpoints

def nearest_snapshots(recorded: np.ndarray, requested: list[int]) -> list[int]:
    """Index of the recorded snapshot nearest to each requested step (the earlier one on a tie);
    two requests on the same snapshot are an error that says what to change."""
    recorded = np.asarray(recorded)
    idx = [int(np.argmin(np.abs(recorded - s))) for s in requested]
    for i in range(len(idx)):
        for j in range(i):
            if idx[i] == idx[j]:
                raise PlaneError(
                    f"landscape.plane.checkpoints: steps {requested[j]} and {requested[i]} both fall on the "
                    f"snapshot at step {int(recorded[idx[i]])} (snapshots kept: {len(recorded)}); choose steps "
                    f"further apart, or keep more snapshots (train.snapshots) or space them linearly "
                    f"(train.schedule: linear)")
    return idx


def _unit(v: torch.Tensor, what: str, ref: float = 0.0) -> tuple[torch.Tensor, float]:
    """v / |v|, or an error when |v| is zero or at most 1e-6 * ref (float32 rounding of ref)."""
    n = float(v.norm())
    if not n > 1e-6 * ref:
        raise PlaneError(f"landscape.plane.checkpoints: {what}; the plane through them is not defined")
    return v / n, n


def checkpoint_plane(params: torch.Tensor, steps: np.ndarray, requested: list[int], model: nn.Module,
                     seed: int, how: str = "filter", include_biases: bool = False):
    """The plane through two or three snapshots.  -> (origin, d1, d2) flat, info.

    Origin: the final snapshot if it is one of them, else the first listed.  d1: the unit vector
    to the next listed checkpoint; with three, d2 is the unit Gram-Schmidt remainder of the
    third, so the marks lie exactly on the plane at (|X - O|, 0) and (<Y - O, d1>, |remainder|).
    With two, d2 is a seeded random direction normalized like a ``random`` plane's (relative to
    the origin's weights), made exactly orthogonal to d1 and scaled to unit length: both axes are
    then in units of weight-space distance."""
    idx = nearest_snapshots(steps, requested)
    last = len(steps) - 1
    o = idx.index(last) if last in idx else 0
    others = [i for i in range(len(idx)) if i != o]
    P = params.double()
    origin = P[idx[o]]
    d1, n1 = _unit(P[idx[others[0]]] - origin,
                   f"the snapshots at steps {int(steps[idx[o]])} and {int(steps[idx[others[0]]])} are equal")
    if len(idx) == 3:
        r = P[idx[others[1]]] - origin
        ref = float(r.norm())
        r = r - (r @ d1) * d1
        r = r - (r @ d1) * d1                               # twice: exact to rounding
        d2, _ = _unit(r, f"the snapshots at steps {', '.join(str(int(steps[i])) for i in idx)} lie on one "
                         f"line (to float32 precision)", ref)
    else:
        o_w = split(model, origin)                          # float64 throughout (same Gaussian draws)
        g = _gaussians(o_w, seed, 1)[0]
        d2 = flatten(orthogonal_direction(g, split(model, d1), o_w, how, include_biases))
        d2, _ = _unit(d2, "the random second direction is zero (no parameter has a direction)")
    marks = []
    for i, s in enumerate(requested):
        v = P[idx[i]] - origin
        marks.append({"requested_step": int(s), "step": int(steps[idx[i]]),
                      "xy": [float(v @ d1), float(v @ d2)]})
    info = {"origin_step": int(steps[idx[o]]), "marks": marks}
    return origin.to(params.dtype), d1.to(params.dtype), d2.to(params.dtype), info


def interpolate_plane(params: torch.Tensor, steps: np.ndarray, requested: list[int], model: nn.Module,
                      seed: int, how: str = "filter", include_biases: bool = False):
    """The line from checkpoint A to B as the first axis.  -> (origin, d1, d2) flat, info.

    Origin A, d1 = B - A (A at a = 0, B at a = 1); d2 a seeded random direction normalized like a
    ``random`` plane's relative to A's weights, exactly orthogonal to d1 (its normalization
    intact), so b is in Li et al.'s units."""
    idx = nearest_snapshots(steps, requested)
    a, b = params[idx[0]], params[idx[1]]
    d1 = (b.double() - a.double()).to(params.dtype)
    if not float(d1.norm()) > 0:
        raise PlaneError(f"landscape.plane.checkpoints: the snapshots at steps {int(steps[idx[0]])} and "
                         f"{int(steps[idx[1]])} are equal; the line between them is not defined")
    a_w = split(model, a)
    g = _gaussians(a_w, seed, 1)[0]
    d2 = flatten(orthogonal_direction(g, split(model, d1), a_w, how, include_biases))
    marks = [{"requested_step": int(requested[0]), "step": int(steps[idx[0]]), "xy": [0.0, 0.0]},
             {"requested_step": int(requested[1]), "step": int(steps[idx[1]]), "xy": [1.0, 0.0]}]
    info = {"origin_step": int(steps[idx[0]]), "marks": marks,
            "cosine": _cos(d1, d2), "distance": float(d1.double().norm())}
    return a.clone(), d1, d2, info


# --------------------------------------------------------------------------- dispatch

def build_plane(spec: PlaneSpec, model: nn.Module, params: torch.Tensor, steps: np.ndarray,
                x: torch.Tensor, y: torch.Tensor | None, eval_loss: np.ndarray | None = None,
                loss: Loss = CROSS_ENTROPY, final_index: int = -1) -> tuple[Plane, dict]:
    """The scene's plane (``spec``: its resolved plane: section) for a run.

    ``params`` (T, P): the snapshots, ``params[final_index]`` the final weights; ``steps``: their
    training steps; (x, y): the evaluation data (for the Hessian), on the model's device, scored by
    ``loss``; ``eval_loss``: the snapshots' evaluation losses (for the Hessian plane's default extent).
    -> (the plane, of flat tensors like params' rows; its info: a dict for the cache's meta)."""
    method = spec.method
    final = params[final_index]
    how, bias, seed = spec.normalization, spec.include_biases, spec.seed
    finite = torch.isfinite(params).all(dim=1)
    if not bool(finite[final_index]):
        return _diverged_plane(spec, model, params, steps, finite, final_index)
    if not bool(finite.all()):          # a run that diverged after this moment: the finite snapshots
        params, steps = params[finite], np.asarray(steps)[finite.numpy()]
        final_index = int(finite[:final_index % len(finite) + 1].sum()) - 1
    _check_trajectory(method, params, final, steps)
    if method == "pca":
        d1, d2, info = pca_plane(params, final)
        origin = final
    elif method == "random":
        d1, d2, info = random_plane(split(model, final), seed, how, bias, spec.orthogonalize)
        d1, d2, origin = flatten(d1), flatten(d2), final
    elif method == "hessian":
        h = spec.hessian
        if h.samples and h.samples < len(x):
            x, y = _hessian_subset(x, y, h.samples, seed)
        dev = next(model.parameters()).device
        d1, d2, info = hessian_plane(model, final.to(dev), x.to(dev), None if y is None else y.to(dev),
                                     h.iterations, h.tolerance, seed, loss)
        d1, d2, origin = d1.to(final.device), d2.to(final.device), final
        info["samples"] = int(len(x))
        if eval_loss is not None:
            info["curvature_span"] = curvature_span(info["eigenvalues"][0], float(eval_loss[0]),
                                                    float(eval_loss[-1]))
    elif method == "checkpoints":
        origin, d1, d2, info = checkpoint_plane(params, steps, spec.checkpoints, model, seed, how, bias)
    elif method == "interpolate":
        origin, d1, d2, info = interpolate_plane(params, steps, spec.checkpoints, model, seed, how, bias)
    else:
        raise ValueError(f"landscape.plane.method: unknown method {method!r}")
    info.setdefault("origin_step", int(steps[final_index]))
    return Plane.from_flat(model, origin, d1, d2), info


def _diverged_plane(spec: PlaneSpec, model: nn.Module, params: torch.Tensor, steps: np.ndarray, finite: torch.Tensor,
                    final_index: int) -> tuple[Plane, dict]:
    """The plane of weights that are not finite (the training diverged before this moment): its origin
    is those weights, so every grid point is NaN and the landscape is drawn as diverged; the
    directions are a random plane's at the last finite snapshot, so the entry is whole."""
    last = int(torch.nonzero(finite)[-1]) if bool(finite.any()) else None
    if last is None:
        raise PlaneError("landscape.train: every snapshot of the run has non-finite weights; nothing to draw")
    d1, d2, _ = random_plane(split(model, params[last]), spec.seed, spec.normalization, spec.include_biases)
    info = {"origin_step": int(steps[final_index]), "diverged": True, "last_finite_step": int(steps[last]),
            "note": "the weights at this step are not finite (the training diverged): every grid point is NaN"}
    return Plane.from_flat(model, params[final_index], flatten(d1), flatten(d2)), info


#: what each method needs of the run: snapshots at least
_NEEDS = {"pca": 2, "checkpoints": 2, "interpolate": 2}
#: a trajectory whose snapshots all lie within this fraction of the final weights' norm of them has
#: not moved: a PCA plane through it is float32 rounding, not a direction of training
STILL = 1e-6


def _check_trajectory(method: str, params: torch.Tensor, final: torch.Tensor, steps: np.ndarray) -> None:
    need = _NEEDS.get(method, 1)
    if len(params) < need:
        raise PlaneError(f"landscape.plane.method: {method!r} needs a trajectory of at least {need} snapshots and "
                         f"this run has {len(params)} (one set of weights); use method: random or hessian, which "
                         f"need only the final weights")
    if method != "pca":
        return
    spread = max(float((params[k].double() - final.double()).norm()) for k in range(len(params)))
    scale = float(final.double().norm())
    if not spread > STILL * max(scale, 1e-30):
        raise PlaneError(f"landscape.plane.method: 'pca': the {len(params)} snapshots (steps {int(steps[0])} .. "
                         f"{int(steps[-1])}) barely move: the farthest is {spread:.3g} from the final weights, "
                         f"whose norm is {scale:.3g}; a PCA plane through them means nothing. Use method: random "
                         f"or hessian, or checkpoints further apart")


# --------------------------------------------------------------------------- extents

#: interpolate's default extents: a from A - half the segment to B + half of it (as in
#: Goodfellow et al. 2015 and Li et al. 2018's 1-D plots), b in Li et al.'s [-1, 1]
INTERPOLATE_EXTENT = ((-0.5, 1.5), (-1.0, 1.0))


def margin_of(spec: PlaneSpec) -> float:
    """The plane's margin: the scene's, or the automatic window's fit margin (plane/window.py)."""
    from compute.plane.window import FIT_MARGIN
    return FIT_MARGIN if spec.margin is None else float(spec.margin)


def extents(spec: PlaneSpec, xy: np.ndarray | None, marks: np.ndarray | None = None,
            curvature: float | None = None) -> tuple[tuple[float, float], tuple[float, float]]:
    """Plane ranges from the scene's plane: section.

    An explicit ``range`` wins, then ``span`` (symmetric about the origin).  Otherwise, by
    method: ``random`` [-1, 1] (Li et al.); ``interpolate`` ``INTERPOLATE_EXTENT``; ``hessian``
    a square [-h, h] on both axes (one scale, so the two curvatures compare), h the larger of
    ``curvature`` (``curvature_span``) and the trajectory's largest |coordinate| grown by
    ``margin``; ``pca`` and ``checkpoints`` fit the projected trajectory ``xy`` and the ``marks``
    (plane coordinates of checkpoints), the origin always inside, grown by ``margin``; ``minima`` a
    square about the three networks (``marks``) alone, its side their larger spread grown by
    ``margin`` on each side: one scale on both axes, so on a square grid the triangle they make
    keeps its true shape (the runs' starts, far off the plane, would make the minima small)."""
    if spec.range is not None:
        (a0, a1), (b0, b1) = spec.range
        return (a0, a1), (b0, b1)
    span = spec.span
    method = spec.method
    if span is None and method == "interpolate":
        return INTERPOLATE_EXTENT
    if span is None and method == "hessian":
        reach = float(np.abs(xy).max()) * (1 + margin_of(spec)) if xy is not None and len(xy) else 0.0
        h = max(curvature or 0.0, reach)
        span = h if h > 0 else 1.0
    if span is None and method == "minima" and marks is not None and len(marks):
        m = np.asarray(marks, dtype=np.float64).reshape(-1, 2)
        centre, side = (m.min(axis=0) + m.max(axis=0)) / 2, np.ptp(m, axis=0).max() * (1 + 2 * margin_of(spec))
        h = max(side, 1e-6) / 2
        return (float(centre[0] - h), float(centre[0] + h)), (float(centre[1] - h), float(centre[1] + h))
    pts = [p for p in (xy, marks) if p is not None and len(p)]
    if span is None and (method == "random" or not pts):
        span = 1.0
    if span is not None:
        sa, sb = (span, span) if isinstance(span, (int, float)) else span
        return (-sa, sa), (-sb, sb)
    xy = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in pts])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    # the origin (0, 0) always inside; keep the thin axis at least a quarter of the wide one
    lo, hi = np.minimum(lo, 0), np.maximum(hi, 0)
    width = hi - lo
    need = max(width.max(), 1e-6) * 0.25
    for i in range(2):
        if width[i] < need:
            c = (lo[i] + hi[i]) / 2
            lo[i], hi[i] = c - need / 2, c + need / 2
    width = hi - lo
    m = margin_of(spec)
    return (float(lo[0] - m * width[0]), float(hi[0] + m * width[0])), \
           (float(lo[1] - m * width[1]), float(hi[1] + m * width[1]))


# --------------------------------------------------------------------------- landscape over training

def sequence_indices(recorded: np.ndarray, spec: SequenceSpec) -> np.ndarray:
    """Snapshot indices of a sequence's grids (``spec``: the resolved landscape.sequence section),
    increasing and distinct.

    ``count`` targets steps spread over the run (``spacing`` linear, or log: evenly in
    log(step + last step / 50)) and takes the nearest
    recorded snapshot of each, moved on to the next snapshot where a neighbour already has it (log
    targets crowd the first steps), so there are exactly ``count`` grids from the first snapshot to
    the last (fewer only if fewer snapshots were kept).  Explicit ``steps`` take the nearest
    snapshot of each, and two on the same snapshot give one grid."""
    recorded = np.asarray(recorded)
    n = len(recorded)
    if spec.steps:
        idx = [int(np.argmin(np.abs(recorded - s))) for s in spec.steps]
        return np.unique(np.asarray(idx, dtype=np.int64))
    count = min(spec.count, n)
    last = int(recorded[-1])
    if spec.spacing == "linear":
        targets = np.linspace(0, last, count)
    else:
        # evenly spaced in log(step + last / 50): dense early, where the loss falls fastest, without
        # spending a third of the film on the first dozen steps as log(step + 1) would
        s0 = max(last / 50, 1.0)
        targets = np.geomspace(s0, last + s0, count) - s0
    idx = np.array([int(np.argmin(np.abs(recorded - s))) for s in targets], dtype=np.int64)
    for k in range(1, count):                     # distinct: push crowded picks forward ...
        idx[k] = max(idx[k], idx[k - 1] + 1)
    for k in range(count - 1, -1, -1):            # ... and back where that ran past the end
        idx[k] = min(idx[k], n - count + k)
    idx[0], idx[-1] = 0, n - 1
    return idx


def sequence_plane(spec: PlaneSpec, model: nn.Module, theta: torch.Tensor, at: tuple[float, float],
                   d1: torch.Tensor, d2: torch.Tensor) -> Plane:
    """The plane of one grid of a sequence: through the snapshot's weights ``theta``, which sits
    at plane coordinates ``at`` (its projection onto the scene's plane), so the grid covers the
    same window of (a, b) as the still landscape and its point ``at`` is exactly ``theta``.

    Directions: a random plane's are rescaled to ``theta`` (the same seeded Gaussians, normalized
    filter by filter to this snapshot's weights, as Li et al.'s normalization asks); every other
    method's directions are not relative to the weights and stay those of the scene's plane
    (``d1``, ``d2``).  -> the plane, of flat tensors: the grid point (a, b) is
    origin + a*d1 + b*d2 = theta + (a - at[0])*d1 + (b - at[1])*d2."""
    if spec.method == "random":
        g1, g2, _ = random_plane(split(model, theta), spec.seed, spec.normalization, spec.include_biases,
                                 spec.orthogonalize)
        d1, d2 = flatten(g1), flatten(g2)
    d1, d2 = d1.to(theta), d2.to(theta)
    return Plane.from_flat(model, theta - at[0] * d1 - at[1] * d2, d1, d2)
