"""The plane through weight space: one type for every stage of the compute pipeline.

A point (a, b) of a plane stands for the weights ``origin + a*d1 + b*d2``.  A :class:`Plane` holds
the three as per-parameter tensors (name -> tensor, the model's ``named_parameters`` order: what
the grid engine, the descents and the Hessian take) and gives them as flat (P,) vectors
(:meth:`Plane.flat`: what the methods, the projection of the trajectory and the cache take).  One
built from flat vectors (:meth:`Plane.from_flat`) holds views into them, so both views share
memory.  The cache stores a plane as float32 vectors (``studio.cache.PlaneVectors``, NumPy: the
render stage reads it without torch); :meth:`Plane.vectors` and :meth:`Plane.from_vectors` are the
save and the load.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Union

import numpy as np
import torch
import torch.nn as nn

from compute.errors import DataError

#: what names a plane's parameters and their shapes: a model, or a plane's per-parameter dict
Layout = Union[nn.Module, dict]


class PlaneError(DataError):
    """A plane that cannot mean anything for this run (too few snapshots, weights that do not move,
    two equal checkpoints): one line naming the scene key and what to change."""


def _shapes(layout: Layout) -> Iterable[tuple[str, torch.Size]]:
    if isinstance(layout, nn.Module):
        return ((name, p.shape) for name, p in layout.named_parameters())
    return ((name, v.shape) for name, v in layout.items())


def split(layout: Layout, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """A flat (P,) vector as per-parameter views (no copy), in ``layout``'s order."""
    out, i = {}, 0
    for name, shape in _shapes(layout):
        n = shape.numel()
        out[name] = flat[i:i + n].view(shape)
        i += n
    return out


def flatten(d: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-parameter tensors as one flat (P,) vector, in the dict's order."""
    return torch.cat([v.reshape(-1) for v in d.values()])


@dataclass
class Plane:
    """origin, d1, d2: dicts name -> tensor, in the model's parameter order."""
    origin: dict[str, torch.Tensor]
    d1: dict[str, torch.Tensor]
    d2: dict[str, torch.Tensor]
    #: the flat vectors the dicts are views of, when built from them (flat() then copies nothing)
    _flat: tuple | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_flat(cls, layout: Layout, origin: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor) -> "Plane":
        """The plane of three flat (P,) vectors, as views into them."""
        return cls(split(layout, origin), split(layout, d1), split(layout, d2), (origin, d1, d2))

    @classmethod
    def from_vectors(cls, layout: Layout, pv, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> "Plane":
        """The plane the cache stored (``studio.cache.PlaneVectors``), on ``device``, in tensors of its
        own (``dtype``: float64 for the figures' Hessian products)."""
        from studio.cache import CacheError
        n = sum(shape.numel() for _, shape in _shapes(layout))
        if pv.origin.shape[0] != n:
            raise CacheError(f"the stored plane has {pv.origin.shape[0]} parameters, the model {n}")
        t = lambda a: torch.from_numpy(np.array(a)).to(device, dtype)   # noqa: E731
        return cls.from_flat(layout, t(pv.origin), t(pv.d1), t(pv.d2))

    def flat(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """origin, d1, d2 as flat (P,) vectors: those it was built from, else copies."""
        if self._flat is not None:
            return self._flat
        return flatten(self.origin), flatten(self.d1), flatten(self.d2)

    def vectors(self):
        """The plane as the cache stores it: ``studio.cache.PlaneVectors`` of float32 NumPy vectors."""
        from studio.cache import PlaneVectors
        as32 = lambda t: t.detach().to("cpu", torch.float32).numpy()       # noqa: E731
        return PlaneVectors(*(as32(v) for v in self.flat()))

    def to(self, device: torch.device | str, copy: bool = False) -> "Plane":
        """The plane on ``device``; ``copy``: in memory of its own even where it is there already (the
        grid engine writes into its plane's tensors when it moves to another plane)."""
        return Plane.from_flat(self.origin, *(v.to(device, copy=copy) for v in self.flat()))

    def point(self, a: float, b: float) -> dict[str, torch.Tensor]:
        return {k: self.origin[k] + a * self.d1[k] + b * self.d2[k] for k in self.origin}
