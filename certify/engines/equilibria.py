"""Equilibria x = f(x) of an autonomous piecewise-linear net in a box, and the Corollary 3 norm bounds.

On each full-dimensional region r (from :func:`certify.engines.regions.enumerate_regions`) f(x) = M_r x + c_r, so an
equilibrium in r solves (I - M_r) x = c_r. Every point of the box lies in the closure of some full-dimensional
region, and f = M_r x + c_r holds on that closure by continuity, so solving on every region (keeping solutions in
the closed region, with a tolerance) finds every isolated equilibrium in the box. Each kept point is replayed
through the float64 IR (|f(x) - x|_inf <= 1e-9 (1 + |x|_inf), x in the box) and duplicates (a point on a face
shared by several regions) are merged. A region where I - M_r is singular (smallest singular value <= 1e-12
times the largest) can hold a continuum of fixed points: unless an LP proves (I - M_r) x = c_r has no solution in
the (slightly enlarged) region, it is reported, not solved, and the result is not ``complete``.

Corollary 3 (DESIGN.md section 2), for ReLU/LeakyReLU/PReLU/identity nets where A* = M_r and b* = c_r on r:
every equilibrium x_bar in X satisfies lb <= ||x_bar|| <= ub with
lb = min_r ||c_r|| / max_r ||I - M_r||  and  ub = max_r ||c_r|| / (1 - rho_A),  rho_A = max_r ||M_r|| (ub only when
rho_A < 1). The inequality at x_bar holds with the (M_r, c_r) of any region whose closure holds x_bar, so the
extremes over the full-dimensional regions suffice. For clip-type nets A* is not constant on regions: points are
still found, the bounds are (0, inf) with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import VerifyConfig
from ..errors import UsageError
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import check_norm, induced_norm, vector_norm
from ..solvers import registry
from ..solvers.base import LinearProgram, SolveStatus
from .regions import ActivationRegion, enumerate_regions


@dataclass(frozen=True, eq=False)
class EquilibriaResult:
    """``points``: every isolated equilibrium found, each (n,), replayed; ``norm_lower``/``norm_upper``: the
    Corollary 3 bounds on ||x_bar||_p (norm_upper inf when rho_A >= 1); ``rho``: max_r ||M_r||_p;
    ``singular_regions``: regions where I - M_r is singular; ``complete``: the enumeration was complete, no
    sliver was dropped and no region was singular; ``consistent``: every point's norm lies in the bounds."""

    points: tuple[np.ndarray, ...]
    norm_lower: float
    norm_upper: float
    rho: float
    singular_regions: tuple[ActivationRegion, ...]
    complete: bool
    consistent: bool
    regions: int
    seconds: float
    reason: str = ""


def _has_fixed_point(box: Box, region: ActivationRegion, a: np.ndarray, slack: float, solver) -> bool:
    """False only when an LP proves that no x in the region (enlarged by ``slack``) solves (I - M) x = c within
    ``slack``: a singular region can then hold no equilibrium at all (e.g. a saturated controller pushing a
    marginally stable plant). Any other LP outcome (feasible, or a status other than infeasible) answers True,
    and the region is reported as possibly holding a continuum of fixed points."""
    n = a.shape[1]
    lp = LinearProgram(
        c=np.zeros(n),
        a_ub=np.vstack([region.a_ub, a, -a]),
        b_ub=np.concatenate([region.b_ub + slack, region.c + slack, -region.c + slack]),
        a_eq=np.zeros((0, n)),
        b_eq=np.zeros(0),
        lower=box.lower - slack,
        upper=box.upper + slack,
    )
    return solver.solve(lp, 60.0).status is not SolveStatus.INFEASIBLE


