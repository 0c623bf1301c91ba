"""Benchmark of the render stage: milliseconds per frame for drawing, reading back and encoding.

Usage:
    python -m render.bench [--frames 40] [--rounds 3] [--sizes 1080p,4k] [--quick]
                           [--json out/bench.json] [--readme README.md]

A synthetic one-million-point landscape (1000 x 1000, no torch needed) is drawn
on this machine's OpenGL (llvmpipe without a GPU) at each size:

    points      this project's point program (GL_POINTS, fog, depth-scaled size):
                draw (with glFinish) and read-back, ms per frame
    markers     vispy's Markers visual (antialias 0, edge width 0) in a SceneCanvas
                of the same size: draw + read-back (canvas.render), the baseline
    encode      x264 (the film's settings: crf 18, preset medium) fed pre-drawn frames
                through the project's VideoWriter, ms per frame
    film        the whole frame loop of a 5-second film (terrain, trail, overlays, encoder
                in its own thread and process), x264's start and end included: frames/s
    full look   the same film with the full look (FULL_LOOK: points, light with highlight,
                valley darkening, dissolving border, bloom, depth of field), ratio to the film

With ``--effects``: per frame (no encoding), the effects of the full look added one at a time:
the GL part, the finishing part (post passes, overlays), and the CPU time of all threads.

Methods are timed round-robin and medians reported.  Rows go to ``--json``
(stage "render"), merged with other stages' rows, and with ``--readme`` the
table between the render bench markers.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("EGL_PLATFORM", "surfaceless")

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}


def synthetic(n: int = 1000):
    """A rippled bowl with a descending path, in the cache's format (key 'bench')."""
    from studio.cache import Landscape, Path2D
    alpha = np.linspace(-2.0, 2.0, n)
    beta = np.linspace(-2.0, 2.0, n)
    a, b = np.meshgrid(alpha, beta)
    loss = (0.02 + 0.6 * a**2 + 0.3 * b**2 + 0.25 * np.sin(3 * a) ** 2 * np.cos(2 * b) ** 2).astype(np.float32)
    t = np.linspace(0, 1, 200)
    xy = np.stack([-1.8 * (1 - t) ** 2, 1.5 * (1 - t) * np.cos(5 * t)], axis=1)
    surf = 0.02 + 0.6 * xy[:, 0] ** 2 + 0.3 * xy[:, 1] ** 2
    path = Path2D("training", xy, surf, surf, np.zeros(200), np.arange(200) * 10)
    return Landscape("bench", loss, alpha, beta, {"training": path},
                     {"landscape": {"grid": {"resolution": [n, n]}}})


#: render.look of the "whole film, full look" row: every effect of the art form's look on
FULL_LOOK = {"style": "points", "light": {"specular": 0.35}, "occlusion": 0.6, "edge": 0.06, "bloom": 0.6,
             "depth_of_field": 0.4}


def _scene(width: int, height: int, duration: float, look: dict | None = None):
    from studio.scene import Scene
    render = {"size": [width, height], "fps": 30, "duration": duration}
    if look is not None:
        render["look"] = look
    return Scene.model_validate({"title": "Bench", "render": render})


def _finish():
    from vispy.gloo import gl
    gl.glFinish()


def time_points(film, frames: int) -> tuple[float, float]:
    """ms per frame: draw (background and terrain, to glFinish), read-back."""
    from render import camera as cam
    g, o = film.gl, film.opts
    corners = film.terrain.corners
    draw, read = [], []
    for i in range(frames):
        s = film.camera.state(i / 30)
        near, far = cam.clip_planes(s, film.terrain.radius)
        mvp = cam.perspective(s["fov"], o.width / o.height, near, far) @ cam.view_matrix(s)
        eye = cam.eye_position(s)
        d = np.linalg.norm(corners - eye, axis=1)
        t0 = time.perf_counter()
        g.begin(film.bg_top, film.bg_bottom)
        g.draw_cloud(mvp, film._cloud_size(mvp), film.home["distance"], film.look.fog, (d.min(), d.max()),
                     film.point_mode, film._cloud_floor(mvp))
        _finish()
        t1 = time.perf_counter()
        g.read()
        g.end()
        t2 = time.perf_counter()
        draw.append(t1 - t0)
        read.append(t2 - t1)
    return 1000 * statistics.median(draw), 1000 * statistics.median(read)


