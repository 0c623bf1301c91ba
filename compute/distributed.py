"""Several processes, GPUs or machines computing one grid, through torch.distributed.

Started by ``torchrun --nproc_per_node=N -m compute SCENE`` (one machine) or
with ``--nnodes``/``--rdzv-endpoint`` on several machines.  Rank 0 trains (or
finds the trained setup), sends it to the others, and owns the cache; the
grid's row blocks are dealt round-robin over the ranks, and each round the
blocks are gathered on rank 0, which writes them and the progress record.
Each block is computed exactly as a single process would compute it (same
chunks, same device kind), so the cache entry equals a one-process run's.
Backends: NCCL when every rank has a CUDA device, else gloo.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


def pick_device(name: str | None = None) -> torch.device:
    """The device a single process computes on: the one named (``--device``), else a CUDA GPU when
    there is one, else the CPU (a torchrun rank's is ``Group.device``)."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Group:
    rank: int = 0
    world: int = 1
    device: torch.device | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


#: how many init() calls the process group is held by: a caller that computes several landscapes in
#: one run (a comparison's panels) holds it around them, so it is set up and torn down once (tearing
#: it down and setting it up again at once can race between the ranks)
_HELD = 0

#: how long a rank waits at a collective.  The other ranks wait for rank 0's training (and at the
#: end for its descents and cache writing) inside one: torch's default, 10 minutes under NCCL (30
#: under gloo), would end a run whose training takes longer.  A rank that dies does not leave the
#: others hanging: torchrun stops the whole group.
TIMEOUT = timedelta(hours=24)


def init(device: str | None = None) -> Group:
    """Join the process group torchrun set up (a group of one when not under torchrun).  Calls
    nest: only the finish() matching the outermost init() destroys the group."""
    global _HELD
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device is None or device.startswith("cuda")) and torch.cuda.is_available()
    if use_cuda:
        # this rank's GPU, current before any collective (else every rank's NCCL work lands on GPU 0)
        dev = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device or "cpu")
    if not dist.is_initialized():
        if use_cuda:
            # device_id binds the group to this GPU (barriers and object collectives use it)
            dist.init_process_group("nccl", timeout=TIMEOUT, device_id=dev)
        else:
            dist.init_process_group("gloo", timeout=TIMEOUT)
    _HELD += 1
    return Group(rank, world, dev)


def broadcast(group: Group, obj: Any) -> Any:
    """Rank 0's object on every rank."""
    if not group.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=group.device if group.device.type == "cuda" else None)
    return box[0]


def gather_block(group: Group, block: torch.Tensor, rows: int, valid: int) -> list[tuple[torch.Tensor, int]]:
    """Gather one (rows, ...) block from each rank on rank 0 -> [(block, valid rows)] in rank order.

    Ranks with less (or nothing) to send pad with NaN; ``valid`` says how many rows are real."""
    if not group.active:
        return [(block, valid)]
    pad = torch.full((rows,) + tuple(block.shape[1:]), float("nan"), dtype=torch.float32, device=block.device)
    pad[:valid] = block[:valid]
    meta = torch.tensor([valid], dtype=torch.int64, device=block.device)
    if group.main:
        bufs = [torch.empty_like(pad) for _ in range(group.world)]
        metas = [torch.empty_like(meta) for _ in range(group.world)]
    else:
        bufs = metas = None
    dist.gather(pad, bufs, dst=0)
    dist.gather(meta, metas, dst=0)
    if not group.main:
        return []
    return [(b, int(m.item())) for b, m in zip(bufs, metas)]


def barrier(group: Group) -> None:
    if group.active:
        _barrier(group)


def _barrier(group: Group) -> None:
    # NCCL's barrier is an all-reduce on a GPU: name this rank's (gloo takes no device ids)
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[group.device.index])
    else:
        dist.barrier()


def finish(group: Group) -> None:
    global _HELD
    if group.active and dist.is_initialized():
        _HELD -= 1
        _barrier(group)
        if _HELD <= 0:
            dist.destroy_process_group()
