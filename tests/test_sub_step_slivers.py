"""Regions thinner than a float step: a kink within one float step of a box face, or two kinks within one float
step of each other, leave a real piece of the box on which the net has its own slope. The exact engines must not
take rounding for a proof that such a piece is empty (the traversal dropped them as 'flat' and certified a gain
of 0 where the gain is 30); they may say unknown, never a value below the truth.

The truth is computed here in rational arithmetic: a one-hidden-layer ReLU net of one input is affine between the
kinks -b_i / w_i (exact rationals of the stored floats)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from engine_calls import sup_norm
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.api import verify
from certify.config import VerifyConfig
from certify.engines.contract import Outcome
from certify.engines.equilibria import find_equilibria
from certify.engines.regions import enumerate_regions
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.pieces import pieces

A = math.nextafter(0.1, 0.0)  # the float below 0.1; 0.3 / 3 (exactly, of the float 0.3) lies between A and 0.1


def one_layer(w, b, v, c=0.0) -> Network:
    return Network((Layer(np.array(w, dtype=float).reshape(-1, 1), np.array(b, dtype=float), acts.relu()),),
                   np.array(v, dtype=float).reshape(1, -1), np.array([c]))


def true_gain(net: Network, lo: float, hi: float) -> Fraction:
    """max |f'| over the open pieces of [lo, hi], in exact arithmetic."""
    w = [Fraction(float(x)) for x in net.layers[0].weight[:, 0]]
    b = [Fraction(float(x)) for x in net.layers[0].bias]
    v = [Fraction(float(x)) for x in net.out_weight[0]]
    lo_f, hi_f = Fraction(lo), Fraction(hi)
    cuts = sorted({lo_f, hi_f} | {-bi / wi for wi, bi in zip(w, b) if wi != 0 and lo_f < -bi / wi < hi_f})
    best = Fraction(0)
    for u, t in zip(cuts, cuts[1:]):
        mid = (u + t) / 2
        slope = sum((vi * wi for wi, bi, vi in zip(w, b, v) if wi * mid + bi > 0), Fraction(0))
        best = max(best, abs(slope))
    return best


def exact_pieces(net: Network, lo: float, hi: float) -> list[tuple[Fraction, Fraction, Fraction]]:
    """The affine pieces (u, t, slope) of a piecewise-linear net of one input and one output on [lo, hi], in
    exact arithmetic: layer by layer each piece is cut where a pre-activation (affine in x on it) crosses a
    breakpoint of its activation."""
    parts = [(Fraction(lo), Fraction(hi), [(Fraction(1), Fraction(0))])]  # per piece: h_k = a_k x + c_k
    for layer in net.layers:
        pcs = pieces(layer.activation, layer.width)
        bps, slopes, offsets = ([[Fraction(float(v)) for v in row] for row in m]
                                for m in (pcs.breakpoints, pcs.slope, pcs.offset))
        w = [[Fraction(float(v)) for v in row] for row in layer.weight]
        b = [Fraction(float(v)) for v in layer.bias]
        out = []
        for u, t, h in parts:
            z = [(sum((wk * a for wk, (a, _) in zip(row, h)), Fraction(0)),
                  sum((wk * c for wk, (_, c) in zip(row, h)), Fraction(0)) + bi) for row, bi in zip(w, b)]
            cuts = sorted({u, t} | {(q - c) / a for (a, c), qs in zip(z, bps) for q in qs
                                    if a != 0 and u < (q - c) / a < t})
            for u2, t2 in zip(cuts, cuts[1:]):
                mid = (u2 + t2) / 2
                nxt = []
                for (a, c), qs, sl, of in zip(z, bps, slopes, offsets):
                    j = sum(1 for q in qs if q < a * mid + c)
                    nxt.append((sl[j] * a, sl[j] * c + of[j]))
                out.append((u2, t2, nxt))
        parts = out
    v = [Fraction(float(x)) for x in net.out_weight[0]]
    return [(u, t, sum((vk * a for vk, (a, _) in zip(v, h)), Fraction(0))) for u, t, h in parts]


def test_the_kink_proof_is_exact():
    assert Fraction(A) < Fraction(0.3) / 3 < Fraction(0.1)  # the premise of the tests below


def test_a_kink_inside_the_box_by_less_than_a_float_step_is_not_certified_away():
    net = one_layer([-3.0], [0.3], [10.0])  # slope -30 on [A, 0.3 / 3), 0 beyond
    box = Box(np.array([A]), np.array([0.9]))
    assert true_gain(net, A, 0.9) == 30
    for check in ("gain", "dissipativity", "contraction"):
        r = verify(net, box, [check], VerifyConfig(timeout=30, samples=200)).results[0]
        assert r.verdict.value != "certified" or r.upper >= 30, (check, r)
        assert r.upper >= 30 * (1 - 1e-12), (check, r)
    assert sup_norm(net, box, exact=True).upper >= 30 * (1 - 1e-12)
    assert sup_norm(net, box, threshold=1.0).outcome is not Outcome.CERTIFIED


