"""Branch and bound for rho = sup over the box of ||A*(x)||_p (or ||J(x)||_p), p in {1, 2, inf}, PWL nets.

The nodes are those of the region traversal (:class:`certify.engines.regions.Traversal`): a node fixes the pieces of
some neurons, layer by layer, and carries its polytope and verified interior points. On a node, layer l's
pre-activations z_l = G x + g are exact; the rest of the chain is relaxed:

* bounds on every later pre-activation over the node (CROWN back-substitution,
:func:`certify.bounds.interval.chain_bounds`,
  with the node's fixed neurons exact) give each neuron a slope interval [s_lo, s_hi] (the min/max slope of the
  pieces its interval meets; a single value for stable neurons);
* M = W_L D_{L-1} ... D_l G (+ S) with D_k in those intervals is enclosed entrywise by interval matrix
  arithmetic (|M| <= U), so ||M||_p <= ||U||_p (p = 1, inf exact for U; p = 2: ||U||_2 and
  sqrt(||U||_1 ||U||_inf)); and by the product ||tail||_p ||G||_p of the interval tail W_L D ... D_l and the exact
  head G; and, when at most ``_VERTEX_MAX`` neurons are unstable, by the max of ||M|| over every vertex of the
  slope box (exact for the relaxation). M is affine in each slope separately and the norm is convex, so these
  relax only geometry.
  Every U is padded by ``CHAIN_PAD`` times the same chain in absolute values (rounding); norms use
  :mod:`certify.ir.numerics`.
* leaves: the float64 ||M|| counts as exact while the rounding bound of M (:meth:`NodeBounder.leaf_upper`) is
  within ``EXACT_REL`` of it and cannot carry it across the threshold; else that bound is the leaf's upper end;
* lower bounds: ||M|| of the region of any point whose pre-activations all stay a relative 1e-9 away from a
  breakpoint (so its pattern is that of a full-dimensional region, not an artefact of rounding on a face), exact at
  leaves (float64, SVD for p = 2).

Best-first search on the upper bound (:func:`certify.engines.search.best_first`). A node is pruned when its bound is
<= the best lower bound (exact value)
or <= max(threshold, lower) (certifying: ``threshold`` = 1 - margin). Slivers the traversal drops (LP slack in
[-empty_tol, tol]) are not trusted to be empty: each gets the relaxation bound of its node with that piece
fixed, and is searched like any node (its sub-pieces get LPs; those proven empty are dropped), so a leaf
inside a sliver has its exact ||M||; a node reached through an LP without an OPTIMAL status is explored the same
way. A leaf without a verified interior point only raises ``upper`` (it may be lower-dimensional), so the result
is exact only if such leaves and every pruned bound end below the best verified lower bound. ``upper`` is the
max of the lower bound and every pruned, unverified and still-open bound: it is sound whenever the search stops,
and equals ``lower`` when it finishes (``exhausted``) with no unverified leaf above it.

A* differs from J for clip-type nets and is not constant on regions there: that request returns an unknown
bracket (sampling lower bound, infinite upper) with the reason, and so does a net that is not piecewise linear.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time

import numpy as np

from ..bounds.corollary4 import product_bound
from ..bounds.crown import chain_bounds
from ..ir.metric import Metric
from ..ir.numerics import (
    CHAIN_PAD,
    EPS,
    EXACT_REL,
    OVERFLOW_REASON,
    TINY,
    abs_norm_upper,
    chain_fits,
    induced_norm,
    matmul_interval_left,
    norm_upper,
    product_pad,
    scale_rows,
)
from ..ir.quantity import Quantity
from ..solvers import registry
from .contract import EngineResult, Outcome, Query, SearchCounts
from .parallel import search_executor
from .regions import Traversal, relative_norms
from .sampling import generic_mask, replay_norm
from .search import Incumbent, Node, SearchLimits, best_first

_VERTEX_MAX = 10  # at most 2^10 slope vertices per node for the vertex bound
_SLOPE_BNB_UNSTABLE = 16  # above the vertex bound's cap, the slope branch and bound up to this many unstable neurons
_SLOPE_BNB_BOXES = 512  # slope sub-boxes bounded per node at most
_CLIMB_ROUNDS = 3  # rounds of the greedy vertex climb that lets the slope branch and bound give up early
_TRACE_EVERY = 16  # nodes between two entries of the trace



NODE_BBOX_MAX_DIM = 4  # node bounds over the polytope bounding box up to this many free coordinates
NODE_LP_MAX_DIM = 8  # per-neuron LP tightening of the node bounds up to this many free coordinates


def _log_split_score(width: float, column: np.ndarray) -> float:
    """log(width x ||column||_2), computed without overflow or underflow at any scale (-inf when either is 0 or
    not finite): the slope branch and bound's split order only, which any order keeps sound."""
    top = float(np.abs(column).max(initial=0.0))
    if not (0.0 < width < math.inf and 0.0 < top < math.inf):
        return -math.inf
    return math.log(width) + math.log(top) + math.log(float(relative_norms(column[:, None], axis=0)[0]))


