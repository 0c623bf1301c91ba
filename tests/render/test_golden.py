"""Golden frames: small renders of the synthetic landscape compared with reference PNGs.

Each case is a scene (a few looks together), a size of 320 x 180 and a time; the frame must match
``tests/golden/NAME.png`` within a tolerance that absorbs rounding differences between Mesa
versions but not a changed look: mean absolute difference under 2 and 99th percentile under 40
(0-255 per channel).  After an intended change of the look, regenerate them with

    .venv/bin/python -m pytest tests/render/test_golden.py --regen-golden     (or STUDIO_REGEN_GOLDEN=1)

and look at the new PNGs before committing them.  A failing case writes the frame it got next
to the test's temporary files and names it in the message.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.gl

GOLDEN = ROOT / "tests" / "golden"
W, H = 320, 180
# explicit camera keyframes: the frames do not depend on the automatic framing
CAMERA = "  camera:\n    - {t: 0, azimuth: -30, elevation: 34, distance: 4.2, fov: 35}\n" \
         "    - {t: 4, azimuth: 10, elevation: 28, distance: 3.8, ease: in_out}\n"

CASES = {
    # the default look: magma, log heights, one trail growing, the title card fading out
    "default": dict(t=1.0, descents=(), yaml="""
render:
  fps: 10
  duration: 4
  paths: {training: {color: "#7fe3ff", label: "Adam, training", end: 3.0}}
"""),
    # a dark-room map on a gradient, three trails with their read-out, a lower third, supersampling
    "ember_trails": dict(t=3.2, descents=("sgd", "adam"), yaml="""
render:
  fps: 10
  duration: 4
  title_card: false
  look: {colormap: ember, background: ["#141a2e", "#05060a"], supersample: 2}
  paths:
    training: {color: "#7fe3ff", label: "Adam, training", end: 3.0}
    sgd: {color: "#ffd166", label: SGD, start: 0.5, end: 3.0}
    adam: {color: "#ef476f", label: Adam, start: 1.0, end: 3.0}
  captions:
    - {text: "Three optimizers", subtitle: "one landscape", position: lower_third, from: 2, to: 4, size: 44}
"""),
    # clipped linear heights, colour by log loss, world-sized points, strong fog, a two-line caption
    "clip_world": dict(t=2.0, descents=(), yaml="""
render:
  fps: 10
  duration: 4
  title_card: false
  look: {height: clip, clip_quantile: 0.9, colormap: aurora, color_by: loss, point_units: world, fog: 0.7}
  paths: {training: {color: "#ffffff", width: 8, end: 3.0}}
  captions:
    - {text: "The top 10% of the loss is clipped", subtitle: "colour: the log loss", from: 1, to: 3, position: top}
"""),
    # points that read as points, glossy light, bloom on the trail, focus on its head, the border dissolving
    "points_glow": dict(t=3.2, descents=(), yaml="""
render:
  fps: 10
  duration: 4
  title_card: false
  look: {style: points, light: {azimuth: 60, elevation: 35, specular: 0.4}, bloom: 0.8, depth_of_field: 0.5,
         edge: 0.1, occlusion: 1.0}
  paths: {training: {color: "#7fe3ff", end: 3.0}}
"""),
    # luminous grid lines on the surface, strong valley darkening
    "surface_wireframe": dict(t=2.0, descents=(), yaml="""
render:
  fps: 10
  duration: 4
  title_card: false
  look: {style: surface+wireframe, colormap: ice, occlusion: 1.0}
  paths: {training: {color: "#ffd166", end: 3.0}}
"""),
    # contour lines alone, glowing in the dark
    "contours": dict(t=2.0, descents=(), yaml="""
render:
  fps: 10
  duration: 4
  title_card: false
  look: {style: contours, contours: 14, colormap: aurora, bloom: 0.6}
  paths: {training: {color: "#ffffff", end: 3.0}}
"""),
}


def render_case(name: str, scene_with_cache) -> np.ndarray:
    from render.film import Film, Options
    from studio import cache
    from studio.scene import load_scene
    case = CASES[name]
    p, c = scene_with_cache(case["yaml"] + CAMERA, descents=case["descents"], title="Golden")
    scene = load_scene(p)
    ls = cache.read(c, scene.cache_key())
    film = Film(scene, ls, Options(W, H, scene.render.fps, scene.render.duration))
    try:
        return film.frame(case["t"])
    finally:
        film.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_frame(gl, scene_with_cache, regen_golden, tmp_path, name):
    img = render_case(name, scene_with_cache)
    assert img.shape == (H, W, 3)
    ref_path = GOLDEN / f"{name}.png"
    if regen_golden:
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(img).save(ref_path)
        pytest.skip(f"regenerated {ref_path.relative_to(ROOT)}")
    assert ref_path.is_file(), f"no golden frame {ref_path}; run pytest {__file__} --regen-golden"
    ref = np.asarray(Image.open(ref_path).convert("RGB"))
    d = np.abs(img.astype(int) - ref.astype(int))
    mad, p99 = float(d.mean()), float(np.percentile(d, 99))
    if not (mad < 2 and p99 < 40):
        got = tmp_path / f"{name}.got.png"
        Image.fromarray(img).save(got)
        pytest.fail(f"{name}: frame differs from {ref_path.relative_to(ROOT)} (mean abs diff {mad:.2f}, "
                    f"99th percentile {p99:.0f}); got {got}. If the change is intended, rerun with --regen-golden")
