"""The scene file: schema, strict validation and clear errors.

A scene is a YAML file with four top-level keys (see scenes/README.md):

    title:      text shown on the title card
    landscape:  everything the compute stage needs; its canonical hash keys the cache
    render:     camera, look, paths and captions for the render stage
    output:     where the film goes and how it is encoded
    compare:    optional: two to four landscapes in one film, each the landscape section with a
                panel's changes (Scene.panels())

``load_scene(path)`` returns a validated :class:`Scene` or raises
:class:`SceneError` whose message names the file, the line (where YAML gives
it), the dotted key, the bad value, what is allowed and, for an unknown key,
the closest valid key.  Nothing here imports torch or vispy: both stages use it.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, ValidationInfo,
                      field_validator, model_validator)

#: Bump when the cache layout or the meaning of a landscape key changes.
FORMAT_VERSION = 1


class SceneError(ValueError):
    """A scene file that cannot be used; the message is meant for the user as is."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- landscape

class DataSpec(_Strict):
    name: Literal["spirals"] = Field("spirals", description="generated data set")
    samples: int = Field(1024, ge=16, le=1_000_000, description="points generated")
    classes: int = Field(2, ge=2, le=8, description="number of spiral arms")
    turns: float = Field(1.75, gt=0, le=10, description="turns of each arm")
    noise: float = Field(0.2, ge=0, le=5, description="Gaussian noise (in units of the arm gap)")
    seed: int = Field(0, ge=0)


class ShapesSpec(_Strict):
    """Generated images of simple shapes (compute/data.py: shapes); needs no files."""
    name: Literal["shapes"]
    samples: int = Field(1024, ge=16, le=200_000, description="images generated")
    classes: int = Field(4, ge=2, le=4, description="shapes used: disc, square, triangle, cross (the first n)")
    size: int = Field(16, ge=8, le=64, description="image width and height in pixels")
    channels: Literal[1, 3] = Field(1, description="1: grayscale, 3: RGB (a random colour per image)")
    noise: float = Field(0.1, ge=0, le=2, description="standard deviation of the Gaussian pixel noise")
    seed: int = Field(0, ge=0)


class _ImageSetSpec(_Strict):
    root: str = Field("data", min_length=1, description="directory of the data set (relative to the "
                                                         "working directory)")
    train_samples: int = Field(5000, ge=2, le=2_000_000,
                               description="seeded, class-balanced subset of the training split")
    normalize: bool = Field(True, description="subtract the data set's per-channel mean, divide by its std")
    seed: int = Field(0, ge=0, description="seed of the training subset")


class _DownloadSpec(_ImageSetSpec):
    download: bool = Field(False, description="download into root if it is not there")


class MnistSpec(_DownloadSpec):
    name: Literal["mnist"]
    size: int = Field(28, ge=4, le=256, description="images are resized to size x size")


class FashionMnistSpec(_DownloadSpec):
    name: Literal["fashion_mnist"]
    size: int = Field(28, ge=4, le=256, description="images are resized to size x size")


class Cifar10Spec(_DownloadSpec):
    name: Literal["cifar10"]
    size: int = Field(32, ge=4, le=256, description="images are resized to size x size")


class ImagenetteSpec(_DownloadSpec):
    name: Literal["imagenette"]
    variant: Literal["160px", "320px"] = Field("160px", description="which archive: shorter side 160 or 320")
    size: int = Field(64, ge=4, le=320, description="images are resized to size x size")


class FolderSpec(_ImageSetSpec):
    name: Literal["folder"]
    size: int = Field(32, ge=4, le=512, description="images are resized to size x size (RGB)")


class RegressionSpec(_Strict):
    """Generated regression data (compute/data.py: regression): a function of one or two inputs to
    fit, scored by a loss of float targets (landscape.loss: mse, l1, smooth_l1)."""
    name: Literal["regression"]
    function: Literal["chirp", "peaks", "ripples"] = Field(
        "peaks", description="chirp: a wave of rising frequency on [-1, 1]; peaks: two bumps and a dip on "
                             "[-1, 1]^2; ripples: concentric waves fading outwards on [-1, 1]^2")
    samples: int = Field(1024, ge=16, le=1_000_000, description="points generated")
    noise: float = Field(0.05, ge=0, le=5, description="standard deviation of the Gaussian noise on the targets")
    seed: int = Field(0, ge=0)


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_ENTRY = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*:{_IDENT}(?:\.{_IDENT})*$")


def _json_plain(v: Any, where: str = "args") -> None:
    """Raise unless v is made of what JSON holds (the cache key hashes it as JSON): text, numbers,
    true/false, null, lists and mappings with text keys."""
    if v is None or isinstance(v, (str, bool, int)):
        return
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{where} must be finite numbers, got {v}")
        return
    if isinstance(v, list):
        for i, x in enumerate(v):
            _json_plain(x, f"{where}[{i}]")
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be text, got {k!r}")
            _json_plain(x, f"{where}.{k}")
        return
    raise ValueError(f"{where} may hold text, numbers, true/false, null, lists and mappings; got "
                     f"{type(v).__name__} {v!r}")


def _check_entry(v: str) -> str:
    if not _ENTRY.match(v):
        raise ValueError("an entry is 'module:function', e.g. 'tiny_models:ring_net' for the function "
                         "ring_net in tiny_models.py next to the scene (dotted names like "
                         "'package.module:function' work too)")
    return v


class _EntrySpec(_Strict):
    """The user's own function, ``entry: "module:function"`` (compute/entry.py).  Its code is not
    part of the scene, so the cache key covers entry, args and version only."""
    entry: str = Field(description="'module:function': a module importable from the scene's folder, the "
                                   "working directory or the installed packages, and a function in it")
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the function")
    version: int = Field(0, ge=0, description="change it to recompute after editing the function's code")

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str) -> str:
        return _check_entry(v)

    @field_validator("args")
    @classmethod
    def _args(cls, v: dict) -> dict:
        _json_plain(v)
        return v


class CustomDataSpec(_EntrySpec):
    """compute/data.py: custom_data; the function returns (x, y) or (x, y, classes)."""
    name: Literal["custom"]


_DATA_MODELS = {"spirals": DataSpec, "shapes": ShapesSpec, "regression": RegressionSpec, "mnist": MnistSpec,
                "fashion_mnist": FashionMnistSpec, "cifar10": Cifar10Spec, "imagenette": ImagenetteSpec,
                "folder": FolderSpec, "custom": CustomDataSpec}


def _kind(default: str, kinds: dict):
    """A discriminator on ``name`` that defaults to ``default`` when the key is left out."""
    def kind(v: Any) -> str:
        n = v.get("name", default) if isinstance(v, dict) else getattr(v, "name", default)
        return n if isinstance(n, str) and n in kinds else "unknown"
    return kind


AnyData = Annotated[Union[tuple(Annotated[m, Tag(k)] for k, m in _DATA_MODELS.items())],
                    Discriminator(_kind("spirals", _DATA_MODELS))]


class ModelSpec(_Strict):
    name: Literal["mlp"] = "mlp"
    widths: list[int] = Field([64, 64], min_length=1, max_length=16)
    activation: Literal["relu", "tanh", "gelu", "softplus"] = "tanh"

    @field_validator("widths")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        for w in v:
            if not 1 <= w <= 65536:
                raise ValueError(f"every width must be an integer from 1 to 65536, got {w}")
        return v


class ConvNetSpec(_Strict):
    """compute/models.py: convnet; needs image data."""
    name: Literal["convnet"]
    channels: list[int] = Field([16, 32], min_length=1, max_length=8,
                                description="output channels of each 3x3 convolution")
    activation: Literal["relu", "tanh", "gelu", "softplus"] = "relu"
    pool_every: int = Field(1, ge=0, le=8, description="a 2x2 max-pool after every n-th convolution; 0: none")
    batchnorm: bool = Field(False, description="BatchNorm2d after each convolution")

    @field_validator("channels")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        for c in v:
            if not 1 <= c <= 4096:
                raise ValueError(f"every channel count must be an integer from 1 to 4096, got {c}")
        return v


class ResNetSpec(_Strict):
    """compute/models.py: resnet, the CIFAR ResNet of He et al. 2016 (as in Li et al. 2018); needs
    image data."""
    name: Literal["resnet"]
    depth: Literal[20, 32, 44, 56, 110] = Field(20, description="6n + 2 layers: n basic blocks per stage")
    skip: bool = Field(True, description="false: the same network without its shortcut connections "
                                         "(Li et al.'s ResNet-noshort)")
    width: int = Field(16, ge=1, le=512, description="channels of the first stage (then 2x and 4x); 16 as "
                                                     "published, smaller for quick CPU runs")
    batchnorm: bool = Field(True, description="BatchNorm2d after each convolution; false: convolutions with "
                                              "biases instead")


class VGGSpec(_Strict):
    """compute/models.py: vgg, a VGG for small images; needs image data."""
    name: Literal["vgg"]
    config: Literal["vgg9", "vgg11"] = Field("vgg9", description="vgg9: Li et al. 2018's VGG-9 (7 conv, 2 linear); "
                                                                 "vgg11: Simonyan and Zisserman's A (8 conv, 3 linear)")
    width: int = Field(64, ge=1, le=512, description="channels of the first convolution (the later stages 2x, 4x, "
                                                     "8x); 64 as published, smaller for quick CPU runs")
    batchnorm: bool = Field(True, description="BatchNorm after each convolution and hidden linear layer")


class TorchvisionSpec(_Strict):
    """compute/models.py: a classification model of torchvision.models by name, randomly initialized;
    the name is checked against torchvision when the compute stage builds it (studio has no torch)."""
    name: Literal["torchvision"]
    arch: str = Field(description="a name from torchvision.models.list_models(), e.g. resnet18")
    classes: Optional[int] = Field(None, ge=2, le=100_000,
                                   description="outputs of the classifier; default the data's classes (1000 for "
                                               "ImageNet weights from landscape.weights, with labels that are "
                                               "ImageNet's class indices)")

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", v):
            raise ValueError("a torchvision model name is lower case letters, digits and '_', e.g. resnet18 "
                             "(torchvision.models.list_models() lists them)")
        return v


