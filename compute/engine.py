"""Grid evaluation: the loss at many points of a plane through weight space.

A point (a, b) of the plane stands for the weights  theta = origin + a*d1 + b*d2.
Two evaluators compute the same numbers:

* ``reference_loss`` -- the plain way, one point at a time: copy the weights into
  the model, run it on the evaluation data, compute the loss.  This is what the
  reference tools do per grid cell; the tests hold the engine to it.
* ``GridEngine`` -- many points per pass.  For a stack of Linear layers it
  builds the K weight matrices of a chunk of K points at once and runs them as
  one batched matmul (``baddbmm``), and it uses that the first layer is linear
  in (a, b):  W(a,b) x = W0 x + a D1 x + b D2 x,  so the three products with
  the data are computed once for the whole grid and each point costs only a
  fused multiply-add there.  Other models go through ``torch.func``
  (``functional_call`` + ``vmap``; point by point where vmap cannot batch a
  model).  BatchNorm uses the running statistics, or with ``batchnorm="batch"``
  each point's own statistics over the evaluation data, on every path.

Rows are produced in order, chunk by chunk, so the caller can write them out,
show progress and resume.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from compute.losses import CROSS_ENTROPY, Loss
from compute.models import Activation



@dataclass
class Plane:
    """origin, d1, d2: dicts name -> tensor, in the model's parameter order."""
    origin: dict[str, torch.Tensor]
    d1: dict[str, torch.Tensor]
    d2: dict[str, torch.Tensor]

    def point(self, a: float, b: float) -> dict[str, torch.Tensor]:
        return {k: self.origin[k] + a * self.d1[k] + b * self.d2[k] for k in self.origin}


def load_params(model: nn.Module, params: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])


@torch.no_grad()
def reference_loss(model: nn.Module, plane: Plane, a: float, b: float,
                   x: torch.Tensor, y: torch.Tensor | None, batchnorm: str = "running",
                   loss: Loss = CROSS_ENTROPY) -> float:
    """One grid point the plain way: copy the weights in, run the model, compute the loss.

    ``batchnorm="batch"`` normalizes BatchNorm layers with the statistics of ``x`` itself
    (train-mode normalization, running statistics left untouched)."""
    load_params(model, plane.point(a, b))
    model.eval()
    saved = []
    if batchnorm == "batch":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                saved.append((m, m.momentum))
                m.train()
                m.momentum = 0.0             # running = 1 * running + 0 * batch: unchanged
    try:
        # exact float32 on a GPU too (cuDNN's default runs convolutions in TensorFloat-32, about
        # three decimal digits)
        with precision_context(x.device, "fp32"):
            return loss(model, x, y).item()
    finally:
        for m, mom in saved:
            m.momentum = mom
            m.eval()


@contextlib.contextmanager
def _tf32(on: bool):
    """TensorFloat-32 for CUDA matmuls and cuDNN convolutions on or off, restored afterwards.

    Only the legacy flags are used (never torch.backends.*.fp32_precision): torch raises an error
    when a process mixes the two interfaces, and setting a legacy flag keeps both in step."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def precision_context(device: torch.device | str, precision: str = "fp32"):
    """The arithmetic of a grid precision on ``device``.  fp32: true float32 (on CUDA TensorFloat-32
    is switched off, for cuDNN too, whose default allows it); tf32: CUDA matmuls and convolutions in
    TensorFloat-32; bf16: autocast to bfloat16.  On the CPU nothing changes (fp32 only)."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return _tf32(precision == "tf32")


def _linear_stack(model: nn.Module):
    """[(weight_name, bias_name, activation_or_None), ...] if the model is Linear/activation only."""
    if not isinstance(model, nn.Sequential):
        return None
    layers = []
    mods = list(model.named_children())
    # a leading Flatten (an mlp on images): the linear path flattens the data itself
    i = 1 if mods and isinstance(mods[0][1], nn.Flatten) and len(mods) > 1 else 0
    while i < len(mods):
        name, m = mods[i]
        if not isinstance(m, nn.Linear) or m.bias is None:
            return None
        act = None
        if i + 1 < len(mods) and isinstance(mods[i + 1][1], Activation):
            act = mods[i + 1][1].inplace
            i += 1
        layers.append((f"{name}.weight", f"{name}.bias", act))
        i += 1
    return layers


_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def _conv_stack(model: nn.Module):
    """Layer list for the batched conv path, if the model is a Sequential of Conv2d (+ eval-mode
    BatchNorm2d) / activation / pooling, then Flatten, then Linear (+ BatchNorm1d) / activation
    layers (the ConvNet and the VGGs of compute/models.py)."""
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


