"""``landscape.train`` (the studio's own training) and ``landscape.weights`` (the user's own
weights instead), and the checks that need the run's length (``train_run_problem``; the length
itself needs the data section too: ``landscape.train_steps``)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from studio.scene.base import _Strict, doc


class WeightsSpec(_Strict):
    """The user's own weights instead of the studio's training (compute/run/build.py): checkpoint files
    saved by their training, one trained model, or a run folder written by compute.run.recorder.Recorder.
    A relative path is looked for in the scene's folder, the one above it, then the working
    directory (studio/fingerprint.py: user_folders)."""
    files: Optional[Union[str, Annotated[list[str], WithJsonSchema(
            {"type": "array", "items": {"type": "string", "x-noun": "file names"}, "minItems": 1})]]] = Field(
        None, description="checkpoint files, sorted by the step in each name (its last number); one file: a trained "
                          "model, no training path",
        json_schema_extra=doc(allowed="a glob (`'runs/net/step_*.pt'`) or a list of files"))
    run: Optional[str] = Field(None, description="instead of `files`: a run folder written by "
                                                 "`compute.run.recorder.Recorder` (its `run.json` lists the snapshots)",
                               json_schema_extra=doc(allowed="a folder"))
    steps: Optional[list[int]] = Field(None, min_length=1, description="with a list of files: their training steps, "
                                                                       "in the list's order",
                                       json_schema_extra=doc(allowed="one step per listed file"))
    final: Optional[Union[int, str]] = Field(
        None, description="the final weights (the origin of `pca` and `random` planes)",
        json_schema_extra=doc(default="the last checkpoint", allowed="a step of the run, or a file"))
    key: Optional[str] = Field(
        None, pattern=r"^[^.\s][^\s]*$", max_length=200,
        description="with `files`: the entry of each checkpoint dict that holds the model's weights, a dotted path "
                    "for a nested one (`model_weights`, `ema.model`)",
        json_schema_extra=doc(default="found: a bare state dict, `state_dict` (Lightning), `model_state_dict`, "
                                      "`model`, `net`, `weights`, or the one dict of weights in the file",
                              allowed="a key of the checkpoint dict, or a dotted path"))

    @model_validator(mode="after")
    def _one_source(self):
        if (self.files is None) == (self.run is None):
            raise ValueError("give files (a glob or a list of checkpoint files) or run (a folder written by "
                             "compute.run.recorder.Recorder)" + (", not both" if self.files is not None else ""))
        # an empty name would read as no source further on (fingerprint.weights_files tests truth)
        if self.run is not None and not self.run.strip():
            raise ValueError(f"run {self.run!r} names no folder; give the folder a recorder wrote "
                             f"(compute.run.recorder.Recorder), e.g. run: runs/my_net")
        if isinstance(self.files, str) and not self.files.strip():
            raise ValueError(f"files {self.files!r} names no file; give a glob (e.g. files: 'runs/net/step_*.pt') "
                             f"or a list of checkpoint files")
        if isinstance(self.files, list) and not self.files:
            raise ValueError("files lists no file")
        if self.key is not None and self.run is not None:
            raise ValueError("key goes with files (checkpoint dicts); a recorder's run folder holds bare weights")
        if self.steps is not None:
            if not isinstance(self.files, list):
                raise ValueError("steps go with a list of files (one step each); with a glob or a run folder the "
                                 "steps come from the names or the run's run.json")
            if len(self.steps) != len(self.files):
                raise ValueError(f"steps lists {len(self.steps)} steps for {len(self.files)} files; give one each")
            if any(s < 0 for s in self.steps) or len(set(self.steps)) != len(self.steps):
                raise ValueError(f"steps must be distinct steps of at least 0, got {self.steps}")
        return self


class TrainSpec(_Strict):
    """Training (compute/run/train.py).  Each key's default is what a scene without the key gets, so
    writing a default out or leaving it away gives the same cache key."""
    optimizer: Literal["sgd", "momentum", "adam", "adamw"] = Field(
        "adam", description="`momentum` is SGD with momentum 0.9 (unless `momentum` says otherwise); `adamw` is "
                            "Adam with decoupled weight decay")
    lr: float = Field(0.01, gt=0, le=10, description="learning rate (the peak rate when there is a schedule)")
    momentum: Optional[float] = Field(None, ge=0, lt=1, description="`sgd` and `momentum` only",
                                      json_schema_extra=doc(default="0 for `sgd`, 0.9 for `momentum`",
                                                            allowed="0 to 1 (1 excluded)"))
    nesterov: bool = Field(False, description="Nesterov momentum; `sgd` and `momentum` only, and needs a momentum "
                                              "above 0")
    weight_decay: Optional[float] = Field(
        None, ge=0, le=1, description="`sgd`, `momentum`, `adam`: L2, added to the gradient (as torch does); "
                                      "`adamw`: decoupled, the weights shrink by `lr * weight_decay` each step",
        json_schema_extra=doc(default="0, or 0.01 for `adamw`"))
    lr_schedule: Literal["constant", "step", "cosine"] = Field(
        "constant", description="how the learning rate changes over training (below)")
    warmup: int = Field(0, ge=0, le=10_000_000, description="steps of linear warmup before the schedule: step t of "
                                                            "the warmup uses `lr * t / warmup`",
                        json_schema_extra=doc(allowed="≥ 0, fewer than the training steps"))
    step_size: Optional[int] = Field(None, ge=1, le=10_000_000,
                                     description="`step`: multiply the rate by `gamma` every `step_size` steps "
                                                 "(counted after the warmup)",
                                     json_schema_extra=doc(allowed="≥ 1"))
    milestones: Optional[list[int]] = Field(None, min_length=1, max_length=100,
                                            description="`step`, instead of `step_size`: the training steps after "
                                                        "which the rate is multiplied by `gamma`",
                                            json_schema_extra=doc(allowed="increasing steps, after the warmup and "
                                                                          "before the end"))
    gamma: float = Field(0.1, gt=0, le=1, description="`step`: the factor at each drop")
    lr_min: float = Field(0.0, ge=0, description="`cosine`: the rate it decays to",
                          json_schema_extra=doc(allowed="≥ 0 and less than `lr`"))
    steps: int = Field(2000, ge=1, le=10_000_000, description="optimizer steps")
    epochs: Optional[int] = Field(None, ge=1, le=10_000_000,
                                  description="instead of `steps` (give one or the other): passes over the training "
                                              "data, each `ceil(samples / batch_size)` steps (one step with "
                                              "`batch_size: 0`)",
                                  json_schema_extra=doc(allowed="≥ 1"))
    batch_size: int = Field(0, ge=0, description="0: the whole training set each step (so does a batch as large "
                                                 "as the training set)")
    batches: Literal["random", "shuffled"] = Field(
        "random", description="`random`: each batch drawn at random, with replacement (samples may repeat within an "
                              "epoch); `shuffled`: each epoch a fresh permutation of the training set, cut into "
                              "batches (the last may be smaller), so every sample is seen once per epoch")
    snapshots: int = Field(200, ge=3, le=100_000, description="parameter snapshots kept (always the first and last "
                                                              "step)")
    schedule: Literal["log", "linear"] = Field("log", description="spacing of the snapshots; `log` keeps the fast "
                                                                  "early phase dense")
    every: Optional[int] = Field(None, ge=1, le=10_000_000,
                                 description="instead of `snapshots` and `schedule`: a snapshot every this many "
                                             "steps, and the last; at most 100,000 snapshots",
                                 json_schema_extra=doc(allowed="≥ 1, fewer than the training steps"))
    seed: int = Field(0, ge=0, description="initialization and batch order")
    log_samples: int = Field(0, ge=0, le=10_000_000,
                             description="training samples the log's training loss and accuracy are measured on at "
                                         "each snapshot: 0 all of them, else a seeded, class-balanced subset "
                                         "(faster for large data sets)")
    amp: bool = Field(False, description="mixed precision on a CUDA GPU: bf16 autocast, or fp16 with a gradient "
                                         "scaler where the GPU does not compute bf16 itself (before Ampere: a V100 "
                                         "or T4 only emulates it). The weights, the snapshots and the grid stay fp32 "
                                         "(`grid.precision` is separate). On a CPU it is ignored, with a note in the "
                                         "log, so the scene still runs there")

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
        """The run's length in steps for ``n_train`` training samples (compute/run/train.py: total_steps)."""
        if self.epochs is None:
            return self.steps
        bs = self.batch_size
        return self.epochs * (1 if bs == 0 or bs >= n_train else -(-n_train // bs))


#: most snapshots a run may keep (each is a copy of all the weights)
MAX_SNAPSHOTS = 100_000
#: longest training run in steps
MAX_STEPS = 10_000_000


def train_run_problem(train: TrainSpec, total: int) -> Optional[tuple[str, str]]:
    """A problem of the train section that shows only with the run's length ``total``, as
    (key, message), or None.  Used at load time and by the compute stage with the real data size."""
    epochs = train.epochs
    length = f"{epochs} epochs of {total // epochs} steps, {total} steps" if epochs else f"{total} steps"
    if total > MAX_STEPS:
        return "epochs", f"training would run {length}; at most {MAX_STEPS:,} steps"
    w = train.warmup or 0
    if w >= total:
        return "warmup", f"the warmup must be shorter than training ({length})"
    late = [m for m in train.milestones or [] if m >= total]
    if late:
        return "milestones", f"milestone {late[0]} is not before the end of training ({length})"
    k = train.every
    if k:
        count = total // k + 1 + (1 if total % k else 0)
        if k >= total:
            return "every", f"training runs {length}, so every: {k} keeps only the first and last; give at " \
                            f"most {total - 1} (at least 3 snapshots)"
        if count > MAX_SNAPSHOTS:
            return "every", f"training runs {length}, so every: {k} keeps {count:,} snapshots; at most " \
                            f"{MAX_SNAPSHOTS:,} (every at least {-(-total // (MAX_SNAPSHOTS - 1))})"
    return None

