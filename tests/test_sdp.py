"""The SDP l2-gain bound (certify.engines.lipsdp, certify.solvers.sdp): soundness against brute force and sampling,
exactness
where the answer is known, and the float64 re-check that must reject solutions that do not prove their claim."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from random_nets import random_net, random_weights, vertex_max

import certify.solvers.sdp as sdp_backend
from certify.engines.lipsdp import (
    build_lmi,
    check_lmi,
    lipschitz_sdp,
    lmi_matrix,
    sdp_bound_over_box,
    slope_ranges,
    tightest_rho,
)
from certify.errors import UsageError
from certify.ir import activations as act
from certify.ir.box import Box
from certify.ir.kernels import TorchNet, chain_product, slopes
from certify.ir.network import Network
from certify.solvers import registry
from certify.solvers.base import SolveStatus

BACKENDS = registry.available_backends(registry.ProblemKind.SDP)
ACCURATE = "ipm"
LIPSDP = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks" / "lipsdp"

# The nets these tests draw: every hidden weight 1.5 N(0, 1) / sqrt(fan_in) first, then the hidden biases
# 0.5 N(0, 1), the output weight N(0, 1) / sqrt(fan_in), the skip 0.3 N(0, 1) (when present) and a zero output bias.
NET = {"weight_scale": 1.5, "bias_scale": 0.5, "out_scale": 1.0, "out_bias_scale": 0.0, "out_order": "wsb",
       "weights_first": True}


def _naive(weights, lower, upper, skip=None) -> float:
    mags = [float(np.max(np.maximum(np.abs(a), np.abs(b)))) for a, b in zip(lower, upper)]
    out = float(np.prod([np.linalg.norm(w, 2) for w in weights]) * np.prod(mags))
    return out + (0.0 if skip is None else float(np.linalg.norm(skip, 2)))


# ------------------------------------------------------------------------------------------- exact cases
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_skip", [False, True])
def test_all_slopes_fixed_gives_the_norm(backend, with_skip):
    rng = np.random.default_rng(3)
    w0, w1 = rng.normal(size=(5, 3)), rng.normal(size=(2, 5))
    d = rng.uniform(-0.5, 1.5, size=5)
    skip = rng.normal(size=(2, 3)) if with_skip else None
    exact = np.linalg.norm(w1 @ np.diag(d) @ w0 + (0 if skip is None else skip), 2)
    res = lipschitz_sdp([w0, w1], [d], [d], skip, backend=backend)
    assert res.status is SolveStatus.OPTIMAL and res.value is not None, res.reason
    assert res.size == 3  # every neuron eliminated
    assert exact <= res.value <= exact * (1 + 1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_skip_is_inside_the_lmi_not_added(backend):
    # M(lam) = lam - 0.5 with lam in [0, 1]: sup |M| = 0.5, while ||M - S|| + ||S|| would give 1.5.
    one = np.eye(1)
    res = lipschitz_sdp([one, one], [np.zeros(1)], [np.ones(1)], np.array([[-0.5]]), backend=backend)
    assert res.value is not None and 0.5 <= res.value <= 0.5 + 1e-5


# ------------------------------------------------------------------------------------------- soundness
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_skip", [False, True])
def test_relu_global_bound_dominates_every_slope_vertex(seed, with_skip):
    rng = np.random.default_rng(seed)
    weights = random_weights(rng, [2, 4, 4, 2], scale=1.5)
    lower = [np.zeros(4), np.zeros(4)]
    upper = [np.ones(4), np.ones(4)]
    # a few neurons fixed (stable active / inactive), as over a small box
    lower[0][0] = upper[0][0] = 1.0
    upper[1][3] = lower[1][3] = 0.0
    skip = rng.normal(size=(2, 2)) if with_skip else None
    res = lipschitz_sdp(weights, lower, upper, skip, backend=ACCURATE)
    assert res.value is not None, res.reason
    exact = vertex_max(weights, lower, upper, skip)
    assert exact <= res.value <= _naive(weights, lower, upper, skip) * (1 + 1e-6)


def _sampled_sup(net: Network, box: Box, kind: str, n: int = 100_000, seed: int = 0, state_only=True) -> float:
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(box.lower), torch.tensor(box.upper)
    x = lo + (hi - lo) * torch.rand(n, box.dim, generator=gen, dtype=torch.float64)
    tn = TorchNet.of(net)
    m = chain_product(tn, slopes(tn, x, kind))[:, :, : (net.n_states if state_only else net.n_in)]
    return float(torch.linalg.matrix_norm(m, ord=2).max())


@pytest.mark.parametrize("seed", range(3))
def test_box_bound_dominates_sampled_a_star_state_part(seed):
    rng = np.random.default_rng(10 + seed)
    net = random_net(rng, 3, (8, 8), 2, act.relu(), skip=True, n_states=2, **NET)
    box = Box(-0.5 * np.ones(3), 0.5 * np.ones(3), n_states=2)
    res = sdp_bound_over_box(net, box, "A_STAR", state_only=True, backend=ACCURATE)
    assert res.value is not None, res.reason
    sampled = _sampled_sup(net, box, "secant")
    assert sampled <= res.value
    lows, highs = slope_ranges(net, box, "A_STAR")
    weights = [net.layers[0].weight[:, :2], net.layers[1].weight, net.out_weight]
    assert res.value <= _naive(weights, lows, highs, net.skip[:, :2]) * (1 + 1e-6)
    full = sdp_bound_over_box(net, box, "A_STAR", state_only=False, backend=ACCURATE)
    assert full.value is not None and full.size == res.size + 1
    assert _sampled_sup(net, box, "secant", state_only=False) <= full.value


def test_quantity_names():
    from certify.engines import region_search as bnb
    from certify.engines import sampling as falsify

    rng = np.random.default_rng(0)
    net = random_net(rng, 2, (4,), 2, act.tanh(), n_states=2, **NET)
    box = Box(-np.ones(2), np.ones(2))
    sec, der = slope_ranges(net, box, "a_star"), slope_ranges(net, box, "JACOBIAN")
    for q, ref in [(bnb.Quantity.A_STAR, sec), (falsify.Quantity.JACOBIAN, der)]:
        got = slope_ranges(net, box, q)
        assert all(np.array_equal(x, y) for x, y in zip(got[0] + got[1], ref[0] + ref[1]))
    assert not np.array_equal(sec[0][0], der[0][0])  # tanh: secant and derivative ranges differ
    with pytest.raises(UsageError):
        slope_ranges(net, box, "hessian")


@pytest.mark.parametrize("seed", range(3))
def test_box_bound_dominates_the_exact_core(seed):
    # The exact value from region branch and bound (certify.engines.region_search) is a max over regions that really
    # occur; the SDP
    # bounds every slope pattern allowed by the interval ranges, so it can only be larger.
    from engine_calls import sup_norm

    rng = np.random.default_rng(20 + seed)
    net = random_net(rng, 2, (8, 6), 2, act.relu(), skip=bool(seed % 2), n_states=2, **NET)
    box = Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    exact = sup_norm(net, box, 2.0, "A_STAR", exact=True, timeout=60.0)
    assert exact.exact, exact.reason
    res = sdp_bound_over_box(net, box, "A_STAR", backend=ACCURATE)
    assert res.value is not None, res.reason
    assert exact.upper <= res.value


@pytest.mark.parametrize("activation", [act.tanh, act.gelu, act.sigmoid, act.softplus])
@pytest.mark.parametrize("quantity,kind", [("A_STAR", "secant"), ("JACOBIAN", "derivative")])
def test_smooth_box_bound_dominates_sampled(activation, quantity, kind):
    rng = np.random.default_rng(7)
    net = random_net(rng, 2, (6, 6), 2, activation(), n_states=2, **NET)
    box = Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    res = sdp_bound_over_box(net, box, quantity, backend=ACCURATE)
    assert res.value is not None, res.reason
    assert _sampled_sup(net, box, kind) <= res.value


# ------------------------------------------------------------------------------------------- the float64 re-check
def _solved_small_problem():
    rng = np.random.default_rng(5)
    weights = random_weights(rng, [2, 5, 4, 2], scale=1.5)
    lower = [np.zeros(5), np.full(4, 0.2)]
    upper = [np.ones(5), np.ones(4)]
    data = build_lmi(weights, lower, upper)
    res = lipschitz_sdp(weights, lower, upper, backend=ACCURATE)
    assert res.value is not None, res.reason
    # multipliers for the accepted value: the tightest rho for the solver's t is what lipschitz_sdp re-checked
    from certify.engines.lipsdp import gain_scale, to_program

    scale = gain_scale(data)
    sol = registry.get_backend(ACCURATE, registry.ProblemKind.SDP).solve(to_program(data, scale), tol=1e-8)
    t = sol.x[1:] * scale * scale
    return data, weights, lower, upper, res, t


def test_recheck_accepts_the_solution_and_rejects_perturbed_ones():
    data, weights, lower, upper, res, t = _solved_small_problem()
    rho = tightest_rho(data, t)
    assert rho is not None
    ok = check_lmi(data, rho * (1 + 1e-9), t)
    assert ok.value is not None and ok.value >= vertex_max(weights, lower, upper)
    # a claimed rho 2% too small: the rebuilt LMI has a clearly negative eigenvalue
    low = check_lmi(data, 0.98 * rho, t)
    assert low.value is None and low.min_eig < 0 and "re-check failed" in low.reason
    # multipliers perturbed: the largest one halved
    bad_t = t.copy()
    bad_t[np.argmax(bad_t)] *= 0.5
    assert check_lmi(data, rho, bad_t).value is None
    # negative multipliers are clipped to 0 before checking (they would otherwise flip a constraint's sign)
    neg = -np.abs(t)
    clipped = check_lmi(data, rho, neg)
    assert clipped.value is None
    assert np.allclose(lmi_matrix(data, rho, np.maximum(neg, 0)), lmi_matrix(data, rho, np.zeros_like(t)))


def test_recheck_rejects_a_solution_that_is_wrong_for_this_network():
    # A certificate computed for one network, replayed against a slightly stronger one, must not pass.
    data, weights, lower, upper, res, t = _solved_small_problem()
    rho = tightest_rho(data, t)
    stronger = [weights[0], weights[1], weights[2] * 1.05]
    other = build_lmi(stronger, lower, upper)
    assert check_lmi(other, rho * (1 + 1e-9), t).value is None
    assert vertex_max(stronger, lower, upper) > math.sqrt(rho)  # it would have been a wrong bound


def test_tightest_rho_matches_the_lmi_boundary():
    data, *_rest, t = _solved_small_problem()
    rho = tightest_rho(data, t)
    lam = np.linalg.eigvalsh(lmi_matrix(data, rho, t))[0]
    assert abs(lam) <= 1e-7 * rho


# ------------------------------------------------------------------------------------------- solver trouble
def test_missing_backend_gives_no_bound(monkeypatch):
    monkeypatch.setattr(sdp_backend, "installed_backends", lambda: ())
    res = lipschitz_sdp([np.eye(2), np.eye(2)], [np.zeros(2)], [np.ones(2)], backend="scs")
    assert res.value is None and res.status is SolveStatus.NOT_INSTALLED and "not installed" in res.reason


def test_unknown_backend_gives_no_bound():
    res = lipschitz_sdp([np.eye(2), np.eye(2)], [np.zeros(2)], [np.ones(2)], backend="mosek-of-dreams")
    assert res.value is None and res.status is SolveStatus.NOT_INSTALLED and "unknown SDP backend" in res.reason


@pytest.mark.parametrize("backend", ["scs", "ipm"])
def test_stopped_solve_gives_no_bound(backend):
    rng = np.random.default_rng(2)
    weights = random_weights(rng, [2, 8, 8, 2], scale=2.0)
    res = lipschitz_sdp(weights, [np.zeros(8)] * 2, [np.ones(8)] * 2, backend=backend, max_iters=3)
    assert res.status is not SolveStatus.OPTIMAL
    assert res.value is None and res.reason


def test_bad_shapes_are_usage_errors():
    with pytest.raises(UsageError):
        lipschitz_sdp([np.eye(2), np.eye(3)], [np.zeros(2)], [np.ones(2)])
    with pytest.raises(UsageError):
        lipschitz_sdp([np.eye(2), np.eye(2)], [np.ones(2)], [np.zeros(2)])  # lower > upper


# ------------------------------------------------------------------------------------------- published value
def _load_benchmark_loader():
    spec = importlib.util.spec_from_file_location(
        "bench_lipsdp", Path(__file__).resolve().parents[1] / "benchmarks" / "lipsdp.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not (LIPSDP / "random_2-10-30-20-2.onnx").exists(), reason="shared LipSDP benchmark absent")
@pytest.mark.parametrize(
    "backend",
    [pytest.param(ACCURATE), pytest.param("scs", marks=pytest.mark.slow)] if ACCURATE != "scs" else ["scs"],
)
def test_reproduces_published_lipsdp_neuron_value(backend):
    bench = _load_benchmark_loader()
    weights = bench.load_relu_chain(LIPSDP / "random_2-10-30-20-2.onnx")
    lower = [np.zeros(w.shape[0]) for w in weights[:-1]]
    upper = [np.ones(w.shape[0]) for w in weights[:-1]]
    res = lipschitz_sdp(weights, lower, upper, backend=backend)
    assert res.value is not None, res.reason
    assert abs(res.value - 36.482) <= 1e-3 * 36.482
