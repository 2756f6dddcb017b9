"""Corollary 4 product bound: sound (>= every sampled norm), exact where it must be, S handled soundly."""

import math

import numpy as np
import pytest

from certify.bounds.corollary4 import product_bound
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.numerics import norm_upper

P = [1.0, 2.0, math.inf]


def _norm(m, p):
    return np.linalg.norm(m, ord={1.0: 1, 2.0: 2, math.inf: np.inf}[p])


@pytest.mark.parametrize("p", P)
@pytest.mark.parametrize("name", ["relu", "tanh", "selu", "gelu", "softplus", "hardswish", "leaky_relu"])
def test_product_bound_dominates_samples(p, name, random_net):
    rng = np.random.default_rng(3)
    net = random_net(rng, 2, (6, 6), 2, acts.CATALOGUE[name](), bias_scale=1.0, skip=True, skip_scale=1.0,
                     fan_in=False)  # every entry N(0, 1)
    box = Box(np.array([-1.0, -2.0]), np.array([1.0, 0.5]))
    x = box.lower + (box.upper - box.lower) * rng.random((5000, 2))
    for quantity, mats in (("A_STAR", net.pwa(x)[0]), ("JACOBIAN", net.jacobian(x))):
        bound = product_bound(net, box, p, quantity).value
        sampled = max(_norm(m, p) for m in mats)
        assert sampled <= bound


def test_linear_net_bound_is_exact():
    w = np.array([[0.5, 0.2], [-0.1, 0.3]])
    s = np.array([[0.1, 0.0], [0.0, 0.1]])
    net = Network([], w, np.zeros(2), skip=s)
    box = Box(-np.ones(2), np.ones(2))
    for p in P:
        assert product_bound(net, box, p).value == pytest.approx(_norm(w + s, p), rel=1e-10)
        assert product_bound(net, box, p).value >= _norm(w + s, p)


def test_selu_slope_enters_the_product():
    # one neuron, weights 1: sup of the secant of SELU over a box reaching just below 0 is scale * alpha.
    net = Network([Layer([[1.0]], [0.0], acts.selu())], [[1.0]], [0.0])
    pb = product_bound(net, Box(np.array([-1e-6]), np.array([1.0])), 2.0)
    assert pb.value >= acts.SELU_SCALE * acts.SELU_ALPHA
    assert pb.slope_maxima[0] == pytest.approx(acts.SELU_SCALE * acts.SELU_ALPHA, rel=1e-6)


def test_state_only_drops_input_columns(random_net):
    net = random_net(0, 3, (4,), 2, acts.tanh(), bias_scale=1.0, out_bias_scale=0.0, fan_in=False, n_states=2)
    box = Box(-np.ones(3), np.ones(3), n_states=2)
    full = product_bound(net, box, 2.0, state_only=False)
    states = product_bound(net, box, 2.0, state_only=True)
    assert states.weight_norms[0] <= full.weight_norms[0]
    assert states.weight_norms[0] >= np.linalg.norm(net.layers[0].weight[:, :2], 2)


def test_induced_norm_upper_is_upper():
    rng = np.random.default_rng(1)
    for _ in range(50):
        m = rng.normal(size=(rng.integers(1, 6), rng.integers(1, 6)))
        for p in P:
            assert norm_upper(m, p) >= _norm(m, p)
