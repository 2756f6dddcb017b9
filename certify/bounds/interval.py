"""Sound bounds on pre-activations over a box, and over a polytope cut from the box by fixed neurons.

* :func:`interval_bounds`: interval arithmetic (below).
* :func:`symbolic_bounds` / :func:`chain_bounds`: CROWN/DeepPoly back-substitution of linear relaxations, each
  layer intersected with interval bounds; neurons fixed to one linear piece are relaxed exactly.
* :func:`pieces`: the linear pieces of ReLU/LeakyReLU/PReLU/identity/clip layers (shared with the region traversal).
* :func:`affine_range_lp`: optional LP tightening of an affine map over a polytope.

Interval arithmetic in centre-radius form: for z = W h + b with h in [c - r, c + r], z lies in
[W c + b - |W| r, W c + b + |W| r]. Floating-point error of the products is covered by padding each bound by
``_PAD * (|W| |c| + |W| r + |b|) + tiny`` (a dot product of length n errs by at most about n * eps times that sum;
``_PAD`` = 1e-12 is far above n * eps for any width below 10^3 and still negligible).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir.activations import Activation, ActivationKind
from ..ir.box import Box
from ..ir.network import Network

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


# ===================================================================== pieces of piecewise-linear activations
@dataclass(frozen=True, eq=False)
class Pieces:
    """The linear pieces of a piecewise-linear activation on a layer of ``n`` neurons.

    ``breakpoints`` (n, k) sorted per row (k = 0 identity, 1 ReLU/LeakyReLU/PReLU, up to 2 for clip);
    piece j is bp[j-1] <= z <= bp[j] (with bp[-1] = -inf, bp[k] = +inf), on which sigma(z) = slope[:, j] z +
    offset[:, j] and sigma'(z) = slope[:, j]. ``slope``/``offset`` have shape (n, k + 1). A point's piece is the
    number of breakpoints strictly below z (:meth:`piece_of`); at a breakpoint both adjacent pieces give the same
    value, so the choice only matters on lower-dimensional sets.
    """

    breakpoints: np.ndarray
    slope: np.ndarray
    offset: np.ndarray

    @property
    def n_pieces(self) -> int:
        return self.slope.shape[1]

    def piece_of(self, z: np.ndarray) -> np.ndarray:
        """Piece index of each entry of z (..., n) -> int array of the same shape."""
        if self.breakpoints.shape[1] == 0:
            return np.zeros(np.shape(z), dtype=np.int64)
        return (self.breakpoints < np.asarray(z)[..., None]).sum(axis=-1)

    def interval(self, piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[lower, upper] of z on the given piece of each neuron (piece (n,) ints); infinite ends allowed."""
        n, k = self.breakpoints.shape
        ext = np.hstack([np.full((n, 1), -np.inf), self.breakpoints, np.full((n, 1), np.inf)])
        idx = np.arange(n)
        return ext[idx, piece], ext[idx, piece + 1]

    def value_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact [min, max] of sigma over [lower_i, upper_i] (n,) in numpy: sigma is continuous and linear between
        breakpoints, so the extremes sit at the ends or at breakpoints inside (one rounding per value: callers pad)."""
        n = lower.shape[0]
        idx = np.arange(n)
        vl = self.slope[idx, self.piece_of(lower)] * lower + self.offset[idx, self.piece_of(lower)]
        vu = self.slope[idx, self.piece_of(upper)] * upper + self.offset[idx, self.piece_of(upper)]
        lo, hi = np.minimum(vl, vu), np.maximum(vl, vu)
        for k in range(self.breakpoints.shape[1]):
            bp = self.breakpoints[:, k]
            inside = (bp > lower) & (bp < upper)
            if inside.any():
                vb = self.slope[:, k] * bp + self.offset[:, k]
                lo = np.where(inside, np.minimum(lo, vb), lo)
                hi = np.where(inside, np.maximum(hi, vb), hi)
        return lo, hi

    def overlapping(self, lower: np.ndarray, upper: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Bool (m, k + 1): which pieces meet [lower_i, upper_i] in more than a point (or contain it if lower ==
        upper); ``idx`` (m,) selects the neurons the m intervals belong to (default: all n, in order)."""
        bps = self.breakpoints if idx is None else self.breakpoints[idx]
        n = bps.shape[0]
        ext = np.hstack([np.full((n, 1), -np.inf), bps, np.full((n, 1), np.inf)])
        lo, hi = ext[:, :-1], ext[:, 1:]
        l, u = lower[:, None], upper[:, None]
        strict = (l < hi) & (u > lo)
        point = (l == u) & (l >= lo) & (l <= hi)
        return strict | point


