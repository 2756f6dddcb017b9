"""The floating-point facts that soundness rests on: induced norms, interval products, outward rounding.

Every sound upper bound in certify is computed in float64 with the functions below and padded by one of the named
constants. Each constant comes with its argument (gamma_n = n u / (1 - n u) is the classical bound on the relative
error of a float64 sum or dot product of n terms, u = 2^-53 the unit roundoff; widths here are far below 10^4):

* :data:`AFFINE_PAD` (1e-12): one affine map W h + b evaluated in float64 errs by at most gamma_n (|W| |h| + |b|)
  entrywise; gamma_n < 1.2e-13 for n < 10^3, and :func:`dot_pad` grows the pad with n beyond that.
* :data:`CHAIN_PAD` (1e-11): a chain of k matrix products errs by about k gamma_n times the same chain in absolute
  values; every interval-matrix or slope-chain enclosure is widened by ``CHAIN_PAD`` times that absolute-value
  chain (k <= 10 layers, n < 10^3 neurons: k gamma_n < 1.2e-12, a tenfold margin).
* :data:`NORM_PAD` (1e-12 per dimension): a float64 induced norm of a (k, n) matrix (largest singular value by a
  backward-stable SVD, or a column/row sum) is within a few (k + n) eps of the exact norm of the stored matrix;
  padding by a relative ``NORM_PAD * (1 + max(k, n))`` leaves a margin of over 2000 at every size.
* :data:`TINY` (1e-300): an absolute floor added to every pad so that a pad is never zero (underflow).
* :data:`SOLVER_REL_PAD` (1e-7): not rounding but a stated assumption about LP/MILP solvers (violations of at most
  their feasibility tolerance, 8-digit output of CBC); solver bounds are widened by it (see
  :mod:`certify.engines.milp_encoding`).

Induced norms for p in {1, 2, inf}: p = 1 the largest column sum of |M|, p = inf the largest row sum, p = 2 the
largest singular value. :func:`induced_norm` is the exact float64 reference used to replay witnesses;
:func:`norm_upper` a sound upper bound on the norm of a stored matrix; :func:`abs_norm_upper` and
:func:`interval_norm_upper` sound bounds over a set of matrices given entrywise.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from ..errors import RegionError, UsageError

EPS = float(np.finfo(np.float64).eps)
AFFINE_PAD = 1e-12
CHAIN_PAD = 1e-11
NORM_PAD = 1e-12
TINY = 1e-300
SOLVER_REL_PAD = 1e-7
# a float64 value (a region's norm, a replayed witness) counts as exact while the rounding bound of its matrix is
# within this relative distance of it; beyond (a chain whose entries cancel) the bound itself is used
EXACT_REL = 1e-9

NORMS = (1.0, 2.0, math.inf)
_NORM_NAMES = {"1": 1.0, "2": 2.0, "inf": math.inf}


def overflow_to_inf(function):
    """Decorate a bound computation whose float overflow yields inf (or NaN, which its callers map to inf): the
    overflow is part of the computation, so numpy's RuntimeWarnings about it are not shown to the user."""

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return function(*args, **kwargs)

    return quiet


# ============================================================================================ which norm
def check_norm(p: float) -> float:
    """p as a float, or UsageError unless p is 1, 2 or inf."""
    p = float(p)
    if p not in NORMS:
        raise UsageError(f"induced norm p must be 1, 2 or inf, got {p}")
    return p


def parse_norm(value, where: str = "norm") -> float:
    """1, 2 or inf (as numbers or strings) -> 1.0, 2.0 or math.inf."""
    key = str(value).strip().lower()
    key = {"1.0": "1", "2.0": "2", "infinity": "inf", "+inf": "inf", "linf": "inf", "l1": "1", "l2": "2"}.get(key, key)
    if key not in _NORM_NAMES:
        raise RegionError(f"{where}: norm must be 1, 2 or inf, got {value!r}")
    return _NORM_NAMES[key]


def norm_label(p: float) -> str:
    return "inf" if math.isinf(p) else str(int(p))


