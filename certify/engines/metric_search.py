"""Finding a metric P in which sup over the box of ||T M(x) T^{-1}||_2 < 1 (``--metric auto``).

Counterexample-guided, like a learner with an oracle:

1. **Matrices.** The state matrices M(x) (A* or J) at sampled generic points of the box (one per distinct
   activation region for piecewise-linear nets), the largest few first.
2. **Refutation.** rho(M) <= ||T M T^{-1}|| for every invertible T, so a generic point whose matrix has spectral
   radius >= 1 (decided exactly, :func:`certify.ir.numerics.spectral_radius_below_one`) proves that no quadratic
   metric can certify: that point is the witness of a ``falsified`` verdict.
3. **Proposal.** An SDP proposes P: for a trial rate r, maximise t subject to r^2 P - M_s^T P M_s >= t I for every
   collected M_s, I <= P <= kappa I (so P stays well conditioned), bisecting on r (:func:`propose_metric`). The SDP
   only proposes: solver inaccuracy cannot make anything unsound.
4. **Certification.** The exact engine for the net (region search for piecewise-linear nets, sub-box search
   otherwise) runs in the metric P with the threshold 1 - margin. Certified: done. Otherwise its witness (a
   replayed generic point with ||T M T^{-1}|| >= the threshold) joins the matrices and the loop goes back to 2,
   until certified, refuted, or the time or round budget is spent.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..ir.metric import Metric
from ..ir.numerics import induced_norm, spectral_radius, spectral_radius_below_one
from ..ir.quantity import Quantity
from ..solvers import registry
from ..solvers.base import SolveStatus
from ..solvers.sdp import SemidefiniteProgram
from .box_search import box_search
from .contract import EngineResult, Query
from .region_search import region_search
from .sampling import generic_mask, sample_points

_MAX_MATRICES = 48  # matrices in one SDP (the largest by norm, then the newest counterexamples)
_KAPPA = 1e6  # I <= P <= kappa I
_MAX_ROUNDS = 12
_BISECTIONS = 14


@dataclass(frozen=True, eq=False)
class Refutation:
    """A generic point ``x`` (n_in,) whose state matrix ``matrix`` has spectral radius >= 1 (exactly):
    ``radius`` is the float64 estimate of that spectral radius, for reports."""

    x: np.ndarray
    matrix: np.ndarray
    radius: float


@dataclass(frozen=True, eq=False)
class MetricSearch:
    """What :func:`metric_search` found. ``metric``: the last P tried (the certifying one when ``result`` is
    certified); ``result``: the engine run in that metric; ``refutation``: a proof that no metric exists;
    ``rate``: the SDP's rate for P (a proposal, not a bound); ``rounds``, ``matrices``: work done; ``reason``: why
    it stopped without a certificate or refutation."""

    metric: Metric | None
    result: EngineResult | None
    refutation: Refutation | None
    rate: float | None
    rounds: int
    matrices: int
    reason: str
    seconds: float

    def certified(self, threshold: float) -> bool:
        return self.result is not None and self.result.upper <= threshold


def state_matrices(query: Query, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points, matrices): the generic points among ``points`` (B, n_in) and the state block of A* or J there
    (B', n, n), one per distinct finite matrix (regions of a piecewise-linear net give equal matrices)."""
    net, ns = query.network, query.network.n_states
    pts = points[generic_mask(net, points)]
    if pts.shape[0] == 0:
        return pts, np.zeros((0, ns, ns))
    mats = (net.jacobian(pts) if query.quantity is Quantity.JACOBIAN else net.pwa(pts)[0])[:, :ns, :ns]
    finite = np.isfinite(mats).all(axis=(1, 2))  # a matrix that overflowed float64 is no matrix to learn from
    pts, mats = pts[finite], mats[finite]
    if pts.shape[0] == 0:
        return pts, np.zeros((0, ns, ns))
    _, keep = np.unique(np.round(mats.reshape(mats.shape[0], -1), 12), axis=0, return_index=True)
    keep = np.sort(keep)
    return pts[keep], mats[keep]


