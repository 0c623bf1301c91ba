"""``landscape``: the section the compute stage computes (its hash keys the cache), with the
plane, grid, descents and sequence; data, network and training have modules of their own."""
from __future__ import annotations

import functools
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, TypeAdapter, WithJsonSchema, field_validator, model_validator

from studio.scene.base import _Strict, doc
from studio.scene.data import _DATA_MODELS, AnyData, DataSpec, data_size
from studio.scene.network import _MODEL_MODELS, AnyModel, LossSpec, ModelSpec
from studio.scene.training import TrainSpec, WeightsSpec

#: sections that are one of several models, chosen by their ``name`` key
_TAGGED = {("landscape", "data"): _DATA_MODELS, ("landscape", "model"): _MODEL_MODELS}


class HessianSpec(_Strict):
    """The hessian plane: Lanczos on Hessian-vector products at the final weights (compute/plane/)."""
    iterations: int = Field(100, ge=1, le=10_000,
                            description="most Lanczos steps (one Hessian-vector product each, plus two to check the "
                                        "result; at least 2, never more than the parameter count)")
    tolerance: float = Field(1e-4, gt=0, le=1,
                             description="stop once both eigenvectors satisfy |Hv - λv| ≤ tolerance × the "
                                         "largest |eigenvalue| found",
                             json_schema_extra=doc(default="`1e-4`"))
    samples: int = Field(0, ge=0, description="data points for the Hessian-vector products: a seeded, class-balanced "
                                              "part of the evaluation subset; 0 (or more than it has): all of it")


#: the random directions' keys apply to these methods (the README's "applies to" column)
RANDOM = "the random directions: `random`, `checkpoints` (with 2), `interpolate`"


class PlaneSpec(_Strict):
    """The plane through weight space the grid covers (compute/plane/; the methods after Li et al.
    2018): a point (a, b) stands for the weights ``origin + a*d1 + b*d2``."""
    method: Literal["pca", "random", "hessian", "checkpoints", "interpolate", "minima"] = Field(
        "pca", description="how the origin and the two directions are chosen (see above)")
    at: Optional[int] = Field(
        None, ge=0, description="a moment of training: the plane's origin is the snapshot nearest this training step "
                                "(0: the initial weights) instead of the final weights, so the grid is the landscape "
                                "around the network at that moment (a sweep's moments set it)",
        json_schema_extra=doc(applies="`pca`, `random`, `hessian`"))
    seed: int = Field(0, ge=0, description="seed of the random directions, of the Hessian's start vector and of its "
                                           "`samples` subset",
                      json_schema_extra=doc(applies="`random`, `hessian`, `checkpoints` (with 2), `interpolate`"))
    normalization: Literal["filter", "layer", "weight", "none"] = Field(
        "filter", description="`filter`: each output unit / filter of a direction rescaled to the norm of the same "
                              "unit in the origin's weights; `layer`: whole tensors; `weight`: the Gaussian times the "
                              "weights elementwise; `none`: the Gaussian as drawn",
        json_schema_extra=doc(applies=RANDOM))
    include_biases: bool = Field(
        False, description="`false`: biases and other 1-D parameters get no direction (as in the paper); `true`: "
                           "they get a random one, rescaled as a whole to the parameter's norm (with `filter` and "
                           "`layer`; `weight` and `none` treat them like the rest)",
        json_schema_extra=doc(applies="the random directions"))
    orthogonalize: bool = Field(
        False, description="make the second direction exactly orthogonal to the first while keeping its "
                           "normalization exact (the other methods' directions are orthogonal already)",
        json_schema_extra=doc(applies="`random`"))
    checkpoints: Optional[Annotated[list[int], WithJsonSchema(
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 3})]] = Field(
        None, description="the snapshot recorded nearest to each step is used (see `train.snapshots` and "
                          "`schedule`); two steps that fall on the same snapshot are an error",
        json_schema_extra=doc(allowed="2 or 3 distinct training steps from 0 to `train.steps`",
                              applies="`checkpoints` (2 or 3), `interpolate` (exactly 2: `[A, B]`); required there, "
                                      "an error elsewhere"))
    seeds: Optional[Annotated[list[int], WithJsonSchema(
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 3, "maxItems": 3})]] = Field(
        None, description="the three networks of the `minima` plane: the scene's own training run once per seed "
                          "(`train.seed` set to it, everything else the same); the first is the origin and its "
                          "path is `training`, the others' are `training_2` and `training_3`",
        json_schema_extra=doc(allowed="3 distinct seeds, each ≥ 0",
                              applies="`minima`; required there unless `landscape.weights.files` lists the three "
                                      "networks, an error elsewhere"))
    hessian: HessianSpec = Field(HessianSpec(), description="the `hessian` method's Lanczos iteration (below)",
                                 json_schema_extra=doc(default="", allowed="see below", applies="`hessian`"))
    span: Optional[Union[float, Annotated[list[float], WithJsonSchema(
            {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2,
             "maxItems": 2})]]] = Field(
        None, description="the grid covers [-span, span] on each axis, about the origin",
        json_schema_extra=doc(allowed="a number > 0, or `[a, b]`", applies="all"))
    range: Optional[Annotated[list[list[float]], WithJsonSchema(
            {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
             "minItems": 2, "maxItems": 2})]] = Field(
        None, description="explicit extents (not with `span`)",
        json_schema_extra=doc(allowed="`[[a_min, a_max], [b_min, b_max]]`", applies="all"))
    margin: Optional[float] = Field(
        None, ge=0, le=10,
        description="with neither `span` nor `range`: how far the fitted extent grows beyond the trajectory (and "
                    "checkpoints), as a fraction of its width on each side (`hessian`: of its largest coordinate). "
                    "Left out: 0.35, and for `pca` and `checkpoints` the automatic window: a coarse probe over three "
                    "times the path's window first, and the window widened where it finds lower ground beyond "
                    "where training stopped (compute/plane/window.py)",
        json_schema_extra=doc(default="automatic (0.35, probed)",
                              applies="`pca`, `hessian`, `checkpoints`, `minima` (of the three minima)"))

    @property
    def auto_window(self) -> bool:
        """Whether the compute stage probes around the fitted window and may widen it (compute/plane/window.py)."""
        return self.method in ("pca", "checkpoints") and self.margin is None and self.span is None \
            and self.range is None

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

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if v is None:
            return v
        if len(v) != 3:
            raise ValueError(f"seeds must list 3 training seeds, one per network, got {len(v)}")
        twice = sorted({s for s in v if v.count(s) > 1})
        if twice:
            raise ValueError(f"seeds must be 3 distinct training seeds; {twice[0]} is given twice (the same "
                             f"seed trains the same network)")
        return v

    @model_validator(mode="after")
    def _one_extent(self):
        if self.span is not None and self.range is not None:
            raise ValueError("give either span or range, not both")
        if self.at is not None and self.method in ("checkpoints", "interpolate", "minima"):
            raise ValueError(f"at (a moment of training) is for the methods pca, random and hessian; {self.method!r} "
                             f"places its origin on " + ("the first network's final weights"
                                                         if self.method == "minima" else "its checkpoints"))
        if self.method == "minima" and "seed" in self.model_fields_set:
            raise ValueError(f"seed ({self.seed}) seeds random directions, and the 'minima' plane has none: its "
                             f"three networks come from seeds (e.g. seeds: [0, 1, 2]); remove seed")
        if self.seeds is not None and self.method != "minima":
            raise ValueError(f"seeds are for the method 'minima' (three networks trained from them), not "
                             f"{self.method!r}; remove them or change the method")
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


