"""Region files read box bounds by their exact decimal values and round them outward to float64.

``[0.1, 0.9]`` used to be checked on [float(0.1), float(0.9)]; float(0.1) = 0.1000000000000000055... lies above the
decimal 0.1, so a ``certified`` verdict missed a sliver of the file's box. The box is now rounded outward (lower to
the largest float <= the decimal, upper to the smallest float >= it) and ``Region.inner`` keeps the float box
inside the file's box, so that a witness outside it never falsifies (as for VNNLIB files).
"""

from __future__ import annotations

import math
import tempfile
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_nets import leaves_only_at

from certify.api import verify
from certify.certificate import Verdict
from certify.config import VerifyConfig
from certify.errors import RegionError
from certify.importers.region_file import load_region, parse_region
from certify.importers.yaml_file import parse_yaml
from certify.ir import activations as acts
from certify.ir.network import Layer, Network


def region_of(text: str):
    """The region of the region-file text ``text``, read from a file by load_region."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "box.yaml"
        path.write_text(text)
        return load_region(path)


def write(tmp_path, text: str, name: str = "box.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def is_largest_float_at_most(f: float, exact: Fraction) -> bool:
    return Fraction(f) <= exact < Fraction(math.nextafter(f, math.inf))


def is_smallest_float_at_least(f: float, exact: Fraction) -> bool:
    return Fraction(math.nextafter(f, -math.inf)) < exact <= Fraction(f)


# decimal texts: m e k (|value| within about 1e-320 .. 1e300, so never refused), and plain decimals "-12.0301"
_SCIENTIFIC = st.builds(lambda m, e, big: f"{m}{'E' if big else 'e'}{e}", st.integers(-10**20, 10**20),
                        st.integers(-320, 279), st.booleans())
_PLAIN = st.builds(lambda sign, whole, digits: f"{sign}{whole}.{digits}", st.sampled_from(["", "-", "+"]),
                   st.integers(0, 10**6), st.text("0123456789", min_size=1, max_size=30))
_DECIMAL = st.one_of(_SCIENTIFIC, _PLAIN, st.sampled_from(["0.1", "0.9", "-0.3", "1e-3", ".5", "5.", "2", "-7",
                                                           "9007199254740993", "1e-320", "0.0"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_DECIMAL, _DECIMAL), min_size=1, max_size=3), st.booleans())
def test_every_bound_is_rounded_outward_by_its_exact_decimal(pairs, named):
    """For random decimal texts, the box lower is the largest float <= the decimal and the upper the smallest float
    >= it (so within one ulp, and the float box contains the file's box); the inner box lies inside the file's box
    with each side the float nearest inside; inner is None exactly when every bound is a float64 value."""
    intervals = [tuple(sorted(p, key=Fraction)) for p in pairs]
    if named:
        text = "states:\n" + "".join(f"  x{i}: [{lo}, {hi}]\n" for i, (lo, hi) in enumerate(intervals))
    else:
        text = (f"lower: [{', '.join(lo for lo, _ in intervals)}]\n"
                f"upper: [{', '.join(hi for _, hi in intervals)}]\n")
    region = region_of(text)
    lows = [Fraction(lo) for lo, _ in intervals]
    highs = [Fraction(hi) for _, hi in intervals]
    for i, (lo, hi) in enumerate(zip(lows, highs)):
        assert is_largest_float_at_most(float(region.box.lower[i]), lo), (text, region.box.lower[i])
        assert is_smallest_float_at_least(float(region.box.upper[i]), hi), (text, region.box.upper[i])
    all_exact = all(Fraction(float(v)) == v for v in lows + highs)
    assert (region.inner is None) == all_exact, (text, region.inner)
    if region.inner is not None:
        inner_lo, inner_hi = region.inner
        for i, (lo, hi) in enumerate(zip(lows, highs)):
            assert is_smallest_float_at_least(float(inner_lo[i]), lo), (text, inner_lo[i])
            assert is_largest_float_at_most(float(inner_hi[i]), hi), (text, inner_hi[i])


def test_a_box_of_decimals_contains_the_decimal_box(tmp_path):
    """[0.1, 0.9] was read as [float(0.1), float(0.9)], whose lower 0.1000000000000000055 lies above 0.1: the box
    missed a sliver of the file's box. Every form (states, inputs, lower/upper lists) is rounded outward now."""
    region = load_region(write(tmp_path, "states: {a: [0.1, 0.9], b: [-1, 0.5]}\ninputs: {u: [1e-3, 0.3]}\n"))
    lower, upper = region.box.lower, region.box.upper
    assert Fraction(lower[0]) <= Fraction("0.1") and Fraction(upper[0]) >= Fraction("0.9")
    assert Fraction(lower[2]) <= Fraction("0.001") and Fraction(upper[2]) >= Fraction("0.3")
    assert lower[0] == math.nextafter(0.1, 0) and upper[0] == 0.9  # float(0.9) lies above 0.9
    assert lower[1] == -1.0 and upper[1] == 0.5  # float64 values stay as they are
    inner_lo, inner_hi = region.inner
    assert inner_lo.tolist() == [0.1, -1.0, 0.001] and inner_hi.tolist() == [math.nextafter(0.9, 0), 0.5, 0.3]
    plain = load_region(write(tmp_path, "lower: [0.1, -0.3]\nupper: [0.2, 7]\n", "plain.yaml"))
    assert Fraction(plain.box.lower[0]) <= Fraction("0.1") and Fraction(plain.box.lower[1]) <= Fraction("-0.3")
    assert Fraction(plain.box.upper[0]) >= Fraction("0.2") and plain.box.upper[1] == 7.0
    assert plain.inner is not None


def test_integers_and_hex_floats_are_rounded_by_their_exact_values(tmp_path):
    """An integer above 2^53 (and a !!float of one) is no float64 value: it is rounded outward, not to nearest."""
    region = load_region(write(tmp_path, "states:\n  a: [9007199254740993, 9007199254740995]\n"
                                         "  b: [!!float 0x20000000000001, !!float 9007199254740995]\n"))
    for i in range(2):
        assert region.box.lower[i] == 2.0**53 and region.box.upper[i] == 2.0**53 + 4
        assert region.inner[0][i] == 2.0**53 + 2 and region.inner[1][i] == 2.0**53 + 2


def test_a_file_of_float64_values_keeps_its_box_and_has_no_inner(tmp_path):
    region = load_region(write(tmp_path, "states: {a: [-1, 0.5], b: [0.25, 3.0e0]}\ninputs: {u: [-0.0, 2]}\n"))
    assert region.inner is None
    assert region.box.lower.tolist() == [-1.0, 0.25, 0.0] and region.box.upper.tolist() == [0.5, 3.0, 2.0]
    built = parse_region({"states": {"a": [0.1, 0.9]}})  # Python floats are exact values: nothing to round
    assert built.inner is None and built.box.lower[0] == 0.1 and built.box.upper[0] == 0.9


def test_an_empty_decimal_interval_and_a_bound_just_over_the_float_range_are_errors(tmp_path):
    """0.30000000000000001 > 0.3 though both read as the same float (the interval was accepted as a point); a bound
    just above the float64 maximum read as the maximum, below the file's bound (the box missed it)."""
    with pytest.raises(RegionError, match=r"states\.a has lower 0\.30000000000000001 > upper 0\.3; swap them"):
        load_region(write(tmp_path, "states: {a: [0.30000000000000001, 0.3]}\n"))
    with pytest.raises(RegionError, match=r"\[lower\[0\], upper\[0\]\] has lower 0\.30000000000000001 > upper 0\.3"):
        load_region(write(tmp_path, "lower: [0.30000000000000001]\nupper: [0.3]\n", "plain.yaml"))
    with pytest.raises(RegionError, match=r"states\.a overflows float64"):
        load_region(write(tmp_path, "states: {a: [0, 1.7976931348623158e308]}\n", "huge.yaml"))
    with pytest.raises(RegionError, match=r"states\.a has lower 2\.0 > upper 1\.0; swap them"):  # as before
        load_region(write(tmp_path, "states: {a: [2, 1]}\n", "swapped.yaml"))


def test_other_readers_still_get_plain_floats():
    """Only region boxes ask for exact numbers: read_yaml's default (system and metric files) is unchanged."""
    data = parse_yaml("a: [0.1, 1e-3, 2]\n", "f.yaml", RegionError, "system file")
    assert [type(v) for v in data["a"]] == [float, float, int] and data["a"] == [0.1, 0.001, 2]
    exact = parse_yaml("a: [0.1, 0.5]\n", "f.yaml", RegionError, "region file", exact_numbers=True)["a"]
    assert exact == [0.1, 0.5] and exact[0].exact == Decimal("0.1") and type(exact[1]) is float


def test_a_region_file_never_falsifies_at_a_point_outside_its_decimal_box(tmp_path):
    """x0 in [0.1, 0.9] is rounded outward to [0.09999999999999999, 0.9...]; a net that leaves the box only below
    the decimal 0.1 must not be reported falsified at a point outside the file's box (before: the box started at
    float(0.1) > 0.1, so that sliver was never looked at). With bounds that are float64 values the same point
    falsifies."""
    s = math.nextafter(0.1, 0)
    net = leaves_only_at(s)
    assert net.forward(np.array([0.1]))[0] == 0.5 and net.forward(np.array([s]))[0] > 1  # leaves only below 0.1
    config = VerifyConfig(samples=2000, timeout=30)
    decimal = write(tmp_path, "states: {x0: [0.1, 0.9]}\n")
    assert load_region(decimal).box.lower[0] == s  # the checks do look at s now
    res = verify(net, decimal, ["invariance"], config).results[0]
    assert res.verdict is Verdict.UNKNOWN, res  # it does leave the float box (at s): never certified either
    assert res.witness is None or Fraction("0.1") <= Fraction(res.witness.x[0]) <= Fraction("0.9")
    exact = write(tmp_path, f"states: {{x0: [{Decimal(s)}, 0.5]}}\n", "exact.yaml")  # both bounds float64 values
    assert load_region(exact).inner is None
    res = verify(net, exact, ["invariance"], config).results[0]
    assert res.verdict is Verdict.FALSIFIED and res.witness.x[0] == s


def test_a_witness_at_a_corner_of_the_rounded_box_is_searched_for_again_inside_the_file_box(tmp_path):
    """f(x) = 1.0000001 x leaves [0.1, 0.9] near 0.9. The checks run on the box rounded outward, whose corner
    float(0.9) = 0.9000000000000000222 lies outside the file's box: that witness proves nothing (before the outward
    reading it was reported as if it did), but the point one float below it does, and is found on the inner box."""
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[1.0000001]]), np.zeros(1))
    res = verify(net, write(tmp_path, "states: {x0: [0.1, 0.9]}\n"), ["invariance"],
                 VerifyConfig(samples=200, timeout=30)).results[0]
    assert res.verdict is Verdict.FALSIFIED, res
    x = res.witness.x[0]
    assert Fraction("0.1") <= Fraction(x) <= Fraction("0.9")
    assert Fraction(float(net.forward(np.array([x]))[0])) > Fraction("0.9")  # f(x) does leave the decimal box
    assert res.lower == res.witness.value > 0 and res.lower <= res.upper


