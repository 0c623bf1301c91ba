"""studio/fingerprint.py: what a scene's cache key covers beyond its text (checkpoint contents, the
source of a custom entry's module), found without importing the user's code."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from studio import fingerprint as fp


def write(path, data: bytes | str):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- file contents

def test_file_digest_follows_content_not_mtime(tmp_path):
    p = write(tmp_path / "w.pt", b"weights v1")
    d = fp.file_digest(p)
    assert len(d) == 64 and d == fp.file_digest(p)
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns + 10**9, st.st_mtime_ns + 10**9))
    assert fp.file_digest(p) == d
    write(p, b"weights v2")
    assert fp.file_digest(p) != d


def test_file_digest_reads_past_one_chunk(tmp_path):
    a = write(tmp_path / "a", bytes(fp.CHUNK) + b"x")
    b = write(tmp_path / "b", bytes(fp.CHUNK) + b"y")
    assert fp.file_digest(a) != fp.file_digest(b)
    import hashlib
    assert fp.file_digest(a) == hashlib.sha256(a.read_bytes()).hexdigest()


def run_folder(root, contents):
    return [write(root / f"step_{i}.pt", c) for i, c in enumerate(contents)]


def test_files_digest_content_and_order_not_place(tmp_path):
    here = run_folder(tmp_path / "run", [b"a", b"bb", b"ccc"])
    there = run_folder(tmp_path / "moved" / "elsewhere", [b"a", b"bb", b"ccc"])
    d = fp.files_digest(here)
    assert fp.files_digest(there) == d                        # same contents elsewhere
    assert fp.files_digest(here[::-1]) != d                   # order is the trajectory's
    assert fp.files_digest(here[:2]) != d
    renamed = [write(tmp_path / "other" / n, c) for n, c in (("x", b"a"), ("y", b"bb"), ("z", b"ccc"))]
    assert fp.files_digest(renamed) == d                      # names are not contents
    for p in here:                                            # touched: still a cache hit
        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    assert fp.files_digest(here) == d
    write(here[1], b"retrained")                              # retrained, same names: new key
    assert fp.files_digest(here) != d
    # no concatenation ambiguity: the split between files matters
    assert fp.files_digest(run_folder(tmp_path / "s1", [b"ab", b"c"])) != \
        fp.files_digest(run_folder(tmp_path / "s2", [b"a", b"bc"]))


def test_files_digest_remembers_per_process(tmp_path, monkeypatch):
    paths = run_folder(tmp_path / "run", [b"one", b"two"])
    fp.files_digest(paths)
    reads = []
    real = fp.file_digest
    monkeypatch.setattr(fp, "file_digest", lambda p: reads.append(p) or real(p))
    d = fp.files_digest(paths)
    assert reads == []                                        # second load: nothing hashed again
    write(paths[0], b"one, retrained")
    assert fp.files_digest(paths) != d and reads == [paths[0]]


def test_hashing_speed(tmp_path, monkeypatch):
    """What keeps hashing fast, counted rather than timed (timings flake on shared cores): a large
    checkpoint is read in CHUNK-sized reads into one reused buffer (no per-read allocation, a few
    dozen calls for 200 MiB), and within a process a file already hashed is not read again."""
    p = tmp_path / "big.bin"
    size = 200 << 20
    with open(p, "wb") as f:                      # a sparse file: no disk reads
        f.truncate(size)
    reads, buffers = [], set()
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def readinto(self, b):
            n = self.f.readinto(b)
            reads.append(n)
            buffers.add(id(b))
            return n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(fp, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    import hashlib
    zeros = hashlib.sha256()
    for _ in range(size // fp.CHUNK):
        zeros.update(bytes(fp.CHUNK))
    assert fp.file_digest(p) == zeros.hexdigest()
    assert reads == [fp.CHUNK] * (size // fp.CHUNK) + [0] and len(buffers) == 1
    assert fp.CHUNK >= 1 << 20                    # large reads: the per-call overhead vanishes
    reads.clear()
    d = fp.files_digest([p])                      # first time in files_digest: read once
    assert len(reads) == size // fp.CHUNK + 1
    reads.clear()
    assert fp.files_digest([p]) == d and reads == []      # remembered: not read again


# --------------------------------------------------------------------------- the user's module

MARKER_MODULE = """\
from pathlib import Path
Path({marker!r}).write_text("imported")

def build(**kw):
    return None
