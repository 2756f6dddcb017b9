"""The ONNX operators certify imports: one handler per operator type, registered in :data:`OPERATORS`.

A handler is a plain function ``handler(ctx, node, inputs, attrs) -> outputs``: ``ctx`` the
:class:`~certify.importers.graph.GraphEvaluator` (messages, layers, materialisation), ``node`` the NodeProto,
``inputs`` one :data:`~certify.importers.symbolic.Value` per node input (None where the input is absent, at least
one of them input-dependent: nodes on constants only are folded by the evaluator before any handler runs),
``attrs`` the node's attributes. It returns one value per node output (None for an output it does not produce).

Kinds of handlers:

* linear and affine operators (Gemm, MatMul, 1x1 Conv, BatchNormalization, Add/Sub/Mul/Div, Sum, Neg): exact
  float64 maps of the affine coefficients, so chains of them fold into one affine map. Only 1x1 convolutions
  (a Linear layer on a [1, C, 1, 1] tensor) without padding are represented; products of two input-dependent
  tensors only inside an activation pattern (x * sigmoid(x));
* layout operators (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Slice, Gather, Split, Expand, Tile)
  run in ONNX's reference implementation on a tensor of entry indices; their shape/index/axis inputs must be
  constant. Identity, Dropout (not in training mode), Cast/CastLike to float types, Shape and Size pass through;
* activation operators (Relu, LeakyRelu, PRelu, Elu, Selu, Gelu, Tanh, Sigmoid, Softplus, Clip, HardSigmoid,
  HardSwish, Max/Min with constant scalars): an activation of the catalogue (:mod:`certify.ir.activations`);
* elementwise primitives (Erf, Exp, Log, Sqrt, Reciprocal, Abs, Pow with a constant exponent): pieces of an
  elementwise expression of one pre-activation, kept in normal form (:mod:`certify.importers.expression`) and
  accepted only once the whole expression is recognised by its structure as an activation
  (:mod:`certify.importers.patterns`); Abs alone, Erf alone, ... are refused when the expression is needed;
* comparisons (Greater, Less, GreaterOrEqual, LessOrEqual, Equal) and Where on input-dependent values: only as
  torch's softplus(beta, threshold) form ``Where(beta x > threshold, x, softplus(beta x) / beta)``; a comparison
  makes a :class:`~certify.importers.symbolic.Condition` that nothing but that Where may use, and any other Where
  on an input-dependent condition is refused. A Where with a constant condition is a fixed mask (linear).

Refused on input-dependent tensors: every operator outside the table, with a message naming the node and saying
what to do; the elementwise ones of :data:`UNREPRESENTED_ELEMENTWISE_OPS` (Sign, Round, Floor, ...) with the
advice to export the activation as a standard operator. Control flow (:data:`CONTROL_FLOW_OPS`: If, Loop, Scan)
is refused even on constants.

:data:`SUPPORTED_OPS` is the sorted list of the table's keys.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np
import onnx

from ..errors import UnsupportedOperatorError
from ..ir import activations as acts
from .elementwise import apply_activation, apply_function, binary
from .expression import Poly
from .patterns import ADVICE, SOFTPLUS_MIN_THRESHOLD, softplus_threshold_mismatch
from .symbolic import (
    Affine,
    Condition,
    Const,
    Elementwise,
    add,
    affine_scalar,
    basis_size,
    const_affine,
    lift,
    matmul_const_left,
    matmul_const_right,
    scalar_image,
    scale,
    shift,
    transpose_last,
)

if TYPE_CHECKING:
    from .graph import GraphEvaluator

Handler = Callable[["GraphEvaluator", onnx.NodeProto, list, dict], list]

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
# Layout operators: which inputs carry data (the others must be constant); None: all of them.
LAYOUT_DATA_INPUTS = {
    "Reshape": (0,), "Transpose": (0,), "Squeeze": (0,), "Unsqueeze": (0,), "Flatten": (0,), "Slice": (0,),
    "Gather": (0,), "Split": (0,), "Expand": (0,), "Tile": (0,), "Concat": None,
}
# Elementwise operators that are no activation of the catalogue and no piece of a recognised pattern: refused on
# input-dependent tensors with the advice of patterns.ADVICE (a jump, a rounding, a logical value, ...).
UNREPRESENTED_ELEMENTWISE_OPS = frozenset({
    "Sign", "Round", "Floor", "Ceil", "Mod", "Not", "And", "Or", "Xor", "IsNaN", "IsInf", "BitShift", "Sin", "Cos",
    "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Celu", "Mish", "Softsign",
    "ThresholdedRelu", "Shrink", "Hardmax", "Trilu",
})
# Control flow: a branch chosen by a tensor's value (and subgraphs reading outer values): never imported.
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
SELU_ALPHA_F32 = 1.67326319217681884765625
SELU_GAMMA_F32 = 1.05070102214813232421875


# ============================================================================ constants
def constant(ctx: GraphEvaluator, node, inputs, attrs):
    """Constant: has no inputs, so the evaluator folds it; listed so that the table names every operator."""
    return ctx.fold(node, inputs)


# ============================================================================ layout operators
def layout(ctx: GraphEvaluator, node, inputs, attrs):
    """A layout operator on symbolic data: run it on entry indices, then gather coefficients."""
    data_pos = LAYOUT_DATA_INPUTS[node.op_type]
    if data_pos is None:
        data_pos = tuple(range(len(inputs)))
    data = {}
    for i, v in enumerate(inputs):
        if v is None:
            continue
        if i in data_pos:
            data[i] = ctx.affine_or_const(v)
        elif not isinstance(v, Const):
            raise ctx.fail(f"input {i} (a shape, index or axis) depends on the model input; it must be constant")
    symbolic = [v for v in data.values() if isinstance(v, Affine)]
    level = ctx.common_level(symbolic)
    pool_coef, pool_off, feeds, start = [], [], [], 0
    nb = basis_size(level, ctx.n_in, ctx.widths)
    for i, v in enumerate(inputs):
        if i in data:
            a = data[i]
            a = lift(a, level, ctx.n_in, ctx.widths) if isinstance(a, Affine) else (
                const_affine(a.value, level, ctx.n_in, ctx.widths))
            pool_coef.append(a.coef.reshape(nb, a.size))
            pool_off.append(a.offset.ravel())
            feeds.append((start + np.arange(a.size, dtype=np.float64)).reshape(a.shape))
            start += a.size
        else:
            feeds.append(None if v is None else v.value)
    coef_all = np.concatenate(pool_coef, axis=1)
    off_all = np.concatenate(pool_off)
    outs = []
    for idx in ctx.evaluate_reference(node, feeds):
        if idx is None:
            outs.append(None)
            continue
        ii = np.rint(np.asarray(idx, dtype=np.float64)).astype(np.int64)
        outs.append(Affine(level, coef_all[:, ii].reshape(nb, *ii.shape), off_all[ii]))
    return outs


def identity(ctx: GraphEvaluator, node, inputs, attrs):
    return [inputs[0]]


def dropout(ctx: GraphEvaluator, node, inputs, attrs):
    """Dropout in inference mode is the identity; training mode (random) is refused."""
    if len(inputs) > 2 and inputs[2] is not None:
        mode = inputs[2]
        if not isinstance(mode, Const):
            raise ctx.fail("training_mode depends on the input")
        if bool(np.asarray(mode.value).ravel()[0]):
            raise ctx.fail("Dropout in training mode is random; export the model in eval mode",
                           UnsupportedOperatorError)
    return [inputs[0]]


def cast(ctx: GraphEvaluator, node, inputs, attrs):
    if attrs.get("to") not in FLOAT_TYPES:
        raise ctx.fail("casts an input-dependent tensor to a non-float type", UnsupportedOperatorError)
    return [inputs[0]]


def cast_like(ctx: GraphEvaluator, node, inputs, attrs):
    target = inputs[1]
    if isinstance(target, Const) and not np.issubdtype(target.value.dtype, np.floating):
        raise ctx.fail("casts an input-dependent tensor to a non-float type", UnsupportedOperatorError)
    return [inputs[0]]


def shape_of(ctx: GraphEvaluator, node, inputs, attrs):
    """Shape and Size: constants computed from the (symbolic) tensor's shape."""
    return [Const(np.asarray(r)) for r in ctx.evaluate_reference(node, [np.zeros(inputs[0].shape, dtype=np.float32)])]


