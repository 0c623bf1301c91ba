"""The stages stay apart: compute/ never imports vispy, render/ never imports torch, export/
imports neither (nor another stage), and the shared studio/ imports neither (nor any stage).
Checked statically on every source file, following imports through the project's own modules,
and by importing the modules."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("compute", "render", "studio", "export")

# what each package may not import, directly or through the project's own modules
FORBIDDEN = {
    "compute": {"vispy", "render"},
    "render": {"torch", "torchvision", "torchaudio", "compute", "export"},
    "studio": {"torch", "torchvision", "torchaudio", "vispy", "compute", "render", "export"},
    "export": {"torch", "torchvision", "torchaudio", "vispy", "compute", "render"},
}


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def source_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_file(name: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def direct_imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module a file imports, anywhere in it (functions included), as absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:                              # relative: from . / .. import
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            for a in node.names:                        # `from studio import cache` imports studio.cache
                full = f"{mod}.{a.name}" if mod else a.name
                if not mod or module_file(full, root) is not None:
                    out.add(full)
        elif isinstance(node, ast.Call):
            # importlib.import_module("x") / __import__("x") with a literal name
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                out.add(node.args[0].value)
    return {m for m in out if m}


def reachable(path: Path, root: Path = ROOT) -> dict[str, list[str]]:
    """Modules reachable from a file through the project's own modules -> {module: import chain}."""
    chains: dict[str, list[str]] = {}
    todo = [(path, [module_name(path, root)])]
    seen_files = {path}
    while todo:
        f, chain = todo.pop()
        for mod in direct_imports(f, root):
            parts = mod.split(".")
            names = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]   # parents run too
            for name in names:
                chains.setdefault(name, chain + [name])
                if parts[0] in PACKAGES:
                    g = module_file(name, root)
                    if g is not None and g not in seen_files:
                        seen_files.add(g)
                        todo.append((g, chain + [name]))
    return chains


def test_the_check_sees_imports(tmp_path):
    # the static check itself: every form of import is found, also through project modules
    (tmp_path / "render").mkdir()
    (tmp_path / "studio").mkdir()
    (tmp_path / "render" / "__init__.py").write_text("")
    (tmp_path / "studio" / "__init__.py").write_text("")
    (tmp_path / "studio" / "helper.py").write_text("def f():\n    from torch import nn\n")
    cases = {
        "import torch.nn as nn": "torch",
        "from torch.func import vmap": "torch",
        "def f():\n    import torch\n": "torch",
        "import importlib\nimportlib.import_module('torch')": "torch",
        "from .. import compute": "compute",
        "from studio import helper": "torch",
        "from . import other": None,
    }
    for code, bad in cases.items():
        f = tmp_path / "render" / "mod.py"
        f.write_text(code + "\n")
        roots = {m.split(".")[0] for m in reachable(f, tmp_path)}
        assert (bad in roots) if bad else not roots - {"render"}, (code, roots)

    found = set().union(*(direct_imports(f) for f in (ROOT / "studio" / "scene").glob("*.py")))
    assert {"yaml", "pydantic", "json"} <= found
    assert "studio.assets" in found                     # imported inside a validator function
    chains = reachable(ROOT / "compute" / "pipeline.py")
    assert "torch" in chains and "yaml" in chains       # yaml only through studio.scene
    assert chains["yaml"][0] == "compute.pipeline" and "studio.scene" in chains["yaml"]


@pytest.mark.parametrize("package", PACKAGES)
def test_static_imports(package):
    files = source_files(package)
    assert files, f"no sources under {package}/"
    problems = []
    for f in files:
        for mod, chain in sorted(reachable(f).items()):
            root = mod.split(".")[0]
            if root in FORBIDDEN[package] or mod in FORBIDDEN[package]:
                problems.append(f"{f.relative_to(ROOT)} imports {mod} (via {' -> '.join(chain)})")
    assert not problems, "\n".join(problems)


def run_python(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_compute_does_not_load_vispy():
    mods = sorted(module_name(f) for f in source_files("compute"))
    out = run_python(f"""
        import importlib, json, sys
        for m in {mods!r}:
            importlib.import_module(m)
        print(json.dumps({{"vispy": "vispy" in sys.modules, "render": "render" in sys.modules,
                          "torch": "torch" in sys.modules}}))
    """)
    assert out["torch"], "the check must load the compute stage for real"
    assert not out["vispy"] and not out["render"]


def test_render_does_not_load_torch():
    mods = sorted(module_name(f) for f in source_files("render"))
    out = run_python(f"""
        import importlib, json, sys
        ok, failed = [], {{}}
        for m in {mods!r}:
            try:
                importlib.import_module(m)
                ok.append(m)
            except Exception as e:      # the render stage may be mid-way: skip what does not import
                failed[m] = f"{{type(e).__name__}}: {{e}}"
        print(json.dumps({{"ok": ok, "failed": failed, "torch": sorted(k for k in sys.modules
                          if k.split(".")[0] in ("torch", "torchvision", "compute"))}}))
    """)
    assert "render" in out["ok"], out["failed"]
    assert out["torch"] == [], f"importing {out['ok']} loaded {out['torch'][:5]}"


def test_export_loads_neither():
    mods = sorted(module_name(f) for f in source_files("export"))
    out = run_python(f"""
        import importlib, json, sys
        for m in {mods!r}:
            importlib.import_module(m)
        print(json.dumps({{"loaded": sorted(k for k in sys.modules if k.split(".")[0] == "export"),
                          "stages": sorted(k for k in sys.modules
                                           if k.split(".")[0] in ("torch", "vispy", "compute", "render"))}}))
    """)
    assert "export.__main__" in out["loaded"] and "export.formats.vtp" in out["loaded"]
    assert out["stages"] == []


def test_studio_loads_neither():
    mods = sorted(module_name(f) for f in source_files("studio"))
    out = run_python(f"""
        import importlib, json, sys
        for m in {mods!r}:
            importlib.import_module(m)
        from studio.scene import Scene
        Scene()                              # building a scene (validators included) loads nothing more
        print(json.dumps(sorted(k for k in sys.modules
                                if k.split(".")[0] in ("torch", "vispy", "compute", "render"))))
    """)
    assert out == []
