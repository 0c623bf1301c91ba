"""The scene file: schema, strict validation and clear errors.

A scene is a YAML file with these top-level keys (scenes/README.md is the manual, generated in part
from this schema; schemas/scene.schema.json is the same schema for editors):

    title:      text shown on the title card
    landscape:  everything the compute stage needs; its canonical hash keys the cache
    render:     camera, look, paths and captions for the render stage
    output:     where the film goes and how it is encoded
    compare:    optional: two to sixteen landscapes in one film, each the landscape section with a
                panel's changes (Scene.panels())
    sweep:      optional, instead of compare: one landscape key over a list of values, each looked
                at at chosen moments of training (Scene.sweep_panels())

The modules, one line each:

    base.py         the strict base model, SceneError, checks several sections share (colours, entries)
    data.py         landscape.data (and data_size: the training set's size where the scene gives it)
    network.py      landscape.model, landscape.loss
    training.py     landscape.train, landscape.weights, and the checks that need the run's length
    landscape.py    landscape: plane, grid, descents, sequence, figures, the section as a whole,
                    and train_steps (the run's length, from data and train)
    look.py         render.look, render.paths
    camera.py       render.camera: keys and shots
    film.py         render, captions, output, compare
    sweep.py        sweep: its values, moments and panels
    spec.py         the top level (Scene) and the cache keys
    checks.py       checks across sections (run by load.py on a validated scene)
    source.py       reading YAML, duplicate keys, --set overrides, where a value came from
    load.py         load_scene: file or dict to a validated Scene, every problem a line
    errors.py       validation errors as FILE:LINE: key: ... lines
    keydoc.py       what a key allows, in words (for errors.py and docs.py)
    jsonschema.py   schemas/scene.schema.json (``make schema``)
    docs.py         scenes/README.md's tables (``make scene-docs``)

Public API:

    load_scene(path, overrides=())      the validated :class:`Scene` of a file, or :class:`SceneError`
    scene_from_dict(data, name, ...)    the same for a dict (a notebook's scene)
    locate_error(path, message, ...)    a later stage's error about a scene key, with the key's
                                        file and line (or ``--set KEY``)
    transparency_error, alpha_problem   whether ``background: transparent`` can be drawn
    parse_overrides(items)              ``KEY=VALUE`` strings of ``--set``
    Scene                               the validated scene; ``cache_key()``, ``train_key()``,
                                        ``panels()``, ``output_path()``
    deep_merge, panel_landscape         a comparison panel's landscape laid over the scene's
    grid_section, landscape_key         the cache key's parts
    section(key, value)                 a landscape section as its typed spec (plain data validated)
    train_steps, train_run_problem      the training run's length and the checks that need it
    frames_path                         a film's path for another format
    the section models                  LandscapeSpec, DataSpec ... CustomDataSpec, ModelSpec ...
                                        CustomModelSpec, LossSpec, TrainSpec, WeightsSpec,
                                        PlaneSpec, HessianSpec, GridSpec, DescentSpec,
                                        SequenceSpec, RenderSpec, LookSpec, PathStyle, CameraKey,
                                        OrbitShot, DollyShot, ZoomShot, CraneShot, FollowShot,
                                        Caption, OutputSpec, CompareSpec, PanelSpec
    constants                           FORMAT_VERSION (studio.cache's), SIZE_PRESETS,
                                        FILM_FORMATS, ALPHA_FORMATS, TRANSPARENT, SHOTS, EASINGS,
                                        LOSSES, MAX_SNAPSHOTS, MAX_STEPS

Nothing here imports torch or vispy: both stages use it.
"""
from __future__ import annotations

from studio.cache import FORMAT_VERSION
from studio.scene.base import SceneError
from studio.scene.camera import (EASINGS, SHOTS, CameraEntry, CameraKey, CraneShot, DollyShot, FollowShot,
                                 OrbitShot, ZoomShot)
from studio.scene.checks import alpha_problem, transparency_error
from studio.scene.data import (AnyData, Cifar10Spec, CustomDataSpec, DataSpec, FashionMnistSpec, FolderSpec,
                               ImagenetteSpec, MnistSpec, RegressionSpec, ShapesSpec)
from studio.scene.errors import locate_error
from studio.scene.film import (ALPHA_FORMATS, FILM_FORMATS, SIZE_PRESETS, Caption, CompareSpec, OutputSpec,
                               PanelSpec, RenderSpec, frames_path)
from studio.scene.landscape import (DescentSpec, GridSpec, HessianSpec, LandscapeSpec, PlaneSpec, SequenceSpec,
                                    section, train_steps)
from studio.scene.load import load_scene, scene_from_dict
from studio.scene.look import TRANSPARENT, LookSpec, PathStyle
from studio.scene.network import (LOSSES, AnyModel, ConvNetSpec, CustomModelSpec, LossSpec, ModelSpec,
                                  ResNetSpec, TorchvisionSpec, VGGSpec)
from studio.scene.source import parse_overrides
from studio.scene.spec import Scene, deep_merge, grid_section, landscape_key, panel_landscape
from studio.scene.training import MAX_SNAPSHOTS, MAX_STEPS, TrainSpec, WeightsSpec, train_run_problem

__all__ = [
    "FORMAT_VERSION", "SceneError", "load_scene", "scene_from_dict", "locate_error",
    "alpha_problem", "transparency_error", "parse_overrides", "Scene", "deep_merge", "panel_landscape",
    "grid_section", "landscape_key", "section", "train_steps", "train_run_problem", "frames_path",
    "LandscapeSpec", "AnyData", "DataSpec", "ShapesSpec", "MnistSpec", "FashionMnistSpec", "Cifar10Spec",
    "ImagenetteSpec", "FolderSpec", "RegressionSpec", "CustomDataSpec", "AnyModel", "ModelSpec", "ConvNetSpec",
    "ResNetSpec", "VGGSpec", "TorchvisionSpec", "CustomModelSpec", "LOSSES", "LossSpec", "TrainSpec",
    "WeightsSpec", "MAX_SNAPSHOTS", "MAX_STEPS", "PlaneSpec", "HessianSpec", "GridSpec", "DescentSpec",
    "SequenceSpec", "RenderSpec", "LookSpec", "TRANSPARENT", "PathStyle", "EASINGS", "SHOTS", "CameraKey",
    "CameraEntry", "OrbitShot", "DollyShot", "ZoomShot", "CraneShot", "FollowShot", "Caption", "SIZE_PRESETS",
    "OutputSpec", "FILM_FORMATS", "ALPHA_FORMATS", "PanelSpec", "CompareSpec",
]
