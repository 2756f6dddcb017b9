"""Equilibria of smooth nets: Newton from many starts (replayed), Krawczyk proofs of existence and uniqueness,
sound enclosures of b*, and the Corollary 3 bounds over a box, cross-checked by hand and against the exact core."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certify.bounds.enclosures import bstar_enclosure
from certify.config import VerifyConfig
from certify.engines.equilibria import find_equilibria
from certify.engines.newton import equilibrium_norm_bounds, krawczyk, newton_equilibria, prove_equilibrium
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Network

SMOOTH = {
    "tanh": acts.tanh,
    "sigmoid": acts.sigmoid,
    "gelu": acts.gelu,
    "softplus": acts.softplus,
    "selu": acts.selu,
    "silu": acts.silu,
}


def _f_by_hand(x: float) -> float:
    z = 0.999 * x
    return 0.999 * z * 0.5 * math.erfc(-z / math.sqrt(2)) + 0.089543


def test_gelu_example_three_fixed_points(gelu_example):
    net, box = gelu_example()
    pts = newton_equilibria(net, box, starts=64, seed=0)
    assert len(pts) == 3
    xs = [float(p[0]) for p in pts]
    for x in xs:
        assert abs(_f_by_hand(x) - x) <= 1e-9 * (1 + abs(x))
    # sign changes of f(x) - x on a fine grid, computed by hand: exactly three, each next to one Newton point
    grid = np.linspace(-5, 50, 220_001)
    g = np.array([_f_by_hand(x) for x in grid]) - grid
    roots = grid[np.nonzero(np.sign(g[1:]) != np.sign(g[:-1]))[0]]
    assert len(roots) == 3
    np.testing.assert_allclose(sorted(xs), roots, atol=1e-3)
    for p in pts:
        proof = prove_equilibrium(net, p, box)
        assert proof.proven and proof.lower[0] <= p[0] <= proof.upper[0]
    bounds = equilibrium_norm_bounds(net, box, VerifyConfig(norm=2.0), timeout=10.0)
    assert bounds.rho_a < 1  # dissipativity holds, yet there are three equilibria
    for p in pts:
        assert bounds.contains(p, 2.0)
    # by hand: b* is the constant 0.089543 (GELU(0) = 0), so ub = 0.089543 / (1 - rho_A) >= 44.79
    assert bounds.bstar_inf <= 0.089543 <= bounds.bstar_sup
    assert bounds.upper >= 0.089543 / (1 - 0.999**2)


def test_krawczyk_refuses_a_box_with_two_equilibria_and_a_box_with_none(gelu_example):
    net, _ = gelu_example()
    two = krawczyk(net, np.array([0.9]), 0.9)  # [0, 1.8] holds 0.2152 and 1.6120
    assert not two.proven
    none = krawczyk(net, np.array([10.0]), 1e-3)  # f(10) - 10 is far from 0
    assert not none.proven


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SMOOTH)), seed=st.integers(0, 10_000), skip=st.booleans())
def test_contractive_net_has_one_proven_equilibrium_inside_the_bounds(name, seed, skip, random_net, scaled_net,
                                                                       unit_box):
    base = random_net(seed, 2, (6, 6), activation=SMOOTH[name](), bias_scale=0.3, skip=skip)
    box = unit_box(2, 3.0)
    x = np.random.default_rng(seed).uniform(-3, 3, size=(4000, 2))
    jmax = np.linalg.svd(base.jacobian(x), compute_uv=False)[:, 0].max()
    net = scaled_net(base, 0.5 / jmax)  # ||J|| <= 0.5-ish on the box
    x_star = np.random.default_rng(seed + 1).uniform(-2, 2, size=2)  # shift the output bias: f(x_star) = x_star
    net = Network(net.layers, net.out_weight, net.out_bias + x_star - net.forward(x_star), net.skip)
    pts = newton_equilibria(net, box, starts=32, seed=seed)
    assert len(pts) == 1
    (p,) = pts
    np.testing.assert_allclose(p, x_star, atol=1e-9)
    assert np.max(np.abs(net.forward(p) - p)) <= 1e-9 * (1 + np.max(np.abs(p)))
    assert prove_equilibrium(net, p, box).proven
    bounds = equilibrium_norm_bounds(net, box, VerifyConfig(norm=2.0, seed=seed), timeout=4.0)
    assert bounds.contains(p, 2.0)
    assert bounds.lower <= bounds.upper


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SMOOTH) + ["relu", "hardtanh"]), seed=st.integers(0, 10_000),
       skip=st.booleans())
def test_bstar_enclosure_contains_samples(name, seed, skip, random_net):
    act = {"relu": acts.relu, "hardtanh": acts.hardtanh}.get(name) or SMOOTH[name]
    net = random_net(seed, 3, (5, 4), activation=act(), weight_scale=1.5, skip=skip)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-2, 2, size=(2, 5, 3))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    blo, bhi = bstar_enclosure(net, lo, hi)
    for k in range(5):
        x = lo[k] + rng.uniform(size=(300, 3)) * (hi[k] - lo[k])
        _, bs = net.pwa(x)
        assert np.all(bs >= blo[k]) and np.all(bs <= bhi[k])


def test_corollary3_agrees_with_the_exact_core_on_a_relu_net(random_net, scaled_net, unit_box):
    """On a ReLU net every equilibrium is listed exactly by the region enumeration; our bounds must hold them
    and can only be looser than the exact core's."""
    net = scaled_net(random_net(21, 2, (5, 5), bias_scale=1.0), 0.6)
    box = unit_box(2, 2.0)
    exact = find_equilibria(net, box, VerifyConfig(norm=2.0))
    ours = equilibrium_norm_bounds(net, box, VerifyConfig(norm=2.0), timeout=3.0)
    assert exact.points
    for p in exact.points:
        assert ours.contains(p, 2.0)
    assert ours.lower <= exact.norm_lower * (1 + 1e-9)
    assert ours.upper >= exact.norm_upper * (1 - 1e-9)
    found = newton_equilibria(net, box, starts=64)
    assert len(found) == len(exact.points)


def test_inputs_are_required_when_the_net_has_them(random_net, scaled_net):
    net = random_net(0, 3, (4,), n_out=2, activation=acts.tanh(), n_states=2)
    box = Box(-np.ones(3), np.ones(3), n_states=2)
    with pytest.raises(ValueError):
        newton_equilibria(net, box)
    pts = newton_equilibria(scaled_net(net, 0.3), box, inputs=[0.5])
    assert len(pts) == 1
    for p in pts:
        assert np.max(np.abs(scaled_net(net, 0.3).forward(np.concatenate([p, [0.5]])) - p)) <= 1e-9