# ============================================================================================ norms
def induced_norm(m: np.ndarray, p: float) -> float | np.ndarray:
    """Exact float64 ||m||_p of a (k, n) matrix (returns a float) or of each matrix of a (B, k, n) batch ((B,)).

    A matrix with a non-finite entry (an inf or NaN left by float64 overflow while it was computed) has no float64
    value: its norm is NaN, which never passes for a value (NaN > v is False), so it can be neither a witness nor
    an incumbent; :func:`overflowed` tells callers so. A finite matrix whose norm exceeds the float64 range gets
    inf (its exact norm is above every float). The SVD is never asked about a non-finite matrix."""
    p = check_norm(p)
    a = np.asarray(m, dtype=np.float64)
    if a.ndim not in (2, 3):
        raise UsageError(f"induced_norm needs a (k, n) or (B, k, n) array, got shape {a.shape}")
    k, n = a.shape[-2:]
    if k == 0 or n == 0:
        out = np.zeros(a.shape[:-2])
    else:
        finite = np.isfinite(a).all(axis=(-2, -1))
        if not np.all(finite):
            a = np.where(finite[..., None, None], a, 0.0)
        with np.errstate(over="ignore"):
            if p == 1.0:
                out = np.abs(a).sum(axis=-2).max(axis=-1)
            elif p == math.inf:
                out = np.abs(a).sum(axis=-1).max(axis=-1)
            else:
                out = np.linalg.svd(a, compute_uv=False)[..., 0]  # LAPACK scales huge or tiny matrices itself
        out = np.where(finite, out, np.nan)
    return float(out) if a.ndim == 2 else out


def overflowed(value) -> bool:
    """Whether a value computed by these functions is NaN anywhere: a matrix or a bound that float64 could not
    hold (see :func:`induced_norm`). Callers turn it into an ``unknown`` with the reason :data:`OVERFLOW_REASON`."""
    return bool(np.any(np.isnan(np.asarray(value, dtype=np.float64))))


OVERFLOW_REASON = "the model's values overflow float64 on this box (a matrix entry or a bound is inf or NaN)"

# headroom below the float64 maximum (1.8e308) for the sums and pads around a product that fits
FIT_LIMIT = 1e300


def chain_fits(factors) -> bool:
    """Whether every product of a subset of ``factors`` (upper bounds on the norms of a chain's factors: weight
    norms, max |slope| per layer, ||S||) is finite with room to spare: prod max(1, f) <= :data:`FIT_LIMIT`.

    Soundness use: when it holds, every matrix and partial product of the chain an engine computes has entries at
    most that product (|entry| <= ||M||_2 <= the product of the factors' norms), so no float64 overflow can leave
    an inf or NaN in it, and a NaN norm can never be silently dropped from a maximum. When it fails (a factor is
    inf or NaN, or the product is too large) callers must not certify: they answer ``unknown`` with
    :data:`OVERFLOW_REASON`."""
    total = 1.0
    for f in factors:
        f = float(f)
        if not math.isfinite(f):
            return False
        total *= max(1.0, f)
        if total > FIT_LIMIT:
            return False
    return True


def norm_upper(m: np.ndarray, p: float) -> float | np.ndarray:
    """Sound upper bound on ||m||_p of a stored (k, n) matrix (a float) or (B, k, n) batch ((B,)).

    ``induced_norm`` (or, for p = 2 and batches of small matrices, :func:`_spectral_upper_gram`, 2-3.5x faster
    than the SVD) padded by ``NORM_PAD * (1 + max(k, n))`` (relative) and ``TINY``; a matrix with a non-finite
    entry (overflow) has no finite bound: inf (never NaN, and the SVD is not asked)."""
    a = np.asarray(m, dtype=np.float64)
    single = a.ndim == 2
    b = a[None] if single else a
    if b.shape[-1] == 0 or b.shape[-2] == 0:
        out = np.zeros(b.shape[0])
    else:
        finite = np.isfinite(b).all(axis=(-2, -1))
        clean = np.where(finite[:, None, None], b, 0.0)
        k, n = b.shape[-2:]
        out = None
        if (check_norm(p) == 2.0 and b.shape[0] >= _GRAM_MIN_BATCH and min(k, n) <= _GRAM_MAX_SIDE
                and max(k, n) <= _GRAM_MAX_INNER):
            try:
                out = _spectral_upper_gram(clean)
            except np.linalg.LinAlgError:  # eigvalsh did not converge: the SVD below
                out = None
        if out is None:
            out = induced_norm(clean, p)
        pad = NORM_PAD * (1 + max(b.shape[-2:]))
        out = np.where(finite, out * (1.0 + pad) + TINY, np.inf)
    return float(out[0]) if single else out


_GRAM_MIN_BATCH = 8  # smaller batches: the SVD costs about the same
_GRAM_MAX_SIDE = 64  # the Gram matrix's order: eigvalsh's error, a few (order x eps) ||Gram||, stays far below the pad
_GRAM_MAX_INNER = 4096  # its inner dimension: forming it errs by at most gamma_inner < 5e-13 of ||m||_F^2


