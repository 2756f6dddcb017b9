"""Run checks on a Network over a Box and turn the analyses into certificates.

Each check goes falsification first (batched sampling, witnesses replayed in float64), then sound upper bounds.
The verdict follows DESIGN.md section 3 through :func:`certify.certificate.threshold_verdict`: a check is
``certified`` only when a sound upper bound is <= 1 - margin.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import numpy as np

from ..ir.box import Box
from ..certificate import CheckName, CheckResult, Verdict, Witness, threshold_verdict
from ..config import VerifyConfig
from ..errors import RegionError, UsageError
from ..ir.network import Network

DEFAULT_CHECKS = (CheckName.DISSIPATIVITY,)


def parse_checks(text: str | Iterable[str]) -> tuple[CheckName, ...]:
    """'dissipativity,contraction' -> (CheckName.DISSIPATIVITY, CheckName.CONTRACTION); UsageError on unknown names."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not names:
        raise UsageError("--check needs at least one check name")
    out = []
    known = {c.value: c for c in CheckName}
    for name in names:
        if name not in known:
            raise UsageError(f"unknown check '{name}'; choose from {', '.join(known)}")
        if known[name] not in out:
            out.append(known[name])
    return tuple(out)


def align(net: Network, box: Box, box_path: str = "region") -> tuple[Network, Box]:
    """Check that the box fits the model and agree on which coordinates are states.

    A single-input model takes its state/input split from the region file; a two-input model fixes it.
    """
    if box.dim != net.n_in:
        raise RegionError(
            f"{box_path}: the region has {box.dim} coordinates but the model takes {net.n_in} inputs "
            f"({net.n_states} states, {net.n_inputs} exogenous inputs); give one [lower, upper] per model input"
        )
    if box.n_states != net.n_states:
        if net.n_states == net.n_in:
            net = replace(net, n_states=box.n_states)
        elif box.n_states == box.dim:
            box = replace(box, n_states=net.n_states)
        else:
            raise RegionError(
                f"{box_path}: the region lists {box.n_states} states but the model's first input has "
                f"{net.n_states}; list the states under 'states' and the rest under 'inputs'"
            )
    return net, box


def require_dynamics(net: Network, check: CheckName) -> None:
    if not net.is_dynamics:
        raise UsageError(
            f"the {check.value} check needs a dynamical system x+ = f(x): the model has {net.n_out} outputs but "
            f"{net.n_states} states; use --check gain for a map of another shape, or mark exogenous inputs "
            f"under 'inputs' in the region file"
        )


@dataclass(frozen=True)
class _Bound:
    """A sound upper bound on the supremum and the method that produced it (``exact``: equal to the supremum)."""

    value: float
    method: str
    exact: bool = False
    reason: str = ""


def _witness(net: Network, x: np.ndarray, value: float, matrix: np.ndarray) -> Witness:
    from ..engines.sampling import pattern_of

    pattern = pattern_of(net, x) if net.piecewise_linear else None
    rows = tuple(tuple(float(v) for v in row) for row in np.atleast_2d(matrix))
    return Witness(tuple(float(v) for v in x), float(value), pattern, rows)


def exact_core_applies(net: Network, quantity: str) -> bool:
    """The region branch and bound serves J of any PWL net and A* of nets PWL through the origin (A* = J)."""
    return net.piecewise_linear and (quantity == "JACOBIAN" or net.piecewise_linear_through_origin)


