"""Sound enclosures of the maps f(x), J(x) and b*(x) over sub-boxes, for any activation of the catalogue.

* :func:`output_enclosure`: f over a box, interval arithmetic through the layers intersected with the mean-value
  form f(x) in f(c) + J(B) (x - c), where J(B) is an interval matrix containing every Clarke Jacobian on B
  (:func:`jacobian_enclosure`: derivative ranges, which at kinks contain both one-sided slopes and hence their
  convex hull, pushed through :func:`certify.bounds.slopes.matrix_enclosure`). Its error shrinks quadratically with
  the box. f(c) is computed in float64 and padded by ``CHAIN_PAD`` per layer.
* :func:`bstar_enclosure`: b*(x) over each of a batch of boxes, the Lemma 1 recursion
  beta_{l+1} = Lambda_l (W_l beta_l + b_l) + sigma_l(0) in interval arithmetic, intersected with f(x) - A*(x) x
  from interval enclosures of f and A*.
"""

from __future__ import annotations

import numpy as np

from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import CHAIN_PAD, EPS, TINY, affine_interval
from .interval import output_interval
from .slopes import matrix_enclosure, preactivation_bounds, slope_ranges


def jacobian_enclosure(net: Network, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval matrix (n_out, n_in) containing J(x) (every Clarke Jacobian) for all x in [lo, hi]: the
    derivative ranges of :func:`certify.bounds.slopes.slope_ranges` (both one-sided slopes at a kink) pushed through
    :func:`certify.bounds.slopes.matrix_enclosure`."""
    slopes = slope_ranges(net, lo[None], hi[None], "JACOBIAN")
    j_lo, j_hi = matrix_enclosure(net, slopes, net.n_in)
    return j_lo[0], j_hi[0]


def output_enclosure(net: Network, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds (n_out,) on f over [lo, hi]: interval arithmetic intersected with the mean-value form."""
    box = Box(lo, hi)
    o_lo, o_hi = output_interval(net, box)
    c, r = box.center, box.radius
    fc = net.forward(c)
    j_lo, j_hi = jacobian_enclosure(net, lo, hi)
    spread = np.maximum(np.abs(j_lo), np.abs(j_hi)) @ r
    pad = CHAIN_PAD * (np.abs(fc) + spread) * (2 + len(net.layers)) + TINY
    return np.maximum(o_lo, fc - spread - pad), np.minimum(o_hi, fc + spread + pad)

def bstar_enclosure(net: Network, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound entrywise bounds (B, n_out) on b*(x) over each box [lo_b, hi_b] (B, n_in) (module docstring)."""
    b = lo.shape[0]
    if not net.layers:
        v = np.broadcast_to(net.out_bias, (b, net.n_out))
        return v.copy(), v.copy()
    pre = preactivation_bounds(net, lo, hi)
    # (1) the Lemma 1 recursion in interval arithmetic
    beta_lo = beta_hi = None
    for layer, (zl, zu) in zip(net.layers, pre):
        sl, sh = layer.activation.secant_range(zl, zu)
        s0 = layer.activation.value_at_zero
        if beta_lo is None:
            p_lo = np.broadcast_to(layer.bias, zl.shape)
            p_hi = p_lo
        else:
            p_lo, p_hi = affine_interval(layer.weight, layer.bias[:, None], beta_lo.T, beta_hi.T)
            p_lo, p_hi = p_lo.T, p_hi.T
        c = np.stack([sl * p_lo, sl * p_hi, sh * p_lo, sh * p_hi])
        mag = np.maximum(np.abs(sl), np.abs(sh)) * np.maximum(np.abs(p_lo), np.abs(p_hi))
        pad = 4 * EPS * (mag + abs(s0)) + TINY
        beta_lo, beta_hi = c.min(axis=0) + s0 - pad, c.max(axis=0) + s0 + pad
    b1_lo, b1_hi = affine_interval(net.out_weight, net.out_bias[:, None], beta_lo.T, beta_hi.T)
    # (2) f(x) - A*(x) x
    last = net.layers[-1]
    zl, zu = pre[-1]
    h_lo, h_hi = last.activation.value_range(zl, zu)
    f_lo, f_hi = affine_interval(net.out_weight, net.out_bias[:, None], h_lo.T, h_hi.T)
    a_lo, a_hi = matrix_enclosure(net, slope_ranges(net, lo, hi, "A_STAR"), net.n_in)  # includes S
    if net.skip is not None:  # f = W_L h + b_L + S x; A* already holds S, so b* = W_L h + b_L - (A* - S) x
        a_lo, a_hi = a_lo - net.skip, a_hi + (-net.skip)
        a_lo, a_hi = a_lo - 4 * EPS * np.abs(a_lo), a_hi + 4 * EPS * np.abs(a_hi)
    x_lo, x_hi = lo[:, None, :], hi[:, None, :]
    corners = np.stack([a_lo * x_lo, a_lo * x_hi, a_hi * x_lo, a_hi * x_hi])
    ax_lo, ax_hi = corners.min(axis=0).sum(axis=2), corners.max(axis=0).sum(axis=2)
    amag = (np.maximum(np.abs(a_lo), np.abs(a_hi)) * np.maximum(np.abs(x_lo), np.abs(x_hi))).sum(axis=2)
    pad = 4 * (net.n_in + 2) * EPS * amag + TINY
    b2_lo = f_lo.T - ax_hi - pad - 4 * EPS * np.abs(f_lo.T)
    b2_hi = f_hi.T - ax_lo + pad + 4 * EPS * np.abs(f_hi.T)
    return np.maximum(b1_lo.T, b2_lo), np.minimum(b1_hi.T, b2_hi)