class NodeBounder:
    """Sound upper bounds on ||M||_p over a node of the traversal (module docstring); ``cols``: columns of M;
    ``metric``: bound ||T M Q||_2 instead (the conjugated chain ends; the caller applies the metric's float64
    inverse factor once, to the final bracket)."""

    def __init__(self, tr: Traversal, p: float, cols: int, metric: Metric | None = None,
                 use_bbox: bool = True, use_lp: bool = True, use_slope_bnb: bool = True, input_split: int = 0) -> None:
        # 2 LPs per free coordinate and node: measured to pay in 2-D and 4-D (5-15x fewer nodes), to cost 2-3x in
        # 10-D (benchmarks/exact_scale.py, benchmarks/lipbab.py)
        self.tr, self.p, self.cols = tr, p, cols
        self.use_bbox = use_bbox and tr.n_free <= NODE_BBOX_MAX_DIM
        self.use_lp = use_lp and tr.n_free <= NODE_LP_MAX_DIM
        self.use_slope_bnb = use_slope_bnb
        self.input_split = input_split if tr.n_free <= NODE_BBOX_MAX_DIM else 0
        net = tr.net
        self.metric = None if metric is None or metric.is_identity else metric
        self.layers = [(l.weight, l.bias, l.activation, pc) for l, pc in zip(net.layers, tr.pieces)]
        self.out_w = net.out_weight if self.metric is None else self.metric.t @ net.out_weight
        self.abs_out = np.abs(self.out_w)
        self.abs_w = [np.abs(w) for w in tr.weights]
        self.skip = None if net.skip is None else net.skip[:, :cols]
        if self.skip is not None and self.metric is not None:
            self.skip = self.metric.conjugate(self.skip)
        self.skip_norm = 0.0 if self.skip is None else norm_upper(self.skip, p)
        # with a metric the float64 ends T W_L, G Q and T S Q err entrywise by at most a tiny multiple of |T| |W_L|,
        # |G| |Q| and |T| |S| |Q| (certify.ir.metric): those magnitudes start the absolute-value chains, whose
        # CHAIN_PAD multiple covers the errors
        self.abs_skip = None if self.skip is None else np.abs(self.skip)
        if self.metric is not None:
            mags, skip_mag = self.metric.end_magnitudes(net)
            if net.layers:
                self.abs_out = mags[-1]
            if skip_mag is not None:
                self.abs_skip = skip_mag
                self.skip_norm += CHAIN_PAD * abs_norm_upper(skip_mag, p)

    def matrix(self, m: np.ndarray) -> np.ndarray:
        """The state matrix the bounds are about: m[:, :cols], conjugated T m Q by the metric when there is one."""
        m = m[:, : self.cols]
        return m if self.metric is None else self.metric.conjugate(m)

    def leaf_upper(self, leaf, m: np.ndarray) -> float:
        """Sound upper bound on the real ||M||_p of a leaf whose float64 matrix is m (n_out, n_in): the stored
        matrix's norm (conjugated by the metric) plus the norm of the rounding bound
        (:meth:`Traversal.leaf_error`) of M, and with a metric of the product T M Q."""
        e = self.tr.leaf_error(leaf)[:, : self.cols]
        if self.metric is None:
            return float(norm_upper(m[:, : self.cols], self.p)) + float(abs_norm_upper(e, self.p))
        t, q = np.abs(self.metric.t), np.abs(self.metric.t_inv)
        mag = t @ (np.abs(m[:, : self.cols]) + e) @ q
        err = t @ e @ q + CHAIN_PAD * mag
        return float(norm_upper(self.matrix(m), self.p)) + float(abs_norm_upper(err, self.p)) * product_pad(4)

    def head(self, node) -> np.ndarray:
        """The node's exact pre-activation map G (state columns), times Q with a metric."""
        g = node.g_mat[:, : self.cols]
        return g if self.metric is None else g @ self.metric.t_inv

    def head_magnitude(self, node) -> np.ndarray:
        """An entrywise bound on |G| that starts the absolute-value chains: the node's chain |W_l| |D| ... |W_0|
        (:class:`~certify.engines.regions.Traversal`), so that their ``CHAIN_PAD`` multiple also covers the float64
        error of G itself (a G whose entries cancel is far smaller than its chain); times |Q| with a metric, which
        also bounds the float64 error of G Q."""
        g = self.tr.abs_map(node)[0][:, : self.cols]
        if self.metric is None:
            return g
        return g @ np.abs(self.metric.t_inv) * (1.0 + 4 * (self.cols + 2) * EPS)

    def slope_ranges(self, node, fixed_override=None):
        """Per layer l.. L-1 the (s_lo, s_hi) slope intervals over the node, or None when bounds prove it empty."""
        found = self._node_bounds(node, fixed_override)
        return None if found is None else self._ranges(found[0])

    def _node_bounds(self, node, fixed_override=None):
        """(pre, lo, hi): sound bounds on the pre-activations of layers l.. L-1 over the node (per layer a (lower,
        upper) pair, :func:`~certify.bounds.crown.chain_bounds`) and the box (lo, hi) ((n,), (n,)) they were taken
        over (the polytope's bounding box, or the search box); None when the bounds prove the node empty."""
        tr = self.tr
        l = node.l
        fixed = [node.fixed[l] if fixed_override is None else fixed_override]
        lo, hi = tr.lo, tr.hi
        if self.use_bbox:
            lo, hi = tr.polytope_bbox(node)  # sound: every end re-derived by weak duality
        polytope = None
        if self.use_lp and node.a.shape[0]:
            def polytope(costs):
                return tr.polytope_lower(node, costs)
        pre = chain_bounds(node.g_mat, node.g_vec, self.layers[l:], lo, hi, fixed, polytope=polytope,
                           first_magnitude=tr.abs_map(node))
        if any(a.size == 0 or np.any(a > b) for a, b in pre):
            return None
        return pre, lo, hi

    def _ranges(self, pre):
        """Per layer the (s_lo, s_hi) slope intervals (n_j,) of the pieces that pre-activation bounds ``pre`` meet."""
        out = []
        for (lo, hi), (_, _, _, pcs) in zip(pre, self.layers[self.tr.L - len(pre):]):
            over = pcs.overlapping(lo, hi)
            sl = np.where(over, pcs.slope, np.inf).min(axis=1)
            sh = np.where(over, pcs.slope, -np.inf).max(axis=1)
            out.append((sl, sh))
        return out

    def bound(self, node, fixed_override=None, level: float = -math.inf) -> float:
        """Sound upper bound on ||M||_p over the node (-inf when the node is proven empty). ``level``: the value the
        caller prunes at (the slope branch and bound aims at a bound <= level and stops early when a vertex of the
        slope box exceeds it; any level gives a sound bound)."""
        if node.l >= self.tr.L:
            m, _ = self.tr.leaf_map(node)
            return self.leaf_upper(node, m)
        found = self._node_bounds(node, fixed_override)
        if found is None:
            return -math.inf
        pre, box_lo, box_hi = found
        ranges = self._ranges(pre)
        g = self.head(node)
        # interval matrix X in [xc - xr, xc + xr]; start exact: X = G
        lo_m, hi_m = g, g
        head_mag = self.head_magnitude(node)
        mag = head_mag
        # tail interval (n_out x n_l), starting as the identity on layer l's neurons
        n_l = g.shape[0]
        t_lo, t_hi = np.eye(n_l), np.eye(n_l)
        t_mag = np.eye(n_l)
        nxt = self.tr.weights[self.tr.L - len(ranges) + 1:] + [self.out_w]
        abs_nxt = self.abs_w[self.tr.L - len(ranges) + 1:] + [self.abs_out]
        for (sl, sh), w, aw in zip(ranges, nxt, abs_nxt):
            lo_m, hi_m = scale_rows(lo_m, hi_m, sl, sh)
            t_lo, t_hi = scale_rows(t_lo, t_hi, sl, sh)
            smax = np.maximum(np.abs(sl), np.abs(sh))[:, None]
            mag, t_mag = smax * mag, smax * t_mag
            lo_m, hi_m = matmul_interval_left(w, aw, lo_m, hi_m)
            t_lo, t_hi = matmul_interval_left(w, aw, t_lo, t_hi)
            mag, t_mag = aw @ mag, aw @ t_mag
        if self.skip is not None:
            lo_m, hi_m = lo_m + self.skip, hi_m + self.skip
            mag = mag + self.abs_skip
        u = np.maximum(np.abs(lo_m), np.abs(hi_m)) + CHAIN_PAD * mag + TINY
        ut = np.maximum(np.abs(t_lo), np.abs(t_hi)) + CHAIN_PAD * t_mag + TINY
        b1 = abs_norm_upper(u, self.p)
        # the float64 G (and G Q with a metric) errs by a tiny multiple of its absolute-value chain
        head = norm_upper(g, self.p) + CHAIN_PAD * abs_norm_upper(head_mag, self.p)
        b2 = abs_norm_upper(ut, self.p) * head + self.skip_norm
        b3 = self._vertex_bound(g, ranges, nxt, mag)
        if self.use_slope_bnb and not math.isfinite(b3) and min(b1, b2) > level:
            b3 = self._slope_bnb(g, ranges, nxt, abs_nxt, mag, level)
        best = min(b1, b2 * product_pad(2), b3)
        if self.input_split and best > level > -math.inf:
            fixed = [node.fixed[node.l] if fixed_override is None else fixed_override]
            best = min(best, self._input_split(node, fixed, pre, box_lo, box_hi, g, nxt, abs_nxt, mag, level))
        return best

    def _input_split(self, node, fixed, pre, lo, hi, g, nxt, abs_nxt, mag, level: float) -> float:
        """A bound on ||M||_p over the node by splitting the box (lo, hi) it was bounded over: best first, the
        sub-box with the largest bound is halved along its widest coordinate, until every sub-box is bounded <=
        ``level`` or ``input_split`` sub-boxes were bounded (:meth:`_sub_box_bound`). Returns the max over the
        sub-boxes left and dropped: they cover the box, which holds the node's polytope, so the bound is sound however
        the split ends (-inf: every sub-box proven to miss the node)."""
        free = np.nonzero(hi > lo)[0]
        if free.size == 0:
            return math.inf
        heap = [(-math.inf, 0, lo, hi)]  # (-bound, tie, lo, hi): a max-heap on the bound; the box itself unbounded
        ties = itertools.count(1)
        dropped, bounded = -math.inf, 0
        while heap and bounded < self.input_split:
            _, _, blo, bhi = heapq.heappop(heap)
            k = free[int(np.argmax((bhi - blo)[free]))]
            mid = 0.5 * (blo[k] + bhi[k])
            left_hi, right_lo = bhi.copy(), blo.copy()
            left_hi[k], right_lo[k] = mid, mid
            for slo, shi in ((blo, left_hi), (right_lo, bhi)):
                bounded += 1
                b = self._sub_box_bound(node, fixed, pre, slo, shi, g, nxt, abs_nxt, mag, level)
                if b <= level:
                    dropped = max(dropped, b)
                else:
                    heapq.heappush(heap, (-b, next(ties), slo, shi))
        return max(dropped, -heap[0][0] if heap else -math.inf)

    def _sub_box_bound(self, node, fixed, pre, lo, hi, g, nxt, abs_nxt, mag, level: float) -> float:
        """A sound bound on ||M||_p over the points of the node inside the sub-box [lo, hi]: the pre-activation
        bounds of the chain over the sub-box (CROWN, the node's fixed neurons exact) intersected with the node's
        ``pre`` (both hold there), their slope ranges bounded by interval matrices and, when that bound is above
        ``level``, by the slope-box vertices (:meth:`_vertex_bound`; the slope branch and bound here cut few nodes
        more at 1.6x the cost: benchmarks/exact_scale.py). ``mag``: the node's absolute-value chain,
        which bounds the chain of any narrower slope ranges. -inf when the bounds prove the sub-box misses the
        node."""
        sub = chain_bounds(node.g_mat, node.g_vec, self.layers[node.l:], lo, hi, fixed,
                           first_magnitude=self.tr.abs_map(node))
        both = []
        for (a, b), (c, d) in zip(sub, pre):
            if a.size == 0:
                return -math.inf
            a, b = np.maximum(a, c), np.minimum(b, d)
            if np.any(a > b):
                return -math.inf
            both.append((a, b))
        ranges = self._ranges(both)
        los = [sl[None, :] for sl, _ in ranges]
        his = [sh[None, :] for _, sh in ranges]
        b1 = float(self._interval_uppers(g, los, his, nxt, abs_nxt, mag)[0])
        return min(b1, self._vertex_bound(g, ranges, nxt, mag)) if b1 > level else b1

    def _vertex_values(self, g, slopes, nxt, mag) -> np.ndarray:
        """Sound upper bounds (B,) on ||W_L D_{L-1} ... D_l G (+ S)||_p at B slope vectors (per layer an array
        (B, n_j)): the float64 product's norm padded as :func:`certify.ir.numerics.norm_upper` pads (norm rounding;
        for p = 2 and a batch its Gram path, scaled by powers of two so that nothing underflows or overflows) plus
        ``CHAIN_PAD`` times the norm of ``mag`` (the same chain in absolute values: the product errs entrywise by
        less than CHAIN_PAD mag, and the norm is monotone on non-negative matrices)."""
        m = np.broadcast_to(g, (slopes[0].shape[0],) + g.shape)
        for s, w in zip(slopes, nxt):
            m = np.matmul(w, s[:, :, None] * m)
        if self.skip is not None:
            m = m + self.skip
        return norm_upper(m, self.p) + CHAIN_PAD * abs_norm_upper(mag + TINY, self.p)

    def _interval_uppers(self, g, los, his, nxt, abs_nxt, mag) -> np.ndarray:
        """Sound upper bounds (B,) on ||M||_p over B slope boxes (per layer (B, n_j) arrays ``los`` <= ``his``
        inside the node's ranges): the interval-matrix bound of :meth:`bound` (``mag``, the node's absolute-value
        chain, bounds every product of the sub-boxes too)."""
        lo_m = hi_m = np.broadcast_to(g, (los[0].shape[0],) + g.shape)
        for sl, sh, w, aw in zip(los, his, nxt, abs_nxt):
            lo_m, hi_m = scale_rows(lo_m, hi_m, sl, sh)
            lo_m, hi_m = matmul_interval_left(w, aw, lo_m, hi_m)
        if self.skip is not None:
            lo_m, hi_m = lo_m + self.skip, hi_m + self.skip
        return abs_norm_upper(np.maximum(np.abs(lo_m), np.abs(hi_m)) + CHAIN_PAD * mag + TINY, self.p)

    def _slope_bnb(self, g, ranges, nxt, abs_nxt, mag, level: float) -> float:
        """A bound on the max of ||M||_p over the vertices of the slope box (as :meth:`_vertex_bound`, which is exact
        for the relaxation) for up to ``_SLOPE_BNB_UNSTABLE`` unstable neurons, by a breadth-first branch and bound
        over their slopes: each level fixes one more slope at s_lo or at s_hi (M is affine in each slope and the norm
        convex, so the endpoints suffice), bounds every sub-box by interval matrices and probes its vertex at the
        upper slopes. A sub-box whose bound is <= max(best probe, ``level``) is dropped; the search stops when a
        probe exceeds a finite ``level`` (the node cannot be pruned; before any sub-box, a greedy climb over the
        vertices, :meth:`_climb`, looks for such a vertex: finding one returns inf at once, else the best vertex it met
        is the first best probe) or after
        ``_SLOPE_BNB_BOXES`` sub-boxes (with
        level -inf and no cap reached it ends at the relaxation's exact max). Returns the max
        of the best probe and the bounds of every sub-box dropped or left: the sub-boxes cover the slope box, so it
        is sound however the search ends; inf above the neuron cap."""
        units = [(j, i) for j, (sl, sh) in enumerate(ranges) for i in np.nonzero(sl != sh)[0]]
        if len(units) > _SLOPE_BNB_UNSTABLE:
            return math.inf
        # split order: the widest slope range times the largest next column first
        score = [_log_split_score(float(ranges[j][1][i] - ranges[j][0][i]), nxt[j][:, i]) for j, i in units]
        units = [units[k] for k in np.argsort(score)[::-1]]
        los = [sl[None, :].copy() for sl, _ in ranges]
        his = [sh[None, :].copy() for _, sh in ranges]
        best, dropped, boxes = -math.inf, -math.inf, 0
        if level > -math.inf:
            best = self._climb(g, ranges, units, nxt, mag)  # a vertex value: as good a start as any probe
            if best > level:
                return math.inf  # a vertex above the level: the slope box cannot prune this node
        for j, i in units + [(None, None)]:
            best = max(best, float(np.max(self._vertex_values(g, his, nxt, mag))))
            if j is None:
                return max(best, dropped)  # every slope fixed: the probes are the vertices
            ub = self._interval_uppers(g, los, his, nxt, abs_nxt, mag)
            boxes += ub.size
            if best > level > -math.inf or boxes >= _SLOPE_BNB_BOXES:
                return max(best, dropped, float(np.max(ub)))
            keep = ub > max(best, level)
            if not keep.all():
                dropped = max(dropped, float(np.max(ub[~keep])))
            if not keep.any():
                return max(best, dropped)
            los = [a[keep] for a in los]
            his = [a[keep] for a in his]
            at_lo_his, at_hi_los = his[j].copy(), los[j].copy()
            at_lo_his[:, i] = los[j][:, i]
            at_hi_los[:, i] = his[j][:, i]
            los = [np.concatenate([a, at_hi_los if k == j else a]) for k, a in enumerate(los)]
            his = [np.concatenate([at_lo_his if k == j else a, a]) for k, a in enumerate(his)]
        return max(best, dropped)

    def _climb(self, g, ranges, units, nxt, mag) -> float:
        """The largest vertex value met by a greedy climb over the slope box's vertices from the upper slopes: each
        of at most ``_CLIMB_ROUNDS`` rounds evaluates every single flip of an unstable slope ((layer, neuron) in
        ``units``) to its other end and moves to the best one if it is higher. Only a lower bound on the vertex
        maximum: the caller uses it to stop early, never as a bound."""
        current = [sh[None, :].copy() for _, sh in ranges]
        value = float(self._vertex_values(g, current, nxt, mag)[0])
        rows = np.arange(len(units))
        for _ in range(_CLIMB_ROUNDS):
            flips = [np.repeat(a, len(units), axis=0) for a in current]
            for row, (j, i) in zip(rows, units):
                sl, sh = ranges[j][0][i], ranges[j][1][i]
                flips[j][row, i] = sl if current[j][0, i] == sh else sh
            values = self._vertex_values(g, flips, nxt, mag)
            k = int(np.argmax(values))
            if values[k] <= value:
                break
            value = float(values[k])
            current = [a[k:k + 1].copy() for a in flips]
        return value

    def _vertex_bound(self, g, ranges, nxt, mag) -> float:
        """max of ||W_L D_{L-1} ... D_l G (+ S)||_p over every vertex of the slope box (each unstable neuron at
        s_lo or s_hi), when there are at most ``_VERTEX_MAX`` unstable neurons (else inf).

        Sound: M is affine in each single slope (each appears once in the product) and the norm is convex, so the
        max over the slope box sits at a vertex; each vertex's norm is bounded by :meth:`_vertex_values`."""
        k = sum(int(np.count_nonzero(sl != sh)) for sl, sh in ranges)
        if k > _VERTEX_MAX:
            return math.inf
        per_layer = [slope_vertices(sl, sh) for sl, sh in ranges]  # (2^u_j, n_j) each
        picks = np.meshgrid(*[np.arange(v.shape[0]) for v in per_layer], indexing="ij")
        slopes = [v[pick.ravel()] for v, pick in zip(per_layer, picks)]  # every combination: (2^k, n_j) each
        return float(np.max(self._vertex_values(g, slopes, nxt, mag)))


