"""render.film (and the command line that runs it, render/__main__.py) on synthetic cache entries:
frames, films, stills, tiles, supersampling, the look's options, trails (several descents, their
fade-in), loops, follow shots in a film, failures, and the command line's --size.  The overlays'
layout is tests/render/test_overlay.py's."""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from studio import cache
from studio.scene import load_scene
from tests.conftest import DESCENT_TRAILS_SCENE as RENDER_SCENE
from tests.conftest import FILM_BARE
from tests.conftest import FILM_RENDER as RENDER
from tests.conftest import ROOT, frame_diff, synthetic_with_descents, write_scene
from tests.conftest import background_fraction as _background_fraction
from tests.conftest import frame_diff as _diff
from tests.conftest import render_film as _film
from tests.conftest import render_frame as _frame


def test_frame_shows_the_landscape(gl, scene_with_cache):
    p, c = scene_with_cache(RENDER)
    with _film(p, c) as film:
        img = film.frame(0.6)
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
    """The trail's pixels lie where the camera projects the path set on the terrain's surface (its
    height there read from the terrain's own points), and they cover that projection; the same path
    lifted off the surface would be drawn elsewhere."""
    from render.camera import project_points
    red = RENDER + "  paths: {training: {color: '#ff0000', width: 8, start: 0, end: 1.0}}\n"
    p, c = scene_with_cache(red)
    with _film(p, c, clean=True) as film:            # clean: no read-out, whose swatch is red too
        late = film.frame(1.1)
        trail, terrain, s = film.trails[0][0], film.terrain, film.camera.state(1.1)
        film.trails = []
        bare = film.frame(1.1)                        # the same view without the trail
    # the trail's pixels: changed by it, towards red (magma has reddish terrain of its own)
    change = late.astype(int) - bare.astype(int)
    reddish = (np.abs(change).sum(axis=-1) > 60) & (change[..., 0] > change[..., 1] + 40)
    assert reddish.sum() > 100
    path = trail.points[::10].astype(np.float64)
    ground = terrain.positions.astype(np.float64)
    under = np.argmin(((path[:, None, :2] - ground[None, :, :2]) ** 2).sum(-1), axis=1)
    on_surface = np.c_[path[:, :2], ground[under, 2]]
    ys, xs = np.nonzero(reddish)
    red_px = np.c_[xs + 0.5, ys + 0.5]

    def seen(points):
        """(how far each red pixel is from the projected points, the share of the points with a red
        pixel within 2 pixels)"""
        px = project_points(points, s, 320, 180, terrain.radius)[:, :2]
        d = np.sqrt(((red_px[:, None] - px[None]) ** 2).sum(-1))
        return d.min(axis=1), float((d.min(axis=0) < 2).mean())

    off, covered = seen(on_surface)
    assert np.percentile(off, 95) < 3 and covered > 0.8, (np.percentile(off, 95), covered)
    lifted = on_surface + [0, 0, 0.1 * terrain.heights.top]
    assert seen(lifted)[1] < 0.3


def test_nan_cells_do_not_break_the_frame(gl, scene_with_cache):
    p, c = scene_with_cache(RENDER, nan_block=True)
    img = _frame(p, c, 0.0)
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


@pytest.mark.parametrize("fmt, codec, pix_fmt", [("mov", "prores", "yuv422p10le"), ("webm", "vp9", "yuv420p"),
                                                 ("gif", "gif", None)])
def test_other_film_formats(gl, scene_with_cache, tmp_path, fmt, codec, pix_fmt):
    """ProRes for editing, VP9 for the web, GIF for slides: from output.format or --format, each at
    the scene's path with its own suffix, each frame the film's (decoded and compared)."""
    from render.writer import probe
    p, c = scene_with_cache(RENDER + f"output: {{format: {fmt}, path: {tmp_path / 'films' / ('f.' + fmt)}}}\n")
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "films" / f"f.{fmt}"
    assert [f.name for f in out.parent.iterdir()] == [out.name]       # nothing partial left beside it
    info = probe(out)
    assert (info["codec"], info["width"], info["height"], info["frames"]) == (codec, 320, 180, 12), info
    if pix_fmt:
        assert info["pix_fmt"] == pix_fmt
    # the same frame as the one the film stage draws, within the format's loss (decoded by ffmpeg,
    # and a GIF also by Pillow, a decoder of its own, as a browser or slide program would)
    import imageio_ffmpeg
    want = _frame(p, c, 0.6)
    gen = imageio_ffmpeg.read_frames(str(out))
    next(gen)
    decoded = [np.frombuffer(f, np.uint8).reshape(180, 320, 3) for f in gen]
    assert len(decoded) == 12
    tol = {"mov": 2.0, "webm": 3.0, "gif": 3.0}[fmt]
    assert np.abs(decoded[6].astype(int) - want.astype(int)).mean() < tol
    if fmt == "gif":
        from PIL import Image, ImageSequence
        with Image.open(out) as im:
            frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        assert len(frames) == 12 and np.abs(frames[6].astype(int) - want.astype(int)).mean() < tol
    # --format on the command line: the scene's path with that format's suffix
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--quiet",
                        "--format", "mp4", "--frames", "2"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert probe(tmp_path / "films" / "f.mp4")["codec"] == "h264"


