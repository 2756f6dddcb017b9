"""The region files ``certify-proof check`` reads on its own: ``box.yaml`` (:func:`read_region`, the region format of
DESIGN.md section 5 as certify's reader takes it) and VNNLIB properties (:func:`read_vnnlib`, the subset certify's
:mod:`certify.importers.vnnlib` reads). Imports the standard library only; part of the checker, which re-exports
these names (:mod:`certify.proof.checker`)."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path


class BadInput(ValueError):
    """A file that cannot be read or is not a proof (exit 3)."""


_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_KEY = re.compile(r"""^("([^"]*)"|'([^']*)'|[^\s"'#:-][^:#]*?)\s*:(\s+(.*))?$""")
_TOP = {"states", "inputs", "lower", "upper", "names", "norm", "margin", "metric"}


def _strip_comment(line: str) -> str:
    quote = None
    for k, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k].rstrip()
    return line.rstrip()


def _number(text: str, where: str, toward: int = 0) -> float:
    """The decimal ``text`` as a float64: the nearest (``toward`` 0), or rounded outward as certify reads a box
    bound: the largest float <= it (-1, a lower bound) or the smallest float >= it (+1, an upper bound)."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise BadInput(f"{where}: {text!r} is not a number this checker reads")
    x = float(text)
    if toward and math.isfinite(x):  # Decimal, not Fraction: 1e-10000000 as a Fraction takes seconds to build
        exact, near = Decimal(text), Decimal(x)
        if near != exact and (near < exact) == (toward > 0):
            x = math.nextafter(x, math.inf * toward)
    if not math.isfinite(x):
        raise BadInput(f"{where}: {text!r} is not finite")
    return x


def _flow_list(text: str, where: str, toward: tuple[int, ...] | int = 0) -> list[float]:
    """The numbers of a one-line list ``[a, b, ...]``; ``toward``: the rounding of :func:`_number`, one for all
    entries or one per entry."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")) or "[" in text[1:-1]:
        raise BadInput(f"{where}: expected a list [a, b, ...] on one line")
    body = text[1:-1].strip()
    items = body.split(",") if body else []
    sides = (toward,) * len(items) if isinstance(toward, int) else toward
    if len(sides) != len(items):
        raise BadInput(f"{where}: expected a pair [lower, upper]")
    return [_number(t, where, side) for t, side in zip(items, sides)]


def _flow_decimals(text: str) -> list[Decimal]:
    """The exact values of a one-line list that :func:`_flow_list` has read."""
    body = text.strip()[1:-1].strip()
    return [Decimal(t.strip()) for t in body.split(",")] if body else []


#: the norm certify's command runs in when the region file gives none (VerifyConfig.norm's default; a test checks it)
DEFAULT_NORM = 2.0
#: the norm names certify's region reader takes (certify.ir.numerics.parse_norm, lower-cased; a test checks it)
_NORM_WORDS = {"1": 1.0, "2": 2.0, "inf": math.inf, "1.0": 1.0, "2.0": 2.0, "infinity": math.inf, "+inf": math.inf,
               "linf": math.inf, "l1": 1.0, "l2": 2.0}
_YAML_INF = re.compile(r"\+?\.(inf|Inf|INF)")


@dataclass(frozen=True)
class RegionFile:
    """What the checker reads from a region file: the box (``lower``, ``upper``), the state count (None: not
    given), and the check it asks for: ``norm`` (1.0, 2.0 or inf; None: not given, certify then uses
    :data:`DEFAULT_NORM`), ``margin`` (in [0, 1); None: not given, a threshold claim is then a bound <= 1) and
    ``metric`` ("auto", the rows of a matrix P, or None for none or ``identity``); for a VNNLIB file, ``outputs``:
    the bounds every output must stay strictly within, as the file's exact constants (:func:`read_vnnlib`)."""

    lower: list[float]
    upper: list[float]
    n_states: int | None = None
    norm: float | None = None
    margin: float | None = None
    metric: str | tuple | None = None  # "auto", or the rows of P; None: none (or "identity") asked for
    outputs: tuple | None = None  # a VNNLIB file's safe side: (lower, upper), per output a Decimal or None


def _region_norm(text: str, where: str) -> float:
    """The value of a region file's ``norm:`` line as certify's reader takes it (1, 2, inf, .inf, "inf", l2, ...);
    BadInput for anything else."""
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'"
    word = text[1:-1] if quoted else text
    if not quoted and _YAML_INF.fullmatch(word):
        return math.inf
    if not quoted and _NUMBER.fullmatch(word) and float(word) in (1.0, 2.0):
        return float(word)
    got = _NORM_WORDS.get(word.strip().lower())
    if got is None:
        raise BadInput(f"{where}: norm must be 1, 2 or inf, got {text!r}")
    return got


