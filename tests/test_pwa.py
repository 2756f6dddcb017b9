"""The PWA form f(x) = A*(x) x + b*(x) (Lemma 1) and the Jacobian, for every activation."""

import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.errors import ModelError
from certify.ir import activations as acts
from certify.ir.kernels import TorchNet, forward
from certify.ir.network import Layer, Network

NAMES = sorted(acts.CATALOGUE) + ["prelu"]


# The nets these tests draw: every entry N(0, 1) unscaled, PReLU slopes N(0, 1) after their layer's weight and
# bias, and the skip (when present) before the output layer.
NET = {"fan_in": False, "bias_scale": 1.0, "skip_scale": 1.0, "out_order": "swb"}


def _act(name):
    """The activation spec for random_net: the catalogue entry, or PReLU with slopes drawn from the net's rng."""
    if name == "prelu":
        return lambda width, rng: acts.prelu(rng.normal(size=width))
    return acts.CATALOGUE[name]()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("skip", [False, True])
def test_pwa_identity(name, skip, random_net):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    net = random_net(rng, 3, (6, 5), 3, _act(name), skip=skip, **NET)
    x = rng.normal(size=(200, 3)) * 3
    a, b = net.pwa(x)
    assert a.shape == (200, 3, 3) and b.shape == (200, 3)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", a, x) + b, net.forward(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_jacobian_matches_autograd(name, random_net):
    rng = np.random.default_rng(1 + hash(name) % 2**32)
    net = random_net(rng, 3, (6, 5), 3, _act(name), skip=True, **NET)
    x = rng.normal(size=(100, 3)) * 3
    tn = TorchNet.of(net)
    auto = torch.func.vmap(torch.func.jacrev(lambda v: forward(tn, v[None])[0]))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.jacobian(x), auto, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "prelu", "identity"])
def test_pwa_equals_jacobian_for_pwl_through_origin(name, random_net):
    rng = np.random.default_rng(7)
    net = random_net(rng, 3, (6, 5), 3, _act(name), skip=True, **NET)
    x = rng.normal(size=(100, 3))
    np.testing.assert_allclose(net.pwa(x)[0], net.jacobian(x), atol=1e-12)


def test_pwa_differs_from_jacobian_for_tanh(random_net):
    rng = np.random.default_rng(8)
    net = random_net(rng, 3, (6, 5), 3, _act("tanh"), skip=True, **NET)
    x = rng.normal(size=(50, 3))
    assert np.abs(net.pwa(x)[0] - net.jacobian(x)).max() > 1e-3


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    name=st.sampled_from(NAMES),
    depth=st.integers(0, 3),
    width=st.integers(1, 6),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 4),
)
def test_pwa_identity_random_shapes(seed, name, depth, width, n_in, n_out, random_net):
    rng = np.random.default_rng(seed)
    net = random_net(rng, n_in, (width,) * depth, n_out, _act(name), skip=bool(seed % 2), **NET)
    x = rng.normal(size=(20, n_in)) * 2
    a, b = net.pwa(x)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", a, x) + b, net.forward(x), atol=1e-10)
    single_a, single_b = net.pwa(x[0])
    np.testing.assert_allclose(single_a, a[0])
    np.testing.assert_allclose(single_b, b[0])


def test_hand_computed_relu_net():
    # f(x) = relu(2x - 1) - relu(-x) ; at x = 1: A* = 2, b* = -1 ; at x = -1: A* = 1 (since -relu(-x) = x), b* = 0.
    net = Network([Layer([[2.0], [-1.0]], [-1.0, 0.0], acts.relu())], [[1.0, -1.0]], [0.0])
    a, b = net.pwa(np.array([[1.0], [-1.0]]))
    assert a[:, 0, 0].tolist() == [2.0, 1.0] and b[:, 0].tolist() == [-1.0, 0.0]


def test_network_validation():
    with pytest.raises(ModelError):
        Network([Layer(np.ones((2, 3)), np.ones(2), acts.relu())], np.ones((1, 3)), np.ones(1))
    with pytest.raises(ModelError):
        Layer(np.ones((2, 3)), np.ones(3), acts.relu())
    with pytest.raises(ModelError):
        Layer(np.ones((2, 3)), np.ones(2), acts.prelu([1.0, 2.0, 3.0]))
    with pytest.raises(ModelError):
        Network([], np.ones((2, 2)), np.ones(2), skip=np.ones((3, 2)))
    with pytest.raises(ModelError):
        Network([], np.array([[np.nan]]), np.ones(1))
