"""Second-order enclosures of A*(x) and J(x) over sub-boxes (Taylor models per neuron), and the norm bound they
give. Used by the sub-box search as :attr:`certify.config.BoundKind.SECOND_ORDER`.

Setting. On a sub-box with centre c and radius r (h = x - c, |h_j| <= r_j),
M(x) = W_L D_{L-1}(x) ... D_0(x) W_0 + S with D_l = diag(d_l(z_l(x))), d = s (the secant slope: A*) or sigma' (J);
the chain's matrices are conjugated by a metric when one is given (the pre-activations z_l use the net's own
weights). The form needs d Lipschitz continuous for every layer (``Activation.lipschitz_secant`` /
``lipschitz_derivative``, :func:`applies`); every step below is Taylor's theorem with the remainder in integral
form, whose integrands lie in the activation's derivative ranges over the pre-activation interval (both one-sided
limits at kinks). For a *smooth* activation (``Activation.smooth``) the models are of second order, otherwise of
first order (no quadratic term of that activation).

**Per neuron** (dz_l >= |z_l(x) - z_l(c)| from the pre-activation bounds, dev(f) the largest deviation of f over
the pre-activation interval from its (tight) range at z_l(c)):

* pre-activations z_l(x) = z_l(c) + Z_l h + h^T Gamma_l h + zeta_l, |zeta_l| <= rho_l, with
  Z_{l+1} = W_{l+1} g Z_l, Gamma_{l+1} = W_{l+1} (g Gamma_l + k/2 Z_l (x) Z_l) and
  rho_{l+1} = |W_{l+1}| (R + |g| rho_l + |k|/2 (gamma_l + rho_l)(dz_l + omega_l)), where g = sigma'(z_l(c)),
  k = sigma''(z_l(c)) (0 for a first-order layer), R = dz^2 dev(sigma'') / 2 (first order: dz dev(sigma')),
  gamma_l = sum_jk |Gamma_l,jk| r_j r_k, omega_l = sum_j |Z_l,j| r_j; this uses
  |Delta^2 - (Z h)^2| <= |Delta - Z h| |Delta + Z h| for Delta = z_l(x) - z_l(c);
* slopes d_l(z_l(x)) = a_l + A_l h + h^T B_l h + e_l with a = d(z(c)), A = d'(z(c)) Z, B = d'(z(c)) Gamma +
  d''(z(c)) / 2 Z (x) Z and |e_l| <= eps_l by the same argument (R with d' and d'': the curvature ranges
  ``secant_derivative_range``, ``secant_second_derivative_range`` for A*, ``second_derivative_range``,
  ``third_derivative_range`` for J); the float coefficients are midpoints of their intervals, whose radii
  (times r) go into eps.

**The chain.** With D_l = P_l + Q_l + E_l (P_l = diag(a_l + A_l h) linear in h, Q_l = diag(h^T B_l h),
|E_l| <= diag(eps_l)), telescoping gives

    M(x) = M_c + sum_j h_j G_j + sum_{j,k} h_j h_k T_jk + sum_l Left^D_l E_l Right^P_l,
    T_jk = sum_{l<m} Left^P_m diag(A_m[:, j]) Mid_{m,l} diag(A_l[:, k]) Right_l
           + sum_l Left^D_l diag(B_l[:, j, k]) Right^P_l,

M_c = W_L diag(a_{L-1}) ... diag(a_0) W_0 + S and G_j = sum_l Left_l diag(A_l[:, j]) Right_l (float64 chains with
the centre slopes a; Mid_{m,l} the chain between layers l and m), Left^P / Right^P chains with slopes in the
ranges of P over the box and Left^D with the true slope ranges (so each T_jk lies in an interval matrix).
Hence, for p in {1, 2, inf},

    ||M(x)|| <= max over sign vectors v of ||M_c + sum_{j in V} v_j r_j G_j|| + sum_{j not in V} r_j ||G_j||
                + sum_{j<k} r_j r_k ||T_jk + T_kj|| + sum_j r_j^2 ||T_jj||
                + sum_l min(||Left^D_l diag(alpha)|| ||diag(beta) Right^P_l||, || |Left^D_l| diag(eps_l) |Right^P_l| ||)

(M_c + G h is affine in h and a norm is convex, so its max over the box is at a vertex; V: the ``vertex_dims``
coordinates with the largest r_j ||G_j||_F, the rest by the triangle inequality; alpha_i beta_i >= eps_l,i as in
:mod:`certify.bounds.centred`). The quadratic terms are exact matrices (every correlation between neurons kept)
and eps is third order (second order for first-order layers), so on small boxes the bound exceeds the sup of
||M|| over the box by O(width^2) and its quadratic part is close to the true curvature of M, against O(width)
for the interval matrix and :mod:`certify.bounds.centred`.

Rounding: float64 chains are padded by ``CHAIN_PAD`` times their absolute-value chains (entrywise, collected in
one remainder matrix whose norm is bounded by ``abs_norm_upper``), interval products in midpoint-radius form
padded the same way, midpoints and radii by :func:`certify.ir.numerics.midpoints`, vectors of remainders pushed
through |W| by ``dot_pad``, the vertex sums by 4 (m + 2) eps of the absolute values summed, r rounded up; every
norm goes through :func:`certify.ir.numerics.norm_upper`, ``interval_norm_upper``, ``abs_norm_upper`` or
:func:`_entrywise_norm_upper`. An overflowed (non-finite) pre-activation bound gives that box no bound (inf).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..ir.network import Network
from ..ir.numerics import (
    CHAIN_PAD,
    EPS,
    NORM_PAD,
    TINY,
    abs_norm_upper,
    dot_pad,
    interval_norm_upper,
    matmul_interval_left,
    midpoints,
    norm_upper,
    overflow_to_inf,
    scale_rows,
)
from ..ir.quantity import Quantity
from .centred import balanced_factors, left_intervals
from .slopes import interval_preactivations, preactivation_bounds

VERTEX_DIMS = 6  # coordinates enumerated at the vertices (at most 2^6 matrices per box); the others by the triangle
_ROUND = 1.0 + 64 * EPS  # relative cover for the rounding of a handful of float64 sums and products of non-negatives


def applies(net: Network, quantity) -> bool:
    """Whether the form is valid for the net and quantity: every hidden activation's slope function (secant for
    A*, derivative for J) is Lipschitz continuous."""
    q = Quantity.coerce(quantity)
    return all(layer.activation.lipschitz_secant if q is Quantity.A_STAR else layer.activation.lipschitz_derivative
               for layer in net.layers)


# ============================================================================================ small helpers
def _entrywise_norm_upper(u: np.ndarray, p: float) -> np.ndarray:
    """Sound upper bound on ||M||_p over every M with |M| <= u (u >= 0, (..., k, n)), without an SVD: the largest
    column (p = 1) or row (p = inf) sum of u, and for p = 2 min(||u||_F, sqrt(||u||_1 ||u||_inf)) (both bound
    || |M| ||_2 >= ||M||_2). Sums of k n non-negative terms err by at most k n eps relative: padded by
    ``NORM_PAD`` (1 + k n)."""
    k, n = u.shape[-2:]
    cols, rows = u.sum(axis=-2).max(axis=-1), u.sum(axis=-1).max(axis=-1)
    if p == 1.0:
        out = cols
    elif p == np.inf:
        out = rows
    else:
        out = np.minimum(np.sqrt(np.einsum("...kn,...kn->...", u, u)), np.sqrt(cols * rows))
    return out * (1.0 + NORM_PAD * (1 + k * n)) + TINY


def _interval_chain(mats, ranges, columns: int, b: int):
    """Padded enclosures of mats[l] diag(range_{l-1}) ... diag(range_0) mats[0][:, :columns], l = 0 .. len(ranges),
    right to left: list of (lo, hi), each (B, n_{l+1}, columns)."""
    w0 = mats[0][:, :columns]
    lo = np.broadcast_to(w0, (b,) + w0.shape)
    hi = lo
    mag = np.broadcast_to(np.abs(w0), lo.shape)
    out = [(lo, hi)]
    for (sl, sh), w in zip(ranges, mats[1:]):
        aw = np.abs(w)
        lo, hi = scale_rows(lo, hi, sl, sh)
        lo, hi = matmul_interval_left(w, aw, lo, hi)
        mag = np.matmul(aw, np.maximum(np.abs(sl), np.abs(sh))[:, :, None] * mag)
        pad = CHAIN_PAD * mag + TINY
        lo, hi = lo - pad, hi + pad
        out.append((lo, hi))
    return out


def _deviation(box_range, at_centre):
    """Largest |v - g| over v in the box range and g in the (tight) range at the centre, rounded up."""
    (blo, bhi), (clo, chi) = box_range, at_centre
    return np.maximum(bhi - clo, chi - blo) * _ROUND


def _mag(rng):
    return np.maximum(np.abs(rng[0]), np.abs(rng[1]))


def _times(x_mid, x_rad, rng):
    """(midpoint, radius) of [rng] * [x_mid +- x_rad] for a (B, n) range broadcast along x's trailing axes."""
    gm, gr = midpoints(*rng)
    shape = gm.shape + (1,) * (x_mid.ndim - gm.ndim)
    gm, gr = gm.reshape(shape), gr.reshape(shape)
    mid = gm * x_mid
    rad = np.abs(gm) * x_rad + gr * (np.abs(x_mid) + x_rad) + 2 * EPS * np.abs(mid)
    return mid, rad * _ROUND + TINY


