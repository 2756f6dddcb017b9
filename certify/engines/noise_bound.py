"""sup over the box of ||T L(x)||_F for the noise head L of a deep Markov model: a sampled lower bound and a sound
upper bound, by sub-box branch and bound (:func:`certify.engines.search.best_first` on the sub-box bisection of
:mod:`certify.engines.bisection`).

On a sub-box the noise head's outputs o lie in the enclosure of :func:`certify.bounds.enclosures.output_enclosure`
(interval arithmetic intersected with the mean-value form). From it, per form (:mod:`certify.ir.stochastic`):

* cholesky: L in the interval matrix [L_lo, L_hi]; T L in T [L_lo, L_hi] (centre-radius product), each entry of
  magnitude at most e_ij, so ||T L||_F <= ||e||_F;
* std / variance / log_variance: L = diag(d) with d_j^2 <= a_j (max(|o|)^2, max(o_hi, 0), exp(o_hi)), and
  ||T diag(d)||_F^2 = sum_j d_j^2 ||T e_j||_2^2 <= sum_j a_j c_j with c_j the squared column norms of T.

Every float64 step is padded (``CHAIN_PAD`` on the product T [L_lo, L_hi], ``product_pad`` on sums of non-negative
terms, ``NORM_PAD`` on the Frobenius norm, ``TINY`` against underflow). Lower bounds: ||T L(x)||_F at sampled points
and at sub-box centres, in float64. A variance output that is negative at a replayed point is reported (the model
is then no variance head).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..bounds.enclosures import jacobian_enclosure, output_enclosure
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.numerics import CHAIN_PAD, NORM_PAD, TINY, matmul_interval_left, product_pad
from ..ir.stochastic import NoiseForm, NoiseHead, factor_of
from .bisection import BisectionProblem
from .search import Incumbent, SearchLimits, best_first


@dataclass(frozen=True)
class NoiseBound:
    """``lower`` = ||T L(point)||_F at a replayed point, ``upper`` a sound bound on the sup over the box,
    ``boxes`` bounded, ``exhausted`` when the search closed the gap, ``reason`` why it stopped otherwise, and
    ``negative_at`` a point where a variance output is negative (None when there is none)."""

    lower: float
    upper: float
    point: np.ndarray
    boxes: int
    exhausted: bool
    reason: str
    negative_at: np.ndarray | None = None


def point_values(noise: NoiseHead, metric: Metric, x: np.ndarray) -> np.ndarray:
    """||T L(x)||_F (B,) at points x (B, n_in), in float64 (NaN where a variance is negative)."""
    factors = noise.factors(x)
    return np.linalg.norm(metric.t @ factors, axis=(1, 2))


def box_upper(noise: NoiseHead, metric: Metric, lo: np.ndarray, hi: np.ndarray) -> float:
    """A sound bound on sup ||T L(x)||_F over the sub-box [lo, hi] (module docstring)."""
    o_lo, o_hi = output_enclosure(noise.network, lo, hi)
    n, t = noise.n_states, metric.t
    if noise.form is NoiseForm.CHOLESKY:
        l_lo, l_hi = factor_of(o_lo[None], noise.form, n)[0], factor_of(o_hi[None], noise.form, n)[0]
        abs_t = np.abs(t)
        p_lo, p_hi = matmul_interval_left(t, abs_t, l_lo, l_hi)
        mag = abs_t @ np.maximum(np.abs(l_lo), np.abs(l_hi))
        e = np.maximum(np.abs(p_lo), np.abs(p_hi)) + CHAIN_PAD * mag + TINY
        return float(np.sqrt(np.sum(e * e))) * (1.0 + NORM_PAD * (1 + n)) + TINY
    if noise.form is NoiseForm.STD:
        a = np.maximum(np.abs(o_lo), np.abs(o_hi)) ** 2
    elif noise.form is NoiseForm.VARIANCE:
        a = np.maximum(o_hi, 0.0)
    else:
        with np.errstate(over="ignore"):
            a = np.exp(o_hi)
    c = np.sum(t * t, axis=0)  # squared column norms of T
    total = float(np.sum(a * c)) * product_pad(3 * n + 4) + TINY
    return math.sqrt(total) * product_pad(2) if math.isfinite(total) else math.inf


class _NoiseOffer:
    """Replays sub-box centres (and samples) for the incumbent, and keeps the first point where a variance output is
    negative (``negative_at``)."""

    def __init__(self, noise: NoiseHead, metric: Metric) -> None:
        self.noise, self.metric = noise, metric
        self.negative_at: np.ndarray | None = None

    def __call__(self, incumbent: Incumbent, pts: np.ndarray) -> None:
        v = point_values(self.noise, self.metric, pts)
        bad = np.isnan(v)
        if bad.any() and self.negative_at is None:
            self.negative_at = pts[int(np.argmax(bad))].copy()
        if (~bad).any():
            k = int(np.nanargmax(np.where(bad, -np.inf, v)))
            incumbent.offer(float(v[k]), pts[k].copy())


def noise_bound(noise: NoiseHead, box: Box, metric: Metric, deadline: float, samples: int = 2048, seed: int = 0,
                gap_rel: float = 1e-3, max_boxes: int | None = None) -> NoiseBound:
    """Bracket sup over the box of ||T L(x)||_F (T = ``metric.t``) until the relative gap is ``gap_rel``, the
    ``deadline`` (perf_counter seconds) passes or ``max_boxes`` sub-boxes were bounded."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    pts = np.vstack([box.center[None], box.lower + (box.upper - box.lower) * rng.random((samples, box.dim))])
    offer = _NoiseOffer(noise, metric)
    jl, jh = jacobian_enclosure(noise.network, box.lower, box.upper)
    sens = np.maximum(np.abs(jl), np.abs(jh)).sum(axis=0) + 1e-12
    problem = BisectionProblem(box, sens, lambda lo, hi: box_upper(noise, metric, lo, hi), offer)
    incumbent = Incumbent(0.0, box.center.copy())  # a norm is >= 0 (and the level must be finite)
    offer(incumbent, pts)
    limits = SearchLimits(gap_rel=gap_rel, deadline=deadline, timeout=max(deadline - t0, 0.0), max_nodes=max_boxes,
                          unit="boxes", trace_every=64)
    run = best_first(problem, [problem.root()], incumbent, limits, start=t0)
    lower = max(incumbent.value, 0.0)
    return NoiseBound(lower, max(run.upper, lower), np.asarray(incumbent.point), problem.boxes, run.exhausted,
                      run.reason, offer.negative_at)
