"""The branches of compute/ that run only on a CUDA GPU (or under NCCL), exercised on the CPU: the
precision flags, the loss in float32 under bf16, the chunk size from free GPU memory and the retry
when a chunk does not fit, the bench's point counts, and how a torchrun rank takes its GPU."""
from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
import torch
import torch.nn.functional as F

from compute import distributed
from compute.bench import time_engine
from compute.data import spirals
from compute.losses import CROSS_ENTROPY
from compute.plane import Plane
from compute.engine import (GridEngine, precision_context,
                            reference_loss)
from compute.models import convnet, mlp

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def mlp_case(n=200, widths=(16, 16), classes=3):
    torch.manual_seed(0)
    model = mlp(2, list(widths), classes, "tanh")
    x, y = spirals(n, classes, seed=1)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    g = torch.Generator().manual_seed(2)
    d1 = {k: 0.5 * torch.randn(v.shape, generator=g) for k, v in origin.items()}
    d2 = {k: 0.5 * torch.randn(v.shape, generator=g) for k, v in origin.items()}
    return model, Plane(origin, d1, d2), x, y


def conv_case():
    torch.manual_seed(0)
    model = convnet(3, 8, [4, 6], 3, "relu").eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (10,), generator=g)
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1 = {k: 0.3 * torch.randn(v.shape, generator=g) for k, v in origin.items()}
    d2 = {k: 0.3 * torch.randn(v.shape, generator=g) for k, v in origin.items()}
    return model, Plane(origin, d1, d2), x, y


def graph_case():
    """conv_case written with torch's nn.ReLU: the general path."""
    from compute.bench.cases import users_bn_convnet
    model, plane, x, y = conv_case()
    return users_bn_convnet(model).eval(), plane, x, y


