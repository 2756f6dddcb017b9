"""Branch and bound over sub-boxes for the invariance violation of a net with any activation.

The quantity is the maximum violation of the box by the state outputs,

    V = sup_{x in X} max_i max(f_i(x) - upper_i, lower_i - f_i(x))     (V < 0: f(X) inside X with room)

On a sub-box B with centre c and radius r every output satisfies two sound enclosures, intersected:

* interval arithmetic through the layers (:func:`certify.bounds.interval_bounds`, outward rounded);
* the mean-value form f(x) in f(c) + J(B) (x - c), where J(B) is an interval matrix containing every Clarke
  Jacobian on B: J = W_L D_{L-1} ... D_0 W_0 + S with D_l diagonal in the derivative ranges of each neuron over its
  pre-activation interval (``Activation.derivative_range``, which for kinks contains both one-sided slopes, hence
  their convex hull), enclosed by the interval-matrix machinery of :mod:`certify.engines.box_search`. Its error shrinks
  quadratically with the box, which is what makes splitting converge. f(c) is computed in float64 and padded by
  ``_PAD`` relative (a few ulp per layer suffice).

Lower bounds are V at box centres, replayed in float64 through ``net.forward``. Best-first on the upper bound; the
box with the largest bound is split in two along its widest coordinate (scaled by the Jacobian's column size).
A box is closed when its bound is < 0 (certify mode) or when it cannot raise the best lower bound by more than
``gap_tol`` (exact mode). The reported ``upper`` is the max of the lower bound and every box bound not yet
refuted, so it is sound whenever the search stops.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from ..bounds.interval import affine_interval, interval_bounds
from ..ir.box import Box
from ..checks.invariance import violation
from ..ir.network import Network

_PAD = 1e-11
_MIN_REL_WIDTH = 1e-9


@dataclass(frozen=True, eq=False)
class ViolationResult:
    """V lies in [lower, upper]; ``witness`` (n_in,) attains ``lower`` (replayed); ``worst`` the output index there.

    ``exhausted``: no open box remains; ``proven_fraction``: share of the box volume whose bound is < 0;
    ``boxes``: sub-boxes bounded; ``reason`` when stopped early.
    """

    lower: float
    upper: float
    witness: np.ndarray | None
    worst: int
    exhausted: bool
    proven_fraction: float
    boxes: int
    seconds: float
    reason: str = ""


def jacobian_enclosure(net: Network, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval matrix (n_out, n_in) containing J(x) (every Clarke Jacobian) for all x in [lo, hi]: the
    derivative ranges of :func:`certify.engines.box_search.slope_ranges` (both one-sided slopes at a kink) pushed through
    :func:`certify.engines.box_search.matrix_enclosure`."""
    from .box_search import matrix_enclosure, slope_ranges

    slopes = slope_ranges(net, lo[None], hi[None], "JACOBIAN")
    j_lo, j_hi = matrix_enclosure(net, slopes, net.n_in)
    return j_lo[0], j_hi[0]


def output_enclosure(net: Network, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds (n_out,) on f over [lo, hi]: interval arithmetic intersected with the mean-value form."""
    box = Box(lo, hi)
    bounds = interval_bounds(net, box)
    h_lo, h_hi = (bounds[-1].post_lower, bounds[-1].post_upper) if bounds else (lo, hi)
    o_lo, o_hi = affine_interval(net.out_weight, net.out_bias, h_lo, h_hi)
    if net.skip is not None:
        s_lo, s_hi = affine_interval(net.skip, np.zeros(net.n_out), lo, hi)
        o_lo, o_hi = o_lo + s_lo - _PAD * np.abs(o_lo + s_lo), o_hi + s_hi + _PAD * np.abs(o_hi + s_hi)
    c, r = box.center, box.radius
    fc = net.forward(c)
    j_lo, j_hi = jacobian_enclosure(net, lo, hi)
    spread = np.maximum(np.abs(j_lo), np.abs(j_hi)) @ r
    pad = _PAD * (np.abs(fc) + spread) * (2 + len(net.layers)) + 1e-300
    return np.maximum(o_lo, fc - spread - pad), np.minimum(o_hi, fc + spread + pad)


def _violation_bound(net: Network, box: Box, lo: np.ndarray, hi: np.ndarray) -> float:
    ns = net.n_states
    o_lo, o_hi = output_enclosure(net, lo, hi)
    return float(max(np.max(o_hi[:ns] - box.upper[:ns]), np.max(box.lower[:ns] - o_lo[:ns])))


def max_violation(net: Network, box: Box, exact: bool = False, timeout: float = 30.0, gap_tol: float = 1e-6,
                  seed: int = 0, samples: int = 256) -> ViolationResult:
    """Bracket V over the box by sub-box branch and bound (module docstring). Certify mode (``exact=False``)
    stops once every box bound is < 0 or a replayed point has V > 0."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    pts = np.vstack([box.center[None], box.lower + (box.upper - box.lower) * rng.random((samples, box.dim))])
    vals, worst = violation(net, box, pts)
    k = int(np.argmax(vals))
    best = [float(vals[k]), pts[k].copy(), int(worst[k])]
    total = box.volume or 1.0
    width0 = np.maximum(box.upper - box.lower, 1e-300)
    sens = np.abs(jacobian_enclosure(net, box.lower, box.upper)[1][: net.n_states]).sum(axis=0) + 1e-12
    counter = itertools.count()
    heap = [(-_violation_bound(net, box, box.lower, box.upper), next(counter), box.lower.copy(), box.upper.copy())]
    proven, closed_max, stalled_max, boxes = 0.0, -math.inf, -math.inf, 1
    reason = ""

    while heap:
        if time.perf_counter() - t0 > timeout:
            reason = f"timeout after {timeout:g} s with {len(heap)} open boxes"
            break
        if not exact and best[0] > 0:
            reason = "a replayed point leaves the box"
            break
        neg, _, lo, hi = heapq.heappop(heap)
        ub = -neg
        if (ub <= best[0] + gap_tol) if exact else (ub < 0):
            closed_max = max(closed_max, ub)
            if ub < 0:
                proven += float(np.prod(hi - lo)) / total
            continue
        widths = (hi - lo) / width0
        if np.all(widths < _MIN_REL_WIDTH):
            stalled_max = max(stalled_max, ub)
            continue
        axis = int(np.argmax((hi - lo) * sens))
        mid = 0.5 * (lo[axis] + hi[axis])
        for a, b in ((lo[axis], mid), (mid, hi[axis])):
            clo, chi = lo.copy(), hi.copy()
            clo[axis], chi[axis] = a, b
            centre = 0.5 * (clo + chi)
            v, w = violation(net, box, centre[None])
            if v[0] > best[0]:
                best[:] = [float(v[0]), centre, int(w[0])]
            b_child = min(ub, _violation_bound(net, box, clo, chi))
            boxes += 1
            heapq.heappush(heap, (-b_child, next(counter), clo, chi))
    open_max = max((-h[0] for h in heap), default=-math.inf)
    upper = max(best[0], open_max, closed_max, stalled_max)
    if stalled_max > best[0] and not reason:
        reason = "boxes too small to split remain above the level"
    exhausted = not heap and not reason
    return ViolationResult(best[0], upper, best[1], best[2], exhausted, min(1.0, proven), boxes,
                           time.perf_counter() - t0, reason)
