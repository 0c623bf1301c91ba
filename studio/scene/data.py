"""``landscape.data``: the data set, one model per ``name`` (scenes/README.md: data)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Discriminator, Field, Tag

from studio.scene.base import _EntrySpec, _kind, _Strict, doc


class DataSpec(_Strict):
    """Interleaved spiral arms in the plane, one per class, generated (compute/data.py: spirals)."""
    name: Literal["spirals"] = Field(
        "spirals", description="the data set; each has its own keys, and a key of another data set is an error. "
                               "`spirals`: interleaved spiral arms in the plane, generated (no network needed)")
    samples: int = Field(1024, ge=16, le=1_000_000, description="points generated (the training set)")
    classes: int = Field(2, ge=2, le=8, description="spiral arms, one per class")
    turns: float = Field(1.75, gt=0, le=10, description="turns of each arm")
    noise: float = Field(0.2, ge=0, le=5, description="Gaussian jitter, in units of the gap between arms")
    seed: int = Field(0, ge=0, description="seed of the generated points")


class ShapesSpec(_Strict):
    """Generated images of simple shapes (compute/data.py: shapes); needs no files."""
    name: Literal["shapes"]
    samples: int = Field(1024, ge=16, le=200_000, description="images generated (the training set)")
    classes: int = Field(4, ge=2, le=4, description="the first n of disc, square, triangle, cross")
    size: int = Field(16, ge=8, le=64, description="image width and height in pixels")
    channels: Literal[1, 3] = Field(1, description="grayscale, or RGB with a random colour per image")
    noise: float = Field(0.1, ge=0, le=2, description="standard deviation of the Gaussian pixel noise")
    seed: int = Field(0, ge=0, description="seed of the generated images")


class _ImageSetSpec(_Strict):
    root: str = Field("data", min_length=1, json_schema_extra=doc(allowed="a directory"),
                      description="where the data set is (relative to the working directory); torchvision's "
                                  "layout under it: `MNIST/raw/`, `FashionMNIST/raw/`, `cifar-10-batches-py/`, "
                                  "`imagenette2-160/` or `imagenette2-320/`")
    train_samples: int = Field(5000, ge=2, le=2_000_000,
                               description="a seeded, class-balanced subset of the training split (all of it if "
                                           "larger)")
    normalize: bool = Field(True, description="subtract the data set's per-channel mean and divide by its standard "
                                              "deviation (MNIST 0.1307/0.3081, Fashion-MNIST 0.2860/0.3530, "
                                              "CIFAR-10's, ImageNet's for `imagenette` and `folder`); `false`: "
                                              "pixels in [0, 1]")
    seed: int = Field(0, ge=0, description="seed of the training subset")


class _DownloadSpec(_ImageSetSpec):
    download: bool = Field(False, description="download into `root` if it is missing (needs the network)")


#: every image set's ``size`` says the same; its default and bounds are the set's own
SIZE = "images are resized to `size` x `size` (antialiased); `folder` and `imagenette` images become RGB"


class MnistSpec(_DownloadSpec):
    name: Literal["mnist"]
    size: int = Field(28, ge=4, le=256, description=SIZE)


class FashionMnistSpec(_DownloadSpec):
    name: Literal["fashion_mnist"]
    size: int = Field(28, ge=4, le=256, description=SIZE)


class Cifar10Spec(_DownloadSpec):
    name: Literal["cifar10"]
    size: int = Field(32, ge=4, le=256, description=SIZE)


class ImagenetteSpec(_DownloadSpec):
    name: Literal["imagenette"]
    variant: Literal["160px", "320px"] = Field("160px", description="which archive (shorter side 160 or 320 "
                                                                    "pixels)")
    size: int = Field(64, ge=4, le=320, description=SIZE)


class FolderSpec(_ImageSetSpec):
    name: Literal["folder"]
    size: int = Field(32, ge=4, le=512, description=SIZE)


class RegressionSpec(_Strict):
    """Generated regression data (compute/data.py: regression): a function of one or two inputs to
    fit, scored by a loss of float targets (landscape.loss: mse, l1, smooth_l1)."""
    name: Literal["regression"]
    function: Literal["chirp", "peaks", "ripples"] = Field(
        "peaks", description="the function to fit: `peaks` two bumps and a dip on [-1, 1]^2; `ripples` concentric "
                             "waves fading outwards on [-1, 1]^2; `chirp` a wave of rising frequency on [-1, 1]")
    samples: int = Field(1024, ge=16, le=1_000_000, description="points generated (the training set)")
    noise: float = Field(0.05, ge=0, le=5, description="standard deviation of the Gaussian noise on the targets")
    seed: int = Field(0, ge=0, description="seed of the generated points")


class CustomDataSpec(_EntrySpec):
    """compute/data.py: custom_data; the function returns (x, y) or (x, y, classes)."""
    name: Literal["custom"]
    entry: str = Field(description="the function that makes the data, e.g. `\"examples.tiny_models:rings\"`",
                       json_schema_extra=doc(allowed="`\"module:function\"`"))


_DATA_MODELS = {"spirals": DataSpec, "shapes": ShapesSpec, "regression": RegressionSpec, "mnist": MnistSpec,
                "fashion_mnist": FashionMnistSpec, "cifar10": Cifar10Spec, "imagenette": ImagenetteSpec,
                "folder": FolderSpec, "custom": CustomDataSpec}


AnyData = Annotated[Union[tuple(Annotated[m, Tag(k)] for k, m in _DATA_MODELS.items())],
                    Discriminator(_kind("spirals", _DATA_MODELS))]


def data_size(data) -> tuple[Optional[int], Optional[str]]:
    """The size of a ``landscape.data`` section's training set where the scene gives it, and the key
    that gives it: ``samples`` for generated data, ``train_samples`` for data sets on disk (at most
    that: the set may be smaller); (None, None) for the user's own data."""
    for key in ("samples", "train_samples"):
        n = getattr(data, key, None)
        if n is not None:
            return n, key
    return None, None
