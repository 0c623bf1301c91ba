"""The writers: the one that owns the encoder, PNG frame sequences, single images.

``VideoWriter`` is a context manager around imageio-ffmpeg: frames go to ffmpeg
(H.264, yuv420p, an MP4 with its index at the front; or ProRes, VP9 or GIF:
``encoder_settings``) from a background thread,
so encoding overlaps with drawing the next frame.  The film is written under a
temporary name beside the target and renamed into place only when every frame
is in and ffmpeg has exited cleanly; on any error or interruption the partial
file is deleted, so a file at the output path is always a finished film.

``PngSequenceWriter`` has the same interface and the same promise for a
directory of frames (``frame_000000.png``, ...): they are written (from a
background thread) into a temporary directory beside the target, which is
renamed to the target only when every frame is in; a directory at the output
path is always a complete sequence.  An earlier sequence there is replaced (moved
aside, the new one renamed in, the old one deleted).

``write_image`` writes one PNG the same way (temporary name, rename).
"""
from __future__ import annotations

import os
import queue
import shutil
import threading
from pathlib import Path

import numpy as np

from studio import atomic


class _BackgroundWriter:
    """Frames checked and queued by ``write``, consumed in order by a background thread
    (``_consume(index, frame)``), so the caller draws the next frame meanwhile.  The first
    error of the thread is kept and raised by the next ``write``."""

    what = "writing"

    def __init__(self, width: int, height: int, channels: int = 3):
        self.width, self.height, self.channels = width, height, channels
        self.frames = 0
        self._q: queue.Queue = queue.Queue(maxsize=3)
        self._error: BaseException | None = None

    def _start(self, name: str) -> None:
        self._thread = threading.Thread(target=self._pump, name=name, daemon=True)
        self._thread.start()

    def _consume(self, index: int, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _pump(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                self._consume(*item)
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                self._error = e

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise RuntimeError(f"{self.what} failed: {self._error}")
        want = (self.height, self.width, self.channels)
        if frame.shape != want or frame.dtype != np.uint8:
            raise ValueError(f"frame must be {want} uint8, got {frame.shape} {frame.dtype}")
        self._q.put((self.frames, np.ascontiguousarray(frame)))
        self.frames += 1

    def _stop(self) -> None:
        """Let the thread finish the queued frames and end."""
        self._q.put(None)
        self._thread.join()


def encoder_settings(fmt: str, crf: int, preset: str, alpha: bool = False) -> tuple[str, str, list[str]]:
    """(ffmpeg encoder, output pixel format, further output options) of a film format; with
    ``alpha``, frames with an alpha channel: ProRes 4444 (mov) or VP9 with alpha (webm).

    - mp4: H.264 (x264, ``crf``, ``preset``), 4:2:0, the index at the front for streaming: plays
      everywhere, projectors and browsers included.
    - mov: Apple ProRes 422 HQ, 10-bit 4:2:2: the intermediate video editors take without a
      further loss (files about ten times an mp4's).
    - webm: VP9 at constant quality ``crf`` (0 to 63), for web pages.
    - gif: an animated GIF that loops, each frame with its own 256-colour palette (a palette for
      the whole film would need every frame in memory first); for slides and documents, best
      at a small size (``--size 640x360``).
    """
    if alpha and fmt not in ("mov", "webm"):
        raise ValueError(f"a {fmt} film has no alpha channel (mov and webm have, and PNG frames)")
    if fmt == "mp4":
        return "libx264", "yuv420p", ["-crf", str(crf), "-preset", preset, "-movflags", "+faststart"]
    if fmt == "mov":       # ProRes 4444 (profile 4) keeps the alpha, 422 HQ (profile 3) has none
        return ("prores_ks", "yuva444p10le" if alpha else "yuv422p10le",
                ["-profile:v", "4" if alpha else "3", "-vendor", "apl0"] + (["-alpha_bits", "16"] if alpha else []))
    if fmt == "webm":
        return ("libvpx-vp9", "yuva420p" if alpha else "yuv420p",
                ["-crf", str(crf), "-b:v", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", "4"])
    if fmt == "gif":
        return "gif", "pal8", ["-filter_complex",
                               "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1"]
    raise ValueError(f"unknown film format {fmt!r}")


class VideoWriter(_BackgroundWriter):
    what = "the encoder"

    def __init__(self, path: str | Path, width: int, height: int, fps: int, crf: int = 18,
                 preset: str = "medium", fmt: str = "mp4", alpha: bool = False):
        super().__init__(width, height, 4 if alpha else 3)
        self.path = Path(path)
        self.fps = fps
        self.crf, self.preset = crf, preset
        self.encoder, self.pix_fmt, self.params = encoder_settings(fmt, crf, preset, alpha)
        # the partial film keeps the target's suffix: ffmpeg picks the container from it
        self.tmp = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")

    def __enter__(self) -> "VideoWriter":
        import imageio_ffmpeg
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gen = imageio_ffmpeg.write_frames(
            str(self.tmp), (self.width, self.height), fps=self.fps, codec=self.encoder,
            pix_fmt_in="rgba" if self.channels == 4 else "rgb24", pix_fmt_out=self.pix_fmt, quality=None, bitrate=None,
            macro_block_size=2, ffmpeg_log_level="error", output_params=self.params)
        self._gen.send(None)
        self._start("encoder")
        return self

    def _consume(self, index: int, frame: np.ndarray) -> None:
        self._gen.send(frame)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop()
        ok = exc_type is None and self._error is None
        try:
            self._gen.close()
        except BaseException as e:  # noqa: BLE001
            ok, self._error = False, self._error or e
        if ok and self.frames > 0 and self.tmp.is_file():
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
            if exc_type is None:
                raise RuntimeError(f"encoding {self.path} failed: {self._error or 'no frames'}")


class PngSequenceWriter(_BackgroundWriter):
    """Numbered PNG frames into a directory, atomically (see the module's docstring)."""

    what = "writing PNG frames"

    def __init__(self, path: str | Path, width: int, height: int, compress_level: int = 3, alpha: bool = False):
        super().__init__(width, height, 4 if alpha else 3)
        self.path = Path(path)
        self.compress_level = compress_level
        self.tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")

    def __enter__(self) -> "PngSequenceWriter":
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"{self.path} exists and is not a directory; a PNG sequence is written into a "
                                  f"directory")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        self._start("png-writer")
        return self

    def _consume(self, index: int, frame: np.ndarray) -> None:
        from PIL import Image
        Image.fromarray(frame).save(self.tmp / frame_name(index), compress_level=self.compress_level)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop()
        ok = exc_type is None and self._error is None and self.frames > 0
        if not ok:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if exc_type is None:
                raise RuntimeError(f"writing {self.path} failed: {self._error or 'no frames'}")
            return
        try:
            atomic.replace_dir(self.tmp, self.path)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise


def frame_name(i: int) -> str:
    """The file name of frame i (from 0) of a PNG sequence."""
    return f"frame_{i:06d}.png"


def write_image(path: str | Path, img: np.ndarray) -> Path:
    """One image (PNG, or what the suffix says) under a temporary name, renamed into place; on any
    failure the temporary file is removed and nothing is left at the path."""
    from PIL import Image
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    return atomic.write_file(path, lambda fh: Image.fromarray(img).save(fh, format=fmt))


def probe(path: str | Path) -> dict:
    """Width, height, frame count and codec of a video, from ffprobe-free ffmpeg output."""
    import imageio_ffmpeg
    import re
    import subprocess
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    out = subprocess.run([exe, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    m = re.search(r"Stream #0:\d.*?Video: (\w+).*?, (\w+)\(?.*?, (\d{2,5})x(\d{2,5})", out)
    frames = re.findall(r"frame=\s*(\d+)", out)
    if not m:
        raise RuntimeError(f"not a readable video: {path}\n{out}")
    return {"codec": m.group(1), "pix_fmt": m.group(2), "width": int(m.group(3)), "height": int(m.group(4)),
            "frames": int(frames[-1]) if frames else 0}
