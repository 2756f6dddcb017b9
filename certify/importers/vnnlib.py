"""VNNLIB property files (``prop.vnnlib``, the VNN-COMP format) as a region: the input box and an output property.

The convention (VNN-COMP): a VNNLIB file states the *unsafe* case. Its assertions together are an SMT formula over
the inputs X_i and the outputs Y_i of the network; the property holds ("unsat") when no input in the stated box
gives outputs that satisfy the output assertions, and is violated ("sat") when some input does. certify reads:

* ``(declare-const X_i Real)`` / ``(declare-const Y_i Real)``: inputs X_0 .. X_{n-1} and outputs Y_0 .. Y_{m-1};
* input bounds ``(assert (<= X_i c))`` / ``(assert (>= X_i c))`` (either argument order, ``(- c)`` for a negative
  constant), also several at once in ``(assert (and ...))``: the box. Every input needs a lower and an upper bound
  (several bounds on one side: the tightest);
* the unsafe set as a union of single output bounds: one ``(assert (>= Y_i c))`` (or ``<=``), or one
  ``(assert (or (and (>= Y_i c)) (and (<= Y_j d)) ...))`` whose every disjunct is one bound on one output (``(and
  t)`` or ``t``). The unsafe set {Y_i >= c} gives the safe bound Y_i < c, {Y_i <= d} gives Y_i > d: the property
  holds iff every output stays strictly within these bounds over the box (:class:`~certify.ir.output_property.
  OutputProperty`), which the ``output_bounds`` check decides.

So certify's ``certified`` is VNN-COMP's ``unsat`` (the property holds), ``falsified`` its ``sat`` (with an input x
of the box, replayed through the model, whose outputs lie in the unsafe set), and ``unknown`` is ``unknown``.

Constants are read exactly (decimal text, any number of digits, ``1e-5``; as :class:`decimal.Decimal`, compared
without rounding) and then rounded to float64 in the direction that keeps both answers sound:

* an input bound outward: ``X_i >= c`` gives the largest float <= c, ``X_i <= c`` the smallest float >= c, so the
  float box contains the file's real box (an empty real box is an error, decided on the exact constants);
* an output bound to the float strictly on the safe side of c: the unsafe set {Y_i >= c} gives the bound
  ``upper_i`` = the largest float < c, {Y_i <= d} gives ``lower_i`` = the smallest float > d. The check's strict
  test f_i < upper_i then implies f_i < c for every real f_i (certified is sound), and for a float64 output f_i,
  f_i > upper_i holds exactly when f_i >= c (a replayed output equal to the constant is in the closed unsafe set:
  ``sat``, never ``unknown`` or safe).

A constant whose magnitude exceeds the float64 maximum (``1e400``, a 5000-digit integer) is an error naming the file,
line and constant (it would round to an infinite bound, which is no box, and an output side made free would drop an
unsafe set the real network might reach); a nonzero constant below the smallest subnormal rounds soundly to 0 or
+-5e-324 by the rules above.

Anything else is a :class:`~certify.errors.RegionError` naming the file and the line of the assertion: a
comparison of two variables (Y_0 <= Y_1), sums or products, a disjunct with several constraints, a disjunction over
inputs (several input boxes), a conjunction of output constraints (an unsafe set that is an intersection), an
undeclared or unknown variable, an input without both bounds, strict comparisons (< and > are not VNNLIB).
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from ..errors import RegionError
from ..ir.box import Box
from ..ir.output_property import OutputProperty

MAX_BYTES = 64 << 20  # VNN-COMP files of image nets hold a few thousand lines; this leaves ample room
MAX_DEPTH = 64
_TOKEN = re.compile(r"\s*(?:(;[^\n]*)|(\()|(\))|([^\s();]+))")
_VAR = re.compile(r"^([XY])_(\d+)$")
_COMPARISONS = ("<=", ">=")
_NUMERAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NOT_FINITE = {"inf", "infinity", "nan", "snan"}
_FLOAT_MAX = Decimal(sys.float_info.max)


@dataclass(frozen=True)
class _List:
    items: tuple
    line: int


@dataclass(frozen=True)
class _Atom:
    text: str
    line: int


@dataclass(frozen=True)
class _Bound:
    """var <= exact (upper=True) or var >= exact; ``value`` is ``exact`` rounded to float64 as its role asks (module
    docstring): outward for an input, strictly to the safe side for an output."""

    kind: str  # "X" or "Y"
    index: int
    value: float
    upper: bool
    line: int
    exact: Decimal


def _parse(text: str, path: str) -> list[_List]:
    """The top-level S-expressions of ``text``, each with the line it starts on (iterative: no recursion limit)."""
    forms: list[_List] = []
    stack: list[tuple[list, int]] = []
    pos, line, last = 0, 1, 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        comment, opening, closing, atom = m.groups()
        start = m.start(next(k for k in range(1, 5) if m.group(k) is not None))
        line += text.count("\n", last, start)
        last = start
        if opening:
            if len(stack) >= MAX_DEPTH:
                raise RegionError(f"{path}: line {line}: expressions nested deeper than {MAX_DEPTH}")
            stack.append(([], line))
        elif closing:
            if not stack:
                raise RegionError(f"{path}: line {line}: ')' without a matching '('")
            items, first = stack.pop()
            node = _List(tuple(items), first)
            if stack:
                stack[-1][0].append(node)
            else:
                forms.append(node)
        elif atom is not None:
            if not stack:
                raise RegionError(f"{path}: line {line}: {atom!r} outside any (...) expression")
            stack[-1][0].append(_Atom(atom, line))
        pos = m.end()
    line += text.count("\n", last, pos)
    if text[pos:].strip():
        raise RegionError(f"{path}: line {line}: cannot read {text[pos:pos + 20]!r}")
    if stack:
        raise RegionError(f"{path}: line {stack[-1][1]}: '(' is never closed")
    return forms


def _head(node) -> str:
    return node.items[0].text if isinstance(node, _List) and node.items and isinstance(node.items[0], _Atom) else ""


def _show(node) -> str:
    if isinstance(node, _Atom):
        return node.text
    return "(" + " ".join(_show(i) for i in node.items) + ")"


def _short(node) -> str:
    text = _show(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _shown(text: str) -> str:
    """A constant's text for a message: at most 40 characters, with the length when cut."""
    return repr(text) if len(text) <= 40 else f"'{text[:30]}...' ({len(text)} characters)"


