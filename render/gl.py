"""Offscreen OpenGL drawing with vispy.gloo: the point cloud, glowing sprites, read-back.

The context comes from vispy's ``egl`` backend; with no display and no GPU this
is Mesa's llvmpipe software rasterizer (``EGL_PLATFORM=surfaceless`` is set
before vispy is imported).  Frames are drawn into a framebuffer object of the
output size, so the canvas itself stays tiny.
"""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("EGL_PLATFORM", "surfaceless")

INSTALL_HINT = ("install Mesa's EGL and GL libraries: "
                "apt-get install -y libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri "
                "(or run `make gl`, which does this when run as root)")


class GLUnavailable(RuntimeError):
    pass


_CANVAS = None


def context():
    """Create (once) and return the offscreen canvas whose GL context is current."""
    global _CANVAS
    if _CANVAS is not None:
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


def renderer_info() -> dict:
    context()
    from vispy.gloo import gl
    return {"vendor": gl.glGetParameter(gl.GL_VENDOR), "renderer": gl.glGetParameter(gl.GL_RENDERER),
            "version": gl.glGetParameter(gl.GL_VERSION),
            "max_renderbuffer_size": int(gl.glGetParameter(gl.GL_MAX_RENDERBUFFER_SIZE))}


CLOUD_VS = """
uniform mat4 u_mvp;
uniform float u_size;
uniform float u_ref_depth;
uniform vec3 u_bg;
uniform float u_fog;
uniform vec2 u_fog_range;
attribute vec3 a_position;
attribute vec3 a_color;
varying vec3 v_color;
void main() {
    gl_Position = u_mvp * vec4(a_position, 1.0);
    float depth = gl_Position.w;
    float f = clamp((depth - u_fog_range.x) / (u_fog_range.y - u_fog_range.x), 0.0, 1.0);
    v_color = mix(a_color, u_bg, u_fog * f * f);
    gl_PointSize = u_size * clamp(u_ref_depth / max(depth, 1e-4), 0.75, 3.0);
}
"""

CLOUD_FS = """
varying vec3 v_color;
void main() { gl_FragColor = vec4(v_color, 1.0); }
"""

SPRITE_VS = """
uniform mat4 u_mvp;
uniform float u_scale;
uniform float u_depth_bias;
attribute vec3 a_position;
attribute vec4 a_color;
attribute float a_size;
varying vec4 v_color;
void main() {
    gl_Position = u_mvp * vec4(a_position, 1.0);
    // drawn a little towards the camera, so marks on the surface are not hidden by its points
    gl_Position.z -= u_depth_bias * gl_Position.w;
    gl_PointSize = a_size * u_scale;
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
attribute vec2 a_position;
varying float v_y;
void main() { gl_Position = vec4(a_position, 0.999, 1.0); v_y = a_position.y * 0.5 + 0.5; }
"""

BG_FS = """
uniform vec3 u_top;
uniform vec3 u_bottom;
varying float v_y;
void main() { gl_FragColor = vec4(mix(u_bottom, u_top, v_y), 1.0); }
"""


class Renderer:
    """Draws frames of a given size: background, terrain cloud, sprites; reads them back as RGB."""

    def __init__(self, width: int, height: int):
        self.canvas = context()
        from vispy import gloo
        self.gloo = gloo
        self.width, self.height = width, height
        self.fbo = gloo.FrameBuffer(color=gloo.RenderBuffer((height, width, 4)),
                                    depth=gloo.RenderBuffer((height, width), format="depth"))
        self.cloud = gloo.Program(CLOUD_VS, CLOUD_FS)
        self.sprites = gloo.Program(SPRITE_VS, SPRITE_FS)
        self.bg = gloo.Program(BG_VS, BG_FS)
        self.bg["a_position"] = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        self.cloud_count = 0

    def set_cloud(self, positions: np.ndarray, colors: np.ndarray) -> None:
        self.cloud["a_position"] = self.gloo.VertexBuffer(np.ascontiguousarray(positions, np.float32))
        self.cloud["a_color"] = self.gloo.VertexBuffer(np.ascontiguousarray(colors, np.float32))
        self.cloud_count = len(positions)

    def begin(self, background_top, background_bottom) -> None:
        g = self.gloo
        self.fbo.activate()
        g.set_viewport(0, 0, self.width, self.height)
        g.set_state(depth_test=False, blend=False)
        g.clear(color=True, depth=True)
        self.bg["u_top"] = background_top
        self.bg["u_bottom"] = background_bottom
        self.bg.draw("triangle_strip")

    def draw_cloud(self, mvp: np.ndarray, size: float, ref_depth: float, bg, fog: float, fog_range) -> None:
        if not self.cloud_count:
            return
        g = self.gloo
        g.set_state(depth_test=True, blend=False)
        g.set_depth_func("less")
        p = self.cloud
        p["u_mvp"] = mvp.T.astype(np.float32)
        p["u_size"] = float(size)
        p["u_ref_depth"] = float(ref_depth)
        p["u_bg"] = tuple(float(c) for c in bg)
        p["u_fog"] = float(fog)
        p["u_fog_range"] = tuple(float(v) for v in fog_range)
        p.draw("points")

    def draw_sprites(self, mvp: np.ndarray, positions: np.ndarray, colors: np.ndarray, sizes: np.ndarray,
                     scale: float, soft: float, additive: bool) -> None:
        if len(positions) == 0:
            return
        g = self.gloo
        g.set_state(depth_test=True, blend=True, depth_mask=False)
        g.set_depth_func("lequal")
        if additive:
            g.set_blend_func("src_alpha", "one")
        else:
            g.set_blend_func("src_alpha", "one_minus_src_alpha")
        p = self.sprites
        p["u_mvp"] = mvp.T.astype(np.float32)
        p["u_scale"] = float(scale)
        p["u_soft"] = float(soft)
        p["u_depth_bias"] = 0.0015
        p["a_position"] = np.ascontiguousarray(positions, np.float32)
        p["a_color"] = np.ascontiguousarray(colors, np.float32)
        p["a_size"] = np.ascontiguousarray(sizes, np.float32).reshape(-1, 1)
        p.draw("points")
        g.set_state(depth_mask=True)

    def read(self) -> np.ndarray:
        """The frame as (height, width, 3) uint8, top row first."""
        img = self.gloo.read_pixels((0, 0, self.width, self.height), alpha=False)
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
