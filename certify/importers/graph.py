"""Symbolic evaluation of an ONNX graph into the :class:`~certify.ir.network.Network` IR.

The graph is evaluated once, in topological order, for a single sample (batch axis of size 1), with the values of
:mod:`certify.importers.symbolic`:

* linear operators (Gemm, MatMul, Add/Sub/Mul/Div by constants, Neg, 1x1 Conv, BatchNormalization, Sum) and layout
  operators (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Slice, Gather, Split, Expand, Tile, Identity,
  Dropout, Cast) act on the affine coefficients, so consecutive linear operators fold into one affine map;
* an elementwise nonlinearity makes an :class:`Elementwise` value; expressions over the same pre-activation
  (x * sigmoid(x), the GELU written with Erf, HardSwish written with HardSigmoid) grow until a linear operator or the
  graph output needs the value: then it is identified with an activation and *closes a layer* z -> sigma(z);
* an affine function of the raw input x added to one of the last hidden vector gives the skip S.

Anything else (two activations in parallel, a skip into a hidden layer, a product of two input-dependent tensors,
an operator outside the list) is refused with a message naming the node and operator. Layout operators and every
node whose inputs are all constant are evaluated with ONNX's reference implementation (``onnx.reference``), so
their semantics (negative axes, opset differences) are ONNX's own: a layout operator runs on a tensor of entry
indices and the result says where each output entry comes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from ..ir import activations as acts
from ..ir.activations import Activation, ActivationKind
from ..errors import ModelError, UnsupportedOperatorError
from ..ir.network import Layer, Network
from .identify import identify
from .symbolic import Affine, Const, Elementwise, add, affine_scalar, basis_size, broadcast_shape, const_affine, lift, matmul_const_left, matmul_const_right, relation, scale, shift, transpose_last

_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
_RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
# Layout operators: which inputs carry data (the others must be constant).
_LAYOUT = {
    "Reshape": (0,), "Transpose": (0,), "Squeeze": (0,), "Unsqueeze": (0,), "Flatten": (0,), "Slice": (0,),
    "Gather": (0,), "Split": (0,), "Expand": (0,), "Tile": (0,), "Concat": None,
}
_ACTIVATION_OPS = (
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Gelu", "Tanh", "Sigmoid", "Softplus", "Clip", "HardSigmoid",
    "HardSwish", "Max", "Min",
)
_PRIMITIVE_OPS = {
    "Erf": torch.erf, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal,
    "Abs": torch.abs,
}
_LINEAR_OPS = (
    "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Where", "Add", "Sub", "Mul", "Div", "Neg", "Sum", "MatMul", "Gemm", "Conv", "BatchNormalization", "Identity", "Dropout",
    "Cast", "CastLike", "Shape", "Size", "Pow",
)
SUPPORTED_OPS = tuple(sorted({*_LAYOUT, *_ACTIVATION_OPS, *_PRIMITIVE_OPS, *_LINEAR_OPS, "Constant"}))
_SELU_ALPHA_F32 = 1.67326319217681884765625
_SELU_GAMMA_F32 = 1.05070102214813232421875


@dataclass(frozen=True)
class InputSpec:
    """One graph input: ``size`` entries, ``rank`` 1 ([n]) or 2 ([batch, n] / [1, n]); ``dynamic_batch`` when the
    first axis of a rank-2 input is symbolic; ``dtype`` the numpy dtype the model expects."""

    name: str
    size: int
    rank: int
    dynamic_batch: bool
    dtype: np.dtype


def graph_inputs(model: onnx.ModelProto, source: str) -> list[InputSpec]:
    """The one or two real inputs of the graph (initializers listed as inputs are constants, not inputs)."""
    inits = {t.name for t in model.graph.initializer}
    specs = []
    real = [i for i in model.graph.input if i.name not in inits]
    if not real:
        raise ModelError(f"{source}: the graph has no input; certify needs one input [batch, n] (or states and inputs)")
    if len(real) > 2:
        names = ", ".join(repr(i.name) for i in real)
        raise ModelError(
            f"{source}: the graph has {len(real)} inputs ({names}); certify takes one input x, or two (states, then "
            "exogenous inputs); merge the others into these"
        )
    for inp in real:
        t = inp.type.tensor_type if inp.type.HasField("tensor_type") else None
        if t is None or t.elem_type not in _FLOAT_TYPES:
            raise ModelError(f"{source}: input {inp.name!r} is not a floating-point tensor; certify needs real inputs")
        if not t.HasField("shape"):
            raise ModelError(f"{source}: input {inp.name!r} has no declared shape; export it with shape [batch, n]")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        if len(dims) == 1 and dims[0]:
            specs.append(InputSpec(inp.name, dims[0], 1, False, helper.tensor_dtype_to_np_dtype(t.elem_type)))
        elif len(dims) == 2 and dims[1] and dims[0] in (None, 1):
            specs.append(
                InputSpec(inp.name, dims[1], 2, dims[0] is None, helper.tensor_dtype_to_np_dtype(t.elem_type))
            )
        else:
            raise ModelError(
                f"{source}: input {inp.name!r} has shape {shown}; certify needs [batch, n], [1, n] or [n] with a "
                "fixed n"
            )
    return specs


def _describe(node: onnx.NodeProto, index: int) -> str:
    name = node.name or f"#{index} -> {node.output[0] if node.output else '?'}"
    return f"node {name!r} ({node.op_type})"


def _attrs(node: onnx.NodeProto) -> dict:
    """Node attributes; a float attribute (stored as float32) becomes the shortest decimal that rounds to it, the
    value the author wrote (LeakyReLU 0.2, not 0.20000000298): a change far below float32 resolution."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = float(str(np.float32(v))) if a.type == onnx.AttributeProto.FLOAT else v
    return out


