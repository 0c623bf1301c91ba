"""scenes/README.md's key tables are generated from the schema (`make scene-docs`): the committed
README is what the generator makes, every key of every section is in a table, and the columns
say what the schema says."""
from __future__ import annotations

import re

import pytest

from studio.scene import docs
from tests.conftest import ROOT


def test_the_committed_tables_are_current():
    text = docs.README.read_text(encoding="utf-8")
    assert docs.render(text) == text, "scenes/README.md's key tables are stale: run `make scene-docs`"


def test_every_key_is_in_a_table():
    from studio.scene import Scene
    models = {m for parts in docs.TABLES.values() for part in parts for m in part.models}
    seen, todo = set(), [Scene]
    while todo:                                    # every model a scene can contain
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for f in m.model_fields.values():
            todo += [a for a in _models(f.annotation) if a not in seen]
    untabled = sorted(m.__name__ for m in seen - models - {Scene})
    # the landscape's keys are sections with tables of their own, as the top level's are
    assert untabled == ["LandscapeSpec"], untabled
    text = docs.README.read_text(encoding="utf-8")
    for name in docs.TABLES:
        for row in docs.table(name).splitlines()[2:]:
            key = row.split(" | ")[0].strip("| `")
            assert f"| `{key}` |" in text


def _models(ann):
    import typing
    from pydantic import BaseModel
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in typing.get_args(ann) for m in _models(a)]


def test_the_columns_come_from_the_schema():
    grid = docs.table("landscape.grid")
    assert "| `resolution` | `[1000, 1000]` | two integers, each 2 to 8192 | `[nx, ny]` grid points" in grid
    # a key of some kinds only, and a default that differs by kind
    images = docs.table("landscape.data images")
    assert "| `variant` | `160px` | `160px`, `320px` | `imagenette` only: which archive" in images
    assert "`28` (`mnist`, `fashion_mnist`), `32` (`cifar10`, `folder`), `64` (`imagenette`)" in images
    # the kinds of a union, and the README's own wording where the constraints say less
    assert "| `name` | `mlp` | `mlp`, `convnet`, `resnet`, `vgg`, `torchvision`, `custom` |" in \
        docs.table("landscape.model mlp convnet")
    assert "| `momentum` | 0 for `sgd`, 0.9 for `momentum` | 0 to 1 (1 excluded) |" in docs.table("landscape.train")
    assert "| key | default | allowed | applies to | meaning |" in docs.table("landscape.plane")
    assert "\\|Hv - λv\\|" in docs.table("landscape.plane.hessian")        # a | in a cell is escaped


def test_markers_and_tables_match(tmp_path):
    text = docs.README.read_text(encoding="utf-8")
    names = re.findall(r"<!-- keys: ([^>]+?) -->", text)
    assert sorted(names) == sorted(docs.TABLES) and len(names) == len(set(names))
    with pytest.raises(ValueError, match="tables without a marker"):
        docs.render(text.replace("<!-- keys: output -->", "<!-- output -->"))


def test_make_scene_docs_rewrites_a_stale_table(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    text = docs.README.read_text(encoding="utf-8")
    readme.write_text(text.replace("| `fps` | `30` | 1 to 240 |", "| `fps` | `25` | 1 to 240 |"), encoding="utf-8")
    monkeypatch.setattr(docs, "README", readme)
    assert docs.main(["--check"]) == 1 and "stale" in capsys.readouterr().out
    assert docs.main([]) == 0 and readme.read_text(encoding="utf-8") == text
    assert docs.main(["--check"]) == 0
    assert (ROOT / "scenes" / "README.md").read_text(encoding="utf-8") == text        # the real one untouched
