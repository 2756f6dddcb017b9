"""Helpers building small random :class:`~certify.ir.network.Network` objects for tests (seeded, float64).

``random_net(seed, n_in, widths, n_out, activation=..., bias_scale=..., weight_scale=...)`` draws Gaussian weights
scaled by 1/sqrt(fan_in); ``activation`` is an :class:`Activation`, a callable ``width -> Activation`` (for PReLU)
or a list with one entry per hidden layer.
"""

from __future__ import annotations

import numpy as np

from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network


def _act(spec, width: int, rng: np.random.Generator):
    if isinstance(spec, str) and spec == "prelu":
        return acts.prelu(rng.uniform(0.0, 0.5, size=width))
    if callable(spec) and not isinstance(spec, acts.Activation):
        return spec(width)
    return spec


def random_net(seed: int, n_in: int = 2, widths=(5, 5), n_out: int | None = None, activation=None,
               weight_scale: float = 1.0, bias_scale: float = 0.5, skip: bool = False,
               n_states: int | None = None) -> Network:
    """A random net n_in -> widths -> n_out (n_out defaults to n_in); ``activation`` default ReLU."""
    rng = np.random.default_rng(seed)
    n_out = n_in if n_out is None else n_out
    specs = activation if isinstance(activation, (list, tuple)) else [activation] * len(widths)
    layers = []
    prev = n_in
    for w, spec in zip(widths, specs):
        act = _act(spec if spec is not None else acts.relu(), w, rng)
        layers.append(Layer(weight_scale * rng.normal(size=(w, prev)) / np.sqrt(prev),
                            bias_scale * rng.normal(size=w), act))
        prev = w
    out_w = weight_scale * rng.normal(size=(n_out, prev)) / np.sqrt(prev)
    out_b = bias_scale * rng.normal(size=n_out)
    s = 0.3 * rng.normal(size=(n_out, n_in)) if skip else None
    return Network(tuple(layers), out_w, out_b, s, n_states=n_states)


def unit_box(n: int, half: float = 1.0, n_states: int | None = None) -> Box:
    return Box(-half * np.ones(n), half * np.ones(n), n_states=n_states)


def scaled_net(net: Network, factor: float) -> Network:
    """The same net with the output layer (and skip) multiplied by ``factor`` (scales A*, J and b* alike)."""
    return Network(net.layers, factor * net.out_weight, factor * net.out_bias,
                   None if net.skip is None else factor * net.skip, n_states=net.n_states)


def gelu_example() -> tuple[Network, Box]:
    """Issue 4's example f(x) = 0.999 GELU(0.999 x) + 0.089543 on [-5, 50]: sup |A*| < 1, three fixed points."""
    net = Network((Layer(np.array([[0.999]]), np.zeros(1), acts.gelu()),), np.array([[0.999]]), np.array([0.089543]))
    return net, Box(np.array([-5.0]), np.array([50.0]))
