"""Offscreen OpenGL drawing with vispy.gloo: the point cloud, glowing sprites, read-back.

The context comes from vispy's ``egl`` backend; with no display and no GPU this
is Mesa's llvmpipe software rasterizer (``EGL_PLATFORM=surfaceless`` is set
before vispy is imported).  Frames are drawn into a framebuffer object, so the canvas itself stays tiny.

A frame larger than one framebuffer can be (``max_tile_size``: the smaller of
``GL_MAX_RENDERBUFFER_SIZE`` and ``GL_MAX_VIEWPORT_DIMS``, 16384 on llvmpipe, or
less with the environment variable ``STUDIO_MAX_TILE``) is drawn as tiles
(``plan_tiles``): each tile is the full frame's view through an off-axis
sub-frustum (``tile_matrix``: a scale and shift of clip space, so pixel centres
fall exactly where they fall in the whole frame), grown by a margin of the
largest point's radius so points centred in a neighbouring tile still reach into
it, and cropped.  Point sizes, fog and the background gradient are computed from
the full frame's transform (depth and screen position), never the tile's, so the
stitched image is the one-piece image.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

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
    grown by the margin and kept inside the frame."""
    inner: tuple[int, int, int, int]
    region: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        c0, r0, c1, r1 = self.region
        return c1 - c0, r1 - r0


def plan_tiles(width: int, height: int, max_tile: int, margin: int) -> list[Tile]:
    """Cut a width x height frame into tiles whose drawn regions are at most max_tile on a side.
    A frame that fits is one tile with no margin."""
    if width <= max_tile and height <= max_tile:
        return [Tile((0, 0, width, height), (0, 0, width, height))]
    step = max_tile - 2 * margin
    if step < 16:
        raise TileError(f"tiles of at most {max_tile} pixels leave no room inside a margin of {margin} pixels "
                         f"(the largest point's radius); allow tiles of at least {2 * margin + 16} pixels")
    tiles = []
    for r0 in range(0, height, step):
        for c0 in range(0, width, step):
            c1, r1 = min(c0 + step, width), min(r0 + step, height)
            region = (max(c0 - margin, 0), max(r0 - margin, 0), min(c1 + margin, width), min(r1 + margin, height))
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


# Point size modes of the cloud shader (u_mode)
SIZE_FIXED, SIZE_DEPTH, SIZE_WORLD = 0.0, 1.0, 2.0

CLOUD_VS = """
uniform mat4 u_mvp;          // the whole frame's
uniform mat4 u_tile;         // the whole frame's clip space -> this tile's
uniform float u_size;        // pixels; for SIZE_WORLD, pixels at depth 1
uniform float u_mode;        // 0: fixed pixels, 1: pixels grown for near points, 2: world size
uniform float u_ref_depth;
uniform float u_floor;       // SIZE_DEPTH: pixels at depth 1 of the grid's spacing (0: none)
uniform float u_max_size;
uniform vec3 u_bg_top;
uniform vec3 u_bg_bottom;
uniform float u_fog;
uniform vec2 u_fog_range;
uniform float u_transparent; // 1: no background; the frame's alpha is coverage (colours premultiplied)
attribute vec3 a_position;
attribute vec3 a_color;
attribute float a_grow;      // larger points on steep cells (render.look.steepness)
varying vec4 v_color;
void main() {
    vec4 p = u_mvp * vec4(a_position, 1.0);
    gl_Position = u_tile * p;
    float depth = p.w;
    float f = clamp((depth - u_fog_range.x) / (u_fog_range.y - u_fog_range.x), 0.0, 1.0);
    // fog fades a point into the background behind it (the gradient at its height in the frame),
    // or with no background into transparency
    float sy = clamp(p.y / max(p.w, 1e-6) * 0.5 + 0.5, 0.0, 1.0);
    float fade = u_fog * f * f;
    v_color = u_transparent > 0.5 ? vec4(a_color * (1.0 - fade), 1.0 - fade)
                                  : vec4(mix(a_color, mix(u_bg_bottom, u_bg_top, sy), fade), 1.0);
    float s = u_size * a_grow;
    if (u_mode > 1.5) {
        s = s / max(depth, 1e-4);
    } else if (u_mode > 0.5) {
        // grown for near points, and never smaller than the gap to the grid neighbours there,
        // so a close-up reads as a surface, not as rows of dots with the sky between them
        s = max(s * clamp(u_ref_depth / max(depth, 1e-4), 0.75, 3.0), u_floor * a_grow / max(depth, 1e-4));
    }
    gl_PointSize = min(s, u_max_size);
}
"""

