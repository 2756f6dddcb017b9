"""The arithmetic of symbolic values: Add/Sub/Mul/Div of constants, affine tensors and elementwise expressions.

Used by the operator handlers (:mod:`certify.importers.operators`). Affine operands with constants stay affine
(exact float64 linear algebra, :mod:`certify.importers.symbolic`); an elementwise expression combined with another
function of the same pre-activation stays an :class:`~certify.importers.symbolic.Elementwise` expression, kept in
the normal form of :mod:`certify.importers.expression` and recognised (:mod:`certify.importers.patterns`) when a
linear operator or the output needs it (:meth:`GraphEvaluator.materialize`).
Every function takes the evaluator as its first argument ``ctx`` (messages, the layer stack, materialisation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import UnsupportedOperatorError
from ..ir.activations import Activation
from .expression import Poly
from .patterns import recognise
from .symbolic import (
    Affine,
    Const,
    Elementwise,
    Value,
    add,
    broadcast_shape,
    merge_unique,
    relation,
    scalar_image,
    scale,
    shift,
)

if TYPE_CHECKING:
    from .graph import GraphEvaluator


def divide(p: Poly, q: Poly) -> Poly:
    """p / q: a scaling when q is a non-zero constant, else p * Reciprocal(q)."""
    parts = q.affine_parts()
    if parts is not None and parts[0] == 0.0 and parts[1] != 0.0:
        return p.scaled(1.0 / parts[1])
    return p * Poly.apply("Reciprocal", q)


POLY_BINARY: dict[str, Callable[[Poly, Poly], Poly]] = {
    "Add": lambda p, q: p + q,
    "Sub": lambda p, q: p - q,
    "Mul": lambda p, q: p * q,
    "Div": divide,
}


def pick_base(*values: Value) -> Affine:
    """The pre-activation an expression is written over: a plain affine operand (x in x * sigmoid(x)) first,
    else the base of an operand containing an activation, else the first expression's base. The other variables
    the expression is built from are kept too (``Elementwise.variables``): patterns are looked for in all of them."""
    for v in values:
        if isinstance(v, Affine):
            return v
    for v in values:
        if isinstance(v, Elementwise) and v.has_activation:
            return v.base
    return next(v.base for v in values if isinstance(v, Elementwise))


def apply_activation(ctx: GraphEvaluator, act: Activation, v: Value, outer=(1.0, 0.0)) -> Elementwise:
    """An activation operator applied to ``v``: a new expression (``outer``: a scale and shift applied after)."""
    if isinstance(v, Elementwise) and recognise(v) is not None:
        v = ctx.materialize(v)  # an activation of an activation: two layers
    if isinstance(v, Elementwise):
        e = Elementwise(v.base, Poly.apply(act, v.poly), v.nodes + (ctx.node_desc,), v.variables)
    else:
        e = Elementwise(v, Poly.apply(act, Poly.linear(1.0)), (ctx.node_desc,), variables_of(v, v))
    return e.outer(*outer)


def apply_function(ctx: GraphEvaluator, transform: Callable[[Poly], Poly], v: Value) -> Elementwise:
    """An elementwise function that is no activation by itself (Erf, Exp, Pow, ...) applied to ``v``:
    ``transform`` maps the argument's normal form to the result's."""
    if isinstance(v, Elementwise):
        return Elementwise(v.base, transform(v.poly), v.nodes + (ctx.node_desc,), v.variables)
    return Elementwise(v, transform(Poly.linear(1.0)), (ctx.node_desc,), variables_of(v, v))


def variables_of(v: Affine, base: Affine) -> tuple[tuple[float, float], ...]:
    """The variables (c, d) relative to ``base`` that the affine operand ``v`` brings: itself and its origin."""
    out = (relation(base, v),)
    if v.origin is not None:
        rel = relation(base, v.origin)
        if rel is not None:
            out = merge_unique(out, (rel,))
    return out


def combine_all(ctx: GraphEvaluator, combine: Callable[[Poly, Poly], Poly], values: list, base: Affine
                ) -> Elementwise | None:
    """``combine(p_1, p_2)`` of the values as functions of t = base, or None when some value is not a function of
    it."""
    polys, nodes, variables = [], (), ()
    for v in values:
        p = as_poly(v, base)
        if p is None:
            return None
        polys.append(p)
        if isinstance(v, Affine):
            variables = merge_unique(variables, variables_of(v, base))
        elif isinstance(v, Elementwise):
            c, d = relation(base, v.base)
            nodes = merge_unique(nodes, v.nodes)
            variables = merge_unique(variables, ((c, d),) + tuple((ci * c, ci * d + di) for ci, di in v.variables))
    return Elementwise(base, combine(*polys), nodes + (ctx.node_desc,), variables or ((1.0, 0.0),))


def as_poly(v: Value, base: Affine) -> Poly | None:
    """``v`` as a function of t = base, or None (constants count only when they act as scalars)."""
    if isinstance(v, Const):
        s = v.scalar()
        if s is None or broadcast_shape(v.shape, base.shape) != base.shape:
            return None
        return Poly.constant(s)
    if isinstance(v, Affine):
        rel = relation(base, v)
        return None if rel is None else Poly.linear(*rel)
    if isinstance(v, Elementwise):
        rel = relation(base, v.base)
        return None if rel is None else v.poly.compose(*rel)
    return None


def binary(ctx: GraphEvaluator, op: str, a: Value, b: Value) -> Value:
    """Add, Sub, Mul or Div of two values (not both constant)."""
    if isinstance(a, Elementwise) or isinstance(b, Elementwise):
        out = expression_binary(ctx, op, a, b)
        if out is not None:
            return out
        a, b = ctx.affine_or_const(a), ctx.affine_or_const(b)
    if isinstance(a, Affine) and _acts_as_scalar(b, a):
        return scalar_image(_affine_binary(ctx, op, a, b), a)
    if isinstance(b, Affine) and _acts_as_scalar(a, b) and op != "Div":
        return scalar_image(_affine_binary(ctx, op, a, b), b)
    return _affine_binary(ctx, op, a, b)


def _acts_as_scalar(c: Value, a: Affine) -> bool:
    """``c`` is a constant with one value throughout that broadcasts to ``a``'s shape."""
    return isinstance(c, Const) and c.scalar() is not None and broadcast_shape(c.shape, a.shape) == a.shape


def _affine_binary(ctx: GraphEvaluator, op: str, a: Affine | Const, b: Affine | Const) -> Value:
    """``binary`` once no operand is an elementwise expression."""
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
            return Elementwise(b, Poly.apply("Reciprocal", Poly.linear(1.0)).scaled(s), (ctx.node_desc,),
                               variables_of(b, b))
    # Mul or Div of two input-dependent tensors: only elementwise functions of one pre-activation.
    out = combine_all(ctx, POLY_BINARY[op], [a, b], a)
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
    return combine_all(ctx, POLY_BINARY[op], [a, b], pick_base(a, b))
