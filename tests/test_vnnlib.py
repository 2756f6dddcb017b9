"""VNNLIB property files as regions (``--region prop.vnnlib``): parsing, clear errors, and the output_bounds check
cross-checked against a brute-force bracket of the output range on small random ReLU nets."""

from __future__ import annotations

import json
import math
import sys
from decimal import Context, Decimal, localcontext
from fractions import Fraction

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx_builders import network_to_onnx
from random_nets import leaves_only_at, random_net

import certify.cli as cli
from certify.api import verify
from certify.certificate import CheckName, Verdict
from certify.config import VerifyConfig
from certify.engines.sampling import exact_outputs
from certify.errors import RegionError
from certify.importers.region_file import load_region
from certify.importers.vnnlib import parse_vnnlib, read_vnnlib
from certify.ir import activations as acts
from certify.ir.network import Layer, Network

BOX_2 = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n" \
        "(assert (<= X_0 1.0))\n(assert (>= X_0 -1.0))\n(assert (<= X_1 1.0))\n(assert (>= X_1 -1.0))\n"


def outputs_decl(m: int) -> str:
    return "".join(f"(declare-const Y_{i} Real)\n" for i in range(m))


def write(tmp_path, text: str, name: str = "prop.vnnlib"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def run(args, capsys):
    code = cli.run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------- parsing
def test_box_from_bounds_in_every_accepted_spelling():
    text = """; comment line
(set-logic QF_LRA)
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const Y_0 Real)
(assert (<= X_0 0.5))          ; upper bound
(assert (>= X_0 (- 0.25)))     ; negative constant as (- c)
(assert (>= 2 X_1))            ; constant first: X_1 <= 2
(assert (<= -3e-1 X_1))        ; X_1 >= -0.3
(assert (and (<= X_2 1) (>= X_2 0) (<= X_2 0.75)))   ; several at once, the tightest wins
"""
    box, prop = parse_vnnlib(text, "p.vnnlib")
    assert prop is None
    # -0.3 is no float: the nearest one lies above it, so the lower bound is the float below (the box rounds outward)
    assert Fraction(-0.3) > Fraction("-0.3")
    np.testing.assert_array_equal(box.lower, [-0.25, math.nextafter(-0.3, -math.inf), 0.0])
    np.testing.assert_array_equal(box.upper, [0.5, 2.0, 0.75])
    assert box.names == ("X_0", "X_1", "X_2")


def below(c: float) -> float:
    return math.nextafter(c, -math.inf)


def above(c: float) -> float:
    return math.nextafter(c, math.inf)


def test_single_output_bounds_give_the_safe_side():
    # the safe bound is the float strictly on the safe side of c: the unsafe sets {Y >= c}, {Y <= c} are closed
    _, prop = parse_vnnlib(BOX_2 + outputs_decl(2) + "(assert (>= Y_1 3.5))\n", "p.vnnlib")
    assert prop.upper[1] == below(3.5) and math.isinf(prop.upper[0]) and np.all(np.isinf(prop.lower))
    assert "line 9" in prop.upper_where[1]
    _, prop = parse_vnnlib(BOX_2 + outputs_decl(2) + "(assert (<= Y_0 (- 2)))\n", "p.vnnlib")
    assert prop.lower[0] == above(-2.0) and np.all(np.isinf(prop.upper))
    _, prop = parse_vnnlib(BOX_2 + outputs_decl(1) + "(assert (<= 4 Y_0))\n", "p.vnnlib")  # 4 <= Y_0: Y_0 >= 4
    assert prop.upper[0] == below(4.0)


def test_a_disjunction_of_single_output_bounds_is_a_union_of_unsafe_sides():
    text = BOX_2 + outputs_decl(3) + "(assert (or (and (>= Y_0 1.5)) (and (<= Y_0 -1.5)) (<= Y_2 0) (>= Y_2 7)\n" \
                                     "            (>= Y_2 5)))\n"
    _, prop = parse_vnnlib(text, "p.vnnlib")
    np.testing.assert_array_equal(prop.lower, [above(-1.5), -math.inf, above(0.0)])
    np.testing.assert_array_equal(prop.upper, [below(1.5), math.inf, below(5.0)])  # Y_2 >= 7 or >= 5: the union
    assert prop.upper_where[2] == "line 11" and prop.lower_where[2] == "line 10"  # the 5 and the 0
    assert prop.describe().startswith("-1.5 < Y_0 < 1.5, ")


def test_load_region_reads_a_vnnlib_file_by_its_suffix(tmp_path):
    p = write(tmp_path, BOX_2 + outputs_decl(1) + "(assert (>= Y_0 2))\n", "prop.VNNLIB")
    region = load_region(p)
    assert region.outputs is not None and region.outputs.upper[0] == below(2.0) and region.heads is None
    np.testing.assert_array_equal(region.box.upper, [1.0, 1.0])


# --------------------------------------------------------------------------- constants: exact, rounded soundly
def decimal_text(x: float) -> str:
    """The exact decimal expansion of the float x (up to ~770 digits)."""
    return format(Decimal(x), "f")


def floats_near(q: Fraction) -> list[float]:
    """The floats around q: the nearest one and its two neighbours."""
    f = float(q)
    return [math.nextafter(f, -math.inf), f, math.nextafter(f, math.inf)]


EXACT = Context(prec=2000)  # enough digits for any sum of two floats, so its operations do not round
_finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
DECIMALS = st.one_of(
    # decimal text as people write it: sign, digits, point, digits, exponent (any of them may be missing)
    st.builds(lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
              st.sampled_from(["", "-", "+"]), st.text("0123456789", min_size=1, max_size=22),
              st.sampled_from(["", "."]).flatmap(lambda dot: st.text("0123456789", max_size=22).map(
                  lambda d: dot + d if dot else "")),
              st.one_of(st.just(""), st.integers(-340, 300).map(lambda e: f"e{e}"))),
    _finite.map(repr),  # shortest round-trip text: often not the float itself
    _finite.map(decimal_text),  # exactly a float: the output bound must move off it
    _finite.map(lambda x: decimal_text(x) + "1"),  # just beside a float
    _finite.map(lambda x: format(EXACT.divide(EXACT.add(Decimal(x), Decimal(math.nextafter(x, math.inf))), 2), "f")),
)  # the last: the midpoint of two floats (a tie for round-to-nearest), exactly


@settings(max_examples=300, deadline=None)
@given(DECIMALS)
def test_every_constant_is_rounded_to_the_sound_side(text):
    """The float box contains the file's real box, and the float safe bounds lie strictly inside the real safe side;
    both are the tightest floats doing so, and a float output is unsafe in float64 exactly when it is unsafe in the
    file (closed unsafe sets: f > upper iff f >= c, f < lower iff f <= c)."""
    q = Fraction(text)
    assume(abs(q) <= Fraction(sys.float_info.max) / 2)
    body = (f"(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
            f"(assert (>= X_0 {text}))\n(assert (<= X_0 {text}))\n(assert (or (>= Y_0 {text}) (<= Y_1 {text})))\n")
    box, prop = parse_vnnlib(body, "p.vnnlib")
    lo, hi = float(box.lower[0]), float(box.upper[0])
    assert Fraction(lo) <= q <= Fraction(hi)  # outward
    assert Fraction(above(lo)) > q and Fraction(below(hi)) < q  # and no wider than needed
    upper, lower = float(prop.upper[0]), float(prop.lower[1])
    assert Fraction(upper) < q <= Fraction(above(upper))  # {Y_0 >= q} unsafe: the largest float below q
    assert Fraction(below(lower)) <= q < Fraction(lower)  # {Y_1 <= q} unsafe: the smallest float above q
    for f in floats_near(q) + [lo, hi]:
        assert (f > upper) == (Fraction(f) >= q) and (f < lower) == (Fraction(f) <= q), f


def test_reading_does_not_depend_on_the_decimal_context():
    text = ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 (- 0.123456789012345678901)))\n"
            "(assert (<= X_0 0.123456789012345678901))\n(assert (>= Y_0 (- 1e-400)))\n")
    box, prop = parse_vnnlib(text, "p.vnnlib")
    with localcontext(Context(prec=3, Emin=-10, Emax=10, traps=[])):
        box3, prop3 = parse_vnnlib(text, "p.vnnlib")
    assert (box3.lower[0], box3.upper[0], prop3.upper[0]) == (box.lower[0], box.upper[0], prop.upper[0])
    assert prop.upper[0] == -math.ulp(0.0) and Fraction(box.upper[0]) >= Fraction("0.123456789012345678901")


