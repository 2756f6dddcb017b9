"""Elementwise expressions of one variable in normal form: polynomials over atoms.

An exporter writes an activation as a small elementwise graph over one pre-activation t (GELU as
``0.5 * t * (1 + erf(t / sqrt 2))``, SiLU as ``t * sigmoid(t)``). The importer keeps such a graph as a
:class:`Poly`: a sum of monomials ``coef * t^k * prod_i atom_i^(e_i)``, an *atom* being a function applied to a
polynomial (an activation of the catalogue, or a primitive such as Erf, Exp, Log, Abs, Sqrt, Reciprocal).

Only the laws of a commutative ring are used to reach the normal form (associativity, commutativity,
distributivity, exact arithmetic on the scalar coefficients, integer powers expanded): two graphs with the same
normal form compute the same real function at every point, whatever the order in which the exporter wrote the
operations. No other identity is applied (log(exp(t)) stays as written, t * (1 / t) is not 1), so a normal form
never claims an equality that does not hold everywhere. Comparison (:func:`close`) allows a relative difference in
each coefficient (float32 rounding of the constants an exporter writes) and nothing else: a monomial present on
one side only is a difference. An expression past :data:`MAX_TERMS` terms, degree :data:`MAX_DEGREE` or
:data:`MAX_DEPTH` nested functions is refused at once (UnsupportedOperatorError), so a hostile graph cannot make the
normal form grow without bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UnsupportedOperatorError
from ..ir.activations import Activation

MAX_EXPANDED_POWER = 8
# Bounds that no activation pattern comes near (they have at most 3 terms, degree 3, functions 2 deep): past them an
# expression is refused at once instead of growing (squaring (x + 1) thirty times would make 2^30 terms).
MAX_TERMS = 64
MAX_DEGREE = 16
MAX_DEPTH = 8


def _too_large(what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(
        f"the elementwise expression grows past {what}; no activation certify knows is written like that: export "
        "the activation as a standard ONNX operator"
    )


@dataclass(frozen=True)
class Atom:
    """``fn(arg)``: ``fn`` an activation of the catalogue or the name of a primitive ('Erf', 'Exp', 'Log',
    'Sqrt', 'Reciprocal', 'Abs', 'Pow(p)' for a power that is not a small non-negative integer)."""

    fn: Activation | str
    arg: Poly

    def __post_init__(self):
        if self.arg.depth() >= MAX_DEPTH:
            raise _too_large(f"{MAX_DEPTH} nested functions")

    @property
    def name(self) -> str:
        return self.fn.kind.value if isinstance(self.fn, Activation) else self.fn


@dataclass(frozen=True)
class Monomial:
    """``t^power * prod atom^exponent`` (factors sorted, exponents >= 1)."""

    power: int = 0
    factors: tuple[tuple[Atom, int], ...] = ()

    def times(self, other: Monomial) -> Monomial:
        exps: dict[Atom, int] = dict(self.factors)
        for atom, e in other.factors:
            exps[atom] = exps.get(atom, 0) + e
        if self.power + other.power > MAX_DEGREE or any(e > MAX_DEGREE for e in exps.values()):
            raise _too_large(f"degree {MAX_DEGREE}")
        return Monomial(self.power + other.power, tuple(sorted(exps.items(), key=repr)))


ONE = Monomial()


@dataclass(frozen=True)
class Poly:
    """A sum of monomials with non-zero coefficients, in a canonical order (equal normal forms are equal)."""

    terms: tuple[tuple[Monomial, float], ...] = ()

    # ------------------------------------------------------------------ construction
    @staticmethod
    def from_terms(terms: dict[Monomial, float]) -> Poly:
        kept = [(m, c) for m, c in terms.items() if c != 0.0]
        if len(kept) > MAX_TERMS:
            raise _too_large(f"{MAX_TERMS} terms")
        return Poly(tuple(sorted(kept, key=lambda mc: repr(mc[0]))))

    @staticmethod
    def constant(c: float) -> Poly:
        return Poly.from_terms({ONE: float(c)})

    @staticmethod
    def linear(c: float, d: float = 0.0) -> Poly:
        """c * t + d."""
        return Poly.from_terms({Monomial(1): float(c), ONE: float(d)})

    @staticmethod
    def apply(fn: Activation | str, arg: Poly) -> Poly:
        """fn(arg) as a single atom."""
        return Poly.from_terms({Monomial(0, ((Atom(fn, arg), 1),)): 1.0})

    # ------------------------------------------------------------------ ring operations
    def __add__(self, other: Poly) -> Poly:
        out = dict(self.terms)
        for m, c in other.terms:
            out[m] = out.get(m, 0.0) + c
        return Poly.from_terms(out)

    def __mul__(self, other: Poly) -> Poly:
        out: dict[Monomial, float] = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = m1.times(m2)
                out[m] = out.get(m, 0.0) + c1 * c2
        return Poly.from_terms(out)

    def __sub__(self, other: Poly) -> Poly:
        return self + other.scaled(-1.0)

    def scaled(self, s: float) -> Poly:
        return Poly.from_terms({m: s * c for m, c in self.terms})

    def shifted(self, r: float) -> Poly:
        return self + Poly.constant(r)

    def integer_power(self, n: int) -> Poly:
        """self ** n for an integer n >= 0, expanded."""
        if n > MAX_DEGREE:
            raise _too_large(f"degree {MAX_DEGREE}")
        out = Poly.constant(1.0)
        for _ in range(n):
            out = out * self
        return out

    def power(self, p: float) -> Poly:
        """self ** p (ONNX Pow with a constant exponent): expanded for an integer 0 <= p <= MAX_EXPANDED_POWER,
        else an atom 'Pow(p)'."""
        if float(p).is_integer() and 0 <= p <= MAX_EXPANDED_POWER:
            return self.integer_power(int(p))
        return Poly.apply(f"Pow({float(p)!r})", self)

    def compose(self, c: float, d: float) -> Poly:
        """self(c * t + d), atoms' arguments included."""
        inner = Poly.linear(c, d)
        out = Poly()
        for m, coef in self.terms:
            term = inner.integer_power(m.power)
            for atom, e in m.factors:
                term = term * Poly.apply(atom.fn, atom.arg.compose(c, d)).integer_power(e)
            out = out + term.scaled(coef)
        return out

    # ------------------------------------------------------------------ reading
    def depth(self) -> int:
        """How deeply functions nest in the expression (0: a polynomial in t)."""
        return max((1 + atom.arg.depth() for m, _ in self.terms for atom, _ in m.factors), default=0)

    def coefficient(self, m: Monomial) -> float:
        return dict(self.terms).get(m, 0.0)

    def affine_parts(self) -> tuple[float, float] | None:
        """(c, d) when self = c * t + d exactly (no atoms, degree <= 1), else None."""
        if any(m.factors or m.power > 1 for m, _ in self.terms):
            return None
        return self.coefficient(Monomial(1)), self.coefficient(ONE)

    def atoms(self) -> list[Atom]:
        """Every atom, nested ones included (outermost first)."""
        out: list[Atom] = []
        for m, _ in self.terms:
            for atom, _ in m.factors:
                out.append(atom)
                out.extend(atom.arg.atoms())
        return out

    def single_atom(self) -> tuple[Atom, float, float] | None:
        """(atom, a, b) when self = a * atom + b with one atom to the first power, else None."""
        rest = [(m, c) for m, c in self.terms if m != ONE]
        if len(rest) != 1:
            return None
        m, a = rest[0]
        if m.power or len(m.factors) != 1 or m.factors[0][1] != 1:
            return None
        return m.factors[0][0], a, self.coefficient(ONE)

    def describe(self) -> str:
        """A readable form for messages, e.g. ``0.5*t + 0.5*t*erf(0.707107*t)``."""
        if not self.terms:
            return "0"
        parts = []
        for m, c in self.terms:
            pieces = [] if m.power == 0 else ["t" if m.power == 1 else f"t^{m.power}"]
            for atom, e in m.factors:
                pieces.append(f"{atom.name}({atom.arg.describe()})" + (f"^{e}" if e != 1 else ""))
            if not pieces:
                parts.append(f"{c:.6g}")
            else:
                parts.append("*".join(([] if c == 1.0 else [f"{c:.6g}"]) + pieces))
        return " + ".join(parts)


