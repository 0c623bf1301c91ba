"""A storyboard: one contact sheet of stills at even times, so a whole camera path is judged at a
glance (``python -m render SCENE --storyboard``, ``make storyboard SCENE=...``).

Each still is a frame of the film drawn small (the film's look and overlays, at the sheet's cell
size), labelled with its time code and the camera at that moment as a YAML keyframe's values
(target, azimuth, elevation, distance, fov), ready to copy into the scene.  The sheet is one PNG,
written atomically.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from render.overlay import load_font
from studio import atomic

#: the sheet's background and label colours (RGB, 0-255)
SHEET = (12, 13, 18)
LABEL = (225, 228, 235)
DIM = (150, 155, 168)


def storyboard_times(duration: float, count: int) -> list[float]:
    """``count`` times spread evenly over the film, the first just after 0 and the last just before
    the end (a frame at exactly the end is past the last frame)."""
    step = duration / count
    return [round(step * (k + 0.5), 3) for k in range(count)]


def camera_line(state: dict) -> str:
    """The camera at a moment as a keyframe's values (render.camera's keys)."""
    tx, ty, tz = (float(v) for v in state["target"])
    return (f"target: [{tx:.2f}, {ty:.2f}, {tz:.2f}], azimuth: {state['azimuth']:.1f}, "
            f"elevation: {state['elevation']:.1f}, distance: {state['distance']:.2f}, fov: {state['fov']:.0f}")


def write_storyboard(film, out: Path, duration: float, count: int = 12, columns: int = 4) -> Path:
    """Draw ``count`` stills of ``film`` (its ``frame(t)`` at the film's own size) into a sheet of
    ``columns`` columns at ``out``; each cell is labelled with its time and camera."""
    times = storyboard_times(duration, count)
    rows = math.ceil(count / columns)
    frames = [np.asarray(film.frame(t))[..., :3] for t in times]
    states = [film.camera.state(t) if hasattr(film, "camera") else None for t in times]
    h, w = frames[0].shape[:2]
    pad, label_h = max(6, w // 60), max(30, h // 7)
    font = load_font(max(11, label_h // 3))
    small = load_font(max(9, label_h // 4))
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + label_h + pad) + pad), SHEET)
    draw = ImageDraw.Draw(sheet)
    for k, (t, img, state) in enumerate(zip(times, frames, states)):
        x = pad + (k % columns) * (w + pad)
        y = pad + (k // columns) * (h + label_h + pad)
        sheet.paste(Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)), (x, y))
        draw.text((x + 2, y + h + 3), f"{int(t // 60):02d}:{t % 60:05.2f}", fill=LABEL, font=font)
        if state is not None:
            draw.text((x + 2, y + h + 3 + font.size + 2), camera_line(state), fill=DIM, font=small)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_file(out, lambda fh: sheet.save(fh, format="PNG"))
    return out
