"""Stability of a closed loop x+ = f(x) on the box X: does every trajectory that starts in a stated set converge to
one equilibrium? The verdict a CI gate on a controller wants (DESIGN.md section 2, "Stability").

Pieces, each also reported on its own in the details:

1. **Equilibria in X** (the equilibria check's engines: every region solved for piecewise-linear nets, Newton with a
   Krawczyk proof of each for smooth ones). Two distinct replayed equilibria in X, or one in the interior of an
   open region whose matrix has spectral radius > 1 (an unstable equilibrium), falsify stability.
2. **Contraction in a metric** ||x||_P = ||T x||_2 (``config.metric``: a given P, or ``auto``, which searches for one):
   sup_X ||T J(x) T^{-1}||_2 <= rho < 1 makes f a contraction in ||.||_P on the convex box.
3. **The set S of starts.** If X is invariant (the invariance check), S = X: by Banach, X holds exactly one
   equilibrium and every trajectory from X converges to it at rate rho. Otherwise S is the largest P-ellipsoid
   {||x - x_bar||_P <= r} around a found equilibrium x_bar that lies inside X: with d >= ||f(x_bar) - x_bar||_P
   (a sound enclosure; x_bar is a float64 point), ||f(x) - x_bar||_P <= rho ||x - x_bar||_P + d <= r whenever
   r >= d / (1 - rho), so S is invariant, holds exactly one equilibrium (Banach again) and every trajectory from S
   converges to it at rate rho: a certified region of attraction, reported with its radius and its share of the box.

The norm is the run's (``config.norm``): a metric weights the 2-norm, and with ``--norm 1`` or ``inf`` (no metric)
the contraction is in that norm, so S is the ball {||x - x_bar||_p <= r} of that norm (start set ``"ball"``): the
argument above holds in any norm, but only for a ball of the norm the rate was proven in (a 2-norm ball is not
invariant under a map that contracts in the 1-norm only).

``certified`` needs 2 and 3; ``falsified`` needs a witness from 1; everything else is ``unknown`` saying which piece
failed. ``lower``/``upper`` bracket the contraction rate sup ||T J T^{-1}||_2.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..bounds.interval import output_interval
from ..certificate import BoundMethod, CheckName, CheckResult, StabilityDetails, Verdict, Witness
from ..config import METRIC_AUTO, VerifyConfig
from ..engines.equilibria import find_equilibria
from ..engines.newton import newton_equilibria, prove_equilibrium
from ..engines.sampling import generic_mask
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.numerics import norm_label, norm_upper, spectral_radius, spectral_radius_below_one
from ..ir.quantity import Quantity
from ..solvers import registry
from .common import SamplingMemo, require_dynamics
from .invariance import check_invariance
from .metric_check import auto_metric_check
from .sup_norm import sup_norm_check


def _equilibria(net: Network, box: Box, config: VerifyConfig) -> tuple[list[np.ndarray], bool, str]:
    """(equilibria found in the box, whether the list is complete, a note)."""
    if net.piecewise_linear:
        try:
            res = find_equilibria(net, box, config)
        except registry.BackendUnavailableError as exc:
            return [], False, f"equilibria not searched: {exc}"
        return [np.array(x, dtype=np.float64) for x in res.points], bool(res.complete), res.reason
    points = newton_equilibria(net, box, seed=config.seed)
    proven = [x for x in points if prove_equilibrium(net, x, box).proven]
    return proven, False, "Newton with a Krawczyk proof of each (not exhaustive)"


def _unstable(net: Network, x: np.ndarray) -> float | None:
    """The spectral radius of J at an equilibrium x when it is provably > 1 there (x generic, so J(x) is the matrix
    of the open region around it), else None."""
    if not generic_mask(net, x)[0]:
        return None
    m = net.jacobian(x)[:, : net.n_states]
    rho = spectral_radius(m)
    if not spectral_radius_below_one(m) and rho > 1 + 1e-9:
        return rho
    return None


def _residual_bound(net: Network, x: np.ndarray, metric: Metric, p: float = 2.0) -> float:
    """A sound upper bound on ||f(x) - x||_P (p = 2) or ||f(x) - x||_p (p = 1, inf: the metric is the identity) at
    a float64 point x (interval enclosure of f on [x, x])."""
    lo, hi = output_interval(net, Box(x, x))
    u = np.maximum(np.abs(lo - x), np.abs(hi - x)) * (1 + 4e-16) + 1e-300
    if p != 2.0:
        return float(norm_upper(u[:, None], p)) * (1 + 1e-12)
    return float(np.linalg.norm(np.abs(metric.t) @ u)) * (1 + 1e-12) * metric.upper_factor


def _ball_radius(box: Box, x: np.ndarray, metric: Metric, p: float = 2.0) -> float:
    """The largest r with {||y - x||_P <= r} (p = 2) or {||y - x||_p <= r} (p = 1, inf) inside the box: min over
    faces of (distance to the face) / ||e_i^T T^{-1}||_2, the rows of the float64 inverse corrected by the metric's
    factor (module docstring); for p = 1 and inf the ball reaches exactly r along each coordinate, so the
    distance itself."""
    rows = np.linalg.norm(metric.t_inv, axis=1) * metric.upper_factor * (1 + 1e-12) if p == 2.0 else 1.0
    room = np.minimum(box.upper - x, x - box.lower)
    if np.any(room <= 0):
        return 0.0
    return float(np.min(room / rows)) * (1 - 1e-12)


def _ball_share(box: Box, metric: Metric, r: float, p: float = 2.0) -> float:
    """Volume of {||y||_P <= r} (p = 2) or {||y||_p <= r} (p = 1, inf) over the box's volume (states)."""
    n = box.dim
    if p == 2.0:
        unit_ball = math.pi ** (n / 2) / math.gamma(n / 2 + 1) / math.sqrt(max(float(np.linalg.det(metric.p)), 1e-300))
    else:  # the cube [-1, 1]^n, and the cross-polytope with 2^n / n! of its volume
        unit_ball = 2.0**n if math.isinf(p) else 2.0**n / math.factorial(n)
    volume = unit_ball * r**n
    return float(min(1.0, volume / max(box.volume, 1e-300)))