class CustomModelSpec(_EntrySpec):
    """compute/models.py: custom_model; called as function(input_shape=..., classes=..., **args)."""
    name: Literal["custom"]

    @field_validator("args")
    @classmethod
    def _not_ours(cls, v: dict) -> dict:
        taken = [k for k in ("input_shape", "classes") if k in v]
        if taken:
            raise ValueError(f"{taken[0]} is passed by the compute stage (from the data); remove it from args")
        return v


_MODEL_MODELS = {"mlp": ModelSpec, "convnet": ConvNetSpec, "resnet": ResNetSpec, "vgg": VGGSpec,
                 "torchvision": TorchvisionSpec, "custom": CustomModelSpec}

AnyModel = Annotated[Union[tuple(Annotated[m, Tag(k)] for k, m in _MODEL_MODELS.items())],
                     Discriminator(_kind("mlp", _MODEL_MODELS))]

LOSSES = ("cross_entropy", "nll", "mse", "l1", "smooth_l1", "bce_with_logits")


class LossSpec(_Strict):
    """The loss the landscape is made of (compute/losses.py).  Written as a name (``loss: mse``), an
    entry (``loss: "my_losses:reconstruction"``) or a mapping (``loss: {name: custom, entry: ...,
    args: {...}}``)."""
    name: Literal["cross_entropy", "nll", "mse", "l1", "smooth_l1", "bce_with_logits", "custom"] = Field(
        "cross_entropy", description="cross_entropy and nll (log-probabilities in) take class labels or token "
                                     "ids; mse, l1, smooth_l1 and bce_with_logits take float targets, or the input "
                                     "itself for data without labels; custom: your own function (entry)")
    entry: Optional[str] = Field(None, description="custom: 'module:function', called as function(model, batch, "
                                                   "**args) with batch = (inputs, targets); returns a scalar tensor")
    args: dict[str, Any] = Field(default_factory=dict, description="custom: keyword arguments for the function")
    version: int = Field(0, ge=0, description="custom: change it to recompute by hand (editing the module's "
                                              "file recomputes by itself)")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"name": "custom", "entry": v} if ":" in v else {"name": v}
        return v

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: Optional[str]) -> Optional[str]:
        return v if v is None else _check_entry(v)

    @field_validator("args")
    @classmethod
    def _args(cls, v: dict) -> dict:
        _json_plain(v)
        return v

    @model_validator(mode="after")
    def _custom_has_entry(self):
        if self.name == "custom" and self.entry is None:
            raise ValueError("a custom loss needs entry: 'module:function', e.g. entry: 'my_losses:reconstruction'")
        if self.name != "custom" and (self.entry is not None or self.args or self.version):
            raise ValueError(f"entry, args and version are for your own loss (name: custom), not {self.name!r}")
        return self


class WeightsSpec(_Strict):
    """The user's own weights instead of the studio's training (compute/runs.py): checkpoint files
    saved by their training, one trained model, or a run folder written by compute.recorder.Recorder.
    Paths are relative to the working directory, like data roots."""
    files: Optional[Union[str, list[str]]] = Field(
        None, description="checkpoint files: a glob ('runs/net/step_*.pt') or a list; sorted by the step in "
                          "each name (its last number), or by steps; one file: a trained model, no trajectory")
    run: Optional[str] = Field(None, description="instead of files: a run folder written by "
                                                 "compute.recorder.Recorder (its run.json lists the snapshots)")
    steps: Optional[list[int]] = Field(None, min_length=1, description="with a list of files: the training step "
                                                                       "of each, in the list's order")
    final: Optional[Union[int, str]] = Field(
        None, description="the final weights (the plane's origin for pca and random planes): a step of the run, "
                          "or a file; default the last checkpoint")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.files is None) == (self.run is None):
            raise ValueError("give files (a glob or a list of checkpoint files) or run (a folder written by "
                             "compute.recorder.Recorder)" + (", not both" if self.files is not None else ""))
        if isinstance(self.files, list) and not self.files:
            raise ValueError("files lists no file")
        if self.steps is not None:
            if not isinstance(self.files, list):
                raise ValueError("steps go with a list of files (one step each); with a glob or a run folder the "
                                 "steps come from the names or the run's run.json")
            if len(self.steps) != len(self.files):
                raise ValueError(f"steps lists {len(self.steps)} steps for {len(self.files)} files; give one each")
            if any(s < 0 for s in self.steps) or len(set(self.steps)) != len(self.steps):
                raise ValueError(f"steps must be distinct steps of at least 0, got {self.steps}")
        return self


#: sections that are one of several models, chosen by their ``name`` key
_TAGGED = {("landscape", "data"): _DATA_MODELS, ("landscape", "model"): _MODEL_MODELS}


