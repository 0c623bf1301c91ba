"""The general grid path: any model, from its computation graph.

``Traced`` (strategy.py) exports the model with torch.export (trace.py) and writes its graph out
again as a kernel that evaluates K plane points in one pass (build.py), node by node:

=================  ===========================================================================
module             what it holds
=================  ===========================================================================
``values.py``      the three kinds of value (Const, Affine, Batched) and ``Kernel``, the fx
                   graph being written, with mixing (Affine -> Batched) and layout changes
``ops.py``         the rule table and what rules share: binding arguments by schema name,
                   the torch.func.vmap fallback for an operation without a rule
``elementwise.py`` pointwise operations (any op torch tags pointwise), casts, dropout
``shapes.py``      reshaping, picking, joining, reducing along one point's dims
``layers.py``      linear, convolution, normalization, embedding, matmul, attention, pooling
``runtime.py``     the functions the kernel calls on every pass (K points' layers)
``build.py``       the interpreter: exported graph -> kernel, its constants, its memory a point
``trace.py``       torch.export, and the one line that says where and why it stopped
``strategy.py``    the grid strategy ``graph``: prepare, set_plane, losses, the self-check
=================  ===========================================================================

The kernel is an ``fx.GraphModule`` of (a, b): printing ``engine.strategy.kernel.code`` shows
every layer of K points.  Before the first grid row the kernel is checked against the model at
two points; a model the path cannot write (data-dependent Python, a random op in forward, a
kernel that disagrees) is evaluated by torch.func instead, and the engine says why.
"""
from compute.grid.graph.strategy import Traced
from compute.grid.graph.values import NotBatchable

__all__ = ["Traced", "NotBatchable"]