def test_an_empty_box_is_decided_on_the_exact_constants():
    # 0.30000000000000001 > 0.3, but both are nearest to the same float: rounded first, the box would not be empty
    assert float("0.30000000000000001") == float("0.3")
    text = "(declare-const X_0 Real)\n(assert (>= X_0 0.30000000000000001))\n(assert (<= X_0 0.3))\n"
    with pytest.raises(RegionError, match=r"^e.vnnlib: input X_0 .*\(an empty box\)"):
        parse_vnnlib(text, "e.vnnlib")
    # equal constants give a point, a box of two floats when it is no float (the float 0.3 lies below 0.3)
    box, _ = parse_vnnlib(text.replace("0.30000000000000001", "0.3"), "e.vnnlib")
    assert Fraction(0.3) < Fraction("0.3") and (box.lower[0], box.upper[0]) == (0.3, above(0.3))


def test_long_and_tiny_constants_are_read_exactly():
    thirds = "0." + "3" * 5000  # more digits than Python's int conversion takes; below 1/3
    box, _ = parse_vnnlib(f"(declare-const X_0 Real)\n(assert (>= X_0 {thirds}))\n(assert (<= X_0 {thirds}))\n",
                          "p.vnnlib")
    third = 1 / 3
    assert Fraction(third) < Fraction(1, 3) - Fraction(1, 10 ** 5000)  # the nearest float to 1/3 lies below both
    assert (box.lower[0], box.upper[0]) == (third, above(third))
    # nonzero constants below the smallest subnormal: rounded outward, the box is not the point 0
    box, prop = parse_vnnlib("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 -1e-400))\n"
                             "(assert (<= X_0 1e-400))\n(assert (>= Y_0 1e-400))\n", "p.vnnlib")
    tiny = math.ulp(0.0)
    assert (box.lower[0], box.upper[0]) == (-tiny, tiny) and prop.upper[0] == 0.0


