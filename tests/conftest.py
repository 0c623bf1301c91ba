"""Shared fixtures and helpers: synthetic cache entries (no torch needed), scene files, camera
entries, the compute command line's errors, and the GL check.

Every test that draws (asks for the ``gl`` fixture, itself or through another fixture) is marked
``gl`` here (``pytest_collection_modifyitems``), so ``-m "not gl"`` leaves out every test that
makes a GL context.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("EGL_PLATFORM", "surfaceless")


def write_scene(tmp_path: Path, text: str, name: str = "scene.yaml") -> Path:
    """A scene file in tmp_path from an indented YAML text (dedented, leading blank lines dropped)."""
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def _bowl(a, b):
    return 0.05 + a**2 + 0.5 * b**2 + 0.2 * np.sin(3 * a) ** 2


#: extra synthetic paths (as if in-plane descents): name -> plane coordinates along t in [0, 1]
DESCENT_CURVES = {
    # a damped zig-zag across the valley, from the upper right
    "sgd": lambda t: np.stack([0.8 * (1 - t) * np.cos(9 * t), 1.3 * (1 - t) ** 1.5], axis=1),
    # a smooth arc from the lower left
    "adam": lambda t: np.stack([-1.7 * (1 - t) ** 1.2, -0.8 * (1 - t) * (1 + 0.8 * t)], axis=1),
    # a path that leaves the grid and comes back
    "wild": lambda t: np.stack([0.9 * np.cos(5 * t) * (1 - t), 1.4 * np.sin(5 * t) * (1 - t) + 0.2], axis=1),
}


def synthetic_landscape(key: str, nx: int = 120, ny: int = 100, nan_block: bool = False,
                        descents: tuple[str, ...] = (), accuracy: bool = False):
    """A bowl with ripples and a descending path, in the cache's format; ``descents``: names from
    DESCENT_CURVES added as further paths; ``accuracy``: an accuracy grid as well."""
    from studio.cache import Landscape, Path2D
    alpha = np.linspace(-2.0, 1.0, nx)
    beta = np.linspace(-1.0, 1.5, ny)
    A, B = np.meshgrid(alpha, beta)
    loss = _bowl(A, B).astype(np.float32)
    if nan_block:
        loss[:5, :5] = np.nan
    t = np.linspace(0, 1, 60)
    xy = np.stack([-1.8 * (1 - t) ** 2, 1.2 * (1 - t) * np.cos(4 * t)], axis=1)
    surf = _bowl(xy[:, 0], xy[:, 1])
    paths = {"training": Path2D("training", xy, surf * 1.01, surf, np.linspace(1, 0, 60), np.arange(60) * 10)}
    for name in descents:
        t = np.linspace(0, 1, 80)
        xy = DESCENT_CURVES[name](t)
        surf = _bowl(xy[:, 0], xy[:, 1])
        paths[name] = Path2D(name, xy, surf, surf, np.zeros(len(t)), np.arange(len(t)))
    meta = {"landscape": {"model": {"name": "mlp", "widths": [8], "activation": "tanh"},
                          "data": {"name": "spirals", "classes": 2},
                          "plane": {"method": "pca"}, "grid": {"resolution": [nx, ny]}}}
    grids = {}
    if accuracy:
        grids["accuracy"] = np.clip(1.0 - 0.45 * np.tanh(loss - 0.05), 0.5, 1.0).astype(np.float32)
    return Landscape(key, loss, alpha, beta, paths, meta, grids=grids)


def synthetic_sequence(k_all=4, nx=60, ny=50):
    """A landscape over training: a bowl that deepens and sharpens over 'training', as a cache entry."""
    from studio.cache import GridSequence, Landscape, Path2D
    alpha, beta = np.linspace(-1, 1, nx), np.linspace(-1, 1, ny)
    A, B = np.meshgrid(alpha, beta)
    grids = np.stack([(1.0 - 0.2 * k) * (0.3 + (1 + k) * (A ** 2 + B ** 2)) for k in range(k_all)]).astype(np.float32)
    t = np.linspace(0, 1, 3 * k_all - 2)
    xy = np.stack([0.8 * (1 - t), 0.6 * (1 - t)], axis=1)
    steps = np.arange(len(t)) * 10
    loss = np.array([1.0 - 0.2 * t_ for t_ in t])
    paths = {"training": Path2D("training", xy, loss, loss * 0.9, np.zeros(len(t)), steps)}
    idx = np.arange(0, len(t), 3)
    seq = GridSequence(grids, steps[idx], idx, xy[idx])
    return Landscape("seqtest", grids[-1].copy(), alpha, beta, paths, {"landscape": {}}, sequence=seq)


#: a camera state for the camera's tests to start from
CAMERA_HOME = {"target": [0.0, 0.0, 0.3], "azimuth": 30.0, "elevation": 30.0, "distance": 5.0, "fov": 35.0,
               "roll": 0.0}


def camera_entries(entries: list[dict]) -> list:
    """``render.camera`` entries as the scene loader gives them to the camera: each dict (a keyframe,
    or a shot with ``shot``, ``from``, ``to``) validated by the scene schema's own models."""
    from pydantic import TypeAdapter
    from studio.scene import CameraEntry
    adapter = TypeAdapter(CameraEntry)
    return [adapter.validate_python(e) for e in entries]


