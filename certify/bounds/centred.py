"""Centred (midpoint + perturbation) upper bounds on ||M||_p over a set of slope matrices, batched over sub-boxes.

Setting (as in :mod:`certify.engines.box_search`): on a sub-box every A*(x) (or J(x)) is

    M = W_L D_{L-1} W_{L-1} ... D_0 W_0 + S,   D_l = diag(d_l),  d_l in [s_lo_l, s_hi_l] entrywise,

with sound slope ranges per neuron. Write d_l = m_l + e_l with m_l the midpoint of the range and |e_l| <= delta_l
(the half width). Telescoping the product (X_L ... X_0 - C_L ... C_0 = sum_l X_L .. X_{l+1} (X_l - C_l) C_{l-1} .. C_0):

    M - M_c = sum_l Left_l diag(e_l) Right_l,
    M_c     = W_L diag(m_{L-1}) ... diag(m_0) W_0 + S                      (one float64 matrix per box),
    Right_l = W_l diag(m_{l-1}) W_{l-1} ... diag(m_0) W_0                 (midpoint slopes: float64 matrices),
    Left_l  = W_L D_{L-1} W_{L-1} ... D_{l+1} W_{l+1}                     (slopes anywhere in their ranges).

Hence, for every M of the set and every p in {1, 2, inf},

    ||M||_p <= ||M_c||_p + sum_l min( ||Left_l diag(a_l)||_p ||diag(c_l) Right_l||_p ,
                                       || |Left_l| diag(delta_l) |Right_l| ||_p ),

because diag(e_l) = diag(a_l) E diag(c_l) for any positive a_l, c_l with a_l c_l >= delta_l (E diagonal, |E| <= I,
so ||E||_p <= 1; a_l balances the norms, :func:`balanced_factors`), and
|Left diag(e) Right| <= |Left| diag(delta) |Right| entrywise (with ||A||_p <= || |A| ||_p <= ||U||_p for |A| <= U).
Left_l over its slope ranges is an interval matrix (propagated left to right from W_L), bounded by
:func:`certify.ir.numerics.interval_norm_upper`. As the sub-box shrinks the ranges shrink, the perturbation terms
vanish linearly and
the bound tends to ||M(c)||; unlike the interval matrix bound, the first-order term keeps the cancellations of
the weight matrices (norms of products, not of absolute values).

Soundness assumptions: the slope ranges enclose every slope the sub-box produces (``Activation.secant_range`` /
``derivative_range`` over sound pre-activation bounds); float64 rounding of the products is covered by padding
each computed matrix entrywise by ``CHAIN_PAD`` times its absolute-value chain (the error of a float64 chain of
matrix products of k factors of width n is about k n eps times that chain, far below 1e-11 for widths up to
10^3 and beyond), the midpoints and half widths are rounded so that [m - delta, m + delta] covers the range, and
every float64 matrix norm is padded up by ``NORM_PAD`` (relative, :func:`certify.ir.numerics.norm_upper`).
"""

from __future__ import annotations

import numpy as np

from ..ir.numerics import (
    CHAIN_PAD,
    TINY,
    interval_norm_upper,
    matmul_interval_right,
    midpoints,
    norm_upper,
    overflow_to_inf,
    scale_rows,
)


def left_intervals(mats, slopes, tmax, b: int):
    """Interval enclosures of Left_l (l = 0..L-1), each padded: list of (lo, hi) of shape (B, n_out, n_{l+1}).

    ``mats``: W_0 .. W_L; ``slopes``: per hidden layer (s_lo, s_hi) (B, n_{l+1}); ``tmax``: max |slope|."""
    n_hidden = len(slopes)
    out = [None] * n_hidden
    w_out = mats[-1]
    lo = np.broadcast_to(w_out, (b,) + w_out.shape)
    hi = lo
    mag = np.broadcast_to(np.abs(w_out), lo.shape)
    out[n_hidden - 1] = (lo, hi)
    for l in range(n_hidden - 1, 0, -1):
        w, aw = mats[l], np.abs(mats[l])
        sl, sh = slopes[l]
        t_lo, t_hi = scale_rows(np.swapaxes(lo, 1, 2), np.swapaxes(hi, 1, 2), sl, sh)
        lo, hi = matmul_interval_right(w, aw, np.swapaxes(t_lo, 1, 2), np.swapaxes(t_hi, 1, 2))
        mag = np.matmul(mag * tmax[l][:, None, :], aw)
        pad = CHAIN_PAD * mag + TINY
        out[l - 1] = (lo - pad, hi + pad)
    return out