def test_invariance_on_a_rounded_box_is_certified_only_beyond_the_rounding():
    """The box is the target too: f(outer) inside outer says nothing about the file's box when the room left is
    below the step between the rounded and the inner box (f may land in the sliver outside the file's box)."""
    from certify.certificate import BoundMethod, CheckName, CheckResult
    from certify.checks.file_box import on_file_box
    from certify.ir.box import Box

    outer = Box(np.array([math.nextafter(0.1, 0.0)]), np.array([0.9]))  # [0.1, 0.9] read outward
    inner = (np.array([0.1]), np.array([math.nextafter(0.9, 0.0)]))
    step = 0.9 - math.nextafter(0.9, 0.0)

    def certified(upper):
        return CheckResult(CheckName.INVARIANCE, Verdict.CERTIFIED, -1.0, upper, BoundMethod.INTERVAL, 0.0)

    def never(box, config):
        raise AssertionError("no witness: nothing to search for again")

    close = on_file_box(certified(-step / 2), None, outer, inner, VerifyConfig(), never)
    assert close.verdict is Verdict.UNKNOWN and close.upper >= step / 2 and "rounding" in close.reason
    far = on_file_box(certified(-0.01), None, outer, inner, VerifyConfig(), never)
    assert far.verdict is Verdict.CERTIFIED and -0.01 < far.upper < 0
    other = CheckResult(CheckName.DISSIPATIVITY, Verdict.CERTIFIED, 0.5, 0.9, BoundMethod.INTERVAL, 0.0)
    assert on_file_box(other, None, outer, inner, VerifyConfig(), never) == other  # a sup over a larger box


