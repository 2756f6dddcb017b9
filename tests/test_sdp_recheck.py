"""The LipSDP bound trusts no solver: forged SDP back-ends (registered in the solver registry for the test) return
wrong, perturbed or malformed solutions with an OPTIMAL status, and no bound below the truth and no `certified`
verdict may come out; and the back-ends agree with each other and stay above the sampled and exact sups.

The truth on a slope box is the max of ||W_L diag(s) ... W_0 + S||_2 over its vertices (the norm is convex in each
slope, so the sup sits at a vertex); over an input box it is bracketed below by sampling and the exact region
search (ReLU).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_nets import random_net, random_weights, vertex_max

from certify.api import verify
from certify.certificate import CheckName, Verdict
from certify.config import Method, SolverChoice, VerifyConfig
from certify.engines.lipsdp import build_lmi, check_lmi, gain_scale, lipschitz_sdp, sdp_bound_over_box, to_program
from certify.ir import activations as act
from certify.ir.box import Box
from certify.ir.kernels import TorchNet, chain_product, slopes
from certify.ir.metric import Metric
from certify.solvers import registry
from certify.solvers.base import SolveResult, SolveStatus
from certify.solvers.sdp import SemidefiniteProgram

FORGED = "forged"
OTHERS = tuple(b for b in registry.available_backends(registry.ProblemKind.SDP) if b != "ipm")


class ForgedBackend:
    """An SDP back-end that solves with 'ipm' and then hands back ``forge(x, problem)`` with an OPTIMAL status
    (``forge`` may also raise, or return anything at all)."""

    name = FORGED
    supports_integer = False

    def __init__(self, forge):
        self.forge = forge

    def available(self) -> bool:
        return True

    def solve(self, problem: SemidefiniteProgram, time_limit=None, tol=1e-8, max_iters=None) -> SolveResult:
        honest = registry.get_backend("ipm", registry.ProblemKind.SDP).solve(problem, time_limit, tol, max_iters)
        x = self.forge(honest.x.copy(), problem)
        return SolveResult(SolveStatus.OPTIMAL, objective=0.0, x=x, backend=FORGED, message="forged: optimal")


@pytest.fixture
def forge_with(monkeypatch):
    """Register the forged back-end under the name 'forged' with the given forgery."""

    def install(forge):
        monkeypatch.setitem(registry._FACTORIES, (registry.ProblemKind.SDP, FORGED), lambda: ForgedBackend(forge))

    return install


def _weaker_problem(problem: SemidefiniteProgram, factor: float) -> SemidefiniteProgram:
    """The same LMI for the net with its output map scaled by sqrt(factor) (F0 = -C^T C scales by factor)."""
    return SemidefiniteProgram(c=problem.c, f0=problem.f0 * factor, low_rank=problem.low_rank, lower=problem.lower)


def _solve_other(problem, factor):
    return registry.get_backend("ipm", registry.ProblemKind.SDP).solve(_weaker_problem(problem, factor)).x


def _raise(x, problem):
    raise RuntimeError("the solver library crashed")


FORGERIES = {
    # lies about the value: a smaller rho with the honest multipliers, or the honest solution of a weaker net
    "rho_quarter": lambda x, p: np.concatenate([[0.25 * x[0]], x[1:]]),
    "rho_tiny": lambda x, p: np.concatenate([[1e-12], x[1:]]),
    "weaker_net": lambda x, p: _solve_other(p, 0.25),
    "weaker_net_slightly": lambda x, p: _solve_other(p, 0.98),
    # wrong multipliers
    "t_halved_rho_low": lambda x, p: np.concatenate([[0.9 * x[0]], 0.5 * x[1:]]),
    "t_reversed": lambda x, p: np.concatenate([[x[0]], x[1:][::-1]]),
    "t_negated": lambda x, p: np.concatenate([[x[0]], -x[1:]]),
    "t_zero_rho_low": lambda x, p: np.concatenate([[0.5 * x[0]], np.zeros(x.size - 1)]),
    # malformed
    "nan": lambda x, p: np.full(x.size, np.nan),
    "inf": lambda x, p: np.concatenate([[x[0]], np.full(x.size - 1, np.inf)]),
    "huge": lambda x, p: np.full(x.size, 1e300),
    "short": lambda x, p: x[:-1],
    "empty": lambda x, p: np.zeros(0),
    "not_numbers": lambda x, p: ["rho", "t"],
    "raises": _raise,
}
LIES = ("rho_quarter", "rho_tiny", "weaker_net", "weaker_net_slightly", "t_halved_rho_low", "t_zero_rho_low")


def _small_chain(seed: int, skip: bool = False):
    rng = np.random.default_rng(seed)
    weights = random_weights(rng, [2, 4, 4, 2], scale=1.5)
    lower = [np.zeros(4), np.full(4, 0.1)]
    upper = [np.ones(4), np.ones(4)]
    lower[0][0] = upper[0][0] = 0.7  # a fixed neuron, eliminated from the LMI
    return weights, lower, upper, (rng.normal(size=(2, 2)) if skip else None)


@pytest.mark.parametrize("name", sorted(FORGERIES))
@pytest.mark.parametrize("seed", [0, 1])
def test_forged_solutions_never_give_a_bound_below_the_truth(forge_with, name, seed):
    weights, lower, upper, skip = _small_chain(seed, skip=bool(seed))
    truth = vertex_max(weights, lower, upper, skip)
    forge_with(FORGERIES[name])
    res = lipschitz_sdp(weights, lower, upper, skip, backend=FORGED)
    assert res.value is None or res.value >= truth, (name, res.value, truth)
    if res.value is None:
        assert res.reason
    if name in LIES:
        # the forgery really claims less than the honest bound (else the test would prove nothing)
        honest = lipschitz_sdp(weights, lower, upper, skip, backend="ipm")
        assert res.raw is not None and res.raw < honest.value * (1 - 1e-3)


def test_a_lie_about_the_value_alone_is_repaired_to_a_sound_bound(forge_with):
    # With the honest multipliers, the re-check recomputes the tightest rho itself: the lie is not believed.
    weights, lower, upper, skip = _small_chain(0)
    honest = lipschitz_sdp(weights, lower, upper, skip, backend="ipm")
    forge_with(FORGERIES["rho_quarter"])
    res = lipschitz_sdp(weights, lower, upper, skip, backend=FORGED)
    assert res.raw is not None and res.raw < 0.6 * honest.value
    assert res.value is not None and res.value == pytest.approx(honest.value, rel=1e-6)


def test_the_solution_of_a_weaker_net_certifies_nothing_smaller(forge_with):
    weights, lower, upper, skip = _small_chain(1)
    truth = vertex_max(weights, lower, upper, skip)
    forge_with(FORGERIES["weaker_net"])
    res = lipschitz_sdp(weights, lower, upper, skip, backend=FORGED)
    assert res.raw is not None and res.raw <= 0.55 * truth  # it claims about half the gain
    assert res.value is None or res.value >= truth


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log_noise=st.floats(-12, 0), seed=st.integers(0, 2**31 - 1), shrink=st.floats(0.5, 1.0))
def test_randomly_perturbed_solutions_are_sound_or_refused(forge_with, log_noise, seed, shrink):
    weights, lower, upper, skip = _small_chain(2, skip=True)
    truth = vertex_max(weights, lower, upper, skip)

    def perturb(x, problem):
        r = np.random.default_rng(seed)
        y = x * (1.0 + 10.0 ** log_noise * r.normal(size=x.size))
        y[0] *= shrink
        return y

    forge_with(perturb)
    res = lipschitz_sdp(weights, lower, upper, skip, backend=FORGED)
    assert res.value is None or res.value >= truth


def test_check_lmi_refuses_every_rho_below_the_truth_for_any_multipliers():
    # The re-check alone (no solver): for random nonnegative multipliers and a rho below the true sup squared,
    # it must refuse; for rho far above the tightest value it accepts.
    weights, lower, upper, skip = _small_chain(3, skip=True)
    truth = vertex_max(weights, lower, upper, skip)
    data = build_lmi(weights, lower, upper, skip)
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = rng.exponential(size=data.n_free) * 10.0 ** rng.uniform(-2, 2)
        for rho in (0.5 * truth ** 2, 0.999 * truth ** 2):
            got = check_lmi(data, rho, t)
            assert got.value is None or got.value >= truth


def _sampled(net, box, kind, metric=None, n=50_000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(box.lower), torch.tensor(box.upper)
    x = lo + (hi - lo) * torch.rand(n, box.dim, generator=gen, dtype=torch.float64)
    tn = TorchNet.of(net)
    m = chain_product(tn, slopes(tn, x, kind))[:, :, : net.n_states].numpy()
    if metric is not None:
        m = metric.t @ m @ np.linalg.inv(metric.t)
    return float(np.linalg.norm(m, ord=2, axis=(1, 2)).max())


@functools.lru_cache(maxsize=None)
def _hard_net():
    """A 6-8-8-6 ReLU net scaled so that its exact sup ||A*|| over the box is 1.02 (a certificate would be wrong)
    while the checks' sampling with one sample (and its local search) stays below 1: only the upper bound
    decides, so a forged SDP bound is what a wrong `certified` would come from."""
    from engine_calls import sup_norm
    from random_nets import scaled_net

    rng = np.random.default_rng(1)
    net = random_net(rng, 6, (8, 8), 6, act.relu(), weight_scale=1.5, bias_scale=1.0)
    box = Box(-0.3 * np.ones(6), 0.3 * np.ones(6))
    exact = sup_norm(net, box, 2.0, "A_STAR", exact=True, timeout=60.0)
    assert exact.exact, exact.reason
    net = scaled_net(net, 1.02 / exact.upper)
    honest = sdp_bound_over_box(net, box, "A_STAR")
    assert honest.value is not None and honest.value >= 1.02
    return net, box, honest.value


def _claiming(value: float, honest: float):
    """A forgery that keeps the honest multipliers and claims the gain ``value`` (rho scaled accordingly)."""
    return lambda x, p: np.concatenate([[x[0] * (value / honest) ** 2], x[1:]])


@pytest.mark.parametrize("name", ["claims_0.97", "claims_0.97_t_zero", "weaker_net", "t_halved_rho_low", "nan",
                                  "raises"])
def test_no_certified_verdict_from_a_forged_sdp(forge_with, name):
    net, box, honest = _hard_net()
    forge = {"claims_0.97": _claiming(0.97, honest),
             "claims_0.97_t_zero": lambda x, p: np.concatenate([[x[0] * (0.97 / honest) ** 2], 0 * x[1:]])
             }.get(name) or FORGERIES[name]
    forge_with(forge)
    config = VerifyConfig(method=Method.SDP, solvers=SolverChoice(sdp=FORGED), timeout=20.0, samples=1)
    for result in verify(net, box, ["dissipativity", "contraction"], config).results:
        assert result.check in (CheckName.DISSIPATIVITY, CheckName.CONTRACTION)
        assert result.verdict is not Verdict.CERTIFIED, (name, result)
        assert result.upper >= 1.02 * (1 - 1e-9)  # the exact sup: every reported upper bound stays above it


def test_the_forged_net_is_decided_by_the_upper_bound_alone():
    # Guards the test above: with these options sampling does not refute the net, so the verdict rests on the
    # upper bound, and an honest SDP leaves it unknown.
    net, box, honest = _hard_net()
    config = VerifyConfig(method=Method.SDP, timeout=20.0, samples=1)
    result = verify(net, box, ["dissipativity"], config).results[0]
    assert result.verdict is Verdict.UNKNOWN and result.lower < 0.97
    assert result.upper == pytest.approx(honest, rel=1e-9)


# ------------------------------------------------------------------------------------------- back-ends agree
@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("seed", range(3))
def test_backends_agree_on_the_bound_and_dominate_the_vertex_sup(backend, seed):
    weights, lower, upper, skip = _small_chain(10 + seed, skip=bool(seed % 2))
    truth = vertex_max(weights, lower, upper, skip)
    ipm = lipschitz_sdp(weights, lower, upper, skip, backend="ipm", tol=1e-7)
    other = lipschitz_sdp(weights, lower, upper, skip, backend=backend, tol=1e-7)
    assert ipm.value is not None, ipm.reason
    assert ipm.value >= truth
    if other.value is None:  # a first-order solver may stop inaccurate: that is no bound, never a wrong one
        assert other.status is not SolveStatus.OPTIMAL or other.reason
        return
    assert other.value >= truth
    assert other.value == pytest.approx(ipm.value, rel=2e-3)


@pytest.mark.parametrize("activation,kind", [(act.relu, "secant"), (act.tanh, "secant"), (act.tanh, "derivative")])
@pytest.mark.parametrize("seed", range(2))
def test_every_backend_dominates_the_sampled_sup_over_a_box(activation, kind, seed):
    rng = np.random.default_rng(30 + seed)
    net = random_net(rng, 2, (5, 5), 2, activation(), skip=bool(seed), weight_scale=1.5)
    box = Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    sampled = _sampled(net, box, kind)
    quantity = "A_STAR" if kind == "secant" else "JACOBIAN"
    values = {}
    for backend in ("ipm", *OTHERS):
        res = sdp_bound_over_box(net, box, quantity, backend=backend, tol=1e-7)
        if res.value is not None:
            values[backend] = res.value
            assert sampled <= res.value, (backend, sampled, res.value)
    assert "ipm" in values
    for value in values.values():
        assert value == pytest.approx(values["ipm"], rel=2e-3)


@pytest.mark.parametrize("seed", range(2))
def test_bound_in_a_metric_dominates_the_sampled_conjugated_norm(seed):
    rng = np.random.default_rng(40 + seed)
    net = random_net(rng, 2, (5, 5), 2, act.relu(), skip=True, weight_scale=1.5)
    box = Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    a = rng.normal(size=(2, 2))
    metric = Metric.of(a @ a.T + 0.3 * np.eye(2))
    res = sdp_bound_over_box(net, box, "A_STAR", metric=metric)
    assert res.value is not None, res.reason
    assert _sampled(net, box, "secant", metric) <= res.value
    plain = sdp_bound_over_box(net, box, "A_STAR")
    assert plain.value is not None and math.isfinite(plain.value)


def test_relu_bound_dominates_the_exact_region_sup():
    from engine_calls import sup_norm

    for seed in range(2):
        rng = np.random.default_rng(50 + seed)
        net = random_net(rng, 2, (6, 5), 2, act.relu(), skip=bool(seed), weight_scale=1.5)
        box = Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
        exact = sup_norm(net, box, 2.0, "A_STAR", exact=True, timeout=60.0)
        assert exact.exact, exact.reason
        for backend in ("ipm", *OTHERS):
            res = sdp_bound_over_box(net, box, "A_STAR", backend=backend)
            assert res.value is None or res.value >= exact.upper, (backend, res.value, exact.upper)


def test_the_forged_backend_is_seen_by_the_program_it_forges(forge_with):
    # The fixture really routes lipschitz_sdp's program through the forgery (guards the tests above).
    seen = []

    def spy(x, problem):
        seen.append(problem.size)
        return x

    forge_with(spy)
    weights, lower, upper, skip = _small_chain(0)
    data = build_lmi(weights, lower, upper, skip)
    res = lipschitz_sdp(weights, lower, upper, skip, backend=FORGED)
    assert seen and seen[0] == data.size == to_program(data, gain_scale(data)).size
    assert res.value is not None and res.backend == FORGED
