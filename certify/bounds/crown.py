"""CROWN/DeepPoly bounds: back-substitution of linear relaxations, over a box or a polytope cut from it.

* :func:`chain_bounds`: pre-activation bounds of a chain that may start mid-network (an exact affine map in x),
  with neurons fixed to one linear piece relaxed exactly (the region search's nodes);
* :func:`symbolic_bounds`: the same for a whole :class:`~certify.ir.network.Network` over a box;
* :func:`box_bounds` (with :func:`box_layer_bounds`, :func:`box_row_bounds`, :func:`relax_layer`,
  :func:`back_substitute`): the same for B sub-boxes at once, for objectives rows @ f(x) + consts, with
  optional per-objective slopes of the free lines (alpha-CROWN's variables; no optimiser yet) and optional neuron
  splits; the rounding pads come once per box from :func:`crown_pads`.

Every bound is intersected with plain interval arithmetic (so never looser) and padded by ``CHAIN_PAD`` times the
same back-substitution in absolute values (rounding of the chain of products).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..ir.activations import Activation, ActivationKind
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import CHAIN_PAD, TINY, affine_interval, dot_pad, midpoints
from ..ir.pieces import Pieces, pieces
from .interval import LayerBounds


# ===================================================================== symbolic (CROWN / DeepPoly) bounds
def _relaxation(act: Activation, pcs: Pieces | None, lo: np.ndarray, hi: np.ndarray):
    """Per-neuron linear bounds  al z + bl <= sigma(z) <= au z + bu  valid for z in [lo, hi]; four (n,) arrays.

    Exact where [lo, hi] lies in one linear piece (fixed neurons); for ReLU-type neurons crossing 0 the chord
    above and a line through the origin below (convex case, negative slope <= 1; swapped when concave); otherwise
    the constant bounds of ``value_range`` (sound for any activation).
    """
    n = lo.shape[0]
    vlo, vhi = (act.value_range if pcs is None else pcs.value_range)(lo, np.maximum(lo, hi))
    al, bl, au, bu = np.zeros(n), vlo.copy(), np.zeros(n), vhi.copy()
    if pcs is None:
        return al, bl, au, bu
    over = pcs.overlapping(lo, hi)
    single = over.sum(axis=1) == 1
    if single.any():
        j = np.argmax(over, axis=1)
        idx = np.nonzero(single)[0]
        s, o = pcs.slope[idx, j[idx]], pcs.offset[idx, j[idx]]
        al[idx], bl[idx], au[idx], bu[idx] = s, o, s, o
    if act.kind in (ActivationKind.RELU, ActivationKind.LEAKY_RELU, ActivationKind.PRELU):
        idx = np.nonzero(~single & (lo < 0) & (hi > 0))[0]
        if idx.size:
            neg = pcs.slope[idx, 0]
            l, u = lo[idx], hi[idx]
            chord = (u - neg * l) / (u - l)
            chord_b = neg * l - chord * l
            tangent = np.where(u >= -l, 1.0, neg)
            convex = neg <= 1.0
            al[idx] = np.where(convex, tangent, chord)
            bl[idx] = np.where(convex, 0.0, chord_b)
            au[idx] = np.where(convex, chord, tangent)
            bu[idx] = np.where(convex, chord_b, 0.0)
    return al, bl, au, bu


def _over_polytope(polytope, pcs: Pieces, fixed, lo, hi, lines, pad):
    """Tighten [lo, hi] ((n,) each) of the free neurons that meet several pieces: the end nearer to a breakpoint
    inside the interval is re-concretised over the polytope (``polytope(costs)``: sound lower bounds of
    min costs @ x). ``lines`` = (cl, dl, cu, du): cl x + dl <= z <= cu x + du on the polytope, up to ``pad`` (n,)
    (the rounding of the lines' float64 coefficients, as in :func:`chain_bounds`)."""
    cl, dl, cu, du = lines
    bps = pcs.breakpoints
    if bps.shape[1] == 0:
        return lo, hi
    inside = (bps > lo[:, None]) & (bps < hi[:, None])
    todo = inside.any(axis=1)
    if fixed is not None:
        todo &= fixed < 0
    idx = np.nonzero(todo)[0]
    if idx.size == 0:
        return lo, hi
    first = np.where(inside[idx], bps[idx], np.inf).min(axis=1)  # lowest breakpoint inside
    last = np.where(inside[idx], bps[idx], -np.inf).max(axis=1)  # highest breakpoint inside
    low_side = (first - lo[idx]) <= (hi[idx] - last)
    costs = np.where(low_side[:, None], cl[idx], -cu[idx])
    consts = np.where(low_side, dl[idx], -du[idx])
    with np.errstate(invalid="ignore", over="ignore"):
        bound = polytope(costs) + consts - pad[idx]
    bound = bound - dot_pad(2) * np.abs(bound) - TINY  # the two sums above
    ok = np.isfinite(bound)
    lo, hi = lo.copy(), hi.copy()
    up = idx[low_side & ok]
    lo[up] = np.maximum(lo[up], bound[low_side & ok])
    dn = idx[~low_side & ok]
    hi[dn] = np.minimum(hi[dn], -bound[~low_side & ok])
    return lo, hi


def chain_bounds(first_weight, first_bias, layers, lower, upper, fixed=None, pad: float = CHAIN_PAD,
                 polytope=None, first_magnitude=None):
    """Sound pre-activation bounds of a chain over the box [lower, upper], by CROWN back-substitution.

    The chain: z_0 = first_weight x + first_bias, h_0 = act_0(z_0), z_k = W_k h_{k-1} + b_k, ... where ``layers``
    is a sequence of (weight, bias, activation, pieces) whose first entry's weight/bias are ignored (replaced by
    ``first_weight``/``first_bias``, so that a chain can start mid-network with an exact affine map in x).
    ``fixed``: optional per-layer int arrays of a piece index per neuron (-1 free): on the polytope
    {x in box : every fixed neuron lies in its piece} the bounds are intersected with the piece's interval, so the
    relaxation of a fixed neuron is exact. Returns a list of (lower, upper) arrays per layer; an interval with
    lower > upper proves the polytope empty (later layers are then meaningless).
    Soundness: each bound is also intersected with plain interval arithmetic, and padded by
    ``pad * magnitude`` where magnitude is the same back-substitution in absolute values (covers rounding).
    ``first_magnitude``: optional (matrix, vector) bounding |first_weight| and |first_bias| when the first map was
    itself computed in float64 (a chain's prefix): the absolute-value chain it came from, so the pad also covers
    that map's own rounding (which cancellation can make far larger than |first_weight|).

    ``polytope``: optional callable ``lower(costs (k, n)) -> (k,)``, sound lower bounds of min costs @ x over a
    polytope P inside the box (for instance LP bounds re-derived by weak duality,
    :func:`certify.bounds.lp_dual.dual_lower_bounds`); the bounds then hold on P. Each free neuron whose interval
    still meets several pieces has the end nearer to a breakpoint inside it re-concretised over P (one
    objective per such neuron and layer: the linear bound of the back-substitution, or the exact affine map on the
    first layer), which can only tighten it.
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    c, r = 0.5 * (lower + upper), 0.5 * (upper - lower)
    absx = np.maximum(np.abs(lower), np.abs(upper))
    weights = [np.asarray(first_weight, dtype=np.float64)] + [np.asarray(layer[0]) for layer in layers[1:]]
    biases = [np.asarray(first_bias, dtype=np.float64)] + [np.asarray(layer[1]) for layer in layers[1:]]
    abs_ws, abs_bs = [np.abs(w) for w in weights], [np.abs(b) for b in biases]
    if first_magnitude is not None:
        abs_ws[0], abs_bs[0] = first_magnitude
    out = []
    relax = []
    post_lo, post_hi = lower, upper
    for k, (w, b) in enumerate(zip(weights, biases)):
        act, pcs = layers[k][2], layers[k][3]
        il, iu = affine_interval(w, b, post_lo, post_hi)
        if k == 0:
            if first_magnitude is not None:
                spread = pad * (abs_ws[0] @ absx + abs_bs[0]) + TINY
                il, iu = il - spread, iu + spread
            lo, hi = il, iu
            if polytope is not None:
                cu, cl, du, dl = w, w, b, b
                mag_c, mag_d = abs_ws[0], abs_bs[0]
        else:
            # back-substitution: C_u z_k <= ..., start with C = W_k on h_{k-1}
            cu, cl = w.copy(), w.copy()
            du, dl = b.copy(), b.copy()
            mag_c, mag_d = abs_ws[k], abs_bs[k]
            for j in range(k - 1, -1, -1):
                al, bl, au, bu = relax[j]
                pos_u, neg_u = np.maximum(cu, 0.0), np.minimum(cu, 0.0)
                pos_l, neg_l = np.maximum(cl, 0.0), np.minimum(cl, 0.0)
                du = du + pos_u @ bu + neg_u @ bl
                dl = dl + pos_l @ bl + neg_l @ bu
                cu = pos_u * au + neg_u * al
                cl = pos_l * al + neg_l * au
                mag_d = mag_d + mag_c @ (np.abs(bu) + np.abs(bl))
                mag_c = mag_c * np.maximum(np.abs(au), np.abs(al))
                wj, bj = weights[j], biases[j]
                du, dl = du + cu @ bj, dl + cl @ bj
                cu, cl = cu @ wj, cl @ wj
                mag_d = mag_d + mag_c @ abs_bs[j]
                mag_c = mag_c @ abs_ws[j]
            mag = mag_c @ absx + mag_d
            hi = cu @ c + np.abs(cu) @ r + du + pad * mag + TINY
            lo = cl @ c - np.abs(cl) @ r + dl - pad * mag - TINY
            lo, hi = np.maximum(lo, il), np.minimum(hi, iu)
        f = None
        if fixed is not None and k < len(fixed) and fixed[k] is not None and pcs is not None:
            f = np.asarray(fixed[k])
            sel = f >= 0
            if sel.any():
                plo, phi = pcs.interval(np.where(sel, f, 0))
                lo = np.where(sel, np.maximum(lo, plo), lo)
                hi = np.where(sel, np.minimum(hi, phi), hi)
        if polytope is not None and pcs is not None and np.all(lo <= hi):
            lo, hi = _over_polytope(polytope, pcs, f, lo, hi, (cl, dl, cu, du),
                                    pad * (mag_c @ absx + mag_d) + TINY)
        out.append((lo, hi))
        if np.any(lo > hi):
            # empty polytope: fill the rest with the (meaningless) interval bounds and stop
            for _ in range(k + 1, len(weights)):
                out.append((lo[:0], hi[:0]))
            return out
        relax.append(_relaxation(act, pcs, lo, hi))
        post_lo, post_hi = (act.value_range if pcs is None else pcs.value_range)(lo, hi)
    return out


def symbolic_bounds(net: Network, box: Box, fixed=None) -> list[LayerBounds]:
    """CROWN/DeepPoly bounds on every hidden layer's pre-activations over the box (and, with ``fixed``, over the
    polytope cut from it by neurons fixed to one linear piece: per layer an int array, piece index or -1; for
    ReLU-type layers piece 0 is z <= 0 and piece 1 is z >= 0).

    Never looser than :func:`interval_bounds` (intersected with it). Returns one :class:`LayerBounds` per hidden
    layer; an empty polytope shows as some pre_lower > pre_upper (or a layer without entries).
    """
    if not net.layers:
        return []
    layers = [(l.weight, l.bias, l.activation, pieces(l.activation, l.width)) for l in net.layers]
    pre = chain_bounds(net.layers[0].weight, net.layers[0].bias, layers, box.lower, box.upper, fixed)
    out = []
    for (lo, hi), layer in zip(pre, net.layers):
        if lo.size and np.all(lo <= hi):
            plo, phi = layer.activation.value_range(lo, hi)
        else:
            plo, phi = lo, hi
        out.append(LayerBounds(lo, hi, plo, phi))
    return out


# ===================================================================== batched bounds over many sub-boxes
# The output branch and bound (certify.engines.output_bnb) bounds rows @ f(x) + consts over hundreds of sub-boxes at
# once. Everything below works on stacks of B boxes: lower/upper (B, n_in), per-layer arrays (B, width).
@dataclass(frozen=True, eq=False)
class LayerRelaxation:
    """Linear bounds  al z + bl <= sigma(z) <= au z + bu  of one hidden layer on B sub-boxes; arrays (B, n).

    Exact on neurons whose interval lies in one linear piece; a neuron crossing exactly one breakpoint t (``free``)
    gets the chord on one side and a line through (t, sigma(t)) (``knot``, ``knot_value``) on the other, whose
    slope may be anything in [``slope_lo``, ``slope_hi``] (the slopes of the two pieces: alpha-CROWN's optimisable
    slopes; the chord side is the upper one where sigma is convex on [l, u], the lower one where it is concave,
    ``concave``); a neuron crossing more breakpoints gets the constant bounds of its value range. ``post_lo``,
    ``post_hi``: that value range (the interval of the post-activation).
    """

    al: np.ndarray
    bl: np.ndarray
    au: np.ndarray
    bu: np.ndarray
    free: np.ndarray
    concave: np.ndarray
    knot: np.ndarray
    knot_value: np.ndarray
    slope_lo: np.ndarray
    slope_hi: np.ndarray
    post_lo: np.ndarray
    post_hi: np.ndarray

    def lines(self, slopes: np.ndarray | None):
        """(al, bl, au, bu) with a row axis: (B, 1, n) each, or (B, R, n) where ``slopes`` (B, R, n) gives each
        of R objectives its own slope of the free line (clipped into [slope_lo, slope_hi], so any input is a
        valid relaxation)."""
        al, bl, au, bu = (a[:, None, :] for a in (self.al, self.bl, self.au, self.bu))
        if slopes is None:
            return al, bl, au, bu
        s = np.clip(slopes, self.slope_lo[:, None, :], self.slope_hi[:, None, :])
        off = self.knot_value[:, None, :] - s * self.knot[:, None, :]
        low = (self.free & ~self.concave)[:, None, :]
        up = (self.free & self.concave)[:, None, :]
        return np.where(low, s, al), np.where(low, off, bl), np.where(up, s, au), np.where(up, off, bu)


def _piece_values(pcs: Pieces, z: np.ndarray) -> np.ndarray:
    """sigma(z) for z (B, n) (either adjacent piece at a breakpoint: sigma is continuous)."""
    n = pcs.slope.shape[0]
    p = (pcs.breakpoints[None] < z[..., None]).sum(axis=-1)
    cols = np.arange(n)[None, :]
    return pcs.slope[cols, p] * z + pcs.offset[cols, p]


def relax_layer(pcs: Pieces, lo: np.ndarray, hi: np.ndarray) -> LayerRelaxation:
    """The :class:`LayerRelaxation` of a piecewise-linear layer over pre-activation intervals [lo, hi] (B, n).

    Default slope of a free line: the slope of the longer side of the interval (CROWN's adaptive choice, the
    smaller area). Lines are computed in float64; their rounding (a few ulp of |a| |z| + |b|) is covered by the
    ``CHAIN_PAD`` magnitude pads of :func:`crown_pads`."""
    n = pcs.slope.shape[0]
    cols = np.arange(n)[None, :]
    bps = pcs.breakpoints[None]  # (1, n, K)
    inside = (bps > lo[..., None]) & (bps < hi[..., None])  # (B, n, K)
    count = inside.sum(axis=-1)
    mid = 0.5 * lo + 0.5 * hi
    pm = (bps < mid[..., None]).sum(axis=-1)
    al = pcs.slope[cols, pm]
    bl = pcs.offset[cols, pm]
    au, bu = al.copy(), bl.copy()
    vl, vu = _piece_values(pcs, lo), _piece_values(pcs, hi)
    post_lo, post_hi = np.minimum(vl, vu), np.maximum(vl, vu)
    for k in range(pcs.breakpoints.shape[1]):
        vb = pcs.slope[:, k] * pcs.breakpoints[:, k] + pcs.offset[:, k]
        post_lo = np.where(inside[..., k], np.minimum(post_lo, vb), post_lo)
        post_hi = np.where(inside[..., k], np.maximum(post_hi, vb), post_hi)
    free = count == 1
    knot = np.zeros_like(lo)
    knot_value = np.zeros_like(lo)
    slope_lo, slope_hi = al.copy(), al.copy()
    concave = np.zeros_like(free)
    if free.any():
        kk = np.argmax(inside, axis=-1)
        t = pcs.breakpoints[cols, kk] if pcs.breakpoints.shape[1] else knot
        s0, s1 = pcs.slope[cols, kk], pcs.slope[cols, np.minimum(kk + 1, pcs.slope.shape[1] - 1)]
        tv = s0 * t + pcs.offset[cols, kk]
        width = np.where(free, hi - lo, 1.0)
        chord = (vu - vl) / width
        chord_b = vl - chord * lo
        kink = np.where(hi - t >= t - lo, s1, s0)
        kink_b = tv - kink * t
        concave = free & (s1 < s0)
        convex = free & ~concave
        al = np.where(convex, kink, np.where(concave, chord, al))
        bl = np.where(convex, kink_b, np.where(concave, chord_b, bl))
        au = np.where(convex, chord, np.where(concave, kink, au))
        bu = np.where(convex, chord_b, np.where(concave, kink_b, bu))
        knot, knot_value = np.where(free, t, 0.0), np.where(free, tv, 0.0)
        slope_lo = np.where(free, np.minimum(s0, s1), slope_lo)
        slope_hi = np.where(free, np.maximum(s0, s1), slope_hi)
    many = count > 1
    if many.any():  # constant bounds from the value range
        al, au = np.where(many, 0.0, al), np.where(many, 0.0, au)
        bl, bu = np.where(many, post_lo, bl), np.where(many, post_hi, bu)
    return LayerRelaxation(al, bl, au, bu, free, concave, knot, knot_value, slope_lo, slope_hi, post_lo, post_hi)


@dataclass(frozen=True, eq=False)
class CrownPads:
    """Rounding pads for :func:`box_bounds` on sub-boxes of one box ([``lower``, ``upper``], (n_in,)): ``layer``
    one array (width,) per hidden layer, ``rows`` (m,) for the objectives (see :func:`crown_pads`), and the sound
    pre-activation bounds over the whole box (``pre_lower``, ``pre_upper``, one (width,) array per layer) that
    every sub-box's bounds are intersected with."""

    lower: np.ndarray
    upper: np.ndarray
    layer: tuple[np.ndarray, ...]
    rows: np.ndarray
    pre_lower: tuple[np.ndarray, ...] = ()
    pre_upper: tuple[np.ndarray, ...] = ()