# ============================================================================ linear and affine operators
def arithmetic(op: str) -> Handler:
    """The handler of Add, Sub, Mul or Div."""

    def handler(ctx: GraphEvaluator, node, inputs, attrs):
        return [binary(ctx, op, *inputs[:2])]

    handler.__name__ = op.lower()
    handler.__doc__ = f"{op} of two values (see :func:`certify.importers.elementwise.binary`)."
    return handler


def sum_of(ctx: GraphEvaluator, node, inputs, attrs):
    acc = inputs[0]
    for v in inputs[1:]:
        acc = binary(ctx, "Add", acc, v) if not (isinstance(acc, Const) and isinstance(v, Const)) else Const(
            acc.value + v.value)
    return [acc]


def neg(ctx: GraphEvaluator, node, inputs, attrs):
    v = inputs[0]
    if isinstance(v, Elementwise):
        return [v.outer(-1.0, 0.0)]
    return [scalar_image(scale(v, np.array(-1.0)), v)]


def matmul(ctx: GraphEvaluator, node, inputs, attrs):
    a, b = (ctx.affine_or_const(v) for v in inputs[:2])
    if isinstance(a, Affine) and isinstance(b, Affine):
        raise ctx.fail("multiplies two input-dependent tensors (bilinear); certify needs constant weights",
                       UnsupportedOperatorError)
    if isinstance(a, Affine):
        return [matmul_const_right(a, b.value)]
    return [matmul_const_left(a.value, b)]


