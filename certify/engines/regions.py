"""Activation regions of a piecewise-linear net inside a box: depth-first traversal with an LP per split.

A *region* is the set of x in the box where every hidden neuron stays on one linear piece (ReLU-type: z <= 0 or
z >= 0; clip: below lo, between, above hi). Given the pieces of layers 0..l-1, z_l = G x + g is affine in x, so
a region is a polytope and f(x) = M x + c on it (M = A*(x) = J(x) for ReLU/LeakyReLU/PReLU/identity nets;
M = J(x) for any piecewise-linear net, clip included).

Traversal (one node = the box cut by the pieces fixed so far, plus a pool of verified interior points):
* neurons of the current layer whose range over the box (exact: z is affine there) meets one piece are fixed
  with no constraint row (the box implies it);
* otherwise each piece the range meets is tested: a pool point whose inscribed ball (radius recomputed in
  float64 against every row and face) stays at distance > ``tol`` from the piece's planes proves the piece
  full-dimensional with no LP; so does a pool point pushed across the piece's plane (radius re-checked the
  same way); the other pieces get one Chebyshev-centre LP (maximise the slack t of
  rows a x + t <= b, rows normalised) whose point is re-checked in float64;
* one feasible piece: fix and go on; several: branch. A piece whose LP ends OPTIMAL with slack <= ``tol`` is a
  *sliver* (thinner than tol, even thinner than a float step): it is dropped and counted (``thin``); the branch
  and bound bounds every dropped sliver soundly instead of trusting that it is empty. Only a piece proven
  lower-dimensional in exact rationals (``_flat``: a first-layer plane through a box face, two neurons of the
  layer that are multiples of each other) is dropped silently. An LP with any other status proves nothing: the
  piece is explored as if feasible (marked uncertain) and ``complete`` becomes False if it yields a region
  without a verified interior point.

Rounding: G and g are float64 products; each neuron's range is widened by a rigorous bound on their error
(``round_pad`` times the absolute-value chain, :meth:`Traversal.rounding`), and a neuron whose plane that error
may move by more than tol/2 (a row whose sums cancel) is split without rows into *blind* children, none of whose
points counts as verified. Degenerate cases handled on purpose: a neuron constant on the node (its row of G is
zero in exact arithmetic, e.g. all its inputs off) is fixed to the piece of its constant value (M does not depend
on that choice since its row of G is zero);
box coordinates of zero width are parameters: "full-dimensional" means relative to the box's affine hull and
distances use the free coordinates only. Lower-dimensional pieces (faces between regions) carry no region:
every point of the box lies in the closure of a full-dimensional region, where f = M x + c by continuity, so
sup over the full-dimensional regions is the quantity the certificates need (DESIGN.md section 2).
Only regions with an inscribed ball of radius > tol = ``min_radius * max box width`` are reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..bounds.dual_simplex import row_multipliers
from ..bounds.lp_dual import dual_lower_bounds
from ..errors import UsageError
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import EXACT_REL, TINY, affine_interval, chain_gamma
from ..ir.pieces import Pieces, pieces
from ..solvers import registry
from ..solvers.base import SolveStatus

DEFAULT_MIN_RADIUS = 1e-8


@dataclass(frozen=True, eq=False)
class ActivationRegion:
    """One full-dimensional activation region.

    ``pattern``: per hidden layer an int array (n_{l+1},) of piece indices (ReLU-type: 0 off / negative side,
    1 on); ``a_ub`` (m, n_in), ``b_ub`` (m,): the region is {x in box : a_ub x <= b_ub} (rows normalised over the
    free coordinates; constraints implied by the box are left out); ``interior`` (n_in,): a point whose ball of
    radius ``radius`` (free coordinates) lies in the region; ``m`` (n_out, n_in), ``c`` (n_out,): f(x) = m x + c
    on the region (m is A* = J for ReLU-type nets, J for clip nets).
    """

    pattern: tuple[np.ndarray, ...]
    a_ub: np.ndarray
    b_ub: np.ndarray
    interior: np.ndarray
    radius: float
    m: np.ndarray
    c: np.ndarray

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Membership (without the box test) of points x (B, n_in) or (n_in,), with slack tol."""
        x = np.asarray(x, dtype=np.float64)
        return np.all(x @ self.a_ub.T <= self.b_ub + tol, axis=-1)


@dataclass(frozen=True, eq=False)
class RegionEnumeration:
    """The result of :func:`enumerate_regions`.

    ``complete``: every LP ended OPTIMAL (or was not needed), so ``regions`` holds every region with an inscribed
    ball of radius > ``tol``; ``thin``: pieces dropped as slivers (slack <= tol); ``uncertain``: leaves reached
    through a failed LP without a verified interior point (not listed); ``lps``/``nodes``: work done.
    """

    regions: tuple[ActivationRegion, ...]
    complete: bool
    thin: int
    uncertain: int
    lps: int
    nodes: int
    seconds: float
    tol: float
    reason: str = ""


