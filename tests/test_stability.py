"""The stability check: one equilibrium attracting every trajectory from a stated set, or a witness that none does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
