"""``render.camera``: keyframes and shots on one timeline (render/camera.py draws them)."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from studio.scene.base import _Strict, doc


EASINGS = ("linear", "in", "out", "in_out", "hold")


class CameraKey(_Strict):
    """A keyframe: camera values at an instant; what it leaves out is carried from the entries before
    it (the first starts from the automatic framing)."""
    t: float = Field(ge=0, description="time in seconds",
                     json_schema_extra=doc(allowed="≥ 0, at most `render.duration`"))
    target: Optional[list[float]] = Field(None, min_length=3, max_length=3,
                                          description="the point looked at (the automatic framing: the centre of the "
                                                      "terrain's box)",
                                          json_schema_extra=doc(default="carried", allowed="`[x, y, z]`"))
    azimuth: Optional[float] = Field(None, description="around the vertical axis; 0 looks along +y, 90 along -x",
                                     json_schema_extra=doc(default="carried", allowed="degrees"))
    elevation: Optional[float] = Field(None, ge=-89, le=89, description="degrees above the horizon",
                                       json_schema_extra=doc(default="carried"))
    distance: Optional[float] = Field(None, gt=0, le=1000, description="from the target; the automatic framing of "
                                                                       "the default terrain is about 5.5",
                                      json_schema_extra=doc(default="carried"))
    fov: Optional[float] = Field(None, gt=1, lt=170, description="vertical field of view in degrees",
                                 json_schema_extra=doc(default="carried (35)"))
    roll: Optional[float] = Field(None, ge=-180, le=180, description="degrees about the viewing axis",
                                  json_schema_extra=doc(default="carried (0)"))
    ease: Literal["linear", "in", "out", "in_out", "hold"] = Field(
        "linear", description="shapes the segment that ends at this keyframe")


#: the shots a render.camera entry may be (``shot: NAME``), besides a plain keyframe (``t: ...``)
SHOTS = ("orbit", "dolly", "zoom", "crane", "follow")

#: every shot's ramp (one description, so the README's tables say the same for each)
RAMP = ("seconds to get up to speed and, at the end, back to rest (the speed follows a smoothstep); the default "
        "is one smooth ease in and out, a shorter ramp leaves a steady middle at constant speed")
RAMP_DOC = doc(default="half the shot", allowed="> 0, at most half the shot")


class _Shot(_Strict):
    """A camera move over [from, to]: it starts from the values carried from the entries before it,
    starts and ends at rest (or hands its motion on to a shot that starts as it ends: ``ease``), and
    its end values are carried on (render/camera.py)."""
    shot: str = Field(description="the kind of move",
                      json_schema_extra=doc(allowed=", ".join(f"`{s}`" for s in SHOTS)))
    start: float = Field(ge=0, alias="from", description="second the shot starts")
    end: float = Field(gt=0, le=3600, alias="to", description="second it ends",
                       json_schema_extra=doc(allowed="later than `from`, at most 3600"))
    ease: Literal["flow", "hold"] = Field(
        "flow", description="`flow`: where another shot starts as this one ends (or ends as it starts), the camera "
                            "hands its motion on without stopping (the same value meets at one speed; different "
                            "values cross-fade over the seam, half the shorter ramp either side of it); `hold`: the "
                            "camera comes to rest at both ends of this shot. A gap between shots, or a keyframe at "
                            "the seam, is a rest too. A follow shot always blends in and out from rest")

    #: the camera values (channels) the shot moves; the follow shot adds the ones it is given
    moves: ClassVar[tuple[str, ...]] = ()

    def channels(self) -> tuple[str, ...]:
        return self.moves

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise ValueError(f"'to' ({self.end:g}) must be later than 'from' ({self.start:g})")
        ramp = getattr(self, "ramp", None)
        if ramp is not None and ramp > (self.end - self.start) / 2:
            raise ValueError(f"ramp ({ramp:g} s) must be at most half the shot ({self.start:g} to "
                             f"{self.end:g}: {(self.end - self.start) / 2:g} s)")
        return self


class OrbitShot(_Shot):
    """Turn the azimuth around the current target by an angle (any amount)."""
    shot: Literal["orbit"]
    turns: Optional[float] = Field(None, ge=-100, le=100,
                                   description="whole turns; positive turns counterclockwise seen from above (the "
                                               "azimuth grows). Any amount: `turns: 2` is two full turns",
                                   json_schema_extra=doc(default="one of `turns`, `degrees` is required"))
    degrees: Optional[float] = Field(None, ge=-36000, le=36000, description="the same in degrees (give one of the "
                                                                            "two)",
                                     json_schema_extra=doc(default=""))
    ramp: Optional[float] = Field(None, gt=0, description=RAMP, json_schema_extra=RAMP_DOC)
    moves: ClassVar[tuple[str, ...]] = ("azimuth",)

    @model_validator(mode="after")
    def _angle(self):
        if (self.turns is None) == (self.degrees is None):
            raise ValueError("an orbit needs turns (e.g. turns: 0.5) or degrees (e.g. degrees: 180): "
                             + ("not both" if self.turns is not None else "one of them"))
        return self


class DollyShot(_Shot):
    """Move the camera to a distance from the target (at an even rate in scale)."""
    shot: Literal["dolly"]
    distance: float = Field(gt=0, le=1000, description="distance from the target at `to`. It changes at an even rate "
                                                       "in scale (geometrically), so the landscape grows or shrinks "
                                                       "on screen at an even pace")
    ramp: Optional[float] = Field(None, gt=0, description=RAMP, json_schema_extra=RAMP_DOC)
    moves: ClassVar[tuple[str, ...]] = ("distance",)


class ZoomShot(_Shot):
    """Change the field of view (at an even rate in apparent size)."""
    shot: Literal["zoom"]
    fov: float = Field(gt=1, lt=170, description="vertical field of view at `to`, in degrees; it changes at an even "
                                                  "rate in apparent size (geometrically in tan(fov/2))")
    ramp: Optional[float] = Field(None, gt=0, description=RAMP, json_schema_extra=RAMP_DOC)
    moves: ClassVar[tuple[str, ...]] = ("fov",)


class CraneShot(_Shot):
    """Sweep the elevation."""
    shot: Literal["crane"]
    elevation: float = Field(ge=-89, le=89, description="degrees above the horizon at `to`")
    ramp: Optional[float] = Field(None, gt=0, description=RAMP, json_schema_extra=RAMP_DOC)
    moves: ClassVar[tuple[str, ...]] = ("elevation",)


class FollowShot(_Shot):
    """The target rides the head of a trail (render/camera.py: lag, leash, blend)."""
    shot: Literal["follow"]
    path: str = Field(min_length=1, description="the trail whose head is followed, with the timing it is drawn with "
                                                "in `render.paths` (a path not drawn there follows the default "
                                                "timing: growing from 0 to 85% of the film)",
                      json_schema_extra=doc(allowed="`training` or a name under `landscape.descents`"))
    distance: Optional[float] = Field(None, gt=0, le=1000, description="distance from the head",
                                      json_schema_extra=doc(default="carried"))
    azimuth: Optional[float] = Field(None, description="a fixed azimuth to look from, as a keyframe's (reached the "
                                                       "short way round)",
                                     json_schema_extra=doc(default="carried", allowed="degrees"))
    heading: Optional[float] = Field(None, ge=-180, le=180,
                                     description="instead of `azimuth`: the azimuth relative to the head's direction "
                                                 "of travel (over the last `distance` of path, or 0.5 without "
                                                 "`distance`); 0 is right behind it, looking the way it goes; "
                                                 "positive swings counterclockwise seen from above. On a path that "
                                                 "loops, a fixed `azimuth` rides steadier",
                                     json_schema_extra=doc(default=""))
    elevation: Optional[float] = Field(None, ge=-89, le=89, description="degrees above the horizon",
                                       json_schema_extra=doc(default="carried"))
    lag: float = Field(0.4, ge=0, le=10, description="seconds the target trails the head by: a critically damped "
                                                     "smoothing of where the head has been (mean delay `lag`), so a "
                                                     "jittery path gives a steady camera; where the head moves fast "
                                                     "the lag shortens (ahead of time: the speed is read a lag ahead "
                                                     "as well as behind, so the camera eases into a sudden dash "
                                                     "instead of snapping after it), keeping the target on its leash "
                                                     "(below); 0 locks onto the head")
    blend: float = Field(1.0, gt=0, le=60, description="seconds over which the target, and each value the shot sets, "
                                                       "glide from the carried values onto the head (smootherstep: no "
                                                       "jump, no jolt); over the shot's last `blend` seconds the "
                                                       "camera slows to a stop, and after `to` it holds there (or "
                                                       "follows the next entries) while the trail goes on",
                         json_schema_extra=doc(allowed="> 0, at most half the shot"))
    moves: ClassVar[tuple[str, ...]] = ("target",)

    def channels(self) -> tuple[str, ...]:
        out = ["target"]
        if self.azimuth is not None or self.heading is not None:
            out.append("azimuth")
        if self.elevation is not None:
            out.append("elevation")
        if self.distance is not None:
            out.append("distance")
        return tuple(out)

    @model_validator(mode="after")
    def _follow(self):
        if self.azimuth is not None and self.heading is not None:
            raise ValueError("give azimuth (absolute) or heading (relative to the direction of travel), "
                             "not both")
        if self.blend > (self.end - self.start) / 2:
            raise ValueError(f"blend ({self.blend:g} s) must be at most half the shot ({self.start:g} to "
                             f"{self.end:g}: {(self.end - self.start) / 2:g} s)")
        return self


_CAMERA_MODELS = {"keyframe": CameraKey, "orbit": OrbitShot, "dolly": DollyShot, "zoom": ZoomShot,
                  "crane": CraneShot, "follow": FollowShot}


def _camera_entry_kind(v: Any) -> str:
    """Which model validates a render.camera entry: a keyframe, or the shot its ``shot`` names
    (an unknown name, or from/to without shot, is reported by errors.py)."""
    if isinstance(v, dict):
        if "shot" in v:
            s = v["shot"]
            return s if isinstance(s, str) and s in SHOTS else "unknown shot"
        if "t" not in v and ("from" in v or "to" in v):
            return "shot without a name"
        return "keyframe"
    if isinstance(v, BaseModel):
        return getattr(v, "shot", "keyframe")
    return "keyframe"


CameraEntry = Annotated[Union[tuple(Annotated[m, Tag(k)] for k, m in _CAMERA_MODELS.items())],
                        Discriminator(_camera_entry_kind)]