CLOUD_FS = """
varying vec4 v_color;
void main() { gl_FragColor = v_color; }
"""

SPRITE_VS = """
uniform mat4 u_mvp;
uniform mat4 u_tile;
uniform float u_max_size;
uniform float u_scale;
uniform float u_depth_bias;
attribute vec3 a_position;
attribute vec4 a_color;
attribute float a_size;
varying vec4 v_color;
void main() {
    gl_Position = u_tile * (u_mvp * vec4(a_position, 1.0));
    // drawn a little towards the camera, so marks on the surface are not hidden by its points
    gl_Position.z -= u_depth_bias * gl_Position.w;
    gl_PointSize = min(a_size * u_scale, u_max_size);
    v_color = a_color;
}
"""

SPRITE_FS = """
uniform float u_soft;
varying vec4 v_color;
void main() {
    vec2 p = gl_PointCoord * 2.0 - 1.0;
    float r = dot(p, p);
    if (r > 1.0) discard;
    float hard = 1.0 - smoothstep(0.65, 1.0, r);
    float glow = exp(-4.0 * r);
    gl_FragColor = vec4(v_color.rgb, v_color.a * mix(hard, glow, u_soft));
}
"""

BG_VS = """
uniform vec2 u_yrange;       // the tile's bottom and top as fractions of the whole frame's height
attribute vec2 a_position;
varying float v_y;
void main() {
    gl_Position = vec4(a_position, 0.999, 1.0);
    v_y = mix(u_yrange.x, u_yrange.y, a_position.y * 0.5 + 0.5);
}
"""

BG_FS = """
uniform vec3 u_top;
uniform vec3 u_bottom;
varying float v_y;
void main() { gl_FragColor = vec4(mix(u_bottom, u_top, v_y), 1.0); }
"""


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
        self.cloud = gloo.Program(CLOUD_VS, CLOUD_FS)
        self.sprites = gloo.Program(SPRITE_VS, SPRITE_FS)
        self.bg = gloo.Program(BG_VS, BG_FS)
        self.bg["a_position"] = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        self.cloud_count = 0
        self.max_grow = 1.0
        self.background = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))     # (top, bottom), set by begin
        #: set by begin: no background, and read() gives RGBA with premultiplied colours
        self.transparent = False

    def set_cloud(self, positions: np.ndarray, colors: np.ndarray, grow: np.ndarray | None = None) -> None:
        """The terrain's points, their colours and (optional) per-point size factors."""
        self.cloud["a_position"] = self.gloo.VertexBuffer(np.ascontiguousarray(positions, np.float32))
        self.cloud["a_color"] = self.gloo.VertexBuffer(np.ascontiguousarray(colors, np.float32))
        g = np.ones(len(positions), np.float32) if grow is None else grow
        self.cloud["a_grow"] = self.gloo.VertexBuffer(np.ascontiguousarray(g, np.float32).reshape(-1, 1))
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
                   mode: float = SIZE_DEPTH, floor: float = 0.0) -> None:
        """The terrain: ``size`` in pixels (``mode`` SIZE_FIXED or SIZE_DEPTH: grown up to 3x for
        points nearer than ``ref_depth``, and for SIZE_DEPTH at least ``floor`` pixels at view
        depth 1, the grid's spacing, so near points close up) or, for SIZE_WORLD, pixels at view
        depth 1 (a world diameter times the pixels per unit at depth 1).  Fog fades the points
        between the two depths of ``fog_range`` into the background behind them."""
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
        if additive:
            g.set_blend_func("src_alpha", "one", "one", "one_minus_src_alpha")
        else:
            g.set_blend_func("src_alpha", "one_minus_src_alpha", "one", "one_minus_src_alpha")
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

    def read(self) -> np.ndarray:
        """What was drawn since ``begin`` (the frame or the tile's region) as (h, w, 3) uint8, top
        row first; (h, w, 4) with premultiplied colours after a transparent ``begin``."""
        w, h = self.view
        img = self.gloo.read_pixels((0, 0, w, h), alpha=self.transparent)
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