class MarkersScene:
    """vispy's Markers visual showing the same points, in a SceneCanvas of the output size."""

    def __init__(self, film, width: int, height: int):
        from vispy import scene
        self.canvas = scene.SceneCanvas(size=(width, height), show=False, bgcolor=tuple(film.bg_bottom[:3]))
        view = self.canvas.central_widget.add_view()
        view.camera = scene.TurntableCamera(fov=film.home["fov"], distance=film.home["distance"],
                                            elevation=film.home["elevation"], azimuth=film.home["azimuth"],
                                            center=tuple(film.home["target"]))
        self.view = view
        self.markers = scene.visuals.Markers(parent=view.scene)
        self.markers.set_data(film.terrain.positions, face_color=np.c_[film.terrain.colors, np.ones(len(
            film.terrain.colors))].astype(np.float32), size=film.point_size, edge_width=0)
        self.markers.antialias = 0

    def time(self, frames: int) -> float:
        ts = []
        for i in range(frames):
            self.view.camera.azimuth = self.view.camera.azimuth + 0.5
            t0 = time.perf_counter()
            self.canvas.render(alpha=False)
            ts.append(time.perf_counter() - t0)
        return 1000 * statistics.median(ts)

    def close(self):
        self.canvas.close()


def time_encode(width: int, height: int, frames: int) -> float:
    """ms per frame of x264 (crf 18, medium) through the VideoWriter, frames drawn beforehand."""
    from render.writer import VideoWriter
    rng = np.random.default_rng(0)
    base = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
    imgs = [np.ascontiguousarray(np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), 8 * i, axis=1))
            for i in range(min(frames, 8))]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        with VideoWriter(Path(d) / "enc.mp4", width, height, 30) as w:
            for i in range(frames):
                w.write(imgs[i % len(imgs)])
        return 1000 * (time.perf_counter() - t0) / frames


def time_film(ls, width: int, height: int, frames: int, look: dict | None = None) -> float:
    from render.film import Options, render_film
    scene = _scene(width, height, frames / 30, look)
    with tempfile.TemporaryDirectory() as d:
        stats = render_film(scene, ls, Path(d) / "film.mp4", Options(width, height, 30, frames / 30), 18,
                            "medium", progress=False)
    return stats["fps"]


def run(sizes: list[str], frames: int, rounds: int, film_frames: int = 150) -> list[dict]:
    from render.film import Film, Options
    from render.gl import renderer_info
    info = renderer_info()
    dev = f"{info['renderer']}"
    ls = synthetic()
    rows = []
    for name in sizes:
        w, h = SIZES[name]
        print(f"  {name} ({w}x{h}) ...", file=sys.stderr, flush=True)
        film = Film(_scene(w, h, 10), ls, Options(w, h, 30, 10))
        markers = MarkersScene(film, w, h)
        pts_d, pts_r, mk, enc, fps = [], [], [], [], []
        try:
            time_points(film, 2)
            markers.time(2)
            for _ in range(rounds):
                d, r = time_points(film, frames)
                pts_d.append(d)
                pts_r.append(r)
                mk.append(markers.time(frames))
                enc.append(time_encode(w, h, frames))
        finally:
            markers.close()
            film.close()
        # the film loop over a longer run (x264's start and its flush of buffered frames at the end
        # would otherwise weigh on a short one), the plain and the full look in turn
        fulls = []
        # about as many seconds a film at every size: fewer frames for the larger
        k = max(30, int(round(film_frames * (1920 * 1080) / (w * h)))) if film_frames >= 30 else film_frames
        for _ in range(rounds):
            fps.append(time_film(ls, w, h, k))
            fulls.append(time_film(ls, w, h, k, FULL_LOOK))
        d, r, m, e, f, full = (statistics.median(x) for x in (pts_d, pts_r, mk, enc, fps, fulls))
        common = {"stage": "render", "model": f"1M points, {name} ({w}x{h})", "device": dev}
        rows += [
            dict(common, method="points (draw + read-back)", ms_draw=d, ms_read=r, frames_per_s=1000 / (d + r),
                 baseline="markers", ratio=m / (d + r)),
            dict(common, method="vispy Markers (draw + read-back)", ms_draw_read=m, frames_per_s=1000 / m,
                 baseline="markers", ratio=1.0),
            dict(common, method="x264 encode (crf 18, medium)", ms_encode=e, frames_per_s=1000 / e,
                 baseline=None, ratio=None),
            dict(common, method="whole film (draw, overlays, encode overlapped)", frames_per_s=f,
                 baseline="markers", ratio=f / (1000 / m)),
            dict(common, method="whole film, full look (points, light, bloom, depth of field)", frames_per_s=full,
                 baseline="markers", ratio=full / (1000 / m), vs_film=full / f),
        ]
    return rows


