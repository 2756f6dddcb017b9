"""Batched CROWN bounds over sub-boxes (certify/bounds/crown.py) and the output branch and bound built on them
(certify/engines/output_bnb.py), cross-checked against sampling and the MILP:

* the bounds of every objective and every pre-activation enclose the sampled values, on random sub-boxes and on
  the polytopes cut by neuron splits;
* the rounding pads matter: on sub-boxes so small that CROWN is tight, the bound still holds at the vertices;
* the branch and bound's maximum of each output equals the MILP's on small nets, and sampled <= its bounds;
* the invariance verdict with the branch and bound agrees with the MILP path.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_nets import random_net

from certify.bounds.crown import box_bounds, box_layer_bounds, crown_pads
from certify.certificate import Verdict
from certify.checks.invariance import check_invariance
from certify.config import InvarianceOptions, VerifyConfig
from certify.engines.contract import Query
from certify.engines.milp_analyses import analysis_bounds
from certify.engines.milp_encoding import encode_network
from certify.engines.output_bnb import output_bnb, violation_rows
from certify.engines.search import split_axes
from certify.engines.violation_search import violation
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.quantity import Quantity
from certify.solvers.base import SolveStatus
from certify.solvers.registry import get_backend

ACTS = {"relu": acts.relu(), "leaky": acts.leaky_relu(0.1), "hardtanh": acts.hardtanh(), "prelu": "prelu"}
MILP = next((b for b in ("highs", "cbc") if get_backend(b).available()), None)


def _draw_net(seed: int, act: str, n: int = 2, widths=(6, 6), skip: bool = True) -> Network:
    return random_net(seed, n, widths, n, ACTS[act], skip=skip)


def _sub_boxes(rng, lo0, hi0, count):
    a = lo0 + (hi0 - lo0) * rng.random((count, lo0.size))
    b = lo0 + (hi0 - lo0) * rng.random((count, lo0.size))
    return np.minimum(a, b), np.maximum(a, b)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), act=st.sampled_from(sorted(ACTS)), n=st.integers(1, 3),
       depth=st.integers(0, 3), skip=st.booleans())
def test_crown_bounds_enclose_sampled_outputs(seed, act, n, depth, skip):
    rng = np.random.default_rng(seed)
    net = random_net(rng, n, (5,) * depth, n, ACTS[act], skip=skip)
    lo0 = rng.uniform(-2, 0, n)
    hi0 = lo0 + rng.uniform(0.05, 2, n)
    rows, consts = rng.normal(size=(3, n)), rng.normal(size=3)
    pads = crown_pads(net, lo0, hi0, rows, consts)
    lo, hi = _sub_boxes(rng, lo0, hi0, 16)
    lo[0], hi[0] = lo0, hi0  # the whole box too
    ub, _ = box_bounds(net, lo, hi, rows, consts, pads)
    pre, _, empty = box_layer_bounds(net, lo, hi, pads)
    assert not empty.any()
    k = 200  # points per sub-box, its two corners among them
    t = rng.random((lo.shape[0], k, n))
    t[:, 0], t[:, 1] = 0.0, 1.0
    x = (lo[:, None] + (hi - lo)[:, None] * t).reshape(-1, n)
    assert np.all((net.forward(x) @ rows.T + consts).reshape(lo.shape[0], k, -1) <= ub[:, None])
    for z, (plo, phi) in zip(net.preactivations(x), pre):
        z = z.reshape(lo.shape[0], k, -1)
        assert np.all(z >= plo[:, None]) and np.all(z <= phi[:, None])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), act=st.sampled_from(["relu", "leaky", "prelu"]))
def test_crown_bounds_hold_on_the_polytopes_of_neuron_splits(seed, act):
    rng = np.random.default_rng(seed)
    net = _draw_net(seed, act)
    lo0, hi0 = -np.ones(2), np.ones(2)
    rows, consts = rng.normal(size=(2, 2)), np.zeros(2)
    pads = crown_pads(net, lo0, hi0, rows, consts)
    x = rng.uniform(-1, 1, (4000, 2))
    z0 = net.preactivations(x)[0]
    fixed0 = np.full((1, net.layers[0].width), -1)
    held = rng.choice(net.layers[0].width, size=2, replace=False)
    fixed0[0, held] = rng.integers(0, 2, size=2)
    ub, _ = box_bounds(net, lo0[None], hi0[None], rows, consts, pads, fixed=[fixed0, None])
    inside = np.all((z0[:, held] >= 0) == (fixed0[0, held] == 1), axis=1)
    if not inside.any():
        return
    assert np.all(net.forward(x[inside]) @ rows.T + consts <= ub[0])


def test_rounding_pads_keep_tight_bounds_sound():
    # on sub-boxes of width 1e-9 every neuron is stable and CROWN is exact in real arithmetic: only the pads of
    # crown_pads stand between the float64 bound and the value replayed at a vertex (without them it fails)
    bad = 0
    for seed in range(16):
        rng = np.random.default_rng(seed)
        net = _draw_net(seed, "leaky")
        lo0 = rng.uniform(-1, 0, 2)
        hi0 = lo0 + rng.uniform(0.1, 1, 2)
        rows, consts = rng.normal(size=(3, 2)), rng.normal(size=3)
        pads = crown_pads(net, lo0, hi0, rows, consts)
        c = lo0 + (hi0 - lo0) * rng.random((100, 2))
        w = 1e-9 * rng.random((100, 2))
        lo, hi = np.maximum(c - w, lo0), np.minimum(c + w, hi0)
        ub, _ = box_bounds(net, lo, hi, rows, consts, pads)
        for k in range(4):
            v = np.where(np.array([k & 1, k >> 1]) > 0, hi, lo)
            bad += int((net.forward(v) @ rows.T + consts > ub).sum())
    assert bad == 0


def _query(net, box, threshold=None, **options):
    config = VerifyConfig(timeout=60.0, invariance=InvarianceOptions(**options))
    return Query(net, box, Quantity.VIOLATION, config, threshold=threshold)


def _milp_extremes(net: Network, box: Box, i: int) -> tuple[float, float]:
    """(max f_i, min f_i) over the box by MILP (the solver's optimum: a reference, not a bound)."""
    solver = get_backend(MILP)
    enc = encode_network(net, box, analysis_bounds(net, box, backend="highs"))
    out = []
    for maximize in (True, False):
        res = solver.solve(enc.output_program(i, maximize), 60.0)
        assert res.status is SolveStatus.OPTIMAL
        out.append(res.objective + enc.out_const[i])
    return out[0], out[1]


@pytest.mark.skipif(MILP is None, reason="no MILP back-end")
def test_a_box_is_never_halved_along_a_coordinate_it_cannot_split():
    # found by the test below: the worst objective's bound ignored x_1, so the box [c, c] x [-1, 1] was halved along
    # x_0 below one float64 step for ever and min f_1 stayed at [-0.4034, -0.3159] (608947 boxes in 60 s)
    net = _draw_net(9823, "prelu", widths=(8, 8))
    box = Box(-np.ones(2), np.ones(2))
    _, lo_milp = _milp_extremes(net, box, 1)
    query = _query(net, box, gap_tol=1e-7)
    res = output_bnb(replace(query, config=query.config.with_(budget=50_000)), np.array([[0.0, -1.0]]), np.zeros(1))
    assert res.exhausted, res.reason
    assert res.lower - 1e-9 <= -lo_milp <= res.upper + 1e-9


def test_split_axes_skip_unsplittable_and_far_narrower_coordinates():
    lo = np.array([[0.5, -1.0, 0.0], [0.0, 0.0, 0.0]])
    hi = np.array([[0.5, 1.0, 1e-3], [np.nextafter(0.0, 1.0), 0.0, 0.0]])
    coef = np.array([[5.0, 0.0, 1e6], [1.0, 1.0, 1.0]])
    axis, final = split_axes(lo, hi, np.abs(coef) * (hi - lo), np.full(3, 2.0), 256.0)  # output_bnb's rule
    # box 0: x_0 has no width, x_2 is 2000 times narrower than x_1: x_1 despite its zero coefficient
    # box 1: one float64 step in x_0 (its midpoint rounds to an end), nothing else: final
    assert axis[0] == 1 and not final[0] and final[1]


def test_the_aspect_rule_ignores_a_coordinate_that_cannot_be_split():
    # a coordinate two float64 steps wide in the root box is 1/2 as wide as its root after one split and cannot be
    # split again; measured against it, the other coordinates (1/1024 of their root) were too narrow to split too, so
    # the box was final with an open gap (output_bnb stalled, unknown)
    c = 0.25
    width0 = np.array([2.0 * (np.nextafter(c, 1.0) - c), 2.0])
    lo = np.array([[c, -1.0 / 1024]])
    hi = np.array([[np.nextafter(c, 1.0), 1.0 / 1024]])
    axis, final = split_axes(lo, hi, np.ones((1, 2)), width0, 256.0)
    assert axis[0] == 1 and not final[0]


def test_output_bounds_close_on_a_box_with_a_coordinate_two_float_steps_wide():
    # (the stall above: [0.0984237, 0.0984259] and "boxes too small to split remain above the level")
    net = _draw_net(8, "relu", widths=(16, 16))
    c = 0.25
    box = Box(np.array([c, -1.0]), np.array([np.nextafter(np.nextafter(c, 1.0), 1.0), 1.0]))
    x = np.column_stack([np.full(4001, c), np.linspace(-1.0, 1.0, 4001)])
    res = output_bnb(_query(net, box, gap_tol=1e-9), np.array([[1.0, 0.0]]), np.zeros(1))
    assert res.exhausted, res.reason
    assert float(net.forward(x)[:, 0].max()) <= res.lower + 1e-12 <= res.upper + 1e-12
    assert res.upper - res.lower <= 1e-6 * max(1.0, abs(res.upper))


@pytest.mark.skipif(MILP is None, reason="no MILP back-end")
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), act=st.sampled_from(["relu", "leaky", "prelu", "hardtanh"]))
def test_branch_and_bound_output_extremes_equal_the_milp(seed, act):
    net = _draw_net(seed, act, widths=(8, 8))
    box = Box(-np.ones(2), np.ones(2))
    x = np.random.default_rng(seed).uniform(-1, 1, (20_000, 2))
    for i in range(2):
        hi_milp, lo_milp = _milp_extremes(net, box, i)
        row = np.zeros((1, 2))
        row[0, i] = 1.0
        for sign, milp in ((1.0, hi_milp), (-1.0, -lo_milp)):
            res = output_bnb(_query(net, box, gap_tol=1e-7), sign * row, np.zeros(1))
            assert res.exhausted, res.reason
            sampled = float((sign * net.forward(x)[:, i]).max())
            assert sampled <= res.lower + 1e-12 <= res.upper + 1e-12
            assert res.lower == pytest.approx(milp, abs=1e-6)
            assert res.upper - res.lower <= 1e-7 + 1e-9
            assert sign * net.forward(res.witness[None])[0, i] == res.lower  # replayed in float64
            assert box.contains(res.witness)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), act=st.sampled_from(sorted(ACTS)), scale=st.floats(0.5, 1.5),
       n=st.integers(1, 3))
