"""Data sets.  Everything here works with no network at run time."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from compute.errors import DataError  # noqa: F401  (raised here; importers take it from here too)


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


def build_data(spec: dict) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...], int]:
    """-> (x, y, input shape of one sample, classes): (2,) for spirals, (C, H, W) for images.

    Raises :class:`DataError` (one message: where it looked, the scene key to set) for a data set
    that is not on disk."""
    name = spec["name"]
    if name == "spirals":
        x, y = spirals(spec["samples"], spec["classes"], spec["turns"], spec["noise"], spec["seed"])
        return x, y, (2,), spec["classes"]
    if name == "shapes":
        x, y = shapes(spec["samples"], spec["classes"], spec["size"], spec["noise"], spec["channels"],
                      spec["seed"])
        return x, y, tuple(x.shape[1:]), spec["classes"]
    if name in ("mnist", "fashion_mnist", "cifar10", "imagenette", "folder"):
        x, y, classes = image_data(spec)
        return x, y, tuple(x.shape[1:]), classes
    if name == "custom":
        x, y, classes = custom_data(spec)
        return x, y, tuple(x.shape[1:]), classes
    raise ValueError(f"landscape.data.name: unknown data set {name!r}")


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


def _missing(name: str, where: str, spec: dict, detail: str = "") -> DataError:
    how = ("set `download: true` under landscape.data to fetch it there, or `root:` to the directory that "
           "holds it" if name != "folder" else "set `root:` under landscape.data to a directory with one "
                                              "sub-directory of images per class")
    detail = f" ({detail})" if detail else ""
    return DataError(f"landscape.data: data set {name!r} not found in {where}{detail}; {how}")


def _torchvision_set(spec: dict):
    """The torchvision data set object for mnist / fashion_mnist / cifar10 / imagenette / folder."""
    import torchvision.datasets as tvd
    name, root = spec["name"], Path(spec["root"]).expanduser()
    download = spec.get("download", False)
    try:
        if name in ("mnist", "fashion_mnist"):
            cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
            return cls(str(root), train=True, download=download)
        if name == "cifar10":
            return tvd.CIFAR10(str(root), train=True, download=download)
        if name == "imagenette":
            return tvd.Imagenette(str(root), split="train", size=spec["variant"], download=download)
        return tvd.ImageFolder(str(root))
    except (RuntimeError, FileNotFoundError, OSError) as e:
        where = {"mnist": root / "MNIST" / "raw", "fashion_mnist": root / "FashionMNIST" / "raw",
                 "cifar10": root / "cifar-10-batches-py",
                 "imagenette": root / f"imagenette2-{str(spec.get('variant')).replace('px', '')}" / "train"}.get(name, root)
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


def image_data(spec: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A torchvision data set's training split: a seeded class-balanced subset of ``train_samples``
    images, resized to ``size`` and (optionally) normalized -> (x (N, C, H, W), y, classes)."""
    ds = _torchvision_set(spec)
    name, n, size = spec["name"], spec["train_samples"], spec["size"]
    files = getattr(ds, "samples", None) or getattr(ds, "_samples", None)    # (path, class) of folder sets
    targets = torch.as_tensor(ds.targets if files is None else [t for _, t in files], dtype=torch.int64)
    if len(targets) == 0:
        raise _missing(name, spec["root"], spec, "no images")
    classes = len(ds.classes)
    idx = _balanced(targets, n, spec["seed"])
    if name in ("mnist", "fashion_mnist"):
        x = ds.data[idx].float()[:, None] / 255                             # (N, 1, 28, 28)
    elif name == "cifar10":
        x = torch.from_numpy(ds.data[idx.numpy()]).permute(0, 3, 1, 2).float() / 255
    else:
        return _normalize(_load_files(files, idx, size), spec), targets[idx], classes
    return _normalize(_resize(x, size), spec), targets[idx], classes


def _normalize(x: torch.Tensor, spec: dict) -> torch.Tensor:
    if not spec["normalize"]:
        return x.contiguous()
    mean, std = NORMALIZATION[spec["name"]]
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


# --------------------------------------------------------------------------- the user's own data

def custom_data(spec: dict, key: str = "landscape.data") -> tuple[torch.Tensor, torch.Tensor, int]:
    """``entry: "module:function"``, called with ``args`` -> (x, y, classes), checked.

    The function returns (x, y) or (x, y, classes): x (N, ...) numbers, one sample per row ((N, F)
    points or (N, C, H, W) images), y (N,) integer class indices from 0; without ``classes`` it is
    y's largest value + 1.  Torch tensors or NumPy arrays; x becomes float32, y int64."""
    from compute.entry import EntryError, call
    entry = spec["entry"]
    out = call(entry, key, dict(spec.get("args") or {}))
    want = ("should return (x, y) or (x, y, classes): x a float tensor (N, ...) with one sample per row, "
            "y an integer tensor (N,) of class indices from 0")
    bad = f"{key}.entry: {entry}"
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        got = f"a {type(out).__name__}" + (f" of {len(out)} items" if isinstance(out, (tuple, list)) else "")
        raise EntryError(f"{bad} returned {got}; it {want}")
    x, y = (_as_tensor(v, n, bad, want) for v, n in zip(out[:2], ("x", "y")))
    if x.dim() < 2 or not (x.is_floating_point() or x.dtype in (torch.uint8, torch.int8, torch.int16,
                                                                   torch.int32, torch.int64)):
        raise EntryError(f"{bad} returned x of shape {tuple(x.shape)} and type {x.dtype}; it {want}")
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise EntryError(f"{bad} returned y of shape {tuple(y.shape)} and type {y.dtype}; it {want}")
    if len(y) != len(x) or len(y) < 2:
        raise EntryError(f"{bad} returned {len(x)} samples in x and {len(y)} labels in y; it {want}")
    y = y.to(torch.int64)
    if int(y.min()) < 0:
        raise EntryError(f"{bad} returned a negative class index ({int(y.min())}) in y; it {want}")
    classes = int(y.max()) + 1
    if len(out) == 3:
        c = out[2]
        if isinstance(c, bool) or not isinstance(c, int) or c < 2:
            raise EntryError(f"{bad} returned classes = {c!r}; the third item is the number of classes, an "
                             f"integer of at least 2")
        if c < classes:
            raise EntryError(f"{bad} returned classes = {c} but y holds class index {classes - 1}; class "
                             f"indices run from 0 to classes - 1")
        classes = c
    if classes < 2:
        raise EntryError(f"{bad} returned labels of one class only; a classifier needs at least 2")
    x = x.to(torch.float32).contiguous()
    if not torch.isfinite(x).all():
        raise EntryError(f"{bad} returned x with NaN or infinite values")
    return x, y, classes


def _as_tensor(v, name: str, bad: str, want: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu()
    try:
        import numpy as np
        if isinstance(v, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(v))
    except ImportError:          # pragma: no cover - numpy comes with torch here
        pass
    from compute.entry import EntryError
    raise EntryError(f"{bad} returned {name} as a {type(v).__name__}; it {want} (a torch tensor or a NumPy array)")
