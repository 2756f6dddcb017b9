"""Upper bounds on sup ||M||_p over each of a batch of sub-boxes (M = A*(x) or J(x), any activation).

With the slope ranges of :mod:`certify.bounds.slopes` on a sub-box, every M is W_L D_{L-1} ... D_0 W_0 + S with D_l
within the ranges. The bound kinds (:class:`BoundKind`), each sound for every x in the sub-box:

* ``INTERVAL``: the interval matrix of :func:`certify.bounds.slopes.matrix_enclosure`; with |M| <= U entrywise,
  ||M|| <= ||U|| (:func:`certify.ir.numerics.interval_norm_upper`, which for p = 2 also uses the centre and radius);
* ``CENTRED``: :func:`certify.bounds.centred.centred_bound` (midpoint slopes plus telescoped perturbations);
* ``PRODUCT``: Corollary 4 with the slope maxima of each sub-box (:mod:`certify.bounds.corollary4`);
* ``SCALED``: the same product after splitting each D_l = T_l^(1/2) E_l T_l^(1/2) (T_l = diag(max |slope|),
  ||E_l||_p <= 1), never above ``PRODUCT``;
* ``SECOND_ORDER``: :func:`certify.bounds.second_order.second_order_bound` (per-neuron Taylor models: exceeds the sup
  by O(width^2) on small boxes; inf where an activation's slope function is not Lipschitz);
* ``SDP``: the LipSDP bound over the sub-box (an engine, :mod:`certify.engines.lipsdp`; not computed here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import BoundKind
from ..errors import UsageError
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.numerics import check_norm, interval_norm_upper, norm_upper, overflow_to_inf, product_pad
from ..ir.quantity import Quantity
from .centred import centred_bound
from .corollary4 import product_bound
from .second_order import second_order_bound
from .slopes import matrix_enclosure, slope_ranges

DEFAULT_BOUNDS = (BoundKind.INTERVAL, BoundKind.CENTRED)


@dataclass(frozen=True, eq=False)
class SupNormBounder:
    """Per-net data shared by every sub-box: the chain's matrices (state columns first, conjugated by a metric when
    one is given), their norms, the skip and ||S||, split sensitivities, and, with a metric
    (:mod:`certify.ir.metric`), the allowance for its float64 ends that every bound adds and the float64 inverse
    factor that every bound is then multiplied by (both computed over the whole box, so valid on every sub-box)."""

    net: Network
    p: float
    quantity: Quantity
    cols: int
    mats: tuple[np.ndarray, ...]
    weight_norms: tuple[float, ...]
    skip_norm: float
    sensitivity: np.ndarray
    mats_full: tuple[np.ndarray, ...]
    skip: np.ndarray | None = None
    factor: float = 1.0
    allowance: float = 0.0

    @staticmethod
    def of(net: Network, box: Box, p: float, quantity: Quantity, state_only: bool,
           metric: Metric | None = None) -> "SupNormBounder":
        cols = net.n_states if state_only else net.n_in
        pb = product_bound(net, box, p, quantity, state_only)
        first = net.layers[0].weight if net.layers else net.out_weight
        sens = np.abs(first).sum(axis=0) + 1e-300
        if metric is not None and not metric.is_identity:
            chain, skip = metric.conjugated_chain(net)
            conj = product_bound(net, box, p, quantity, state_only, metric)
            allowance = metric.end_allowance(net, conj.slope_maxima)  # the float64 ends (every sub-box inside)
            return SupNormBounder(net, p, quantity, cols, tuple(chain), conj.weight_norms, conj.skip_norm, sens,
                                  tuple(chain), skip, metric.upper_factor, allowance)
        mats = [layer.weight for layer in net.layers] + [net.out_weight]
        mats[0] = mats[0][:, :cols]
        full = tuple([layer.weight for layer in net.layers] + [net.out_weight])
        return SupNormBounder(net, p, quantity, cols, tuple(mats), pb.weight_norms, pb.skip_norm, sens, full,
                              net.skip)


@overflow_to_inf
def box_bounds(st: SupNormBounder, lo: np.ndarray, hi: np.ndarray, kinds) -> dict[BoundKind, np.ndarray]:
    """Every requested (non-SDP) upper bound on sup ||Q(x)||_p over each of B boxes ``lo``/``hi`` (B, n_in)."""
    out = _box_bounds(st, lo, hi, kinds)
    if st.factor == 1.0 and st.allowance == 0.0:
        return out
    return {k: (v + st.allowance) * st.factor * product_pad(1) for k, v in out.items()}


def _box_bounds(st: SupNormBounder, lo: np.ndarray, hi: np.ndarray, kinds) -> dict[BoundKind, np.ndarray]:
    net, p = st.net, st.p
    out: dict[BoundKind, np.ndarray] = {}
    if not net.layers:
        m = st.mats[0][:, : st.cols] + (0 if st.skip is None else st.skip[:, : st.cols])
        v = norm_upper(m, p)
        return {k: np.full(lo.shape[0], v) for k in kinds if k is not BoundKind.SDP}
    slopes = slope_ranges(net, lo, hi, st.quantity)
    tmax = [np.maximum(np.abs(sl), np.abs(sh)) for sl, sh in slopes]
    if BoundKind.INTERVAL in kinds:
        mlo, mhi = matrix_enclosure(net, slopes, st.cols, st.mats_full, st.skip)
        out[BoundKind.INTERVAL] = interval_norm_upper(mlo, mhi, p)
    if BoundKind.CENTRED in kinds:
        out[BoundKind.CENTRED] = centred_bound(st.mats_full, slopes, st.skip, st.cols, p)
    if BoundKind.SECOND_ORDER in kinds:
        out[BoundKind.SECOND_ORDER] = second_order_bound(net, lo, hi, st.quantity, p, st.mats_full, st.skip, st.cols)
    if BoundKind.PRODUCT in kinds:
        # the formula of certify.bounds.corollary4.product_bound, with the slope maxima of each box
        v = float(np.prod(st.weight_norms)) * np.prod(np.stack([t.max(axis=1) for t in tmax]), axis=0)
        v = v * product_pad(len(st.weight_norms) + len(tmax))
        out[BoundKind.PRODUCT] = (v + st.skip_norm) * product_pad(1) if st.skip is not None else v
    if BoundKind.SCALED in kinds:
        roots = [np.sqrt(t) for t in tmax]
        v = norm_upper(roots[0][:, :, None] * st.mats[0][None], p)
        for l in range(1, len(st.mats) - 1):
            v = v * norm_upper(roots[l][:, :, None] * st.mats[l][None] * roots[l - 1][:, None, :], p)
        v = v * norm_upper(st.mats[-1][None] * roots[-1][:, None, :], p)
        v = v * product_pad(len(st.mats))
        out[BoundKind.SCALED] = (v + st.skip_norm) * product_pad(1) if st.skip is not None else v
    return out


def sup_norm_bound(net: Network, box: Box, p: float = 2.0, quantity="A_STAR", state_only: bool = True,
                   kinds=DEFAULT_BOUNDS, metric: Metric | None = None) -> float:
    """A sound upper bound on sup over the box of ||A*(x)||_p or ||J(x)||_p (with a metric: ||T M T^{-1}||_2)
    from one box (no splitting, no SDP)."""
    p = check_query(net, box, p)
    st = SupNormBounder.of(net, box, p, Quantity.coerce(quantity), state_only, metric)
    kinds = tuple(k for k in kinds if k is not BoundKind.SDP) or DEFAULT_BOUNDS
    b = box_bounds(st, box.lower[None], box.upper[None], kinds)
    return float(min(v[0] for v in b.values()))


def check_query(net: Network, box: Box, p: float) -> float:
    """p as a float after checking it and that the box fits the net (UsageError otherwise)."""
    p = check_norm(p)
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the net takes {net.n_in} inputs")
    return p
