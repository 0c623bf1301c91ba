"""Checks across sections, run on a validated scene: paths and steps the landscape makes, the
sizes of the data, the film's timeline (camera, captions, trails), a comparison's panels, the
files the scene names (weights, output, data root) and transparency.  Each check returns its
problems (where, what) rather than stopping at the first, so one run lists them all."""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from pydantic import ValidationError

from studio.scene.camera import _Shot, CameraKey, FollowShot
from studio.scene.data import data_size
from studio.scene.errors import Problem, format_errors, place
from studio.scene.film import ALPHA_FORMATS, FILM_FORMATS
from studio.scene.landscape import MINIMA_PATHS, train_steps
from studio.scene.source import Source, _dotted
from studio.scene.spec import Scene, panel_landscape
from studio.scene.training import train_run_problem


def cross_checks(src: Source, scene: "Scene") -> list[Problem]:
    """Every problem across sections of a scene that validated key by key."""
    problems = _alpha(src, scene) + _timing(src, scene)
    if scene.compare is None:
        problems += _landscape(src, scene) + _paths(src, scene) + _followed(src, scene) + _camera(src, scene)
        problems += _weights(src, scene)
    else:                                   # the same checks, on each panel's merged landscape
        problems += _panels(src, scene)
    return problems + _output(src, scene)


def alpha_problem(scene: "Scene", fmt: str | None = None) -> str | None:
    """Why ``background: transparent`` cannot be drawn, for a comparison or in film format ``fmt``
    (None: the format is not known yet; the render stage asks with the one it writes), or None."""
    if not scene.render.look.transparent:
        return None
    if scene.compare is not None:
        return "transparent is for single films; a comparison (compare:) needs a background colour"
    if fmt is not None and fmt not in ALPHA_FORMATS:
        return (f"transparent needs a format with an alpha channel: png, mov or webm (output.format or "
                f"render --format), and {fmt} has none")
    return None


def transparency_error(path: str | Path, scene: "Scene", fmt: str | None = None,
                       overrides: "list[str] | tuple[str, ...]" = ()) -> str | None:
    """``alpha_problem`` as a scene error message with the file and line of the background."""
    problem = alpha_problem(scene, fmt)
    loc = ("render", "look", "background")
    return None if problem is None else \
        f"{Source.read(path, overrides).where(loc)}: render.look.background: bad value 'transparent': {problem}"


def _alpha(src: Source, scene: "Scene") -> list[Problem]:
    problem = alpha_problem(scene)
    loc = ("render", "look", "background")
    return [] if problem is None else [(src.where(loc), f"render.look.background: bad value 'transparent': {problem}")]


def _weights(src: Source, scene: "Scene", panel: int | None = None) -> list[Problem]:
    """The user's weight files exist and can be read for the cache key (studio/fingerprint.py)."""
    w = scene.landscape.weights
    if w is None:
        return []
    from studio.fingerprint import expand_files, user_folders, weights_files
    folders = user_folders(src.path)
    try:
        if isinstance(w.final, str):
            expand_files([w.final], folders)
    except (ValueError, OSError) as e:
        return [place(src, "landscape.weights.final", str(e), panel)]
    try:
        files = weights_files(w.model_dump(), folders)
    except (ValueError, OSError) as e:
        return [place(src, f"landscape.weights.{'run' if w.run is not None else 'files'}", str(e), panel)]
    unreadable = [f for f in files if not os.access(f, os.R_OK)]
    if unreadable:
        key = "run" if w.run is not None else "files"
        return [place(src, f"landscape.weights.{key}", f"cannot read {unreadable[0]} (permission denied); the "
                                                          f"cache key covers the files' contents", panel)]
    return []


def _landscape(src: Source, scene: "Scene") -> list[Problem]:
    """The landscape's checks that need more than one section: the training run's length
    (with epochs, the data's size), plane checkpoints and sequence steps within the run, the
    evaluation subset within the data set, and a data root that is a folder."""
    ls = scene.landscape
    out = []
    total = train_steps(ls)
    problem = train_run_problem(ls.train, total) if total is not None else None
    if problem is not None:
        key, msg = problem
        loc = ("landscape", "train", key)
        out.append((src.where(loc), f"landscape.train.{key}: bad value {src.shown(loc, getattr(ls.train, key))}: "
                                    f"{msg}"))
    last = total
    seq = ls.sequence
    given = "epochs" if ls.train.epochs else "steps"
    for loc, steps, must in ((("plane", "checkpoints"), ls.plane.checkpoints, "a checkpoint must be a step"),
                             (("sequence", "steps"), seq.steps if seq is not None else None, "a step must be")):
        late = [s for s in (steps or []) if s > last] if last is not None else []
        if late:
            at = ("landscape",) + loc + (steps.index(late[0]),)
            out.append((src.where(at), f"landscape.{'.'.join(loc)}: bad value {src.shown(at, late[0])}: training "
                                       f"runs {last} steps (landscape.train.{given}), so {must} from 0 to {last}"))
    root = getattr(ls.data, "root", None)
    if root is not None and Path(root).expanduser().exists() and not Path(root).expanduser().is_dir():
        at = ("landscape", "data", "root")
        out.append((src.where(at), f"landscape.data.root: bad value {src.shown(at, root)}: that is a file; give "
                                   f"the folder that holds the data set"))
    return out + _sizes(src, scene)