TRANSPARENT = RENDER + ("  look: {background: transparent, supersample: 2}\n"
                         "  paths: {training: {color: '#ffcc00', width: 10}}\n"
                         "  captions: [{text: 'A caption', from: 0, to: 2}]\n")


def test_a_transparent_frame_over_black_is_the_frame_on_black(gl, scene_with_cache):
    """No background: RGBA with straight colours whose composite over black is, to rounding, the
    frame drawn on a black background (fog, the additive glow of the trail and the text included)."""
    p, c = scene_with_cache(TRANSPARENT + "output: {format: png}\n")
    clear = _frame(p, c, 1.0, 640, 360)
    p, c = scene_with_cache(TRANSPARENT.replace("background: transparent", "background: ['#000000', '#000000']"))
    black = _frame(p, c, 1.0, 640, 360)
    assert clear.shape == (360, 640, 4) and black.shape == (360, 640, 3)
    over = clear[..., :3].astype(float) * clear[..., 3:4] / 255.0
    d = np.abs(over - black)
    assert d.max() <= 1.0 and d.mean() < 0.2, (d.max(), d.mean())
    a = clear[..., 3]
    assert a[:4, :4].max() == 0 and a[-4:, -4:].max() == 0            # no background in the corners
    assert (a == 255).sum() > 1000 and 0.1 < (a > 0).mean() < 0.8      # the terrain is there, opaque in part
    assert ((a > 0) & (a < 255)).sum() > 100                            # fog and edges: partly transparent


@pytest.mark.parametrize("fmt", ["mov", "webm", "png"])
def test_transparent_films_keep_their_alpha(gl, scene_with_cache, tmp_path, fmt):
    import imageio_ffmpeg
    from PIL import Image
    from render.writer import probe
    out = tmp_path / "films" / ("f_frames" if fmt == "png" else f"f.{fmt}")
    p, c = scene_with_cache(TRANSPARENT + f"output: {{format: {fmt}, path: {out}}}\n")
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--quiet", "--frames", "4"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if fmt == "png":
        frames = [np.asarray(Image.open(f)) for f in sorted(out.iterdir())]
    else:
        info = probe(out)
        assert (info["codec"], info["width"], info["height"], info["frames"]) == (
            {"mov": "prores", "webm": "vp9"}[fmt], 320, 180, 4), info
        if fmt == "mov":
            assert info["pix_fmt"].startswith("yuva444p"), info
        # VP9 keeps its alpha in a side stream that only libvpx's own decoder reads
        gen = imageio_ffmpeg.read_frames(str(out), pix_fmt="rgba", bpp=4,
                                         input_params=["-c:v", "libvpx-vp9"] if fmt == "webm" else [])
        next(gen)
        frames = [np.frombuffer(f, np.uint8).reshape(180, 320, 4) for f in gen]
    assert len(frames) == 4 and frames[0].shape == (180, 320, 4)
    a = frames[-1][..., 3].astype(int)
    assert a[:3, :3].max() <= 8 and a.max() >= 247                      # clear corners, an opaque terrain
    assert 0.1 < (a > 128).mean() < 0.8