def test_two_kinks_less_than_a_float_step_apart_are_searched():
    # relu(3x - 0.3) is on beyond 0.3 / 3, relu(0.1 - x) below 0.1: both on (slope 40) only between them
    net = one_layer([3.0, -1.0], [-0.3, 0.1], [10.0, -10.0])
    box = Box(np.array([0.0]), np.array([1.0]))
    assert true_gain(net, 0.0, 1.0) == 40
    assert sup_norm(net, box, exact=True).upper >= 40 * (1 - 1e-12)


def test_an_equilibrium_inside_a_sub_step_piece_keeps_the_search_incomplete():
    # f = 1000 relu(0.3 - 3x) + relu(x) / 2 + g on [A, 0.9]: f(A) > A and f < x beyond the kink, so the one fixed
    # point lies in the piece [A, 0.3 / 3), thinner than a float step
    g = 0.5 * A - 1e-15
    net = Network((Layer(np.array([[-3.0], [1.0]]), np.array([0.3, 0.0]), acts.relu()),),
                  np.array([[1000.0, 0.5]]), np.array([g]))
    kink = Fraction(0.3) / 3
    f_a = 1000 * (Fraction(0.3) - 3 * Fraction(A)) + Fraction(A) / 2 + Fraction(g)
    assert f_a > Fraction(A) and kink / 2 + Fraction(g) < kink  # the premise: a fixed point in (A, kink)
    res = find_equilibria(net, Box(np.array([A]), np.array([0.9])), VerifyConfig(timeout=30))
    assert not res.complete, res


def test_negated_neurons_on_the_same_plane_are_still_proven_flat():
    # relu(x - 0.25) and relu(0.25 - x): the piece with both off is the plane x = 0.25 (proven, not dropped)
    net = one_layer([1.0, -1.0], [-0.25, 0.25], [2.0, 0.5])
    box = Box(np.array([0.0]), np.array([1.0]))
    r = sup_norm(net, box, exact=True)
    assert r.upper == r.lower == 2.0 and r.method == "exact", r


near = st.integers(min_value=-3, max_value=3)


def _steps(x: float, k: int) -> float:
    for _ in range(abs(k)):
        x = math.nextafter(x, math.inf if k > 0 else -math.inf)
    return x


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-3.0, -1.0, 0.7, 1.0, 3.0, 7.0]), st.booleans(), near,
                          st.floats(min_value=-5.0, max_value=5.0, allow_nan=False)), min_size=1, max_size=4),
       st.sampled_from([(0.1, 0.9), (A, 0.7), (-0.3, 0.1), (1.0 / 3.0, 2.0)]))
def test_exact_gain_is_never_below_the_rational_truth(neurons, box_ends):
    """Kinks placed within a few float steps of a face (rounding decides on which side, as in trained nets with
    round-number biases): the engine's upper bound never falls below the exact gain, and its exact values are
    exact."""
    lo, hi = box_ends
    w, b, v = [], [], []
    for weight, at_low, steps, out in neurons:
        t = _steps(lo if at_low else hi, steps)
        w.append(weight)
        b.append(-weight * t)  # rounded: the kink -b/w lies near t, on either side
        v.append(out)
    net = one_layer(w, b, v)
    truth = float(true_gain(net, lo, hi))
    r = sup_norm(net, Box(np.array([lo]), np.array([hi])), exact=True)
    tol = 1e-12 * max(1.0, truth)
    assert r.upper >= truth - tol, (r, truth)
    assert r.lower <= truth + tol, (r, truth)
    if r.upper == r.lower:
        assert abs(r.upper - truth) <= tol, (r, truth)


