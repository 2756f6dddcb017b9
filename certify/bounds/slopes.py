"""Slope ranges and matrix enclosures over batches of sub-boxes, for any activation of the catalogue.

On a sub-box [lo, hi] every A*(x) (resp. J(x)) is a product

    M = W_L D_{L-1} W_{L-1} ... D_0 W_0 + S,   D_l diagonal with entries in [s_lo, s_hi] per neuron,

the slope ranges being the secant ranges (A*) or derivative ranges (J) of each neuron over its pre-activation
interval (``Activation.secant_range`` / ``derivative_range``, sound with outward rounding). The pre-activation
intervals are interval bounds intersected with the centred form z_k(c) + G_k (x - c) (:func:`preactivation_bounds`),
whose error shrinks quadratically with the box: on small boxes it is what makes splitting converge.
"""

from __future__ import annotations

import numpy as np

from ..ir.network import Network
from ..ir.numerics import (
    CHAIN_PAD,
    TINY,
    affine_interval,
    matmul_interval_left,
    matmul_interval_right,
    outward,
    scale_rows,
)
from ..ir.quantity import Quantity


def activation_range(range_of, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``range_of(lower, upper)`` (an activation's ``value_range``, ``secant_range`` or ``derivative_range``) for
    pre-activation intervals that may have overflowed float64: a neuron with an infinite (or NaN) end may take any
    value we can bound, so its range is [-inf, inf]; the others get the activation's sound range. Arrays of any
    shape; an activation's own range functions take finite intervals only."""
    ok = np.isfinite(lower) & np.isfinite(upper)
    if ok.all():
        return range_of(lower, upper)
    lo, hi = range_of(np.where(ok, lower, 0.0), np.where(ok, upper, 0.0))
    return np.where(ok, lo, -np.inf), np.where(ok, hi, np.inf)


def interval_preactivations(net: Network, lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interval bounds on every hidden layer's pre-activations over B boxes at once.

    ``lo``/``hi``: (B, n_in). Returns per hidden layer (lower, upper) of shape (B, n_{l+1}); for each box these
    equal :func:`certify.bounds.interval.interval_bounds` (the same :func:`~certify.bounds.interval.affine_interval`
    arithmetic with
    its rounding pad, and the activations' outward-rounded value ranges).
    """
    out = []
    l, u = np.ascontiguousarray(lo.T), np.ascontiguousarray(hi.T)
    for k, layer in enumerate(net.layers):
        zl, zu = affine_interval(layer.weight, layer.bias[:, None], l, u)
        zl, zu = np.ascontiguousarray(zl.T), np.ascontiguousarray(zu.T)
        out.append((zl, zu))
        if k + 1 < len(net.layers):  # the last hidden layer's value range is not needed (costly for tanh)
            pl, pu = activation_range(layer.activation.value_range, zl, zu)
            l, u = np.ascontiguousarray(pl.T), np.ascontiguousarray(pu.T)
    return out


def preactivation_bounds(net: Network, lo: np.ndarray, hi: np.ndarray,
                         centred: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-activation bounds over B boxes (``lo``/``hi`` (B, n_in)): interval bounds intersected, for layers
    k >= 1, with the centred (mean-value) form

        z_k(x) in z_k(c) + G_k (x - c),   G_k = W_k D_{k-1} W_{k-1} ... D_0 W_0,  D_j in the derivative ranges,

    c the box centre. Sound by the mean-value theorem for Lipschitz maps (Clarke): z_k(x) - z_k(c) lies in
    co{G (x - c)} over generalised Jacobians G along the segment, each a product of diagonals whose entries lie
    in the derivative ranges (which include both one-sided limits at kinks), and the interval matrix of G_k
    (:func:`matrix_enclosure` on the truncated chain) encloses that hull. z_k(c) is enclosed by interval
    arithmetic on the degenerate box [c, c]. The error of this form shrinks quadratically with the box width
    (plain intervals: linearly), which is what makes small boxes pay off.
    Returns per hidden layer (lower, upper) of shape (B, n_{l+1}).
    """
    plain = interval_preactivations(net, lo, hi)
    if not centred or len(net.layers) < 2:
        return plain
    c = 0.5 * (lo + hi)
    r = np.maximum(hi - c, c - lo)  # rounding of c is covered: r reaches both ends
    at_c = interval_preactivations(net, c, c)
    out = [plain[0]]
    derivs = []
    for k in range(1, len(net.layers)):
        zl, zu = out[k - 1]
        derivs.append(activation_range(net.layers[k - 1].activation.derivative_range, zl, zu))
        g_lo, g_hi = chain_enclosure([layer.weight for layer in net.layers[: k + 1]], derivs, net.n_in)
        rad = np.matmul(np.maximum(np.abs(g_lo), np.abs(g_hi)), r[:, :, None])[:, :, 0]
        rad = rad * (1.0 + 1e-12) + TINY
        cl, cu = at_c[k]
        lo_k = np.fmax(plain[k][0], cl - rad)  # fmax/fmin: an overflowed (NaN) centred end is no bound
        hi_k = np.fmin(plain[k][1], cu + rad)
        out.append((lo_k, hi_k))
    return out


def slope_ranges(net: Network, lo: np.ndarray, hi: np.ndarray, quantity) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per hidden layer the (B, n_{l+1}) arrays [s_lo, s_hi] of secant slopes (A*) or derivatives (J) that every
    point of each box can produce (sound: ranges of the activation over sound pre-activation intervals)."""
    q = Quantity.coerce(quantity)
    out = []
    for layer, (zl, zu) in zip(net.layers, preactivation_bounds(net, lo, hi)):
        act = layer.activation
        rng = act.secant_range if q is Quantity.A_STAR else act.derivative_range
        out.append(activation_range(rng, zl, zu))
    return out


def matrix_enclosure(
    net: Network, slopes: list[tuple[np.ndarray, np.ndarray]], columns: int, mats=None, skip=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Entrywise enclosure [lower, upper] (each (B, n_out, columns)) of W_L D_{L-1} ... D_0 W_0[:, :columns] + S
    for all diagonal D_l within the slope ranges ``slopes`` (per layer two (B, n_{l+1}) arrays).

    Two interval propagations (right to left from W_0, left to right from W_L) intersected, padded by
    ``CHAIN_PAD`` times the absolute-value chain |W_L| T_{L-1} ... T_0 |W_0| (T = max |slope|): sound for widths far
    beyond 10^3 (float64 interval arithmetic errs by about (L + 1) n eps times that chain). ``mats``/``skip``: the
    chain's matrices W_0 .. W_L and S in place of the net's (a metric's conjugated chain,
    :meth:`certify.ir.metric.Metric.conjugated_chain`).
    """
    if mats is None:
        mats, skip = [layer.weight for layer in net.layers] + [net.out_weight], net.skip
    lo, hi = chain_enclosure(mats, slopes, columns)
    if skip is not None:
        s = skip[:, :columns]
        scale = np.abs(lo) + np.abs(hi) + np.abs(s)
        lo, hi = outward(lo + s - 1e-15 * scale, hi + s + 1e-15 * scale)
    return lo, hi


def chain_enclosure(mats, slopes, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Enclosure of mats[-1] D_{k-1} ... D_0 mats[0][:, :columns] (see :func:`matrix_enclosure`), padded."""
    b = slopes[0][0].shape[0] if slopes else 1
    mats = [mats[0][:, :columns]] + list(mats[1:])
    abs_mats = [np.abs(w) for w in mats]
    # right to left
    lo = np.broadcast_to(mats[0], (b,) + mats[0].shape)
    hi = lo
    mag = np.broadcast_to(abs_mats[0], lo.shape)
    for (sl, sh), w, aw in zip(slopes, mats[1:], abs_mats[1:]):
        lo, hi = scale_rows(lo, hi, sl, sh)
        mag = np.maximum(np.abs(sl), np.abs(sh))[:, :, None] * mag
        lo, hi = matmul_interval_left(w, aw, lo, hi)
        mag = np.matmul(aw, mag)
    # left to right
    if len(mats) > 2:
        lo2 = np.broadcast_to(mats[-1], (b,) + mats[-1].shape)
        hi2 = lo2
        for (sl, sh), w, aw in zip(reversed(slopes), reversed(mats[:-1]), reversed(abs_mats[:-1])):
            t_lo, t_hi = scale_rows(np.swapaxes(lo2, 1, 2), np.swapaxes(hi2, 1, 2), sl, sh)
            lo2, hi2 = matmul_interval_right(w, aw, np.swapaxes(t_lo, 1, 2), np.swapaxes(t_hi, 1, 2))
        lo, hi = np.maximum(lo, lo2), np.minimum(hi, hi2)
    pad = CHAIN_PAD * mag + TINY
    return outward(lo - pad, hi + pad)  # an overflowed entry (inf * 0 in the pad) is no bound