class _Importer:
    """One symbolic pass over a graph; ``layers``/``widths`` grow as activations close layers."""

    def __init__(self, model: onnx.ModelProto, source: str):
        self.model = model
        self.source = source
        self.opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
        self.layers: list[Layer] = []
        self.widths: list[int] = []
        self.closed_by: list[str] = []
        self.values: dict[str, object] = {}
        self.materialized: dict[Elementwise, Affine] = {}
        self.node_desc = ""
        self.needed: set[str] = set()
        self.specs = graph_inputs(model, source)
        self.n_in = sum(s.size for s in self.specs)

    # ------------------------------------------------------------------ messages
    def fail(self, msg: str, kind=ModelError):
        return kind(f"{self.source}: {self.node_desc}: {msg}" if self.node_desc else f"{self.source}: {msg}")

    # ------------------------------------------------------------------ entry
    def run(self, n_states: int | None) -> Network:
        graph = self.model.graph
        if len(graph.output) != 1:
            raise self.fail(
                f"the graph has {len(graph.output)} outputs; certify needs exactly one output f(x) (a vector)"
            )
        if len(graph.sparse_initializer):
            raise self.fail("sparse initializers are not supported; store the weights as dense tensors")
        for init in graph.initializer:
            self.values[init.name] = Const(numpy_helper.to_array(init))
        offset = 0
        for spec in self.specs:
            shape = (1, spec.size) if spec.rank == 2 else (spec.size,)
            coef = np.zeros((self.n_in, spec.size))
            coef[offset:offset + spec.size] = np.eye(spec.size)
            self.values[spec.name] = Affine(0, coef.reshape(self.n_in, *shape), np.zeros(shape))
            offset += spec.size
        nodes = list(graph.node)
        self.needed = {graph.output[0].name}
        keep = [False] * len(nodes)
        for i in range(len(nodes) - 1, -1, -1):
            if any(o in self.needed for o in nodes[i].output):
                keep[i] = True
                self.needed.update(n for n in nodes[i].input if n)
        for i, node in enumerate(nodes):
            if keep[i]:
                self.node_desc = _describe(node, i)
                try:
                    self._node(node)
                except ModelError as e:
                    if str(e).startswith(f"{self.source}: "):
                        raise
                    raise type(e)(f"{self.source}: {self.node_desc}: {e}") from None
                except (ValueError, IndexError) as e:  # numpy on shapes that do not fit
                    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise self.fail(f"shapes do not fit ({text})") from None
                except Exception as e:  # never a traceback from a bad file: name the node and keep the cause
                    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    raise self.fail(
                        f"cannot import this node ({type(e).__name__}: {text}); please report this model"
                    ) from e
        self.node_desc = ""
        return self._finish(graph.output[0].name, n_states)

    def _node(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(
                f"operator domain {node.domain!r} is not supported; export with standard ONNX operators only "
                f"(supported: {', '.join(SUPPORTED_OPS)})",
                UnsupportedOperatorError,
            )
        inputs = []
        for name in node.input:
            if not name:
                inputs.append(None)
            elif name not in self.values:
                raise self.fail(f"input tensor {name!r} is produced by no earlier node (the graph is not sorted)")
            else:
                inputs.append(self.values[name])
        if node.op_type in _RANDOM_OPS:
            raise self.fail("random operators cannot be verified", UnsupportedOperatorError)
        if all(v is None or isinstance(v, Const) for v in inputs):
            outs = self._fold(node, inputs)
        else:
            handler = getattr(self, f"_op_{node.op_type}", None)
            if handler is None and node.op_type in _LAYOUT:
                outs = self._layout(node, inputs)
            elif handler is None and node.op_type in _PRIMITIVE_OPS:
                outs = [self._primitive(_PRIMITIVE_OPS[node.op_type], inputs[0])]
            elif handler is None:
                raise self.fail(
                    f"operator {node.op_type} is not supported on input-dependent tensors; supported operators: "
                    f"{', '.join(SUPPORTED_OPS)}",
                    UnsupportedOperatorError,
                )
            else:
                outs = handler(node, inputs, _attrs(node))
        for i, name in enumerate(node.output):
            if not name:
                continue
            if i >= len(outs) or outs[i] is None:
                if name in self.needed:
                    raise self.fail(f"output {i} ({name!r}) of this operator is not supported", UnsupportedOperatorError)
                continue
            self.values[name] = outs[i]

    # ------------------------------------------------------------------ reference evaluation
    def _reference(self, node: onnx.NodeProto, feeds: list) -> list[np.ndarray]:
        from onnx.reference import ReferenceEvaluator

        names = [f"in{i}" if n else "" for i, n in enumerate(node.input)]
        outs = [f"out{i}" if n else "" for i, n in enumerate(node.output)]
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(names)
        del copy.output[:]
        copy.output.extend(outs)
        g = helper.make_graph(
            [copy], "fold",
            [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in names if n],
            [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in outs if n],
        )
        m = helper.make_model(g, opset_imports=self.opsets or [helper.make_opsetid("", 17)])
        try:
            res = ReferenceEvaluator(m).run(None, {n: v for n, v in zip(names, feeds) if n})
        except Exception as e:  # a constant subgraph the reference implementation rejects: a broken model
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise self.fail(f"cannot evaluate this operator on its constant inputs ({first})") from None
        it = iter(res)
        return [next(it) if n else None for n in outs]

    def _fold(self, node, inputs) -> list:
        feeds = [None if v is None else v.value for v in inputs]
        return [None if r is None else Const(np.asarray(r)) for r in self._reference(node, feeds)]

    def _layout(self, node, inputs) -> list:
        """A layout operator on symbolic data: run it on entry indices, then gather coefficients."""
        data_pos = _LAYOUT[node.op_type]
        if data_pos is None:
            data_pos = tuple(range(len(inputs)))
        data = {}
        for i, v in enumerate(inputs):
            if v is None:
                continue
            if i in data_pos:
                data[i] = self._affine_or_const(v)
            elif not isinstance(v, Const):
                raise self.fail(f"input {i} (a shape, index or axis) depends on the model input; it must be constant")
        symbolic = [v for v in data.values() if isinstance(v, Affine)]
        level = self._common_level(symbolic)
        pool_coef, pool_off, feeds, start = [], [], [], 0
        nb = basis_size(level, self.n_in, self.widths)
        for i, v in enumerate(inputs):
            if i in data:
                a = data[i]
                a = lift(a, level, self.n_in, self.widths) if isinstance(a, Affine) else (
                    const_affine(a.value, level, self.n_in, self.widths))
                pool_coef.append(a.coef.reshape(nb, a.size))
                pool_off.append(a.offset.ravel())
                feeds.append((start + np.arange(a.size, dtype=np.float64)).reshape(a.shape))
                start += a.size
            else:
                feeds.append(None if v is None else v.value)
        coef_all = np.concatenate(pool_coef, axis=1)
        off_all = np.concatenate(pool_off)
        outs = []
        for idx in self._reference(node, feeds):
            if idx is None:
                outs.append(None)
                continue
            ii = np.rint(np.asarray(idx, dtype=np.float64)).astype(np.int64)
            outs.append(Affine(level, coef_all[:, ii].reshape(nb, *ii.shape), off_all[ii]))
        return outs

    # ------------------------------------------------------------------ levels and materialisation
    def _common_level(self, values: list[Affine]) -> int:
        levels = {v.level for v in values}
        top = max(levels, default=0)
        if levels - {0, top}:
            raise self.fail(
                "combines values from different hidden layers (a skip connection between hidden layers); certify "
                "supports a chain of (affine, activation) steps with a linear skip from the input to the output only"
            )
        return top

    def _affine_or_const(self, v):
        if isinstance(v, Elementwise):
            return self._materialize(v)
        return v

    def _affine(self, v) -> Affine:
        v = self._affine_or_const(v)
        if isinstance(v, Const):
            raise self.fail("this operator's data input must depend on the model input (its parameters do)",
                            UnsupportedOperatorError)
        return v

    def _identify_expr(self, e: Elementwise):
        """(sigma, a, c, z): e = scale * (a sigma(z) + c) + shift, with z = base or one of e's variables; or None."""
        m = max([len(leaf.slopes) for leaf in e.leaves if leaf.kind is ActivationKind.PRELU] + [1])
        for c, d in _merge(((1.0, 0.0),), e.args):
            if (c, d) == (1.0, 0.0):
                found = _identify(e.fn, e.leaves, m)
            else:  # look for the activation in the variable s = c * t + d
                found = _identify(lambda s, fn=e.fn, c=c, d=d: fn((s - d) / c), e.leaves, m)
            if found is not None:
                return (*found, affine_scalar(e.base, c, d))
        return None

    def _identifiable(self, e: Elementwise) -> bool:
        return self._identify_expr(e) is not None

    def _materialize(self, e: Elementwise) -> Affine:
        """Identify the expression with an activation, close a layer z -> sigma(z), return sigma(z) as Affine."""
        if e in self.materialized:
            return self.materialized[e]
        z = e.base
        top = len(self.layers)
        nodes = ", ".join(e.nodes)
        if z.level != top:
            raise self.fail(
                f"the activation [{nodes}] is applied to a value computed before the activation "
                f"[{self.closed_by[z.level]}]: two activations in parallel (or a skip into a hidden layer); certify "
                "supports a chain of (affine, activation) steps with a linear skip to the output only"
            )
        if e.bare:
            act, a, c = e.leaves[0], 1.0, 0.0
        else:
            found = self._identify_expr(e)
            if found is None:
                names = ", ".join(sorted(acts.CATALOGUE))
                raise self.fail(
                    f"the elementwise expression built by [{nodes}] is not an activation certify knows ({names}); "
                    "export the activation as a single standard operator",
                    UnsupportedOperatorError,
                )
            act, a, c, z = found
        if act.kind is ActivationKind.IDENTITY and not e.bare:
            out = affine_scalar(z, a, c)
        else:
            n_h = z.coef.shape[0] if z.level == 0 else self.widths[z.level - 1]
            if z.level > 0 and np.any(z.coef[n_h:] != 0):
                raise self.fail(
                    f"the activation [{nodes}] is applied to a sum that includes the raw input (a skip into a hidden "
                    "layer); certify supports a linear skip to the output only"
                )
            m = z.size
            weight = z.coef[:n_h].reshape(n_h, m).T
            self.layers.append(Layer(weight, z.offset.ravel(), act))
            self.widths.append(m)
            self.closed_by.append(nodes)
            coef = np.concatenate([np.eye(m), np.zeros((self.n_in, m))]).reshape(m + self.n_in, *z.shape)
            out = affine_scalar(Affine(top + 1, coef, np.zeros(z.shape)), a, c)
        out = affine_scalar(out, e.scale, e.shift)
        self.materialized[e] = out
        return out

    # ------------------------------------------------------------------ elementwise expressions
    def _leaf(self, act: Activation, v, outer=(1.0, 0.0)) -> Elementwise:
        """An activation operator applied to ``v``: a new expression (bare unless ``v`` is a composite)."""
        if isinstance(v, Elementwise) and (v.bare or self._identifiable(v)):
            v = self._materialize(v)  # an activation of an activation: two layers
        if isinstance(v, Elementwise):
            inner = v.full()
            e = Elementwise(v.base, lambda t: act.value(inner(t)), _merge(v.leaves, (act,)), False,
                            v.nodes + (self.node_desc,), args=v.args)
        else:
            e = Elementwise(v, act.value, (act,), True, (self.node_desc,), args=((1.0, 0.0),))
        return e.outer(*outer)

    def _primitive(self, fn, v) -> Elementwise:
        if isinstance(v, Elementwise):
            inner = v.full()
            return Elementwise(v.base, lambda t: fn(inner(t)), v.leaves, False, v.nodes + (self.node_desc,),
                               args=v.args)
        return Elementwise(v, fn, (), False, (self.node_desc,), args=((1.0, 0.0),))

    def _combine_all(self, combine, values: list, base: Affine) -> Elementwise | None:
        """``combine(f_1(t), ..., f_k(t))`` over ``base``, or None when some value is not a function of it."""
        fns, leaves, nodes, args = [], (), (), ()
        for v in values:
            f = self._as_fn(v, base)
            if f is None:
                return None
            fns.append(f)
            if isinstance(v, Affine):
                args = _merge(args, (relation(base, v),))
            elif isinstance(v, Elementwise):
                c, d = relation(base, v.base)
                leaves, nodes = _merge(leaves, v.leaves), _merge(nodes, v.nodes)
                args = _merge(args, ((c, d),) + tuple((ci * c, ci * d + di) for ci, di in v.args))
        return Elementwise(base, lambda t: combine(*(f(t) for f in fns)), leaves, False,
                           nodes + (self.node_desc,), args=args)

    def _as_fn(self, v, base: Affine):
        """``v`` as a function of t = base, or None (constants count only when they act as scalars)."""
        if isinstance(v, Const):
            s = v.scalar()
            if s is None or broadcast_shape(v.shape, base.shape) != base.shape:
                return None
            return lambda t: torch.full_like(t, s)
        if isinstance(v, Affine):
            rel = relation(base, v)
            if rel is None:
                return None
            c, d = rel
            return lambda t: c * t + d
        rel = relation(base, v.base)
        if rel is None:
            return None
        c, d = rel
        inner = v.full()
        if c == 1.0 and d == 0.0:
            return inner
        return lambda t: inner(c * t + d)

    def _binary(self, op: str, a, b):
        """Add, Sub, Mul or Div of two values (not both constant)."""
        if isinstance(a, Elementwise) or isinstance(b, Elementwise):
            out = self._expr_binary(op, a, b)
            if out is not None:
                return out
            a, b = self._affine_or_const(a), self._affine_or_const(b)
        if op in ("Add", "Sub"):
            sign = 1.0 if op == "Add" else -1.0
            if isinstance(b, Const):
                return shift(a, sign * np.asarray(b.value, dtype=np.float64))
            if isinstance(a, Const):
                return shift(scale(b, np.array(sign)), a.value)
            self._common_level([a, b])
            return add(a, scale(b, np.array(sign)) if sign < 0 else b, self.n_in, self.widths)
        if op == "Mul":
            if isinstance(b, Const):
                return scale(a, b.value)
            if isinstance(a, Const):
                return scale(b, a.value)
        if op == "Div":
            if isinstance(b, Const):
                d = np.asarray(b.value, dtype=np.float64)
                if np.any(d == 0):
                    raise self.fail("divides by a constant that contains zeros")
                return scale(a, 1.0 / d)
            if isinstance(a, Const):
                s = a.scalar()
                if s is None:
                    raise self.fail("divides a non-scalar constant by an input-dependent tensor", UnsupportedOperatorError)
                return Elementwise(b, lambda t: s / t, (), False, (self.node_desc,))
        # Mul or Div of two input-dependent tensors: only elementwise functions of one pre-activation.
        out = self._combine_all(_OPS[op], [a, b], a)
        if out is None:
            raise self.fail(
                f"{'multiplies' if op == 'Mul' else 'divides'} two input-dependent tensors that are not functions of "
                "the same pre-activation; certify represents products only inside activations (x * sigmoid(x))",
                UnsupportedOperatorError,
            )
        return out

    def _expr_binary(self, op: str, a, b):
        """Keep the result an expression when both sides are functions of one pre-activation; None otherwise."""
        e = a if isinstance(a, Elementwise) else b
        other = b if e is a else a
        if op in ("Add", "Sub") and e.bare and isinstance(other, Affine):
            return None  # z + sigma(z): an activation plus an affine term (a skip), not a new activation
        if isinstance(other, Const):
            s = other.scalar()
            if s is not None and broadcast_shape(other.shape, e.shape) == e.shape:
                if op == "Add":
                    return e.outer(1.0, s)
                if op == "Mul":
                    return e.outer(s, 0.0)
                if op == "Sub":
                    return e.outer(1.0, -s) if e is a else e.outer(-1.0, s)
                if op == "Div" and e is a:
                    if s == 0:
                        raise self.fail("divides by zero")
                    return e.outer(1.0 / s, 0.0)
        return self._combine_all(_OPS[op], [a, b], _pick_base(a, b))

    def _compare(self, node, inputs, fn):
        a, b = inputs[:2]
        out = self._combine_all(fn, [a, b], _pick_base(a, b))
        if out is None:
            raise self.fail("compares tensors that are not functions of one pre-activation", UnsupportedOperatorError)
        return [out]

    def _op_Greater(self, node, inputs, attrs):
        return self._compare(node, inputs, torch.gt)

    def _op_Less(self, node, inputs, attrs):
        return self._compare(node, inputs, torch.lt)

    def _op_GreaterOrEqual(self, node, inputs, attrs):
        return self._compare(node, inputs, torch.ge)

    def _op_LessOrEqual(self, node, inputs, attrs):
        return self._compare(node, inputs, torch.le)

    def _op_Where(self, node, inputs, attrs):
        cond, a, b = inputs
        if isinstance(cond, Const):  # a fixed mask: a * mask + b * (1 - mask)
            mask = np.asarray(cond.value).astype(bool)
            parts = [
                Const(np.where(m, v.value, 0)) if isinstance(v, Const) else self._binary("Mul", v, Const(m * 1.0))
                for v, m in ((a, mask), (b, ~mask))
            ]
            if all(isinstance(p, Const) for p in parts):
                return [Const(parts[0].value + parts[1].value)]
            return [self._binary("Add", *parts)]
        out = self._combine_all(torch.where, [cond, a, b], _pick_base(a, b, cond))
        if out is None:
            raise self.fail("Where over tensors that are not functions of one pre-activation",
                            UnsupportedOperatorError)
        return [out]

    # ------------------------------------------------------------------ arithmetic operators
    def _op_Add(self, node, inputs, attrs):
        return [self._binary("Add", *inputs[:2])]

    def _op_Sub(self, node, inputs, attrs):
        return [self._binary("Sub", *inputs[:2])]

    def _op_Mul(self, node, inputs, attrs):
        return [self._binary("Mul", *inputs[:2])]

    def _op_Div(self, node, inputs, attrs):
        return [self._binary("Div", *inputs[:2])]

    def _op_Sum(self, node, inputs, attrs):
        acc = inputs[0]
        for v in inputs[1:]:
            acc = self._binary("Add", acc, v) if not (isinstance(acc, Const) and isinstance(v, Const)) else Const(
                acc.value + v.value)
        return [acc]

    def _op_Neg(self, node, inputs, attrs):
        v = inputs[0]
        if isinstance(v, Elementwise):
            return [v.outer(-1.0, 0.0)]
        return [scale(v, np.array(-1.0))]

    def _op_Pow(self, node, inputs, attrs):
        base, expo = inputs
        if not isinstance(expo, Const) or expo.scalar() is None:
            raise self.fail("only a constant scalar exponent is supported", UnsupportedOperatorError)
        p = expo.scalar()
        if p == 1.0:
            return [base]
        return [self._primitive(lambda t: torch.pow(t, p), base)]

    def _op_Identity(self, node, inputs, attrs):
        return [inputs[0]]

    def _op_Dropout(self, node, inputs, attrs):
        if len(inputs) > 2 and inputs[2] is not None:
            mode = inputs[2]
            if not isinstance(mode, Const):
                raise self.fail("training_mode depends on the input")
            if bool(np.asarray(mode.value).ravel()[0]):
                raise self.fail("Dropout in training mode is random; export the model in eval mode", UnsupportedOperatorError)
        return [inputs[0]]

    def _op_Cast(self, node, inputs, attrs):
        if attrs.get("to") not in _FLOAT_TYPES:
            raise self.fail("casts an input-dependent tensor to a non-float type", UnsupportedOperatorError)
        return [inputs[0]]

    def _op_CastLike(self, node, inputs, attrs):
        target = inputs[1]
        if isinstance(target, Const) and not np.issubdtype(target.value.dtype, np.floating):
            raise self.fail("casts an input-dependent tensor to a non-float type", UnsupportedOperatorError)
        return [inputs[0]]

    def _op_Shape(self, node, inputs, attrs):
        return [Const(np.asarray(r)) for r in self._reference(node, [np.zeros(inputs[0].shape, dtype=np.float32)])]

    _op_Size = _op_Shape

    def _op_MatMul(self, node, inputs, attrs):
        a, b = (self._affine_or_const(v) for v in inputs[:2])
        if isinstance(a, Affine) and isinstance(b, Affine):
            raise self.fail("multiplies two input-dependent tensors (bilinear); certify needs constant weights",
                            UnsupportedOperatorError)
        if isinstance(a, Affine):
            return [matmul_const_right(a, b.value)]
        return [matmul_const_left(a.value, b)]

    def _op_Gemm(self, node, inputs, attrs):
        a, b = (self._affine_or_const(v) for v in inputs[:2])
        c = inputs[2] if len(inputs) > 2 else None
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        ta, tb = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
        if isinstance(a, Affine) and isinstance(b, Affine):
            raise self.fail("multiplies two input-dependent tensors (bilinear); certify needs constant weights",
                            UnsupportedOperatorError)
        if len(a.shape) != 2 or len(b.shape) != 2:
            raise self.fail(f"Gemm needs 2-D operands, got shapes {a.shape} and {b.shape}")
        if isinstance(a, Affine):
            y = affine_scalar(matmul_const_right(transpose_last(a) if ta else a, b.value.T if tb else b.value),
                              alpha, 0.0)
        elif isinstance(b, Affine):
            y = affine_scalar(matmul_const_left(a.value.T if ta else a.value, transpose_last(b) if tb else b),
                              alpha, 0.0)
        else:  # only the bias depends on the input
            av, bv = (np.asarray(v.value, dtype=np.float64) for v in (a, b))
            y = Const(alpha * ((av.T if ta else av) @ (bv.T if tb else bv)))
            cc = self._affine_or_const(c)
            return [self._binary("Add", y, scale(cc, np.array(beta)))]
        if c is not None:
            c = self._affine_or_const(c)
            if isinstance(c, Const):
                y = shift(y, beta * np.asarray(c.value, dtype=np.float64))
            else:
                y = add(y, scale(c, np.array(beta)), self.n_in, self.widths)
            if len(y.shape) != 2:
                raise self.fail(f"Gemm bias broadcasts to shape {y.shape}")
        return [y]

    def _op_Conv(self, node, inputs, attrs):
        x = self._affine_or_const(inputs[0])
        w = inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        if not isinstance(x, Affine) or not isinstance(w, Const) or (b is not None and not isinstance(b, Const)):
            raise self.fail("Conv needs constant weights and bias", UnsupportedOperatorError)
        wv = np.asarray(w.value, dtype=np.float64)
        if wv.ndim < 3 or any(k != 1 for k in wv.shape[2:]):
            raise self.fail(
                f"Conv with kernel shape {list(wv.shape[2:])} is not 1x1; certify supports only 1x1 convolutions "
                "(a Linear layer on a [1, C, 1, 1] tensor)",
                UnsupportedOperatorError,
            )
        spatial = x.shape[2:]
        if len(x.shape) != wv.ndim or len(x.shape) < 3:
            raise self.fail(f"Conv input of shape {x.shape} does not fit weights of shape {wv.shape}")
        if any(p != 0 for p in attrs.get("pads", [])):
            raise self.fail("Conv with padding is not supported (a 1x1 convolution needs none)", UnsupportedOperatorError)
        if any(s != 1 for s in attrs.get("strides", [])) and any(d != 1 for d in spatial):
            raise self.fail("Conv with strides on a spatial input is not supported", UnsupportedOperatorError)
        group = int(attrs.get("group", 1))
        o, cg = wv.shape[0], wv.shape[1]
        c_in = x.shape[1]
        if cg * group != c_in or o % group:
            raise self.fail(f"Conv weights of shape {wv.shape} (group {group}) do not fit an input with {c_in} channels")
        full = np.zeros((o, c_in))
        og = o // group
        for g in range(group):
            full[g * og:(g + 1) * og, g * cg:(g + 1) * cg] = wv[g * og:(g + 1) * og, :, ...].reshape(og, cg)
        coef = np.einsum("bnc...,oc->bno...", x.coef, full)
        off = np.einsum("nc...,oc->no...", x.offset, full)
        y = Affine(x.level, coef, off)
        if b is not None:
            y = shift(y, np.asarray(b.value, dtype=np.float64).reshape(o, *([1] * len(spatial))))
        return [y]

    def _op_BatchNormalization(self, node, inputs, attrs):
        x = self._affine(inputs[0])
        if any(not isinstance(v, Const) for v in inputs[1:5]):
            raise self.fail("BatchNormalization needs constant scale, bias, mean and variance")
        if int(attrs.get("training_mode", 0)):
            raise self.fail("BatchNormalization in training mode; export the model in eval mode",
                            UnsupportedOperatorError)
        if len(x.shape) < 2:
            raise self.fail(f"BatchNormalization needs an input [N, C, ...], got shape {x.shape}")
        g, bb, mean, var = (np.asarray(v.value, dtype=np.float64) for v in inputs[1:5])
        eps = float(attrs.get("epsilon", 1e-5))
        s = g / np.sqrt(var + eps)
        tail = [1] * (len(x.shape) - 2)
        y = scale(x, s.reshape(-1, *tail))
        return [shift(y, (bb - mean * s).reshape(-1, *tail))]

    # ------------------------------------------------------------------ activation operators
    def _op_Relu(self, node, inputs, attrs):
        return [self._leaf(acts.relu(), inputs[0])]

    def _op_LeakyRelu(self, node, inputs, attrs):
        return [self._leaf(acts.leaky_relu(float(attrs.get("alpha", 0.01))), inputs[0])]

    def _op_PRelu(self, node, inputs, attrs):
        x, slope = inputs
        if not isinstance(slope, Const):
            raise self.fail("PRelu slope depends on the input")
        x = self._materialize(x) if isinstance(x, Elementwise) and x.bare else x
        shape = x.shape
        try:
            s = np.broadcast_to(np.asarray(slope.value, dtype=np.float64), shape).ravel()
        except ValueError:
            raise self.fail(f"PRelu slope of shape {slope.shape} does not fit an input of shape {shape}") from None
        slopes = s[:1] if np.all(s == s[0]) else s
        return [self._leaf(acts.prelu(slopes), x)]

    def _op_Elu(self, node, inputs, attrs):
        alpha = float(attrs.get("alpha", 1.0))
        if not alpha > 0:
            raise self.fail(f"Elu with alpha = {alpha} is not supported (needs alpha > 0)", UnsupportedOperatorError)
        return [self._leaf(acts.elu(alpha), inputs[0])]

    def _op_Selu(self, node, inputs, attrs):
        alpha = float(attrs.get("alpha", _SELU_ALPHA_F32))
        gamma = float(attrs.get("gamma", _SELU_GAMMA_F32))
        if abs(alpha - acts.SELU_ALPHA) <= 1e-6 * acts.SELU_ALPHA and abs(gamma - acts.SELU_SCALE) <= 1e-6:
            return [self._leaf(acts.selu(), inputs[0])]
        if not alpha > 0:
            raise self.fail(f"Selu with alpha = {alpha} is not supported (needs alpha > 0)", UnsupportedOperatorError)
        return [self._leaf(acts.elu(alpha), inputs[0], (gamma, 0.0))]  # gamma * elu_alpha

    def _op_Gelu(self, node, inputs, attrs):
        approx = attrs.get("approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else str(approx)
        if approx not in ("none", "tanh"):
            raise self.fail(f"Gelu approximate={approx!r} is not supported", UnsupportedOperatorError)
        return [self._leaf(acts.gelu(approx), inputs[0])]

    def _op_Tanh(self, node, inputs, attrs):
        return [self._leaf(acts.tanh(), inputs[0])]

    def _op_Sigmoid(self, node, inputs, attrs):
        return [self._leaf(acts.sigmoid(), inputs[0])]

    def _op_Softplus(self, node, inputs, attrs):
        return [self._leaf(acts.softplus(), inputs[0])]

    def _op_HardSwish(self, node, inputs, attrs):
        return [self._leaf(acts.hardswish(), inputs[0])]

    def _op_HardSigmoid(self, node, inputs, attrs):
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        x = inputs[0]
        if isinstance(x, Elementwise):
            x = x.outer(alpha, beta)
        else:
            x = affine_scalar(x, alpha, beta)
        return [self._leaf(acts.clip(0.0, 1.0), x)]

    def _op_Clip(self, node, inputs, attrs):
        def bound(i, key, default):
            if len(inputs) > i and inputs[i] is not None:
                v = inputs[i]
                if not isinstance(v, Const) or v.scalar() is None:
                    raise self.fail(f"Clip {key} must be a constant scalar", UnsupportedOperatorError)
                return v.scalar()
            return float(attrs.get(key, default))

        lo, hi = bound(1, "min", -math.inf), bound(2, "max", math.inf)
        if not lo <= hi:
            raise self.fail(f"Clip with min {lo} > max {hi}", UnsupportedOperatorError)
        if lo == -math.inf and hi == math.inf:
            return [inputs[0]]
        return [self._leaf(acts.clip(lo, hi), inputs[0])]

    def _minmax(self, node, inputs, is_max: bool):
        sym = [v for v in inputs if not isinstance(v, Const)]
        consts = [v for v in inputs if isinstance(v, Const)]
        if len(sym) != 1 or any(c.scalar() is None for c in consts):
            raise self.fail(f"{node.op_type} is supported only between one tensor and constant scalars",
                            UnsupportedOperatorError)
        if not consts:
            return [sym[0]]
        vals = [c.scalar() for c in consts]
        act = acts.clip(max(vals), math.inf) if is_max else acts.clip(-math.inf, min(vals))
        return [self._leaf(act, sym[0])]

    def _op_Max(self, node, inputs, attrs):
        return self._minmax(node, inputs, True)

    def _op_Min(self, node, inputs, attrs):
        return self._minmax(node, inputs, False)

    # ------------------------------------------------------------------ the output
    def _finish(self, out_name: str, n_states: int | None) -> Network:
        v = self.values.get(out_name)
        if v is None:
            raise self.fail(f"the graph output {out_name!r} is produced by no node")
        if isinstance(v, Const):
            raise self.fail(f"the graph output {out_name!r} does not depend on the input")
        self.node_desc = f"output {out_name!r}"
        v = self._affine(v)
        self.node_desc = ""
        if sum(1 for d in v.shape if d != 1) > 1:
            raise self.fail(
                f"the output {out_name!r} has shape {list(v.shape)} (batch axis 1); certify needs a vector output "
                "[batch, n] or [n]"
            )
        m = v.size
        top = len(self.layers)
        if v.level not in (0, top):
            raise self.fail(
                f"the output depends on hidden layer {v.level} but not on the last one ({top}); certify needs a chain"
            )
        if top == 0:
            out_w, skip = v.coef.reshape(self.n_in, m).T, None
        else:
            v = lift(v, top, self.n_in, self.widths)
            n_h = self.widths[-1]
            flat = v.coef.reshape(n_h + self.n_in, m)
            out_w, skip = flat[:n_h].T, flat[n_h:].T
            if not np.any(skip):
                skip = None
        if len(self.specs) == 2:
            first = self.specs[0].size
            if n_states is not None and n_states != first:
                raise self.fail(
                    f"n_states={n_states} conflicts with the model's two inputs (states {self.specs[0].name!r} has "
                    f"{first} entries)"
                )
            n_states = first
        try:
            return Network(
                layers=tuple(self.layers), out_weight=out_w, out_bias=v.offset.ravel(), skip=skip,
                n_states=n_states, input_names=tuple(s.name for s in self.specs),
            )
        except ModelError as e:
            raise self.fail(str(e)) from None


def _identify(fn, leaves, m):
    try:
        return identify(fn, leaves, m)
    except (RuntimeError, ValueError, TypeError):  # an expression torch cannot evaluate: not an activation
        return None


def _pick_base(*values) -> Affine:
    """The pre-activation an expression is written over: a plain affine operand (x in x * sigmoid(x)) first,
    else the base of an operand containing an activation, else the first expression's base. The choice matters:
    identification recognises sigma(t) only in the variable t the activation is applied to."""
    for v in values:
        if isinstance(v, Affine):
            return v
    for v in values:
        if isinstance(v, Elementwise) and v.leaves:
            return v.base
    return next(v.base for v in values if isinstance(v, Elementwise))


def _merge(a: tuple, b: tuple) -> tuple:
    out = list(a)
    for x in b:
        if all(x is not y and x != y for y in out):
            out.append(x)
    return tuple(out)


_OPS = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}


def import_graph(model: onnx.ModelProto, source: str, n_states: int | None = None) -> Network:
    """The Network of an in-memory ONNX model (local functions already inlined, external data loaded).

    ``source`` names the model in messages (a path, or '<torch Sequential>'). No numeric check here: see
    :func:`certify.importers.load_onnx`.
    """
    return _Importer(model, source).run(n_states)