def test_a_layer_whose_float64_map_cancels_is_not_trusted():
    # the second layer sums 0.1 x + 0.2 x - fl(0.1 + 0.2) x: zero in float64, -2.8e-17 x in fact, so its neuron
    # switches off at x = 0.72 and the gain is 2.78 on [0.5, 0.72) (1e17 times the cancelled slope), 0 beyond
    c = 0.1 + 0.2
    net = Network((Layer(np.array([[0.1], [0.2], [c]]), np.zeros(3), acts.relu()),
                   Layer(np.array([[1.0, 1.0, -1.0]]), np.array([2e-17]), acts.relu())),
                  np.array([[1e17]]), np.array([0.0]))
    truth = max(abs(s) for _, _, s in exact_pieces(net, 0.5, 1.0))
    assert 2.7 < truth < 2.8
    box = Box(np.array([0.5]), np.array([1.0]))
    assert sup_norm(net, box, exact=True).upper >= truth
    assert sup_norm(net, box, threshold=1.0).outcome is not Outcome.CERTIFIED
    r = verify(net, box, ["contraction"], VerifyConfig(timeout=30, samples=200)).results[0]
    assert r.verdict.value != "certified", r


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0.1, 0.2, 0.3, -0.1, -0.2, -0.3, 0.1 + 0.2, -(0.1 + 0.2), 1.0, -1.0]),
                min_size=4, max_size=4),
       st.lists(st.sampled_from([0.0, 0.1, -0.1, 0.3, -0.3, 1e-17, -1e-17]), min_size=4, max_size=4),
       st.lists(st.sampled_from([1.0, -1.0, 3.0, 1e16, -1e16]), min_size=8, max_size=8),
       st.lists(st.sampled_from([0.0, 1e-17, -2e-17, 0.1, -0.1]), min_size=2, max_size=2),
       st.sampled_from([(0.5, 1.0), (0.1, 0.9), (-1.0, 1.0), (A, 0.3)]))
def test_deep_exact_gain_is_never_below_the_rational_truth(w0, b0, w1, b1, box_ends):
    """Two hidden layers whose second-layer sums cancel in float64 (0.1 + 0.2 - fl(0.1 + 0.2)) and whose
    biases sit at round numbers: the truth from the exact pieces bounds the engine's answer from below."""
    net = Network((Layer(np.array(w0).reshape(4, 1), np.array(b0), acts.relu()),
                   Layer(np.array(w1).reshape(2, 4), np.array(b1), acts.relu())),
                  np.array([[1.0, -2.0]]), np.array([0.0]))
    lo, hi = box_ends
    truth = float(max(abs(s) for _, _, s in exact_pieces(net, lo, hi)))
    r = sup_norm(net, Box(np.array([lo]), np.array([hi])), exact=True)
    tol = 1e-12 * max(1.0, truth)
    assert r.upper >= truth - tol, (r, truth)
    assert r.lower <= truth + 1e-9 * max(1.0, truth), (r, truth)  # witnesses too: exact to 1e-9 at worst
    if r.upper == r.lower:
        assert abs(r.upper - truth) <= 1e-9 * max(1.0, truth), (r, truth)


def cancelling_net() -> Network:
    """1e16 (0.1 x + 0.1) - 1e16 (0.1 x) keeps 1e15 and loses 0.2 x in float64: the float64 Jacobian is -1 where
    the real one is 0."""
    return Network((Layer(np.full((4, 1), 0.1), np.array([0.0, 0.0, 0.1, 0.0]), acts.relu()),
                    Layer(np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1e16, -1e16]]), np.zeros(2), acts.relu())),
                   np.array([[10.0, -20.0]]), np.array([0.0]))


def test_regions_whose_float64_map_cancels_leave_the_enumeration_incomplete():
    enum = enumerate_regions(cancelling_net(), Box(np.array([0.5]), np.array([1.0])))
    assert not enum.complete and "cancel" in enum.reason, enum  # the float64 region map says slope -1


def test_a_witness_whose_float64_jacobian_cancels_falsifies_nothing():
    # a contraction 'falsified' by a replayed witness, a gain 'certified' as 1, where the real Jacobian is 0
    net = cancelling_net()
    assert all(s == 0 for _, _, s in exact_pieces(net, 0.5, 1.0))
    assert abs(net.jacobian(np.array([0.75]))[0, 0]) >= 1  # the premise: float64 says otherwise
    box = Box(np.array([0.5]), np.array([1.0]))
    for check in ("contraction", "dissipativity", "gain"):
        r = verify(net, box, [check], VerifyConfig(timeout=30, samples=300)).results[0]
        assert r.verdict.value == "unknown" and r.lower < 1e-9, (check, r)


def test_an_invariance_witness_whose_float64_output_cancels_falsifies_nothing():
    # f = 1e16 relu(0.1 x + 0.1) - 1e16 relu(0.1 x) - 1e15 is 1e16 fl(0.1) - 1e15 = 0.0555 on all of [0, 1], so
    # [0, 1] is invariant; in float64 the products keep 3 bits after the point and f swings over [-0.25, 0.25]:
    # it was 'falsified' at a replayed point where float64 says f = -0.25
    net = Network((Layer(np.array([[0.1], [0.1]]), np.array([0.1, 0.0]), acts.relu()),),
                  np.array([[1e16, -1e16]]), np.array([-1e15]))
    real = Fraction(1e16) * Fraction(0.1) + Fraction(-1e15)
    assert 0 < real < 1 and net.forward(np.linspace(0, 1, 201)[:, None]).min() < 0  # the premise
    r = verify(net, Box(np.array([0.0]), np.array([1.0])), ["invariance"],
               VerifyConfig(timeout=3, samples=300)).results[0]  # unknown either way: no need to search long
    assert r.verdict.value != "falsified", r
    assert r.lower <= float(max(real - 1, -real)) + 1e-12, r  # the witness's real violation


