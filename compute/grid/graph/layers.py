"""The layers that hold a network's weights, on K points: linear maps, convolutions, normalization,
embeddings, matrix products and attention, and the pooling between them.

Where the input is the same at every point (the data) and the weights are Affine, the output is
Affine: the first layer's three products with the data are computed once per plane, the trick of
Li et al.'s grid made general.  Past it, the K points' weights are mixed once a pass and the
layer runs as one batched call: a batched matmul for linear layers, one grouped convolution for
convolutions (the K points side by side in the channels, layout b1), a per-point affine map for
BatchNorm with its running statistics, or each point's own statistics with ``batchnorm: batch``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from compute.grid.graph import runtime
from compute.grid.graph.elementwise import pointwise
from compute.grid.graph.ops import getitem, call_on, out_shape, rule, unbind, vmap_op, wrap_output
from compute.grid.graph.values import Affine, Batched, Const, Kernel, NotBatchable, shape_of


def _varies(v) -> bool:
    return isinstance(v, (Affine, Batched))


def _parts(v) -> tuple:
    """A weight or bias as its three parts: Affine as is, Const as (c, None, None), None as Nones."""
    if isinstance(v, Affine):
        return v.parts
    c = v.value if isinstance(v, Const) else None
    return (c, None, None)


def _k(kx: Kernel, v):
    """A weight at the K points (K first), a shared one as it is, or None."""
    if _varies(v):
        return kx.as_batched(v, "b0").node
    return v.value if isinstance(v, Const) else None


def _input(kx: Kernel, x, layout: str) -> Batched:
    if isinstance(x, Const):
        x = kx.expand(x.value)
    return kx.as_batched(x, layout)


# --------------------------------------------------------------------------- linear maps

@rule("linear")
def linear(kx: Kernel, op, bound: dict, out):
    x, w, bias = bound["input"], bound["weight"], bound["bias"]
    shape = out_shape(out)
    if not any(isinstance(v, Batched) for v in (x, w, bias)):
        if isinstance(x, Const):                                    # the data through Affine weights
            return Affine(tuple(F.linear(x.value, wp, bp) if wp is not None else bp.expand(shape)
                                for wp, bp in zip(_parts(w), _parts(bias))))
        if isinstance(w, Const):                                    # an Affine input, fixed weights
            return Affine(tuple(F.linear(xp, w.value, bp) for xp, bp in zip(x.parts, _parts(bias))))
    if isinstance(w, Const) and not _varies(bias):
        v = _input(kx, x, "b0")
        return kx.batched(kx.call(F.linear, v.node, w.value, _k(kx, bias)), shape, out.dtype, 0)
    if isinstance(x, Const):
        return vmap_op(kx, op, bound, out)
    v = kx.as_batched(x, "b0")
    wk = kx.as_batched(w, "b0") if _varies(w) else kx.expand(w.value)
    bk = kx.as_batched(bias, "b0").node if _varies(bias) else None
    node = kx.call(runtime.linear, v.node, wk.node, bk)
    if bias is not None and not _varies(bias):
        node = kx.graph.call_function(torch.add, (node, kx.const(bias.value)))
    return kx.batched(node, shape, out.dtype, 0)


@rule("matmul", "mm", "bmm")
def matmul(kx: Kernel, op, bound: dict, out):
    names = [a.name for a in op._schema.arguments]
    x, y = bound[names[0]], bound[names[1]]
    shape = out_shape(out)
    xs, ys = shape_of(x), shape_of(y)
    if not any(isinstance(v, Batched) for v in (x, y)):
        if isinstance(x, Const):
            return Affine(tuple(torch.matmul(x.value, p) for p in y.parts))
        if isinstance(y, Const):
            return Affine(tuple(torch.matmul(p, y.value) for p in x.parts))
    if len(xs) < 2 or len(ys) < 2:
        return vmap_op(kx, op, bound, out)
    if isinstance(y, Affine) and len(ys) == 2 and not isinstance(x, Const):
        # one matrix per point for all of x's rows (a weight used with @): a batched matmul
        v = kx.as_batched(x, "b0")
        node = kx.call(runtime.matmul_rhs, v.node, kx.materialize(y, "b0").node)
        return kx.batched(node, shape, out.dtype, 0)
    batch = len(shape) - 2

    def padded(v, s):
        if isinstance(v, Const):
            return v.value.reshape((1,) * (batch + 1 - len(s) + 2) + tuple(s))
        b = kx.as_batched(v, "b0")
        return kx.graph.call_method("reshape", (b.node, (-1,) + (1,) * (batch - len(s) + 2) + tuple(s)))

    node = kx.call(torch.matmul, padded(x, xs), padded(y, ys))
    return kx.batched(node, shape, out.dtype, 0)


@rule("addmm", "baddbmm")
def add_product(kx: Kernel, op, bound: dict, out):
    """beta * bias + alpha * (m1 @ m2): addmm with a weight is the linear rule (weight transposed);
    otherwise a product and a sum."""
    m1, m2 = (bound["mat1"], bound["mat2"]) if "mat1" in bound else (bound["batch1"], bound["batch2"])
    beta, alpha = bound.get("beta", 1), bound.get("alpha", 1)
    if op._schema.name == "aten::addmm" and beta == 1 and alpha == 1 and not isinstance(m2, Batched):
        w = Affine(tuple(p.t() for p in m2.parts)) if isinstance(m2, Affine) else Const(m2.value.t())
        return linear(kx, torch.ops.aten.linear.default, {"input": m1, "weight": w, "bias": bound["self"]}, out)
    prod = matmul(kx, torch.ops.aten.matmul.default, {"self": m1, "other": m2}, out)
    bias = bound["self"]
    if beta == 0:
        return prod if alpha == 1 else pointwise(kx, torch.ops.aten.mul.Tensor, {"self": prod, "other": alpha}, out)
    if beta != 1:
        bias = pointwise(kx, torch.ops.aten.mul.Tensor, {"self": bias, "other": beta}, out) \
            if not isinstance(bias, Const) else Const(bias.value * beta)
    return pointwise(kx, torch.ops.aten.add.Tensor, {"self": bias, "other": prod, "alpha": alpha}, out)


@rule("embedding")
def embedding(kx: Kernel, op, bound: dict, out):
    w, idx = bound["weight"], bound["indices"]
    if isinstance(w, Affine) and isinstance(idx, Const):           # a lookup is linear in the table
        return Affine(tuple(F.embedding(idx.value, p) for p in w.parts))
    return vmap_op(kx, op, bound, out)


# --------------------------------------------------------------------------- convolutions

@rule("conv1d", "conv2d", "conv3d", "convolution", "_convolution")
def convolution(kx: Kernel, op, bound: dict, out):
    x, w, bias = bound["input"], bound["weight"], bound["bias"]
    if bound.get("transposed"):
        return vmap_op(kx, op, bound, out)
    spatial = len(shape_of(w)) - 2
    fn = (F.conv1d, F.conv2d, F.conv3d)[spatial - 1]
    if len(shape_of(x)) != spatial + 2:                 # one sample without a batch dim
        return vmap_op(kx, op, bound, out)
    geometry = (bound["stride"], bound["padding"], bound["dilation"], bound["groups"])
    shape = out_shape(out)
    if not any(isinstance(v, Batched) for v in (x, w, bias)):
        if isinstance(x, Const):                        # the first convolution: three, once per plane
            return Affine(tuple(fn(x.value, wp, bp, *geometry) if wp is not None else
                                bp.view(1, -1, *(1,) * spatial).expand(shape)
                                for wp, bp in zip(_parts(w), _parts(bias))), spatial=True)
        if isinstance(w, Const):
            return Affine(tuple(fn(xp, w.value, bp, *geometry) for xp, bp in zip(x.parts, _parts(bias))),
                          spatial=True)
    if isinstance(w, Const) and not _varies(bias):      # fixed weights: the K points as one batch
        v = _input(kx, x, "b0")
        node = kx.call(runtime.conv_shared, v.node, w.value, _k(kx, bias), *geometry)
        return kx.batched(node, shape, out.dtype, 0)
    v = _input(kx, x, "b1")
    wk = kx.as_batched(w, "b0").node if _varies(w) else kx.expand(w.value).node
    bk = kx.as_batched(bias, "b0").node if _varies(bias) else (
        kx.expand(bias.value).node if isinstance(bias, Const) and bias.value is not None else None)
    node = kx.call(runtime.conv, v.node, wk, bk, *geometry)
    return kx.batched(node, shape, out.dtype, 1)


# --------------------------------------------------------------------------- normalization

@rule("batch_norm", "_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit",
      "_batch_norm_impl_index", "cudnn_batch_norm", "miopen_batch_norm")
def batch_norm(kx: Kernel, op, bound: dict, out):
    x, w, bias = bound["input"], bound["weight"], bound["bias"]
    mean, var = bound.get("running_mean"), bound.get("running_var")
    mean = mean.value if isinstance(mean, Const) else None
    var = var.value if isinstance(var, Const) else None
    eps = float(bound["eps"])
    batch = kx.batchnorm == "batch" or bool(bound.get("training")) or mean is None
    tensor_out = out[0] if isinstance(out, (tuple, list)) else out
    shape = out_shape(tensor_out)
    if isinstance(x, Const) and not batch:
        # normalized data times Affine weights: linear in the weights
        xn = F.batch_norm(x.value, mean, var, None, None, False, 0.0, eps)
        value = _scale_shift(xn, w, bias, 1)
    elif isinstance(x, Affine) and not batch and not _varies(w) and not _varies(bias):
        c = (1, -1) + (1,) * (len(shape) - 2)
        g = torch.rsqrt(var + eps) * (w.value if isinstance(w, Const) and w.value is not None else 1)
        s = -mean * g + (bias.value if isinstance(bias, Const) and bias.value is not None else 0)
        value = Affine((x.parts[0] * g.view(c) + s.view(c), x.parts[1] * g.view(c), x.parts[2] * g.view(c)),
                       x.spatial)
    elif not batch and kx.read_once(x, runtime.conv):
        value = _fold_into_conv(kx, x, w, bias, mean, var, eps)
    else:
        v = x if isinstance(x, Batched) else _input(kx, x, None)
        node = kx.call(runtime.batch_norm, v.node, v.bdim, _k(kx, w), _k(kx, bias), mean, var, eps, batch)
        value = kx.batched(node, shape, tensor_out.dtype, v.bdim)
    if isinstance(out, (tuple, list)):
        return (value,) + tuple(Const(None) for _ in out[1:])
    return value


def _fold_into_conv(kx: Kernel, x: Batched, w, bias, mean, var, eps: float) -> Batched:
    """BatchNorm with running statistics after a convolution read by it alone: the convolution's
    weights and bias take the per-point scale and shift (runtime.fold_norm), and the BatchNorm's
    pass over the feature maps is gone."""
    conv = x.node
    xin, wk, bk, *geometry = conv.args
    with kx.graph.inserting_before(conv):
        pair = kx.call(runtime.fold_norm, wk, bk, mean, var, eps, _k(kx, w), _k(kx, bias))
        w2, b2 = (kx.graph.call_function(getitem, (pair, i)) for i in (0, 1))
    conv.args = (xin, w2, b2, *geometry)
    return x


def _scale_shift(xn: torch.Tensor, w, bias, channel_dim: int) -> Affine:
    """xn * w + bias for normalized data and Affine (or fixed, or no) weights along ``channel_dim``
    (-1: the weights have the trailing dims' shape, as LayerNorm's)."""
    def view(p):
        if channel_dim == -1:
            return p
        shape = [1] * xn.dim()
        shape[channel_dim] = -1
        return p.view(shape)

    ws, bs = _parts(w), _parts(bias)
    parts = []
    for i in range(3):
        if ws[0] is None:                   # no weight: the normalized data, in v0
            t = xn if i == 0 else torch.zeros_like(xn)
        elif ws[i] is None:                 # a fixed weight: in v0 only
            t = torch.zeros_like(xn)
        else:
            t = xn * view(ws[i])
        if bs[i] is not None:
            t = t + view(bs[i])
        parts.append(t)
    return Affine(tuple(parts))


@rule("layer_norm", "native_layer_norm")
def layer_norm(kx: Kernel, op, bound: dict, out):
    x, w, bias = bound["input"], bound["weight"], bound["bias"]
    shape_n = list(bound["normalized_shape"])
    eps = float(bound["eps"])
    tensor_out = out[0] if isinstance(out, (tuple, list)) else out
    if isinstance(x, Const):
        xn = F.layer_norm(x.value, shape_n, None, None, eps)
        value = _scale_shift(xn, w, bias, -1)
    elif not _varies(w) and not _varies(bias):
        v = kx.as_batched(x, "b0")
        node = kx.call(F.layer_norm, v.node, shape_n, _k(kx, w), _k(kx, bias), eps)
        value = kx.batched(node, out_shape(tensor_out), tensor_out.dtype, 0)
    else:
        v = kx.as_batched(x, "b0")
        node = kx.call(runtime.layer_norm, v.node, shape_n, _k(kx, w), _k(kx, bias), eps)
        value = kx.batched(node, out_shape(tensor_out), tensor_out.dtype, 0)
    if isinstance(out, (tuple, list)):
        return (value,) + tuple(Const(None) for _ in out[1:])
    return value


@rule("group_norm")
def group_norm(kx: Kernel, op, bound: dict, out):
    x = bound["input"]
    if isinstance(x, Const):
        return vmap_op(kx, op, bound, out)
    v = kx.as_batched(x, "b0")
    node = kx.call(runtime.group_norm, v.node, int(bound["num_groups"]), _k(kx, bound["weight"]),
                   _k(kx, bound["bias"]), float(bound["eps"]))
    return kx.batched(node, out_shape(out), out.dtype, 0)


@rule("rms_norm")
def rms_norm(kx: Kernel, op, bound: dict, out):
    x, w = bound["input"], bound["weight"]
    if isinstance(x, Const):
        return vmap_op(kx, op, bound, out)
    v = kx.as_batched(x, "b0")
    eps = bound.get("eps")
    node = kx.call(F.rms_norm, v.node, list(bound["normalized_shape"]), None, eps)
    if w is not None and not (isinstance(w, Const) and w.value is None):
        n = len(bound["normalized_shape"])
        wk = kx.as_batched(w, "b0") if _varies(w) else None
        if wk is not None:
            view = kx.graph.call_method("reshape", (wk.node, (-1,) + (1,) * (v.ndim - n) + tuple(w.shape)))
            node = kx.graph.call_function(torch.mul, (node, view))
        else:
            node = kx.graph.call_function(torch.mul, (node, kx.const(w.value)))
    return kx.batched(node, out_shape(out), out.dtype, 0)


# --------------------------------------------------------------------------- attention

@rule("scaled_dot_product_attention")
def attention(kx: Kernel, op, bound: dict, out):
    if float(bound.get("dropout_p") or 0.0) != 0.0:
        raise NotBatchable("attention dropout in forward (dropout_p > 0 in eval mode); pass "
                           "dropout_p=self.dropout if self.training else 0.0")
    q, k, v = (_input(kx, bound[n], "b0") for n in ("query", "key", "value"))
    mask = bound.get("attn_mask")
    if isinstance(mask, Const):
        m = mask.value
        if isinstance(m, torch.Tensor) and m.dim() == q.ndim and m.shape[0] == q.shape[0] and q.shape[0] > 1:
            mask_arg = kx.expand(m).node                    # a mask per sample: once per point too
        else:
            mask_arg = m
    elif mask is None:
        mask_arg = None
    else:
        mv = kx.as_batched(mask, "b0")
        if mv.ndim != q.ndim:
            return vmap_op(kx, op, bound, out)
        mask_arg = mv.node
    node = kx.call(runtime.sdpa, q.node, k.node, v.node, mask_arg, 0.0, bool(bound.get("is_causal")),
                   bound.get("scale"), bool(bound.get("enable_gqa", False)))
    return kx.batched(node, out_shape(out), out.dtype, 0)


# --------------------------------------------------------------------------- pooling and resizing

#: per sample and channel over the spatial dims; the linear ones keep Affine values Affine
LINEAR_SPATIAL = ("avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
                  "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "upsample_nearest1d",
                  "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d", "upsample_bilinear2d",
                  "upsample_bicubic2d", "upsample_trilinear3d", "_upsample_nearest_exact1d",
                  "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "_upsample_bilinear2d_aa")
OTHER_SPATIAL = ("max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
                 "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "max_pool1d_with_indices",
                 "lp_pool1d", "lp_pool2d")


def _window(name: str, bound: dict) -> list[int] | None:
    """The kernel of a 2-D max- or mean-pool over non-overlapping windows (runtime.window_pool), else None."""
    if name not in ("max_pool2d", "avg_pool2d"):
        return None
    pair = lambda v: [int(v), int(v)] if isinstance(v, int) else [int(t) for t in v] * (2 // len(v))  # noqa: E731
    kernel = pair(bound["kernel_size"])
    stride = pair(bound["stride"]) if bound.get("stride") else kernel
    plain = (stride == kernel and pair(bound.get("padding", 0)) == [0, 0] and not bound.get("ceil_mode")
             and pair(bound.get("dilation", 1)) == [1, 1])
    if name == "avg_pool2d":
        plain = plain and bound.get("divisor_override") is None
    return kernel if plain else None


@rule(*LINEAR_SPATIAL, *OTHER_SPATIAL)
def per_channel(kx: Kernel, op, bound: dict, out):
    name = op._schema.name.split("::")[1]
    key = "self" if "self" in bound else "input"
    x = bound[key]
    spatial = 3 if "3d" in name else 2 if "2d" in name else 1
    if len(shape_of(x)) != spatial + 2:
        return vmap_op(kx, op, bound, out)
    if isinstance(x, Affine) and name in LINEAR_SPATIAL:
        return Affine(tuple(call_on(op, bound, **{key: p}) for p in x.parts), spatial=True)
    v = kx.as_batched(x)
    window = _window(name, bound)
    if window is not None:
        node = kx.call(runtime.window_pool, v.node, v.bdim, window, name.startswith("avg"))
        return kx.batched(node, out_shape(out), out.dtype, v.bdim)
    args, kwargs = unbind(op, {**{k: (b.value if isinstance(b, Const) else b) for k, b in bound.items()},
                               key: None})
    if kwargs:
        return vmap_op(kx, op, bound, out)
    rest = args[1:]
    if isinstance(out, (tuple, list)):
        node = kx.call(runtime.per_channel_tuple, op, v.node, v.bdim, *rest)
        return wrap_output(kx, node, out, v.bdim)
    node = kx.call(runtime.per_channel, op, v.node, v.bdim, *rest)
    return kx.batched(node, out_shape(out), out.dtype, v.bdim)