def _left_mul(w, mid, rad):
    """(midpoint, radius) of W [mid +- rad] along the neuron axis 1 of (B, n, ...) arrays, padded for rounding."""
    b, n = mid.shape[:2]
    m2, r2 = mid.reshape(b, n, -1), rad.reshape(b, n, -1)
    aw = np.abs(w)
    out = np.matmul(w, m2)
    orad = np.matmul(aw, r2) + dot_pad(n) * np.matmul(aw, np.abs(m2) + r2) + TINY
    return out.reshape((b, w.shape[0]) + mid.shape[2:]), orad.reshape((b, w.shape[0]) + mid.shape[2:])


def _float_chains(mats, a, cols: int):
    """Chains with the centre slopes a_l (B, n_l): rights[l] = W_l diag(a_{l-1}) ... W_0[:, :cols] (B, n_l, cols),
    lefts[l] = W_L diag(a_{L-1}) ... W_{l+1} (B, k, n_l), the full chain (B, k, cols), with their absolute-value
    chains (same shapes) for the rounding pads."""
    b = a[0].shape[0]
    w0 = mats[0][:, :cols]
    r = np.broadcast_to(w0, (b,) + w0.shape)
    rm = np.broadcast_to(np.abs(w0), r.shape)
    rights, rmags = [r], [rm]
    for l in range(1, len(mats)):
        r = np.matmul(mats[l], a[l - 1][:, :, None] * r)
        rm = np.matmul(np.abs(mats[l]), np.abs(a[l - 1])[:, :, None] * rm)
        rights.append(r)
        rmags.append(rm)
    wl = mats[-1]
    left = np.broadcast_to(wl, (b,) + wl.shape)
    lm = np.broadcast_to(np.abs(wl), left.shape)
    lefts, lmags = [None] * len(a), [None] * len(a)
    lefts[-1], lmags[-1] = left, lm
    for l in range(len(a) - 1, 0, -1):
        left = np.matmul(left * a[l][:, None, :], mats[l])
        lm = np.matmul(lm * np.abs(a[l])[:, None, :], np.abs(mats[l]))
        lefts[l - 1], lmags[l - 1] = left, lm
    return rights[:-1], rmags[:-1], lefts, lmags, rights[-1], rmags[-1]


