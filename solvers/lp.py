"""A fast LP backend for the many small LPs of the region traversal: HiGHS through highspy, called directly.

:func:`solve_lp` takes a :class:`~solvers.base.LinearProgram` without integer variables and returns a
:class:`~solvers.base.SolveResult`. HiGHS's native model statuses go through the one literal table
``_STATUS``; anything not in it is ``ERROR``. ``kUnboundedOrInfeasible`` is deliberately ``ERROR`` (it proves
neither). The result is a floating-point claim: callers that prune or certify with it re-check what they use
(the traversal recomputes the slack of every returned point in float64).

:class:`LPSolver` keeps one ``Highs`` object for a run of many LPs (no module-level state); its cost per LP is
about a tenth of a millisecond for the problems of the traversal (tens of variables and rows).
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from .base import LinearProgram, SolveResult, SolveStatus
from .highs_quiet import new_highs

_MS = highspy.HighsModelStatus
_STATUS = {
    _MS.kOptimal: SolveStatus.OPTIMAL,
    _MS.kInfeasible: SolveStatus.INFEASIBLE,
    _MS.kUnbounded: SolveStatus.UNBOUNDED,
    _MS.kUnboundedOrInfeasible: SolveStatus.ERROR,
    _MS.kTimeLimit: SolveStatus.TIME_LIMIT,
    _MS.kIterationLimit: SolveStatus.TIME_LIMIT,
    _MS.kInterrupt: SolveStatus.TIME_LIMIT,
    _MS.kModelEmpty: SolveStatus.OPTIMAL,  # no rows and no columns: the empty problem, objective 0
    _MS.kNotset: SolveStatus.ERROR,
    _MS.kLoadError: SolveStatus.ERROR,
    _MS.kModelError: SolveStatus.ERROR,
    _MS.kPresolveError: SolveStatus.ERROR,
    _MS.kSolveError: SolveStatus.ERROR,
    _MS.kPostsolveError: SolveStatus.ERROR,
    _MS.kUnknown: SolveStatus.ERROR,
    _MS.kMemoryLimit: SolveStatus.ERROR,
}

_INF = highspy.kHighsInf


def _csc(a: np.ndarray):
    """Column-wise sparse arrays (start, index, value) of a dense (m, n) matrix, explicit zeros dropped."""
    at = np.ascontiguousarray(a.T)
    cols, rows = np.nonzero(at)
    start = np.zeros(a.shape[1] + 1, dtype=np.int32)
    np.cumsum(np.bincount(cols, minlength=a.shape[1]), out=start[1:])
    return start, rows.astype(np.int32), at[cols, rows]


class LPSolver:
    """One HiGHS instance reused for a sequence of LPs (silent, presolve off: the problems are tiny).

    ``tolerance`` sets HiGHS's primal and dual feasibility tolerances.
    """

    name = "highs-lp"

    def __init__(self, tolerance: float = 1e-9, time_limit: float | None = None) -> None:
        self._h = new_highs()
        self._h.setOptionValue("presolve", "off")
        self._h.setOptionValue("primal_feasibility_tolerance", float(tolerance))
        self._h.setOptionValue("dual_feasibility_tolerance", float(tolerance))
        if time_limit is not None:
            self._h.setOptionValue("time_limit", float(time_limit))

    def solve(self, lp: LinearProgram) -> SolveResult:
        """Solve ``lp`` (continuous variables only); see the module docstring for the status table."""
        t0 = time.perf_counter()
        if lp.is_mip:
            return SolveResult(SolveStatus.ERROR, backend=self.name, message="LPSolver does not take integer variables")
        n = lp.n_vars
        a = np.vstack([lp.a_ub, lp.a_eq]) if lp.a_eq.shape[0] else lp.a_ub
        row_lo = np.concatenate([np.full(lp.a_ub.shape[0], -_INF), lp.b_eq])
        row_hi = np.concatenate([lp.b_ub, lp.b_eq])
        model = highspy.HighsLp()
        model.num_col_ = n
        model.num_row_ = a.shape[0]
        sign = -1.0 if lp.maximize else 1.0
        model.col_cost_ = sign * lp.c
        model.col_lower_ = np.where(np.isfinite(lp.lower), lp.lower, -_INF)
        model.col_upper_ = np.where(np.isfinite(lp.upper), lp.upper, _INF)
        model.row_lower_ = row_lo
        model.row_upper_ = row_hi
        start, index, value = _csc(a)
        model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        model.a_matrix_.start_ = start
        model.a_matrix_.index_ = index
        model.a_matrix_.value_ = value
        model.a_matrix_.num_col_ = n
        model.a_matrix_.num_row_ = a.shape[0]
        h = self._h
        h.clearSolver()
        if h.passModel(model) == highspy.HighsStatus.kError:
            return SolveResult(SolveStatus.ERROR, backend=self.name, message="HiGHS refused the model",
                               seconds=time.perf_counter() - t0)
        h.run()
        native = h.getModelStatus()
        status = _STATUS.get(native, SolveStatus.ERROR)
        seconds = time.perf_counter() - t0
        if status is not SolveStatus.OPTIMAL:
            return SolveResult(status, backend=self.name, message=h.modelStatusToString(native), seconds=seconds)
        x = np.array(h.getSolution().col_value, dtype=np.float64) if n else np.zeros(0)
        obj = float(lp.c @ x) if n else 0.0
        return SolveResult(status, objective=obj, bound=obj, x=x, seconds=seconds, backend=self.name,
                           message=h.modelStatusToString(native))


def solve_lp(lp: LinearProgram, time_limit: float | None = None, tolerance: float = 1e-9) -> SolveResult:
    """Solve one LP with a fresh HiGHS instance (use :class:`LPSolver` for many)."""
    return LPSolver(tolerance=tolerance, time_limit=time_limit).solve(lp)
