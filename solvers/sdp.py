"""SDP backend: linear matrix inequalities through cvxpy, solved with SCS (default) or Clarabel (when installed).

Problem (solver-neutral, :class:`SemidefiniteProgram`)::

    minimise  c @ x   subject to   F(x) = F0 + sum_k x_k F_k  positive semidefinite (N x N),   x >= lower.

The matrices are given column-wise: ``coef`` is a sparse (N*N, K) matrix whose column k is ``F_k`` flattened in
column-major order; or, for LMIs whose coefficients have low rank, as :class:`LowRankCoefficients` (F_k a sum of
symmetrised outer products), which the 'ipm' back-end (:mod:`certify.solvers.sdp_ipm`) exploits and from which the
sparse form is built on demand for cvxpy. Every ``F_k`` and ``F0`` must be symmetric. The backend returns a
:class:`certify.solvers.base.SolveResult` whose status comes from the literal table ``_STATUS``; it never raises: a
missing
library, a solver exception or a bad status become a status and a message. A returned ``x`` is only a
floating-point claim (SCS in particular is a first-order method with tolerance ``tol``): callers that certify must
rebuild F(x) themselves in float64 and check its smallest eigenvalue (see :mod:`certify.engines.lipsdp`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .base import SolveResult, SolveStatus

BACKENDS = ("scs", "clarabel")

# cvxpy status string -> shared status. Anything not listed maps to ERROR.
_STATUS = {
    "optimal": SolveStatus.OPTIMAL,
    "optimal_inaccurate": SolveStatus.INACCURATE,
    "infeasible": SolveStatus.INFEASIBLE,
    "infeasible_inaccurate": SolveStatus.INACCURATE,
    "unbounded": SolveStatus.UNBOUNDED,
    "unbounded_inaccurate": SolveStatus.INACCURATE,
    "infeasible_or_unbounded": SolveStatus.ERROR,
    "user_limit": SolveStatus.TIME_LIMIT,
    "solver_error": SolveStatus.ERROR,
}

_CVXPY_NAME = {"scs": "SCS", "clarabel": "CLARABEL"}


@dataclass(frozen=True, eq=False)
class LowRankCoefficients:
    """Coefficient matrices as sums of symmetrised outer products::

        F_k = sum_{j : owner[j] == k} weight[j] * (left[j] right[j]^T + right[j] left[j]^T) / 2

    Shapes: left, right (J, N); weight (J,); owner (J,) integers in [0, K). A variable without a term has F_k = 0.
    """

    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    owner: np.ndarray

    def __post_init__(self) -> None:
        left = np.asarray(self.left, dtype=np.float64)
        right = np.asarray(self.right, dtype=np.float64)
        weight = np.asarray(self.weight, dtype=np.float64).reshape(-1)
        owner = np.asarray(self.owner, dtype=np.int64).reshape(-1)
        if left.ndim != 2 or right.shape != left.shape or weight.shape != (left.shape[0],) \
                or owner.shape != weight.shape:
            raise ValueError(f"low-rank SDP data disagree: left {left.shape}, right {right.shape}, weight "
                             f"{weight.shape}, owner {owner.shape}")
        for name, value in (("left", left), ("right", right), ("weight", weight)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "owner", owner)

    def sparse(self, n_vars: int) -> sp.csc_matrix:
        """The same matrices as a sparse (N*N, K) matrix, column k = F_k in column-major order."""
        n = self.left.shape[1]
        rows, cols, vals = [], [], []
        for j in range(self.weight.size):
            sl, sr = np.flatnonzero(self.left[j]), np.flatnonzero(self.right[j])
            if sl.size == 0 or sr.size == 0 or self.weight[j] == 0.0:
                continue
            half = 0.5 * self.weight[j] * np.outer(self.left[j, sl], self.right[j, sr])
            ii, kk = np.meshgrid(sl, sr, indexing="ij")
            rows += [(ii + kk * n).ravel(), (kk + ii * n).ravel()]  # (i, k) and (k, i), column-major
            vals += [half.ravel(), half.ravel()]
            cols.append(np.full(2 * half.size, self.owner[j], dtype=np.int64))
        if not rows:
            return sp.csc_matrix((n * n, n_vars))
        return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n * n, n_vars))


@dataclass(frozen=True, eq=False)
class SemidefiniteProgram:
    """minimise c @ x  s.t.  F0 + sum_k x_k F_k >= 0 (PSD),  x >= lower.

    Shapes: c (K,), f0 (N, N) symmetric, lower (K,) (entries may be -inf), and the F_k either as ``coef``
    scipy.sparse (N*N, K) (column k = F_k in column-major order, F_k symmetric) or as ``low_rank``
    (:class:`LowRankCoefficients`); :meth:`sparse_coef` gives the sparse form in both cases.
    """

    c: np.ndarray
    f0: np.ndarray
    coef: sp.spmatrix | None = None
    lower: np.ndarray | None = None
    low_rank: LowRankCoefficients | None = None

    def __post_init__(self) -> None:
        c = np.asarray(self.c, dtype=np.float64).reshape(-1)
        f0 = np.asarray(self.f0, dtype=np.float64)
        if self.lower is None or (self.coef is None) == (self.low_rank is None):
            raise ValueError("an SDP needs lower and exactly one of coef and low_rank")
        coef = None if self.coef is None else sp.csc_matrix(self.coef, dtype=np.float64)
        lower = np.asarray(self.lower, dtype=np.float64).reshape(-1)
        n = f0.shape[0]
        coef_ok = coef.shape == (n * n, c.size) if coef is not None else (
            self.low_rank.left.shape[1] == n and (self.low_rank.owner.size == 0 or (
                0 <= self.low_rank.owner.min() and self.low_rank.owner.max() < c.size)))
        if f0.shape != (n, n) or not coef_ok or lower.shape != c.shape:
            shape = coef.shape if coef is not None else self.low_rank.left.shape
            raise ValueError(f"SDP shapes disagree: f0 {f0.shape}, coefficients {shape}, c {c.shape}, "
                             f"lower {lower.shape}")
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "f0", f0)
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "_sparse", coef)

    def sparse_coef(self) -> sp.csc_matrix:
        """The coefficient matrices as a sparse (N*N, K) matrix (built once from ``low_rank`` when needed)."""
        if self._sparse is None:
            object.__setattr__(self, "_sparse", self.low_rank.sparse(self.n_vars))
        return self._sparse

    @property
    def size(self) -> int:
        """N, the order of the matrix inequality."""
        return self.f0.shape[0]

    @property
    def n_vars(self) -> int:
        return self.c.size


@dataclass(frozen=True)
class CvxpySdpBackend:
    """An SDP back-end of the registry (:mod:`certify.solvers.registry`): ``name`` 'scs' or 'clarabel' through cvxpy.

    ``solve(problem, time_limit, tol=..., max_iters=...)`` is :func:`solve_sdp`; it never raises."""

    name: str
    supports_integer: bool = False

    def available(self) -> bool:
        return self.name in installed_backends()

    def solve(self, problem: SemidefiniteProgram, time_limit: float | None = None, tol: float = 1e-8,
              max_iters: int | None = None) -> SolveResult:
        return solve_sdp(problem, backend=self.name, tol=tol, time_limit=time_limit, max_iters=max_iters)


def installed_backends() -> tuple[str, ...]:
    """The backends of :data:`BACKENDS` whose solver cvxpy can call on this machine."""
    try:
        import cvxpy as cp
    except Exception:  # noqa: BLE001 - a broken install is "not installed", never an exception
        return ()
    have = set(cp.installed_solvers())
    return tuple(b for b in BACKENDS if _CVXPY_NAME[b] in have)


def _solver_options(backend: str, tol: float, time_limit: float | None, max_iters: int | None) -> dict:
    if backend == "scs":
        opts = {"eps_abs": tol, "eps_rel": tol, "max_iters": max_iters or 200_000}
        if time_limit is not None:
            opts["time_limit_secs"] = float(time_limit)
        return opts
    opts = {"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol}
    if max_iters is not None:
        opts["max_iter"] = int(max_iters)
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    return opts


def solve_sdp(
    problem: SemidefiniteProgram,
    backend: str = "scs",
    tol: float = 1e-8,
    time_limit: float | None = None,
    max_iters: int | None = None,
) -> SolveResult:
    """Solve ``problem`` with ``backend`` ('scs' or 'clarabel'); never raises.

    ``tol``: the solver's feasibility and gap tolerances; ``time_limit`` seconds; ``max_iters`` iterations.
    Returns a SolveResult with ``x`` (K,) and ``objective`` when the solver returned a point (whatever its status);
    ``seconds`` counts model building and solving.
    """
    start = time.perf_counter()

    def fail(status: SolveStatus, message: str) -> SolveResult:
        return SolveResult(status=status, seconds=time.perf_counter() - start, backend=backend, message=message)

    if backend not in BACKENDS:
        return fail(SolveStatus.NOT_INSTALLED, f"unknown SDP backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend not in installed_backends():
        return fail(SolveStatus.NOT_INSTALLED, f"SDP backend {backend!r} is not installed (pip install {backend})")
    try:
        import cvxpy as cp

        n = problem.size
        x = cp.Variable(problem.n_vars)
        lmi = cp.reshape(problem.sparse_coef() @ x, (n, n), order="F") + problem.f0
        constraints = [lmi >> 0]
        finite = np.isfinite(problem.lower)
        if finite.any():
            idx = np.flatnonzero(finite)
            constraints.append(x[idx] >= problem.lower[idx])
        prob = cp.Problem(cp.Minimize(problem.c @ x), constraints)
        with warnings.catch_warnings():  # cvxpy warns on inaccurate solutions; the status says it already
            warnings.simplefilter("ignore", UserWarning)
            prob.solve(solver=_CVXPY_NAME[backend], **_solver_options(backend, tol, time_limit, max_iters))
    except Exception as exc:  # noqa: BLE001 - solver trouble is a status, never an exception (DESIGN.md 3)
        return fail(SolveStatus.ERROR, f"{backend} failed: {type(exc).__name__}: {exc}")
    status = _STATUS.get(str(prob.status), SolveStatus.ERROR)
    value = x.value
    xs = None if value is None else np.array(value, dtype=np.float64).reshape(-1)
    objective = None if xs is None else float(problem.c @ xs)
    return SolveResult(
        status=status,
        objective=objective,
        bound=None,
        x=xs,
        seconds=time.perf_counter() - start,
        backend=backend,
        message=f"{backend}: {prob.status}",
    )
