"""CROWN/DeepPoly bounds: back-substitution of linear relaxations, over a box or a polytope cut from it.

* :func:`chain_bounds`: pre-activation bounds of a chain that may start mid-network (an exact affine map in x),
  with neurons fixed to one linear piece relaxed exactly (the region search's nodes);
* :func:`symbolic_bounds`: the same for a whole :class:`~certify.ir.network.Network` over a box.

Every bound is intersected with plain interval arithmetic (so never looser) and padded by ``CHAIN_PAD`` times the
same back-substitution in absolute values (rounding of the chain of products).
"""

from __future__ import annotations

import numpy as np

from ..ir.activations import Activation, ActivationKind
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import CHAIN_PAD, TINY, affine_interval
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


def chain_bounds(first_weight, first_bias, layers, lower, upper, fixed=None, pad: float = CHAIN_PAD):
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
            hi = cu @ c + np.abs(cu) @ r + du + pad * mag + TINY
            lo = cl @ c - np.abs(cl) @ r + dl - pad * mag - TINY
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
