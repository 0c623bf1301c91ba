"""The whole scene: its top-level keys, the cache keys, and a comparison's panels."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Optional

from pydantic import Field, ValidationError, model_validator

from studio.cache import FORMAT_VERSION
from studio.scene.base import _Strict
from studio.scene.film import CompareSpec, OutputSpec, RenderSpec, frames_path
from studio.scene.landscape import _TAGGED, LandscapeSpec
from studio.scene.sweep import MAX_PANELS, SweepSpec, moment_name, moment_step, nested


class Scene(_Strict):
    """A scene: a film of a loss landscape (scenes/README.md)."""
    title: str = Field("", description="shown on the title card with a line describing the landscape")
    landscape: LandscapeSpec = Field(LandscapeSpec(), description="what the compute stage computes; its hash keys "
                                                                  "the cache")
    render: RenderSpec = Field(RenderSpec(), description="how the film looks and moves")
    output: OutputSpec = Field(OutputSpec(), description="where the film goes and how it is encoded")
    compare: Optional[CompareSpec] = Field(
        None, description="a comparison film: two to sixteen landscapes, each the landscape section with a "
                          "panel's changes")
    sweep: Optional[SweepSpec] = Field(
        None, description="one landscape key over a list of values, each looked at at chosen moments of "
                          "training: one panel (and cache entry) per value and moment")

    #: the file the scene was read from (load_scene sets it; a scene file cannot)
    source: str = Field("", exclude=True)

    @property
    def name(self) -> str:
        return Path(self.source).stem if self.source else "scene"

    @property
    def film_title(self) -> str:
        """The title a film shows: the scene's ``title``, or its file's name in words
        (``tiny_resnet-sgd.yaml``: "Tiny resnet sgd")."""
        if self.title:
            return self.title
        words = " ".join(w for w in re.split(r"[\s_\-.]+", self.name) if w)
        return (words[:1].upper() + words[1:]) if words else "Landscape"

    def output_path(self, root: Path | None = None) -> Path:
        """The film (``out/<name>.mp4``, or the suffix of ``output.format``) or, with ``output.format:
        png``, the frames' directory (``out/<name>_frames``), unless ``output.path`` says otherwise."""
        default = frames_path(Path(f"{self.name}.mp4"), self.output.format)
        p = Path(self.output.path).expanduser() if self.output.path else Path("out") / default
        return p if p.is_absolute() or root is None else root / p

    def cache_key(self) -> str:
        """Key of the grid entry: the landscape section without its descents (those are computed
        on top of a cached grid in seconds, so editing them never recomputes the grid), and what
        the section names only by reference (:meth:`inputs`).

        Only values that differ from their defaults enter the hash: writing a default out or
        leaving it away gives the same key, and a new key with a default added to the schema
        keeps every existing entry valid.  A change of what a value means bumps FORMAT_VERSION."""
        section = grid_section(self.landscape.model_dump(mode="json", exclude_defaults=True))
        plane = dict(section.get("plane", {}))
        if plane.get("margin") == OLD_MARGIN:          # the margin a plane had when it was the default
            del plane["margin"]
        if self.landscape.plane.auto_window:            # the probed window computes another landscape
            plane["window"] = "probed"
        section.pop("plane", None)
        if plane:
            section["plane"] = plane
        inputs = self.inputs()
        return landscape_key(dict(section, inputs=inputs) if inputs else section)

    def inputs(self, sections: tuple[str, ...] = ("data", "model", "loss", "weights")) -> dict[str, str]:
        """Digests of what the landscape names by reference (studio/fingerprint.py): the source
        file of each ``module:function`` entry (custom data, model, loss), so editing one's code
        recomputes, and the contents of the user's weight files, so a retrained run under the same
        names recomputes and a touched or moved one does not.  Empty for a scene with neither."""
        from studio.fingerprint import files_digest, source_digest, user_folders, weights_files
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
            out["weights"] = files_digest(weights_files(ls.weights.model_dump(), user_folders(self.source)))
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

    def sweep_panels(self) -> list[tuple[str, "Scene", object, object]]:
        """(caption, scene, value, moment) of each panel of the sweep (see ``_sweep_panels``)."""
        return _sweep_panels(self) if self.sweep is not None else []

    @model_validator(mode="after")
    def _sweep_fits(self):
        if self.sweep is None:
            return self
        sw = self.sweep
        if self.compare is not None:
            raise ValueError("give compare (landscapes side by side) or sweep (one key over values), not both")
        if len(sw.values) * len(sw.moments) > MAX_PANELS:
            raise ValueError(f"sweep: {len(sw.values)} values x {len(sw.moments)} moments make "
                             f"{len(sw.values) * len(sw.moments)} panels; at most {MAX_PANELS}")
        for value in sw.values:
            try:
                LandscapeSpec.model_validate(deep_merge(self.landscape.model_dump(exclude_unset=True, by_alias=True),
                                                        nested(sw.key, value)))
            except ValidationError as e:
                raise ValueError(_sweep_problem(sw.key, value, e)) from None
        return self

    def panels(self) -> list[tuple[str, "Scene"]]:
        """The comparison's panels as (caption, scene): each a copy of this scene with the panel's
        merged landscape (so its cache_key() is the panel's grid entry) and no compare section;
        a sweep's, value by value and moment by moment (:meth:`sweep_panels`).  Empty for a scene
        with neither."""
        if self.sweep is not None:
            return [(caption, sc) for caption, sc, _, _ in self.sweep_panels()]
        if self.compare is None:
            return []
        out = []
        for p in self.compare.panels:
            spec = LandscapeSpec.model_validate(panel_landscape(self.landscape, p.landscape))
            render = self.render
            if p.labels:                            # the panel's own read-out labels
                paths = {k: v.model_copy(update={"label": p.labels.get(k, v.label)}) for k, v in render.paths.items()}
                render = render.model_copy(update={"paths": paths})
            out.append((p.caption or "", self.model_copy(update={"landscape": spec, "compare": None,
                                                                 "render": render})))
        return out


