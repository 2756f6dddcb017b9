"""The mean_square check of a deep Markov model x+ = K(x) + L(x) w, w ~ N(0, I) (DESIGN.md section 2, "Stochastic
models"): a bound on how far the state strays from the equilibrium of the mean map, in mean square.

If K contracts at rate rho < 1 in ||.||_P on the convex box X (sup_X ||T J_K(x) T^-1||_2 <= rho), x_bar in X is a
fixed point of K, and sup_X ||T L(x)||_F <= sigma, then over the trajectories that have stayed in X (tau > t, tau
the first time the state leaves X),

    E[||x_t - x_bar||_P^2 ; tau > t] <= rho^(2t) ||x_0 - x_bar||_P^2 + sigma^2 (1 - rho^(2t)) / (1 - rho^2)
                                     <= rho^(2t) ||x_0 - x_bar||_P^2 + sigma^2 / (1 - rho^2).

(One step from x_t in X: x+ - x_bar = (K(x) - K(x_bar)) + L(x) w with w independent of x and of mean zero, so
E[||x+ - x_bar||_P^2 | x] <= rho^2 ||x - x_bar||_P^2 + sigma^2, since E||T L w||^2 = ||T L||_F^2; then, as
{tau > t + 1} lies in {tau > t}, E[||x_{t+1} - x_bar||^2 ; tau > t + 1] <= rho^2 E[||x_t - x_bar||^2 ; tau > t] +
sigma^2 P(tau > t), and induction.) The Gaussian noise can push the state out of X at any step, and neither the
contraction nor sigma is known outside X: the bound is about the trajectories that have not left X by time t.

The premise (K contracts in a metric about a unique equilibrium in X) is the stability check's
(:mod:`certify.checks.stability`, which runs on the mean map: equilibria, contraction in the given or found metric,
the box or an ellipsoid around the equilibrium as the set that holds it), always run in the 2-norm weighted by P
whatever the run's ``norm`` (a rate in the 1- or inf-norm bounds no 2-norm); sigma is bracketed by
:func:`certify.engines.noise_bound.noise_bound` in the same metric. Verdicts:

* ``certified``: the stability check certified the premise and sigma has a sound finite bound (the bound above,
  with the rate, sigma and sigma^2 / (1 - rho^2), is in the reason and the details);
* ``falsified``: the stability check refuted it with a witness (two equilibria in X, or an unstable one): then K
  contracts in no metric on X, and no bound of this form holds;
* ``unknown`` otherwise, with the stability check's reason (or a variance head that is negative somewhere).

``lower``/``upper`` bracket the contraction rate of K (as for stability).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..certificate import CheckName, CheckResult, MeanSquareDetails, StabilityDetails, Verdict
from ..config import VerifyConfig
from ..engines.noise_bound import noise_bound
from ..errors import UsageError
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.quantity import Quantity
from ..ir.stochastic import NoiseHead, stationary_bound
from .common import SamplingMemo, require_dynamics
from .stability import _residual_bound, check_stability
from .sup_norm import sup_norm_check

_STABILITY_SHARE = 0.5  # of the check's time
_RATE_SHARE = 0.3  # tightening the contraction rate (the stability check stops once it is below 1); sigma: the rest


def require_noise(net: Network, noise: NoiseHead | None) -> NoiseHead:
    """The noise head, checked against the mean map; UsageError when there is none."""
    if noise is None:
        raise UsageError("the mean_square check needs a deep Markov model: a model with a mean and a noise output, "
                         "named under 'heads' in the region file (or a certify.ir.stochastic.DeepMarkovModel)")
    if noise.network.n_in != net.n_in or noise.n_states != net.n_states:
        raise UsageError(f"the noise head takes {noise.network.n_in} inputs for {noise.n_states} states but the mean "
                         f"map takes {net.n_in} inputs with {net.n_states} states")
    return noise


def _fmt(x) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in x) + ")"


def check_mean_square(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo | None = None,
                      noise: NoiseHead | None = None) -> CheckResult:
    """The mean-square bound of x+ = K(x) + L(x) w over the box (module docstring); ``net`` is the mean map K."""
    require_dynamics(net, CheckName.MEAN_SQUARE)
    noise = require_noise(net, noise)
    start = time.perf_counter()
    memo = memo if memo is not None else SamplingMemo()
    # the bound is in ||.||_P, a 2-norm: its premise too, whatever norm the run's other checks use (a rate in the 1-
    # or inf-norm says nothing about E||x_t - x_bar||_2^2)
    config = config.with_(norm=2.0)
    stab = check_stability(net, box, config.with_(timeout=_STABILITY_SHARE * config.timeout), memo)
    sd = stab.details if isinstance(stab.details, StabilityDetails) else StabilityDetails()
    metric = Metric.of(np.array(sd.metric)) if sd.metric is not None else Metric.identity(net.n_states)
    rate = stab.upper if stab.verdict is Verdict.CERTIFIED else sd.rate
    if stab.verdict is Verdict.CERTIFIED:  # the bound below is only as good as the rate: compute it closer
        budget = max(_RATE_SHARE * config.timeout, 1e-3)
        tight = sup_norm_check(CheckName.CONTRACTION, net, box, config.with_(exact=True, timeout=budget),
                               Quantity.JACOBIAN, True, True, memo, None if metric.is_identity else metric)
        if tight.verdict is not Verdict.FALSIFIED and tight.upper < rate:  # both are sound bounds on one sup
            rate = tight.upper
    deadline = start + config.timeout
    sigma = noise_bound(noise, box, metric, deadline, samples=min(config.samples, 4096), seed=config.seed,
                        max_boxes=config.budget)
    x_bar = sd.equilibria[0] if sd.equilibria else None
    within = None
    if stab.verdict is Verdict.CERTIFIED and x_bar is not None and rate is not None and rate < 1:
        within = _residual_bound(net, np.array(x_bar), metric) / (1.0 - rate)
    stationary = stationary_bound(rate, sigma.upper) if rate is not None else math.inf
    details = MeanSquareDetails(rate, sd.metric, x_bar, within, sigma.lower, sigma.upper, noise.form.value,
                                stationary, stab.verdict.value, sigma.boxes)
    seconds = time.perf_counter() - start

    def result(verdict, witness, reason) -> CheckResult:
        upper = rate if verdict is Verdict.CERTIFIED else stab.upper
        return CheckResult(CheckName.MEAN_SQUARE, verdict, stab.lower, max(upper, stab.lower), stab.method, seconds,
                           witness, reason, details)

    sigma_text = (f"sup_X ||T L(x)||_F in [{sigma.lower:.6g}, {sigma.upper:.6g}] ({noise.form.value} noise head"
                  f"{'' if sigma.exhausted else '; ' + sigma.reason if sigma.reason else ''})")
    if stab.verdict is Verdict.FALSIFIED:
        return result(Verdict.FALSIFIED, stab.witness,
                      f"the mean map K: {stab.reason}; K contracts in no metric on the box, so no mean-square bound "
                      f"about a single equilibrium holds; {sigma_text}")
    if sigma.negative_at is not None:
        return result(Verdict.UNKNOWN, None,
                      f"the variance head is negative at {_fmt(sigma.negative_at)}: it is not a variance; "
                      f"mean map: {stab.verdict.value} ({stab.reason})")
    if stab.verdict is not Verdict.CERTIFIED or not math.isfinite(sigma.upper) or rate is None or not rate < 1:
        why = stab.reason if stab.verdict is not Verdict.CERTIFIED else "no finite bound on the noise"
        return result(Verdict.UNKNOWN, None, f"the premise is not proven: {why}; {sigma_text}")
    where = ("the unique equilibrium of K in the box, not located" if x_bar is None else
             f"x_bar = {_fmt(x_bar)} (the exact fixed point lies within {within:.3g} of it in ||.||_P)")
    metric_text = "the Euclidean norm" if metric.is_identity else "||x||_P = sqrt(x^T P x) (P in the details)"
    reason = (f"E[||x_t - x_bar||_P^2 ; in the box until t] <= {rate:.6g}^(2t) ||x_0 - x_bar||_P^2 + "
              f"{sigma.upper:.6g}^2 / (1 - {rate:.6g}^2) = rho^(2t) ||x_0 - x_bar||_P^2 + {stationary:.6g}, over the "
              f"trajectories that have stayed in the box up to t; K contracts at rate rho <= {rate:.6g} in "
              f"{metric_text} about {where}; {sigma_text}")
    return result(Verdict.CERTIFIED, None, reason)
