"""Offscreen OpenGL drawing with vispy.gloo: the point cloud, glowing sprites, read-back.

The context comes from vispy's ``egl`` backend; with no display and no GPU this
is Mesa's llvmpipe software rasterizer (``EGL_PLATFORM=surfaceless`` is set
before vispy is imported).  Frames are drawn into a framebuffer object, so the canvas itself stays tiny.

Every frame is drawn as one or more tiles (``plan_tiles`` says how they are cut and stitched).
The GLSL sources are files in render/shaders/ (``shader``, ``program``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.cli import UserError

os.environ.setdefault("EGL_PLATFORM", "surfaceless")

INSTALL_HINT = ("install Mesa's EGL and GL libraries: "
                "apt-get install -y libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri "
                "(or run `make gl`, which does this when run as root)")


class GLUnavailable(UserError, RuntimeError):
    exit_code = 4
    pass


class TileError(UserError, ValueError):
    """A maximum tile size that cannot work (too small, or not a number)."""


_CANVAS = None


def context():
    """Create (once) and return the offscreen canvas whose GL context is current."""
    global _CANVAS
    if _CANVAS is not None:
        # another canvas (e.g. the bench's vispy SceneCanvas) may have made its context current
        _CANVAS.set_current()
        return _CANVAS
    try:
        import vispy
        vispy.use(app="egl")
        from vispy import app
        _CANVAS = app.Canvas(size=(16, 16), show=False)
        _CANVAS.set_current()
        from vispy.gloo import gl
        gl.glEnable(0x8642)      # GL_VERTEX_PROGRAM_POINT_SIZE: the shader sets point sizes
        gl.glEnable(0x8861)      # GL_POINT_SPRITE: gl_PointCoord in compatibility profiles
    except Exception as e:      # noqa: BLE001 - any failure here means no context
        _CANVAS = None
        raise GLUnavailable(f"could not create an offscreen OpenGL context (EGL): {e}; {INSTALL_HINT}") from None
    return _CANVAS


_INFO: dict | None = None


def renderer_info() -> dict:
    global _INFO
    if _INFO is not None:
        return dict(_INFO)
    context()
    from vispy.gloo import gl
    _INFO = {"vendor": gl.glGetParameter(gl.GL_VENDOR), "renderer": gl.glGetParameter(gl.GL_RENDERER),
            "version": gl.glGetParameter(gl.GL_VERSION),
            "max_renderbuffer_size": int(gl.glGetParameter(gl.GL_MAX_RENDERBUFFER_SIZE)),
            "max_viewport_dims": tuple(int(v) for v in gl.glGetParameter(gl.GL_MAX_VIEWPORT_DIMS)),
            "max_point_size": float(gl.glGetParameter(gl.GL_ALIASED_POINT_SIZE_RANGE)[1])}
    return dict(_INFO)


#: environment variable that lowers the largest framebuffer drawn in one piece (tests force tiling)
MAX_TILE_ENV = "STUDIO_MAX_TILE"


def max_tile_size(override: int | None = None) -> int:
    """The largest width and height drawn in one piece: the GL limits (renderbuffer size and
    viewport), lowered by ``override`` or the ``STUDIO_MAX_TILE`` environment variable."""
    info = renderer_info()
    limit = min(info["max_renderbuffer_size"], *info["max_viewport_dims"])
    env = os.environ.get(MAX_TILE_ENV)
    if override is None and env:
        try:
            override = int(env)
        except ValueError:
            raise TileError(f"{MAX_TILE_ENV}={env!r}: must be a whole number of pixels") from None
    if override is not None:
        if override < 32:
            raise TileError(f"the maximum tile size must be at least 32 pixels, got {override}")
        limit = min(limit, int(override))
    return limit


def max_point_size() -> float:
    """The largest point the GL draws (GL_ALIASED_POINT_SIZE_RANGE); shaders clamp to it."""
    return renderer_info()["max_point_size"]


@dataclass(frozen=True)
class Tile:
    """One piece of a frame: ``inner`` (c0, r0, c1, r1) is the part it contributes (image
    coordinates, row 0 at the top, end exclusive); ``region`` is the part drawn, the inner part
    grown by the margin on every side (beyond the frame's edges too)."""
    inner: tuple[int, int, int, int]
    region: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        c0, r0, c1, r1 = self.region
        return c1 - c0, r1 - r0


def plan_tiles(width: int, height: int, max_tile: int, margin: int) -> list[Tile]:
    """Cut a width x height frame into tiles whose drawn regions, each grown by ``margin`` on every
    side, are at most max_tile on a side.  A frame that fits with its margin is one tile.

    Each tile is the full frame's view through an off-axis sub-frustum (``tile_matrix``: a scale
    and shift of clip space, so pixel centres fall exactly where they fall in the whole frame),
    grown by a margin of the largest point's radius so points centred in a neighbouring tile, or
    just beyond the frame's edge, still reach into it, and cropped (the GL drops a point whose
    centre lies outside the viewport: without the margin a close-up shows gaps along the frame's
    edges).  A frame larger than one framebuffer can be (``max_tile_size``: the smaller of
    ``GL_MAX_RENDERBUFFER_SIZE`` and ``GL_MAX_VIEWPORT_DIMS``, 16384 on llvmpipe, or less with the
    environment variable ``STUDIO_MAX_TILE``) takes several.  Point sizes, fog and the background
    gradient are computed from the full frame's transform (depth and screen position), never the
    tile's, so the stitched image is the one-piece image."""
    if width + 2 * margin <= max_tile and height + 2 * margin <= max_tile:
        return [Tile((0, 0, width, height), (-margin, -margin, width + margin, height + margin))]
    step = max_tile - 2 * margin
    if step < 16:
        raise TileError(f"tiles of at most {max_tile} pixels leave no room inside a margin of {margin} pixels "
                         f"(the largest point's radius); allow tiles of at least {2 * margin + 16} pixels")
    tiles = []
    for r0 in range(0, height, step):
        for c0 in range(0, width, step):
            c1, r1 = min(c0 + step, width), min(r0 + step, height)
            region = (c0 - margin, r0 - margin, c1 + margin, r1 + margin)
            tiles.append(Tile((c0, r0, c1, r1), region))
    return tiles


def tile_matrix(width: int, height: int, region: tuple[int, int, int, int]) -> np.ndarray:
    """Clip-space transform from the whole frame to one region of it (an off-axis sub-frustum):
    the region's pixels land on a viewport of its own size at the same sub-pixel positions."""
    c0, r0, c1, r1 = region
    y0, y1 = height - r1, height - r0            # GL rows count from the bottom
    x_lo, x_hi = 2 * c0 / width - 1, 2 * c1 / width - 1
    y_lo, y_hi = 2 * y0 / height - 1, 2 * y1 / height - 1
    m = np.eye(4)
    m[0, 0], m[0, 3] = 2 / (x_hi - x_lo), -(x_hi + x_lo) / (x_hi - x_lo)
    m[1, 1], m[1, 3] = 2 / (y_hi - y_lo), -(y_hi + y_lo) / (y_hi - y_lo)
    return m


# Point size modes of the cloud shader (its u_mode: render/shaders/cloud.vert.glsl)
SIZE_FIXED, SIZE_DEPTH, SIZE_WORLD = 0.0, 1.0, 2.0

#: the GLSL sources, one file a stage: ``NAME.vert.glsl`` and ``NAME.frag.glsl``
SHADERS = Path(__file__).parent / "shaders"


@lru_cache(maxsize=None)
def shader(name: str) -> str:
    """The GLSL source ``render/shaders/NAME.glsl`` (e.g. ``cloud.vert``), read once."""
    return (SHADERS / f"{name}.glsl").read_text(encoding="utf-8")


def program(name: str):
    """A gloo Program from the vertex and fragment shaders ``NAME.vert.glsl`` and ``NAME.frag.glsl``
    (the GL context must be current)."""
    from vispy import gloo
    return gloo.Program(shader(f"{name}.vert"), shader(f"{name}.frag"))


class Renderer:
    """Draws frames (or tiles of frames) of at most a given size: background, terrain cloud,
    sprites; reads them back as RGB.

    ``begin(..., tile, frame_size)`` selects the part of the whole frame drawn next; without a
    tile the whole frame is drawn (it must fit the framebuffer)."""

    def __init__(self, width: int, height: int):
        self.canvas = context()
        from vispy import gloo
        self.gloo = gloo
        self.width, self.height = width, height
        self.max_point = max_point_size()
        self.tile_mat = np.eye(4, dtype=np.float32)
        self.view = (width, height)
        self.fbo = gloo.FrameBuffer(color=gloo.RenderBuffer((height, width, 4)),
                                    depth=gloo.RenderBuffer((height, width), format="depth"))
        self.cloud = program("cloud")
        self.sprites = program("sprite")
        self.bg = program("background")
        self.bg["a_position"] = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        self.cloud_count = 0
        self.max_grow = 1.0
        self.background = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))     # (top, bottom), set by begin
        #: set by begin: no background, and read() gives RGBA with premultiplied colours
        self.transparent = False

    def set_cloud(self, positions: np.ndarray, colors: np.ndarray, grow: np.ndarray | None = None,
                  normals: np.ndarray | None = None, fade: np.ndarray | None = None) -> None:
        """The terrain's points, their colours and (optional) per-point size factors, unit normals
        (for the specular highlight; none: straight up) and border fade (none: 0)."""
        vb = lambda a: self.gloo.VertexBuffer(np.ascontiguousarray(a, np.float32))
        self.cloud["a_position"] = vb(positions)
        self.cloud["a_color"] = vb(colors)
        g = np.ones(len(positions), np.float32) if grow is None else grow
        self.cloud["a_grow"] = vb(np.asarray(g).reshape(-1, 1))
        if normals is None:
            normals = np.tile(np.array([[0.0, 0.0, 1.0]], np.float32), (len(positions), 1))
        self.cloud["a_normal"] = vb(normals)
        self.cloud["a_fade"] = vb((np.zeros(len(positions)) if fade is None else fade).reshape(-1, 1))
        self.cloud_count = len(positions)
        self.max_grow = float(g.max()) if len(g) else 1.0

    def begin(self, background_top, background_bottom, tile: "Tile | None" = None,
              frame_size: tuple[int, int] | None = None, transparent: bool = False) -> None:
        """Start a frame (or a tile of one): the background gradient, or with ``transparent`` none
        (every pixel cleared to zero alpha)."""
        g = self.gloo
        fw, fh = frame_size or (self.width, self.height)
        region = tile.region if tile is not None else (0, 0, fw, fh)
        w, h = region[2] - region[0], region[3] - region[1]
        if w > self.width or h > self.height:
            raise ValueError(f"a {w}x{h} tile does not fit this {self.width}x{self.height} framebuffer")
        self.view = (w, h)
        self.tile_mat = tile_matrix(fw, fh, region).T.astype(np.float32)
        self.fbo.activate()
        g.set_viewport(0, 0, w, h)
        g.set_state(depth_test=False, blend=False)
        g.set_clear_color((0.0, 0.0, 0.0, 0.0))
        g.clear(color=True, depth=True)
        self.transparent = transparent
        if not transparent:
            self.bg["u_top"] = tuple(float(c) for c in background_top)
            self.bg["u_bottom"] = tuple(float(c) for c in background_bottom)
            self.bg["u_yrange"] = ((fh - region[3]) / fh, (fh - region[1]) / fh)
            self.bg.draw("triangle_strip")
        self.background = (tuple(float(c) for c in background_top), tuple(float(c) for c in background_bottom))

    def draw_cloud(self, mvp: np.ndarray, size: float, ref_depth: float, fog: float, fog_range,
                   mode: float = SIZE_DEPTH, floor: float = 0.0, round_points: bool = False,
                   eye=None, light=None, specular: float = 0.0, shininess: float = 28.0,
                   depth_range=None) -> None:
        """The terrain: ``size`` in pixels (``mode`` SIZE_FIXED or SIZE_DEPTH: grown up to 3x for
        points nearer than ``ref_depth``, and for SIZE_DEPTH at least ``floor`` pixels at view
        depth 1, the grid's spacing, so near points close up) or, for SIZE_WORLD, pixels at view
        depth 1 (a world diameter times the pixels per unit at depth 1).  Fog fades the points
        between the two depths of ``fog_range`` into the background behind them.

        ``round_points``: soft round points that grow for near points more slowly than their gaps
        (render.look.style points); ``eye``, ``light`` (towards it), ``specular``, ``shininess``:
        the highlight; ``depth_range``: the view depths written to the alpha channel as 0..1 of an
        opaque frame (for depth of field; the background's alpha is 1)."""
        if not self.cloud_count:
            return
        g = self.gloo
        g.set_state(depth_test=True, blend=False)
        g.set_depth_func("less")
        p = self.cloud
        p["u_mvp"] = mvp.T.astype(np.float32)
        p["u_tile"] = self.tile_mat
        p["u_size"] = float(size)
        p["u_mode"] = float(mode)
        p["u_max_size"] = self.max_point
        p["u_ref_depth"] = float(ref_depth)
        p["u_floor"] = float(floor) if mode == SIZE_DEPTH else 0.0
        p["u_bg_top"], p["u_bg_bottom"] = self.background
        p["u_fog"] = float(fog)
        p["u_fog_range"] = tuple(float(v) for v in fog_range)
        p["u_transparent"] = 1.0 if self.transparent else 0.0
        p["u_round"] = 1.0 if round_points else 0.0
        p["u_eye"] = tuple(float(v) for v in (eye if eye is not None else (0.0, 0.0, 10.0)))
        p["u_light"] = tuple(float(v) for v in (light if light is not None else (0.0, 0.0, 1.0)))
        p["u_specular"] = float(specular)
        p["u_shininess"] = float(shininess)
        p["u_depth_range"] = tuple(float(v) for v in (depth_range if depth_range is not None else fog_range))
        p.draw("points")

    def draw_sprites(self, mvp: np.ndarray, positions: np.ndarray, colors: np.ndarray, sizes: np.ndarray,
                     scale: float, soft: float, additive: bool) -> None:
        if len(positions) == 0:
            return
        g = self.gloo
        g.set_state(depth_test=True, blend=True, depth_mask=False)
        g.set_depth_func("lequal")
        # colours as usual; the alpha channel accumulates coverage ("over"), so with no background
        # the frame holds premultiplied colour and its coverage (and with one, alpha is unused)
        # (an opaque frame's alpha holds the terrain's depth for depth of field: the sprites keep it)
        a_src, a_dst = ("one", "one_minus_src_alpha") if self.transparent else ("zero", "one")
        if additive:
            g.set_blend_func("src_alpha", "one", a_src, a_dst)
        else:
            g.set_blend_func("src_alpha", "one_minus_src_alpha", a_src, a_dst)
        p = self.sprites
        p["u_mvp"] = mvp.T.astype(np.float32)
        p["u_tile"] = self.tile_mat
        p["u_max_size"] = self.max_point
        p["u_scale"] = float(scale)
        p["u_soft"] = float(soft)
        p["u_depth_bias"] = 0.0015
        p["a_position"] = np.ascontiguousarray(positions, np.float32)
        p["a_color"] = np.ascontiguousarray(colors, np.float32)
        p["a_size"] = np.ascontiguousarray(sizes, np.float32).reshape(-1, 1)
        p.draw("points")
        g.set_state(depth_mask=True)

    def read(self, alpha: bool = False) -> np.ndarray:
        """What was drawn since ``begin`` (the frame or the tile's region) as (h, w, 3) uint8, top
        row first; (h, w, 4) with premultiplied colours after a transparent ``begin``, or with
        ``alpha`` the terrain's depth code (draw_cloud's depth_range) in the fourth channel."""
        w, h = self.view
        img = self.gloo.read_pixels((0, 0, w, h), alpha=self.transparent or alpha)
        return np.ascontiguousarray(img)

    def end(self) -> None:
        self.fbo.deactivate()

    def close(self) -> None:
        try:
            self.fbo.delete()
            self.cloud.delete()
            self.sprites.delete()
            self.bg.delete()
        except Exception:  # noqa: BLE001
            pass