#: the paths of a ``minima`` plane's three runs, in the order of its seeds (or weight files)
MINIMA_PATHS = ("training", "training_2", "training_3")


class GridSpec(_Strict):
    """The grid of loss evaluations on the plane (compute/engine.py)."""
    resolution: list[int] = Field([1000, 1000], min_length=2, max_length=2,
                                  description="`[nx, ny]` grid points on the plane's first and second axes; every "
                                              "point is a real forward evaluation",
                                  json_schema_extra=doc(items={"type": "integer", "minimum": 2, "maximum": 8192}))
    eval_samples: int = Field(1024, ge=1, le=1_000_000,
                              description="a fixed, seeded, class-balanced subset of the data the loss is evaluated "
                                          "on",
                              json_schema_extra=doc(default="`1024`, or all the data if it has fewer",
                                                    allowed="≥ 1, at most the data set's size (`samples`, "
                                                            "`train_samples`)"))
    seed: int = Field(0, ge=0, description="seed of that subset")
    precision: Literal["fp32", "tf32", "bf16"] = Field(
        "fp32", description="arithmetic of the grid. `tf32` and `bf16` are for CUDA GPUs only: faster, less exact; the "
                            "compute stage measures the relative difference to fp32 on 512 grid points and stores it "
                            "in `meta.json`")
    batchnorm: Literal["running", "batch"] = Field(
        "running", description="BatchNorm layers use their running statistics (the trained network as deployed, and "
                               "the default), or statistics recomputed from the evaluation data at every grid point "
                               "(more faithful to how the loss changes when the weights move); both work for every "
                               "model")
    accuracy: bool = Field(False, description="also record the classification accuracy at every grid point "
                                              "(`grid_accuracy.npy`), for `render.look.color_by: accuracy`")

    @field_validator("resolution")
    @classmethod
    def _res(cls, v):
        for n in v:
            if not 2 <= n <= 8192:
                raise ValueError(f"each resolution must be an integer from 2 to 8192, got {n}")
        return v