def _lmi(matrices: np.ndarray, rate: float) -> SemidefiniteProgram:
    """max t s.t. rate^2 P - M_s^T P M_s - t I >= 0 (every s), P - I >= 0, kappa I - P >= 0, 1 - t >= 0, as one
    block-diagonal LMI in x = (the upper triangle of P, t); minimise -t."""
    s_count, n = matrices.shape[0], matrices.shape[1]
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    k_vars = len(pairs) + 1
    size = n * (s_count + 2) + 1
    rows, cols, vals = [], [], []

    def put(block: int, mat: np.ndarray, var: int) -> None:
        r, c = np.nonzero(mat)
        off = block * n
        rows.append((off + r) + (off + c) * size)  # column-major index of entry (off + r, off + c)
        cols.append(np.full(r.size, var))
        vals.append(mat[r, c])

    for v, (i, j) in enumerate(pairs):
        e = np.zeros((n, n))
        e[i, j] = e[j, i] = 1.0
        for s in range(s_count):
            m = matrices[s]
            put(s, rate * rate * e - m.T @ e @ m, v)
        put(s_count, e, v)  # P - I
        put(s_count + 1, -e, v)  # kappa I - P
    t = k_vars - 1
    for s in range(s_count):
        put(s, -np.eye(n), t)
    last = size - 1
    rows.append(np.array([last + last * size]))
    cols.append(np.array([t]))
    vals.append(np.array([-1.0]))  # 1 - t
    coef = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size * size,
                                                                                                   k_vars))
    f0 = np.zeros((size, size))
    f0[s_count * n:(s_count + 1) * n, s_count * n:(s_count + 1) * n] = -np.eye(n)
    f0[(s_count + 1) * n:(s_count + 2) * n, (s_count + 1) * n:(s_count + 2) * n] = _KAPPA * np.eye(n)
    f0[last, last] = 1.0
    c = np.zeros(k_vars)
    c[t] = -1.0
    return SemidefiniteProgram(c=c, f0=f0, coef=coef, lower=np.full(k_vars, -np.inf))


def _solve_for_p(matrices: np.ndarray, rate: float, backend: str, time_limit: float) -> np.ndarray | None:
    """P (n, n) with margin t > 0 at this rate (the solver's claim), or None."""
    try:
        solver = registry.get_backend(backend, registry.ProblemKind.SDP)
    except registry.UnknownBackendError:
        return None
    limit = max(time_limit, 0.1) if math.isfinite(time_limit) else None
    res = solver.solve(_lmi(matrices, rate), time_limit=limit, tol=1e-7)
    if res.x is None or res.status not in (SolveStatus.OPTIMAL, SolveStatus.INACCURATE) or not res.x[-1] > 0:
        return None
    n = matrices.shape[1]
    p = np.zeros((n, n))
    pairs = [(a, b) for a in range(n) for b in range(a, n)]
    for v, (i, j) in enumerate(pairs):
        p[i, j] = p[j, i] = res.x[v]
    return _normalised(p)


def _normalised(p: np.ndarray) -> np.ndarray:
    """P scaled so its smallest eigenvalue is 1 (the norms ||T M T^-1|| do not depend on the scale of P, the
    report's figures do); P unchanged when it is not positive definite (Metric.of refuses it later)."""
    low = float(np.linalg.eigvalsh(p)[0]) if np.all(np.isfinite(p)) else 0.0
    return p / low if low > 0 else p


