"""The invariance check: is f(X) inside X? (states; exogenous inputs range over their box).

The quantity is the maximum violation over the box,

    V = sup_{x in X} max_i max(f_i(x) - upper_i, lower_i - f_i(x))      (i over states; V < 0 = inside with room)

reported as the bracket ``[lower, upper]`` of the :class:`~certify.certificate.CheckResult`: ``lower`` is V at a
replayed point, ``upper`` a bound. Certified iff upper < 0; falsified iff a replayed point has V > 0 (its x is the
witness and the worst output is named in the details). The steps, cheapest first:

1. sampling (uniform points, the box's centre and, up to 12 dimensions, its vertices): a lower bound and maybe a
   witness;
2. interval bounds (:func:`certify.bounds.interval.output_interval`, sound by outward rounding): certified when
   they suffice (method ``interval``);
3. piecewise-linear nets with at most 8 inputs: the input-split branch and bound with batched CROWN bounds
   (:mod:`certify.engines.output_bnb`, ``config.invariance.bnb``), for half the remaining time; its bounds are
   float64 with outward rounding pads and no solver, so its certificate needs no re-check (method ``crown``);
4. what it leaves open (or every piecewise-linear net with ``bnb`` off or more inputs): the exact max and min of
   every output side that can matter, by MILP (:mod:`certify.engines.output_milp`); a MILP certificate is then
   re-checked without any solver by the sub-box search for a short budget (:func:`solver_free_recheck`); the
   smaller of the branch and bound's and the MILP's sound bounds is reported;
   smooth nets: a sub-box branch and bound on V (:mod:`certify.engines.violation_search`, interval and mean-value
   enclosures; never a MILP).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from ..bounds.interval import output_interval
from ..certificate import BoundMethod, CheckName, CheckResult, InvarianceDetails, MilpSides, Verdict, Witness
from ..config import VerifyConfig
from ..engines.contract import Query
from ..engines.output_bnb import output_bnb
from ..engines.output_milp import milp_side_bounds
from ..engines.violation_search import replayed_violation, side_violations, violation, violation_search
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import OVERFLOW_REASON
from ..ir.quantity import Quantity
from .common import SamplingMemo, bracket_text, require_dynamics

_MAX_VERTEX_DIM = 12
_MAX_SPLIT_DIM = 8  # input splitting pays up to this many inputs (beyond it: MILP)
_BNB_SHARE = 0.5  # of the time left, for the branch and bound before the MILP fallback
_MAX_SAMPLES = 200_000
_FIRST_SAMPLES = 1024


def _sample_points(box: Box, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = [box.center[None], rng.uniform(box.lower, box.upper, size=(max(count, 0), box.dim))]
    if box.dim <= _MAX_VERTEX_DIM:
        bits = ((np.arange(2**box.dim)[:, None] >> np.arange(box.dim)) & 1).astype(bool)
        pts.append(np.where(bits, box.upper, box.lower))
    return np.concatenate(pts)


def _witness(net: Network, box: Box, x: np.ndarray) -> tuple[Witness, int]:
    v, worst = replayed_violation(net, box, x[None])
    return Witness(tuple(float(t) for t in x), float(v[0])), int(worst[0])


def _result(verdict, lower, upper, method, start, witness, details, reason="") -> CheckResult:
    return CheckResult(CheckName.INVARIANCE, verdict, float(lower), float(upper), method,
                       time.perf_counter() - start, witness, reason, details)


_BNB_RECHECK = "not needed: the bound is solver-free (float64 CROWN with outward rounding pads)"


def _falsified(lower, upper, method, start, witness, details: InvarianceDetails) -> CheckResult:
    return _result(Verdict.FALSIFIED, lower, upper, method, start, witness, details,
                   reason=f"f(x) leaves the box by {lower:.6g} in output {details.worst_output} at a replayed point")


def check_invariance(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo | None = None) -> CheckResult:
    """Certify or refute f(X) inside X (state part of the box). See the module docstring for the steps.

    The MILP back-end is ``config.solvers.milp``; cutoff rows and parallel sides follow ``config.invariance``."""
    start = time.perf_counter()
    require_dynamics(net, CheckName.INVARIANCE)
    query = Query(net, box, Quantity.VIOLATION, config, threshold=0.0, deadline=start + config.timeout)
    ns = net.n_states
    names = box.names[:ns]

    # 1. sampling
    count = min(config.samples, _MAX_SAMPLES)  # a first small batch: a net far outside is falsified at once
    pts = _sample_points(box, min(count, _FIRST_SAMPLES), config.seed)
    v, _ = violation(net, box, pts)
    if count > _FIRST_SAMPLES and (config.exact or not (v.max() > 0 and np.all(np.isfinite(v)))):
        rng = np.random.default_rng([config.seed, 1])
        rest = rng.uniform(box.lower, box.upper, (count - _FIRST_SAMPLES, box.dim))
        pts = np.concatenate([pts, rest])
        v = np.concatenate([v, violation(net, box, rest)[0]])
    overflow = not np.all(np.isfinite(v))  # f overflows float64 at a sampled point: no value there, so no witness
    v = np.where(np.isfinite(v), v, -np.inf)
    witness, worst = _witness(net, box, pts[int(np.argmax(v))])
    if not np.isfinite(witness.value):
        witness = None
    lower = witness.value if witness is not None else -np.inf

    # 2. interval bounds: per output, an upper bound on f_i - upper_i and on lower_i - f_i
    ol, ou = output_interval(net, box)
    side_hi = ou[:ns] - box.upper[:ns]  # bound on max_x f_i(x) - upper_i
    side_lo = box.lower[:ns] - ol[:ns]  # bound on max_x lower_i - f_i(x)
    interval_upper = float(max(side_hi.max(), side_lo.max()))
    details = InvarianceDetails(names[worst], interval_upper)
    if lower > 0 and (not config.exact or not net.piecewise_linear):
        return _falsified(lower, max(interval_upper, lower), BoundMethod.SAMPLE, start, witness, details)
    if overflow or not np.isfinite(interval_upper):  # no engine can bound what float64 cannot hold
        if lower > 0:
            return _falsified(lower, math.inf, BoundMethod.SAMPLE, start, witness, details)
        return _result(Verdict.UNKNOWN, lower, math.inf, BoundMethod.INTERVAL, start, witness, details,
                       OVERFLOW_REASON)
    if interval_upper < 0 and not (config.exact and net.piecewise_linear):
        return _result(Verdict.CERTIFIED, lower, interval_upper, BoundMethod.INTERVAL, start, witness, details)
    if not net.piecewise_linear:
        return _smooth_invariance(query, start, lower, witness, interval_upper, details)

    # 3. the output branch and bound (input splits, batched CROWN), MILP only for what it leaves open
    bnb_upper, bnb_reason = np.inf, ""
    if config.invariance.bnb and net.n_in <= _MAX_SPLIT_DIM:
        bnb = output_bnb(query.with_(threshold=None if config.exact else 0.0, lower_seed=lower,
                                     lower_point=np.array(witness.x),
                                     deadline=time.perf_counter() + _BNB_SHARE * query.seconds_left()))
        if bnb.lower > lower and bnb.witness is not None:
            witness, worst = _witness(net, box, bnb.witness)
            lower = witness.value
        bnb_upper = max(bnb.upper, lower)
        details = replace(details, worst_output=names[worst], proven_fraction=bnb.proven_fraction, boxes=bnb.boxes,
                          solver_free_recheck=_BNB_RECHECK)
        if lower > 0 and (not config.exact or bnb.exhausted):
            return _falsified(lower, bnb_upper, BoundMethod.CROWN, start, witness, details)
        if bnb_upper < 0 and (not config.exact or bnb.exhausted):
            return _result(Verdict.CERTIFIED, lower, bnb_upper, BoundMethod.CROWN, start, witness, details)
        if config.exact and bnb.exhausted:  # closed within the gap tolerance, at the box's edge
            return _result(Verdict.UNKNOWN, lower, bnb_upper, BoundMethod.CROWN, start, witness, details,
                           f"the maximum violation lies in {bracket_text(lower, bnb_upper)}, within the gap tolerance "
                           "of 0: neither inside with room nor outside at a replayed point")
        bnb_reason = (f"the output branch and bound left {bracket_text(lower, bnb_upper)} after {bnb.boxes} boxes "
                      f"({bnb.reason or 'stopped'})")
        details = replace(details, solver_free_recheck=None)

    # 4. MILP: exact max/min of each output side whose interval bound does not already clear the box
    sides = milp_side_bounds(net, box, config, query.deadline, (side_hi, side_lo), side_violations(net, box, pts),
                             np.array(witness.x), lower)
    if sides.lower > lower:
        witness, worst = _witness(net, box, sides.point)
        lower = witness.value
    milp = MilpSides(sides.backend, sides.status, tuple(map(float, sides.upper_excess)),
                     tuple(map(float, sides.lower_excess)))
    details = replace(details, worst_output=names[worst], milp=milp)
    upper = min(sides.upper, bnb_upper)  # the best sound bound found
    if lower > 0:
        return _falsified(lower, upper, BoundMethod.MILP, start, witness, details)
    if bnb_upper < 0:  # the branch and bound's bound (open in exact mode) clears the box after all
        details = replace(details, solver_free_recheck=_BNB_RECHECK)
        return _result(Verdict.CERTIFIED, lower, upper, BoundMethod.CROWN, start, witness, details, bnb_reason)
    if upper < 0:
        res = _result(Verdict.CERTIFIED, lower, upper, BoundMethod.MILP, start, witness, details)
        budget = min(2.0, config.timeout / 10, query.seconds_left())
        return solver_free_recheck(net, box, config, res, budget)
    reason = "; ".join(sides.reasons) if sides.reasons else (
        f"the padded MILP bound {sides.upper:.3g} does not clear the box although no replayed point leaves it")
    if bnb_reason:
        reason = bnb_reason + "; " + reason
    if sides.raw_upper < 0 <= upper:
        reason += (f" (the solver's optimum clears the box by {-sides.raw_upper:.3g}, less than the padding "
                   f"{sides.padding:.3g} for its tolerances)")
    if query.seconds_left() > 0:  # settle it without any solver, by float64 sub-box enclosures, if time allows
        boxes = violation_search(query.with_(lower_seed=lower))
        if boxes.exhausted and boxes.upper < 0:
            details = replace(details, proven_fraction=boxes.proven_fraction, boxes=boxes.boxes,
                              solver_free_recheck="settled by float64 sub-box enclosures (no solver)")
            return _result(Verdict.CERTIFIED, lower, max(boxes.upper, lower), BoundMethod.BOXES, start, witness,
                           details, reason + "; settled by float64 sub-box enclosures (no solver)")
        upper = min(upper, max(boxes.upper, lower))
        reason += f"; float64 sub-box enclosures proved {100 * boxes.proven_fraction:.1f}% of the box inside"
    return _result(Verdict.UNKNOWN, lower, upper, BoundMethod.MILP, start, witness, details, reason)


def solver_free_recheck(net: Network, box: Box, config: VerifyConfig, res: CheckResult,
                        budget: float | None = None) -> CheckResult:
    """A MILP certificate rests on the stated solver-tolerance assumption (see
    :func:`certify.engines.milp_encoding.output_padding`). Try to confirm it without any solver, by the float64
    sub-box enclosures of :mod:`certify.engines.violation_search`, for a short ``budget`` of seconds (default
    min(2 s, timeout / 10); the check passes no more than its remaining time), and at most ``config.budget`` boxes;
    record the outcome in the details' ``solver_free_recheck``. The verdict stays; the reason says whether it also
    stands without the solver."""
    budget = min(2.0, config.timeout / 10) if budget is None else budget
    rests = "the certificate rests on the MILP bound padded for solver tolerances"
    if budget <= 0:
        note = f"not re-checked without a solver (no time left); {rests}"
    else:
        check = violation_search(Query(net, box, Quantity.VIOLATION, config.with_(timeout=budget), threshold=0.0))
        if check.exhausted and check.upper < 0:
            note = "confirmed by float64 sub-box enclosures (no solver)"
        else:
            note = (f"not confirmed without a solver within {budget:g} s ({100 * check.proven_fraction:.1f}% of the "
                    f"box proven); {rests}")
    return replace(res, details=replace(res.details, solver_free_recheck=note),
                   reason=(res.reason + "; " if res.reason else "") + note)


def _smooth_invariance(query: Query, start: float, lower, witness, interval_upper,
                       details: InvarianceDetails) -> CheckResult:
    """Smooth nets: sub-box branch and bound on the violation (never a MILP); exact mode without a threshold."""
    net, box, config = query.network, query.box, query.config
    res = violation_search(query.with_(threshold=None) if config.exact else query)
    details = replace(details, proven_fraction=res.proven_fraction, boxes=res.boxes)
    upper = min(interval_upper, res.upper)
    if res.lower > lower and res.witness is not None:
        witness, worst = _witness(net, box, res.witness)
        lower = witness.value
        details = replace(details, worst_output=box.names[worst])
    upper = max(upper, lower)
    if lower > 0:
        return _falsified(lower, upper, BoundMethod.BOXES, start, witness, details)
    if upper < 0:
        return _result(Verdict.CERTIFIED, lower, upper, BoundMethod.BOXES, start, witness, details)
    reason = (f"sub-box search leaves a possible violation of {upper:.6g} (sampled max {lower:.6g}); "
              f"{100 * res.proven_fraction:.1f}% of the box volume proven inside; {res.reason or 'stopped'}")
    return _result(Verdict.UNKNOWN, lower, upper, BoundMethod.BOXES, start, witness, details, reason)
