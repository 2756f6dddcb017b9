"""The flow every sup-norm check shares (dissipativity, contraction, gain): sampling, Corollary 4, one engine.

Falsification first (batched sampling, witnesses replayed in float64), then the Corollary 4 product and the engine
that :data:`ENGINES` assigns to ``config.method`` (region branch and bound for piecewise-linear nets, sub-box branch
and bound otherwise, or a single SDP / interval bound). Each upper bound is sound, so their minimum is; the verdict
follows DESIGN.md section 3 through :func:`certify.certificate.threshold_verdict`: certified only when that
minimum is <= 1 - margin (for the gain, which has no threshold: only when an engine closed the bracket).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

from ..bounds.corollary4 import product_bound
from ..bounds.norm_bounds import sup_norm_bound
from ..certificate import BoundMethod, CheckName, CheckResult, SupNormDetails, Verdict, threshold_verdict
from ..config import BoundKind, Method, VerifyConfig
from ..engines.box_search import box_search
from ..engines.contract import EngineResult, Query
from ..engines.lipsdp import sdp_bound_over_box
from ..engines.region_search import region_search
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.numerics import OVERFLOW_REASON, chain_fits
from ..ir.quantity import Quantity
from .common import SamplingMemo, bracket_text, digits_beside, matrix_witness, thin_trace


def exact_core_applies(net: Network, quantity: Quantity) -> bool:
    """The region branch and bound serves J of any PWL net and A* of nets PWL through the origin (A* = J)."""
    return net.piecewise_linear and (quantity is Quantity.JACOBIAN or net.piecewise_linear_through_origin)


@dataclass(frozen=True)
class Bound:
    """A sound upper bound on the supremum and the method that produced it (``exact``: equal to the supremum),
    with the engine result it came from (None for Corollary 4) and the details the check reports."""

    value: float
    method: BoundMethod
    exact: bool = False
    reason: str = ""
    result: EngineResult | None = None
    details: SupNormDetails | None = None


# ============================================================================================ the engines
def _regions(query: Query) -> Bound:
    """Region branch and bound; exact unless certifying (``--exact`` and ``--method exact`` ask for the value)."""
    config = query.config
    if config.exact or config.method is Method.EXACT:
        query = query.with_(threshold=None)
    res = region_search(query)
    method = BoundMethod.EXACT if res.exact else BoundMethod.BNB
    details = SupNormDetails(nodes=res.nodes, lps=res.lps, trace=thin_trace(res.trace))
    return Bound(res.upper, method, res.exact, res.reason, res, details)


def _boxes(query: Query) -> Bound:
    """Sub-box branch and bound (with SDP on small nets when the method is auto)."""
    res = box_search(query)
    exact = query.threshold is None and res.exhausted and res.upper <= res.lower
    details = SupNormDetails(proven_fraction=res.proven_fraction, boxes=res.boxes, trace=thin_trace(res.trace))
    return Bound(res.upper, BoundMethod.BOXES, exact, res.reason, res, details)


def _sdp(query: Query) -> Bound:
    """One LipSDP bound over the whole box (2-norm only), re-checked in float64."""
    if query.norm != 2.0:
        return Bound(math.inf, BoundMethod.SDP, reason="the SDP bound is for the 2-norm only")
    res = sdp_bound_over_box(query.network, query.box, query.quantity, query.state_only,
                             backend=query.config.solvers.sdp, metric=query.metric)
    if res.value is None:
        return Bound(math.inf, BoundMethod.SDP, reason=f"the SDP gave no re-checked bound: {res.reason}")
    details = SupNormDetails(sdp_min_eig=res.min_eig, sdp_seconds=res.seconds)
    return Bound(float(res.value), BoundMethod.SDP, details=details)


def _interval(query: Query) -> Bound:
    """One interval-matrix bound over the whole box."""
    value = sup_norm_bound(query.network, query.box, query.norm, query.quantity, query.state_only,
                           kinds=(BoundKind.INTERVAL,), metric=query.metric)
    return Bound(value, BoundMethod.INTERVAL)


def _exact_unavailable(query: Query) -> Bound:
    why = ("the exact region search serves piecewise-linear nets (A* also needs them through the origin); "
           f"{query.network.describe()} is not; use --method auto or bnb")
    return Bound(math.inf, BoundMethod.EXACT, reason=why)


Engine = Callable[[Query], Bound]

# method -> (engine where the exact core applies, engine otherwise); None: no engine beyond sampling and Cor. 4
ENGINES: dict[Method, tuple[Engine | None, Engine | None]] = {
    Method.AUTO: (_regions, _boxes),
    Method.EXACT: (_regions, _exact_unavailable),
    Method.BNB: (_regions, _boxes),
    Method.SDP: (_sdp, _sdp),
    Method.INTERVAL: (_interval, _interval),
    Method.SAMPLE: (None, None),
}


# ============================================================================================ the flow
def sup_norm_check(check: CheckName, net: Network, box: Box, config: VerifyConfig, quantity: Quantity,
                   state_only: bool, threshold: bool, memo: SamplingMemo,
                   metric: Metric | None = None) -> CheckResult:
    """Bracket sup over the box of ||Q(x)||_p (Q = A* or J) and decide 'sup < 1' (or, without threshold, its value).

    Lower bounds are values at points replayed in float64; upper bounds are the Corollary 4 product and the engine
    of ``config.method``; with a ``metric``, every one of them in ||T M T^{-1}||_2. A bound below a value attained
    at a replayed point is wrong (a bug in that engine): it is dropped, and no certificate stands on a run where an
    engine contradicted itself.
    """
    start = time.perf_counter()
    symbol = quantity.symbol
    # sampling may use half of the check's time when an engine follows (all of it with --method sample)
    share = 1.0 if config.method is Method.SAMPLE else 0.5
    sample = memo.sample(net, box, config.with_(timeout=share * config.timeout), quantity, state_only, metric)
    if sample.generic:
        lower, witness = float(sample.value), matrix_witness(net, sample.x, sample.value, sample.matrix)
    else:  # a point on a kink: its matrix is a derivative convention's, not an open region's (no witness)
        lower, witness = -math.inf, None
    product = product_bound(net, box, config.norm, quantity, state_only, metric)
    bounds = [Bound(product.value, BoundMethod.WEIGHT_NORM)]
    # a sampled matrix that overflowed float64, or a chain whose products may: no engine runs (its NaN norms would
    # drop out of a maximum), nothing is certified, and the reason says so (chain_fits)
    overflow = sample.overflow or not chain_fits(product.weight_norms + product.slope_maxima + (product.skip_norm,))
    level = config.threshold
    # --exact asks for the value whatever the verdict: only without it may sampling or Corollary 4 settle the check
    settled = overflow or (threshold and not config.exact and (lower >= 1.0 or lower <= bounds[0].value <= level))
    details = None
    if not settled:
        regions_engine, other_engine = ENGINES[config.method]
        engine = regions_engine if exact_core_applies(net, quantity) else other_engine
        if engine is not None:
            query = Query(net, box, quantity, config, state_only,
                          threshold=level if threshold and not config.exact else None,
                          lower_seed=lower, lower_point=sample.x if sample.generic else None,
                          deadline=start + config.timeout, metric=metric, guard=level if threshold else None)
            bound = engine(query)
            details = bound.details
            bounds.append(bound)
            res = bound.result
            if res is not None and res.witness is not None and res.lower > lower:
                lower = float(res.lower)
                witness = matrix_witness(net, res.witness, res.lower, res.matrix)
    bounds = [b if not math.isnan(b.value) else replace(b, value=math.inf) for b in bounds]  # NaN is no bound
    slack = 1e-9 * max(1.0, abs(lower))
    broken = [b for b in bounds if b.value < lower - slack]
    bounds = [b for b in bounds if b.value >= lower - slack] or [Bound(math.inf, BoundMethod.NONE)]
    best = min(bounds, key=lambda b: b.value)
    engine_reason = "; ".join(b.reason for b in bounds if b.reason)
    if broken:
        engine_reason = "; ".join(
            [f"the {b.method.value} bound {b.value:.12g} lies below a replayed value and was discarded (please "
             f"report)" for b in broken] + ([engine_reason] if engine_reason else []))
    upper = max(best.value, lower)
    if threshold:
        verdict = threshold_verdict(lower, upper, config.margin, witness)
    else:
        verdict = Verdict.CERTIFIED if best.exact else Verdict.UNKNOWN
    if (broken or overflow) and verdict is Verdict.CERTIFIED:
        verdict = Verdict.UNKNOWN
    if metric is not None:
        symbol = f"T {symbol} T^-1"
    if verdict is Verdict.FALSIFIED:
        if best.exact:
            method = best.method  # --exact: the engine closed the bracket
        else:
            method = BoundMethod.SAMPLE if sample.generic and witness.value == sample.value else bounds[-1].method
        reason = f"||{symbol}(x)|| = {digits_beside(lower)} >= 1 at a replayed point"
    elif verdict is Verdict.CERTIFIED:
        method, reason = best.method, ""
    else:
        method = best.method
        detail = f"; {engine_reason}" if engine_reason else ""
        if details is not None and details.proven_fraction is not None:
            detail += f"; {100 * details.proven_fraction:.1f}% of the box volume proven"
        if overflow:
            detail += f"; {OVERFLOW_REASON}"
        if threshold:
            reason = (f"sup ||{symbol}(x)|| lies in {bracket_text(lower, upper)}: no witness reaches 1 and the best "
                      f"sound bound ({best.method.value}) is not below 1 - margin{detail}")
        else:
            reason = f"the gain lies in {bracket_text(lower, upper)}; no exact computation settled it{detail}"
    if metric is not None:  # the metric the check was measured in
        rows = tuple(tuple(float(v) for v in row) for row in metric.p)
        details = replace(details or SupNormDetails(), metric=rows, metric_condition=metric.condition_number)
    return CheckResult(check, verdict, lower, upper, method, time.perf_counter() - start, witness, reason, details)
