"""Weighted norms ||x||_P = ||T x||_2: every engine bounds ||T M T^{-1}||, cross-checked against brute force over
the enumerated regions (exact = region search <= sub-box, Corollary 4, SDP and interval bounds; sampled <= exact)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.bounds.corollary4 import product_bound
from certify.bounds.norm_bounds import sup_norm_bound
from certify.config import BoundKind, BoxSearchOptions, SdpUse, VerifyConfig
from certify.engines.box_search import box_search
from certify.engines.contract import Query
from certify.engines.lipsdp import sdp_bound_over_box
from certify.engines.region_search import region_search
from certify.engines.regions import enumerate_regions
from certify.engines.sampling import falsify
from certify.errors import UsageError
from certify.ir.metric import Metric
from certify.ir.numerics import induced_norm
from certify.ir.quantity import Quantity


def _spd(rng, n: int, spread: float = 3.0) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(np.exp(rng.uniform(-spread, spread, n))) @ q.T


def _exact_in_metric(net, box, metric: Metric) -> float:
    """max over enumerated full-dimensional regions of ||T M_s T^{-1}||_2 (T^{-1} by solve: the reference)."""
    regions = enumerate_regions(net, box).regions
    t = metric.t
    return max(float(induced_norm(t @ r.m[:, : net.n_states] @ np.linalg.inv(t), 2.0)) for r in regions)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 3), width=st.integers(3, 6))
def test_metric_engines_bracket_the_brute_force_value(seed, n, width, random_net, unit_box):
    net, box = random_net(seed, n, (width, width)), unit_box(n)
    metric = Metric.of(_spd(np.random.default_rng(seed), n))
    exact = _exact_in_metric(net, box, metric)
    config = VerifyConfig(timeout=60.0, samples=2000, seed=seed)
    regions = region_search(Query(net, box, Quantity.A_STAR, config, metric=metric))
    assert regions.exact and math.isclose(regions.lower, exact, rel_tol=1e-9), (regions.lower, exact)
    sampled = falsify(net, box, Quantity.A_STAR, 2.0, config, metric=metric)
    assert sampled.value <= exact * (1 + 1e-9)
    boxes = box_search(Query(net, box, Quantity.A_STAR, config.with_(budget=400,
                                                                     boxes=BoxSearchOptions(sdp=SdpUse.NEVER)),
                             metric=metric))
    assert boxes.lower <= exact * (1 + 1e-9) and boxes.upper >= exact * (1 - 1e-9)
    assert product_bound(net, box, 2.0, Quantity.A_STAR, True, metric).value >= exact * (1 - 1e-12)
    assert sup_norm_bound(net, box, 2.0, Quantity.A_STAR, True, (BoundKind.INTERVAL,), metric) >= exact * (1 - 1e-12)


def test_sdp_bound_in_a_metric_is_an_upper_bound(random_net, unit_box):
    net, box = random_net(11, 2, (5,)), unit_box(2)
    metric = Metric.of(_spd(np.random.default_rng(1), 2))
    res = sdp_bound_over_box(net, box, Quantity.A_STAR, True, metric=metric)
    assert res.value is not None and res.value >= _exact_in_metric(net, box, metric) * (1 - 1e-9)


def test_the_identity_metric_changes_nothing(random_net, unit_box):
    net, box = random_net(2, 2, (6, 6)), unit_box(2)
    config = VerifyConfig(timeout=60.0)
    plain = region_search(Query(net, box, Quantity.JACOBIAN, config))
    same = region_search(Query(net, box, Quantity.JACOBIAN, config, metric=Metric.of(np.eye(2))))
    assert plain.lower == same.lower and plain.upper == same.upper


def test_a_metric_can_make_a_stable_linear_map_contractive():
    # M = [[0.5, 10], [0, 0.5]]: ||M||_2 > 10 but the spectral radius is 0.5; the discrete Lyapunov P gives < 1
    from certify.ir.network import Network

    m = np.array([[0.5, 10.0], [0.0, 0.5]])
    net = Network((), np.zeros((2, 2)), np.zeros(2), skip=m)
    p = np.eye(2)
    for _ in range(200):  # P = sum_k (M^k)^T M^k, the solution of M^T P M - P = -I
        p = np.eye(2) + m.T @ p @ m
    metric = Metric.of(p)
    from random_nets import unit_box

    res = region_search(Query(net, unit_box(2), Quantity.A_STAR, VerifyConfig(timeout=10.0), metric=metric))
    assert induced_norm(m, 2.0) > 10 and res.exact and res.upper < 1


@pytest.mark.parametrize("bad, needle", [
    ([[1.0, 2.0], [0.0, 1.0]], "symmetric"),
    ([[1.0, 0.0], [0.0, -1.0]], "positive definite"),
    ([[1.0, 0.0, 0.0]], "square"),
    ([[1.0, float("nan")], [float("nan"), 1.0]], "NaN"),
    ("not a matrix", "square matrix"),
])
def test_a_bad_metric_is_refused_naming_what_is_wrong(bad, needle):
    with pytest.raises(UsageError, match=needle):
        Metric.of(bad, "box.yaml: metric")


def test_a_metric_needs_the_2_norm_and_one_row_per_state(random_net, unit_box):
    net, box = random_net(0, 2, (4,)), unit_box(2)
    with pytest.raises(UsageError, match="norm 2"):
        Query(net, box, Quantity.A_STAR, VerifyConfig(norm=1.0), metric=Metric.of(2 * np.eye(2)))
    with pytest.raises(UsageError, match="states"):
        Query(net, box, Quantity.A_STAR, VerifyConfig(), metric=Metric.of(2 * np.eye(3)))


def test_the_float64_inverse_correction_is_tiny_and_sound():
    rng = np.random.default_rng(0)
    metric = Metric.of(_spd(rng, 4, spread=6.0))  # condition number up to e^24
    assert 1.0 <= metric.upper_factor < 1 + 1e-6 and 1 - 1e-6 < metric.lower_factor <= 1.0
    m = rng.normal(size=(4, 4))
    exact = induced_norm(metric.t @ m @ np.linalg.inv(metric.t), 2.0)
    assert induced_norm(metric.conjugate(m), 2.0) * metric.lower_factor <= exact * (1 + 1e-12)


def _exact_metric_norm_at_least(bound: float, t: np.ndarray, w: np.ndarray) -> bool:
    """bound >= ||T W T^{-1}||_2 in exact rational arithmetic (2 x 2: ||A||^2 = (s + sqrt(s^2 - 4 det(A)^2)) / 2,
    s = ||A||_F^2), T upper triangular and W as stored in float64."""
    from fractions import Fraction as Fr

    (t00, t01), (_, t11) = [[Fr(float(v)) for v in row] for row in t]
    ti = [[1 / t00, -t01 / (t00 * t11)], [Fr(0), 1 / t11]]
    tm = [[Fr(t00), Fr(t01)], [Fr(0), Fr(t11)]]
    wf = [[Fr(float(v)) for v in row] for row in w]

    def mul(x, y):
        return [[sum(x[i][k] * y[k][j] for k in range(2)) for j in range(2)] for i in range(2)]

    a = mul(mul(tm, wf), ti)
    s = sum(v * v for row in a for v in row)
    det = a[0][0] * a[1][1] - a[0][1] * a[1][0]
    lhs = 2 * Fr(bound) ** 2 - s  # bound^2 >= ||A||^2 iff 2 b^2 - s >= sqrt(s^2 - 4 det^2)
    return lhs >= 0 and lhs * lhs >= s * s - 4 * det * det


@pytest.mark.parametrize("seed", range(40))
def test_bounds_in_a_metric_cover_the_rounding_of_the_conjugated_ends(seed, unit_box):
    # T W T^{-1} small while |T| |W| |Q| is large: the float64 products W Q, T W and T W Q cancel, and their
    # rounding (not only Q != T^{-1}) must be covered. Before the fix 5 of these 40 seeds had an interval,
    # Corollary 4 or region-search upper bound below the exact value (by a relative 1e-11 to 3e-10).
    from certify.ir.activations import relu
    from certify.ir.network import Layer, Network

    rng = np.random.default_rng(seed)
    a = 10 ** rng.uniform(1.5, 3.2)
    t = np.array([[1.0 + rng.uniform(), a * (1 + rng.uniform())], [0.0, 1.0 + rng.uniform()]])
    metric = Metric.of(t.T @ t)
    w = metric.t_inv @ (rng.normal(size=(2, 2)) * 10 ** rng.uniform(-6, -2)) @ metric.t
    box = unit_box(2)
    nets = [Network((), np.zeros((2, 2)), np.zeros(2), skip=w),  # the skip T S Q
            Network((), w, np.zeros(2)),  # a linear net T W Q
            # one hidden layer active on the whole box: A* = I W, so the ends W Q and T I carry the cancellation
            Network((Layer(w, np.full(2, 1e7), relu()),), np.eye(2), np.zeros(2))]
    for net in nets:
        kinds = (BoundKind.INTERVAL, BoundKind.CENTRED, BoundKind.PRODUCT, BoundKind.SCALED)
        for kind in kinds:
            b = sup_norm_bound(net, box, 2.0, Quantity.A_STAR, True, (kind,), metric)
            assert _exact_metric_norm_at_least(b, metric.t, w), (kind, b)
        assert _exact_metric_norm_at_least(product_bound(net, box, 2.0, Quantity.A_STAR, True, metric).value,
                                           metric.t, w)
        res = region_search(Query(net, box, Quantity.A_STAR, VerifyConfig(timeout=30.0), metric=metric))
        assert _exact_metric_norm_at_least(res.upper, metric.t, w), res
        assert not _exact_metric_norm_at_least(res.lower * (1 - 1e-6), metric.t, w)  # and the lower bound is near
