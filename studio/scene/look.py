"""``render.look`` (how the terrain is drawn) and ``render.paths`` (the trails' styles)."""
from __future__ import annotations

import difflib
from typing import Literal, Optional, Union

from pydantic import Field, ValidationInfo, field_validator

from studio.scene.base import _HEX, _check_color, _Strict, doc


#: render.look.background for frames with an alpha channel instead of a background
TRANSPARENT = "transparent"


#: a colour for editors (the validator says more): '#rrggbb' or '#rrggbbaa'
COLOR = {"type": "string", "pattern": "^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"}
#: a list's colours, in words
COLORS = {**COLOR, "x-noun": "colours"}
#: render.look.background for editors: a colour or 'transparent' (any case, as the validator takes it)
BACKGROUND = {"type": "string",
              "pattern": "^(#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})|\\s*[Tt][Rr][Aa][Nn][Ss][Pp][Aa][Rr][Ee][Nn][Tt]\\s*)$"}


def _colormaps(schema: dict) -> None:
    """Editors suggest the shipped colormaps' names; the path of a .csv file is allowed too."""
    from studio.assets import colormap_names
    schema.update(doc(allowed="a name: `viridis`, `magma`, `inferno`, `plasma`, `cividis`, `twilight` (perceptually "
                              "uniform), `ember`, `aurora`, `ice` (for dark-room projection, see below); or the path "
                              "of a `.csv` file"))
    schema["anyOf"] = [{"enum": colormap_names()}, {"type": "string", "pattern": "\\.[cC][sS][vV]$"}]


#: the parts a render.look.style combines: one base (a surface or points) and grid lines
STYLE_BASES = ("surface", "points")
STYLE_LINES = ("contours", "wireframe")
STYLE_PARTS = STYLE_BASES + STYLE_LINES


def parse_style(v) -> tuple[str, ...]:
    """``surface``, ``points+contours`` or a list of parts -> the parts in a fixed order (raises
    ValueError for unknown parts or two bases)."""
    parts = v if isinstance(v, list) else str(v).replace(",", "+").split("+")
    parts = [str(x).strip().lower() for x in parts if str(x).strip()]
    if not parts:
        raise ValueError(f"a style names at least one of: {', '.join(STYLE_PARTS)}")
    for x in parts:
        if x not in STYLE_PARTS:
            close = difflib.get_close_matches(x, STYLE_PARTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown style {x!r}; allowed: {', '.join(STYLE_PARTS)} and mixtures such as "
                             f"'points+contours'{hint}")
    if sum(x in STYLE_BASES for x in set(parts)) > 1:
        raise ValueError("a style has at most one base: 'surface' or 'points' (add lines with '+contours' "
                         "or '+wireframe')")
    return tuple(x for x in STYLE_PARTS if x in parts)


class LightSpec(_Strict):
    """``render.look.light``: where the light comes from and how glossy the terrain is."""
    azimuth: float = Field(138.0, ge=-360, le=360, description="degrees around the vertical from the terrain's "
                                                               "+x axis towards +y (138: from the upper left of "
                                                               "the default framing)")
    elevation: float = Field(48.0, ge=0, le=90, description="degrees above the horizon (90: from straight above)")
    specular: float = Field(0.25, ge=0, le=2, description="strength of the highlight where the light's "
                                                          "reflection reaches the camera (0: matte)")
    shininess: float = Field(28.0, ge=1, le=256, description="how tight the highlight is (higher: smaller, "
                                                             "sharper)")