def gemm(ctx: GraphEvaluator, node, inputs, attrs):
    a, b = (ctx.affine_or_const(v) for v in inputs[:2])
    c = inputs[2] if len(inputs) > 2 else None
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    ta, tb = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
    if isinstance(a, Affine) and isinstance(b, Affine):
        raise ctx.fail("multiplies two input-dependent tensors (bilinear); certify needs constant weights",
                       UnsupportedOperatorError)
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ctx.fail(f"Gemm needs 2-D operands, got shapes {a.shape} and {b.shape}")
    if isinstance(a, Affine):
        y = affine_scalar(matmul_const_right(transpose_last(a) if ta else a, b.value.T if tb else b.value),
                          alpha, 0.0)
    elif isinstance(b, Affine):
        y = affine_scalar(matmul_const_left(a.value.T if ta else a.value, transpose_last(b) if tb else b),
                          alpha, 0.0)
    else:  # only the bias depends on the input
        av, bv = (np.asarray(v.value, dtype=np.float64) for v in (a, b))
        y = Const(alpha * ((av.T if ta else av) @ (bv.T if tb else bv)))
        cc = ctx.affine_or_const(c)
        return [binary(ctx, "Add", y, scale(cc, np.array(beta)))]
    if c is not None:
        c = ctx.affine_or_const(c)
        if isinstance(c, Const):
            y = shift(y, beta * np.asarray(c.value, dtype=np.float64))
        else:
            y = add(y, scale(c, np.array(beta)), ctx.n_in, ctx.widths)
        if len(y.shape) != 2:
            raise ctx.fail(f"Gemm bias broadcasts to shape {y.shape}")
    return [y]


def conv(ctx: GraphEvaluator, node, inputs, attrs):
    """A 1x1 convolution (any group count, no padding): a matrix on the channel axis."""
    x = ctx.affine_or_const(inputs[0])
    w = inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    if not isinstance(x, Affine) or not isinstance(w, Const) or (b is not None and not isinstance(b, Const)):
        raise ctx.fail("Conv needs constant weights and bias", UnsupportedOperatorError)
    wv = np.asarray(w.value, dtype=np.float64)
    if wv.ndim < 3 or any(k != 1 for k in wv.shape[2:]):
        raise ctx.fail(
            f"Conv with kernel shape {list(wv.shape[2:])} is not 1x1; certify supports only 1x1 convolutions "
            "(a Linear layer on a [1, C, 1, 1] tensor)",
            UnsupportedOperatorError,
        )
    spatial = x.shape[2:]
    if len(x.shape) != wv.ndim or len(x.shape) < 3:
        raise ctx.fail(f"Conv input of shape {x.shape} does not fit weights of shape {wv.shape}")
    if any(p != 0 for p in attrs.get("pads", [])):
        raise ctx.fail("Conv with padding is not supported (a 1x1 convolution needs none)", UnsupportedOperatorError)
    if any(s != 1 for s in attrs.get("strides", [])) and any(d != 1 for d in spatial):
        raise ctx.fail("Conv with strides on a spatial input is not supported", UnsupportedOperatorError)
    group = int(attrs.get("group", 1))
    o, cg = wv.shape[0], wv.shape[1]
    c_in = x.shape[1]
    if cg * group != c_in or o % group:
        raise ctx.fail(f"Conv weights of shape {wv.shape} (group {group}) do not fit an input with {c_in} channels")
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