#: the effects of the full look, added one at a time (the "what each effect costs" table)
EFFECTS = (("surface (the default look)", {}),
           ("points", {"style": "points"}),
           ("+ light with a highlight", {"style": "points", "light": {"specular": 0.35}}),
           ("+ valley darkening", {"style": "points", "light": {"specular": 0.35}, "occlusion": 0.6}),
           ("+ dissolving border", {"style": "points", "light": {"specular": 0.35}, "occlusion": 0.6, "edge": 0.06}),
           ("+ bloom", {k: v for k, v in FULL_LOOK.items() if k != "depth_of_field"}),
           ("+ depth of field (the full look)", FULL_LOOK))


def time_effects(ls, width: int, height: int, frames: int, rounds: int) -> list[dict]:
    """Per frame, without encoding: the GL part (Film.draw: drawing and read-back) and the rest
    (Film.finish: post passes, overlays) in ms, and the process's CPU ms (all threads: llvmpipe's
    too) for each look of EFFECTS, the looks in turn each round, medians."""
    import resource
    from render.film import Film, Options

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    films = [Film(_scene(width, height, 10, dict(look)), ls, Options(width, height, 30, 10)) for _, look in EFFECTS]
    got = [([], [], []) for _ in EFFECTS]
    try:
        for f in films:
            f.frame(1.0)
        for _ in range(rounds):
            for f, (draw, finish, used) in zip(films, got):
                d = n = c = 0.0
                for i in range(frames):
                    t0, c0 = time.perf_counter(), cpu()
                    drawn = f.draw(1.0 + 8.0 * i / frames)
                    t1 = time.perf_counter()
                    f.finish(drawn)
                    d, n, c = d + t1 - t0, n + time.perf_counter() - t1, c + cpu() - c0
                draw.append(1000 * d / frames)
                finish.append(1000 * n / frames)
                used.append(1000 * c / frames)
    finally:
        for f in films:
            f.close()
    rows = []
    for (name, _), (draw, finish, used) in zip(EFFECTS, got):
        rows.append({"stage": "render-effects", "model": f"1M points, {width}x{height}", "method": name,
                     "ms_draw": statistics.median(draw), "ms_finish": statistics.median(finish),
                     "ms_cpu": statistics.median(used)})
    base = rows[0]["ms_cpu"]
    for r in rows:
        r["cpu_vs_surface"] = r["ms_cpu"] / base
    return rows


def effects_table(rows: list[dict]) -> str:
    lines = ["| look | frame | ms draw (GL) | ms finish (post, overlays) | CPU ms (all threads) | CPU × the surface |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['model']} | {r['ms_draw']:.0f} | {r['ms_finish']:.0f} | {r['ms_cpu']:.0f} | "
                     f"{r['cpu_vs_surface']:.2f} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    lines = ["| stage | scene | method | device | ms draw | ms read | ms encode | frames/s | × Markers |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["stage"] != "render":
            continue
        draw = r.get("ms_draw", r.get("ms_draw_read"))
        cells = [f"{draw:.0f}" if draw is not None else "",
                 f"{r['ms_read']:.0f}" if r.get("ms_read") is not None else "",
                 f"{r['ms_encode']:.0f}" if r.get("ms_encode") is not None else "",
                 f"{r['frames_per_s']:.2f}", f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""]
        method = r["method"] + (f" ({r['vs_film']:.2f} x the plain film)" if r.get("vs_film") is not None else "")
        lines.append(f"| render | {r['model']} | {method} | {r['device']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m render.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="1080p,4k")
    ap.add_argument("--film-frames", type=int, default=150,
                    help="frames of the whole-film measurement at 1080p (fewer at larger sizes, in proportion)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--effects", action="store_true",
                    help="instead: what each effect of the full look costs a frame, at the first of --sizes")
    ap.add_argument("--json", default="out/bench.json")
    ap.add_argument("--readme", default=None)
    args = ap.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        ap.error(f"--sizes: unknown {bad}; allowed: {', '.join(SIZES)}")
    frames, rounds = (6, 1) if args.quick else (args.frames, args.rounds)
    from studio.benchfile import publish
    if args.effects:
        w, h = SIZES[sizes[0]]
        rows = time_effects(synthetic(), w, h, 4 if args.quick else 12, rounds)
        publish(rows, effects_table(rows), "render-effects", args.json, args.readme)
        return 0
    rows = run(sizes, frames, rounds, 12 if args.quick else args.film_frames)
    publish(rows, table(rows), "render", args.json, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