def test_stability_on_the_whole_rounded_box_needs_its_invariance_beyond_the_rounding():
    """Stability certified on the whole box rests on the box being invariant; proven on the rounded box with less
    room than the rounding step, it says nothing of the file's box (its one equilibrium may sit in the sliver, where
    f(x*) = x* keeps the invariance bound above -step), and no equilibrium is listed to catch it: unknown. With room
    beyond the step, or on an ellipsoid (which needs a listed equilibrium inside), it stands."""
    from certify.certificate import BoundMethod, CheckName, CheckResult, StabilityDetails
    from certify.checks.file_box import on_file_box
    from certify.ir.box import Box

    outer = Box(np.array([math.nextafter(0.1, 0.0)]), np.array([0.9]))  # [0.1, 0.9] read outward
    inner = (np.array([0.1]), np.array([math.nextafter(0.9, 0.0)]))
    step = 0.9 - math.nextafter(0.9, 0.0)

    def certified(room, start_set="box"):
        details = StabilityDetails(rate=0.5, contraction="certified", invariance="certified",
                                   invariance_upper=-room, start_set=start_set, box_share=1.0)
        return CheckResult(CheckName.STABILITY, Verdict.CERTIFIED, 0.4, 0.5, BoundMethod.INTERVAL, 0.0, None,
                           "the box is invariant", details)

    def never(box, config):
        raise AssertionError("no witness: nothing to search for again")

    close = on_file_box(certified(step / 2), None, outer, inner, VerifyConfig(), never)
    assert close.verdict is Verdict.UNKNOWN and "rounding" in close.reason
    far = certified(0.01)
    assert on_file_box(far, None, outer, inner, VerifyConfig(), never) == far
    ellipsoid = certified(step / 2, "ellipsoid")
    assert on_file_box(ellipsoid, None, outer, inner, VerifyConfig(), never) == ellipsoid
    floats = Box(np.array([0.1]), np.array([0.9]))  # float64 bounds: no sliver
    assert on_file_box(certified(step / 2), None, floats, (floats.lower, floats.upper), VerifyConfig(), never) \
        == certified(step / 2)


