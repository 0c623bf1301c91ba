"""Operations that move, pick or reduce values along one point's dims, on K points.

One point's dim d is the physical dim ``Batched.phys(d)``: ops that name dims (transpose, select,
slice, split, reductions, softmax) are called with those, and keep K where it is.  Ops that
reshape (view, flatten, unsqueeze, expand) work K first.  On Affine values every one of them is
linear, so it is applied to the three parts.
"""
from __future__ import annotations

import torch

from compute.grid.graph.ops import (call_on, dims_list, norm_dim, out_shape, rule, unbind, vmap_op,
                                    wrap_output)
from compute.grid.graph.values import Affine, Batched, Const, Kernel


def _on_parts(op, bound: dict, key: str = "self", spatial: bool = False) -> Affine:
    x = bound[key]
    return Affine(tuple(call_on(op, bound, **{key: p}) for p in x.parts), spatial and x.spatial)


def _emit(kx: Kernel, op, bound: dict, **replace):
    """The op in the kernel graph on Batched nodes (K inside), Const values plain."""
    merged = {**bound, **replace}
    plain = {k: (v.node if isinstance(v, Batched) else v.value if isinstance(v, Const) else v)
             for k, v in merged.items()}
    args, kwargs = unbind(op, plain)
    return kx.call(op, *args, **kwargs)


# --------------------------------------------------------------------------- reshaping

@rule("view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as",
      "expand_as")
def reshape(kx: Kernel, op, bound: dict, out):
    """K first, then one point's new shape (the exported node's)."""
    x = bound["self"]
    if isinstance(x, Affine):
        return _on_parts(op, bound)
    shape = out_shape(out)
    v = kx.to_b0(x)
    if op._schema.name == "aten::expand_as":
        return _expand(kx, v, shape, out.dtype)
    return kx.batched(kx.graph.call_method("reshape", (v.node, (-1,) + shape)), shape, out.dtype, 0)


@rule("expand")
def expand(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine):
        return _on_parts(op, bound)
    return _expand(kx, kx.to_b0(x), out_shape(out), out.dtype)


def _expand(kx: Kernel, v: Batched, shape, dtype):
    padded = (-1,) + (1,) * (len(shape) - v.ndim) + v.shape
    node = kx.graph.call_method("reshape", (v.node, padded))
    return kx.batched(kx.graph.call_method("expand", (node, (-1,) + shape)), shape, dtype, 0)


@rule("permute")
def permute(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine):
        return _on_parts(op, bound)
    perm = [x.phys(norm_dim(d, x.ndim)) for d in bound["dims"]]
    perm.insert(x.bdim, x.bdim)
    return kx.batched(kx.graph.call_method("permute", (x.node, perm)), out_shape(out), out.dtype, x.bdim)


@rule("transpose", "t", "swapaxes", "swapdims", "movedim")
def transpose(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine):
        return _on_parts(op, bound)
    if op._schema.name == "aten::t":
        if x.ndim < 2:
            return x
        d0, d1 = 0, 1
    elif op._schema.name == "aten::movedim":
        return vmap_op(kx, op, bound, out)
    else:
        names = [a.name for a in op._schema.arguments]
        d0, d1 = (norm_dim(int(bound[n]), x.ndim) for n in names[1:3])
    node = kx.graph.call_method("transpose", (x.node, x.phys(d0), x.phys(d1)))
    return kx.batched(node, out_shape(out), out.dtype, x.bdim)


# --------------------------------------------------------------------------- picking

@rule("select", "slice", "narrow", "index_select")
def pick(kx: Kernel, op, bound: dict, out):
    """Along one dim: K stays (and moves down one where select drops a dim before it)."""
    x = bound["self"]
    if isinstance(x, Affine):
        return _on_parts(op, bound, spatial=op._schema.name != "aten::select")
    d = norm_dim(int(bound["dim"]), x.ndim)
    bdim = x.bdim - (op._schema.name == "aten::select" and d < x.bdim)
    return kx.batched(_emit(kx, op, bound, self=x, dim=x.phys(d)), out_shape(out), out.dtype, bdim)


