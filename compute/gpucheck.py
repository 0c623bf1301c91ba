"""Time a scene's whole compute stage at full size on a GPU: ``make gpu-check-imagenette``.

Usage:
    python -m compute.gpucheck [SCENE] [--device cuda|cpu] [--set KEY=VALUE ...]
                               [--cache-dir out/gpu-check-cache] [--json PATH] [--quiet]

Runs ``python -m compute``'s stage (compute.pipeline.run) on SCENE (default
scenes/imagenette_convnet.yaml) as the scene says, 1000 x 1000 grid included,
into a cache of its own with ``--force``, so an old entry or trained model is
never reused and the times are those of a fresh run, and prints the training
time, the grid time, the grid's points per second (and the model-equivalent
FLOP rate) and the total.

Imagenette is not shipped.  When the scene's data set is Imagenette and it is
not at the scene's ``data.root``, the run says so and times the same model,
training and grid on *stand-in* images: seeded random tensors of the same
shape, class count and number (``stand_in`` below, through the scene's
``custom`` data entry).  Every cost of the stage depends on the shapes, not the
pixels (the images are decoded and resized once, before the timed parts), so
the times stand for the real run; the losses do not, and the output says
clearly that it is a stand-in.

Without a CUDA device it prints one line and exits with status 1, unless
``--device cpu`` is given (which runs the same path on the CPU: with ``--set``
overrides for a tiny grid, that is how the tests exercise it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from studio import cli
from studio.cli import UserError
from studio.scene import SceneError, load_scene

DEFAULT_SCENE = "scenes/imagenette_convnet.yaml"
DEFAULT_CACHE = "out/gpu-check-cache"
#: images in Imagenette's training split (both the 160 px and the 320 px archive)
IMAGENETTE_TRAIN = 9469
IMAGENETTE_CLASSES = 10


def stand_in(samples: int, classes: int, size: int, channels: int = 3, seed: int = 0):
    """Seeded standard-normal images (samples, channels, size, size) -- about what normalized
    photographs look like to the network's arithmetic -- and class labels taking turns (balanced).
    A ``custom`` data entry (compute/data.py: custom_data): returns (x, y, classes)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, channels, size, size, generator=g)
    y = torch.arange(samples) % classes
    return x, y, classes


def imagenette_folder(data) -> Path:
    """Where torchvision looks for the scene's Imagenette training split (``data``: its DataSpec)."""
    return Path(data.root).expanduser() / f"imagenette2-{data.variant.replace('px', '')}" / "train"


def stand_in_override(data) -> str:
    """The ``--set`` value that replaces an Imagenette data section by stand-in images of the same
    shape, class count and size of the training set."""
    n = min(data.train_samples, IMAGENETTE_TRAIN)
    spec = {"name": "custom", "entry": "compute.gpucheck:stand_in",
            "args": {"samples": n, "classes": IMAGENETTE_CLASSES, "size": data.size, "channels": 3,
                     "seed": data.seed}}
    return "landscape.data=" + json.dumps(spec)          # JSON is YAML: parse_overrides reads it


