"""render.overlay: text tiles, fades, the title card and its description of the landscape, the
read-out, captions (positions, stacking), and one film's overlays together.  No GL: the overlays
are composited on plain frames here (tests/render/test_render.py and tests/render/test_golden.py draw them over
films)."""
from __future__ import annotations

import numpy as np
import pytest

from render import overlay
from render.overlay import FilmOverlays, Reading, TileCache, describe
from studio.scene import load_scene
from tests.conftest import synthetic_landscape, write_scene

RENDER = "render:\n  size: [640, 360]\n  fps: 10\n  duration: 1.2\n"
#: a trail that has not started at the times looked at: room is kept for its read-out line
LATE_TRAIL = "  paths: {training: {start: 1.0}}\n"


def _overlaid(tmp_path, render_yaml: str, t: float, readings=(), title: str = "Overlays", meta=None,
              w: int = 640, h: int = 360) -> np.ndarray:
    """A black w x h frame with the overlays of a film of the scene at time t."""
    scene = load_scene(write_scene(tmp_path, f"title: {title}\n" + render_yaml))
    meta = meta if meta is not None else synthetic_landscape("k").meta
    img = np.zeros((h, w, 3), np.uint8)
    FilmOverlays(scene, meta, h, scene.render.duration, len(scene.render.paths)).draw(img, t, list(readings))
    return img


def _drawn(img: np.ndarray) -> np.ndarray:
    """Where something was drawn on the black frame (the shadows are black: the text itself)."""
    return img.astype(int).max(axis=-1) > 40


# ----------------------------------------------------------------------------- pieces

def test_fade_is_a_smoothstep_in_and_out():
    assert overlay.fade(0.9, 1.0, 3.0, 0.5) == 0.0 and overlay.fade(3.1, 1.0, 3.0, 0.5) == 0.0
    assert overlay.fade(1.25, 1.0, 3.0, 0.5) == pytest.approx(0.5)
    assert overlay.fade(2.0, 1.0, 3.0, 0.5) == 1.0 and overlay.fade(2.0, 1.0, 3.0, 0.0) == 1.0
    assert overlay.fade(2.9, 1.0, 3.0, 0.5) == pytest.approx(0.104)


def test_tiles_are_made_once():
    tiles, made = TileCache(), []

    def make():
        made.append(1)
        return overlay.text_tile([("once", 24, False, overlay.WHITE)], 1.0)

    a, b = tiles.get("k", make), tiles.get("k", make)
    assert a is b and len(made) == 1


