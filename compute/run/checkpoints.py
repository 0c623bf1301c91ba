"""Reading a user's checkpoint files safely: a scene that points at weights saved by someone's own
training run (``landscape.weights.files``).

Map:
  load_state_dict(path, key, inner)   one file -> {name: tensor} on the CPU; never runs code from it
    _read_torch / _read_safetensors     the two file formats (torch.save zip or legacy, .safetensors)
    _find_state_dict                    the layouts: bare, Lightning ``state_dict``, ``model``, ...,
                                        the one dict of weights among the file's entries, or the
                                        scene's ``weights.key`` (a dotted path into the file)
  fit_state_dict(model, sd, path, key) the file's names -> the model's (``module.``, ``model.``,
                                       ``_orig_mod.`` prefixes), shapes checked, dtypes matched
  step_from_name(path)                 ``epoch=3-step=1200.ckpt`` -> 1200
  order_by_step(paths, steps, key)     the files in training order, each with its step

Every problem is a :class:`CheckpointError` (a :class:`~compute.errors.DataError`: the command line
prints it as one ``error:`` line): the scene key, the file, what is wrong and what to do.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from compute.errors import DataError


class CheckpointError(DataError):
    """A checkpoint file (or run folder) that cannot be used; the message is one line for the user."""


#: where training scripts keep the state dict inside a bigger checkpoint dict, in the order tried:
#: Lightning's ``state_dict``, then the names common in hand-written loops
_LAYOUT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")

#: whole-file key prefixes left by wrappers: DataParallel/DDP, a Lightning module holding
#: ``self.model``, torch.compile's wrapper
_PREFIXES = ("module.", "model.", "_orig_mod.")

#: torch.save's legacy (non-zip) format starts with this magic number, pickled (protocol >= 2)
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")

_SAVE_HINT = "torch.save(model.state_dict(), path)"


# --------------------------------------------------------------------------- loading

class StateDict(dict):
    """A checkpoint's weights (name -> tensor), and where in the file they were found, for messages."""
    #: "the file's 'state_dict'", "the file's top level"
    found_at: str = ""
    #: the file's top-level keys (a dict of entries), or []
    top_keys: list = []


def load_state_dict(path: Path, key: str, inner: str | None = None) -> StateDict:
    """The state dict in ``path``: detached, contiguous CPU tensors keyed by parameter name.
    ``inner``: the dotted path of the entry that holds it (``model_weights``, ``ema.model``), from
    the scene's ``weights.key``; without it the common layouts are tried (``_find_state_dict``).

    A checkpoint is a pickle, and unpickling can run any code the file names; these files come
    from users and from the internet, so only ``weights_only`` loading is used and a file that
    needs more is refused with what to save instead. Any other failure (not a checkpoint, cut
    short, missing) is a CheckpointError too: no input gives a traceback."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{key}: {path} not found; check the path")
    if path.is_dir():
        raise CheckpointError(f"{key}: {path} is a directory, not a checkpoint file; list the "
                              f"checkpoint files themselves")
    if path.suffix == ".safetensors":
        obj = _read_safetensors(path, key)
    else:
        obj = _read_torch(path, key)
    top = [str(k) for k in obj] if isinstance(obj, Mapping) else []
    if inner:
        sd, found_at = _at(obj, inner, path, key), f"the file's {inner!r}"
    else:
        sd, found_at = _find_state_dict(obj)
    if sd is None:
        found = ", ".join(top[:12]) if top else type(obj).__name__
        raise CheckpointError(f"{key}: {path} holds no state dict (found: {found or 'nothing'}); "
                              f"save the weights with {_SAVE_HINT}, or name the entry that holds them with "
                              f"landscape.weights.key")
    out = StateDict({k: v.detach().cpu().contiguous() for k, v in sd.items()})
    out.found_at, out.top_keys = found_at, top
    return out


def _at(obj: object, inner: str, path: Path, key: str) -> dict[str, torch.Tensor]:
    """The tensors under the dotted path ``inner`` of the file's object (weights.key)."""
    where = obj
    for i, part in enumerate(inner.split(".")):
        if not isinstance(where, Mapping) or part not in where:
            here = ".".join(inner.split(".")[:i]) or "the file"
            keys = ", ".join(map(str, list(where)[:12])) if isinstance(where, Mapping) else type(where).__name__
            raise CheckpointError(f"landscape.weights.key: bad value {inner!r}: {path} has no {part!r} in "
                                  f"{here} (its keys: {keys}); name the entry that holds the weights")
        where = where[part]
    sd = _tensors(where)
    if sd is None:
        raise CheckpointError(f"landscape.weights.key: bad value {inner!r}: in {path} it holds a "
                              f"{type(where).__name__} with no tensors, not the weights")
    return sd