def cli_errors(tmp_path: Path, scene: Path, *args: str) -> list[str]:
    """Run `python -m compute SCENE` on a bad scene; check the exit status, that stderr is one
    ``error: ...`` line per problem and that nothing was written; return the problems."""
    before = sorted(p.name for p in tmp_path.iterdir())
    cache_dir = tmp_path / "cache"
    r = subprocess.run([sys.executable, "-m", "compute", str(scene), "--cache-dir", str(cache_dir), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), r.stderr
    # nothing created: no cache dir, no out/, no other file next to the scene
    assert not cache_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return [line[len("error: "):] for line in lines]


def cli_error(tmp_path: Path, scene: Path, *args: str) -> str:
    """:func:`cli_errors` for a scene with one problem: its one line."""
    lines = cli_errors(tmp_path, scene, *args)
    assert len(lines) == 1, lines
    return lines[0]


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.png from the current renderer instead of comparing with them "
                          "(also: STUDIO_REGEN_GOLDEN=1); look at the new frames before committing them")


@pytest.fixture
def regen_golden(request) -> bool:
    return bool(request.config.getoption("--regen-golden") or os.environ.get("STUDIO_REGEN_GOLDEN") == "1")


@pytest.fixture
def scene_with_cache(tmp_path):
    """Write a small scene and a synthetic cache entry under its key -> (scene path, cache dir)."""
    from studio import cache
    from studio.scene import load_scene

    def make(render_yaml: str = "", nx: int = 120, ny: int = 100, nan_block: bool = False,
             descents: tuple[str, ...] = (), accuracy: bool = False, title: str = "Test film"):
        p = tmp_path / "film.yaml"
        ds = "".join(f", {{name: {n}, start: [0.5, 0.5]}}" for n in descents)
        p.write_text("title: %s\nlandscape: {grid: {resolution: [%d, %d]}, descents: [%s]}\n%s"
                     % (title, nx, ny, ds[2:], render_yaml))
        scene = load_scene(p)
        cache.write(tmp_path / "cache", synthetic_landscape(scene.cache_key(), nx, ny, nan_block, descents, accuracy))
        return p, tmp_path / "cache"

    return make


@pytest.fixture
def torch_one_thread():
    """Tiny torch problems: a second thread only adds synchronisation, which costs a lot when the
    machine is busy (100x slower small ops with 2 threads on 2 loaded cores)."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_GL = None


def gl_available() -> tuple[bool, str]:
    global _GL
    if _GL is None:
        # Triton (which torch loads with torch._dynamo, e.g. for torch.optim) imported after Mesa's
        # llvmpipe has loaded its LLVM crashes the process (the two LLVMs' symbols clash); loaded
        # first, both work.  So GL tests followed by compute tests in one run are safe in any order.
        try:
            import triton  # noqa: F401
        except Exception:  # noqa: BLE001 - not installed (or not loadable): nothing to clash with
            pass
        try:
            from render.gl import renderer_info
            info = renderer_info()
            _GL = (True, info["renderer"])
        except Exception as e:  # noqa: BLE001
            _GL = (False, str(e))
    return _GL


@pytest.fixture
def gl():
    """An offscreen OpenGL context (the test is skipped with the reason when none can be made)."""
    ok, why = gl_available()
    if not ok:
        pytest.skip(f"no offscreen OpenGL context: {why}")
    return why


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark ``gl`` every test that asks for the gl fixture, itself or through the fixtures it uses
    (before ``-m`` selects by marks)."""
    for item in items:
        if "gl" in getattr(item, "fixturenames", ()) and item.get_closest_marker("gl") is None:
            item.add_marker(pytest.mark.gl)
