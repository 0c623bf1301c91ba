"""The viewer: find shots by eye (``python -m render SCENE --view``, ``make view SCENE=...``).

A window (vispy.app on its ``glfw`` backend) shows the cached landscape as the film draws it: each
view is ``Film.frame(t)`` (the film's look, trails and overlays, drawn offscreen on the render
stage's EGL context) shown 1:1 as a texture in the window.  The viewer's camera is the plain
state the film's camera produces (``render.camera``: target, azimuth, elevation, distance, fov,
roll): the film's own path at t until the mouse or a key moves it, a free state after that.  A
free state is shown as the film shows a keyframe with those values (kept above the terrain by the
film's ``Ground``), so the keyframe line ``k`` prints reproduces the view exactly.

Mouse: left drag orbits, right drag (or shift + left drag) pans, the wheel dollies, shift + wheel
zooms (fov).  Keys: see ``KEYS``.

Two GL contexts live in one thread: the film's (EGL, surfaceless) and the window's (GLX on X11).
With libglvnd only one API's context may be current in a thread, so each is released before the
other is made current (``_offscreen``).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from vispy import app, gloo
from vispy.util import keys as vkeys

from render import gl as rgl
from studio.cli import UserError

KEYS = """\
[view] mouse: left drag orbit · right drag (or shift + left drag) pan · wheel dolly · shift + wheel fov
[view] keys:  left/right  time -/+ 0.5 s     [ ]  one frame     home/end  start/end
[view]        space or p  play/pause the scene's camera path    r  back to the scene's camera at t
[view]        up/down  elevation     + -  dolly     , .  fov     o  overlays on/off
[view]        k  print the camera as a keyframe line (stdout)    c  screenshot    h  this help    q/esc  quit"""

#: degrees a pixel of dragging turns; the wheel's dolly factor a step; fov degrees a step
ORBIT_DEG_PER_PX = 0.3
DOLLY_STEP = 0.9
FOV_STEP = 2.0
#: the largest window the viewer opens by default (the scene's aspect, its render.size when smaller)
FIT = (960, 540)


class NoDisplay(UserError):
    """No window can be opened here."""
    exit_code = 2


# ---------------------------------------------------------------------------------- camera math
def _state(s: dict) -> dict:
    """A copy of a camera state with plain floats (target as a list)."""
    return {"target": [float(v) for v in s["target"]], "azimuth": float(s["azimuth"]),
            "elevation": float(s["elevation"]), "distance": float(s["distance"]), "fov": float(s["fov"]),
            "roll": float(s.get("roll", 0.0))}


def orbit(s: dict, dx: float, dy: float) -> dict:
    """Turn around the target as if the landscape were grabbed: dragging right turns it right,
    dragging down shows it from higher up (elevation within the scene schema's +-89)."""
    s = _state(s)
    s["azimuth"] -= dx * ORBIT_DEG_PER_PX
    s["elevation"] = float(np.clip(s["elevation"] + dy * ORBIT_DEG_PER_PX, -89.0, 89.0))
    return s


def pan(s: dict, dx: float, dy: float, height_px: int) -> dict:
    """Move the target in the view plane so the point under the cursor at the target's depth
    follows the cursor (dx, dy in window pixels, y down)."""
    from render.camera import view_matrix
    s = _state(s)
    per_px = 2.0 * s["distance"] * math.tan(math.radians(s["fov"]) / 2) / max(height_px, 1)
    v = view_matrix(s)
    right, up = v[0, :3], v[1, :3]
    s["target"] = [float(x) for x in np.asarray(s["target"]) - right * dx * per_px + up * dy * per_px]
    return s


def dolly(s: dict, steps: float) -> dict:
    """Closer (steps > 0) or further, by DOLLY_STEP a step (distance within the schema's (0, 1000])."""
    s = _state(s)
    s["distance"] = float(np.clip(s["distance"] * DOLLY_STEP ** steps, 1e-3, 1000.0))
    return s


def zoom(s: dict, steps: float) -> dict:
    """Narrower field of view (steps > 0) or wider, FOV_STEP degrees a step (within 2 and 160)."""
    s = _state(s)
    s["fov"] = float(np.clip(s["fov"] - FOV_STEP * steps, 2.0, 160.0))
    return s


def _num(v: float, digits: int) -> str:
    """A number for a YAML flow mapping: fixed point (PyYAML reads ``1e-05`` as a string)."""
    text = f"{round(float(v), digits) + 0.0:.{digits}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def keyframe_line(t: float, s: dict) -> str:
    """The camera state ``s`` at time t as a ``render.camera`` keyframe line, ready to paste under
    ``camera:`` (roll only when the camera is rolled)."""
    tgt = ", ".join(_num(v, 4) for v in s["target"])
    line = (f"- {{t: {_num(t, 4)}, target: [{tgt}], azimuth: {_num(s['azimuth'], 2)}, "
            f"elevation: {_num(s['elevation'], 2)}, distance: {_num(s['distance'], 4)}, fov: {_num(s['fov'], 2)}")
    roll = float(s.get("roll", 0.0))
    if round(roll, 2) != 0:
        line += f", roll: {_num(roll, 2)}"
    return line + "}"


# ---------------------------------------------------------------------------------- the display
def display_problem() -> str | None:
    """Why no window can be opened here (None: one can)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display to open the viewer's window on (DISPLAY and WAYLAND_DISPLAY are unset)"
    try:
        import glfw
    except Exception as e:  # noqa: BLE001 - not installed, or its library does not load
        return f"the viewer's window library (glfw) is not available: {e}"
    where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    reporting, glfw.ERROR_REPORTING = glfw.ERROR_REPORTING, "ignore"
    try:
        ok = glfw.init()
        if not ok:
            _, why = glfw.get_error()
            why = why.decode(errors="replace") if isinstance(why, bytes) else why
            return f"cannot open a window on display {where}: {why or 'GLFW could not start'}"
    except Exception as e:  # noqa: BLE001
        return f"cannot open a window on display {where}: {e}"
    finally:
        glfw.ERROR_REPORTING = reporting
    return None


def require_display(scene_path: str) -> None:
    """Raise NoDisplay (one line, with what to run instead) when no window can be opened."""
    problem = display_problem()
    if problem:
        raise NoDisplay(f"{problem}; `make storyboard SCENE={scene_path}` writes a contact sheet of the "
                        f"film's shots instead")


class _EGL:
    """Releasing the current EGL context (libEGL through ctypes), so the window's can be made current."""

    def __init__(self):
        name = ctypes.util.find_library("EGL") or "libEGL.so.1"
        self.lib = ctypes.CDLL(name)
        self.lib.eglGetCurrentDisplay.restype = ctypes.c_void_p
        self.lib.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
        self.lib.eglMakeCurrent.restype = ctypes.c_uint

    def release(self) -> None:
        dpy = self.lib.eglGetCurrentDisplay()
        if dpy:
            self.lib.eglMakeCurrent(dpy, None, None, None)


class _HeldCamera:
    """Stands in for the film's camera path: the path's state at t, or a held (free) state, shown
    as the path would show a keyframe of it (raised above the terrain by the path's ground)."""

    def __init__(self, path):
        self.path = path
        self.held: dict | None = None

    def shown(self, s: dict) -> dict:
        s = _state(s)
        if getattr(self.path, "ground", None) is not None:
            s["elevation"] = float(self.path.ground.lift(s))
        return s

    def state(self, t: float) -> dict:
        return self.path.state(t) if self.held is None else self.shown(self.held)

    def raw(self, t: float) -> dict:
        """The path's state at t before the ground guard: what a keyframe of the view would say."""
        ground = getattr(self.path, "ground", None)
        self.path.ground = None
        try:
            return _state(self.path.state(t))
        finally:
            self.path.ground = ground

    def __getattr__(self, name):
        return getattr(self.path, name)


class _NoOverlays:
    def draw(self, img, t, readings) -> None:
        pass


# ---------------------------------------------------------------------------------- the window
def fit_size(w: int, h: int, fit: tuple[int, int] = FIT) -> tuple[int, int]:
    """w x h shrunk (never grown) to fit ``fit``, keeping the aspect; even sides."""
    k = min(1.0, fit[0] / w, fit[1] / h)
    return max(16, int(w * k) // 2 * 2), max(16, int(h * k) // 2 * 2)


class Viewer(app.Canvas):
    """The viewer's window on ``film`` (a Film: its camera is taken over, ``_HeldCamera``).
    ``application``: the glfw vispy Application it runs in; ``egl``: the film's context's releaser;
    ``screenshot``: where ``c`` writes (None: out/<name>_view_<t>s.png); ``stream``: where ``k``
    prints keyframe lines."""

    def __init__(self, application, film, egl: _EGL, screenshot: Path | None, stream):
        self.film = film
        self.opts = o = film.opts
        self.egl = egl
        self.screenshot = screenshot
        self.stream = stream
        self.camera = _HeldCamera(film.camera)
        film.camera = self.camera
        self.overlays = film.overlays
        self.t = 0.0
        self.frame_dt = 1.0 / max(o.fps, 1)
        self.dirty = True
        self.playing = False
        self.play_from = (0.0, 0.0)          # (film time, wall time) when play started
        self.pending_shots: list[Path] = []
        self.drag = None                     # (x, y, button, shift) of the last drag event
        self.pointer = None                  # the last motion event's (x, y)
        self.error: Exception | None = None  # what drawing a frame raised (the viewer then closes)
        self.img = None
        self.first = True
        super().__init__(app=application, size=(o.width, o.height), resizable=False,
                         title=self._caption(), keys=None, show=False)
        self.quad = rgl.program("quad")
        self.quad["a_pos"] = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        self.quad["a_uv"] = np.array([[0, 1], [1, 1], [0, 0], [1, 0]], np.float32)
        self.tex = None
        self.timer = app.Timer(self.frame_dt, connect=self._tick, app=application, start=False)
        self.show()

    # -------------------------------------------------------------- state
    def state(self) -> dict:
        """The camera's state at t before the ground guard (what a keyframe would say)."""
        return _state(self.camera.held) if self.camera.held is not None else self.camera.raw(self.t)

    def _caption(self) -> str:
        mode = "playing" if getattr(self, "playing", False) else (
            "free camera" if getattr(self, "camera", None) is not None and self.camera.held is not None
            else "scene camera")
        return (f"landscape viewer: {self.film.scene.name} - t {getattr(self, 't', 0.0):.2f} / "
                f"{self.opts.duration:g} s - {mode}")

    def _set_t(self, t: float) -> None:
        self.t = float(np.clip(t, 0.0, self.opts.duration))
        self._changed()

    def _hold(self, s: dict) -> None:
        self.camera.held = _state(s)
        if self.playing:
            self._stop()
        self._changed()

    def _changed(self) -> None:
        self.dirty = True
        self.update()

    # -------------------------------------------------------------- drawing
    @contextlib.contextmanager
    def _offscreen(self):
        """The film's EGL context current (the window's released), and back."""
        import glfw
        glfw.make_context_current(None)
        rgl.context()
        try:
            yield
        finally:
            self.egl.release()
            self.set_current()

    def on_draw(self, event):
        if self.error is not None:
            return
        if self.dirty or self.img is None:
            try:
                with self._offscreen():
                    img = self.film.frame(self.t)
            except Exception as e:  # noqa: BLE001 - ends the viewer; view() raises it after the loop
                self.error = e
                self.close()
                return
            if img.shape[2] == 4:             # a transparent film, shown over black
                img = (img[..., :3].astype(np.uint16) * img[..., 3:4] // 255).astype(np.uint8)
            self.img = np.ascontiguousarray(img)
            self.dirty = False
            if self.tex is None or self.tex.shape[:2] != self.img.shape[:2]:
                self.tex = gloo.Texture2D(self.img, interpolation="nearest")
                self.quad["u_tex"] = self.tex
            else:
                self.tex.set_data(self.img)
            self.title = self._caption()
        pw, ph = self.physical_size
        ih, iw = self.img.shape[:2]
        k = min(pw / iw, ph / ih)
        vw, vh = int(round(iw * k)), int(round(ih * k))
        gloo.set_viewport(0, 0, pw, ph)
        gloo.set_clear_color((0, 0, 0, 1))
        gloo.clear(color=True)
        gloo.set_viewport((pw - vw) // 2, (ph - vh) // 2, vw, vh)
        gloo.set_state(depth_test=False, blend=False)
        self.quad.draw("triangle_strip")
        if self.pending_shots:
            shot = gloo.read_pixels((0, 0, pw, ph), alpha=False)
            from render.writer import write_image
            for p in self.pending_shots:
                write_image(p, np.ascontiguousarray(shot))
                print(f"[view] wrote {p} ({pw}x{ph}, t={self.t:g} s)", file=sys.stderr, flush=True)
            self.pending_shots = []
        if self.first:
            self.first = False
            print("[view] ready", file=sys.stderr, flush=True)

    # -------------------------------------------------------------- playing
    def _play(self) -> None:
        if self.t >= self.opts.duration - 1e-9:
            self.t = 0.0
        self.camera.held = None
        self.playing = True
        self.play_from = (self.t, time.perf_counter())
        self.timer.start()
        self._changed()

    def _stop(self) -> None:
        self.playing = False
        self.timer.stop()
        self._changed()

    def _tick(self, event) -> None:
        t0, w0 = self.play_from
        t = t0 + (time.perf_counter() - w0)
        t = round(t * self.opts.fps) / self.opts.fps    # on the film's frames
        if t >= self.opts.duration:
            self.t = float(self.opts.duration)
            self._stop()
            return
        if t != self.t:
            self.t = t
            self._changed()

    # -------------------------------------------------------------- input
    def on_key_press(self, event):
        name = event.key.name if event.key is not None else ""
        text = event.text or ""
        k = text if text and text.isprintable() and text != " " else name
        k = {" ": "Space"}.get(k, k)
        if k in ("Left", "Right"):
            self._set_t(self.t + (0.5 if k == "Right" else -0.5))
        elif k in ("[", "]"):
            self._set_t(self.t + (self.frame_dt if k == "]" else -self.frame_dt))
        elif k == "Home":
            self._set_t(0.0)
        elif k == "End":
            self._set_t(self.opts.duration)
        elif k in ("Space", "p", "P"):
            self._stop() if self.playing else self._play()
        elif k in ("r", "R"):
            self.camera.held = None
            self._changed()
        elif k in ("Up", "Down"):
            self._hold(orbit(self.state(), 0, 5.0 / ORBIT_DEG_PER_PX * (1 if k == "Up" else -1)))
        elif k in ("+", "=", "-", "_"):
            self._hold(dolly(self.state(), 1 if k in ("+", "=") else -1))
        elif k in (",", "."):
            self._hold(zoom(self.state(), 1 if k == "," else -1))
        elif k in ("o", "O"):
            self.film.overlays = _NoOverlays() if self.film.overlays is self.overlays else self.overlays
            self._changed()
        elif k in ("k", "K"):
            print(keyframe_line(self.t, self.state()), file=self.stream, flush=True)
        elif k in ("c", "C"):
            self.pending_shots.append(self.screenshot or
                                      self.film.scene.output_path().with_name(f"{self.film.scene.name}_view_{self.t:.2f}s.png"))
            self.update()
        elif k in ("h", "H"):
            print(KEYS, file=sys.stderr, flush=True)
        elif k in ("q", "Q", "Escape"):
            self.close()

    def on_mouse_press(self, event):
        # from the last motion event's position: GLFW gives a press the pointer's position when
        # the press is handled, which lags behind when events queue up
        x, y = self.pointer if self.pointer is not None else event.pos
        self.drag = (x, y, event.button, vkeys.SHIFT in event.modifiers)

    def on_mouse_release(self, event):
        self.drag = None

    def on_mouse_move(self, event):
        x, y = self.pointer = tuple(event.pos)
        if self.drag is None:
            return
        x0, y0, button, shift = self.drag
        self.drag = (x, y, button, shift)
        dx, dy = x - x0, y - y0
        if not (dx or dy):
            return
        if button == 1 and not shift:
            self._hold(orbit(self.state(), dx, dy))
        else:
            self._hold(pan(self.state(), dx, dy, self.size[1]))

    def on_mouse_wheel(self, event):
        steps = float(event.delta[1])
        if not steps:
            return
        if vkeys.SHIFT in event.modifiers:
            self._hold(zoom(self.state(), steps))
        else:
            self._hold(dolly(self.state(), steps))

    def on_close(self, event):
        self.timer.stop()


def make_viewer(film, scene_path: str, screenshot: Path | None, stream=None):
    """The viewer window for ``film`` (a Film: its camera is taken over) and the application it runs
    in.  ``screenshot``: where ``c`` writes (None: out/<name>_view_<t>s.png)."""
    egl = _EGL()
    egl.release()
    application = app.Application("glfw")
    return application, Viewer(application, film, egl, screenshot, stream or sys.stdout)


def view(scene, ls, opts, scene_path: str, screenshot: str | None = None, fit: bool = True) -> int:
    """Open the viewer on one landscape (``opts``: the film's; ``fit``: shrink its size to FIT)."""
    from dataclasses import replace
    from render.film import Film
    require_display(scene_path)
    if fit:
        w, h = fit_size(opts.width, opts.height)
        opts = replace(opts, width=w, height=h)
    film = Film(scene, ls, opts)
    if film.note:
        print(f"[render] {film.note}", file=sys.stderr)
    print(f"[view] {scene.name}: {opts.width}x{opts.height}, {opts.duration:g} s at {opts.fps} fps", file=sys.stderr)
    print(KEYS, file=sys.stderr, flush=True)
    try:
        try:
            application, viewer = make_viewer(film, scene_path, Path(screenshot) if screenshot else None)
        except Exception as e:  # noqa: BLE001 - the window could not be made: one line, not a traceback
            raise NoDisplay(f"cannot open the viewer's window: {e}; `make storyboard SCENE={scene_path}` writes "
                            f"a contact sheet of the film's shots instead") from None
        application.run()
        if viewer.error is not None:
            raise viewer.error
    finally:
        with contextlib.suppress(Exception):
            import glfw
            glfw.make_context_current(None)
            rgl.context()
            film.close()
    return 0
