"""SDP back-end 'ipm': a primal-dual interior-point method in numpy/scipy that exploits low-rank coefficients.

Problem (:class:`certify.solvers.sdp.SemidefiniteProgram`, the LMI form)::

    minimise c @ x   s.t.   S = F0 + sum_k x_k F_k  >= 0 (PSD),   x_k >= lower_k where lower_k is finite,

and its dual  maximise -tr(F0 Z) + lower_b @ z  s.t.  tr(F_k Z) + z_k = c_k,  Z >= 0, z >= 0  (z_k = 0 where
lower_k = -inf). The LMI is split into the diagonal blocks of its sparsity pattern (connected components), each
handled either as

* a **low-rank block**, when the program carries :class:`~certify.solvers.sdp.LowRankCoefficients`
  (F_k = sum_j w_j (l_j r_j^T + r_j l_j^T) / 2): the Schur complement matrix M_kl = tr(F_k Z F_l S^-1) is formed from
  the J x J Gram matrices L Z L^T, L Z R^T, ..., L S^-1 R^T at O(n^2 J + n J^2) cost instead of O(K n^3) (the
  LipSDP-Neuron LMI of :mod:`certify.engines.lipsdp` has one rank-2 coefficient per neuron); or
* a **dense block** (the coefficient stack (K, n, n) of that block), for small blocks of a general program.

Method: infeasible-start path following with the HKM search direction and Mehrotra's predictor-corrector, separate
step lengths for (x, S, s) and (Z, z), step-to-boundary fraction 0.9 + 0.09 min(alpha_p, alpha_d) (the SDPT3
choices). Stops when the relative gap, ||F0 + sum x_k F_k - S|| and ||c - A*(Z) - z|| (relative) are all below
``tol``: status OPTIMAL. The iterate is only a floating-point claim: a caller that certifies re-checks it (see
:mod:`certify.engines.lipsdp`). Never raises: numerical breakdown, the iteration limit (INACCURATE) and the time
limit (TIME_LIMIT) are statuses with a message.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph

from .base import SolveResult, SolveStatus
from .threads import blas_threads

_DENSE_BLOCK_MAX = 2.5e7  # largest K * n^2 of a dense block (float64 entries); larger blocks need low-rank data


class _Breakdown(ArithmeticError):
    """A factorisation failed inside the iteration (reported as a status, never raised to the caller)."""


# ---------------------------------------------------------------------------------------------- blocks
@dataclass(eq=False)
class _LowRankBlock:
    """One diagonal block: F0 (n, n) and F_k = sum_{j: owner_j = k} w_j (l_j r_j^T + r_j l_j^T) / 2.

    ``left``/``right`` (J, n), ``weight`` (J,), ``owner`` (J,) in [0, K)."""

    f0: np.ndarray
    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    owner: np.ndarray
    k: int

    def apply(self, dx: np.ndarray) -> np.ndarray:
        """sum_k dx_k F_k, (n, n)."""
        p = (self.left.T * (self.weight * dx[self.owner])) @ self.right
        return 0.5 * (p + p.T)

    def adjoint(self, x: np.ndarray) -> np.ndarray:
        """(tr(F_k X))_k for a symmetric X (n, n)."""
        vals = self.weight * np.einsum("jn,jn->j", self.left @ x, self.right)
        return np.bincount(self.owner, vals, minlength=self.k)

    def schur(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """M_kl = tr(F_k Z F_l Y) for symmetric Z, Y (n, n); (K, K)."""
        lz, rz, ly, ry = self.left @ z, self.right @ z, self.left @ y, self.right @ y
        zll, zlr, zrr = lz @ self.left.T, lz @ self.right.T, rz @ self.right.T
        yll, ylr, yrr = ly @ self.left.T, ly @ self.right.T, ry @ self.right.T
        terms = 0.25 * (zlr.T * ylr + zrr * yll + zll * yrr + zlr * ylr.T)
        terms *= np.outer(self.weight, self.weight)
        inc = sp.csr_matrix((np.ones(self.owner.size), (self.owner, np.arange(self.owner.size))),
                            shape=(self.k, self.owner.size))
        return np.asarray(inc @ (inc @ terms).T)  # inc terms inc^T (terms is symmetric)


@dataclass(eq=False)
class _DenseBlock:
    """One diagonal block: F0 (n, n) and the stack F (K, n, n)."""

    f0: np.ndarray
    stack: np.ndarray

    def apply(self, dx: np.ndarray) -> np.ndarray:
        return np.tensordot(dx, self.stack, axes=1)

    def adjoint(self, x: np.ndarray) -> np.ndarray:
        return self.stack.reshape(self.stack.shape[0], -1) @ x.reshape(-1)

    def schur(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        g = z @ self.stack @ y  # (K, n, n): Z F_l Y
        k = self.stack.shape[0]
        return self.stack.reshape(k, -1) @ g.transpose(0, 2, 1).reshape(k, -1).T


def _blocks(problem) -> list:
    """The diagonal blocks of the LMI (connected components of the union sparsity pattern)."""
    n, k = problem.size, problem.n_vars
    lr = problem.low_rank
    if lr is not None:
        pattern = sp.csr_matrix(problem.f0 != 0)
        sup_l, sup_r = sp.csr_matrix(lr.left != 0), sp.csr_matrix(lr.right != 0)
        pattern = pattern + (sup_l.T @ sup_r) + (sup_r.T @ sup_l)
    else:
        coef = problem.sparse_coef()
        rows = coef.nonzero()[0]
        pattern = sp.csr_matrix(problem.f0 != 0) + sp.csr_matrix(
            (np.ones(rows.size), (rows % n, rows // n)), shape=(n, n))
    pattern = pattern + sp.identity(n, format="csr")
    count, labels = csgraph.connected_components(pattern, directed=False)
    out = []
    for b in range(count):
        idx = np.flatnonzero(labels == b)
        f0 = problem.f0[np.ix_(idx, idx)]
        if lr is not None:
            left, right = lr.left[:, idx], lr.right[:, idx]
            use = np.flatnonzero(np.any(left != 0, axis=1) & np.any(right != 0, axis=1))
            out.append((idx, _LowRankBlock(f0, left[use], right[use], lr.weight[use], lr.owner[use], k)))
            continue
        if k * idx.size * idx.size > _DENSE_BLOCK_MAX:
            raise ValueError(f"a dense LMI block of order {idx.size} with {k} variables is too large for the 'ipm' "
                             "back-end without low-rank coefficients")
        full = (idx[:, None] + idx[None, :] * n).reshape(-1)  # column-major positions of the block's entries
        stack = np.asarray(problem.sparse_coef()[full, :].todense()).T.reshape(k, idx.size, idx.size)
        out.append((idx, _DenseBlock(f0, np.ascontiguousarray(stack))))
    return out


# ---------------------------------------------------------------------------------------------- linear algebra
def _chol(a: np.ndarray) -> np.ndarray:
    try:
        return sla.cholesky(a, lower=True, check_finite=False)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise _Breakdown("a matrix of the iteration lost positive definiteness") from exc


def _inverse(chol: np.ndarray) -> np.ndarray:
    inv, info = sla.lapack.dpotri(chol, lower=1)
    if info != 0:
        raise _Breakdown("inverting the LMI slack failed")
    return np.tril(inv) + np.tril(inv, -1).T


def _max_step(chol: np.ndarray, d: np.ndarray) -> float:
    """The largest alpha with X + alpha D >= 0, for X = chol chol^T (inf when D >= 0)."""
    a = sla.solve_triangular(chol, d, lower=True, check_finite=False)
    a = sla.solve_triangular(chol, a.T, lower=True, check_finite=False)
    lam = float(sla.eigh(0.5 * (a + a.T), eigvals_only=True, subset_by_index=[0, 0], check_finite=False)[0])
    return math.inf if lam >= 0 else -1.0 / lam


def _max_step_lp(v: np.ndarray, d: np.ndarray) -> float:
    neg = d < 0
    return float(np.min(-v[neg] / d[neg])) if neg.any() else math.inf


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


# ---------------------------------------------------------------------------------------------- the method
def solve_ipm(problem, tol: float = 1e-8, time_limit: float | None = None, max_iters: int | None = None
              ) -> SolveResult:
    """Solve a :class:`~certify.solvers.sdp.SemidefiniteProgram`; never raises (see the module docstring)."""
    start = time.perf_counter()

    def done(status, x=None, message=""):
        obj = None if x is None else float(problem.c @ x)
        return SolveResult(status=status, objective=obj, bound=None, x=x, seconds=time.perf_counter() - start,
                           backend="ipm", message=f"ipm: {message}")

    try:
        blocks = _blocks(problem)
    except (ValueError, MemoryError) as exc:
        return done(SolveStatus.ERROR, message=str(exc))
    try:
        return _iterate(problem, blocks, tol, time_limit, max_iters or 200, start, done)
    except (_Breakdown, np.linalg.LinAlgError, FloatingPointError, ValueError) as exc:
        return done(SolveStatus.ERROR, message=f"numerical breakdown: {exc}")


@dataclass
class _Point:
    """An iterate: x (K,), the LMI slack S and the dual matrix Z per block, LP slack s and multipliers z (bounded
    variables only)."""

    x: np.ndarray
    s: list
    z: list
    s_lp: np.ndarray
    z_lp: np.ndarray


@dataclass
class _Linearisation:
    """What one iteration factors once and both directions (predictor, corrector) use."""

    blocks: list
    bounded: np.ndarray
    point: _Point
    y: list  # S^-1 per block
    r_s: list  # F0 + A(x) - S per block
    r_lp: np.ndarray  # x_b - lower_b - s
    r_c: np.ndarray  # c - A*(Z) - E^T z
    schur: tuple  # Cholesky factor of M + E^T diag(z/s) E

    def direction(self, sigma_mu: float, corr: list | None = None, corr_lp: np.ndarray | None = None):
        """The HKM direction (dx, dS, dZ, ds, dz) for the target sigma_mu, with Mehrotra's second-order terms
        ``corr`` = dZ_a dS_a per block and ``corr_lp`` = dz_a ds_a in the corrector."""
        pt = self.point

        def target(i: int, d_s: np.ndarray) -> np.ndarray:
            z, y = pt.z[i], self.y[i]
            t = sigma_mu * y - z - z @ d_s @ y
            return t if corr is None else t - corr[i] @ y

        rhs = -self.r_c + sum(blk.adjoint(_sym(target(i, r)))
                              for i, ((_, blk), r) in enumerate(zip(self.blocks, self.r_s)))
        lp_target = sigma_mu - pt.z_lp * pt.s_lp - (0.0 if corr_lp is None else corr_lp)
        if self.bounded.size:
            rhs[self.bounded] += lp_target / pt.s_lp - (pt.z_lp / pt.s_lp) * self.r_lp
        dx = sla.cho_solve(self.schur, rhs, check_finite=False)
        d_s = [blk.apply(dx) + r for (_, blk), r in zip(self.blocks, self.r_s)]
        d_z = [_sym(target(i, ds)) for i, ds in enumerate(d_s)]
        ds_lp = dx[self.bounded] + self.r_lp
        dz_lp = (lp_target - pt.z_lp * ds_lp) / pt.s_lp
        return dx, d_s, d_z, ds_lp, dz_lp

    def steps(self, s_chols: list, z_chols: list, d_s, d_z, ds_lp, dz_lp) -> tuple[float, float]:
        """The largest steps keeping (S, s) and (Z, z) positive (inf when unbounded)."""
        pt = self.point
        ap = min([_max_step(ch, d) for ch, d in zip(s_chols, d_s)] + [_max_step_lp(pt.s_lp, ds_lp)])
        ad = min([_max_step(ch, d) for ch, d in zip(z_chols, d_z)] + [_max_step_lp(pt.z_lp, dz_lp)])
        return ap, ad


def _start(problem, blocks, bounded) -> _Point:
    """SDPT3's starting point heuristics, in the roles of this form (Z is the primal matrix, S the dual slack)."""
    k, n = problem.n_vars, problem.size
    norms = _coefficient_norms(blocks, k)
    zeta = max(10.0, math.sqrt(n), n * float(np.max((1 + np.abs(problem.c)) / (1 + norms))) if k else 10.0)
    eta = max(10.0, math.sqrt(n), float(norms.max()) if k else 0.0, float(np.linalg.norm(problem.f0)))
    return _Point(
        x=np.zeros(k),
        s=[eta * np.eye(idx.size) for idx, _ in blocks],
        z=[zeta * np.eye(idx.size) for idx, _ in blocks],
        s_lp=np.full(bounded.size, max(1.0, eta / 10)),
        z_lp=np.full(bounded.size, max(1.0, zeta / 10)),
    )


