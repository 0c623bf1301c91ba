"""The film: ``render`` (size, timing, captions; look and camera have modules of their own),
``output`` (where the film goes, how it is encoded) and ``compare`` (several landscapes in one film)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from studio.scene.base import _Strict, doc
from studio.scene.camera import CameraEntry, CameraKey
from studio.scene.look import LookSpec, PathStyle


class Caption(_Strict):
    """A caption over the film (render/overlay.py)."""
    text: str = Field(min_length=1, description="the caption's line")
    start: float = Field(ge=0, alias="from", description="second it starts fading in",
                         json_schema_extra=doc(allowed="seconds, before the film's end"))
    end: float = Field(gt=0, alias="to", description="second it has faded out",
                       json_schema_extra=doc(allowed="seconds, later than `from`"))
    subtitle: Optional[str] = Field(None, min_length=1, description="a second, smaller line under the text (in a "
                                                                    "softer colour)")
    position: Literal["bottom", "top", "center", "lower_third"] = Field(
        "bottom", description="`lower_third`: a left-aligned block at the bottom left, the text in bold with the "
                              "subtitle under it and an accent bar in the first trail's colour beside them; it sits "
                              "above the read-out and slides in a little as it fades in. Captions at the same edge "
                              "at the same time (`bottom` and `lower_third` share the bottom, `top` the top) stack "
                              "instead of overlapping, the one listed first nearest the edge; the others slide "
                              "smoothly as one fades in or out")
    size: float = Field(36, gt=4, le=400, description="pixels at 1080p (the subtitle: about two thirds of it)")
    fade: float = Field(0.6, ge=0, le=10, description="seconds of fade in and out")

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise ValueError(f"'to' ({self.end}) must be later than 'from' ({self.start})")
        return self


#: names render.size (and the render CLI's --size) accept for [width, height]
SIZE_PRESETS = {"720p": [1280, 720], "1080p": [1920, 1080], "1440p": [2560, 1440], "4k": [3840, 2160]}


class RenderSpec(_Strict):
    """How the film looks and moves (the render stage)."""
    size: Union[Literal["720p", "1080p", "1440p", "4k"], Annotated[list[int], Field(
            min_length=2, max_length=2,
            json_schema_extra={"items": {"type": "integer", "minimum": 16, "maximum": 8192, "multipleOf": 2}})]] = \
        Field([1920, 1080], description="width and height in pixels (`render --size` takes the same presets)",
              json_schema_extra=doc(allowed="two even integers, 16 to 8192, or a preset: " + ", ".join(
                  f"`{k}` ({w} x {h})" for k, (w, h) in SIZE_PRESETS.items())))
    fps: int = Field(30, ge=1, le=240, description="frames per second")
    duration: float = Field(14.0, gt=0, le=3600, description="seconds; keyframes, captions and trails are timed "
                                                             "within it")
    look: LookSpec = Field(LookSpec(), description="how the terrain is drawn",
                           json_schema_extra=doc(default="", allowed="see below"))
    paths: dict[str, PathStyle] = Field(default_factory=lambda: {"training": PathStyle()},
                                        description="trails to draw",
                                        json_schema_extra=doc(default="`{training: {}}`; a `minima` plane's: "
                                                                      "its three runs' trails",
                                                              allowed="`training` (and a `minima` plane's "
                                                                      "`training_2`, `training_3`) and the names "
                                                                      "under `landscape.descents`"))
    marks: bool = Field(True, description="mark the networks the plane goes through (a `minima` plane's three): a "
                                          "ring on the surface around each, a stem and a label (its seed or file "
                                          "and its loss), fading in with the read-out")
    camera: list[CameraEntry] = Field(
        default_factory=list, description="see below",
        json_schema_extra=doc(default="automatic", allowed="a list of keyframes and shots"))
    captions: list[Caption] = Field(default_factory=list, description="see below",
                                    json_schema_extra=doc(default="`[]`", allowed="a list of captions"))
    title_card: bool = Field(True, description="show the title (and a line describing the landscape) at the top "
                                               "over the first seconds: it fades in from 0.3 s and is gone by 4.5 s "
                                               "or 40% of the duration, whichever is sooner; a dark band behind it "
                                               "keeps it legible whatever the terrain does under it, and the read-out "
                                               "and panel captions come in as it goes")
    loop: Optional[float] = Field(
        None, gt=0, description="a film that loops without a seam, for an installation or a kiosk: its first this "
                                "many seconds dissolve from the film's last moment (held: the camera, trails and "
                                "terrain as they end) into its beginning, so the last frame runs on into the first; "
                                "the film keeps its `duration`. Works with every look, comparisons and landscapes "
                                "over training",
        json_schema_extra=doc(allowed="seconds, > 0, at most half of `duration`"))

    @field_validator("loop")
    @classmethod
    def _loop(cls, v, info: ValidationInfo):
        duration = info.data.get("duration")
        if v is not None and duration is not None and v > duration / 2:
            raise ValueError(f"the loop's dissolve takes at most half the film (render.duration {duration:g} s): "
                             f"at most {duration / 2:g} s, got {v:g}")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v):
        if isinstance(v, str):
            return list(SIZE_PRESETS[v])
        for n in v:
            if not 16 <= n <= 8192:
                raise ValueError(f"each size must be an integer from 16 to 8192, got {n}")
            if n % 2:
                raise ValueError(f"each size must be even (H.264 yuv420p needs it), got {n}")
        return v

    @field_validator("camera")
    @classmethod
    def _keys(cls, v):
        ts = [k.t for k in v if isinstance(k, CameraKey)]
        if any(b <= a for a, b in zip(ts, ts[1:])):
            raise ValueError(f"keyframe times must increase strictly, got {ts}")
        return v


#: most panels a film shows at once: a comparison's panels, a sweep's values (render/compare.py lays
#: them out, up to 4 x 4)
MAX_GRID = 16
#: the film formats and their files' suffixes (``png`` is a directory of frames instead)
FILM_FORMATS = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "gif": ".gif"}
#: the formats that carry an alpha channel (render.look.background: transparent)
ALPHA_FORMATS = ("png", "mov", "webm")


def frames_path(film: Path, fmt: str) -> Path:
    """``film`` (a path of the scene's own format) for format ``fmt``: the same name with that
    format's suffix, or for ``png`` the directory ``<name>_frames``."""
    base = film.name.removesuffix("_frames") if film.suffix == "" else film.stem
    return film.with_name(f"{base}_frames" if fmt == "png" else base + FILM_FORMATS[fmt])


class OutputSpec(_Strict):
    """Where the film goes and how it is encoded (render/writer.py)."""
    format: Literal["mp4", "mov", "webm", "gif", "png"] = Field(
        "mp4", description="`mp4`: an H.264 film, plays everywhere (projectors, slides, browsers); `mov`: Apple ProRes "
                           "422 HQ, 10-bit 4:2:2, the intermediate for a video editor (files about ten times an "
                           "mp4's); `webm`: VP9, for web pages; `gif`: an animated GIF that loops, for slides and "
                           "documents (best small: `--size 640x360`, and short); `png`: a directory of numbered "
                           "frames `frame_000000.png`, `frame_000001.png`, ... (RGB, the output size), for "
                           "compositing or an encoder of your own")
    path: Optional[str] = Field(None, description="where the film goes, relative to the working directory (`~` is "
                                                  "your home)",
                                json_schema_extra=doc(default="`out/<scene file name>.mp4` (`.mov`, `.webm`, `.gif` "
                                                              "for those formats); `png`: `out/<scene file "
                                                              "name>_frames`",
                                                      allowed="a path ending in the format's suffix; `png`: a "
                                                              "directory (not ending in a film's suffix or `.png`)"))
    crf: int = Field(18, ge=0, le=51, description="quality, lower is better and larger: x264's (`mp4`) and VP9's "
                                                  "(`webm`)")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"] = Field(
        "medium", description="encoding speed against size (`mp4`)",
        json_schema_extra=doc(allowed="x264 presets `ultrafast` ... `slower`"))

    @field_validator("path")
    @classmethod
    def _path(cls, v, info: ValidationInfo):
        if v is None:
            return v
        fmt = info.data.get("format", "mp4")
        suffix = Path(v).suffix.lower()
        if fmt in FILM_FORMATS and suffix != FILM_FORMATS[fmt]:
            raise ValueError(f"with format: {fmt} the output path must end in {FILM_FORMATS[fmt]} (or set format to "
                             f"{', '.join(f for f in FILM_FORMATS if f != fmt)} or png, a directory of PNG frames)")
        if fmt == "png" and suffix in (*FILM_FORMATS.values(), ".png"):
            raise ValueError("with format: png the output is a directory of frames; give a directory path "
                             "such as out/name_frames")
        return v


