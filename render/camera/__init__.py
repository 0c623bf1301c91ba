"""The camera: a plain state, the timeline that moves it, and the matrices that draw from it.

A camera state is a dict:

    target     [x, y, z]   the point looked at (landscape units: the terrain spans x in [-1, 1])
    azimuth    degrees     around the vertical axis; 0 looks along +y, 90 along -x
    elevation  degrees     above the horizon
    distance               from the target
    fov        degrees     vertical field of view
    roll       degrees     about the viewing axis

The timeline is the scene's ``render.camera``: keyframes and shots, as the
scene schema (``studio.scene``: ``CameraKey``, ``OrbitShot`` ...
``FollowShot``) validated them.  The schema is the one place their rules live
(fields, defaults, ``from < to``, ramps and blends within half a shot, shots
that move one value not overlapping, keyframes strictly increasing and never
inside a shot that moves what they set); this package takes the validated
objects and does the math, reading no files and checking nothing again.
Time is ``frame / fps``; nothing here reads a clock, and ``state(t)`` is a
pure function of t.

Modules:

    timeline.py     CameraPath: keyframes and shots compiled into one spline per value (channel)
    shots.py        what each shot does between its ends (orbit, dolly, zoom, crane, follow), and
                    Track, the head of a path a follow shot rides
    ground.py       Ground: keeping the eye above the terrain
    projection.py   eye position, view and projection matrices, clip planes, framing
    auto.py         the camera of a scene that writes none, found from the landscape's shape

Public API (all importable from ``render.camera``):

    CameraPath(entries, default, tracks=None, ground=None)   .state(t), .vec(t), .group(name, t)
    Track(points, progress, timing)                            a follow shot's path head
    Ground(heights, half_y)                                    the terrain's smoothed height field
    eye_position, view_matrix, perspective, clip_planes, framing, project_points
    LEASH, HEADING_WINDOW, CLEARANCE                           the follow shot's and ground's constants
"""
from render.camera.auto import auto_camera
from render.camera.ground import CLEARANCE, Ground
from render.camera.projection import clip_planes, eye_position, framing, perspective, project_points, view_matrix
from render.camera.shots import HEADING_WINDOW, LEASH, Track
from render.camera.timeline import CHANNELS, CameraPath, state_to_vec, vec_to_state

__all__ = ["auto_camera", "CameraPath", "Track", "Ground", "eye_position", "view_matrix", "perspective", "clip_planes", "framing",
           "project_points", "LEASH", "HEADING_WINDOW", "CLEARANCE", "CHANNELS", "state_to_vec", "vec_to_state"]
