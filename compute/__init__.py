"""The compute stage (PyTorch): a scene's landscape into the cache.

From the shell: ``python -m compute SCENE`` (compute/__main__.py).  From Python, a notebook for
instance: :func:`landscape`.

A map for a contributor:

* ``pipeline.py``     -- the stage as a story: task, run, plane, grid, sequence, paths, descents,
                         entry, figures; resumable row blocks.
* ``run/``            -- the weights over training: the task and the run (types), trained, loaded
                         from the user's checkpoints, or recorded by the user's own loop.
* ``plane/``          -- the plane through weight space: one ``Plane`` type, its methods, the
                         window, the fit of a run.
* ``engine.py``       -- ``GridEngine``: the loss at many plane points, batched; ``grid/`` its
                         strategies (the model's graph, the studio's MLPs and ConvNets, vmap, loop).
* ``descent.py``      -- descents inside the plane, on the exact in-plane gradient.
* ``data.py``, ``models.py``, ``losses.py``, ``entry.py`` -- the task's parts: data sets, networks,
                         losses, and the user's own ``module:function`` entries.
* ``morphology/``, ``describe.py`` -- the landscape's figures, measured on an entry and said.
* ``provenance.py``   -- the entry's ``meta.json``.
* ``distributed.py``  -- the grid shared out over torchrun's processes.
* ``numerics.py``, ``logs.py``, ``errors.py`` -- torch's float set-up, the one logger, data errors.
* ``bench/``, ``gpucheck.py`` -- the measurements (``make bench``, ``make gpu-check``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:                      # torch is imported only when the function runs
    from studio.cache import Landscape


def landscape(scene: Union[str, Path, dict], set: "list[str] | tuple[str, ...]" = (), *,
              cache_dir: Union[str, Path, None] = None, device: str | None = None, progress: bool = True,
              force: bool = False) -> "Landscape":
    """Compute a scene's landscape, or find it in the cache, and return the cache entry's arrays.

    ``scene`` is a scene file's path or the scene as a dict (the YAML file's content as Python data);
    ``set`` holds ``"key=value"`` overrides, as ``--set`` on the command line.  ``cache_dir``: the
    cache root; by default the scene's own, the one ``python -m compute`` uses for it from any working
    directory (studio.cache.default_root: ``$LANDSCAPE_STUDIO_CACHE``, else ``cache/`` in the scene's
    project), so a notebook elsewhere finds the landscapes already computed.  This runs exactly what
    ``python -m compute SCENE --set ...`` runs (compute/pipeline.py: run) and reads the entry it
    wrote; a scene with ``compare:`` is not for this function (compute each panel's scene instead).

    Returns a :class:`studio.cache.Landscape`: ``loss`` (ny, nx), ``alpha`` (nx,) and ``beta`` (ny,)
    the plane coordinates, ``paths`` (the training path and the scene's descents: ``xy``, ``loss``,
    ``step``...), ``grids`` (e.g. accuracy), ``sequence`` (a landscape over training) and ``meta``
    (the provenance record).  Bad input raises :class:`studio.scene.SceneError` with the message the
    command line would print::

        from compute import landscape
        ls = landscape({"landscape": {"grid": {"resolution": [100, 100]}}})
        ls.loss.shape, ls.meta["training"]["final_eval_loss"]
    """
    from studio import cache
    from studio.scene import SceneError, load_scene, scene_from_dict
    from compute.numerics import flush_denormals
    flush_denormals()
    from compute.pipeline import run
    sc = scene_from_dict(scene, overrides=set) if isinstance(scene, dict) else load_scene(scene, set)
    if sc.compare is not None:
        raise SceneError(f"{sc.source}: compare: a comparison has one landscape per panel; compute each "
                         f"panel's scene (Scene.panels()) on its own")
    root = Path(cache_dir) if cache_dir is not None else cache.default_root(sc.source)
    run(sc, root, device=device, progress=progress, force=force)
    return cache.read(root, sc.cache_key(), sc.source,
                      descents=[d.model_dump() for d in sc.landscape.descents])
