"""Torch's floating-point set-up for the compute stage, in one place."""
from __future__ import annotations


def flush_denormals() -> None:
    """Flush denormal floats to zero.

    Arithmetic on denormals is many times slower, and they appear exactly where the studio looks
    hardest: near a minimum, where activations and probabilities underflow.  The flag lives in each
    thread's floating-point control register, and OpenMP's worker threads copy it from the main
    thread only when they are created, at torch's first parallel operation; set later, it reaches
    the main thread alone and half the work (on 2 cores) keeps running on denormals.  So the stage's
    entry points call this before torch does any work (python -m compute, ``compute.landscape``,
    ``describe``, the bench), and :func:`compute.pipeline.run` calls it again for a caller that
    starts there.  Calling it twice is harmless."""
    import torch
    torch.set_flush_denormal(True)
