"""The stability check: one equilibrium attracting every trajectory from a stated set, or a witness that none does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import certify
from certify.config import VerifyConfig
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network

ZOO = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"
AUTO = VerifyConfig(metric="auto", timeout=60.0)


def _stability(net_or_path, box, config=AUTO):
    return certify.verify(net_or_path, box, ["stability"], config).results[0]


@pytest.mark.parametrize("system, box", [("dcdc", "dcdc"), ("double_integrator", "double_integrator_origin")])
def test_the_zoo_loops_have_a_certified_region_of_attraction(system, box):
    r = _stability(ZOO / f"{system}.system.yaml", ZOO / f"{box}.box.yaml")
    assert r.verdict is certify.Verdict.CERTIFIED, r.reason
    d = r.details
    assert d.start_set == "ellipsoid" and 0 < d.box_share <= 1 and d.radius > 0 and r.upper < 1
    net = certify.load(ZOO / f"{system}.system.yaml")
    x_bar = np.array(d.equilibria[0])
    assert np.max(np.abs(net.forward(x_bar) - x_bar)) < 1e-9  # a replayed equilibrium
    # trajectories from the ellipsoid stay in it and approach x_bar (simulated from its boundary)
    p = np.array(d.metric)
    t = np.linalg.cholesky(p).T
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 2))
    x = x_bar + (d.radius * y / np.linalg.norm(y, axis=1, keepdims=True)) @ np.linalg.inv(t).T
    for _ in range(50):
        nxt = net.forward(x)
        before, after = np.linalg.norm((x - x_bar) @ t.T, axis=1), np.linalg.norm((nxt - x_bar) @ t.T, axis=1)
        assert np.all(after <= r.upper * before + 1e-9)
        x = nxt


def test_the_saturated_double_integrator_is_not_certified_nor_called_unstable():
    r = _stability(ZOO / "double_integrator.system.yaml", ZOO / "double_integrator.box.yaml")
    assert r.verdict is certify.Verdict.UNKNOWN and "contraction not proven" in r.reason


def test_an_invariant_contracting_box_is_its_own_region_of_attraction():
    net = Network((Layer(np.eye(2), np.zeros(2), acts.tanh()),), 0.5 * np.eye(2), np.zeros(2))
    r = _stability(net, Box([-1.0, -1.0], [1.0, 1.0]), VerifyConfig(timeout=60.0))
    assert r.verdict is certify.Verdict.CERTIFIED and r.details.start_set == "box", r.reason
    assert r.details.box_share == 1.0


def test_a_rate_of_one_or_a_nan_residual_certifies_nothing(monkeypatch):
    """Certified stability rests on a rate below 1 (a contraction 'certified' at <= 1 - margin with margin 0 may
    report exactly 1) and on a radius proven above the residual bound (NaN proves nothing)."""
    import dataclasses

    import certify.checks.stability as stability

    net = Network((Layer(np.eye(2), np.zeros(2), acts.tanh()),), 0.5 * np.eye(2), np.zeros(2))
    box, config = Box([-1.0, -1.0], [1.0, 1.0]), VerifyConfig(timeout=60.0)
    real = stability.sup_norm_check
    monkeypatch.setattr(stability, "sup_norm_check", lambda *a, **k: dataclasses.replace(real(*a, **k), upper=1.0))
    r = _stability(net, box, config)
    assert r.verdict is certify.Verdict.UNKNOWN and "not below 1" in r.reason, r.reason
    monkeypatch.setattr(stability, "sup_norm_check", real)
    real_invariance = stability.check_invariance
    monkeypatch.setattr(stability, "check_invariance", lambda *a, **k: dataclasses.replace(
        real_invariance(*a, **k), verdict=certify.Verdict.UNKNOWN))
    r = _stability(net, box, config)  # the ellipsoid around the equilibrium 0
    assert r.verdict is certify.Verdict.CERTIFIED and r.details.start_set == "ellipsoid", r.reason
    monkeypatch.setattr(stability, "_residual_bound", lambda *a, **k: float("nan"))
    r = _stability(net, box, config)
    assert r.verdict is certify.Verdict.UNKNOWN, r.reason


def test_two_equilibria_falsify_stability(gelu_example):
    net, box = gelu_example()  # three fixed points in the box
    r = _stability(net, box, VerifyConfig(timeout=60.0))
    assert r.verdict is certify.Verdict.FALSIFIED and len(r.details.equilibria) >= 2
    for x in r.details.equilibria:
        assert abs(float(net.forward(np.array(x))[0]) - x[0]) < 1e-9


def test_an_unstable_equilibrium_falsifies_stability():
    net = Network((Layer(np.array([[1.0]]), np.array([0.5]), acts.relu()),), np.array([[2.0]]), np.array([-1.0]))
    # f(x) = 2 relu(x + 0.5) - 1 = 2x on x > -0.5: the fixed point 0 with slope 2
    r = _stability(net, Box([-0.4], [0.4]), VerifyConfig(timeout=60.0))
    assert r.verdict is certify.Verdict.FALSIFIED and "unstable" in r.reason
    assert r.witness.value == pytest.approx(2.0)


def test_stability_needs_an_autonomous_loop(random_net, unit_box):
    net = random_net(0, 3, (4,), n_out=2, n_states=2)
    r = _stability(net, unit_box(3, n_states=2), VerifyConfig(timeout=10.0))
    assert r.verdict is certify.Verdict.UNKNOWN and "autonomous" in r.reason


def _one_norm_only_loop(n: int = 4, kick: float = 10.0) -> Network:
    """x+ = A x on [-1, 1]^n with A = 0.9 e_1 (1, ..., 1): ||A||_1 = 0.9 but ||A||_2 = 1.8 and ||A||_inf = 3.6;
    past x_1 = 1.5 (outside the box) a ReLU adds ``kick`` (x_1 - 1.5) e_1, so a trajectory that leaves the box
    diverges."""
    a = np.zeros((n, n))
    a[0, :] = 0.9
    hidden = Layer(np.vstack([np.eye(n), np.eye(n)[:1]]), np.array([10.0] * n + [-1.5]), acts.relu())
    return Network((hidden,), np.hstack([a, kick * np.eye(n)[:, :1]]), -10.0 * a @ np.ones(n))


def _on_sphere(rng, count: int, n: int, p: float) -> np.ndarray:
    """``count`` points on the unit sphere of the p-norm (n,) each, and the directions (1, .., 1) and e_1 on it."""
    y = rng.normal(size=(count, n))
    y = np.vstack([y, np.ones(n), np.eye(n)[0]])
    return y / np.linalg.norm(y, ord=p, axis=1, keepdims=True)


@pytest.mark.parametrize("norm", [1.0, 2.0, np.inf])
def test_a_certified_start_set_holds_its_trajectories_in_the_norm_the_rate_was_proven_in(norm):
    """Before the fix, --norm 1 certified this loop with the Euclidean ball of radius 1 around 0 as start set: the
    rate 0.9 was proven in the 1-norm, and from (0.5, 0.5, 0.5, 0.5), inside that ball, the trajectory leaves the box
    and diverges. The start set must be a ball of the norm the rate is in; simulated from its boundary, every
    trajectory stays in it."""
    net, box = _one_norm_only_loop(), Box(-np.ones(4), np.ones(4))
    r = _stability(net, box, VerifyConfig(norm=norm, timeout=60.0))
    if norm != 1.0:  # ||J|| = 1.8 in the 2-norm, 3.6 in the inf-norm, at every point
        assert r.verdict is certify.Verdict.UNKNOWN, r.reason
        return
    assert r.verdict is certify.Verdict.CERTIFIED, r.reason
    d = r.details
    # the set as reported: {||T (x - x_bar)||_2 <= r} with P = T^T T, or a ball of the details' norm
    assert d.start_set in ("ellipsoid", "ball"), d
    ellipsoid = d.start_set == "ellipsoid"
    set_norm = 2.0 if ellipsoid else d.norm
    t = np.linalg.cholesky(np.array(d.metric)).T if ellipsoid else np.eye(4)
    x_bar = np.array(d.equilibria[0])
    x = x_bar + d.radius * _on_sphere(np.random.default_rng(0), 500, 4, set_norm) @ np.linalg.inv(t).T
    for _ in range(30):
        x = net.forward(x)
        assert np.all(np.linalg.norm((x - x_bar) @ t.T, ord=set_norm, axis=1) <= d.radius * (1 + 1e-9))
    assert np.max(np.abs(x - x_bar)) < 0.9 ** 30 * d.radius * (1 + 1e-9)
    assert d.start_set == "ball" and d.norm == 1.0 and d.radius > 0.5, d
    assert "1-norm" in r.reason and "||x - x_bar||_1" in r.reason


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), norm=st.sampled_from([1.0, 2.0, np.inf]), scale=st.floats(0.4, 1.0),
       shift=st.floats(-0.5, 0.5))
def test_every_certified_start_set_holds_and_draws_in_its_simulated_trajectories(seed, norm, scale, shift):
    """Certified stability against simulation, for small random ReLU loops, every norm and boxes off the origin:
    trajectories from the start set (random points of the box when it is S, else points on the boundary of the
    ellipsoid or ball) stay in S, and their distance to x_bar, in the norm of the rate, shrinks at the rate."""
    from random_nets import random_net

    net = random_net(seed, 2, (6,), weight_scale=scale, bias_scale=0.3)
    box = Box(np.array([-1.0, -1.0]) + shift, np.array([1.0, 1.0]) + shift)
    r = _stability(net, box, VerifyConfig(norm=norm, timeout=20.0, samples=2000))
    if r.verdict is not certify.Verdict.CERTIFIED:
        return
    d = r.details
    x_bar, rate = np.array(d.equilibria[0]), r.upper
    rng = np.random.default_rng(seed)
    if d.start_set == "box":
        set_norm, t = norm, np.eye(2)
        x = rng.uniform(box.lower, box.upper, size=(400, 2))
    else:
        ellipsoid = d.start_set == "ellipsoid"
        set_norm = 2.0 if ellipsoid else d.norm
        t = np.linalg.cholesky(np.array(d.metric)).T if ellipsoid else np.eye(2)
        x = x_bar + d.radius * _on_sphere(rng, 400, 2, set_norm) @ np.linalg.inv(t).T
    dist = np.linalg.norm((x - x_bar) @ t.T, ord=set_norm, axis=1)
    for _ in range(20):
        x = net.forward(x)
        if d.start_set == "box":
            assert np.all(x >= box.lower - 1e-12) and np.all(x <= box.upper + 1e-12)
        else:
            assert np.all(np.linalg.norm((x - x_bar) @ t.T, ord=set_norm, axis=1) <= d.radius * (1 + 1e-9))
        new = np.linalg.norm((x - x_bar) @ t.T, ord=set_norm, axis=1)
        assert np.all(new <= rate * dist + 1e-9)
        dist = new