def test_a_plane_rounding_moves_cannot_hide_a_piece_behind_the_bounding_box():
    # P = K c x - K x + s (float64 G off by 1.6e-11 relative: its real plane lies 1.4e-11 below the float64 one,
    # within tol / 2, so it keeps its row) and Q = relu(q + 1e-3 - x) with q between the two planes: the
    # polytope's bounding box, computed from the float64 row, fixed Q off with no row, and the piece where P is off
    # and Q on (slope -1.5, 4e-12 wide) was never visited: contraction "certified" at 0.75
    k, c = 131085.1072, 0.9999928840177539
    g_float = np.float64(-k) + np.float64(k) * c
    g_real = Fraction(k) * Fraction(c) - Fraction(k)
    s = float(0.9 * abs(g_float))
    x_real, x_float = Fraction(s) / -g_real, Fraction(s) / -Fraction(float(g_float))
    q = float(x_real + (x_float - x_real) * 3 / 10)
    idle = (0.1, 0.2, 0.3, 0.4, 0.5)  # more neurons crossing than 4 per free coordinate: the bounding box is used
    w2 = np.zeros((2, 2 + len(idle)))
    w2[0, 0], w2[1, 1] = 1.0, -1.0
    net = Network((Layer(np.array([[1.0], [c]]), np.array([1e-3, 1e-3]), acts.relu()),
                   Layer(np.array([[-k, k], [1.0, 0.0]] + [[1.0, 0.0]] * len(idle)),
                         np.array([s, 0.0] + [-(1e-3 + t) for t in idle]), acts.relu()),
                   Layer(w2, np.array([0.0, q + 1e-3]), acts.prelu([1.0, 0.0]))),
                  np.array([[0.75 / float(g_float), 1.5]]), np.array([0.0]))
    truth = max(abs(sl) for _, _, sl in exact_pieces(net, 0.0, 1.0))
    assert truth == Fraction(3, 2)
    box = Box(np.array([0.0]), np.array([1.0]))
    assert sup_norm(net, box, exact=True).upper >= 1.5 * (1 - 1e-9)
    r = verify(net, box, ["contraction"], VerifyConfig(timeout=30, samples=300)).results[0]
    assert r.verdict.value != "certified" and r.upper >= 1.5 * (1 - 1e-9), r


def test_a_neuron_whose_float64_range_misses_its_kink_only_by_rounding_is_not_taken_as_stable():
    # z1 = 1e16 (x + 10) - 1e16 ((1 + 2^-52) x + 10) + 2.1 is -2x + 2.1 in float64 (> 0 on all of [0, 1]) and
    # -2.22 x + 2.1 in fact, which switches the neuron off for x > 0.946: f' = 1 - 0.4 * 2.22 there before,
    # 1 after. Without the rounding pad on the node's pre-activation range the traversal took the neuron as on
    # everywhere and offered a point of that phantom region as its lower bound (0.2, corrected only by the final
    # replay)
    eps = 2.0**-52
    net = Network((Layer(np.array([[1.0], [1.0 + eps]]), np.array([10.0, 10.0]), acts.relu()),
                   Layer(np.array([[1e16, -1e16]]), np.array([2.1]), acts.relu())),
                  np.array([[0.4]]), np.zeros(1), skip=np.array([[1.0]]))
    slope = Fraction(1e16) - Fraction(1e16) * Fraction(1.0 + eps)  # of z1 in x, exactly: -2.22
    kink = -Fraction(2.1) / slope
    assert 0 < kink < 1  # the premise: the real neuron switches inside the box
    truth = max(abs(1 + Fraction(0.4) * slope), Fraction(1))  # on [0, kink) and on (kink, 1]
    box = Box(np.array([0.0]), np.array([1.0]))
    for quantity in ("A_STAR", "JACOBIAN"):
        r = sup_norm(net, box, quantity=quantity, exact=True)
        assert r.upper >= truth and not r.exact, r
        assert "witness replay" not in r.reason, r.reason  # every lower bound the search offered was its own
    assert sup_norm(net, box, threshold=1.0).outcome is not Outcome.CERTIFIED
