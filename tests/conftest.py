"""Shared fixtures and helpers: synthetic cache entries (no torch needed), scene files and their
errors, camera entries and tracks, small films and frames, data sets written in their on-disk
formats, a PLY reader, the compute command line's errors, and the GL check.

Every test that draws (asks for the ``gl`` fixture, itself or through another fixture) is marked
``gl`` here (``pytest_collection_modifyitems``), so ``-m "not gl"`` leaves out every test that
makes a GL context.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("EGL_PLATFORM", "surfaceless")
#: the shipped scenes
SCENES = sorted((ROOT / "scenes").glob("*.yaml"))


def write_scene(tmp_path: Path, text: str, name: str = "scene.yaml") -> Path:
    """A scene file in tmp_path from an indented YAML text (dedented, leading blank lines dropped)."""
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def scene_error(path: Path) -> str:
    """The error that loading the scene file at ``path`` raises: one line, starting with the path."""
    from studio.scene import SceneError, load_scene
    with pytest.raises(SceneError) as e:
        load_scene(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    return msg


def assert_scene_error(tmp_path: Path, text: str, line: int, parts: list[str]) -> None:
    """A scene of ``text`` fails to load with one line naming its file and ``line`` and holding every
    piece of ``parts``."""
    scene = write_scene(tmp_path, text)
    msg = scene_error(scene)
    assert f"{scene}:{line}:" in msg, msg
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


#: a tiny scene for the compute stage, with a title and a render section (which its cache key leaves out)
TINY_SCENE = """
title: tiny
landscape:
  data: {samples: 512}
  model: {widths: [16, 16]}
  train: {steps: 100, snapshots: 20}
  grid: {resolution: [24, 20], eval_samples: 128}
render:
  fps: 24
  camera:
    - {t: 0, azimuth: 10}
    - {t: 2, azimuth: 40}
"""

#: the smallest scene that trains three networks and samples a grid on their plane (the ``minima`` plane)
MINIMA_SCENE = """
landscape:
  data: {name: spirals, samples: 64}
  model: {name: mlp, widths: [6]}
  train: {steps: 40, snapshots: 6, lr: 0.05}
  plane: {method: minima, seeds: [3, 1, 2]}
  grid: {resolution: [9, 8], eval_samples: 32}
  figures: {hessian: false}