@pytest.mark.parametrize("constant,words", [
    ("1e400", "beyond the float64 range"), ("(- 1e309)", "beyond the float64 range"),
    ("1" + "0" * 5000, "beyond the float64 range"), ("-17976931348623159e292", "beyond the float64 range"),
    ("1e99999999999999999999", "has an exponent beyond"), ("1e-99999999999999999999", "has an exponent beyond"),
], ids=["1e400", "neg", "5000-digits", "just-over", "huge-exponent", "tiny-exponent"])
def test_a_constant_beyond_float64_is_an_error_naming_the_file_line_and_constant(constant, words):
    text = BOX_2 + outputs_decl(1) + f"(assert (>= Y_0 {constant}))\n"
    with pytest.raises(RegionError) as info:
        parse_vnnlib(text, "big.vnnlib")
    msg = str(info.value)
    assert msg.startswith("big.vnnlib: line 8: the constant ") and words in msg, msg
    shown = constant.strip("(- )")
    assert (shown if len(shown) <= 40 else f"'{shown[:30]}...' ({len(shown)} characters)") in msg, msg
    assert len(msg) < 200


def test_a_bound_with_no_float_on_its_safe_side_is_an_error():
    top = decimal_text(sys.float_info.max)  # unsafe {Y_0 <= max}, exactly: no float lies above it
    with pytest.raises(RegionError, match=r"^m.vnnlib: line 8: .*no float64 lies above the constant"):
        parse_vnnlib(BOX_2 + outputs_decl(1) + f"(assert (<= Y_0 {top}))\n", "m.vnnlib")
    _, prop = parse_vnnlib(BOX_2 + outputs_decl(1) + f"(assert (>= Y_0 {top}))\n", "m.vnnlib")
    assert prop.upper[0] == below(sys.float_info.max)