def _number(node, path: str) -> Decimal | None:
    """The exact value of a numeric constant (``1.5``, ``-2e-3``, ``(- 0.5)``), or None when ``node`` is no constant;
    RegionError for NaN, an infinity or a magnitude over the float64 maximum (module docstring)."""
    if isinstance(node, _List):
        if _head(node) == "-" and len(node.items) == 2:
            inner = _number(node.items[1], path)
            return None if inner is None else inner.copy_negate()  # exact (unary minus would round to 28 digits)
        return None
    text = node.text
    if _NUMERAL.fullmatch(text) is None:
        if text.lower().lstrip("+-") in _NOT_FINITE:
            raise RegionError(f"{path}: line {node.line}: the constant {text!r} is not a finite number")
        return None
    try:
        value = Decimal(text)  # exact, whatever the context's precision
    except InvalidOperation:  # an exponent beyond 10^18, either way
        value = None
    if value is None or not value.is_finite():
        raise RegionError(f"{path}: line {node.line}: the constant {_shown(text)} has an exponent beyond what certify "
                          "reads (over 10^18 in magnitude); give a number in the float64 range")
    if value.copy_abs() > _FLOAT_MAX:
        raise RegionError(f"{path}: line {node.line}: the constant {_shown(text)} is beyond the float64 range "
                          f"(magnitude over {sys.float_info.max:.4g}); give a smaller number")
    return value


def floats_around(value: Decimal) -> tuple[float, float]:
    """(the largest float64 <= ``value``, the smallest float64 >= ``value``): one float twice when ``value`` is a
    float64 value; a side beyond the float64 range is -inf or inf. ``value`` finite, rounding to a finite float
    (what :func:`_number` returns). float() rounds correctly, so the nearest float is one of the two and the other
    is its neighbour on the value's side."""
    f = float(value)
    near = Decimal(f)
    if near == value:
        return f + 0.0, f + 0.0  # -0.0 -> 0.0
    if near > value:
        return math.nextafter(f, -math.inf) + 0.0, f + 0.0
    return f + 0.0, math.nextafter(f, math.inf) + 0.0


