"""End-to-end checks through certify.verify: method choice, dissipativity versus contraction, equilibria."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import certify
from certify.certificate import Verdict
from certify.config import VerifyConfig
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.numerics import induced_norm


def test_gelu_dissipative_but_not_contractive_with_three_equilibria(gelu_example):
    # The example: f(x) = 0.999 GELU(0.999 x) + 0.089543 on [-5, 50]: sup |A*| < 1, yet three fixed points.
    net, box = gelu_example()
    rep = certify.verify(net, box, ["dissipativity", "contraction", "equilibria"], VerifyConfig(timeout=30))
    assert rep.result("dissipativity").verdict is Verdict.CERTIFIED
    assert rep.result("dissipativity").upper < 1
    con = rep.result("contraction")
    assert con.verdict is Verdict.FALSIFIED and con.witness.value >= 1
    x = np.array(con.witness.x)
    assert abs(net.jacobian(x)[0, 0]) == pytest.approx(con.witness.value, rel=1e-12)
    eq = rep.result("equilibria")
    points = eq.details.points
    assert len(points) == 3 and eq.verdict is Verdict.UNKNOWN  # Newton is not exhaustive: never "complete"
    for p in points:
        assert abs(net.forward(np.array(p))[0] - p[0]) < 1e-9
    assert all(eq.lower - 1e-9 <= abs(p[0]) <= eq.upper + 1e-9 for p in points)


def _misaligned(act):
    # ||W1|| ||W2|| = 9 but W2 D W1 = 0.15 D: the product bound fails, the engines must not.
    return Network([Layer([[3.0, 0.0], [0.0, 0.05]], [0.1, -0.1], act)], [[0.05, 0.0], [0.0, 3.0]], [0.0, 0.0])


@pytest.mark.parametrize("act", [acts.relu(), acts.tanh(), acts.gelu()], ids=["relu", "tanh", "gelu"])
def test_engines_certify_what_the_product_cannot(act):
    net = _misaligned(act)
    box = Box([-1.0, -1.0], [1.0, 1.0])
    res = certify.verify(net, box, ["dissipativity"], VerifyConfig(samples=4000, timeout=30)).results[0]
    assert res.verdict is Verdict.CERTIFIED and res.upper <= 1 - 1e-6
    assert res.method in ("exact", "bnb", "boxes", "sdp")
    samp = certify.verify(net, box, ["dissipativity"], VerifyConfig(samples=4000, method="sample")).results[0]
    assert samp.verdict is Verdict.UNKNOWN and samp.upper > 1  # the product alone cannot


def test_needle_is_falsified_not_certified():
    # slope 0.5 everywhere except on [0.3, 0.3 + 1e-6], where it is 2.5: ||A*|| > 1 only on that sliver.
    w = 1e-6
    net = Network([Layer([[1.0], [1.0]], [-0.3, -0.3 - w], acts.relu())], [[2.0, -2.0]], [0.0], skip=[[0.5]])
    res = certify.verify(net, Box([0.0], [1.0]), ["contraction"], VerifyConfig(samples=500, seed=3)).results[0]
    assert res.verdict is Verdict.FALSIFIED
    assert 0.3 <= res.witness.x[0] <= 0.3 + w and res.witness.value == pytest.approx(2.5, rel=1e-9)


def test_exact_gain_of_a_non_square_relu_map_matches_enumeration(random_net):
    from certify.engines.regions import enumerate_regions

    net = random_net(5, 3, (6,), 1, acts.relu(), bias_scale=1.0, fan_in=False)  # every entry N(0, 1)
    box = Box(-np.ones(3), np.ones(3))
    res = certify.verify(net, box, ["gain"], VerifyConfig(samples=2000, norm=math.inf)).results[0]
    exact = max(float(induced_norm(r.m, math.inf)) for r in enumerate_regions(net, box).regions)
    assert res.verdict is Verdict.CERTIFIED and res.lower == pytest.approx(exact, rel=1e-12)
    assert res.upper == pytest.approx(exact, rel=1e-12)


def test_exact_method_refuses_smooth_nets_honestly():
    res = certify.verify(_misaligned(acts.tanh()), Box([-1.0, -1.0], [1.0, 1.0]), ["dissipativity"],
                         VerifyConfig(samples=1000, method="exact")).results[0]
    assert res.verdict is Verdict.UNKNOWN and "piecewise-linear" in res.reason


def test_bad_method_and_dynamics_misuse():
    with pytest.raises(UsageError):
        VerifyConfig(method="magic")
    net = Network([], np.ones((1, 2)), np.zeros(1))
    with pytest.raises(UsageError, match="1 outputs but 2 states"):
        certify.verify(net, Box([0.0, 0.0], [1.0, 1.0]), ["dissipativity"])


def _dense_max(net, box, quantity, p, n=60):
    g = [np.linspace(lo, hi, n) for lo, hi in zip(box.lower, box.upper)]
    pts = np.stack(np.meshgrid(*g), -1).reshape(-1, box.dim)
    mats = net.pwa(pts)[0] if quantity == "A_STAR" else net.jacobian(pts)
    return float(np.max(induced_norm(mats[:, :, : net.n_states], p)))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(["tanh", "sigmoid", "gelu", "softplus", "selu", "relu"]),
       method=st.sampled_from(["auto", "bnb", "interval", "sample"]), p=st.sampled_from([1.0, 2.0, math.inf]))
def test_brackets_contain_the_dense_maximum(seed, name, method, p, random_net):
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, (5,), 2, acts.CATALOGUE[name](), bias_scale=1.0, out_scale=0.4, skip=True, skip_scale=0.2,
                     fan_in=False)
    box = Box([-1.0, -0.5], [0.5, 1.0])
    cfg = VerifyConfig(samples=2000, timeout=5, method=method, norm=p, seed=seed)
    rep = certify.verify(net, box, ["dissipativity", "contraction"], cfg)
    for res, q in zip(rep.results, ("A_STAR", "JACOBIAN")):
        dense = _dense_max(net, box, q, p)
        # lower is attained: replaying the witness gives it back (a grid maximum may lie below it)
        x = np.array(res.witness.x)
        mats = net.pwa(x)[0] if q == "A_STAR" else net.jacobian(x)
        assert box.contains(x) and float(induced_norm(mats[:, : net.n_states], p)) == pytest.approx(res.lower, rel=1e-9)
        assert res.upper >= dense * (1 - 1e-12) and res.upper >= res.lower
        if res.verdict is Verdict.CERTIFIED:
            assert dense < 1
        if res.verdict is Verdict.FALSIFIED:
            assert res.witness.value >= 1 and box.contains(np.array(res.witness.x))


def test_a_bound_contradicted_by_a_replayed_point_never_certifies(monkeypatch):
    # An engine that (wrongly) claims sup ||A*|| <= 0.5 on a net whose replayed value is larger must not lead to
    # a certificate: the bound is dropped and the verdict stays unknown with the reason.
    from certify.checks import sup_norm as checks

    net = _misaligned(acts.tanh())
    box = Box([-1.0, -1.0], [1.0, 1.0])
    from certify.certificate import BoundMethod

    def bogus(query):
        return checks.Bound(1e-3, BoundMethod.SDP, exact=True)

    monkeypatch.setitem(checks.ENGINES, checks.Method.AUTO, (bogus, bogus))
    for name in ("dissipativity", "gain"):
        res = certify.verify(net, box, [name], VerifyConfig(samples=2000)).results[0]
        assert res.verdict is Verdict.UNKNOWN and "sdp bound" in res.reason
        assert res.upper > 1e-3


@pytest.mark.parametrize("slope,check", [(0.75, "dissipativity"), (0.5, "contraction"), (0.875, "dissipativity")])
def test_an_exact_run_decides_a_value_on_the_threshold_as_a_certify_run_does(slope, check):
    """sup ||A*|| of x -> slope relu(x) is exactly ``slope`` = 1 - margin: a float64 value on the threshold, which the
    rounding bound of its matrix (a few 1e-12 above) straddles. The certify run leaves it unknown; the exact run
    (--exact) certified it on the float64 value alone. The two must agree (and neither may certify)."""
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[slope]]), np.zeros(1))
    box = Box(np.array([-1.0]), np.array([1.0]))
    verdicts = []
    for exact in (False, True):
        res = certify.verify(net, box, [check], VerifyConfig(margin=1.0 - slope, exact=exact, timeout=20)).results[0]
        assert res.lower == slope and res.upper >= slope, res
        assert "within its rounding bound of" in res.reason and "cancel" not in res.reason, res.reason
        verdicts.append(res.verdict)
    assert verdicts[0] == verdicts[1] == Verdict.UNKNOWN
    above = certify.verify(net, box, [check], VerifyConfig(margin=0.9 * (1.0 - slope), exact=True, timeout=20))
    assert above.results[0].verdict is Verdict.CERTIFIED and above.results[0].upper == slope  # off the threshold


def test_a_bracket_in_a_reason_never_prints_as_one_value():
    """An unknown sup in [0.75, 0.7500000000015] was reported as 'lies in [0.75, 0.75]', which reads as settled:
    both ends print at the fewest digits that tell them apart (and equal ends as one value twice)."""
    from certify.checks.common import bracket_text

    assert bracket_text(0.75, 0.7500000000015019) == "[0.75, 0.750000000002]"
    assert bracket_text(0.5, 0.5) == "[0.5, 0.5]" and bracket_text(0.1, 0.2) == "[0.1, 0.2]"
    assert bracket_text(0.0, math.inf) == "[0, inf]"
    nxt = math.nextafter(1.0, 2.0)
    lo, hi = bracket_text(1.0, nxt)[1:-1].split(", ")
    assert float(lo) == 1.0 and float(hi) == nxt
    net = Network((Layer(np.array([[1.0]]), np.zeros(1), acts.relu()),), np.array([[0.75]]), np.zeros(1))
    res = certify.verify(net, Box(np.array([-1.0]), np.array([1.0])), ["dissipativity"],
                         VerifyConfig(margin=0.25, timeout=20)).results[0]
    assert res.verdict is Verdict.UNKNOWN and "[0.75, 0.75]" not in res.reason, res.reason
