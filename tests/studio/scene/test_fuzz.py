"""The scene loader under fuzzing: every shipped scene (scenes/*.yaml), mutated, must load or be
refused with the project's user error, one line a problem that names the file, and never a
traceback; a refused scene writes nothing.

The command lines have no validation-only mode: each stage's main calls ``studio.scene.load_scene``
first, whose SceneError ``studio.cli.run`` prints as one ``error: ...`` line a problem with exit
code 2, before the stage imports torch or vispy or reads the cache.  So hypothesis drives
``load_scene`` itself, and a few fixed mutations go through the real ``python -m compute`` and
``python -m render`` as subprocesses.  A mutation that stays valid is checked as far as loading
goes (its cache keys, panels and output path), never computed.

Mutations: keys dropped, renamed, duplicated (in the YAML text, block and flow style); values of
the wrong type, out of range, NaN or infinite, huge; the file's bytes cut at any point.

    SCENE_FUZZ_EXAMPLES=2000 pytest tests/studio/scene/test_fuzz.py     (more examples than the default 60)
"""
from __future__ import annotations

import datetime
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.cli import UserError
from studio.scene import SceneError, load_scene
from studio.scene.load import SHOWN
from tests.conftest import ROOT

SCENES = sorted((ROOT / "scenes").glob("*.yaml"))
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SCENES}
EXAMPLES = int(os.environ.get("SCENE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="SCENE_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --------------------------------------------------------------------------- a place for scenes

def project(root: Path) -> Path:
    """A scenes folder like the studio's: the examples package the custom scenes import beside it
    (linked, not copied: read, never written)."""
    folder = root / "scenes"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "examples"
    if not link.exists():
        link.symlink_to(ROOT / "scenes" / "examples", target_is_directory=True)
    return folder


def files_under(root: Path) -> set[str]:
    """Every path under ``root``, not following the examples link (what a stage could write)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    return project(tmp_path_factory.mktemp("fuzz"))


# --------------------------------------------------------------------------- mutations

def paths_of(data, prefix=()):
    """Every place in a scene's data: (keys and indices to it)."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from paths_of(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*prefix, i)
            yield from paths_of(v, (*prefix, i))


def parent(data, path):
    for k in path[:-1]:
        data = data[k]
    return data


WRONG_TYPES = ["text", "", [], {}, [1, 2], {"a": 1}, True, False, None, 1, 1.5, -3, "#zzzzzz", "1e3",
               datetime.date(2020, 1, 1), b"\x00bytes", {1: "a"}, [[[]]], "a:b", "~/x"]
OUT_OF_RANGE = [-1, 0, -0.5, 1e9, -1e9, 10 ** 20, 2 ** 63, -(2 ** 63), 1e-320, 1e308, -1e308]
NOT_FINITE = [math.nan, math.inf, -math.inf]
HUGE = [10 ** 30, 1e308, "x" * 10_000, list(range(1000)), {f"k{i}": i for i in range(300)}]
NEAR_MISSES = [lambda k: k + "s", lambda k: k[:-1] or "x", lambda k: k.upper(), lambda k: "_" + k,
               lambda k: k.replace("_", "-"), lambda k: k + " ", lambda k: k.capitalize(),
               lambda k: 1, lambda k: None, lambda k: True, lambda k: "<<"]

#: ``key: value`` inside a flow mapping ``{...}``, and a block mapping's key line
FLOW_ITEM = re.compile(r"(?<=[{,])\s*([A-Za-z_][\w]*)\s*:\s*([^,{}\[\]\n]+)")
BLOCK_KEY = re.compile(r"^(\s*)([A-Za-z_][\w]*):")


@st.composite
def structured(draw, text: str):
    """The scene's data with one place changed, dumped back to YAML (comments go)."""
    data = yaml.safe_load(text)
    places = list(paths_of(data))
    kind = draw(st.sampled_from(["drop", "rename", "wrong type", "out of range", "not finite", "huge"]))
    path = draw(st.sampled_from(places))
    holder, key = parent(data, path), path[-1]
    if kind == "drop":
        del holder[key]
    elif kind == "rename":
        if isinstance(holder, dict):
            new = draw(st.one_of(st.sampled_from(NEAR_MISSES).map(lambda f: f(key)),
                                 st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)))
            holder[new] = holder.pop(key)
        else:
            holder[key] = {"name": holder[key]}
    else:
        pool = {"wrong type": WRONG_TYPES, "out of range": OUT_OF_RANGE, "not finite": NOT_FINITE,
                "huge": HUGE}[kind]
        holder[key] = draw(st.sampled_from(pool))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


@st.composite
def duplicated(draw, text: str):
    """One key given twice in the text itself (YAML parsers keep the last; the studio refuses)."""
    lines = text.splitlines(keepends=True)
    block = [i for i, line in enumerate(lines) if BLOCK_KEY.match(line)]
    flow = [(i, m) for i, line in enumerate(lines) for m in FLOW_ITEM.finditer(line)]
    if flow and draw(st.booleans()):
        i, m = draw(st.sampled_from(flow))
        line = lines[i]
        lines[i] = line[:m.end()] + f", {m.group(1)}: {m.group(2).strip()}" + line[m.end():]
    else:
        i = draw(st.sampled_from(block))
        lines.insert(i + 1, BLOCK_KEY.match(lines[i]).group(0) + " 1\n")
    return "".join(lines).encode()


@st.composite
def cut(draw, text: str):
    """The file's bytes cut at any point (inside a UTF-8 character too)."""
    data = text.encode()
    return data[:draw(st.integers(0, len(data)))]


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(TEXTS)))
    how = draw(st.sampled_from([structured, structured, structured, duplicated, cut]))
    return name, draw(how(TEXTS[name]))


