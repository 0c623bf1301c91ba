"""``landscape.model`` (the network, one model per ``name``) and ``landscape.loss``."""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from studio.scene.base import _check_entry, _EntrySpec, _json_plain, _kind, _Strict, doc


#: the activation of ``mlp`` and ``convnet`` (one description, so the README's table merges them)
ACTIVATION = "the nonlinearity after each hidden layer (`mlp`) or convolution (`convnet`)"


class ModelSpec(_Strict):
    """A multilayer perceptron (compute/models.py: mlp); on images it flattens them first."""
    name: Literal["mlp"] = Field("mlp", description="the network; each has its own keys, and a key of another "
                                                    "network is an error (the kinds are below)")
    widths: list[int] = Field([64, 64], min_length=1, max_length=16, description="hidden layer widths",
                              json_schema_extra=doc(items={"type": "integer", "minimum": 1, "maximum": 65536}))
    activation: Literal["relu", "tanh", "gelu", "softplus"] = Field("tanh", description=ACTIVATION)

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
                                description="output channels of each 3x3 convolution; then flatten and one linear "
                                            "classifier",
                                json_schema_extra=doc(items={"type": "integer", "minimum": 1, "maximum": 4096}))
    activation: Literal["relu", "tanh", "gelu", "softplus"] = Field("relu", description=ACTIVATION)
    pool_every: int = Field(1, ge=0, le=8, description="a 2x2 max-pool after every n-th convolution (0: none)")
    batchnorm: bool = Field(False, description="BatchNorm after each convolution (see `grid.batchnorm`)")

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
    depth: Literal[20, 32, 44, 56, 110] = Field(20, description="layers with weights: 6n + 2 for n blocks per "
                                                                "stage")
    skip: bool = Field(True, description="`false`: the same network with every shortcut removed (Li et al.'s "
                                         "\"ResNet-noshort\"): the blocks are plain two-convolution stacks, and the "
                                         "two 1x1 projection shortcuts and their BatchNorms (2,752 weights at width "
                                         "16) are gone; the rest is the same network, and with the same "
                                         "`train.seed` it starts from the same weights")
    width: int = Field(16, ge=1, le=512, description="channels of the first stage, as published; 4 or 8 make quick "
                                                     "CPU films")
    batchnorm: bool = Field(True, description="BatchNorm after each convolution; `false`: the convolutions get "
                                              "biases instead")


class VGGSpec(_Strict):
    """compute/models.py: vgg, a VGG for small images; needs image data."""
    name: Literal["vgg"]
    config: Literal["vgg9", "vgg11"] = Field(
        "vgg9", description="`vgg9`: Li et al. 2018's VGG-9: 7 convolutions (`width` x 1, 1, pool, 2, 2, pool, 4, 4, "
                            "4, pool) and a hidden linear layer of 4 `width`; on CIFAR-10 at width 64: 2,789,706 "
                            "weights. `vgg11`: Simonyan and Zisserman's configuration A: 8 convolutions (1, pool, 2, "
                            "pool, 4, 4, pool, 8, 8, pool, 8, 8, pool) and two hidden linear layers of 8 `width` (not "
                            "4096: the images are small)")
    width: int = Field(64, ge=1, le=512, description="channels of the first convolution, as published; 4 to 16 make "
                                                     "quick CPU films")
    batchnorm: bool = Field(True, description="BatchNorm after each convolution and each hidden linear layer")


class TorchvisionSpec(_Strict):
    """compute/models.py: a classification model of torchvision.models by name, randomly initialized;
    the name is checked against torchvision when the compute stage builds it (studio has no torch)."""
    name: Literal["torchvision"]
    arch: str = Field(description="the network; an unknown name stops the compute stage before training with the "
                                  "closest names (the message gives the file and line of `arch`, as a scene error "
                                  "does)",
                      json_schema_extra=doc(allowed="a name in `torchvision.models.list_models()` that is a "
                                                    "classification model, e.g. `resnet18`, `mobilenet_v3_small`, "
                                                    "`shufflenet_v2_x0_5`"))
    classes: Optional[int] = Field(None, ge=2, le=100_000,
                                   description="outputs of the classifier (1000 for ImageNet weights from "
                                               "`landscape.weights`, with labels that are ImageNet's class indices)",
                                   json_schema_extra=doc(default="the data's classes"))

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", v):
            raise ValueError("a torchvision model name is lower case letters, digits and '_', e.g. resnet18 "
                             "(torchvision.models.list_models() lists them)")
        return v


class CustomModelSpec(_EntrySpec):
    """compute/models.py: custom_model; called as function(**args), with input_shape= and classes=
    where its signature takes them."""
    name: Literal["custom"]
    entry: str = Field(description="the function that builds the network, e.g. "
                                   "`\"examples.tiny_models:ring_net\"`",
                       json_schema_extra=doc(allowed="`\"module:function\"`"))
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments the function is called with",
                                 json_schema_extra=doc(default="`{}`", allowed="a mapping of text, numbers, "
                                                       "true/false, lists and mappings (not `input_shape` or "
                                                       "`classes`)"))

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
        "cross_entropy", description="`cross_entropy` and `nll` (log-probabilities in) take class labels or token "
                                     "ids; the others float targets, or the input itself for data without labels; "
                                     "`custom`: your own function (`entry`)")
    entry: Optional[str] = Field(None, description="`custom`: called as `function(model, batch, **args)`, `batch = "
                                                   "(inputs, targets)` (targets `None` without labels); returns a "
                                                   "scalar tensor",
                                 json_schema_extra=doc(allowed="`\"module:function\"`"))
    args: dict[str, Any] = Field(default_factory=dict, description="`custom`: keyword arguments",
                                 json_schema_extra=doc(default="`{}`", allowed="a mapping"))
    version: int = Field(0, ge=0, description="`custom`: change it to recompute by hand (editing the module's "
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