def _engine_bound(net: Network, box: Box, config: VerifyConfig, quantity: str, state_only: bool,
                  threshold: float | None, lower: float, lower_point: np.ndarray, deadline: float):
    """Run the engine that ``config.method`` picks; returns (bound or None, better point or None, extra dict).

    A point is (x, value, matrix), replayed in float64 by the engine. ``None`` as bound: nothing applied.
    """
    method = config.method
    remaining = max(0.1, deadline - time.perf_counter())
    pwl = exact_core_applies(net, quantity)
    if method == "sample":
        return None, None, {}
    if method == "interval":
        from ..engines.box_search import BoundKind, sup_norm_bound

        value = sup_norm_bound(net, box, config.norm, quantity, state_only, kinds=(BoundKind.INTERVAL,))
        return _Bound(value, "interval"), None, {}
    if method == "sdp":
        if config.norm != 2.0:
            return _Bound(float("inf"), "sdp", reason="the SDP bound is for the 2-norm only"), None, {}
        from ..engines.lipsdp import sdp_bound_over_box

        res = sdp_bound_over_box(net, box, quantity, state_only)
        if res.value is None:
            return _Bound(float("inf"), "sdp", reason=f"the SDP gave no re-checked bound: {res.reason}"), None, {}
        return _Bound(float(res.value), "sdp"), None, {"sdp": {"min_eig": res.min_eig, "seconds": res.seconds}}
    if pwl and method in ("auto", "exact", "bnb"):
        from ..engines.region_search import sup_norm

        res = sup_norm(net, box, config.norm, quantity, state_only, lower_seed=lower, threshold=threshold,
                       exact=config.exact or method == "exact" or threshold is None, timeout=remaining,
                       seed=config.seed)
        point = None if res.witness is None else (res.witness, res.lower, res.matrix)
        extra = {"nodes": res.nodes, "lps": res.lps, "trace": _thin(res.trace)}
        return _Bound(res.upper, "exact" if res.exact else "bnb", res.exact, res.reason), point, extra
    if method == "exact":
        why = ("the exact region search serves piecewise-linear nets (A* also needs them through the origin); "
               f"{net.describe()} is not; use --method auto or bnb")
        return _Bound(float("inf"), "exact", reason=why), None, {}
    from ..engines.box_search import sup_norm_boxes

    res = sup_norm_boxes(net, box, config.norm, quantity, state_only, threshold=threshold, lower_seed=lower,
                         lower_point=lower_point, timeout=remaining,
                         use_sdp="auto" if method == "auto" else False, seed=config.seed)
    point = None if res.witness is None else (res.witness, res.lower, res.matrix)
    extra = {"proven_fraction": res.proven_fraction, "boxes": res.boxes, "trace": _thin(res.trace)}
    exact = threshold is None and res.exhausted and res.upper <= res.lower
    return _Bound(res.upper, "boxes", exact, res.reason), point, extra


def _sample(net: Network, box: Box, config: VerifyConfig, quantity: str, state_only: bool, memo: dict | None):
    """Falsification of sup ||Q(x)||, shared by the checks of one run through ``memo`` (A* = J for nets that are
    piecewise linear through the origin, so one sampling serves dissipativity, contraction and weight_norm)."""
    from ..engines.sampling import falsify
    from ..ir.quantity import Quantity

    key = ("A_STAR" if net.piecewise_linear_through_origin else quantity, state_only)
    if memo is not None and key in memo:
        return memo[key]
    sample = falsify(net, box, Quantity[quantity], config.norm, config, state_only=state_only)
    if memo is not None:
        memo[key] = sample
    return sample


def _thin(trace, most: int = 200) -> list[list[float]]:
    """At most ``most`` (seconds, lower, upper) entries of a search trace, the last one always kept."""
    rows = [list(map(float, t)) for t in trace]
    if len(rows) <= most:
        return rows
    step = math.ceil(len(rows) / most)
    return rows[:-1:step] + [rows[-1]]


