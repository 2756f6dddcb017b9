"""Sound bounds on pre-activations over a box.

Interval arithmetic in centre-radius form: for z = W h + b with h in [c - r, c + r], z lies in
[W c + b - |W| r, W c + b + |W| r]. Floating-point error of the products is covered by padding each bound by
``_PAD * (|W| |c| + |W| r + |b|) + tiny`` (a dot product of length n errs by at most about n * eps times that sum;
``_PAD`` = 1e-12 is far above n * eps for any width below 10^3 and still negligible).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .box import Box
from .network import Network

_PAD = 1e-12
_TINY = 1e-300


@dataclass(frozen=True, eq=False)
class LayerBounds:
    """Bounds on one hidden layer's pre-activations z_l (shape (n_{l+1},) each) and post-activations h_{l+1}."""

    pre_lower: np.ndarray
    pre_upper: np.ndarray
    post_lower: np.ndarray
    post_upper: np.ndarray


def affine_interval(weight: np.ndarray, bias: np.ndarray, lower: np.ndarray, upper: np.ndarray):
    """Sound [lower, upper] of weight @ h + bias for h in [lower, upper]; weight (m, n), returns two (m,) arrays."""
    c = 0.5 * (lower + upper)
    r = 0.5 * (upper - lower)
    abs_w = np.abs(weight)
    mid = weight @ c + bias
    rad = abs_w @ r
    pad = _PAD * (abs_w @ np.abs(c) + rad + np.abs(bias)) + _TINY
    return mid - rad - pad, mid + rad + pad


def interval_bounds(net: Network, box: Box) -> list[LayerBounds]:
    """Pre- and post-activation bounds of every hidden layer over the box, by interval arithmetic."""
    lo, hi = box.lower, box.upper
    out = []
    for layer in net.layers:
        zl, zu = affine_interval(layer.weight, layer.bias, lo, hi)
        lo, hi = layer.activation.value_range(zl, zu)
        out.append(LayerBounds(zl, zu, lo, hi))
    return out


def output_interval(net: Network, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Sound interval bounds on f(x) over the box, each of shape (n_out,)."""
    bounds = interval_bounds(net, box)
    lo, hi = (bounds[-1].post_lower, bounds[-1].post_upper) if bounds else (box.lower, box.upper)
    ol, ou = affine_interval(net.out_weight, net.out_bias, lo, hi)
    if net.skip is not None:
        sl, su = affine_interval(net.skip, np.zeros(net.n_out), box.lower, box.upper)
        ol, ou = ol + sl, ou + su
        ol, ou = ol - _PAD * np.abs(ol), ou + _PAD * np.abs(ou)
    return ol, ou