def test_text_tile_composites_at_its_opacity():
    tile = overlay.text_tile([("Loss", 40, True, overlay.WHITE)], 1.0)
    full, half = np.zeros((120, 240, 3), np.uint8), np.zeros((120, 240, 3), np.uint8)
    overlay.composite(full, tile, 10, 10, 1.0)
    overlay.composite(half, tile, 10, 10, 0.5)
    assert full.max() > 240 and abs(int(half.max()) - int(full.max()) // 2) <= 2
    rgba = np.zeros((120, 240, 4), np.uint8)                    # premultiplied: the alpha is composited too
    overlay.composite(rgba, tile, 10, 10, 1.0)
    assert rgba[..., 3].max() == 255 and (rgba[..., :3] <= rgba[..., 3:4]).all()


# ----------------------------------------------------------------------------- the title card

def test_describe_says_what_the_landscape_is():
    meta = synthetic_landscape("k").meta
    assert overlay.describe(meta) == ("MLP 8 (tanh)  ·  2 interleaved spirals  ·  PCA plane of the training path"
                                      "  ·  12,000 loss evaluations")
    wide = {"landscape": dict(meta["landscape"], model={"name": "mlp", "widths": [64, 64], "activation": "relu"})}
    assert overlay.shared_description([meta, wide]) == ("2 interleaved spirals  ·  PCA plane of the training "
                                                         "path  ·  12,000 loss evaluations")
    assert overlay.describe({"landscape": {}}) == ""


@pytest.mark.parametrize("model,text", [
    ({"name": "resnet", "depth": 20, "skip": True, "width": 16, "batchnorm": True}, "ResNet-20"),
    ({"name": "resnet", "depth": 56, "skip": False, "width": 16, "batchnorm": True},
     "ResNet-56 without skip connections"),
    ({"name": "resnet", "depth": 20, "skip": True, "width": 4, "batchnorm": False},
     "ResNet-20 (width 4, no BatchNorm)"),
    ({"name": "vgg", "config": "vgg9", "width": 64, "batchnorm": True}, "VGG-9"),
    ({"name": "vgg", "config": "vgg11", "width": 8, "batchnorm": True}, "VGG-11 (width 8)"),
    ({"name": "torchvision", "arch": "resnet18"}, "torchvision resnet18"),
    ({"name": "custom", "entry": "tiny_models:ring_net", "args": {}, "version": 0}, "ring_net"),
])
def test_title_card_names_the_model(model, text):
    line = describe({"landscape": {"model": model, "data": {"name": "cifar10"}, "plane": {"method": "pca"}}})
    assert line.split("  ·  ")[:2] == [text, "CIFAR-10"]


def test_a_users_own_network_is_named_by_its_class_weights_and_data():
    """No 'custom model module:function': the class, its weights, the evaluation data's size."""
    meta = {"landscape": {"model": {"name": "custom", "entry": "model:build"}, "plane": {"method": "pca"},
                          "data": {"name": "custom", "entry": "data:eval_data"}, "grid": {"resolution": [100, 100]}},
            "model_class": "TinyResNet", "parameters": 28963, "training": {"source": "checkpoints"},
            "data": {"kind": "classes", "shape": [1, 16, 16], "eval_samples": 256, "classes": 3}}
    assert describe(meta).split("  ·  ") == ["TinyResNet (28,963 weights)", "256 images 1x16x16, 3 classes",
                                             "your checkpoints", "PCA plane of the training path",
                                             "10,000 loss evaluations"]
    meta["data"] = {"kind": "tokens", "shape": [32], "eval_samples": 48, "classes": 59}
    assert describe(meta).split("  ·  ")[1] == "48 sequences of 32 tokens"


@pytest.mark.parametrize("name,title", [("first", "First"), ("tiny_resnet-sgd", "Tiny resnet sgd"), ("x", "X")])
def test_a_scene_without_a_title_is_named_by_its_file(tmp_path, name, title):
    from studio.scene import load_scene
    p = tmp_path / f"{name}.yaml"
    p.write_text("landscape: {grid: {resolution: [10, 10]}}\n")
    assert load_scene(p).film_title == title
    p.write_text("title: Mine\nlandscape: {grid: {resolution: [10, 10]}}\n")
    assert load_scene(p).film_title == "Mine"


def test_title_card_fades_in_and_out_at_the_top(tmp_path):
    render = RENDER.replace("duration: 1.2", "duration: 10")
    before, shown, after = (_overlaid(tmp_path, render, t) for t in (0.2, 2.0, 4.6))
    assert not _drawn(before).any() and not _drawn(after).any()          # title_end: 4 s
    ys, xs = np.nonzero(_drawn(shown))
    assert ys.max() < 360 * 0.45                                         # the title and its description
    assert abs((xs.min() + xs.max()) / 2 - 320) < 12                     # centred
    # no title card when the scene turns it off (or a panel leaves it to its comparison)
    assert not _drawn(_overlaid(tmp_path, render + "  title_card: false\n", 2.0)).any()
    scene = load_scene(write_scene(tmp_path, "title: Overlays\n" + render))
    img = np.zeros((360, 640, 3), np.uint8)
    FilmOverlays(scene, {}, 360, 10.0, 0, scene_text=False).draw(img, 2.0, [])
    assert not _drawn(img).any()


def test_a_title_without_a_description_is_one_line(tmp_path):
    render = RENDER.replace("duration: 1.2", "duration: 10")
    one = _drawn(_overlaid(tmp_path, render, 2.0, meta={"landscape": {}}))
    two = _drawn(_overlaid(tmp_path, render, 2.0))
    rows = np.nonzero(one.any(axis=1))[0]
    assert rows.max() < np.nonzero(two.any(axis=1))[0].max() - 10
    np.testing.assert_array_equal(one[:rows.max() + 1], two[:rows.max() + 1])    # the title where it was


# ----------------------------------------------------------------------------- the read-out

def test_reading_text():
    r = Reading("Adam", (1.0, 0.0, 0.0), 1234.4, 0.123456, None)
    assert r.text() == "Adam   step 1,234   loss 0.1235"
    off = Reading("training", (1.0, 0.0, 0.0), 10, 0.5, 0.25, over_grid=False)
    assert off.text() == "training   step 10   loss 0.5000   on this plane 0.2500   (beyond the grid)"


def test_an_empty_label_shows_no_label():
    assert Reading("", (1.0, 1.0, 1.0), 5, 0.25, None).text() == "step 5   loss 0.2500"


def test_the_readout_fits_a_narrow_panel():
    """A side-by-side panel at 640 x 360 is 316 pixels wide: the read-out's lines are set smaller to
    stay inside it, at one size whatever the numbers (measured on the widest they could be)."""
    long = Reading("Adam with weight decay 0.01, lr 3e-4, batch 512", (1.0, 0.0, 0.0), 123, 0.5, 0.25)
    for width in (316, 640):
        img = np.zeros((360, width, 3), np.uint8)
        overlay.draw_readout(img, TileCache(), [long], 1.0, 360 / 1080)
        ys, xs = np.nonzero(_drawn(img))
        assert xs.max() < width - 4, (width, xs.max())
    tiles = TileCache()
    narrow = overlay.readout_fit(tiles, [long], 360 / 1080, 300)
    assert narrow < 1 and overlay.readout_fit(tiles, [long], 360 / 1080, 5000) == 1.0
    later = Reading(long.label, long.rgb, 99_000, 0.0001, 0.0002)
    assert overlay.readout_fit(tiles, [later], 360 / 1080, 300) == narrow


def test_readout_stacks_upwards_from_the_bottom_left_the_first_on_top():
    red = Reading("first", (1.0, 0.0, 0.0), 1, 0.5, None)
    green = Reading("second", (0.0, 1.0, 0.0), 2, 0.4, None)
    img = np.zeros((360, 640, 3), np.uint8)
    overlay.draw_readout(img, TileCache(), [red, green], 1.0, 360 / 1080)
    px = img.astype(int)
    r_rows = np.nonzero(((px[..., 0] > 200) & (px[..., 1] < 60)).any(axis=1))[0]
    g_rows = np.nonzero(((px[..., 1] > 200) & (px[..., 0] < 60)).any(axis=1))[0]
    assert len(r_rows) and len(g_rows) and r_rows.max() < g_rows.min()
    ys, xs = np.nonzero(_drawn(img))
    assert xs.min() < 40 and xs.max() < 320 and ys.min() > 250 and ys.max() < 360 - 10
    # the room it takes: one step a line, plus the padding
    tiles = TileCache()
    one, three = (overlay.readout_height(tiles, 1.0, n) for n in (1, 3))
    assert overlay.readout_height(tiles, 1.0, 0) == 0 and three - one == 2 * (one - overlay.tile_pad(1.0))


def test_readout_comes_in_as_the_title_goes(tmp_path):
    reading = Reading("training", (1.0, 0.0, 0.0), 10, 0.5, None)
    render = RENDER.replace("duration: 1.2", "duration: 10") + "  title_card: false\n" + LATE_TRAIL
    # a 10 s film's title card ends at 4 s: the read-out fades in from 3.5 s, with or without one
    assert overlay.title_end(10.0) == 4.0 and overlay.title_end(20.0) == 4.5
    assert not _drawn(_overlaid(tmp_path, render, 3.4, [reading])).any()
    assert _drawn(_overlaid(tmp_path, render, 5.0, [reading])).any()


# ----------------------------------------------------------------------------- captions

def test_lower_third_sits_at_the_bottom_left(tmp_path):
    base = RENDER + "  title_card: false\n" + LATE_TRAIL
    img = _overlaid(tmp_path, base + "  captions:\n    - {text: 'Adam, lr 0.01', subtitle: 'the real training run', "
                                      "position: lower_third, from: 0, to: 1.2, fade: 0.1}\n", 0.6)
    ys, xs = np.nonzero(_drawn(img))
    assert len(ys) > 300
    assert xs.min() < 60 and xs.max() < 640 * 0.6          # left-aligned, left part of the frame
    assert ys.min() > 360 * 0.55 and ys.max() < 360 - 20   # in the lower part, above the bottom edge


def _caption_rows(tmp_path, base, captions) -> set[int]:
    """Rows of a 640x360 frame at t=0.6 that the captions draw on."""
    img = _overlaid(tmp_path, base + "  captions:\n" + "".join(f"    - {x}\n" for x in captions), 0.6)
    return set(np.nonzero(_drawn(img).any(axis=1))[0].tolist())


def test_captions_at_one_edge_at_once_stack_instead_of_overlapping(tmp_path):
    base = RENDER + "  title_card: false\n" + LATE_TRAIL
    lower = "{text: 'Adam, lr 0.01', subtitle: 'the real run', position: lower_third, from: 0, to: 1.2, fade: 0.1}"
    bottom = "{text: 'A caption at the bottom', position: bottom, from: 0, to: 1.2, fade: 0.1}"
    top1 = "{text: 'First at the top', position: top, from: 0, to: 1.2, fade: 0.1}"
    top2 = "{text: 'Second at the top', position: top, from: 0, to: 1.2, fade: 0.1}"
    for pair in ((lower, bottom), (bottom, lower), (top1, top2)):
        a = _caption_rows(tmp_path, base, pair[:1])
        b = _caption_rows(tmp_path, base, pair[1:])
        both = _caption_rows(tmp_path, base, pair)
        assert len(a) > 10 and len(b) > 10
        # alone they would share rows; together the second moves off the first
        assert a & b, pair
        assert len(both) >= len(a) + len(b) - 2, (pair, len(a), len(b), len(both))


def test_bottom_captions_keep_clear_of_the_readout(tmp_path):
    caption = "  captions: [{text: 'At the bottom', position: bottom, from: 0, to: 1.2, fade: 0.1}]\n"
    base = RENDER + "  title_card: false\n" + caption

    def lowest_row(text: str) -> int:
        return int(np.nonzero(_drawn(_overlaid(tmp_path, text, 0.6)).any(axis=1))[0].max())

    free = lowest_row(base + "  paths: {}\n")
    landscape = "landscape: {descents: [{name: sgd, start: [0.5, 0.5]}, {name: adam, start: [0.5, 0.5]}]}\n"
    kept = lowest_row(landscape + base + "  paths: {training: {start: 1.0}, sgd: {start: 1.0}, adam: {start: 1.0}}\n")
    assert kept < free - 20             # lifted above three read-out lines (none of them shown yet)


@pytest.mark.parametrize("position", ["lower_third", "bottom", "top"])
def test_a_caption_longer_than_a_small_frame_is_set_smaller_to_fit(tmp_path, position):
    # text shrinks less than the frame does, so a long caption at 640 x 360 would run off the edge
    text = "No labels: the network is scored by how well it gives its input back, pixel by pixel"
    render = RENDER + f"  title_card: false\n  captions:\n    - {{text: '{text}', from: 0, to: 1.2, position: {position}}}\n"
    img = _overlaid(tmp_path, render, 0.6)
    cols = np.nonzero(_drawn(img).any(axis=0))[0]
    assert len(cols) and cols.min() > 2 and cols.max() < 640 - 3          # drawn, and whole
    tile = overlay.fitted_tile([(text, 40, True, overlay.WHITE)], 1.0, 500)
    assert tile.size[0] <= 500 < overlay.text_tile([(text, 40, True, overlay.WHITE)], 1.0).size[0]


def test_the_title_cards_second_line_reads_over_pale_terrain():
    """Over a pale frame (the terrain's brightest), the subtitle's letters stand well clear of the
    darkened band around them."""
    img = np.full((1080, 1920, 3), 235, np.uint8)
    subtitle = "TinyResNet (28,963 weights)  ·  256 images 1x16x16  ·  PCA plane"
    overlay.draw_title(img, TileCache(), "A title", subtitle, 2.0, 4.0, 1.0)
    tile = overlay.title_tile(TileCache(), "A title", subtitle, 1.0, 1920)
    x, y = overlay.place(tile, 1920, 1080, "top", overlay.MARGIN * 1.3)
    h = tile.size[1]
    line = img[y + int(h * 0.62): y + h - overlay.tile_pad(1.0), x: x + tile.size[0]].mean(axis=-1)
    assert np.percentile(line, 99.5) - np.percentile(line, 50) > 130