def test_certify_mode_brackets_the_sampled_violation(seed, act, scale, n):
    net = _draw_net(seed, act, n=n)
    probe = np.abs(net.forward(np.random.default_rng(0).uniform(-1, 1, (2000, n)))).max()
    net = Network(net.layers, net.out_weight * scale / probe, net.out_bias * scale / probe,
                  None if net.skip is None else net.skip * scale / probe)
    box = Box(-np.ones(n), np.ones(n))
    dense = float(violation(net, box, np.random.default_rng(1).uniform(-1, 1, (50_000, n)))[0].max())
    res = output_bnb(_query(net, box, threshold=0.0))
    assert res.lower <= res.upper
    v, _ = violation(net, box, res.witness[None])
    assert v[0] == res.lower and box.contains(res.witness)
    if res.upper < 0:
        assert dense <= res.upper
    else:
        assert res.lower > 0 or not res.exhausted, res.reason


def test_no_hidden_layer_and_exogenous_inputs():
    # f = 0.5 x_1 + u with u in [0, 0.6]: leaves [-1, 1] by 0.1 at x_1 = 1, u = 0.6; only the state is compared
    net = Network((), np.array([[0.5, 1.0]]), np.zeros(1), n_states=1)
    box = Box(np.array([-1.0, 0.0]), np.array([1.0, 0.6]), n_states=1)
    rows, consts = violation_rows(net, box)
    assert rows.shape == (2, 1) and consts.tolist() == [-1.0, -1.0]
    res = output_bnb(_query(net, box))
    assert res.exhausted and res.lower == pytest.approx(0.1, abs=1e-12) and res.upper - res.lower < 1e-6