def test_transparency_needs_a_format_with_alpha(gl, scene_with_cache, tmp_path):
    from studio.scene import SceneError
    p, c = scene_with_cache(TRANSPARENT + "output: {format: png}\n")
    out = tmp_path / "o" / "f.gif"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--quiet", "--format", "gif",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"error: {p}:") and "render.look.background: bad value 'transparent'" in r.stderr
    assert "png, mov or webm" in r.stderr and "gif has none" in r.stderr
    assert not (tmp_path / "o").exists()
    # the format is the render stage's choice (render --format can change it): a scene asking for an
    # mp4 still loads, and rendering it stops with the line of the background
    q = tmp_path / "q.yaml"
    q.write_text("render:\n  look:\n    background: transparent\n")
    assert load_scene(q).render.look.transparent
    r = subprocess.run([sys.executable, "-m", "render", str(q), "--cache-dir", str(c), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {q}:3: render.look.background: bad value 'transparent'")
    assert "mp4 has none" in r.stderr
    q.write_text("render:\n  look:\n    background: transparent\noutput: {format: mov}\n"
                 "compare:\n  panels: [{}, {landscape: {grid: {seed: 1}}}]\n")
    with pytest.raises(SceneError, match="a comparison"):
        load_scene(q)


def test_auto_stride():
    from render.film import auto_stride
    assert auto_stride((1000, 1000), 1920, 1080) == 1            # a million points at 1080p: all of them
    assert auto_stride((4096, 4096), 1920, 1080) == 2            # 16.7 million: every second point
    assert auto_stride((4096, 4096), 3840, 2160) == 1            # at 4K there are pixels for them all
    assert auto_stride((1000, 1000), 640, 360) == 2
    assert auto_stride((100, 100), 640, 360, stride=3) == 3      # never less than asked (previews)


def test_a_grid_denser_than_the_pixels_is_drawn_thinner_and_looks_the_same(gl, scene_with_cache, monkeypatch):
    from render import film as film_mod
    # (no dissolving border: its seeded thinning differs between grids of different sizes)
    p, c = scene_with_cache(RENDER + "  title_card: false\n  look: {edge: 0}\n", nx=600, ny=500)
    thin = _frame(p, c, 0.6)                          # 320x180: 115,200 points at most, of 300,000
    monkeypatch.setattr(film_mod, "POINTS_PER_PIXEL", 1e9)
    full = _frame(p, c, 0.6)
    d = np.abs(thin.astype(int) - full.astype(int))
    assert d.mean() < 2.0 and np.percentile(d, 99) < 40, (d.mean(), np.percentile(d, 99))
    monkeypatch.undo()
    with _film(p, c) as f:
        assert f.stride == 2 and f.terrain.level.shape == (250, 300)
        assert f.note == ("drawing every 2nd row and column of the 600x500 grid at 320x180: more than 2 points a "
                          "pixel would not show")


def test_a_looping_film_runs_from_its_last_frame_into_its_first(gl, scene_with_cache):
    """render.loop: the opening dissolves from the held end into the beginning, so frame 0 is the
    film's end and the film is unchanged after the dissolve."""
    from render.film import Looped, Options, looped
    text = RENDER + "  title_card: false\n  loop: 0.5\n  paths: {training: {color: '#ff0000', width: 8}}\n"
    p, c = scene_with_cache(text)
    with _film(p, c) as plain, looped(_film(p, c), Options(320, 180, 10, 1.2)) as film:
        assert isinstance(film, Looped)
        np.testing.assert_array_equal(film.frame(0.0), plain.frame(1.2))      # the held end
        np.testing.assert_array_equal(film.frame(0.5), plain.frame(0.5))      # the film itself again
        np.testing.assert_array_equal(film.frame(1.1), plain.frame(1.1))
        mid = film.frame(0.25).astype(int)
        a, b = plain.frame(0.25).astype(int), plain.frame(1.45).astype(int)
        assert np.abs(mid - (a + b) / 2).mean() < 1.0                          # halfway through the dissolve
        # the seam: the last frame and the first differ about as much as neighbouring frames do
        seam = np.abs(film.frame(1.1).astype(int) - film.frame(0.0).astype(int)).mean()
        step = np.abs(film.frame(1.0).astype(int) - film.frame(1.1).astype(int)).mean()
        assert seam < 3 * step + 0.5, (seam, step)


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
    p, c = scene_with_cache(RENDER)
    scene = load_scene(p)
    ls = cache.read(c, scene.cache_key())
    calls = {"n": 0}
    real = film_mod.Film.finish          # a frame's second half, on write_film's finishing thread

    def boom(self, t):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("interrupted")
        return real(self, t)

    monkeypatch.setattr(film_mod.Film, "finish", boom)
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


def test_cli_size_accepts_presets():
    import argparse
    from render.__main__ import _size
    assert _size("4k") == (3840, 2160) and _size("720p") == (1280, 720) and _size("640x360") == (640, 360)
    assert _size("20000x10000") == (20000, 10000)          # stills may be larger than films
    with pytest.raises(argparse.ArgumentTypeError, match="1920x1080"):
        _size("big")


# ----------------------------------------------------------------------------- look and output

TILED = RENDER + ("  title_card: false\n  look: {background: ['#182038', '#05060a'], point_size: 5}\n"
                  "  paths: {training: {color: '#ffcc00', width: 14, end: 0.8}}\n"
                  "  captions: [{text: 'Tiles', subtitle: 'stitched', position: lower_third, from: 0, to: 2}]\n")


def test_tiled_still_matches_the_one_piece_still(gl, scene_with_cache):
    from render import gl as glmod
    p, c = scene_with_cache(TILED)
    whole = _frame(p, c, 1.0, 400, 300)
    tiles = glmod.plan_tiles(400, 300, 120, 20)
    assert len(tiles) >= 6
    tiled = _frame(p, c, 1.0, 400, 300, max_tile=120)
    assert tiled.shape == whole.shape == (300, 400, 3)
    mad, p99, _ = _diff(whole, tiled)
    assert mad < 0.05 and p99 <= 1, (mad, p99)
    # the thick trail and the large (near, depth-scaled) points cross tile seams unbroken
    world = TILED.replace("point_size: 5", "point_units: world, point_size: 0.03")
    p, c = scene_with_cache(world)
    mad, p99, _ = _diff(_frame(p, c, 1.0, 400, 300), _frame(p, c, 1.0, 400, 300, max_tile=96))
    assert mad < 0.05 and p99 <= 1, (mad, p99)


def test_tiled_still_from_the_cli(gl, scene_with_cache, tmp_path):
    # STUDIO_MAX_TILE forces tiling; the still is the one-piece frame, overlays included
    import os
    from PIL import Image
    p, c = scene_with_cache(TILED)
    out = tmp_path / "stills" / "big.png"
    env = dict(os.environ, STUDIO_MAX_TILE="100")
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(out),
                        "--still", "1.0", "--size", "480x270"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    im = np.asarray(Image.open(out))
    assert im.shape == (270, 480, 3)
    mad, p99, _ = _diff(im, _frame(p, c, 1.0, 480, 270))
    assert mad < 0.05 and p99 <= 1, (mad, p99)
    assert sorted(f.name for f in out.parent.iterdir()) == ["big.png"]
    # a tile size that cannot hold the margin is one clear error
    env["STUDIO_MAX_TILE"] = "12"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(out),
                        "--still", "1.0", "--size", "480x270"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "at least 32 pixels" in r.stderr and "Traceback" not in r.stderr


def test_png_sequence(gl, scene_with_cache, tmp_path):
    from PIL import Image
    p, c = scene_with_cache(RENDER + "output: {format: png}\n")
    out = tmp_path / "o" / "frames"
    cmd = [sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(out), "--quiet"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"frame_{i:06d}.png" for i in range(12)]
    for f in files:
        with Image.open(f) as im:
            assert im.size == (320, 180) and im.mode == "RGB"
    # the sequence is the film's frames
    np.testing.assert_array_equal(np.asarray(Image.open(files[6])), _frame(p, c, 0.6))
    assert sorted(x.name for x in out.parent.iterdir()) == ["frames"]
    # a second render replaces the whole directory (no frame left over from the first)
    r = subprocess.run(cmd + ["--frames", "4"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(list(out.iterdir())) == 4
    assert sorted(x.name for x in out.parent.iterdir()) == ["frames"]


def test_png_sequence_default_path_and_format_flag(gl, scene_with_cache, tmp_path):
    p, c = scene_with_cache(RENDER + "output: {path: " + str(tmp_path / "films" / "f.mp4") + "}\n")
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--quiet",
                        "--format", "png", "--frames", "3"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(x.name for x in (tmp_path / "films").iterdir()) == ["f_frames"]
    assert len(list((tmp_path / "films" / "f_frames").iterdir())) == 3


def test_failed_png_sequence_leaves_nothing(gl, scene_with_cache, tmp_path, monkeypatch):
    from render import film as film_mod
    from render.film import Options, render_film
    from studio import cache
    p, c = scene_with_cache(RENDER)
    scene = load_scene(p)
    ls = cache.read(c, scene.cache_key())
    out = tmp_path / "o" / "frames"
    # an earlier, complete sequence stays as it was
    render_film(scene, ls, out, Options(320, 180, 10, 1.2), 18, "ultrafast", progress=False, max_frames=2,
                fmt="png")
    before = sorted(f.name for f in out.iterdir())
    calls = {"n": 0}
    real = film_mod.Film.finish          # a frame's second half, on write_film's finishing thread

    def boom(self, t):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, t)

    monkeypatch.setattr(film_mod.Film, "finish", boom)
    with pytest.raises(KeyboardInterrupt):
        render_film(scene, ls, out, Options(320, 180, 10, 1.2), 18, "ultrafast", progress=False, fmt="png")
    assert sorted(f.name for f in out.iterdir()) == before
    assert sorted(x.name for x in out.parent.iterdir()) == ["frames"]
    new = tmp_path / "o" / "new"
    with pytest.raises(KeyboardInterrupt):
        calls["n"] = 0
        render_film(scene, ls, new, Options(320, 180, 10, 1.2), 18, "ultrafast", progress=False, fmt="png")
    assert not new.exists() and sorted(x.name for x in out.parent.iterdir()) == ["frames"]


def test_failed_still_leaves_nothing(gl, scene_with_cache, tmp_path, monkeypatch):
    from PIL import Image
    from render.film import Options, render_still
    from studio import cache
    p, c = scene_with_cache(RENDER)
    scene = load_scene(p)
    ls = cache.read(c, scene.cache_key())
    out = tmp_path / "s" / "still.png"

    def broken_save(self, fp, *a, **k):          # dies half way through writing the file
        fp.write(b"\x89PNG\r\n\x1a\n partial")    # (the still is saved into an open temporary file)
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        render_still(scene, ls, out, Options(320, 180, 10, 1.2), 0.5)
    assert list(out.parent.iterdir()) == []


def test_background_gradient_top_to_bottom(gl, scene_with_cache):
    p, c = scene_with_cache(RENDER + "  title_card: false\n  paths: {}\n"
                            "  look: {background: ['#c02010', '#1030a0'], fog: 0}\n")
    img = _frame(p, c, 0.6)
    top, bottom = img[0, -1].astype(int), img[-1, -1].astype(int)
    assert np.abs(top - [0xc0, 0x20, 0x10]).max() <= 2, top
    assert np.abs(bottom - [0x10, 0x30, 0xa0]).max() <= 2, bottom
    mid = img[90, -1].astype(int)                  # halfway: halfway between
    assert np.abs(mid - ([0xc0, 0x20, 0x10] + np.array([0x10, 0x30, 0xa0])) / 2).max() <= 4, mid
    # red falls and blue rises steadily down the right edge (the terrain does not reach it)
    edge = img[:, -1].astype(int)
    assert np.all(np.diff(edge[:, 0]) <= 0) and np.all(np.diff(edge[:, 2]) >= 0)


def test_one_background_colour_is_the_bottom_of_a_faint_gradient(gl, scene_with_cache):
    p, c = scene_with_cache(RENDER + "  title_card: false\n  look: {background: '#05060a'}\n")
    img = _frame(p, c, 0.6)
    assert np.abs(img[-1, -1].astype(int) - [5, 6, 10]).max() <= 1
    assert 5 < img[0, -1].astype(int).sum() - 21 < 60          # a little lighter at the top


def test_box_downsample():
    from render.film import box_downsample
    img = np.zeros((4, 6, 3), np.uint8)
    img[:2, :2] = 255
    img[2:, 4:] = [10, 20, 30]
    img[0, 2] = 101
    out = box_downsample(img, 2)
    assert out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [255] * 3 and out[1, 2].tolist() == [10, 20, 30]
    assert out[0, 1].tolist() == [25] * 3        # 101 / 4 = 25.25, rounded
    assert box_downsample(img, 1) is img


def test_supersample_output_size_and_smoother_edges(gl, scene_with_cache):
    # (a hard border, whose steps are what supersampling smooths, on
    # the plain surface of the grid's own points)
    plain_look = "edge: 0, min_grid: 0, occlusion: 0, light: {specular: 0}"
    p, c = scene_with_cache(RENDER + "  title_card: false\n  look: {" + plain_look + "}\n")
    plain = _frame(p, c, 1.1)
    p, c = scene_with_cache(RENDER + "  title_card: false\n  look: {supersample: 3, " + plain_look + "}\n")
    smooth = _frame(p, c, 1.1)
    assert smooth.shape == plain.shape == (180, 320, 3)
    # the same picture...
    assert _diff(plain, smooth)[0] < 8
    # ...with intermediate colours along the edges: more distinct colours, and softer steps at the
    # terrain's silhouette (the largest jump between neighbouring pixels is rarer)
    def colours(im):
        return len(np.unique(im.reshape(-1, 3), axis=0))
    assert colours(smooth) > 1.3 * colours(plain)
    def hard_steps(im):
        g = im.astype(int).sum(axis=-1)
        return int((np.abs(np.diff(g, axis=1)) > 250).sum() + (np.abs(np.diff(g, axis=0)) > 250).sum())
    assert hard_steps(smooth) < 0.75 * hard_steps(plain)


def test_point_options(gl, scene_with_cache):
    base = RENDER + "  title_card: false\n"
    p, c = scene_with_cache(base)
    ref = _frame(p, c, 0.6)
    # (min_grid: 0: the grid's own points, whose spacing the sizes below are measured against)
    for look in ("{point_units: world, min_grid: 0}", "{depth_scale: false}", "{point_size: 24}"):
        p, c = scene_with_cache(base + f"  look: {look}\n")
        img = _frame(p, c, 0.6)
        land = 1 - _background_fraction(img, (5, 6, 10))
        assert 0.15 < land < 0.8, (look, land)
        assert _diff(ref, img)[0] > 0.05, look
    # world units: tiny points leave the background showing through, large ones cover it
    p, c = scene_with_cache(base + "  look: {point_units: world, point_size: 0.003, min_grid: 0}\n")
    sparse = 1 - _background_fraction(_frame(p, c, 0.6), (5, 6, 10))
    p, c = scene_with_cache(base + "  look: {point_units: world, point_size: 0.03, min_grid: 0}\n")
    dense = 1 - _background_fraction(_frame(p, c, 0.6), (5, 6, 10))
    assert dense > sparse + 0.05, (sparse, dense)


def test_several_trails_each_in_its_colour(gl, scene_with_cache):
    paths = ("  paths:\n    training: {color: '#ff2020', end: 1.0}\n    sgd: {color: '#20ff20', end: 1.0}\n"
             "    adam: {color: '#4060ff', end: 1.0}\n")
    p, c = scene_with_cache(RENDER + "  title_card: false\n" + paths, descents=("sgd", "adam"))
    img = _frame(p, c, 1.1, 640, 360).astype(int)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    assert ((r > 200) & (g < 110) & (b < 110)).sum() > 150
    assert ((g > 200) & (r < 140) & (b < 140)).sum() > 150
    assert ((b > 200) & (r < 140) & (g < 170)).sum() > 150


@pytest.mark.gl
def test_several_descent_trails_in_one_frame(gl, tmp_path):
    from render.film import Film, Options
    scene_path = write_scene(tmp_path, RENDER_SCENE, "film.yaml")
    scene = load_scene(scene_path)
    cache.write(tmp_path / "cache", synthetic_with_descents(scene))
    ls = cache.read(tmp_path / "cache", scene.cache_key(), str(scene_path), descents=scene.landscape.descents)
    assert set(ls.paths) == {"training", "red", "green", "blue"}
    film = Film(scene, ls, Options(320, 180, 10, 1.2))
    try:
        early = film.frame(0.05)                  # green has not started, blue is never over the grid
        late = film.frame(1.15)
    finally:
        film.close()
    def count(img, ch):
        others = [c for c in range(3) if c != ch]
        return int(((img[..., ch] > 200) & (img[..., others[0]] < 90) & (img[..., others[1]] < 90)).sum())
    assert count(late, 0) > 60, count(late, 0)              # red
    assert count(late, 1) > 60, count(late, 1)              # green
    assert count(early, 1) < count(late, 1)
    # the three read-out lines (each with its dot) are at the bottom left, over the background
    corner = late[int(180 * 0.55):, : int(320 * 0.2)]
    assert count(corner, 0) > 0 and count(corner, 1) > 0 and count(corner, 2) > 0


def test_trails_fade_in_after_their_start(gl, scene_with_cache):
    from render.film import TRAIL_FADE, Film, Options
    from studio import cache
    p, c = scene_with_cache("render:\n  fps: 10\n  duration: 4\n  paths: {training: {start: 1.0, end: 3.0}}\n")
    scene = load_scene(p)
    film = Film(scene, cache.read(c, scene.cache_key()), Options(160, 90, 10, 4.0))
    try:
        def head_alpha(t: float) -> float:
            sprites, _ = film._trail_sprites(t)
            return max((float(b[1][:, 3].max()) for b in sprites), default=0.0)
        alphas = [head_alpha(1.0 + f * TRAIL_FADE) for f in (0.0, 0.1, 0.3, 0.6, 1.0, 2.0)]
        assert alphas[0] == 0.0 and 0 < alphas[1] < 0.1
        assert np.all(np.diff(alphas) >= 0) and alphas[-2] == alphas[-1] == pytest.approx(1.0)
    finally:
        film.close()



def test_color_by_accuracy_without_a_grid_is_a_clear_error(gl, scene_with_cache, tmp_path):
    p, c = scene_with_cache(RENDER + "  look: {color_by: accuracy}\n")
    out = tmp_path / "o" / "f.mp4"
    r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    msg = r.stderr.strip()
    assert msg.startswith(f"error: {p}: render.look.color_by") and "\n" not in msg
    assert "accuracy grid" in msg and "has none" in msg and "Traceback" not in msg
    assert not out.parent.exists()
    # with an accuracy grid in the entry the film colours by it
    p, c = scene_with_cache(RENDER + "  look: {color_by: accuracy}\n", accuracy=True)
    acc = _frame(p, c, 0.6)
    p, c = scene_with_cache(RENDER, accuracy=True)
    assert _diff(acc, _frame(p, c, 0.6))[0] > 2


def test_close_up_reads_as_a_surface_not_rows_of_dots(gl, scene_with_cache, monkeypatch):
    # a camera 0.3 units from a 120x100 grid: neighbours lie ~15 pixels apart there, far more
    # than a 2-pixel point grown 3x.  Depth-scaled points are never smaller than the grid's spacing.
    from render.film import Film
    close = FILM_BARE + ("  title_card: false\n  look: {colormap: viridis, fog: 0, edge: 0, min_grid: 0}\n"
                      "  camera: [{t: 0, target: [0.3, 0.0, 0.05], distance: 0.3, elevation: 40, azimuth: 20,"
                      " fov: 40}]\n")
    p, c = scene_with_cache(close)
    lower = _frame(p, c, 0.5)[:150]                 # all but the read-out line: only terrain
    gaps = _background_fraction(lower, (5, 6, 10), tol=20)
    monkeypatch.setattr(Film, "_cloud_floor", lambda self, mvp: 0.0)
    dotted = _background_fraction(_frame(p, c, 0.5)[:150], (5, 6, 10), tol=20)
    assert dotted > 0.2, dotted                     # without the floor: the sky between the rows
    assert gaps < 0.01, gaps


# ----------------------------------------------------------------------------- the camera in a film

def test_without_camera_entries_the_film_finds_its_camera(gl, scene_with_cache):
    """No render.camera: the automatic camera (render/camera/auto.py), from the whole terrain at a
    high angle down to where the training path ends, the end in the frame."""
    from render.camera.auto import HIGH
    from render.camera.projection import project_points
    p, c = scene_with_cache(FILM_BARE + "  paths: {training: {}}\n")
    with _film(p, c) as film:
        start, end = film.camera.state(0.0), film.camera.state(1.2)
        head = film.trails[0][0].points[-1]
        frames = [film.frame(t) for t in (0.0, 0.6, 1.2)]
    assert start["elevation"] == pytest.approx(HIGH, abs=0.5) and end["distance"] < 0.8 * start["distance"]
    px = project_points(head[None, :], end, 320, 180, 3.0)[0]
    assert 0 < px[0] < 320 and 0 < px[1] < 180
    assert all(f.std() > 10 for f in frames) and np.abs(frames[0].astype(int) - frames[2]).mean() > 5


def test_follow_shot_renders_and_any_frame_renders_alone(gl, scene_with_cache):
    from render import camera as cam
    text = ("render:\n  size: [320, 180]\n  fps: 10\n  duration: 4\n"
            "  paths: {training: {color: '#ff0000', width: 8, start: 0.0, end: 3.5}}\n"
            "  camera:\n"
            "    - {t: 0, azimuth: 20, elevation: 40}\n"
            "    - {shot: follow, from: 0.5, to: 4, path: training, distance: 0.9, elevation: 30,\n"
            "       azimuth: -60, lag: 0.3, blend: 0.8}\n")
    p, c = scene_with_cache(text)
    with _film(p, c, duration=4.0) as film:
        frames = {i / 10: film.frame(i / 10) for i in range(0, 40, 3)}
        follow = film.camera.shots[0]
        for t in (1.5, 2.4, 3.3):
            s = film.camera.state(t)
            head = follow.track.head(t)
            gap = np.linalg.norm(cam.eye_position(s) - head)
            assert abs(gap - 0.9) <= cam.LEASH * 0.9 + 1e-9
            # the head is near the middle of the frame
            px = cam.project_points(head[None], s, 320, 180, film.terrain.radius)[0]
            assert abs(px[0] - 160) < 40 and abs(px[1] - 90) < 30, px
    img = frames[2.4]
    reddish = (img[..., 0] > 180) & (img[..., 1] < 110) & (img[..., 2] < 110)
    assert reddish.sum() > 30                      # the trail under the camera
    assert img.mean(axis=-1).std() > 10            # terrain, not an empty frame
    # a frame drawn on its own (as --still does) is the frame of the film
    np.testing.assert_array_equal(_frame(p, c, 2.4, duration=4.0), img)


def test_follow_a_path_that_is_not_drawn(gl, scene_with_cache):
    text = ("render:\n  size: [160, 90]\n  fps: 10\n  duration: 3\n  paths: {training: {}}\n"
            "  camera:\n    - {shot: follow, from: 0, to: 3, path: adam, distance: 1.0, lag: 0}\n")
    p, c = scene_with_cache(text, descents=("adam",))      # the synthetic entry holds the descents as paths
    with _film(p, c, 160, 90, duration=3.0) as film:
        track = film.camera.shots[0].track
        # timed like a drawn path with the default style: complete at 85% of the film
        np.testing.assert_allclose(track.head(2.55), track.points[-1], atol=1e-9)
        np.testing.assert_allclose(film.camera.state(1.2)["target"], track.head(1.2), atol=1e-9)
        assert film.frame(1.2).shape == (90, 160, 3)


def test_a_follow_shot_on_a_path_the_cache_lacks_is_a_clear_error(scene_with_cache):
    # the film finds the path a follow shot rides before it makes a GL context
    from render.film import Film, Options
    from render.look import LookError
    from studio import cache
    text = ("render:\n  size: [160, 90]\n  fps: 10\n  duration: 3\n  paths: {training: {}}\n"
            "  camera:\n    - {shot: follow, from: 0, to: 3, path: adam}\n")
    p, c = scene_with_cache(text, descents=("adam",))
    scene = load_scene(p)
    ls = cache.read(c, scene.cache_key())
    stale = dataclasses.replace(ls, paths={"training": ls.paths["training"]})
    with pytest.raises(LookError, match="rides the path 'adam', and the cache has no path of that name"):
        Film(scene, stale, Options(160, 90, 10, 3.0))


def test_frames_finished_beside_the_drawing_are_the_frames_drawn_one_by_one(gl, scene_with_cache):
    """write_film finishes each frame (post passes, overlays) on a second thread while the next is
    drawn (render/frames.py: frames): the same pictures as frame(t), in the same order."""
    from render.film import Film, Options
    from render.frames import frames
    from studio import cache
    p, c = scene_with_cache("render:\n  look: {style: points, bloom: 0.8, depth_of_field: 0.5}\n")
    scene = load_scene(p)
    ls = cache.read(c, scene.cache_key())
    times = [0.0, 0.4, 0.8, 1.1]
    with Film(scene, ls, Options(320, 180, 10, 1.2)) as film:
        piped = list(frames(film, times))
        one_by_one = [film.frame(t) for t in times]
    assert len(piped) == 4 and all(np.array_equal(a, b) for a, b in zip(piped, one_by_one))
    assert frame_diff(piped[0], piped[-1])[0] > 1             # four moments, not one frame four times


def test_a_clean_still_is_the_landscape_alone(gl, scene_with_cache, tmp_path):
    """--clean (a poster): no title card, captions or read-out; the same picture whatever the scene's
    texts say, and not the still with them."""
    base = RENDER + "  paths: {training: {color: '#ff0000', width: 8, start: 0, end: 1.0}}\n"
    worded = base + "  captions: [{text: 'A caption across the frame', from: 0, to: 1.2}]\n"
    stills = {}
    for name, text, clean in (("plain", base, True), ("worded", worded, True), ("shown", worded, False)):
        p, c = scene_with_cache(text)
        out = tmp_path / f"{name}.png"
        r = subprocess.run([sys.executable, "-m", "render", str(p), "--cache-dir", str(c), "--still", "0.9",
                            "--out", str(out)] + (["--clean"] if clean else []), cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        from PIL import Image
        stills[name] = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(stills["plain"], stills["worded"])
    assert np.abs(stills["shown"].astype(int) - stills["worded"]).max() > 100
    # the read-out's corner (bottom left) differs: its line is in the shown still, not in the clean one
    shown, clean = stills["shown"].astype(int), stills["worded"].astype(int)
    corner = np.abs(shown[-40:, :160] - clean[-40:, :160]).max(axis=-1)
    assert corner.max() > 60                                     # the read-out was there, and is gone