BAD = [
    ("(assert (<= Y_0 Y_1))", "compares two variables"),
    ("(assert (>= Y_0 (+ X_0 1)))", "not a constant"),
    ("(assert (< Y_0 1))", "'<' is not supported"),
    ("(assert (= Y_0 1))", "'=' is not supported"),
    ("(assert (or (and (>= Y_0 1) (<= Y_1 0))))", "a disjunct with 2 output constraints"),
    ("(assert (or (and (>= X_0 0.5)) (and (<= X_0 -0.5))))", "disjunction over inputs"),
    ("(assert (>= Y_0 1))\n(assert (<= Y_1 0))", "must all hold at once"),
    ("(assert (and (>= Y_0 1) (<= Y_1 0)))", "must all hold at once"),
    ("(assert (>= Y_7 1))", "Y_7 is used but never declared"),
    ("(assert (>= Z_0 1))", "unknown variable 'Z_0'"),
    ("(assert (>= Y_0 1) (<= Y_1 0))", "expected (assert EXPRESSION)"),
    ("(assert (and (and (>= Y_0 1))))", "nested 'and'"),
    ("(assert (and))", "(and) with nothing in it"),
    ("(assert (or))", "(or) with nothing in it"),
    ("(assert (>= Y_0 1 2))", "one variable with one constant"),
    ("(assert (>= 1 2))", "needs a variable"),
    ("(assert (>= Y_0 inf))", "not a finite number"),
    ("(declare-fun f () Real)", "expected (declare-const ...) or (assert ...)"),
    ("(declare-const Y_0 Real)", "declared twice"),
    ("(declare-const Y_9 Int)", "of sort 'Int'"),
    ("(assert (>= Y_0 1)", "is never closed"),
    ("(assert (>= Y_0 1)))", "without a matching"),
    ("stray", "outside any"),
]


@pytest.mark.parametrize("tail,words", BAD, ids=[w for _, w in BAD])
def test_unsupported_or_ill_formed_assertions_are_errors_naming_the_file_and_line(tail, words):
    text = BOX_2 + outputs_decl(2) + tail + "\n"
    line = BOX_2.count("\n") + 3  # the tail's first line
    with pytest.raises(RegionError) as info:
        parse_vnnlib(text, "bad.vnnlib")
    msg = str(info.value)
    assert msg.startswith("bad.vnnlib: ") and words in msg, msg
    if "line" in msg:
        assert f"line {line}" in msg or f"line {line + 1}" in msg, msg