class DescentSpec(_Strict):
    """An optimizer run on the loss restricted to the plane, with autograd's exact gradient."""
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
                      description="the path's name in the cache and in `render.paths`",
                      json_schema_extra=doc(allowed="1 to 40 letters, digits, `_`, `-`, starting with a letter; "
                                                    "unique; not `training`"))
    optimizer: Literal["sgd", "momentum", "nesterov", "adam", "rmsprop"] = Field(
        "sgd", description="`sgd`: x -= lr·g; `momentum`: SGD with heavy-ball momentum (b = m·b + g, x -= lr·b); "
                           "`nesterov`: SGD with Nesterov momentum (x -= lr·(g + m·b)); `adam`: Adam, betas (0.9, "
                           "0.999), eps 1e-8; `rmsprop`: RMSprop, alpha 0.99, eps 1e-8, no momentum (torch.optim's "
                           "definitions and defaults)")
    lr: float = Field(0.01, gt=0, le=100,
                      description="learning rate, in plane units: the gradient of f is the weight-space gradient "
                                  "projected on d1 and d2, so unit-length planes (`pca`, `hessian`, `checkpoints`) "
                                  "whose extent spans tens of units need large rates (tens for SGD; Adam's steps are "
                                  "about `lr` long whatever the gradient)")
    momentum: float = Field(0.9, ge=0, lt=1, description="the momentum factor m of `momentum` and `nesterov`; "
                                                         "ignored by the others")
    start: list[float] = Field(min_length=2, max_length=2,
                               description="the starting point in plane coordinates; (0, 0) is the plane's origin. "
                                           "Pick it inside the grid's extent (see `meta.json`'s `plane.extent` or "
                                           "the compute stage's log)",
                               json_schema_extra=doc(allowed="`[a, b]`, two numbers"))
    steps: int = Field(300, ge=1, le=1_000_000, description="optimizer steps; the path has `steps + 1` points (the "
                                                            "start and each step's result)")

    @field_validator("name")
    @classmethod
    def _not_training(cls, v):
        if v == "training":
            raise ValueError("the name 'training' is the training trajectory's; choose another")
        return v


class SequenceSpec(_Strict):
    """A landscape over training: one grid around each of several training snapshots, the plane
    carried along with the weights (compute/pipeline.py: _sequence)."""
    count: int = Field(24, ge=2, le=400,
                       description="grids, at training snapshots spread over the run: the recorded snapshot nearest "
                                   "each target step, moved on to the next one where targets crowd (so there are "
                                   "exactly `count` grids, from the first snapshot to the last, unless fewer "
                                   "snapshots were kept: `train.snapshots`); `meta.json`'s `sequence.steps` lists "
                                   "them")
    spacing: Literal["log", "linear"] = Field(
        "log", description="how the targets are spread over the steps: `log` spaces them evenly in log(step + s), s = "
                           "the last step / 50, which makes the fast early phase dense without crowding the first "
                           "few steps")
    steps: Optional[list[int]] = Field(
        None, min_length=2, max_length=400,
        description="explicit steps instead of `count` (the nearest recorded snapshot of each)",
        json_schema_extra=doc(allowed="increasing training steps, 2 to 400 of them, each at most `train.steps`"))

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v):
        if v is None:
            return v
        if any(s < 0 for s in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"steps must be increasing training steps of at least 0, got {v}")
        return v


class FiguresSpec(_Strict):
    """The landscape's figures (compute/morphology, docs/figures.md), measured on every entry and
    printed by ``python -m compute describe``.  Not part of the grid's key: changing them measures
    again in seconds and never recomputes the grid."""
    margin: float = Field(0.1, gt=0, le=1e6, description="absolute basin: the region around the grid's minimum "
                                                         "where loss <= min + margin (loss units)")
    relative_margin: float = Field(1.0, gt=0, le=1e6, description="relative basin: loss <= min x (1 + "
                                                                  "relative_margin)")
    keskar_radius: float = Field(0.1, gt=0, le=1e6, description="Keskar sharpness: the worst loss increase "
                                                                "within this radius of the origin (plane units)")
    prominence: Optional[float] = Field(None, ge=0, description="local minima: count those that rise at least "
                                                                "this much to a lower one; default 1% of the grid's "
                                                                "loss range")
    log_roughness: bool = Field(False, description="roughness of ln(loss) instead of the loss")
    hessian: bool = Field(True, description="the Hessian figures (top eigenvalue, trace, convexity map): "
                                            "Hessian-vector products on the evaluation subset; false for a large "
                                            "network on a CPU")
    samples: int = Field(256, ge=1, le=1_000_000, description="evaluation samples the Hessian figures use (the "
                                                              "first of the grid's evaluation subset)")
    hessian_budget: float = Field(0.5, gt=0, le=1000, description="the Hessian figures' model evaluations at "
                                                                  "most this share of the grid's (a Hessian-vector "
                                                                  "product on `samples` samples counts as 16 forward "
                                                                  "passes on them, a grid point as one on "
                                                                  "`grid.eval_samples`): over it the convexity map, "
                                                                  "then the other Hessian figures are left out, and "
                                                                  "the record says why. Counted, not timed: the "
                                                                  "figures depend on the scene, never on the machine")
    iterations: int = Field(30, ge=2, le=1000, description="Lanczos steps for the top eigenvalue")
    trace_samples: int = Field(32, ge=2, le=10_000, description="Hutchinson's random vectors for the trace")
    convexity_k: int = Field(5, ge=0, le=33, description="the convexity map's points a side (0: no map)")
    convexity_iterations: int = Field(10, ge=2, le=1000, description="Lanczos steps for each eigenvalue of "
                                                                      "the convexity map")
    seed: int = Field(0, ge=0, description="seed of the random vectors")


