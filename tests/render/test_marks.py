"""render/marks.py: the ``minima`` plane's film.  Its three trails drawn by default in the marks'
colours, the marks (rings, stems and labels) standing on the terrain at the three networks, and a
film frame showing them."""
from __future__ import annotations

import numpy as np

from studio.scene import scene_from_dict


# --------------------------------------------------------------------------- the film

def _minima_landscape(scene, nx=60, ny=60):
    from studio.cache import Landscape, Path2D
    alpha, beta = np.linspace(-20, 80, nx), np.linspace(-20, 80, ny)
    A, B = np.meshgrid(alpha, beta)
    places = [(0.0, 0.0), (60.0, 0.0), (30.0, 52.0)]
    loss = 2.0 - sum(1.9 * np.exp(-((A - a) ** 2 + (B - b) ** 2) / 150) for a, b in places)
    paths, marks = {}, []
    for k, (name, (a, b)) in enumerate(zip(("training", "training_2", "training_3"), places)):
        t = np.linspace(0, 1, 20)[:, None]
        xy = (1 - t) * np.array([30.0, 17.0]) + t * np.array([a, b])
        paths[name] = Path2D(name, xy, np.linspace(1, 0.1, 20), np.linspace(1, 0.1, 20), np.linspace(9, 0, 20),
                             np.arange(20) * 5)
        marks.append({"seed": k, "label": f"seed {k}", "path": name, "xy": [a, b], "eval_loss": 0.1})
    meta = {"plane": {"method": "minima", "marks": marks}, "training": {"source": "trained"}}
    return Landscape(scene.cache_key(), loss.astype(np.float32), alpha, beta, paths, meta)


def test_a_minima_film_draws_all_three_trails_by_default():
    from render.marks import MINIMA_COLORS, with_minima_paths
    scene = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}}})
    ls = _minima_landscape(scene)
    filmed = with_minima_paths(scene, ls.meta)
    assert list(filmed.render.paths) == ["training", "training_2", "training_3"]
    assert [s.color for s in filmed.render.paths.values()] == list(MINIMA_COLORS)
    assert [s.label for s in filmed.render.paths.values()] == ["seed 0", "seed 1", "seed 2"]
    own = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}},
                           "render": {"paths": {"training_2": {}}}})
    assert with_minima_paths(own, ls.meta) is own                    # the scene's own choice stands
    assert with_minima_paths(scene, dict(ls.meta, training={"source": "weights"})) is scene


def test_the_marks_stand_on_the_terrain_at_the_three_networks():
    from render.look import build_terrain
    from render.marks import MarkLayer, build_marks
    scene = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}}})
    ls = _minima_landscape(scene)
    terrain = build_terrain(ls, "log", 0.5, "magma", 0.5)
    marks = build_marks(scene, ls.alpha, ls.beta, ls.meta, terrain)
    assert [m.label for m in marks] == ["seed 0", "seed 1", "seed 2"]
    for m, (a, b) in zip(marks, [(0.0, 0.0), (60.0, 0.0), (30.0, 52.0)]):
        centre = m.ring[:, :2].mean(axis=0)
        assert np.allclose(centre, [(a + 20) / 100 * 2 - 1, (b + 20) / 100 * 2 - 1], atol=1e-3)
        assert np.allclose(m.stem[0, :2], centre, atol=1e-3) and m.top[2] > m.stem[0, 2]
    off = scene_from_dict({"landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}},
                           "render": {"marks": False}})
    assert build_marks(off, ls.alpha, ls.beta, ls.meta, terrain) == []
    # the labels: drawn once the title has gone, over the stem's top
    layer = MarkLayer(scene, ls.alpha, ls.beta, ls.meta, terrain, 360, 10.0)
    img = np.zeros((360, 640, 3), np.uint8)
    layer.draw_labels(img, np.eye(4), 0.0)
    assert img.max() == 0
    layer.draw_labels(img, np.eye(4), 9.0)
    assert img.max() > 200
    assert len(layer.sprites(9.0, 1.0)) == 4 * 3 and layer.sprites(0.0, 1.0) == []


def test_a_minima_film_frame_shows_the_marks(gl, tmp_path):
    """The marks change the frame where they stand: each label that stands in the frame is drawn
    over its stem's top, as the film's camera projects it, and nothing changes away from the marks.
    (At this size the rings and stems are under a pixel wide, 3 x 180/1080, and mostly inside their
    funnels: their places are the test above's.)"""
    from render.camera import project_points
    from render.film import Film, Options
    scene = scene_from_dict({"title": "", "landscape": {"plane": {"method": "minima", "seeds": [0, 1, 2]}},
                             "render": {"look": {"supersample": 1}}})
    ls = _minima_landscape(scene)
    opts = Options(320, 180, 10, 6.0)
    with Film(scene, ls, opts) as film:
        assert [t.name for t, _ in film.trails] == ["training", "training_2", "training_3"]
        with_marks = film.frame(5.5).astype(int)
        s, radius, marks = film.camera.state(5.5), film.terrain.radius, film.marks.marks
    off = scene.model_copy(update={"render": scene.render.model_copy(update={"marks": False})})
    with Film(off, ls, opts) as film:
        without = film.frame(5.5).astype(int)
    ys, xs = np.nonzero(np.abs(with_marks - without).sum(axis=2) > 60)
    assert len(xs) > 300
    near_a_mark = np.zeros(len(xs), bool)
    labelled = 0
    for m in marks:
        places = project_points(np.r_[m.ring, m.stem].astype(np.float64), s, 320, 180, radius)[:, :2]
        x, y = project_points(m.top[None].astype(np.float64), s, 320, 180, radius)[0, :2]
        # the label: centred over the stem's top, standing on it
        label = (np.abs(xs + 0.5 - x) < 45) & (ys + 0.5 > y - 40) & (ys + 0.5 < y + 5)
        stem = np.hypot(xs[:, None] + 0.5 - places[:, 0], ys[:, None] + 0.5 - places[:, 1]).min(axis=1) < 4
        near_a_mark |= label | stem
        if 0 <= x < 320 and 0 <= y < 180:
            assert label.sum() > 150, (m.label, label.sum())
            labelled += 1
    assert labelled >= 2
    assert near_a_mark.mean() > 0.95, near_a_mark.mean()