def _iterate(problem, blocks, tol, time_limit, max_iters, start, done):
    c, k = problem.c, problem.n_vars
    bounded = np.flatnonzero(np.isfinite(problem.lower))
    lower_b = problem.lower[bounded]
    dims = sum(idx.size for idx, _ in blocks) + bounded.size
    pt = _start(problem, blocks, bounded)
    norm_f0 = 1.0 + float(np.linalg.norm(problem.f0))
    norm_c = 1.0 + float(np.linalg.norm(c))
    best = (math.inf, pt.x.copy())
    for it in range(max_iters):
        if time_limit is not None and time.perf_counter() - start > time_limit:
            return done(SolveStatus.TIME_LIMIT, pt.x, f"time limit after {it} iterations")
        s_chols = [_chol(s) for s in pt.s]
        ys = [_inverse(ch) for ch in s_chols]
        r_s = [blk.f0 + blk.apply(pt.x) - s for (_, blk), s in zip(blocks, pt.s)]
        r_lp = pt.x[bounded] - lower_b - pt.s_lp
        r_c = c - sum(blk.adjoint(z) for (_, blk), z in zip(blocks, pt.z))
        r_c[bounded] -= pt.z_lp
        gap = sum(float(np.vdot(z, s)) for z, s in zip(pt.z, pt.s)) + float(pt.z_lp @ pt.s_lp)
        mu = gap / max(dims, 1)
        pobj = float(c @ pt.x)
        dobj = -sum(float(np.vdot(blk.f0, z)) for (_, blk), z in zip(blocks, pt.z)) + float(lower_b @ pt.z_lp)
        pinf = math.sqrt(sum(float(np.vdot(r, r)) for r in r_s) + float(r_lp @ r_lp)) / norm_f0
        dinf = float(np.linalg.norm(r_c)) / norm_c
        scale = 1.0 + abs(pobj) + abs(dobj)
        rgap = max(abs(pobj - dobj), gap) / scale
        worst = max(pinf, dinf, rgap)
        if not all(map(math.isfinite, (pobj, dobj, pinf, dinf, rgap))):
            return done(SolveStatus.ERROR, None, "non-finite iterate")
        if worst < best[0]:
            best = (worst, pt.x.copy())
        if worst <= tol:
            return done(SolveStatus.OPTIMAL, pt.x, f"converged in {it} iterations (gap {rgap:.1e}, primal "
                        f"{pinf:.1e}, dual {dinf:.1e})")
        if max(abs(pobj), abs(dobj)) > 1e14 * (norm_c + norm_f0):
            return done(SolveStatus.INACCURATE, pt.x, "iterates diverge (infeasible or unbounded?)")
        m = sum(blk.schur(z, y) for (_, blk), z, y in zip(blocks, pt.z, ys))
        if bounded.size:
            m[bounded, bounded] += pt.z_lp / pt.s_lp
        m = _sym(m)
        try:
            reg = 1e-15 * float(np.max(np.abs(np.diag(m)))) + 1e-300
            factor = sla.cho_factor(m + reg * np.eye(k), lower=True, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return done(SolveStatus.INACCURATE, best[1],
                        f"Schur complement singular after {it} iterations (residual {best[0]:.1e})")
        lin = _Linearisation(blocks, bounded, pt, ys, r_s, r_lp, r_c, factor)
        z_chols = [_chol(z) for z in pt.z]
        # predictor (sigma = 0), then Mehrotra's centring sigma = (mu_aff / mu)^3 with the second-order correction
        dx, d_s, d_z, ds_lp, dz_lp = lin.direction(0.0)
        ap, ad = lin.steps(s_chols, z_chols, d_s, d_z, ds_lp, dz_lp)
        ap, ad = min(1.0, ap), min(1.0, ad)
        gap_aff = sum(float(np.vdot(z + ad * dz, s + ap * ds)) for z, s, dz, ds in zip(pt.z, pt.s, d_z, d_s))
        gap_aff += float((pt.z_lp + ad * dz_lp) @ (pt.s_lp + ap * ds_lp))
        sigma = min(1.0, max(0.0, gap_aff / max(gap, 1e-300)) ** 3)
        corr = [dz @ ds for dz, ds in zip(d_z, d_s)]
        dx, d_s, d_z, ds_lp, dz_lp = lin.direction(sigma * mu, corr, dz_lp * ds_lp)
        ap, ad = lin.steps(s_chols, z_chols, d_s, d_z, ds_lp, dz_lp)
        frac = 0.9 + 0.09 * min(1.0, ap, ad)
        ap, ad = min(1.0, frac * ap), min(1.0, frac * ad)
        pt = _Point(
            x=pt.x + ap * dx,
            s=[s + ap * d for s, d in zip(pt.s, d_s)],
            z=[z + ad * d for z, d in zip(pt.z, d_z)],
            s_lp=pt.s_lp + ap * ds_lp,
            z_lp=pt.z_lp + ad * dz_lp,
        )
    return done(SolveStatus.INACCURATE, best[1], f"iteration limit {max_iters} reached (residual {best[0]:.1e})")


def _coefficient_norms(blocks, k: int) -> np.ndarray:
    """||F_k||_F over all blocks, (K,)."""
    sq = np.zeros(k)
    for _, blk in blocks:
        if isinstance(blk, _DenseBlock):
            sq += np.einsum("kij,kij->k", blk.stack, blk.stack)
        else:  # ||sym(l r^T)||_F^2 <= |l|^2 |r|^2, summed per owner: an estimate is enough for a starting point
            per = blk.weight ** 2 * np.sum(blk.left ** 2, 1) * np.sum(blk.right ** 2, 1)
            sq += np.bincount(blk.owner, per, minlength=k)
    return np.sqrt(sq)


@dataclass(frozen=True)
class InteriorPointSdpBackend:
    """The 'ipm' SDP back-end of the registry (:mod:`certify.solvers.registry`): :func:`solve_ipm`, pure
    numpy/scipy (always available)."""

    name: str = "ipm"
    supports_integer: bool = False

    def available(self) -> bool:
        return True

    def solve(self, problem, time_limit: float | None = None, tol: float = 1e-8,
              max_iters: int | None = None) -> SolveResult:
        with blas_threads(1):  # one BLAS thread for these dense O(N^3) steps (solvers/threads.py: measured)
            return solve_ipm(problem, tol=tol, time_limit=time_limit, max_iters=max_iters)
