"""The render stage on synthetic cache entries: frames, films, stills, failures."""
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.gl

RENDER = "render:\n  size: [320, 180]\n  fps: 10\n  duration: 1.2\n"


def _film(scene_path, cache_dir, w=320, h=180, fps=10, duration=1.2):
    from render.film import Film, Options
    from studio import cache
    from studio.scene import load_scene
    scene = load_scene(scene_path)
    ls = cache.read(cache_dir, scene.cache_key())
    return Film(scene, ls, Options(w, h, fps, duration))


def _background_fraction(img, bg_rgb, tol=24):
    d = np.abs(img.astype(int) - np.array(bg_rgb)[None, None, :]).max(axis=-1)
    return float((d <= tol).mean())


def test_frame_shows_the_landscape(gl, scene_with_cache):
    p, c = scene_with_cache(RENDER)
    film = _film(p, c)
    try:
        img = film.frame(0.6)
    finally:
        film.close()
    assert img.shape == (180, 320, 3) and img.dtype == np.uint8
    bg = (5, 6, 10)
    land = 1 - _background_fraction(img, bg)
    # the terrain fills a good part of the frame, but is not cut off: the border is background
    assert 0.15 < land < 0.8, land
    border = np.concatenate([img[:3].reshape(-1, 3), img[-3:].reshape(-1, 3),
                             img[:, :3].reshape(-1, 3), img[:, -3:].reshape(-1, 3)])
    assert _background_fraction(border[None], bg, tol=30) > 0.9
    # colourful, not a flat blob: many distinct colours and a real spread of brightness
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 500
    assert img.mean(axis=-1).std() > 15


def test_trail_is_drawn_on_the_surface(gl, scene_with_cache):
    red = RENDER + "  paths: {training: {color: '#ff0000', width: 8, start: 0, end: 1.0}}\n"
    p, c = scene_with_cache(red)
    film = _film(p, c)
    try:
        late = film.frame(1.1)
    finally:
        film.close()
    reddish = (late[..., 0] > 200) & (late[..., 1] < 90) & (late[..., 2] < 90)
    assert reddish.sum() > 100


def test_nan_cells_do_not_break_the_frame(gl, scene_with_cache):
    p, c = scene_with_cache(RENDER, nan_block=True)
    film = _film(p, c)
    try:
        img = film.frame(0.0)
    finally:
        film.close()
    assert 1 - _background_fraction(img, (5, 6, 10)) > 0.1


def test_short_film_has_size_frames_and_codec(gl, scene_with_cache, tmp_path):
    from render.writer import probe
    p, c = scene_with_cache(RENDER)
    out = tmp_path / "out" / "film.mp4"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(out), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert info == {"codec": "h264", "pix_fmt": "yuv420p", "width": 320, "height": 180, "frames": 12}
    assert [f.name for f in out.parent.iterdir()] == ["film.mp4"]


def test_still_at_a_time(gl, scene_with_cache, tmp_path):
    from PIL import Image
    p, c = scene_with_cache(RENDER)
    out = tmp_path / "still.png"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(out),
                        "--still", "0.5", "--size", "400x300"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    im = np.asarray(Image.open(out))
    assert im.shape[:2] == (300, 400)
    assert 1 - _background_fraction(im[..., :3], (5, 6, 10)) > 0.1


def test_failed_render_leaves_no_file(gl, scene_with_cache, tmp_path, monkeypatch):
    from render import film as film_mod
    from render.film import Options, render_film
    from studio import cache
    from studio.scene import load_scene
    p, c = scene_with_cache(RENDER)
    scene = load_scene(p)
    ls = cache.read(c, scene.cache_key())
    calls = {"n": 0}
    real = film_mod.Film.frame

    def boom(self, t):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("interrupted")
        return real(self, t)

    monkeypatch.setattr(film_mod.Film, "frame", boom)
    out = tmp_path / "o" / "x.mp4"
    with pytest.raises(RuntimeError, match="interrupted"):
        render_film(scene, ls, out, Options(320, 180, 10, 1.2), 18, "ultrafast", progress=False)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_missing_cache_says_what_to_run(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("title: x\n")
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(tmp_path / "cache")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert "python -m compute" in r.stderr and str(p) in r.stderr
    assert not (tmp_path / "cache").exists() and not (ROOT / "out" / "s.mp4").exists()