@pytest.mark.parametrize("text,words", [
    ("(declare-const X_0 Real)\n(assert (<= X_0 1))\n", "no lower (>= X_0 c) bound"),
    ("(declare-const X_0 Real)\n(assert (>= X_0 1))\n", "no upper (<= X_0 c) bound"),
    ("(declare-const X_0 Real)\n(assert (>= X_0 1))\n(assert (<= X_0 0))\n", "an empty box"),
    ("(declare-const X_0 Real)\n(declare-const X_2 Real)\n", "X_1 is not declared"),
    ("(declare-const Y_0 Real)\n", "declares no input X_0"),
], ids=["no-lower", "no-upper", "empty", "gap", "no-inputs"])
def test_boxes_that_are_not_boxes_are_errors(text, words):
    with pytest.raises(RegionError, match="^bad.vnnlib: ") as info:
        parse_vnnlib(text, "bad.vnnlib")
    assert words in str(info.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(RegionError, match="not found"):
        read_vnnlib(tmp_path / "missing.vnnlib")
    with pytest.raises(RegionError, match="not a regular file"):
        read_vnnlib(tmp_path)
    p = tmp_path / "latin.vnnlib"
    p.write_bytes(b"; caf\xe9\n" + BOX_2.encode())
    with pytest.raises(RegionError, match="not UTF-8"):
        read_vnnlib(p)
    with pytest.raises(RegionError, match="takes 3 inputs"):
        read_vnnlib(write(tmp_path, BOX_2), n_in=3)


# --------------------------------------------------------------------------- the command, end to end
@pytest.fixture(scope="module")
def relu_model(tmp_path_factory):
    """A random 2-6-6-3 ReLU net written as ONNX (float64), and a brute-force bracket of each output's range."""
    net = random_net(3, 2, (6, 6), n_out=3)
    path = tmp_path_factory.mktemp("vnnlib") / "net.onnx"
    onnx.save(network_to_onnx(net), str(path))
    return net, path, brute_force_range(net)


def brute_force_range(net, half: float = 1.0, points: int = 401):
    """Per output: a bracket [lo_in, lo_out] of min f_i and [hi_in, hi_out] of max f_i over [-half, half]^2, from a
    grid (the inner values) and the Lipschitz constant (product of layer 2-norms) times the grid's covering radius
    (the outer values): every point of the box is within h sqrt(2) / 2 of a grid point."""
    g = np.linspace(-half, half, points)
    xx = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    f = net.forward(xx)
    lip = np.prod([np.linalg.norm(layer.weight, 2) for layer in net.layers]) * np.linalg.norm(net.out_weight, 2)
    slack = lip * (g[1] - g[0]) * math.sqrt(2) / 2 * 1.01
    return f.min(axis=0), f.max(axis=0), slack


def ort_outputs(path, x) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: np.atleast_2d(np.asarray(x, dtype=np.float64))})[0][0]


@pytest.mark.parametrize("seed", [3, 11, 17])
def test_verdicts_agree_with_brute_force_output_bounds(seed, tmp_path):
    net = random_net(seed, 2, (6, 6), n_out=2)
    path = tmp_path / "net.onnx"
    onnx.save(network_to_onnx(net), str(path))
    f_min, f_max, slack = brute_force_range(net)
    spread = float(np.max(f_max - f_min))
    config = VerifyConfig(samples=20_000, timeout=60)
    # a bound beyond the brute-force enclosure: the property holds and must be certified (ReLU: exact MILP)
    above, under = float(f_max[0] + slack + 0.05 * spread), float(f_min[1] - slack - 0.05 * spread)
    prop = write(tmp_path, BOX_2 + outputs_decl(2) + f"(assert (or (>= Y_0 {above!r}) (<= Y_1 {under!r})))\n")
    res = verify(path, prop, config=config).results[0]
    assert res.check is CheckName.OUTPUT_BOUNDS and res.verdict is Verdict.CERTIFIED, res.reason
    # V = max(max f_0 - above, under - min f_1): the sampled lower end cannot exceed its brute-force upper end
    v_hi = max(f_max[0] + slack - above, under - (f_min[1] - slack))
    assert res.upper < 0 and res.lower <= v_hi + 1e-9
    # a bound the grid already exceeds: violated, with a witness whose outputs onnxruntime puts in the unsafe set
    below = float(f_max[1] - 0.05 * spread)
    prop = write(tmp_path, BOX_2 + outputs_decl(2) + f"(assert (>= Y_1 {below!r}))\n")
    res = verify(path, prop, config=config).results[0]
    assert res.verdict is Verdict.FALSIFIED, res.reason
    x = np.array(res.witness.x)
    assert np.all(x >= -1) and np.all(x <= 1)
    y = ort_outputs(path, x)
    assert y[1] >= below and res.lower == pytest.approx(y[1] - below, abs=1e-9)
    assert res.lower <= f_max[1] + slack - below  # no more violation than the brute force allows


def test_exact_bracket_contains_the_brute_force_maximum(relu_model, tmp_path):
    net, path, (f_min, f_max, slack) = relu_model
    c = float(f_max[2] + 10.0)
    prop = write(tmp_path, BOX_2 + outputs_decl(3) + f"(assert (>= Y_2 {c!r}))\n")
    res = verify(path, prop, config=VerifyConfig(samples=20_000, timeout=60, exact=True)).results[0]
    assert res.verdict is Verdict.CERTIFIED
    # sup V = max f_2 - c: the sound bracket and the brute-force one must overlap
    assert res.lower <= f_max[2] + slack - c + 1e-9 and res.upper >= f_max[2] - c - 1e-9


