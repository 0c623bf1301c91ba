"""The functions a batched kernel calls: each takes physical tensors (K plane points stacked) and
does one layer of K networks at once.

They run on every pass, eagerly or under torch.compile, so they hold no Python state and branch
only on shapes, strides and the static arguments the builder gave them.  Layouts:

* ``b0``: K first, (K, *one point's shape);
* ``b1``: K second, (N, K, C, *spatial), a feature map of K points side by side in the channels.
  Its memory is channels-last, (N, *spatial, K, C), so a grouped convolution reads it as one
  channels-last (N, K*C, *spatial) map without a copy (oneDNN's fastest layout on CPUs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def ab_view(a: torch.Tensor, ndim: int, at: int = 0) -> torch.Tensor:
    """``a`` (K,) as a tensor of ``ndim`` dims with K at dim ``at`` and ones elsewhere."""
    shape = [1] * ndim
    shape[at] = -1
    return a.view(shape)


def mix(v0: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """v0 + a v1 + b v2 at K points: (K, *shape), K first."""
    nd = v0.dim() + 1
    return torch.addcmul(torch.addcmul(v0, ab_view(a, nd), v1), ab_view(b, nd), v2)


def mix_b1(v0: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The same for a feature map whose parts are held as (N, *spatial, 1, C): -> (N, K, C, *spatial),
    channels-last memory (see the module docstring)."""
    nd = v0.dim()
    out = torch.addcmul(torch.addcmul(v0, ab_view(a, nd, nd - 2), v1), ab_view(b, nd, nd - 2), v2)
    return out.permute(0, nd - 2, nd - 1, *range(1, nd - 2))


def to_b1(x: torch.Tensor) -> torch.Tensor:
    """(K, N, C, *spatial) -> (N, K, C, *spatial) in channels-last memory."""
    nd = x.dim()
    return x.permute(1, *range(3, nd), 0, 2).contiguous().permute(0, nd - 2, nd - 1, *range(1, nd - 2))


def grouped(x: torch.Tensor) -> torch.Tensor:
    """(N, K, C, *spatial) -> (N, K*C, *spatial), a view where the memory is channels-last."""
    n, k, c, *sp = x.shape
    nd = x.dim()
    if x.stride(2) != 1 or x.stride(1) != c:
        x = x.permute(0, *range(3, nd), 1, 2).contiguous().permute(0, nd - 2, nd - 1, *range(1, nd - 2))
    return x.reshape(n, k * c, *sp)


def ungrouped(y: torch.Tensor, k: int) -> torch.Tensor:
    """(N, K*C, *spatial) -> (N, K, C, *spatial), a view."""
    n, kc, *sp = y.shape
    return y.view(n, k, kc // k, *sp)


def conv(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, stride, padding, dilation,
         groups: int) -> torch.Tensor:
    """K convolutions at once: x (N, K, Cin, *spatial) layout b1, w (K, Cout, Cin/groups, *kernel),
    bias (K, Cout) or None -> (N, K, Cout, *spatial'), one grouped convolution (groups * K)."""
    k = w.shape[0]
    xg = grouped(x)
    if xg.dim() == 4:
        xg = xg.contiguous(memory_format=torch.channels_last)
    fn = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 4]
    y = fn(xg, w.reshape(-1, *w.shape[2:]), None if bias is None else bias.reshape(-1), stride, padding,
           dilation, groups * k)
    return ungrouped(y, k)


def conv_shared(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, stride, padding, dilation,
                groups: int) -> torch.Tensor:
    """A convolution whose weights are the same at every point (a buffer): x (K, N, C, ...) -> the
    K points as one batch of K*N samples."""
    k, n = x.shape[:2]
    fn = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 4]
    y = fn(x.reshape(k * n, *x.shape[2:]), w, bias, stride, padding, dilation, groups)
    return y.view(k, n, *y.shape[1:])


def linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (K, ..., in) through K weight matrices w (K, out, in) and biases (K, out): one batched matmul."""
    k, *lead, fin = x.shape
    h = x.reshape(k, -1, fin)
    if bias is None:
        y = torch.bmm(h, w.transpose(1, 2))
    else:
        y = torch.baddbmm(bias[:, None, :], h, w.transpose(1, 2))
    return y.view(k, *lead, w.shape[1])


def matmul_rhs(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x (K, ..., n) @ w (K, n, m): one point's matrix for all its rows, one batched matmul."""
    k, *lead, n = x.shape
    return torch.bmm(x.reshape(k, -1, n), w).view(k, *lead, w.shape[-1])


def channel_affine(x: torch.Tensor, g: torch.Tensor, s: torch.Tensor, bdim: int) -> torch.Tensor:
    """x * g + s with g, s (K, C) per point and channel; x's channels follow its K (layout b0: dim 2,
    b1: dim 2 too, K being dim 1)."""
    nd = x.dim()
    if bdim == 0:
        shape = (g.shape[0], 1, g.shape[1]) + (1,) * (nd - 3)
    else:
        shape = (1, g.shape[0], g.shape[1]) + (1,) * (nd - 3)
    return torch.addcmul(s.view(shape), x, g.view(shape))


