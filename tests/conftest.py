"""Shared fixtures: synthetic cache entries (no torch needed) and the GL check."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("EGL_PLATFORM", "surfaceless")


def synthetic_landscape(key: str, nx: int = 120, ny: int = 100, nan_block: bool = False):
    """A bowl with ripples and a descending path, in the cache's format."""
    from studio.cache import Landscape, Path2D
    alpha = np.linspace(-2.0, 1.0, nx)
    beta = np.linspace(-1.0, 1.5, ny)
    A, B = np.meshgrid(alpha, beta)
    loss = (0.05 + A**2 + 0.5 * B**2 + 0.2 * np.sin(3 * A) ** 2).astype(np.float32)
    if nan_block:
        loss[:5, :5] = np.nan
    t = np.linspace(0, 1, 60)
    xy = np.stack([-1.8 * (1 - t) ** 2, 1.2 * (1 - t) * np.cos(4 * t)], axis=1)
    surf = 0.05 + xy[:, 0] ** 2 + 0.5 * xy[:, 1] ** 2 + 0.2 * np.sin(3 * xy[:, 0]) ** 2
    path = Path2D("training", xy, surf * 1.01, surf, np.linspace(1, 0, 60), np.arange(60) * 10)
    meta = {"landscape": {"model": {"name": "mlp", "widths": [8], "activation": "tanh"},
                          "data": {"name": "spirals", "classes": 2},
                          "plane": {"method": "pca"}, "grid": {"resolution": [nx, ny]}}}
    return Landscape(key, loss, alpha, beta, {"training": path}, meta)


@pytest.fixture
def scene_with_cache(tmp_path):
    """Write a small scene and a synthetic cache entry under its key -> (scene path, cache dir)."""
    from studio import cache
    from studio.scene import load_scene

    def make(render_yaml: str = "", nx: int = 120, ny: int = 100, nan_block: bool = False):
        p = tmp_path / "film.yaml"
        p.write_text("title: Test film\nlandscape: {grid: {resolution: [%d, %d]}}\n%s" % (nx, ny, render_yaml))
        scene = load_scene(p)
        cache.write(tmp_path / "cache", synthetic_landscape(scene.cache_key(), nx, ny, nan_block))
        return p, tmp_path / "cache"

    return make


_GL = None


def gl_available() -> tuple[bool, str]:
    global _GL
    if _GL is None:
        try:
            from render.gl import renderer_info
            info = renderer_info()
            _GL = (True, info["renderer"])
        except Exception as e:  # noqa: BLE001
            _GL = (False, str(e))
    return _GL


@pytest.fixture
def gl():
    ok, why = gl_available()
    if not ok:
        pytest.skip(f"no offscreen OpenGL context: {why}")
    return why