def pieces(activation: Activation, width: int) -> Pieces | None:
    """The pieces of a piecewise-linear activation on ``width`` neurons, or None when it is not piecewise linear."""
    k = activation.kind
    ones = np.ones((width, 1))
    if k is ActivationKind.IDENTITY:
        return Pieces(np.zeros((width, 0)), ones.copy(), np.zeros((width, 1)))
    if k in (ActivationKind.RELU, ActivationKind.LEAKY_RELU, ActivationKind.PRELU):
        if k is ActivationKind.RELU:
            neg = np.zeros(width)
        elif k is ActivationKind.LEAKY_RELU:
            neg = np.full(width, activation.alpha)
        else:
            neg = np.broadcast_to(np.asarray(activation.slopes, dtype=np.float64), (width,)).copy()
        return Pieces(np.zeros((width, 1)), np.stack([neg, np.ones(width)], axis=1), np.zeros((width, 2)))
    if k is ActivationKind.CLIP:
        lo, hi = activation.lo, activation.hi
        bps, slopes, offs = [], [], []
        if math.isfinite(lo):
            bps.append(lo)
            slopes.append(0.0)
            offs.append(lo)
        slopes.append(1.0)
        offs.append(0.0)
        if math.isfinite(hi):
            if hi > lo or not math.isfinite(lo):
                bps.append(hi)
            else:  # lo == hi: a constant function, one flat piece
                return Pieces(np.zeros((width, 0)), np.zeros((width, 1)), np.full((width, 1), lo))
            slopes.append(0.0)
            offs.append(hi)
        row = lambda v: np.tile(np.asarray(v, dtype=np.float64), (width, 1))  # noqa: E731
        return Pieces(row(bps).reshape(width, len(bps)), row(slopes), row(offs))
    return None


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


def chain_bounds(first_weight, first_bias, layers, lower, upper, fixed=None, pad: float = 1e-11):
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
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    c, r = 0.5 * (lower + upper), 0.5 * (upper - lower)
    absx = np.maximum(np.abs(lower), np.abs(upper))
    weights = [np.asarray(first_weight, dtype=np.float64)] + [np.asarray(layer[0]) for layer in layers[1:]]
    biases = [np.asarray(first_bias, dtype=np.float64)] + [np.asarray(layer[1]) for layer in layers[1:]]
    out = []
    relax = []
    post_lo, post_hi = lower, upper
    for k, (w, b) in enumerate(zip(weights, biases)):
        act, pcs = layers[k][2], layers[k][3]
        il, iu = affine_interval(w, b, post_lo, post_hi)
        if k == 0:
            lo, hi = il, iu
        else:
            # back-substitution: C_u z_k <= ..., start with C = W_k on h_{k-1}
            cu, cl = w.copy(), w.copy()
            du, dl = b.copy(), b.copy()
            mag_c, mag_d = np.abs(w), np.abs(b)
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
                mag_d = mag_d + mag_c @ np.abs(bj)
                mag_c = mag_c @ np.abs(wj)
            mag = mag_c @ absx + mag_d
            hi = cu @ c + np.abs(cu) @ r + du + pad * mag + _TINY
            lo = cl @ c - np.abs(cl) @ r + dl - pad * mag - _TINY
            lo, hi = np.maximum(lo, il), np.minimum(hi, iu)
        if fixed is not None and k < len(fixed) and fixed[k] is not None and pcs is not None:
            f = np.asarray(fixed[k])
            sel = f >= 0
            if sel.any():
                plo, phi = pcs.interval(np.where(sel, f, 0))
                lo = np.where(sel, np.maximum(lo, plo), lo)
                hi = np.where(sel, np.minimum(hi, phi), hi)
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
    layer; an empty polytope shows as some pre_lower > pre_upper (:func:`bounds_empty`).
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


def bounds_empty(bounds: list[LayerBounds]) -> bool:
    """True when some layer's bounds prove the polytope empty (an interval with lower > upper or no entries)."""
    return any(b.pre_lower.size == 0 or np.any(b.pre_lower > b.pre_upper) for b in bounds)


def affine_range_lp(weight: np.ndarray, bias: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, box: Box,
                    solver=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Optional LP tightening: [min, max] of weight @ x + bias over {x in box : a_ub x <= b_ub}.

    Two LPs per row (HiGHS, :mod:`certify.solvers.lp`). Returns (lower, upper, ok); where an LP does not end OPTIMAL the
    interval bound over the box is kept for that entry and ok is False. The LP optimum is re-evaluated from the
    returned point and padded outward by ``1e-7 * (1 + |value|)`` (HiGHS's feasibility tolerance is 1e-9 on
    each constraint, so the true optimum may differ from the returned point's value by about that much times the
    dual norm; the pad is a safety margin, not a proof: callers that certify treat these bounds as heuristic
    tightening of sound interval bounds).
    """
    from ..solvers.base import LinearProgram
    from ..solvers.lp import LPSolver

    solver = solver or LPSolver()
    lo, hi = affine_interval(weight, bias, box.lower, box.upper)
    lo, hi = lo.copy(), hi.copy()
    ok = True
    n = box.dim
    for i in range(weight.shape[0]):
        for sense in (False, True):
            lp = LinearProgram(c=weight[i], a_ub=a_ub, b_ub=b_ub, a_eq=np.zeros((0, n)), b_eq=np.zeros(0),
                               lower=box.lower, upper=box.upper, maximize=sense)
            res = solver.solve(lp)
            if not res.status.is_optimal:
                ok = False
                continue
            v = float(weight[i] @ res.x + bias[i])
            if sense:
                hi[i] = min(hi[i], v + 1e-7 * (1 + abs(v)))
            else:
                lo[i] = max(lo[i], v - 1e-7 * (1 + abs(v)))
    return lo, hi, ok
