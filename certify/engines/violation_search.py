"""Branch and bound over sub-boxes for the invariance violation of a net with any activation.

The quantity (:attr:`certify.ir.quantity.Quantity.VIOLATION`) is the maximum violation of the box by the state
outputs,

    V = sup_{x in X} max_i max(f_i(x) - upper_i, lower_i - f_i(x))     (V < 0: f(X) inside X with room)

On a sub-box the outputs are enclosed by :func:`certify.bounds.enclosures.output_enclosure` (interval arithmetic
intersected with the mean-value form, whose error shrinks quadratically with the box, which is what makes
splitting converge).

Lower bounds are V at box centres, replayed in float64 through ``net.forward``. Best first on the upper bound
(:func:`certify.engines.search.best_first`, the sub-box bisection of :mod:`certify.engines.bisection`); the box with
the largest bound is split in two along its widest coordinate (scaled by the Jacobian's column size). Certify mode
(a threshold t, 0 for invariance) closes a box when its bound is < t and stops once a replayed point has V > t;
exact mode closes boxes that cannot raise the best lower bound by more than ``gap_tol``. The reported ``upper`` is
the max of the lower bound and every box bound not yet refuted, so it is sound whenever the search stops.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..bounds.enclosures import jacobian_enclosure, output_enclosure
from ..ir.box import Box
from ..ir.network import Network
from .bisection import BisectionProblem
from .contract import EngineResult, Outcome, Query, SearchCounts
from .parallel import search_executor
from .sampling import replayed_outputs
from .search import Incumbent, SearchLimits, SearchOutcome, best_first


def violation(net: Network, box: Box, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-point violation V(x) (B,) and the index of the worst state output (B,), for x of shape (B, n_in): f(x)
    in float64 through the IR, to rank points (a witness's value comes from :func:`replayed_violation`)."""
    ns = net.n_states
    f = np.atleast_2d(net.forward(np.atleast_2d(x)))[:, :ns]
    per = np.maximum(f - box.upper[:ns], box.lower[:ns] - f)
    return per.max(axis=1), per.argmax(axis=1)


def replayed_violation(net: Network, box: Box, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`violation`, but a value the real f(x) surely reaches: from the enclosure of f(x) of
    :func:`sampling.replayed_outputs` (the float64 value unless it may be off beyond ``EXACT_REL``)."""
    ns = net.n_states
    lo, hi = replayed_outputs(net, x)
    per = np.maximum(lo[:, :ns] - box.upper[:ns], box.lower[:ns] - hi[:, :ns])
    return per.max(axis=1), per.argmax(axis=1)


def side_violations(net: Network, box: Box, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per state output, the largest f_i - upper_i and the largest lower_i - f_i over the points x (B, n_in):
    two arrays (n_states,) (the sampled value of each side; only an ordering hint, never a bound)."""
    ns = net.n_states
    f = np.atleast_2d(net.forward(np.atleast_2d(x)))[:, :ns]
    return (f - box.upper[:ns]).max(axis=0), (box.lower[:ns] - f).max(axis=0)



def violation_bound(net: Network, box: Box, lo: np.ndarray, hi: np.ndarray) -> float:
    """A sound upper bound on V over the sub-box [lo, hi] of ``box``."""
    ns = net.n_states
    o_lo, o_hi = output_enclosure(net, lo, hi)
    return float(max(np.max(o_hi[:ns] - box.upper[:ns]), np.max(box.lower[:ns] - o_lo[:ns])))


def violation_problem(query: Query) -> BisectionProblem:
    """The search problem of :func:`violation_search` (the bisection of the query's box, split by the Jacobian's
    column sizes, box centres replayed): one set-up for the main process and every worker."""
    net, box = query.network, query.box

    def offer(inc: Incumbent, centres: np.ndarray) -> None:
        v, _ = violation(net, box, centres)
        for i in range(centres.shape[0]):
            inc.offer(float(v[i]), centres[i])

    sens = np.abs(jacobian_enclosure(net, box.lower, box.upper)[1][: net.n_states]).sum(axis=0) + 1e-12
    return BisectionProblem(box, sens, lambda lo, hi: violation_bound(net, box, lo, hi), offer)


def violation_search(query: Query, executor=None) -> EngineResult:
    """Bracket V over the box by sub-box branch and bound (module docstring).

    ``query.threshold`` t (0 for invariance): certify mode, stop once every box bound is < t or a replayed point has
    V > t; None: exact mode (gap ``query.config.invariance.gap_tol``). ``query.config.budget``: boxes at most.

    ``executor``: run the search loop on it (:func:`~certify.engines.parallel.search_executor` of this query, on a
    pool of the caller's) instead of on the workers the config asks for.
    """
    t0 = time.perf_counter()
    net, box, options = query.network, query.box, query.config.invariance
    rng = np.random.default_rng(query.seed)
    pts = np.vstack([box.center[None], box.lower + (box.upper - box.lower) * rng.random((options.samples, box.dim))])
    vals, _ = violation(net, box, pts)
    k = int(np.argmax(vals))
    incumbent = Incumbent(float(vals[k]), pts[k].copy())
    problem = violation_problem(query)
    limits = bracket_limits(query, trace_every=16)
    # serial unless config.workers > 1, a cluster or an executor is given
    with search_executor(query, "violation", executor=executor) as loop_executor:
        run = best_first(problem, [problem.root()], incumbent, limits, start=t0, executor=loop_executor)
    return bracket_result(run, incumbent, t0, "a replayed point leaves the box", SearchCounts(boxes=problem.boxes),
                          "boxes")


def bracket_limits(query: Query, trace_every: int, lower_seed: float = -math.inf) -> SearchLimits:
    """The sub-box searches' limits for V (this module and :mod:`certify.engines.output_bnb`): with
    ``query.threshold`` t, certify mode ("bound < t" as "bound <= nextafter(t, -inf)", stop once a replayed point
    exceeds t); without one, exact mode within ``query.config.invariance.gap_tol``; the proven fraction counts
    boxes with bound < t (t = 0 in exact mode); ``lower_seed``: a known lower bound on V that prunes."""
    t = query.threshold
    below = None if t is None else float(np.nextafter(t, -math.inf))
    return SearchLimits(threshold=below, stop_above=t, gap_abs=query.config.invariance.gap_tol if t is None else 0.0,
                        lower_seed=lower_seed, proof_level=float(np.nextafter(0.0 if t is None else t, -math.inf)),
                        deadline=query.deadline, timeout=query.config.timeout, max_nodes=query.budget,
                        unit="boxes", trace_every=trace_every)


def bracket_result(run: SearchOutcome, incumbent: Incumbent, t0: float, exceeded: str, counts: SearchCounts,
                   method: str) -> EngineResult:
    """The :class:`EngineResult` of a sub-box search of V: [incumbent, run.upper] (sound), ``exceeded`` the reason
    when a replayed point passed the threshold; exhausted only when every box was closed and nothing stands open
    (no reason)."""
    reason = run.reason
    if run.outcome is Outcome.EXCEEDED:
        reason = exceeded
    elif run.outcome is Outcome.STALLED and run.final_max > incumbent.value:
        reason = "boxes too small to split remain above the level"
    return EngineResult(incumbent.value, run.upper, incumbent.point, None, run.exhausted and not reason,
                        time.perf_counter() - t0, reason, run.trace, run.outcome, counts, min(1.0, run.proven),
                        method=method)
