"""Errors of the compute stage that the command line reports as one line (no traceback)."""
from __future__ import annotations

from studio.scene import SceneError


class DataError(SceneError):
    """A data set the scene names that cannot be loaded (missing files, failed download), or a
    model or data entry of the user's that cannot be used.

    A :class:`~studio.scene.SceneError`: the command lines print its message as ``error: ...``."""
