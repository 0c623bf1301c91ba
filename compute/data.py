"""Data sets.  Everything here works with no network at run time.

:func:`build_data` turns the scene's ``landscape.data`` section into a :class:`Dataset`: the inputs,
the targets and what kind they are, which decides the losses that fit (compute/losses.py) and the
size of the model's output.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, Optional

import torch

from studio.scene import AnyData, section
from compute.errors import DataError  # noqa: F401  (raised here; importers take it from here too)

#: the kinds of targets a data set can have
KINDS = ("classes", "tokens", "regression", "unlabelled")


class Dataset(NamedTuple):
    """Inputs and targets of one data set.

    kind     classes      y (N,) int64 class indices; ``outputs`` classes
             tokens       x (N, T) int64 token ids and y (N, T) int64 next tokens; ``outputs`` the
                          vocabulary
             regression   y (N, F) float32 targets; ``outputs`` F
             unlabelled   y None: the target is the input itself (an autoencoder); ``outputs`` the
                          values of one input
    shape    one sample's input shape: (features,), (C, H, W) or (T,)
    """
    x: torch.Tensor
    y: Optional[torch.Tensor]
    shape: tuple[int, ...]
    outputs: int
    kind: str = "classes"

    @property
    def targets(self) -> torch.Tensor:
        """What the loss compares the output with: y, or the input for unlabelled data."""
        return self.x if self.y is None else self.y

    def as_float(self) -> "Dataset":
        """The data as the built-in models take it: token ids as float32 values (a classifier of
        token sequences is the user's own model, with an embedding first)."""
        if self.x.is_floating_point() or self.kind == "tokens":
            return self
        return self._replace(x=self.x.to(torch.float32))

    def take(self, idx: torch.Tensor) -> "Dataset":
        return self._replace(x=self.x[idx], y=None if self.y is None else self.y[idx])

    def subset(self, n: int, seed: int) -> tuple["Dataset", torch.Tensor]:
        """A fixed, seeded subset of n samples -> (subset, sorted indices): class-balanced for class
        labels (:func:`eval_subset`), else a seeded random choice."""
        if self.kind == "classes":
            idx = eval_subset(self.x, self.y, n, seed)[2]
        else:
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(self.x), generator=g)[:min(n, len(self.x))].sort().values
        return self.take(idx), idx


