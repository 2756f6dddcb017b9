"""Corollary 4: the product-of-norms bound on sup_X ||A*(x)|| (or sup_X ||J(x)||).

    ||W_L Lambda_{L-1} W_{L-1} ... Lambda_0 W_0 + S|| <= prod_l ||W_l|| * prod_l max_i |slope_{l,i}| + ||S||

by submultiplicativity and the triangle inequality, where the slopes are the secant slopes (A*) or derivatives (J)
whose ranges over the box come from interval bounds on the pre-activations (``Activation.secant_range`` /
``derivative_range``). Soundness: every factor is an upper bound. Induced 2-norms come from float64 SVD, whose
largest singular value is accurate to a few n * eps relative (backward stability); each is padded as in
:func:`certify.ir.numerics.norm_upper`; the 1- and inf-norms are sums of absolute values, padded the same way; the
product of the factors by :func:`certify.ir.numerics.product_pad`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.numerics import norm_upper, product_pad, product_upper
from ..ir.quantity import Quantity
from .interval import interval_bounds
from .slopes import activation_range


@dataclass(frozen=True)
class ProductBound:
    """The Corollary 4 bound and its factors: weight norms, max |slope| per layer, and ||S||."""

    value: float
    weight_norms: tuple[float, ...]
    slope_maxima: tuple[float, ...]
    skip_norm: float

    def describe(self) -> str:
        w = " * ".join(f"{v:.4g}" for v in self.weight_norms)
        s = " * ".join(f"{v:.4g}" for v in self.slope_maxima) or "1"
        skip = f" + {self.skip_norm:.4g}" if self.skip_norm else ""
        return f"({w}) * ({s}){skip}"


def product_bound(net: Network, box: Box, p: float, quantity: Quantity | str = Quantity.A_STAR,
                  state_only: bool = True, metric: Metric | None = None) -> ProductBound:
    """Corollary 4 upper bound on sup over the box of ||A*(x)||_p (``quantity='A_STAR'``) or ||J(x)||_p ('JACOBIAN').

    ``state_only``: bound the state columns only (the first ``net.n_states`` inputs), as the dynamics checks need;
    ``metric``: in a weighted norm ||T M T^{-1}||_2 (state-only, p = 2): the layer norms of the conjugated first and
    last layers ||W_0 T^{-1}||, ||T W_L|| and ||T S T^{-1}||.
    """
    q = Quantity.coerce(quantity)
    cols = net.n_states if state_only else net.n_in
    weights = [layer.weight for layer in net.layers] + [net.out_weight]
    weights[0] = weights[0][:, :cols]
    skip = None if net.skip is None else net.skip[:, :cols]
    factor, errors = 1.0, (0.0, 0.0, 0.0)
    if metric is not None and not metric.is_identity:  # Corollary 4 in the metric: the conjugated first/last layers
        weights, skip = metric.conjugated_chain(net)
        factor, errors = metric.upper_factor, metric.end_errors(net)  # the float64 ends' rounding, in norm
    weight_norms = [norm_upper(w, p) for w in weights]
    weight_norms[0] += errors[0]
    weight_norms[-1] += errors[1]
    weight_norms = tuple(weight_norms)
    slope_maxima = []
    for layer, lb in zip(net.layers, interval_bounds(net, box)):
        act = layer.activation
        rng = act.secant_range if q is Quantity.A_STAR else act.derivative_range
        lo, hi = activation_range(rng, lb.pre_lower, lb.pre_upper)  # [-inf, inf] where z overflowed float64
        slope_maxima.append(float(np.max(np.maximum(np.abs(lo), np.abs(hi)))) if lo.size else 0.0)
    skip_norm = norm_upper(skip, p) + errors[2] if skip is not None else 0.0
    value = product_upper(list(weight_norms) + list(slope_maxima))  # no underflow to 0: (1e-90)^4 (1e90)^4 is 1
    if skip is not None:
        if not net.layers:
            # f is affine: the whole map is out_weight + S, bound it directly (tighter and still sound).
            value = (norm_upper(weights[-1] + skip, p) + errors[0] + errors[2]) * product_pad(3)
        else:
            value = (value + skip_norm) * product_pad(1)
    value = value * factor
    if np.isnan(value):  # inf * 0 once a factor overflowed float64: no bound
        value = np.inf
    return ProductBound(float(value), weight_norms, tuple(slope_maxima), skip_norm)
