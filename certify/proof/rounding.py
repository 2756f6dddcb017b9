"""Rigorous float64 and exact arithmetic for the proof checker (standard library and numpy only).

The rounding model: IEEE 754 binary64 with round-to-nearest, u = 2^-53. A dot product (or any sum) of n terms
computed in any order, with or without fused multiply-adds, errs by at most gamma_n = n u / (1 - n u) times the
sum of the terms' magnitudes, plus n * 2^-1075 for underflow. :func:`gam` is 2 (n + 2) u, twice gamma_n for every
size this checker meets (n < 10^9), so a bound computed as ``gam(n) * fl(sum of magnitudes)`` covers the error of
the sum, the error of computing the magnitudes themselves (relative gamma_n) and the few extra roundings of adding
the pad (relative u each); :data:`TINY` (1e-300) covers underflow. Every enclosure here is built that way:

* an interval matrix is a centre C and a radius R >= 0 (every matrix M with |M - C| <= R entrywise);
  :func:`left_multiply` and :func:`scale_rows` give an enclosure of the product with the rounding added to R;
* :func:`affine_range` encloses W v + b over an interval vector v;
* norm bounds: column/row sums rounded up (p = 1, inf), the Collatz-Wielandt bound rho(B) <= max_i (B v)_i / v_i
  (B = U^T U >= 0, any v > 0) for the 2-norm of a nonnegative matrix, and for a signed matrix C the 2-norm bound
  sigma proved by an exact positive-definiteness test of sigma^2 I - C C^T (or C^T C) in integers
  (:func:`positive_definite`: Sylvester's criterion by fraction-free Bareiss elimination on the exact binary
  values of the floats).

Functions from :mod:`math` and numpy used as library functions (tanh, cosh, exp, sqrt) are assumed accurate to a
few ulp; callers widen their results by :data:`LIB_PAD` relative.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np

EPS = 2.0 ** -52  # 2u
TINY = 1e-300
LIB_PAD = 1e-14  # relative widening of library functions (tanh, exp, cosh): about 45 ulp
MAX_EXACT_DIM = 48  # exact 2-norm tests on Gram matrices up to this order
_FLOAT_MAX = Fraction(sys.float_info.max)


def gam(n: int) -> float:
    """2 (n + 2) u: twice the classical gamma_n (module docstring)."""
    return (n + 2) * EPS


def up(x):
    """x rounded up by a relative 4u plus TINY (x >= 0): covers a handful of roundings of a nonnegative result."""
    return x * (1.0 + 2 * EPS) + TINY


def midrad(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(c, r) with [lo, hi] inside [c - r, c + r] exactly; point intervals give r = 0."""
    c = 0.5 * lo + 0.5 * hi
    r = np.maximum(c - lo, hi - c)
    r = np.where(lo == hi, 0.0, r * (1.0 + 2 * EPS) + TINY)
    return c, r


# ============================================================================================ interval products
def left_multiply(w: np.ndarray, aw: np.ndarray, c: np.ndarray, r: np.ndarray):
    """Enclosure (C', R') of w @ M for every M with |M - c| <= r; w (m, n) exact, aw = |w|, c/r (n, k)."""
    c2 = w @ c
    a = aw @ r
    b = aw @ np.abs(c)
    return c2, a + gam(w.shape[1]) * (a + b) + TINY


def scale_rows(c: np.ndarray, r: np.ndarray, s_lo: np.ndarray, s_hi: np.ndarray):
    """Enclosure of diag(s) M for s_i in [s_lo_i, s_hi_i] and |M - c| <= r; c/r (n, k), s (n,)."""
    sc, sr = midrad(s_lo, s_hi)
    c2 = sc[:, None] * c
    ac = np.abs(c)
    r2 = np.abs(sc)[:, None] * r + sr[:, None] * (ac + r) + EPS * np.abs(sc)[:, None] * ac
    return c2, r2 * (1.0 + 4 * EPS) + np.where(r2 > 0, TINY, 0.0)


