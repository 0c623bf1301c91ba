"""The loss a landscape is made of (the scene's ``landscape.loss``): built-ins and the user's own.

A :class:`Loss` is used in four ways, and they agree to float32 rounding:

* ``loss(model, x, y)``: the plain definition, on a real module.  Training, the per-snapshot log
  and the per-point reference of the tests use it.
* ``loss.functional(model, params, buffers, x, y)``: the same through ``torch.func.functional_call``,
  so the grid engine's generic path can ``vmap`` it and the Hessian and in-plane descents can
  differentiate it.
* ``loss.batched(out, y)``: K stacked outputs (K, N, ...) at once -> (K,), for the grid engine's
  batched linear and convolution paths (built-in losses only).
* ``loss.batched_ckn(logits, y)``: outputs laid out (C, K, N), the linear path's output layer.

Targets (``y``) follow the data (compute/data.py: Dataset): class indices (N,) or token ids (N, T)
for ``cross_entropy`` and ``nll``; float targets (N, F) for ``mse``, ``l1``, ``smooth_l1`` and
``bce_with_logits``; for unlabelled data the target is the input itself (an autoencoder), and an
output with the same number of values per sample is compared in the target's shape.

The user's own loss is ``module:function`` called as ``function(model, batch, **args)`` with
``batch = (inputs, targets)`` (targets None for unlabelled data); it returns a scalar tensor.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from studio.scene import LossSpec, section
from compute.errors import DataError

#: built-in losses whose targets are class indices: only for them does accuracy mean something
CLASSIFICATION = ("cross_entropy", "nll")
#: built-in losses of float targets, elementwise and averaged over every value
ELEMENTWISE = {"mse": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss,
               "bce_with_logits": F.binary_cross_entropy_with_logits}
BUILTIN = CLASSIFICATION + tuple(ELEMENTWISE)


class LossError(DataError):
    """A loss that does not fit the data, or a user's loss that cannot be used."""


