"""The invariance check: is f(X) inside X? (states; exogenous inputs range over their box).

The quantity is the maximum violation over the box,

    V = sup_{x in X} max_i max(f_i(x) - upper_i, lower_i - f_i(x))      (i over states; V < 0 = inside with room)

reported as the bracket ``[lower, upper]`` of the :class:`CheckResult`: ``lower`` is V at a replayed point,
``upper`` a bound. Certified iff upper < 0; falsified iff a replayed point has V > 0 (its x is the witness and the
worst output is named in ``extra``). The steps, cheapest first:

1. sampling (uniform points, the box's centre and, up to 12 dimensions, its vertices): a lower bound and maybe a
   witness;
2. interval bounds (:func:`certify.bounds.interval.output_interval`, sound by outward rounding): certified when they suffice
   (method ``interval``);
3. piecewise-linear nets only: the exact max and min of every output by MILP (:func:`certify.engines.milp_encoding.encode_network`).
   A side whose interval bound already clears the box needs no MILP. Each solver bound is padded by
   :func:`certify.engines.milp_encoding.output_padding` (solver tolerance x per-layer big-M x |W|-chain sensitivity + 1e-7
   relative; an assumption about the solver stated there), and every solution is replayed in float64 through ``net.forward``.
   Sides go most doubtful first (largest sampled violation). Each MILP carries a cutoff row
   (:meth:`certify.engines.milp_encoding.NetworkEncoding.output_program`): only points whose violation reaches ``level - 2 pad`` stay
   (``level`` 0 when certifying, the best replayed violation with ``config.exact``), so the solver prunes like
   with an incumbent at the box's edge; an INFEASIBLE answer bounds the side by ``level - pad`` (padded like a
   dual bound), a feasible one gives the exact side value as before. Certify mode stops at the first replayed
   point outside the box and, for a ``parallel_safe`` backend (CBC), solves up to 2 sides at once.

Smooth nets go from step 2 to a sub-box branch and bound on V (:mod:`certify.engines.violation_search`, interval and
mean-value enclosures; never a MILP).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from ..solvers.base import SolveStatus

from ..bounds.interval import output_interval
from ..ir.box import Box
from ..certificate import CheckName, CheckResult, Verdict, Witness
from ..config import VerifyConfig
from ..errors import UsageError
from ..ir.network import Network

_MAX_VERTEX_DIM = 12
_MAX_SAMPLES = 200_000


def violation(net: Network, box: Box, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-point violation V(x) (B,) and the index of the worst state output (B,), for x of shape (B, n_in)."""
    ns = net.n_states
    f = np.atleast_2d(net.forward(np.atleast_2d(x)))[:, :ns]
    per = np.maximum(f - box.upper[:ns], box.lower[:ns] - f)
    return per.max(axis=1), per.argmax(axis=1)