class _Node:
    """Internal mutable traversal state (never escapes this module and bnb.py)."""

    __slots__ = ("l", "fixed", "h_mat", "h_vec", "g_mat", "g_vec", "zlo", "zhi", "a", "b", "px", "pr", "uncertain",
                 "depth", "bbox_rows", "bbox", "src", "abs_h", "abs_hv", "blind")

    def copy(self) -> "_Node":
        n = _Node()
        n.l, n.h_mat, n.h_vec, n.g_mat, n.g_vec = self.l, self.h_mat, self.h_vec, self.g_mat, self.g_vec
        n.zlo, n.zhi, n.a, n.b, n.px, n.pr = self.zlo, self.zhi, self.a, self.b, self.px, self.pr
        n.fixed = list(self.fixed[:-1]) + [self.fixed[-1].copy()]
        n.uncertain, n.depth, n.bbox_rows, n.bbox = self.uncertain, self.depth, self.bbox_rows, self.bbox
        n.src, n.blind = self.src, self.blind
        n.abs_h, n.abs_hv = self.abs_h, self.abs_hv
        return n


_POOL = 8


def relative_norms(a: np.ndarray, axis: int) -> np.ndarray:
    """Euclidean norms of ``a`` along ``axis`` over its largest |entry| (a common factor: the same order as the
    norms, without overflow or underflow at any scale of a finite ``a``); zeros when ``a`` is zero or not finite.
    Only the order of the split neurons uses them: any order gives the same regions."""
    top = float(np.abs(a).max(initial=0.0))
    if not 0.0 < top < math.inf:
        return np.zeros(a.shape[1 - axis])
    return np.linalg.norm(a / top, axis=axis)


def _source(row: np.ndarray) -> tuple[int, int, float, bool]:
    """A row of a node's ``src`` (layer, neuron, bound, upper, shift) as Python values (without the shift)."""
    return int(row[0]), int(row[1]), float(row[2]), bool(row[3])
# bounding-box tightening (low input dimension only) when more than _BBOX_CROSSING * (free coordinates) neurons
# of the layer still cross a breakpoint and the node gained rows since its last bounding box
_BBOX_CROSSING = 4


