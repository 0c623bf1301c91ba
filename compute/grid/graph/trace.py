"""Reading the model's computation: ``torch.export`` of the model (or of the user's loss around it)
on the evaluation data, and what to tell the user when it cannot be read.

Why torch.export and not torch.fx's symbolic tracing: the evaluation data has fixed shapes, so
Python that branches on shapes (``assert T <= block_size``, ``if x.dim() == 4``) just runs, as it
does in eager mode, where symbolic tracing stops at it.  Every layer and function the model uses
arrives as one ATen operation with a schema (``nn.Linear``, ``F.linear`` and ``x @ w.T + b`` alike),
so the batched kernel needs rules per operation, not per module class, function and method
spelling.  Parameters and buffers arrive as named inputs.  Non-strict mode runs the model's own
Python (no bytecode analysis), so whatever runs eagerly is read, except what depends on tensor
values: that is where it stops, and the message says so.
"""
from __future__ import annotations

import contextlib
import io
import linecache
import logging
import re
import traceback
import warnings
from pathlib import Path

import torch

from compute.grid.graph.values import NotBatchable

_TORCH = str(Path(torch.__file__).resolve().parent)
_HERE = str(Path(__file__).resolve().parent)


def export(module: torch.nn.Module, inputs: tuple):
    """The exported program of ``module`` on ``inputs`` (eval mode, gradients on so that layers with
    fused inference kernels, such as nn.MultiheadAttention, show their operations)."""
    try:
        with torch.enable_grad(), _quiet():
            return torch.export.export(module, inputs, strict=False)
    except Exception as e:  # noqa: BLE001 - any failure to read the model: the generic path evaluates it
        raise NotBatchable(failure(e)) from None


#: loggers that print the partial graph of a model that stopped the export (the one line says it all;
#: torch.export also prints that graph to stderr itself)
_LOGGERS = ("torch.fx.experimental.symbolic_shapes", "torch._export", "torch.export", "torch._dynamo")


@contextlib.contextmanager
def _quiet():
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in _LOGGERS]
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        for logger, _ in saved:
            logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for logger, level in saved:
                logger.setLevel(level)


def failure(e: BaseException) -> str:
    """One line: what stopped the export, where in the user's code, and what to change."""
    msg = " ".join(str(e).split())
    where = location(traceback.extract_tb(e.__traceback__))
    data_dependent = re.search(r"data.dependent|GuardOnDataDependent|Could not guard|unbacked", msg, re.I)
    if data_dependent:
        what = "a branch on a tensor's values, or .item() / .tolist()"
        fix = "write the branch with torch.where, or compute the value outside forward"
    else:
        what = f"{type(e).__name__}: {msg[:160]}{'...' if len(msg) > 160 else ''}"
        fix = "write forward as plain tensor operations"
    return f"{what}{' at ' + where if where else ''} ({fix})"


def location(frames) -> str:
    """'model.py:42 `if x.sum() > 0:`': the innermost frame of the user's code (not torch's, not
    this package's), or ''."""
    own = [f for f in frames if not f.filename.startswith((_TORCH, _HERE)) and "site-packages" not in f.filename
           and not f.filename.startswith("<")]
    if not own:
        return ""
    f = own[-1]
    code = re.sub(r"\s+#.*$", "", (f.line or linecache.getline(f.filename, f.lineno)).strip())
    return f"{Path(f.filename).name}:{f.lineno}" + (f" `{code}`" if code else "")


def node_location(node: torch.fx.Node) -> str:
    """Where in the user's code an exported node came from ('model.py:42 `...`'), or ''."""
    text = node.meta.get("stack_trace") or ""
    frames = re.findall(r'File "([^"]+)", line (\d+), in [^\n]*\n\s*([^\n]*)', text)
    frames = [traceback.FrameSummary(f, int(n), "", line=code) for f, n, code in frames]
    return location(frames)