@rule("split", "split_with_sizes", "chunk", "unbind", "tensor_split")
def split(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine):
        parts = [call_on(op, bound, self=p) for p in x.parts]
        return tuple(Affine(tuple(p[i] for p in parts), x.spatial) for i in range(len(parts[0])))
    d = norm_dim(int(bound.get("dim", 0)), x.ndim)
    bdim = x.bdim - (op._schema.name == "aten::unbind" and d < x.bdim)
    node = _emit(kx, op, bound, self=x, dim=x.phys(d))
    return wrap_output(kx, node, out, bdim)


@rule("index")
def index(kx: Kernel, op, bound: dict, out):
    """x[..., idx, ...] with fixed index tensors next to each other: K stays first."""
    x, idx = bound["self"], bound["indices"]
    if any(isinstance(i, (Affine, Batched)) for i in idx):
        return vmap_op(kx, op, bound, out)
    plain = [None if i is None else i.value for i in idx]
    if isinstance(x, Affine):
        return Affine(tuple(torch.ops.aten.index.Tensor(p, plain) for p in x.parts))
    used = [k for k, i in enumerate(plain) if i is not None]
    if used != list(range(used[0], used[-1] + 1)):    # apart: numpy puts the result's dims first
        return vmap_op(kx, op, bound, out)
    v = kx.to_b0(x)
    node = kx.call(torch.ops.aten.index.Tensor, v.node, [None] + plain)
    return kx.batched(node, out_shape(out), out.dtype, 0)


@rule("gather")
def gather(kx: Kernel, op, bound: dict, out):
    x, ix = bound["self"], bound["index"]
    if not isinstance(ix, Const):
        return vmap_op(kx, op, bound, out)
    if isinstance(x, Affine):
        return _on_parts(op, bound)
    v = kx.to_b0(x)
    d = norm_dim(int(bound["dim"]), v.ndim)
    node = kx.call(torch.gather, v.node, d + 1, kx.expand(ix.value).node)
    return kx.batched(node, out_shape(out), out.dtype, 0)


@rule("constant_pad_nd")
def pad(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine):
        v0, v1, v2 = x.parts
        value = bound.get("value") or 0
        return Affine((call_on(op, bound, self=v0), call_on(op, bound, self=v1, value=0),
                       call_on(op, bound, self=v2, value=0)), x.spatial)
    padded = len(bound["pad"]) // 2
    v = x if x.bdim < x.ndim - padded + 1 else kx.to_b0(x)
    return kx.batched(_emit(kx, op, bound, self=v), out_shape(out), out.dtype, v.bdim)


@rule("flip")
def flip(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine):
        return _on_parts(op, bound)
    dims = [x.phys(d) for d in dims_list(bound["dims"], x.ndim)]
    return kx.batched(_emit(kx, op, bound, self=x, dims=dims), out_shape(out), out.dtype, x.bdim)


@rule("tril", "triu")
def triangle(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine):
        return _on_parts(op, bound)
    v = x if x.bdim < x.ndim - 1 else kx.to_b0(x)
    return kx.batched(_emit(kx, op, bound, self=v), out_shape(out), out.dtype, v.bdim)


# --------------------------------------------------------------------------- joining

@rule("cat", "concat", "concatenate")
def cat(kx: Kernel, op, bound: dict, out):
    items = list(bound["tensors"])
    shape = out_shape(out)
    d = norm_dim(int(bound.get("dim", 0)), len(shape))
    if not any(isinstance(v, Batched) for v in items):
        parts = []
        for i in range(3):
            parts.append(torch.cat([v.parts[i] if isinstance(v, Affine) else
                                    (v.value if i == 0 else torch.zeros_like(v.value)) for v in items], d))
        return Affine(tuple(parts), all(v.spatial for v in items if isinstance(v, Affine)))
    bdim = next(v.bdim for v in items if isinstance(v, Batched))
    layout = "b1" if bdim == 1 else "b0"
    nodes = []
    for v in items:
        if isinstance(v, Const):
            v = kx.expand(v.value)
        nodes.append(kx.as_batched(v, layout).node)
    return kx.batched(kx.call(torch.cat, nodes, d + (d >= bdim)), shape, out.dtype, bdim)