def _spectral_upper_gram(b: np.ndarray) -> np.ndarray:
    """Upper bounds (B,) on ||b_i||_2 for a finite batch b (B, k, n), min(k, n) <= 64 and max(k, n) <= 4096.

    Each matrix is scaled by a power of two so that its largest entry has magnitude in [1/2, 1) (exact: no
    overflow or underflow of the squares, a zero matrix stays zero); then lambda_max of the smaller Gram matrix by
    ``eigvalsh``. With a the scaled matrix, the computed Gram matrix errs from a a^T by at most gamma_d |a| |a|^T,
    of 2-norm <= gamma_d ||a||_F^2 (d <= 4096: gamma_d < 5e-13), and eigvalsh is backward stable (its eigenvalue
    errs by a few (order x eps) ||Gram|| <= 4e-13 ||a||_F^2 for order <= 64), so by Weyl
    ||a||_2^2 <= lambda + 1e-11 ||a||_F^2 with room to spare; the square root is rounded up and scaled back (a
    result in the subnormal range may round down by 2^-1074, which the caller's ``TINY`` covers)."""
    scale = np.max(np.abs(b), axis=(1, 2))
    _, e = np.frexp(scale)  # scale = f 2^e with f in [1/2, 1); e = 0 for a zero matrix
    a = np.ldexp(b, -e[:, None, None])
    k, n = a.shape[1:]
    gram = a @ np.swapaxes(a, 1, 2) if k <= n else np.swapaxes(a, 1, 2) @ a
    lam = np.linalg.eigvalsh(gram)[:, -1]
    fro2 = np.einsum("bij,bij->b", a, a)
    sigma = np.sqrt(np.maximum(lam, 0.0) + 1e-11 * fro2) * (1.0 + 4 * EPS)
    return np.ldexp(sigma, e)


def abs_norm_upper(u: np.ndarray, p: float) -> float | np.ndarray:
    """Sound upper bound on ||M||_p over every M with |M| <= u entrywise (u >= 0; (k, n) or (B, k, n)).

    p = 1, inf: the column/row sums of u are the maximum over the set. p = 2: min(||u||_2, sqrt(||u||_1 ||u||_inf)),
    since ||M||_2 <= || |M| ||_2 <= ||u||_2 (the spectral norm is monotone on non-negative matrices) and
    ||M||_2^2 <= ||M||_1 ||M||_inf."""
    p = check_norm(p)
    if p != 2.0:
        return norm_upper(u, p)
    n1, ninf = norm_upper(u, 1.0), norm_upper(u, math.inf)
    # sqrt(n1) sqrt(ninf), not sqrt(n1 ninf): the product of two norms near 1e-200 underflows to 0
    return np.minimum(norm_upper(u, 2.0), np.sqrt(n1) * np.sqrt(ninf) * (1.0 + 4 * EPS))


def interval_norm_upper(lo: np.ndarray, hi: np.ndarray, p: float) -> float | np.ndarray:
    """Sound upper bound on ||M||_p over every M with lo <= M <= hi entrywise ((k, n) or (B, k, n) arrays).

    :func:`abs_norm_upper` of max(|lo|, |hi|), and for p = 2 also ||C||_2 + ||R||_2 (centre and radius: every
    M = C + E with |E| <= R). The rounding of C and R (at most an ulp of |C| per entry, so a matrix of 2-norm at
    most n eps ||C||_2) is covered by the ``NORM_PAD`` of both norms. An overflowed (NaN) bound is inf."""
    p = check_norm(p)
    single = np.ndim(lo) == 2
    lo, hi = (lo[None], hi[None]) if single else (lo, hi)
    bound = abs_norm_upper(np.maximum(np.abs(lo), np.abs(hi)), p)
    if p == 2.0:
        c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
        bound = np.minimum(bound, (norm_upper(c, 2.0) + norm_upper(r, 2.0)) * (1.0 + 2 * EPS))
    bound = np.where(np.isnan(bound), np.inf, bound)
    return float(bound[0]) if single else bound


def vector_norm(v: np.ndarray, p: float) -> float | np.ndarray:
    """||v||_p of a vector (n,) (a float) or of each row of (B, n) ((B,)); exact float64 (no pad)."""
    v = np.asarray(v, dtype=np.float64)
    out = np.linalg.norm(v, ord=check_norm(p), axis=-1)
    return float(out) if v.ndim == 1 else out