class TrainSpec(_Strict):
    """Training (compute/train.py).  Every new key's default reproduces the original behaviour, so
    the cache keys of existing scenes stay as they were."""
    optimizer: Literal["sgd", "momentum", "adam", "adamw"] = Field(
        "adam", description="sgd, momentum (SGD with momentum 0.9 unless momentum says otherwise), adam, adamw "
                            "(Adam with decoupled weight decay)")
    lr: float = Field(0.01, gt=0, le=10)
    momentum: Optional[float] = Field(None, ge=0, lt=1, description="sgd and momentum: the momentum factor "
                                                                    "(default 0 for sgd, 0.9 for momentum)")
    nesterov: bool = Field(False, description="sgd and momentum: Nesterov momentum")
    weight_decay: Optional[float] = Field(
        None, ge=0, le=1, description="sgd, momentum, adam: L2 added to the gradient (default 0); adamw: "
                                      "decoupled (default 0.01, torch's)")
    lr_schedule: Literal["constant", "step", "cosine"] = Field("constant", description="learning-rate schedule")
    warmup: int = Field(0, ge=0, le=10_000_000, description="steps of linear warmup from lr/warmup to lr")
    step_size: Optional[int] = Field(None, ge=1, le=10_000_000,
                                     description="step: multiply the rate by gamma every step_size steps")
    milestones: Optional[list[int]] = Field(None, min_length=1, max_length=100,
                                            description="step: the training steps after which the rate is "
                                                        "multiplied by gamma")
    gamma: float = Field(0.1, gt=0, le=1, description="step: the factor at each drop")
    lr_min: float = Field(0.0, ge=0, description="cosine: the rate at the end of training")
    steps: int = Field(2000, ge=1, le=10_000_000)
    epochs: Optional[int] = Field(None, ge=1, le=10_000_000,
                                  description="instead of steps: passes over the training data, each "
                                              "ceil(samples / batch_size) steps")
    batch_size: int = Field(0, ge=0, description="0 means the full data set each step")
    batches: Literal["random", "shuffled"] = Field(
        "random", description="random: each batch drawn at random (with replacement); shuffled: each epoch a "
                              "fresh permutation of the training data cut into batches")
    snapshots: int = Field(200, ge=3, le=100_000, description="parameter snapshots kept along training")
    schedule: Literal["log", "linear"] = Field("log", description="spacing of the snapshots over the steps")
    every: Optional[int] = Field(None, ge=1, le=10_000_000,
                                 description="instead of snapshots: a snapshot every this many steps (and the last)")
    seed: int = Field(0, ge=0)
    log_samples: int = Field(0, ge=0, le=10_000_000,
                             description="training samples the log's train loss and accuracy are measured on "
                                         "at each snapshot: 0 all of them, else a seeded, class-balanced subset")
    amp: bool = Field(False, description="mixed precision (bf16, or fp16 with a gradient scaler) on a CUDA GPU; "
                                         "ignored on the CPU, with a note in the log")

    @field_validator("momentum", "nesterov")
    @classmethod
    def _sgd_only(cls, v, info: ValidationInfo):
        opt = info.data.get("optimizer")
        if opt in ("adam", "adamw") and (v is not None and v is not False):
            raise ValueError(f"{info.field_name} is for the optimizers sgd and momentum, not {opt!r}")
        return v

    @field_validator("step_size", "milestones", "gamma")
    @classmethod
    def _step_only(cls, v, info: ValidationInfo):
        sched = info.data.get("lr_schedule")
        if sched is not None and sched != "step":
            raise ValueError(f"{info.field_name} is for lr_schedule: step, not {sched!r}")
        if info.field_name == "milestones" and v is not None:
            if any(m < 1 for m in v) or any(b <= a for a, b in zip(v, v[1:])):
                raise ValueError("milestones must be training steps of at least 1, strictly increasing")
            w = info.data.get("warmup") or 0
            if v[0] <= w:
                raise ValueError(f"milestones come after the warmup ({w} steps): the first must be above {w}")
        return v

    @field_validator("lr_min")
    @classmethod
    def _cosine_only(cls, v, info: ValidationInfo):
        sched = info.data.get("lr_schedule")
        if sched is not None and sched != "cosine":
            raise ValueError(f"lr_min is for lr_schedule: cosine, not {sched!r}")
        lr = info.data.get("lr")
        if lr is not None and v >= lr:
            raise ValueError(f"lr_min must be less than lr ({lr:g}): cosine goes from lr down to lr_min")
        return v

    @model_validator(mode="after")
    def _combinations(self):
        given = self.model_fields_set
        if "epochs" in given and "steps" in given:
            raise ValueError(f"give steps ({self.steps}) or epochs ({self.epochs}), not both")
        if self.lr_schedule == "step" and (self.step_size is None) == (self.milestones is None):
            raise ValueError("lr_schedule: step needs step_size (e.g. step_size: 500) or milestones (e.g. "
                             "milestones: [1000, 1500]): " + ("not both" if self.step_size else "one of them"))
        if "every" in given and ("snapshots" in given or "schedule" in given):
            other = "snapshots" if "snapshots" in given else "schedule"
            raise ValueError(f"give every (a snapshot every {self.every} steps) or {other}, not both")
        momentum = self.momentum if self.momentum is not None else (0.9 if self.optimizer == "momentum" else 0)
        if self.nesterov and not momentum:
            raise ValueError("nesterov needs momentum: use optimizer: momentum, or give momentum (e.g. 0.9)")
        return self

    def total_steps(self, n_train: int) -> int:
        """The run's length in steps for ``n_train`` training samples (compute/train.py: total_steps)."""
        if self.epochs is None:
            return self.steps
        bs = self.batch_size
        return self.epochs * (1 if bs == 0 or bs >= n_train else -(-n_train // bs))


#: most snapshots a run may keep (each is a copy of all the weights)
MAX_SNAPSHOTS = 100_000
#: longest training run in steps
MAX_STEPS = 10_000_000


def train_steps(landscape: "LandscapeSpec") -> int:
    """The training run's length in steps.  With epochs it needs the training set's size: exact for
    generated data (samples); for data sets on disk train_samples, which is exact unless the data
    set is smaller (the compute stage checks again with the real size).  None with epochs on custom
    data: its size is known only once the compute stage has called the data function."""
    d = landscape.data
    n = getattr(d, "samples", None) or getattr(d, "train_samples", None)
    if n is None and landscape.train.epochs is not None:
        return None
    return landscape.train.total_steps(n or 1)


def train_run_problem(train: dict, total: int) -> Optional[tuple[str, str]]:
    """A problem of the train section that shows only with the run's length ``total``, as
    (key, message), or None.  Used at load time and by the compute stage with the real data size."""
    epochs = train.get("epochs")
    length = f"{epochs} epochs of {total // epochs} steps, {total} steps" if epochs else f"{total} steps"
    if total > MAX_STEPS:
        return "epochs", f"training would run {length}; at most {MAX_STEPS:,} steps"
    w = train.get("warmup") or 0
    if w >= total:
        return "warmup", f"the warmup must be shorter than training ({length})"
    late = [m for m in train.get("milestones") or [] if m >= total]
    if late:
        return "milestones", f"milestone {late[0]} is not before the end of training ({length})"
    k = train.get("every")
    if k:
        count = total // k + 1 + (1 if total % k else 0)
        if k >= total:
            return "every", f"training runs {length}, so every: {k} keeps only the first and last; give at " \
                            f"most {total - 1} (at least 3 snapshots)"
        if count > MAX_SNAPSHOTS:
            return "every", f"training runs {length}, so every: {k} keeps {count:,} snapshots; at most " \
                            f"{MAX_SNAPSHOTS:,} (every at least {-(-total // (MAX_SNAPSHOTS - 1))})"
    return None


class HessianSpec(_Strict):
    """The hessian plane: Lanczos on Hessian-vector products at the final weights (compute/plane.py)."""
    iterations: int = Field(100, ge=1, le=10_000,
                            description="most Lanczos steps (one Hessian-vector product each)")
    tolerance: float = Field(1e-4, gt=0, le=1,
                             description="stop when both eigenvectors' residual |Hv - lambda v| is at most this "
                                         "times the largest |eigenvalue| found")
    samples: int = Field(0, ge=0, description="data points for the Hessian-vector products (a seeded, "
                                              "class-balanced part of the evaluation subset); 0: all of it")


class PlaneSpec(_Strict):
    method: Literal["pca", "random", "hessian", "checkpoints", "interpolate"] = "pca"
    seed: int = Field(0, ge=0, description="seed of the random directions")
    normalization: Literal["filter", "layer", "weight", "none"] = Field(
        "filter", description="rescaling of random directions (Li et al. 2018): random, and the random second "
                              "axis of interpolate and two-checkpoint planes")
    include_biases: bool = Field(False, description="random directions: give biases and other 1-D parameters a "
                                                    "direction too (rescaled as a whole to their norm)")
    orthogonalize: bool = Field(False, description="random: make the second direction exactly orthogonal to the "
                                                   "first, its normalization kept")
    checkpoints: Optional[list[int]] = Field(
        None, description="checkpoints / interpolate: training steps (the nearest snapshot is used), 2 or 3")
    hessian: HessianSpec = HessianSpec()
    span: Optional[Union[float, list[float]]] = Field(
        None, description="half-width of the grid in plane units, one number or [a, b]")
    range: Optional[list[list[float]]] = Field(
        None, description="explicit extents [[a_min, a_max], [b_min, b_max]]")
    margin: float = Field(0.35, ge=0, le=10,
                          description="with neither span nor range: pca and checkpoints fit the trajectory (and "
                                      "the checkpoints) grown by this fraction, hessian a square holding the "
                                      "trajectory grown by it (or the curvature's reach if wider); random uses "
                                      "Li et al.'s [-1, 1], interpolate a in [-0.5, 1.5] and b in [-1, 1]")

    @field_validator("span")
    @classmethod
    def _span(cls, v):
        if v is None:
            return v
        vals = [v] if isinstance(v, (int, float)) else v
        if isinstance(v, list) and len(v) != 2:
            raise ValueError(f"span must be one number or two numbers [a, b], got {len(v)} numbers")
        for x in vals:
            if not x > 0:
                raise ValueError(f"span must be greater than 0, got {x}")
        return v

    @field_validator("range")
    @classmethod
    def _range(cls, v):
        if v is None:
            return v
        if len(v) != 2 or any(len(r) != 2 for r in v):
            raise ValueError("range must be [[a_min, a_max], [b_min, b_max]]")
        for lo, hi in v:
            if not lo < hi:
                raise ValueError(f"each range must have min < max, got [{lo}, {hi}]")
        return v

    @field_validator("checkpoints")
    @classmethod
    def _ckpts(cls, v):
        if v is None:
            return v
        if not 2 <= len(v) <= 3:
            raise ValueError(f"checkpoints must list 2 or 3 training steps, got {len(v)}")
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"checkpoints must be distinct steps of at least 0, got {v}")
        return v

    @model_validator(mode="after")
    def _one_extent(self):
        if self.span is not None and self.range is not None:
            raise ValueError("give either span or range, not both")
        if self.method in ("checkpoints", "interpolate") and self.checkpoints is None:
            example = "2 training steps, e.g. checkpoints: [0, 1500]" if self.method == "interpolate" else \
                "2 or 3 training steps, e.g. checkpoints: [0, 300, 1500]"
            raise ValueError(f"method {self.method!r} needs checkpoints: {example}")
        if self.method == "interpolate" and self.checkpoints is not None and len(self.checkpoints) != 2:
            raise ValueError(f"method 'interpolate' needs exactly 2 checkpoints, [from_step, to_step]; "
                             f"got {len(self.checkpoints)}: {self.checkpoints}")
        if self.method not in ("checkpoints", "interpolate") and self.checkpoints is not None:
            raise ValueError(f"checkpoints are for the methods 'checkpoints' and 'interpolate', not "
                             f"{self.method!r}; remove them or change the method")
        return self


class GridSpec(_Strict):
    resolution: list[int] = Field([1000, 1000], min_length=2, max_length=2,
                                  description="[nx, ny] grid points along the two plane axes")
    eval_samples: int = Field(1024, ge=1, le=1_000_000,
                              description="fixed, seeded subset of the data the loss is evaluated on")
    seed: int = Field(0, ge=0, description="seed of the evaluation subset")
    precision: Literal["fp32", "tf32", "bf16"] = Field(
        "fp32", description="arithmetic of the grid; tf32 and bf16 are for CUDA GPUs (faster, less exact: "
                            "the compute stage measures and stores the difference to fp32)")
    batchnorm: Literal["running", "batch"] = Field(
        "running", description="BatchNorm layers: their running statistics (the trained network as deployed), "
                               "or statistics recomputed from the evaluation data at every grid point")
    accuracy: bool = Field(False, description="also record the classification accuracy at every grid point "
                                              "(grid_accuracy.npy), for render.look.color_by: accuracy")

    @field_validator("resolution")
    @classmethod
    def _res(cls, v):
        for n in v:
            if not 2 <= n <= 8192:
                raise ValueError(f"each resolution must be an integer from 2 to 8192, got {n}")
        return v


class DescentSpec(_Strict):
    """An optimizer run on the loss restricted to the plane, with autograd's exact gradient."""
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    optimizer: Literal["sgd", "momentum", "nesterov", "adam", "rmsprop"] = "sgd"
    lr: float = Field(0.01, gt=0, le=100)
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum and nesterov")
    start: list[float] = Field(min_length=2, max_length=2, description="[a, b] plane coordinates")
    steps: int = Field(300, ge=1, le=1_000_000)

    @field_validator("name")
    @classmethod
    def _not_training(cls, v):
        if v == "training":
            raise ValueError("the name 'training' is the training trajectory's; choose another")
        return v


class SequenceSpec(_Strict):
    """A landscape over training: one grid around each of several training snapshots, the plane
    carried along with the weights (compute/pipeline.py: _sequence)."""
    count: int = Field(24, ge=2, le=400, description="grids, at training snapshots spread over the run")
    spacing: Literal["log", "linear"] = Field(
        "log", description="how the snapshots are spread over the training steps: log makes the fast early "
                           "phase dense, linear spaces them evenly")
    steps: Optional[list[int]] = Field(
        None, min_length=2, max_length=400,
        description="explicit training steps (the nearest recorded snapshot of each), instead of count")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v):
        if v is None:
            return v
        if any(s < 0 for s in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"steps must be increasing training steps of at least 0, got {v}")
        return v