def _sup_norm_check(
    check: CheckName, net: Network, box: Box, config: VerifyConfig, quantity: str, state_only: bool, threshold: bool,
    memo: dict | None = None,
) -> CheckResult:
    """Bracket sup over the box of ||Q(x)||_p (Q = A* or J) and decide 'sup < 1' (or, without threshold, its value).

    Lower bounds are values at points replayed in float64; upper bounds are the Corollary 4 product and the
    engine of ``config.method`` (region branch and bound for PWL nets, sub-box branch and bound otherwise, or a
    single SDP / interval bound); each is sound, so their minimum is. Certified only when that minimum is
    <= 1 - margin (or, for the gain, when an engine closed the bracket).
    """
    from ..bounds.corollary4 import product_bound

    start = time.perf_counter()
    deadline = start + config.timeout
    symbol = "A*" if quantity == "A_STAR" else "J"
    sample = _sample(net, box, config, quantity, state_only, memo)
    lower = float(sample.value)
    witness = _witness(net, sample.x, sample.value, sample.matrix)
    bounds = [_Bound(product_bound(net, box, config.norm, quantity, state_only).value, "weight_norm")]
    level = 1.0 - config.margin
    settled = threshold and (lower >= 1.0 or (lower <= bounds[0].value <= level and not config.exact))
    extra: dict = {}
    if not settled:
        bound, point, extra = _engine_bound(net, box, config, quantity, state_only, level if threshold else None,
                                            lower, sample.x, deadline)
        if bound is not None:
            bounds.append(bound)
        if point is not None and point[1] > lower:
            lower = float(point[1])
            witness = _witness(net, point[0], point[1], point[2])
    # A bound below a value attained at a replayed point is wrong (a bug in that engine): drop it, and let no
    # certificate stand on a run where an engine contradicted itself.
    slack = 1e-9 * max(1.0, abs(lower))
    broken = [b for b in bounds if b.value < lower - slack]
    bounds = [b for b in bounds if b.value >= lower - slack] or [_Bound(float("inf"), "none")]
    best = min(bounds, key=lambda b: b.value)
    engine_reason = "; ".join(b.reason for b in bounds if b.reason)
    if broken:
        engine_reason = "; ".join(
            [f"the {b.method} bound {b.value:.12g} lies below a replayed value and was discarded (please report)"
             for b in broken] + ([engine_reason] if engine_reason else []))
    upper = max(best.value, lower)
    if threshold:
        verdict = threshold_verdict(lower, upper, config.margin, witness)
    else:
        verdict = Verdict.CERTIFIED if best.exact else Verdict.UNKNOWN
    if broken and verdict is Verdict.CERTIFIED:
        verdict = Verdict.UNKNOWN
    if verdict is Verdict.FALSIFIED:
        method = "sample" if witness.value == sample.value else bounds[-1].method
        reason = f"||{symbol}(x)|| = {lower:.6g} >= 1 at a replayed point"
    elif verdict is Verdict.CERTIFIED:
        method, reason = best.method, ""
    else:
        method = best.method
        detail = f"; {engine_reason}" if engine_reason else ""
        if "proven_fraction" in extra:
            detail += f"; {100 * extra['proven_fraction']:.1f}% of the box volume proven"
        if threshold:
            reason = (f"sup ||{symbol}(x)|| lies in [{lower:.6g}, {upper:.6g}]: no witness reaches 1 and the best "
                      f"sound bound ({best.method}) is not below 1 - margin{detail}")
        else:
            reason = f"the gain lies in [{lower:.6g}, {upper:.6g}]; no exact computation settled it{detail}"
    return CheckResult(check, verdict, lower, upper, method, time.perf_counter() - start, witness, reason, extra)


def check_dissipativity(net: Network, box: Box, config: VerifyConfig, memo: dict | None = None) -> CheckResult:
    """sup over X of ||A*(x)_states|| < 1 (Theorem 1)."""
    require_dynamics(net, CheckName.DISSIPATIVITY)
    return _sup_norm_check(CheckName.DISSIPATIVITY, net, box, config, "A_STAR", state_only=True, threshold=True, memo=memo)


def check_contraction(net: Network, box: Box, config: VerifyConfig, memo: dict | None = None) -> CheckResult:
    """sup over X of ||J(x)_states|| < 1."""
    require_dynamics(net, CheckName.CONTRACTION)
    return _sup_norm_check(CheckName.CONTRACTION, net, box, config, "JACOBIAN", state_only=True, threshold=True, memo=memo)


def check_gain(net: Network, box: Box, config: VerifyConfig, memo: dict | None = None) -> CheckResult:
    """sup over X of ||A*(x)|| for a map of any shape (no threshold: certified means the value is exact)."""
    return _sup_norm_check(CheckName.GAIN, net, box, config, "A_STAR", state_only=False, threshold=False, memo=memo)