def product_pad(m: int) -> float:
    """Relative factor (> 1) covering the rounding of a product (or sum of non-negative terms) of m floats:
    the error is at most m eps relative; the factor is 1 + AFFINE_PAD (m + 2), a margin of about 4000."""
    return 1.0 + AFFINE_PAD * (m + 2)


def product_upper(values) -> float:
    """An upper bound on the product of non-negative floats that does not underflow: mantissas and exponents are
    kept apart (math.frexp), so (1e-90)^4 (1e90)^4 is 1, not 0; padded by :func:`product_pad`, and never 0 unless
    a factor is 0 (a product below the float range gives the smallest subnormal). inf on overflow, NaN for 0 * inf
    or a NaN factor."""
    values = [float(v) for v in values]
    if any(math.isnan(v) for v in values) or (0.0 in values and math.inf in values):
        return math.nan
    if 0.0 in values:
        return 0.0
    if math.inf in values:
        return math.inf
    mantissa, exponent = 1.0, 0
    for v in values:
        m, e = math.frexp(v)
        mantissa, extra = math.frexp(mantissa * m)
        exponent += e + extra
    padded = mantissa * product_pad(len(values))
    try:
        value = math.ldexp(padded, exponent)
    except OverflowError:
        return math.inf
    return max(value, 5e-324)


def chain_gamma(width: int, factors: int) -> float:
    """Relative factor of the float64 error of a chain of ``factors`` matrix products (and bias additions) whose
    inner dimensions are at most ``width``, against the same chain in absolute values: entrywise
    |fl(A B) - A B| <= gamma_m |A| |B| with m = width + 2 (a dot product plus a bias and a slope), so a chain of k
    products errs by at most ((1 + gamma_m)^k - 1) times its absolute-value chain (Higham, section 3.5); doubled.
    Far below ``CHAIN_PAD`` at small widths: it is the pad that decides whether float64 maps can be trusted at
    all (a chain whose entries cancel), where ``CHAIN_PAD`` would call well-conditioned maps doubtful."""
    m = width + 2
    gamma = m * EPS / (1.0 - m * EPS)
    return 2.0 * math.expm1(factors * math.log1p(gamma)) + TINY


# ============================================================================================ interval arithmetic
def dot_pad(n: int) -> float:
    """Relative pad covering the float64 error of a dot product of length n: max(AFFINE_PAD, 4 (n + 2) eps)."""
    return max(AFFINE_PAD, 4.0 * (n + 2) * EPS)


def affine_interval(weight: np.ndarray, bias, lower: np.ndarray, upper: np.ndarray):
    """Sound [lower, upper] of weight @ h + bias for every h in [lower, upper].

    ``weight`` (m, n); ``lower``/``upper`` (n,) or (n, k) (k boxes as columns); ``bias`` (m,), (m, 1) or 0.
    Centre-radius form: W c + b -+ |W| r, widened by ``dot_pad(n)`` (|W| |c| + |W| r + |b|) + TINY."""
    c = 0.5 * (lower + upper)
    r = 0.5 * (upper - lower)
    abs_w = np.abs(weight)
    mid = weight @ c + bias
    rad = abs_w @ r
    pad = dot_pad(weight.shape[-1]) * (abs_w @ np.abs(c) + rad + np.abs(bias)) + TINY
    return outward(mid - rad - pad, mid + rad + pad)


