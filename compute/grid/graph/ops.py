"""The rule table: one function per aten operation (or family), and what every rule shares.

A rule is ``rule(kx, op, args, out) -> value``: ``kx`` the kernel being written, ``op`` the aten
overload, ``args`` its arguments by schema name (graph values already turned into ``Const``,
``Affine`` and ``Batched``), ``out`` the exported node's example output (one point's shapes).
Rules register themselves with ``@rule("aten::name", ...)``; ``build.py`` looks them up by the
op's schema name.  An operation with no rule is batched by ``torch.func.vmap`` (``vmap_op``).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from compute.grid.graph import runtime
from compute.grid.graph.values import Affine, Batched, Const, Kernel, NotBatchable

Rule = Callable[[Kernel, Any, dict, Any], Any]
RULES: dict[str, Rule] = {}


def rule(*names: str):
    def register(fn: Rule) -> Rule:
        for n in names:
            RULES[n if "::" in n else f"aten::{n}"] = fn
        return fn
    return register


# --------------------------------------------------------------------------- arguments

def bind(op, args: tuple, kwargs: dict) -> dict:
    """An aten op's arguments by schema name, defaults filled in."""
    out = {}
    schema = op._schema.arguments
    for i, a in enumerate(schema):
        if i < len(args) and not a.kwarg_only:
            out[a.name] = args[i]
        elif a.name in kwargs:
            out[a.name] = kwargs[a.name]
        elif a.has_default_value():
            out[a.name] = a.default_value
        else:
            out[a.name] = None
    return out


def unbind(op, bound: dict) -> tuple[list, dict]:
    """Bound arguments back to (positional, keyword-only), for calling the op."""
    args, kwargs = [], {}
    for a in op._schema.arguments:
        (kwargs.__setitem__(a.name, bound[a.name]) if a.kwarg_only else args.append(bound[a.name]))
    return args, kwargs


def values(bound: dict) -> dict:
    """Const arguments as their plain values (for calling an op on Const parts)."""
    return torch.utils._pytree.tree_map(lambda v: v.value if isinstance(v, Const) else v, bound,
                                        is_leaf=lambda v: isinstance(v, (Const, Affine, Batched)))


def call_on(op, bound: dict, **replace) -> Any:
    """The op itself on plain tensors: ``bound`` with some arguments replaced."""
    args, kwargs = unbind(op, {**values(bound), **replace})
    return op(*args, **kwargs)


def out_shape(out) -> tuple[int, ...]:
    return tuple(int(s) for s in out.shape)


def norm_dim(d: int, ndim: int) -> int:
    return d + ndim if d < 0 else d


def dims_list(dim, ndim: int) -> list[int]:
    """A dim argument (int, list, or None / empty: all dims) as a sorted list of normalized dims."""
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    if isinstance(dim, int):
        dim = [dim]
    return sorted(norm_dim(int(d), max(ndim, 1)) for d in dim)


def tensors_in(bound: dict) -> list:
    flat, _ = torch.utils._pytree.tree_flatten(bound)
    return flat


# --------------------------------------------------------------------------- the fallback

def vmap_op(kx: Kernel, op, bound: dict, out) -> Any:
    """Any operation on K points by torch.func.vmap: Batched arguments give their K dim, Affine
    ones are mixed first, Const ones are shared."""
    args, kwargs = unbind(op, bound)
    if any(isinstance(v, (Affine, Batched)) for v in torch.utils._pytree.tree_leaves(
            kwargs, is_leaf=lambda v: isinstance(v, (Const, Affine, Batched)))):
        raise NotBatchable(f"{op} with a varying keyword argument")
    leaf = lambda v: isinstance(v, (Const, Affine, Batched))      # noqa: E731

    def node_of(v):
        if isinstance(v, Affine):
            v = kx.materialize(v, "b0")
        if isinstance(v, Batched):
            return v.node
        return v.value if isinstance(v, Const) else v

    def dim_of(v):
        if isinstance(v, Affine):
            return 0
        return v.bdim if isinstance(v, Batched) else None

    nodes = [torch.utils._pytree.tree_map(node_of, v, is_leaf=leaf) for v in args]
    dims = tuple(torch.utils._pytree.tree_map(dim_of, v, is_leaf=leaf) for v in args)
    plain = {k: (v.value if isinstance(v, Const) else v) for k, v in kwargs.items()}
    node = kx.call(runtime.vmapped, op, dims, plain, *nodes)
    return wrap_output(kx, node, out, 0)


def wrap_output(kx: Kernel, node, out, bdim: int) -> Any:
    """A kernel node giving the op's output (a tensor, or a tuple of them) as Batched values."""
    if isinstance(out, (tuple, list)):
        return tuple(kx.batched(kx.graph.call_function(getitem, (node, i)), out_shape(o), o.dtype, bdim)
                     if isinstance(o, torch.Tensor) else Const(o) for i, o in enumerate(out))
    return kx.batched(node, out_shape(out), out.dtype, bdim)


def getitem(seq, i):
    return seq[i]
