"""The centred (midpoint + perturbation) bound of certify.bounds.centred: sound against dense samples on random
sub-boxes for every activation of the catalogue, A* and J, p in {1, 2, inf}, with and without a skip; tends to
||M(c)|| on small boxes; never needs the interval matrix to be tight."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certify.bounds.centred import centred_bound
from certify.bounds.norm_bounds import SupNormBounder, box_bounds
from certify.bounds.slopes import slope_ranges
from certify.config import BoundKind
from certify.ir import activations as acts
from certify.ir.numerics import induced_norm, interval_norm_upper, midpoints
from certify.ir.quantity import Quantity

CATALOGUE = {**{k: f() for k, f in acts.CATALOGUE.items()}, "prelu": "prelu"}


def _matrices(net, x, quantity, cols):
    m = net.jacobian(x) if quantity == "JACOBIAN" else net.pwa(x)[0]
    return m[:, :, :cols]


def _sub_boxes(rng, n, k, half):
    a = rng.uniform(-half, half, size=(k, n))
    b = a + rng.choice([1e-6, 1e-3, 0.1, 1.0, 2 * half], size=(k, 1)) * rng.uniform(size=(k, n))
    b[0, 0] = a[0, 0]  # a degenerate side
    return a, np.minimum(b, half)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(CATALOGUE)), seed=st.integers(0, 10_000),
       quantity=st.sampled_from(["A_STAR", "JACOBIAN"]), p=st.sampled_from([1.0, 2.0, math.inf]),
       skip=st.booleans(), n_in=st.integers(1, 3), depth=st.integers(1, 3))
def test_centred_bound_dominates_dense_samples(name, seed, quantity, p, skip, n_in, depth, random_net, unit_box):
    """On every random sub-box the centred bound is >= ||Q(x)||_p at dense samples (corners included)."""
    widths = (6, 5, 4)[:depth]
    net = random_net(seed, n_in, widths, activation=CATALOGUE[name], weight_scale=1.5, skip=skip)
    rng = np.random.default_rng(seed)
    lo, hi = _sub_boxes(rng, n_in, 6, 2.0)
    st_ = SupNormBounder.of(net, unit_box(n_in, 2.0), p, Quantity.coerce(quantity), True)
    bound = box_bounds(st_, lo, hi, (BoundKind.CENTRED,))[BoundKind.CENTRED]
    for b in range(lo.shape[0]):
        u = rng.uniform(size=(400, n_in))
        u[: 2**n_in] = np.array(np.meshgrid(*[[0, 1]] * n_in)).reshape(n_in, -1).T
        x = lo[b] + u * (hi[b] - lo[b])
        v = induced_norm(_matrices(net, x, quantity, net.n_states), p).max()
        assert bound[b] >= v, (bound[b], v)


@pytest.mark.parametrize("quantity", ["A_STAR", "JACOBIAN"])
@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_centred_bound_tends_to_the_centre_norm(quantity, p, random_net, unit_box):
    """On a tiny box the bound is within a relative 1e-4 of ||Q(c)||, and below the interval matrix bound on a
    4-64-64-4 tanh net's moderately small boxes (where it is meant to win)."""
    net = random_net(2, 4, (64, 64), activation=acts.tanh())
    c = np.array([0.3, -0.2, 0.1, 0.5])
    lo, hi = (c - 1e-7)[None], (c + 1e-7)[None]
    st_ = SupNormBounder.of(net, unit_box(4), p, Quantity.coerce(quantity), True)
    v = box_bounds(st_, lo, hi, (BoundKind.CENTRED,))[BoundKind.CENTRED][0]
    ref = induced_norm(_matrices(net, c[None], quantity, 4), p)[0]
    assert ref <= v <= ref * (1 + 1e-4)
    lo, hi = (c - 0.05)[None], (c + 0.05)[None]
    b = box_bounds(st_, lo, hi, (BoundKind.CENTRED, BoundKind.INTERVAL))
    assert b[BoundKind.CENTRED][0] < b[BoundKind.INTERVAL][0]


def test_midpoints_cover_the_ranges():
    rng = np.random.default_rng(0)
    sl = rng.normal(size=(50, 7)) * 10.0 ** rng.integers(-300, 300, size=(50, 7))
    sh = sl + np.abs(rng.normal(size=(50, 7))) * 10.0 ** rng.integers(-20, 20, size=(50, 7))
    sh = np.where(np.isfinite(sh), sh, sl)
    m, d = midpoints(sl, sh)
    from fractions import Fraction
    for a, b, mm, dd in zip(sl.ravel(), sh.ravel(), m.ravel(), d.ravel()):
        assert Fraction(mm) - Fraction(dd) <= Fraction(a) and Fraction(b) <= Fraction(mm) + Fraction(dd)


def test_interval_norm_bound_and_centred_bound_agree_on_point_slopes(random_net):
    """With degenerate slope ranges the set is one matrix: both bounds equal its norm to rounding."""
    net = random_net(4, 3, (8, 6), activation=acts.gelu(), skip=True)
    x = np.array([[0.2, -0.4, 0.9]])
    slopes = [(s, s) for s in (layer.activation.np_secant(z) for layer, z in zip(net.layers, net.preactivations(x)))]
    mats = [layer.weight for layer in net.layers] + [net.out_weight]
    ref = induced_norm(net.pwa(x)[0], 2.0)[0]
    v = centred_bound(mats, slopes, net.skip, 3, 2.0)[0]
    assert ref <= v <= ref * (1 + 1e-9)
    m = net.pwa(x)[0]
    assert interval_norm_upper(m, m, 2.0)[0] == pytest.approx(ref, rel=1e-9)
    _ = slope_ranges  # the ranges the engine uses are tested in test_smooth_bnb


def test_overflow_gives_no_bound_rather_than_nan(random_net):
    """Slope ranges so wide that the products overflow give an infinite bound, never NaN."""
    net = random_net(1, 2, (4, 4), activation=acts.tanh())
    mats = [layer.weight * 1e200 for layer in net.layers] + [net.out_weight * 1e200]
    slopes = [(-np.ones((1, 4)) * 1e200, np.ones((1, 4)) * 1e200)] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow is handled: no RuntimeWarning reaches the user
        v = centred_bound(mats, slopes, None, 2, 2.0)
    assert np.all(v == np.inf)