def _region_margin(text: str, where: str) -> float:
    """The value of a region file's ``margin:`` line: a number in [0, 1); BadInput otherwise."""
    m = _number(text, f"{where}: margin")
    if not 0 <= m < 1:
        raise BadInput(f"{where}: margin must be a number in [0, 1), got {text!r}")
    return m


_REGION_VALUE = {"norm": _region_norm, "margin": _region_margin}


def _region_metric(text: str, where: str) -> str | tuple | None:
    """The value on a region file's ``metric:`` line: "auto", None for ``identity``, or P's rows given as one flow
    list of lists ``[[a, b], [c, d]]``; BadInput for anything else."""
    word = text.strip().strip("'\"").lower()
    if word in ("auto", "identity"):
        return "auto" if word == "auto" else None
    body = text.strip()
    if body.startswith("[[") and body.endswith("]]"):
        return tuple(tuple(_flow_list("[" + row.strip().strip("[]") + "]", where))
                     for row in body[1:-1].split("],"))
    raise BadInput(f"{where}: give the metric as 'auto', 'identity' or the rows of P")


_VN_TOKEN = re.compile(r"\s*(?:(;[^\n]*)|(\()|(\))|([^\s();]+))")
_VN_VAR = re.compile(r"([XY])_([0-9]+)")
_VN_SKIPPED = ("set-logic", "set-info", "set-option", "check-sat", "get-model", "exit")
_VN_DEPTH = 64


def _vn_forms(text: str, where: str) -> list:
    """The top-level S-expressions of a VNNLIB text as nested lists of atoms (str), without recursion."""
    forms: list = []
    stack: list[list] = []
    pos = 0
    while pos < len(text):
        m = _VN_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        _, opening, closing, atom = m.groups()
        pos = m.end()
        if opening:
            if len(stack) >= _VN_DEPTH:
                raise BadInput(f"{where}: expressions nested deeper than {_VN_DEPTH}")
            stack.append([])
        elif closing:
            if not stack:
                raise BadInput(f"{where}: ')' without a matching '('")
            done = stack.pop()
            (stack[-1] if stack else forms).append(done)
        elif atom is not None:
            if not stack:
                raise BadInput(f"{where}: {atom[:40]!r} outside any (...) expression")
            stack[-1].append(atom)
    if text[pos:].strip() or stack:
        raise BadInput(f"{where}: unbalanced parentheses or unreadable text")
    return forms


def _vn_constant(node, where: str) -> Decimal | None:
    """The exact value of a constant (``1.5``, ``-2e-3``, ``(- 0.5)``); None when ``node`` is no constant."""
    if isinstance(node, list):
        if len(node) == 2 and node[0] == "-":
            inner = _vn_constant(node[1], where)
            return None if inner is None else -inner
        return None
    if not _NUMBER.fullmatch(node):
        return None
    try:
        value = Decimal(node)
    except ArithmeticError:
        raise BadInput(f"{where}: the constant {node[:40]!r} is out of range") from None
    if not value.is_finite() or abs(value) > Decimal(sys.float_info.max):
        raise BadInput(f"{where}: the constant {node[:40]!r} is beyond the float64 range")
    return value


def _vn_bound(node, declared: set, where: str) -> tuple[str, int, bool, Decimal]:
    """(kind "X" or "Y", index, whether it is an upper bound v <= c, c) of one comparison (<= a b) / (>= a b)."""
    if not (isinstance(node, list) and len(node) == 3 and node[0] in ("<=", ">=")):
        raise BadInput(f"{where}: expected a bound (<= v c) or (>= v c)")
    a, b = node[1], node[2]
    var_a = isinstance(a, str) and _VN_VAR.fullmatch(a) is not None
    var_b = isinstance(b, str) and _VN_VAR.fullmatch(b) is not None
    if var_a == var_b:
        raise BadInput(f"{where}: a bound compares one variable X_i or Y_i with one constant")
    var, const = (a, b) if var_a else (b, a)
    if var not in declared:
        raise BadInput(f"{where}: {var} is used but never declared")
    value = _vn_constant(const, where)
    if value is None:
        raise BadInput(f"{where}: a bound's other side must be a constant")
    m = _VN_VAR.fullmatch(var)
    return m.group(1), int(m.group(2)), (node[0] == "<=") == var_a, value