class LandscapeSpec(_Strict):
    data: AnyData = DataSpec()
    model: AnyModel = ModelSpec()
    loss: LossSpec = Field(LossSpec(), description="the loss the landscape is made of")
    train: TrainSpec = TrainSpec()
    weights: Optional[WeightsSpec] = Field(
        None, description="the user's own weights (checkpoint files, one trained model or a recorder's run "
                          "folder) instead of training in the studio")
    plane: PlaneSpec = PlaneSpec()
    grid: GridSpec = GridSpec()
    descents: list[DescentSpec] = Field(default_factory=list, max_length=16)
    sequence: Optional[SequenceSpec] = Field(
        None, description="a grid around each of several training snapshots: the terrain changing as the "
                          "network learns")

    @model_validator(mode="after")
    def _sequence_without_descents(self):
        if self.sequence is not None and self.descents:
            raise ValueError("in-plane descents run on one fixed landscape, and a sequence changes the landscape "
                             "as training goes on; remove landscape.descents or landscape.sequence (a separate "
                             "scene can race optimizers on the final landscape)")
        return self

    @model_validator(mode="after")
    def _trained_or_loaded(self):
        if self.weights is not None and "train" in self.model_fields_set:
            raise ValueError("landscape.train is the studio's own training, and landscape.weights brings weights "
                             "trained elsewhere: remove one of them")
        return self

    @model_validator(mode="after")
    def _loss_fits_data(self):
        d, loss = self.data.name, self.loss.name
        labelled = d in ("spirals", "shapes", "mnist", "fashion_mnist", "cifar10", "imagenette", "folder")
        if labelled and loss not in ("cross_entropy", "nll", "custom"):
            raise ValueError(f"loss {loss!r} needs float targets and {d!r} has class labels; use cross_entropy "
                             f"(or nll for a model that outputs log-probabilities), or your own 'module:function'")
        if d == "regression" and loss in ("cross_entropy", "nll"):
            raise ValueError(f"loss {loss!r} needs class labels and 'regression' data has float targets; use mse, "
                             f"l1 or smooth_l1 (e.g. loss: mse)")
        if self.grid.accuracy and loss not in ("cross_entropy", "nll"):
            raise ValueError(f"grid.accuracy is the fraction classified right, for the losses cross_entropy and nll; "
                             f"with loss {loss!r} there are no classes to count: remove grid.accuracy")
        return self

    @model_validator(mode="after")
    def _images_for_convnet(self):
        m, d = self.model.name, self.data.name
        if m in ("convnet", "resnet", "vgg", "torchvision") and d in ("spirals", "regression"):
            raise ValueError(f"model {m!r} needs image data (shapes, mnist, fashion_mnist, cifar10, "
                             f"imagenette, folder, or custom data that returns images); {d} are points: use "
                             f"model 'mlp'")
        # torchvision's classification models all start with a convolution over 3 channels
        gray = d in ("mnist", "fashion_mnist") or (d == "shapes" and self.data.channels == 1)
        if m == "torchvision" and gray:
            raise ValueError(f"torchvision models take RGB images (3 channels) and {d!r} here is grayscale; "
                             "use shapes with channels: 3, cifar10, imagenette or folder, or model 'resnet' / "
                             "'vgg' (they take any number of channels)")
        return self

    @field_validator("descents")
    @classmethod
    def _unique(cls, v):
        names = [d.name for d in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"descent names must be unique, {dup[0]!r} is used twice")
        return v


# --------------------------------------------------------------------------- render

_HEX = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _check_color(v: str) -> str:
    if not _HEX.match(v):
        raise ValueError(f"a colour must be '#rrggbb' or '#rrggbbaa', got {v!r}")
    return v


#: render.look.background for frames with an alpha channel instead of a background
TRANSPARENT = "transparent"


class LookSpec(_Strict):
    height: Literal["linear", "log", "clip"] = Field(
        "log", description="loss to height: linear, log, or clip (linear, with the top of the scale at the "
                           "clip_quantile of the loss, 0.95 unless given: a flat plateau above it)")
    clip_quantile: Optional[float] = Field(
        None, ge=0.5, le=1, description="the quantile of the finite loss that is the top of the height and "
                                        "colour scale (higher cells are flattened onto it); default 0.995 for "
                                        "linear and log, 0.95 for clip")
    exaggeration: float = Field(0.6, gt=0, le=10, description="height of the terrain relative to its width")
    colormap: str = Field("magma", description="a name from assets/colormaps, or the path of a .csv file "
                                               "(relative to the scene file or the project)")
    color_by: Literal["height", "loss", "accuracy"] = Field(
        "height", description="what the colour shows: the drawn height, the loss on a log scale, or the "
                              "accuracy (needs an accuracy grid in the cache entry)")
    point_units: Literal["pixels", "world"] = Field(
        "pixels", description="pixels: a screen size, scaled with the output height; world: a size in the "
                              "landscape, so points shrink with distance like the terrain")
    point_size: Optional[float] = Field(
        None, gt=0, le=64, description="terrain point size: pixels at 1080p (default 2), or with point_units "
                                       "world the diameter in landscape units (default: the grid spacing)")
    depth_scale: bool = Field(True, description="pixel-sized points grow for near points (0.75x to 3x)")
    background: Union[str, list[str]] = Field(
        "#05060a", description="one colour (the bottom of a faint vertical gradient), [top, bottom], or "
                               "transparent (an alpha channel: PNG frames and stills, mov, webm)")
    supersample: int = Field(1, ge=1, le=3, description="draw at 1, 2 or 3 times the size and shrink with a "
                                                        "box filter: cleaner edges, slower")
    shading: float = Field(0.55, ge=0, le=1, description="strength of the slope shading")
    contours: int = Field(0, ge=0, le=100, description="contour lines: the height cut into this many equal "
                                                       "bands, a thin dark line between each two (0: none)")
    fog: float = Field(0.35, ge=0, le=1, description="how much far points fade into the background")

    @field_validator("background")
    @classmethod
    def _bg(cls, v):
        if isinstance(v, list):
            if len(v) != 2:
                raise ValueError(f"a background gradient is two colours [top, bottom], got {len(v)}")
            for c in v:
                _check_color(c)
            return v
        if isinstance(v, str) and v.strip().lower() == TRANSPARENT:
            return TRANSPARENT
        if isinstance(v, str) and not _HEX.match(v):
            raise ValueError(f"the background is a colour '#rrggbb', a gradient [top, bottom] or 'transparent', "
                             f"got {v!r}")
        return _check_color(v)

    @field_validator("colormap")
    @classmethod
    def _cmap(cls, v):
        from studio.assets import colormap_names, is_colormap_file
        if is_colormap_file(v):
            return v            # the file itself is checked by load_scene (it knows the scene's folder)
        names = colormap_names()
        if v not in names:
            close = difflib.get_close_matches(v, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown colormap {v!r}; allowed: {', '.join(names)}, or the path of a .csv "
                             f"file{hint}")
        return v

    # (run only for values the scene gives; the units come first in the class, so they are known here)
    @field_validator("point_size")
    @classmethod
    def _world_size(cls, v, info: ValidationInfo):
        if v is not None and info.data.get("point_units") == "world" and v > 0.5:
            raise ValueError("with point_units: world the size is in landscape units (the terrain is 2 units "
                             "wide): give at most 0.5, e.g. 0.004, or leave it out for the grid spacing")
        return v

    @field_validator("depth_scale")
    @classmethod
    def _world_depth(cls, v, info: ValidationInfo):
        if not v and info.data.get("point_units") == "world":
            raise ValueError("depth_scale: false is for point_units: pixels; points with world units always "
                             "shrink with distance (they have a size in the landscape)")
        return v

    @property
    def transparent(self) -> bool:
        """No background: frames carry an alpha channel (``background: transparent``)."""
        return self.background == TRANSPARENT

    def background_colors(self) -> tuple[str, str] | tuple[str]:
        """(top, bottom) of an explicit gradient, or (bottom,) for one colour (black when
        transparent: what the colour channels of a fogged point fade towards)."""
        if self.transparent:
            return ("#000000", "#000000")
        return tuple(self.background) if isinstance(self.background, list) else (self.background,)


class PathStyle(_Strict):
    color: str = "#ffffff"
    width: float = Field(6.0, gt=0, le=64, description="trail thickness in pixels at 1080p")
    label: Optional[str] = None
    start: float = Field(0.0, ge=0, description="second at which the trail starts growing")
    end: Optional[float] = Field(None, gt=0, description="second at which it is complete (default: 85% of the film)")

    @field_validator("color")
    @classmethod
    def _c(cls, v):
        return _check_color(v)


EASINGS = ("linear", "in", "out", "in_out", "hold")


class CameraKey(_Strict):
    t: float = Field(ge=0, description="time in seconds")
    target: Optional[list[float]] = Field(None, min_length=3, max_length=3,
                                          description="point looked at, in landscape units")
    azimuth: Optional[float] = Field(None, description="degrees around the vertical axis")
    elevation: Optional[float] = Field(None, ge=-89, le=89, description="degrees above the horizon")
    distance: Optional[float] = Field(None, gt=0, le=1000)
    fov: Optional[float] = Field(None, gt=1, lt=170, description="vertical field of view in degrees")
    roll: Optional[float] = Field(None, ge=-180, le=180)
    ease: Literal["linear", "in", "out", "in_out", "hold"] = Field(
        "linear", description="easing of the segment that ends at this keyframe (see render/camera.py)")


#: the shots a render.camera entry may be (``shot: NAME``), besides a plain keyframe (``t: ...``)
SHOTS = ("orbit", "dolly", "zoom", "crane", "follow")


class _Shot(_Strict):
    """A camera move over [from, to]: it starts from the values carried from the entries before it,
    starts and ends at rest, and its end values are carried on (render/camera.py)."""
    shot: str
    start: float = Field(ge=0, alias="from", description="second the shot starts")
    end: float = Field(gt=0, le=3600, alias="to", description="second it ends")

    #: the camera values (channels) the shot moves; the follow shot adds the ones it is given
    moves: ClassVar[tuple[str, ...]] = ()

    def channels(self) -> tuple[str, ...]:
        return self.moves

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise ValueError(f"'to' ({self.end:g}) must be later than 'from' ({self.start:g})")
        ramp = getattr(self, "ramp", None)
        if ramp is not None and ramp > (self.end - self.start) / 2:
            raise ValueError(f"ramp ({ramp:g} s) must be at most half the shot ({self.start:g} to "
                             f"{self.end:g}: {(self.end - self.start) / 2:g} s)")
        return self


class OrbitShot(_Shot):
    """Turn the azimuth around the current target by an angle (any amount)."""
    shot: Literal["orbit"]
    turns: Optional[float] = Field(None, ge=-100, le=100, description="whole turns; positive: counterclockwise "
                                                                     "seen from above")
    degrees: Optional[float] = Field(None, ge=-36000, le=36000, description="the same in degrees")
    ramp: Optional[float] = Field(None, gt=0, description="seconds up to speed and back to rest "
                                                          "(default: half the shot)")
    moves: ClassVar[tuple[str, ...]] = ("azimuth",)

    @model_validator(mode="after")
    def _angle(self):
        if (self.turns is None) == (self.degrees is None):
            raise ValueError("an orbit needs turns (e.g. turns: 0.5) or degrees (e.g. degrees: 180): "
                             + ("not both" if self.turns is not None else "one of them"))
        return self


