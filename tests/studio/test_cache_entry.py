"""studio/cache_entry.py: one cache entry as the object the compute stage hands on."""
from __future__ import annotations

import numpy as np
import pytest

from studio import cache
from studio.cache_entry import CacheEntry
from studio.scene import scene_from_dict
from tests.conftest import synthetic_landscape


def test_an_entry_is_its_scene_key_under_the_root_and_owns_both_folders(tmp_path):
    scene = scene_from_dict({"landscape": {"grid": {"resolution": [20, 20]}}})
    e = CacheEntry.of(scene, tmp_path)
    assert e.key == scene.cache_key() and e.root == tmp_path and e.scene_path == scene.source
    assert e.dir == cache.entry_dir(tmp_path, e.key) and e.partial == cache.partial_dir(tmp_path, e.key)
    assert e.dir != e.partial and not e.exists()


def test_what_it_writes_it_reads_back(tmp_path):
    ls = synthetic_landscape("abc123", nx=30, ny=20)
    e = CacheEntry(tmp_path, "abc123")
    assert e.write(ls) == e.dir and e.exists()
    assert "no plane vectors" in e.problem() and e.plane() is None       # the synthetic entry has no plane
    back = e.read()
    np.testing.assert_array_equal(back.loss, ls.loss)
    assert e.meta() == back.meta and e.figures() is None
    e.write_figures({"options": {}, "figures": {"x": 1}}, {"a": np.arange(3.0)})
    record, arrays = e.figures()
    assert record["figures"] == {"x": 1} and arrays["a"].tolist() == [0.0, 1.0, 2.0]


def test_a_landscape_of_another_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="written as the entry"):
        CacheEntry(tmp_path, "other").write(synthetic_landscape("abc123", nx=10, ny=10))
    assert not (tmp_path / "other").exists() and not cache.exists(tmp_path, "abc123")