def batch_stats(x: torch.Tensor, bdim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point's mean and biased variance per channel over the samples and positions: (K, C) each."""
    dims = [d for d in range(x.dim()) if d not in (bdim, 2)]
    var, mean = torch.var_mean(x, dim=dims, correction=0)
    return mean, var


def norm_scale_shift(mean: torch.Tensor, var: torch.Tensor, eps: float, w: torch.Tensor | None,
                     bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm as x * g + s: g = w / sqrt(var + eps), s = bias - mean * g."""
    g = torch.rsqrt(var + eps)
    if w is not None:
        g = g * w
    s = -mean * g
    if bias is not None:
        s = s + bias
    return g, s


def batch_norm(x: torch.Tensor, bdim: int, w, bias, mean, var, eps: float, batch: bool) -> torch.Tensor:
    """BatchNorm of K points: the running statistics ``mean``, ``var`` (C,), or with ``batch`` each
    point's own over x; ``w``, ``bias``: (K, C), or None (no affine)."""
    if batch:
        mean, var = batch_stats(x, bdim)
    g, s = norm_scale_shift(mean, var, eps, w, bias)
    k = x.shape[bdim]
    return channel_affine(x, g.expand(k, -1), s.expand(k, -1), bdim)


def fold_norm(w: torch.Tensor, bias: torch.Tensor | None, mean, var, eps: float, nw, nb):
    """A convolution followed by BatchNorm with running statistics, as one convolution: K points'
    weights w (K, Cout, ...) scaled by g and biases b g + s (runtime.norm_scale_shift) -> (w', b')."""
    g, s = norm_scale_shift(mean, var, eps, nw, nb)
    k = w.shape[0]
    g, s = g.expand(k, -1), s.expand(k, -1)
    w2 = w * g.view(k, g.shape[1], *(1,) * (w.dim() - 2))
    return w2, (s if bias is None else torch.addcmul(s, bias, g))


def layer_norm(x: torch.Tensor, shape: list[int], w: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float) -> torch.Tensor:
    """LayerNorm of K points, x (K, ..., *shape); w, bias (K, *shape) or None."""
    y = F.layer_norm(x, shape, None, None, eps)
    k = x.shape[0]
    view = (k,) + (1,) * (x.dim() - 1 - len(shape)) + tuple(shape)
    if w is not None and bias is not None:
        return torch.addcmul(bias.view(view), y, w.view(view))
    if w is not None:
        return y * w.view(view)
    if bias is not None:
        return y + bias.view(view)
    return y


def group_norm(x: torch.Tensor, groups: int, w, bias, eps: float) -> torch.Tensor:
    """GroupNorm of K points, x (K, N, C, ...): statistics per sample, then the per-point affine."""
    k, n = x.shape[:2]
    y = F.group_norm(x.reshape(k * n, *x.shape[2:]), groups, None, None, eps).view(x.shape)
    if w is None and bias is None:
        return y
    c = x.shape[2]
    w = torch.ones(k, c, dtype=y.dtype, device=y.device) if w is None else w
    bias = torch.zeros(k, c, dtype=y.dtype, device=y.device) if bias is None else bias
    return channel_affine(y, w, bias, 0)


def per_channel(fn, x: torch.Tensor, bdim: int, *args) -> torch.Tensor:
    """A per-sample, per-channel op (pooling, upsampling) on K points: K folded into the samples
    (layout b0) or the channels (b1), and unfolded after."""
    if bdim == 0:
        k, n = x.shape[:2]
        y = fn(x.reshape(k * n, *x.shape[2:]), *args)
        return y.view(k, n, *y.shape[1:])
    n, k, c = x.shape[:3]
    y = fn(grouped(x), *args)
    return ungrouped(y, k)


def window_pool(x: torch.Tensor, bdim: int, kernel: list[int], mean: bool) -> torch.Tensor:
    """Max- or mean-pooling over non-overlapping windows (stride = kernel, no padding) of K points'
    2-D maps.  Under torch.compile: a reduction over the window dims of a view, into which the
    activation before it fuses, so that only the pooled map is written; eagerly, torch's pooling
    (a strided reduction is slow there)."""
    if not torch.compiler.is_compiling():
        fn = F.avg_pool2d if mean else F.max_pool2d
        return per_channel(fn, x, bdim, kernel)
    kh, kw = kernel
    if bdim == 1:
        n, k, c, h, w = x.shape
        m = x.permute(0, 3, 4, 1, 2)[:, :h // kh * kh, :w // kw * kw]            # (N, H, W, K, C)
        m = m.reshape(n, h // kh, kh, w // kw, kw, k, c)
        m = m.mean(dim=(2, 4)) if mean else m.amax(dim=(2, 4))                    # (N, Ho, Wo, K, C)
        return m.permute(0, 3, 4, 1, 2)
    k, n, c, h, w = x.shape
    m = x[..., :h // kh * kh, :w // kw * kw].reshape(k, n, c, h // kh, kh, w // kw, kw)
    return m.mean(dim=(4, 6)) if mean else m.amax(dim=(4, 6))


def per_channel_tuple(fn, x: torch.Tensor, bdim: int, *args):
    """``per_channel`` for ops that give a tuple (max-pooling with its indices)."""
    if bdim == 0:
        k, n = x.shape[:2]
        ys = fn(x.reshape(k * n, *x.shape[2:]), *args)
        return tuple(y.view(k, n, *y.shape[1:]) for y in ys)
    k = x.shape[1]
    ys = fn(grouped(x), *args)
    return tuple(ungrouped(y, k) for y in ys)


def fold_samples(fn, k: int, *args, **kwargs) -> torch.Tensor:
    """A per-sample op on tensors (K, N, ...) of the same K: folded to (K*N, ...) and back."""
    flat = [t.reshape(-1, *t.shape[2:]) if isinstance(t, torch.Tensor) else t for t in args]
    y = fn(*flat, **kwargs)
    return y.view(k, -1, *y.shape[1:])


def expand_k(c: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """A tensor the same at every point, with a leading K dim (a view)."""
    return c.expand(a.shape[0], *c.shape)


def sdpa(q, k, v, mask, dropout_p, is_causal, scale, enable_gqa):
    """scaled_dot_product_attention of K points, q, k, v (K, N, ..., T, d): K folded into N; a mask
    with a sample dim is repeated for the K points."""
    kk, n = q.shape[:2]
    fold = lambda t: t.reshape(kk * n, *t.shape[2:])               # noqa: E731
    if isinstance(mask, torch.Tensor) and mask.dim() == q.dim():   # (K, N, ...): per point and sample
        mask = fold(mask)
    y = F.scaled_dot_product_attention(fold(q), fold(k), fold(v), attn_mask=mask, dropout_p=dropout_p,
                                       is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    return y.view(kk, n, *y.shape[1:])


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1: the same function to about 1e-7 (float32), and about three times
    faster on CPUs, eager and compiled alike (their vectorized sigmoid is much cheaper than tanh)."""
    return torch.sigmoid(2 * x).mul(2).sub(1)


def vmapped(op, in_dims: tuple, kwargs: dict, *args):
    """Any other operation, batched over K by torch.func.vmap (in_dims: each positional argument's
    K dim or None; kwargs: the op's keyword-only arguments, the same at every point)."""
    return torch.func.vmap(lambda *a: op(*a, **kwargs), in_dims=in_dims)(*args)