def check_weight_norm(net: Network, box: Box, config: VerifyConfig, memo: dict | None = None) -> CheckResult:
    """Corollary 4: the product of layer norms and slope maxima < 1 proves dissipativity."""
    from ..bounds.corollary4 import product_bound

    require_dynamics(net, CheckName.WEIGHT_NORM)
    start = time.perf_counter()
    bound = product_bound(net, box, config.norm, "A_STAR", state_only=True)
    sample = _sample(net, box, config, "A_STAR", True, memo)
    witness = _witness(net, sample.x, sample.value, sample.matrix)
    lower = float(sample.value)
    upper = max(bound.value, lower)
    verdict = threshold_verdict(lower, upper, config.margin, witness)
    reason = ""
    if verdict is Verdict.UNKNOWN:
        reason = f"the product of norms {bound.describe()} = {bound.value:.6g} is not below 1 - margin"
    elif verdict is Verdict.FALSIFIED:
        reason = f"||A*(x)|| = {lower:.6g} >= 1 at a replayed point, so no norm bound can certify"
    extra = {
        "product": bound.value,
        "weight_norms": list(bound.weight_norms),
        "slope_maxima": list(bound.slope_maxima),
        "skip_norm": bound.skip_norm,
    }
    method = "sample" if verdict is Verdict.FALSIFIED else "weight_norm"
    return CheckResult(
        CheckName.WEIGHT_NORM, verdict, lower, upper, method, time.perf_counter() - start, witness, reason, extra
    )


def check_invariance(net: Network, box: Box, config: VerifyConfig, memo: dict | None = None) -> CheckResult:
    """f(X) inside X (state part): sampling, interval bounds, then exact MILP output bounds for PWL nets."""
    from .invariance import check_invariance as _invariance

    require_dynamics(net, CheckName.INVARIANCE)
    return _invariance(net, box, config)


def check_equilibria(net: Network, box: Box, config: VerifyConfig, memo: dict | None = None) -> CheckResult:
    """Every isolated equilibrium in X (PWL nets) and the Corollary 3 bounds on its norm.

    ``certified`` means the list is complete: every region was solved, each point replayed in float64, and each
    equilibrium's norm lies within the Corollary 3 bounds. ``lower``/``upper`` are those bounds on ||x_bar||.
    """
    from ..engines.equilibria import find_equilibria

    require_dynamics(net, CheckName.EQUILIBRIA)
    start = time.perf_counter()
    if net.n_inputs:
        return CheckResult(CheckName.EQUILIBRIA, Verdict.UNKNOWN, 0.0, float("inf"), "none",
                           time.perf_counter() - start, None,
                           "exogenous inputs are not supported by the equilibrium search yet")
    if not net.piecewise_linear:
        return _smooth_equilibria(net, box, config, start)
    res = find_equilibria(net, box, config.norm, timeout=config.timeout)
    points = [[float(v) for v in x] for x in res.points]
    extra = {"equilibria": {"points": points, "norm_lower": res.norm_lower, "norm_upper": res.norm_upper,
                            "complete": res.complete, "regions": res.regions}}
    if res.complete and res.consistent:
        listed = "; ".join("[" + ", ".join(f"{v:.6g}" for v in x) + "]" for x in points[:5])
        more = f" and {len(points) - 5} more" if len(points) > 5 else ""
        verdict = Verdict.CERTIFIED
        reason = (f"{len(points)} equilibri{'um' if len(points) == 1 else 'a'} in the box"
                  f"{': ' + listed + more if points else ''} (all {res.regions} regions solved)")
    else:
        verdict = Verdict.UNKNOWN
        reason = res.reason or ("some equilibrium lies outside the Corollary 3 bounds" if not res.consistent
                                else "the enumeration is incomplete")
    upper = res.norm_upper if math.isfinite(res.norm_upper) else float("inf")
    return CheckResult(CheckName.EQUILIBRIA, verdict, float(res.norm_lower), max(upper, float(res.norm_lower)),
                       "regions", time.perf_counter() - start, None, reason, extra)


