"""``sweep:``: one landscape key over a list of values, each looked at at chosen moments of training.

Each (value, moment) is a panel: a copy of the scene whose landscape has the key set to the value and
whose plane is centred on the weights at that moment (``plane.at``).  Every panel is its own cache
entry (the comparison machinery computes and draws them); the panels of one value share one training
run (the model store), whatever the moments.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator

from studio.scene.base import _Strict, doc
from studio.scene.film import MAX_GRID

#: most values of a sweep (one page of the film: MAX_GRID) and most panels (values x moments)
MAX_VALUES, MAX_PANELS = MAX_GRID, 64

Moment = Union[int, Literal["init", "end"]]


class SweepSpec(_Strict):
    """A sweep of one landscape key (scenes/README.md, ``sweep:``)."""
    key: str = Field(description="a key of the landscape section, dotted: train.lr, train.batch_size, model.widths, "
                                 "model.skip, train.weight_decay, data.noise, ...")
    values: list[Any] = Field(min_length=1, max_length=MAX_VALUES,
                              json_schema_extra=doc(allowed="1 to 16 values the key takes, e.g. `[0.01, 0.1, 1]`"),
                              description="the values the key takes, one panel (a column) each; at most 16")
    moments: list[Moment] = Field(["end"], min_length=1, max_length=8,
                                  json_schema_extra=doc(allowed="1 to 8 of `init`, `end` and training steps, "
                                                                "e.g. `[init, 30, end]`"),
                                  description="the moments of training each value is looked at: init (the initial "
                                              "weights, under the hyperparameters that will be used), a training step, "
                                              "or end (the final weights); one row each")
    label: Optional[str] = Field(None, description="the key's name in captions and charts (default: the key)")

    @field_validator("key")
    @classmethod
    def _in_landscape(cls, v: str) -> str:
        if v.startswith("landscape."):
            v = v[len("landscape."):]
        if not v or v.split(".")[0] in ("render", "output", "compare", "sweep", "title"):
            raise ValueError(f"a sweep varies a key of the landscape section (what is computed), e.g. train.lr; "
                             f"{v!r} is not one (the film's keys are the same for every panel)")
        if v.split(".")[0] in ("descents", "figures", "sequence"):
            raise ValueError(f"{v!r} cannot be swept; sweep a key of data, model, loss, train, plane or grid")
        return v

    @field_validator("moments")
    @classmethod
    def _distinct(cls, v: list) -> list:
        if len(set(map(str, v))) != len(v):
            raise ValueError(f"moments must be distinct, got {v}")
        if any(isinstance(m, int) and m < 0 for m in v):
            raise ValueError(f"a moment is init, end or a training step of at least 0, got {v}")
        return v

    def caption(self, value: Any) -> str:
        return f"{self.label or self.key} = {value}"


def moment_step(moment: Moment) -> Optional[int]:
    """``plane.at`` of a moment: 0 for init, None (the final weights) for end, else the step."""
    return 0 if moment == "init" else None if moment == "end" else int(moment)


def moment_name(moment: Moment) -> str:
    return {"init": "at initialization", "end": "at the end"}.get(moment, f"after {moment} steps")


def nested(key: str, value: Any) -> dict:
    """``"train.lr", 0.1`` -> ``{"train": {"lr": 0.1}}``."""
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out