def spirals(samples: int, classes: int = 2, turns: float = 1.75, noise: float = 0.2,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved spiral arms in the plane, one per class, scaled to about [-1, 1]^2.

    ``noise`` is the standard deviation of the Gaussian jitter in units of the
    gap between neighbouring arms, so the task's difficulty does not change
    with the number of arms or turns.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(samples) % classes
    t = torch.rand(samples, generator=g, dtype=torch.float64)
    r = 0.08 + 0.92 * t                                    # radius from the centre outwards
    angle = 2 * math.pi * (turns * t + y.double() / classes)
    gap = 1.0 / (turns * classes)                          # radial distance between arms
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    x = x + noise * gap * torch.randn(samples, 2, generator=g, dtype=torch.float64)
    return x.float(), y


def build_data(spec: "AnyData") -> Dataset:
    """The scene's data set (spirals: points (2,); images: (C, H, W); the user's: whatever it returns).

    Raises :class:`DataError` (one message: where it looked, the scene key to set) for a data set
    that is not on disk."""
    spec = section("data", spec)
    name = spec.name
    if name == "spirals":
        x, y = spirals(spec.samples, spec.classes, spec.turns, spec.noise, spec.seed)
        return Dataset(x, y, (2,), spec.classes)
    if name == "shapes":
        x, y = shapes(spec.samples, spec.classes, spec.size, spec.noise, spec.channels,
                      spec.seed)
        return Dataset(x, y, tuple(x.shape[1:]), spec.classes)
    if name == "regression":
        x, y = regression(spec.function, spec.samples, spec.noise, spec.seed)
        return Dataset(x, y, tuple(x.shape[1:]), 1, "regression")
    if name in ("mnist", "fashion_mnist", "cifar10", "imagenette", "folder"):
        x, y, classes = image_data(spec)
        return Dataset(x, y, tuple(x.shape[1:]), classes)
    if name == "custom":
        return custom_data(spec)
    raise ValueError(f"landscape.data.name: unknown data set {name!r}")


# --------------------------------------------------------------------------- regression

#: generated functions to fit: name -> (input dimensions, f)
FUNCTIONS = {
    # a wave whose frequency rises along x: an easy start and a hard finish for a small MLP
    "chirp": (1, lambda x: torch.sin(3 * math.pi * x[:, 0] * (1 + x[:, 0]) / 2)),
    # two bumps and a dip (MATLAB's peaks on [-1, 1]^2, scaled to about [-1, 1])
    "peaks": (2, lambda x: _peaks(3 * x[:, 0], 3 * x[:, 1]) / 8),
    # concentric ripples that fade outwards
    "ripples": (2, lambda x: torch.cos(6 * x.norm(dim=1)) * torch.exp(-x.norm(dim=1))),
}


def _peaks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (3 * (1 - u) ** 2 * torch.exp(-u ** 2 - (v + 1) ** 2)
            - 10 * (u / 5 - u ** 3 - v ** 5) * torch.exp(-u ** 2 - v ** 2)
            - torch.exp(-(u + 1) ** 2 - v ** 2) / 3)


def regression(function: str, samples: int, noise: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points drawn uniformly from [-1, 1]^d and a function's value there, with Gaussian noise of
    standard deviation ``noise`` -> (x (N, d), y (N, 1)) float32."""
    dims, f = FUNCTIONS[function]
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.rand(samples, dims, generator=g, dtype=torch.float64) - 1
    y = f(x) + noise * torch.randn(samples, generator=g, dtype=torch.float64)
    return x.float(), y[:, None].float()


def eval_subset(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed, seeded, class-balanced subset of n samples -> (x, y, indices)."""
    n = min(n, len(y))
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    per = [torch.nonzero(y == c).flatten() for c in classes]
    per = [p[torch.randperm(len(p), generator=g)] for p in per]
    take, k = [], 0
    # round-robin over classes so the subset stays balanced
    while len(take) < n:
        for p in per:
            if k < len(p) and len(take) < n:
                take.append(p[k].item())
        k += 1
    idx = torch.tensor(sorted(take))
    return x[idx], y[idx], idx


# --------------------------------------------------------------------------- image data

_SHAPES = ("disc", "square", "triangle", "cross")

#: per-channel mean and standard deviation used by ``normalize: true``
NORMALIZATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenette": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),      # ImageNet's
    "folder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def shapes(samples: int, classes: int = 4, size: int = 16, noise: float = 0.1, channels: int = 1,
           seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Small images of simple shapes (disc, square, triangle, cross; the first ``classes``), one per
    image, at a random position and size, with Gaussian pixel noise -> (x (N, C, H, W) in about
    [0, 1], y).  Classes take turns, so they are balanced; RGB images get a random colour per shape."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(samples) % classes
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size               # pixel centres in [0, 1]
    py, px = c[:, None], c[None, :]
    r = 0.18 + 0.17 * torch.rand(samples, generator=g)                       # half-size, image units
    cx = r + (1 - 2 * r) * torch.rand(samples, generator=g)
    cy = r + (1 - 2 * r) * torch.rand(samples, generator=g)
    masks = torch.empty(samples, size, size)
    for i in range(samples):
        dx, dy, ri = px - cx[i], py - cy[i], r[i]
        k = int(y[i])
        if k == 0:                                                           # disc
            m = dx * dx + dy * dy <= ri * ri
        elif k == 1:                                                         # square
            m = (dx.abs() <= ri * 0.85) & (dy.abs() <= ri * 0.85)
        elif k == 2:                                                         # triangle, apex up
            m = (dy <= ri) & (dy >= -ri) & (dx.abs() <= (dy + ri) / 2)
        else:                                                                # cross
            t = ri * 0.3
            m = ((dx.abs() <= t) & (dy.abs() <= ri)) | ((dy.abs() <= t) & (dx.abs() <= ri))
        masks[i] = m.float()
    if channels == 1:
        x = masks[:, None]
    else:
        colour = 0.4 + 0.6 * torch.rand(samples, 3, 1, 1, generator=g)
        x = masks[:, None] * colour
    x = x + noise * torch.randn(x.shape, generator=g)
    return x.float().contiguous(), y


def _balanced(targets: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of a seeded, class-balanced subset of n samples (all of them if n is larger)."""
    return eval_subset(targets, targets, n, seed)[2]


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) float images -> (N, C, size, size), antialiased bilinear."""
    if x.shape[-2:] == (size, size):
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False)


def _missing(name: str, where: str, spec: "AnyData", detail: str = "") -> DataError:
    how = ("set `download: true` under landscape.data to fetch it there, or `root:` to the directory that "
           "holds it" if name != "folder" else "set `root:` under landscape.data to a directory with one "
                                              "sub-directory of images per class")
    detail = f" ({detail})" if detail else ""
    return DataError(f"landscape.data: data set {name!r} not found in {where}{detail}; {how}")


def _torchvision_set(spec: "AnyData"):
    """The torchvision data set object for mnist / fashion_mnist / cifar10 / imagenette / folder."""
    import torchvision.datasets as tvd
    name, root = spec.name, Path(spec.root).expanduser()
    download = getattr(spec, "download", False)
    try:
        if name in ("mnist", "fashion_mnist"):
            cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
            return cls(str(root), train=True, download=download)
        if name == "cifar10":
            return tvd.CIFAR10(str(root), train=True, download=download)
        if name == "imagenette":
            return tvd.Imagenette(str(root), split="train", size=spec.variant, download=download)
        return tvd.ImageFolder(str(root))
    except (RuntimeError, FileNotFoundError, OSError) as e:
        where = {"mnist": root / "MNIST" / "raw", "fashion_mnist": root / "FashionMNIST" / "raw",
                 "cifar10": root / "cifar-10-batches-py",
                 "imagenette": root / f"imagenette2-{str(getattr(spec, 'variant', None)).replace('px', '')}" / "train"}.get(name, root)
        if download:
            raise DataError(f"landscape.data: could not download {name!r} into {root}: {e}; check the network, "
                            f"or download it by hand and set `root:` to its directory") from None
        raise _missing(name, str(where), spec, str(e) if name == "folder" else "") from None


def _load_files(samples: list[tuple[str, int]], idx: torch.Tensor, size: int) -> torch.Tensor:
    """The images at ``idx`` of an ImageFolder-like list, RGB, resized to size x size -> (N, 3, H, W)."""
    from PIL import Image
    out = torch.empty(len(idx), 3, size, size)
    for k, i in enumerate(idx.tolist()):
        with Image.open(samples[i][0]) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            a = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(size, size, 3)
        out[k] = a.permute(2, 0, 1).float() / 255
    return out


def image_data(spec: "AnyData") -> tuple[torch.Tensor, torch.Tensor, int]:
    """A torchvision data set's training split: a seeded class-balanced subset of ``train_samples``
    images, resized to ``size`` and (optionally) normalized -> (x (N, C, H, W), y, classes)."""
    ds = _torchvision_set(spec)
    name, n, size = spec.name, spec.train_samples, spec.size
    files = getattr(ds, "samples", None) or getattr(ds, "_samples", None)    # (path, class) of folder sets
    targets = torch.as_tensor(ds.targets if files is None else [t for _, t in files], dtype=torch.int64)
    if len(targets) == 0:
        raise _missing(name, spec.root, spec, "no images")
    classes = len(ds.classes)
    idx = _balanced(targets, n, spec.seed)
    if name in ("mnist", "fashion_mnist"):
        x = ds.data[idx].float()[:, None] / 255                             # (N, 1, 28, 28)
    elif name == "cifar10":
        x = torch.from_numpy(ds.data[idx.numpy()]).permute(0, 3, 1, 2).float() / 255
    else:
        return _normalize(_load_files(files, idx, size), spec), targets[idx], classes
    return _normalize(_resize(x, size), spec), targets[idx], classes


def _normalize(x: torch.Tensor, spec: "AnyData") -> torch.Tensor:
    if not spec.normalize:
        return x.contiguous()
    mean, std = NORMALIZATION[spec.name]
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


# --------------------------------------------------------------------------- the user's own data

def custom_data(spec: "AnyData", key: str = "landscape.data") -> Dataset:
    """``entry: "module:function"``, called with ``args`` -> a checked :class:`Dataset`.

    The function returns one of (torch tensors or NumPy arrays):

    * ``(x, y)`` or ``(x, y, classes)`` with integer y (N,): class labels from 0 (without
      ``classes``: y's largest value + 1);
    * ``(x, y)`` or ``(x, y, vocabulary)`` with integer x and y both (N, T): token sequences, y the
      next tokens (without a vocabulary: the largest token + 1);
    * ``(x, y)`` with float y (N,) or (N, F): regression targets (y (N,) becomes (N, 1));
    * ``x`` alone, or ``(x, None)``: inputs without labels, the target is the input (autoencoders).

    x has one sample per row.  Floating x and small integers (uint8 image bytes, int8, int16) become
    float32; int32 and int64 x are token ids and become int64 (a sequence classifier's embedding
    takes them; the built-in models take them as float32: :meth:`Dataset.as_float`)."""
    spec = section("data", spec)
    from compute.entry import EntryError, call
    entry = spec.entry
    out = call(entry, key, dict(getattr(spec, "args", None) or {}))
    bad = f"{key}.entry: {entry}"
    if isinstance(out, (tuple, list)) and len(out) in (2, 3):
        x = _as_tensor(out[0], "x", bad)
        y = None if out[1] is None else _as_tensor(out[1], "y", bad)
        extra = out[2] if len(out) == 3 else None
    elif isinstance(out, (tuple, list)):
        raise EntryError(f"{bad} returned {len(out)} items; it {_WANT}")
    else:
        x, y, extra = _as_tensor(out, "x", bad), None, None
    if x.dim() < 2 or x.dtype == torch.bool or x.is_complex():
        raise EntryError(f"{bad} returned x of shape {tuple(x.shape)} and type {x.dtype}; it {_WANT}")
    if y is not None and (len(y) != len(x)):
        raise EntryError(f"{bad} returned {len(x)} samples in x and {len(y)} in y; it {_WANT}")
    if len(x) < 2:
        raise EntryError(f"{bad} returned {len(x)} sample(s); a landscape needs at least 2")
    if y is None:
        return _unlabelled(x, extra, bad)
    if y.is_floating_point():
        return _regression(x, y, extra, bad)
    if y.dtype == torch.bool or y.is_complex():
        raise EntryError(f"{bad} returned y of type {y.dtype}; it {_WANT}")
    if y.dim() == 2 and not x.is_floating_point() and x.shape == y.shape:
        return _tokens(x, y, extra, bad)
    return _classes(x, y, extra, bad)


_WANT = ("should return (x, y) or (x, y, classes) with class labels y (N,), token sequences x and y (N, T), "
         "float regression targets y, or inputs x alone (no labels); one sample per row, torch tensors or "
         "NumPy arrays")


#: integer inputs kept as token ids (int64); other integers are values (image bytes) made float32
ID_TYPES = (torch.int32, torch.int64)


def _inputs(x: torch.Tensor, bad: str) -> torch.Tensor:
    """x as a model takes it: token ids as int64, anything else as float32 (see ID_TYPES)."""
    if x.dtype in ID_TYPES:
        from compute.entry import EntryError
        if int(x.min()) < 0:
            raise EntryError(f"{bad} returned integer x with a negative value ({int(x.min())}); integer x (int32, "
                             f"int64) are token ids, from 0; return float x for other values")
        return x.to(torch.int64).contiguous()
    return _float_inputs(x, bad)


def _float_inputs(x: torch.Tensor, bad: str) -> torch.Tensor:
    from compute.entry import EntryError
    x = x.to(torch.float32).contiguous()
    if not torch.isfinite(x).all():
        raise EntryError(f"{bad} returned x with NaN or infinite values")
    return x


def _count(extra, least: int, what: str, bad: str) -> int:
    """The third item (classes or vocabulary): an integer at least ``least``."""
    from compute.entry import EntryError
    if isinstance(extra, bool) or not isinstance(extra, int) or extra < 2:
        raise EntryError(f"{bad} returned {what} = {extra!r}; the third item is the number of {what}, an "
                         f"integer of at least 2")
    if extra < least:
        raise EntryError(f"{bad} returned {what} = {extra} but the data holds index {least - 1}; indices run "
                         f"from 0 to {what} - 1")
    return extra


def _classes(x: torch.Tensor, y: torch.Tensor, extra, bad: str) -> Dataset:
    from compute.entry import EntryError
    if y.dim() != 1:
        raise EntryError(f"{bad} returned integer y of shape {tuple(y.shape)}; class labels are (N,), token "
                         f"targets (N, T) beside integer token ids x of the same shape")
    y = y.to(torch.int64)
    if int(y.min()) < 0:
        raise EntryError(f"{bad} returned a negative class index ({int(y.min())}) in y; it {_WANT}")
    classes = int(y.max()) + 1 if extra is None else _count(extra, int(y.max()) + 1, "classes", bad)
    if classes < 2:
        raise EntryError(f"{bad} returned labels of one class only; a classifier needs at least 2")
    x = _inputs(x, bad)
    return Dataset(x, y, tuple(x.shape[1:]), classes)


def _tokens(x: torch.Tensor, y: torch.Tensor, extra, bad: str) -> Dataset:
    from compute.entry import EntryError
    x, y = x.to(torch.int64).contiguous(), y.to(torch.int64).contiguous()
    low = min(int(x.min()), int(y.min()))
    if low < 0:
        raise EntryError(f"{bad} returned a negative token id ({low}); token ids run from 0")
    top = max(int(x.max()), int(y.max())) + 1
    vocab = top if extra is None else _count(extra, top, "vocabulary", bad)
    return Dataset(x, y, tuple(x.shape[1:]), vocab, "tokens")


def _regression(x: torch.Tensor, y: torch.Tensor, extra, bad: str) -> Dataset:
    from compute.entry import EntryError
    if extra is not None:
        raise EntryError(f"{bad} returned a third item with float targets y; the third item is the number "
                         f"of classes, for integer labels")
    y = y.to(torch.float32).reshape(len(y), -1).contiguous() if y.dim() <= 2 else y.to(torch.float32)
    if not torch.isfinite(y).all():
        raise EntryError(f"{bad} returned y with NaN or infinite values")
    x = _inputs(x, bad)
    return Dataset(x, y, tuple(x.shape[1:]), int(math.prod(y.shape[1:])), "regression")


def _unlabelled(x: torch.Tensor, extra, bad: str) -> Dataset:
    from compute.entry import EntryError
    if extra is not None:
        raise EntryError(f"{bad} returned a third item without labels; return x alone, or (x, None)")
    x = _float_inputs(x, bad)
    return Dataset(x, None, tuple(x.shape[1:]), int(math.prod(x.shape[1:])), "unlabelled")


def _as_tensor(v, name: str, bad: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu()
    import numpy as np
    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(v))
    from compute.entry import EntryError
    raise EntryError(f"{bad} returned {name} as a {type(v).__name__}; it {_WANT}")
