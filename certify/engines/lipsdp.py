"""An upper bound on the l2 gain of a chain with per-neuron slope ranges (LipSDP-Neuron), re-checked in float64.

Quantity bounded::

    sup  || W_L Lambda_{L-1} W_{L-1} ... Lambda_0 W_0 + S ||_2   over diagonal Lambda_l with a_i <= (Lambda_l)_ii <= b_i

(A*(x) over a box with secant ranges, J(x) with derivative ranges; a global bound of a ReLU net with [0, 1]).

**The LMI.** Neurons with a_i = b_i (stable ones) are *fixed*: their output is a_i times their pre-activation
exactly, so they are eliminated. The others are *free*; g_l collects the outputs of the free neurons of layer l.
Every hidden vector is then linear in w = [h_0; g_0; ...; g_{L-1}] (size N = n_0 + number of free neurons):
h_0 = H_0 w, u_l = W_l H_l w (pre-activation increments), H_{l+1} w = a_fixed * u_l on fixed rows and g_l on
free rows; the output is y = C w with C = W_L H_L + [S 0]. For a free neuron i with pre-activation row
u_i = U_i w and output g_i = Lambda_ii u_i, the slope range gives the quadratic constraint

    q_i(w) = (g_i - a_i u_i) (b_i u_i - g_i) >= 0.

If, for rho and multipliers t_i >= 0,

    F(rho, t) = rho E_0 - C^T C - sum_i t_i Q_i   is positive semidefinite       (E_0 = diag(I_{n_0}, 0),
                                                                                 Q_i the symmetric matrix of q_i)

then every admissible w has ||y||^2 <= rho ||h_0||^2 - sum_i t_i q_i(w) <= rho ||h_0||^2, so sqrt(rho) bounds
the gain. The skip S sits inside C (the input feeds the output directly), which is tighter than
||M - S|| + ||S||. With every neuron fixed the LMI is rho I - C^T C >= 0: the SDP returns ||C||^2 exactly.

**The float64 re-check** (:func:`check_lmi`). F is rebuilt from the returned (rho, t) with t clipped at 0, by a
code path independent of the one that fed the solver (:func:`lmi_matrix`, dense, from the formula). The error of
building F is at most err = gamma * ||F_abs||_F (F_abs: the same matrix built from absolute values,
gamma = 16 (L + 3) (n_max + N) * eps; standard bounds |fl(AB) - AB| <= n eps |A||B|). A d >= 0 with
F_exact + d I >= 0 is then *proven* by a floating-point Cholesky factorisation of F - sigma I with the rounding
argument of Higham's Theorem 10.3 (:func:`certified_shift`; eigvalsh only estimates where to shift and is
reported as ``min_eig``). Margin argument:
for admissible w, ||w||^2 = ||h_0||^2 + sum_l ||g_l||^2 <= growth * ||h_0||^2 with
growth = 1 + sum_l c_l^2, c_l = max_free_l |slope| * ||W_l[free rows]||_2 * K_l, K_{l+1} = max_l |slope| *
||W_l||_2 * K_l, K_0 = 1. Hence ||y||^2 <= (rho + d * growth) ||h_0||^2: adding delta to rho adds delta * E_0,
i.e. delta I on the h_0 block only, and the hidden directions are paid for through the growth factor. The bound
is accepted with rho + d * growth when that inflation is at most ``inflate_tol * rho`` plus the pure
floating-point part; otherwise the multipliers do not certify the claimed rho and no bound is
given. A solver status other than optimal gives no bound either. Nothing the back-end returns is trusted: an
exception, a point of the wrong size or with non-finite entries, an overflowing rebuilt LMI are "no bound" with a
reason (``tests/test_sdp_recheck.py`` forges such solutions through the registry). Matrices that are themselves
float64 products (a metric's ends T W_L, W_0 Q, T S Q) enter the absolute-value chain and the growth factor through
entrywise bounds on the exact products (``weight_abs``, ``skip_abs`` of :func:`build_lmi`).

**Solvers.** The LMI's coefficients have low rank (rank 2 per neuron, :func:`to_program`), which the default
back-end 'ipm' (:mod:`certify.solvers.sdp_ipm`, an interior-point method) exploits: O(N^3) work per iteration
instead of the O(N^4) and more of a generic conic solver; 'scs' and 'clarabel' (through cvxpy) solve the same
program from its sparse form. Measured in ``benchmarks/sdp_scaling.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg as sla

from ..bounds.interval import interval_bounds
from ..errors import UsageError
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.numerics import OVERFLOW_REASON, norm_upper
from ..ir.quantity import Quantity
from ..solvers import registry
from ..solvers.base import SolveResult, SolveStatus
from ..solvers.sdp import LowRankCoefficients, SemidefiniteProgram
from ..solvers.threads import blas_threads

_EPS = np.finfo(np.float64).eps


def _is_a_star(quantity: str | Quantity) -> bool:
    """'A_STAR' (secant slopes, A*(x)) or 'JACOBIAN' (derivatives, J(x)), as a string in any case or as any enum
    member with one of those names (:class:`certify.ir.quantity.Quantity`)."""
    return Quantity.coerce(quantity) is Quantity.A_STAR


@dataclass(frozen=True)
class SDPBound:
    """Result of :func:`lipschitz_sdp`.

    ``value``: a sound upper bound on the l2 gain, or None (no bound: see ``reason``). ``status``: the solver's
    status. ``min_eig``: smallest eigenvalue of the rebuilt float64 LMI (None without a solution). ``raw``:
    sqrt(rho) as the solver returned it; ``inflation``: what the re-check added to rho; ``size``: the order N
    of the LMI.
    """

    value: float | None
    status: SolveStatus
    seconds: float
    min_eig: float | None
    reason: str
    raw: float | None = None
    inflation: float = 0.0
    backend: str = ""
    size: int = 0


@dataclass(frozen=True, eq=False)
class LipschitzLMI:
    """Data of the gain LMI in w = [h_0; g_0; ...; g_{L-1}] (see the module docstring), N = n_in + n_free.

    ``c``/``c_abs``: (n_out, N) output map and its absolute-value counterpart; ``u``/``u_abs``: (n_free, N)
    pre-activation rows of the free neurons; ``g_index``: (n_free,) position of each free output in w;
    ``lower``/``upper``: (n_free,) their slope ranges; ``growth``: ||w||^2 <= growth ||h_0||^2 on admissible w;
    ``gamma``: relative floating-point error factor of building F; ``n_in``: size of h_0.
    """

    n_in: int
    c: np.ndarray
    c_abs: np.ndarray
    u: np.ndarray
    u_abs: np.ndarray
    g_index: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    growth: float
    gamma: float

    @property
    def size(self) -> int:
        return self.c.shape[1]

    @property
    def n_free(self) -> int:
        return self.g_index.size


@dataclass(frozen=True)
class LMICheck:
    """Outcome of the float64 re-check of (rho, t): ``value`` the accepted bound (or None), ``min_eig`` of F,
    ``err`` the floating-point allowance, ``inflation`` added to rho, ``reason`` when rejected."""

    value: float | None
    min_eig: float
    err: float
    inflation: float
    reason: str = ""


def build_lmi(
    weights: list[np.ndarray],
    slope_lower: list[np.ndarray],
    slope_upper: list[np.ndarray],
    skip: np.ndarray | None = None,
    weight_abs: list[np.ndarray | None] | None = None,
    skip_abs: np.ndarray | None = None,
) -> LipschitzLMI:
    """Eliminate fixed neurons and build the LMI data.

    ``weights``: [W_0, ..., W_L], W_l of shape (n_{l+1}, n_l); ``slope_lower``/``slope_upper``: L arrays of shape
    (n_{l+1},) with a_i <= b_i; ``skip``: (n_out, n_0) or None. Raises UsageError on shapes that do not fit.

    ``weight_abs`` (same length as ``weights``, entries None or the shape of W_l) and ``skip_abs``: for matrices
    that are themselves float64 products (the metric's ends T W_L, W_0 Q, T S Q), entrywise bounds A >= |exact|
    with |computed - exact| <= 4 (n + 2) eps A (n the states; :meth:`certify.ir.metric.Metric.end_magnitudes`,
    the two products of T S Q included); the absolute-value chain and the growth factor then use A, so the
    re-check's allowance covers the exact product (16 (L + 3) (n_max + N) eps in ``gamma`` exceeds 4 (n + 2) eps).
    None: the matrix is exact as given.
    """
    ws = [np.asarray(w, dtype=np.float64) for w in weights]
    abs_ws = [np.abs(w) for w in ws]
    norm_ws = list(ws)  # what the growth factor takes norms of: the matrix, or its bound A when it is a product
    for l, a in enumerate(weight_abs or ()):
        if a is not None:
            a = np.asarray(a, dtype=np.float64)
            if a.shape != ws[l].shape or np.any(a < abs_ws[l]):
                raise UsageError(f"weight_abs[{l}] must have the shape of weight {l} and bound it entrywise")
            abs_ws[l] = norm_ws[l] = a
    los = [np.asarray(a, dtype=np.float64).reshape(-1) for a in slope_lower]
    his = [np.asarray(b, dtype=np.float64).reshape(-1) for b in slope_upper]
    if not ws or any(w.ndim != 2 for w in ws):
        raise UsageError("lipschitz_sdp needs a non-empty list of 2-D weight matrices")
    if len(los) != len(ws) - 1 or len(his) != len(ws) - 1:
        raise UsageError(f"{len(ws)} weight matrices need {len(ws) - 1} slope ranges, got {len(los)} and {len(his)}")
    for l, w in enumerate(ws[1:]):
        if w.shape[1] != ws[l].shape[0]:
            raise UsageError(f"weight {l + 1} has {w.shape[1]} columns but weight {l} has {ws[l].shape[0]} rows")
    for l, (a, b) in enumerate(zip(los, his)):
        if a.shape != (ws[l].shape[0],) or b.shape != a.shape:
            raise UsageError(f"slope range {l} must have {ws[l].shape[0]} entries, got {a.shape} and {b.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.any(a > b):
            raise UsageError(f"slope range {l} must be finite with lower <= upper")
    for w in ws:
        if not np.all(np.isfinite(w)):
            raise UsageError("weights must be finite")
    n0 = ws[0].shape[1]
    n_out = ws[-1].shape[0]
    if skip is not None:
        skip = np.asarray(skip, dtype=np.float64)
        if skip.shape != (n_out, n0) or not np.all(np.isfinite(skip)):
            raise UsageError(f"skip must be a finite ({n_out}, {n0}) matrix, got shape {skip.shape}")

    if skip is not None:
        if skip_abs is None:
            skip_abs = np.abs(skip)
        else:
            skip_abs = np.asarray(skip_abs, dtype=np.float64)
            if skip_abs.shape != skip.shape or np.any(skip_abs < np.abs(skip)):
                raise UsageError("skip_abs must have the shape of the skip and bound it entrywise")

    free = [b > a for a, b in zip(los, his)]
    n_free = int(sum(int(f.sum()) for f in free))
    n = n0 + n_free
    h = np.zeros((n0, n))
    h[:, :n0] = np.eye(n0)
    h_abs = h.copy()
    u_rows, u_abs_rows, g_index, lower, upper = [], [], [], [], []
    growth, k_l = 1.0, 1.0
    offset = n0
    for w, w_abs, w_norm, a, b, fr in zip(ws[:-1], abs_ws[:-1], norm_ws[:-1], los, his, free):
        u_full = w @ h
        u_full_abs = w_abs @ h_abs
        nf = int(fr.sum())
        u_rows.append(u_full[fr])
        u_abs_rows.append(u_full_abs[fr])
        g_index.append(offset + np.arange(nf))
        lower.append(a[fr])
        upper.append(b[fr])
        h_next = a[:, None] * u_full
        h_next_abs = np.abs(a)[:, None] * u_full_abs
        h_next[fr] = 0.0
        h_next_abs[fr] = 0.0
        h_next[np.flatnonzero(fr), offset + np.arange(nf)] = 1.0
        h_next_abs[np.flatnonzero(fr), offset + np.arange(nf)] = 1.0
        mag = np.maximum(np.abs(a), np.abs(b))
        if nf:
            c_l = float(mag[fr].max()) * norm_upper(w_norm[fr], 2.0) * k_l
            growth += c_l * c_l
        k_l *= (float(mag.max()) if mag.size else 0.0) * norm_upper(w_norm, 2.0)
        h, h_abs = h_next, h_next_abs
        offset += nf
    c = ws[-1] @ h
    c_abs = abs_ws[-1] @ h_abs
    if skip is not None:
        c[:, :n0] += skip
        c_abs[:, :n0] += skip_abs
    n_max = max(max(w.shape) for w in ws)
    gamma = 16.0 * (len(ws) + 3) * (n_max + n) * _EPS

    def cat(xs, width):
        return np.concatenate(xs) if xs else np.zeros((0, width))

    return LipschitzLMI(
        n_in=n0,
        c=c,
        c_abs=c_abs,
        u=cat(u_rows, n) if u_rows else np.zeros((0, n)),
        u_abs=cat(u_abs_rows, n) if u_abs_rows else np.zeros((0, n)),
        g_index=np.concatenate(g_index).astype(np.int64) if g_index else np.zeros(0, dtype=np.int64),
        lower=np.concatenate(lower) if lower else np.zeros(0),
        upper=np.concatenate(upper) if upper else np.zeros(0),
        growth=growth * (1.0 + 1e-10),
        gamma=gamma,
    )


# ----------------------------------------------------------------------------------------------- dense LMI (re-check)
def lmi_matrix(data: LipschitzLMI, rho: float, t: np.ndarray) -> np.ndarray:
    """F(rho, t) (N, N) in float64, built densely from the formula (independent of :func:`to_program`)."""
    n = data.size
    f = -(data.c.T @ data.c)
    f[np.arange(data.n_in), np.arange(data.n_in)] += rho
    if data.n_free:
        ab = data.lower * data.upper * t
        half = 0.5 * (data.lower + data.upper) * t
        f += data.u.T @ (ab[:, None] * data.u)
        gu = np.zeros((n, n))
        gu[data.g_index, :] = half[:, None] * data.u  # G^T diag(half) U
        f -= gu + gu.T
        f[data.g_index, data.g_index] += t
    return 0.5 * (f + f.T)


def _lmi_abs(data: LipschitzLMI, rho: float, t: np.ndarray) -> np.ndarray:
    n = data.size
    f = data.c_abs.T @ data.c_abs
    f[np.arange(data.n_in), np.arange(data.n_in)] += abs(rho)
    if data.n_free:
        ab = np.abs(data.lower * data.upper) * t
        half = 0.5 * np.abs(data.lower + data.upper) * t
        f += data.u_abs.T @ (ab[:, None] * data.u_abs)
        gu = np.zeros((n, n))
        gu[data.g_index, :] = half[:, None] * data.u_abs
        f += gu + gu.T
        f[data.g_index, data.g_index] += t
    return f


def certified_shift(f: np.ndarray, err: float, estimate: float | None = None) -> float | None:
    """A d >= 0 such that every symmetric F_exact with ||F_exact - f||_2 <= err satisfies F_exact + d I >= 0,
    proven by one floating-point Cholesky factorisation; None when the factorisations tried fail.

    ``f`` (N, N) symmetric float64; ``estimate``: an estimate of lambda_min(f) (eigvalsh; only steers the shift).
    Argument (Higham, Accuracy and Stability of Numerical Algorithms, Thm 10.3; Rump, BIT 46 (2006)): if Cholesky
    runs to completion on the float matrix A = fl(f - sigma I), then R^T R = A + dA with |dA| <= gamma_{N+1} |R^T||R|,
    so lambda_min(A) >= -alpha tr(A), alpha = gamma_{N+1} / (1 - gamma_{N+1}), gamma_k = k u / (1 - k u) (this
    holds for any order of the inner products, blocked LAPACK included; it assumes IEEE arithmetic and no fast
    matrix multiplication). The subtraction on the diagonal is off by at most u/(1-u) |A_ii|. Hence
    lambda_min(F_exact) >= sigma - alpha tr(A) - u/(1-u) max|A_ii| - err, and d is the positive part of minus
    that, rounded up.
    """
    n = f.shape[0]
    if n == 0:
        return 0.0
    u = 0.5 * _EPS
    gamma = (n + 1) * u / (1 - (n + 1) * u)
    alpha = gamma / (1 - gamma)
    diag = np.diag(f)
    trace_est = float(np.sum(np.abs(diag)))
    lam = float(np.linalg.eigvalsh(f)[0]) if estimate is None else float(estimate)
    if not (math.isfinite(lam) and math.isfinite(trace_est) and math.isfinite(err)):
        return None
    slack = 4.0 * alpha * trace_est + 1e-300
    target = 2.0 * (err + alpha * trace_est + 1e-300)  # a shift this large already gives d = 0
    for widen in (1.0, 16.0, 256.0):
        sigma = min(lam - widen * slack, target)
        a = f.copy()
        a[np.diag_indices(n)] = diag - sigma
        try:
            np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            continue
        a_diag = np.abs(np.diag(a))
        trace_a = float(np.sum(a_diag)) * (1 + (n + 1) * _EPS)
        lost = alpha * trace_a + u / (1 - u) * float(a_diag.max()) + n * 1e-300
        d = (err + lost) * (1 + 8 * _EPS) - sigma
        if not math.isfinite(d):  # an overflowed trace proves nothing (and max(0, nan) would read as 0)
            return None
        return max(0.0, d) * (1 + 4 * _EPS)
    return None


def check_lmi(data: LipschitzLMI, rho: float, t: np.ndarray, inflate_tol: float = 1e-4) -> LMICheck:
    """Re-check (rho, t) in float64 and return the bound it proves, if any (see the module docstring).

    The proof is :func:`certified_shift` (a rounding-safe Cholesky test of the rebuilt LMI with the allowance
    ``err`` for building it); ``min_eig`` (eigvalsh) is reported and steers the shift but proves nothing."""
    t = np.maximum(np.asarray(t, dtype=np.float64).reshape(-1), 0.0)
    rho = float(rho)
    if t.shape != (data.n_free,) or not (math.isfinite(rho) and np.all(np.isfinite(t))):
        return LMICheck(None, math.nan, math.nan, math.nan, "multipliers are missing or not finite")
    f = lmi_matrix(data, rho, t)
    err = data.gamma * float(np.linalg.norm(_lmi_abs(data, rho, t))) + 1e-300
    if not (np.all(np.isfinite(f)) and math.isfinite(err)):
        return LMICheck(None, math.nan, err, math.nan, "float64 re-check failed: the rebuilt LMI overflows")
    try:
        lam = float(np.linalg.eigvalsh(f)[0]) if f.size else 0.0
    except np.linalg.LinAlgError:
        return LMICheck(None, math.nan, err, math.nan, "float64 re-check failed: no eigenvalue estimate")
    deficit = certified_shift(f, err, lam)
    if deficit is None:
        return LMICheck(None, lam, err, math.nan,
                        f"float64 re-check failed: no Cholesky factorisation of the rebuilt LMI near its smallest "
                        f"eigenvalue {lam:.3e} succeeded")
    inflation = deficit * data.growth
    floating = 2.0 * (err + 8.0 * (data.size + 2) * _EPS * float(np.sum(np.abs(np.diag(f))))) * data.growth
    allowed = inflate_tol * max(rho, 0.0) + floating
    if not (math.isfinite(inflation) and math.isfinite(allowed)) or inflation > allowed:
        return LMICheck(
            None,
            lam,
            err,
            inflation,
            f"float64 re-check failed: smallest eigenvalue of the rebuilt LMI is {lam:.3e} (allowance {err:.1e}); "
            f"repairing it would add {inflation:.3e} to rho = {rho:.6g}, above the tolerance {allowed:.3e}",
        )
    total = max(rho, 0.0) + inflation
    value = math.sqrt(total) * (1.0 + 8 * _EPS) if total > 0 else 0.0
    return LMICheck(value, lam, err, inflation)


def tightest_rho(data: LipschitzLMI, t: np.ndarray) -> float | None:
    """The smallest rho with F(rho, t) >= 0 for fixed multipliers t (clipped at 0), or None when there is none.

    Write F(0, t) = [[K00, K0g], [Kg0, Kgg]] with the h_0 block first. F(rho, t) >= 0 needs Kgg > 0 (checked by a
    Cholesky factorisation) and then rho >= lambda_max(K0g Kgg^{-1} Kg0 - K00) (Schur complement). This is only a
    candidate in floating point; :func:`check_lmi` decides.
    """
    t = np.maximum(np.asarray(t, dtype=np.float64).reshape(-1), 0.0)
    if not np.all(np.isfinite(t)):
        return None
    f = lmi_matrix(data, 0.0, t)
    n0 = data.n_in
    if not np.all(np.isfinite(f)):
        return None
    if data.n_free == 0:
        return float(np.linalg.eigvalsh(-f)[-1])
    try:
        chol = np.linalg.cholesky(f[n0:, n0:])
        x = sla.solve_triangular(chol, f[n0:, :n0], lower=True, check_finite=False)
        rho = float(np.linalg.eigvalsh(x.T @ x - f[:n0, :n0])[-1])
    except np.linalg.LinAlgError:
        return None
    return rho if math.isfinite(rho) else None


# ----------------------------------------------------------------------------------------------- solver data
def gain_scale(data: LipschitzLMI) -> float:
    """A positive scale of the gain used to normalise the SDP (the solver sees rho / scale^2 ~ 1)."""
    s = float(np.linalg.norm(data.c, 2)) if data.c.size else 0.0
    return s if s > 0 and math.isfinite(s) else 1.0


def to_program(data: LipschitzLMI, scale: float = 1.0, g_margin: float = 0.0) -> SemidefiniteProgram:
    """The SDP  min rho  s.t.  F(rho, t) >= g_margin * diag(0, I), t >= 0, with C divided by ``scale`` (then rho
    and t scale by scale^2).

    Variables x = [rho, t_1, ..., t_F]. The coefficients have low rank (:class:`LowRankCoefficients`): rho's is
    E_0 = sum_{j < n_in} e_j e_j^T, and t_i's is -Q_i = -(p_i q_i^T + q_i p_i^T) / 2 with p_i = e_{g_i} - a_i U_i and
    q_i = b_i U_i - e_{g_i} (q_i(w) = (p_i . w)(q_i . w)); the 'ipm' back-end exploits that, cvxpy gets the sparse
    form. The margin on the block of the free outputs keeps an approximate solution strictly inside there, so that
    :func:`tightest_rho` can factor that block (first-order solvers otherwise stop on its boundary, slightly
    outside).
    """
    n, nf = data.size, data.n_free
    eye_in = np.eye(data.n_in, n)
    e_g = np.zeros((nf, n))
    e_g[np.arange(nf), data.g_index] = 1.0
    p = e_g - data.lower[:, None] * data.u
    q = data.upper[:, None] * data.u - e_g
    terms = LowRankCoefficients(
        left=np.concatenate([eye_in, p]),
        right=np.concatenate([eye_in, q]),
        weight=np.concatenate([np.ones(data.n_in), -np.ones(nf)]),
        owner=np.concatenate([np.zeros(data.n_in, dtype=np.int64), 1 + np.arange(nf)]),
    )
    objective = np.zeros(1 + nf)
    objective[0] = 1.0
    c = data.c / scale
    f0 = -(c.T @ c)
    f0[data.g_index, data.g_index] -= g_margin
    return SemidefiniteProgram(c=objective, f0=f0, low_rank=terms, lower=np.zeros(1 + nf))


# ----------------------------------------------------------------------------------------------- public entry points
def lipschitz_sdp(
    weights: list[np.ndarray],
    slope_lower: list[np.ndarray],
    slope_upper: list[np.ndarray],
    skip: np.ndarray | None = None,
    backend: str = "ipm",
    *,
    tol: float = 1e-6,
    time_limit: float | None = None,
    max_iters: int | None = None,
    inflate_tol: float = 1e-4,
    weight_abs: list[np.ndarray | None] | None = None,
    skip_abs: np.ndarray | None = None,
) -> SDPBound:
    """Upper bound on sup ||W_L Lambda_{L-1} ... Lambda_0 W_0 + S||_2 over slopes in [slope_lower, slope_upper].

    Shapes as in :func:`build_lmi`. ``backend``: a registered SDP back-end ('ipm', 'scs' or 'clarabel');
    ``tol``/``time_limit``/``max_iters`` go to the solver; ``inflate_tol``: largest relative increase of rho the
    re-check may apply; ``weight_abs``/``skip_abs``: see :func:`build_lmi`. Never raises on solver trouble: a
    non-optimal status or a failed re-check gives ``value=None`` with the reason.
    """
    start = time.perf_counter()
    data = build_lmi(weights, slope_lower, slope_upper, skip, weight_abs, skip_abs)
    if not _representable(data):  # a solver would only see inf and NaN (and print its complaints)
        return SDPBound(value=None, status=SolveStatus.ERROR, seconds=time.perf_counter() - start, min_eig=None,
                        reason=f"no SDP bound: {OVERFLOW_REASON}", backend=backend, size=data.size)
    scale = gain_scale(data)
    # Pass 1 keeps a margin of tol on the free-output block (costs about tol relative); when its solution is
    # optimal but fails the re-check (the solver stopped on that block's boundary), pass 2 asks for 100 tol.
    with blas_threads(1):  # the solve and the float64 re-check: one BLAS thread (certify/solvers/threads.py)
        res = _solve_and_check(data, scale, tol, backend, time_limit, max_iters, inflate_tol, g_margin=tol)
        if res[0].status.is_optimal and res[1].value is None and data.n_free:
            res = _solve_and_check(data, scale, tol, backend, time_limit, max_iters, inflate_tol,
                                   g_margin=100 * tol)
    result, check, raw = res
    reason = check.reason
    value = None if check.value is None else float(check.value)
    if result.x is None:
        reason = f"no SDP bound: {result.status.value} ({result.message})"
    elif not result.status.is_optimal:
        value, reason = None, f"no SDP bound: solver status {result.status.value} ({result.message})"
    return SDPBound(
        value=value,
        status=result.status,
        seconds=time.perf_counter() - start,
        min_eig=None if result.x is None else check.min_eig,
        reason=reason,
        raw=raw,
        inflation=float(check.inflation) if value is not None else 0.0,
        backend=backend,
        size=data.size,
    )


def _representable(data: LipschitzLMI) -> bool:
    """Whether F(rho, t) can be built in float64: its entries are sums of at most N + 1 products of two entries of
    C or U and two slopes, so (largest |entry|)^2 (largest |slope|, at least 1)^2 (N + 1) must be finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        m = max((float(np.max(np.abs(a))) for a in (data.c, data.c_abs, data.u, data.u_abs) if a.size), default=0.0)
        s = max((float(np.max(np.abs(a))) for a in (data.lower, data.upper) if a.size), default=0.0)
        return math.isfinite(m * m * max(s, 1.0) ** 2 * (data.size + 1)) and math.isfinite(data.growth)


def _solve_and_check(data, scale, tol, backend, time_limit, max_iters, inflate_tol, g_margin):
    """One solve and its float64 re-check: (SolveResult, LMICheck, raw sqrt(rho) or None).

    Nothing the back-end returns is trusted: an exception, a point of the wrong size, non-finite or negative
    entries are a status or a rejected check, and a bound comes only from :func:`check_lmi` on the rebuilt LMI."""
    program = to_program(data, scale, g_margin=g_margin)
    try:
        solver = registry.get_backend(backend, registry.ProblemKind.SDP)
    except registry.UnknownBackendError as exc:
        result = SolveResult(SolveStatus.NOT_INSTALLED, backend=str(backend), message=str(exc))
    else:
        try:
            result = solver.solve(program, time_limit=time_limit, tol=tol, max_iters=max_iters)
        except Exception as exc:  # noqa: BLE001 - solver trouble is a status, never an exception (DESIGN.md 3)
            result = SolveResult(SolveStatus.ERROR, backend=str(backend),
                                 message=f"{backend} raised {type(exc).__name__}: {exc}")
    if result.x is None:
        return result, LMICheck(None, math.nan, math.nan, math.nan, "no solution"), None
    try:
        x = np.array(result.x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        x = np.zeros(0)
    if x.size != 1 + data.n_free:
        return result, LMICheck(None, math.nan, math.nan, math.nan,
                                f"the solver returned {x.size} values for {1 + data.n_free} variables"), None
    with np.errstate(over="ignore", invalid="ignore"):
        rho = float(x[0]) * scale * scale
        t = x[1:] * scale * scale
    raw = None if not math.isfinite(rho) else math.sqrt(rho) if rho > 0 else 0.0
    # The solver's t is the certificate; its rho is only approximately the tightest for that t (first-order
    # solvers stop slightly infeasible or slightly slack). Recompute rho for the returned t, pad it by a few
    # ulp-scale units, and let the float64 re-check decide; keep the solver's rho when that is better.
    with np.errstate(over="ignore", invalid="ignore"):  # absurd multipliers overflow; the check then refuses
        check = check_lmi(data, rho, t, inflate_tol)
        tight = tightest_rho(data, t)
        if tight is not None and math.isfinite(tight):
            repaired = check_lmi(data, tight * (1.0 + 1e-9) + 1e-300, t, inflate_tol)
            if repaired.value is not None and (check.value is None or repaired.value < check.value):
                check = repaired
    return result, check, raw


def slope_ranges(
    net: Network, box: Box, quantity: str | Quantity = "A_STAR"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer slope ranges over the box: secant ranges (A*) or derivative ranges (J) of each neuron over the
    interval bounds of its pre-activation (:func:`certify.bounds.interval_bounds`); two lists of (n_{l+1},)."""
    a_star = _is_a_star(quantity)
    lows, highs = [], []
    for layer, bnd in zip(net.layers, interval_bounds(net, box)):
        rng = layer.activation.secant_range if a_star else layer.activation.derivative_range
        lo, hi = rng(bnd.pre_lower, bnd.pre_upper)
        lows.append(lo)
        highs.append(hi)
    return lows, highs


def sdp_bound_over_box(
    net: Network,
    box: Box,
    quantity: str | Quantity = "A_STAR",
    state_only: bool = True,
    backend: str = "ipm",
    metric: Metric | None = None,
    **solver_options,
) -> SDPBound:
    """Upper bound on sup_{x in box} ||A*(x)||_2 (``quantity='A_STAR'``) or ||J(x)||_2 (``'JACOBIAN'``); with a
    ``metric`` on the states, of ||T M T^{-1}||_2 (the conjugated first and last layers and skip).

    ``state_only``: bound the state columns only (the first ``net.n_states`` inputs: W_0 and S restricted to
    them), as the dissipativity and contraction checks need. Sound because every A*(x) / J(x) with x in the box
    is such a product with slopes inside the ranges of :func:`slope_ranges`.
    """
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the network has {net.n_in} inputs")
    lows, highs = slope_ranges(net, box, quantity)
    cols = slice(0, net.n_states) if state_only else slice(0, net.n_in)
    weights = [layer.weight for layer in net.layers] + [net.out_weight]
    weights[0] = weights[0][:, cols]
    skip = None if net.skip is None else net.skip[:, cols]
    if metric is None or metric.is_identity:
        return lipschitz_sdp(weights, lows, highs, skip, backend=backend, **solver_options)
    chain, skip = metric.conjugated_chain(net)
    chain_abs, skip_abs = metric.end_magnitudes(net)
    res = lipschitz_sdp(list(chain), lows, highs, skip, backend=backend, weight_abs=chain_abs, skip_abs=skip_abs,
                        **solver_options)
    return res if res.value is None else replace(res, value=res.value * metric.upper_factor * (1.0 + 4 * _EPS))