"""

#: the dark-room colormaps (made by tools/make_colormaps.py)
DARK_ROOM = ("ember", "aurora", "ice")


def _bowl(a, b):
    return 0.05 + a**2 + 0.5 * b**2 + 0.2 * np.sin(3 * a) ** 2


#: extra synthetic paths (as if in-plane descents): name -> plane coordinates along t in [0, 1]
DESCENT_CURVES = {
    # a damped zig-zag across the valley, from the upper right
    "sgd": lambda t: np.stack([0.8 * (1 - t) * np.cos(9 * t), 1.3 * (1 - t) ** 1.5], axis=1),
    # a smooth arc from the lower left
    "adam": lambda t: np.stack([-1.7 * (1 - t) ** 1.2, -0.8 * (1 - t) * (1 + 0.8 * t)], axis=1),
    # a path that leaves the grid and comes back
    "wild": lambda t: np.stack([0.9 * np.cos(5 * t) * (1 - t), 1.4 * np.sin(5 * t) * (1 - t) + 0.2], axis=1),
}


def synthetic_landscape(key: str, nx: int = 120, ny: int = 100, nan_block: bool = False,
                        descents: tuple[str, ...] = (), accuracy: bool = False):
    """A bowl with ripples and a descending path, in the cache's format; ``descents``: names from
    DESCENT_CURVES added as further paths; ``accuracy``: an accuracy grid as well."""
    from studio.cache import Landscape, Path2D
    alpha = np.linspace(-2.0, 1.0, nx)
    beta = np.linspace(-1.0, 1.5, ny)
    A, B = np.meshgrid(alpha, beta)
    loss = _bowl(A, B).astype(np.float32)
    if nan_block:
        loss[:5, :5] = np.nan
    t = np.linspace(0, 1, 60)
    xy = np.stack([-1.8 * (1 - t) ** 2, 1.2 * (1 - t) * np.cos(4 * t)], axis=1)
    surf = _bowl(xy[:, 0], xy[:, 1])
    paths = {"training": Path2D("training", xy, surf * 1.01, surf, np.linspace(1, 0, 60), np.arange(60) * 10)}
    for name in descents:
        t = np.linspace(0, 1, 80)
        xy = DESCENT_CURVES[name](t)
        surf = _bowl(xy[:, 0], xy[:, 1])
        paths[name] = Path2D(name, xy, surf, surf, np.zeros(len(t)), np.arange(len(t)))
    meta = {"landscape": {"model": {"name": "mlp", "widths": [8], "activation": "tanh"},
                          "data": {"name": "spirals", "classes": 2},
                          "plane": {"method": "pca"}, "grid": {"resolution": [nx, ny]}}}
    grids = {}
    if accuracy:
        grids["accuracy"] = np.clip(1.0 - 0.45 * np.tanh(loss - 0.05), 0.5, 1.0).astype(np.float32)
    return Landscape(key, loss, alpha, beta, paths, meta, grids=grids)


def synthetic_sequence(k_all=4, nx=60, ny=50):
    """A landscape over training: a bowl that deepens and sharpens over 'training', as a cache entry."""
    from studio.cache import GridSequence, Landscape, Path2D
    alpha, beta = np.linspace(-1, 1, nx), np.linspace(-1, 1, ny)
    A, B = np.meshgrid(alpha, beta)
    grids = np.stack([(1.0 - 0.2 * k) * (0.3 + (1 + k) * (A ** 2 + B ** 2)) for k in range(k_all)]).astype(np.float32)
    t = np.linspace(0, 1, 3 * k_all - 2)
    xy = np.stack([0.8 * (1 - t), 0.6 * (1 - t)], axis=1)
    steps = np.arange(len(t)) * 10
    loss = np.array([1.0 - 0.2 * t_ for t_ in t])
    paths = {"training": Path2D("training", xy, loss, loss * 0.9, np.zeros(len(t)), steps)}
    idx = np.arange(0, len(t), 3)
    seq = GridSequence(grids, steps[idx], idx, xy[idx])
    return Landscape("seqtest", grids[-1].copy(), alpha, beta, paths, {"landscape": {}}, sequence=seq)


#: a film of three descents over the synthetic bowl (synthetic_with_descents): 'red' inside the grid,
#: 'green' running out of it, 'blue' never over it
DESCENT_TRAILS_SCENE = """
title: ""
landscape:
  grid: {resolution: [120, 100]}
  descents:
    - {name: red, start: [-1.6, 1.2]}
    - {name: green, optimizer: adam, start: [0.6, -0.8]}
    - {name: blue, optimizer: momentum, start: [5, 5]}
render:
  size: [320, 180]
  fps: 10
  duration: 1.2
  paths:
    red: {color: "#ff0000", width: 8, label: "red one", start: 0, end: 1.0}
    green: {color: "#00ff00", width: 8, label: "green one", start: 0.1, end: 0.9}
    blue: {color: "#0000ff", width: 8, start: 0, end: 1.0}