def test_the_command_certifies_and_falsifies_with_exit_codes(relu_model, tmp_path, capsys):
    net, path, (f_min, f_max, slack) = relu_model
    far = float(f_max[0] + slack + 1.0)
    holds = write(tmp_path, BOX_2 + outputs_decl(3) + f"(assert (>= Y_0 {far!r}))\n", "holds.vnnlib")
    code, out, err = run([path, "--region", holds], capsys)
    assert code == 0, out + err
    assert "output_bounds" in out and "VNN-COMP: unsat" in out
    near = float(0.5 * (f_min[0] + f_max[0]))
    broken = write(tmp_path, BOX_2 + outputs_decl(3) + f"(assert (or (>= Y_0 {near!r}) (<= Y_2 -1e6)))\n",
                   "broken.vnnlib")
    report = tmp_path / "r.json"
    code, out, err = run([path, "--region", broken, "--json", report, "--quiet"], capsys)
    assert code == 1, out + err
    check = json.loads(report.read_text())["checks"]["output_bounds"]
    assert check["verdict"] == "falsified" and "broken.vnnlib, line 10" in check["reason"]
    assert ort_outputs(path, check["witness"]["x"])[0] >= near
    # other checks run on the VNNLIB box when asked for
    code, out, err = run([path, "--region", broken, "--check", "output_bounds,gain", "--quiet"], capsys)
    assert code == 1 and err == ""


def plateau_model(folder, height: float, side: int = -1):
    """f(x) = height + side relu(side (x_0 - height)) as ONNX: equal to ``height`` exactly (in float64 too) where
    side (x_0 - height) <= 0, a part of the box [-1, 1]^2 when |height| < 1, and on the ``side`` of it elsewhere; so
    the output reaches ``height`` and never passes it on the other side."""
    net = Network((Layer(np.array([[side, 0.0]]), np.array([-side * height]), acts.relu()),), np.array([[side]]),
                  np.array([height]))
    path = folder / f"plateau_{height!r}_{side}.onnx"
    onnx.save(network_to_onnx(net), str(path))
    return path


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize("height,side,unsafe", [
    (0.5, -1, "(>= Y_0 0.5)"),  # a float constant: sup f = 0.5 exactly
    (0.1, -1, "(>= Y_0 0.1)"),  # the float 0.1 lies above the constant 0.1
    (0.0, 1, "(<= Y_0 0)"),  # relu(x_0): 0 on half the box, never below
    (0.0, -1, "(or (<= Y_0 -2) (>= Y_0 0.0))"),  # min(x_0, 0): only the second side is reached
], ids=["float", "decimal", "zero-below", "zero-above"])
def test_an_output_equal_to_the_constant_is_unsafe_never_safe(tmp_path, height, side, unsafe, exact):
    """VNNLIB unsafe sets are closed: where the output equals the constant the property is violated (sat)."""
    path = plateau_model(tmp_path, height, side)
    prop = write(tmp_path, BOX_2 + outputs_decl(1) + f"(assert {unsafe})\n")
    res = verify(path, prop, config=VerifyConfig(samples=2_000, timeout=30, exact=exact)).results[0]
    assert res.verdict is Verdict.FALSIFIED, res.reason
    y = ort_outputs(path, res.witness.x)[0]
    c = Fraction(unsafe.split()[-1].rstrip(")"))
    assert (Fraction(float(y)) >= c) if ">=" in unsafe else (Fraction(float(y)) <= c), (y, res.reason)


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
def test_a_witness_lies_in_the_real_box_of_the_file(tmp_path, exact):
    """3 x_0 over the real box 0 <= x_0 <= 0.1 stays <= 0.3 < 0.30000000000000001 (unsat); the float box's corner
    x_0 = 0.1000000000000000055 (the float 0.1, outside the real box) gives 3 x_0 = 0.30000000000000004 (unsafe):
    it was reported falsified there; a witness is now moved into the file's box and replayed again."""
    net = Network((Layer(np.array([[3.0, 0.0]]), np.zeros(1), acts.relu()),), np.array([[1.0]]), np.zeros(1))
    path = tmp_path / "three.onnx"
    onnx.save(network_to_onnx(net), str(path))
    text = BOX_2.replace("(assert (<= X_0 1.0))\n(assert (>= X_0 -1.0))", "(assert (<= X_0 0.1))\n(assert (>= X_0 0))")
    assert text != BOX_2
    prop = write(tmp_path, text + outputs_decl(1) + "(assert (>= Y_0 0.30000000000000001))\n")
    res = verify(path, prop, config=VerifyConfig(samples=2_000, timeout=30, exact=exact)).results[0]
    assert res.verdict is not Verdict.FALSIFIED, res.reason
    assert res.lower <= res.upper


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
def test_an_output_just_below_the_constant_is_certified(tmp_path, exact):
    path = plateau_model(tmp_path, 0.5)
    prop = write(tmp_path, BOX_2 + outputs_decl(1) + "(assert (or (>= Y_0 0.5000001) (<= Y_0 -1.5)))\n")
    res = verify(path, prop, config=VerifyConfig(samples=2_000, timeout=30, exact=exact)).results[0]
    assert res.verdict is Verdict.CERTIFIED, res.reason
    assert res.lower <= 0.5 - 0.5000001 + 1e-12 <= res.upper < 0