def _smooth_equilibria(net: Network, box: Box, config: VerifyConfig, start: float) -> CheckResult:
    """Equilibria of a smooth net: Newton from many starts (replayed), each proven by a Krawczyk test, and the
    Corollary 3 bounds over X. The list is certified complete only when exactly one equilibrium is proven and
    sup ||J|| < 1 on the (convex) box, so no second one can exist there (contraction)."""
    from ..engines.newton import equilibrium_norm_bounds, newton_equilibria, prove_equilibrium
    from ..engines.box_search import sup_norm_boxes

    budget = config.timeout
    points = newton_equilibria(net, box, seed=config.seed)
    proofs = [prove_equilibrium(net, x, box) for x in points]
    bounds = equilibrium_norm_bounds(net, box, config.norm, timeout=budget / 3, seed=config.seed)
    listed = [[float(v) for v in x] for x in points]
    extra = {"equilibria": {"points": listed, "norm_lower": bounds.lower, "norm_upper": _num_or_inf(bounds.upper),
                            "proven": [bool(p.proven) for p in proofs], "complete": False}}
    text = "; ".join("[" + ", ".join(f"{v:.6g}" for v in x) + "]" for x in listed[:5]) or "none found"
    unique = False
    if len(points) == 1 and proofs[0].proven:
        rho = sup_norm_boxes(net, box, config.norm, "JACOBIAN", True, threshold=1.0 - config.margin,
                             timeout=max(0.1, budget / 3), use_sdp=False, seed=config.seed)
        unique = rho.upper <= 1.0 - config.margin
    if unique:
        extra["equilibria"]["complete"] = True
        verdict = Verdict.CERTIFIED
        reason = (f"exactly one equilibrium in the box: {text} (existence by a Krawczyk test, uniqueness since "
                  f"sup ||J|| < 1 on the box)")
    else:
        verdict = Verdict.UNKNOWN
        proven = sum(p.proven for p in proofs)
        reason = (f"Newton found {len(points)} equilibri{'um' if len(points) == 1 else 'a'} ({text}), {proven} "
                  f"proven by a Krawczyk test; the search is not exhaustive for smooth nets")
    upper = bounds.upper if math.isfinite(bounds.upper) else float("inf")
    return CheckResult(CheckName.EQUILIBRIA, verdict, float(bounds.lower), max(upper, float(bounds.lower)),
                       "newton", time.perf_counter() - start, None, reason, extra)


def _num_or_inf(v: float):
    return v if math.isfinite(v) else "inf"


CHECKS: dict[CheckName, Callable[..., CheckResult]] = {
    CheckName.DISSIPATIVITY: check_dissipativity,
    CheckName.CONTRACTION: check_contraction,
    CheckName.WEIGHT_NORM: check_weight_norm,
    CheckName.GAIN: check_gain,
    CheckName.INVARIANCE: check_invariance,
    CheckName.EQUILIBRIA: check_equilibria,
}


def available_checks() -> tuple[CheckName, ...]:
    return tuple(CHECKS)


def run_checks(
    net: Network, box: Box, checks: Iterable[CheckName], config: VerifyConfig, progress=None
) -> tuple[CheckResult, ...]:
    """Run each check in order. Misuse (a dynamics check on a non-square map) raises before any work starts.

    ``progress``: optional callable ``progress(check, result_or_None)``, called before (None) and after each check.
    """
    checks = tuple(checks)
    for check in checks:
        if check not in CHECKS:
            raise UsageError(f"the {check.value} check is not available yet; choose from "
                             f"{', '.join(c.value for c in CHECKS)}")
        if check in (CheckName.DISSIPATIVITY, CheckName.CONTRACTION, CheckName.WEIGHT_NORM,
                     CheckName.INVARIANCE, CheckName.EQUILIBRIA):
            require_dynamics(net, check)
    results, memo = [], {}
    for check in checks:
        if progress is not None:
            progress(check, None)
        results.append(CHECKS[check](net, box, config, memo))
        if progress is not None:
            progress(check, results[-1])
    return tuple(results)