# ---------------------------------------------------------------------- comparison
def _close_number(x: float, y: float, rtol: float) -> bool:
    if math.isinf(y) or math.isinf(x):
        return x == y
    return abs(x - y) <= rtol * abs(y)


def _close_fn(f: Activation | str, g: Activation | str, rtol: float) -> bool:
    if isinstance(f, str) or isinstance(g, str):
        return f == g
    if f.kind is not g.kind or len(f.slopes) != len(g.slopes):
        return False
    pairs = [(f.alpha, g.alpha), (f.lo, g.lo), (f.hi, g.hi), *zip(f.slopes, g.slopes)]
    return all(_close_number(x, y, rtol) for x, y in pairs)


def _close_atom(a: Atom, b: Atom, rtol: float) -> bool:
    return _close_fn(a.fn, b.fn, rtol) and close(a.arg, b.arg, rtol)


def close_monomials(m: Monomial, n: Monomial, rtol: float) -> bool:
    """Same power of t and factors that pair up with close atoms and equal exponents."""
    if m.power != n.power or len(m.factors) != len(n.factors):
        return False
    unused = list(n.factors)
    for atom, e in m.factors:
        match = next((i for i, (b, f) in enumerate(unused) if f == e and _close_atom(atom, b, rtol)), None)
        if match is None:
            return False
        unused.pop(match)
    return True


def close(p: Poly, q: Poly, rtol: float) -> bool:
    """p and q have the same monomials (atoms compared recursively) and each coefficient of p is within ``rtol``
    (relative) of q's. Only constants may differ, never the structure: any pairing found is a proof that the two
    expressions differ by at most ``rtol`` in each written constant."""
    unused = list(p.terms)
    for n, cq in q.terms:
        match = next((i for i, (m, cp) in enumerate(unused)
                      if close_monomials(m, n, rtol) and _close_number(cp, cq, rtol)), None)
        if match is None:
            return False
        unused.pop(match)
    return not unused
