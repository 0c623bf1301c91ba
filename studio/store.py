"""The trained-model store: a trained model is stored apart from the grids, under
``<root>/models/<train_key>/`` (``studio.scene.Scene.train_key``: the data, model and train sections,
the evaluation subset and the format version), so a new plane, grid resolution or descent reuses it
without retraining:

    params.npy     (T, P) float32  flat parameters at each snapshot (named_parameters order)
    buffers.npz    the trained model's buffers by name (BatchNorm running statistics), if any
    meta.json      key, format version, resolved landscape parts it was trained from, device,
                   timings, the run's settings (``info``) and the per-snapshot ``log``: columns
                   LOG_COLUMNS, each of length T

Written like a grid entry (studio/cache.py): built under a temporary name, then renamed into place.
NumPy only; both stages import it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from studio.cachefiles import FORMAT_VERSION, CacheError, _check, _entry_dir, _readonly


MODELS = "models"

#: the per-snapshot training log's columns (also meta.json["training"]["log"] of a grid entry)
LOG_COLUMNS = ("step", "epoch", "lr", "train_loss", "train_accuracy", "eval_loss", "eval_accuracy")

_KEY = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class TrainedModel:
    key: str
    params: np.ndarray                       # (T, P) float32
    log: dict[str, np.ndarray]               # LOG_COLUMNS, each (T,): step int64, the rest float64
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def model_dir(root: Path, key: str) -> Path:
    return Path(root) / MODELS / key


def has_model(root: Path, key: str) -> bool:
    return (model_dir(root, key) / "meta.json").is_file()


def check_log(log: dict, length: Optional[int] = None) -> dict[str, np.ndarray]:
    """A training log's columns as arrays (step int64, the others float64; null, a value the run did
    not record, becomes NaN), checked: every column present, all of one length (``length`` if given),
    steps of at least 0, strictly increasing (a run of the user's may start later than step 0)."""
    if not isinstance(log, dict):
        raise CacheError(f"training log: expected a mapping of columns, found {type(log).__name__}")
    missing = [c for c in LOG_COLUMNS if c not in log]
    if missing:
        raise CacheError(f"training log: lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    out = {c: np.asarray(log[c], dtype=np.int64) if c == "step" else
           np.asarray([np.nan if v is None else v for v in log[c]], dtype=np.float64) for c in LOG_COLUMNS}
    n = len(out["step"]) if length is None else length
    for c, a in out.items():
        if a.shape != (n,):
            raise CacheError(f"training log: column {c} has shape {a.shape}, expected ({n},)")
    s = out["step"]
    if n == 0 or s[0] < 0 or np.any(np.diff(s) <= 0):
        raise CacheError("training log: steps must be at least 0 and increase strictly")
    return {c: _readonly(a) for c, a in out.items()}


def training_log(meta: dict) -> Optional[dict[str, np.ndarray]]:
    """The per-snapshot training log of a grid entry (``Landscape.meta``), or None for an entry
    written before entries had one."""
    log = (meta.get("training") or {}).get("log")
    return None if log is None else check_log(log)


def write_model(root: Path, tm: TrainedModel) -> Path:
    """Store a trained model atomically; returns its directory."""
    if not _KEY.match(tm.key):
        raise CacheError(f"model key {tm.key!r}: expected 16 hex digits")
    _check("params", tm.params, (None, None), "f")
    if tm.params.dtype != np.float32:
        raise CacheError(f"params: expected float32, found {tm.params.dtype}")
    log = check_log(tm.log, tm.params.shape[0])
    base = Path(root) / MODELS
    with _entry_dir(base, tm.key) as tmp:
        np.save(tmp / "params.npy", tm.params)
        if tm.buffers:
            np.savez(tmp / "buffers.npz", **tm.buffers)
        meta = dict(tm.meta, key=tm.key, format_version=FORMAT_VERSION, snapshots=int(tm.params.shape[0]),
                    parameters=int(tm.params.shape[1]), buffers=sorted(tm.buffers),
                    log={c: a.tolist() for c, a in log.items()})
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return base / tm.key


def read_model(root: Path, key: str) -> TrainedModel:
    """Load and check a stored model; a missing or damaged one is a :class:`CacheError` (the
    compute stage then trains again and replaces it)."""
    d = model_dir(root, key)
    if not (d / "meta.json").is_file():
        raise CacheError(f"no trained model {d}")
    try:
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise CacheError(f"format version {meta.get('format_version')}, this program reads {FORMAT_VERSION}")
        if meta.get("key") != key:
            raise CacheError(f"stored under {key} but records key {meta.get('key')!r}")
        params = np.load(d / "params.npy")
        _check("params", params, (None, None), "f")
        if params.dtype != np.float32:
            raise CacheError(f"params: expected float32, found {params.dtype}")
        log = check_log(meta.get("log"), params.shape[0])
        buffers = {}
        if meta.get("buffers"):
            with np.load(d / "buffers.npz") as z:
                # (reshaped: _readonly makes 0-d arrays, e.g. BatchNorm's num_batches_tracked, 1-d)
                buffers = {k: _readonly(z[k]).reshape(z[k].shape) for k in meta["buffers"]}
    except CacheError as e:
        raise CacheError(f"trained model {d} is not usable: {e}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CacheError(f"trained model {d} is not readable ({e})") from None
    return TrainedModel(key, _readonly(params), log, buffers, meta)