class DollyShot(_Shot):
    """Move the camera to a distance from the target (at an even rate in scale)."""
    shot: Literal["dolly"]
    distance: float = Field(gt=0, le=1000, description="distance from the target at the end")
    ramp: Optional[float] = Field(None, gt=0)
    moves: ClassVar[tuple[str, ...]] = ("distance",)


class ZoomShot(_Shot):
    """Change the field of view (at an even rate in apparent size)."""
    shot: Literal["zoom"]
    fov: float = Field(gt=1, lt=170, description="vertical field of view at the end, degrees")
    ramp: Optional[float] = Field(None, gt=0)
    moves: ClassVar[tuple[str, ...]] = ("fov",)


class CraneShot(_Shot):
    """Sweep the elevation."""
    shot: Literal["crane"]
    elevation: float = Field(ge=-89, le=89, description="degrees above the horizon at the end")
    ramp: Optional[float] = Field(None, gt=0)
    moves: ClassVar[tuple[str, ...]] = ("elevation",)


class FollowShot(_Shot):
    """The target rides the head of a trail (render/camera.py: lag, leash, blend)."""
    shot: Literal["follow"]
    path: str = Field(min_length=1, description="'training' or a name under landscape.descents")
    distance: Optional[float] = Field(None, gt=0, le=1000, description="from the head (default: carried)")
    azimuth: Optional[float] = Field(None, description="degrees, as a keyframe's (default: carried)")
    heading: Optional[float] = Field(None, ge=-180, le=180,
                                     description="azimuth relative to the head's direction of travel: 0 "
                                                 "right behind it, positive counterclockwise seen from above")
    elevation: Optional[float] = Field(None, ge=-89, le=89, description="degrees (default: carried)")
    lag: float = Field(0.4, ge=0, le=10, description="seconds the target trails the head by (smoothing)")
    blend: float = Field(1.0, gt=0, le=60, description="seconds to blend in at the start and to come to "
                                                       "rest at the end")
    moves: ClassVar[tuple[str, ...]] = ("target",)

    def channels(self) -> tuple[str, ...]:
        out = ["target"]
        if self.azimuth is not None or self.heading is not None:
            out.append("azimuth")
        if self.elevation is not None:
            out.append("elevation")
        if self.distance is not None:
            out.append("distance")
        return tuple(out)

    @model_validator(mode="after")
    def _follow(self):
        if self.azimuth is not None and self.heading is not None:
            raise ValueError("give azimuth (absolute) or heading (relative to the direction of travel), "
                             "not both")
        if self.blend > (self.end - self.start) / 2:
            raise ValueError(f"blend ({self.blend:g} s) must be at most half the shot ({self.start:g} to "
                             f"{self.end:g}: {(self.end - self.start) / 2:g} s)")
        return self


_CAMERA_MODELS = {"keyframe": CameraKey, "orbit": OrbitShot, "dolly": DollyShot, "zoom": ZoomShot,
                  "crane": CraneShot, "follow": FollowShot}


def _camera_entry_kind(v: Any) -> str:
    """Which model validates a render.camera entry: a keyframe, or the shot its ``shot`` names
    (an unknown name, or from/to without shot, is reported by _format_error)."""
    if isinstance(v, dict):
        if "shot" in v:
            s = v["shot"]
            return s if isinstance(s, str) and s in SHOTS else "unknown shot"
        if "t" not in v and ("from" in v or "to" in v):
            return "shot without a name"
        return "keyframe"
    if isinstance(v, BaseModel):
        return getattr(v, "shot", "keyframe")
    return "keyframe"


CameraEntry = Annotated[Union[tuple(Annotated[m, Tag(k)] for k, m in _CAMERA_MODELS.items())],
                        Discriminator(_camera_entry_kind)]


class Caption(_Strict):
    text: str = Field(min_length=1)
    start: float = Field(ge=0, alias="from")
    end: float = Field(gt=0, alias="to")
    subtitle: Optional[str] = Field(None, min_length=1, description="a second, smaller line under the text")
    position: Literal["bottom", "top", "center", "lower_third"] = Field(
        "bottom", description="lower_third: a left-aligned block (text bold, subtitle under it) at the bottom "
                              "left, above the read-out")
    size: float = Field(36, gt=4, le=400, description="font size in pixels at 1080p")
    fade: float = Field(0.6, ge=0, le=10, description="seconds of fade in and out")

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise ValueError(f"'to' ({self.end}) must be later than 'from' ({self.start})")
        return self


#: names render.size (and the render CLI's --size) accept for [width, height]
SIZE_PRESETS = {"720p": [1280, 720], "1080p": [1920, 1080], "1440p": [2560, 1440], "4k": [3840, 2160]}


class RenderSpec(_Strict):
    size: Union[Literal["720p", "1080p", "1440p", "4k"], Annotated[list[int], Field(min_length=2, max_length=2)]] = \
        Field([1920, 1080], description="[width, height] in pixels, or a preset name: 720p, 1080p, 1440p, 4k "
                                        "(validated to the [width, height] it stands for)")
    fps: int = Field(30, ge=1, le=240)
    duration: float = Field(14.0, gt=0, le=3600, description="seconds")
    look: LookSpec = LookSpec()
    paths: dict[str, PathStyle] = Field(default_factory=lambda: {"training": PathStyle()})
    camera: list[CameraEntry] = Field(
        default_factory=list, description="keyframes (t: ...) and shots (shot: orbit, dolly, zoom, crane, follow)")
    captions: list[Caption] = Field(default_factory=list)
    title_card: bool = Field(True, description="show the scene title over the first seconds")
    loop: Optional[float] = Field(
        None, gt=0, description="a film that loops without a seam: its first this many seconds dissolve "
                                "from its last moment into its beginning (for installations); none: no loop")

    @field_validator("loop")
    @classmethod
    def _loop(cls, v, info: ValidationInfo):
        duration = info.data.get("duration")
        if v is not None and duration is not None and v > duration / 2:
            raise ValueError(f"the loop's dissolve takes at most half the film (render.duration {duration:g} s): "
                             f"at most {duration / 2:g} s, got {v:g}")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v):
        if isinstance(v, str):
            return list(SIZE_PRESETS[v])
        for n in v:
            if not 16 <= n <= 8192:
                raise ValueError(f"each size must be an integer from 16 to 8192, got {n}")
            if n % 2:
                raise ValueError(f"each size must be even (H.264 yuv420p needs it), got {n}")
        return v

    @field_validator("camera")
    @classmethod
    def _keys(cls, v):
        ts = [k.t for k in v if isinstance(k, CameraKey)]
        if any(b <= a for a, b in zip(ts, ts[1:])):
            raise ValueError(f"keyframe times must increase strictly, got {ts}")
        return v


#: the film formats and their files' suffixes (``png`` is a directory of frames instead)
FILM_FORMATS = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "gif": ".gif"}
#: the formats that carry an alpha channel (render.look.background: transparent)
ALPHA_FORMATS = ("png", "mov", "webm")


def frames_path(film: Path, fmt: str) -> Path:
    """``film`` (a path of the scene's own format) for format ``fmt``: the same name with that
    format's suffix, or for ``png`` the directory ``<name>_frames``."""
    base = film.name.removesuffix("_frames") if film.suffix == "" else film.stem
    return film.with_name(f"{base}_frames" if fmt == "png" else base + FILM_FORMATS[fmt])


class OutputSpec(_Strict):
    format: Literal["mp4", "mov", "webm", "gif", "png"] = Field(
        "mp4", description="mp4: H.264, plays everywhere; mov: Apple ProRes 422 HQ (10-bit 4:2:2), for editing; "
                           "webm: VP9, for web pages; gif: an animated GIF for slides; png: a directory of "
                           "numbered PNG frames")
    path: Optional[str] = Field(None, description="default: out/<scene name>.<format>, or the directory "
                                                  "out/<scene name>_frames for png")
    crf: int = Field(18, ge=0, le=51, description="quality, lower is better: x264's (mp4) and VP9's (webm)")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"] = Field(
        "medium", description="x264 speed against size (mp4)")

    @field_validator("path")
    @classmethod
    def _path(cls, v, info: ValidationInfo):
        if v is None:
            return v
        fmt = info.data.get("format", "mp4")
        suffix = Path(v).suffix.lower()
        if fmt in FILM_FORMATS and suffix != FILM_FORMATS[fmt]:
            raise ValueError(f"with format: {fmt} the output path must end in {FILM_FORMATS[fmt]} (or set format to "
                             f"{', '.join(f for f in FILM_FORMATS if f != fmt)} or png, a directory of PNG frames)")
        if fmt == "png" and suffix in (*FILM_FORMATS.values(), ".png"):
            raise ValueError("with format: png the output is a directory of frames; give a directory path "
                             "such as out/name_frames")
        return v


# --------------------------------------------------------------------------- compare

class PanelSpec(_Strict):
    """One landscape of a comparison film: the scene's own landscape with this panel's changes."""
    caption: Optional[str] = Field(None, min_length=1, max_length=200,
                                   description="shown in the panel (split) or over its part of the film "
                                               "(sequence)")
    landscape: dict[str, Any] = Field(
        default_factory=dict, description="keys laid over the scene's landscape: section (mappings merge key "
                                          "by key, anything else, lists included, replaces); validated as a "
                                          "whole landscape")


class CompareSpec(_Strict):
    """Two to four landscapes in one film (render/compare.py)."""
    layout: Literal["split", "sequence"] = Field(
        "split", description="split: side by side (2) or a 2x2 grid (3, 4), the cameras in step; sequence: one "
                             "after another, each with the whole camera flight, crossfading")
    shared_scale: bool = Field(True, description="one height and colour scale for all panels, so equal losses "
                                                 "look equal; false: each panel its own")
    transition: float = Field(1.0, ge=0, le=10, description="sequence: seconds of crossfade between panels")
    panels: list[PanelSpec] = Field(min_length=2, max_length=4)


