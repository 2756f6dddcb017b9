"""Dissipativity and contraction with ``--metric auto``: is there a weighted 2-norm ||x||_P = ||T x||_2 in which
sup over the box of ||T M(x) T^{-1}||_2 < 1 (M = A* or J)?

The search is :func:`certify.engines.metric_search.metric_search` (an SDP proposes P, the exact engine certifies in
it, counterexamples refine the proposal). The verdict:

* ``certified``: the exact engine proved sup ||T M T^{-1}||_2 <= 1 - margin in the P found (the P is reported);
* ``falsified``: a replayed generic point whose matrix has spectral radius >= 1 (decided exactly): no quadratic
  metric can certify, since rho(M) <= ||T M T^{-1}||_2 for every T; the value reported is that spectral radius;
* ``unknown``: neither, with the bracket in the last metric tried and the reason.

A falsified 2-norm check is not instability; a falsified ``--metric auto`` check says that no quadratic storage
function V(x) = ||x||_P decreases along every A*(x) (or contracts with every J(x)) that occurs in the box.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..certificate import BoundMethod, CheckName, CheckResult, SupNormDetails, Verdict
from ..config import VerifyConfig
from ..engines.contract import Query
from ..engines.metric_search import metric_search
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.numerics import induced_norm
from ..ir.quantity import Quantity
from .common import bracket_text, digits_beside, matrix_witness, require_dynamics, thin_trace


def _p_text(p: np.ndarray) -> str:
    return "[" + "; ".join(" ".join(f"{v:.6g}" for v in row) for row in p) + "]"


def auto_metric_check(check: CheckName, net: Network, box: Box, config: VerifyConfig,
                      quantity: Quantity) -> CheckResult:
    """The check ``check`` (dissipativity: A*, contraction: J) in a metric found by search (module docstring)."""
    require_dynamics(net, check)
    start = time.perf_counter()
    symbol = quantity.symbol
    if config.norm != 2.0:
        return CheckResult(check, Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE, 0.0,
                           reason="--metric auto weights the 2-norm; use --norm 2")
    query = Query(net, box, quantity, config, state_only=True, threshold=config.threshold,
                  deadline=start + config.timeout)
    found = metric_search(query)
    seconds = time.perf_counter() - start
    if found.refutation is not None:
        r = found.refutation
        rho = max(r.radius, 1.0)  # proven >= 1 exactly; the float64 estimate may round below a defective 1
        witness = matrix_witness(net, r.x, rho, r.matrix)
        upper = max(rho, math.inf if found.result is None else found.result.upper)
        reason = (f"the spectral radius of {symbol}(x) is {digits_beside(r.radius)} >= 1 at a replayed point "
                  f"(decided exactly): no quadratic metric can certify, since rho(M) <= ||T M T^-1|| for every T")
        details = SupNormDetails(spectral_radius=r.radius)
        return CheckResult(check, Verdict.FALSIFIED, rho, upper, BoundMethod.SAMPLE, seconds, witness, reason,
                           details)
    res, metric = found.result, found.metric
    if res is None or metric is None:
        return CheckResult(check, Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE, seconds,
                           reason=f"no metric found: {found.reason}")
    method = BoundMethod(res.method) if res.method in {m.value for m in BoundMethod} else BoundMethod.BNB
    witness = None if res.witness is None else matrix_witness(net, res.witness, res.lower, res.matrix)
    details = _details(res, method, metric, found)
    described = (f"in the metric P = {_p_text(metric.p)} (condition number {metric.condition_number:.3g}; "
                 f"||x||_P = sqrt(x^T P x), found by SDP with rate {found.rate:.6g} on {found.matrices} "
                 f"sampled matrices in {found.rounds} round{'s' if found.rounds != 1 else ''})")
    if found.certified(config.threshold):
        reason = f"sup ||T {symbol} T^-1||_2 <= {res.upper:.6g} < 1 {described}"
        return CheckResult(check, Verdict.CERTIFIED, res.lower, res.upper, method, seconds, witness, reason, details)
    plain = "" if res.witness is None else (
        f"; ||{symbol}(x)||_2 = {induced_norm(res.matrix, 2.0):.6g} at the witness")
    reason = (f"sup ||T {symbol} T^-1||_2 lies in {bracket_text(res.lower, res.upper)} {described}: "
              f"{found.reason}{plain}")
    return CheckResult(check, Verdict.UNKNOWN, res.lower, max(res.upper, res.lower), method, seconds, witness,
                       reason, details)


def metric_rows(metric: Metric) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in metric.p)


def _details(res, method: BoundMethod, metric: Metric, found) -> SupNormDetails:
    """The engine's work in the metric found, and the metric (P, condition number, SDP rate, rounds)."""
    common = dict(trace=thin_trace(res.trace), metric=metric_rows(metric), metric_condition=metric.condition_number,
                  metric_rate=found.rate, metric_rounds=found.rounds)
    if method is BoundMethod.BOXES:
        return SupNormDetails(proven_fraction=res.proven_fraction, boxes=res.boxes, **common)
    return SupNormDetails(nodes=res.nodes, lps=res.lps, **common)
