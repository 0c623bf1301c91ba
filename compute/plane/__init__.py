"""The plane through weight space, the studio's central idea: its type, its methods, its window.

A point (a, b) of a plane stands for the weights ``origin + a*d1 + b*d2`` (Li et al. 2018).

* ``core.py``        -- :class:`Plane`, the one plane type (per-parameter and flat views, the cache's
                        vectors), ``split`` and ``flatten``, ``PlaneError``.
* ``methods.py``     -- the scene's ``plane.method``\\ s: pca, random, hessian, checkpoints,
                        interpolate (``build_plane``); the window's extent; a sequence's planes.
* ``directions.py``  -- random directions normalized to the weights (filter, layer, weight), and a
                        second one made exactly orthogonal to the first.
* ``projection.py``  -- PCA of the trajectory, and the trajectory projected onto any plane.
* ``hessian.py``     -- Hessian-vector products and the top two eigenvectors (the hessian plane).
* ``minima.py``      -- the plane through three trained networks (trains or loads them).
* ``fit.py``         -- :class:`PlaneFit`, a plane placed for a run: the method, the projected path,
                        the window (widened by the automatic probe, ``window.py``); kept in the
                        partial entry so a resumed run needs no refit.
* ``window.py``      -- the automatic window: an in-plane descent and a coarse probe before the grid.

``fit.py`` and ``minima.py`` take a run (compute/run/build.py) and are imported by their own names; the
rest is here: ``from compute import plane as planes; planes.build_plane(...)``.
"""
from compute.plane.core import Layout, Plane, PlaneError, flatten, split
from compute.plane.methods import *  # noqa: F401,F403 - the methods, as listed in methods.__all__
from compute.plane.methods import __all__ as _methods

__all__ = ["Layout", "Plane", "PlaneError", "flatten", "split", *_methods]
