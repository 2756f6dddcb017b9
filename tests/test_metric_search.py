"""--metric auto: the metric search certifies stable loops the 2-norm cannot, and never certifies a loop with a
region of spectral radius >= 1 (no metric can exist there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import certify
from certify.config import VerifyConfig
from certify.engines.contract import Query
from certify.engines.metric_search import metric_search, propose_metric, state_matrices
from certify.engines.regions import enumerate_regions
from certify.ir.network import Network
from certify.ir.numerics import induced_norm, spectral_radius, spectral_radius_below_one
from certify.ir.quantity import Quantity

ZOO = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"


@pytest.mark.parametrize("quantity", [Quantity.JACOBIAN, Quantity.A_STAR])
def test_the_double_integrator_near_the_origin_is_certified_in_a_metric(quantity):
    rep = certify.verify(ZOO / "double_integrator.system.yaml", ZOO / "double_integrator_origin.box.yaml",
                         ["contraction" if quantity is Quantity.JACOBIAN else "dissipativity"],
                         VerifyConfig(metric="auto", timeout=60.0))
    r = rep.results[0]
    assert r.verdict is certify.Verdict.CERTIFIED, r.reason
    assert r.upper < 0.5 and "metric P" in r.reason  # the rate, about 0.43, against ||A - B K||_2 = 1.0014


def test_the_saturated_double_integrator_is_refuted_for_every_metric():
    rep = certify.verify(ZOO / "double_integrator.system.yaml", ZOO / "double_integrator.box.yaml",
                         ["contraction"], VerifyConfig(metric="auto", timeout=60.0))
    r = rep.results[0]
    assert r.verdict is certify.Verdict.FALSIFIED and "spectral radius" in r.reason
    net = certify.load(ZOO / "double_integrator.system.yaml")
    m = net.jacobian(np.array(r.witness.x))
    assert not spectral_radius_below_one(m)  # the witness's matrix: no T makes ||T M T^-1|| < 1


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), gain=st.floats(0.3, 1.6))
def test_no_metric_ever_certifies_a_loop_with_a_region_of_spectral_radius_at_least_one(seed, gain, random_net,
                                                                                    unit_box):
    net = random_net(seed, 2, (6, 6), weight_scale=gain)
    box = unit_box(2)
    regions = enumerate_regions(net, box).regions
    unstable = any(not spectral_radius_below_one(r.m) for r in regions)
    res = metric_search(Query(net, box, Quantity.JACOBIAN, VerifyConfig(timeout=30.0, seed=seed),
                              threshold=1 - 1e-6))
    if unstable:
        assert not res.certified(1 - 1e-6)
    if res.certified(1 - 1e-6):  # the certificate is the exact engine's in that metric: check it by brute force
        t, q = res.metric.t, np.linalg.inv(res.metric.t)
        worst = max(float(induced_norm(t @ r.m @ q, 2.0)) for r in regions)
        assert worst <= res.result.upper * (1 + 1e-9) and worst < 1
    if res.refutation is not None:
        assert not spectral_radius_below_one(res.refutation.matrix)
        assert any(np.allclose(res.refutation.matrix, r.m, rtol=1e-9, atol=1e-12)
                   for r in regions if r.contains(res.refutation.x))


def test_the_proposal_satisfies_its_lmi_on_the_matrices():
    base = np.array([[0.5, 2.0], [0.0, 0.6]])  # ||base||_2 > 2, spectral radius 0.6
    mats = np.array([base, 0.9 * base, base @ base])
    p, rate = propose_metric(mats)
    assert p is not None and rate < 1
    for m in mats:  # rate^2 P - M^T P M >= 0 up to the solver's accuracy
        assert np.linalg.eigvalsh(rate**2 * p * (1 + 1e-2) - m.T @ p @ m).min() >= -1e-6 * np.abs(p).max()
    assert max(spectral_radius(m) for m in mats) <= rate + 1e-6


def test_state_matrices_keep_one_matrix_per_region(random_net, unit_box):
    net = random_net(1, 2, (4,))
    q = Query(net, unit_box(2), Quantity.JACOBIAN, VerifyConfig())
    pts = np.random.default_rng(0).uniform(-1, 1, size=(500, 2))
    _, mats = state_matrices(q, pts)
    assert 1 <= mats.shape[0] <= len(enumerate_regions(net, unit_box(2)).regions)


def test_a_failed_second_proposal_reports_the_first_rounds_metric_and_rate(monkeypatch):
    """Round 1 proposes P = I (rate 0.9) and the engine refutes it with a witness; round 2's SDP finds nothing.
    The check must report round 1's metric with round 1's rate (it crashed on a missing rate before)."""
    import certify.engines.metric_search as ms
    from certify.ir import activations as acts
    from certify.ir.box import Box
    from certify.ir.network import Layer

    proposals = iter([(np.eye(2), 0.9)])
    monkeypatch.setattr(ms, "propose_metric", lambda *a, **k: next(proposals, (None, None)))
    m = np.array([[0.5, 2.0], [0.0, 0.5]])  # ||M||_2 > 2, spectral radius 0.5: refutes P = I, not every metric
    net = Network((Layer(np.eye(2), np.zeros(2), acts.identity()),), m, np.zeros(2))
    r = certify.verify(net, Box([-1.0, -1.0], [1.0, 1.0]), ["contraction"],
                       VerifyConfig(metric="auto", timeout=30.0)).results[0]
    assert r.verdict is certify.Verdict.UNKNOWN
    assert r.details.metric_rate == 0.9 and r.details.metric_rounds == 2
    assert np.allclose(np.array(r.details.metric), np.eye(2)) and "no common metric" in r.reason
    assert r.lower == pytest.approx(induced_norm(m, 2.0), rel=1e-9)