"""


def module_tree(root, marker, name="pkg/mod.py"):
    """pkg/__init__.py (empty) and a module that leaves a marker file if it is ever imported."""
    write(root / "pkg" / "__init__.py", "")
    return write(root / name, MARKER_MODULE.format(marker=str(marker)))


def test_find_module_file_scene_folder_first_then_cwd(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    scene_dir, cwd = tmp_path / "scenes", tmp_path / "work"
    in_scene = module_tree(scene_dir, marker)
    in_cwd = module_tree(cwd, marker)
    write(cwd / "solo.py", MARKER_MODULE.format(marker=str(marker)))
    monkeypatch.chdir(cwd)
    before = set(sys.modules)
    assert fp.find_module_file("pkg.mod", scene_dir) == in_scene.resolve()
    assert fp.find_module_file("pkg.mod", None) == in_cwd.resolve()
    assert fp.find_module_file("pkg.mod", tmp_path / "empty") == in_cwd.resolve()
    assert fp.find_module_file("solo", scene_dir) == (cwd / "solo.py").resolve()
    # the folder above the scene's (a project's films/ folder) comes before the working directory
    write(tmp_path / "solo.py", MARKER_MODULE.format(marker=str(marker)))
    assert fp.find_module_file("solo", scene_dir) == (tmp_path / "solo.py").resolve()
    assert fp.find_module_file("pkg", scene_dir) == (scene_dir / "pkg" / "__init__.py").resolve()
    assert fp.source_digest("pkg.mod:build", scene_dir) == fp.file_digest(in_scene)
    # nothing was imported, nothing ran
    assert not marker.exists()
    assert not {"pkg", "pkg.mod", "solo"} & (set(sys.modules) - before)


def test_find_module_file_package_style_and_python_rules(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    monkeypatch.chdir(tmp_path)
    # a model that is itself a package: models/resnet/__init__.py
    init = module_tree(tmp_path, marker, "pkg/models/__init__.py")
    assert fp.find_module_file("pkg.models", None) == init.resolve()
    # a package wins over a module of the same name in the same folder (as for import)
    write(tmp_path / "pkg.py", "x = 1\n")
    assert fp.find_module_file("pkg", None) == (tmp_path / "pkg" / "__init__.py").resolve()
    # submodules are looked up only inside the package found first: the scene folder's pkg has no
    # models, so the working directory's is not used (Python would fail to import it as well)
    scene_dir = tmp_path / "scene"
    write(scene_dir / "pkg" / "__init__.py", "")
    assert fp.find_module_file("pkg.models", scene_dir) is None
    # a plain module has no submodules; unknown names and bad names: None
    write(tmp_path / "plain.py", "")
    assert fp.find_module_file("plain.sub", None) is None
    assert fp.find_module_file("no_such_module_anywhere", None) is None
    assert fp.find_module_file("bad-name", None) is None
    assert fp.source_digest("no_such_module_anywhere:f", None) is None
    assert fp.source_digest(":f", None) is None
    assert not marker.exists()


def test_find_module_file_on_sys_path_and_site_packages(tmp_path, monkeypatch):
    extra = tmp_path / "extra"
    lib = write(extra / "userlib.py", "def f(): pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(extra))
    assert fp.find_module_file("userlib", None) == lib.resolve()
    # an installed package resolves into site-packages: its source counts too
    import yaml
    found = fp.find_module_file("yaml", None)
    assert found is not None and found.resolve() == __import__("pathlib").Path(yaml.__file__).resolve()


def test_source_digest_follows_edits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mod = write(tmp_path / "my_models.py", "def net(**kw):\n    return 1\n")
    d = fp.source_digest("my_models:net", tmp_path)
    assert d == fp.file_digest(mod)
    st = os.stat(mod)
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fp.source_digest("my_models:net", tmp_path) == d
    write(mod, "def net(**kw):\n    return 2\n")                 # same size, new content
    assert fp.source_digest("my_models:net", tmp_path) != d


def test_source_digest_covers_the_users_modules_the_entry_imports(tmp_path, monkeypatch):
    """A small entry file that imports the network from model.py: editing model.py recomputes;
    editing a file it does not import, or an installed package, does not.  Nothing is imported."""
    marker = tmp_path / "imported.txt"
    monkeypatch.chdir(tmp_path)
    scene = tmp_path / "proj"
    write(scene / "wrapper.py", "import torch\nfrom model import Net\nimport nets.blocks as b\n\n"
                                "def build(**kw):\n    from helpers import widen   # imported inside\n"
                                "    return Net()\n")
    model = write(scene / "model.py", MARKER_MODULE.format(marker=str(marker)) + "\nfrom . import nothing\n")
    write(scene / "nets" / "__init__.py", "")
    blocks = write(scene / "nets" / "blocks.py", "from .layers import Conv\nfrom . import layers as L\n")
    layers = write(scene / "nets" / "layers.py", "import model\nclass Conv: pass\n")      # a cycle back
    helpers = write(scene / "helpers.py", "def widen(): pass\n")
    write(scene / "unrelated.py", "x = 1\n")
    names = [n for n, _ in fp.user_sources("wrapper", scene)]
    assert names == ["wrapper", "helpers", "model", "nets", "nets.blocks", "nets.layers"]
    assert not marker.exists()
    d = fp.source_digest("wrapper:build", scene)
    for f, text in ((model, "class Net: pass  # the skip removed\n"), (layers, "class Conv: bias = 0\n"),
                    (helpers, "def widen(): return 2\n"), (blocks, "")):
        write(f, text)
        assert fp.source_digest("wrapper:build", scene) != d, f
        d = fp.source_digest("wrapper:build", scene)
    write(scene / "unrelated.py", "x = 2\n")
    assert fp.source_digest("wrapper:build", scene) == d
    # a file that imports only installed modules keeps the one-file digest (existing keys stay)
    solo = write(scene / "solo.py", "import torch, numpy\nimport os.path\nfrom yaml import safe_load\n")
    assert fp.source_digest("solo:f", scene) == fp.file_digest(solo)


def test_an_edited_imported_module_recomputes_the_landscape(tmp_path, monkeypatch):
    from studio import cache
    from studio.scene import load_scene
    from compute.pipeline import run
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "model.py", "import torch.nn as nn\n\nclass Net(nn.Sequential):\n"
                                 "    def __init__(self, classes):\n"
                                 "        super().__init__(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, classes))\n")
    write(tmp_path / "entry.py", "from model import Net\n\ndef build(input_shape, classes):\n    return Net(classes)\n")
    scene_file = write(tmp_path / "s.yaml", "landscape:\n  data: {name: spirals, samples: 40}\n"
                                            "  model: {name: custom, entry: 'entry:build'}\n"
                                            "  train: {steps: 4, snapshots: 3}\n  grid: {resolution: [4, 3]}\n")
    first = load_scene(scene_file)
    key = first.cache_key()
    run(first, tmp_path / "cache", device="cpu", progress=False)
    write(tmp_path / "model.py", "import torch.nn as nn\n\nclass Net(nn.Sequential):\n"
                                 "    def __init__(self, classes):\n"
                                 "        super().__init__(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, classes))\n")
    sys.modules.pop("model", None)
    sys.modules.pop("entry", None)
    second = load_scene(scene_file)
    assert second.cache_key() != key
    run(second, tmp_path / "cache", device="cpu", progress=False)
    a = cache.read(tmp_path / "cache", key).loss
    b = cache.read(tmp_path / "cache", second.cache_key()).loss
    assert not np.allclose(a, b)
    sys.modules.pop("model", None)
    sys.modules.pop("entry", None)


# --------------------------------------------------------------------------- expand_files

def test_expand_files_glob(tmp_path):
    run = tmp_path / "run"
    for n in ("step_10.pt", "step_9.pt", "step_100.pt", "notes.txt"):
        write(run / n, n)
    (run / "dir.pt").mkdir()                                  # folders are skipped
    write(run / "deep" / "er" / "step_1.pt", "x")
    got = fp.expand_files("run/step_*.pt", tmp_path)
    assert [p.name for p in got] == ["step_9.pt", "step_10.pt", "step_100.pt"]   # natural order
    assert all(p.is_absolute() and p.is_file() for p in got)
    assert [p.name for p in fp.expand_files("run/*.pt", tmp_path)] == ["step_9.pt", "step_10.pt", "step_100.pt"]
    deep = fp.expand_files("run/**/*.pt", tmp_path)
    assert (run / "deep" / "er" / "step_1.pt") in deep and len(deep) == 4
    assert fp.expand_files(str(run / "step_9.pt"), tmp_path / "elsewhere") == [run / "step_9.pt"]


def test_expand_files_home_and_odd_base(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / "ck" / "a.pt", "a")
    assert fp.expand_files("~/ck/*.pt", tmp_path / "x") == [tmp_path / "ck" / "a.pt"]
    assert fp.expand_files(["~/ck/a.pt"], tmp_path / "x") == [tmp_path / "ck" / "a.pt"]
    odd = tmp_path / "run [1]"                               # glob characters in the base folder
    write(odd / "s.pt", "s")
    assert fp.expand_files("*.pt", odd) == [odd / "s.pt"]


def test_expand_files_list_keeps_order(tmp_path):
    for n in ("b.pt", "a.pt"):
        write(tmp_path / "run" / n, n)
    got = fp.expand_files(["run/b.pt", "run/a.pt"], tmp_path)
    assert got == [tmp_path / "run" / "b.pt", tmp_path / "run" / "a.pt"]


@pytest.mark.parametrize("spec, message", [
    ("run/*.ckpt", r"^'run/\*\.ckpt' matches no file; "),
    ("run", r"^'run' matches no file; "),                     # a folder is not a file
    (["run/a.pt", "run/missing.pt"], r"^'run/missing\.pt': no such file in /"),
    (["run/a.pt", "run"], r"^'run' is a folder, not a file; .*'run/\*'"),
])
def test_expand_files_errors(tmp_path, spec, message):
    write(tmp_path / "run" / "a.pt", "a")
    with pytest.raises(ValueError, match=message) as e:
        fp.expand_files(spec, tmp_path)
    assert "\n" not in str(e.value)