def float_at_most(value: Decimal, strict: bool = False) -> float:
    """The largest float64 <= ``value`` (< ``value`` when ``strict``); -inf when there is none. ``value`` finite with
    magnitude at most the float64 maximum (what :func:`_number` returns)."""
    down, up = floats_around(value)
    return math.nextafter(down, -math.inf) + 0.0 if strict and down == up else down


def float_at_least(value: Decimal, strict: bool = False) -> float:
    """The smallest float64 >= ``value`` (> ``value`` when ``strict``); +inf when there is none."""
    return -float_at_most(value.copy_negate(), strict) + 0.0


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.declared: dict[str, int] = {}  # name -> line

    def fail(self, line: int, msg: str) -> RegionError:
        return RegionError(f"{self.path}: line {line}: {msg}")

    def variable(self, node) -> tuple[str, int] | None:
        if not isinstance(node, _Atom):
            return None
        m = _VAR.match(node.text)
        if m is None:
            if _number(node, self.path) is None:
                raise self.fail(node.line, f"unknown variable {node.text!r}; VNNLIB names inputs X_i and outputs Y_i")
            return None
        if node.text not in self.declared:
            raise self.fail(node.line, f"{node.text} is used but never declared with (declare-const {node.text} Real)")
        return m.group(1), int(m.group(2))

    def bound(self, node) -> _Bound:
        """One comparison of a variable with a constant."""
        op = _head(node)
        if op in ("<", ">", "="):
            raise self.fail(node.line, f"{_short(node)}: comparison {op!r} is not supported; VNNLIB bounds use <= and "
                                       ">=")
        if op not in _COMPARISONS:
            raise self.fail(node.line, f"{_short(node)}: expected a bound (<= v c) or (>= v c)")
        if len(node.items) != 3:
            raise self.fail(node.line, f"{_short(node)}: a bound compares one variable with one constant")
        a, b = node.items[1], node.items[2]
        va, vb = self.variable(a), self.variable(b)
        if va is not None and vb is not None:
            raise self.fail(node.line, f"{_short(node)}: compares two variables; certify reads bounds on single "
                                       "inputs and outputs (v <= c, v >= c), not comparisons between them")
        var, const, flipped = (va, b, False) if va is not None else (vb, a, True)
        if var is None:
            raise self.fail(node.line, f"{_short(node)}: needs a variable X_i or Y_i on one side")
        value = _number(const, self.path)
        if value is None:
            raise self.fail(node.line, f"{_short(node)}: {_short(const)} is not a constant; sums, products and other "
                                       "terms are not supported (only v <= c and v >= c)")
        upper = (op == "<=") != flipped
        kind = var[0]
        if kind == "X":  # outward: the float box contains the real one
            rounded = float_at_least(value) if upper else float_at_most(value)
        else:  # the float strictly on the safe side of the closed unsafe set {Y <= c} / {Y >= c}
            rounded = float_at_least(value, strict=True) if upper else float_at_most(value, strict=True)
        if not math.isfinite(rounded):
            raise self.fail(node.line, f"{_short(node)}: no float64 lies {'above' if upper else 'below'} the constant "
                                       f"{_shown(const.text if isinstance(const, _Atom) else str(value))}; give a "
                                       "bound inside the float64 range")
        return _Bound(kind, var[1], rounded, upper, node.line, value)

    def conjunction(self, node) -> list[_Bound]:
        """A bound, or (and bound ...)."""
        if _head(node) == "and":
            if len(node.items) < 2:
                raise self.fail(node.line, "(and) with nothing in it")
            out = []
            for item in node.items[1:]:
                if _head(item) in ("and", "or"):
                    raise self.fail(item.line, f"{_short(item)}: nested {_head(item)!r} is not supported inside "
                                               "(and ...)")
                out.append(self.bound(item))
            return out
        if _head(node) == "or":
            raise self.fail(node.line, "nested (or ...) is not supported")
        return [self.bound(node)]


def _extreme(bounds: list[_Bound], n: int, largest: bool) -> list[_Bound | None]:
    """Per variable index 0 .. n-1, the bound of ``bounds`` with the largest (or smallest) exact constant; None where
    there is none. Decided on the exact constants: two of them may round to the same float."""
    best: list[_Bound | None] = [None] * n
    for b in bounds:
        kept = best[b.index]
        if kept is None or (b.exact > kept.exact if largest else b.exact < kept.exact):
            best[b.index] = b
    return best