def test_a_falsification_outside_the_file_box_leaves_a_norm_bracket_from_0():
    """A witness in the rounding sliver proves nothing about the file's box; when the search on the inner box finds
    nothing either, the bracket of a norm starts at 0 (every norm is), not at -inf; a violation's stays at -inf."""
    from certify.certificate import BoundMethod, CheckName, CheckResult, Witness
    from certify.checks.file_box import on_file_box
    from certify.ir.box import Box

    below = math.nextafter(0.1, 0.0)
    outer = Box(np.array([below]), np.array([0.9]))
    inner = (np.array([0.1]), np.array([math.nextafter(0.9, 0.0)]))

    def rerun(box, config):
        return CheckResult(CheckName.DISSIPATIVITY, Verdict.UNKNOWN, 0.5, 2.0, BoundMethod.BNB, 0.1)

    for check, lower in ((CheckName.DISSIPATIVITY, 0.0), (CheckName.GAIN, 0.0), (CheckName.INVARIANCE, -math.inf)):
        found = CheckResult(check, Verdict.FALSIFIED, 1.5, 2.0, BoundMethod.BNB, 0.1, Witness((below,), 1.5))
        res = on_file_box(found, None, outer, inner, VerifyConfig(timeout=60), rerun)
        assert res.verdict is Verdict.UNKNOWN and res.witness is None and res.lower == lower and res.upper >= 2.0