def crown_pads(net: Network, lower: np.ndarray, upper: np.ndarray, rows: np.ndarray, consts: np.ndarray) -> CrownPads:
    """The pads that make :func:`box_bounds` sound on every sub-box of [lower, upper] (n_in,) for the objectives
    ``rows`` (m, n_out) @ f(x) + ``consts`` (m,).

    Argument (as in :func:`chain_bounds`): a bound computed by back-substitution errs by at most a few k gamma_n
    times the same computation in absolute values. That absolute chain is largest with every relaxation at its
    largest: slopes at most S_j = max |piece slope| and offsets at most B_j = max |sigma| + S_j max |z| over the
    sound bounds [L, U] of the whole box (CROWN, :func:`symbolic_bounds`; every sub-box's intervals are cut to
    them, and every line the relaxation uses touches sigma on a sub-interval, so its offset is sigma(t) - a t for
    some t in [L, U]). So one chain per neuron, computed once with S_j and 2 B_j, bounds the magnitude for every
    sub-box, and ``CHAIN_PAD`` (scaled up for nets deeper than 10 layers or wider than 1000) times it, plus
    ``TINY``, covers the rounding. The relaxation lines' own rounding (a few ulp of |a| |z| + |b|) is a few eps
    times the same chain."""
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    consts = np.asarray(consts, dtype=np.float64).reshape(rows.shape[0])
    root = symbolic_bounds(net, Box(lower, upper))
    absx = np.maximum(np.abs(lower), np.abs(upper))
    widest = max([net.n_in, net.n_out, *net.widths])
    pad = CHAIN_PAD * max(1.0, (len(net.layers) + 1) / 10.0) * max(1.0, widest / 1000.0)
    smax, bmax = [], []
    for layer, b in zip(net.layers, root):
        pcs = pieces(layer.activation, layer.width)
        s = np.abs(pcs.slope).max(axis=1) if pcs is not None else np.ones(layer.width)
        zmax = np.maximum(np.abs(b.pre_lower), np.abs(b.pre_upper))
        vmax = np.maximum(np.abs(b.post_lower), np.abs(b.post_upper))
        smax.append(s)
        bmax.append(vmax + s * zmax)

    def magnitude(mag_c, mag_d, upto):
        for j in range(upto - 1, -1, -1):
            mag_d = mag_d + mag_c @ (2.0 * bmax[j])
            mag_c = mag_c * smax[j]
            mag_d = mag_d + mag_c @ np.abs(net.layers[j].bias)
            mag_c = mag_c @ np.abs(net.layers[j].weight)
        return mag_c @ absx + mag_d

    layer_pads = tuple(pad * magnitude(np.abs(l.weight), np.abs(l.bias), k) + TINY for k, l in enumerate(net.layers))
    abs_rows = np.abs(rows)
    mag = magnitude(abs_rows @ np.abs(net.out_weight), abs_rows @ np.abs(net.out_bias) + np.abs(consts),
                    len(net.layers))
    if net.skip is not None:
        mag = mag + abs_rows @ np.abs(net.skip) @ absx
    return CrownPads(lower.copy(), upper.copy(), layer_pads, pad * mag + TINY,
                     tuple(b.pre_lower for b in root), tuple(b.pre_upper for b in root))