@pytest.mark.parametrize("tail,words", [
    ("(assert (<= Y_0 Y_1))", "line 10"),
    ("(assert (> Y_0 1))", "'>' is not supported"),
    ("(assert (>= Y_0 1)", "never closed"),
    ("(assert (>= Y_0 " + "9" * 5000 + "))", "beyond the float64 range"),
])
def test_the_command_refuses_bad_files_with_exit_3_and_one_line(relu_model, tmp_path, capsys, tail, words):
    _, path, _ = relu_model
    prop = write(tmp_path, BOX_2 + outputs_decl(3) + tail + "\n", "bad.vnnlib")
    code, out, err = run([path, "--region", prop], capsys)
    assert code == 3, out + err
    assert len(err.strip().splitlines()) == 1 and str(prop) in err and words in err, err
    assert "Traceback" not in err + out


def test_the_command_refuses_a_property_of_another_size(relu_model, tmp_path, capsys):
    _, path, _ = relu_model
    few = write(tmp_path, BOX_2 + outputs_decl(1) + "(assert (>= Y_0 1))\n", "few.vnnlib")
    code, _, err = run([path, "--region", few], capsys)
    assert code == 3 and "declares 1 outputs" in err and "3 outputs" in err and str(few) in err, err
    one = write(tmp_path, "(declare-const X_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 0))\n", "one.vnnlib")
    code, _, err = run([path, "--region", one], capsys)
    assert code == 3 and str(one) in err and "X_i" in err, err
    box_only = write(tmp_path, BOX_2, "box_only.vnnlib")
    code, _, err = run([path, "--region", box_only, "--check", "output_bounds"], capsys)
    assert code == 3 and "needs an output property" in err, err


def test_the_property_is_described_with_the_file_constants():
    # the float bounds sit a float64 step on the safe side: a zero constant printed as 'Y_0 > 4.94066e-324'
    from certify.importers.vnnlib import parse_vnnlib

    text = ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 -1))\n"
            "(assert (or (and (<= Y_0 0)) (and (>= Y_0 0.30000000000000001))))\n")
    _, prop = parse_vnnlib(text)
    assert prop.describe() == "0 < Y_0 < 0.30000000000000001"
    assert 0 < prop.lower[0] and prop.upper[0] < Fraction("0.30000000000000001")