def propose_metric(matrices: np.ndarray, backend: str = "scs", deadline: float = math.inf,
                   target: float = 1.0) -> tuple[np.ndarray | None, float | None]:
    """A candidate P (n, n) and its rate r: r^2 P >= M_s^T P M_s for every matrix (B, n, n), by bisection on r
    between the largest spectral radius and min(largest norm, target) (P = I is feasible at the largest norm).
    (None, None) when the SDP finds no P below ``target``. A proposal only: certification is the engine's."""
    lo = max(spectral_radius(m) for m in matrices)
    hi = max(float(induced_norm(m, 2.0)) for m in matrices)
    best_p, best_rate = (np.eye(matrices.shape[1]), hi) if hi < target else (None, None)
    hi = min(hi, target)
    for _ in range(_BISECTIONS):
        if hi - lo <= 1e-4 * max(hi, 1e-12) or time.perf_counter() > deadline:
            break
        mid = 0.5 * (lo + hi)
        p = _solve_for_p(matrices, mid * (1 + 1e-3), backend, deadline - time.perf_counter())
        if p is None:
            lo = mid
        else:
            best_p, best_rate, hi = p, mid, mid
    return best_p, best_rate


def _refute(query: Query, points: np.ndarray, mats: np.ndarray) -> Refutation | None:
    for x, m in zip(points, mats):
        if not spectral_radius_below_one(m):
            return Refutation(np.array(x, dtype=np.float64), np.array(m), spectral_radius(m))
    return None


def _engine(query: Query):
    net, q = query.network, query.quantity
    exact_core = net.piecewise_linear and (q is Quantity.JACOBIAN or net.piecewise_linear_through_origin)
    return region_search if exact_core else box_search


def metric_search(query: Query, samples: int = 4096) -> MetricSearch:
    """Search for a metric certifying sup ||T M T^{-1}|| <= ``query.threshold`` (module docstring); ``query``: a
    state-only matrix query without a metric, with a threshold; its deadline bounds the whole search."""
    t0 = time.perf_counter()
    engine = _engine(query)
    pts = sample_points(query.box, samples, query.seed, "cpu").double().numpy()
    pts, mats = state_matrices(query, pts)
    if mats.shape[0] == 0:
        why = "no generic sample point with a matrix that fits in float64 (none, or all overflow)"
        return MetricSearch(None, None, None, None, 0, 0, why, time.perf_counter() - t0)
    refutation = _refute(query, pts, mats)
    if refutation is not None:
        return MetricSearch(None, None, refutation, None, 0, int(mats.shape[0]), "", time.perf_counter() - t0)
    order = np.argsort([-float(induced_norm(m, 2.0)) for m in mats])
    pool = list(mats[order[:_MAX_MATRICES]])
    metric, result, rate, reason = None, None, None, "out of time"
    rounds = 0
    for rounds in range(1, _MAX_ROUNDS + 1):
        if query.seconds_left() <= 0:
            break
        p, proposed_rate = propose_metric(np.array(pool), query.config.solvers.sdp,
                                          time.perf_counter() + 0.3 * query.seconds_left(), target=query.threshold)
        if p is None:  # the metric, result and rate of the last round (if any) stay the ones reported
            reason = (f"the SDP found no common metric with rate below {query.threshold:.6g} for the "
                      f"{len(pool)} sampled matrices")
            break
        try:
            metric = Metric.of(p, "proposed metric")
        except ValueError:
            reason = "the SDP's proposal is not positive definite"
            break
        rate = proposed_rate
        result = engine(query.with_(metric=metric))
        if result.upper <= query.threshold:
            return MetricSearch(metric, result, None, rate, rounds, len(pool), "", time.perf_counter() - t0)
        if result.witness is None or result.lower <= query.threshold:
            reason = result.reason or "the engine left the bracket open in the proposed metric"
            break
        _, m = state_matrices(query, result.witness[None])
        if m.shape[0] == 0:
            reason = "the counterexample lies on a kink"
            break
        refutation = _refute(query, result.witness[None], m)
        if refutation is not None:
            return MetricSearch(metric, result, refutation, rate, rounds, len(pool), "", time.perf_counter() - t0)
        pool = (pool + [m[0]])[-_MAX_MATRICES:] if len(pool) >= _MAX_MATRICES else pool + [m[0]]
        reason = f"no metric found in {rounds} rounds"
    return MetricSearch(metric, result, None, rate, rounds, len(pool), reason, time.perf_counter() - t0)
