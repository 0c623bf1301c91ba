"""studio/scene/camera.py (with the camera checks of studio/scene/checks.py): the scene's
render.camera entries, keyframes and shots, as the scene file gives them: one clear line for each
bad shot (unknown shots, typos, timing, overlaps, keyframes inside a shot), good shots loaded as the
camera takes them.  How the camera moves through them is tests/render/camera/test_shots.py's and
tests/render/camera/test_timeline.py's."""
from __future__ import annotations

import pytest

from render import camera as cam
from studio.scene import SceneError, load_scene
from tests.conftest import CAMERA_HOME as HOME
from tests.conftest import make_track, scene_error, write_scene

write = write_scene


def error(tmp_path, text: str) -> str:
    p = write(tmp_path, text)
    return scene_error(p)[len(str(p)):]


BAD = {
    "unknown_shot": ("""
        render:
          camera:
            - {t: 0, azimuth: 10}
            - {shot: orbt, from: 1, to: 4, turns: 1}
        """, 4, ["render.camera[1].shot", '"orbt"', "'orbit', 'dolly', 'zoom', 'crane' or 'follow'",
                 "did you mean 'orbit'"]),
    "no_shot_name": ("""
        render:
          camera:
            - {from: 1, to: 4, turns: 1}
        """, 3, ["render.camera[0]", "give it 'shot:'", "a keyframe has 't'"]),
    "typo_in_a_shot": ("""
        render:
          camera:
            - {shot: dolly, from: 1, to: 4, distnce: 2}
        """, 3, ["unknown key 'render.camera[0].distnce'", "shot, from, to, ease, distance, ramp",
                 "did you mean 'distance'"]),
    "typo_in_a_keyframe": ("""
        render:
          camera:
            - {t: 0, shto: orbit}
        """, 3, ["unknown key 'render.camera[0].shto'", "t, target, azimuth", "did you mean 'shot'"]),
    "from_after_to": ("""
        render:
          camera:
            - {shot: crane, from: 5, to: 2, elevation: 10}
        """, 3, ["render.camera[0]", "'to' (2) must be later than 'from' (5)"]),
    "orbit_without_angle": ("""
        render:
          camera:
            - {shot: orbit, from: 1, to: 2}
        """, 3, ["render.camera[0]", "turns", "degrees"]),
    "dolly_needs_distance": ("""
        render:
          camera:
            - {shot: dolly, from: 1, to: 2}
        """, 3, ["render.camera[0].distance", "missing required key"]),
    "bad_elevation": ("""
        render:
          camera:
            - {shot: crane, from: 1, to: 2,
               elevation: 95}
        """, 4, ["render.camera[0].elevation", "bad value 95", "at most 89"]),
    "negative_lag": ("""
        render:
          camera:
            - {shot: follow, from: 1, to: 5, path: training, lag: -1}
        """, 3, ["render.camera[0].lag", "bad value -1", "at least 0"]),
    "blend_too_long": ("""
        render:
          camera:
            - {shot: follow, from: 1, to: 3, path: training, blend: 1.5}
        """, 3, ["render.camera[0]", "blend (1.5 s) must be at most half the shot"]),
    "ramp_too_long": ("""
        render:
          camera:
            - {shot: zoom, from: 1, to: 3, fov: 20, ramp: 2}
        """, 3, ["render.camera[0]", "ramp (2 s) must be at most half the shot"]),
    "azimuth_and_heading": ("""
        render:
          camera:
            - {shot: follow, from: 1, to: 5, path: training, azimuth: 10, heading: 0}
        """, 3, ["render.camera[0]", "azimuth", "heading", "not both"]),
    "unknown_follow_path": ("""
        landscape:
          descents:
            - {name: adam, optimizer: adam, lr: 0.3, start: [0, 0]}
        render:
          camera:
            - {shot: follow, from: 1, to: 5,
               path: adma}
        """, 7, ["render.camera[0].path", "unknown path 'adma'", "training, adam", "did you mean 'adam'"]),
    "overlapping_shots": ("""
        render:
          camera:
            - {shot: orbit, from: 1, to: 6, turns: 1}
            - {t: 2, fov: 30}
            - {shot: follow, from: 5, to: 9, path: training, heading: 0}
        """, 5, ["render.camera[2]", "follow shot from 5 to 9", "moves the azimuth",
                 "orbit shot render.camera[0] (line 3, from 1 to 6)", "may not overlap"]),
    "keyframe_inside_a_shot": ("""
        render:
          camera:
            - {shot: crane, from: 1, to: 6, elevation: 10}
            - {t: 6, azimuth: 20,
               elevation: 30}
        """, 5, ["render.camera[1].elevation", "keyframe at t=6 sets elevation",
                 "crane shot render.camera[0] (line 3, from 1 to 6)"]),
    "keyframes_out_of_order": ("""
        render:
          camera:
            - {t: 4, azimuth: 10}
            - {shot: orbit, from: 0, to: 2, turns: 1}
            - {t: 2, azimuth: 20}
        """, 3, ["render.camera", "keyframe times must increase strictly", "[4.0, 2.0]"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_shots_are_reported_clearly(tmp_path, case):
    text, line, parts = BAD[case]
    msg = error(tmp_path, text)
    assert msg.startswith(f":{line}: "), msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


GOOD_SHOTS = """
        landscape:
          descents:
            - {name: adam, optimizer: adam, lr: 0.3, start: [0, 0]}
        render:
          camera:
            - {t: 0, azimuth: -40, elevation: 40, distance: 5.0}
            - {shot: orbit, from: 1, to: 9, turns: 0.5}
            - {shot: crane, from: 1, to: 5, elevation: 20}          # another value: may overlap
            - {t: 5, fov: 30}                                       # at the crane's end, another value
            - {shot: follow, from: 9, to: 15, path: adam, distance: 1.2, azimuth: -150, elevation: 25}
            - {shot: dolly, from: 15, to: 18, distance: 4.0}        # starts where the follow ends
            - {shot: zoom, from: 2, to: 3, fov: 50, ramp: 0.25}
        """


def test_a_keyframe_at_a_shots_end_may_not_set_the_value_the_shot_moves(tmp_path):
    p = write(tmp_path, GOOD_SHOTS.replace("{t: 5, fov: 30}", "{t: 5, fov: 30, elevation: 20}"))
    with pytest.raises(SceneError, match="keyframe at t=5 sets elevation"):
        load_scene(p)


def test_good_shots_load(tmp_path):
    scene = load_scene(write(tmp_path, GOOD_SHOTS))
    kinds = [getattr(e, "shot", "keyframe") for e in scene.render.camera]
    assert kinds == ["keyframe", "orbit", "crane", "keyframe", "follow", "dolly", "zoom"]
    follow = scene.render.camera[4]
    assert (follow.lag, follow.blend, follow.heading) == (0.4, 1.0, None)
    assert follow.channels() == ("target", "azimuth", "elevation", "distance")
    dumped = follow.model_dump(by_alias=True)
    assert dumped["from"] == 9.0 and dumped["to"] == 15.0 and dumped["shot"] == "follow"
    # the camera takes the validated entries as they are (a track stands in for the trail)
    tracks = {"adam": make_track()}
    path = cam.CameraPath(scene.render.camera, HOME, tracks=tracks)
    assert path.state(9.0)["azimuth"] == pytest.approx(-40 + 180)
    assert path.state(18.0)["distance"] == pytest.approx(4.0)
