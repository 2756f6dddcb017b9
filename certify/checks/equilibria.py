"""Equilibria: every isolated equilibrium in X and the Corollary 3 bounds on its norm.

Piecewise-linear nets: every region is solved (:func:`certify.engines.equilibria.find_equilibria`), so the list
is complete when the enumeration is. Smooth nets: Newton from many starts, each point proven by a Krawczyk test;
the list is complete only when exactly one equilibrium is proven and sup ||J|| < 1 on the (convex) box.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from ..bounds.corollary4 import product_bound
from ..certificate import BoundMethod, CheckName, CheckResult, EquilibriaDetails, Verdict
from ..config import SdpUse, VerifyConfig
from ..engines.box_search import box_search
from ..engines.contract import Query
from ..engines.equilibria import find_equilibria
from ..engines.newton import equilibrium_norm_bounds, newton_equilibria, prove_equilibrium
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import OVERFLOW_REASON, chain_fits
from ..ir.quantity import Quantity
from ..solvers import registry
from .common import SamplingMemo, require_dynamics


def _listed(points) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in x) for x in points)


def _text(points, most: int = 5) -> str:
    return "; ".join("[" + ", ".join(f"{v:.6g}" for v in x) + "]" for x in points[:most])


def check_equilibria(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo) -> CheckResult:
    """``certified`` means the list is complete: every region was solved (or, for smooth nets, uniqueness is
    proven), each point replayed in float64, and each equilibrium's norm lies within the Corollary 3 bounds.
    ``lower``/``upper`` are those bounds on ||x_bar||."""
    require_dynamics(net, CheckName.EQUILIBRIA)
    start = time.perf_counter()
    if net.n_inputs:
        return CheckResult(CheckName.EQUILIBRIA, Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE,
                           time.perf_counter() - start, None,
                           "exogenous inputs are not supported by the equilibrium search yet")
    product = product_bound(net, box, config.norm, Quantity.JACOBIAN, False)
    if not chain_fits(product.weight_norms + product.slope_maxima + (product.skip_norm,)):
        return CheckResult(CheckName.EQUILIBRIA, Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE,
                           time.perf_counter() - start, None, f"no equilibrium search: {OVERFLOW_REASON}")
    if not net.piecewise_linear:
        return _smooth_equilibria(net, box, config, start)
    try:
        res = find_equilibria(net, box, config)
    except registry.BackendUnavailableError as exc:
        return CheckResult(CheckName.EQUILIBRIA, Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE,
                           time.perf_counter() - start, None, f"the region enumeration cannot run: {exc}")
    points = _listed(res.points)
    details = EquilibriaDetails(points, res.norm_lower, res.norm_upper, res.complete, regions=res.regions)
    if res.complete and res.consistent:
        more = f" and {len(points) - 5} more" if len(points) > 5 else ""
        verdict = Verdict.CERTIFIED
        reason = (f"{len(points)} equilibri{'um' if len(points) == 1 else 'a'} in the box"
                  f"{': ' + _text(points) + more if points else ''} (all {res.regions} regions solved)")
    else:
        verdict = Verdict.UNKNOWN
        reason = res.reason or ("some equilibrium lies outside the Corollary 3 bounds" if not res.consistent
                                else "the enumeration is incomplete")
    upper = res.norm_upper if math.isfinite(res.norm_upper) else math.inf
    return CheckResult(CheckName.EQUILIBRIA, verdict, float(res.norm_lower), max(upper, float(res.norm_lower)),
                       BoundMethod.REGIONS, time.perf_counter() - start, None, reason, details)


def _smooth_equilibria(net: Network, box: Box, config: VerifyConfig, start: float) -> CheckResult:
    """Newton from many starts (replayed), each proven by a Krawczyk test, and the Corollary 3 bounds over X."""
    budget = config.timeout
    points = newton_equilibria(net, box, seed=config.seed)
    proofs = [prove_equilibrium(net, x, box) for x in points]
    bounds = equilibrium_norm_bounds(net, box, config, timeout=budget / 3)
    listed = _listed(points)
    text = _text(listed) or "none found"
    unique = False
    if len(points) == 1 and proofs[0].proven:
        sub = config.with_(timeout=max(0.1, budget / 3), boxes=replace(config.boxes, sdp=SdpUse.NEVER))
        rho = box_search(Query(net, box, Quantity.JACOBIAN, sub, threshold=config.threshold))
        unique = rho.upper <= config.threshold
    details = EquilibriaDetails(listed, bounds.lower, bounds.upper, unique, proven=tuple(p.proven for p in proofs))
    if unique:
        verdict = Verdict.CERTIFIED
        reason = (f"exactly one equilibrium in the box: {text} (existence by a Krawczyk test, uniqueness since "
                  f"sup ||J|| < 1 on the box)")
    else:
        verdict = Verdict.UNKNOWN
        proven = sum(p.proven for p in proofs)
        reason = (f"Newton found {len(points)} equilibri{'um' if len(points) == 1 else 'a'} ({text}), {proven} "
                  f"proven by a Krawczyk test; the search is not exhaustive for smooth nets")
    upper = bounds.upper if math.isfinite(bounds.upper) else math.inf
    return CheckResult(CheckName.EQUILIBRIA, verdict, float(bounds.lower), max(upper, float(bounds.lower)),
                       BoundMethod.NEWTON, time.perf_counter() - start, None, reason, details)