def _pair_products(left, coefs, right):
    """T[b, j, k] = [Left] diag(coefs[b, :, j, k]) [Right] for interval matrices [Left] (B, kout, n) and [Right]
    (B, n, cols) (each (lo, hi)) and float coefficients (B, n, nj, nk): (centre (B, nj, nk, kout, cols), radius),
    every member within centre +- radius. Midpoint-radius: Lc (v Rc) +- (|Lc| (|v| Rr) + Lr (|v| (|Rc| + Rr))),
    the rounding covered by ``CHAIN_PAD`` times the same products of absolute values; two batched products of
    (B, kout, n) (or (B, kout, 2n)) by (B, n, nj nk cols)."""
    (llo, lhi), (rlo, rhi) = left, right
    b, kout, n = llo.shape
    nj, nk, cols = coefs.shape[2], coefs.shape[3], rlo.shape[2]
    lc, lr = 0.5 * (llo + lhi), 0.5 * (lhi - llo)
    rc, rr = 0.5 * (rlo + rhi), 0.5 * (rhi - rlo)
    v = coefs.reshape(b, n, nj * nk, 1)
    av = np.abs(v)
    rabs = np.abs(rc) + rr
    vr = (v * rc[:, :, None, :]).reshape(b, n, -1)  # (B, n, jk cols)
    near = (av * (rr + CHAIN_PAD * rabs)[:, :, None, :]).reshape(b, n, -1)
    far = (av * rabs[:, :, None, :]).reshape(b, n, -1)
    centre = np.matmul(lc, vr)
    rad = np.matmul(np.concatenate([np.abs(lc), lr * (1.0 + CHAIN_PAD)], axis=2), np.concatenate([near, far], axis=1))
    rad = rad + CHAIN_PAD * np.matmul(np.abs(lc), far) + TINY

    def shaped(x):  # (B, kout, jk cols) -> (B, j, k, kout, cols)
        return np.moveaxis(x.reshape(b, kout, nj, nk, cols), 1, 3)

    return shaped(centre), shaped(rad)