def parse_vnnlib(text: str, path: str = "<vnnlib>", n_in: int | None = None, with_inner: bool = False):
    """The box (inputs X_i) and the output property (None when the file asserts nothing about outputs) of a VNNLIB
    text (module docstring). ``n_in``: the model's input count when known (a file with another count is refused).
    ``with_inner``: also return the float64 box inside the file's exact box, (lower, upper) arrays (lower > upper
    where no float lies inside), or None when the file's bounds are float64 values (the box is then exact); a
    witness outside it lies outside the file's box."""
    reader = _Reader(path)
    forms = _parse(text, path)
    inputs: list[_Bound] = []
    output_terms: list[list[_Bound]] = []  # disjuncts of the unsafe set, each one bound
    output_asserts: list[tuple[str, int]] = []  # (kind, line): "single" / "or"
    for form in forms:
        head = _head(form)
        if head == "declare-const":
            if len(form.items) != 3 or not all(isinstance(i, _Atom) for i in form.items[1:]):
                raise reader.fail(form.line, f"{_short(form)}: expected (declare-const NAME Real)")
            name, sort = form.items[1].text, form.items[2].text
            if sort != "Real":
                raise reader.fail(form.line, f"{name} is declared of sort {sort!r}; certify reads Real variables")
            if not _VAR.match(name):
                raise reader.fail(form.line, f"unknown variable {name!r}; VNNLIB names inputs X_i and outputs Y_i")
            if name in reader.declared:
                raise reader.fail(form.line, f"{name} is declared twice (first on line {reader.declared[name]})")
            reader.declared[name] = form.line
        elif head == "assert":
            if len(form.items) != 2 or not isinstance(form.items[1], _List):
                raise reader.fail(form.line, f"{_short(form)}: expected (assert EXPRESSION)")
            expr = form.items[1]
            if _head(expr) == "or":
                disjuncts = [reader.conjunction(d) for d in expr.items[1:]]
                if not disjuncts:
                    raise reader.fail(expr.line, "(or) with nothing in it")
                for d, node in zip(disjuncts, expr.items[1:]):
                    if any(b.kind == "X" for b in d):
                        raise reader.fail(node.line, f"{_short(node)}: a disjunction over inputs (several input "
                                                     "regions) is not supported; write one input box per file")
                    if len(d) != 1:
                        raise reader.fail(node.line, f"{_short(node)}: a disjunct with {len(d)} output constraints "
                                                     "(their intersection) is not supported; certify checks unsafe "
                                                     "sets that are unions of single bounds Y_i >= c or Y_i <= c")
                output_terms.extend(disjuncts)
                output_asserts.append(("or", form.line))
            else:
                for b in reader.conjunction(expr):
                    if b.kind == "X":
                        inputs.append(b)
                    else:
                        output_terms.append([b])
                        output_asserts.append(("single", b.line))
        elif head in ("set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"):
            continue
        else:
            raise reader.fail(form.line, f"{_short(form)}: expected (declare-const ...) or (assert ...)")
    if len(output_asserts) > 1:
        lines = ", ".join(str(line) for _, line in output_asserts)
        raise RegionError(
            f"{path}: line {output_asserts[1][1]}: the output assertions on lines {lines} must all hold at once (an "
            "unsafe set that is an intersection), which certify does not check; state the unsafe set as one "
            "(assert (or (and (>= Y_i c)) (and (<= Y_j d)) ...)) or a single output bound"
        )
    xs = sorted(int(_VAR.match(n).group(2)) for n in reader.declared if n.startswith("X_"))
    ys = sorted(int(_VAR.match(n).group(2)) for n in reader.declared if n.startswith("Y_"))
    if not xs:
        raise RegionError(f"{path}: declares no input X_0; a VNNLIB file declares (declare-const X_i Real) per input")
    for kind, idx in (("X", xs), ("Y", ys)):
        if idx and idx != list(range(len(idx))):
            missing = next(i for i in range(len(idx) + 1) if i not in idx)
            raise RegionError(f"{path}: {kind}_{missing} is not declared; declare {kind}_0 .. {kind}_{idx[-1]}")
    n = len(xs)
    if n_in is not None and n != n_in:
        raise input_count_error(path, n, n_in)
    tightest_lo = _extreme([b for b in inputs if not b.upper], n, largest=True)
    tightest_hi = _extreme([b for b in inputs if b.upper], n, largest=False)
    for i, (lo, hi) in enumerate(zip(tightest_lo, tightest_hi)):
        if lo is None or hi is None:
            side = "lower (>= X_{i} c)" if lo is None else "upper (<= X_{i} c)"
            raise RegionError(f"{path}: input X_{i} has no {side.format(i=i)} bound; the box needs both bounds of "
                              "every input")
        if lo.exact > hi.exact:
            raise RegionError(f"{path}: input X_{i} has lower bound {_shown(str(lo.exact))} (line {lo.line}) > upper "
                              f"bound {_shown(str(hi.exact))} (line {hi.line}) (an empty box); check its assertions")
    lower = np.array([b.value for b in tightest_lo], dtype=np.float64)
    upper = np.array([b.value for b in tightest_hi], dtype=np.float64)
    box = Box(lower, upper, tuple(f"X_{i}" for i in range(n)))
    inner_lo = np.array([float_at_least(b.exact) for b in tightest_lo], dtype=np.float64)
    inner_hi = np.array([float_at_most(b.exact) for b in tightest_hi], dtype=np.float64)
    exact = np.array_equal(inner_lo, lower) and np.array_equal(inner_hi, upper)
    inner = None if exact else (inner_lo, inner_hi)
    if not output_terms:
        return (box, None, inner) if with_inner else (box, None)
    m = len(ys)
    # the union of unsafe sides: per output the largest c of {Y_i <= c} (Y_i must stay > c) and the smallest c of
    # {Y_i >= c} (Y_i must stay < c)
    unsafe_below = _extreme([b for (b,) in output_terms if b.upper], m, largest=True)
    unsafe_above = _extreme([b for (b,) in output_terms if not b.upper], m, largest=False)
    out_lo = np.array([-math.inf if b is None else b.value for b in unsafe_below], dtype=np.float64)
    out_hi = np.array([math.inf if b is None else b.value for b in unsafe_above], dtype=np.float64)
    lo_where = ["" if b is None else f"line {b.line}" for b in unsafe_below]
    hi_where = ["" if b is None else f"line {b.line}" for b in unsafe_above]
    lo_text = tuple("" if b is None else _constant_text(b.exact) for b in unsafe_below)
    hi_text = tuple("" if b is None else _constant_text(b.exact) for b in unsafe_above)
    prop = OutputProperty(out_lo, out_hi, tuple(f"Y_{i}" for i in range(m)), tuple(lo_where), tuple(hi_where), path,
                          inner_lo, inner_hi, lo_text, hi_text)
    return (box, prop, inner) if with_inner else (box, prop)