def batch_normalization(ctx: GraphEvaluator, node, inputs, attrs):
    """Inference-mode BatchNormalization: a per-channel scale and shift."""
    x = ctx.affine(inputs[0])
    if any(not isinstance(v, Const) for v in inputs[1:5]):
        raise ctx.fail("BatchNormalization needs constant scale, bias, mean and variance")
    if int(attrs.get("training_mode", 0)):
        raise ctx.fail("BatchNormalization in training mode; export the model in eval mode",
                       UnsupportedOperatorError)
    if len(x.shape) < 2:
        raise ctx.fail(f"BatchNormalization needs an input [N, C, ...], got shape {x.shape}")
    g, bb, mean, var = (np.asarray(v.value, dtype=np.float64) for v in inputs[1:5])
    eps = float(attrs.get("epsilon", 1e-5))
    s = g / np.sqrt(var + eps)
    tail = [1] * (len(x.shape) - 2)
    y = scale(x, s.reshape(-1, *tail))
    return [shift(y, (bb - mean * s).reshape(-1, *tail))]


# ============================================================================ activation operators
def relu(ctx: GraphEvaluator, node, inputs, attrs):
    return [apply_activation(ctx, acts.relu(), inputs[0])]


def leaky_relu(ctx: GraphEvaluator, node, inputs, attrs):
    return [apply_activation(ctx, acts.leaky_relu(float(attrs.get("alpha", 0.01))), inputs[0])]


def prelu(ctx: GraphEvaluator, node, inputs, attrs):
    """PRelu with a constant slope: one shared slope, or one per neuron."""
    x, slope = inputs
    if not isinstance(slope, Const):
        raise ctx.fail("PRelu slope depends on the input")
    x = ctx.materialize(x) if isinstance(x, Elementwise) and x.bare else x
    shape = x.shape
    try:
        s = np.broadcast_to(np.asarray(slope.value, dtype=np.float64), shape).ravel()
    except ValueError:
        raise ctx.fail(f"PRelu slope of shape {slope.shape} does not fit an input of shape {shape}") from None
    slopes = s[:1] if np.all(s == s[0]) else s
    return [apply_activation(ctx, acts.prelu(slopes), x)]


def elu(ctx: GraphEvaluator, node, inputs, attrs):
    alpha = float(attrs.get("alpha", 1.0))
    if not alpha > 0:
        raise ctx.fail(f"Elu with alpha = {alpha} is not supported (needs alpha > 0)", UnsupportedOperatorError)
    return [apply_activation(ctx, acts.elu(alpha), inputs[0])]


def selu(ctx: GraphEvaluator, node, inputs, attrs):
    """SELU with the standard constants (float32 attributes), else gamma * elu_alpha."""
    alpha = float(attrs.get("alpha", SELU_ALPHA_F32))
    gamma = float(attrs.get("gamma", SELU_GAMMA_F32))
    if abs(alpha - acts.SELU_ALPHA) <= 1e-6 * acts.SELU_ALPHA and abs(gamma - acts.SELU_SCALE) <= 1e-6:
        return [apply_activation(ctx, acts.selu(), inputs[0])]
    if not alpha > 0:
        raise ctx.fail(f"Selu with alpha = {alpha} is not supported (needs alpha > 0)", UnsupportedOperatorError)
    return [apply_activation(ctx, acts.elu(alpha), inputs[0], (gamma, 0.0))]  # gamma * elu_alpha


