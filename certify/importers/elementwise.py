"""The arithmetic of symbolic values: Add/Sub/Mul/Div of constants, affine tensors and elementwise expressions.

Used by the operator handlers (:mod:`certify.importers.operators`). Affine operands with constants stay affine
(exact float64 linear algebra, :mod:`certify.importers.symbolic`); an elementwise expression combined with another
function of the same pre-activation stays an :class:`~certify.importers.symbolic.Elementwise` expression, still to
be identified when a linear operator or the output needs it (:meth:`GraphEvaluator.materialize`).
Every function takes the evaluator as its first argument ``ctx`` (messages, the layer stack, materialisation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import UnsupportedOperatorError
from ..ir.activations import Activation
from .identify import identify_expression
from .symbolic import Affine, Const, Elementwise, Value, add, broadcast_shape, merge_unique, relation, scale, shift

if TYPE_CHECKING:
    from .graph import GraphEvaluator

TORCH_BINARY = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}


def pick_base(*values: Value) -> Affine:
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


def apply_activation(ctx: GraphEvaluator, act: Activation, v: Value, outer=(1.0, 0.0)) -> Elementwise:
    """An activation operator applied to ``v``: a new expression (bare unless ``v`` is a composite)."""
    if isinstance(v, Elementwise) and (v.bare or identify_expression(v) is not None):
        v = ctx.materialize(v)  # an activation of an activation: two layers
    if isinstance(v, Elementwise):
        inner = v.full()
        e = Elementwise(v.base, lambda t: act.value(inner(t)), merge_unique(v.leaves, (act,)), False,
                        v.nodes + (ctx.node_desc,), args=v.args)
    else:
        e = Elementwise(v, act.value, (act,), True, (ctx.node_desc,), args=((1.0, 0.0),))
    return e.outer(*outer)


def apply_primitive(ctx: GraphEvaluator, fn, v: Value) -> Elementwise:
    """An elementwise function that is no activation by itself (Erf, Exp, ...) applied to ``v``."""
    if isinstance(v, Elementwise):
        inner = v.full()
        return Elementwise(v.base, lambda t: fn(inner(t)), v.leaves, False, v.nodes + (ctx.node_desc,),
                           args=v.args)
    return Elementwise(v, fn, (), False, (ctx.node_desc,), args=((1.0, 0.0),))


def combine_all(ctx: GraphEvaluator, combine, values: list, base: Affine) -> Elementwise | None:
    """``combine(f_1(t), ..., f_k(t))`` over ``base``, or None when some value is not a function of it."""
    fns, leaves, nodes, args = [], (), (), ()
    for v in values:
        f = as_function(v, base)
        if f is None:
            return None
        fns.append(f)
        if isinstance(v, Affine):
            args = merge_unique(args, (relation(base, v),))
        elif isinstance(v, Elementwise):
            c, d = relation(base, v.base)
            leaves, nodes = merge_unique(leaves, v.leaves), merge_unique(nodes, v.nodes)
            args = merge_unique(args, ((c, d),) + tuple((ci * c, ci * d + di) for ci, di in v.args))
    return Elementwise(base, lambda t: combine(*(f(t) for f in fns)), leaves, False,
                       nodes + (ctx.node_desc,), args=args)


def as_function(v: Value, base: Affine):
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


def binary(ctx: GraphEvaluator, op: str, a: Value, b: Value) -> Value:
    """Add, Sub, Mul or Div of two values (not both constant)."""
    if isinstance(a, Elementwise) or isinstance(b, Elementwise):
        out = expression_binary(ctx, op, a, b)
        if out is not None:
            return out
        a, b = ctx.affine_or_const(a), ctx.affine_or_const(b)
    if op in ("Add", "Sub"):
        sign = 1.0 if op == "Add" else -1.0
        if isinstance(b, Const):
            return shift(a, sign * np.asarray(b.value, dtype=np.float64))
        if isinstance(a, Const):
            return shift(scale(b, np.array(sign)), a.value)
        ctx.common_level([a, b])
        return add(a, scale(b, np.array(sign)) if sign < 0 else b, ctx.n_in, ctx.widths)
    if op == "Mul":
        if isinstance(b, Const):
            return scale(a, b.value)
        if isinstance(a, Const):
            return scale(b, a.value)
    if op == "Div":
        if isinstance(b, Const):
            d = np.asarray(b.value, dtype=np.float64)
            if np.any(d == 0):
                raise ctx.fail("divides by a constant that contains zeros")
            return scale(a, 1.0 / d)
        if isinstance(a, Const):
            s = a.scalar()
            if s is None:
                raise ctx.fail("divides a non-scalar constant by an input-dependent tensor", UnsupportedOperatorError)
            return Elementwise(b, lambda t: s / t, (), False, (ctx.node_desc,))
    # Mul or Div of two input-dependent tensors: only elementwise functions of one pre-activation.
    out = combine_all(ctx, TORCH_BINARY[op], [a, b], a)
    if out is None:
        raise ctx.fail(
            f"{'multiplies' if op == 'Mul' else 'divides'} two input-dependent tensors that are not functions of "
            "the same pre-activation; certify represents products only inside activations (x * sigmoid(x))",
            UnsupportedOperatorError,
        )
    return out


def expression_binary(ctx: GraphEvaluator, op: str, a: Value, b: Value) -> Elementwise | None:
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
                    raise ctx.fail("divides by zero")
                return e.outer(1.0 / s, 0.0)
    return combine_all(ctx, TORCH_BINARY[op], [a, b], pick_base(a, b))