def _sizes(src: Source, scene: "Scene") -> list[Problem]:
    """An evaluation subset larger than the data set (where the scene gives its size) would be
    clamped to it, under another cache key than the same landscape with the count the data has:
    the same grid computed twice.  Left at its default, it is clamped (the default's key)."""
    grid = scene.landscape.grid
    n, size_key = data_size(scene.landscape.data)
    if n is None or "eval_samples" not in grid.model_fields_set or grid.eval_samples <= n:
        return []
    at = ("landscape", "grid", "eval_samples")
    return [(src.where(at), f"landscape.grid.eval_samples: bad value {src.shown(at, grid.eval_samples)}: the "
                            f"evaluation subset can have at most {n:,} samples, the data set's size "
                            f"(landscape.data.{size_key}); give at most {n} or raise the data set's size")]


def _runs(scene: "Scene") -> list[str]:
    """The training paths: a minima plane's other two networks have paths of their own."""
    return list(MINIMA_PATHS) if scene.landscape.plane.method == "minima" else ["training"]


def _known_paths(scene: "Scene") -> list[str]:
    return _runs(scene) + [d.name for d in scene.landscape.descents]


def _allowed_paths(scene: "Scene") -> str:
    return f"{', '.join(repr(r) for r in _runs(scene))} and the names under landscape.descents"