def _box_max(coef: np.ndarray, const: np.ndarray, centre: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """max of coef x + const over the boxes [centre - radius, centre + radius]: coef (B, R, n), const (B, R),
    centre/radius (B, n) -> (B, R)."""
    return (np.matmul(coef, centre[:, :, None]) + np.matmul(np.abs(coef), radius[:, :, None]))[..., 0] + const


def back_substitute(net: Network, relax, rows: np.ndarray, const: np.ndarray, upto: int, slopes=None):
    """An upper linear bound  coef x + offset  on  rows @ h_upto + const  over each of B boxes, by CROWN
    back-substitution through the relaxations ``relax`` of hidden layers upto-1, ..., 0 (h_0 = x).

    ``rows``: (R, width_upto) or (B, R, width_upto); ``const`` (R,) or (B, R); ``slopes``: None or one entry per
    layer (None or (B, R, width): per-objective slopes of the free lines, :meth:`LayerRelaxation.lines`).
    Returns coef (B, R, n_in), offset (B, R). Not padded (callers add the pads of :func:`crown_pads`)."""
    batch = relax[0].al.shape[0] if relax else None
    coef = np.asarray(rows, dtype=np.float64)
    if coef.ndim == 2 and batch is not None:
        coef = np.broadcast_to(coef, (batch,) + coef.shape)
    offset = np.broadcast_to(np.asarray(const, dtype=np.float64), coef.shape[:-1]).copy()
    for j in range(upto - 1, -1, -1):
        al, bl, au, bu = relax[j].lines(None if slopes is None else slopes[j])
        pos, neg = np.maximum(coef, 0.0), np.minimum(coef, 0.0)
        offset = offset + (pos * bu).sum(axis=-1) + (neg * bl).sum(axis=-1)
        coef = pos * au + neg * al
        layer = net.layers[j]
        offset = offset + coef @ layer.bias
        coef = coef @ layer.weight
    return coef, offset


def box_layer_bounds(net: Network, lower: np.ndarray, upper: np.ndarray, pads: CrownPads, fixed=None):
    """Sound pre-activation bounds of every hidden layer over each of B sub-boxes [lower, upper] (B, n_in) of the
    pads' box, by CROWN back-substitution intersected with interval arithmetic, padded by ``pads.layer``.

    ``fixed``: None or one entry per layer (None or an int array (B, width): the piece each neuron is held to,
    -1 free); a held neuron's interval is intersected with its piece's, which cuts the polytope of the neuron
    splits out of the box. Returns (pre, relax, empty): pre a list of (lo, hi) per layer (B, width), relax the
    :class:`LayerRelaxation` per layer, empty (B,) bool (True: the split polytope is empty, the other outputs of
    that box are meaningless)."""
    if not net.piecewise_linear:
        raise UsageError(f"batched CROWN bounds need piecewise-linear activations; {net.describe()} is not")
    lower = np.atleast_2d(np.asarray(lower, dtype=np.float64))
    upper = np.atleast_2d(np.asarray(upper, dtype=np.float64))
    if np.any(lower < pads.lower) or np.any(upper > pads.upper):
        raise ValueError("box_layer_bounds: a sub-box leaves the box its pads were computed for")
    centre, radius = midpoints(lower, upper)
    empty = np.zeros(lower.shape[0], dtype=bool)
    pre, relax = [], []
    post_lo, post_hi = lower, upper
    for k, layer in enumerate(net.layers):
        w = layer.width
        il, iu = affine_interval(layer.weight, layer.bias[:, None], post_lo.T, post_hi.T)
        if k == 0:
            lo, hi = il.T, iu.T
        else:
            rows = np.vstack([layer.weight, -layer.weight])
            coef, off = back_substitute(net, relax, rows, np.concatenate([layer.bias, -layer.bias]), k)
            ub = _box_max(coef, off, centre, radius)
            lo = np.maximum(-ub[:, w:] - pads.layer[k], il.T)
            hi = np.minimum(ub[:, :w] + pads.layer[k], iu.T)
        if pads.pre_lower:  # the whole box's bounds hold on every sub-box
            lo, hi = np.maximum(lo, pads.pre_lower[k]), np.minimum(hi, pads.pre_upper[k])
        pcs = pieces(layer.activation, w)
        if fixed is not None and k < len(fixed) and fixed[k] is not None:
            f = np.asarray(fixed[k])
            sel = f >= 0
            if sel.any():
                ext = np.hstack([np.full((w, 1), -np.inf), pcs.breakpoints, np.full((w, 1), np.inf)])
                cols = np.arange(w)[None, :]
                piece = np.where(sel, f, 0)
                lo = np.where(sel, np.maximum(lo, ext[cols, piece]), lo)
                hi = np.where(sel, np.minimum(hi, ext[cols, piece + 1]), hi)
        bad = lo > hi
        if bad.any():
            empty |= bad.any(axis=1)
            hi = np.where(bad, lo, hi)
        pre.append((lo, hi))
        r = relax_layer(pcs, lo, hi)
        relax.append(r)
        post_lo, post_hi = r.post_lo, r.post_hi
    return pre, relax, empty


def box_row_bounds(net: Network, lower: np.ndarray, upper: np.ndarray, relax, rows: np.ndarray, consts: np.ndarray,
                   pads: CrownPads, slopes=None) -> tuple[np.ndarray, np.ndarray]:
    """Sound upper bounds on rows @ f(x) + consts over each of B sub-boxes, from the relaxations of
    :func:`box_layer_bounds`: returns upper (B, m) (padded by ``pads.rows``, which must belong to these rows) and
    the x-coefficients (B, m, n_in) of the linear bound (its maximiser over a box is a vertex: a candidate point).
    ``slopes``: per-objective slopes of the free lines (:func:`back_substitute`)."""
    lower = np.atleast_2d(np.asarray(lower, dtype=np.float64))
    upper = np.atleast_2d(np.asarray(upper, dtype=np.float64))
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    centre, radius = midpoints(lower, upper)
    coef, off = back_substitute(net, relax, rows @ net.out_weight, rows @ net.out_bias + consts, len(net.layers),
                                slopes)
    if coef.ndim == 2:  # no hidden layer
        coef = np.broadcast_to(coef, (lower.shape[0],) + coef.shape)
        off = np.broadcast_to(off, coef.shape[:-1])
    if net.skip is not None:
        coef = coef + rows @ net.skip
    return _box_max(coef, off, centre, radius) + pads.rows, coef


def box_bounds(net: Network, lower: np.ndarray, upper: np.ndarray, rows: np.ndarray, consts: np.ndarray,
               pads: CrownPads, fixed=None) -> tuple[np.ndarray, np.ndarray]:
    """Sound upper bounds (B, m) on rows @ f(x) + consts over each sub-box [lower, upper] (B, n_in) (-inf on an
    empty split polytope) and the linear bounds' x-coefficients (B, m, n_in): :func:`box_layer_bounds` then
    :func:`box_row_bounds` with CROWN's default slopes."""
    _, relax, empty = box_layer_bounds(net, lower, upper, pads, fixed)
    ub, coef = box_row_bounds(net, lower, upper, relax, rows, consts, pads)
    return np.where(empty[:, None], -np.inf, ub), coef