def _right_matrices(mats, mids, cols: int, b: int):
    """Right_l (l = 0..L-1) and M_c without S: float64 products with midpoint slopes, plus their entrywise
    rounding bounds. Returns (rights, pads, mc, mc_pad); rights[l], pads[l]: (B, n_{l+1}, cols)."""
    w0 = mats[0][:, :cols]
    r = np.broadcast_to(w0, (b,) + w0.shape)
    mag = np.broadcast_to(np.abs(w0), r.shape)
    rights, pads = [r], [np.zeros(r.shape)]
    for l in range(1, len(mats)):
        w = mats[l]
        m = mids[l - 1][:, :, None]
        r = np.matmul(w, m * r)
        mag = np.matmul(np.abs(w), np.abs(m) * mag)
        pad = CHAIN_PAD * mag + TINY
        if l < len(mats) - 1:
            rights.append(r)
            pads.append(pad)
    return rights, pads, r, pad


def balanced_factors(delta: np.ndarray, left_abs: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive factors (a, c), each (B, n), with a_i c_i >= delta_i (exactly, after rounding): the split
    diag(e) = diag(a) E diag(c), |E| <= I. a_i = sqrt(delta_i) (||Right row i|| / ||Left column i||)^(1/2)
    balances the two norms (measured: 6 to 13 % below a = c = sqrt(delta) near a maximiser); the ratio is clipped
    to [1e-100, 1e100] so that a stays positive and finite (delta >= 1e-300 from :func:`midpoints`)."""
    lcol = np.sqrt(np.einsum("bkn,bkn->bn", left_abs, left_abs))
    rrow = np.sqrt(np.einsum("bnc,bnc->bn", right, right))
    ratio = np.clip(np.nan_to_num(rrow / np.maximum(lcol, 1e-300), nan=1.0, posinf=1e100), 1e-100, 1e100)
    a = np.sqrt(delta) * np.sqrt(ratio)
    c = (delta / a) * (1.0 + 1e-15)
    return a, c


@overflow_to_inf
def centred_bound(mats, slopes, skip, cols: int, p: float) -> np.ndarray:
    """The centred bound of the module docstring, (B,), over B sub-boxes.

    ``mats``: the weights W_0 (full columns) .. W_L as float64 arrays; ``slopes``: per hidden layer (s_lo, s_hi)
    of shape (B, n_{l+1}) enclosing every slope; ``skip``: S (n_out, n_in) or None; ``cols``: the columns of M
    bounded (state columns first). Sound for every M = W_L D_{L-1} ... D_0 W_0[:, :cols] + S[:, :cols] with D_l
    within the ranges, for p in {1, 2, inf}."""
    mc, mc_pad, perturbation = centred_parts(mats, slopes, skip, cols, p)
    total = (norm_upper(mc, p) + norm_upper(mc_pad, p) + perturbation) * (1.0 + 1e-12 * (len(mats) + 2))
    return np.where(np.isnan(total), np.inf, total)  # overflow (inf - inf) gives no bound, never a small one


def centred_parts(mats, slopes, skip, cols: int, p: float):
    """The pieces of :func:`centred_bound`: (M_c (B, n_out, cols), its entrywise rounding bound (B, n_out, cols),
    the perturbation bound (B,)): every M of the set is M_c + E + P with |E| <= the rounding bound and
    ||P||_p <= the perturbation bound (rounded up). Arguments as :func:`centred_bound`."""
    b = slopes[0][0].shape[0]
    mats = list(mats)
    mids, halves = zip(*(midpoints(sl, sh) for sl, sh in slopes))
    tmax = [np.maximum(np.abs(sl), np.abs(sh)) for sl, sh in slopes]
    rights, rpads, mc, mc_pad = _right_matrices(mats, mids, cols, b)
    if skip is not None:
        s = skip[:, :cols]
        mc_pad = mc_pad + 1e-15 * (np.abs(mc) + np.abs(s))
        mc = mc + s
    total = np.zeros(b)
    for left, right, rpad, delta in zip(left_intervals(mats, slopes, tmax, b), rights, rpads, halves):
        llo, lhi = left
        labs = np.maximum(np.abs(llo), np.abs(lhi))
        a, c = balanced_factors(delta, labs, right)
        split = interval_norm_upper(llo * a[:, None, :], lhi * a[:, None, :], p)
        split = split * (norm_upper(c[:, :, None] * right, p) + norm_upper(c[:, :, None] * rpad, p))
        absolute = norm_upper(np.matmul(labs * delta[:, None, :], np.abs(right) + rpad), p)
        total = total + np.minimum(split, absolute) * (1.0 + 1e-12)
    return mc, mc_pad, total * (1.0 + 1e-12 * (len(mats) + 2))
