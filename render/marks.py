"""Marks: the networks a plane goes through, marked in the film.

A ``minima`` plane (compute/plane/minima.py) goes through three trained networks, and its entry's
``meta.json`` says where each sits (``plane.marks``: plane coordinates, its seed or file, its loss).
Each is marked by a ring of light lying on the surface around it, a glow at its place and a thin
stem rising from it to a label: who the network is (``seed 1``) over its loss.  The ring and glow are
sprites drawn with the trails (depth-tested, so a ridge in front hides them as it hides the
terrain); the label is set in type and laid over the finished frame at the stem's top, projected
with the frame's own matrix, so it stays crisp and legible whatever the post passes do.  Marks fade
in with the read-out, once the title card has gone; ``render.marks: false`` leaves them out.

The trails of such a plane's three runs are drawn without a ``render.paths`` of the scene's own:
``with_minima_paths`` gives the film the three, each in its own colour, labelled as its mark.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.scene import PathStyle, Scene
from studio.scene.landscape import MINIMA_PATHS
from render import overlay
from render.look import Terrain, _bilinear, hex_rgba

#: the three runs' trail colours when the scene names none: cool, warm and green, each clear of
#: the common colormaps' darks and lights
MINIMA_COLORS = ("#7fe3ff", "#ffb86b", "#a6ff8f")
#: the ring's radius, how far around the stem clears the ground and by how much, in world units
#: (the terrain spans x in [-1, 1])
RING_RADIUS = 0.045
RIM_RADIUS = 0.1
STEM_HEIGHT = 0.1
#: points of a ring and of a stem (dense enough to read as lines at 4K)
RING_POINTS, STEM_POINTS = 160, 120


def plane_marks(meta: dict) -> list[dict]:
    """The marks of an entry's plane that the film draws: a ``minima`` plane's three networks."""
    plane = meta.get("plane") or {}
    return list(plane.get("marks") or []) if plane.get("method") == "minima" else []


def with_minima_paths(scene: Scene, meta: dict) -> Scene:
    """The scene as filmed: for a ``minima`` plane whose scene gives no ``render.paths``, all three
    runs' trails (the render's default draws ``training`` alone), in MINIMA_COLORS, labelled as their
    marks.  A single trained network per file has no path: nothing is added then."""
    marks = plane_marks(meta)
    if not marks or "paths" in scene.render.model_fields_set or \
            (meta.get("training") or {}).get("source") == "weights":
        return scene
    paths = {m.get("path", name): PathStyle(color=MINIMA_COLORS[k], label=m.get("label"))
             for k, (name, m) in enumerate(zip(MINIMA_PATHS, marks))}
    return scene.model_copy(update={"render": scene.render.model_copy(update={"paths": paths})})


@dataclass
class Mark:
    """One network's mark, in world coordinates on the drawn terrain."""
    label: str
    loss: float | None
    rgb: tuple[float, float, float]
    ring: np.ndarray        # (RING_POINTS, 3) on the surface around the network
    stem: np.ndarray        # (STEM_POINTS, 3) from the network's place straight up
    top: np.ndarray         # (3,) the stem's top: where the label stands


def _on_surface(terrain: Terrain, wx: np.ndarray, wy: np.ndarray, lift: float) -> np.ndarray:
    """World points (wx, wy) set on the terrain's surface, ``lift`` above it (as trails are)."""
    ny, nx = terrain.level.shape
    sx = np.clip((wx + 1) / 2 * (nx - 1), 0, nx - 1)
    sy = np.clip((wy / terrain.half_y + 1) / 2 * (ny - 1), 0, ny - 1)
    wz = _bilinear(terrain.level, sx, sy) * terrain.heights.top + lift
    return np.stack([wx, wy, wz], axis=1).astype(np.float32)