def affine_range(w: np.ndarray, aw: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """[zl, zu] containing w v + b for every v in [lo, hi]; w (m, n), b (m,), lo/hi (n,)."""
    vc, vr = midrad(lo, hi)
    zc = w @ vc + b
    zr = aw @ vr
    pad = gam(w.shape[1] + 1) * (aw @ np.abs(vc) + zr + np.abs(b)) + TINY
    return zc - zr - pad, zc + zr + pad


def map_range(c: np.ndarray, r: np.ndarray, g: np.ndarray, rg: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """[zl, zu] containing z(x) over the box [lo, hi] for every affine z(x) = C x + g with |C - c| <= r and
    |g - g_c| <= rg entrywise; returns also the error Delta (m,) of the float map: |z(x) - (c x + g)| <= Delta."""
    ac = np.abs(c)
    zl, zu = affine_range(c, ac, g, lo, hi)
    xm = np.maximum(np.abs(lo), np.abs(hi))
    delta = up(r @ xm + rg) * (1.0 + gam(c.shape[1]))
    return zl - delta, zu + delta, delta


# ============================================================================================ norms
def sums_upper(u: np.ndarray, axis: int) -> float:
    """max over the other axis of the sums of u >= 0 along ``axis``, rounded up."""
    if u.size == 0:
        return 0.0
    return float(np.max(u.sum(axis=axis))) * (1.0 + gam(u.shape[axis])) + TINY


def cw_upper(u: np.ndarray, iterations: int = 24) -> float:
    """An upper bound on ||u||_2 of a nonnegative matrix (k, m): Collatz-Wielandt on the smaller Gram matrix with
    a vector from power iteration (any v > 0 gives a valid bound; the iteration only makes it tight)."""
    if u.size == 0 or not np.any(u):
        return 0.0
    a = u if u.shape[0] <= u.shape[1] else u.T  # B = a a^T, the smaller side
    v = np.ones(a.shape[0])
    for _ in range(iterations):
        w = a @ (a.T @ v)
        top = float(np.max(w))
        if not top > 0 or not math.isfinite(top):
            break
        v = w / top
    v = np.maximum(v, 1e-12 * float(np.max(v)))
    w = a @ (a.T @ v)
    if not np.all(np.isfinite(w)):
        return math.inf
    ratio = float(np.max(w * (1.0 + gam(a.shape[0] + a.shape[1])) / v)) * (1.0 + 2 * EPS)
    return math.sqrt(ratio) * (1.0 + 2 * EPS) + TINY


def _ints(values) -> tuple[list[int], int]:
    """Exact integers N and an exponent e with values = N * 2^e (finite floats)."""
    pairs = [math.frexp(float(v)) for v in values]
    mants = [int(m * (1 << 53)) for m, _ in pairs]
    exps = [e - 53 for _, e in pairs]
    e0 = min((e for e, n in zip(exps, mants) if n), default=0)
    return [n << (e - e0) if n else 0 for n, e in zip(mants, exps)], e0


def positive_definite(a: list[list[int]]) -> bool:
    """Whether the symmetric integer matrix a is positive definite: every leading principal minor > 0
    (Sylvester), computed exactly by fraction-free (Bareiss) elimination."""
    n = len(a)
    m = [row[:] for row in a]
    prev = 1
    for k in range(n):
        piv = m[k][k]
        if piv <= 0:
            return False
        rk = m[k]
        for i in range(k + 1, n):
            ri = m[i]
            f = ri[k]
            for j in range(k + 1, n):
                ri[j] = (ri[j] * piv - f * rk[j]) // prev
        prev = piv
    return True


def gram_ints(c: np.ndarray) -> tuple[list[list[int]], int]:
    """The exact Gram matrix of the smaller side of c (k, m) as integers G and an exponent e:
    c c^T (or c^T c) = G * 2^(2e)."""
    a = c if c.shape[0] <= c.shape[1] else c.T
    flat, e = _ints(a.ravel())
    k, m = a.shape
    rows = [flat[i * m:(i + 1) * m] for i in range(k)]
    g = [[0] * k for _ in range(k)]
    for i in range(k):
        ri = rows[i]
        for j in range(i, k):
            s = sum(x * y for x, y in zip(ri, rows[j]))
            g[i][j] = g[j][i] = s
    return g, e


def sigma_certified(gram: tuple[list[list[int]], int], sigma: float) -> bool:
    """Whether sigma^2 I - G 2^(2e) is positive definite (so the matrix of the Gram matrix has 2-norm < sigma)."""
    g, e = gram
    (s,), es = _ints([sigma])
    shift = 2 * es - 2 * e  # sigma^2 = s^2 2^(2 es); compare s^2 2^shift with G
    k = len(g)
    if shift >= 0:
        diag, a = (s * s) << shift, [row[:] for row in g]
    else:
        diag, a = s * s, [[x << -shift for x in row] for row in g]
    for i in range(k):
        a[i] = [-x for x in a[i]]
        a[i][i] += diag
    return positive_definite(a)


def spectral_upper(c: np.ndarray) -> float:
    """A proved upper bound on ||c||_2 of a float matrix (inf when c is too large for the exact test): the float
    SVD proposes sigma, the exact test of :func:`sigma_certified` decides."""
    if c.size == 0 or not np.any(c):
        return 0.0
    if min(c.shape) > MAX_EXACT_DIM or not np.all(np.isfinite(c)):
        return math.inf
    try:
        s = float(np.linalg.svd(c, compute_uv=False)[0])
    except np.linalg.LinAlgError:  # no proposal: no bound
        return math.inf
    if not math.isfinite(s):  # the norm itself overflows float64 (entries near its largest value): no finite bound
        return math.inf
    gram = gram_ints(c)
    for rel in (1e-13, 1e-10, 1e-6):
        sigma = s * (1.0 + rel) + TINY
        if math.isfinite(sigma) and sigma_certified(gram, sigma):
            return sigma
    return math.inf


def interval_norm_upper(c: np.ndarray, r: np.ndarray, p: float, target: float = -math.inf) -> float:
    """Upper bound on ||M||_p over every M with |M - c| <= r (p in {1, 2, inf}). For p = 2 the exact centre bound
    ||c||_2 + ||r||_2 is tried only when the cheap bounds are above ``target`` (it costs an exact test)."""
    u = (np.abs(c) + r) * (1.0 + EPS)
    if p == 1.0:
        return sums_upper(u, 0)
    if p == math.inf:
        return sums_upper(u, 1)
    s1, si = sums_upper(u, 0), sums_upper(u, 1)
    best = min(cw_upper(u), math.sqrt(s1 * si) * (1.0 + 2 * EPS) + TINY)
    if best > target:
        best = min(best, up(spectral_upper(c) + cw_upper(r)))
    return best


def sigma_lower(c: np.ndarray, r: np.ndarray, p: float) -> float:
    """A proved lower bound on ||M||_p for every M with |M - c| <= r: the norm of c along its best
    column / row (p = 1, inf) or along its top right singular vector v (p = 2, ||c v|| / ||v|| exactly), minus
    the radius' contribution. An enclosure with a non-finite entry (float64 overflow) proves no lower bound: -inf."""
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(r))):
        return -math.inf
    ac = np.abs(c)
    if p == 1.0:
        k = int(np.argmax(ac.sum(axis=0)))
        col, rad = ac[:, k], r[:, k]
        total = min(float(col.sum()), sys.float_info.max)  # a sum that overflowed is still >= the largest float
        return (total * (1.0 - gam(col.size)) - float(rad.sum()) * (1.0 + gam(col.size))) * (1 - EPS)
    if p == math.inf:
        return sigma_lower(c.T, r.T, 1.0)
    try:
        v = np.linalg.svd(c)[2][0]
    except np.linalg.LinAlgError:  # no singular vector: no lower bound (any v would do, this one is only tight)
        return -math.inf
    if not np.all(np.isfinite(v)):
        return -math.inf
    vf = [Fraction(float(x)) for x in v]
    rows = [[Fraction(float(x)) for x in row] for row in c]
    num = sum(sum(a * b for a, b in zip(row, vf)) ** 2 for row in rows)
    den = sum(x * x for x in vf)
    if den == 0:
        return 0.0
    q = num / den  # ||c v||^2 / ||v||^2 exactly
    if q <= _FLOAT_MAX:
        root = math.sqrt(float(q))
    else:  # beyond float64 (float(q) overflows): the integer square root of floor(q), at most the largest float
        root = float(min(math.isqrt(q.numerator // q.denominator), int(sys.float_info.max)))
    val = root * (1.0 - 4 * EPS)
    return (val - cw_upper(r) * (1.0 + EPS)) * (1.0 - EPS)


# ============================================================================================ exact rationals
def exact_matrix(a: np.ndarray) -> list[list[Fraction]]:
    return [[Fraction(float(x)) for x in row] for row in np.atleast_2d(a)]


def fraction_positive_definite(a: list[list[Fraction]]) -> bool:
    """Positive definiteness of a symmetric rational matrix (scaled to integers, then :func:`positive_definite`)."""
    den = 1
    for row in a:
        for x in row:
            den = den * x.denominator // math.gcd(den, x.denominator)
    return positive_definite([[int(x * den) for x in row] for row in a])


def matmul_exact(a: list[list[Fraction]], b: list[list[Fraction]]) -> list[list[Fraction]]:
    cols = list(zip(*b))
    return [[sum(x * y for x, y in zip(row, col)) for col in cols] for row in a]
