"""The invariance check (certify/invariance.py) against dense sampling and hand-made cases.

* a net mapping the box into itself is certified (by interval bounds when they suffice, by MILP when they do not);
* a net leaving the box only on a sliver of area ~1e-6 is falsified with a replayed witness inside the sliver;
* on random nets the verdict agrees with dense sampling, and the bracket holds every sampled violation;
* smooth nets never get a MILP certificate; a missing solver gives unknown, never certified.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certify.certificate import CheckName, Verdict
from certify.checks.invariance import check_invariance as run_invariance
from certify.config import VerifyConfig
from certify.engines.violation_search import violation
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.solvers.registry import get_backend

BACKENDS = [b for b in ("cbc", "highs") if get_backend(b).available()]
CONFIG = VerifyConfig(samples=5_000, timeout=30.0)


def check_invariance(net, box, config, backend="cbc", cutoff=True, parallel=True, bnb=False):
    """The invariance check with the MILP back-end and options of the config set from the arguments (``bnb``: the
    output branch and bound first; off by default, so that the tests of the MILP path reach the MILP)."""
    config = config.with_(solvers=replace(config.solvers, milp=backend),
                          invariance=replace(config.invariance, milp_cutoff=cutoff, parallel_sides=parallel, bnb=bnb))
    return run_invariance(net, box, config)


def _abs_net(scale: float = 0.9) -> Network:
    """f(x) = scale * (2 relu(x) - x) = scale * |x| per coordinate (a ReLU layer plus a skip).

    Interval bounds see 2 relu(x) in [0, 2] and -x in [-1, 1] independently, so f in [-scale, 3 scale]: they
    cannot prove f([-1, 1]^2) inside [-1, 1]^2, while the truth is f in [0, scale]."""
    layer = Layer(np.eye(2), np.zeros(2), acts.relu())
    return Network((layer,), 2 * scale * np.eye(2), np.zeros(2), skip=-scale * np.eye(2))


def _dense_violation(net: Network, box: Box, count: int = 200_000, seed: int = 1) -> float:
    xs = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(count, box.dim))
    return float(violation(net, box, xs)[0].max())


@pytest.mark.parametrize("backend", BACKENDS)
def test_milp_certifies_what_intervals_cannot(backend, unit_box):
    net, box = _abs_net(), unit_box(2)
    res = check_invariance(net, box, CONFIG, backend=backend)
    assert res.check is CheckName.INVARIANCE
    assert res.verdict is Verdict.CERTIFIED, res.reason
    assert res.method_label == f"milp:{backend}"
    assert res.details.interval_upper > 0  # the interval step alone could not settle it
    # exact max violation: f_i = 0.9 |x_i| in [0, 0.9] -> max_i max(f_i - 1, -1 - f_i) = -0.1
    assert res.lower == pytest.approx(-0.1, abs=1e-9)
    assert -0.1 <= res.upper < 0  # certify mode stops once each side clears the box (cutoff MILPs)
    # the MILP certificate is re-checked without any solver by float64 sub-box enclosures (|x| has margin 0.1)
    assert res.details.solver_free_recheck.startswith("confirmed")
    exact = check_invariance(net, box, CONFIG.with_(exact=True), backend=backend)
    assert exact.verdict is Verdict.CERTIFIED, exact.reason
    assert exact.lower == pytest.approx(-0.1, abs=1e-9)
    assert -0.1 <= exact.upper == pytest.approx(-0.1, abs=1e-5)


def test_interval_suffices_without_milp(monkeypatch, random_net, scaled_net, unit_box):
    net = scaled_net(random_net(3, 2, (5, 5), bias_scale=0.1), 0.1)
    monkeypatch.setitem(sys.modules, "pulp", None)  # no solver needed, so none may be asked
    res = check_invariance(net, unit_box(2), CONFIG)
    assert res.verdict is Verdict.CERTIFIED and res.method == "interval"
    assert res.lower <= res.upper
    assert _dense_violation(net, unit_box(2)) <= res.upper < 0


def _needle_net(a: float = 0.9, b: float = -0.2, k: float = 1000.0) -> Network:
    """f_1 = 0.5 x_1 + 0.6 tent(x), f_2 = 0.5 x_2, with tent = relu(1 - k (|x_1 - a| + |x_2 - b|)).

    tent > 0 only on a diamond of radius 1/k around (a, b) (area 2e-6 for k = 1000): f_1 exceeds 1 only there,
    by at most 0.5 a + 0.6 - 1 = 0.05 (at the centre)."""
    w1 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b1 = np.array([-a, a, -b, b])
    l1 = Layer(w1, b1, acts.relu())  # |x_1 - a| = relu(x_1 - a) + relu(a - x_1), same for x_2
    l2 = Layer(-k * np.ones((1, 4)), np.ones(1), acts.relu())
    return Network((l1, l2), np.array([[0.6], [0.0]]), np.zeros(2), skip=0.5 * np.eye(2))


@pytest.mark.parametrize("bnb", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_needle_is_falsified_with_a_witness_in_the_sliver(backend, bnb, unit_box):
    net, box = _needle_net(), unit_box(2)
    assert _dense_violation(net, box, 100_000) < 0  # sampling does not see the sliver
    res = check_invariance(net, box, CONFIG.with_(exact=True), backend=backend, bnb=bnb)
    assert res.verdict is Verdict.FALSIFIED, res.reason
    x = np.array(res.witness.x)
    assert box.contains(x)
    assert abs(x[0] - 0.9) + abs(x[1] + 0.2) < 1e-3  # inside the diamond
    replay = violation(net, box, x[None])[0][0]
    assert replay == res.witness.value > 0  # the witness replays in float64
    assert res.details.worst_output == "x0"
    # exact: the max violation is 0.05, at the diamond's centre
    assert res.lower == pytest.approx(0.05, abs=1e-6)
    # the upper end is the solver's bound padded by tol x big-M (M ~ 4000 here) x sensitivity: close, not equal
    assert 0.05 <= res.upper <= 0.05 + 1e-4


@pytest.mark.parametrize("bnb", [False, True])
def test_exogenous_inputs_range_over_their_box_and_only_states_are_compared(bnb):
    # x+ = relu-layer identity * 0.5 + u e_1 with u in [0, 0.6]: f_1 reaches 0.5 + 0.6 > 1.
    layer = Layer(np.eye(3), np.full(3, 2.0), acts.relu())  # relu(x + 2) = x + 2 on the box
    out = np.array([[0.5, 0.0, 1.0], [0.0, 0.5, 0.0]])
    net = Network((layer,), out, -out @ np.full(3, 2.0), n_states=2)
    box = Box(np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 0.6]), n_states=2)
    res = check_invariance(net, box, CONFIG, bnb=bnb)
    assert res.verdict is Verdict.FALSIFIED
    assert res.lower == pytest.approx(0.1, abs=1e-9)
    assert res.witness.x[2] == pytest.approx(0.6)
    narrower = Box(box.lower, np.array([1.0, 1.0, 0.4]), n_states=2)
    assert check_invariance(net, narrower, CONFIG, bnb=bnb).verdict is Verdict.CERTIFIED


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scale=st.floats(0.4, 1.6),
       act=st.sampled_from([acts.relu(), acts.leaky_relu(0.2), acts.hardtanh()]), bnb=st.booleans())
def test_verdicts_agree_with_dense_sampling(seed, scale, act, bnb, random_net, scaled_net, unit_box):
    net = random_net(seed, 2, (6, 6), activation=act, skip=True)
    # scale the output so that the max |f| over the box is about `scale` (near the box's edge)
    probe = np.abs(net.forward(np.random.default_rng(0).uniform(-1, 1, (2000, 2)))).max()
    net = scaled_net(net, scale / probe)
    box = unit_box(2)
    res = check_invariance(net, box, CONFIG.with_(exact=True), backend=BACKENDS[-1], bnb=bnb)
    dense = _dense_violation(net, box)
    assert res.lower <= res.upper + 1e-9
    assert dense <= res.upper + 1e-9  # the bound holds every sampled point
    assert res.verdict is not Verdict.UNKNOWN, res.reason
    assert res.upper - res.lower < 1e-5  # exact: both ends of the bracket are the max violation
    if res.verdict is Verdict.CERTIFIED:
        assert dense < 0
    else:
        assert res.witness.value > 0
        assert violation(net, box, np.array(res.witness.x)[None])[0][0] == res.witness.value
        assert res.lower >= dense - 1e-9  # the MILP maximum dominates sampling


def _abs_abs_net() -> Network:
    """f(x) = 0.9 | |x| - 0.5 | per coordinate, in [0, 0.45]; on [-1, 1]^2 neither intervals nor the mean-value
    form over the whole box (f(0) = 0.45, spread 0.9) show it inside: a solver-free proof needs splitting."""
    eye, one = np.eye(2), np.ones((1, 2))
    w1 = np.vstack([np.kron(eye, [[1.0], [-1.0]])])  # (relu(x_i), relu(-x_i)) per coordinate
    w2 = np.kron(eye, np.array([[1.0, 1.0], [-1.0, -1.0]]))  # (|x_i| - 0.5, 0.5 - |x_i|)
    b2 = np.kron(np.ones(2), [-0.5, 0.5])
    out = 0.9 * np.kron(eye, one)
    return Network((Layer(w1, np.zeros(4), acts.relu()), Layer(w2, b2, acts.relu())), out, np.zeros(2))


def test_solver_free_recheck_reports_what_it_could_not_confirm(unit_box):
    from certify.checks.invariance import solver_free_recheck

    net, box = _abs_abs_net(), unit_box(2)
    res = check_invariance(net, box, CONFIG)
    assert res.verdict is Verdict.CERTIFIED and res.method_label.startswith("milp")
    tiny = solver_free_recheck(net, box, CONFIG.with_(budget=1), res)  # one box only: nothing confirmed
    assert tiny.verdict is Verdict.CERTIFIED and "not confirmed" in tiny.details.solver_free_recheck
    assert "solver tolerances" in tiny.reason


def test_smooth_net_is_never_certified_by_milp(monkeypatch, unit_box):
    # f(x) = tanh(x) - 0.5 x maps [-1, 1]^2 into [-0.27, 0.27]^2, but intervals give [-1.27, 1.27]: only an exact
    # method could certify it. The MILP must not be used on a smooth net (nor any solver be asked): the sub-box
    # search (interval and mean-value enclosures) certifies it, and in exact mode brackets the exact violation.
    net = Network((Layer(np.eye(2), np.zeros(2), acts.tanh()),), np.eye(2), np.zeros(2), skip=-0.5 * np.eye(2))
    monkeypatch.setitem(sys.modules, "pulp", None)
    monkeypatch.setitem(sys.modules, "highspy", None)
    res = check_invariance(net, unit_box(2), CONFIG.with_(exact=True, budget=4000))  # a budget, not a time limit
    assert res.verdict is Verdict.CERTIFIED and res.method == "boxes"
    a = np.arcsinh(1.0)  # argmax of tanh(x) - x / 2 (sech^2 = 1/2)
    exact = np.tanh(a) - a / 2 - 1.0
    assert exact - 1e-3 <= res.lower <= exact + 1e-12
    assert exact - 1e-12 <= res.upper < 0


def test_smooth_net_leaving_the_box_is_falsified_by_sampling(unit_box):
    net = Network((Layer(np.eye(2), np.zeros(2), acts.softplus()),), 1.8 * np.eye(2), np.zeros(2),
                  skip=-0.9 * np.eye(2))  # f(-1) = 1.8 softplus(-1) + 0.9 = 1.46 > 1
    res = check_invariance(net, unit_box(2), CONFIG)
    assert res.verdict is Verdict.FALSIFIED and res.method == "sample"
    assert res.witness.value == pytest.approx(1.8 * np.log1p(np.exp(-1.0)) + 0.9 - 1.0, abs=1e-9)


def test_tanh_net_inside_is_certified_by_intervals(unit_box):
    net = Network((Layer(np.eye(2), np.zeros(2), acts.tanh()),), 0.5 * np.eye(2), np.zeros(2))
    res = check_invariance(net, unit_box(2), CONFIG)
    assert res.verdict is Verdict.CERTIFIED and res.method == "interval"


def test_missing_solver_gives_unknown(monkeypatch, unit_box):
    monkeypatch.setitem(sys.modules, "pulp", None)
    # one box for the solver-free fallback: the MILP step alone is tested (it cannot run)
    res = check_invariance(_abs_abs_net(), unit_box(2), CONFIG.with_(budget=1), backend="cbc")
    assert res.verdict is Verdict.UNKNOWN
    assert "not_installed" in res.reason
    assert res.upper > 0  # only the interval bound remains


def test_non_square_map_is_a_usage_error(random_net, unit_box):
    with pytest.raises(UsageError, match="invariance"):
        check_invariance(random_net(0, 2, (3,), n_out=1), unit_box(2), CONFIG)
    with pytest.raises(UsageError):
        check_invariance(random_net(0, 2, (3,)), unit_box(3), CONFIG)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scale=st.floats(0.6, 1.4),
       act=st.sampled_from([acts.relu(), acts.leaky_relu(0.2)]), backend=st.sampled_from(BACKENDS))
def test_certify_mode_agrees_with_exact_mode_and_sampling(seed, scale, act, backend, random_net, scaled_net, unit_box):
    # few samples, so that the MILPs (with their cutoff rows) decide most verdicts, not sampling
    net = random_net(seed, 2, (8, 8), activation=act)
    probe = np.abs(net.forward(np.random.default_rng(0).uniform(-1, 1, (2000, 2)))).max()
    net = scaled_net(net, scale / probe)
    box = unit_box(2)
    config = CONFIG.with_(samples=16)
    fast = check_invariance(net, box, config, backend=backend)
    exact = check_invariance(net, box, config.with_(exact=True), backend=backend)
    plain = check_invariance(net, box, config, backend=backend, cutoff=False, parallel=False)
    dense = _dense_violation(net, box)
    assert fast.verdict is exact.verdict is plain.verdict, (fast.reason, exact.reason)
    assert fast.verdict is not Verdict.UNKNOWN, fast.reason
    assert dense <= fast.upper + 1e-9 and dense <= exact.upper + 1e-9
    assert exact.upper - exact.lower < 1e-5  # the cutoff rows keep the exact bracket exact
    if fast.verdict is Verdict.CERTIFIED:
        assert dense < 0 and fast.upper < 0
    else:
        assert fast.lower > 0
        assert violation(net, box, np.array(fast.witness.x)[None])[0][0] == fast.witness.value > 0


class _StoppedEarly:
    """A backend that stops every MILP on its time limit with the dual bound ``edge(program)`` and no point."""

    name = "stopped"
    supports_integer = True
    feasibility_tolerance = 1e-9

    def __init__(self, edge, parallel_safe=False):
        self.edge = edge
        self.parallel_safe = parallel_safe

    def available(self):
        return True

    def solve(self, problem, time_limit):
        from certify.solvers.base import SolveResult, SolveStatus

        return SolveResult(SolveStatus.TIME_LIMIT, None, self.edge(problem), None, 0.0, self.name, "stopped")


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("cutoff", [True, False])
@pytest.mark.parametrize("inside", [0.0, 1e-12, 1e-8])
def test_early_stopped_milp_never_certifies_without_its_bound_clearing_the_box(monkeypatch, cutoff, inside, parallel,
                                                                              unit_box):
    # _abs_abs_net: f in [0, 0.45], no output constant. The stopped solver claims bounds at the box's edge,
    # or within the padding inside it: never enough to certify, whatever the cutoff row says.
    import certify.solvers.registry as registry

    def edge(problem):
        return (1.0 - inside) if problem.maximize else (-1.0 + inside)

    monkeypatch.setattr(registry, "get_backend", lambda name: _StoppedEarly(edge, parallel))
    # one box for the solver-free fallback, which would settle the net on its own: the MILP bound path is tested
    config = CONFIG.with_(budget=1)
    res = check_invariance(_abs_abs_net(), unit_box(2), config, backend="stopped", cutoff=cutoff)
    assert res.verdict is Verdict.UNKNOWN, res.reason
    assert res.upper > 0
    # a bound that clears the box by more than the padding does certify (the MILP bound path is live)
    monkeypatch.setattr(
        registry, "get_backend", lambda name: _StoppedEarly(lambda p: 0.95 if p.maximize else -0.95, parallel)
    )
    ok = check_invariance(_abs_abs_net(), unit_box(2), config, backend="stopped", cutoff=cutoff)
    assert ok.verdict is Verdict.CERTIFIED and ok.upper < 0


def test_a_margin_below_the_milp_padding_is_settled_without_a_solver(unit_box):
    # f = (1 - 3e-8) |x| per coordinate: inside the box by 3e-8, less than the 1e-7 padding of every MILP bound;
    # the mean-value enclosure over the whole box already proves it (f(0) = 0, |J| <= 1 - 3e-8).
    net = _abs_net(1.0 - 3e-8)
    res = check_invariance(net, unit_box(2), CONFIG)
    assert res.verdict is Verdict.CERTIFIED and res.method == "boxes" and res.upper < 0, res.reason
    assert "padding" in res.reason and "no solver" in res.reason