def test_stability_falsified_by_two_equilibria_needs_both_inside_the_file_box():
    """Two equilibria falsify stability; one of them in the rounding sliver (outside the file's box) leaves one in
    the box, which falsifies nothing: the check runs again on the inner box and its answer is taken."""
    from certify.certificate import BoundMethod, CheckName, CheckResult, StabilityDetails, Witness
    from certify.checks.file_box import on_file_box
    from certify.ir.box import Box

    below = math.nextafter(0.1, 0.0)
    outer = Box(np.array([below]), np.array([0.9]))
    inner = (np.array([0.1]), np.array([math.nextafter(0.9, 0.0)]))

    def falsified(points):
        return CheckResult(CheckName.STABILITY, Verdict.FALSIFIED, 0.0, math.inf, BoundMethod.REGIONS, 0.1,
                           Witness(points[1], 2.0), "2 equilibria in the box",
                           StabilityDetails(equilibria=points, equilibria_complete=True))

    runs = []

    def rerun(box, config):
        runs.append((box.lower[0], box.upper[0]))
        return CheckResult(CheckName.STABILITY, Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE, 0.1)

    one_outside = on_file_box(falsified(((below,), (0.5,))), None, outer, inner, VerifyConfig(), rerun)
    assert one_outside.verdict is Verdict.UNKNOWN and runs == [(0.1, inner[1][0])]
    both_inside = falsified(((0.2,), (0.5,)))
    assert on_file_box(both_inside, None, outer, inner, VerifyConfig(), rerun) == both_inside and len(runs) == 1


def test_an_equilibrium_in_the_rounding_sliver_is_not_certified_as_one_of_the_file_box(tmp_path):
    """f(x) = 0.5 relu(x) + 0.5 a with a the float just below 0.1 has its only fixed point at a, outside the file's
    box [0.1, 0.2]. The rounded box holds it, and the equilibria check certified "1 equilibrium in the box"."""
    a = math.nextafter(0.1, 0.0)
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[0.5]]), np.array([0.5 * a]))
    assert net.forward(np.array([a]))[0] == a and Fraction(a) < Fraction("0.1")
    res = verify(net, write(tmp_path, "states: {x0: [0.1, 0.2]}\n"), ["equilibria"],
                 VerifyConfig(timeout=20)).results[0]
    assert res.verdict is not Verdict.CERTIFIED and "rounded outward" in res.reason, res
    exact = write(tmp_path, f"states: {{x0: [{Decimal(a)}, 0.2]}}\n", "exact.yaml")  # a is in this box
    assert verify(net, exact, ["equilibria"], VerifyConfig(timeout=20)).results[0].verdict is Verdict.CERTIFIED


def test_progress_sees_the_verdict_on_the_file_s_box(tmp_path):
    """The progress callback (the CLI's live display) saw the verdict on the rounded box, "certified" for the
    equilibrium outside the file's box above, and the report then said otherwise."""
    a = math.nextafter(0.1, 0.0)
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[0.5]]), np.array([0.5 * a]))
    seen = []
    report = verify(net, write(tmp_path, "states: {x0: [0.1, 0.2]}\n"), ["equilibria"], VerifyConfig(timeout=20),
                    progress=lambda check, result: seen.append(result))
    assert seen[0] is None and seen[1] is report.results[0] and seen[1].verdict is not Verdict.CERTIFIED