def _cross_products(left, coef, y, ym):
    """T[b, j, k] = [Left] diag(coef[b, :, j]) Y[b, k] for an interval [Left] (B, kout, n), float coefficients
    (B, n, n_in) and float matrices Y (B, n_in, n, cols) with absolute-value chains ``ym``: (T (B, j, k, kout,
    cols), radius) with every member within T +- radius (rounding of Y and of the products covered by
    ``CHAIN_PAD`` times the absolute-value chain). Three batched products of (B, n_in kout, n) by (B, n, n_in cols)."""
    llo, lhi = left
    b, kout, n = llo.shape
    n_in, cols = coef.shape[2], y.shape[3]
    lc, lr = 0.5 * (llo + lhi), 0.5 * (lhi - llo)
    ct, act = np.swapaxes(coef, 1, 2)[:, :, None, :], np.abs(np.swapaxes(coef, 1, 2))[:, :, None, :]

    def prod(lhs, rhs):  # (B, j, kout, n) x (B, k, n, cols) -> (B, j, k, kout, cols)
        out = np.matmul(lhs.reshape(b, n_in * kout, n), np.moveaxis(rhs, 1, 2).reshape(b, n, n_in * cols))
        return np.moveaxis(out.reshape(b, n_in, kout, n_in, cols), 3, 2)

    t = prod(lc[:, None] * ct, y)
    rad = prod(lr[:, None] * act, np.abs(y)) + CHAIN_PAD * prod((np.abs(lc) + lr)[:, None] * act, ym) + TINY
    return t, rad