def test_smooth_net_is_refused():
    net = _draw_net(0, "relu")
    smooth = Network((Layer(net.layers[0].weight, net.layers[0].bias, acts.tanh()),), net.out_weight[:, :6],
                     net.out_bias)
    with pytest.raises(UsageError, match="piecewise-linear"):
        output_bnb(_query(smooth, Box(-np.ones(2), np.ones(2))))


@pytest.mark.skipif(MILP is None, reason="no MILP back-end")
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scale=st.floats(0.6, 0.98) | st.floats(1.02, 1.4),
       act=st.sampled_from(["relu", "leaky", "hardtanh"]), exact=st.booleans())
def test_invariance_verdicts_agree_with_the_milp_path(seed, scale, act, exact):
    # (a scale of 1 puts a sampled point on the box's edge: V = 0 exactly, unknown to every method)
    net = _draw_net(seed, act, widths=(8, 8), skip=False)
    probe = np.abs(net.forward(np.random.default_rng(0).uniform(-1, 1, (2000, 2)))).max()
    net = Network(net.layers, net.out_weight * scale / probe, net.out_bias * scale / probe)
    box = Box(-np.ones(2), np.ones(2))
    config = VerifyConfig(samples=16, timeout=60.0, exact=exact)
    config = config.with_(solvers=replace(config.solvers, milp=MILP))
    new = check_invariance(net, box, config)
    old = check_invariance(net, box, config.with_(invariance=replace(config.invariance, bnb=False)))
    assert new.verdict is old.verdict, (new.reason, old.reason)
    assert new.verdict is not Verdict.UNKNOWN, new.reason
    # the MILP is the fallback for what the branch and bound leaves open in its share of the time
    assert new.method in ("crown", "sample", "interval", "milp"), new.reason
    assert max(new.lower, old.lower) <= min(new.upper, old.upper) + 1e-9
    if exact:
        assert new.lower == pytest.approx(old.lower, abs=1e-6)
        assert new.upper - new.lower <= 1e-5
    if new.method == "crown":
        assert "solver-free" in new.details.solver_free_recheck
    if new.verdict is Verdict.CERTIFIED:
        assert new.upper < 0
    else:
        assert violation(net, box, np.array(new.witness.x)[None])[0][0] == new.witness.value > 0
    assert math.isfinite(new.upper)


