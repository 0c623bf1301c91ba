"""The studio from a user's own Python: the cache folder a scene has wherever the code runs
(studio.cache.default_root), ``compute.landscape`` from another working directory, a Jupyter kernel
of the studio's environment, and the studio installed with ``pip install -e`` into an environment
of the user's."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio.cache import CACHE_ENV, default_root
from tests.conftest import ROOT

SCENE = """
landscape:
  data: {name: spirals, samples: 48}
  model: {name: mlp, widths: [6]}
  train: {steps: 8, snapshots: 3}
  grid: {resolution: [5, 4], eval_samples: 32}
"""


def project(tmp_path: Path) -> Path:
    """A user's project: pyproject.toml at its root, the scene in a folder of its own."""
    root = tmp_path / "myproject"
    (root / "films").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    scene = root / "films" / "first.yaml"
    scene.write_text(SCENE)
    return scene


def test_the_cache_follows_the_scenes_project(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    scene = project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert default_root(scene) == tmp_path / "myproject" / "cache"
    assert default_root(Path("myproject/films/first.yaml")) == (tmp_path / "myproject" / "cache").resolve()
    # a folder with a cache/ of its own counts as the project; a scene in no project: next to it
    loose = tmp_path / "loose" / "deep"
    loose.mkdir(parents=True)
    (loose / "s.yaml").write_text(SCENE)
    assert default_root(loose / "s.yaml") == loose / "cache"
    (tmp_path / "loose" / "cache").mkdir()
    assert default_root(loose / "s.yaml") == tmp_path / "loose" / "cache"
    # the environment variable wins; the studio's own scenes keep the repository's cache/
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "shared"))
    assert default_root(scene) == tmp_path / "shared"
    monkeypatch.delenv(CACHE_ENV)
    assert default_root(ROOT / "scenes" / "default.yaml") == ROOT / "cache"


def _python(code: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The studio's Python run from ``cwd``, with nothing of the repository on sys.path but what its
    installation put there."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", CACHE_ENV)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**clean, **(env or {})})


@pytest.mark.slow
def test_a_script_elsewhere_finds_what_the_command_line_computed(tmp_path):
    """python -m compute from the project's root, then compute.landscape from another folder: a cache
    hit in the project's cache/, no second computation, and nothing written where the script ran."""
    scene = project(tmp_path)
    r = subprocess.run([sys.executable, "-m", "compute", str(scene.relative_to(tmp_path / "myproject"))],
                       cwd=tmp_path / "myproject", capture_output=True, text=True, timeout=300,
                       env={k: v for k, v in os.environ.items() if k != CACHE_ENV})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "myproject" / "cache").is_dir()
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    r = _python(f"""
        from compute import landscape
        ls = landscape({str(scene)!r})
        print(ls.loss.shape, ls.meta["engine"]["method"])
        """, elsewhere)
    assert r.returncode == 0, r.stderr
    assert "(4, 5) linear" in r.stdout and "cache hit" in r.stderr and "grid 5x4" not in r.stderr
    assert not (elsewhere / "cache").exists()


@pytest.mark.slow
def test_a_jupyter_kernel_of_the_studios_environment(tmp_path):
    """What docs/your-network.md tells a notebook user: a kernel started with the studio's Python,
    working in another folder, imports the studio and gets the landscape."""
    jupyter_client = pytest.importorskip("jupyter_client")
    pytest.importorskip("ipykernel")
    scene = project(tmp_path)
    work = tmp_path / "notebooks"
    work.mkdir()
    km = jupyter_client.KernelManager()
    km.kernel_spec.argv[0] = sys.executable                # the studio's own Python
    km.start_kernel(cwd=str(work), env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", CACHE_ENV)})
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        out = []
        reply = kc.execute_interactive(
            f"from compute import landscape\nls = landscape({str(scene)!r}, progress=False)\n"
            f"print(ls.loss.shape, ls.meta['training']['final_step'])", timeout=300,
            output_hook=lambda msg: out.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "(4, 5) 8" in "".join(out)
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    assert (tmp_path / "myproject" / "cache").is_dir() and not (work / "cache").exists()


@pytest.mark.slow
def test_pip_install_editable_into_a_users_environment(tmp_path):
    """A user's own virtual environment, with torch and the rest already there (here: through a .pth
    that points at the studio's site-packages), gets the studio with pip install -e; its Python then
    imports compute, render's scene code and export from any folder."""
    import site
    env_dir = tmp_path / "userenv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "users_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(ROOT)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([str(py), "-c", "import compute, studio.scene, export, render; "
                                       "from compute import landscape; print(compute.__file__)"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).resolve() == (ROOT / "compute" / "__init__.py").resolve()