class Scene(_Strict):
    title: str = ""
    landscape: LandscapeSpec = LandscapeSpec()
    render: RenderSpec = RenderSpec()
    output: OutputSpec = OutputSpec()
    compare: Optional[CompareSpec] = Field(
        None, description="a comparison film: two to four landscapes, each the landscape section with a "
                          "panel's changes")

    # set by load_scene, not part of the file
    source: str = Field("", exclude=True)

    @property
    def name(self) -> str:
        return Path(self.source).stem if self.source else "scene"

    def output_path(self, root: Path | None = None) -> Path:
        """The film (``out/<name>.mp4``, or the suffix of ``output.format``) or, with ``output.format:
        png``, the frames' directory (``out/<name>_frames``), unless ``output.path`` says otherwise."""
        default = frames_path(Path(f"{self.name}.mp4"), self.output.format)
        p = Path(self.output.path) if self.output.path else Path("out") / default
        return p if p.is_absolute() or root is None else root / p

    def landscape_dict(self) -> dict:
        """The resolved landscape section (defaults filled in), as plain data."""
        return self.landscape.model_dump(mode="json")

    def cache_key(self) -> str:
        """Key of the grid entry: the landscape section without its descents (those are computed
        on top of a cached grid in seconds, so editing them never recomputes the grid), and what
        the section names only by reference (:meth:`inputs`).

        Only values that differ from their defaults enter the hash: writing a default out or
        leaving it away gives the same key, and a new key with a default added to the schema
        keeps every existing entry valid.  A change of what a value means bumps FORMAT_VERSION."""
        section = grid_section(self.landscape.model_dump(mode="json", exclude_defaults=True))
        inputs = self.inputs()
        return landscape_key(dict(section, inputs=inputs) if inputs else section)

    def inputs(self, sections: tuple[str, ...] = ("data", "model", "loss", "weights")) -> dict[str, str]:
        """Digests of what the landscape names by reference (studio/fingerprint.py): the source
        file of each ``module:function`` entry (custom data, model, loss), so editing one's code
        recomputes, and the contents of the user's weight files, so a retrained run under the same
        names recomputes and a touched or moved one does not.  Empty for a scene with neither."""
        from studio.fingerprint import files_digest, source_digest, weights_files
        ls = self.landscape
        folder = Path(self.source).resolve().parent if self.source else None
        out = {}
        for section in ("data", "model", "loss"):
            entry = getattr(getattr(ls, section), "entry", None)
            if section in sections and entry:
                digest = source_digest(entry, folder)
                if digest:
                    out[f"{section}_source"] = digest
        if "weights" in sections and ls.weights is not None:
            out["weights"] = files_digest(weights_files(ls.weights.model_dump(), Path.cwd()))
        return out

    def train_key(self) -> str:
        """Key of the trained model (``cache/models/KEY``, studio/cache.py): the data, model and train
        sections and the evaluation subset the training log is measured on (grid.eval_samples,
        grid.seed), hashed as cache_key() hashes (defaults left out), so scenes that differ only
        in the plane, the grid's resolution or the descents share one training run."""
        ls = self.landscape.model_dump(mode="json", exclude_defaults=True)
        part = {k: ls[k] for k in ("data", "model", "train") if k in ls}
        grid = ls.get("grid", {})
        part["eval"] = {k: grid[k] for k in ("eval_samples", "seed") if k in grid}
        if "loss" in ls:
            part["loss"] = ls["loss"]
        inputs = self.inputs(("data", "model", "loss"))
        if inputs:
            part["inputs"] = inputs
        canon = json.dumps({"format": FORMAT_VERSION, "trained_model": part}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def panels(self) -> list[tuple[str, "Scene"]]:
        """The comparison's panels as (caption, scene): each a copy of this scene with the panel's
        merged landscape (so its cache_key() is the panel's grid entry) and no compare section.
        Empty for a scene without ``compare:``."""
        if self.compare is None:
            return []
        out = []
        for p in self.compare.panels:
            spec = LandscapeSpec.model_validate(panel_landscape(self.landscape, p.landscape))
            out.append((p.caption or "", self.model_copy(update={"landscape": spec, "compare": None})))
        return out


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` laid on ``base``: mappings merge key by key, recursively; anything else (a list,
    a number, text) replaces.  Neither argument is changed."""
    import copy
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def panel_landscape(base: LandscapeSpec, over: dict) -> dict:
    """A compare panel's landscape section as plain data: the keys the scene gave its landscape
    with the panel's laid over them (deep_merge).  A panel that names another kind of data set or
    model (``data.name``, ``model.name``) replaces that section instead: the keys of one kind do
    not fit another."""
    given = base.model_dump(exclude_unset=True, by_alias=True)
    over = dict(over)
    for (_, section), _kinds in _TAGGED.items():
        mine = over.get(section)
        if isinstance(mine, dict) and "name" in mine and mine["name"] != getattr(base, section).name:
            given.pop(section, None)
    return deep_merge(given, over)


def grid_section(landscape: dict) -> dict:
    """The part of a resolved landscape section that determines the grid entry."""
    return {k: v for k, v in landscape.items() if k != "descents"}


def landscape_key(landscape: dict) -> str:
    """Hash of the canonical JSON of a resolved landscape section plus the format version."""
    canon = json.dumps({"format": FORMAT_VERSION, "landscape": landscape},
                       sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading and errors

class _Loader(yaml.SafeLoader):
    """Safe YAML, plus numbers like ``1e-3`` read as floats (YAML 1.1 wants ``1.0e-3``;
    PyYAML would hand a learning rate written ``1e-3`` over as the text "1e-3")."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _duplicate_key(node, loc: tuple = (), _seen: set | None = None):
    """(dotted key, first key node, repeated key node) for the first key given twice in a mapping."""
    _seen = set() if _seen is None else _seen
    if id(node) in _seen:                        # an alias: its node was checked where it was defined
        return None
    _seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else None
            if name is not None and name in seen:
                return _dotted(loc + (name,)), seen[name], k
            if name is not None:
                seen[name] = k
            found = _duplicate_key(v, loc + (name,), _seen)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found = _duplicate_key(v, loc + (i,), _seen)
            if found:
                return found
    return None


def parse_overrides(items: "list[str] | tuple[str, ...]") -> list[tuple[tuple[str, ...], Any]]:
    """``KEY=VALUE`` strings from the command line (``--set landscape.grid.resolution=[150,150]``)
    -> (dotted key as a tuple, value read as YAML)."""
    out = []
    for item in items:
        key, eq, text = item.partition("=")
        parts = tuple(key.strip().split("."))
        if not eq or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in parts):
            raise SceneError(f"--set {item}: give KEY=VALUE with a dotted key, e.g. "
                             f"--set landscape.grid.resolution=[150,150] or --set render.duration=8")
        try:
            value = yaml.load(text, Loader=_Loader) if text.strip() else None
        except yaml.YAMLError as e:
            raise SceneError(f"--set {item}: the value is not valid YAML ({getattr(e, 'problem', None) or e})") from None
        out.append((parts, value))
    return out


def _apply_overrides(path: Path, raw: dict, overrides) -> dict:
    import copy
    raw = copy.deepcopy(raw)
    for parts, value in overrides:
        d = raw
        for i, p in enumerate(parts[:-1]):
            nxt = d.get(p)
            if nxt is None:
                nxt = d[p] = {}
            if not isinstance(nxt, dict):
                raise SceneError(f"{path} (--set {'.'.join(parts)}): {'.'.join(parts[:i + 1])} is "
                                 f"{type(nxt).__name__}, not a mapping of keys; set it whole instead")
            d = nxt
        d[parts[-1]] = value
    return raw


def load_scene(path: str | Path, overrides: "list[str] | tuple[str, ...]" = ()) -> Scene:
    """The validated scene of file ``path``; ``overrides``: ``KEY=VALUE`` strings (the command
    lines' ``--set``) laid over the file's values before validation, so a scene can be run at
    other settings (a smaller grid on a CPU) without editing it; they enter the cache key like
    any value of the file."""
    path = Path(path)
    if not path.is_file():
        raise SceneError(f"{path}: scene file not found (give the path of a .yaml file, e.g. scenes/default.yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SceneError(f"{path}: not a UTF-8 text file (byte {e.start}); a scene is a YAML text file") from None
    except OSError as e:
        raise SceneError(f"{path}: cannot read the scene file ({e.strerror or e})") from None
    return _load_text(path, text, overrides)


def scene_from_dict(data: dict, name: str = "scene", overrides: "list[str] | tuple[str, ...]" = ()) -> Scene:
    """A scene given as Python data (a notebook's dict) instead of a file: the same validation and
    errors as :func:`load_scene`, with ``name`` standing for the file (``out/<name>.mp4``); custom
    entries are found in the working directory."""
    if not isinstance(data, dict):
        raise SceneError(f"{name}: a scene is a mapping of keys (title, landscape, render, output), got "
                         f"{type(data).__name__}")
    return _load_text(Path(f"{name}.yaml"), yaml.safe_dump(data, sort_keys=False), overrides)


def _load_text(path: Path, text: str, overrides: "list[str] | tuple[str, ...]") -> Scene:
    ov = parse_overrides(overrides)
    try:
        node = yaml.compose(text, Loader=_Loader)
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise SceneError(f"{where}: YAML syntax error: {problem}") from None
    dup = _duplicate_key(node)
    if dup is not None:
        key, first, again = dup
        raise SceneError(f"{path}:{again.start_mark.line + 1}: {key}: duplicate key (first given on line "
                         f"{first.start_mark.line + 1}); give each key once")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SceneError(f"{path}:1: the scene must be a mapping of keys (title, landscape, render, output), "
                         f"got {type(raw).__name__}")
    if ov:
        raw = _apply_overrides(path, raw, ov)
    try:
        scene = Scene.model_validate(raw)
    except ValidationError as e:
        msg = _format_error(path, node, e)
        loc = tuple(str(x) for x in e.errors()[0]["loc"])
        for parts, _ in ov:                 # the bad value came from the command line, not the file
            if loc[:len(parts)] == parts or parts[:len(loc)] == loc:
                msg = re.sub(rf"^{re.escape(str(path))}(:\d+)*:", f"{path} (--set {'.'.join(parts)}):", msg)
                break
        raise SceneError(msg) from None
    _check_alpha(path, scene, overrides)
    if scene.compare is None:
        _check_references(path, node, scene)
        _check_camera(path, node, scene)
    else:                                   # the same checks, on each panel's merged landscape
        _check_panels(path, node, scene)
    for i, (_, sc) in enumerate(scene.panels() or [("", scene)]):
        _check_weights(path, node, sc, overrides, i if scene.compare is not None else None)
    scene = _resolve_files(path, node, scene)
    return scene.model_copy(update={"source": str(path)})


def _resolve_files(path: Path, root, scene: "Scene") -> "Scene":
    """A colormap given as a file: found relative to the scene's folder or the project, parsed and
    checked now (errors name the scene line and the colormap file's line); the scene keeps its
    absolute path, so the render stage reads the same file from any working directory."""
    from studio.assets import ColormapError, is_colormap_file, load_colormap_file, resolve_colormap_file
    look = scene.render.look
    if not is_colormap_file(look.colormap):
        return scene
    node = _node_at(root, ("render", "look", "colormap"))
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    try:
        found = resolve_colormap_file(look.colormap, path.parent)
        load_colormap_file(found)
    except ColormapError as e:
        raise SceneError(f"{path}{line}: render.look.colormap: bad value {json.dumps(look.colormap)}: {e}") from None
    look = look.model_copy(update={"colormap": str(found)})
    return scene.model_copy(update={"render": scene.render.model_copy(update={"look": look})})


def load_scene_or_report(path: str | Path, overrides: "list[str] | tuple[str, ...]" = ()) -> "Scene | None":
    """For the command lines: the scene, or None after printing its one-line error to stderr."""
    import sys
    try:
        return load_scene(path, overrides)
    except SceneError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def alpha_problem(scene: "Scene", fmt: str | None = None) -> str | None:
    """Why ``background: transparent`` cannot be drawn, for a comparison or in film format ``fmt``
    (None: the format is not known yet; the render stage asks with the one it writes), or None."""
    if not scene.render.look.transparent:
        return None
    if scene.compare is not None:
        return "transparent is for single films; a comparison (compare:) needs a background colour"
    if fmt is not None and fmt not in ALPHA_FORMATS:
        return (f"transparent needs a format with an alpha channel: png, mov or webm (output.format or "
                f"render --format), and {fmt} has none")
    return None


def transparency_error(path: str | Path, scene: "Scene", fmt: str | None = None,
                       overrides: "list[str] | tuple[str, ...]" = ()) -> str | None:
    """``alpha_problem`` as a scene error message with the file and line of the background."""
    problem = alpha_problem(scene, fmt)
    return None if problem is None else locate_error(
        path, f"render.look.background: bad value 'transparent': {problem}", overrides)


def _check_alpha(path: Path, scene: "Scene", overrides) -> None:
    msg = transparency_error(path, scene, None, overrides)
    if msg is not None:
        raise SceneError(msg)


def locate_error(path: str | Path, message: str, overrides: "list[str] | tuple[str, ...]" = (),
                 panel: int | None = None) -> str:
    """A later stage's error about a scene key (``"landscape.model.arch: bad value ..."``, raised
    where only building the model or reading the data can tell) with the file and line of that
    key, as a load-time error has them: ``FILE:LINE: key: ...``, ``FILE (--set key): ...`` when the
    value came from the command line, and for comparison panel ``panel`` the panel's own key where
    the panel sets it (``compare.panels[i].landscape...``)."""
    m = re.match(r"((?:landscape|render|output)(?:\.[A-Za-z_]\w*)*): ", message)
    if m is None:
        return f"{path}: " + (f"compare.panels[{panel}]: " if panel is not None else "") + message
    loc = tuple(m.group(1).split("."))
    for parts, _ in parse_overrides(overrides):
        if loc[:len(parts)] == parts or parts[:len(loc)] == loc:
            return f"{path} (--set {'.'.join(parts)}): {message}"
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return f"{path}: {message}"
    if panel is not None:
        inside = ("compare", "panels", panel) + loc
        node = _node_at(root, inside)
        if node is not _node_at(root, inside[:-1]) or len(loc) == 1:       # the panel sets this key itself
            line = f":{node.start_mark.line + 1}" if node is not None and node.start_mark is not None else ""
            return f"{path}{line}: compare.panels[{panel}].{message}"
    node = _node_at(root, loc)
    line = f":{node.start_mark.line + 1}" if node is not None and node.start_mark is not None else ""
    return f"{path}{line}: " + (f"compare.panels[{panel}]: " if panel is not None else "") + message


def _check_weights(path: Path, root, scene: "Scene", overrides, panel: int | None) -> None:
    """The user's weight files exist and can be read for the cache key (studio/fingerprint.py)."""
    w = scene.landscape.weights
    if w is None:
        return
    from studio.fingerprint import weights_files
    try:
        weights_files(w.model_dump(), Path.cwd())
    except (ValueError, OSError) as e:
        key = "run" if w.run is not None else "final" if "final" in str(e) and w.files is not None and \
            isinstance(w.final, str) and repr(w.final) in str(e) else "files"
        raise SceneError(locate_error(path, f"landscape.weights.{key}: {e}", overrides, panel)) from None


def _check_train(path: Path, root, scene: "Scene") -> None:
    """The train section's checks that need the run's length (with epochs, the data's size)."""
    total = train_steps(scene.landscape)
    problem = train_run_problem(scene.landscape.train.model_dump(), total) if total is not None else None
    if problem is not None:
        key, msg = problem
        node = _node_at(root, ("landscape", "train", key))
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        value = getattr(scene.landscape.train, key)
        raise SceneError(f"{path}{line}: landscape.train.{key}: bad value {json.dumps(value)}: {msg}")


def _check_references(path: Path, root, scene: "Scene") -> None:
    """Checks across sections: every trail in render.paths names a path the landscape makes; plane
    checkpoints are steps of the training run."""
    _check_train(path, root, scene)
    last = train_steps(scene.landscape)
    seq = scene.landscape.sequence
    given = "epochs" if scene.landscape.train.epochs else "steps"
    for loc, steps, must in ((("plane", "checkpoints"), scene.landscape.plane.checkpoints, "a checkpoint must be a step"),
                             (("sequence", "steps"), seq.steps if seq is not None else None, "a step must be")):
        late = [s for s in (steps or []) if s > last] if last is not None else []
        if late:
            node = _node_at(root, ("landscape",) + loc + (steps.index(late[0]),))
            line = f":{node.start_mark.line + 1}" if node is not None else ""
            raise SceneError(f"{path}{line}: landscape.{'.'.join(loc)}: bad value {late[0]}: training runs "
                             f"{last} steps (landscape.train.{given}), so {must} from 0 to {last}")
    known = ["training"] + [d.name for d in scene.landscape.descents]
    for k in scene.render.paths:
        if k not in known:
            node = _key_node(root, ("render", "paths", k))
            line = f":{node.start_mark.line + 1}" if node is not None else ""
            close = difflib.get_close_matches(k, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SceneError(f"{path}{line}: render.paths: unknown path {k!r}; allowed: 'training' and the "
                             f"names under landscape.descents ({', '.join(known)}){hint}")


def _check_camera(path: Path, root, scene: "Scene") -> None:
    """Checks across render.camera entries (and sections): a follow shot names a path the landscape
    makes; shots that move the same value do not overlap in time; no keyframe sets a value strictly
    inside a shot that moves it."""
    entries = scene.render.camera

    def line_of(*loc) -> str:
        node = _node_at(root, ("render", "camera") + loc)
        return f":{node.start_mark.line + 1}" if node is not None else ""

    def name(i: int, e) -> str:
        return f"the {e.shot} shot render.camera[{i}] (line {line_of(i)[1:]}, from {e.start:g} to {e.end:g})"

    known = ["training"] + [d.name for d in scene.landscape.descents]
    for i, e in enumerate(entries):
        if isinstance(e, FollowShot) and e.path not in known:
            close = difflib.get_close_matches(e.path, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SceneError(f"{path}{line_of(i, 'path')}: render.camera[{i}].path: unknown path {e.path!r}; "
                             f"allowed: 'training' and the names under landscape.descents "
                             f"({', '.join(known)}){hint}")
    shots = [(i, e) for i, e in enumerate(entries) if isinstance(e, _Shot)]
    for n, (i, a) in enumerate(shots):
        for j, b in shots[n + 1:]:
            both = [c for c in a.channels() if c in b.channels()]
            if both and a.start < b.end and b.start < a.end:
                raise SceneError(
                    f"{path}{line_of(j)}: render.camera[{j}]: the {b.shot} shot from {b.start:g} to {b.end:g} "
                    f"moves the {both[0]}, and so does {name(i, a)}; shots that move the same value may not "
                    f"overlap in time (one may start where the other ends)")
    for k, key in enumerate(entries):
        if not isinstance(key, CameraKey):
            continue
        for i, s in shots:
            for c in s.channels():
                if getattr(key, c) is not None and s.start < key.t <= s.end:
                    raise SceneError(
                        f"{path}{line_of(k, c)}: render.camera[{k}].{c}: the keyframe at t={key.t:g} sets {c} "
                        f"inside {name(i, s)}, which moves it; leave {c} out of this keyframe, or move the "
                        f"keyframe out of the shot (at the shot's 'from' it sets where the shot starts)")


def _check_panels(path: Path, root, scene: "Scene") -> None:
    """A comparison's panels: each merged landscape validates as a whole landscape section, every
    path render.paths draws and every follow shot rides exists in each panel, and the checks across
    sections hold for each.  Errors name compare.panels[i] and the line of the panel's value."""
    cmp = scene.compare
    n = len(cmp.panels)

    def line(node) -> str:
        return f":{node.start_mark.line + 1}" if node is not None and node.start_mark is not None else ""

    def child(node, key):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    return v
        return None

    slot = scene.render.duration / n
    if cmp.layout == "sequence" and cmp.transition > slot:
        raise SceneError(f"{path}{line(_node_at(root, ('compare', 'transition')))}: compare.transition: bad value "
                         f"{cmp.transition:g}: each of the {n} panels has {slot:g} s of the "
                         f"{scene.render.duration:g} s film (render.duration shared out), and the crossfade must "
                         f"fit in that; shorten it or lengthen render.duration")
    first = None
    for i, p in enumerate(cmp.panels):
        pnode = _node_at(root, ("compare", "panels", i))
        lnode = child(pnode, "landscape") or pnode
        # the panel's landscape node stands in for the scene's, so lines point into the panel
        fake = yaml.MappingNode("tag:yaml.org,2002:map",
                                [(yaml.ScalarNode("tag:yaml.org,2002:str", "landscape"), lnode)],
                                start_mark=lnode.start_mark)
        try:
            spec = Scene.model_validate({"landscape": panel_landscape(scene.landscape, p.landscape)}).landscape
        except ValidationError as e:
            raise SceneError(_in_panel(path, _format_error(path, fake, e), i)) from None
        ps = scene.model_copy(update={"landscape": spec, "compare": None})
        known = ["training"] + [d.name for d in spec.descents]
        where = line(child(lnode, "descents") or lnode)
        for k in scene.render.paths:
            if k not in known:
                raise SceneError(f"{path}{where}: compare.panels[{i}]: render.paths draws {k!r}, and this panel's "
                                 f"landscape makes no path of that name (it makes: {', '.join(known)}); give it a "
                                 f"descent named {k!r} (under landscape.descents, or the panel's own) or remove "
                                 f"{k!r} from render.paths")
        for j, e in enumerate(scene.render.camera):
            if isinstance(e, FollowShot) and e.path not in known:
                raise SceneError(f"{path}{where}: compare.panels[{i}]: render.camera[{j}] follows {e.path!r}, and "
                                 f"this panel's landscape makes no path of that name (it makes: "
                                 f"{', '.join(known)})")
        try:
            _check_references(path, fake, ps)
        except SceneError as e:
            raise SceneError(_in_panel(path, str(e), i)) from None
        first = first or ps
    _check_camera(path, root, first)


def _in_panel(path: Path, msg: str, i: int) -> str:
    """A message about a landscape section, reworded for compare.panels[i]'s merged landscape:
    each dotted key ``landscape...`` becomes ``compare.panels[i].landscape...``."""
    m = re.match(re.escape(str(path)) + r"(?::\d+)?: ", msg)
    head, rest = (m.group(0), msg[m.end():]) if m else ("", msg)
    return head + re.sub(r"(?<![\w.\[])landscape(?=[.\[:'])", f"compare.panels[{i}].landscape", rest)


def _node_at(node, loc: tuple) -> Any:
    """The YAML node at a pydantic error location (for line numbers); the deepest one found."""
    found = node
    for part in loc:
        if isinstance(found, yaml.MappingNode):
            nxt = None
            for k, v in found.value:
                if k.value == part:
                    nxt = v
                    break
            if nxt is None:
                return found
            found = nxt
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int) and part < len(found.value):
            found = found.value[part]
        else:
            return found
    return found


def _key_node(node, loc: tuple):
    """For an unknown key, the node of the key itself."""
    parent = _node_at(node, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _ in parent.value:
            if k.value == loc[-1]:
                return k
    return parent


def _model_at(loc: tuple):
    """The pydantic model class that owns the last key of loc (for listing allowed keys)."""
    model: Any = Scene
    for n, part in enumerate(loc[:-1]):
        if isinstance(part, int) or model is None:
            continue
        if _is_camera_tag(loc, n):                 # a render.camera entry: the keyframe or the shot it is
            model = _CAMERA_MODELS[part]
            continue
        if _is_union_tag(loc, n):                  # landscape.data / .model: the kind its name picks
            model = _TAGGED[tuple(loc[n - 2:n])][part]
            continue
        fields = model.model_fields if hasattr(model, "model_fields") else {}
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is None:
            # a dict key (e.g. render.paths.training): the values are of the model already found
            continue
        ann = field.annotation
        model = _inner_model(ann)
    return model


def _inner_model(ann):
    import typing
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _inner_model(arg)
        if m is not None:
            return m
    return None


def _allowed_keys(model) -> list[str]:
    keys = []
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        keys.append(f.alias or name)
    return keys


_ALLOWED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
}


def _describe_allowed(err: dict) -> str:
    t, ctx = err["type"], err.get("ctx", {}) or {}
    if t in _ALLOWED:
        return _ALLOWED[t]
    if t == "greater_than":
        return f"a value greater than {ctx['gt']}"
    if t == "greater_than_equal":
        return f"a value of at least {ctx['ge']}"
    if t == "less_than":
        return f"a value less than {ctx['lt']}"
    if t == "less_than_equal":
        return f"a value of at most {ctx['le']}"
    if t == "literal_error":
        return f"one of {ctx['expected']}"
    if t == "too_short":
        return f"at least {ctx.get('min_length')} items"
    if t == "too_long":
        return f"at most {ctx.get('max_length')} items"
    if t == "missing":
        return "this key is required"
    return ""


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _is_camera_tag(loc: tuple, n: int) -> bool:
    """Whether loc[n] is the tag pydantic puts after a render.camera entry's index (which kind it is)."""
    return (isinstance(loc[n], str) and loc[n] in _CAMERA_MODELS and n >= 3 and isinstance(loc[n - 1], int)
            and tuple(loc[n - 3:n - 1]) == ("render", "camera"))


def _is_union_tag(loc: tuple, n: int) -> bool:
    """Whether loc[n] is the tag pydantic puts after landscape.data or landscape.model (its kind)."""
    return n >= 2 and tuple(loc[n - 2:n]) in _TAGGED and loc[n] in _TAGGED[tuple(loc[n - 2:n])]


def _clean_loc(loc: tuple) -> tuple:
    """A pydantic error location without its union-branch tags ('float', 'list[float]', ...) and
    without the kind of a render.camera entry ('keyframe', 'orbit', ...)."""
    return tuple(p for n, p in enumerate(loc)
                 if not (isinstance(p, str) and ("[" in p or p in ("float", "int") or _is_camera_tag(loc, n)
                                                 or _is_union_tag(loc, n))))


def _camera_kind_error(path: Path, root, loc: tuple, value: Any, more: str) -> str:
    """A render.camera entry that is neither a keyframe nor a known shot."""
    shots = ", ".join(repr(k) for k in SHOTS[:-1]) + f" or {SHOTS[-1]!r}"
    if isinstance(value, dict) and "shot" in value:
        node = _node_at(root, loc + ("shot",))
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        shot = value["shot"]
        try:
            shown = json.dumps(shot)
        except (TypeError, ValueError):
            shown = repr(shot)
        close = difflib.get_close_matches(shot, SHOTS, n=1) if isinstance(shot, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{path}{line}: {_dotted(loc + ('shot',))}: bad value {shown}; allowed: one of {shots}{hint}{more}"
    node = _node_at(root, loc)
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return (f"{path}{line}: {_dotted(loc)}: an entry with 'from' and 'to' is a shot: give it 'shot:' one of "
            f"{shots} (a keyframe has 't' instead){more}")


def _format_error(path: Path, root, exc: ValidationError) -> str:
    # One clear message: the first error, with a count of any others.
    errs = exc.errors(include_url=False)
    err = errs[0]
    loc = _clean_loc(err["loc"])
    if err["type"] == "missing":
        # a required key missing next to an unknown one is most often a typo of it: name that
        typo = [e for e in errs if e["type"] == "extra_forbidden" and _clean_loc(e["loc"])[:-1] == loc[:-1]]
        if typo:
            errs = [typo[0]] + [e for e in errs if e is not typo[0]]
            err = errs[0]
            loc = _clean_loc(err["loc"])
    # unions produce one error per branch, none of them another problem
    under = [e for e in errs if _clean_loc(e["loc"])[:len(loc)] == loc]
    others = len(errs) - len(under)
    more = f" ({others} more problem{'s' if others > 1 else ''} after this one)" if others else ""
    if len(err["loc"]) != len(loc) and err["type"].endswith("_type"):
        # the value is not of this branch's type; a branch that got further names the real problem
        deeper = [e for e in under if len(_clean_loc(e["loc"])) > len(loc)]
        if deeper:
            err = deeper[0]
            loc = _clean_loc(err["loc"])
    key = _dotted(loc)
    # the branches at this key together say what is allowed
    branches = [e for e in errs if _clean_loc(e["loc"]) == loc]
    if err["type"] == "union_tag_invalid" and loc[:2] == ("render", "camera"):
        return _camera_kind_error(path, root, loc, err.get("input"), more)
    if err["type"] == "union_tag_invalid" and loc in _TAGGED:
        kinds = list(_TAGGED[loc])
        value = err.get("input")
        name = value.get("name") if isinstance(value, dict) else None
        node = _node_at(root, loc + ("name",)) if isinstance(value, dict) and "name" in value else None
        node = node or _node_at(root, loc)
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        close = difflib.get_close_matches(name, kinds, n=1) if isinstance(name, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        shown = json.dumps(name) if isinstance(name, (str, int, float, bool)) or name is None else repr(name)
        return (f"{path}{line}: {_dotted(loc + ('name',))}: bad value {shown}; allowed: one of "
                f"{', '.join(repr(k) for k in kinds)}{hint}{more}")
    if err["type"] == "extra_forbidden":
        knode = _key_node(root, loc)
        line = f":{knode.start_mark.line + 1}" if knode is not None else ""
        model = _model_at(err["loc"])
        allowed = _allowed_keys(model) if model is not None else []
        if model is CameraKey:                      # an entry is a keyframe unless it names a shot
            allowed.append("shot")
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        parent = _dotted(loc[:-1])
        return (f"{path}{line}: unknown key {key!r}; allowed keys under {parent}: "
                f"{', '.join(allowed)}{hint}{more}")
    node = _node_at(root, loc) if root is not None else None
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    value = err.get("input")
    try:
        shown = json.dumps(value) if isinstance(value, (int, float, str, bool, list)) or value is None \
            else repr(value)
    except (TypeError, ValueError):                 # e.g. a YAML date inside a list
        shown = repr(value)
    if err["type"] == "missing":
        return f"{path}{line}: {key}: missing required key{more}"
    if err["type"] in ("value_error", "assertion_error"):
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        if isinstance(value, dict):       # a check across the keys of a section: the message names them
            return f"{path}{line}: {key}: {msg}{more}"
        return f"{path}{line}: {key}: bad value {shown}: {msg}{more}"
    allowed = _describe_allowed(err)
    alts = []
    for e in branches:
        d = _describe_allowed(e)
        if d and d not in alts:
            alts.append(d)
    if len(alts) > 1:
        allowed = " or ".join(alts)
    allowed = f"; allowed: {allowed}" if allowed else f" ({err['msg']})"
    return f"{path}{line}: {key}: bad value {shown}{allowed}{more}"
