"""Elementwise operations on K points: every op torch tags ``pointwise`` (activations, arithmetic,
comparisons, masks, ``where``), any function built from them, and the ops that change nothing.

Batched operands keep their layout; an operand of lower rank, or one the same at every point, is
given the K dim where the others have it.  Sums and scalings of Affine values stay Affine (a sum
of embeddings, a scaled parameter): they cost nothing per point until something nonlinear mixes
them.
"""
from __future__ import annotations

import torch

from compute.grid.graph import runtime
from compute.grid.graph.ops import call_on, out_shape, rule, tensors_in, unbind
from compute.grid.graph.values import Affine, Batched, Const, Kernel, NotBatchable

#: ops torch does not tag pointwise that act elementwise all the same
EXTRA_POINTWISE = {"aten::hardswish", "aten::_to_copy", "aten::to", "aten::type_as", "aten::gelu", "aten::silu",
                   "aten::mish", "aten::softplus", "aten::hardsigmoid", "aten::relu6", "aten::logit",
                   "aten::nan_to_num", "aten::erf", "aten::erfinv"}


def is_pointwise(op) -> bool:
    return torch.Tag.pointwise in op.tags or op._schema.name in EXTRA_POINTWISE


def _plain(v):
    return v.value if isinstance(v, Const) else v


def _full(p: torch.Tensor, shape) -> torch.Tensor:
    return p.expand(shape) if tuple(p.shape) != tuple(shape) else p


def affine_pointwise(op, bound: dict, shape) -> Affine | None:
    """The op on Affine values where the result is Affine too (sums, scaling by a constant), else None."""
    leaves = tensors_in(bound)
    if any(isinstance(v, Batched) for v in leaves) or not any(isinstance(v, Affine) for v in leaves):
        return None
    name = op._schema.name
    x = bound.get("self")
    spatial = any(v.spatial for v in leaves if isinstance(v, Affine))
    if name in ("aten::add", "aten::sub"):
        y = bound["other"]
        alpha = (1 if name == "aten::add" else -1) * _plain(bound.get("alpha", 1) or 1)
        if isinstance(x, Affine) and isinstance(y, Affine):
            parts = tuple(p + alpha * q for p, q in zip(x.parts, y.parts))
        elif isinstance(x, Affine):
            c = _plain(y)
            parts = (x.parts[0] + alpha * c, x.parts[1], x.parts[2])
        else:
            c = _plain(x)
            parts = (c + alpha * y.parts[0], alpha * y.parts[1], alpha * y.parts[2])
        return Affine(tuple(_full(p, shape) for p in parts), spatial)
    if name == "aten::mul":
        y = bound["other"]
        if isinstance(x, Affine) and isinstance(y, Affine):
            return None
        aff, c = (x, _plain(y)) if isinstance(x, Affine) else (y, _plain(x))
        return Affine(tuple(_full(p * c, shape) for p in aff.parts), spatial)
    if name == "aten::div" and op._overloadname in ("Tensor", "Scalar") and isinstance(x, Affine) \
            and not isinstance(bound["other"], Affine):
        c = _plain(bound["other"])
        return Affine(tuple(_full(p / c, shape) for p in x.parts), spatial)
    if name == "aten::neg":
        return Affine(tuple(-p for p in x.parts), spatial)
    return None


def pointwise(kx: Kernel, op, bound: dict, out):
    """An elementwise op on K points (see the module docstring)."""
    shape = out_shape(out)
    aff = affine_pointwise(op, bound, shape)
    if aff is not None:
        return aff
    leaf = lambda v: isinstance(v, (Const, Affine, Batched))      # noqa: E731
    bound = torch.utils._pytree.tree_map(lambda v: kx.materialize(v) if isinstance(v, Affine) else v, bound,
                                         is_leaf=leaf)
    batched = [v for v in tensors_in(bound) if isinstance(v, Batched)]
    full = [v for v in batched if v.ndim == len(shape)]
    bdim = full[0].bdim if full else 0
    rank = len(shape)

    def align(v):
        if isinstance(v, Batched):
            if v.ndim == rank and v.bdim == bdim:
                return v.node
            v0 = kx.to_b0(v)
            node = kx.graph.call_method("reshape", (v0.node, (-1,) + (1,) * (rank - v.ndim) + v.shape))
            return kx.graph.call_method("movedim", (node, 0, bdim)) if bdim else node
        if isinstance(v, Const) and isinstance(v.value, torch.Tensor):
            c = v.value
            if c.dim() <= rank - bdim:            # right-aligned broadcasting lines it up already
                return c
            return c.reshape((1,) * (rank - c.dim()) + tuple(c.shape)).unsqueeze(bdim)
        return _plain(v)

    aligned = torch.utils._pytree.tree_map(align, bound, is_leaf=leaf)
    args, kwargs = unbind(op, aligned)
    return kx.batched(kx.call(op, *args, **kwargs), shape, out.dtype, bdim)


# --------------------------------------------------------------------------- ops that change nothing

@rule("alias", "clone", "contiguous", "detach", "lift_fresh_copy", "lift_fresh", "positive")
def identity(kx: Kernel, op, bound: dict, out):
    return bound["self"]


@rule("dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "native_dropout")
def dropout(kx: Kernel, op, bound: dict, out):
    """Dropout in eval mode does nothing; in training mode it draws random masks the reference
    would draw differently: not a landscape."""
    if bound.get("train"):
        raise NotBatchable("dropout in training mode inside forward (F.dropout(..., training=True)); "
                           "evaluate with training=self.training")
    x = bound.get("input", bound.get("self"))
    if op._schema.name == "aten::native_dropout":
        return x, Const(None)
    return x


@rule("_to_copy", "to")
def to_dtype(kx: Kernel, op, bound: dict, out):
    """A cast: elementwise; a no-op where the dtype stays."""
    x = bound.get("self")
    if isinstance(x, Batched) and x.dtype == out.dtype:
        return x
    if isinstance(x, Affine) and x.parts[0].dtype == out.dtype:
        return x
    if isinstance(x, Affine):
        return Affine(tuple(call_on(op, bound, self=p) for p in x.parts), x.spatial)
    return pointwise(kx, op, bound, out)


#: kernel functions whose output is a fresh tensor no one else holds
FRESH = (runtime.conv, runtime.batch_norm, runtime.linear, runtime.mix, runtime.mix_b1, runtime.channel_affine,
         torch.ops.aten.add.Tensor)


@rule("relu")
def relu(kx: Kernel, op, bound: dict, out):
    """ReLU in place on a fresh value that nothing else reads (eagerly, a pass without allocating)."""
    x = bound["self"]
    if kx.read_once(x) and x.node.target in FRESH:
        return kx.batched(kx.call(torch.relu_, x.node), x.shape, out.dtype, x.bdim)
    return pointwise(kx, op, bound, out)


@rule("tanh")
def tanh(kx: Kernel, op, bound: dict, out):
    """tanh as runtime.tanh (the sigmoid form) where the model is evaluated on a CPU."""
    x = bound["self"]
    if kx.device.type != "cpu" or not (isinstance(x, Batched) or isinstance(x, Affine)):
        return pointwise(kx, op, bound, out)
    v = kx.as_batched(x)
    return kx.batched(kx.call(runtime.tanh, v.node), v.shape, out.dtype, v.bdim)


@rule("_assert_tensor_metadata", "_assert_scalar", "_assert_async")
def no_op(kx: Kernel, op, bound: dict, out):
    return Const(None)