"""


def synthetic_with_descents(scene):
    """The conftest bowl under the scene's key, with a path for each of the scene's descents:
    'red' runs down inside the grid, 'green' starts inside and runs out of it, 'blue' is never over it."""
    from studio import cache
    from studio.cache import Descent, Path2D, canonical_descent
    base = synthetic_landscape(scene.cache_key())
    t = np.linspace(0, 1, 41)
    shapes = {
        "red": np.stack([-1.6 + 1.6 * t, 1.2 * (1 - t)], 1),
        "green": np.stack([0.6 - 0.3 * t, -0.8 + 3.0 * t], 1),          # beta runs past 1.5
        "blue": np.stack([5 + t, 5 + t], 1),
    }
    ds = {}
    for s in scene.landscape.descents:
        c = canonical_descent(s)
        xy = shapes[c["name"]]
        loss = 0.05 + xy[:, 0] ** 2 + 0.5 * xy[:, 1] ** 2
        d = Descent(c, Path2D(c["name"], xy, loss, loss.copy(), np.zeros(len(t)), np.arange(len(t))), {})
        ds[d.key] = d
    return cache.Landscape(base.key, base.loss, base.alpha, base.beta, base.paths, base.meta, descents=ds)


# ----------------------------------------------------------------------------- small films

#: the render: section of a small film for the render tests: 320 x 180, 10 fps, 1.2 s
#: a small film without a camera: tests that write their own
FILM_BARE = "render:\n  size: [320, 180]\n  fps: 10\n  duration: 1.2\n"
#: the same with a camera of its own: the terrain's framing (the first keyframe's carried state), then a
#: slow turn (tests of anything but the automatic camera, render/camera/auto.py, keep a fixed one)
FILM_RENDER = FILM_BARE + "  camera: [{t: 0}, {t: 1.2, azimuth: 110, elevation: 24, ease: in_out}]\n"


def render_film(scene_path, cache_dir, w=320, h=180, fps=10, duration=1.2, **opts):
    """render.film.Film of the scene over its cache entry (a context manager)."""
    from render.film import Film, Options
    from studio import cache
    from studio.scene import load_scene
    scene = load_scene(scene_path)
    ls = cache.read(cache_dir, scene.cache_key())
    return Film(scene, ls, Options(w, h, fps, duration, **opts))


def render_frame(scene_path, cache_dir, t, w=320, h=180, **opts):
    """The frame at time t of :func:`render_film`."""
    with render_film(scene_path, cache_dir, w, h, **opts) as film:
        return film.frame(t)


def background_fraction(img, bg_rgb, tol=24):
    """The share of the frame's pixels within ``tol`` of the background colour ``bg_rgb``."""
    d = np.abs(img.astype(int) - np.array(bg_rgb)[None, None, :]).max(axis=-1)
    return float((d <= tol).mean())


def frame_diff(a, b):
    """Two frames' absolute difference: (mean, 99th percentile, max)."""
    d = np.abs(a.astype(int) - b.astype(int))
    return float(d.mean()), float(np.percentile(d, 99)), int(d.max())


#: a camera state for the camera's tests to start from
CAMERA_HOME = {"target": [0.0, 0.0, 0.3], "azimuth": 30.0, "elevation": 30.0, "distance": 5.0, "fov": 35.0,
               "roll": 0.0}


def camera_entries(entries: list[dict]) -> list:
    """``render.camera`` entries as the scene loader gives them to the camera: each dict (a keyframe,
    or a shot with ``shot``, ``from``, ``to``) validated by the scene schema's own models."""
    from pydantic import TypeAdapter
    from studio.scene import CameraEntry
    adapter = TypeAdapter(CameraEntry)
    return [adapter.validate_python(e) for e in entries]


def make_track(start: float = 1.0, end: float = 9.0, n: int = 400, wiggle: float = 0.0):
    """A render.camera.Track: a head moving along a curve over a terrain-like height, growing with a
    smoothstep from start to end (like a drawn trail); ``wiggle`` adds a fine zig-zag."""
    from render import camera as cam
    s = np.linspace(0.0, 1.0, n)
    pts = np.c_[-0.8 + 1.4 * s, 0.5 * np.sin(3 * s) + wiggle * np.sign(np.sin(120 * s)), 0.8 * (1 - s) ** 2]

    def timing(t):
        u = np.clip((np.asarray(t, float) - start) / (end - start), 0.0, 1.0)
        return u * u * (3 - 2 * u) * (n - 1)

    return cam.Track(pts, np.arange(n, dtype=float), timing)


