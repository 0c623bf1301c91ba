"""What a value of the model's graph is, seen from a grid of plane points, and the kernel being built.

Every value of the exported graph is one of three kinds:

* ``Const``: the same at every plane point (the data, buffers, masks, shapes).  Computed once,
  when the kernel is built.
* ``Affine``: v0 + a v1 + b v2, linear in the point's coordinates (a, b).  A parameter is one
  (origin, d1, d2); so is every linear function of parameters and constants: the first layer's
  products with the data, an embedding lookup, a sum of embeddings.  Its three parts are computed
  once per plane (``prepare``), and a point costs one multiply-add per value where it is mixed.
* ``Batched``: anything else, K points at once in a tensor of the kernel being built
  (``runtime``'s layouts b0 and b1).  Its ``shape`` is one point's: what the model's own code
  sees.

``Kernel`` holds the fx graph being written, the constants it reads (the parts of Affine values,
the Const tensors it needs) and the points' coordinates ``a`` and ``b``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn

from compute.grid.graph import runtime


class NotBatchable(Exception):
    """The model does something the batched kernel cannot do for K points at once (the message
    says what and where); the engine evaluates it with torch.func instead."""


@dataclass(frozen=True, eq=False)
class Const:
    """The same at every point: a tensor, or a Python value (a shape, a scalar, None)."""
    value: Any


@dataclass(frozen=True, eq=False)
class Affine:
    """v0 + a v1 + b v2: three tensors of one point's shape."""
    parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    #: a feature map (N, C, *spatial) of a convolution: mixed in layout b1, ready for the next one
    spatial: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.parts[0].shape)

    def map(self, fn: Callable, zero_shift: Callable | None = None, spatial: bool | None = None) -> "Affine":
        """A linear function applied to each part (``zero_shift`` for v1 and v2 where the function
        adds a constant, as padding with a value does)."""
        v0, v1, v2 = self.parts
        g = zero_shift or fn
        return Affine((fn(v0), g(v1), g(v2)), self.spatial if spatial is None else spatial)


@dataclass(frozen=True, eq=False)
class Batched:
    """K points' values: ``node`` in the kernel graph, K at dim ``bdim`` (0 or 1), one point's
    ``shape`` and ``dtype``."""
    node: fx.Node
    shape: tuple[int, ...]
    dtype: torch.dtype
    bdim: int = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def phys(self, d: int) -> int:
        """The dim of the physical tensor that holds one point's dim ``d`` (normalized)."""
        return d + (d >= self.bdim)


Value = Any        # Const | Affine | Batched | a tuple or list of them


def is_tensor_kind(v: Any) -> bool:
    return isinstance(v, (Affine, Batched)) or (isinstance(v, Const) and isinstance(v.value, torch.Tensor))


def shape_of(v: Any) -> tuple[int, ...]:
    if isinstance(v, Const):
        return tuple(v.value.shape)
    return tuple(v.shape)