def _vn_float(value: Decimal, toward: int) -> float:
    """``value`` as float64: the largest float <= it (toward -1) or the smallest float >= it (toward +1)."""
    x = float(value)
    near = Decimal(x)
    if near != value and (near < value) == (toward > 0):
        x = math.nextafter(x, math.inf * toward)
    return x + 0.0


def read_vnnlib(path: str | Path) -> RegionFile:
    """The input box and the output property of a VNNLIB file, read as certify reads one
    (:mod:`certify.importers.vnnlib`): inputs X_i and outputs Y_i declared ``Real`` and numbered from 0; input bounds
    (single comparisons, alone or in one ``and``) give the box, the tightest per side, rounded outward to float64;
    the unsafe set is one output bound or one ``or`` of single output bounds (``(and t)`` or ``t``), and its union
    gives, per output, the exact constants Y_i must stay strictly above (the largest c of {Y_i <= c}) and below (the
    smallest c of {Y_i >= c}). Anything else (several output assertions, whose intersection certify does not check;
    a disjunction over inputs; other terms) is BadInput, as certify refuses it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the VNNLIB file ({exc})") from None
    where = str(path)
    declared: set = set()
    inputs, outputs, output_asserts = [], [], 0
    for form in _vn_forms(text, where):
        head = form[0] if form and isinstance(form[0], str) else None
        if head == "declare-const":
            if len(form) != 3 or form[2] != "Real" or not isinstance(form[1], str) or \
                    not _VN_VAR.fullmatch(form[1]) or form[1] in declared:
                raise BadInput(f"{where}: expected (declare-const X_i Real) or (declare-const Y_i Real), once each")
            declared.add(form[1])
        elif head == "assert":
            if len(form) != 2 or not isinstance(form[1], list) or not form[1]:
                raise BadInput(f"{where}: expected (assert EXPRESSION)")
            expr = form[1]
            if expr[0] == "or":
                terms = [d[1] if isinstance(d, list) and len(d) == 2 and d[0] == "and" else d for d in expr[1:]]
                bounds = [_vn_bound(t, declared, where) for t in terms]
                if not bounds or any(b[0] != "Y" for b in bounds):
                    raise BadInput(f"{where}: an (or ...) must hold single bounds on outputs Y_i")
                outputs += bounds
                output_asserts += 1
                continue
            terms = expr[1:] if expr[0] == "and" else [expr]
            if not terms:
                raise BadInput(f"{where}: (and) with nothing in it")
            for b in (_vn_bound(t, declared, where) for t in terms):
                if b[0] == "X":
                    inputs.append(b)
                else:
                    outputs.append(b)
                    output_asserts += 1
        elif head not in _VN_SKIPPED:
            raise BadInput(f"{where}: expected (declare-const ...) or (assert ...)")
    if output_asserts > 1:
        raise BadInput(f"{where}: several output assertions (an unsafe set that is an intersection)")
    count = {k: sum(1 for v in declared if v[0] == k) for k in "XY"}
    if not count["X"] or any(f"{k}_{i}" not in declared for k in "XY" for i in range(count[k])):
        raise BadInput(f"{where}: declare X_0 .. X_(n-1) (and Y_0 .. Y_(m-1)), numbered from 0")
    lower, upper = [], []
    for i in range(count["X"]):
        lows = [c for k, j, up, c in inputs if j == i and not up]
        ups = [c for k, j, up, c in inputs if j == i and up]
        if not lows or not ups or max(lows) > min(ups):
            raise BadInput(f"{where}: input X_{i} needs a lower and an upper bound, lower <= upper")
        lower.append(_vn_float(max(lows), -1))
        upper.append(_vn_float(min(ups), 1))
    property_ = None
    if outputs:
        m = count["Y"]
        above = [max((c for _, j, up, c in outputs if j == i and up), default=None) for i in range(m)]
        below = [min((c for _, j, up, c in outputs if j == i and not up), default=None) for i in range(m)]
        property_ = (above, below)  # Y_i > above_i (the unsafe {Y_i <= c}) and Y_i < below_i ({Y_i >= c})
    return RegionFile(lower, upper, None, outputs=property_)


def read_region(path: str | Path) -> RegionFile:
    """The box, state count, norm and margin of a region file, read by the small reader described in the module
    docstring; BadInput for anything outside it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the region file ({exc})") from None
    blocks: dict[str, list] = {}
    exact: dict[str, list] = {"lower": [], "upper": [], "pairs": []}  # the bounds as written, for emptiness
    asks: dict[str, float] = {}  # norm and margin
    key, names, ended = None, set(), False
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        line = _strip_comment(raw)
        if not line.strip():
            continue
        if ended or (line.strip() == "---" and key is not None):  # as certify's reader: one document per file
            raise BadInput(f"{where}: a second YAML document; give one region per file")
        if line.strip() in ("---", "..."):
            ended = line.strip() == "..."
            continue
        indented = line[0] in " \t"
        body = line.strip()
        if not indented and not body.startswith("-"):
            m = _KEY.match(body)
            if not m:
                raise BadInput(f"{where}: not a 'key: value' line this checker reads")
            key = m.group(2) or m.group(3) or m.group(1)
            if key not in _TOP or key in blocks:
                raise BadInput(f"{where}: unexpected key {key!r}")
            value = (m.group(5) or "").strip()
            blocks[key] = []
            if key in ("norm", "margin") and value:
                asks[key] = _REGION_VALUE[key](value, where)
            elif key == "metric" and value:
                asks["metric"] = _region_metric(value, where)
            elif value and key in ("lower", "upper"):  # box bounds are read outward, as certify reads them
                blocks[key] = _flow_list(value, where, -1 if key == "lower" else 1)
                exact[key] = _flow_decimals(value)
            elif value and key in ("states", "inputs"):
                raise BadInput(f"{where}: give '{key}' as one 'name: [lower, upper]' line per coordinate")
            continue
        if key is None:
            raise BadInput(f"{where}: an indented line before any key")
        if key in ("norm", "margin"):  # the value on the one line below the key (YAML allows it)
            if key in asks:
                raise BadInput(f"{where}: give '{key}' one value ({key}: value)")
            asks[key] = _REGION_VALUE[key](body, where)
            continue
        if key == "metric":  # P as rows, one '- [a, b, ...]' line each
            if not body.startswith("- ") or isinstance(asks.get("metric"), str):
                raise BadInput(f"{where}: give the metric as 'auto', 'identity' or rows '- [a, b, ...]' of P")
            asks["metric"] = asks.get("metric", ()) + (tuple(_flow_list(body[2:], where)),)
            continue
        if key == "names":
            continue  # not part of the box
        if key in ("lower", "upper"):
            if not body.startswith("- "):
                raise BadInput(f"{where}: expected '- number' under {key}")
            blocks[key].append(_number(body[2:], where, -1 if key == "lower" else 1))
            exact[key].append(Decimal(body[2:].strip()))
            continue
        m = _KEY.match(body)
        if not m or not m.group(5):
            raise BadInput(f"{where}: expected 'name: [lower, upper]' under {key}")
        name = m.group(2) or m.group(3) or m.group(1)
        if name in names:
            raise BadInput(f"{where}: the coordinate {name!r} is given twice")
        names.add(name)
        blocks[key].append(_flow_list(m.group(5), where, (-1, 1)))
        exact["pairs"].append((name, *_flow_decimals(m.group(5))))
    empty = [k for k in ("norm", "margin", "metric") if k in blocks and k not in asks]
    if empty:
        raise BadInput(f"{path}: '{empty[0]}' has no value")
    if "states" in blocks and ("lower" in blocks or "upper" in blocks):
        raise BadInput(f"{path}: give the box either as 'states' (and 'inputs') or as 'lower'/'upper', not both")
    if "states" in blocks:
        pairs = blocks["states"] + blocks.get("inputs", [])
        region = RegionFile([a for a, _ in pairs], [b for _, b in pairs], len(blocks["states"]), **asks)
    elif "lower" in blocks and "upper" in blocks:
        region = RegionFile(blocks["lower"], blocks["upper"], None, **asks)
    else:
        raise BadInput(f"{path}: no 'states' (or 'lower'/'upper') in the region file")
    if len(region.lower) != len(region.upper):
        raise BadInput(f"{path}: 'lower' has {len(region.lower)} entries and 'upper' {len(region.upper)}")
    empty_at = next((i for i, (a, b) in enumerate(zip(region.lower, region.upper)) if not a <= b), None)
    if empty_at is not None:
        raise BadInput(f"{path}: coordinate {empty_at} has lower {region.lower[empty_at]!r} > upper "
                       f"{region.upper[empty_at]!r}: the box is empty")
    # as certify's reader: the bounds as written, not as rounded outward (which keeps an empty one non-empty)
    sides = [(repr(name), a, b) for name, a, b in exact["pairs"]]
    sides += [(str(i), a, b) for i, (a, b) in enumerate(zip(exact["lower"], exact["upper"]))]
    for name, a, b in sides:
        if a > b:
            raise BadInput(f"{path}: coordinate {name} has lower {a} > upper {b}: the box is empty")
    return region
