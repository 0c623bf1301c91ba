"""Grid evaluation: the loss at many points of a plane through weight space.

A point (a, b) of the plane stands for the weights  theta = origin + a*d1 + b*d2.
Two evaluators compute the same numbers:

* ``reference_loss`` -- the plain way, one point at a time: copy the weights into
  the model, run it on the evaluation data, compute the loss.  This is what the
  reference tools do per grid cell; the tests hold the engine to it.
* ``GridEngine`` -- many points per pass.  The pass itself is a *strategy*
  (compute/grid/: one class per way, behind one small interface):

  - ``linear`` (MLPs): the K points' weight matrices built at once and run as
    batched matmuls; the first layer is linear in (a, b),
    W(a,b) x = W0 x + a D1 x + b D2 x, so the three products with the data are
    computed once for the whole grid, and so is the output layer's shape;
  - ``conv`` (ConvNet, VGG): the first convolution's three products once, the
    later convolutions of the K points as one grouped convolution;
  - ``vmap`` (everything else): ``torch.func`` functional_call + vmap, and
    ``loop`` where vmap cannot batch a model.

  BatchNorm uses the running statistics, or with ``batchnorm="batch"`` each
  point's own statistics over the evaluation data, on every path.

  The engine keeps what every strategy shares: the chunk size (points per pass,
  from the memory a point takes), padding the last chunk so torch.compile sees
  one shape, the precision context around each pass (the strategy's one-off
  products always in exact float32), halving the chunk when a GPU runs out of
  memory, and the grid's rows and blocks.

Rows are produced in order, chunk by chunk, so the caller can write them out,
show progress and resume.
"""
from __future__ import annotations

import contextlib
import math
import time
import types
import warnings
from typing import Callable, Iterator

import torch
import torch.nn as nn

from compute import grid
from compute.losses import CROSS_ENTROPY, Loss
from compute.plane.core import Plane


def load_params(model: nn.Module, params: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])


@torch.no_grad()
def reference_loss(model: nn.Module, plane: Plane, a: float, b: float,
                   x: torch.Tensor, y: torch.Tensor | None, batchnorm: str = "running",
                   loss: Loss = CROSS_ENTROPY) -> float:
    """One grid point the plain way: copy the weights in, run the model, compute the loss.

    ``batchnorm="batch"`` normalizes BatchNorm layers with the statistics of ``x`` itself
    (train-mode normalization, running statistics left untouched)."""
    load_params(model, plane.point(a, b))
    model.eval()
    saved = []
    if batchnorm == "batch":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                saved.append((m, m.momentum))
                m.train()
                m.momentum = 0.0             # running = 1 * running + 0 * batch: unchanged
    try:
        # exact float32 on a GPU too (cuDNN's default runs convolutions in TensorFloat-32, about
        # three decimal digits)
        with precision_context(x.device, "fp32"):
            return loss(model, x, y).item()
    finally:
        for m, mom in saved:
            m.momentum = mom
            m.eval()


@contextlib.contextmanager
def _tf32(on: bool):
    """TensorFloat-32 for CUDA matmuls and cuDNN convolutions on or off, restored afterwards.

    Only the legacy flags are used (never torch.backends.*.fp32_precision): torch raises an error
    when a process mixes the two interfaces, and setting a legacy flag keeps both in step."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def precision_context(device: torch.device | str, precision: str = "fp32"):
    """The arithmetic of a grid precision on ``device``.  fp32: true float32 (on CUDA TensorFloat-32
    is switched off, for cuDNN too, whose default allows it); tf32: CUDA matmuls and convolutions in
    TensorFloat-32; bf16: autocast to bfloat16.  On the CPU nothing changes (fp32 only)."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return _tf32(precision == "tf32")


