"""From the exported graph to the batched kernel: each node in order becomes a Const, an Affine or
a Batched value (values.py), by its operation's rule (ops.py's table, filled by elementwise.py,
shapes.py and layers.py), with torch.func.vmap for any operation without one.

In-place operations are written out of place, and the value they changed takes the result (what
later readers see in eager mode).  An in-place change of a view of another value cannot be
written so; it stops the build, as a random op in forward does.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch.export.graph_signature import InputKind

from compute.grid.graph import elementwise, layers, shapes  # noqa: F401 - they fill the rule table
from compute.grid.graph.ops import RULES, bind, call_on, tensors_in, vmap_op
from compute.grid.graph.trace import node_location
from compute.grid.graph.values import Affine, Batched, Const, Kernel, NotBatchable

#: ops whose output shares memory with their first argument (an in-place change of it shows there)
_VIEWS = {"aten::view", "aten::_unsafe_view", "aten::reshape", "aten::slice", "aten::select", "aten::transpose",
          "aten::permute", "aten::expand", "aten::unsqueeze", "aten::squeeze", "aten::t", "aten::alias",
          "aten::narrow", "aten::as_strided", "aten::split", "aten::split_with_sizes", "aten::chunk",
          "aten::unbind", "aten::flatten", "aten::unflatten", "aten::diagonal", "aten::view_as"}


@dataclass
class Built:
    """A kernel and what it holds."""
    module: fx.GraphModule
    constants: list[torch.Tensor]
    #: bytes one grid point takes at the kernel's peak (its live Batched values)
    point_bytes: int
    #: bytes of one point's largest Batched value
    widest: int


def build(program, plane, buffers: dict[str, torch.Tensor], inputs: tuple, batchnorm: str,
          prefix: str = "") -> Built:
    """The kernel (a, b) -> K points' output for the exported ``program``, on ``plane`` (dicts of
    origin, d1, d2 by parameter name), the model's ``buffers``, the example ``inputs`` (the
    evaluation data).  ``prefix``: the program's name for the model ("net." when the loss is
    exported around it)."""
    data = next(x for x in torch.utils._pytree.tree_leaves(inputs) if isinstance(x, torch.Tensor))
    kx = Kernel(batchnorm=batchnorm, device=data.device)
    env: dict[fx.Node, object] = {}
    feeds = _inputs(program, plane, buffers, inputs, prefix)
    order = {n: i for i, n in enumerate(program.graph.nodes)}
    view_of: dict[fx.Node, fx.Node] = {}
    result = None
    for node in program.graph.nodes:
        if node.op == "placeholder":
            env[node] = feeds[node.name]
        elif node.op == "call_function":
            try:
                env[node] = _apply(kx, node, env, view_of, order)
                if isinstance(env[node], Batched):
                    kx.readers[env[node].node] = len(node.users)
            except NotBatchable as e:
                where = node_location(node)
                raise NotBatchable(f"{e}{' at ' + where if where and ' at ' not in str(e) else ''}") from None
        elif node.op == "output":
            outs = [v for v in node.args[0]]
            if len(outs) != 1:
                raise NotBatchable(f"the model returns {len(outs)} values; the landscape needs one tensor")
            result = env[outs[0]] if isinstance(outs[0], fx.Node) else Const(outs[0])
        else:
            raise NotBatchable(f"a {node.op} node ({node.target}) in the exported graph")
    if isinstance(result, Const):
        raise NotBatchable("the model's output does not depend on its parameters")
    module = kx.output(result)
    return Built(module, kx.constants, _peak_bytes(kx), max(kx.point_bytes.values(), default=1))


def _inputs(program, plane, buffers, inputs, prefix: str) -> dict[str, object]:
    """Each placeholder's value: parameters Affine (the plane's own tensors), buffers and constants
    Const, the user inputs Const."""
    feeds, users = {}, [x for x in torch.utils._pytree.tree_leaves(inputs) if isinstance(x, torch.Tensor)]
    for spec in program.graph_signature.input_specs:
        name = spec.arg.name
        target = (spec.target or "")[len(prefix):] if spec.target and spec.target.startswith(prefix) else spec.target
        if spec.kind == InputKind.PARAMETER:
            feeds[name] = Affine((plane.origin[target], plane.d1[target], plane.d2[target]))
        elif spec.kind == InputKind.BUFFER:
            feeds[name] = Const(buffers[target])
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            feeds[name] = Const(program.constants[spec.target])
        elif spec.kind == InputKind.USER_INPUT:
            feeds[name] = Const(users.pop(0) if users else None)
        else:
            raise NotBatchable(f"an input of kind {spec.kind.name} in the exported graph")
    return feeds


def _apply(kx: Kernel, node: fx.Node, env: dict, view_of: dict, order: dict):
    if node.target is operator.getitem:
        seq, i = node.args
        v = env[seq]
        return Const(v.value[i]) if isinstance(v, Const) else v[i]
    op = node.target
    if not isinstance(op, torch._ops.OpOverload):
        raise NotBatchable(f"the operation {getattr(op, '__name__', op)}")
    args = fx.node.map_arg(node.args, lambda n: env[n])
    kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
    name = op._schema.name
    mutated = None
    if _in_place(op):
        mutated = node.args[0]
        _check_alias(node, mutated, view_of, order)
        op = _functional(op)
        name = op._schema.name
    elif name in _VIEWS and isinstance(node.args[0], fx.Node):
        view_of[node] = view_of.get(node.args[0], node.args[0])
    bound = bind(op, args, kwargs)
    value = _value(kx, op, name, bound, node)
    if mutated is not None:
        env[mutated] = value
    return value


def _value(kx: Kernel, op, name: str, bound: dict, node: fx.Node):
    varying = any(isinstance(v, (Affine, Batched)) for v in tensors_in(bound))
    r = RULES.get(f"{name}.{op._overloadname}") or RULES.get(name)
    # random ops draw differently from the reference; those with a rule (dropout, attention) are
    # random only with a probability above zero, and their rules refuse that
    if torch.Tag.nondeterministic_seeded in op.tags and r is None:
        raise NotBatchable(f"a random operation in forward ({name.split('::')[1]})")
    if not varying:                                   # the same at every point: computed once, here
        return Const(call_on(op, bound))
    out = node.meta.get("val")
    if r is not None:
        return r(kx, op, bound, out)
    if elementwise.is_pointwise(op):
        return elementwise.pointwise(kx, op, bound, out)
    return vmap_op(kx, op, bound, out)


def _in_place(op) -> bool:
    args = op._schema.arguments
    return bool(args) and args[0].alias_info is not None and args[0].alias_info.is_write \
        and not op._schema.name.endswith("_out")


def _functional(op):
    """relu_ -> relu, add_.Tensor -> add.Tensor, copy_ -> copy."""
    base = op._schema.name.split("::")[1].rstrip("_")
    packet = getattr(torch.ops.aten, base, None)
    overload = getattr(packet, op._overloadname, None) if packet is not None else None
    if overload is None:
        raise NotBatchable(f"the in-place operation {op._schema.name}")
    return overload


def _check_alias(node: fx.Node, target: fx.Node, view_of: dict, order: dict) -> None:
    """An in-place change is written out of place only where no other value shares the memory."""
    at = order[node]
    base = view_of.get(target)
    sharing = [n for n, b in view_of.items() if b is (base or target) and n is not target]
    if base is not None:
        sharing.append(base)
    if any(order[u] > at for n in sharing for u in n.users):
        raise NotBatchable(f"an in-place change of a view ({node.target._schema.name.split('::')[1]})")


def _peak_bytes(kx: Kernel) -> int:
    """The most bytes of one point's Batched values alive at once in the kernel (each value alive from
    the node that makes it to its last user)."""
    nodes = list(kx.graph.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    last = {n: max((index[u] for u in n.users), default=index[n]) for n in nodes}
    live, peak = 0, 0
    ending: dict[int, int] = {}
    for i, n in enumerate(nodes):
        size = kx.point_bytes.get(n, 0)
        live += size
        ending[last[n]] = ending.get(last[n], 0) + size
        peak = max(peak, live)
        live -= ending.pop(i, 0)
    return max(peak, 1)