# ============================================================================================ the models
class _Ranges:
    """The activation ranges one layer needs, over the box and (tight) at the centre (module docstring)."""

    def __init__(self, act, quantity: Quantity, box, centre, second: bool) -> None:
        a_star = quantity is Quantity.A_STAR
        d, d1, d2 = (("secant_range", "secant_derivative_range", "secant_second_derivative_range") if a_star else
                     ("derivative_range", "second_derivative_range", "third_derivative_range"))
        self.slope_box = getattr(act, d)(*box)
        self.slope_c = getattr(act, d)(*centre)
        self.slope1_c = getattr(act, d1)(*centre)
        # sigma' at the centre (and below, sigma'' there and the ranges over the box): for J (d = sigma') the
        # slope's own ranges, computed once
        self.g_c = act.derivative_range(*centre) if a_star else self.slope_c
        if second:  # the remainders use the next derivative's deviation
            self.slope2_c = getattr(act, d2)(*centre)
            self.slope_dev = _deviation(getattr(act, d2)(*box), self.slope2_c)
            self.k_c = act.second_derivative_range(*centre) if a_star else self.slope1_c
            self.value_dev = _deviation(act.second_derivative_range(*box), self.k_c)
        else:
            self.slope2_c = self.k_c = None
            self.slope_dev = _deviation(getattr(act, d1)(*box), self.slope1_c)
            self.value_dev = _deviation(act.derivative_range(*box) if a_star else self.slope_box, self.g_c)


def _refine(pre, centre, z_mid, z_rad, gam_mid, gam_rad, rho, r):
    """Pre-activation bounds (B, n) intersected with the range of the model z(c) + Z h + h^T Gamma h + zeta over
    the box: per coordinate the exact range of Z_j h_j + Gamma_jj h_j^2 (ends and vertex), the mixed terms by
    |Gamma_jk + Gamma_kj| r_j r_k, the radii of Z and Gamma and rho added, every sum rounded outward. Where the
    model overflows (NaN) the bounds stay as they are (fmax / fmin)."""
    (zl, zu), (cl, cu) = pre, centre
    zm = z_mid
    if gam_mid is None:
        spread = np.einsum("bij,bj->bi", np.abs(zm) + z_rad, r) * _ROUND + rho
        return np.fmax(zl, cl - spread), np.fmin(zu, cu + spread)
    gd = np.diagonal(gam_mid, axis1=2, axis2=3)  # (B, n, n_in)
    rj = r[:, None, :]
    ends = np.stack([-zm * rj + gd * rj * rj, zm * rj + gd * rj * rj])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(gd != 0, -zm / (2 * gd), np.inf)
    inside = np.abs(t) < rj
    vertex = np.where(inside, zm * t + gd * t * t, 0.0)
    lo_j = np.minimum(ends.min(axis=0), np.where(inside, vertex, np.inf))
    hi_j = np.maximum(ends.max(axis=0), np.where(inside, vertex, -np.inf))
    mixed = np.abs(gam_mid + np.swapaxes(gam_mid, 2, 3))
    rr = r[:, :, None] * r[:, None, :]
    off = 0.5 * (np.einsum("bijk,bjk->bi", mixed, rr) - np.einsum("bijj,bjj->bi", mixed, rr))
    rad = np.einsum("bij,bj->bi", z_rad, r) + np.einsum("bijk,bjk->bi", gam_rad, rr)
    slack = (off + rad) * _ROUND + rho + 4 * EPS * (np.abs(lo_j) + np.abs(hi_j)).sum(axis=2) + TINY
    return (np.fmax(zl, cl + lo_j.sum(axis=2) - slack), np.fmin(zu, cu + hi_j.sum(axis=2) + slack))


def _quadratic_term(k_rng, z_mid, z_rad):
    """(midpoint, radius) of k / 2 Z (x) Z, (B, n, n_in, n_in), for a range k (B, n) and [Z] (B, n, n_in)."""
    zz = z_mid[:, :, :, None] * z_mid[:, :, None, :]
    zz_rad = (np.abs(z_mid)[:, :, :, None] * z_rad[:, :, None, :] + z_rad[:, :, :, None] * np.abs(z_mid)[:, :, None, :]
              + z_rad[:, :, :, None] * z_rad[:, :, None, :] + 2 * EPS * np.abs(zz))
    return _times(0.5 * zz, 0.5 * zz_rad, k_rng)