def test_a_violation_onto_the_rounded_box_s_side_still_falsifies(tmp_path):
    """f(x) = x + (0.9 - p) with p the float below 0.9: f(p) = float(0.9), above the decimal 0.9, so p (inside the
    file's box) is a counterexample, though the violation against the rounded box there is 0. It was dropped."""
    p = math.nextafter(0.9, 0.0)
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[1.0]]), np.array([0.9 - p]))
    res = verify(net, write(tmp_path, "states: {x0: [0.1, 0.9]}\n"), ["invariance"],
                 VerifyConfig(timeout=20, samples=200)).results[0]
    assert res.verdict is Verdict.FALSIFIED, res
    x = res.witness.x[0]
    assert Fraction("0.1") <= Fraction(x) <= Fraction("0.9")
    assert Fraction(float(net.forward(np.array([x]))[0])) > Fraction("0.9") and 0.0 <= res.lower <= res.upper


def test_the_search_again_on_the_inner_box_keeps_to_the_run_s_timeout():
    """A falsified result with a witness in the sliver is searched for again only while the run's --timeout
    lasts: with the deadline passed, no search runs and the result is unknown (the search took up to 2x the run)."""
    from certify.certificate import BoundMethod, CheckName, CheckResult, Witness
    from certify.checks.file_box import on_file_box
    from certify.ir.box import Box

    below = math.nextafter(0.1, 0.0)
    outer = Box(np.array([below]), np.array([0.9]))
    inner = (np.array([0.1]), np.array([math.nextafter(0.9, 0.0)]))
    found = CheckResult(CheckName.DISSIPATIVITY, Verdict.FALSIFIED, 1.5, 2.0, BoundMethod.SAMPLE, 30.0,
                        Witness((below,), 1.5))
    runs = []

    def rerun(box, config):
        runs.append(config.timeout)
        return CheckResult(CheckName.DISSIPATIVITY, Verdict.FALSIFIED, 1.5, 2.0, BoundMethod.SAMPLE, 0.1,
                           Witness((0.5,), 1.5))

    late = on_file_box(found, None, outer, inner, VerifyConfig(timeout=60), rerun, deadline=time.perf_counter())
    assert late.verdict is Verdict.UNKNOWN and runs == []
    soon = on_file_box(found, None, outer, inner, VerifyConfig(timeout=60), rerun,
                       deadline=time.perf_counter() + 5.0)
    assert soon.verdict is Verdict.FALSIFIED and soon.witness.x == (0.5,) and len(runs) == 1 and runs[0] <= 5.0


def test_a_mean_square_falsification_is_searched_again_on_the_file_s_box():
    """mean_square falsifies with the stability check's witness, which may rest on a second equilibrium it does
    not list (one in the rounding sliver): the verdict stood on its witness alone. It now stands only when the
    check run on the inner box falsifies too."""
    from certify.certificate import BoundMethod, CheckName, CheckResult, Witness
    from certify.checks.file_box import on_file_box
    from certify.ir.box import Box

    outer = Box(np.array([math.nextafter(0.1, 0.0)]), np.array([0.9]))
    inner = (np.array([math.nextafter(0.1, 1.0)]), np.array([0.9]))
    first = CheckResult(CheckName.MEAN_SQUARE, Verdict.FALSIFIED, 1.5, math.inf, BoundMethod.EXACT, 0.1,
                        Witness((0.5,), 1.5), "two equilibria")
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[0.5]]), np.zeros(1))
    for again, want in ((replace_verdict(first, Verdict.UNKNOWN), Verdict.UNKNOWN), (first, Verdict.FALSIFIED)):
        boxes = []
        res = on_file_box(first, net, outer, inner, VerifyConfig(timeout=10),
                          lambda box, config, again=again, boxes=boxes: boxes.append(box) or again)
        assert len(boxes) == 1 and boxes[0].lower[0] == inner[0][0] and res.verdict is want, res


def replace_verdict(result, verdict):
    from dataclasses import replace

    return replace(result, verdict=verdict, witness=None)
