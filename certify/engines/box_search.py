"""Branch and bound over sub-boxes for sup_X ||A*(x)||_p or sup_X ||J(x)||_p, for any activation of the catalogue.

The bounds on each sub-box are those of :mod:`certify.bounds.norm_bounds` (interval matrix, centred, Corollary 4
products, second order; see there for their soundness), plus, for p = 2 and small nets, the LipSDP bound of
:mod:`certify.engines.lipsdp` on the largest open box now and then (a solve without a re-checked bound is ignored).
The second-order bound (:mod:`certify.bounds.second_order`) is dropped where it does not apply (a slope function
that is not Lipschitz: it would be inf) and, beside other kinds, *deferred*: it costs several times the others and
wins only on small boxes, so it is computed on a box only when the box is taken to be split (a box the cheap
bounds close never pays for it), and after a try that lost, not again on the next generations of its descendants
(about n_in log2(R) / 2 splits for a loss by a ratio R of excesses over the level, at most 2 n_in; a box it brings
to the level is closed instead of split). Measured on 4-64-64-4 tanh and GELU nets: benchmarks/smooth_bnb.py.

A child box inherits its parent's bound (the sup over a subset is no larger). Lower bounds come from points: box
centres and random points of every new box (batched float64 torch kernels of :mod:`certify.engines.sampling`), and
projected gradient ascent (:func:`certify.engines.sampling.falsify`) on the box with the largest bound now and then
(at most about 10 % of the elapsed time); every
reported lower bound is replayed in float64 through the IR at its witness (``Network.pwa`` / ``jacobian``, then
:func:`certify.ir.numerics.induced_norm`).

Search: best first on the upper bound, a batch of the largest boxes at a time; each is split in two along the
coordinate with the largest width x sensitivity (sum of |W_0| over that input's column), or (``trial_split`` = k
> 1) along the best of the k leading coordinates by the larger child bound (measured: no gain on the benchmark
nets for its k-fold bounding cost, hence off by default). Boxes are bounded in chunks of ``_CHUNK``: larger
batched products start BLAS threads, which cost tenfold on a loaded two-core machine. A box is closed when its
bound is <= max(best lower (+ ``gap_tol``), threshold). Stops when every box is closed (certified when a
threshold was given), when the lower bound exceeds the threshold, or at the timeout. ``upper`` is the max of the
best lower bound and the bounds of every closed and still open box, so it is sound whenever the search stops.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..bounds.norm_bounds import SupNormBounder, box_bounds
from ..bounds.second_order import applies as second_order_applies
from ..config import BoundKind, SdpUse
from ..errors import UsageError
from ..ir.box import Box
from ..ir.kernels import TorchNet
from .contract import EngineResult, Outcome, Query, SearchCounts
from .lipsdp import sdp_bound_over_box
from .parallel import search_executor
from .sampling import falsify, generic_point, norms_at, replay_norm
from .search import MIN_REL_WIDTH, Incumbent, Node, SearchLimits, best_first, halves, splittable, volume_fraction

_CHUNK = 64  # boxes bounded per call of box_bounds
_TRACE_EVERY = 10
_DEFERRED_ORDER = 2.0  # the deferred bound's excess ratio is guessed to fall like width^_DEFERRED_ORDER
_DEFERRED_MAX_WAIT = 2  # at most this many times n_in generations between tries
_SDP_MAX_NEURONS = 64  # SdpUse.AUTO runs the SDP only on nets with at most this many hidden neurons


class _Lower:
    """Evaluates candidate points and offers the best to the incumbent, replayed in float64 through the IR (at
    generic points, in the query's metric)."""

    def __init__(self, query: Query) -> None:
        self.net, self.q, self.p, self.cols = query.network, query.quantity, query.norm, query.columns
        self.box, self.metric = query.box, query.metric
        self.tnet = TorchNet.of(self.net, torch.float64, "cpu", query.metric)

    def offer_point(self, x: np.ndarray, incumbent: Incumbent) -> None:
        """Offer the value at a generic point at or near x (a point on a kink is no witness)."""
        x, generic = generic_point(self.net, self.box, np.asarray(x, dtype=np.float64))
        if generic:
            v, m = replay_norm(self.net, x, self.q, self.p, self.cols, self.metric, sound=False)
            incumbent.offer(v, np.array(x, dtype=np.float64), m)

    def offer_batch(self, pts: np.ndarray, incumbent: Incumbent) -> None:
        """Evaluate points (B, n_in) with the batched float64 kernel; the best is replayed through the IR."""
        if pts.shape[0] == 0:
            return
        with torch.no_grad():
            vals = norms_at(self.tnet, torch.from_numpy(pts), self.q, self.p, self.cols).numpy()
        vals = np.where(np.isnan(vals), -np.inf, vals)  # an overflowed point is no candidate (argmax picks NaN)
        k = int(np.argmax(vals))
        if vals[k] > incumbent.value:
            self.offer_point(pts[k], incumbent)


def sdp_applies(query: Query) -> bool:
    """Whether the search may run the SDP bound: p = 2, a hidden layer, and the options and method allow it."""
    use = query.config.boxes.sdp
    net = query.network
    if use is SdpUse.NEVER or query.norm != 2.0 or not net.layers:
        return False
    if use is SdpUse.ALWAYS:
        return True
    return query.config.method == "auto" and sum(net.widths) <= _SDP_MAX_NEURONS


def split_boxes(parents: list[Node], sensitivity: np.ndarray, min_w: np.ndarray, bound, trial: int):
    """Split each parent box (a node whose item starts with lo (n,), hi (n,)) in two; returns the children
    (lo, hi (2B, n)), their inherited bounds (2B,) and their (bound, kind index) from ``bound``.

    The candidate coordinates are the ``trial`` widest ones by width x sensitivity (splittable only: wider than
    ``min_w`` (n,) and with a float64 midpoint strictly inside, :func:`~certify.engines.search.splittable`); with more
    than one candidate every candidate split is bounded and the one whose larger child bound is smallest is kept
    (the bounds of the kept children are reused, so trial splitting costs ``trial`` times the bounding)."""
    inh = np.array([n.bound for n in parents])
    lo = np.array([n.item[0] for n in parents])
    hi = np.array([n.item[1] for n in parents])
    w = hi - lo
    score = np.where((w > min_w) & splittable(lo, hi), w * sensitivity, -1.0)
    order = np.argsort(-score, axis=1)[:, : max(1, trial)]
    k = order.shape[1]
    cand_ok = np.take_along_axis(score, order, axis=1) > 0  # (B, k); the first is always splittable
    b = lo.shape[0]
    if k == 1:
        clo, chi = halves(lo, hi, order[:, 0])
        return clo, chi, np.concatenate([inh, inh]), bound(clo, chi)
    rep = np.repeat(np.arange(b), k)
    clo, chi = halves(lo[rep], hi[rep], order.reshape(-1))  # (2 B k, n): lower halves then upper halves
    val, arg = bound(clo, chi)
    worst = np.maximum(val[: b * k], val[b * k:]).reshape(b, k)
    worst = np.where(cand_ok, worst, np.inf)
    pick = np.argmin(worst, axis=1)
    idx = np.arange(b) * k + pick
    sel = np.concatenate([idx, idx + b * k])
    return clo[sel], chi[sel], np.concatenate([inh, inh]), (val[sel], arg[sel])


class _BoxProblem:
    """Sub-boxes of the query's box as a :class:`~certify.engines.search.SearchProblem` (module docstring).

    A node's item is (lo (n,), hi (n,), sdp_done, wait): ``wait`` counts the generations of splits before the
    deferred (second-order) bound is tried on the box again (0: at its next expansion)."""

    def __init__(self, query: Query, lower: _Lower, t0: float) -> None:
        self.query, self.lower, self.t0 = query, lower, t0
        options = query.config.boxes
        self.options = options
        kinds = tuple(BoundKind(k) for k in options.bounds)
        if not kinds:
            raise UsageError("the sub-box search needs at least one bound kind")
        cheap = tuple(k for k in kinds if k is not BoundKind.SDP)
        if BoundKind.SECOND_ORDER in cheap and not second_order_applies(query.network, query.quantity):
            cheap = tuple(k for k in cheap if k is not BoundKind.SECOND_ORDER)  # it would be inf on every box
        # the second-order bound costs several times the others and wins only on small boxes: computed on the
        # boxes about to be split, when due (see _wait), unless it is the only kind
        self.deferred = (BoundKind.SECOND_ORDER,) if BoundKind.SECOND_ORDER in cheap and len(cheap) > 1 else ()
        self.cheap = tuple(k for k in cheap if k not in self.deferred) or (BoundKind.PRODUCT,)
        self.sdp_on = sdp_applies(query)
        self.bounder = SupNormBounder.of(query.network, query.box, query.norm, query.quantity, query.state_only,
                                         query.metric)
        box = query.box
        root_w = box.upper - box.lower
        self.min_w = MIN_REL_WIDTH * np.where(root_w > 0, root_w, 1.0)
        self.rng = np.random.default_rng(query.seed)
        self.wins = {k: 0 for k in (*self.cheap, *self.deferred, BoundKind.SDP)}
        self.boxes = 0
        self.sdp_calls, self.sdp_seconds, self.ascent_seconds = 0, 0.0, 0.0
        self.falsify_calls = 0
        self.deferred_boxes = 0  # boxes the deferred bound was computed on

    # ---- bounds
    def bound_boxes(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(smallest cheap bound (B,), index of the kind that gave it (B,)) for boxes (B, n_in), in chunks of
        ``_CHUNK`` boxes (larger matrix products start BLAS threads, which cost tenfold on a loaded machine)."""
        parts = [box_bounds(self.bounder, lo[i: i + _CHUNK], hi[i: i + _CHUNK], self.cheap)
                 for i in range(0, lo.shape[0], _CHUNK)]
        stacked = np.stack([np.concatenate([b[k] for b in parts]) for k in self.cheap])
        stacked = np.where(np.isnan(stacked), np.inf, stacked)  # a NaN (overflow) is no bound
        arg = np.argmin(stacked, axis=0)
        return stacked[arg, np.arange(lo.shape[0])], arg

    def nodes(self, lo: np.ndarray, hi: np.ndarray, inherited: np.ndarray, pre=None, waits=None) -> list[Node]:
        val, arg = self.bound_boxes(lo, hi) if pre is None else pre
        for i, k in enumerate(self.cheap):
            self.wins[k] += int(np.sum((arg == i) & (val < inherited)))
        val = np.minimum(val, inherited)
        self.boxes += lo.shape[0]
        box = self.query.box
        vol = volume_fraction(lo, hi, box.lower, box.upper)
        waits = np.zeros(lo.shape[0], dtype=int) if waits is None else waits
        return [Node(float(val[i]), (lo[i], hi[i], False, int(waits[i])), float(vol[i])) for i in range(lo.shape[0])]

    def deferred_bounds(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The smallest deferred bound (B,) on boxes (B, n_in), in chunks of ``_CHUNK`` (NaN: no bound)."""
        parts = [box_bounds(self.bounder, lo[i: i + _CHUNK], hi[i: i + _CHUNK], self.deferred)
                 for i in range(0, lo.shape[0], _CHUNK)]
        val = np.min(np.stack([np.concatenate([b[k] for b in parts]) for k in self.deferred]), axis=0)
        return np.where(np.isnan(val), np.inf, val)

    def _wait(self, deferred: float, cheap: float, level: float) -> int:
        """Generations of splits before the deferred bound is tried again on a box's descendants, from one try:
        0 when it won (or closed), else the splits that should bring it below the cheap bound: with the ratio R
        of the excesses over the level falling like width^_DEFERRED_ORDER (measured: faster than the width^1
        of a pure second-order excess against first-order ones, the higher-order remainders dominate on large
        boxes), n_in log2(R) / _DEFERRED_ORDER splits (every coordinate halved once per n_in), at most
        _DEFERRED_MAX_WAIT n_in; the next try measures R again. Without a level yet (-inf: no witness and no
        threshold) the excesses are measured over 0 (every norm is >= 0); a ratio too large for float64 waits the
        most."""
        if deferred <= cheap or cheap <= level:
            return 0
        n = self.query.network.n_in
        if not math.isfinite(deferred):
            return _DEFERRED_MAX_WAIT * n
        base = level if math.isfinite(level) else 0.0
        if cheap <= base:
            return 0
        steps = n * math.log2((deferred - base) / (cheap - base)) / _DEFERRED_ORDER
        return int(min(math.ceil(steps), _DEFERRED_MAX_WAIT * n)) if math.isfinite(steps) else _DEFERRED_MAX_WAIT * n

    def level(self, incumbent: Incumbent) -> float:
        """The level at or below which the search closes a box (the loop's level without the gap tolerance)."""
        q = self.query
        return max(incumbent.value, q.lower_seed, -math.inf if q.threshold is None else q.threshold)

    # ---- the search steps
    def _sdp_due(self, top: Node, elapsed: float) -> bool:
        timeout = self.query.config.timeout
        if not self.sdp_on or top.item[2] or self.sdp_seconds >= 0.5 * timeout:
            return False
        if self.options.sdp is SdpUse.AUTO and elapsed < 0.25 * timeout:
            return False
        return self.query.seconds_left() > 0.05 * timeout

    def batch(self, top: Node, elapsed: float) -> int:
        return 1 if self._sdp_due(top, elapsed) else self.options.batch

    def _sdp(self, node: Node) -> Node:
        """The node with the SDP bound over its box when that is smaller (a solve without a re-checked bound is
        ignored: :func:`certify.engines.lipsdp.sdp_bound_over_box` never certifies an unchecked value)."""
        lo, hi = node.item[:2]
        q = self.query
        ts = time.perf_counter()
        limit = max(min(q.seconds_left(), 0.5 * q.config.timeout - self.sdp_seconds), 1.0)
        try:
            res = sdp_bound_over_box(q.network, Box(lo, hi), q.quantity, q.state_only, time_limit=limit,
                                     backend=q.config.solvers.sdp, metric=q.metric)
            value = res.value
        except (ArithmeticError, np.linalg.LinAlgError):  # defensive: solver trouble is never fatal here
            value = None
        self.sdp_seconds += time.perf_counter() - ts
        self.sdp_calls += 1
        bound = node.bound
        if value is not None and value < bound:
            bound = value
            self.wins[BoundKind.SDP] += 1
        return Node(bound, (lo, hi, True, node.item[3]), node.volume)

    def expand(self, nodes: list[Node], incumbent: Incumbent) -> list[Node]:
        if len(nodes) == 1 and self._sdp_due(nodes[0], time.perf_counter() - self.t0):
            return [self._sdp(nodes[0])]
        out, parents = [], []
        for node in nodes:
            lo, hi = node.item[:2]
            if np.all(hi - lo <= self.min_w) or not splittable(lo, hi).any():  # (a float64 step wide: final)
                out.append(Node(node.bound, node.item, node.volume, final=True))
            else:
                parents.append(node)
        parents, waits = self._try_deferred(parents, incumbent, out)
        if parents:
            lo_b, hi_b, inh, pre = split_boxes(parents, self.bounder.sensitivity, self.min_w, self.bound_boxes,
                                               self.options.trial_split)
            # lower bounds: centres and one random point of every new box
            box = self.query.box
            pts = np.vstack([0.5 * (lo_b + hi_b), self.rng.uniform(lo_b, hi_b)])
            self.lower.offer_batch(np.clip(pts, box.lower, box.upper), incumbent)
            out += self.nodes(lo_b, hi_b, inh, pre, np.concatenate([waits, waits]))
        return out

    def _try_deferred(self, parents: list[Node], incumbent: Incumbent, out: list[Node]):
        """The deferred bound on the parents where it is due: a parent it brings to the level is settled (appended
        to ``out`` with that bound, the loop closes it); the others are split with the smaller bound. Returns the
        parents to split and their children's waits (B,)."""
        waits = np.array([max(n.item[3] - 1, 0) for n in parents], dtype=int)
        due = [i for i, n in enumerate(parents) if n.item[3] <= 0] if self.deferred else []
        if not due:
            return parents, waits
        lo = np.array([parents[i].item[0] for i in due])
        hi = np.array([parents[i].item[1] for i in due])
        vals = self.deferred_bounds(lo, hi)
        self.deferred_boxes += len(due)
        level = self.level(incumbent)
        keep = np.ones(len(parents), dtype=bool)
        for i, v in zip(due, vals):
            node = parents[i]
            waits[i] = self._wait(float(v), node.bound, level)
            if v < node.bound:
                self.wins[self.deferred[0]] += 1
                lo_i, hi_i, sdp_done, _ = node.item
                node = parents[i] = Node(float(v), (lo_i, hi_i, sdp_done, waits[i]), node.volume)
                if v <= level:
                    out.append(node)
                    keep[i] = False
        return [n for n, k in zip(parents, keep) if k], waits[keep]

    def ascend(self, sub: Box, n: int, budget_s: float, incumbent: Incumbent) -> None:
        """Projected gradient ascent (:func:`certify.engines.sampling.falsify`) on ``sub``, the best point offered."""
        q = self.query
        config = q.config.with_(samples=max(n, 1), seed=q.seed + self.falsify_calls, timeout=max(budget_s, 1e-3))
        res = falsify(q.network, sub, q.quantity, q.norm, config, state_only=q.state_only, metric=q.metric)
        self.falsify_calls += 1
        if res.value > incumbent.value:
            self.lower.offer_point(np.clip(res.x, q.box.lower, q.box.upper), incumbent)

    def after_step(self, top: Node | None, incumbent: Incumbent, elapsed: float) -> None:
        """Gradient ascent on the largest box now and then (about 10 % of the time)."""
        timeout = self.query.config.timeout
        if top is None or self.ascent_seconds >= 0.1 * elapsed or self.query.seconds_left() <= 0.02 * timeout:
            return
        now = time.perf_counter()
        lo, hi = top.item[:2]
        self.ascend(Box(lo, hi), 256, min(0.02 * timeout, 1.0), incumbent)
        self.ascent_seconds += time.perf_counter() - now


def box_search(query: Query, executor=None) -> EngineResult:
    """Bracket sup over the box of ||A*(x)||_p (dissipativity) or ||J(x)||_p (contraction) for a net with any
    activation, by branch and bound over sub-boxes (module docstring).

    Certify mode when ``query.threshold`` is set: boxes are closed once their bound is <= threshold, the search
    stops when all are (then ``upper <= threshold``) or when a replayed point exceeds it. Without a threshold the
    search closes the gap to ``gap_tol * max(1, lower)``. ``query.lower_seed`` prunes only; ``query.lower_point``
    is a point to start from (replayed). Options: ``query.config.boxes``; at most ``query.config.budget`` sub-boxes
    are bounded. Never raises on solver trouble (an SDP without a bound is ignored).

    ``executor``: run the search loop on it (:func:`~certify.engines.parallel.search_executor` of this query, on a
    pool of the caller's) instead of on the workers the config asks for.
    """
    t0 = time.perf_counter()
    net, box, options = query.network, query.box, query.config.boxes
    lower = _Lower(query)
    problem = _BoxProblem(query, lower, t0)
    incumbent = Incumbent()
    if query.lower_point is not None:
        x0 = np.asarray(query.lower_point, dtype=np.float64).reshape(-1)
        if x0.shape != (net.n_in,):
            raise UsageError(f"lower_point must have {net.n_in} coordinates, got {x0.size}")
        lower.offer_point(np.clip(x0, box.lower, box.upper), incumbent)
    if options.samples > 0:
        problem.ascend(box, options.samples, 0.1 * query.config.timeout, incumbent)
    roots = problem.nodes(box.lower[None].copy(), box.upper[None].copy(), np.array([math.inf]))
    limits = SearchLimits(threshold=query.threshold, gap_rel=options.gap_tol, lower_seed=query.lower_seed,
                          deadline=query.deadline, timeout=query.config.timeout, max_nodes=query.budget,
                          unit="boxes", trace_every=_TRACE_EVERY)
    # serial unless config.workers > 1, a cluster or an executor is given
    with search_executor(query, "boxes", executor=executor) as loop_executor:
        run = best_first(problem, roots, incumbent, limits, start=t0, executor=loop_executor)
    upper, outcome, reason = run.upper, run.outcome, run.reason
    if outcome is Outcome.EXCEEDED:
        reason = f"a replayed point has norm {incumbent.value:.12g} > threshold {query.threshold:.12g}"
    elif outcome is Outcome.STALLED:
        reason = f"{run.stuck} boxes narrower than {MIN_REL_WIDTH:g} of the box stay above the level"
    if outcome is Outcome.CERTIFIED and upper > query.threshold:  # closed by a lower_seed above the threshold
        outcome = Outcome.BRACKETED
        reason = (f"boxes were closed by lower_seed {query.lower_seed:.12g} > threshold {query.threshold:.12g} "
                  f"(no witness here)")
    lower_value = incumbent.value
    if incumbent.point is not None:  # the points were ranked in float64: the witness's value in real arithmetic
        v, _ = replay_norm(net, incumbent.point, query.quantity, query.norm, query.columns, query.metric)
        if v < lower_value:
            lower_value = v
            reason = (reason + "; " if reason else "") + (f"the witness's float64 value {incumbent.value:.12g} may"
                                                          f" be off by rounding: it surely reaches {v:.12g}")
    proven = 1.0 if outcome is Outcome.CERTIFIED else float(min(max(run.proven, 0.0), 1.0))
    if outcome is Outcome.BRACKETED and upper > incumbent.value and not reason:
        reason = f"gap closed to the tolerance {options.gap_tol:g}"
    counts = SearchCounts(boxes=problem.boxes, sdp_calls=problem.sdp_calls, sdp_seconds=problem.sdp_seconds,
                          wins=tuple((k.value, int(v)) for k, v in problem.wins.items()))
    return EngineResult(lower_value, upper, incumbent.point, incumbent.data, run.open == 0,
                        time.perf_counter() - t0, reason, run.trace, outcome, counts, proven,
                        method="boxes")