def _not_a_checkpoint(path: Path, key: str) -> CheckpointError:
    return CheckpointError(f"{key}: {path} is not a PyTorch checkpoint (not written by torch.save, "
                           f"or cut short or damaged); list the files written by {_SAVE_HINT}")


def _looks_like_torch_save(path: Path) -> bool:
    """Whether the file has the shape of torch.save's output (a zip, or the legacy magic number).

    Checked before unpickling so that arbitrary files never reach the unpickler, and so that
    random bytes that the unpickler happens to read as a class name are not mistaken for a
    checkpoint that needs code execution."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return _LEGACY_MAGIC in f.read(16)


def _read_torch(path: Path, key: str) -> object:
    """torch.load with ``weights_only=True``; its failures turned into one-line errors."""
    try:
        readable = _looks_like_torch_save(path)
    except OSError as e:
        raise CheckpointError(f"{key}: {path} cannot be read ({e.strerror}); check the file's "
                              f"permissions") from None
    if not readable:
        raise _not_a_checkpoint(path, key)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # the weights-only unpickler names the class or function it refused ("GLOBAL x.y");
        # other unpickling errors ("Unsupported operand") mean a damaged file
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        if m is None or _ends_in(path, m.group(1)):
            raise _not_a_checkpoint(path, key) from None
        raise CheckpointError(
            f"{key}: {path} holds Python objects ({m.group(1)}) that only code execution could "
            f"load, which is never done for a scene's files (a pickled model object rather than "
            f"its weights?); save model.state_dict() instead of the model object: "
            f"{_SAVE_HINT}") from None
    except Exception:  # noqa: BLE001  (torch.load's many ways of saying "cut short or damaged")
        raise _not_a_checkpoint(path, key) from None


def _ends_in(path: Path, name: str) -> bool:
    """Whether the file ends inside the class name the unpickler refused: a legacy-format file cut
    short in a GLOBAL opcode (``ctorch\\nLongStorage`` without its closing newline; the unpickler
    drops the last character and refuses "torch.LongStorag") is damaged, not a file that needs
    code execution."""
    with open(path, "rb") as f:
        f.seek(max(path.stat().st_size - 256, 0))
        last_line = f.read().rsplit(b"\n", 1)[-1]
    return last_line.startswith(name.rsplit(".", 1)[-1].encode())


def _read_safetensors(path: Path, key: str) -> dict[str, torch.Tensor]:
    """A .safetensors file (the format has no code in it at all), when the package is there."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError(f"{key}: {path} is a .safetensors file, and reading it needs the "
                              f"safetensors package; pip install safetensors") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception:  # noqa: BLE001  (SafetensorError and friends: all mean a damaged file)
        raise CheckpointError(f"{key}: {path} is not a readable .safetensors file (cut short or "
                              f"damaged); save it again with safetensors.torch.save_file") from None


def _tensors(obj: object) -> dict[str, torch.Tensor] | None:
    """The tensor entries of a mapping (other entries ignored), or None if it has none."""
    if not isinstance(obj, Mapping):
        return None
    sd = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    return sd or None


def _find_state_dict(obj: object) -> tuple[dict[str, torch.Tensor] | None, str]:
    """The state dict inside a checkpoint's top-level object, and where it was -> (tensors, words).

    The layout keys are tried first: a Lightning checkpoint has tensors only under
    ``state_dict``, but a training script's dict may hold a stray tensor (a best loss) beside
    ``model``.  One level of nesting more covers ``{"model": {"state_dict": ...}}``.  Then a
    dict holding one entry that is a dict of weights and other entries that are not (a tutorial's
    ``{"epoch": .., "model_weights": {...}, "optimizer_state_dict": {...}, "loss": ..}``) gives that
    entry; last, the top level's own tensors."""
    if not isinstance(obj, Mapping):
        return None, ""
    for name in _LAYOUT_KEYS:
        inner = obj.get(name)
        if isinstance(inner, Mapping):
            found = _tensors(inner)
            if found:
                return found, f"the file's {name!r}"
            for sub in _LAYOUT_KEYS:
                deeper = inner.get(sub)
                if isinstance(deeper, Mapping) and _tensors(deeper):
                    return _tensors(deeper), f"the file's '{name}.{sub}'"
    nested = {k: _tensors(v) for k, v in obj.items() if isinstance(k, str) and isinstance(v, Mapping)}
    weights = {k: v for k, v in nested.items() if v and len(v) >= 2}
    if len(weights) == 1:
        (name, sd), = weights.items()
        return sd, f"the file's {name!r}"
    return _tensors(obj), "the file's top level"


