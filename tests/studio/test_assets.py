"""studio/assets.py's colormaps and tools/make_colormaps.py, which makes the dark-room ones: the
maps rise in lightness (the luminance proxy, CIE L*), the committed files are what the generator
makes, and the generator refuses stops that get darker.  Custom colormap files as a scene's value
are tests/studio/scene/test_look.py's."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from studio import assets
from tests.conftest import DARK_ROOM, ROOT

sys.path.insert(0, str(ROOT / "tools"))
import make_colormaps  # noqa: E402


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* from sRGB (the luminance proxy): relative luminance, then the cube-root curve."""
    c = np.asarray(rgb, np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


@pytest.mark.parametrize("name", DARK_ROOM)
def test_dark_room_maps_rise_in_lightness(name):
    lut = assets.colormap(name)
    assert lut.shape == (256, 3) and lut.dtype == np.float32
    L = lightness(lut)
    assert np.all(np.diff(L) > 0), f"{name}: lightness falls at row {int(np.argmin(np.diff(L)))}"
    # near black at the bottom, light but not a glaring white at the top, and a long ramp between
    assert L[0] < 6 and 80 < L[-1] < 98.5, (L[0], L[-1])
    # evenly: no stretch of the map takes a big share of the lightness range
    steps = np.diff(L)
    assert steps.max() < 4 * steps.mean()


def test_perceptual_maps_rise_in_lightness_too():
    # the luminance proxy agrees with the known sequential maps (twilight is cyclic: left out)
    for name in ("viridis", "magma", "inferno", "cividis"):
        L = lightness(assets.colormap(name))
        assert np.all(np.diff(L) > -0.05), name


def test_generated_maps_are_up_to_date():
    # the committed CSV files are what tools/make_colormaps.py makes from its stops
    for name in make_colormaps.MAPS:
        assert (ROOT / "assets" / "colormaps" / f"{name}.csv").read_text() == make_colormaps.render_csv(name)
    r = subprocess.run([sys.executable, "tools/make_colormaps.py", "--check"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_generator_refuses_stops_that_get_darker():
    with pytest.raises(ValueError, match="lightness must increase"):
        make_colormaps.build(["#000000", "#ffffff", "#808080"])
