"""The one builder of small random :class:`~certify.ir.network.Network` objects for tests (seeded, float64), and a
few fixed examples, and :func:`vertex_max`, the brute-force sup of a slope chain's 2-norm that the SDP tests compare
their bounds with.

Tests that build nets inside test functions take the ``random_net``, ``random_weights``, ``unit_box``,
``scaled_net`` and ``gelu_example`` fixtures of ``tests/conftest.py``; modules that need them at import time (a
hypothesis strategy, a module-level helper) import them from here.

Shapes: a net ``n_in -> widths -> n_out`` has hidden weights ``W_l`` of shape (widths[l], n_{l}) with
``n_0 = n_in``, hidden biases (widths[l],), output weight (n_out, widths[-1]) (or (n_out, n_in) without hidden
layers), output bias (n_out,) and skip ``S`` (n_out, n_in).

Every draw is standard normal, times a scale, divided by ``sqrt(fan_in)`` where asked. The options exist so that
each test draws exactly the net it was tuned on (same draws in the same order, same scalings): many tests
assert things of particular seeds, so changing a default or the order of draws changes what they test.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network


def _weight(rng: np.random.Generator, m: int, n: int, scale: float, fan_in: bool) -> np.ndarray:
    """(m, n): ``scale * N(0, 1)``, divided by ``sqrt(n)`` when ``fan_in``."""
    w = scale * rng.normal(size=(m, n))
    return w / np.sqrt(n) if fan_in else w


def _bias(rng: np.random.Generator, m: int, scale: float) -> np.ndarray:
    """(m,): ``scale * N(0, 1)``; zeros, drawing nothing, when ``scale == 0``."""
    return scale * rng.normal(size=m) if scale != 0 else np.zeros(m)


def random_weights(rng: int | np.random.Generator, sizes: Sequence[int], scale: float = 1.0,
                   fan_in: bool | Sequence[bool] = True) -> list[np.ndarray]:
    """Weight matrices of the chain ``sizes[0] -> sizes[1] -> ...``: entry ``l`` has shape (sizes[l+1], sizes[l]),
    drawn ``scale * N(0, 1) / sqrt(sizes[l])`` in order (without the division where ``fan_in`` is false; one flag
    for all, or one per matrix). ``rng``: a seed or a generator the draws are taken from."""
    rng = np.random.default_rng(rng)
    n_mats = len(sizes) - 1
    fans = list(fan_in) if isinstance(fan_in, (list, tuple)) else [fan_in] * n_mats
    if len(fans) != n_mats:
        raise ValueError(f"fan_in has {len(fans)} entries for {n_mats} weight matrices")
    return [_weight(rng, m, n, scale, f) for n, m, f in zip(sizes[:-1], sizes[1:], fans)]


def random_net(rng: int | np.random.Generator, n_in: int = 2, widths: Sequence[int] = (5, 5),
               n_out: int | None = None, activation=None, *, weight_scale: float = 1.0, bias_scale: float = 0.5,
               out_scale: float | None = None, out_bias_scale: float | None = None, skip: bool = False,
               skip_scale: float = 0.3, fan_in: bool | Sequence[bool] = True, out_order: str = "wbs",
               weights_first: bool = False, n_states: int | None = None) -> Network:
    """A random net ``n_in -> widths -> n_out`` (``n_out`` defaults to ``n_in``; shapes in the module docstring).

    ``rng``: a seed, or a generator whose draws the net consumes (the test may go on drawing from it).
    ``activation``: one spec for every hidden layer or a list with one per layer; a spec is an
    :class:`~certify.ir.activations.Activation` (default ReLU), ``"prelu"`` (a PReLU whose slopes are drawn
    ``U(0, 0.5)`` just before the layer's weight) or a callable ``(width, rng) -> Activation`` called after the
    layer's weight and bias are drawn (it may draw from ``rng``).

    Scalings: hidden weights ``weight_scale * N(0, 1) / sqrt(fan_in)``, hidden biases ``bias_scale * N(0, 1)``,
    output weight ``out_scale * N(0, 1) / sqrt(fan_in)`` (``out_scale`` defaults to ``weight_scale``), output bias
    ``out_bias_scale * N(0, 1)`` (defaults to ``bias_scale``), skip ``skip_scale * N(0, 1)`` when ``skip``. A bias
    scale of 0 gives zeros without a draw. ``fan_in``: divide by ``sqrt(fan_in)`` or not, one flag for every
    weight or one per weight (hidden layers, then the output layer).

    Order of draws: layer by layer (weight, then bias), or every hidden weight first and then the hidden biases
    when ``weights_first``; then the output weight ``w``, output bias ``b`` and skip ``s`` in the order
    ``out_order`` spells (a permutation of ``"wbs"``).
    """
    rng = np.random.default_rng(rng)
    n_out = n_in if n_out is None else n_out
    out_scale = weight_scale if out_scale is None else out_scale
    out_bias_scale = bias_scale if out_bias_scale is None else out_bias_scale
    if sorted(out_order) != ["b", "s", "w"]:
        raise ValueError(f"out_order must be a permutation of 'wbs', not {out_order!r}")
    specs = list(activation) if isinstance(activation, (list, tuple)) else [activation] * len(widths)
    fans = list(fan_in) if isinstance(fan_in, (list, tuple)) else [fan_in] * (len(widths) + 1)
    if len(specs) != len(widths) or len(fans) != len(widths) + 1:
        raise ValueError(f"{len(specs)} activations and {len(fans)} fan_in flags for {len(widths)} hidden layers")
    sizes = (n_in, *widths)
    weights = random_weights(rng, sizes, weight_scale, fans[:-1]) if weights_first else None
    layers = []
    for l, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])):
        spec = acts.relu() if specs[l] is None else specs[l]
        act = acts.prelu(rng.uniform(0.0, 0.5, size=m)) if isinstance(spec, str) and spec == "prelu" else None
        w = weights[l] if weights_first else _weight(rng, m, n, weight_scale, fans[l])
        b = _bias(rng, m, bias_scale)
        if act is None:
            act = spec if isinstance(spec, acts.Activation) else spec(m, rng)
        layers.append(Layer(w, b, act))
    draws = {}
    for key in out_order:
        if key == "w":
            draws[key] = _weight(rng, n_out, sizes[-1], out_scale, fans[-1])
        elif key == "b":
            draws[key] = _bias(rng, n_out, out_bias_scale)
        else:
            draws[key] = skip_scale * rng.normal(size=(n_out, n_in)) if skip else None
    return Network(tuple(layers), draws["w"], draws["b"], draws["s"], n_states=n_states)


def unit_box(n: int, half: float = 1.0, n_states: int | None = None) -> Box:
    """The box [-half, half]^n (lower and upper of shape (n,))."""
    return Box(-half * np.ones(n), half * np.ones(n), n_states=n_states)


def scaled_net(net: Network, factor: float) -> Network:
    """The same net with the output layer (and skip) multiplied by ``factor`` (scales A*, J and b* alike)."""
    return Network(net.layers, factor * net.out_weight, factor * net.out_bias,
                   None if net.skip is None else factor * net.skip, n_states=net.n_states)


def gelu_example() -> tuple[Network, Box]:
    """Issue 4's example f(x) = 0.999 GELU(0.999 x) + 0.089543 on [-5, 50]: sup |A*| < 1, three fixed points."""
    net = Network((Layer(np.array([[0.999]]), np.zeros(1), acts.gelu()),), np.array([[0.999]]), np.array([0.089543]))
    return net, Box(np.array([-5.0]), np.array([50.0]))


def vertex_max(weights, lower, upper, skip=None) -> float:
    """max ||W_L diag(s) ... W_0 + S||_2 over every vertex of the slope box: the exact sup over the box, because the
    norm is convex in each slope separately (so the sup over the box sits at a vertex). Small nets only (2^free).

    Shapes: ``weights`` W_0 (n_1, n_0), ..., W_L (n_out, n_L); ``lower``/``upper`` the slope bounds of layers 1..L,
    (n_l,) each; ``skip`` S (n_out, n_0) or None.
    """
    free = [np.flatnonzero(b > a) for a, b in zip(lower, upper)]
    best = 0.0
    for bits in itertools.product((0, 1), repeat=sum(f.size for f in free)):
        it = iter(bits)
        m = weights[0]
        for w, a, b, fr in zip(weights[1:], lower, upper, free):
            s = a.copy()
            for i in fr:
                s[i] = b[i] if next(it) else a[i]
            m = w @ (s[:, None] * m)
        best = max(best, float(np.linalg.norm(m if skip is None else m + skip, 2)))
    return best


def leaves_only_at(s: float) -> Network:
    """A 1-state ReLU net with f(x) = 0.5 for x > s (a float step above s is enough) and f(s) = 800.5: on a box
    starting at s it leaves the box only at that one float, the point a region read outward may add."""
    return Network((Layer(np.array([[1.0]]), np.array([-s]), acts.relu()),
                    Layer(np.array([[-1e20]]), np.array([800.0]), acts.relu())), np.array([[1.0]]), np.array([0.5]))