def find_equilibria(net: Network, box: Box, config: VerifyConfig | None = None, tol: float = 1e-9) -> EquilibriaResult:
    """Every isolated equilibrium of x+ = f(x) in the box (see the module docstring) and the Corollary 3 bounds in
    the norm ``config.norm``; regions by ``config.regions.min_radius`` within ``config.timeout``; the LPs that
    settle singular regions go to ``config.solvers.lp_relaxation``. ``tol``: the replay tolerance.

    Raises :class:`UsageError` unless the net is piecewise linear and autonomous (n_out == n_in == n_states).
    """
    config = VerifyConfig() if config is None else config
    p = check_norm(config.norm)
    min_radius, timeout = config.regions.min_radius, config.timeout
    solver = registry.get_backend(config.solvers.lp_relaxation)
    if not (net.n_out == net.n_in == net.n_states):
        raise UsageError(f"equilibria need an autonomous net with as many outputs as states (got {net.describe()},"
                         f" {net.n_states} states); exogenous inputs are not supported yet")
    enum = enumerate_regions(net, box, min_radius, timeout)
    n = net.n_in
    eye = np.eye(n)
    scale = 1.0 + float(np.max(np.abs(np.concatenate([box.lower, box.upper]))))
    found: list[np.ndarray] = []
    singular = []
    for r in enum.regions:
        a = eye - r.m
        sv = np.linalg.svd(a, compute_uv=False)
        if sv[-1] <= 1e-12 * max(sv[0], 1.0):
            if _has_fixed_point(box, r, a, tol * scale, solver):
                singular.append(r)
            continue
        x = np.linalg.solve(a, r.c)
        slack = tol * scale
        # An ill-conditioned solve can land outside the region although a solution lies inside: then the region
        # is settled by the LP test rather than dismissed.
        shaky = sv[-1] <= 1e-6 * max(sv[0], 1.0)
        if not (box.contains(x, slack) and r.contains(x, slack)):
            if shaky and _has_fixed_point(box, r, a, slack, solver):
                singular.append(r)
            continue
        x = box.clip(x)
        fx = net.forward(x)
        if np.max(np.abs(fx - x)) > tol * (1.0 + np.max(np.abs(x))):
            if _has_fixed_point(box, r, a, slack, solver):
                singular.append(r)
            continue
        if any(np.max(np.abs(x - y)) <= 1e-7 * scale for y in found):
            continue
        found.append(x)
    reasons = []
    through_origin = net.piecewise_linear_through_origin
    if enum.regions and through_origin:
        b_norms = np.array([vector_norm(r.c, p) for r in enum.regions])
        rho = float(max(induced_norm(r.m, p) for r in enum.regions))
        i_minus = float(max(induced_norm(eye - r.m, p) for r in enum.regions))
        lb = float(b_norms.min()) / i_minus if i_minus > 0 else 0.0
        ub = float(b_norms.max()) / (1.0 - rho) if rho < 1.0 else math.inf
    else:
        rho, lb, ub = math.inf, 0.0, math.inf
        if not through_origin:
            reasons.append("Corollary 3 bounds need A* constant on regions (ReLU-type nets); not given for clip")
    slack = 1e-9 * max(1.0, lb, ub if math.isfinite(ub) else 1.0)
    consistent = all(lb - slack <= vector_norm(x, p) <= ub + slack for x in found)
    if not consistent:
        reasons.append("an equilibrium's norm lies outside the Corollary 3 bounds (inconsistency: please report)")
    if not enum.complete:
        reasons.append(enum.reason or "region enumeration incomplete")
    if enum.thin:
        reasons.append(f"{enum.thin} slivers thinner than {enum.tol:.3g} were not searched")
    if singular:
        reasons.append(f"{len(singular)} regions where I - M is singular or ill-conditioned and an LP finds a "
                       f"solution (a continuum of fixed points is possible)")
    complete = enum.complete and not enum.thin and not singular
    return EquilibriaResult(tuple(found), lb, ub, rho, tuple(singular), complete, consistent, len(enum.regions),
                            enum.seconds, "; ".join(reasons))