def slope_vertices(sl: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """(2^u, n) slope vectors: every choice of sl_i or sh_i on the u neurons with sl_i != sh_i (n,) each."""
    unstable = np.nonzero(sl != sh)[0]
    u = unstable.size
    bits = (np.arange(2 ** u)[:, None] >> np.arange(u)[None, :]) & 1 if u else np.zeros((1, 0), dtype=np.int64)
    s = np.repeat(sl[None, :], bits.shape[0], axis=0)
    s[:, unstable] = np.where(bits == 1, sh[unstable], sl[unstable])
    return s


def sample_lower(tr: Traversal, p: float, cols: int, samples: int, seed: int, metric: Metric | None = None):
    """Best (value, x, matrix) over random points and the box centre, each generic (:func:`generic_mask`)."""
    rng = np.random.default_rng(seed)
    lo, hi = tr.lo, tr.hi
    pts = [tr.box.center[None, :], rng.uniform(lo, hi, size=(samples, tr.n))]
    x = np.vstack(pts)
    h = x
    slopes = []
    ok = generic_mask(tr.net, x)
    for w, b, pcs in zip(tr.weights, tr.biases, tr.pieces):
        z = h @ w.T + b
        piece = pcs.piece_of(z)
        idx = np.arange(z.shape[1])
        s = pcs.slope[idx, piece]
        slopes.append(s)
        h = s * z + pcs.offset[idx, piece]
    m = np.broadcast_to(np.eye(tr.n)[:, :cols], (x.shape[0], tr.n, cols))
    for w, s in zip(tr.weights, slopes):
        m = s[:, :, None] * np.matmul(w, m)
    m = np.matmul(tr.net.out_weight, m)
    if tr.net.skip is not None:
        m = m + tr.net.skip[:, :cols]
    if metric is not None and not metric.is_identity:
        m = metric.conjugate(m)
    vals = np.where(ok, induced_norm(m, p), -np.inf)
    k = int(np.argmax(vals))
    if not np.isfinite(vals[k]):
        return -math.inf, None, None
    return float(vals[k]), x[k], m[k]


class _RegionProblem:
    """The region traversal as a :class:`~certify.engines.search.SearchProblem`: a node's item is a traversal
    node; leaves are settled exactly (a verified leaf is offered as a lower bound, an unverified one is final).

    ``threshold``: certify mode's threshold (on the search's scale): children are bounded against
    max(incumbent, threshold), the level the loop prunes at (:meth:`NodeBounder.bound`). ``guard``: the level a
    leaf's float64 value may not be carried across by rounding (:meth:`_leaf_bound`; default the threshold, and
    in an exact run the level the caller compares the value with)."""

    def __init__(self, tr: Traversal, bounder: NodeBounder, p: float, cols: int,
                 threshold: float | None = None, guard: float | None = None) -> None:
        self.tr, self.bounder, self.p, self.cols = tr, bounder, p, cols
        self.threshold = -math.inf if threshold is None else threshold
        self.guard = self.threshold if guard is None else guard
        self.slivers: list = []
        self.unverified_max = -math.inf
        self.inexact_max = -math.inf  # verified leaves whose float64 matrix is not exact to EXACT_REL
        self.guard_max = -math.inf  # verified leaves whose value and its rounding bound straddle the guard
        self.sliver_witnesses = 0  # leaves without a pool point settled by a generic Chebyshev centre

    def batch(self, top: Node, elapsed: float) -> int:
        return 1

    def after_step(self, top, incumbent, elapsed) -> None:
        return None

    def _on_thin(self, node, i, item) -> None:
        self.slivers.append(self.tr.sliver_child(node, i, item))

    def _offer_pool_point(self, node, incumbent: Incumbent) -> None:
        """Offer the deepest verified pool point of a node, if it is generic (:func:`generic_mask`: its pattern is
        then that of an open region)."""
        if node.px.shape[0] == 0:
            return
        x = node.px[int(np.argmax(node.pr))]
        if generic_mask(self.tr.net, x)[0]:
            pattern, _ = self.tr.pattern_at(x)
            m = self.tr.matrix_of(pattern)
            incumbent.offer(float(induced_norm(self.bounder.matrix(m), self.p)), x.copy(), m[:, : self.cols])

    def _sliver_point(self, leaf) -> np.ndarray | None:
        """A witness inside a leaf without a verified pool point (a sliver, or a leaf reached through an LP without
        an optimal status): its Chebyshev centre, if it is generic and its pattern is the leaf's (so the leaf's
        matrix is the matrix there); else None (the leaf then only raises ``upper``)."""
        if leaf.blind:  # a neuron without rows: no point is known to lie in the region
            return None
        x = self.tr.interior_point(leaf)
        if x is None or not generic_mask(self.tr.net, x)[0]:
            return None
        pattern, _ = self.tr.pattern_at(x)
        if all(np.array_equal(p, f) for p, f in zip(pattern, leaf.fixed)):
            self.sliver_witnesses += 1
            return x
        return None

    def _leaf_bound(self, leaf, m: np.ndarray, v: float) -> tuple[float, bool]:
        """What a leaf's region contributes to ``upper``, and whether only the guard made it so: its float64 value
        v while the rounding bound of its matrix (:meth:`NodeBounder.leaf_upper`) stays within 1e-9 relative of v
        (else that sound bound: a chain whose entries cancel, the float64 matrix says little) and cannot carry it
        across the guard (else that bound too: float64 cannot tell on which side the value lies)."""
        top = self.bounder.leaf_upper(leaf, m)
        if top - v > EXACT_REL * max(1.0, abs(v)):
            return top, False
        if v <= self.guard < top:
            return top, True
        return v, False

    def _bounded(self, child, incumbent: Incumbent) -> list[Node]:
        b = self.bounder.bound(child, level=max(incumbent.value, self.threshold))
        return [Node(b, child)] if b > -math.inf else []

    def expand(self, nodes: list[Node], incumbent: Incumbent) -> list[Node]:
        out: list[Node] = []
        for node in nodes:
            kind, val = self.tr.expand(node.item, self._on_thin)
            for child in self.slivers:  # slivers are searched too (no interior point: they only raise ``upper``)
                out += self._bounded(child, incumbent)
            self.slivers.clear()
            if kind == "leaf":
                m, _ = self.tr.leaf_map(val)
                v = float(induced_norm(self.bounder.matrix(m), self.p))
                top, on_guard = self._leaf_bound(val, m, v)
                x = val.px[int(np.argmax(val.pr))].copy() if val.px.shape[0] else self._sliver_point(val)
                if x is not None:
                    incumbent.offer(v, x, m[:, : self.cols])
                    if top > v:  # the float64 matrix may be off by more than its value's last digits
                        if on_guard:
                            self.guard_max = max(self.guard_max, top)
                        else:
                            self.inexact_max = max(self.inexact_max, top)
                        out.append(Node(top, None, final=True))
                else:
                    self.unverified_max = max(self.unverified_max, top)
                    out.append(Node(top, None, final=True))
            elif kind == "branch":
                for child in val:
                    self._offer_pool_point(child, incumbent)
                    out += self._bounded(child, incumbent)
        return out


def region_problem(query: Query) -> "_RegionProblem":
    """The search problem of :func:`region_search` for a query (its traversal and node bounder, from
    ``query.config.regions``): one set-up for the main process and every worker. BackendUnavailableError when the
    LP back-end is missing."""
    options = query.config.regions
    tr = Traversal(query.network, query.box, options.min_radius, lp_backend=query.config.solvers.lp,
                   by_influence=options.by_influence)
    bounder = NodeBounder(tr, query.norm, query.columns, query.metric, use_bbox=options.node_bbox,
                          use_lp=options.node_lp, use_slope_bnb=options.slope_bnb, input_split=options.input_split)
    scale = 1.0 if query.metric is None else query.metric.upper_factor
    threshold = None if query.threshold is None else query.threshold / scale
    guard = None if query.guard is None or threshold is not None else query.guard / scale
    return _RegionProblem(tr, bounder, query.norm, query.columns, threshold, guard)


def region_search(query: Query, executor=None) -> EngineResult:
    """sup over the box of ||A*(x)||_p or ||J(x)||_p for a piecewise-linear net, by branch and bound over
    activation regions (module docstring). Certify mode when ``query.threshold`` is set.

    ``query.lower_seed`` prunes only: ``lower`` always comes with this engine's own witness, replayed through the
    IR. Options: ``query.config.regions`` (min_radius, samples); ``query.config.budget`` nodes at most.

    ``executor``: run the search loop on it (:func:`~certify.engines.parallel.search_executor` of this query, on a
    pool of the caller's) instead of on the workers the config asks for.
    """
    t0 = time.perf_counter()
    net, p, q, cols = query.network, query.norm, query.quantity, query.columns
    if not net.piecewise_linear or (q is Quantity.A_STAR and not net.piecewise_linear_through_origin):
        why = ("A* is not constant on the regions of a clip-type net; the exact core serves J only"
               if net.piecewise_linear else f"the exact core needs piecewise-linear activations ({net.describe()})")
        return unsupported(query, why, t0)
    product = product_bound(net, query.box, p, q, query.state_only)
    if not chain_fits(product.weight_norms + product.slope_maxima + (product.skip_norm,)):
        # partial products may overflow, and tiny ones underflow where the rest of the chain amplifies them
        why = f"the region search does not run: {OVERFLOW_REASON}"
        return EngineResult(-math.inf, math.inf, None, None, False, time.perf_counter() - t0, why,
                            ((time.perf_counter() - t0, -math.inf, math.inf),), Outcome.UNSUPPORTED, method="bnb")
    options = query.config.regions
    try:
        problem = region_problem(query)
    except registry.BackendUnavailableError as exc:
        return unsupported(query, f"the region search cannot run: {exc}", t0)
    tr, bounder, metric = problem.tr, problem.bounder, query.metric
    incumbent = Incumbent(*sample_lower(tr, p, cols, options.samples, query.seed, metric))
    root = tr.root()
    # with a metric the search runs on ||T M Q|| (Q the float64 inverse of T) and corrects the bracket at the end
    up, down = (1.0, 1.0) if metric is None else (metric.upper_factor, metric.lower_factor)
    threshold = None if query.threshold is None else problem.threshold  # the threshold / up
    limits = SearchLimits(threshold=threshold, lower_seed=query.lower_seed, deadline=query.deadline,
                          timeout=query.config.timeout, max_nodes=query.budget, unit="nodes",
                          trace_every=_TRACE_EVERY)
    # serial unless config.workers > 1, a cluster or an executor is given
    with search_executor(query, "region", executor=executor) as loop_executor:
        run = best_first(problem, [Node(bounder.bound(root), root)], incumbent, limits, start=t0,
                         executor=loop_executor)
    lower, upper = incumbent.value, max(run.upper, incumbent.value)
    reason = run.reason
    if run.outcome is Outcome.EXCEEDED:
        reason = f"lower bound {lower:.12g} exceeds the threshold {query.threshold:.12g}"
    exhausted = run.exhausted
    if exhausted and upper > lower and not reason:
        parts = []
        if problem.unverified_max > lower:
            parts.append(f"regions without a verified interior point (slivers thinner than {tr.tol:.3g}, neurons"
                         f" whose float64 rows cancel, or LPs without an optimal status) reach"
                         f" {problem.unverified_max:.12g}")
        if problem.inexact_max > lower:
            parts.append(f"regions whose float64 matrix may be off by more than {EXACT_REL:g} of its norm (sums"
                         f" that cancel) reach {problem.inexact_max:.12g}")
        if problem.guard_max > lower:
            level = query.threshold if query.threshold is not None else query.guard
            parts.append(f"regions whose float64 value lies within its rounding bound of {level:.12g}"
                         f" reach {problem.guard_max:.12g}: float64 cannot tell on which side they lie")
        if query.threshold is not None and run.closed_max > lower:
            parts.append(f"nodes pruned below the threshold {query.threshold:.12g}")
        reason = "; ".join(parts)
    closed = exhausted and upper <= lower
    lower, upper = lower * down, upper * up
    witness, matrix = incumbent.point, incumbent.data
    if witness is not None:
        v, replayed = replay_norm(net, witness, q, p, cols, metric)
        if abs(v - lower) > 1e-9 * max(1.0, abs(lower)):
            reason = (reason + "; " if reason else "") + f"witness replay gave {v:.12g} instead of {lower:.12g}"
            closed = False
        # the lower bound is the replayed value whenever it is the smaller (a falsified verdict reads it): a value a
        # rounding step above 1 on the leaf's chain and below 1 through the model is not a witness
        lower = min(lower, v)
        matrix = replayed
    seconds = time.perf_counter() - t0
    trace = tuple((t, lo * down, hi * up) for t, lo, hi in run.trace[:-1]) + ((seconds, lower, upper),)
    return EngineResult(lower, upper, witness, matrix, exhausted, seconds, reason, trace, run.outcome,
                        SearchCounts(nodes=tr.nodes, lps=tr.lps), method="exact" if closed else "bnb",
                        closed=closed)


def unsupported(query: Query, why: str, t0: float) -> EngineResult:
    """Sampling lower bound through the IR (torch float64), infinite upper bound, and the reason ``why``."""
    net, box, cols = query.network, query.box, query.columns
    rng = np.random.default_rng(query.seed)
    x = np.vstack([box.center[None, :], rng.uniform(box.lower, box.upper,
                                                   size=(query.config.regions.samples, box.dim))])
    mats = net.jacobian(x) if query.quantity is Quantity.JACOBIAN else net.pwa(x)[0]
    mats = mats[:, :, :cols]
    vals = induced_norm(mats, query.norm)
    k = int(np.argmax(vals))
    seconds = time.perf_counter() - t0
    return EngineResult(float(vals[k]), math.inf, x[k], mats[k], False, seconds, why,
                        ((seconds, float(vals[k]), math.inf),), Outcome.UNSUPPORTED, method="bnb")