def check_stability(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo) -> CheckResult:
    """Stability of x+ = f(x) on the box (module docstring)."""
    require_dynamics(net, CheckName.STABILITY)
    start = time.perf_counter()

    def result(verdict, lower, upper, method, witness, reason, details) -> CheckResult:
        return CheckResult(CheckName.STABILITY, verdict, lower, upper, method, time.perf_counter() - start,
                           witness, reason, details)

    if net.n_inputs:
        return result(Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE, None,
                      "stability needs an autonomous loop x+ = f(x): the model has exogenous inputs", None)
    share = config.timeout
    # 1. equilibria
    points, complete, note = _equilibria(net, box, config.with_(timeout=0.25 * share))
    eq = tuple(tuple(float(v) for v in x) for x in points)
    if len(points) >= 2:
        details = StabilityDetails(equilibria=eq, equilibria_complete=complete)
        witness = Witness(eq[1], float(len(points)))
        return result(Verdict.FALSIFIED, 0.0, math.inf, BoundMethod.REGIONS, witness,
                      f"{len(points)} equilibria in the box ({'; '.join(map(str, eq[:3]))}): no single equilibrium "
                      f"attracts every trajectory from it", details)
    for x in points:
        rho = _unstable(net, x)
        if rho is not None:
            details = StabilityDetails(equilibria=eq, equilibria_complete=complete)
            witness = Witness(tuple(float(v) for v in x), rho)
            return result(Verdict.FALSIFIED, rho, math.inf, BoundMethod.REGIONS, witness,
                          f"the equilibrium {eq[0]} is unstable: the spectral radius of J there is {rho:.6g} > 1",
                          details)
    # 2. contraction in a metric
    sub = config.with_(timeout=0.5 * share)
    if config.metric == METRIC_AUTO:
        contraction = auto_metric_check(CheckName.CONTRACTION, net, box, sub, Quantity.JACOBIAN)
        metric = _metric_of(contraction)
    else:
        metric = config.metric if isinstance(config.metric, Metric) else Metric.identity(net.n_states)
        contraction = sup_norm_check(CheckName.CONTRACTION, net, box, sub, Quantity.JACOBIAN, True, True, memo,
                                     None if metric.is_identity else metric)
    details = StabilityDetails(equilibria=eq, equilibria_complete=complete,
                               metric=None if metric is None else tuple(tuple(map(float, r)) for r in metric.p),
                               rate=contraction.upper, contraction=contraction.verdict.value, norm=config.norm)
    lower, upper = contraction.lower, contraction.upper
    if contraction.verdict is not Verdict.CERTIFIED or metric is None:
        return result(Verdict.UNKNOWN, lower, upper, contraction.method, None,
                      f"contraction not proven: {contraction.reason}", details)
    rate = contraction.upper
    if not rate < 1.0:  # certified means <= 1 - margin, and margin may be 0: Banach needs a rate below 1
        return result(Verdict.UNKNOWN, lower, upper, contraction.method, None,
                      f"contraction not proven: the rate bound {rate:.6g} is not below 1", details)
    # 3. the set of starts: X when invariant, else the largest P-ellipsoid around the equilibrium inside X
    invariance = check_invariance(net, box, config.with_(timeout=max(0.25 * share, 1e-3)))
    details = details.with_invariance(invariance.verdict.value, invariance.upper)
    if invariance.verdict is Verdict.CERTIFIED:
        return result(Verdict.CERTIFIED, lower, upper, contraction.method, None,
                      f"the box is invariant and f contracts on it at rate {rate:.6g} in {_rated(config.norm)}: "
                      f"exactly one "
                      f"equilibrium in the box{' (' + str(eq[0]) + ')' if eq else ''}, and every trajectory from the "
                      f"box converges to it", details.with_set("box", 1.0, None))
    if not points:
        return result(Verdict.UNKNOWN, lower, upper, contraction.method, None,
                      f"f contracts at rate {rate:.6g} but the box is not proven invariant and no equilibrium was "
                      f"found in it ({note or 'none found'})", details)
    x_bar = points[0]
    p = config.norm  # a metric weights the 2-norm; without one, the rate may be in the 1- or inf-norm
    radius = _ball_radius(box, x_bar, metric, p)
    needed = _residual_bound(net, x_bar, metric, p) / (1.0 - rate)
    ball = "ellipsoid" if p == 2.0 else "ball"
    where = "||x - x_bar||_P" if p == 2.0 else f"||x - x_bar||_{norm_label(p)}"
    if not radius > needed:  # a NaN residual bound proves no ellipsoid
        return result(Verdict.UNKNOWN, lower, upper, contraction.method, None,
                      f"f contracts at rate {rate:.6g}, but the equilibrium {eq[0]} is too close to the box's edge "
                      f"for a {'P-ellipsoid' if p == 2.0 else 'ball'} around it (radius {radius:.3g} <= "
                      f"{needed:.3g})", details)
    fraction = _ball_share(box, metric, radius, p)
    return result(Verdict.CERTIFIED, lower, upper, contraction.method, None,
                  f"f contracts at rate {rate:.6g} in {_rated(p)} on the box: every trajectory from the {ball} "
                  f"{where} <= {radius:.6g} around the equilibrium x_bar = {eq[0]} stays in it and converges "
                  f"to x_bar ({100 * fraction:.3g}% of the box); the box itself is not proven invariant",
                  details.with_set(ball, fraction, radius))


def _rated(p: float) -> str:
    """The norm a contraction rate is in, as the reasons say it."""
    return "||.||_P" if p == 2.0 else f"the {norm_label(p)}-norm"


def _metric_of(contraction: CheckResult) -> Metric | None:
    """The metric a ``--metric auto`` contraction result was certified in (carried in its details)."""
    p = getattr(contraction.details, "metric", None)
    return None if p is None else Metric.of(np.array(p))