def _constant_text(value: Decimal) -> str:
    """A file's constant for messages: exact when short (``0.30000000000000001``), else 17 significant digits."""
    text = str(value)
    return text if len(text) <= 24 else f"{value:.17g}"


def input_count_error(path: str, n: int, n_in: int) -> RegionError:
    """The error for a file with ``n`` inputs X_i given to a model with ``n_in`` inputs."""
    return RegionError(f"{path}: the file declares {n} inputs X_0 .. X_{n - 1} but the model takes {n_in} inputs; "
                       "give one (declare-const X_i Real) and two bounds per model input")


def is_vnnlib(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() == ".vnnlib"


def read_vnnlib(path: str | Path, n_in: int | None = None, with_inner: bool = False):
    """Read and parse a VNNLIB file (UTF-8 text, at most :data:`MAX_BYTES`) as :func:`parse_vnnlib` does;
    RegionError naming the file otherwise."""
    p = Path(path)
    source = str(p)
    if not p.exists():
        raise RegionError(f"{source}: VNNLIB file not found")
    if not p.is_file():
        raise RegionError(f"{source}: not a regular file; give a .vnnlib property file")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise RegionError(f"{source}: the file has {size} bytes, more than the {MAX_BYTES >> 20} MiB certify reads "
                              "from a VNNLIB file")
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise RegionError(f"{source}: not UTF-8 text; a VNNLIB file is plain text") from None
    except OSError as e:
        raise RegionError(f"{source}: cannot read the file ({e.strerror or e})") from None
    return parse_vnnlib(text, source, n_in, with_inner)