def outward(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] with every non-finite lower end made -inf and every non-finite upper end +inf (arrays of any shape).

    Float64 overflow leaves inf or NaN (inf - inf, 0 * inf) in an interval computation; neither is a sound end
    (a partial sum may overflow although the exact value is finite), so an end that is not finite is no bound.
    Every interval function here returns its result through this, so no NaN ever leaves them: an overflowed
    interval is [-inf, inf] (or half-infinite), and the norms of :func:`norm_upper` over it are inf."""
    with np.errstate(invalid="ignore", over="ignore"):
        clean = np.isfinite(np.sum(lo)) and np.isfinite(np.sum(hi))  # one pass; a false alarm only costs the fix
    if clean:
        return lo, hi
    return np.where(np.isfinite(lo), lo, -np.inf), np.where(np.isfinite(hi), hi, np.inf)


def scale_rows(lo: np.ndarray, hi: np.ndarray, s_lo: np.ndarray, s_hi: np.ndarray):
    """The interval matrix diag(s) [lo, hi] for s in [s_lo, s_hi]: exact up to one rounding per entry.

    ``lo``/``hi`` (n, c) with ``s_lo``/``s_hi`` (n,), or batched (B, n, c) with (B, n)."""
    a, b = s_lo[..., None], s_hi[..., None]
    c1, c2, c3, c4 = a * lo, a * hi, b * lo, b * hi
    return outward(np.minimum(np.minimum(c1, c2), np.minimum(c3, c4)),
                   np.maximum(np.maximum(c1, c2), np.maximum(c3, c4)))


def matmul_interval_left(w: np.ndarray, abs_w: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """w @ [lo, hi] for an exact w (m, n) (``abs_w`` = |w|) and an interval matrix (n, c) or batch (B, n, c).

    Not padded: callers pad the whole chain once by ``CHAIN_PAD`` times its absolute-value chain."""
    c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
    mid, rad = np.matmul(w, c), np.matmul(abs_w, r)
    return outward(mid - rad, mid + rad)


def matmul_interval_right(w: np.ndarray, abs_w: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """[lo, hi] @ w for an interval matrix (k, n) or batch (B, k, n) and an exact w (n, m) (``abs_w`` = |w|).

    Not padded (see :func:`matmul_interval_left`)."""
    c, r = 0.5 * (lo + hi), 0.5 * (hi - lo)
    mid, rad = np.matmul(c, w), np.matmul(r, abs_w)
    return outward(mid - rad, mid + rad)


def midpoints(sl: np.ndarray, sh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, delta) with [m - delta, m + delta] containing [sl, sh] in exact arithmetic (arrays of any shape).

    m is the rounded midpoint; delta = max(m - sl, sh - m) rounded up by a relative 2 eps plus TINY (each
    difference errs by at most half an ulp of its magnitude)."""
    m = 0.5 * sl + 0.5 * sh
    d = np.maximum(m - sl, sh - m)
    return m, d * (1.0 + 2 * EPS) + TINY


# ============================================================================================ spectral radius
def characteristic_polynomial(m: np.ndarray) -> list:
    """The exact characteristic polynomial det(z I - M) of a float64 square matrix, as Fractions, highest degree
    first ([1, c_1, ..., c_n]); Faddeev-LeVerrier in exact rational arithmetic on the stored entries."""
    a = [[Fraction(float(v)) for v in row] for row in np.asarray(m, dtype=np.float64)]
    n = len(a)
    coeffs = [Fraction(1)]
    mk = [[Fraction(0)] * n for _ in range(n)]  # M_0 = 0
    for k in range(1, n + 1):
        # M_k = A M_{k-1} + c_{k-1} I ;  c_k = -trace(A M_k) / k
        prod = [[sum(a[i][t] * mk[t][j] for t in range(n)) for j in range(n)] for i in range(n)]
        mk = [[prod[i][j] + (coeffs[-1] if i == j else 0) for j in range(n)] for i in range(n)]
        am = [[sum(a[i][t] * mk[t][j] for t in range(n)) for j in range(n)] for i in range(n)]
        coeffs.append(-sum(am[i][i] for i in range(n)) / k)
    return coeffs


def spectral_radius_below_one(m: np.ndarray) -> bool:
    """True iff every eigenvalue of the stored float64 matrix M lies strictly inside the unit circle, decided
    exactly: the Schur-Cohn recursion on det(z I - M) in rational arithmetic (p of degree n with leading a_0 and
    constant a_n is Schur stable iff |a_n| < |a_0| and (a_0 p(z) - a_n p*(z)) / z is, p* the reversed polynomial).
    Since rho(M) <= ||T M T^{-1}|| for every invertible T, False proves that no quadratic metric gives ||M||_P < 1.
    A matrix with a non-finite entry (float64 overflow, see :func:`induced_norm`) has no stored value to decide on:
    it refutes nothing, so the answer is True, and callers must not read True as a proof of stability then."""
    if not np.all(np.isfinite(np.asarray(m, dtype=np.float64))):
        return True
    p = characteristic_polynomial(m)
    while len(p) > 1:
        a0, an = p[0], p[-1]
        if abs(an) >= abs(a0):
            return False
        rev = p[::-1]
        q = [a0 * p[i] - an * rev[i] for i in range(len(p))]
        p = q[:-1]  # the constant term of a0 p - an p* is a0 an - an a0 = 0: divide by z
    return True


def spectral_radius(m: np.ndarray) -> float:
    """max |eigenvalue| of M in float64 (an estimate for reports; decisions use :func:`spectral_radius_below_one`);
    NaN for a matrix with a non-finite entry (float64 overflow)."""
    m = np.asarray(m, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        return math.nan
    return float(np.max(np.abs(np.linalg.eigvals(m)))) if m.size else 0.0