@overflow_to_inf
def second_order_bound(net: Network, lo: np.ndarray, hi: np.ndarray, quantity, p: float, mats=None, skip=None,
                       cols: int | None = None, vertex_dims: int = VERTEX_DIMS) -> np.ndarray:
    """Sound upper bound (B,) on sup ||M(x)||_p over each box [lo_b, hi_b] (``lo``/``hi`` (B, n_in)) by the
    second-order form of the module docstring, p in {1, 2, inf}; inf where it does not apply (:func:`applies`) or
    overflows. ``mats``/``skip``: the chain W_0 .. W_L and S in place of the net's (a metric's conjugated chain,
    :meth:`certify.ir.metric.Metric.conjugated_chain`); ``cols``: the columns of M (default: all of mats[0]'s)."""
    b, n_in = lo.shape
    q = Quantity.coerce(quantity)
    if not net.layers or not applies(net, q):
        return np.full(b, np.inf)
    if mats is None:
        mats, skip = [layer.weight for layer in net.layers] + [net.out_weight], net.skip
    mats = list(mats)
    cols = mats[0].shape[1] if cols is None else cols

    c = 0.5 * (lo + hi)
    r = np.maximum(hi - c, c - lo) * _ROUND
    rr = r[:, :, None] * r[:, None, :] * _ROUND  # (B, n_in, n_in)
    pre = preactivation_bounds(net, lo, hi)
    at_c = interval_preactivations(net, c, c)
    ok = np.ones(b, dtype=bool)  # an overflowed (non-finite) pre-activation bound: that box gets no bound
    for zl, zu in pre + at_c:
        ok &= np.isfinite(zl).all(axis=1) & np.isfinite(zu).all(axis=1)
    if not ok.all():
        pre = [(np.where(ok[:, None], zl, 0.0), np.where(ok[:, None], zu, 0.0)) for zl, zu in pre]
        at_c = [(np.where(ok[:, None], zl, 0.0), np.where(ok[:, None], zu, 0.0)) for zl, zu in at_c]

    # ---- per-neuron models: pre-activations (Z, Gamma, rho) and slopes (a, A, B, eps)
    z_mid = np.broadcast_to(net.layers[0].weight, (b,) + net.layers[0].weight.shape)
    z_rad = np.zeros(z_mid.shape)
    gam_mid = gam_rad = None  # Gamma_0 = 0
    rho = np.zeros(pre[0][0].shape)
    a, coef, quad, eps, p_ranges, slopes_box = [], [], [], [], [], []
    for l, layer in enumerate(net.layers):
        act = layer.activation
        second = act.smooth
        if l:
            pre[l] = _refine(pre[l], at_c[l], z_mid, z_rad, gam_mid, gam_rad, rho, r)
        rng = _Ranges(act, q, pre[l], at_c[l], second)
        (zl, zu), (cl, cu) = pre[l], at_c[l]
        dz = np.maximum(zu - cl, cu - zl) * _ROUND
        omega = np.einsum("bij,bj->bi", np.abs(z_mid) + z_rad, r) * _ROUND
        gamma = (np.zeros_like(dz) if gam_mid is None else
                 np.einsum("bijk,bjk->bi", np.abs(gam_mid) + gam_rad, rr) * _ROUND)
        # slopes: a + A h + h^T B h + e
        a_l, a_rad = midpoints(*rng.slope_c)
        a_mid_coef, a_rad_coef = _times(z_mid, z_rad, rng.slope1_c)  # d' Z
        b_mid, b_rad = (np.zeros((b,) + z_mid.shape[1:] + (n_in,)),) * 2
        if gam_mid is not None:
            b_mid, b_rad = _times(gam_mid, gam_rad, rng.slope1_c)  # d' Gamma
        if second:
            qm, qr = _quadratic_term(rng.slope2_c, z_mid, z_rad)
            b_mid, b_rad = b_mid + qm, b_rad + qr + 2 * EPS * np.abs(b_mid + qm)
        rem = dz * dz * 0.5 * rng.slope_dev if second else dz * rng.slope_dev
        e = (a_rad + rem + _mag(rng.slope1_c) * rho + np.einsum("bij,bj->bi", a_rad_coef, r)
             + np.einsum("bijk,bjk->bi", b_rad, rr))
        if second:
            e = e + 0.5 * _mag(rng.slope2_c) * (gamma + rho) * (dz + omega)
        eps.append(e * _ROUND + TINY)
        a.append(a_l)
        coef.append(a_mid_coef)
        quad.append(b_mid)
        slopes_box.append(rng.slope_box)
        spread = np.einsum("bij,bj->bi", np.abs(a_mid_coef), r) * _ROUND + TINY
        p_ranges.append((a_l - spread - 2 * EPS * np.abs(a_l), a_l + spread + 2 * EPS * np.abs(a_l)))
        if l + 1 == len(net.layers):
            break
        # pre-activations of the next layer: W (g Z), W (g Gamma + k/2 Z (x) Z), rho
        w = net.layers[l + 1].weight
        tz_mid, tz_rad = _times(z_mid, z_rad, rng.g_c)
        tg_mid, tg_rad = (None, None) if gam_mid is None else _times(gam_mid, gam_rad, rng.g_c)
        if second:
            qm, qr = _quadratic_term(rng.k_c, z_mid, z_rad)
            tg_mid, tg_rad = (qm, qr) if tg_mid is None else (tg_mid + qm, tg_rad + qr + 2 * EPS * np.abs(tg_mid + qm))
        rem = dz * dz * 0.5 * rng.value_dev if second else dz * rng.value_dev
        tau = rem + _mag(rng.g_c) * rho
        if second:
            tau = tau + 0.5 * _mag(rng.k_c) * (gamma + rho) * (dz + omega)
        rho = (tau @ np.abs(w).T) * (1.0 + dot_pad(w.shape[1])) + TINY
        z_mid, z_rad = _left_mul(w, tz_mid, tz_rad)
        if tg_mid is not None:
            gam_mid, gam_rad = _left_mul(w, tg_mid, tg_rad)

    # ---- the centre chain M_c and the linear terms G_j, with their rounding
    rights, rmags, lefts, lmags, mc, mc_mag = _float_chains(mats, a, cols)
    resid = CHAIN_PAD * mc_mag + TINY  # entrywise rounding of everything summed into the vertex matrices
    if skip is not None:
        s = skip[:, :cols]
        resid = resid + 1e-15 * (np.abs(mc) + np.abs(s))
        mc = mc + s
    g = np.zeros((b, n_in) + mc.shape[1:])
    for left, lmag, right, rmag, a_coef in zip(lefts, lmags, rights, rmags, coef):
        # Left_l diag(A_l[:, j]) Right_l for every j at once: (B, n_in, k, cols)
        g = g + np.matmul(left[:, None] * np.swapaxes(a_coef, 1, 2)[:, :, None, :], right[:, None])
        gmag = np.matmul(lmag[:, None] * np.swapaxes(np.abs(a_coef), 1, 2)[:, :, None, :], rmag[:, None])
        resid = resid + np.einsum("bj,bjkc->bkc", r, CHAIN_PAD * gmag + 2 * EPS * np.abs(g))
    rg = r[:, :, None, None] * g  # (B, n_in, k, cols)
    m = min(n_in, max(int(vertex_dims), 0))
    order = np.argsort(-np.sqrt(np.einsum("bjkc,bjkc->bj", rg, rg)), axis=1)
    pick, rest = order[:, :m], order[:, m:]
    vsel = np.take_along_axis(rg, pick[:, :, None, None], axis=1)  # (B, m, k, cols)
    resid = resid + 4 * (m + 2) * EPS * (np.abs(mc) + np.abs(vsel).sum(axis=1))
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=m)), dtype=np.float64).reshape(2**m, m)
    verts = mc[:, None] + np.einsum("vm,bmkc->bvkc", signs, vsel)  # (B, 2^m, k, cols)
    total = norm_upper(verts.reshape((-1,) + verts.shape[2:]), p).reshape(b, -1).max(axis=1)
    if rest.shape[1]:
        vrest = np.take_along_axis(rg, rest[:, :, None, None], axis=1)
        total = total + norm_upper(vrest.reshape((-1,) + vrest.shape[2:]), p).reshape(b, -1).sum(axis=1) * _ROUND

    # ---- quadratic terms: the coefficient T_jk of h_j h_k as an interval (centre, radius)
    tmax_d = [_mag(s) for s in slopes_box]
    lefts_d = left_intervals(mats, slopes_box, tmax_d, b)  # Left^D_l
    rights_p = _interval_chain(mats[:-1], p_ranges[:-1], cols, b)  # Right^P_l
    t_c = np.zeros((b, n_in, n_in) + mc.shape[1:])
    t_r = np.zeros(t_c.shape)
    for left, right, b_mid in zip(lefts_d, rights_p, quad):
        if np.any(b_mid):
            tc, tr = _pair_products(left, b_mid, right)
            t_c, t_r = t_c + tc, t_r + tr + 2 * EPS * np.abs(t_c + tc)
    n_hidden = len(a)
    if n_hidden > 1:
        lefts_p = left_intervals(mats, p_ranges, [_mag(pr) for pr in p_ranges], b)  # Left^P_m
        for l in range(n_hidden - 1):
            # Y_k = diag(A_l[:, k]) Right_l, pushed up through Mid_{m,l} one layer at a time
            y = np.swapaxes(coef[l], 1, 2)[:, :, :, None] * rights[l][:, None]  # (B, n_in, n_l, cols)
            ym = np.swapaxes(np.abs(coef[l]), 1, 2)[:, :, :, None] * rmags[l][:, None]
            for mm in range(l + 1, n_hidden):
                w = mats[mm]
                y, ym = np.matmul(w, y), np.matmul(np.abs(w), ym)  # Mid_{mm,l} diag(A_l[:, k]) Right_l
                tc, tr = _cross_products(lefts_p[mm], coef[mm], y, ym)  # (B, j, k, kout, cols)
                t_c, t_r = t_c + tc, t_r + tr + 2 * EPS * np.abs(t_c + tc)
                if mm + 1 < n_hidden:  # carry the centre slopes of layer mm for the next Mid
                    y, ym = a[mm][:, None, :, None] * y, np.abs(a[mm])[:, None, :, None] * ym
    # h_j h_k (T_jk + T_kj) for j < k and h_j^2 T_jj: one norm per unordered pair
    upper = np.triu(np.ones((n_in, n_in)), 1)
    pair = np.abs(t_c + np.swapaxes(t_c, 1, 2)) * _ROUND + t_r + np.swapaxes(t_r, 1, 2)
    diag = np.moveaxis(np.abs(np.diagonal(t_c, axis1=1, axis2=2)) + np.diagonal(t_r, axis1=1, axis2=2), -1, 1)
    quad_bound = np.einsum("bjk,jk,bjk->b", rr, upper, _entrywise_norm_upper(pair, p))
    quad_bound = quad_bound + np.einsum("bjj,bj->b", rr, _entrywise_norm_upper(diag, p))
    total = total + quad_bound * (1.0 + 4 * (n_in * n_in + 4) * EPS)

    # ---- remainder terms sum_l Left^D_l E_l Right^P_l, |E_l| <= diag(eps_l)
    for (llo, lhi), (rlo, rhi), e in zip(lefts_d, rights_p, eps):
        labs = np.maximum(np.abs(llo), np.abs(lhi))
        rabs = np.maximum(np.abs(rlo), np.abs(rhi))
        alpha, beta = balanced_factors(e, labs, rabs)
        split = interval_norm_upper(llo * alpha[:, None, :], lhi * alpha[:, None, :], p)
        split = split * interval_norm_upper(rlo * beta[:, :, None], rhi * beta[:, :, None], p)
        absolute = abs_norm_upper(np.matmul(labs * e[:, None, :], rabs), p) * (1.0 + dot_pad(e.shape[1]))
        total = total + np.minimum(split, absolute) * (1.0 + 1e-12)

    total = (total + abs_norm_upper(resid * _ROUND, p)) * (1.0 + 4 * (n_in + 8) * EPS)
    return np.where(np.isnan(total) | ~ok, np.inf, total)