def test_a_box_only_file_never_falsifies_at_a_point_outside_its_real_box(tmp_path):
    """X_0 in [0.1, 0.9] is rounded outward to [0.09999999999999999, 0.9...]; a net that leaves the box only below
    the real 0.1 was reported falsified by invariance at x = 0.09999999999999999, a point outside the file's box.
    That is unknown now; on a file whose bounds are float64 values the same point still falsifies."""
    s = math.nextafter(0.1, 0)
    net = leaves_only_at(s)
    assert net.forward(np.array([0.1]))[0] == 0.5 and net.forward(np.array([s]))[0] > 1  # leaves only below 0.1
    config = VerifyConfig(samples=2000, timeout=30)
    real = write(tmp_path, "(declare-const X_0 Real)\n(assert (>= X_0 0.1))\n(assert (<= X_0 0.9))\n")
    res = verify(net, real, ["invariance"], config).results[0]
    assert res.verdict is not Verdict.FALSIFIED, res
    assert res.witness is None or 0.1 <= res.witness.x[0] <= 0.9
    exact = write(tmp_path, f"(declare-const X_0 Real)\n(assert (>= X_0 {Decimal(s)}))\n(assert (<= X_0 0.5))\n",
                  "f.vnnlib")  # both bounds float64 values
    res = verify(net, exact, ["invariance"], config).results[0]
    assert res.verdict is Verdict.FALSIFIED and res.witness.x[0] == s


def test_an_all_unsafe_output_needs_a_replayed_violation(tmp_path):
    """An unsafe set covering every value of Y_0 was reported falsified at the box centre even when the replay there
    was NaN (an overflowing net), and a box holding no float64 input raised a Box error that named no file."""
    every_value = "(declare-const Y_0 Real)\n(assert (or (<= Y_0 0) (>= Y_0 0)))\n"
    nan_net = Network((Layer(np.array([[2.0], [2.0]]), np.zeros(2), acts.relu()),), np.array([[1e308, -1e308]]),
                      np.zeros(1))  # inf - inf at x = 1
    config = VerifyConfig(samples=200, timeout=10)
    text = "(declare-const X_0 Real)\n(assert (>= X_0 1))\n(assert (<= X_0 1))\n" + every_value
    assert math.isnan(float(np.atleast_1d(nan_net.forward(np.array([1.0])))[0]))
    res = verify(nan_net, write(tmp_path, text), ["output_bounds"], config).results[0]
    # float64 gives NaN; the real f(1) = 2e308 - 2e308 = 0 (exact rationals) lies in the unsafe set
    assert res.verdict is Verdict.FALSIFIED and res.witness.x == (1.0,), res
    assert exact_outputs(nan_net, np.array([res.witness.x]))[0][0] == 0
    thin = ("(declare-const X_0 Real)\n(assert (>= X_0 0.1000000000000000000001))\n"
            "(assert (<= X_0 0.1000000000000000000002))\n" + every_value)
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[1.0]]), np.zeros(1))
    res = verify(net, write(tmp_path, thin, "thin.vnnlib"), ["output_bounds"], config).results[0]
    assert res.verdict is Verdict.UNKNOWN and "no float64 input" in res.reason, res


def test_an_unsafe_output_reached_only_in_float64_is_no_counterexample(tmp_path):
    # f = 1e16 relu(0.1 x + 0.1) - 1e16 relu(0.1 x) - 1e15 is 0.0555 on all of [0, 1] in fact; in float64 it swings
    # over [-0.25, 0.25], and Y_0 <= -0.1 was 'falsified' at a replayed point
    net = Network((Layer(np.array([[0.1], [0.1]]), np.array([0.1, 0.0]), acts.relu()),),
                  np.array([[1e16, -1e16]]), np.array([-1e15]))
    assert net.forward(np.linspace(0, 1, 201)[:, None]).min() < -0.1  # the premise
    text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0))\n(assert (<= X_0 1))\n" \
           "(assert (<= Y_0 -0.1))\n"
    res = verify(net, write(tmp_path, text), ["output_bounds"], VerifyConfig(samples=300, timeout=3)).results[0]
    assert res.verdict is not Verdict.FALSIFIED, res