@rule("stack")
def stack(kx: Kernel, op, bound: dict, out):
    items = list(bound["tensors"])
    shape = out_shape(out)
    d = norm_dim(int(bound.get("dim", 0)), len(shape))
    if not any(isinstance(v, Batched) for v in items):
        parts = [torch.stack([v.parts[i] if isinstance(v, Affine) else
                              (v.value if i == 0 else torch.zeros_like(v.value)) for v in items], d)
                 for i in range(3)]
        return Affine(tuple(parts))
    nodes = [(kx.expand(v.value) if isinstance(v, Const) else kx.as_batched(v, "b0")).node for v in items]
    return kx.batched(kx.call(torch.stack, nodes, d + 1), shape, out.dtype, 0)


# --------------------------------------------------------------------------- reducing

#: reductions: each drops its dims unless keepdim; sum and mean are linear
REDUCTIONS = ("sum", "mean", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean", "logsumexp",
              "argmax", "argmin", "prod", "all", "any", "nansum", "nanmean")
#: along one dim, keeping the shape
SCANS = ("softmax", "_softmax", "log_softmax", "_log_softmax", "cumsum", "cumprod", "logcumsumexp", "cummax",
         "cummin")


@rule(*REDUCTIONS)
def reduce(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    name = op._schema.name.split("::")[1]
    if isinstance(x, Affine) and name in ("sum", "mean"):
        return _on_parts(op, bound)
    if isinstance(x, Affine):
        x = kx.materialize(x)
    has_dim = "dim" in bound
    if not has_dim and op._overloadname != "default":
        return vmap_op(kx, op, bound, out)
    dims = dims_list(bound.get("dim") if has_dim else None, x.ndim)
    keep = bool(bound.get("keepdim", False))
    phys = [x.phys(d) for d in dims]
    bdim = x.bdim if keep else x.bdim - sum(d < x.bdim for d in dims)
    if not has_dim:                                   # the whole tensor: sum / mean / amax over its dims
        full = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin}.get(name)
        if full is None:
            return vmap_op(kx, op, bound, out)
        node = kx.call(full, x.node, phys, False, **({"dtype": bound["dtype"]} if bound.get("dtype") else {}))
        return kx.batched(node, (), out.dtype, 0)
    dim_arg = next(a for a in op._schema.arguments if a.name == "dim")
    single = str(dim_arg.type) in ("int", "Optional[int]")
    if single and bound["dim"] is None:               # argmax over the flattened tensor
        return vmap_op(kx, op, bound, out)
    node = _emit(kx, op, bound, self=x, dim=phys[0] if single else phys)
    return wrap_output(kx, node, out, bdim)


@rule(*SCANS)
def scan(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    if isinstance(x, Affine) and op._schema.name == "aten::cumsum":
        return _on_parts(op, bound)
    if isinstance(x, Affine):
        x = kx.materialize(x)
    d = x.phys(norm_dim(int(bound["dim"]), x.ndim))
    return wrap_output(kx, _emit(kx, op, bound, self=x, dim=d), out, x.bdim)


@rule("sym_size", "size")
def size(kx: Kernel, op, bound: dict, out):
    x = bound["self"]
    shape = x.shape
    if "dim" in bound and bound["dim"] is not None:
        return Const(int(shape[norm_dim(int(bound["dim"]), len(shape))]))
    return Const(list(shape))


@rule("sym_numel", "numel")
def numel(kx: Kernel, op, bound: dict, out):
    n = 1
    for s in bound["self"].shape:
        n *= int(s)
    return Const(n)