def _paths(src: Source, scene: "Scene") -> list[Problem]:
    """Every trail in render.paths names a path the landscape makes."""
    known = _known_paths(scene)
    out = []
    for k in scene.render.paths:
        if k not in known:
            close = difflib.get_close_matches(k, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append((src.where(("render", "paths", k), key=True),
                        f"render.paths: unknown path {k!r}; allowed: {_allowed_paths(scene)} "
                        f"({', '.join(known)}){hint}"))
    return out


def _timing(src: Source, scene: "Scene") -> list[Problem]:
    """Keyframes, captions and trails are not timed after the film's end: shortening
    render.duration would otherwise drop them without a word.  (A shot may run past the end: the
    film shows its first part.)"""
    r = scene.render
    d = r.duration
    end = f"the film ends at {d:g} s (render.duration)"
    out = []

    def bad(loc: tuple, v: float, what: str, fix: str) -> None:
        at = ("render",) + loc
        out.append((src.where(at), f"render.{_dotted(loc)}: bad value {src.shown(at, v)}: {what}, and {end}; {fix}"))

    for i, e in enumerate(r.camera):
        if isinstance(e, CameraKey) and e.t > d:
            bad(("camera", i, "t"), e.t, "the keyframe is after the film's end",
                f"give a time from 0 to {d:g}, or lengthen render.duration")
    for i, c in enumerate(r.captions):
        if c.start >= d:
            bad(("captions", i, "from"), c.start, "the caption starts at or after the film's end",
                f"show it before {d:g} s, or lengthen render.duration")
    for k, s in r.paths.items():
        if s.end is not None and s.end > d:
            bad(("paths", k, "end"), s.end, "the trail would be complete after the film",
                f"give an end of at most {d:g}, or lengthen render.duration")
        elif s.start >= (s.end if s.end is not None else d):
            bad(("paths", k, "start"), s.start,
                f"the trail would start at or after its end ({s.end:g} s)" if s.end is not None else
                "the trail would start at or after the film's end",
                "start it earlier" + (", or give a later end" if s.end is not None else ""))
    return out


def _followed(src: Source, scene: "Scene") -> list[Problem]:
    """Every follow shot rides a path the landscape makes."""
    known = _known_paths(scene)
    out = []
    for i, e in enumerate(scene.render.camera):
        if isinstance(e, FollowShot) and e.path not in known:
            close = difflib.get_close_matches(e.path, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append((src.where(("render", "camera", i, "path")),
                        f"render.camera[{i}].path: unknown path {e.path!r}; allowed: {_allowed_paths(scene)} "
                        f"({', '.join(known)}){hint}"))
    return out


def _camera(src: Source, scene: "Scene") -> list[Problem]:
    """The camera's timeline: shots that move the same value do not overlap in time, and no
    keyframe sets a value strictly inside a shot that moves it."""
    entries = scene.render.camera
    out = []

    def where(*loc) -> str:
        return src.where(("render", "camera") + loc)

    def name(i: int, e) -> str:
        return (f"the {e.shot} shot render.camera[{i}] ({src.origin(('render', 'camera', i))}, from {e.start:g} "
                f"to {e.end:g})")

    shots = [(i, e) for i, e in enumerate(entries) if isinstance(e, _Shot)]
    for n, (i, a) in enumerate(shots):
        for j, b in shots[n + 1:]:
            both = [c for c in a.channels() if c in b.channels()]
            if both and a.start < b.end and b.start < a.end:
                out.append((where(j), f"render.camera[{j}]: the {b.shot} shot from {b.start:g} to {b.end:g} moves "
                                      f"the {both[0]}, and so does {name(i, a)}; shots that move the same value "
                                      f"may not overlap in time (one may start where the other ends)"))
    for k, key in enumerate(entries):
        if not isinstance(key, CameraKey):
            continue
        for i, s in shots:
            for c in s.channels():
                if getattr(key, c) is not None and s.start < key.t <= s.end:
                    out.append((where(k, c), f"render.camera[{k}].{c}: the keyframe at t={key.t:g} sets {c} inside "
                                             f"{name(i, s)}, which moves it; leave {c} out of this keyframe, or move "
                                             f"the keyframe out of the shot (at the shot's 'from' it sets where the "
                                             f"shot starts)"))
    return out


def _panels(src: Source, scene: "Scene") -> list[Problem]:
    """A comparison's panels: each merged landscape validates as a whole landscape section, every
    path render.paths draws and every follow shot rides exists in each panel, and the checks across
    sections hold for each.  Problems name compare.panels[i] and the line of the panel's value.
    The camera's timeline is the scene's, one for all panels."""
    cmp = scene.compare
    n = len(cmp.panels)
    out = []
    slot = scene.render.duration / n
    if cmp.layout == "sequence" and cmp.transition > slot:
        at = ("compare", "transition")
        out.append((src.where(at), f"compare.transition: bad value {src.shown(at, cmp.transition)}: each of the {n} "
                                   f"panels has {slot:g} s of the {scene.render.duration:g} s film (render.duration "
                                   f"shared out), and the crossfade must fit in that; shorten it or lengthen "
                                   f"render.duration"))
    for i, p in enumerate(cmp.panels):
        psrc = src.panel(i)
        try:
            spec = Scene.model_validate({"landscape": panel_landscape(scene.landscape, p.landscape)}).landscape
        except ValidationError as e:
            out += [_in_panel(pr, i) for pr in format_errors(psrc, e)]
            continue
        ps = scene.model_copy(update={"landscape": spec, "compare": None})
        known = _known_paths(ps)
        where = psrc.where(("landscape", "descents"))
        for k in scene.render.paths:
            if k not in known:
                out.append((where, f"compare.panels[{i}]: render.paths draws {k!r}, and this panel's landscape makes "
                                   f"no path of that name (it makes: {', '.join(known)}); give it a descent named "
                                   f"{k!r} (under landscape.descents, or the panel's own) or remove {k!r} from "
                                   f"render.paths"))
        for k in p.labels:
            if k not in scene.render.paths:
                out.append((psrc.where(("labels", k)), f"compare.panels[{i}].labels: {k!r} is not a path "
                                                        f"render.paths draws ({', '.join(scene.render.paths) or 'none'})"))
        for j, e in enumerate(scene.render.camera):
            if isinstance(e, FollowShot) and e.path not in known:
                out.append((where, f"compare.panels[{i}]: render.camera[{j}] follows {e.path!r}, and this panel's "
                                   f"landscape makes no path of that name (it makes: {', '.join(known)})"))
        out += [_in_panel(pr, i) for pr in _landscape(psrc, ps)]
        out += _weights(src, ps, i)
    return out + _camera(src, scene)


def _in_panel(problem: Problem, i: int) -> Problem:
    """A problem with a landscape section, reworded for compare.panels[i]'s merged landscape:
    each dotted key ``landscape...`` becomes ``compare.panels[i].landscape...``."""
    where, text = problem
    return where, re.sub(r"(?<![\w.\[])landscape(?=[.\[:'])", f"compare.panels[{i}].landscape", text)


def _output(src: Source, scene: "Scene") -> list[Problem]:
    """The film's path, where it cannot be used as it is: a folder where a file goes (or the other
    way round), or a path under a file."""
    out = []
    o = scene.output
    if o.path is not None:
        at = ("output", "path")
        p = Path(o.path).expanduser()
        parent = next((q for q in p.parents if q.exists()), None)
        if not o.path.strip():
            out.append((src.where(at), "output.path: bad value \"\": give a path, e.g. out/name.mp4, or leave "
                                       "output.path out for out/<scene name>"))
        elif parent is not None and not parent.is_dir():
            out.append((src.where(at), f"output.path: bad value {src.shown(at, o.path)}: {parent} is a file, so "
                                       f"nothing can be written under it; choose another folder"))
        elif o.format in FILM_FORMATS and p.is_dir():
            out.append((src.where(at), f"output.path: bad value {src.shown(at, o.path)}: that is a folder; the film "
                                       f"is one file: give a file path ending in {FILM_FORMATS[o.format]}"))
        elif o.format == "png" and p.exists() and not p.is_dir():
            out.append((src.where(at), f"output.path: bad value {src.shown(at, o.path)}: that is a file, and PNG "
                                       f"frames go into a folder; give a folder path such as out/name_frames"))
    return out
