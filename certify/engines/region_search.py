"""Branch and bound for rho = sup over the box of ||A*(x)||_p (or ||J(x)||_p), p in {1, 2, inf}, PWL nets.

The nodes are those of the region traversal (:class:`certify.engines.regions.Traversal`): a node fixes the pieces of
some neurons, layer by layer, and carries its polytope and verified interior points. On a node, layer l's
pre-activations z_l = G x + g are exact; the rest of the chain is relaxed:

* bounds on every later pre-activation over the node (CROWN back-substitution, :func:`certify.bounds.interval.chain_bounds`,
  with the node's fixed neurons exact) give each neuron a slope interval [s_lo, s_hi] (the min/max slope of the
  pieces its interval meets; a single value for stable neurons);
* M = W_L D_{L-1} ... D_l G (+ S) with D_k in those intervals is enclosed entrywise by interval matrix
  arithmetic (|M| <= U), so ||M||_p <= ||U||_p (p = 1, inf exact for U; p = 2: ||U||_2 and
  sqrt(||U||_1 ||U||_inf)); and by the product ||tail||_p ||G||_p of the interval tail W_L D ... D_l and the exact
  head G; and, when at most ``_VERTEX_MAX`` neurons are unstable, by the max of ||M|| over every vertex of the
  slope box (exact for the relaxation). M is affine in each slope separately and the norm is convex, so these
  relax only geometry.
  Every U is padded by 1e-11 times the same chain in absolute values (rounding).
* lower bounds: ||M|| of the region of any point whose pre-activations all stay a relative 1e-9 away from a
  breakpoint (so its pattern is that of a full-dimensional region, not an artefact of rounding on a face), exact at
  leaves (float64, SVD for p = 2).

Best-first search on the upper bound. A node is pruned when its bound is <= the best lower bound (exact value)
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
from dataclasses import dataclass

import numpy as np

from ..bounds.interval import chain_bounds
from ..ir.box import Box
from ..errors import UsageError
from ..ir.network import Network
from ..ir.numerics import induced_norm
from ..ir.quantity import Quantity
from .regions import DEFAULT_MIN_RADIUS, Traversal

_PAD = 1e-11
_VERTEX_MAX = 10  # at most 2^10 slope vertices per node for the vertex bound
_TRACE_EVERY = 16  # nodes between two entries of BnBResult.trace
_MARGIN = 1e-9  # relative distance of every pre-activation to a breakpoint for a point's pattern to count


@dataclass(frozen=True, eq=False)
class BnBResult:
    """sup_X ||Q(x)||_p in [lower, upper].

    ``witness``: (n_in,) point attaining ``lower`` (strictly inside a full-dimensional region) or None;
    ``matrix``: Q at the witness (state columns when state_only); ``exhausted``: every node was closed, so
    ``upper`` is a sound bound from a complete search (and equals ``lower`` unless slivers or failed LPs kept a
    gap, see ``reason``); ``exact``: exhausted and lower == upper. ``nodes``/``lps``: work done.
    ``trace``: ((seconds, lower, upper), ...) since the start, recorded every ``_TRACE_EVERY`` nodes and at the
    end (the last entry is (seconds, lower, upper) of this result); each upper is sound at its time (max of the
    open, pruned and unverified bounds and lower); each lower is attained by a point checked in float64 on the
    traversal's pattern (the final lower is also replayed through the IR).
    """

    lower: float
    upper: float
    witness: np.ndarray | None
    matrix: np.ndarray | None
    exhausted: bool
    nodes: int
    seconds: float
    reason: str = ""
    lps: int = 0
    trace: tuple = ()

    @property
    def exact(self) -> bool:
        return self.exhausted and self.upper <= self.lower


def _norm_upper(u: np.ndarray, p: float) -> float:
    """Upper bound on ||M||_p for every |M| <= u entrywise (u >= 0), p in {1, 2, inf}."""
    if u.size == 0:
        return 0.0
    if p == 1.0:
        return float(u.sum(axis=0).max())
    if math.isinf(p):
        return float(u.sum(axis=1).max())
    n1, ninf = float(u.sum(axis=0).max()), float(u.sum(axis=1).max())
    return min(float(np.linalg.svd(u, compute_uv=False)[0]) * (1 + 1e-12), math.sqrt(n1 * ninf))


class _Bounder:
    """Node upper bounds (interval matrix and tail x head products)."""

    def __init__(self, tr: Traversal, p: float, cols: int) -> None:
        self.tr, self.p, self.cols = tr, p, cols
        net = tr.net
        self.layers = [(l.weight, l.bias, l.activation, pc) for l, pc in zip(net.layers, tr.pieces)]
        self.out_w = net.out_weight
        self.abs_out = np.abs(net.out_weight)
        self.abs_w = [np.abs(w) for w in tr.weights]
        self.skip = None if net.skip is None else net.skip[:, :cols]
        self.skip_norm = 0.0 if self.skip is None else float(induced_norm(self.skip, p)) * (1 + 1e-12)

    def slope_ranges(self, node, fixed_override=None):
        """Per layer l.. L-1 the (s_lo, s_hi) slope intervals over the node, or None when bounds prove it empty."""
        tr = self.tr
        l = node.l
        fixed = [node.fixed[l] if fixed_override is None else fixed_override]
        pre = chain_bounds(node.g_mat, node.g_vec, self.layers[l:], tr.lo, tr.hi, fixed)
        out = []
        for (lo, hi), (_, _, _, pcs) in zip(pre, self.layers[l:]):
            if lo.size == 0 or np.any(lo > hi):
                return None
            over = pcs.overlapping(lo, hi)
            sl = np.where(over, pcs.slope, np.inf).min(axis=1)
            sh = np.where(over, pcs.slope, -np.inf).max(axis=1)
            out.append((sl, sh))
        return out

    def bound(self, node, fixed_override=None) -> float:
        """Sound upper bound on ||M||_p over the node (-inf when the node is proven empty)."""
        if node.l >= self.tr.L:
            m, _ = self.tr.leaf_map(node)
            return float(induced_norm(m[:, : self.cols], self.p))
        ranges = self.slope_ranges(node, fixed_override)
        if ranges is None:
            return -math.inf
        g = node.g_mat[:, : self.cols]
        # interval matrix X in [xc - xr, xc + xr]; start exact: X = G
        lo_m, hi_m = g, g
        mag = np.abs(g)
        # tail interval (n_out x n_l), starting as the identity on layer l's neurons
        n_l = g.shape[0]
        t_lo, t_hi = np.eye(n_l), np.eye(n_l)
        t_mag = np.eye(n_l)
        nxt = self.tr.weights[self.tr.L - len(ranges) + 1:] + [self.out_w]
        abs_nxt = self.abs_w[self.tr.L - len(ranges) + 1:] + [self.abs_out]
        for (sl, sh), w, aw in zip(ranges, nxt, abs_nxt):
            lo_m, hi_m = _scale_rows(lo_m, hi_m, sl, sh)
            t_lo, t_hi = _scale_rows(t_lo, t_hi, sl, sh)
            smax = np.maximum(np.abs(sl), np.abs(sh))[:, None]
            mag, t_mag = smax * mag, smax * t_mag
            lo_m, hi_m = _interval_matmul(w, aw, lo_m, hi_m)
            t_lo, t_hi = _interval_matmul(w, aw, t_lo, t_hi)
            mag, t_mag = aw @ mag, aw @ t_mag
        if self.skip is not None:
            lo_m, hi_m = lo_m + self.skip, hi_m + self.skip
            mag = mag + np.abs(self.skip)
        u = np.maximum(np.abs(lo_m), np.abs(hi_m)) + _PAD * mag + 1e-300
        ut = np.maximum(np.abs(t_lo), np.abs(t_hi)) + _PAD * t_mag + 1e-300
        b1 = _norm_upper(u, self.p)
        head = float(induced_norm(g, self.p)) * (1 + 1e-12)
        b2 = _norm_upper(ut, self.p) * head + self.skip_norm
        b3 = self._vertex_bound(g, ranges, nxt, mag)
        return min(b1, b2 * (1 + 1e-12), b3)

    def _vertex_bound(self, g, ranges, nxt, mag) -> float:
        """max of ||W_L D_{L-1} ... D_l G (+ S)||_p over every vertex of the slope box (each unstable neuron at
        s_lo or s_hi), when there are at most ``_VERTEX_MAX`` unstable neurons (else inf).

        Sound: M is affine in each single slope (each appears once in the product) and the norm is convex, so the
        max over the slope box sits at a vertex; padded by 1e-10 relative (norm rounding) plus ``_PAD`` times
        the norm of ``mag`` (the same chain in absolute values: product rounding)."""
        k = sum(int(np.count_nonzero(sl != sh)) for sl, sh in ranges)
        if k > _VERTEX_MAX:
            return math.inf
        m = g[None, :, :]  # (B, n_l, cols)
        for (sl, sh), w in zip(ranges, nxt):
            s = _slope_vertices(sl, sh)
            m = (s[None, :, :, None] * m[:, None, :, :]).reshape(-1, sl.size, m.shape[-1])
            m = np.matmul(w, m)
        if self.skip is not None:
            m = m + self.skip
        if self.p == 2.0:
            return _spectral_max(m, mag)
        vmax = float(np.max(induced_norm(m, self.p)))
        return vmax * (1 + 1e-10) + _PAD * _norm_upper(mag + 1e-300, self.p)


def _spectral_max(m: np.ndarray, mag: np.ndarray) -> float:
    """Upper bound on max_b ||m_b||_2 for a batch m (B, k, n) with |m_b| <= mag entrywise (up to rounding).

    lambda_max of the smaller Gram matrix by ``eigvalsh`` (cheaper than an SVD per matrix). Rounding: forming
    the Gram matrix errs by at most gamma_d |m||m|^T (d <= 10^3 terms, gamma_d < 1.2e-13), whose 2-norm is
    <= gamma_d ||mag||_F^2; eigvalsh is backward stable (error a few eps ||Gram||); both are covered by adding
    1e-12 ||mag||_F^2 + 1e-12 lambda_max before the square root, and the product rounding of m itself by
    ``_PAD`` ||mag||_F."""
    k, n = m.shape[-2:]
    if k == 0 or n == 0:
        return 0.0
    gram = m @ m.transpose(0, 2, 1) if k <= n else m.transpose(0, 2, 1) @ m
    lam = float(np.max(np.linalg.eigvalsh(gram)[:, -1]))
    fro2 = float(np.sum(mag * mag))
    return math.sqrt(max(lam, 0.0) * (1 + 1e-12) + 1e-12 * fro2) + _PAD * math.sqrt(fro2)


def _slope_vertices(sl: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """(2^u, n) slope vectors: every choice of sl_i or sh_i on the u neurons with sl_i != sh_i (n,) each."""
    unstable = np.nonzero(sl != sh)[0]
    u = unstable.size
    bits = (np.arange(2 ** u)[:, None] >> np.arange(u)[None, :]) & 1 if u else np.zeros((1, 0), dtype=np.int64)
    s = np.repeat(sl[None, :], bits.shape[0], axis=0)
    s[:, unstable] = np.where(bits == 1, sh[unstable], sl[unstable])
    return s


def _scale_rows(lo, hi, sl, sh):
    """Interval [lo, hi] (rows) times diag(s) with s in [sl, sh] per row."""
    a, b = sl[:, None], sh[:, None]
    c1, c2, c3, c4 = a * lo, a * hi, b * lo, b * hi
    return np.minimum(np.minimum(c1, c2), np.minimum(c3, c4)), np.maximum(np.maximum(c1, c2), np.maximum(c3, c4))


def _interval_matmul(w, aw, lo, hi):
    c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
    mid, rad = w @ c, aw @ r
    return mid - rad, mid + rad


def _sample_lower(tr: Traversal, p: float, cols: int, samples: int, seed: int):
    """Best (value, x, matrix) over random points and box corners/centre, each strictly inside a region."""
    rng = np.random.default_rng(seed)
    lo, hi = tr.lo, tr.hi
    pts = [tr.box.center[None, :], rng.uniform(lo, hi, size=(samples, tr.n))]
    x = np.vstack(pts)
    h = x
    slopes = []
    ok = np.ones(x.shape[0], dtype=bool)
    for w, b, pcs in zip(tr.weights, tr.biases, tr.pieces):
        z = h @ w.T + b
        piece = pcs.piece_of(z)
        if pcs.breakpoints.shape[1]:
            rel = np.abs(z[..., None] - pcs.breakpoints) / (1.0 + np.abs(z[..., None]))
            ok &= np.all(rel > _MARGIN, axis=(1, 2))
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
    vals = np.where(ok, induced_norm(m, p), -np.inf)
    k = int(np.argmax(vals))
    if not np.isfinite(vals[k]):
        return -math.inf, None, None
    return float(vals[k]), x[k], m[k]


def sup_norm(net: Network, box: Box, p: float = 2.0, quantity: str | Quantity = "A_STAR", state_only: bool = True,
             lower_seed: float | None = None, threshold: float | None = None, exact: bool = False,
             timeout: float = 60.0, min_radius: float = DEFAULT_MIN_RADIUS, samples: int = 256,
             seed: int = 0) -> BnBResult:
    """sup over the box of ||A*(x)||_p or ||J(x)||_p (first ``n_states`` columns when ``state_only``).

    ``lower_seed``: a value already attained (e.g. by the sampler) used for pruning only (it is not reported as
    ``lower``, which always comes with this function's own witness). ``threshold``: certify mode (prune below it,
    stop once lower > threshold) unless ``exact``. See the module docstring for soundness.
    """
    t0 = time.perf_counter()
    q = Quantity.coerce(quantity)
    p = float(p)
    if p not in (1.0, 2.0, math.inf):
        raise UsageError(f"induced norm p must be 1, 2 or inf, got {p}")
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the net takes {net.n_in} inputs")
    cols = net.n_states if state_only else net.n_in
    if not net.piecewise_linear or (q is Quantity.A_STAR and not net.piecewise_linear_through_origin):
        why = ("A* is not constant on the regions of a clip-type net; the exact core serves J only"
               if net.piecewise_linear else f"the exact core needs piecewise-linear activations ({net.describe()})")
        return _unsupported(net, box, p, q, cols, samples, seed, t0, why)
    tr = Traversal(net, box, min_radius)
    bounder = _Bounder(tr, p, cols)
    best = list(_sample_lower(tr, p, cols, samples, seed))  # value, x, matrix
    prune_seed = -math.inf if lower_seed is None else float(lower_seed)

    def level() -> float:
        lv = max(best[0], prune_seed)
        if threshold is not None and not exact:
            lv = max(lv, float(threshold))
        return lv

    pruned_max = -math.inf
    slivers: list = []
    unverified_max = -math.inf

    def on_thin(node, i, item):
        slivers.append(tr.sliver_child(node, i, item))

    def try_point(node) -> None:
        if node.px.shape[0] == 0:
            return
        x = node.px[int(np.argmax(node.pr))]
        pattern, margin = tr.pattern_at(x)
        if margin > _MARGIN:
            m = tr.matrix_of(pattern)[:, :cols]
            v = float(induced_norm(m, p))
            if v > best[0]:
                best[:] = [v, x.copy(), m]

    n_slivers = 0
    counter = itertools.count()
    root = tr.root()
    heap = [(-bounder.bound(root), next(counter), root)]
    reason = ""
    falsified = False
    trace = []
    popped = 0
    while heap:
        if popped % _TRACE_EVERY == 0:
            trace.append((time.perf_counter() - t0, best[0], max(best[0], pruned_max, unverified_max, -heap[0][0])))
        popped += 1
        if time.perf_counter() - t0 > timeout:
            reason = f"timeout after {timeout:g} s with {len(heap)} open nodes"
            break
        neg_ub, _, node = heapq.heappop(heap)
        ub = -neg_ub
        if ub <= level():
            pruned_max = max(pruned_max, ub)
            continue
        kind, val = tr.expand(node, on_thin)
        for child in slivers:  # slivers are searched too (no interior point: they only raise ``upper``)
            b = bounder.bound(child)
            if b > -math.inf:
                heapq.heappush(heap, (-b, next(counter), child))
        n_slivers += len(slivers)
        slivers.clear()
        if kind == "empty":
            continue
        if kind == "leaf":
            m, _ = tr.leaf_map(val)
            v = float(induced_norm(m[:, :cols], p))
            if val.px.shape[0] and v > best[0]:
                x = val.px[int(np.argmax(val.pr))]
                best[:] = [v, x.copy(), m[:, :cols]]
            elif not val.px.shape[0]:
                unverified_max = max(unverified_max, v)
        else:
            for child in val:
                try_point(child)
                b = bounder.bound(child)
                if b > -math.inf:
                    heapq.heappush(heap, (-b, next(counter), child))
        if threshold is not None and not exact and best[0] > threshold:
            falsified = True
            reason = f"lower bound {best[0]:.12g} exceeds the threshold {threshold:.12g}"
            break
    open_max = max((-h[0] for h in heap), default=-math.inf)
    lower = best[0]
    upper = max(lower, pruned_max, open_max, unverified_max)
    exhausted = not heap and not falsified and not reason
    if exhausted and upper > lower and not reason:
        parts = []
        if unverified_max > lower:
            parts.append(f"regions without a verified interior point (slivers thinner than {tr.tol:.3g} or reached"
                         f" through LPs without an optimal status) reach {unverified_max:.12g}")
        if threshold is not None and not exact and pruned_max > lower:
            parts.append(f"nodes pruned below the threshold {threshold:.12g}")
        reason = "; ".join(parts)
    witness, matrix = best[1], best[2]
    if witness is not None:
        replayed = net.jacobian(witness) if q is Quantity.JACOBIAN else net.pwa(witness)[0]
        replayed = replayed[:, :cols]
        v = float(induced_norm(replayed, p))
        if abs(v - lower) > 1e-9 * max(1.0, abs(lower)):
            reason = (reason + "; " if reason else "") + f"witness replay gave {v:.12g} instead of {lower:.12g}"
            lower = min(lower, v)
        matrix = replayed
    seconds = time.perf_counter() - t0
    trace.append((seconds, lower, upper))
    return BnBResult(lower, upper, witness, matrix, exhausted, tr.nodes, seconds, reason, tr.lps, tuple(trace))


def _unsupported(net, box, p, q, cols, samples, seed, t0, why) -> BnBResult:
    """Sampling lower bound through the IR (torch float64), infinite upper bound, and the reason."""
    rng = np.random.default_rng(seed)
    x = np.vstack([box.center[None, :], rng.uniform(box.lower, box.upper, size=(samples, box.dim))])
    mats = net.jacobian(x) if q is Quantity.JACOBIAN else net.pwa(x)[0]
    mats = mats[:, :, :cols]
    vals = induced_norm(mats, p)
    k = int(np.argmax(vals))
    seconds = time.perf_counter() - t0
    return BnBResult(float(vals[k]), math.inf, x[k], mats[k], False, 0, seconds, why,
                     trace=((seconds, float(vals[k]), math.inf),))