def side_violations(net: Network, box: Box, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per state output, the largest f_i - upper_i and the largest lower_i - f_i over the points x (B, n_in):
    two arrays (n_states,) (the sampled value of each side; only an ordering hint, never a bound)."""
    ns = net.n_states
    f = np.atleast_2d(net.forward(np.atleast_2d(x)))[:, :ns]
    return (f - box.upper[:ns]).max(axis=0), (box.lower[:ns] - f).max(axis=0)


def _sample_points(box: Box, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = [box.center[None], rng.uniform(box.lower, box.upper, size=(max(count, 0), box.dim))]
    if box.dim <= _MAX_VERTEX_DIM:
        bits = ((np.arange(2**box.dim)[:, None] >> np.arange(box.dim)) & 1).astype(bool)
        pts.append(np.where(bits, box.upper, box.lower))
    return np.concatenate(pts)


def _witness(net: Network, box: Box, x: np.ndarray) -> tuple[Witness, int]:
    v, worst = violation(net, box, x[None])
    return Witness(tuple(float(t) for t in x), float(v[0])), int(worst[0])


def _result(verdict, lower, upper, method, start, witness=None, reason="", extra=None) -> CheckResult:
    return CheckResult(
        CheckName.INVARIANCE, verdict, float(lower), float(upper), method, time.perf_counter() - start,
        witness, reason, extra or {},
    )


def check_invariance(
    net: Network, box: Box, config: VerifyConfig, *, backend: str = "cbc", cutoff: bool = True,
    parallel: bool = True,
) -> CheckResult:
    """Certify or refute f(X) inside X (state part of the box). See the module docstring for the steps.

    ``cutoff``: give each output's MILP the cutoff row of :func:`_side_cutoff` (False: plain max/min, the
    reference the benchmark compares against)."""
    start = time.perf_counter()
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the net takes {net.n_in} inputs")
    if not net.is_dynamics:
        raise UsageError(
            f"the invariance check needs x+ = f(x): the model has {net.n_out} outputs but {net.n_states} states; "
            f"mark exogenous inputs under 'inputs' in the region file"
        )
    ns = net.n_states
    names = box.names[:ns]

    # 1. sampling
    pts = _sample_points(box, min(config.samples, _MAX_SAMPLES), config.seed)
    v, _ = violation(net, box, pts)
    k = int(np.argmax(v))
    best_x = pts[k]
    witness, worst = _witness(net, box, best_x)
    lower = witness.value

    # 2. interval bounds: per output, an upper bound on f_i - upper_i and on lower_i - f_i
    ol, ou = output_interval(net, box)
    side_hi = ou[:ns] - box.upper[:ns]  # bound on max_x f_i(x) - upper_i
    side_lo = box.lower[:ns] - ol[:ns]  # bound on max_x lower_i - f_i(x)
    interval_upper = float(max(side_hi.max(), side_lo.max()))
    extra = {"worst_output": names[worst], "interval_upper": interval_upper}
    if lower > 0 and (not config.exact or not net.piecewise_linear):
        return _falsified(lower, max(interval_upper, lower), "sample", start, witness, names[worst], extra)
    if interval_upper < 0 and not (config.exact and net.piecewise_linear):
        return _result(Verdict.CERTIFIED, lower, interval_upper, "interval", start, witness, extra=extra)
    if not net.piecewise_linear:
        return _smooth_invariance(net, box, config, start, lower, witness, interval_upper, extra)

    # 3. MILP: exact max/min of each output whose interval side does not already clear the box
    sampled = side_violations(net, box, pts)
    res = _milp_invariance(
        net, box, config, backend, start, (side_hi, side_lo), sampled, witness, worst, extra, cutoff, parallel
    )
    return _solver_free_recheck(net, box, config, res) if res.verdict is Verdict.CERTIFIED else res


def _solver_free_recheck(net: Network, box: Box, config: VerifyConfig, res: CheckResult) -> CheckResult:
    """A MILP certificate rests on the stated solver-tolerance assumption (see :func:`certify.engines.milp_encoding.output_padding`).
    Try to confirm it without any solver, by the float64 sub-box enclosures of :mod:`certify.engines.violation_search`, for a
    short budget (min(2 s, timeout / 10)); record the outcome in ``extra['solver_free_recheck']``. The verdict
    stays; the reason says whether it also stands without the solver."""
    from dataclasses import replace

    from ..engines.violation_search import max_violation

    budget = min(2.0, config.timeout / 10)
    check = max_violation(net, box, exact=False, timeout=budget, seed=config.seed)
    if check.exhausted and check.upper < 0:
        note = "confirmed by float64 sub-box enclosures (no solver)"
    else:
        note = (f"not confirmed without a solver within {budget:g} s ({100 * check.proven_fraction:.1f}% of the box "
                f"proven); the certificate rests on the MILP bound padded for solver tolerances")
    return replace(res, extra={**res.extra, "solver_free_recheck": note},
                   reason=(res.reason + "; " if res.reason else "") + note)


def _smooth_invariance(net, box, config, start, lower, witness, interval_upper, extra) -> CheckResult:
    """Smooth nets: sub-box branch and bound on the violation (:func:`certify.engines.violation_search.max_violation`, interval
    and mean-value enclosures). Never uses a MILP."""
    from ..engines.violation_search import max_violation

    remaining = max(0.1, config.timeout - (time.perf_counter() - start))
    res = max_violation(net, box, exact=config.exact, timeout=remaining, seed=config.seed)
    extra = {**extra, "proven_fraction": res.proven_fraction, "boxes": res.boxes}
    upper = min(interval_upper, res.upper)
    if res.lower > lower and res.witness is not None:
        witness, worst = _witness(net, box, res.witness)
        lower = witness.value
        extra["worst_output"] = box.names[worst]
    upper = max(upper, lower)
    if lower > 0:
        return _falsified(lower, upper, "boxes", start, witness, extra["worst_output"], extra)
    if upper < 0:
        return _result(Verdict.CERTIFIED, lower, upper, "boxes", start, witness, extra=extra)
    return _result(
        Verdict.UNKNOWN, lower, upper, "boxes", start, witness,
        reason=(f"sub-box search leaves a possible violation of {upper:.6g} (sampled max {lower:.6g}); "
                f"{100 * res.proven_fraction:.1f}% of the box volume proven inside; {res.reason or 'stopped'}"),
        extra=extra,
    )


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
    from ..engines.milp_encoding import output_padding

    weights = np.zeros(net.n_out)
    weights[i] = 1.0
    edge = box.upper[i] + level if maximize else box.lower[i] - level
    pad = output_padding(net, enc, weights, solver.feasibility_tolerance, edge)
    return _Cutoff(edge - 2 * pad if maximize else edge + 2 * pad, pad)


def _side_bound(net, enc, box, solver, i: int, maximize: bool, res, cut: _Cutoff | None) -> float:
    """A sound upper bound on side (i, maximize)'s violation from one MILP result (inf when it gives none).

    * with a cutoff and a final INFEASIBLE status: max f_i < cutoff (min f_i > cutoff), padded like a dual bound
      (the same stated assumption about the solver's tolerance as :func:`certify.engines.milp_encoding.output_padding`);
    * OPTIMAL or TIME_LIMIT with a dual bound b: the output bound is b (the cutoff row can only lower the optimum
      when the whole optimum lies beyond the cutoff, so max(b, cutoff) bounds the unrestricted max), padded;
    * anything else: inf.
    """
    from ..engines.milp_encoding import output_padding

    if cut is not None and res.status is SolveStatus.INFEASIBLE:
        return _side_value(box, i, maximize, cut.value + (cut.padding if maximize else -cut.padding))
    if res.bound is None or res.status not in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT):
        return math.inf
    raw = res.bound + enc.out_const[i]
    if cut is not None:
        raw = max(raw, cut.value) if maximize else min(raw, cut.value)
    weights = np.zeros(net.n_out)
    weights[i] = 1.0
    pad = output_padding(net, enc, weights, solver.feasibility_tolerance, raw)
    return _side_value(box, i, maximize, raw + pad if maximize else raw - pad)


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
    from concurrent.futures import ThreadPoolExecutor, as_completed

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


def _falsified(lower, upper, method, start, witness, worst_name, extra) -> CheckResult:
    extra = {**extra, "worst_output": worst_name}
    return _result(
        Verdict.FALSIFIED, lower, upper, method, start, witness,
        reason=f"f(x) leaves the box by {lower:.6g} in output {worst_name} at a replayed point", extra=extra,
    )


def _milp_invariance(
    net, box, config, backend, start, interval_sides, sampled_sides, witness, worst, extra, cutoff=True,
    parallel=True,
) -> CheckResult:
    """Step 3: one MILP per output side that can matter, most doubtful (largest sampled violation) first.

    ``interval_sides``/``sampled_sides``: (hi, lo) pairs of arrays (n_states,), the interval bound and the sampled
    value of each side's violation (max f_i - upper_i; max lower_i - f_i)."""
    from ..solvers.registry import get_backend

    from ..engines.milp_encoding import analysis_bounds, encode_network

    ns = net.n_states
    names = box.names[:ns]
    solver = get_backend(backend)
    enc = encode_network(net, box, analysis_bounds(net, box))
    lower = witness.value
    side_hi, side_lo = interval_sides
    hi_bound = side_hi.astype(float).copy()  # sound bounds per side, improved by the MILP below
    lo_bound = side_lo.astype(float).copy()
    reasons = []
    statuses = {}
    deadline = start + config.timeout
    # a side needs a MILP when its interval bound does not clear the box (or, with config.exact, when it could
    # still hold the maximum violation); most doubtful side first
    jobs = [(i, True) for i in range(ns)] + [(i, False) for i in range(ns)]
    jobs = [job for job in jobs if config.exact or (side_hi if job[1] else side_lo)[job[0]] >= 0]
    jobs.sort(key=lambda job: -sampled_sides[0 if job[1] else 1][job[0]])
    workers = _workers(solver, config, len(jobs)) if parallel else 1

    def skip(job):  # this side cannot raise the maximum violation
        return (hi_bound if job[1] else lo_bound)[job[0]] <= lower

    def make_cut(job):  # the side matters only if it can reach `level`
        level = lower if config.exact else 0.0
        return _side_cutoff(net, enc, box, solver, job[0], job[1], level) if cutoff else None

    sides = _solve_sides(solver, enc, jobs, skip, make_cut, deadline, workers)
    for (i, maximize), cut, res in sides:
        if res is None:
            reasons.append("time limit reached before every output was solved")
            break
        statuses[f"{names[i]}:{'max' if maximize else 'min'}"] = res.status.value
        if res.x is not None:  # replay the solver's point in float64
            x = box.clip(res.x[enc.x_index])
            w, wi = _witness(net, box, x)
            if w.value > lower:
                lower, witness, worst = w.value, w, wi
        side = _side_bound(net, enc, box, solver, i, maximize, res, cut)
        if maximize:
            hi_bound[i] = min(hi_bound[i], side)
        else:
            lo_bound[i] = min(lo_bound[i], side)
        if res.status is not SolveStatus.OPTIMAL and not (cut is not None and res.status is SolveStatus.INFEASIBLE):
            side_name = f"{names[i]} {'max' if maximize else 'min'}"
            reasons.append(f"{side_name}: solver {res.status.value} {res.message}".strip())
        if lower > 0 and not config.exact:
            break
    sides.close()  # parallel runs: cancel the queued sides, wait for the running ones
    upper = float(max(hi_bound.max(), lo_bound.max(), lower))
    extra = {
        **extra,
        "worst_output": names[worst],
        "milp_backend": solver.name,
        "milp_status": statuses,
        "output_upper_excess": [float(v) for v in hi_bound],
        "output_lower_excess": [float(v) for v in lo_bound],
    }
    method = f"milp:{solver.name}"
    if lower > 0:
        return _falsified(lower, upper, method, start, witness, names[worst], extra)
    if upper < 0:
        return _result(Verdict.CERTIFIED, lower, upper, method, start, witness, extra=extra)
    reason = "; ".join(reasons) if reasons else (
        f"the padded MILP bound {upper:.3g} does not clear the box although no replayed point leaves it"
    )
    return _result(Verdict.UNKNOWN, lower, upper, method, start, witness, reason=reason, extra=extra)