def build_marks(scene: Scene, alpha: np.ndarray, beta: np.ndarray, meta: dict, terrain: Terrain) -> list[Mark]:
    """The marks of the entry (``plane_marks``) on the terrain, each in its trail's colour (white
    where its path is not drawn); none with ``render.marks: false``."""
    if not scene.render.marks:
        return []
    out = []
    lift = 0.006 * terrain.heights.top + 0.002
    theta = np.linspace(0, 2 * math.pi, RING_POINTS, endpoint=False)
    for m in plane_marks(meta):
        a, b = m["xy"]
        # plane coordinates -> world, as the terrain lays out the grid
        wx = (a - alpha[0]) / (alpha[-1] - alpha[0]) * 2 - 1
        wy = ((b - beta[0]) / (beta[-1] - beta[0]) * 2 - 1) * terrain.half_y
        if not (-1 <= wx <= 1 and -terrain.half_y <= wy <= terrain.half_y):
            continue                        # outside an explicit window: nothing to mark
        ring = _on_surface(terrain, wx + RING_RADIUS * np.cos(theta), wy + RING_RADIUS * np.sin(theta), lift)
        base = _on_surface(terrain, np.array([wx]), np.array([wy]), lift)[0]
        # the stem rises clear of the basin's rim (a minimum is often a deep, narrow funnel whose
        # walls would hide a short one), STEM_HEIGHT above the highest ground within RIM_RADIUS
        r = RIM_RADIUS * np.sqrt(np.linspace(0, 1, 12))[:, None]
        disc = _on_surface(terrain, (wx + r * np.cos(theta[::8])).ravel(), (wy + r * np.sin(theta[::8])).ravel(), 0)
        rise = max(float(disc[:, 2].max()) - float(base[2]), 0.0) + STEM_HEIGHT
        stem = base + np.outer(np.linspace(0, 1, STEM_POINTS), [0, 0, rise]).astype(np.float32)
        style = scene.render.paths.get(m.get("path", ""))
        rgb = hex_rgba(style.color)[:3] if style is not None else overlay.WHITE
        out.append(Mark(m.get("label", ""), m.get("eval_loss"), rgb, ring, stem, stem[-1]))
    return out


class MarkLayer:
    """A film's marks: sprites for the GL and labels over the frame, both at the read-out's opacity."""

    def __init__(self, scene: Scene, alpha: np.ndarray, beta: np.ndarray, meta: dict, terrain: Terrain,
                 height: int, duration: float):
        self.marks = build_marks(scene, np.asarray(alpha), np.asarray(beta), meta, terrain)
        self.start = overlay.title_end(duration) - 0.5
        self.duration = float(duration)
        self.scale = overlay.text_scale(height)
        self.tiles = overlay.TileCache()

    def opacity(self, t: float) -> float:
        return overlay.fade(t, self.start, self.duration + 10, 0.8)

    def sprites(self, t: float, rscale: float) -> list:
        """The rings, stems and glows at time t as sprite batches (film.py's ``_trail_sprites``)."""
        op = self.opacity(t)
        if op <= 0 or not self.marks:
            return []
        batches = []
        w = 3.0 * rscale
        for m in self.marks:
            rgba = np.array([*m.rgb, 1.0])
            ring = np.tile(rgba, (len(m.ring), 1))
            ring[:, 3] = 0.9 * op
            halo = ring.copy()
            halo[:, 3] = 0.18 * op
            batches.append((m.ring, halo, np.full(len(m.ring), 3.0), w, 1.0, True))
            batches.append((m.ring, ring, np.full(len(m.ring), 1.0), w, 0.0, False))
            stem = np.tile([*m.rgb, 0.0], (len(m.stem), 1))
            stem[:, 3] = op * np.linspace(0.9, 0.5, len(m.stem))        # fading a little upwards
            batches.append((m.stem, stem, np.full(len(m.stem), 0.6), w, 0.0, False))
            batches.append((m.stem[:1], np.array([[*m.rgb, 0.5 * op]]), np.array([5.0]), w, 1.0, True))
        return batches

    def draw_labels(self, img: np.ndarray, mvp: np.ndarray, t: float) -> None:
        """Each mark's label centred over its stem's top, on ``img`` (the output-size frame)."""
        op = self.opacity(t)
        if op <= 0:
            return
        height, width = img.shape[:2]
        for i, m in enumerate(self.marks):
            clip = mvp @ np.r_[m.top.astype(np.float64), 1.0]
            if clip[3] <= 1e-6:
                continue                    # behind the camera
            x = (clip[0] / clip[3] + 1) / 2 * width
            y = (1 - clip[1] / clip[3]) / 2 * height
            lines = [(m.label, 28, True, overlay.WHITE)]
            if m.loss is not None:
                lines.append((f"loss {m.loss:.3f}", 21, False, overlay.READOUT))
            tile = self.tiles.get(("mark", i), lambda lines=lines, rgb=m.rgb: overlay.text_tile(
                lines, self.scale, spacing=0.15, dot=rgb))
            tw, th = tile.size
            pad = overlay.tile_pad(self.scale)
            overlay.composite(img, tile, int(round(x - tw / 2)), int(round(y - th + pad * 0.6)), op)