@dataclass(frozen=True)
class Loss:
    name: str                                   # a BUILTIN name, or "custom"
    fn: Optional[Callable] = None               # the user's function (custom)
    entry: str = ""                             # its "module:function"
    args: dict = field(default_factory=dict)    # keyword arguments for it

    @property
    def builtin(self) -> bool:
        return self.name != "custom"

    @property
    def classification(self) -> bool:
        """Targets are class indices: accuracy grids and read-outs mean something."""
        return self.name in CLASSIFICATION

    def describe(self) -> str:
        return self.entry if self.name == "custom" else self.name

    # ------------------------------------------------------------------ one network
    def __call__(self, model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        if self.fn is not None:
            return self.fn(model, (x, y), **self.args)
        return self.of_output(model(x), x if y is None else y)

    def of_output(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """A built-in loss of one network's output ``out`` against targets ``y``."""
        if self.name == "cross_entropy" or self.name == "nll":
            fn = F.cross_entropy if self.name == "cross_entropy" else F.nll_loss
            if y.dim() == 1:
                return fn(out, y, reduction=reduction)
            return fn(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction=reduction)
        out = _like(out.float(), y, 0)
        return ELEMENTWISE[self.name](out, y, reduction=reduction)

    def accuracy(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fraction of samples (or tokens) whose largest output is the target class."""
        return (out.argmax(-1) == y).float().mean()

    def functional(self, model: nn.Module, params: dict, buffers: dict, x: torch.Tensor,
                   y: Optional[torch.Tensor]) -> torch.Tensor:
        """The loss of ``model`` with ``params`` and ``buffers`` swapped in (torch.func)."""
        from torch.func import functional_call
        if self.fn is None:
            return self.of_output(functional_call(model, (params, buffers), (x,)), x if y is None else y)
        wrapped = WithLoss(model, self)
        return functional_call(wrapped, ({f"net.{k}": v for k, v in params.items()},
                                         {f"net.{k}": v for k, v in buffers.items()}), (x, y))

    # ------------------------------------------------------------------ K networks at once
    def batched(self, out: torch.Tensor, y: torch.Tensor, accuracy: bool = False) -> torch.Tensor:
        """K stacked outputs (K, N, ...) -> (K,) losses, or (K, 2) with the accuracy."""
        out = out.float()          # bf16 outputs would round the loss itself to 2-3 digits
        if self.classification:
            k = out.shape[0]
            flat = out.reshape(k, -1, out.shape[-1])                 # tokens count as samples
            yy = y.reshape(-1)
            if self.name == "cross_entropy":
                lse = torch.logsumexp(flat, dim=-1)
                picked = flat.gather(-1, yy.expand(k, -1)[..., None])[..., 0]
                loss = (lse - picked).mean(dim=-1)
            else:
                loss = -flat.gather(-1, yy.expand(k, -1)[..., None])[..., 0].mean(dim=-1)
            if accuracy:
                return torch.stack([loss, (flat.argmax(-1) == yy).float().mean(-1)], dim=1)
            return loss
        out = _like(out, y, 1)
        per = ELEMENTWISE[self.name](out, y.expand_as(out), reduction="none")
        return per.reshape(per.shape[0], -1).mean(dim=-1)

    def batched_ckn(self, logits: torch.Tensor, y: torch.Tensor, accuracy: bool = False) -> torch.Tensor:
        """Outputs laid out (C, K, N) -> (K,) or (K, 2); the class (or feature) reduction runs
        across C slices that are contiguous along N."""
        logits = logits.float()
        if self.classification:
            correct = (logits.argmax(0) == y) if accuracy else None   # before exp_ works in place
            picked = logits.gather(0, y.view(1, 1, -1).expand(1, logits.shape[1], -1))[0]
            if self.name == "cross_entropy":
                m = logits.amax(dim=0)
                lse = (logits - m).exp_().sum(dim=0).log_().add_(m)
                loss = (lse - picked).mean(dim=-1)
            else:
                loss = -picked.mean(dim=-1)
            if accuracy:
                return torch.stack([loss, correct.float().mean(-1)], dim=1)
            return loss
        target = y.reshape(y.shape[0], -1).T[:, None, :]                 # (C, 1, N)
        per = ELEMENTWISE[self.name](logits, target.expand_as(logits), reduction="none")
        return per.mean(dim=(0, 2))


class WithLoss(nn.Module):
    """The user's loss as a module around their network, so that ``functional_call`` swaps the
    network's weights for the duration of the user's function (which calls ``model(x)`` itself,
    or any of its sub-modules)."""

    def __init__(self, net: nn.Module, loss: Loss):
        super().__init__()
        self.net = net
        self._loss = loss

    def forward(self, x, y):
        return self._loss.fn(self.net, (x, y), **self._loss.args)


def _like(out: torch.Tensor, y: torch.Tensor, lead: int) -> torch.Tensor:
    """``out`` in the shape of the targets ``y`` when it holds the same number of values per sample
    (an MLP's flat output against an image's target); ``lead`` leading dims are kept (K)."""
    want = out.shape[:lead] + y.shape
    if out.shape != want and out.numel() == torch.Size(want).numel():
        return out.reshape(want)
    return out


#: the loss of a scene that names none
CROSS_ENTROPY = Loss("cross_entropy")


# --------------------------------------------------------------------------- from the scene

def build_loss(spec: LossSpec) -> Loss:
    """The scene's resolved ``landscape.loss`` section as a :class:`Loss`."""
    spec = section("loss", spec)
    name = spec.name
    if name != "custom":
        return Loss(name)
    from compute.entry import EntryError, resolve
    fn = resolve(spec.entry, "landscape.loss")
    try:
        inspect.signature(fn).bind(None, None, **(spec.args or {}))
    except TypeError as e:
        raise EntryError(f"landscape.loss.entry: {spec.entry} cannot be called as "
                         f"{spec.entry.partition(':')[2]}(model, batch, **args): {e}; check landscape.loss.args"
                         ) from None
    except ValueError:          # no signature to check (a builtin): called as it is
        pass
    return Loss("custom", fn, spec.entry, dict(spec.args or {}))


def check_fit(loss: Loss, kind: str, where: str = "landscape.loss") -> None:
    """A built-in loss against the kind of data (compute/data.py: Dataset.kind): one line that says
    which losses fit, or nothing.  The user's own loss is checked by calling it (check_custom)."""
    if not loss.builtin:
        return
    if loss.classification and kind not in ("classes", "tokens"):
        targets = {"regression": "float regression targets", "unlabelled": "no labels (the target is the input)"}[kind]
        raise LossError(f"{where}: bad value {loss.name!r}: it needs integer class labels and this data has "
                        f"{targets}; use mse, l1, smooth_l1 or bce_with_logits, or your own 'module:function'")
    if not loss.classification and kind in ("classes", "tokens"):
        raise LossError(f"{where}: bad value {loss.name!r}: it needs float targets and this data has integer "
                        f"class labels; use cross_entropy or nll (log-probabilities), or your own "
                        f"'module:function'")


def check_custom(loss: Loss, model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor]) -> None:
    """Call the user's loss once on a few samples: it must return a scalar tensor.  Every failure is
    one EntryError naming landscape.loss and the entry."""
    if loss.builtin:
        return
    from compute.entry import EntryError, user_frame
    bad = f"landscape.loss.entry: {loss.entry}(model, batch)"
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out: Any = loss(model, x[:8], None if y is None else y[:8])
    except Exception as e:  # noqa: BLE001 - the user's code: reported in one line, with where
        raise EntryError(f"{bad} raised {type(e).__name__}: {e}{user_frame(e)}") from None
    finally:
        model.train(was)
    if not isinstance(out, torch.Tensor):
        raise EntryError(f"{bad} returned a {type(out).__name__}; it should return a scalar torch tensor "
                         f"(e.g. F.mse_loss(model(x), y), or a .mean() of per-sample losses)")
    if out.numel() != 1 or not (out.is_floating_point() or out.is_complex()):
        raise EntryError(f"{bad} returned a tensor of shape {tuple(out.shape)} and type {out.dtype}; it should "
                         f"return a scalar float tensor (reduce it, e.g. with .mean())")
