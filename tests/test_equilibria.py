"""Equilibria of PWL nets against fixed-point iteration, hand-made cases, and the Corollary 3 bounds."""

import math

import numpy as np
import pytest
from engine_calls import sup_norm
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.config import VerifyConfig
from certify.engines.equilibria import find_equilibria
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir.network import Layer, Network


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 2), width=st.integers(3, 6),
       act=st.sampled_from([None, acts.leaky_relu(0.2)]), p=st.sampled_from([1.0, 2.0, math.inf]))
def test_contractive_nets_have_the_fixed_point_iteration_limit_as_only_equilibrium(seed, depth, width, act, p,
                                                                                   random_net, scaled_net, unit_box):
    net = random_net(seed, 2, (width,) * depth, activation=act, bias_scale=0.2)
    box = unit_box(2, 3.0)
    rho = sup_norm(net, box, math.inf, quantity="JACOBIAN", exact=True).upper
    net = scaled_net(net, 0.7 / max(rho, 1e-12))  # a contraction in the inf-norm on the box
    res = find_equilibria(net, box, VerifyConfig(norm=p))
    x = np.random.default_rng(seed).uniform(-3, 3, size=(100, 2))
    for _ in range(200):
        x = np.clip(net.forward(x), -3, 3)
    limits = x[np.max(np.abs(net.forward(x) - x), axis=1) < 1e-10]
    assert res.complete and res.consistent
    if len(limits):  # the limit is an equilibrium in the box: it is the unique one found
        assert len(res.points) == 1
        assert np.allclose(limits, res.points[0], atol=1e-8)
    for pt in res.points:
        assert res.norm_lower - 1e-9 <= np.linalg.norm(pt, ord=p) <= res.norm_upper + 1e-9
    assert res.rho < 1 or math.isinf(res.norm_upper)


def test_hand_made_relu_map_with_three_equilibria(unit_box):
    # f(x) = 2 relu(x) - relu(2x - 1) ... per coordinate g(t) = 2 relu(t) - 3 relu(t - 0.5): fixed points t = 0 and
    # t = 1 - ... solve: on t < 0: g = 0 -> t = 0 is on the boundary; 0 < t < 0.5: g = 2t -> only t = 0;
    # t > 0.5: g = 2t - 3t + 1.5 = 1.5 - t -> t = 0.75.  First coordinate only; second x2+ = 0.5 x2.
    l0 = Layer(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]), np.array([0.0, -0.5, 0.0, 0.0]),
               acts.relu())
    net = Network((l0,), np.array([[2.0, -3.0, 0.0, 0.0], [0.0, 0.0, 0.5, -0.5]]), np.zeros(2))
    res = find_equilibria(net, unit_box(2), VerifyConfig(norm=2.0))
    pts = sorted(tuple(np.round(p, 12)) for p in res.points)
    assert pts == [(0.0, 0.0), (0.75, 0.0)]
    assert res.complete and res.consistent


def test_identity_map_reports_singular_regions(unit_box):
    net = Network((Layer(np.eye(2), np.zeros(2), acts.identity()),), np.eye(2), np.zeros(2))
    res = find_equilibria(net, unit_box(2))
    assert res.singular_regions and not res.complete and "singular" in res.reason


def test_affine_map_has_its_unique_solution(unit_box):
    rng = np.random.default_rng(3)
    w = 0.3 * rng.normal(size=(3, 3))
    c = 0.2 * rng.normal(size=3)
    net = Network((Layer(w, np.zeros(3), acts.identity()),), np.eye(3), c)
    want = np.linalg.solve(np.eye(3) - w, c)  # about (1.77, -0.17, -0.90): outside the unit box
    assert len(find_equilibria(net, unit_box(3), VerifyConfig(norm=math.inf)).points) == 0
    res = find_equilibria(net, unit_box(3, 2.0), VerifyConfig(norm=math.inf))
    assert len(res.points) == 1 and res.complete
    assert np.allclose(res.points[0], want, atol=1e-12)


def test_non_square_and_exogenous_inputs_are_refused(random_net, unit_box):
    with pytest.raises(UsageError):
        find_equilibria(random_net(0, 3, (4,), n_out=2), unit_box(3))
    with pytest.raises(UsageError):
        find_equilibria(random_net(0, 3, (4,), n_out=2, n_states=2), unit_box(3))


def test_clip_nets_give_points_without_corollary_bounds(random_net, scaled_net, unit_box):
    net = random_net(4, 2, (5,), activation=acts.clip(-0.5, 0.5), bias_scale=0.1)
    net = scaled_net(net, 0.3)
    res = find_equilibria(net, unit_box(2))
    assert len(res.points) == 1 and "Corollary 3" in res.reason
    assert np.allclose(net.forward(res.points[0]), res.points[0], atol=1e-9)


def test_singular_region_without_solution_is_settled_and_with_solutions_is_not():
    from certify.engines.equilibria import find_equilibria
    from certify.ir import activations as acts
    from certify.ir.box import Box
    from certify.ir.network import Layer, Network

    box = Box([-1.0], [-0.5])  # relu(x) is off on the whole box, so f(x) = x + offset there: I - M = 0
    shifted = Network([Layer([[1.0]], [0.0], acts.relu())], [[1.0]], [1.0], skip=[[1.0]])
    res = find_equilibria(shifted, box)
    assert res.points == () and res.complete and not res.singular_regions  # x = x + 1 has no solution
    identity = Network([Layer([[1.0]], [0.0], acts.relu())], [[1.0]], [0.0], skip=[[1.0]])
    res = find_equilibria(identity, box)
    assert not res.complete and len(res.singular_regions) == 1  # every x is a fixed point: a continuum


def test_ill_conditioned_region_is_not_dismissed(monkeypatch):
    # f(x) = (1 - 1e-9) x + 1e-9 * 0.75 on [0.5, 1] (relu off): the fixed point 0.75 solves (I - M) x = c with
    # I - M = 1e-9. Simulate the solve of such a system going astray (landing outside the region): the region
    # must then be reported (an LP finds the solution), never silently dismissed as holding no equilibrium.
    from certify.engines import equilibria
    from certify.ir import activations as acts
    from certify.ir.box import Box
    from certify.ir.network import Layer, Network

    eps = 1e-9
    net = Network([Layer([[1.0]], [-2.0], acts.relu())], [[1.0]], [eps * 0.75], skip=[[1.0 - eps]])
    box = Box([0.5], [1.0])
    assert any(abs(p[0] - 0.75) < 1e-6 for p in equilibria.find_equilibria(net, box).points)
    solve = np.linalg.solve
    monkeypatch.setattr(equilibria.np.linalg, "solve", lambda a, b: solve(a, b) + 1.0)
    res = equilibria.find_equilibria(net, box)
    assert res.points == () and res.singular_regions and not res.complete
