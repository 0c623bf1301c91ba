"""render.gl without a GL context: how a frame larger than the GL draws at once is cut into tiles,
and the sub-frustum each tile is drawn through.  Drawing itself (tiled frames equal to one-piece
frames) is tests/render/test_render.py's."""
import numpy as np
import pytest


def test_tiles_cover_the_frame_once():
    from render.gl import TileError, plan_tiles
    tiles = plan_tiles(1000, 700, 256, 10)
    cover = np.zeros((700, 1000), int)
    for t in tiles:
        c0, r0, c1, r1 = t.inner
        cover[r0:r1, c0:c1] += 1
        x0, y0, x1, y1 = t.region
        assert max(t.size) <= 256
        # the margin on every side, beyond the frame's edges too (points centred there reach in)
        assert (c0 - x0, r0 - y0, x1 - c1, y1 - r1) == (10, 10, 10, 10)
    assert (cover == 1).all()
    # a frame that fits with its margin: one piece, grown by the margin
    assert plan_tiles(200, 100, 256, 10) == [type(tiles[0])((0, 0, 200, 100), (-10, -10, 210, 110))]
    assert len(plan_tiles(250, 100, 256, 10)) > 1
    with pytest.raises(TileError, match="at least 216 pixels"):
        plan_tiles(1000, 700, 100, 100)


def test_tile_matrix_is_a_sub_frustum():
    # a point's pixel position in a tile is its position in the whole frame minus the tile's corner
    from render.gl import tile_matrix
    rng = np.random.default_rng(0)
    W, H = 640, 360
    f = 1 / np.tan(np.radians(35) / 2)
    proj = np.array([[f * H / W, 0, 0, 0], [0, f, 0, 0], [0, 0, -1.01, -0.2], [0, 0, -1, 0]])
    pts = np.c_[rng.uniform(-1, 1, (50, 2)), rng.uniform(-6, -3, 50), np.ones(50)]

    def pixels(m, w, h):
        c = pts @ m.T
        ndc = c[:, :2] / c[:, 3:]
        return np.c_[(ndc[:, 0] + 1) / 2 * w, (1 - ndc[:, 1]) / 2 * h]      # x right, y down

    full = pixels(proj, W, H)
    region = (200, 40, 330, 250)
    tile = pixels(tile_matrix(W, H, region) @ proj, region[2] - region[0], region[3] - region[1])
    np.testing.assert_allclose(tile, full - [region[0], region[1]], atol=1e-9)
    # depth (and with it point size and fog) is untouched
    np.testing.assert_allclose((pts @ (tile_matrix(W, H, region) @ proj).T)[:, 2:], (pts @ proj.T)[:, 2:])