class LandscapeSpec(_Strict):
    """What the compute stage computes; its hash (values at their defaults left out, descents too)
    keys the cache."""
    data: AnyData = Field(DataSpec(), description="the data set the network learns and the loss is evaluated on")
    model: AnyModel = Field(ModelSpec(), description="the network")
    loss: LossSpec = Field(LossSpec(), description="the loss the landscape is made of: a name (`loss: mse`), an "
                                                   "entry (`loss: \"my_losses:hinge\"`) or a mapping")
    train: TrainSpec = Field(TrainSpec(), description="the studio's own training")
    weights: Optional[WeightsSpec] = Field(
        None, description="the user's own weights (checkpoint files, one trained model or a recorder's run "
                          "folder) instead of training in the studio")
    plane: PlaneSpec = Field(PlaneSpec(), description="the plane through weight space the grid covers")
    grid: GridSpec = Field(GridSpec(), description="the grid of loss evaluations on the plane")
    descents: list[DescentSpec] = Field(default_factory=list, max_length=16,
                                        description="optimizers run on the loss restricted to the plane")
    sequence: Optional[SequenceSpec] = Field(
        None, description="a grid around each of several training snapshots: the terrain changing as the "
                          "network learns")
    figures: FiguresSpec = Field(FiguresSpec(), description="the landscape's figures: basins, sharpness, "
                                                            "roughness, convexity (not part of the grid's key)")

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
    def _minima(self):
        p = self.plane
        if p.method != "minima":
            return self
        w = self.weights
        if w is None and p.seeds is None:
            raise ValueError("plane.method 'minima' needs plane.seeds: three training seeds, e.g. seeds: [0, 1, "
                             "2] (or landscape.weights.files: three weight files, one per network)")
        if w is not None and p.seeds is not None:
            raise ValueError("plane.seeds train the three networks here, and landscape.weights brings them from "
                             "files: remove one of them")
        if w is not None and (w.run is not None or not isinstance(w.files, list) or len(w.files) != 3
                              or w.steps is not None or w.final is not None):
            raise ValueError("plane.method 'minima' with landscape.weights takes files: a list of exactly 3 weight "
                             "files, one trained network each (no run, steps or final)")
        if "seed" in self.train.model_fields_set:
            raise ValueError(f"train.seed ({self.train.seed}) is set by plane.seeds: the 'minima' plane trains one "
                             f"network per seed; remove train.seed")
        if self.sequence is not None:
            raise ValueError("a sequence follows one network's training, and the 'minima' plane holds three; "
                             "remove landscape.sequence or choose another plane.method")
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


def train_steps(landscape: LandscapeSpec) -> Optional[int]:
    """The training run's length in steps.  With epochs it needs the training set's size: exact for
    generated data (samples); for data sets on disk train_samples, which is exact unless the data
    set is smaller (the compute stage checks again with the real size).  None with epochs on custom
    data: its size is known only once the compute stage has called the data function."""
    n = data_size(landscape.data)[0]
    if n is None and landscape.train.epochs is not None:
        return None
    return landscape.train.total_steps(n or 1)


@functools.lru_cache(maxsize=None)
def _adapter(key: str) -> TypeAdapter:
    return TypeAdapter(LandscapeSpec.model_fields[key].annotation)


def section(key: str, value):
    """The landscape section ``key`` (``data``, ``model``, ``loss``, ``train``, ``weights``, ``plane``,
    ``grid`` ...) as its typed spec: ``value`` itself when it is one (a loaded scene's), else ``value``
    validated as the scene loader would, defaults filled in (plain data from Python: a notebook's
    dict, a test's).  The compute stage's builders take their section through this, so they read
    attributes whoever calls them."""
    return _adapter(key).validate_python(value)