def _tent_net(height: float, a: float = 0.9, b: float = -0.2, k: float = 1000.0) -> Network:
    """f_1 = 0.5 x_1 + height * relu(1 - k (|x_1 - a| + |x_2 - b|)), f_2 = 0.5 x_2: f_1 peaks at 0.5 a + height
    on a diamond of radius 1/k around (a, b) (the steep tent makes the bounds over the whole box loose)."""
    w1 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    l1 = Layer(w1, np.array([-a, a, -b, b]), acts.relu())
    l2 = Layer(-k * np.ones((1, 4)), np.ones(1), acts.relu())
    return Network((l1, l2), np.array([[height], [0.0]]), np.zeros(2), skip=0.5 * np.eye(2))


@pytest.mark.skipif(MILP is None, reason="no MILP back-end")
@pytest.mark.parametrize("height", [0.5, 0.6])
def test_milp_is_the_fallback_where_the_branch_and_bound_stops(height):
    net, box = _tent_net(height), Box(-np.ones(2), np.ones(2))
    config = VerifyConfig(samples=64, timeout=60.0)
    config = config.with_(solvers=replace(config.solvers, milp=MILP))
    full = check_invariance(net, box, config)  # the branch and bound settles it alone
    assert full.method == "crown" and full.details.milp is None
    stopped = check_invariance(net, box, config.with_(budget=1))  # one box: the MILP has to settle it
    assert stopped.method_label == f"milp:{MILP}", stopped.reason
    assert stopped.verdict is full.verdict is (Verdict.CERTIFIED if height == 0.5 else Verdict.FALSIFIED)
    peak = 0.45 + height - 1.0
    if full.verdict is Verdict.FALSIFIED:
        assert 0 < full.lower <= peak + 1e-12 and stopped.lower == pytest.approx(peak, abs=1e-9)
    else:
        assert full.upper < 0 and stopped.upper < 0