def gelu(ctx: GraphEvaluator, node, inputs, attrs):
    approx = attrs.get("approximate", b"none")
    approx = approx.decode() if isinstance(approx, bytes) else str(approx)
    if approx not in ("none", "tanh"):
        raise ctx.fail(f"Gelu approximate={approx!r} is not supported", UnsupportedOperatorError)
    return [apply_activation(ctx, acts.gelu(approx), inputs[0])]


def tanh(ctx: GraphEvaluator, node, inputs, attrs):
    return [apply_activation(ctx, acts.tanh(), inputs[0])]


def sigmoid(ctx: GraphEvaluator, node, inputs, attrs):
    return [apply_activation(ctx, acts.sigmoid(), inputs[0])]


def softplus(ctx: GraphEvaluator, node, inputs, attrs):
    return [apply_activation(ctx, acts.softplus(), inputs[0])]


def hard_swish(ctx: GraphEvaluator, node, inputs, attrs):
    return [apply_activation(ctx, acts.hardswish(), inputs[0])]


def hard_sigmoid(ctx: GraphEvaluator, node, inputs, attrs):
    """clip(alpha x + beta, 0, 1): alpha x + beta folds into the affine map before clip(0, 1)."""
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    x = inputs[0]
    if isinstance(x, Elementwise):
        x = x.outer(alpha, beta)
    else:
        x = scalar_image(affine_scalar(x, alpha, beta), x)
    return [apply_activation(ctx, acts.clip(0.0, 1.0), x)]


def clip(ctx: GraphEvaluator, node, inputs, attrs):
    """Clip with constant scalar bounds (inputs from opset 11, attributes before)."""

    def bound(i, key, default):
        if len(inputs) > i and inputs[i] is not None:
            v = inputs[i]
            if not isinstance(v, Const) or v.scalar() is None:
                raise ctx.fail(f"Clip {key} must be a constant scalar", UnsupportedOperatorError)
            return v.scalar()
        return float(attrs.get(key, default))

    lo, hi = bound(1, "min", -math.inf), bound(2, "max", math.inf)
    if not lo <= hi:
        raise ctx.fail(f"Clip with min {lo} > max {hi}", UnsupportedOperatorError)
    if lo == -math.inf and hi == math.inf:
        return [inputs[0]]
    return [apply_activation(ctx, acts.clip(lo, hi), inputs[0])]


def _min_or_max(ctx: GraphEvaluator, node, inputs, is_max: bool):
    sym = [v for v in inputs if not isinstance(v, Const)]
    consts = [v for v in inputs if isinstance(v, Const)]
    if len(sym) != 1 or any(c.scalar() is None for c in consts):
        raise ctx.fail(f"{node.op_type} is supported only between one tensor and constant scalars",
                       UnsupportedOperatorError)
    if not consts:
        return [sym[0]]
    vals = [c.scalar() for c in consts]
    act = acts.clip(max(vals), math.inf) if is_max else acts.clip(-math.inf, min(vals))
    return [apply_activation(ctx, act, sym[0])]


def maximum(ctx: GraphEvaluator, node, inputs, attrs):
    """Max of one tensor and constant scalars: clip(c, inf)."""
    return _min_or_max(ctx, node, inputs, True)


def minimum(ctx: GraphEvaluator, node, inputs, attrs):
    """Min of one tensor and constant scalars: clip(-inf, c)."""
    return _min_or_max(ctx, node, inputs, False)


# ============================================================================ elementwise primitives
def primitive(name: str) -> Handler:
    """The handler of a one-input elementwise function that is no activation by itself (Erf, Exp, ...): a piece
    of an elementwise expression, accepted only inside a recognised pattern (:mod:`certify.importers.patterns`)."""

    def handler(ctx: GraphEvaluator, node, inputs, attrs):
        return [apply_function(ctx, lambda p: Poly.apply(name, p), inputs[0])]

    handler.__name__ = name.lower()
    handler.__doc__ = f"{name} of an input-dependent tensor: a piece of an elementwise expression."
    return handler


def power(ctx: GraphEvaluator, node, inputs, attrs):
    """Pow with a constant scalar exponent (a small integer power is expanded: z^3 in the GELU tanh pattern)."""
    base, expo = inputs
    if not isinstance(expo, Const) or expo.scalar() is None:
        raise ctx.fail("only a constant scalar exponent is supported", UnsupportedOperatorError)
    p = expo.scalar()
    if p == 1.0:
        return [base]
    return [apply_function(ctx, lambda poly: poly.power(p), base)]