# --------------------------------------------------------------------------- fitting to the model

def _strip_prefix(keys: list[str], model_keys: set[str]) -> str:
    """The wrapper prefix (possibly several, ``model.module.``) to strip from every key.

    Only a prefix the whole file shares is considered, and the one that makes most keys match
    wins (none on a tie), so a model whose own names start with ``model.`` is left alone."""
    chain, prefix = [""], ""
    while keys:
        nxt = next((p for p in _PREFIXES if all(k.startswith(prefix + p) for k in keys)), None)
        if nxt is None:
            break
        prefix += nxt
        chain.append(prefix)
    return max(chain, key=lambda p: (sum(k[len(p):] in model_keys for k in keys), -len(p)))


def _fit_hint(sd, missing: int, wanted: int) -> str:
    """What to do about weights that do not fit: where they were read and, where most of the model
    is missing (the wrong entry of the file, not the wrong model), the file's keys to choose from."""
    found_at, top = getattr(sd, "found_at", ""), getattr(sd, "top_keys", [])
    if top and missing > wanted / 2:
        keys = ", ".join(top[:12]) + (", ..." if len(top) > 12 else "")
        return (f"the weights were read from {found_at}, and the file's top-level keys are {keys}: name the "
                f"entry that holds the model's weights with landscape.weights.key (e.g. key: {top[0]}; a dotted "
                f"path for a nested one), or check landscape.model")
    return "check landscape.model against the network that was trained"


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def fit_state_dict(model: nn.Module, sd: dict[str, torch.Tensor], path: Path,
                   key: str) -> dict[str, torch.Tensor]:
    """``sd`` keyed and typed as ``model.state_dict()``, for ``model.load_state_dict(.., strict=False)``.

    Any mismatch but a missing BatchNorm ``num_batches_tracked`` (a counter that evaluation never
    reads; files saved from older code or other frameworks lack it) is an error: a landscape drawn
    through half-loaded weights would look plausible and be wrong. Floating tensors take the
    model's dtype (a half-precision file into a float32 model); integer buffers are kept."""
    target = model.state_dict()
    prefix = _strip_prefix(list(sd), set(target))
    named = {k[len(prefix):]: v for k, v in sd.items()}
    missing = [k for k in target if k not in named and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in named if k not in target]
    misshaped = [k for k in target if k in named and named[k].shape != target[k].shape]
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {prefix}{unexpected[0]})")
        if misshaped:
            k = misshaped[0]
            parts.append(f"{len(misshaped)} mis-shaped (first: {k}: {_shape(named[k])} in the file, "
                         f"{_shape(target[k])} in the model)")
        raise CheckpointError(f"{key}: {path} does not fit the scene's model: {', '.join(parts)}; "
                              + _fit_hint(sd, len(missing), len(target)))
    out = {}
    for k, want in target.items():
        if k in named:
            v = named[k]
            out[k] = v.to(want.dtype) if v.is_floating_point() and want.is_floating_point() else v
    return out


# --------------------------------------------------------------------------- steps

def step_from_name(path: Path) -> int | None:
    """The training step in a file name: the last run of digits in the stem, as the usual names
    put it last (``epoch=3-step=1200.ckpt``, ``ckpt-000050.safetensors``); None without digits."""
    runs = re.findall(r"\d+", Path(path).stem)
    return int(runs[-1]) if runs else None


def order_by_step(paths: list[Path], steps: list[int] | None, key: str) -> list[tuple[int, Path]]:
    """``(step, path)`` in training order; the steps given, or read from the names.

    The steps place each snapshot on the film's time axis, so a guess is never made: a name
    without a number, or two files claiming one step, is an error."""
    paths = [Path(p) for p in paths]
    if steps is not None:
        if len(steps) != len(paths):
            raise CheckpointError(f"{key}: {len(paths)} files but {len(steps)} steps in "
                                  f"landscape.weights.steps; give one step per file")
        pairs = [(int(s), p) for s, p in zip(steps, paths)]
    else:
        pairs = []
        for p in paths:
            s = step_from_name(p)
            if s is None:
                raise CheckpointError(f"{key}: the steps cannot be read from the file names ({p} "
                                      f"has no number in its name); give them in "
                                      f"landscape.weights.steps")
            pairs.append((s, p))
    pairs.sort(key=lambda sp: sp[0])
    for (s0, p0), (s1, p1) in zip(pairs, pairs[1:]):
        if s0 == s1:
            raise CheckpointError(f"{key}: {p0} and {p1} are both step {s0}; list each step once "
                                  f"(or give the steps in landscape.weights.steps)")
    return pairs