def forward_flops(model, shape: tuple[int, ...]) -> float:
    """Forward FLOPs of ``model`` for one sample of ``shape`` (torch's FlopCounterMode; a
    multiply-add counts 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    p = next(model.parameters())
    x = torch.zeros(2, *shape, device=p.device, dtype=p.dtype)
    was = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(x)
    finally:
        model.train(was)
    return fc.get_total_flops() / 2


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s:.0f} s ({s / 60:.1f} min)"


class NoCuda(UserError):
    """No CUDA device to check: the machine's state, not the scene's."""
    exit_code = 1


def main(argv: list[str] | None = None) -> int:
    return cli.run(_check, argv)


def _arguments(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m compute.gpucheck", description=__doc__.split("\n")[0])
    ap.add_argument("scene", nargs="?", default=DEFAULT_SCENE, help=f"scene file (default: {DEFAULT_SCENE})")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scene value, as for python -m compute (e.g. a smaller grid for a try)")
    ap.add_argument("--device", default="cuda", help="torch device (default: cuda; cpu runs the same check on "
                                                     "the CPU)")
    ap.add_argument("--cache-dir", default=DEFAULT_CACHE, help=f"cache of this check (default: {DEFAULT_CACHE}); "
                                                               "its entry is recomputed every time")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the figures to this JSON file")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


def _check(argv: list[str]) -> int:
    args = _arguments(argv)
    import torch
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise NoCuda("gpu-check: no CUDA device here (python -m compute.gpucheck --device cpu runs the "
                     "same check on the CPU)")
    scene, stand = _scene(args)
    from compute.data import DataError
    from compute.pipeline import run
    t0 = time.perf_counter()
    try:
        entry = run(scene, Path(args.cache_dir), device=args.device, progress=not args.quiet, force=True)
    except DataError as e:
        raise SceneError(f"{args.scene}: {e}") from None
    meta = json.loads((Path(entry) / "meta.json").read_text())
    figures = _figures(args, meta, stand, time.perf_counter() - t0, torch.device(args.device))
    figures["entry"] = str(entry)
    _report(figures, meta)
    if args.json:
        p = Path(args.json)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(figures, indent=1))
    return 0


def _scene(args: argparse.Namespace):
    """The scene to check, and whether its Imagenette is replaced by stand-in images (not on disk)."""
    scene = load_scene(args.scene, args.set)
    if scene.compare is not None:
        raise SceneError(f"{args.scene}: a comparison scene; give a scene with one landscape")
    data = scene.landscape.data
    stand = data.name == "imagenette" and not imagenette_folder(data).is_dir()
    if stand:
        scene = load_scene(args.scene, [*args.set, stand_in_override(data)])
        n = scene.landscape.data.args["samples"]
        print(f"gpu-check: Imagenette is not in {imagenette_folder(data)}: timing the same model, training and "
              f"grid on STAND-IN random images ({n} of 3 x {data.size} x {data.size}, {IMAGENETTE_CLASSES} "
              f"classes). The training and grid times stand for the real run (reading the photographs is not "
              f"timed); the losses do not.", flush=True)
    return scene, stand


def _figures(args: argparse.Namespace, meta: dict, stand: bool, wall: float, dev) -> dict:
    """What the check measured, from the entry's meta.json: times, points/s, model FLOP/s."""
    import torch
    from compute.models import build_model
    t, ls, train = meta["timings"], meta["landscape"], meta["training"]
    shape = tuple(meta["data"]["shape"])
    torch.manual_seed(0)
    flops = forward_flops(build_model(ls["model"], shape, meta["data"]["classes"]).to(dev), shape)
    pps = t["grid_points_per_s"] or 0.0
    n_eval = meta["data"]["eval_samples"]
    data = ls["data"]
    return {
        "scene": args.scene, "device": meta["device"], "stand_in": stand,
        "data": "stand-in random images" if stand else data["name"], "data_root": data.get("root"),
        "shape": list(shape), "train_samples": meta["data"]["train_samples"], "train_steps": train.get("steps"),
        "batch_size": train.get("batch_size"), "train_s": t["train_s"],
        "grid": list(ls["grid"]["resolution"]), "eval_samples": n_eval, "grid_s": t["grid_s"],
        "grid_points_per_s": pps, "forward_flops_per_image": flops, "grid_flops_per_s": pps * n_eval * flops,
        "total_s": t["total_s"], "wall_s": wall, "engine": meta["engine"],
        "compile_s": meta["engine"].get("compile_s"),
    }


def _report(f: dict, meta: dict) -> None:
    """The figures, for a reader."""
    engine, (nx, ny) = f["engine"], f["grid"]
    chunk, comp = engine["chunk"], f["compile_s"]
    label = "STAND-IN images" if f["stand_in"] else f"{f['data']} from {f['data_root']}"
    print(f"\ngpu-check: {f['scene']} on {f['device']} ({label})")
    print(f"  training  {f['train_steps']} steps of {f['batch_size']} on {f['train_samples']} "
          f"images: {_seconds(f['train_s'])}")
    print(f"  grid      {nx} x {ny} = {nx * ny:,} points on {f['eval_samples']} images: {_seconds(f['grid_s'])}"
          + (f" ({comp:.1f} s of it compiling and the first pass)" if comp is not None else "")
          + f", {f['grid_points_per_s']:,.0f} points/s ({engine['method']} path"
          f"{', compiled' if engine['compiled'] else ''}, {chunk} point{'s' if chunk != 1 else ''} a pass; "
          f"{f['forward_flops_per_image'] / 1e6:.1f} MFLOP an image: "
          f"{f['grid_flops_per_s'] / 1e12:.2f} TFLOP/s model-equivalent)")
    print(f"  total     {_seconds(f['total_s'])} (data, training, plane, grid, writing the entry)")
    if f["stand_in"]:
        print("  (STAND-IN data: put Imagenette under the scene's data.root for the real run)")


if __name__ == "__main__":
    sys.exit(main())
