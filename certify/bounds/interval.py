"""Interval bounds on pre-activations, post-activations and outputs over a box.

Interval arithmetic in centre-radius form (:func:`certify.ir.numerics.affine_interval`): for z = W h + b with h in
[c - r, c + r], z lies in [W c + b - |W| r, W c + b + |W| r], widened for rounding; activations map intervals by
their outward-rounded value ranges. Tighter bounds: :mod:`certify.bounds.crown`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import CHAIN_PAD, affine_interval
from .slopes import activation_range


@dataclass(frozen=True, eq=False)
class LayerBounds:
    """Bounds on one hidden layer's pre-activations z_l (shape (n_{l+1},) each) and post-activations h_{l+1}."""

    pre_lower: np.ndarray
    pre_upper: np.ndarray
    post_lower: np.ndarray
    post_upper: np.ndarray


def interval_bounds(net: Network, box: Box) -> list[LayerBounds]:
    """Pre- and post-activation bounds of every hidden layer over the box, by interval arithmetic."""
    lo, hi = box.lower, box.upper
    out = []
    for layer in net.layers:
        zl, zu = affine_interval(layer.weight, layer.bias, lo, hi)
        lo, hi = activation_range(layer.activation.value_range, zl, zu)  # [-inf, inf] where z overflowed
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
        ol, ou = ol - CHAIN_PAD * np.abs(ol), ou + CHAIN_PAD * np.abs(ou)
    return ol, ou