class GridEngine:
    """Evaluates the loss of ``model`` on (x, y) at many points of ``plane``."""

    def __init__(self, model: nn.Module, plane: Plane, x: torch.Tensor, y: torch.Tensor | None,
                 chunk: int | None = None, method: str = "auto", compile: bool = False,
                 precision: str = "fp32", batchnorm: str = "running", accuracy: bool = False,
                 loss: Loss = CROSS_ENTROPY):
        self.model = model.eval()
        self.plane = plane
        self.x, self.y = x, y
        self.loss = loss
        #: what a built-in loss compares the output with: y, or the input for unlabelled data
        self.target = x if y is None else y
        self.device = x.device
        if precision not in ("fp32", "tf32", "bf16"):
            raise ValueError(f"precision must be fp32, tf32 or bf16, got {precision!r}")
        if precision != "fp32" and x.device.type != "cuda":
            raise ValueError(f"grid precision {precision!r} is for CUDA GPUs; this run is on {x.device.type} "
                             "(use fp32, the default)")
        self.precision = precision
        self.accuracy = bool(accuracy)
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        self.batchnorm = batchnorm if has_bn else "running"
        # the batched paths end in a built-in loss; the user's own goes through torch.func
        self.stack = _linear_stack(model) if loss.builtin else None
        self.convs = _conv_stack(model) if loss.builtin else None
        if method == "auto":
            method = "linear" if self.stack is not None else "conv" if self.convs is not None else "vmap"
        if method == "linear" and self.stack is None:
            raise ValueError("the 'linear' method needs a model made of Linear layers and activations, and a "
                             "built-in loss")
        if method == "conv" and self.convs is None:
            raise ValueError("the 'conv' method needs a Sequential of Conv2d/BatchNorm2d/activation/pooling, "
                             "Flatten, then Linear layers")
        self.method = method
        self.chunk = chunk or self.auto_chunk()
        if method == "linear":
            self._prepare(self._prepare_linear)
            self._kernel = self._losses_linear
        elif method == "conv":
            self._prepare(self._prepare_conv)
            self._kernel = self._losses_conv
        else:
            self._prepare_vmap()
            self._kernel = self._loop if method == "loop" else self._vmap_first_call
        # torch.compile fuses the elementwise work around the matmuls and convolutions (on this
        # CPU: the ConvNet path about 2.4x faster than eager); it costs seconds up front, so the
        # caller asks for it when the grid is large.  Chunks are padded to one fixed size so it
        # compiles once.
        self.compiled = bool(compile) and method in ("linear", "conv")
        #: seconds of the first compiled pass: compiling, and one pass (None until then)
        self.compile_s: float | None = None
        if self.compiled:
            self._eager = self._kernel
            self._kernel = self._first_compiled_call
            self._compiled_fn = torch.compile(self._eager, dynamic=False)

    def _prepare(self, prepare) -> None:
        """The first layer's products with the data, once, in exact float32 whatever the grid's
        precision (a one-off cost; on CUDA cuDNN's default would make them TensorFloat-32)."""
        with precision_context(self.device, "fp32"):
            prepare()

    def _first_compiled_call(self, a, b):
        """Compile on first use; where compiling fails (no compiler), carry on eagerly."""
        t = time.perf_counter()
        try:
            out = self._compiled_fn(a, b)
            self._kernel = self._compiled_fn
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_s = time.perf_counter() - t
        except torch.OutOfMemoryError:
            raise                # not a compiler failure: evaluate() retries with smaller chunks
        except Exception as e:  # noqa: BLE001 - any compiler failure: the eager path is exact too
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {e}); evaluating eagerly")
            self.compiled = False
            self._kernel = self._eager
            out = self._eager(a, b)
        return out

    # ------------------------------------------------------------------ sizing
    def auto_chunk(self) -> int:
        """Grid points per pass: small enough to stay in cache on a CPU, large on a GPU."""
        per_point = 3 * self._activation_bytes()         # the largest activations, with slack
        if self.method not in ("linear", "conv"):
            # vmap builds every parameter of every point of the chunk at once (a torchvision
            # ResNet-18: 45 MB a point)
            per_point += sum(4 * v.numel() for v in self.plane.origin.values())
        if self.device.type == "cuda":
            if self.method in ("linear", "conv"):
                # each layer's weights are built for every point of the chunk (a VGG layer: 9 MB a
                # point), the largest one at a time
                per_point += 4 * max(v.numel() for v in self.plane.origin.values())
            free, _ = torch.cuda.mem_get_info(self.device)
            # memory torch's caching allocator holds but does not use (training's batches) is free
            # to this process, though the driver does not count it
            free += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
            budget = free * 0.5
            return int(max(1, min(4096, budget // per_point)))
        budget = 12 * 2**20                              # measured best near 16 points of a 64-wide MLP
        return int(max(1, min(1024, budget // per_point)))

    def _activation_bytes(self) -> int:
        """Bytes of the largest activation tensor of one grid point (one forward pass on x)."""
        if self.stack is not None:
            widest = max(p.shape[0] for p in self.plane.origin.values())
            return 4 * self.x.shape[0] * max(widest, 1)
        biggest = [self.x[:1].numel()]
        hooks = [m.register_forward_hook(lambda m, i, o: biggest.append(o.numel() if torch.is_tensor(o) else 0))
                 for m in self.model.modules() if m is not self.model]
        try:
            with torch.no_grad():
                self.model(self.x[:1])
        finally:
            for h in hooks:
                h.remove()
        return 4 * self.x.shape[0] * max(biggest)

    # ------------------------------------------------------------------ linear stack
    def _prepare_linear(self):
        o, d1, d2 = self.plane.origin, self.plane.d1, self.plane.d2
        w, b, act = self.stack[0]
        x = self.x.reshape(self.x.shape[0], -1)
        # first layer: the three products with the data, once for the whole grid
        self.p0 = torch.addmm(o[b], x, o[w].T)
        self.p1 = torch.addmm(d1[b], x, d1[w].T)
        self.p2 = torch.addmm(d2[b], x, d2[w].T)
        self.act0 = act
        # output layer, linear in (a, b) too: one shared matmul with [W0; D1; D2] (3C, H)
        w, b, _ = self.stack[-1]
        if len(self.stack) > 1 and self.stack[-1][2] is None:
            self.out_w = torch.cat([o[w], d1[w], d2[w]], dim=0)
            self.out_b = torch.stack([o[b], d1[b], d2[b]])                   # (3, C)
        self.rest = [(o[w].T.contiguous(), d1[w].T.contiguous(), d2[w].T.contiguous(),
                      o[b], d1[b], d2[b], act) for w, b, act in self.stack[1:]]

    def _losses_linear(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a3, b3 = a[:, None, None], b[:, None, None]
        h = torch.addcmul(self.p0, a3, self.p1).addcmul_(b3, self.p2)      # (K, N, H1)
        if self.act0 is not None:
            h = self.act0(h)
        last = len(self.rest) - 1
        for i, (w0, w1, w2, c0, c1, c2, act) in enumerate(self.rest):
            if i == last and act is None:
                return self._output_layer(h, a, b)
            wk = torch.addcmul(w0, a3, w1).addcmul_(b3, w2)                 # (K, in, out)
            bk = torch.addcmul(c0, a[:, None], c1).addcmul_(b[:, None], c2)  # (K, out)
            h = torch.bmm(h, wk).add_(bk[:, None, :])
            if act is not None:
                h = act(h)
        return self.loss.batched(h, self.target, self.accuracy)

    def _output_layer(self, h: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        k, n, hdim = h.shape
        c = self.out_b.shape[1]
        # (3C, H) @ (H, K*N) -> classes outer, samples contiguous
        r = (self.out_w @ h.reshape(k * n, hdim).T).view(3, c, k, n)
        r = r + self.out_b[:, :, None, None]
        logits = torch.addcmul(r[0], a[None, :, None], r[1]).addcmul_(b[None, :, None], r[2])  # (C, K, N)
        return self.loss.batched_ckn(logits, self.target, self.accuracy)

    # ------------------------------------------------------------------ conv stack
    def _prepare_conv(self):
        o, d1, d2 = self.plane.origin, self.plane.d1, self.plane.d2
        name, first = self.convs[0]
        conv = lambda p, w, b: F.conv2d(self.x, p[w], p[b], first.stride, first.padding, first.dilation)
        # the first convolution is linear in (a, b): three convolutions of the data, once
        w, b = f"{name}.weight", f"{name}.bias"
        self.c0, self.c1, self.c2 = conv(o, w, b), conv(d1, w, b), conv(d2, w, b)   # (N, C, H, W)
        self.conv_rest = self.convs[1:]

    def _param(self, name: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The K values of parameter ``name`` at the chunk's points: (K, *shape)."""
        o, d1, d2 = self.plane.origin[name], self.plane.d1[name], self.plane.d2[name]
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

    def _losses_conv(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        k = a.numel()
        n, c, hgt, wid = self.c0.shape
        sh = (1, k, 1, 1, 1)
        h = torch.addcmul(self.c0[:, None], a.view(sh), self.c1[:, None]).addcmul_(b.view(sh), self.c2[:, None])
        h = h.reshape(n, k * c, hgt, wid)                  # grouped layout: the K points side by side
        flat = None
        for name, m in self.conv_rest:
            if isinstance(m, nn.Conv2d):
                w = self._param(f"{name}.weight", a, b)    # (K, Cout, Cin, kh, kw)
                bias = self._param(f"{name}.bias", a, b)
                h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), bias.reshape(-1), m.stride, m.padding,
                             m.dilation, groups=k)
            elif isinstance(m, nn.BatchNorm2d):
                # affine per channel and per grid point: the running statistics (eval mode), or
                # each grid point's own statistics over the evaluation data ("batch")
                if self.batchnorm == "batch":
                    mean = h.mean(dim=(0, 2, 3)).view(k, -1)
                    var = h.var(dim=(0, 2, 3), unbiased=False).view(k, -1)
                else:
                    mean, var = m.running_mean.expand(k, -1), m.running_var.expand(k, -1)
                g, sh_ = self._bn_affine(name, m, mean, var, a, b)
                h = torch.addcmul(sh_.reshape(1, -1, 1, 1), h, g.reshape(1, -1, 1, 1))
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
                if self.batchnorm == "batch":
                    mean, var = h.mean(dim=1), h.var(dim=1, unbiased=False)
                else:
                    mean, var = m.running_mean.expand(k, -1), m.running_var.expand(k, -1)
                g, sh_ = self._bn_affine(name, m, mean, var, a, b)
                h = torch.addcmul(sh_[:, None, :], h, g[:, None, :])
        assert flat, "a conv stack ends in Flatten and Linear layers"
        return self.loss.batched(h, self.target, self.accuracy)

    # ------------------------------------------------------------------ generic
    def _prepare_vmap(self):
        from torch.func import functional_call, vmap
        names = list(self.plane.origin)
        o = [self.plane.origin[k] for k in names]
        d1 = [self.plane.d1[k] for k in names]
        d2 = [self.plane.d2[k] for k in names]
        model = self.model
        if self.batchnorm == "batch":
            # each point normalizes with its own statistics over the evaluation data: BatchNorm
            # with its running statistics removed (on a copy) always uses the batch's, and under
            # vmap the batch is one point's pass over x.  Eval mode stays on (dropout off).
            import copy
            from torch.func import replace_all_batch_norm_modules_
            model = replace_all_batch_norm_modules_(copy.deepcopy(self.model)).eval()
        buffers = dict(model.named_buffers())
        x, y, target, loss, accuracy = self.x, self.y, self.target, self.loss, self.accuracy

        def one(a, b):
            params = {k: o[i] + a * d1[i] + b * d2[i] for i, k in enumerate(names)}
            if not accuracy:
                return loss.functional(model, params, buffers, x, y).reshape(())
            out = functional_call(model, (params, buffers), (x,))
            return torch.stack([loss.of_output(out, target), loss.accuracy(out, target)])

        self._one = one
        self._vmapped = vmap(one)

    def _loop(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The chunk one point at a time (for a model torch.func.vmap cannot batch)."""
        return torch.stack([self._one(a[i], b[i]) for i in range(a.numel())])

    def _vmap_first_call(self, a, b):
        """vmap on first use; a model it cannot batch (e.g. a custom model calling .item() or
        branching on values) is evaluated point by point instead, with a warning."""
        try:
            out = self._vmapped(a, b)
            self._kernel = self._vmapped
        except torch.OutOfMemoryError:
            raise                # evaluate() retries with smaller chunks, still batched
        except Exception as e:  # noqa: BLE001 - a real error in the model fails the loop below too
            out = self._loop(a, b)
            warnings.warn(f"torch.func.vmap cannot batch this model ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); evaluating the grid one point at a time")
            self.method = "loop"
            self._kernel = self._loop
        return out

    # ------------------------------------------------------------------ another plane
    _PREPARED = ("p0", "p1", "p2", "out_w", "out_b", "rest", "c0", "c1", "c2")

    @torch.no_grad()
    def set_plane(self, plane: Plane) -> None:
        """Evaluate on another plane of the same model from now on (a sequence's next grid).

        The values are copied into the tensors the engine already holds (its plane's and the
        precomputed first-layer products), so a compiled kernel keeps working without compiling
        again.  The engine's plane tensors are overwritten: give it a plane it owns."""
        for part in ("origin", "d1", "d2"):
            mine, new = getattr(self.plane, part), getattr(plane, part)
            for k, v in mine.items():
                v.copy_(new[k])
        if self.method in ("vmap", "loop"):   # its closure reads the plane's tensors themselves
            return
        old = {k: getattr(self, k) for k in self._PREPARED if hasattr(self, k)}
        self._prepare(self._prepare_linear if self.method == "linear" else self._prepare_conv)
        for k, was in old.items():
            now = getattr(self, k)
            if isinstance(was, list):      # the linear path's per-layer tuples
                for wt, nt in zip(was, now):
                    for w, n in zip(wt, nt):
                        if isinstance(w, torch.Tensor):
                            w.copy_(n)
            else:
                was.copy_(now)
            setattr(self, k, was)

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def losses(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Loss at each (a[k], b[k]); a, b are 1-D tensors on the engine's device."""
        return self.evaluate(a, b)[:, 0]

    @torch.no_grad()
    def evaluate(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(n, q): loss at each (a[k], b[k]), and with ``accuracy`` the accuracy as a second column.

        Where a chunk does not fit in the GPU's memory (the automatic size is an estimate), the
        chunk size is halved, with a warning, and the call evaluated again; ``self.chunk`` keeps
        the size that worked (the compute stage records it for a resumed run)."""
        while True:
            try:
                return self._evaluate(a, b)
            except torch.OutOfMemoryError:
                if self.chunk <= 1:
                    raise
            # here, outside the handler, the failed pass's tensors (its traceback's) are freed
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            warnings.warn(f"out of memory at {self.chunk} grid points a pass; trying {self.chunk // 2}")
            self.chunk //= 2

    def _evaluate(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = []
        for s in range(0, a.numel(), self.chunk):
            aa, bb = a[s:s + self.chunk], b[s:s + self.chunk]
            n = aa.numel()
            if self.compiled and n < self.chunk:           # pad the last chunk: one compiled shape
                aa = torch.cat([aa, aa[-1:].expand(self.chunk - n)])
                bb = torch.cat([bb, bb[-1:].expand(self.chunk - n)])
            with self._precision():
                out.append(self._kernel(aa, bb)[:n].float().reshape(n, -1))
        return torch.cat(out)

    def _precision(self):
        """The engine's precision (``precision_context``) around each pass."""
        return precision_context(self.device, self.precision)

    def rows_per_block(self, nx: int) -> int:
        """Rows in one block: about eight passes' worth of points."""
        return max(1, math.ceil(self.chunk * 8 / nx))

    def block(self, alpha: torch.Tensor, beta: torch.Tensor, j: int, r: int) -> torch.Tensor:
        """Rows j .. j+r-1 of the grid: (rows, nx), row i at beta[i], column k at alpha[k]."""
        return self.block_all(alpha, beta, j, r)[..., 0]

    def block_all(self, alpha: torch.Tensor, beta: torch.Tensor, j: int, r: int) -> torch.Tensor:
        """Rows j .. j+r-1 with every quantity: (rows, nx, q), loss first, then accuracy if asked."""
        nx = alpha.numel()
        bs = beta[j:j + r]
        out = self.evaluate(alpha.repeat(bs.numel()), bs.repeat_interleave(nx))
        return out.reshape(bs.numel(), nx, -1)

    def rows(self, alpha: torch.Tensor, beta: torch.Tensor, start: int = 0,
             rows_per_block: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (first_row, block of rows (r, nx)) from row ``start`` on."""
        r = rows_per_block or self.rows_per_block(alpha.numel())
        for j in range(start, beta.numel(), r):
            yield j, self.block(alpha, beta, j, r)


def loss_fn_on_plane(model: nn.Module, plane: Plane, x: torch.Tensor, y: torch.Tensor | None,
                     loss: Loss = CROSS_ENTROPY) -> Callable:
    """A differentiable f(ab) -> loss restricted to the plane (for in-plane descents and checks)."""
    buffers = dict(model.named_buffers())

    def f(ab: torch.Tensor) -> torch.Tensor:
        params = {k: plane.origin[k] + ab[0] * plane.d1[k] + ab[1] * plane.d2[k] for k in plane.origin}
        return loss.functional(model, params, buffers, x, y).reshape(())

    return f
