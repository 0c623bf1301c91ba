"""Built-in models.  Each is an ``nn.Module`` whose parameters define the weight space."""
from __future__ import annotations

import difflib
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from studio.scene import AnyModel, section
from compute.data import DataError

_ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu, "softplus": F.softplus}


def _tanh_inplace(h: torch.Tensor) -> torch.Tensor:
    # tanh(x) = 2 sigmoid(2x) - 1: the same function, about 3x faster than torch.tanh on
    # CPUs (its vectorized sigmoid is much cheaper); absolute error ~1e-7 in float32.
    return h.mul_(2).sigmoid_().mul_(2).sub_(1)


#: in-place versions used by the grid engine on its own scratch tensors
_INPLACE = {"relu": torch.relu_, "tanh": _tanh_inplace,
            "gelu": lambda h: F.gelu(h), "softplus": lambda h: F.softplus(h)}


class Activation(nn.Module):
    """An elementwise activation the grid engine can apply to batched activations."""

    def __init__(self, name: str):
        super().__init__()
        if name not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(_ACTIVATIONS)}")
        self.name = name
        self.fn = _ACTIVATIONS[name]
        self.inplace = _INPLACE[name]

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self):
        return self.name


def mlp(in_features: int, widths: list[int], classes: int, activation: str = "tanh") -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_features
    for w in widths:
        layers += [nn.Linear(prev, w), Activation(activation)]
        prev = w
    layers.append(nn.Linear(prev, classes))
    return nn.Sequential(*layers)


def convnet(in_channels: int, image_size: int, channels: list[int], classes: int, activation: str = "relu",
            pool_every: int = 1, batchnorm: bool = False) -> nn.Sequential:
    """A plain ConvNet: [conv3x3 (+BN) + activation (+2x2 max-pool)] per entry of ``channels``,
    then flatten and a linear classifier."""
    layers: list[nn.Module] = []
    prev, size = in_channels, image_size
    for i, c in enumerate(channels):
        layers.append(nn.Conv2d(prev, c, 3, padding=1))
        if batchnorm:
            layers.append(nn.BatchNorm2d(c))
        layers.append(Activation(activation))
        if pool_every and (i + 1) % pool_every == 0 and size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        prev = c
    layers += [nn.Flatten(), nn.Linear(prev * size * size, classes)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- ResNet (CIFAR)

class BasicBlock(nn.Module):
    """Two 3x3 convolutions (+ BatchNorm) with ReLU, and the shortcut added before the last ReLU.

    With a change of shape (stride 2, more channels) the shortcut is a 1x1 convolution with
    stride + BatchNorm (He et al.'s option B, as in Li et al.'s code), else the identity.
    ``skip=False`` has no shortcut at all (Li et al.'s "noshort" blocks)."""

    def __init__(self, cin: int, cout: int, stride: int, skip: bool, batchnorm: bool):
        super().__init__()
        bias = not batchnorm                 # BatchNorm's shift makes a bias redundant; without it, keep one
        norm = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=bias)
        self.bn1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=bias)
        self.bn2 = norm(cout)
        self.skip = skip
        if skip and (stride != 1 or cin != cout):
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=bias), norm(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + self.shortcut(x)
        return F.relu(out)


def _he_init(conv: nn.Conv2d, g: torch.Generator) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu", generator=g)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class ResNet(nn.Module):
    """The CIFAR ResNet of He et al. 2016 (section 4.2), as Li et al. 2018 use it: a 3x3 stem
    convolution with ``width`` channels, three stages of n basic blocks (width, 2 width, 4 width
    channels; stride 2 at the first block of stages 2 and 3), global average pooling, a linear
    classifier.  depth = 6n + 2."""

    def __init__(self, in_channels: int, classes: int, depth: int = 20, width: int = 16, skip: bool = True,
                 batchnorm: bool = True):
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        self.depth, self.skip = depth, skip
        # one draw from the global generator seeds the initialization below: building the layers
        # draws differently with and without shortcuts, this does not
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=not batchnorm)
        self.bn1 = nn.BatchNorm2d(width) if batchnorm else nn.Identity()
        stages, cin = [], width
        for k, cout in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if (k > 0 and i == 0) else 1, skip, batchnorm))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(4 * width, classes)
        # He initialization (as in both papers), drawn with the shortcut convolutions last, so that
        # with the same seed a skip and a noskip net start from the same weights wherever they share them
        convs = [(k, m) for k, m in self.named_modules() if isinstance(m, nn.Conv2d)]
        for m in [m for k, m in convs if ".shortcut." not in k]:
            _he_init(m, g)
        # the classifier as nn.Linear initializes itself, from g
        nn.init.kaiming_uniform_(self.fc.weight, a=math.sqrt(5), generator=g)
        bound = 1 / math.sqrt(self.fc.in_features)
        nn.init.uniform_(self.fc.bias, -bound, bound, generator=g)
        for m in [m for k, m in convs if ".shortcut." in k]:
            _he_init(m, g)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --------------------------------------------------------------------------- VGG