def points(k=40, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(k, generator=g) * 2 - 1, torch.rand(k, generator=g) * 2 - 1


@pytest.fixture
def tf32_flags():
    """The global TensorFloat-32 flags (settable without a GPU), put back after the test."""
    b = torch.backends
    saved = b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32
    yield lambda: (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
    b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = saved


def _set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on


# --------------------------------------------------------------------------- precision flags

def test_precision_context_sets_and_restores_the_tf32_flags(tf32_flags):
    _set_tf32(True)                                   # cuDNN's default is True
    with precision_context("cuda", "fp32"):
        assert tf32_flags() == (False, False)
    assert tf32_flags() == (True, True)
    _set_tf32(False)
    with precision_context(torch.device("cuda", 0), "tf32"):
        assert tf32_flags() == (True, True)
    assert tf32_flags() == (False, False)
    with pytest.raises(ZeroDivisionError), precision_context("cuda", "tf32"):
        1 / 0
    assert tf32_flags() == (False, False)            # restored on an error too
    _set_tf32(True)
    with precision_context("cpu", "fp32"):            # the CPU: nothing touched
        assert tf32_flags() == (True, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # without a GPU: "Disabling autocast"
        assert isinstance(precision_context("cuda", "bf16"), torch.autocast)


@pytest.mark.parametrize("case", [mlp_case, conv_case])
def test_first_layer_products_are_exact_float32_whatever_the_precision(case, tf32_flags, monkeypatch):
    """On CUDA the once-computed first-layer products ran under cuDNN's default (TensorFloat-32
    convolutions) even for an fp32 grid; the passes themselves run in the engine's precision."""
    model, plane, x, y = case()
    e = GridEngine(model, plane, x, y, chunk=8)
    seen = []
    conv2d, addmm, bmm = F.conv2d, torch.addmm, torch.bmm
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: (seen.append(tf32_flags()), conv2d(*a, **k))[1])
    monkeypatch.setattr(torch, "addmm", lambda *a, **k: (seen.append(tf32_flags()), addmm(*a, **k))[1])
    monkeypatch.setattr(torch, "bmm", lambda *a, **k: (seen.append(tf32_flags()), bmm(*a, **k))[1])
    e.device = torch.device("cuda", 0)                # its CUDA branches, on CPU tensors
    e.precision = "tf32"
    _set_tf32(True)
    e.set_plane(plane)                                # prepares the first layer again
    prepared = list(seen)
    assert prepared and all(f == (False, False) for f in prepared)
    a, b = points(8)
    _set_tf32(False)
    e.losses(a, b)
    passes = seen[len(prepared):]
    assert passes and all(f == (True, True) for f in passes)
    assert tf32_flags() == (False, False)


def test_reference_loss_is_exact_float32_on_cuda(tf32_flags, monkeypatch):
    model, plane, x, y = conv_case()
    seen = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: (seen.append(tf32_flags()), conv2d(*a, **k))[1])
    _set_tf32(True)

    class FakeCuda(torch.Tensor):          # x claims to be on a GPU; the arithmetic stays on the CPU
        @property
        def device(self):
            return torch.device("cuda", 0)

    ref = reference_loss(model, plane, 0.3, -0.2, x.as_subclass(FakeCuda), y)
    assert seen and all(f == (False, False) for f in seen)
    assert tf32_flags() == (True, True)
    assert ref == pytest.approx(reference_loss(model, plane, 0.3, -0.2, x, y), rel=1e-6)


# --------------------------------------------------------------------------- bf16

def test_bf16_logits_give_a_float32_loss():
    """Under bf16 autocast the last layer's logits are bfloat16; the loss from them must not be
    rounded to bfloat16's 2-3 digits as well."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(5, 64, 10, generator=g) * 4).bfloat16()        # (K, N, C)
    y = torch.randint(0, 10, (64,), generator=g)
    want = torch.stack([F.cross_entropy(lk.float(), y) for lk in logits])
    got = CROSS_ENTROPY.batched(logits, y)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    got = CROSS_ENTROPY.batched_ckn(logits.permute(2, 0, 1).contiguous(), y)  # (C, K, N)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- GPU memory

def test_chunk_from_free_gpu_memory_counts_the_allocators_cache_and_the_weights(monkeypatch):
    model, plane, x, y = mlp_case(n=1024, widths=(64, 64), classes=2)
    e = GridEngine(model, plane, x, y, chunk=8)
    e.device = torch.device("cuda", 0)
    gib = 2**30
    mem = {"free": 1 * gib, "reserved": 3 * gib, "allocated": 1 * gib}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (mem["free"], 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: mem["reserved"])
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: mem["allocated"])
    # a point: 3 x its widest activation (1024 samples x 64 floats) + its largest weight (64 x 64)
    per_point = 3 * 4 * 1024 * 64 + 4 * 64 * 64
    # half of what this process can use: the driver's free memory and the allocator's unused cache
    assert e.auto_chunk() == int(0.5 * (1 + 3 - 1) * gib) // per_point
    mem["reserved"] = mem["allocated"]
    assert e.auto_chunk() == int(0.5 * gib) // per_point
    mem["free"] = 80 * gib
    assert e.auto_chunk() == 4096                     # the cap


def _oom(limit, kernel, sizes):
    def k(a, b):
        sizes.append(a.numel())
        if a.numel() > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (a test)")
        return kernel(a, b)
    return k


@pytest.mark.parametrize("case", [mlp_case, conv_case, graph_case])
def test_a_chunk_that_does_not_fit_is_halved(case):
    model, plane, x, y = case()
    assert GridEngine(model, plane, x, y).method == {mlp_case: "linear", conv_case: "conv", graph_case: "graph"}[case]
    a, b = points(50)
    want = GridEngine(model, plane, x, y, chunk=10).losses(a, b)
    e = GridEngine(model, plane, x, y, chunk=40)
    sizes = []
    e._kernel = _oom(10, e._kernel, sizes)
    with pytest.warns(UserWarning, match="out of memory at 40 grid points a pass; trying 20"):
        got = e.losses(a, b)
    assert e.chunk == 10 and sizes[:3] == [40, 20, 10] and max(sizes[3:]) == 10
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_out_of_memory_in_the_first_compiled_call_is_not_a_compiler_failure():
    """It used to switch the engine to eager evaluation for good ("torch.compile failed")."""
    model, plane, x, y = mlp_case()
    a, b = points(30)
    want = GridEngine(model, plane, x, y, chunk=8).losses(a, b)
    e = GridEngine(model, plane, x, y, chunk=16, compile=True)
    sizes = []
    e._compiled_fn = _oom(8, e._eager, sizes)         # stands in for the compiled kernel
    with pytest.warns(UserWarning, match="out of memory"):
        got = e.losses(a, b)
    assert e.compiled and e.chunk == 8 and e._kernel is e._compiled_fn
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_out_of_memory_at_one_point_a_pass_is_raised():
    model, plane, x, y = mlp_case()
    e = GridEngine(model, plane, x, y, chunk=4)
    e._kernel = _oom(0, e._kernel, [])
    with pytest.warns(UserWarning), pytest.raises(torch.OutOfMemoryError):
        e.losses(*points(6))


# --------------------------------------------------------------------------- the bench's counts

class Counting:
    def __init__(self):
        self.calls = []

    def losses(self, a, b):
        assert a.shape == b.shape
        self.calls.append(a.numel())
        return torch.zeros(a.numel())


@pytest.mark.parametrize("pool,blk", [(20000, 256), (20000, 32768), (1000, 1000)])
def test_bench_counts_the_points_it_evaluated(pool, blk):
    """A GPU's chunk of 4096 points makes a call of 32768, more than the old pool of 20000: the
    slices came back short (or empty) while i * blk points were counted."""
    pts = (torch.linspace(-1, 1, pool), torch.linspace(-1, 1, pool))
    e = Counting()
    done, seconds = time_engine(e, pts, blk, 0.02, torch.device("cpu"))
    assert done == sum(e.calls) and seconds > 0
    assert set(e.calls) == {min(blk, pool)}


# --------------------------------------------------------------------------- torchrun ranks

@pytest.fixture
def fake_torchrun(monkeypatch):
    """Rank 3 of 4 under torchrun, on a machine with ``gpus`` CUDA devices; every call into
    torch.distributed and the CUDA device API is recorded instead of made."""
    calls = []
    state = {"initialized": False, "backend": None}
    for k, v in {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "3"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(distributed, "_HELD", 0)
    d = distributed.dist

    def init_process_group(backend, **kw):
        calls.append(("init", backend, kw))
        state.update(initialized=True, backend=backend)

    monkeypatch.setattr(d, "is_initialized", lambda: state["initialized"])
    monkeypatch.setattr(d, "init_process_group", init_process_group)
    monkeypatch.setattr(d, "get_backend", lambda *a: state["backend"])
    monkeypatch.setattr(d, "barrier", lambda *a, **kw: calls.append(("barrier", kw)))
    monkeypatch.setattr(d, "destroy_process_group", lambda *a: calls.append(("destroy",)))
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: calls.append(("set_device", torch.device(dev))))

    def machine(gpus):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
        return calls
    return machine


@pytest.mark.parametrize("gpus,index", [(4, 3), (2, 1)])
def test_a_gpu_rank_takes_its_own_gpu_before_nccl(fake_torchrun, gpus, index):
    calls = fake_torchrun(gpus)
    g = distributed.init(None)
    gpu = torch.device("cuda", index)
    assert (g.rank, g.world, g.device) == (3, 4, gpu)
    assert calls[0] == ("set_device", gpu)
    assert calls[1][:2] == ("init", "nccl") and calls[1][2]["device_id"] == gpu
    # rank 0 trains while the others wait in a collective: longer than NCCL's 10 minutes
    assert calls[1][2]["timeout"] >= timedelta(hours=2)
    inner = distributed.init(None)                    # nested (a comparison's panels): no second group
    distributed.finish(inner)
    distributed.finish(g)
    assert [c[0] for c in calls].count("init") == 1
    assert [c for c in calls if c[0] in ("barrier", "destroy")] == [
        ("barrier", {"device_ids": [index]}), ("barrier", {"device_ids": [index]}), ("destroy",)]


def test_a_cpu_run_on_a_gpu_machine_uses_gloo_without_devices(fake_torchrun):
    calls = fake_torchrun(2)
    g = distributed.init("cpu")
    assert g.device == torch.device("cpu")
    assert calls[0][:2] == ("init", "gloo") and "device_id" not in calls[0][2]
    assert calls[0][2]["timeout"] >= timedelta(hours=2)
    distributed.finish(g)
    assert calls[1:] == [("barrier", {}), ("destroy",)]


# --------------------------------------------------------------------------- mixed-precision training

@pytest.mark.parametrize("capability,dtype", [((9, 0), torch.bfloat16), ((8, 0), torch.bfloat16),
                                              ((7, 0), torch.float16), ((7, 5), torch.float16)])
def test_amp_takes_bf16_only_where_the_gpu_computes_it(monkeypatch, capability, dtype):
    """A V100 (7.0) or T4 (7.5) only emulates bf16 (torch.cuda.is_bf16_supported() says yes there):
    fp16 with a gradient scaler instead."""
    from compute.run.train import amp_mode
    asked = []
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (asked.append(d), capability)[1])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    got, note = amp_mode({"amp": True}, torch.device("cuda", 1))
    assert got == dtype and note.startswith("bf16" if dtype == torch.bfloat16 else "fp16")
    assert asked == [torch.device("cuda", 1)]        # the training's GPU, not the current one
    assert amp_mode({"amp": False}, torch.device("cuda", 1)) == (None, "off")