def _sweep_problem(key: str, value, e: ValidationError) -> str:
    """One line for a sweep whose key or value the landscape refuses."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
    if err["type"] == "extra_forbidden":
        return (f"sweep.key: {key!r} is not a key of the landscape section ({loc} is unknown); give a dotted "
                f"key such as train.lr, train.batch_size, model.widths or data.noise (scenes/README.md lists them)")
    return f"sweep.values: {value!r} is not a value landscape.{key} takes: {err['msg']}"


def _sweep_panels(scene: Scene) -> list[tuple[str, Scene, object, object]]:
    """(caption, scene, value, moment) of each panel of ``scene.sweep``, value by value, each value's
    moments in order.  The panel's landscape: the scene's, with the swept key set to the value and
    ``plane.at`` to the moment."""
    sw = scene.sweep
    given = scene.landscape.model_dump(exclude_unset=True, by_alias=True)
    out = []
    for value in sw.values:
        for moment in sw.moments:
            over = deep_merge(nested(sw.key, value), {"plane": {"at": moment_step(moment)}})
            if moment_step(moment) is None:
                over["plane"].pop("at")
            spec = LandscapeSpec.model_validate(deep_merge(given, over))
            caption = sw.caption(value) + (f", {moment_name(moment)}" if len(sw.moments) > 1 else "")
            out.append((caption, scene.model_copy(update={"landscape": spec, "sweep": None}), value, moment))
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


#: plane.margin's value when a scene could not leave it out: a scene that gives it hashes as one that
#: left it out did then, so its key stays
OLD_MARGIN = 0.35


def grid_section(landscape: dict) -> dict:
    """The part of a resolved landscape section that determines the grid entry: not the descents
    nor the figures, which are computed on a finished entry in seconds."""
    return {k: v for k, v in landscape.items() if k not in ("descents", "figures")}


def landscape_key(landscape: dict) -> str:
    """Hash of the canonical JSON of a resolved landscape section plus the format version."""
    canon = json.dumps({"format": FORMAT_VERSION, "landscape": landscape},
                       sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]