#: convolution channels in units of ``width`` ("M": a 2x2 max-pool) and hidden linear widths
VGG_CONFIGS = {
    # Li et al. 2018's VGG-9 (their code's cfg 'VGG9'): 7 convolutions, one hidden linear layer
    "vgg9": ([1, 1, "M", 2, 2, "M", 4, 4, 4, "M"], [4]),
    # Simonyan and Zisserman's configuration A: 8 convolutions, two hidden linear layers (8 width
    # wide here, not 4096: the images are small), no dropout
    "vgg11": ([1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"], [8, 8]),
}


def vgg(in_channels: int, height: int, width_px: int, classes: int, config: str = "vgg9", width: int = 64,
        batchnorm: bool = True) -> nn.Sequential:
    """A VGG for small images: 3x3 convolutions (+ BatchNorm) + ReLU, 2x2 max-pools (left out once
    the feature map is 1 pixel high or wide, so small images work), flatten, hidden linear layers
    (+ BatchNorm) + ReLU, a linear classifier.  A plain Sequential, so the grid engine evaluates
    it on its batched convolution path."""
    convs, hidden = VGG_CONFIGS[config]
    layers: list[nn.Module] = []
    prev, h, w = in_channels, height, width_px
    for c in convs:
        if c == "M":
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            continue
        layers.append(nn.Conv2d(prev, c * width, 3, padding=1))
        if batchnorm:
            layers.append(nn.BatchNorm2d(c * width))
        layers.append(Activation("relu"))
        prev = c * width
    layers.append(nn.Flatten())
    prev = prev * h * w
    for u in hidden:
        layers.append(nn.Linear(prev, u * width))
        if batchnorm:
            layers.append(nn.BatchNorm1d(u * width))
        layers.append(Activation("relu"))
        prev = u * width
    layers.append(nn.Linear(prev, classes))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- torchvision, the user's own

class ModelError(DataError):
    """A model the scene names that cannot be built for this data.  A DataError, so the command
    line prints it as one ``error:`` line and no cache entry is left behind."""


def torchvision_classifiers() -> list[str]:
    """The classification models of torchvision.models (detection, segmentation, video and
    quantized models live in its sub-modules and are not listed)."""
    import torchvision.models as tvm
    return sorted(tvm.list_models(module=tvm))


def torchvision_model(arch: str, classes: int) -> nn.Module:
    """A torchvision classification model, randomly initialized (never downloads weights)."""
    import torchvision.models as tvm
    names = torchvision_classifiers()
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        fam = sorted({re.sub(r"[0-9_].*$", "", n) for n in names})
        raise ModelError(f"landscape.model.arch: bad value {arch!r}: not a classification model of torchvision "
                         f"{_tv_version()}{hint} (families: {', '.join(fam)}; torchvision.models.list_models() "
                         f"lists every name)")
    kw = {"aux_logits": False} if arch in ("googlenet", "inception_v3") else {}   # one output, not a tuple
    return tvm.get_model(arch, weights=None, num_classes=classes, **kw)


def _tv_version() -> str:
    import torchvision
    return torchvision.__version__.split("+")[0]


def custom_model(spec: "AnyModel", shape: tuple[int, ...], classes: int) -> nn.Module:
    """``entry: "module:function"`` (a function or a model class), called with the scene's ``args``,
    and ``input_shape`` (one sample's shape) and ``classes`` if its signature takes them."""
    spec = section("model", spec)
    from compute.entry import EntryError, call
    net = call(spec.entry, "landscape.model", dict(getattr(spec, "args", None) or {}),
               offered={"input_shape": tuple(shape), "classes": classes})
    if not isinstance(net, nn.Module):
        raise EntryError(f"landscape.model.entry: {spec.entry} returned a {type(net).__name__}; it should "
                         f"return a torch.nn.Module (it is called with landscape.model.args, and input_shape= and "
                         f"classes= where it takes them)")
    if not any(p.requires_grad for p in net.parameters()):
        raise EntryError(f"landscape.model.entry: {spec.entry} returned a module with no trainable "
                         f"parameters; the landscape is drawn over its parameters")
    return net


def expected_output(kind: str, shape: tuple[int, ...], outputs: int) -> tuple[int, ...]:
    """One sample's output shape that a model needs for data of this kind (compute/data.py)."""
    if kind == "tokens":
        return (shape[0], outputs)                   # next-token logits at every position
    return (outputs,)                                # unlabelled images: flat, or the input's shape (_fits)


def _fits(out: torch.Tensor, kind: str, shape: tuple[int, ...], outputs: int) -> bool:
    want = (2, *expected_output(kind, shape, outputs))
    if tuple(out.shape) == want:
        return True
    return kind == "unlabelled" and tuple(out.shape) == (2, *shape)     # an autoencoder's image out


def _check_output(net: nn.Module, shape: tuple[int, ...], outputs: int, kind: str, inputs: torch.dtype, what: str,
                  fix: str) -> None:
    """One forward pass on two blank samples: the model takes this data and gives what its loss needs
    (one logit per class, one value per target).  Caught here, the message names the scene key
    instead of a stack of PyTorch frames."""
    was = net.training
    net.eval()
    blank = torch.zeros(2, *shape, dtype=inputs)
    try:
        with torch.no_grad():
            out = net(blank)
    except Exception as e:  # noqa: BLE001 - any failure is this model on this data: one clear line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelError(f"{what} fails on samples of shape {tuple(shape)}: {type(e).__name__}: {msg}; "
                         f"{fix}") from None
    finally:
        net.train(was)
    if not isinstance(out, torch.Tensor) or not _fits(out, kind, shape, outputs):
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        want = (2, *expected_output(kind, shape, outputs))
        need = {"classes": "logits of shape {}: one per class of the data",
                "tokens": "logits of shape {}: over the vocabulary at every position",
                "regression": "shape {}: one value per target", "unlabelled": "shape {}: the input back"}
        raise ModelError(f"{what} gives {got} for 2 samples of shape {tuple(shape)}; it should give "
                         f"{need[kind].format(want)}")


def build_model(spec: "AnyModel", shape: tuple[int, ...], outputs: int, kind: str = "classes",
                inputs: torch.dtype = torch.float32) -> nn.Module:
    """The scene's model for inputs of ``shape`` (one sample: (features,), (C, H, W) or (T,)) and
    ``outputs`` values per sample (classes, target features, or the vocabulary: compute/data.py);
    ``inputs`` is the data's type (int64 token ids for the user's own model, else float32).

    An mlp on images flattens them first: a leading ``nn.Flatten``, which the grid engine's
    linear path skips (it flattens the data itself)."""
    spec = section("model", spec)
    shape = tuple(shape)
    name = spec.name
    if kind == "tokens" and name != "custom":
        raise ModelError(f"landscape.model: token sequences need your own model (an embedding first), not the "
                         f"built-in {name!r}; use name: custom with entry: 'module:function'")
    if name == "mlp":
        net = mlp(math.prod(shape), spec.widths, outputs, spec.activation)
        return nn.Sequential(nn.Flatten(), *net) if len(shape) > 1 else net
    if name in ("convnet", "resnet", "vgg", "torchvision") and len(shape) != 3:
        raise ModelError(f"landscape.model: a {name} needs images (C, H, W); this data's samples have shape "
                         f"{shape}")
    if name == "convnet":
        if shape[1] != shape[2]:
            raise ModelError(f"landscape.model: a convnet needs square images (C, H, W); this data's samples "
                             f"have shape {shape}")
        return convnet(shape[0], shape[1], spec.channels, outputs, spec.activation, spec.pool_every,
                       spec.batchnorm)
    if name == "resnet":
        return ResNet(shape[0], outputs, spec.depth, spec.width, spec.skip, spec.batchnorm)
    if name == "vgg":
        return vgg(shape[0], shape[1], shape[2], outputs, spec.config, spec.width, spec.batchnorm)
    if name == "torchvision":
        classes = getattr(spec, "classes", None) or outputs
        net = torchvision_model(spec.arch, classes)
        _check_output(net, shape, classes, kind, torch.float32, f"landscape.model: torchvision {spec.arch}",
                      "torchvision models take RGB images (3 channels), some of a least size (inception_v3: 75 "
                      "pixels); see landscape.data's size and channels")
        return net
    if name == "custom":
        net = custom_model(spec, shape, outputs)
        _check_output(net, shape, outputs, kind, inputs, f"landscape.model.entry: the model of {spec.entry}",
                      "check the function's input_shape handling against landscape.data")
        return net
    raise ValueError(f"landscape.model.name: unknown model {name!r}")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
