"""render.overlay at every frame size: text that scales with the frame (legible at 640 x 360, modest
at 4K), the title card's band (legible whatever the camera puts behind it) and a title set to fit the
frame's width.  The overlays are composited on plain frames (no GL); the trails' fade-in is
tests/render/test_render.py's."""
from __future__ import annotations

import numpy as np

from render import overlay
from render.overlay import FilmOverlays, Reading
from studio.scene import load_scene
from tests.conftest import synthetic_landscape, write_scene

SCENE = "title: Overlays\nrender:\n  fps: 10\n  duration: 10\n"
READING = Reading("training", (1.0, 1.0, 1.0), 1234, 0.123456, None)


def _overlays(tmp_path, h: int, yaml: str = "", title: str = "Overlays") -> FilmOverlays:
    scene = load_scene(write_scene(tmp_path, SCENE.replace("Overlays", title) + yaml))
    return FilmOverlays(scene, synthetic_landscape("k").meta, h, scene.render.duration, 1)


def readout_text_height(tmp_path, w: int, h: int) -> float:
    """The read-out line's text (its letters, from the top of the tallest to the bottom of the
    lowest: 'step 1,234' has both), as a fraction of the frame's height."""
    img = np.zeros((h, w, 3), np.uint8)
    _overlays(tmp_path, h, "  title_card: false\n").draw(img, 6.0, [READING])
    rows = np.nonzero((img.max(axis=-1) > 100).any(axis=1))[0]
    assert len(rows), "no read-out drawn"
    return (rows.max() - rows.min() + 1) / h


def test_readout_is_legible_small_and_modest_large(tmp_path):
    small = readout_text_height(tmp_path, 640, 360)
    full = readout_text_height(tmp_path, 1920, 1080)
    large = readout_text_height(tmp_path, 3840, 2160)
    assert small >= 0.03 and small * 360 >= 11          # about 12 pixels of text at 360p
    assert 0.015 <= full <= 0.03                        # 1080p as designed
    assert large < full < small                         # less than in proportion: not huge at 4K
    assert overlay.text_scale(1080) == 1.0


def test_title_band_darkens_behind_the_title_and_goes_with_it(tmp_path):
    grey = np.full((360, 640, 3), 200, np.uint8)
    ov = _overlays(tmp_path, 360)
    shown, after = grey.copy(), grey.copy()
    ov.draw(shown, 2.0, [])
    ov.draw(after, 4.6, [])                             # title_end(10) = 4 s
    assert (after == 200).all()
    # the corner at the top (away from the text) is darkened, the middle and bottom untouched
    assert shown[5, 5].max() < 200 * 0.5
    assert (shown[200:] == 200).all()
    # behind the subtitle (the card's last text rows) the band is still dark
    text = (shown.astype(int) - 200).max(axis=-1) > 20
    last = np.nonzero(text.any(axis=1))[0].max()
    assert shown[last, 5].max() < 200 * 0.6
    # and it fades out smoothly below the card: no hard edge
    column = shown[:, 5, 0].astype(int)
    assert np.abs(np.diff(column)).max() <= 8


def test_a_long_title_is_set_to_fit_a_small_frame(tmp_path):
    img = np.zeros((180, 320, 3), np.uint8)
    ov = _overlays(tmp_path, 180, title="A rather long title for a very small frame indeed")
    ov.draw(img, 2.0, [])
    xs = np.nonzero((img.max(axis=-1) > 40).any(axis=0))[0]
    assert xs.min() > 0 and xs.max() < 319