_HEAP_KEPT = False


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory for reuse (once per process; Linux only).

    A pass allocates scratch tensors of a few MB (a 64-wide MLP on 1024 samples: 256 KB a point a
    layer) and frees them at its end.  By default glibc gives such blocks back to the kernel
    (mmap/munmap, or trimming the heap), and the next pass touches fresh pages again: about 120
    page faults a grid point, each zeroing 4 KB, which cost half the time of an eager pass.  With a
    fixed mmap threshold of 32 MB (glibc's largest) and a trim threshold of 256 MB the blocks stay
    in the heap and are reused; the process keeps up to that much freed memory."""
    global _HEAP_KEPT
    if _HEAP_KEPT:
        return
    _HEAP_KEPT = True
    try:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3          # glibc's malloc.h
        libc.mallopt(m_mmap_threshold, 32 * 2**20)
        libc.mallopt(m_trim_threshold, 256 * 2**20)
    except (OSError, AttributeError):                        # not glibc: nothing to do
        pass


def _own_code(method):
    """A bound method as a function with a code object of its own.  torch.compile keeps its compiled
    code per code object, and a process that compiles more engines than its recompile limit (8) of
    one strategy (a comparison's panels, a sweep's values) would run the later ones eagerly without
    a word; each engine's kernel gets its own cache this way."""
    func = method.__func__
    code = func.__code__.replace(co_name=f"{func.__code__.co_name}_{id(method.__self__):x}")
    own = types.FunctionType(code, func.__globals__, code.co_name, func.__defaults__, func.__closure__)
    return own.__get__(method.__self__)


class GridEngine:
    """Evaluates the loss of ``model`` on (x, y) at many points of ``plane``.

    ``method``: "auto" (the first of linear, conv, vmap that fits the model and loss), or one of
    them, or "loop"; ``chunk``: grid points per pass (None: from the memory a point takes);
    ``compile``: the linear and conv kernels through torch.compile; ``precision``: fp32, or on CUDA
    tf32 / bf16; ``batchnorm``: "running" or "batch" statistics; ``accuracy``: ``evaluate`` gives
    the accuracy as a second column."""

    def __init__(self, model: nn.Module, plane: Plane, x: torch.Tensor, y: torch.Tensor | None,
                 chunk: int | None = None, method: str = "auto", compile: bool = False,
                 precision: str = "fp32", batchnorm: str = "running", accuracy: bool = False,
                 loss: Loss = CROSS_ENTROPY):
        self.model = model.eval()
        self.plane = plane
        self.x, self.y = x, y
        self.loss = loss
        self.device = x.device
        if self.device.type == "cpu":
            keep_freed_memory()
        if precision not in ("fp32", "tf32", "bf16"):
            raise ValueError(f"precision must be fp32, tf32 or bf16, got {precision!r}")
        if precision != "fp32" and x.device.type != "cuda":
            raise ValueError(f"grid precision {precision!r} is for CUDA GPUs; this run is on {x.device.type} "
                             "(use fp32, the default)")
        self.precision = precision
        self.accuracy = bool(accuracy)
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        self.batchnorm = batchnorm if has_bn else "running"
        #: why the general path did not run this model (one line), or None
        self.fallback: str | None = None
        self._choose(grid.Problem(model, plane, x, y, loss, self.accuracy, self.batchnorm), method)
        self.chunk = chunk or self.auto_chunk()
        self._kernel = self.strategy.losses
        # torch.compile fuses the elementwise work around the matmuls and convolutions into few
        # sweeps over memory (docs/benchmarks.md: compiled against eager); it costs seconds up
        # front, so the caller asks for it when the grid is large.  Chunks are padded to one fixed
        # size so it compiles once.
        self.compiled = bool(compile) and self.strategy.compilable
        #: seconds of the first compiled pass: compiling, and one pass (None until then)
        self.compile_s: float | None = None
        if self.compiled:
            self._eager = self._kernel
            self._kernel = self._first_compiled_call
            self._compiled_fn = torch.compile(_own_code(self._eager), dynamic=False)

    @property
    def method(self) -> str:
        """The strategy's name: linear, conv, vmap, or loop (also where vmap fell back to it)."""
        return self.strategy.name

    @property
    def target(self) -> torch.Tensor:
        """What a built-in loss compares the output with: y, or the input for unlabelled data."""
        return self.strategy.problem.target

    def _choose(self, problem: grid.Problem, method: str) -> None:
        """The strategy, prepared.  With "auto", a model the general path cannot write (it says why,
        in one line) is evaluated by torch.func instead."""
        try:
            self.strategy = grid.choose(problem, method)
            self._prepare()
        except grid.NotBatchable as e:
            if method != "auto":
                raise
            self.fallback = str(e)
            warnings.warn(f"the grid's general path cannot batch this model: {e}; evaluating it with torch.func")
            self.strategy = grid.Vmap(problem)
            self._prepare()

    def _prepare(self, plane: Plane | None = None) -> None:
        """The strategy's one-off work (the first layer's products with the data), in exact float32
        whatever the grid's precision (on CUDA cuDNN's default would make them TensorFloat-32);
        with ``plane``, that plane's values copied into the tensors held."""
        with torch.no_grad(), precision_context(self.device, "fp32"):
            if plane is None:
                self.strategy.prepare()
            else:
                self.strategy.set_plane(plane)

    def _first_compiled_call(self, a, b):
        """Compile on first use; where compiling fails (no compiler), carry on eagerly."""
        t = time.perf_counter()
        try:
            out = self._compiled_fn(a, b)
            self._kernel = self._compiled_fn
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_s = time.perf_counter() - t
        except torch.OutOfMemoryError:
            raise                # not a compiler failure: evaluate() retries with smaller chunks
        except Exception as e:  # noqa: BLE001 - any compiler failure: the eager path is exact too
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {e}); evaluating eagerly")
            self.compiled = False
            self._kernel = self._eager
            out = self._eager(a, b)
        return out

    # ------------------------------------------------------------------ sizing
    def auto_chunk(self) -> int:
        """Grid points per pass: small enough to stay in cache on a CPU, large on a GPU."""
        cuda = self.device.type == "cuda"
        per_point = self.strategy.point_bytes(cuda)
        if cuda:
            free, _ = torch.cuda.mem_get_info(self.device)
            # memory torch's caching allocator holds but does not use (training's batches) is free
            # to this process, though the driver does not count it
            free += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
            budget = free * 0.5
            return int(max(1, min(4096, budget // per_point)))
        return int(max(1, min(1024, self.strategy.cpu_budget // per_point)))

    # ------------------------------------------------------------------ another plane
    @torch.no_grad()
    def set_plane(self, plane: Plane) -> None:
        """Evaluate on another plane of the same model from now on (a sequence's next grid).

        The values are copied into the tensors the engine already holds (its plane's and the
        precomputed first-layer products), so a compiled kernel keeps working without compiling
        again.  The engine's plane tensors are overwritten: give it a plane it owns."""
        self._prepare(plane)

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def losses(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Loss at each (a[k], b[k]); a, b are 1-D tensors on the engine's device."""
        return self.evaluate(a, b)[:, 0]

    @torch.no_grad()
    def evaluate(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(n, q): loss at each (a[k], b[k]), and with ``accuracy`` the accuracy as a second column.

        Where a chunk does not fit in the GPU's memory (the automatic size is an estimate), the
        chunk size is halved, with a warning, and the call evaluated again; ``self.chunk`` keeps
        the size that worked (the compute stage records it for a resumed run)."""
        while True:
            try:
                return self._evaluate(a, b)
            except torch.OutOfMemoryError:
                if self.chunk <= 1:
                    raise
            # here, outside the handler, the failed pass's tensors (its traceback's) are freed
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            warnings.warn(f"out of memory at {self.chunk} grid points a pass; trying {self.chunk // 2}")
            self.chunk //= 2

    def _evaluate(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = []
        for s in range(0, a.numel(), self.chunk):
            aa, bb = a[s:s + self.chunk], b[s:s + self.chunk]
            n = aa.numel()
            if self.compiled and n < self.chunk:           # pad the last chunk: one compiled shape
                aa = torch.cat([aa, aa[-1:].expand(self.chunk - n)])
                bb = torch.cat([bb, bb[-1:].expand(self.chunk - n)])
            with self._precision():
                out.append(self._kernel(aa, bb)[:n].float().reshape(n, -1))
        return torch.cat(out)

    def _precision(self):
        """The engine's precision (``precision_context``) around each pass."""
        return precision_context(self.device, self.precision)

    def rows_per_block(self, nx: int) -> int:
        """Rows in one block: about eight passes' worth of points."""
        return max(1, math.ceil(self.chunk * 8 / nx))

    def block(self, alpha: torch.Tensor, beta: torch.Tensor, j: int, r: int) -> torch.Tensor:
        """Rows j .. j+r-1 of the grid: (rows, nx), row i at beta[i], column k at alpha[k]."""
        return self.block_all(alpha, beta, j, r)[..., 0]

    def block_all(self, alpha: torch.Tensor, beta: torch.Tensor, j: int, r: int) -> torch.Tensor:
        """Rows j .. j+r-1 with every quantity: (rows, nx, q), loss first, then accuracy if asked."""
        nx = alpha.numel()
        bs = beta[j:j + r]
        out = self.evaluate(alpha.repeat(bs.numel()), bs.repeat_interleave(nx))
        return out.reshape(bs.numel(), nx, -1)

    def rows(self, alpha: torch.Tensor, beta: torch.Tensor, start: int = 0,
             rows_per_block: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (first_row, block of rows (r, nx)) from row ``start`` on."""
        r = rows_per_block or self.rows_per_block(alpha.numel())
        for j in range(start, beta.numel(), r):
            yield j, self.block(alpha, beta, j, r)


def loss_fn_on_plane(model: nn.Module, plane: Plane, x: torch.Tensor, y: torch.Tensor | None,
                     loss: Loss = CROSS_ENTROPY) -> Callable:
    """A differentiable f(ab) -> loss restricted to the plane (for in-plane descents and checks)."""
    buffers = dict(model.named_buffers())

    def f(ab: torch.Tensor) -> torch.Tensor:
        params = {k: plane.origin[k] + ab[0] * plane.d1[k] + ab[1] * plane.d2[k] for k in plane.origin}
        return loss.functional(model, params, buffers, x, y).reshape(())

    return f
