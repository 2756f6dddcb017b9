"""Activations written as elementwise graphs, recognised by their structure.

An elementwise expression (:class:`~certify.importers.symbolic.Elementwise`, in the normal form of
:mod:`certify.importers.expression`) is accepted as ``a * sigma(z) + b`` (scalars a != 0 and b, z = c t + d a
variable of the expression) in exactly these cases:

* it is affine in t (no function left once the ring laws are applied): no layer;
* it is one activation of the catalogue (an ONNX activation operator: Relu, Tanh, HardSigmoid, ...) applied to an
  affine function of t, scaled and shifted;
* it is one of the patterns of :data:`PATTERNS`, *in a variable z the graph itself computes* (the base t, an
  operand of the expression, or the input of a function inside it), with every constant of the pattern within
  relative :data:`RTOL` (float32 rounding of the constant) of its value:

  - GELU: ``0.5 z (1 + erf(z / sqrt 2))`` (torch's TorchScript exporter, any order of the products);
  - GELU, tanh approximation: ``0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3)))``, z^3 as ``Pow(z, 3)`` or
    ``z * z * z``;
  - SiLU: ``z * sigmoid(z)``; swish ``x * sigmoid(beta x)`` is ``silu(z) / beta`` in z = beta x;
  - HardSwish: ``z * HardSigmoid(z)`` with HardSigmoid's alpha = 1/6, beta = 1/2 (opsets before 14);
  - ReLU: ``(z + |z|) / 2``;
  - softplus: ``log(1 + exp(z))`` (the ONNX function body of Softplus).

Two expressions with the same normal form are the same real function, so an accepted expression *is* the
activation (up to the float32 rounding of its constants); anything else is refused. No expression is ever
accepted because it agreed with an activation on sample points.

One more exporter pattern involves a comparison, and is checked where the Where node is evaluated
(:func:`softplus_threshold_mismatch`): torch's ``softplus(x, beta, threshold)`` as the dynamo exporter writes it,
``Where(beta x > threshold, x, softplus(beta x) / beta)``. The IR keeps ``softplus(beta x) / beta`` for every x:
above the threshold the graph's linear branch differs from it by ``log1p(exp(-threshold)) / beta``, at most
2.1e-9 / beta for the accepted thresholds (>= 20, torch's default); a smaller threshold is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import activations as acts
from ..ir.activations import Activation
from .expression import ONE, Monomial, Poly, close, close_monomials
from .symbolic import Affine, Const, Elementwise, Value, relation

RTOL = 1e-6
SOFTPLUS_MIN_THRESHOLD = 20.0
ACTIVATION_OPERATORS = (
    "Relu, LeakyRelu, PRelu, Elu, Selu, Gelu, Tanh, Sigmoid, Softplus, Clip, HardSigmoid, HardSwish"
)
ADVICE = (
    f"export the activation as a standard ONNX operator ({ACTIVATION_OPERATORS}) or as one of the exporter "
    "patterns certify recognises by their structure (GELU with Erf or Tanh, x * sigmoid(beta x), x * HardSigmoid(x), "
    "(x + |x|) / 2, log(1 + exp(x)), torch's softplus(beta) threshold form)"
)


@dataclass(frozen=True)
class Pattern:
    """An activation as an exporter writes it: ``template`` in the variable u; ``lead`` the monomial whose
    coefficient fixes the outer scale a; ``written`` the form shown in messages."""

    name: str
    written: str
    activation: Activation
    template: Poly
    lead: Monomial

    @property
    def functions(self) -> frozenset[str]:
        return frozenset(a.name for a in self.template.atoms())


def _pattern(name: str, written: str, activation: Activation, template: Poly) -> Pattern:
    lead = next(m for m, _ in template.terms if m.factors)
    return Pattern(name, written, activation, template, lead)


def _templates() -> tuple[Pattern, ...]:
    u = Poly.linear(1.0)
    one = Poly.constant(1.0)
    half_u = u.scaled(0.5)
    gelu = half_u * (one + Poly.apply("Erf", u.scaled(1.0 / math.sqrt(2.0))))
    cubic = (u + u.integer_power(3).scaled(0.044715)).scaled(math.sqrt(2.0 / math.pi))
    gelu_tanh = half_u * (one + Poly.apply(acts.tanh(), cubic))
    silu = u * Poly.apply(acts.sigmoid(), u)
    hardswish = u * Poly.apply(acts.clip(0.0, 1.0), u.scaled(1.0 / 6.0).shifted(0.5))
    relu = half_u + Poly.apply("Abs", u).scaled(0.5)
    softplus = Poly.apply("Log", one + Poly.apply("Exp", u))
    return (
        _pattern("GELU", "0.5 x (1 + erf(x / sqrt 2))", acts.gelu("none"), gelu),
        _pattern("GELU (tanh)", "0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))", acts.gelu("tanh"), gelu_tanh),
        _pattern("SiLU", "x * sigmoid(x)", acts.silu(), silu),
        _pattern("HardSwish", "x * HardSigmoid(x, alpha=1/6, beta=1/2)", acts.hardswish(), hardswish),
        _pattern("ReLU", "(x + |x|) / 2", acts.relu(), relu),
        _pattern("softplus", "log(1 + exp(x))", acts.softplus(), softplus),
    )


PATTERNS = _templates()


@dataclass(frozen=True)
class Recognised:
    """``expression = scale * activation(c * base + d) + shift`` with (c, d) = ``variable``."""

    activation: Activation
    variable: tuple[float, float]
    scale: float
    shift: float


def _candidates(e: Elementwise) -> list[tuple[float, float]]:
    """The variables c t + d in which a pattern may be written: the base, the tensors the expression was built
    from, and the affine arguments of the functions inside it."""
    arguments = [atom.arg.affine_parts() for atom in e.poly.atoms()]
    out: list[tuple[float, float]] = []
    for v in [(1.0, 0.0), *e.variables, *(a for a in arguments if a is not None)]:
        if v[0] != 0.0 and v not in out:
            out.append(v)
    return out


def _match(p: Poly, pattern: Pattern) -> tuple[float, float] | None:
    """(a, b) with p = a * pattern + b (structure equal, constants within RTOL), else None."""
    lead = next((c for m, c in p.terms if close_monomials(m, pattern.lead, RTOL)), None)
    if lead is None:
        return None
    a = lead / pattern.template.coefficient(pattern.lead)
    b = p.coefficient(ONE) - a * pattern.template.coefficient(ONE)
    return (a, b) if close(p, pattern.template.scaled(a).shifted(b), RTOL) else None


def recognise(e: Elementwise) -> Recognised | None:
    """The activation the expression is (see the module docstring), or None."""
    affine = e.poly.affine_parts()
    if affine is not None:
        return Recognised(acts.identity(), affine, 1.0, 0.0)
    single = e.poly.single_atom()
    if single is not None and isinstance(single[0].fn, Activation):
        atom, a, b = single
        arg = atom.arg.affine_parts()
        if arg is not None and arg[0] != 0.0:
            return Recognised(atom.fn, arg, a, b)
    for c, d in _candidates(e):
        in_z = e.poly.compose(1.0 / c, -d / c)  # the expression as a function of z = c t + d
        for pattern in PATTERNS:
            found = _match(in_z, pattern)
            if found is not None:
                return Recognised(pattern.activation, (c, d), *found)
    return None


def resemblance(e: Elementwise) -> str:
    """For a refusal: the patterns written with the same functions as ``e`` (what it may have meant to be)."""
    functions = frozenset(a.name for a in e.poly.atoms())
    near = [p for p in PATTERNS if p.functions == functions]
    if not near:
        return ""
    shown = " or ".join(f"{p.name} {p.written}" for p in near)
    return (f"; it uses the functions of {shown} but not its exact structure and constants (each constant must "
            f"match within relative {RTOL:g})")


def softplus_threshold_mismatch(op: str, lhs: Value, rhs: Value, if_true: Value, if_false: Value) -> str | None:
    """None when ``Where(op(lhs, rhs), if_true, if_false)`` is torch's softplus threshold form
    ``Where(u > threshold, u / beta, softplus(u) / beta)`` with u = beta x and threshold >= 20; else the reason."""
    if op != "Greater":
        return f"its condition is a {op}, not Greater"
    threshold = rhs.scalar() if isinstance(rhs, Const) else None
    if not isinstance(lhs, Affine) or threshold is None:
        return "its condition does not compare a pre-activation with a constant scalar"
    if not threshold >= SOFTPLUS_MIN_THRESHOLD * (1.0 - RTOL):
        return (f"its threshold {threshold:g} is below {SOFTPLUS_MIN_THRESHOLD:g}, where the linear branch differs "
                f"from softplus by {math.log1p(math.exp(-threshold)):.3g} (times 1/beta)")
    if not isinstance(if_false, Elementwise) or not isinstance(if_true, Affine):
        return "its branches are not an affine tensor (when true) and softplus (when false)"
    rel = relation(lhs, if_false.base)
    single = if_false.poly.compose(*rel).single_atom() if rel is not None else None
    if single is None or single[0].fn != acts.softplus() or single[2] != 0.0 or not close(
            single[0].arg, Poly.linear(1.0), RTOL):
        return "its false branch is not softplus of the compared value divided by beta"
    inv_beta = single[1]
    rel = relation(lhs, if_true)
    if rel is None or rel[1] != 0.0 or abs(rel[0] - inv_beta) > RTOL * abs(inv_beta):
        return "its true branch is not the compared value divided by beta (softplus's linear asymptote)"
    return None
