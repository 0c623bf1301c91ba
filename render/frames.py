"""A film's frames on their way from the GL to a file: the supersampled frame shrunk
(``box_downsample``), straight alpha for the formats that store it (``unpremultiply``), a film as a
context manager (``Closing``), a seamless loop (``Looped``, the scene's render.loop), and every
frame or one still written (``write_film``, ``write_still``) for any film: a ``render.film.Film``
or a comparison's ``CompareFilm``.
"""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Iterator

import numpy as np

from render.easing import smoothstep
from render.options import Options


def box_downsample(img: np.ndarray, f: int) -> np.ndarray:
    """Shrink an (H*f, W*f, C) uint8 image by f with a box filter (each output pixel the rounded
    mean of its f x f block, in sRGB values; with an alpha channel, of premultiplied colours)."""
    if f == 1:
        return img
    h, w, c = img.shape[0] // f, img.shape[1] // f, img.shape[2]
    blocks = img[:h * f, :w * f].reshape(h, f, w, f, c).astype(np.uint16).sum(axis=(1, 3))
    return ((blocks + (f * f) // 2) // (f * f)).astype(np.uint8)


def unpremultiply(img: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 with premultiplied colours -> straight colours (what PNG, ProRes 4444 and
    VP9 with alpha store); fully transparent pixels are black.  Additive glow can leave more
    light than coverage (a colour above its alpha), which straight alpha cannot hold: there the
    alpha is raised to the brightest channel, so the frame over black is exactly what was drawn."""
    a = np.maximum(img[..., 3:4], img[..., :3].max(axis=-1, keepdims=True)).astype(np.uint32)
    rgb = (img[..., :3].astype(np.uint32) * 255 + a // 2) // np.maximum(a, 1)
    return np.concatenate([np.minimum(rgb, 255).astype(np.uint8), a.astype(np.uint8)], axis=-1)


class Closing:
    """A film as a context manager: ``with Film(...) as film:`` closes it (its GL renderer) at the end."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class Looped(Closing):
    """A film (anything write_film takes) that loops without a seam: its first ``fade`` seconds
    dissolve from the film's last moment, held, into its beginning, so its last frame runs on
    into its first (render.loop).  Past ``duration`` every motion has stopped (keyframes and
    shots end by then, trails are whole), so the held moment is the film's end."""

    def __init__(self, film, duration: float, fade: float):
        self.film, self.duration, self.fade = film, float(duration), float(fade)
        self.transparent, self.note = film.transparent, film.note

    def frame(self, t: float) -> np.ndarray:
        if t >= self.fade:
            return self.film.frame(t)
        w = smoothstep(t / self.fade)
        start = self.film.frame(t).astype(np.float32)
        end = self.film.frame(self.duration + t).astype(np.float32)
        if start.shape[2] == 4:          # straight alpha: blend premultiplied, then divide again
            for img in (start, end):
                img[..., :3] *= img[..., 3:4] / 255.0
            out = end * (1 - w) + start * w
            out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
            return unpremultiply(out)
        return np.clip(np.rint(end * (1 - w) + start * w), 0, 255).astype(np.uint8)

    def close(self) -> None:
        self.film.close()


def looped(film, opts: Options):
    """``film`` as its scene's render.loop asks: Looped, or itself."""
    fade = film.scene.render.loop
    return Looped(film, opts.duration, fade) if fade else film


def write_film(film, out: Path, opts: Options, crf: int, preset: str, progress: bool = True,
               max_frames: int | None = None, fmt: str = "mp4") -> dict:
    """Every frame of ``film`` (anything with ``frame(t)``, ``close()``, ``transparent`` and ``note``:
    a Film, a comparison) to ``out`` through the film or PNG-sequence writer; the film is closed at the end."""
    import time
    from tqdm import tqdm
    from render.writer import PngSequenceWriter, VideoWriter
    n = max(1, int(round(opts.duration * opts.fps)))
    if max_frames:
        n = min(n, max_frames)
    with closing(looped(film, opts)) as film:
        if progress and film.note:
            print(f"[render] {film.note}", file=sys.stderr)
        t0 = time.perf_counter()
        writer = (PngSequenceWriter(out, opts.width, opts.height, alpha=film.transparent) if fmt == "png" else
                  VideoWriter(out, opts.width, opts.height, opts.fps, crf=crf, preset=preset, fmt=fmt,
                              alpha=film.transparent))
        with writer as w:
            times = tqdm([i / opts.fps for i in range(n)], desc="frames", unit="frame", disable=not progress,
                         mininterval=1.0, dynamic_ncols=True, file=sys.stderr)
            for img in frames(film, times):
                w.write(img)
    dt = time.perf_counter() - t0
    return {"frames": n, "seconds": dt, "fps": n / dt if dt > 0 else None}


def frames(film, times) -> Iterator[np.ndarray]:
    """``film``'s frames at ``times``, in order.  A film that draws and finishes its frames apart
    (``draw(t)`` on this thread, which owns the GL context; ``finish(drawn)`` without GL: a
    ``render.film.Film``) has each frame finished on a second thread while the next is drawn, so the
    post passes and overlays run beside the GL's drawing instead of after it; the frames are the
    same either way."""
    if not hasattr(film, "draw"):
        for t in times:
            yield film.frame(t)
        return
    with ThreadPoolExecutor(1) as pool:
        pending = None
        for t in times:
            drawn = film.draw(t)
            if pending is not None:
                yield pending.result()
            pending = pool.submit(film.finish, drawn)
        if pending is not None:
            yield pending.result()


def write_still(film, out: Path, t: float, opts: Options | None = None) -> Path:
    """Frame t of ``film`` as an image at ``out`` (atomically); the film is closed.  With
    ``opts``, a looping film's opening is the dissolve the film shows there."""
    from render.writer import write_image
    if opts is not None:
        film = looped(film, opts)
    with closing(film):
        if film.note:
            print(f"[render] {film.note}", file=sys.stderr)
        img = film.frame(t)
    return write_image(out, img)
