"""compute/morphology/grid.py and studio/figures.py: a figure measured at a radius finer than the
grid's spacing says it is not resolved, in the stored figure and in words, instead of claiming a
rise of 0 or a basin of one cell.  Small synthetic grids, no model (NumPy only)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from compute.morphology.figures import measure
from compute.morphology.grid import basin, keskar_sharpness, node_step, span_step
from studio.figures import describe


def bowl(n: int, span: float = 6.0, h: float = 2.0, c: float = 0.5):
    """L = c + h (a^2 + b^2) / 2 on an n x n grid over [-span, span]^2 (a node at 0 for odd n)."""
    a = np.linspace(-span, span, n)
    A, B = np.meshgrid(a, a)
    return (c + 0.5 * h * (A * A + B * B)).astype(np.float32), a, a


# --------------------------------------------------------------------------- Keskar sharpness

def test_a_keskar_disc_finer_than_the_grid_is_not_a_rise_of_zero():
    """The fault: on a 121 x 121 grid over [-6, 6] (spacing 0.1) a disc of radius 0.05 holds the
    origin's node alone, and the worst rise in it came out 0.  A rise is there: h r^2 / 2."""
    L, a, b = bowl(121)
    k = keskar_sharpness(L, a, b, 0.05)
    assert k.cells == 1 and k.spacing == pytest.approx(0.1)
    assert not k.resolved and math.isnan(k.increase) and math.isnan(k.relative)
    assert k.origin_inside and k.loss_origin == pytest.approx(0.5)
    doc = json.loads(json.dumps(k.to_json(), allow_nan=False))
    assert doc["increase"] is None and doc["resolved"] is False            # null, never 0
    # the origin between nodes: no node in the disc at all
    L2, a2, b2 = bowl(120)
    assert keskar_sharpness(L2, a2, b2, 0.05).cells == 0
    assert not keskar_sharpness(L2, a2, b2, 0.05).resolved


def test_a_keskar_disc_of_a_grid_step_or_more_is_measured():
    L, a, b = bowl(121)
    k = keskar_sharpness(L, a, b, 0.1)                                     # the four neighbours on the circle
    assert k.resolved and k.cells == 5
    assert k.increase == pytest.approx(0.5 * 2.0 * 0.1 ** 2, rel=1e-4)
    fine = keskar_sharpness(*bowl(1201), 0.05)                             # a grid ten times finer: resolved
    assert fine.resolved and fine.increase == pytest.approx(0.5 * 2.0 * 0.05 ** 2, rel=1e-3)
    assert keskar_sharpness(L, a, b, 0.0).resolved                         # no radius: no rise, on any grid
    assert keskar_sharpness(L, a, b, 0.0).increase == 0.0


def test_the_spacing_is_the_largest_step_over_the_disc_on_uneven_axes():
    a = np.array([-3.0, -1.0, -0.2, 0.0, 0.05, 0.1, 2.0])                 # fine near 0 on the right only
    assert span_step(a, -0.3, 0.3) == pytest.approx(1.9)                   # the gap 0.1 .. 2 reaches in
    assert span_step(a, -0.1, 0.1) == pytest.approx(0.2)
    assert span_step(a, 0.01, 0.09) == pytest.approx(0.05)
    assert span_step(a, 5.0, 6.0) == pytest.approx(1.9)                    # beyond the end: the nearest gap
    assert node_step(a, 0) == pytest.approx(2.0) and node_step(a, 3) == pytest.approx(0.2)


# --------------------------------------------------------------------------- basins

def test_a_basin_narrower_than_the_grid_has_no_area():
    """The fault: a pit of radius 0.03 on a grid of spacing 0.1 is one node, and its area came out
    that node's cell, 0.01 (radius 0.056): neither its size nor a bound of it."""
    L, a, b = bowl(121, h=2.0)
    narrow = basin(L, a, b, 0.0009)                                        # true radius sqrt(2 * 0.0009 / 2) = 0.03
    assert narrow.cells == 1 and not narrow.resolved
    assert math.isnan(narrow.area) and math.isnan(narrow.radius) and narrow.spacing == pytest.approx(0.1)
    assert narrow.mask.sum() == 1                                          # the outline is still drawn
    doc = json.loads(json.dumps(narrow.to_json(), allow_nan=False))
    assert doc["area"] is None and doc["radius"] is None and doc["resolved"] is False
    wide = basin(L, a, b, 0.25)                                            # true radius 0.5: about 80 nodes
    assert wide.resolved and wide.radius == pytest.approx(0.5, rel=0.05)
    rel = basin(L, a, b, 0.001, relative=True)                             # loss <= 0.5005: radius 0.022
    assert not rel.resolved and math.isnan(rel.area)


# --------------------------------------------------------------------------- in words

def test_describe_says_what_the_grid_does_not_resolve():
    coarse = measure(*bowl(121), __import__("compute.morphology", fromlist=["FigureOptions"]).FigureOptions(
        margin=0.0009, relative_margin=0.001, keskar_radius=0.05))
    doc = json.loads(json.dumps(coarse.to_json(), allow_nan=False))
    text = "\n".join(describe(doc))
    assert "+0 " not in text and "+n/a" not in text
    assert "Keskar sharpness          not resolved: the grid's spacing 0.1 is wider than the radius 0.05" in text
    assert text.count("narrower than the grid resolves: 1 node of spacing 0.1, not measured") == 2
    assert "landscape.grid.resolution" in text
    fine = measure(*bowl(121))                                             # the defaults: radius 0.1, margin 0.1
    text = "\n".join(describe(json.loads(json.dumps(fine.to_json(), allow_nan=False))))
    assert "Keskar sharpness          +0.01 within radius 0.1 of the origin" in text
    assert "not resolved" not in text and "narrower" not in text


def test_describe_reads_records_measured_before_resolution_was_recorded():
    """A figures.json written before ``resolved``: judged by its node count."""
    L, a, b = bowl(121)
    doc = json.loads(json.dumps(measure(L, a, b).to_json(), allow_nan=False))
    for part in ("keskar", "basin_absolute", "basin_relative"):
        doc[part].pop("resolved")
        doc[part].pop("spacing")
    doc["keskar"].update(increase=0.0, relative=0.0, cells=1)             # what the coarse grid stored
    doc["basin_absolute"].update(cells=1, area=0.01, radius=0.0564)
    lines = describe(doc)
    assert "not resolved: 1 grid node(s) within radius 0.1 of the origin" in lines[3]
    assert "narrower than the grid resolves: 1 node, not measured" in lines[1]
    assert "area" in lines[2]                                              # the relative basin: many nodes