def process_env(threads: str | None = "1") -> dict:
    """The environment of a compute process a test starts: the project importable, OMP_NUM_THREADS
    ``threads`` (None: torch's own choice, as a user's shell has it), no process-group variables."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)
    if threads:
        env["OMP_NUM_THREADS"] = threads
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def torchrun_compute(scene: Path, cache_dir: Path, *args: str, threads: str | None = "1",
                     timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 -m compute SCENE --cache-dir DIR --quiet ARGS`` as a
    user runs it, from the project root."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "compute", str(scene), "--cache-dir", str(cache_dir), "--quiet", *args],
                          cwd=ROOT, env=process_env(threads), capture_output=True, text=True, timeout=timeout)


def cli_errors(tmp_path: Path, scene: Path, *args: str) -> list[str]:
    """Run `python -m compute SCENE` on a bad scene; check the exit status, that stderr is one
    ``error: ...`` line per problem and that nothing was written; return the problems."""
    before = sorted(p.name for p in tmp_path.iterdir())
    cache_dir = tmp_path / "cache"
    r = subprocess.run([sys.executable, "-m", "compute", str(scene), "--cache-dir", str(cache_dir), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), r.stderr
    # nothing created: no cache dir, no out/, no other file next to the scene
    assert not cache_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return [line[len("error: "):] for line in lines]


def cli_error(tmp_path: Path, scene: Path, *args: str) -> str:
    """:func:`cli_errors` for a scene with one problem: its one line."""
    lines = cli_errors(tmp_path, scene, *args)
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------------------- planes

def plane_weights(seed=0):
    """An MLP's weights plus a 4-D filter bank and a bias of its own, with uneven filter norms
    -> (model, weights)."""
    import torch
    from compute.models import mlp
    torch.manual_seed(seed)
    model = mlp(2, [16, 12], 3, "relu")
    w = {k: v.detach().clone() for k, v in model.named_parameters()}
    w["conv.weight"] = torch.randn(8, 3, 3, 3) * torch.linspace(0.1, 3, 8).view(-1, 1, 1, 1)
    w["conv.bias"] = torch.randn(8)
    return model, w


def plane_spec(**kw):
    """A resolved landscape.plane section: pca's defaults, with ``kw`` over them."""
    from studio.scene import PlaneSpec
    base = {"method": "pca", "seed": 0, "normalization": "filter", "span": None, "range": None, "margin": 0.35}
    base.update(kw)
    return PlaneSpec.model_construct(**base)


# ----------------------------------------------------------------------------- files in their formats