# --------------------------------------------------------------------------- the checks

def check_load(folder: Path, name: str, data: bytes) -> "SceneError | None":
    """Load the mutated scene: refused with a SceneError of one line a problem, each naming the
    file, or loaded, with its keys and panels computable.  Nothing may appear beside it."""
    path = folder / name
    path.write_bytes(data)
    before = files_under(folder.parent)
    try:
        scene = load_scene(path)
    except SceneError as e:
        lines = str(e).splitlines()
        assert 1 <= len(lines) <= SHOWN + 1, str(e)
        for line in lines:
            assert line.startswith(str(path)) and line.strip() == line and "Traceback" not in line, str(e)
        assert files_under(folder.parent) == before
        return e
    try:
        scene.cache_key()
        scene.train_key()
        for _, panel in scene.panels():
            panel.cache_key()
        scene.output_path()
    except UserError as e:                  # the stages say these in one line too (studio.cli.run)
        assert str(e).strip() and "Traceback" not in str(e)
    assert files_under(folder.parent) == before
    return None


@FUZZ
@given(mutated())
def test_a_mutated_scene_loads_or_is_refused_in_lines_naming_the_file(place, case):
    name, data = case
    check_load(place, name, data)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_shipped_scene_cut_anywhere_is_refused_or_loads(place, name):
    """Not sampled: a cut at every line's end and in the middle of each of the first lines."""
    data = TEXTS[name].encode()
    ends = [m.end() for m in re.finditer(b"\n", data)]
    for n in sorted({0, 1, len(data) - 1, *ends, *(e - 3 for e in ends[:15] if e > 3)}):
        check_load(place, name, data[:n])


# --------------------------------------------------------------------------- the real command lines

#: fixed mutations of shipped scenes that must be refused: (scene, old text, new text)
REFUSED = [
    ("default.yaml", "steps: 1500", "steps: .nan"),                                   # NaN
    ("default.yaml", "resolution: [1000, 1000]", "resolution: [1000, 1000], resolution: [9, 9]"),  # duplicate
    ("regression.yaml", "landscape:", "landscape:\n  grid: [1, 2]\n  grid: 3"),        # wrong type, duplicate
    ("default.yaml", None, None),                                                      # cut short
]


def mutate(name: str, old: "str | None", new: "str | None") -> str:
    text = TEXTS[name]
    if old is None:
        return text[:len(text) // 3]
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("stage", ["compute", "render"])
def test_the_stages_refuse_a_mutated_scene_in_error_lines_with_exit_2(tmp_path, stage):
    folder = project(tmp_path / "p")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LANDSCAPE_STUDIO_CACHE", None)
    for i, (name, old, new) in enumerate(REFUSED):
        scene = folder / f"m{i}_{name}"
        scene.write_text(mutate(name, old, new), encoding="utf-8")
        with pytest.raises(SceneError):
            load_scene(scene)
        before = files_under(tmp_path)
        r = subprocess.run([sys.executable, "-m", stage, str(scene)], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
        lines = r.stderr.splitlines()
        assert r.returncode == 2, r.stderr
        assert lines and all(line.startswith("error: ") for line in lines), r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
        assert files_under(tmp_path) == before, r.stderr
    shutil.rmtree(folder)


# --------------------------------------------------------------------------- what the fuzzer found

@pytest.mark.parametrize("weights, key", [("{run: ''}", "run"), ("{run: '  '}", "run"), ("{files: ''}", "files")])
def test_an_empty_weights_source_is_refused_not_a_traceback(tmp_path, weights, key):
    """charlm.yaml with ``weights: {run: ''}``: the empty name passed validation, then read as no
    source at all where the cache key hashes the files (a TypeError)."""
    scene = project(tmp_path) / "empty.yaml"
    scene.write_text(f"landscape:\n  weights: {weights}\n", encoding="utf-8")
    with pytest.raises(SceneError) as e:
        load_scene(scene)
    message = str(e.value)
    assert message.startswith(f"{scene}:2: landscape.weights: ") and len(message.splitlines()) == 1
    assert f"{key} '" in message and "' names no" in message           # the key, the bad value