class LookSpec(_Strict):
    """How the terrain is drawn (render/look.py, render/gl.py)."""
    style: Union[str, list[str]] = Field(
        "surface", description="how the terrain is drawn: `surface` (points that close into one smooth, shaded "
                               "surface at every distance), `points` (soft round luminous points, jittered within "
                               "their grid cell so rows never line up with pixel rows: near the camera and on "
                               "steep walls they read as single points, far away they merge into a glowing "
                               "surface), `contours` (luminous lines of equal height, `contours` of them or 12), "
                               "`wireframe` (luminous grid lines, about 40 across); mixtures join a base and "
                               "lines with `+` or as a list, e.g. `points+contours`, `[surface, wireframe]`",
        json_schema_extra=doc(allowed="`surface`, `points`, `contours`, `wireframe`, or a mixture "
                                      "(`points+contours`)",
                              anyOf=[{"type": "string"}, {"type": "array", "items": {"type": "string"}}]))
    light: LightSpec = Field(default_factory=LightSpec, description="the light: `{azimuth, elevation, specular, "
                                                                    "shininess}`; `shading` sets how strong its "
                                                                    "diffuse part is")
    occlusion: float = Field(0.5, ge=0, le=1, description="valley darkening: how much cells below their "
                                                          "surroundings (valleys, the funnel's floor) darken, from "
                                                          "the grid's heights at several scales (ambient "
                                                          "occlusion); 0: none")
    edge: float = Field(0.06, ge=0, le=0.5, description="the terrain's border dissolves over this fraction of its "
                                                        "width (fading into the background with a ragged, seeded "
                                                        "edge; points thin out) instead of ending in a hard "
                                                        "rectangle; 0: a hard edge")
    bloom: float = Field(0.0, ge=0, le=2, description="glow around the brightest parts of the frame (the path's "
                                                      "head and trail, highlights, the brightest colours): a post "
                                                      "pass on the whole frame (about 30 ms a 1080p frame on 2 CPU cores); 0: "
                                                      "none")
    depth_of_field: float = Field(0.0, ge=0, le=1, description="focus: the path's head (or, with no path, the "
                                                               "camera's look-at point) stays sharp while nearer and "
                                                               "farther terrain softens, this much (1: strongly); a "
                                                               "post pass using depth (about 10-30 ms a 1080p "
                                                               "frame). Not with `background: transparent`; 0: none")
    min_grid: int = Field(256, ge=0, le=2048, description="grids with fewer points than this a side are drawn "
                                                          "interpolated (cubic) up to at least this many, so a "
                                                          "coarse grid (40 x 40) is a smooth surface, not big flat "
                                                          "squares; 0: draw the grid as it is")
    height: Literal["linear", "log", "clip"] = Field(
        "log", description="loss to height: `linear` (the loss), `log` (its logarithm), `clip` (linear, with the top "
                           "of the scale at a lower quantile: the basin gets the whole height and everything above "
                           "is a flat plateau)")
    clip_quantile: Optional[float] = Field(
        None, ge=0.5, le=1, description="the top of the height (and colour) scale, as a quantile of the finite loss; "
                                        "cells above it are flattened onto it. In every mode the bottom is the "
                                        "lowest loss. The default 0.995 only keeps a few exploding cells from "
                                        "flattening the rest; 1 shows everything",
        json_schema_extra=doc(default="`0.995` for `linear` and `log`, `0.95` for `clip`"))
    exaggeration: float = Field(0.6, gt=0, le=10, description="height of the terrain relative to its width (the "
                                                              "terrain spans x from -1 to 1)")
    colormap: str = Field("magma", description="colour, low to high", json_schema_extra=_colormaps)
    color_by: Literal["height", "loss", "accuracy"] = Field(
        "height", description="what the colour shows: `height` the drawn height; `loss` the loss on a log scale from "
                              "its minimum to the `clip_quantile` (whatever `height` is, e.g. linear heights with log "
                              "colours); `accuracy` the accuracy on the grid, from its lowest to its highest value "
                              "(needs an accuracy grid in the cache entry, see below)")
    point_units: Literal["pixels", "world"] = Field(
        "pixels", description="what `point_size` measures: `pixels` a screen size; `world` a diameter in landscape "
                              "units, so points shrink with distance exactly like the terrain")
    point_size: Optional[float] = Field(
        None, gt=0, le=64, description="`pixels`: at 1080p at the framing distance, scaled with the output height, "
                                       "never smaller than the gap between grid neighbours; `world`: in landscape "
                                       "units (the terrain is 2 wide; a 1000-point grid's spacing is 0.002). Either "
                                       "way points on steep cells are drawn up to 3x larger so walls facing the "
                                       "camera stay closed",
        json_schema_extra=doc(default="`2` pixels; `world`: 1.25 x the grid spacing",
                              allowed="> 0, at most 64 (`world`: at most 0.5)"))
    depth_scale: bool = Field(True, description="`pixels` only: near points grow (0.75x to 3x by distance), and are "
                                                "never smaller than the gap between grid neighbours at their distance, "
                                                "so a close-up (a follow shot) reads as a surface rather than rows of "
                                                "dots; `false` draws every point the same size. An error with "
                                                "`point_units: world` (world sizes always follow distance)")
    background: Union[str, list[str]] = Field(
        "#05060a", description="one colour: the bottom of a faint vertical gradient (a little lighter and bluer at "
                               "the top); two: a vertical gradient from the top of the frame to the bottom, e.g. "
                               "`[\"#101424\", \"#05060a\"]` (a flat colour: the same twice). Fog fades points into "
                               "the background behind them. `transparent`: no background, for laying the film over a "
                               "slide, other footage or a projection surface: frames with an alpha channel (fog fades "
                               "points into transparency; the trails' glow is kept, and over black the frame is "
                               "exactly the one drawn on black). Needs a film format with alpha, from `output.format` "
                               "or `render --format`: `png` (RGBA frames), `mov` (ProRes 4444 with alpha) or `webm` "
                               "(VP9 with alpha; browsers show it over the page); rendering an `mp4` or `gif` of such "
                               "a scene stops with this key's line. Stills are RGBA PNGs. The titles and captions "
                               "keep their light colours and soft shadows, made for dark footage. Not for comparisons",
        json_schema_extra=doc(allowed="`#rrggbb` or `#rrggbbaa`, `[top, bottom]`, or `transparent`",
                              anyOf=[BACKGROUND, {"type": "array", "items": COLORS, "minItems": 2, "maxItems": 2}]))
    supersample: int = Field(1, ge=1, le=3, description="draw at 2x or 3x the output size and shrink with a box "
                                                        "filter (the mean of each 2x2 or 3x3 block): smooth edges on "
                                                        "the terrain's silhouette and the trails, at 4x or 9x the "
                                                        "drawing time. Point and trail sizes are unchanged on screen; "
                                                        "titles and captions are set at the output size",
                             json_schema_extra=doc(allowed="`1`, `2`, `3`"))
    shading: float = Field(0.55, ge=0, le=1, description="strength of slope shading (a light from the upper left)")
    contours: int = Field(0, ge=0, le=100, description="contour lines, as on a map: the drawn height cut into this "
                                                       "many equal bands with a thin dark line between each two (so "
                                                       "with `height: log`, lines of equal log loss). Each line keeps "
                                                       "a width of about three grid cells on steep walls and gentle "
                                                       "slopes alike; they crowd where the landscape is steep. 0: "
                                                       "none (`scenes/orbit.yaml` uses 18)")
    fog: float = Field(0.35, ge=0, le=1, description="how much far points fade into the background")

    @field_validator("style")
    @classmethod
    def _style(cls, v):
        parse_style(v)
        return v

    @property
    def styles(self) -> tuple[str, ...]:
        """render.look.style as its parts (parse_style)."""
        return parse_style(self.style)

    @field_validator("background")
    @classmethod
    def _bg(cls, v):
        if isinstance(v, list):
            if len(v) != 2:
                raise ValueError(f"a background gradient is two colours [top, bottom], got {len(v)}")
            for c in v:
                _check_color(c)
            return v
        if isinstance(v, str) and v.strip().lower() == TRANSPARENT:
            return TRANSPARENT
        if isinstance(v, str) and not _HEX.match(v):
            raise ValueError(f"the background is a colour '#rrggbb', a gradient [top, bottom] or 'transparent', "
                             f"got {v!r}")
        return _check_color(v)

    @field_validator("colormap")
    @classmethod
    def _cmap(cls, v):
        from studio.assets import colormap_names, is_colormap_file
        if is_colormap_file(v):
            return v            # the file itself is checked by load_scene (it knows the scene's folder)
        names = colormap_names()
        if v not in names:
            close = difflib.get_close_matches(v, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown colormap {v!r}; allowed: {', '.join(names)}, or the path of a .csv "
                             f"file{hint}")
        return v

    # (run only for values the scene gives; the units come first in the class, so they are known here)
    @field_validator("point_size")
    @classmethod
    def _world_size(cls, v, info: ValidationInfo):
        if v is not None and info.data.get("point_units") == "world" and v > 0.5:
            raise ValueError("with point_units: world the size is in landscape units (the terrain is 2 units "
                             "wide): give at most 0.5, e.g. 0.004, or leave it out for the grid spacing")
        return v

    @field_validator("depth_scale")
    @classmethod
    def _world_depth(cls, v, info: ValidationInfo):
        if not v and info.data.get("point_units") == "world":
            raise ValueError("depth_scale: false is for point_units: pixels; points with world units always "
                             "shrink with distance (they have a size in the landscape)")
        return v

    @property
    def transparent(self) -> bool:
        """No background: frames carry an alpha channel (``background: transparent``)."""
        return self.background == TRANSPARENT

    def background_colors(self) -> tuple[str, str] | tuple[str]:
        """(top, bottom) of an explicit gradient, or (bottom,) for one colour (black when
        transparent: what the colour channels of a fogged point fade towards)."""
        if self.transparent:
            return ("#000000", "#000000")
        return tuple(self.background) if isinstance(self.background, list) else (self.background,)


class PathStyle(_Strict):
    """A trail's style: a path of the cache drawn on the surface (render/look.py: build_trail)."""
    color: str = Field("#ffffff", description="the trail's colour",
                       json_schema_extra=doc(allowed="`#rrggbb` or `#rrggbbaa`", **COLOR))
    width: float = Field(6.0, gt=0, le=64, description="pixels at 1080p")
    label: Optional[str] = Field(None, description="shown in the read-out with the step and loss",
                                 json_schema_extra=doc(default="the path's name"))
    start: float = Field(0.0, ge=0, description="second at which the trail starts growing",
                         json_schema_extra=doc(allowed="≥ 0, before the film's end"))
    end: Optional[float] = Field(None, gt=0, description="second at which it is complete",
                                 json_schema_extra=doc(default="85% of the film",
                                                       allowed="> 0, at most `render.duration`"))

    @field_validator("color")
    @classmethod
    def _c(cls, v):
        return _check_color(v)