def write_cifar(root: Path, per_batch: int = 10) -> None:
    """CIFAR-10's python pickle batches in <root>/cifar-10-batches-py: five training batches and a
    test batch of ``per_batch`` images each, and the label names."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    g = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(v) for v in np.arange(per_batch) % 10]
        data = g.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        with open(d / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck"]}, f)


#: Imagenette's WordNet ids (torchvision maps them to class names; any subset of them works)
WNIDS = ["n01440764", "n02102040", "n02979186"]


def write_imagenette(root: Path, per_train: int = 4, per_val: int = 2, size=(40, 30)) -> None:
    """<root>/imagenette2-160/{train,val}/<wnid>/*.JPEG, as the archive unpacks, written with Pillow.
    Each class has its own brightness, so a wrong label order would show in the data."""
    from PIL import Image
    g = np.random.default_rng(0)
    for split, per in (("train", per_train), ("val", per_val)):
        for k, wnid in enumerate(WNIDS):
            d = root / "imagenette2-160" / split / wnid
            d.mkdir(parents=True)
            for i in range(per):
                a = (60 * k + g.integers(0, 40, (size[1], size[0], 3))).astype(np.uint8)
                Image.fromarray(a).save(d / f"{wnid}_{i}.JPEG", format="JPEG")


def imagenette_overrides(root: Path) -> list[str]:
    """--set overrides that shrink scenes/imagenette_convnet.yaml to the files of write_imagenette(root)."""
    return [f"landscape.data.root={root}", "landscape.data.size=16", "landscape.train.epochs=2",
            "landscape.train.snapshots=3", "landscape.train.log_samples=0",
            "landscape.grid.resolution=[6,6]", "landscape.grid.eval_samples=6"]


PLY_TYPES = {"char": "i1", "uchar": "u1", "short": "<i2", "ushort": "<u2", "int": "<i4", "uint": "<u4",
             "float": "<f4", "double": "<f8"}


def read_ply(path: Path) -> tuple[dict, list[str]]:
    """A small binary little-endian PLY reader -> ({element: rows}, comments).  Scalar-only
    elements come back as structured arrays, elements with a list property as lists of tuples."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    head = data[:end].decode("ascii").splitlines()
    assert head[0] == "ply" and head[1] == "format binary_little_endian 1.0", head[:2]
    elements, comments = [], []
    for line in head[2:-1]:
        w = line.split()
        if w[0] == "comment":
            comments.append(line[len("comment "):])
        elif w[0] == "element":
            elements.append((w[1], int(w[2]), []))
        elif w[0] == "property":
            elements[-1][2].append(("list", w[2], w[3], w[4]) if w[1] == "list" else ("scalar", w[1], w[2]))
        else:
            raise AssertionError(f"unexpected header line {line!r}")
    out, pos = {}, end
    for name, count, props in elements:
        if all(p[0] == "scalar" for p in props):
            dt = np.dtype([(p[2], PLY_TYPES[p[1]]) for p in props])
            out[name] = np.frombuffer(data, dtype=dt, count=count, offset=pos)
            pos += count * dt.itemsize
        else:
            rows = []
            for _ in range(count):
                row = []
                for p in props:
                    if p[0] == "scalar":
                        t = np.dtype(PLY_TYPES[p[1]])
                        row.append(np.frombuffer(data, t, 1, pos)[0])
                        pos += t.itemsize
                    else:
                        ct, it = np.dtype(PLY_TYPES[p[1]]), np.dtype(PLY_TYPES[p[2]])
                        n = int(np.frombuffer(data, ct, 1, pos)[0])
                        pos += ct.itemsize
                        row.append(tuple(int(v) for v in np.frombuffer(data, it, n, pos)))
                        pos += n * it.itemsize
                rows.append(row[0] if len(row) == 1 else tuple(row))
            out[name] = rows
    assert pos == len(data), f"{len(data) - pos} bytes after the last element"
    return out, comments


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.png from the current renderer instead of comparing with them "
                          "(also: STUDIO_REGEN_GOLDEN=1); look at the new frames before committing them")


@pytest.fixture
def regen_golden(request) -> bool:
    return bool(request.config.getoption("--regen-golden") or os.environ.get("STUDIO_REGEN_GOLDEN") == "1")


@pytest.fixture
def scene_with_cache(tmp_path):
    """Write a small scene and a synthetic cache entry under its key -> (scene path, cache dir)."""
    from studio import cache
    from studio.scene import load_scene

    def make(render_yaml: str = "", nx: int = 120, ny: int = 100, nan_block: bool = False,
             descents: tuple[str, ...] = (), accuracy: bool = False, title: str = "Test film"):
        p = tmp_path / "film.yaml"
        ds = "".join(f", {{name: {n}, start: [0.5, 0.5]}}" for n in descents)
        p.write_text("title: %s\nlandscape: {grid: {resolution: [%d, %d]}, descents: [%s]}\n%s"
                     % (title, nx, ny, ds[2:], render_yaml))
        scene = load_scene(p)
        cache.write(tmp_path / "cache", synthetic_landscape(scene.cache_key(), nx, ny, nan_block, descents, accuracy))
        return p, tmp_path / "cache"

    return make


@pytest.fixture
def torch_one_thread():
    """Tiny torch problems: a second thread only adds synchronisation, which costs a lot when the
    machine is busy (100x slower small ops with 2 threads on 2 loaded cores)."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_GL = None


def gl_available() -> tuple[bool, str]:
    global _GL
    if _GL is None:
        # Triton (which torch loads with torch._dynamo, e.g. for torch.optim) imported after Mesa's
        # llvmpipe has loaded its LLVM crashes the process (the two LLVMs' symbols clash); loaded
        # first, both work.  So GL tests followed by compute tests in one run are safe in any order.
        try:
            import triton  # noqa: F401
        except Exception:  # noqa: BLE001 - not installed (or not loadable): nothing to clash with
            pass
        try:
            from render.gl import renderer_info
            info = renderer_info()
            _GL = (True, info["renderer"])
        except Exception as e:  # noqa: BLE001
            _GL = (False, str(e))
    return _GL


@pytest.fixture
def gl():
    """An offscreen OpenGL context (the test is skipped with the reason when none can be made)."""
    ok, why = gl_available()
    if not ok:
        pytest.skip(f"no offscreen OpenGL context: {why}")
    return why


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark ``gl`` every test that asks for the gl fixture, itself or through the fixtures it uses
    (before ``-m`` selects by marks)."""
    for item in items:
        if "gl" in getattr(item, "fixturenames", ()) and item.get_closest_marker("gl") is None:
            item.add_marker(pytest.mark.gl)
