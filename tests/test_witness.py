"""Witnesses are generic points: every pre-activation away from its activation's kinks.

At a kink, A*(x) and J(x) depend on the derivative convention (ReLU'(0) = 0) and need not be the matrix of any open
region, so a point there proves nothing about sup ||A*|| over the regions (DESIGN.md section 2).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import certify
from certify.config import VerifyConfig
from certify.engines.sampling import falsify, generic_mask, generic_point
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.quantity import Quantity


def _half_identity() -> Network:
    """f(x) = 1.5 x - relu(x) + relu(-x) = 0.5 x: A* = 0.5 on both open regions, but at x = 0 the convention
    ReLU'(0) = 0 switches both neurons off and leaves the skip alone, A*(0) = 1.5."""
    layer = Layer(np.array([[1.0], [-1.0]]), np.zeros(2), acts.relu())
    return Network((layer,), np.array([[-1.0, 1.0]]), np.zeros(1), skip=np.array([[1.5]]))


def test_a_kink_point_is_no_witness():
    net, box = _half_identity(), Box([-1.0], [1.0])
    assert abs(float(net.pwa(np.zeros(1))[0][0, 0])) == 1.5  # the convention's matrix at the kink
    res = certify.verify(net, box, ["dissipativity", "contraction"], VerifyConfig(samples=2000))
    for r in res.results:
        assert r.verdict is certify.Verdict.CERTIFIED, r.reason
        assert r.upper < 1 and r.lower == 0.5


def test_sampling_reports_a_generic_point():
    net, box = _half_identity(), Box([-1.0], [1.0])
    r = falsify(net, box, Quantity.A_STAR, 2.0, VerifyConfig(samples=500, device="cpu"))
    assert r.generic and generic_mask(net, r.x)[0] and r.value == 0.5


def test_generic_point_moves_off_the_kink_and_keeps_generic_points():
    net, box = _half_identity(), Box([-1.0], [1.0])
    x, ok = generic_point(net, box, np.zeros(1))
    assert ok and x[0] != 0.0 and abs(x[0]) <= 0.1 * 2
    y, ok = generic_point(net, box, np.array([0.3]))
    assert ok and y[0] == 0.3


def _strip_net(width: float = 1e-9, gain: float = 2.0) -> Network:
    """f(x) = 0.5 x + [gain (relu(x0) - relu(x0 - width)), 0]: A* = 0.5 I except on the strip 0 < x0 < width,
    a region far thinner than the traversal's 1e-8 (relative) sliver tolerance, where ||A*|| = 0.5 + gain."""
    layer = Layer(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([0.0, -width]), acts.relu())
    out = np.array([[gain, -gain], [0.0, 0.0]])
    return Network((layer,), out, np.zeros(2), skip=0.5 * np.eye(2))


def test_a_counterexample_inside_a_sliver_is_found_and_replays():
    from certify.engines.contract import Query
    from certify.engines.region_search import region_search

    net, box = _strip_net(), Box([-1.0, -1.0], [1.0, 1.0])
    res = region_search(Query(net, box, Quantity.A_STAR, VerifyConfig(timeout=60.0)))
    assert res.exact and res.lower == res.upper == 2.5, res.reason
    assert 0.0 < res.witness[0] < 1e-9 and generic_mask(net, res.witness)[0]
    assert float(np.linalg.norm(net.pwa(res.witness)[0], 2)) == 2.5  # the witness replays through the IR


def test_a_witness_just_above_one_is_printed_above_one():
    """||J|| = 1 + 2e-8 at the witness: the reason used to read "||J(x)|| = 1 >= 1" (6 digits)."""
    m = np.diag([1.0 + 2e-8, 0.5])
    net = Network((Layer(np.eye(2), np.zeros(2), acts.identity()),), m, np.zeros(2))
    r = certify.verify(net, Box([-1.0, -1.0], [1.0, 1.0]), ["contraction"], VerifyConfig(timeout=30.0)).results[0]
    assert r.verdict is certify.Verdict.FALSIFIED
    assert "= 1.00000002 >= 1" in r.reason, r.reason


@given(value=st.floats(0.0, 10.0), reference=st.sampled_from([1.0, 0.97, 0.0]))
def test_digits_beside_never_prints_a_different_value_as_the_reference(value, reference):
    from certify.checks.common import digits_beside

    text = digits_beside(value, reference)
    assert (float(text) == reference) == (value == reference)
    assert abs(float(text) - value) <= 1e-5 * max(abs(value), 1e-300)


def _cancelling_net(c: float) -> Network:
    """z0 = 1e8 x1 - 1e8 x2 (a difference that keeps only about 8 of float64's digits), z1 = relu(z0) + c."""
    first = Layer(np.array([[1e8, -1e8]]), np.zeros(1), acts.relu())
    second = Layer(np.array([[1.0]]), np.array([c]), acts.relu())
    return Network((first, second), np.array([[1.0]]), np.zeros(1))


@settings(max_examples=200, deadline=None)
@given(st.floats(0.1, 0.9), st.floats(0.5, 2.0), st.floats(-3.0, 3.0), st.sampled_from([0.0, 1e-4, 0.1, -0.1]))
def test_a_generic_point_has_the_real_signs_when_an_earlier_layer_rounds(x2, gap, shift, away):
    """generic_mask must carry the error of earlier layers: here layer 0 is generic (|z0| ~ 1, its error ~ 1e-8)
    but a layer-1 pre-activation within ~1e-8 of 0 has an unknown sign; counting only layer 1's own rounding
    (1e-10 of |h| + |c|) took such points as generic, with the float64 sign opposite to the real one. Checked
    against exact rational arithmetic: a point called generic has every real pre-activation nonzero, of the
    float64 sign. ``away`` moves z1 off the kink (0.1: far beyond every error bound, so the point is generic)."""
    x = np.array([x2 + gap * 1e-8, x2])
    z0_float = float(x @ np.array([1e8, -1e8]))
    z0_real = Fraction(1e8) * Fraction(x[0]) - Fraction(1e8) * Fraction(x[1])
    spread = abs(z0_float - float(z0_real))
    c = -0.5 * (z0_float + float(z0_real)) + shift * spread + away  # z1 straddles 0, or not
    net = _cancelling_net(c)
    generic = bool(generic_mask(net, x)[0])
    assert generic or abs(away) < 0.1  # far from every kink a point is generic: the check below does run
    if not generic:
        return
    z1_real = max(z0_real, Fraction(0)) + Fraction(c)
    for z, real in zip((float(v[0]) for v in net.preactivations(x)), (z0_real, z1_real)):
        assert real != 0 and (real > 0) == (z > 0)