class PanelSpec(_Strict):
    """One landscape of a comparison film: the scene's own landscape with this panel's changes."""
    caption: Optional[str] = Field(None, min_length=1, max_length=200,
                                   description="shown at the top left of the panel (`split`), or of the frame during "
                                               "the panel's part (`sequence`)")
    landscape: dict[str, Any] = Field(
        default_factory=dict, description="laid over the scene's `landscape:` section: a mapping merges key by key "
                                          "(so `{train: {batch_size: 32}}` changes only the batch size), anything "
                                          "else replaces, lists included (`descents: [...]` replaces the scene's "
                                          "descents; `widths: [32]` replaces the widths). A panel that names another "
                                          "kind of data set or model (`data: {name: shapes}`, `model: {name: "
                                          "convnet}`) replaces that section instead of merging into it",
        json_schema_extra=doc(default="`{}` (the scene's own landscape)", allowed="keys of `landscape:`"))
    labels: dict[str, str] = Field(
        default_factory=dict, description="this panel's labels for its paths in the read-out, over those of "
                                          "`render.paths` (`{training: SGD}` in one panel, `{training: Adam}` in the "
                                          "other); an empty label shows none",
        json_schema_extra=doc(default="`{}` (`render.paths`' labels)", allowed="paths drawn by `render.paths`"))


class CompareSpec(_Strict):
    """Two to sixteen landscapes in one film (render/compare.py)."""
    layout: Literal["split", "sequence"] = Field(
        "split", description="`split`: the panels in a grid, 2 side by side, 3 or 4 in 2 x 2, up to 6 in 3 x 2, 9 in "
                             "3 x 3, 12 in 4 x 3, 16 in 4 x 4 (a short last row centred), a thin divider between "
                             "them, every camera flying the same path at the same time; `sequence`: one panel after "
                             "another at full size (see below)")
    shared_scale: bool = Field(True, description="`true`: one height scale (and, for `look.color_by` `loss` or a "
                                                 "grid, one colour scale) from all panels' losses together, so equal "
                                                 "losses have equal heights and colours in every panel: a fair "
                                                 "comparison; `false`: each panel scaled to its own losses, as it "
                                                 "would be alone (shapes comparable, heights not)")
    transition: float = Field(1.0, ge=0, le=10, description="`sequence`: the crossfade between one panel and the "
                                                            "next, centred on the change",
                              json_schema_extra=doc(allowed="0 to 10 seconds, at most one panel's share of the "
                                                            "film"))
    panels: list[PanelSpec] = Field(min_length=2, max_length=MAX_GRID, description="the landscapes, in order",
                                    json_schema_extra=doc(allowed=f"2 to {MAX_GRID} panels"))
