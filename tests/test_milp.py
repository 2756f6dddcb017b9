"""MILP encodings (certify/milp.py) cross-checked against the network itself and against brute force.

* the affine + ReLU-terms form equals every piecewise-linear activation;
* the encoding is exact: with x pinned, min f_i = max f_i = f_i(x); over the box, the MILP max is >= every sampled
  value and its solution replays to the objective;
* equilibria: the MILP agrees with fixed-point iteration on contractive nets (found inside the box, none outside);
* l-inf / l1 gains: the LipMIP gadget equals a brute force over all activation patterns, each pattern's
  full-dimensionality decided by an LP through our own backend.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from milp_oracles import encode_equilibrium, encode_gain, equilibrium_exists_milp, milp_gain
from random_nets import random_net, scaled_net, unit_box

from certify.bounds.interval import interval_bounds
from certify.engines.milp_encoding import encode_network, relu_decomposition
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.numerics import induced_norm
from certify.solvers.base import LinearProgram, SolveStatus
from certify.solvers.registry import get_backend

BACKENDS = [b for b in ("cbc", "highs") if get_backend(b).available()]
FAST = "highs" if "highs" in BACKENDS else "cbc"
PWL = [
    acts.relu(),
    acts.leaky_relu(0.1),
    acts.leaky_relu(1.7),  # slope > 1: h = min(z, a z) on the negative side
    acts.identity(),
    acts.hardtanh(),
    acts.relu6(),
    acts.clip(-0.5, 0.3),
    acts.clip(-math.inf, 0.4),
    acts.clip(-0.2, math.inf),
]


# ------------------------------------------------------------------ activations as affine + ReLU terms
@pytest.mark.parametrize("act", PWL + [acts.prelu([0.2, -0.3, 1.5, 0.0])], ids=lambda a: a.describe())
def test_relu_decomposition_reproduces_the_activation(act):
    z = np.random.default_rng(0).uniform(-8, 8, size=(500, 4))
    z[:5] = [0.0, -0.5, 0.3, 6.0]  # the knots themselves
    form = relu_decomposition(act, 4)
    value = form.slope * z + form.offset
    for coef, knot in zip(form.coefs, form.knots):
        value = value + coef * np.maximum(z - knot, 0.0)
    assert np.allclose(value, act.np_value(z), atol=1e-12)


@pytest.mark.parametrize("act", [acts.tanh(), acts.gelu(), acts.sigmoid(), acts.elu()], ids=lambda a: a.name)
def test_smooth_activations_are_refused(act):
    net = random_net(0, 2, (3,), activation=act)
    with pytest.raises(UsageError, match="piecewise-linear"):
        encode_network(net, unit_box(2))


def test_bad_bounds_and_boxes_are_refused():
    net = random_net(0, 2, (3, 3))
    with pytest.raises(UsageError):
        encode_network(net, unit_box(3))
    with pytest.raises(UsageError):
        encode_network(net, unit_box(2), bounds=interval_bounds(net, unit_box(2))[:1])
    with pytest.raises(UsageError):
        encode_gain(net, unit_box(2), 2.0)


# ------------------------------------------------------------------ exactness of the value encoding
def _pinned(program: LinearProgram, x_index: np.ndarray, x: np.ndarray) -> LinearProgram:
    lower, upper = program.lower.copy(), program.upper.copy()
    lower[x_index] = x
    upper[x_index] = x
    return replace(program, lower=lower, upper=upper)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), act=st.sampled_from(PWL + ["prelu"]), depth=st.integers(1, 2))
def test_encoding_is_exact_at_points(seed, act, depth):
    net = random_net(seed, 2, (4,) * depth, activation=act, skip=seed % 2 == 0)
    box = Box(np.array([-1.0, -0.5]), np.array([1.5, 1.0]))
    enc = encode_network(net, box)
    solver = get_backend(FAST)
    rng = np.random.default_rng(seed)
    for x in rng.uniform(box.lower, box.upper, size=(3, 2)):
        fx = net.forward(x)
        for i in range(net.n_out):
            for maximize in (True, False):
                res = solver.solve(_pinned(enc.output_program(i, maximize), enc.x_index, x), 10)
                assert res.status is SolveStatus.OPTIMAL
                assert res.objective + enc.out_const[i] == pytest.approx(fx[i], abs=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_output_max_dominates_dense_sampling(backend, seed):
    net = random_net(seed, 2, (6, 5), activation=[acts.relu(), acts.leaky_relu(0.2)])
    box = unit_box(2)
    enc = encode_network(net, box)
    solver = get_backend(backend)
    xs = np.random.default_rng(seed).uniform(-1, 1, size=(40_000, 2))
    fs = net.forward(xs)
    for i in range(net.n_out):
        for maximize in (True, False):
            res = solver.solve(enc.output_program(i, maximize), 20)
            assert res.status is SolveStatus.OPTIMAL
            value = res.objective + enc.out_const[i]
            replay = net.forward(box.clip(res.x[enc.x_index]))[i]
            assert replay == pytest.approx(value, abs=1e-6)  # the solution is a real point of the net
            if maximize:
                assert value >= fs[:, i].max() - 1e-7
                assert value - fs[:, i].max() < 0.05  # and not far above a dense sample (2-D, smooth enough)
            else:
                assert value <= fs[:, i].min() + 1e-7
                assert fs[:, i].min() - value < 0.05


def test_backends_agree_on_output_ranges():
    if len(BACKENDS) < 2:
        pytest.skip("needs both backends")
    net = random_net(11, 3, (6, 6), activation=acts.hardtanh())
    enc = encode_network(net, unit_box(3))
    for i in range(net.n_out):
        values = [get_backend(b).solve(enc.output_program(i, True), 20).objective for b in BACKENDS]
        assert values[0] == pytest.approx(values[1], abs=1e-6)


def test_stable_neurons_need_no_binary():
    # A box where every first-layer neuron is stable: no binaries at all, and the MILP is an LP.
    w = np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    net = Network((Layer(w, np.array([3.0, -3.0, 0.5]), acts.relu()),), np.ones((2, 3)), np.zeros(2))
    enc = encode_network(net, unit_box(2, 0.2))
    assert enc.model.n_binaries == 0
    net2 = Network((Layer(w, np.zeros(3), acts.relu()),), np.ones((2, 3)), np.zeros(2))
    assert encode_network(net2, unit_box(2, 0.2)).model.n_binaries == 3


# ------------------------------------------------------------------ equilibria vs fixed-point iteration
def _contractive(seed: int, n: int, act, skip=False):
    net = random_net(seed, n, (5, 4), activation=act, bias_scale=0.8, skip=skip)
    # make it a contraction on all of R^n: product of the layers' inf-norms (slopes <= 1 for these activations)
    lip = np.prod([np.abs(layer.weight).sum(axis=1).max() for layer in net.layers])
    lip *= np.abs(net.out_weight).sum(axis=1).max()
    if net.skip is not None:
        lip += np.abs(net.skip).sum(axis=1).max()
    return scaled_net(net, 0.8 / lip)


def _fixed_point(net: Network, n: int) -> np.ndarray:
    xs = np.random.default_rng(0).uniform(-5, 5, size=(50, n))
    for _ in range(400):
        xs = net.forward(xs)
    assert np.ptp(xs, axis=0).max() < 1e-10  # every start reached the same point (a contraction)
    return xs[0]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), act=st.sampled_from([acts.relu(), acts.leaky_relu(0.3), acts.hardtanh()]),
       backend=st.sampled_from(BACKENDS))
def test_equilibrium_matches_fixed_point_iteration(seed, act, backend):
    n = 2
    net = _contractive(seed, n, act, skip=seed % 3 == 0)
    x_star = _fixed_point(net, n)
    inside = Box(x_star - 0.3, x_star + 0.4)
    found = equilibrium_exists_milp(net, inside, backend=backend, time_limit=20)
    assert found.exists is True, found.reason
    assert np.allclose(found.point, x_star, atol=1e-8)
    assert found.residual <= found.tolerance
    outside = Box(x_star + 0.05, x_star + 1.0)  # misses x_star in every coordinate
    none = equilibrium_exists_milp(net, outside, backend=backend, time_limit=20)
    assert none.exists is False and none.result.status is SolveStatus.INFEASIBLE


def test_equilibrium_with_exogenous_input():
    # x+ = 0.5 x + u, u in [0.2, 0.4]: equilibria x = 2u fill [0.4, 0.8]; the box [0.9, 1] holds none.
    net = Network((Layer(np.eye(2), np.zeros(2), acts.identity()),), np.array([[0.5, 1.0]]), np.zeros(1),
                  n_states=1)
    found = equilibrium_exists_milp(net, Box(np.array([-1.0, 0.2]), np.array([1.0, 0.4]), n_states=1))
    assert found.exists and found.point[0] == pytest.approx(2 * found.point[1], abs=1e-9)
    none = equilibrium_exists_milp(net, Box(np.array([0.9, 0.2]), np.array([1.0, 0.4]), n_states=1))
    assert none.exists is False


def test_equilibrium_encoding_needs_a_dynamical_system():
    with pytest.raises(UsageError):
        encode_equilibrium(random_net(0, 2, (3,), n_out=1), unit_box(2))


# ------------------------------------------------------------------ gains vs brute force over patterns
def _pieces(act: acts.Activation, width: int):
    """Per neuron: a list of (z_lo, z_hi, slope) pieces of the activation (from its ReLU-term form)."""
    form = relu_decomposition(act, width)
    out = []
    for j in range(width):
        knots = sorted(set(form.knots[:, j]))
        edges = [-math.inf, *knots, math.inf]
        pieces = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            if math.isfinite(lo) and math.isfinite(hi):
                mid = (lo + hi) / 2
            else:
                mid = hi - 1 if math.isfinite(hi) else lo + 1
            slope = form.slope[j] + sum(c[j] for c, k in zip(form.coefs, form.knots) if mid > k[j])
            pieces.append((lo, hi, slope))
        out.append(pieces)
    return out


def brute_force_gain(net: Network, box: Box, p: float, state_only: bool) -> float:
    """max over full-dimensional activation regions of ||J||_p, each region checked by an LP (max slack)."""
    solver = get_backend(FAST)
    per_layer = [_pieces(layer.activation, layer.width) for layer in net.layers]
    flat = [pieces for layer in per_layer for pieces in layer]
    n = net.n_in
    cols = np.arange(net.n_states if state_only else n)
    best = -math.inf
    for choice in itertools.product(*[range(len(pc)) for pc in flat]):
        m, c = np.eye(n), np.zeros(n)  # h = m x + c on this pattern
        rows, rhs = [], []
        jac = np.eye(n)
        k = 0
        for layer, pieces in zip(net.layers, per_layer):
            zm, zc = layer.weight @ m, layer.weight @ c + layer.bias
            slopes = np.zeros(layer.width)
            offs = np.zeros(layer.width)
            for j in range(layer.width):
                lo, hi, slope = pieces[j][choice[k]]
                k += 1
                slopes[j] = slope
                if math.isfinite(lo):  # z_j >= lo + s  ->  -zm x + s <= zc - lo
                    rows.append(np.append(-zm[j], 1.0))
                    rhs.append(zc[j] - lo)
                if math.isfinite(hi):  # z_j <= hi - s
                    rows.append(np.append(zm[j], 1.0))
                    rhs.append(hi - zc[j])
                # value on the piece: act(z) = slope z + (act(lo) - slope lo) (or through a finite end)
                anchor = lo if math.isfinite(lo) else (hi if math.isfinite(hi) else 0.0)
                offs[j] = layer.activation.np_value(np.array([anchor]))[0] - slope * anchor
            m, c = slopes[:, None] * zm, slopes * zc + offs
            jac = slopes[:, None] * (layer.weight @ jac)
        lp = LinearProgram(
            c=np.append(np.zeros(n), 1.0), a_ub=np.array(rows).reshape(-1, n + 1), b_ub=np.array(rhs),
            a_eq=np.zeros((0, n + 1)), b_eq=np.zeros(0),
            lower=np.append(box.lower, -1.0), upper=np.append(box.upper, 1.0), maximize=True,
        )
        res = solver.solve(lp, 10)
        assert res.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE)
        if res.status is SolveStatus.OPTIMAL and res.objective > 1e-9:
            full = net.out_weight @ jac + (0 if net.skip is None else net.skip)
            best = max(best, induced_norm(full[:, cols], p))
    return best


GAIN_ACTS = [acts.relu(), acts.leaky_relu(0.25), acts.hardtanh(), acts.clip(-0.3, 0.5), "prelu"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    act=st.sampled_from(GAIN_ACTS),
    shape=st.sampled_from([(1, (3,)), (2, (3,)), (2, (2, 2)), (1, (2, 2)), (2, (4,))]),
    p=st.sampled_from([1.0, math.inf]),
    skip=st.booleans(),
)
def test_milp_gain_matches_brute_force(seed, act, shape, p, skip):
    n_in, widths = shape
    net = random_net(seed, n_in, widths, n_out=2, activation=act, skip=skip)
    box = Box(-np.ones(n_in), np.ones(n_in) * 0.7)
    exact = brute_force_gain(net, box, p, state_only=True)
    value, x, res = milp_gain(net, box, p, backend=FAST, time_limit=20)
    assert res.status is SolveStatus.OPTIMAL
    assert value == pytest.approx(exact, abs=1e-6)
    assert milp_gain(net, box, p, backend=FAST).upper >= exact
    assert box.contains(x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [1.0, math.inf])
def test_milp_gain_with_exogenous_inputs(backend, p):
    # 3 inputs of which 2 are states: the state-only gain uses 2 columns, the full gain 3.
    net = random_net(5, 3, (4,), n_out=2, n_states=2, skip=True)
    box = unit_box(3, 0.8, n_states=2)
    for state_only in (True, False):
        exact = brute_force_gain(net, box, p, state_only)
        gain = milp_gain(net, box, p, state_only, backend=backend)
        assert gain.result.status is SolveStatus.OPTIMAL
        assert gain.value == pytest.approx(exact, abs=1e-6)
        assert gain.upper >= gain.value


@pytest.mark.parametrize("p", [1.0, math.inf])
def test_milp_gain_dominates_sampling(p):
    net = random_net(3, 2, (8, 8))
    box = unit_box(2)
    xs = np.random.default_rng(1).uniform(-1, 1, size=(20_000, 2))
    sampled = induced_norm(net.jacobian(xs), p).max()
    gain = milp_gain(net, box, p, backend=FAST)
    assert gain.result.status is SolveStatus.OPTIMAL
    assert sampled <= gain.value + 1e-7 <= gain.upper + 1e-7


def test_gain_of_a_net_without_hidden_layers_is_its_matrix_norm():
    w = np.array([[1.0, -2.0], [0.5, 0.25]])
    net = Network((), w, np.zeros(2))
    for p in (1.0, math.inf):
        assert milp_gain(net, unit_box(2), p, backend=FAST).value == pytest.approx(induced_norm(w, p), abs=1e-9)


def test_gain_time_limit_is_not_optimal():
    net = random_net(2, 4, (40, 40), n_out=4)
    gain = milp_gain(net, unit_box(4), math.inf, backend=FAST, time_limit=0.05)
    if gain.result.status is not SolveStatus.OPTIMAL:  # a tiny budget: the combined result must say so
        assert gain.result.status in (SolveStatus.TIME_LIMIT, SolveStatus.INACCURATE)


def test_tighter_bounds_give_the_same_answer_with_fewer_binaries():
    from certify.bounds.crown import symbolic_bounds

    net = random_net(21, 2, (8, 8, 8))
    box = unit_box(2, 0.5)
    loose = encode_network(net, box)
    tight = encode_network(net, box, bounds=symbolic_bounds(net, box))
    assert tight.model.n_binaries <= loose.model.n_binaries
    assert tight.model.big_m_scale <= loose.model.big_m_scale
    solver = get_backend(FAST)
    for i in range(net.n_out):
        a = solver.solve(loose.output_program(i, True), 20)
        b = solver.solve(tight.output_program(i, True), 20)
        assert a.objective == pytest.approx(b.objective, abs=1e-7)


def test_the_encoding_trusts_its_bounds():
    # Bounds that cut off part of the true pre-activation range make the MILP wrong: soundness of the bounds
    # is an assumption of the encoding, which is why analyses take them from interval or CROWN propagation.
    net = Network((Layer(np.ones((1, 1)), np.zeros(1), acts.relu()),), np.ones((1, 1)), np.zeros(1))
    box = unit_box(1)
    true_max = get_backend(FAST).solve(encode_network(net, box).output_program(0, True), 10).objective
    assert true_max == pytest.approx(1.0)
    bad = [replace(interval_bounds(net, box)[0], pre_upper=np.array([0.5]), post_upper=np.array([0.5]))]
    wrong = get_backend(FAST).solve(encode_network(net, box, bounds=bad).output_program(0, True), 10)
    assert wrong.status is not SolveStatus.OPTIMAL or wrong.objective < true_max - 0.4


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    act=st.sampled_from([acts.relu(), acts.leaky_relu(0.1), acts.hardtanh()]),
    widths=st.sampled_from([(6, 6), (10,), (5, 5, 5)]),
    p=st.sampled_from([1.0, math.inf]),
)
def test_milp_gain_cross_checks_branch_and_bound(seed, act, widths, p):
    """The exact l1 / l-inf gains from two unrelated methods: the LipMIP MILP and region branch and bound."""
    from engine_calls import sup_norm

    net = random_net(seed, 2, widths, activation=act, skip=seed % 2 == 1)
    box = unit_box(2, 0.8)
    bnb = sup_norm(net, box, p, "JACOBIAN", exact=True, timeout=30)
    gain = milp_gain(net, box, p, backend=FAST, time_limit=30)
    assert gain.result.status is SolveStatus.OPTIMAL
    assert bnb.exact, bnb.reason
    # the MILP takes the max over closed regions, branch and bound over full-dimensional ones: equal generically
    assert gain.value == pytest.approx(bnb.lower, abs=1e-6)
    assert gain.upper >= bnb.lower - 1e-9 and bnb.upper >= gain.value - 1e-6


def test_milp_gain_over_closed_regions_can_exceed_the_full_dimensional_value():
    """A degenerate net where the MILP gain is NOT the exact value: two identical neurons z1 = z2 = x and
    f = relu(z1) - relu(z2) = 0 everywhere, so J = 0 on every full-dimensional region (and at x = 0 with
    torch's relu'(0) = 0). At x = 0 the MILP may set d = (1, 0), a pattern that lives only on a point, and
    reports |J| = 1. The MILP gain is an upper bound on the exact gain, equal to it only generically."""
    net = Network((Layer(np.ones((2, 1)), np.zeros(2), acts.relu()),), np.array([[1.0, -1.0]]), np.zeros(1))
    box = unit_box(1)
    assert brute_force_gain(net, box, math.inf, True) == 0.0
    gain = milp_gain(net, box, math.inf, backend=FAST)
    assert gain.result.status is SolveStatus.OPTIMAL
    assert gain.value == pytest.approx(1.0)
    assert gain.x[0] == pytest.approx(0.0, abs=1e-7)  # on the lower-dimensional piece
    assert induced_norm(net.jacobian(gain.x), math.inf) <= gain.value


@pytest.mark.parametrize("seed", range(3))
def test_lp_tightened_bounds_are_sound_and_tighter(seed):
    from certify.bounds.crown import symbolic_bounds
    from certify.engines.milp_analyses import tighten_bounds_lp

    net = random_net(seed, 2, (8, 8, 8), activation=[acts.relu(), acts.hardtanh(), acts.leaky_relu(0.1)])
    box = unit_box(2)
    crown = symbolic_bounds(net, box)
    tight = tighten_bounds_lp(net, box, crown, backend=FAST)
    zs = net.preactivations(np.random.default_rng(seed).uniform(-1, 1, size=(50_000, 2)))
    for z, a, b in zip(zs, crown, tight):
        assert np.all(b.pre_lower >= a.pre_lower) and np.all(b.pre_upper <= a.pre_upper)
        assert np.all(z >= b.pre_lower) and np.all(z <= b.pre_upper)  # sound against dense sampling
    widths = [np.sum(b.pre_upper - b.pre_lower) for b in tight[1:]]
    assert sum(widths) < sum(np.sum(a.pre_upper - a.pre_lower) for a in crown[1:])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(3))
def test_output_cutoff_keeps_the_optimum_or_proves_it_below(backend, seed):
    # f_i >= cutoff: feasible with the same optimum when the cutoff is below the max, infeasible above it
    net = random_net(seed, 2, (6, 5), activation=[acts.relu(), acts.leaky_relu(0.2)])
    enc = encode_network(net, unit_box(2))
    solver = get_backend(backend)
    for i in range(net.n_out):
        for maximize in (True, False):
            plain = solver.solve(enc.output_program(i, maximize), 20)
            opt = plain.objective + enc.out_const[i]
            inside = opt - 1e-3 if maximize else opt + 1e-3
            beyond = opt + 1e-3 if maximize else opt - 1e-3
            res = solver.solve(enc.output_program(i, maximize, inside), 20)
            assert res.status is SolveStatus.OPTIMAL
            assert res.objective + enc.out_const[i] == pytest.approx(opt, abs=1e-7)
            assert solver.solve(enc.output_program(i, maximize, beyond), 20).status is SolveStatus.INFEASIBLE
