"""The fused sampling kernel (certify.engines.sampling.matrices_at without gradients: one transcendental per layer
shared by the activation's value and its slopes) equals the separate kernels of certify.ir.kernels, for every
activation with a fused form and a few without, for A* (secant slopes) and J (derivatives), at pre-activations
that are exactly zero (the secant's 0/0), large (saturation) and ordinary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from random_nets import random_net

from certify.engines.sampling import matrices_at
from certify.ir import activations as act
from certify.ir.kernels import TorchNet, chain_product, layer_slopes, preactivations
from certify.ir.network import Layer, Network
from certify.ir.quantity import Quantity

ACTIVATIONS = [act.tanh, act.sigmoid, act.gelu, act.silu, act.softplus, act.relu]


def _reference(tnet, x, quantity, columns):
    zs = preactivations(tnet, x)
    return chain_product(tnet, [layer_slopes(a, z, quantity.slope_kind) for a, z in zip(tnet.activations, zs)],
                         columns)


def _zero_first_bias(net: Network) -> Network:
    first = net.layers[0]
    bias = np.array(first.bias)
    bias[0] = 0.0
    layers = (Layer(first.weight, bias, first.activation), *net.layers[1:])
    return Network(layers, net.out_weight, net.out_bias, net.skip, n_states=net.n_states)


def _points(net) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, net.n_in))
    x[0] = 0.0  # with the first layer's bias zeroed on neuron 0 below, z_0 = 0 exactly there
    x[1] = 40.0  # saturated neurons
    return x


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("quantity", [Quantity.A_STAR, Quantity.JACOBIAN])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_fused_kernel_equals_the_separate_kernels(activation, quantity, dtype, tol):
    net = _zero_first_bias(random_net(3, 3, (6, 5), 2, activation(), skip=True))
    tnet = TorchNet.of(net, dtype, "cpu")
    x = torch.tensor(_points(net), dtype=dtype)
    with torch.no_grad():
        zs = preactivations(tnet, x)
        assert float(zs[0][0, 0]) == 0.0  # the 0/0 case is really exercised
        got = matrices_at(tnet, x, quantity, 2)
        ref = _reference(tnet, x, quantity, 2)
    assert got.shape == ref.shape == (64, 2, 2)
    assert torch.isfinite(got).all()
    scale = float(ref.abs().max())
    assert float((got - ref).abs().max()) <= tol * scale


@pytest.mark.parametrize("activation", [act.tanh, act.sigmoid, act.gelu])
def test_gradient_path_still_differentiates(activation):
    net = random_net(4, 2, (5,), 2, activation())
    tnet = TorchNet.of(net, torch.float64, "cpu")
    x = torch.tensor(_points(net)[2:10], dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        m = matrices_at(tnet, x, Quantity.A_STAR, 2)
        (g,) = torch.autograd.grad(m.sum(), x)
    assert torch.isfinite(g).all() and float(g.abs().max()) > 0
    with torch.no_grad():
        assert torch.allclose(m.detach(), matrices_at(tnet, x.detach(), Quantity.A_STAR, 2), rtol=1e-12, atol=1e-14)
