"""Exact output bounds for the invariance check of piecewise-linear nets: one MILP per output side.

For each state output i and side (max f_i - upper_i, or max lower_i - f_i) that interval bounds do not already
settle, the exact optimum by MILP (:func:`certify.engines.milp_encoding.encode_network`). Each solver bound is
padded by :func:`certify.engines.milp_encoding.output_padding` (solver tolerance x per-layer big-M x |W|-chain
sensitivity + ``SOLVER_REL_PAD`` relative; an assumption about the solver stated there), and every solution is
replayed in float64 through ``net.forward``. Sides go most doubtful first (largest sampled violation). Each MILP
carries a cutoff row (:meth:`certify.engines.milp_encoding.NetworkEncoding.output_program`): only points whose
violation reaches ``level - 2 pad`` stay (``level`` 0 when certifying, the best replayed violation in exact mode),
so the solver prunes as with an incumbent at the box's edge; an INFEASIBLE answer bounds the side by
``level - pad`` (padded like a dual bound), a feasible one gives the exact side value. Certify mode stops at the
first replayed point outside the box and, for a ``parallel_safe`` back-end (CBC), solves up to 2 sides at once.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from ..config import VerifyConfig
from ..ir.box import Box
from ..ir.network import Network
from ..solvers import registry
from ..solvers.base import SolveStatus
from .milp_analyses import analysis_bounds
from .milp_encoding import encode_network, output_padding
from .violation_search import violation


@dataclass(frozen=True)
class _Cutoff:
    """The cutoff of one side's MILP: ``value`` in output units (f_i >= value when maximising, <= when
    minimising) and the solver-bound ``padding`` at that value."""

    value: float
    padding: float


def _side_value(box: Box, i: int, maximize: bool, f_value: float) -> float:
    """The violation f_i - upper_i (maximising) or lower_i - f_i (minimising) for an output value f_i."""
    return f_value - box.upper[i] if maximize else box.lower[i] - f_value


def _side_cutoff(net, enc, box, solver, i: int, maximize: bool, level: float) -> _Cutoff:
    """Cutoff for side (i, maximize): the output value whose violation is ``level - 2 * padding``.

    Only points whose violation reaches ``level`` matter (0 when certifying: a verdict needs the side < 0; the
    best replayed violation when computing the exact bracket), so the MILP may drop every point below the
    cutoff. The two paddings leave one padding of room: an infeasible cutoff MILP gives the side the padded bound
    ``level - padding`` (:func:`_side_bound`), strictly below ``level``.
    """
    weights = np.zeros(net.n_out)
    weights[i] = 1.0
    edge = box.upper[i] + level if maximize else box.lower[i] - level
    pad = output_padding(net, enc, weights, solver.feasibility_tolerance, edge)
    return _Cutoff(edge - 2 * pad if maximize else edge + 2 * pad, pad)


def _side_bound(net, enc, box, solver, i: int, maximize: bool, res, cut: _Cutoff | None):
    """A sound upper bound on side (i, maximize)'s violation from one MILP result, with the padding it includes
    and the unpadded value: (bound, padding, raw) ((inf, 0, inf) when the result gives none).

    * with a cutoff and a final INFEASIBLE status: max f_i < cutoff (min f_i > cutoff), padded like a dual bound
      (the same stated assumption about the solver's tolerance as :func:`certify.engines.milp_encoding.output_padding`);
    * OPTIMAL or TIME_LIMIT with a dual bound b: the output bound is b (the cutoff row can only lower the optimum
      when the whole optimum lies beyond the cutoff, so max(b, cutoff) bounds the unrestricted max), padded;
    * anything else: inf.
    """
    if cut is not None and res.status is SolveStatus.INFEASIBLE:
        padded = cut.value + (cut.padding if maximize else -cut.padding)
        return _side_value(box, i, maximize, padded), cut.padding, _side_value(box, i, maximize, cut.value)
    if res.bound is None or res.status not in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT):
        return math.inf, 0.0, math.inf
    raw = res.bound + enc.out_const[i]
    if cut is not None:
        raw = max(raw, cut.value) if maximize else min(raw, cut.value)
    weights = np.zeros(net.n_out)
    weights[i] = 1.0
    pad = output_padding(net, enc, weights, solver.feasibility_tolerance, raw)
    return _side_value(box, i, maximize, raw + pad if maximize else raw - pad), pad, _side_value(box, i, maximize, raw)


_MAX_WORKERS = 2


def _workers(solver, config: VerifyConfig, n_jobs: int) -> int:
    """How many sides to solve at once: 1 in exact mode or for a backend without ``parallel_safe``, else up to
    :data:`_MAX_WORKERS` (and the cores there are)."""
    if config.exact or not getattr(solver, "parallel_safe", False):
        return 1
    return max(1, min(_MAX_WORKERS, os.cpu_count() or 1, n_jobs))


def _solve_sides(solver, enc, jobs, skip, make_cut, deadline, workers):
    """Yield ``(job, cut, result)`` for the sides ``jobs`` ((i, maximize) pairs), in order when ``workers`` is 1
    (``skip(job)`` and ``make_cut(job)`` are asked just before each solve, so they see the results so far), in
    completion order otherwise (asked at submission). ``result`` is None when the time limit ran out first.
    Closing the generator cancels the sides not started and waits for the running ones."""

    def solve(job, cut):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None
        return solver.solve(enc.output_program(job[0], job[1], None if cut is None else cut.value), remaining)

    if workers <= 1:
        for job in jobs:
            if not skip(job):
                cut = make_cut(job)
                yield job, cut, solve(job, cut)
        return
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {}
        for job in jobs:
            if not skip(job):
                cut = make_cut(job)
                futures[pool.submit(solve, job, cut)] = (job, cut)
        for fut in as_completed(futures):
            job, cut = futures[fut]
            yield job, cut, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)



@dataclass(frozen=True, eq=False)
class SideBounds:
    """The outcome of :func:`milp_side_bounds`.

    ``lower``: the largest violation replayed at ``point`` (n_in,); ``upper_excess``/``lower_excess`` (n_states,):
    sound bounds on max f_i - upper_i and max lower_i - f_i; ``status``: each solved side's final status;
    ``reasons``: why a side gave no final answer; ``backend``: the MILP back-end's name; ``padding``: the largest
    padding for solver tolerances applied to a side; ``raw_upper``: the largest side before padding (what the
    solver claims; not a sound bound on its own)."""

    lower: float
    point: np.ndarray
    upper_excess: np.ndarray
    lower_excess: np.ndarray
    status: tuple[tuple[str, str], ...]
    reasons: tuple[str, ...]
    backend: str
    padding: float = 0.0
    raw_upper: float = math.inf

    @property
    def upper(self) -> float:
        return float(max(self.upper_excess.max(), self.lower_excess.max(), self.lower))


def milp_side_bounds(net: Network, box: Box, config: VerifyConfig, deadline: float, interval_sides, sampled_sides,
                     point: np.ndarray, lower: float) -> SideBounds:
    """One MILP per output side that can matter, most doubtful (largest sampled violation) first.

    ``interval_sides``/``sampled_sides``: (hi, lo) pairs of arrays (n_states,), the interval bound and the sampled
    value of each side's violation (max f_i - upper_i; max lower_i - f_i); ``point``/``lower``: the best replayed
    violation so far. Back-end ``config.solvers.milp``; cutoff rows and parallel sides by ``config.invariance``."""
    ns = net.n_states
    names = box.names[:ns]
    solver = registry.get_backend(config.solvers.milp)
    enc = encode_network(net, box, analysis_bounds(net, box, backend=config.solvers.lp_relaxation))
    side_hi, side_lo = interval_sides
    hi_bound = side_hi.astype(float).copy()  # sound bounds per side, improved by the MILP below
    lo_bound = side_lo.astype(float).copy()
    reasons, statuses = [], {}
    padding = 0.0  # the largest padding applied to a side
    raw_hi, raw_lo = hi_bound.copy(), lo_bound.copy()  # the same bounds without the padding of solved sides
    best = [float(lower), np.asarray(point, dtype=np.float64)]
    # a side needs a MILP when its interval bound does not clear the box (or, with config.exact, when it could
    # still hold the maximum violation); most doubtful side first
    jobs = [(i, True) for i in range(ns)] + [(i, False) for i in range(ns)]
    jobs = [job for job in jobs if config.exact or (side_hi if job[1] else side_lo)[job[0]] >= 0]
    jobs.sort(key=lambda job: -sampled_sides[0 if job[1] else 1][job[0]])
    workers = _workers(solver, config, len(jobs)) if config.invariance.parallel_sides else 1

    def skip(job):  # this side cannot raise the maximum violation
        return (hi_bound if job[1] else lo_bound)[job[0]] <= best[0]

    def make_cut(job):  # the side matters only if it can reach `level`
        level = best[0] if config.exact else 0.0
        return _side_cutoff(net, enc, box, solver, job[0], job[1], level) if config.invariance.milp_cutoff else None

    sides = _solve_sides(solver, enc, jobs, skip, make_cut, deadline, workers)
    for (i, maximize), cut, res in sides:
        if res is None:
            reasons.append("time limit reached before every output was solved")
            break
        statuses[f"{names[i]}:{'max' if maximize else 'min'}"] = res.status.value
        if res.x is not None:  # replay the solver's point in float64
            x = box.clip(res.x[enc.x_index])
            v, _ = violation(net, box, x[None])
            if v[0] > best[0]:
                best[:] = [float(v[0]), x]
        side, pad, raw = _side_bound(net, enc, box, solver, i, maximize, res, cut)
        padding = max(padding, pad)
        if maximize:
            hi_bound[i], raw_hi[i] = min(hi_bound[i], side), min(raw_hi[i], raw)
        else:
            lo_bound[i], raw_lo[i] = min(lo_bound[i], side), min(raw_lo[i], raw)
        if res.status is not SolveStatus.OPTIMAL and not (cut is not None and res.status is SolveStatus.INFEASIBLE):
            side_name = f"{names[i]} {'max' if maximize else 'min'}"
            reasons.append(f"{side_name}: solver {res.status.value} {res.message}".strip())
        if best[0] > 0 and not config.exact:
            break
    sides.close()  # parallel runs: cancel the queued sides, wait for the running ones
    raw_upper = float(max(raw_hi.max(), raw_lo.max(), best[0]))
    return SideBounds(best[0], best[1], hi_bound, lo_bound, tuple(statuses.items()), tuple(reasons), solver.name,
                      padding, raw_upper)