class Traversal:
    """The shared engine of :func:`enumerate_regions` and :mod:`certify.engines.region_search` (internal API).

    ``expand(node, on_thin)`` resolves neurons until the node is a leaf (returns ``("leaf", node)``) or needs a
    branch (returns ``("branch", children)``); ``on_thin(node, neuron, item)`` is called for each dropped sliver,
    where ``item`` can be passed to :meth:`sliver_child` to build the sliver's node (no interior point, uncertain).
    ``solver``: an LP-sequence back-end (default: a new ``lp_backend`` from :mod:`certify.solvers.registry`, a
    :class:`certify.solvers.lp.LPSolver`) for the Chebyshev LPs; it keeps the LP of the
    node expanded last loaded and adds the rows of its descendants (DFS order makes most LPs warm starts); the
    LPs of the node bounds (:meth:`polytope_lower`) are solved all at once in numpy instead. Warm starts change no
    soundness assumption: every status is checked to be OPTIMAL and every returned point is re-checked in float64.
    ``by_influence``: a node's free neurons of a layer are split largest ||column of the next weight|| x ||row of
    G|| first (else in index order); any order gives the same regions, this one fewer nodes
    (benchmarks/exact_scale.py).
    """

    def __init__(self, net: Network, box: Box, min_radius: float = DEFAULT_MIN_RADIUS, solver=None,
                 lp_backend: str = "highs", by_influence: bool = True) -> None:
        if not net.piecewise_linear:
            raise UsageError(f"region traversal needs piecewise-linear activations, got {net.describe()}")
        if box.dim != net.n_in:
            raise UsageError(f"the box has {box.dim} coordinates but the net takes {net.n_in} inputs")
        self.net, self.box = net, box
        lp = registry.ProblemKind.LP_SEQUENCE
        self.solver = solver or registry.get_backend(lp_backend, lp)  # Chebyshev LPs (the current node's LP loaded)
        self._loaded = None  # (key, rows a, rhs b) of the Chebyshev LP loaded in ``solver``
        self.lo, self.hi = box.lower, box.upper
        self.free = self.hi > self.lo
        width = float(np.max(self.hi - self.lo))
        self.tol = min_radius * (width if width > 0 else 1.0)
        # an LP optimum below -empty_tol proves the piece empty despite HiGHS's 1e-9 feasibility tolerance;
        # between -empty_tol and tol the piece is a sliver (reported to on_thin)
        self.empty_tol = max(self.tol, 1e-7 * max(1.0, float(np.max(np.abs(np.concatenate([self.lo, self.hi]))))))
        self.weights = [layer.weight for layer in net.layers]
        self.biases = [layer.bias for layer in net.layers]
        self.abs_w = [np.abs(w) for w in self.weights]
        self.abs_b = [np.abs(b) for b in self.biases]
        self.xmax = np.maximum(np.abs(self.lo), np.abs(self.hi))
        # the float64 maps G, g of a node (and a leaf's M) err by at most round_pad times their absolute-value
        # chains (abs_map): z ranges are widened by it, and a neuron whose plane it moves by more than tol/2
        # is split without rows (blind: no point of its children is verified)
        widths = [net.n_in] + [w.shape[0] for w in self.weights]
        self.round_pad = chain_gamma(max(widths), len(self.weights) + 1)
        self.pieces: list[Pieces] = [pieces(layer.activation, layer.width) for layer in net.layers]
        self.L = len(net.layers)
        self.n = net.n_in
        # per layer the column norms of the next weight (the output weight after the last layer): the order in
        # which a node's neurons are split (by_influence; any order gives the same regions)
        nxt = self.weights[1:] + [net.out_weight]
        self.influence = [relative_norms(w, axis=0) for w in nxt] if by_influence else None
        self.lps = 0
        self.nodes = 0
        nf = int(self.free.sum())
        self.n_free = nf
        # box rows of the Chebyshev LP over the free coordinates: x_k + t <= hi_k, -x_k + t <= -lo_k
        eye = np.eye(self.n)[self.free]
        self._box_a = np.vstack([np.hstack([eye, np.ones((nf, 1))]), np.hstack([-eye, np.ones((nf, 1))])])
        self._box_b = np.concatenate([self.hi[self.free], -self.lo[self.free]])
        self._cheb_c = np.zeros(self.n + 1)
        self._cheb_c[-1] = 1.0
        self._cheb_lo = np.concatenate([self.lo, [-np.inf]])
        self._cheb_hi = np.concatenate([self.hi, [np.inf]])

    # ------------------------------------------------------------------ geometry helpers
    def _box_radius(self, x: np.ndarray) -> np.ndarray:
        """Distance of points x (k, n) to the box faces over the free coordinates (k,); inf when none are free."""
        if not self.free.any():
            return np.full(x.shape[0], np.inf)
        d = np.minimum(x[:, self.free] - self.lo[self.free], self.hi[self.free] - x[:, self.free])
        return d.min(axis=1)

    def _row(self, gi: np.ndarray, gv: float, bound: float, upper: bool):
        """Normalised row of  z <= bound (upper) or z >= bound (not upper) with z = gi x + gv."""
        nrm = float(np.linalg.norm(gi[self.free]))
        if upper:
            return gi / nrm, (bound - gv) / nrm
        return -gi / nrm, (gv - bound) / nrm

    def root(self) -> _Node:
        node = _Node()
        node.l = 0
        node.h_mat, node.h_vec = np.eye(self.n), np.zeros(self.n)
        node.a, node.b = np.zeros((0, self.n)), np.zeros(0)
        c = self.box.center.reshape(1, -1)
        node.px, node.pr = c, self._box_radius(c)
        node.uncertain = False
        node.depth = 0
        node.bbox_rows = 0
        node.bbox = None
        node.fixed = []
        # per row of a: (layer, neuron, bound, 1 if z <= bound else 0, how far rounding may move its plane)
        node.src = np.zeros((0, 5))
        node.blind = False
        node.abs_h, node.abs_hv = np.eye(self.n), np.zeros(self.n)
        self._enter_layer(node)
        return node

    def _enter_layer(self, node: _Node) -> None:
        if node.l < self.L:
            w, b = self.weights[node.l], self.biases[node.l]
            node.g_mat = w @ node.h_mat
            node.g_vec = w @ node.h_vec + b
            lo, hi = self.lo, self.hi
            if node.bbox is not None and node.bbox[0] == node.a.shape[0]:
                lo, hi = node.bbox[1], node.bbox[2]  # the polytope's (sound) bounding box, when known
            node.zlo, node.zhi = self._z_range(node, slice(None), lo, hi)
            node.fixed = node.fixed + [np.full(w.shape[0], -1, dtype=np.int64)]

    def _finish_layer(self, node: _Node) -> None:
        pcs, f = self.pieces[node.l], node.fixed[node.l]
        idx = np.arange(f.size)
        s, o = pcs.slope[idx, f], pcs.offset[idx, f]
        node.h_mat = s[:, None] * node.g_mat
        node.h_vec = s * node.g_vec + o
        abs_g, abs_gv = self.abs_map(node)
        node.abs_h = np.abs(s)[:, None] * abs_g
        node.abs_hv = np.abs(s) * abs_gv + np.abs(o)
        node.l += 1
        self._enter_layer(node)

    def leaf_map(self, node: _Node) -> tuple[np.ndarray, np.ndarray]:
        """(M, c) of a leaf: f(x) = M x + c on its region; shapes (n_out, n_in), (n_out,)."""
        m = self.net.out_weight @ node.h_mat
        c = self.net.out_weight @ node.h_vec + self.net.out_bias
        if self.net.skip is not None:
            m = m + self.net.skip
        return m, c

    # ------------------------------------------------------------------ LP
    def _chebyshev(self, node: _Node, ra: np.ndarray, rb: np.ndarray):
        """Max slack t of {a x + t <= b, box} for the node's rows (a, b) plus rows (ra, rb) ((k, n), (k,)):
        returns (status_ok, x, t) (x, t None unless OPTIMAL). The node's LP stays loaded in the solver while its
        pieces are tested (only the extra rows change: warm start). The returned point is re-checked in float64
        by the caller (``_radius``)."""
        n = self.n
        self._loaded = self._extend_loaded(node, self.solver, self._loaded)
        if self._loaded is None:
            rows = np.vstack([np.hstack([node.a, np.ones((node.a.shape[0], 1))]), self._box_a])
            rhs = np.concatenate([node.b, self._box_b])
            self._loaded = (object(), node.a, node.b)
            if not self.solver.load(self._cheb_c, rows, rhs, self._cheb_lo, self._cheb_hi, maximize=True,
                                    key=self._loaded[0]):
                self._loaded = None
                return False, None, None
        self.lps += 1
        status, x = self.solver.solve_with_rows(np.hstack([ra, np.ones((ra.shape[0], 1))]), rb)
        if status is not SolveStatus.OPTIMAL:
            return False, None, None
        return True, np.clip(x[:n], self.lo, self.hi), float(x[n])

    def _extend_loaded(self, node: _Node, solver, loaded):
        """The state (key, rows a, rhs b) of ``solver``'s loaded Chebyshev LP when it can serve the node: it holds a
        prefix of the node's rows (the node descends from the node loaded last) and the missing rows are added now
        (with the slack column of ones); None when the node's LP must be loaded afresh."""
        if loaded is None or not solver.holds(loaded[0]):
            return None
        key, a0, b0 = loaded
        m0 = a0.shape[0]
        if m0 > node.a.shape[0] or not (np.array_equal(node.a[:m0], a0) and np.array_equal(node.b[:m0], b0)):
            return None
        if node.a.shape[0] > m0:
            extra = np.hstack([node.a[m0:], np.ones((node.a.shape[0] - m0, 1))])
            if not solver.add_rows(extra, node.b[m0:]):
                return None
        return (key, node.a, node.b)

    def polytope_bbox(self, node: _Node):
        """Bounding box (lo, hi) ((n,), (n,)) of the node's polytope {x in box : a x <= b}: 2 LPs per free
        coordinate (:meth:`polytope_lower`), each end a weak-duality bound re-derived in float64, sound whatever
        the LPs' accuracy (never None: an LP the simplex leaves unfinished only widens it). Cached on the node
        until it gains rows."""
        if node.a.shape[0] == 0:
            return self.lo, self.hi
        if node.bbox is not None and node.bbox[0] == node.a.shape[0]:
            return node.bbox[1], node.bbox[2]
        free = np.nonzero(self.free)[0]
        eye = np.eye(self.n)[free]
        ends = self.polytope_lower(node, np.vstack([eye, -eye]))
        lo, hi = self.lo.copy(), self.hi.copy()
        k = free.size
        lo[free] = np.maximum(lo[free], ends[:k])
        hi[free] = np.minimum(hi[free], -ends[k:])
        node.bbox = (node.a.shape[0], lo, np.maximum(lo, hi))
        return node.bbox[1], node.bbox[2]

    def polytope_lower(self, node: _Node, costs: np.ndarray) -> np.ndarray:
        """Sound lower bounds (k,) of min costs[k] @ x over the node's polytope {x in box : a x <= b}; costs (k, n).

        The LPs are solved together by :func:`certify.bounds.dual_simplex.row_multipliers` (counted in ``lps``);
        each bound is re-derived in float64 from the multipliers by weak duality
        (:func:`certify.bounds.lp_dual.dual_lower_bounds`), so it rests on no solver tolerance: an LP the simplex
        does not finish only gives a weaker bound (at worst the bound over the box). Each row's right-hand side is
        relaxed by how far rounding may move its plane (``src[:, 4]``): the real polytope lies inside."""
        costs = np.asarray(costs, dtype=np.float64)
        self.lps += costs.shape[0]
        b = node.b + node.src[:, 4]
        ys = row_multipliers(costs, node.a, b, self.lo, self.hi)
        return dual_lower_bounds(costs, node.a, b, self.lo, self.hi, ys)

    def _tighten_by_bbox(self, node: _Node, idx: np.ndarray) -> None:
        """Tighten z ranges of neurons ``idx`` with the bounding box of the node's polytope (:meth:`polytope_bbox`)."""
        node.bbox_rows = node.a.shape[0]
        box = self.polytope_bbox(node)
        zl, zu = self._z_range(node, idx, box[0], box[1])
        node.zlo, node.zhi = node.zlo.copy(), node.zhi.copy()
        node.zlo[idx] = np.maximum(node.zlo[idx], zl)
        node.zhi[idx] = np.minimum(node.zhi[idx], zu)

    def _z_range(self, node: _Node, idx, lo: np.ndarray, hi: np.ndarray):
        """Sound [lower, upper] of the real pre-activations ``idx`` of the node's layer over [lo, hi] (inside the
        box): the float64 map's interval, widened by its own rounding error (:meth:`rounding`)."""
        zl, zu = affine_interval(node.g_mat[idx], node.g_vec[idx], lo, hi)
        err = self.rounding(node)[idx]
        return zl - err, zu + err

    def rounding(self, node: _Node) -> np.ndarray:
        """Bound (n_l,) on |real z - float64 z| of the node's layer anywhere in the box: ``round_pad`` times the
        absolute-value chain of the map."""
        abs_g, abs_gv = self.abs_map(node)
        return self.round_pad * (abs_g @ self.xmax + abs_gv) + TINY

    def abs_map(self, node: _Node) -> tuple[np.ndarray, np.ndarray]:
        """The absolute-value chain (|W_l| |D| ... |W_0| (n_l, n_in), and its bias part (n_l,)) of the node's layer
        map z = G x + g: an entrywise bound on |G| and |g| that no cancellation shrinks (the node keeps only the
        chain of its prefix, so that it pickles small)."""
        return self.abs_w[node.l] @ node.abs_h, self.abs_w[node.l] @ node.abs_hv + self.abs_b[node.l]

    def leaf_error(self, node: _Node) -> np.ndarray:
        """Entrywise bound (n_out, n_in) on |real M - float64 M| of a leaf (:meth:`leaf_map`)."""
        mag = np.abs(self.net.out_weight) @ node.abs_h
        if self.net.skip is not None:
            mag = mag + np.abs(self.net.skip)
        return self.round_pad * mag + TINY

    def leaf_exact(self, node: _Node, m: np.ndarray, c: np.ndarray) -> bool:
        """Whether a leaf's float64 map (m, c) (:meth:`leaf_map`) is within ``EXACT_REL`` of the real one: m
        entrywise relative to max(1, its largest entry), c likewise."""
        err_c = self.round_pad * (np.abs(self.net.out_weight) @ node.abs_hv + np.abs(self.net.out_bias))
        ok_m = np.max(self.leaf_error(node), initial=0.0) <= EXACT_REL * max(1.0, np.max(np.abs(m), initial=0.0))
        ok_c = np.max(err_c, initial=0.0) <= EXACT_REL * max(1.0, np.max(np.abs(c), initial=0.0))
        return bool(ok_m and ok_c)

    def _flat(self, node: _Node, ra: np.ndarray, rb: np.ndarray, src) -> bool:
        """True when a piece (new rows ``ra``, ``rb`` (k, n), (k,) with their ``src``) is proven in exact rational
        arithmetic to have no interior in the node: a hyperplane through a face of the box (a first-layer neuron
        of one free coordinate) or two neurons of the current layer that are multiples of each other (duplicated
        or negated neurons). Float64 only selects the candidates (a row opposite to a node row or a box face to
        1e-12); the proof uses the stored weights and box as exact rationals. A piece the floats call flat but
        nothing proves is a sliver: the caller hands it on, so a kink that rounding moved onto a face (a piece
        thinner than a float step) is still searched."""
        eye = np.eye(self.n)[self.free]
        n_rows = node.a.shape[0]
        rows = np.vstack([node.a, eye, -eye])
        rhs = np.concatenate([node.b, self.hi[self.free], -self.lo[self.free]])
        eps = 1e-12 * max(1.0, float(np.max(np.abs(rhs), initial=0.0)))
        for r_a, r_b, s_new in zip(ra, rb, map(_source, src)):
            opposite = np.all(np.abs(rows + r_a[None, :]) <= 1e-12, axis=1) & (rhs + r_b <= eps)
            for k in np.nonzero(opposite)[0]:
                if k >= n_rows:
                    if self._flat_on_face(s_new):
                        return True
                elif self._flat_pair(s_new, _source(node.src[k])):
                    return True
        return False

    def _exact_neuron(self, layer: int, i: int):
        """Neuron i of ``layer`` as exact rationals (coefficients, constant): z = coef . h + const, h the layer's
        input; on layer 0 the coefficients are those of the free coordinates and the fixed ones join the constant."""
        w, b = self.weights[layer][i], Fraction(float(self.biases[layer][i]))
        if layer > 0:
            return [Fraction(float(v)) for v in w], b
        const = b + sum((Fraction(float(w[k])) * Fraction(float(self.lo[k])) for k in np.nonzero(~self.free)[0]),
                        Fraction(0))
        return [Fraction(float(w[k])) for k in np.nonzero(self.free)[0]], const

    @staticmethod
    def _no_room(constraints) -> bool:
        """True when the constraints (value, upper) on one real variable (t <= value if upper, t >= value if not)
        leave at most one point."""
        ups = [v for v, up in constraints if up]
        lows = [v for v, up in constraints if not up]
        return bool(ups) and bool(lows) and min(ups) <= max(lows)

    def _flat_on_face(self, s_new) -> bool:
        layer, i, bound, upper = s_new
        if layer != 0:
            return False
        coef, const = self._exact_neuron(0, i)
        nz = [k for k, v in enumerate(coef) if v != 0]
        if len(nz) != 1:
            return False
        k = nz[0]
        f = int(np.nonzero(self.free)[0][k])
        cut = (Fraction(bound) - const) / coef[k]  # the piece is x_f <= cut or x_f >= cut
        x_upper = upper == (coef[k] > 0)
        return self._no_room([(cut, x_upper), (Fraction(float(self.lo[f])), False),
                              (Fraction(float(self.hi[f])), True)])

    def _flat_pair(self, s_new, s_row) -> bool:
        (layer, i, bound, upper), (layer2, i2, bound2, upper2) = s_new, s_row
        if layer != layer2 or i == i2:
            return False
        coef, const = self._exact_neuron(layer, i)
        coef2, const2 = self._exact_neuron(layer, i2)
        nz = [k for k, v in enumerate(coef2) if v != 0]
        if not nz:
            return False
        c = coef[nz[0]] / coef2[nz[0]]  # z_i = c z_i2 exactly, if every coefficient agrees
        if c == 0 or const != c * const2 or any(v != c * v2 for v, v2 in zip(coef, coef2)):
            return False
        # on the variable t = z_i2: the node's row and the piece's row (c t <= bound, or >=)
        return self._no_room([(Fraction(bound2), upper2), (Fraction(bound) / c, upper == (c > 0))])

    def _pushed_points(self, node: _Node, ra: np.ndarray, rb: np.ndarray, a_all: np.ndarray, b_all: np.ndarray):
        """Try to prove a piece with one new row (ra, rb) full-dimensional without an LP: push each pool point
        x across the row's plane along its normal (free coordinates) to depth pr(x)/2 beyond it, and keep the
        points whose inscribed radius, recomputed in float64 against every row of ``a_all``/``b_all`` and the
        box, exceeds ``tol`` (the same check as for an LP's point). Returns (points (k, n), radii (k,)) sorted by
        radius, at most ``_POOL``, or None when no point qualifies."""
        if node.px.shape[0] == 0 or ra.shape[0] != 1:
            return None
        a = np.where(self.free, ra[0], 0.0)
        viol = node.px @ ra[0] - rb[0]  # > 0: on the wrong side
        x = node.px - (viol + 0.5 * node.pr)[:, None] * a[None, :]
        r = self._radius(x, a_all, b_all)
        keep = np.nonzero(r > self.tol)[0]
        if keep.size == 0:
            return None
        keep = keep[np.argsort(-r[keep])][:_POOL]
        return x[keep], r[keep]

    def _radius(self, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Float64 inscribed radius at points x (k, n): min over box faces and rows (rows normalised)."""
        r = self._box_radius(x)
        if a.shape[0]:
            r = np.minimum(r, (b[None, :] - x @ a.T).min(axis=1))
        return r

    # ------------------------------------------------------------------ the step
    def expand(self, node: _Node, on_thin=None):
        """Resolve neurons of ``node`` in place until a leaf or a branch; see the class docstring."""
        self.nodes += 1
        while node.l < self.L:
            l = node.l
            pcs, f = self.pieces[l], node.fixed[l]
            free_idx = np.nonzero(f < 0)[0]
            if free_idx.size > 1 and self.influence is not None:
                # the neurons with the largest effect on the layer map first: ||next column|| ||row of G||
                score = self.influence[l][free_idx] * relative_norms(node.g_mat[free_idx], axis=1)
                free_idx = free_idx[np.argsort(-score, kind="stable")]
            if free_idx.size:
                over = pcs.overlapping(node.zlo[free_idx], node.zhi[free_idx], free_idx)
                crossing = int(np.count_nonzero(over.sum(axis=1) > 1))
                if self.n_free <= 4 and crossing > _BBOX_CROSSING * self.n_free and node.a.shape[0] > node.bbox_rows:
                    self._tighten_by_bbox(node, free_idx)
                    over = pcs.overlapping(node.zlo[free_idx], node.zhi[free_idx], free_idx)
            err = self.rounding(node) if free_idx.size else None
            for pos, i in enumerate(free_idx):
                gi = node.g_mat[i]
                cand = np.nonzero(over[pos])[0]
                if cand.size == 1:
                    f[i] = cand[0]
                    continue
                flat_row = not np.any(gi[self.free] != 0.0)
                if flat_row and (not np.any(self.abs_map(node)[0][i][self.free] != 0.0) or self._zero_row(node, i)):
                    # constant on the box slice (its row is zero in exact arithmetic): fixed by its value; M does
                    # not depend on the choice
                    f[i] = int(pcs.piece_of(np.array([gi @ self.box.center + node.g_vec[i]]))[0])
                    continue
                row_norm = float(np.linalg.norm(gi[self.free]))
                if flat_row or err[i] > 0.5 * self.tol * row_norm:
                    # rounding may move the neuron's plane by more than tol/2 (its float64 row cancels): no row
                    # can be trusted, so each piece its range meets is a child without rows and without points
                    return "branch", [self._blind_child(node, i, j) for j in cand]
                feasible = []  # (piece, rows a, rows b, px, pr, uncertain)
                bps = pcs.breakpoints[i]
                shift = float(err[i]) / row_norm  # how far the real plane may lie from the float64 one (< tol / 2)
                for j in cand:
                    ra, rb, src = [], [], []
                    if j > 0 and bps[j - 1] > node.zlo[i]:
                        a_, b_ = self._row(gi, node.g_vec[i], bps[j - 1], upper=False)
                        ra.append(a_)
                        rb.append(b_)
                        src.append((l, i, bps[j - 1], 0.0, shift))
                    if j < bps.size and bps[j] < node.zhi[i]:
                        a_, b_ = self._row(gi, node.g_vec[i], bps[j], upper=True)
                        ra.append(a_)
                        rb.append(b_)
                        src.append((l, i, bps[j], 1.0, shift))
                    ra, rb = np.array(ra).reshape(-1, self.n), np.array(rb)
                    src = np.array(src, dtype=np.float64).reshape(-1, 5)
                    pr = node.pr
                    if node.px.shape[0]:
                        pr = np.minimum(pr, (rb[None, :] - node.px @ ra.T).min(axis=1)) if ra.shape[0] else pr
                    keep = pr > self.tol
                    if keep.any():
                        feasible.append((j, ra, rb, node.px[keep], pr[keep], node.uncertain, src))
                        continue
                    a_all, b_all = np.vstack([node.a, ra]), np.concatenate([node.b, rb])
                    pushed = self._pushed_points(node, ra, rb, a_all, b_all)
                    if pushed is not None:
                        feasible.append((j, ra, rb, pushed[0], pushed[1], node.uncertain, src))
                        continue
                    ok, x, t_opt = self._chebyshev(node, ra, rb)
                    if not ok:
                        feasible.append((j, ra, rb, np.zeros((0, self.n)), np.zeros(0), True, src))
                        continue
                    r = self._radius(x[None, :], a_all, b_all)
                    if r[0] > self.tol:
                        px = np.vstack([x[None, :], node.px])
                        pr2 = np.concatenate([r, np.zeros(node.px.shape[0])])
                        if node.px.shape[0] and ra.shape[0]:
                            pr2[1:] = np.minimum(node.pr, (rb[None, :] - node.px @ ra.T).min(axis=1))
                        k = pr2 > self.tol
                        feasible.append((j, ra, rb, px[k][:_POOL], pr2[k][:_POOL], node.uncertain, src))
                    elif t_opt > -self.empty_tol and self._flat(node, ra, rb, src):
                        continue  # proven to lie in a hyperplane: no interior
                    elif on_thin is not None and t_opt > -self.empty_tol:
                        on_thin(node, i, (j, ra, rb, np.zeros((0, self.n)), np.zeros(0), True, src))
                if len(feasible) == 0:
                    return "empty", node
                if len(feasible) == 1:
                    self._apply(node, i, feasible[0])
                    continue
                children = []
                for item in feasible:
                    child = node.copy()
                    self._apply(child, i, item)
                    child.depth = node.depth + 1
                    children.append(child)
                # pieces found feasible for neuron i also prove the pool points of every child
                return "branch", children
            self._finish_layer(node)
        return "leaf", node

    def interior_point(self, node: _Node) -> np.ndarray | None:
        """The Chebyshev centre (n_in,) of a node's polytope when its LP ends OPTIMAL with a positive slack, else
        None. The point may lie in a sliver far thinner than ``tol``: callers check it in float64 before use."""
        ok, x, t = self._chebyshev(node, np.zeros((0, self.n)), np.zeros(0))
        return x if ok and t is not None and t > 0 else None

    def sliver_child(self, node: _Node, i: int, item) -> _Node:
        """The node of a dropped sliver (a snapshot of ``node`` with neuron i on the sliver's piece)."""
        child = node.copy()
        self._apply(child, i, item)
        child.depth = node.depth + 1
        return child

    def _zero_row(self, node: _Node, i: int) -> bool:
        """True when neuron i of the node's layer has a zero row (free coordinates) in exact rational arithmetic:
        W_l[i] D_{l-1} W_{l-1} ... D_0 W_0 with the node's fixed slopes, as Fractions (a float64 row can cancel to
        zero when the real one does not, and the other way round)."""
        row = [Fraction(float(v)) for v in self.weights[node.l][i]]
        for k in range(node.l - 1, -1, -1):
            pcs, f = self.pieces[k], node.fixed[k]
            slopes = pcs.slope[np.arange(f.size), f]
            row = [r * Fraction(float(s)) for r, s in zip(row, slopes)]
            w = self.weights[k]
            row = [sum((r * Fraction(float(w[j, c])) for j, r in enumerate(row) if r != 0), Fraction(0))
                   for c in range(w.shape[1])]
        return all(row[c] == 0 for c in np.nonzero(self.free)[0])

    def _blind_child(self, node: _Node, i: int, j: int) -> _Node:
        """Neuron i on piece j with no row: the child's polytope contains its region (LPs over it still prove
        pieces empty), but none of its points is verified to lie in the region, nor are its descendants'."""
        child = node.copy()
        child.blind = True
        self._apply(child, i, (j, np.zeros((0, self.n)), np.zeros(0), None, None, True, np.zeros((0, 5))))
        child.depth = node.depth + 1
        return child

    def _apply(self, node: _Node, i: int, item) -> None:
        j, ra, rb, px, pr, uncertain, src = item
        node.fixed[node.l][i] = j
        if ra.shape[0]:
            node.a = np.vstack([node.a, ra])
            node.b = np.concatenate([node.b, rb])
            node.src = np.vstack([node.src, src])
        if node.blind or px is None:
            px, pr = np.zeros((0, self.n)), np.zeros(0)
        node.px, node.pr, node.uncertain = px, pr, uncertain

    # ------------------------------------------------------------------ numpy replay of a point
    def pattern_at(self, x: np.ndarray):
        """(pattern, margin) at x (n_in,): piece per neuron per layer, and the min over neurons of
        |z - breakpoint| / (1 + |z|) (a relative distance; points with a tiny margin are too close to a face
        for their pattern to be trusted as the pattern of a full-dimensional region)."""
        h = x
        pattern, margin = [], math.inf
        for w, b, pcs in zip(self.weights, self.biases, self.pieces):
            z = w @ h + b
            p = pcs.piece_of(z)
            if pcs.breakpoints.shape[1]:
                rel = np.abs(z[:, None] - pcs.breakpoints) / (1.0 + np.abs(z[:, None]))
                margin = min(margin, float(np.min(rel)))
            pattern.append(p)
            idx = np.arange(z.size)
            h = pcs.slope[idx, p] * z + pcs.offset[idx, p]
        return pattern, margin

    def matrix_of(self, pattern) -> np.ndarray:
        """M = W_L D_{L-1} W_{L-1} ... D_0 W_0 + S of a pattern; (n_out, n_in)."""
        m = np.eye(self.n)
        for w, pcs, p in zip(self.weights, self.pieces, pattern):
            m = pcs.slope[np.arange(p.size), p][:, None] * (w @ m)
        m = self.net.out_weight @ m
        return m + self.net.skip if self.net.skip is not None else m


def enumerate_regions(net: Network, box: Box, min_radius: float = DEFAULT_MIN_RADIUS,
                      timeout: float = math.inf) -> RegionEnumeration:
    """Every full-dimensional activation region of a piecewise-linear net in the box (see the module docstring).

    Raises :class:`~certify.errors.UsageError` for a net that is not piecewise linear or a box of the wrong size.
    """
    t0 = time.perf_counter()
    tr = Traversal(net, box, min_radius)
    stack = [tr.root()]
    out: list[ActivationRegion] = []
    thin = [0]
    uncertain = 0
    reason = ""

    def on_thin(node, i, j):
        thin[0] += 1

    while stack:
        if time.perf_counter() - t0 > timeout:
            reason = f"timeout after {timeout:g} s with {len(stack)} open nodes"
            break
        kind, val = tr.expand(stack.pop(), on_thin)
        if kind == "branch":
            stack.extend(reversed(val))
        elif kind == "leaf":
            node = val
            m, c = tr.leaf_map(node)
            if node.px.shape[0] == 0 or not tr.leaf_exact(node, m, c):
                uncertain += 1  # no verified point, or a float64 map too far from the real one to solve with
                continue
            k = int(np.argmax(node.pr))
            x = node.px[k]
            pattern = tuple(f.copy() for f in node.fixed)
            out.append(ActivationRegion(pattern, node.a, node.b, x.copy(), float(node.pr[k]), m, c))
    complete = not stack and uncertain == 0
    if uncertain and not reason:
        reason = (f"{uncertain} leaves without a verified interior point (LPs without an optimal status) or whose "
                  f"float64 map may be off by more than {EXACT_REL:g} (sums that cancel)")
    return RegionEnumeration(tuple(out), complete, thin[0], uncertain, tr.lps, tr.nodes,
                             time.perf_counter() - t0, tr.tol, reason)