@dataclass
class Kernel:
    """The batched kernel being written: an fx graph of (a, b) -> K points' output."""
    #: "running" or "batch": the statistics BatchNorm layers normalize with
    batchnorm: str = "running"
    #: where the kernel runs (some rules pick the fastest form per device)
    device: torch.device = torch.device("cpu")
    graph: fx.Graph = field(default_factory=fx.Graph)
    holder: nn.Module = field(default_factory=nn.Module)
    #: the constants in the order first used: a rebuild for another plane lists them in the same order
    constants: list[torch.Tensor] = field(default_factory=list)
    #: bytes one point of each kernel node takes (Batched values), for sizing the chunk
    point_bytes: dict[fx.Node, int] = field(default_factory=dict)
    #: how many operations of the model read each kernel node's value (a value read once may be
    #: changed in place, or folded into the layer that made it)
    readers: dict[fx.Node, int] = field(default_factory=dict)

    def __post_init__(self):
        self.a = self.graph.placeholder("a")
        self.b = self.graph.placeholder("b")
        self.k = self.graph.call_method("size", (self.a, 0))
        self._names: dict[int, fx.Node] = {}
        self._mixed: dict[tuple[int, str], Batched] = {}

    # ------------------------------------------------------------------ nodes
    def const(self, t: torch.Tensor) -> fx.Node:
        """A get_attr node for a tensor the kernel reads (each tensor registered once)."""
        node = self._names.get(id(t))
        if node is None:
            name = f"c{len(self.constants)}"
            self.holder.register_buffer(name, t, persistent=False)
            self.constants.append(t)
            node = self._names[id(t)] = self.graph.get_attr(name)
        return node

    def call(self, fn: Callable, *args, **kwargs) -> fx.Node:
        """A call_function node; tensors among the arguments become constants."""
        conv = lambda v: self.const(v) if isinstance(v, torch.Tensor) else v       # noqa: E731
        args = torch.utils._pytree.tree_map(conv, args)
        kwargs = torch.utils._pytree.tree_map(conv, kwargs)
        return self.graph.call_function(fn, tuple(args), kwargs)

    def read_once(self, v, maker: Callable | None = None) -> bool:
        """Whether Batched ``v`` is read by one operation of the model only (and made by ``maker``)."""
        return (isinstance(v, Batched) and self.readers.get(v.node) == 1
                and (maker is None or v.node.target is maker))

    def batched(self, node: fx.Node, shape, dtype: torch.dtype, bdim: int = 0) -> Batched:
        v = Batched(node, tuple(shape), dtype, bdim)
        self.point_bytes[node] = _nbytes(v.shape, dtype)
        return v

    # ------------------------------------------------------------------ kinds
    def materialize(self, v: Affine, layout: str | None = None) -> Batched:
        """An Affine value at the chunk's K points (memoized: a parameter used twice is mixed once).
        ``layout``: "b1" for a feature map, "b0", or None: b1 where the value is a spatial map."""
        layout = layout or ("b1" if v.spatial and len(v.shape) >= 3 else "b0")
        key = (id(v), layout)
        if key in self._mixed:
            return self._mixed[key]
        v0 = v.parts[0]
        if layout == "b1":
            # the parts held as (N, *spatial, 1, C): mixed straight into channels-last memory
            held = tuple(p.movedim(1, -1).unsqueeze(-2).contiguous() for p in v.parts)
            out = self.batched(self.call(runtime.mix_b1, *held, self.a, self.b), v.shape, v0.dtype, 1)
        else:
            out = self.batched(self.call(runtime.mix, *v.parts, self.a, self.b), v.shape, v0.dtype, 0)
        self._mixed[key] = out
        return out

    def as_batched(self, v: Any, layout: str | None = None) -> Batched:
        """Affine or Batched as Batched (Const values have no K dim: use ``expand``)."""
        if isinstance(v, Affine):
            return self.materialize(v, layout)
        if isinstance(v, Batched):
            if layout == "b0":
                return self.to_b0(v)
            if layout == "b1":
                return self.to_b1(v)
            return v
        raise TypeError(f"not a batched value: {v!r}")

    def to_b0(self, v: Batched) -> Batched:
        if v.bdim == 0:
            return v
        return self.batched(self.graph.call_method("movedim", (v.node, v.bdim, 0)), v.shape, v.dtype, 0)

    def to_b1(self, v: Batched) -> Batched:
        if v.bdim == 1:
            return v
        return self.batched(self.call(runtime.to_b1, v.node), v.shape, v.dtype, 1)

    def expand(self, c: torch.Tensor) -> Batched:
        """A Const tensor repeated for the K points (a view)."""
        return self.batched(self.call(runtime.expand_k, c, self.a), c.shape, c.dtype, 0)

    def output(self, v: Any) -> fx.GraphModule:
        """The kernel ends here: K points' output, K first."""
        self.graph.output(self.to_b0(self.as_batched(v)).node)
        return fx.GraphModule(self.holder, self.graph, class_name="BatchedKernel")


def _nbytes(shape, dtype: torch.dtype) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * torch.empty((), dtype=dtype).element_size()