def comparison(ctx: GraphEvaluator, node, inputs, attrs):
    """Greater, Less, Equal, ... on input-dependent values: a Condition, which only a Where may use, and only in
    torch's softplus threshold form (the Where refuses every other one, naming both nodes)."""
    a, b = inputs[:2]
    return [Condition(node.op_type, a, b, ctx.node_desc)]


def where(ctx: GraphEvaluator, node, inputs, attrs):
    """Where: a constant mask is linear; a condition on the input only as torch's softplus threshold form."""
    cond, a, b = inputs
    if isinstance(a, Condition) or isinstance(b, Condition):
        raise ctx.fail(f"Where selects between comparisons (graph node #{ctx.node_index}); {ADVICE}",
                       UnsupportedOperatorError)
    if isinstance(cond, Const):  # a fixed mask: a * mask + b * (1 - mask)
        mask = np.asarray(cond.value).astype(bool)
        parts = [
            Const(np.where(m, v.value, 0)) if isinstance(v, Const) else binary(ctx, "Mul", v, Const(m * 1.0))
            for v, m in ((a, mask), (b, ~mask))
        ]
        if all(isinstance(p, Const) for p in parts):
            return [Const(parts[0].value + parts[1].value)]
        return [binary(ctx, "Add", *parts)]
    if isinstance(cond, Condition):
        reason = softplus_threshold_mismatch(cond.op, cond.lhs, cond.rhs, a, b)
        if reason is None:
            return [Elementwise(b.base, b.poly, b.nodes + (cond.node, ctx.node_desc), b.variables)]
        source = f"the comparison [{cond.node}] ({ctx.positions([cond.node])})"
    else:
        source, reason = "an input-dependent tensor", "its condition is not a comparison"
    raise ctx.fail(
        f"operator Where (graph node #{ctx.node_index}) on a condition computed from {source} makes a function "
        "with a jump that certify does not represent; it is accepted only as torch's softplus threshold form "
        f"Where(beta x > threshold, x, softplus(beta x) / beta) with threshold >= {SOFTPLUS_MIN_THRESHOLD:g}, and "
        f"this one is not ({reason}); {ADVICE}",
        UnsupportedOperatorError,
    )


# ============================================================================ the table
OPERATORS: dict[str, Handler] = {
    "Constant": constant,
    # layout
    **{op: layout for op in LAYOUT_DATA_INPUTS},
    "Identity": identity,
    "Dropout": dropout,
    "Cast": cast,
    "CastLike": cast_like,
    "Shape": shape_of,
    "Size": shape_of,
    # linear and affine
    "Add": arithmetic("Add"),
    "Sub": arithmetic("Sub"),
    "Mul": arithmetic("Mul"),
    "Div": arithmetic("Div"),
    "Sum": sum_of,
    "Neg": neg,
    "MatMul": matmul,
    "Gemm": gemm,
    "Conv": conv,
    "BatchNormalization": batch_normalization,
    # activations
    "Relu": relu,
    "LeakyRelu": leaky_relu,
    "PRelu": prelu,
    "Elu": elu,
    "Selu": selu,
    "Gelu": gelu,
    "Tanh": tanh,
    "Sigmoid": sigmoid,
    "Softplus": softplus,
    "Clip": clip,
    "HardSigmoid": hard_sigmoid,
    "HardSwish": hard_swish,
    "Max": maximum,
    "Min": minimum,
    # elementwise primitives: pieces of a recognised pattern only
    "Erf": primitive("Erf"),
    "Exp": primitive("Exp"),
    "Log": primitive("Log"),
    "Sqrt": primitive("Sqrt"),
    "Reciprocal": primitive("Reciprocal"),
    "Abs": primitive("Abs"),
    "Pow": power,
    "Greater": comparison,
    "Less": comparison,
    "GreaterOrEqual": comparison,
    "LessOrEqual": comparison,
    "Equal": comparison,
    "Where": where,
}
SUPPORTED_OPS = tuple(sorted(OPERATORS))
