"""The batched convolution path: a Sequential of Conv2d / BatchNorm2d / activation / pooling, then
Flatten, then Linear / BatchNorm1d / activation (the ConvNet and the VGGs of compute/models.py).

* The first convolution is linear in (a, b): its three convolutions of the data (with W0, D1, D2)
  are computed once (``prepare``), and a point's first feature maps are c0 + a c1 + b c2.
* Where the first convolution is followed by its BatchNorm and activation and a 2x2 pool with
  stride 2 (the ConvNet, most VGG blocks), the three products are kept as 2x2 windows with the
  channels innermost, (N, H/2, W/2, 4, C), and the block is evaluated window by window: mixing,
  BatchNorm, activation and the pool's maximum (or mean) over the window's four values.  Under
  torch.compile that is one sweep that writes only the pooled maps, channels last.
* The K points of a pass sit side by side in the channels, (N, K*C, H, W), so every later
  convolution of the K points is one grouped convolution (``groups=K``) with the K points'
  weights W0 + a D1 + b D2 stacked along the output channels.
* BatchNorm is a per-point affine map x * g + s, from the running statistics (``batchnorm:
  running``) or from each point's own statistics over the evaluation data (``batch``), and the
  point's weight and bias.
* After Flatten the layout turns to (K, N, features) and Linear layers are batched matmuls
  (``baddbmm``); the loss is ``Loss.batched``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from compute.grid.base import Prepared, Problem
from compute.models import Activation

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def conv_stack(model: nn.Module):
    """[(name, module), ...] for the batched conv path, if the model is a Sequential of Conv2d
    (+ BatchNorm2d) / activation / pooling, then Flatten, then Linear (+ BatchNorm1d) /
    activation layers; else None."""
    if not isinstance(model, nn.Sequential):
        return None
    mods = list(model.named_children())
    if not mods or not isinstance(mods[0][1], nn.Conv2d):
        return None
    seen_flatten = False
    for _, m in mods:
        if isinstance(m, nn.Conv2d):
            if seen_flatten or m.bias is None or m.groups != 1 or m.padding_mode != "zeros":
                return None
        elif isinstance(m, nn.BatchNorm2d):
            if seen_flatten or not m.track_running_stats:
                return None
        elif isinstance(m, nn.Flatten):
            seen_flatten = True
        elif isinstance(m, nn.Linear):
            if not seen_flatten or m.bias is None:
                return None
        elif isinstance(m, nn.BatchNorm1d):
            if not seen_flatten or not m.track_running_stats:
                return None
        elif not isinstance(m, (Activation,) + _POOLS):
            return None
    return mods if seen_flatten else None


def _window_pool(m: nn.Module) -> bool:
    """A pooling layer over 2x2 windows with stride 2 and no padding."""
    if isinstance(m, nn.MaxPool2d):
        if m.dilation not in (1, (1, 1)) or m.return_indices:
            return False
    elif not isinstance(m, nn.AvgPool2d) or m.divisor_override is not None:
        return False
    return (m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)) and m.padding in (0, (0, 0))
            and not m.ceil_mode)


class ConvStack(Prepared):
    """Convolutions of K points as grouped convolutions (see the module docstring)."""

    name = "conv"
    compilable = True
    #: 4 points a pass for the bench ConvNet (128 samples, 16 channels of 16 x 16 first maps: 2 MB
    #: a point, 6 MB with slack): on one core 2 to 16 points run at about the same rate, on two
    #: 4 did best (2 spends more on each pass's fixed costs: guards, launching, joining threads)
    cpu_budget = 24 * 2**20

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.convs = conv_stack(problem.model)
        if self.convs is None or not problem.loss.builtin:
            raise ValueError("the 'conv' method needs a Sequential of Conv2d/BatchNorm2d/activation/pooling, "
                             "Flatten, then Linear layers")
        # the first block: the first convolution, its BatchNorm and activation, then a 2x2 pool
        j = 1
        while j < len(self.convs) and isinstance(self.convs[j][1], (nn.BatchNorm2d, Activation)):
            j += 1
        x, (name, first) = problem.x, self.convs[0]
        with torch.no_grad():
            hgt, wid = F.conv2d(x[:1], problem.plane.origin[f"{name}.weight"], None, first.stride, first.padding,
                                first.dilation).shape[2:]
        #: whether the first block is evaluated from its 2x2 windows (see ``_first_block``)
        self.windowed = (j < len(self.convs) and _window_pool(self.convs[j][1]) and hgt % 2 == 0
                         and wid % 2 == 0)
        self.head = self.convs[1:j] if self.windowed else []
        self.pool = self.convs[j][1] if self.windowed else None
        self.rest = self.convs[j + 1:] if self.windowed else self.convs[1:]

    @classmethod
    def fits(cls, problem: Problem) -> bool:
        return problem.loss.builtin and conv_stack(problem.model) is not None

    def products(self) -> tuple:
        p = self.problem
        o, d1, d2 = p.plane.origin, p.plane.d1, p.plane.d2
        name, first = self.convs[0]
        conv = lambda q, w, b: F.conv2d(p.x, q[w], q[b], first.stride, first.padding, first.dilation)
        # the first convolution is linear in (a, b): three convolutions of the data, once
        w, b = f"{name}.weight", f"{name}.bias"
        maps = conv(o, w, b), conv(d1, w, b), conv(d2, w, b)              # (N, C, H, W) each
        if not self.windowed:
            return maps
        # (N, Ho, Wo, 4, C): each 2x2 window's four values, the channels innermost
        n, c, hgt, wid = maps[0].shape
        ho, wo = hgt // 2, wid // 2
        return tuple(m.view(n, c, ho, 2, wo, 2).permute(0, 2, 4, 3, 5, 1).reshape(n, ho, wo, 4, c).contiguous()
                     for m in maps)

    def _param(self, name: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The K values of parameter ``name`` at the chunk's points: (K, *shape)."""
        pl = self.problem.plane
        o, d1, d2 = pl.origin[name], pl.d1[name], pl.d2[name]
        shape = (-1,) + (1,) * o.dim()
        return torch.addcmul(o, a.view(shape), d1).addcmul_(b.view(shape), d2)

    def _bn_affine(self, name: str, m: nn.Module, mean: torch.Tensor, var: torch.Tensor, a: torch.Tensor,
                   b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A BatchNorm layer as a per-point affine map x * g + s, (K, C) each, from the statistics
        it normalizes with and, if affine, its weight and bias at the chunk's points."""
        scale = torch.rsqrt(var + m.eps)
        if not m.affine:
            return scale, -mean * scale
        g = self._param(f"{name}.weight", a, b) * scale
        return g, self._param(f"{name}.bias", a, b) - mean * g

    def _first_block(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The first convolution, its BatchNorm and activation and a 2x2 pool, from the window
        layout (N, Ho, Wo, 4, C) of the products: -> (N, K*C, Ho, Wo), channels last.

        Every value of a window is at hand where the pool takes its maximum (or mean), so under
        torch.compile the whole block is one sweep that writes only the pooled maps (the
        full-size maps of a pass of 8 points of the bench ConvNet are 16 MB); and the grouped
        convolutions after it are fastest on channels-last maps."""
        c0, c1, c2 = (t[:, :, :, :, None] for t in self.pre)               # (N, Ho, Wo, 4, 1, C)
        k = a.numel()
        n, ho, wo, _, _, c = c0.shape
        sh = (1, 1, 1, 1, k, 1)
        v = torch.addcmul(c0, a.view(sh), c1).addcmul_(b.view(sh), c2)      # (N, Ho, Wo, 4, K, C)
        for name, m in self.head:
            if isinstance(m, nn.BatchNorm2d):
                if self.problem.batchnorm == "batch":
                    mean, var = v.mean(dim=(0, 1, 2, 3)), v.var(dim=(0, 1, 2, 3), unbiased=False)   # (K, C)
                else:
                    mean, var = m.running_mean.expand(k, -1), m.running_var.expand(k, -1)
                g, s = self._bn_affine(name, m, mean, var, a, b)
                v = torch.addcmul(s, v, g)
            else:
                v = m.inplace(v)
        v = v.amax(dim=3) if isinstance(self.pool, nn.MaxPool2d) else v.mean(dim=3)   # (N, Ho, Wo, K, C)
        return v.reshape(n, ho, wo, k * c).permute(0, 3, 1, 2)

    def losses(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        batch_stats = self.problem.batchnorm == "batch"
        k = a.numel()
        if self.windowed:
            h = self._first_block(a, b)
            n = h.shape[0]
        else:
            c0, c1, c2 = self.pre
            n, c, hgt, wid = c0.shape
            sh = (1, k, 1, 1, 1)
            h = torch.addcmul(c0[:, None], a.view(sh), c1[:, None]).addcmul_(b.view(sh), c2[:, None])
            h = h.reshape(n, k * c, hgt, wid)              # grouped layout: the K points side by side
        flat = None
        for name, m in self.rest:
            if isinstance(m, nn.Conv2d):
                w = self._param(f"{name}.weight", a, b)    # (K, Cout, Cin, kh, kw)
                bias = self._param(f"{name}.bias", a, b)
                h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), bias.reshape(-1), m.stride, m.padding,
                             m.dilation, groups=k)
            elif isinstance(m, nn.BatchNorm2d):
                # affine per channel and per grid point: the running statistics (eval mode), or
                # each grid point's own statistics over the evaluation data ("batch")
                if batch_stats:
                    mean = h.mean(dim=(0, 2, 3)).view(k, -1)
                    var = h.var(dim=(0, 2, 3), unbiased=False).view(k, -1)
                else:
                    mean, var = m.running_mean.expand(k, -1), m.running_var.expand(k, -1)
                g, s = self._bn_affine(name, m, mean, var, a, b)
                h = torch.addcmul(s.reshape(1, -1, 1, 1), h, g.reshape(1, -1, 1, 1))
            elif isinstance(m, Activation):
                h = m.inplace(h) if h.is_contiguous() else m.fn(h)
            elif isinstance(m, _POOLS):
                h = m(h)
            elif isinstance(m, nn.Flatten):
                h = h.reshape(n, k, -1).transpose(0, 1)     # (K, N, features)
                flat = True
            elif isinstance(m, nn.Linear):
                w = self._param(f"{name}.weight", a, b)     # (K, out, in)
                bias = self._param(f"{name}.bias", a, b)
                h = torch.baddbmm(bias[:, None, :], h, w.transpose(1, 2))
            elif isinstance(m, nn.BatchNorm1d):
                # (K, N, features): the same per-point affine map as BatchNorm2d, over the samples
                if batch_stats:
                    mean, var = h.mean(dim=1), h.var(dim=1, unbiased=False)
                else:
                    mean, var = m.running_mean.expand(k, -1), m.running_var.expand(k, -1)
                g, s = self._bn_affine(name, m, mean, var, a, b)
                h = torch.addcmul(s[:, None, :], h, g[:, None, :])
        assert flat, "a conv stack ends in Flatten and Linear layers"
        return self.problem.loss.batched(h, self.problem.target, self.problem.accuracy)
