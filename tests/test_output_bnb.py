"""Sub-box branch and bound for the invariance violation: enclosures dominate samples, verdicts agree with
dense sampling, and a net leaving the box on a small region is found."""

import numpy as np
import pytest
from engine_calls import max_violation
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.bounds.enclosures import jacobian_enclosure, output_enclosure
from certify.engines.violation_search import violation
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network

NAMES = sorted(acts.CATALOGUE)


# The nets these tests draw: 2 -> 6 -> 6 -> 2, N(0, 1) entries with only the second hidden weight divided by
# sqrt(6), the output weight times `out_scale`, an output bias 0.1 N(0, 1) and a skip 0.3 N(0, 1).
NET = {"bias_scale": 1.0, "out_bias_scale": 0.1, "fan_in": (False, True, False)}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(NAMES), w=st.floats(1e-6, 2.0))
def test_enclosures_contain_samples(seed, name, w, random_net):
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, (6, 6), 2, acts.CATALOGUE[name](), out_scale=0.5, skip=bool(seed % 2), **NET)
    lo = rng.uniform(-2, 1, size=2)
    hi = lo + w * rng.uniform(0.1, 1.0, size=2)
    x = lo + (hi - lo) * rng.random((400, 2))
    x = np.vstack([x, lo, hi])
    o_lo, o_hi = output_enclosure(net, lo, hi)
    f = net.forward(x)
    assert np.all(f >= o_lo) and np.all(f <= o_hi)
    j_lo, j_hi = jacobian_enclosure(net, lo, hi)
    j = net.jacobian(x)
    assert np.all(j >= j_lo) and np.all(j <= j_hi)


def _dense_violation(net, box, n=301):
    g = [np.linspace(a, b, n) for a, b in zip(box.lower, box.upper)]
    pts = np.stack(np.meshgrid(*g), -1).reshape(-1, box.dim)
    return float(violation(net, box, pts)[0].max())


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(["tanh", "sigmoid", "gelu", "softplus", "elu", "relu"]),
       exact=st.booleans())
def test_bracket_contains_the_dense_maximum(seed, name, exact, random_net):
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, (6, 6), 2, acts.CATALOGUE[name](), out_scale=0.3, skip=True, **NET)
    box = Box([-1.0, -1.0], [1.0, 1.0])
    res = max_violation(net, box, exact=exact, timeout=3.0, seed=seed)
    dense = _dense_violation(net, box)
    assert res.upper >= dense - 1e-12
    v, _ = violation(net, box, res.witness[None])
    assert v[0] == pytest.approx(res.lower, abs=1e-12) and box.contains(res.witness)
    if not exact and res.exhausted and res.upper < 0:
        assert dense < 0


def test_contracting_tanh_map_is_certified_invariant(random_net):
    # f(x) = 0.5 tanh(W x): |f_i| <= 0.5 < 1, so f([-1, 1]^2) sits strictly inside.
    net = random_net(0, 2, (8,), 2, acts.tanh(), bias_scale=0.0, out_scale=0.05, fan_in=False)
    res = max_violation(net, Box([-1.0, -1.0], [1.0, 1.0]), timeout=10)
    assert res.exhausted and res.upper < 0 and res.proven_fraction == pytest.approx(1.0)


def test_needle_violation_is_found():
    # 1-D: f(x) = 0.5 x + 3 * (sigmoid(k (x - 0.6)) - sigmoid(k (x - 0.6 - 1e-3))) leaves [0, 1] only near 0.6.
    k = 2e4
    net = Network([Layer([[k], [k]], [-k * 0.6, -k * 0.601], acts.sigmoid())], [[3.0, -3.0]], [0.0], skip=[[0.5]])
    box = Box([0.0], [1.0])
    res = max_violation(net, box, timeout=20, samples=16)
    assert res.lower > 0 and 0.59 < res.witness[0] < 0.61
