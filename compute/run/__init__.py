"""A network's weights over training, and what they are scored on.

* ``types.py``        -- :class:`Task` (model, data, evaluation subset, loss), :class:`Run` (the
                         weights over training: a :class:`Trajectory` of snapshots, the final index,
                         the final buffers), and weights to and from a flat vector.
* ``build.py``        -- the factory: ``build_task`` from the scene; ``build_run`` trains, takes the
                         model store's run, or loads the user's files; a run kept in a partial entry.
* ``train.py``        -- the studio's training loop: schedules, snapshots, the per-snapshot log.
* ``loading.py``      -- a run from the user's checkpoint files or a recorder's run folder.
* ``checkpoints.py``  -- reading one checkpoint safely (``weights_only``), its layouts and step.
* ``recorder.py``     -- :class:`Recorder`, for the user's own training loop; ``log_steps``.
"""
