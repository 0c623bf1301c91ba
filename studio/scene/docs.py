"""The key tables of scenes/README.md, generated from the schema: each table's ``default``,
``allowed`` and ``meaning`` columns come from the fields of the pydantic models (their defaults and
constraints, their ``description``, and where the constraints say less than a person needs,
``doc(default=..., allowed=..., applies=...)``: base.py), so the manual cannot drift from the code.

The README keeps its hand-written prose; each table sits between two markers::

    <!-- keys: landscape.grid -->
    | key | default | allowed | meaning |
    ...
    <!-- /keys -->

``make scene-docs`` rewrites the tables (``python -m studio.scene.docs``); tests/studio/scene/test_docs.py
fails when the committed README is not what this module makes.  :data:`TABLES` says which models
each marker's table shows."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from studio.scene import keydoc
from studio.scene.camera import _Shot, CameraKey, CraneShot, DollyShot, FollowShot, OrbitShot, ZoomShot
from studio.scene.data import (_DATA_MODELS, Cifar10Spec, CustomDataSpec, DataSpec, FashionMnistSpec, FolderSpec,
                               ImagenetteSpec, MnistSpec, RegressionSpec, ShapesSpec)
from studio.scene.film import Caption, CompareSpec, OutputSpec, PanelSpec, RenderSpec
from studio.scene.landscape import DescentSpec, FiguresSpec, GridSpec, HessianSpec, PlaneSpec, SequenceSpec
from studio.scene.look import LightSpec, LookSpec, PathStyle
from studio.scene.network import (_MODEL_MODELS, ConvNetSpec, CustomModelSpec, LossSpec, ModelSpec, ResNetSpec,
                                  TorchvisionSpec, VGGSpec)
from studio.scene.sweep import SweepSpec
from studio.scene.training import TrainSpec, WeightsSpec

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "scenes" / "README.md"
SHOT_KEYS = ("shot", "from", "to")


@dataclass(frozen=True)
class Part:
    """Rows of a table: the keys of ``models`` (several: one row per key, the kinds named where
    they differ), less ``skip``; ``kinds``: a first row ``name`` listing every kind of the union;
    ``prefix`` put before each key (``panels[i].``)."""
    models: tuple
    skip: tuple = ("name",)
    kinds: dict | None = None
    prefix: str = ""


TABLES: dict[str, tuple[Part, ...]] = {
    "landscape.data spirals": (Part((DataSpec,), skip=(), kinds=_DATA_MODELS),),
    "landscape.data shapes": (Part((ShapesSpec,)),),
    "landscape.data images": (Part((MnistSpec, FashionMnistSpec, Cifar10Spec, ImagenetteSpec, FolderSpec)),),
    "landscape.data regression": (Part((RegressionSpec,)),),
    "landscape.data custom": (Part((CustomDataSpec,)),),
    "landscape.model mlp convnet": (Part((ModelSpec, ConvNetSpec), skip=(), kinds=_MODEL_MODELS),),
    "landscape.model resnet": (Part((ResNetSpec,)),),
    "landscape.model vgg": (Part((VGGSpec,)),),
    "landscape.model torchvision": (Part((TorchvisionSpec,)),),
    "landscape.model custom": (Part((CustomModelSpec,)),),
    "landscape.loss": (Part((LossSpec,), skip=()),),
    "landscape.weights": (Part((WeightsSpec,)),),
    "landscape.train": (Part((TrainSpec,)),),
    "landscape.plane": (Part((PlaneSpec,)),),
    "landscape.plane.hessian": (Part((HessianSpec,)),),
    "landscape.grid": (Part((GridSpec,)),),
    "landscape.descents": (Part((DescentSpec,), skip=()),),
    "landscape.sequence": (Part((SequenceSpec,)),),
    "landscape.figures": (Part((FiguresSpec,)),),
    "render": (Part((RenderSpec,)),),
    "render.look": (Part((LookSpec,)),),
    "render.look.light": (Part((LightSpec,)),),
    "render.paths": (Part((PathStyle,)),),
    "render.camera keyframe": (Part((CameraKey,)),),
    "render.camera shot": (Part((_Shot,), skip=()),),
    "render.camera orbit": (Part((OrbitShot,), skip=SHOT_KEYS),),
    "render.camera dolly": (Part((DollyShot,), skip=SHOT_KEYS),),
    "render.camera zoom": (Part((ZoomShot,), skip=SHOT_KEYS),),
    "render.camera crane": (Part((CraneShot,), skip=SHOT_KEYS),),
    "render.camera follow": (Part((FollowShot,), skip=SHOT_KEYS),),
    "render.captions": (Part((Caption,)),),
    "output": (Part((OutputSpec,)),),
    "compare": (Part((CompareSpec,)), Part((PanelSpec,), skip=(), prefix="panels[i].")),
    "sweep": (Part((SweepSpec,)),),
}

MARKER = re.compile(r"(<!-- keys: (?P<name>[^>]+?) -->\n)(?P<body>.*?)(<!-- /keys -->)", re.S)


def _kind(model: type) -> str:
    name = keydoc.field_schema(model, "name")
    return name.get("const", model.__name__)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _merged(values: list[tuple[str, str]]) -> str:
    """One cell for several kinds: the value if they agree, else each value with its kinds."""
    if len({v for _, v in values}) == 1:
        return values[0][1]
    groups: dict[str, list[str]] = {}
    for kind, v in values:
        groups.setdefault(v, []).append(f"`{kind}`")
    return ", ".join(f"{v} ({', '.join(kinds)})" for v, kinds in groups.items())


def _rows(part: Part) -> list[dict]:
    schemas = [(m, keydoc.model_schema(m)) for m in part.models]
    keys: dict[str, list] = {}
    for model, schema in schemas:
        for key, prop in schema.get("properties", {}).items():
            if key not in part.skip:
                keys.setdefault(key, []).append((_kind(model), prop, key in schema.get("required", [])))
    rows = []
    for key, entries in keys.items():
        if key == "name" and part.kinds is not None:
            first = entries[0][1]
            rows.append({"key": key, "default": keydoc.default(first), "meaning": first.get("description", ""),
                         "allowed": ", ".join(f"`{k}`" for k in part.kinds), "applies": ""})
            continue
        meanings = {p.get("description", "") for _, p, _ in entries}
        if len(meanings) > 1:
            raise ValueError(f"{key}: the models of one table describe it differently; give them one description")
        meaning = meanings.pop()
        if len(entries) < len(part.models):
            meaning = f"{', '.join(f'`{k}`' for k, _, _ in entries)} only: {meaning}"
        rows.append({"key": part.prefix + key,
                     "default": _merged([(k, keydoc.default(p, req)) for k, p, req in entries]),
                     "allowed": _merged([(k, keydoc.allowed(p)) for k, p, _ in entries]),
                     "applies": entries[0][1].get("x-applies", ""), "meaning": meaning})
    return rows


def table(name: str) -> str:
    """The markdown table for marker ``name``."""
    rows = [r for part in TABLES[name] for r in _rows(part)]
    applies = any(r["applies"] for r in rows)
    cols = ["key", "default", "allowed"] + (["applies to"] if applies else []) + ["meaning"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"`{r['key']}`", r["default"], r["allowed"]] + ([r["applies"]] if applies else []) + [r["meaning"]]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """``text`` (the README) with every marked table generated anew."""
    names = [m.group("name") for m in MARKER.finditer(text)]
    unknown = sorted(set(names) - set(TABLES))
    missing = sorted(set(TABLES) - set(names))
    if unknown or missing:
        raise ValueError(f"scenes/README.md: markers without a table {unknown}, tables without a marker {missing}")
    return MARKER.sub(lambda m: m.group(1) + table(m.group("name")) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    """``python -m studio.scene.docs [--check]``: rewrite scenes/README.md's key tables, or with
    ``--check`` say whether they are current (exit status 1 if not)."""
    import sys
    argv = sys.argv[1:] if argv is None else argv
    old = README.read_text(encoding="utf-8")
    new = render(old)
    if "--check" in argv:
        print(f"scenes/README.md's key tables are {'current' if new == old else 'stale: run make scene-docs'}")
        return 0 if new == old else 1
    if new != old:
        README.write_text(new, encoding="utf-8")
    print(f"scenes/README.md: {len(TABLES)} key tables {'rewritten' if new != old else 'current'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
