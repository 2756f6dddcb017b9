"""A fast LP backend for the many small LPs of the region traversal: HiGHS through highspy, called directly.

:func:`solve_lp` takes a :class:`~certify.solvers.base.LinearProgram` without integer variables and returns a
:class:`~certify.solvers.base.SolveResult`. The model is built and its status mapped by
:mod:`certify.solvers.highs_quiet` (the one
HiGHS model builder and status table, shared with :mod:`certify.solvers.milp_highs`); ``kUnboundedOrInfeasible`` is
``ERROR`` there (it proves neither). The result is a floating-point claim: callers that prune or certify with it
re-check what they use (the traversal recomputes the slack of every returned point in float64).

:class:`LPSolver` keeps one ``Highs`` object for a run of many LPs (no module-level state). Besides ``solve`` it
has two lean entry points for hot loops, on plain arrays (no :class:`LinearProgram` to build):
:meth:`LPSolver.solve_arrays` (one LP) and :meth:`LPSolver.solve_objectives` (one polytope, several objectives:
the model is passed once and each further objective is a cost change, warm-started from the previous basis).
"""

from __future__ import annotations

import functools
import time

import numpy as np

from .base import LinearProgram, SolveResult, SolveStatus
from .highs_quiet import STATUS, new_highs, pass_arrays, pass_program, status_name, status_of

_STATUS = STATUS  # the shared table (solvers.highs_quiet.STATUS), re-exported for callers and tests


def _trouble_is_a_status(failure):
    """Decorate an LPSolver method so that an exception raised inside HiGHS becomes a failure answer
    (``failure(self, *args)``: an ERROR status, False, ...) and forgets the loaded LP: solver trouble is a status,
    never an exception (a caller then treats the LP as unsettled, which is sound)."""

    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception:  # noqa: BLE001 - HiGHS raising is reported as a status
                self._key = None
                return failure(self, *args)

        return guarded

    return wrap


def _error_pair(self, *args):
    return SolveStatus.ERROR, None


def _error_pairs(self, costs, *args):
    return [(SolveStatus.ERROR, None)] * int(np.shape(costs)[0])


def _refused(self, *args):
    return False


def _error_result(self, *args):
    return SolveResult(SolveStatus.ERROR, backend=self.name, message="HiGHS raised an exception")


class LPSolver:
    """One HiGHS instance reused for a sequence of LPs (silent, presolve off: the problems are tiny).

    ``tolerance`` sets HiGHS's primal and dual feasibility tolerances. No method raises on solver trouble: an
    exception inside HiGHS becomes an ERROR status (or False for ``load``/``add_rows``).
    """

    name = "highs-lp"

    def __init__(self, tolerance: float = 1e-9, time_limit: float | None = None) -> None:
        self._h = new_highs()
        self._key = None  # identity of the base LP kept by ``load`` (None: none)
        self._base_rows = 0
        self._h.setOptionValue("presolve", "off")
        self._h.setOptionValue("primal_feasibility_tolerance", float(tolerance))
        self._h.setOptionValue("dual_feasibility_tolerance", float(tolerance))
        if time_limit is not None:
            self._h.setOptionValue("time_limit", float(time_limit))

    def available(self) -> bool:
        return True  # the instance exists, so highspy imported

    @_trouble_is_a_status(_error_result)
    def solve(self, lp: LinearProgram) -> SolveResult:
        """Solve ``lp`` (continuous variables only); see the module docstring for the status table."""
        t0 = time.perf_counter()
        if lp.is_mip:
            return SolveResult(SolveStatus.ERROR, backend=self.name, message="LPSolver does not take integer variables")
        n = lp.n_vars
        h = self._h
        self._key = None
        h.clearSolver()
        if not pass_program(h, lp):
            return SolveResult(SolveStatus.ERROR, backend=self.name, message="HiGHS refused the model",
                               seconds=time.perf_counter() - t0)
        h.run()
        name = status_name(h)
        status = status_of(name)
        seconds = time.perf_counter() - t0
        message = h.modelStatusToString(h.getModelStatus())
        if status is not SolveStatus.OPTIMAL:
            return SolveResult(status, backend=self.name, message=message, seconds=seconds)
        x = np.array(h.getSolution().col_value, dtype=np.float64) if n else np.zeros(0)
        obj = float(lp.c @ x) if n else 0.0
        return SolveResult(status, objective=obj, bound=obj, x=x, seconds=seconds, backend=self.name,
                           message=message)

    @_trouble_is_a_status(_error_pair)
    def solve_arrays(self, c: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray, maximize: bool = False):
        """Lean path for hot loops: min/max c x s.t. a_ub x <= b_ub, lower <= x <= upper.

        Shapes c (n,), a_ub (m, n), b_ub (m,), lower/upper (n,). Returns (status, x): x (n,) when OPTIMAL, else
        None. Same model and status table as :meth:`solve`."""
        h = self._h
        self._key = None
        h.clearSolver()
        if not pass_arrays(h, c, a_ub, np.full(a_ub.shape[0], -np.inf), b_ub, lower, upper, maximize):
            return SolveStatus.ERROR, None
        h.run()
        status = status_of(status_name(h))
        if status is not SolveStatus.OPTIMAL:
            return status, None
        return status, np.array(h.getSolution().col_value, dtype=np.float64)

    @_trouble_is_a_status(_error_pairs)
    def solve_objectives(self, costs: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, lower: np.ndarray,
                         upper: np.ndarray) -> list:
        """Minimise each row of ``costs`` (k, n) over one polytope {a_ub x <= b_ub, lower <= x <= upper}.

        The model is passed once; each later objective is a cost change, warm-started from the previous optimal
        basis (HiGHS re-solves from it). Returns k pairs (status, x) as :meth:`solve_arrays` (maximise by
        negating a row). Stops at the first objective that does not end OPTIMAL (the rest get that status)."""
        if not self.load(costs[0], a_ub, b_ub, lower, upper):
            self._key = None
            return [(SolveStatus.ERROR, None)] * costs.shape[0]
        self._key = None
        return self.solve_loaded_objectives(costs)

    @_trouble_is_a_status(_error_pairs)
    def solve_loaded_objectives(self, costs: np.ndarray) -> list:
        """:meth:`solve_objectives` over the base LP loaded by :meth:`load` (and :meth:`add_rows`), warm-started
        from its last basis; the base stays loaded (with the last row of ``costs`` as its objective)."""
        return self._solve_each(costs, duals=False)

    @_trouble_is_a_status(_error_pairs)
    def solve_loaded_objectives_with_duals(self, costs: np.ndarray) -> list:
        """:meth:`solve_loaded_objectives`, each entry (status, (x (n,), row multipliers y (m,))) where y >= 0 are
        the multipliers of the rows a_ub x <= b_ub in  c x >= -y b_ub + min over the bounds of (c + y a_ub) x  (the
        solver's row duals, sign-normalised; callers re-derive the bound from y in float64, so a wrong or
        inaccurate y can only weaken it)."""
        return self._solve_each(costs, duals=True)

    def _solve_each(self, costs: np.ndarray, duals: bool) -> list:
        h = self._h
        n = costs.shape[1]
        idx = np.arange(n, dtype=np.int32)
        out = []
        for k in range(costs.shape[0]):
            h.changeColsCost(n, idx, np.ascontiguousarray(costs[k], dtype=np.float64))
            h.run()
            status = status_of(status_name(h))
            if status is not SolveStatus.OPTIMAL:
                return out + [(status, None)] * (costs.shape[0] - k)
            sol = h.getSolution()
            x = np.array(sol.col_value, dtype=np.float64)
            out.append((status, (x, np.maximum(-np.array(sol.row_dual, dtype=np.float64), 0.0)) if duals else x))
        return out

    @_trouble_is_a_status(_refused)
    def load(self, c: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, lower: np.ndarray, upper: np.ndarray,
             maximize: bool = False, key=None) -> bool:
        """Keep the base LP  min/max c x s.t. a_ub x <= b_ub, lower <= x <= upper  loaded for
        :meth:`solve_with_rows` (shapes as :meth:`solve_arrays`). ``key``: any object; :meth:`holds` tells
        whether this base (by identity) is still loaded (any other solve replaces it). Returns False when HiGHS
        refuses the model."""
        self._h.clearSolver()
        self._base_rows = a_ub.shape[0]
        self._key = key
        return pass_arrays(self._h, c, a_ub, np.full(a_ub.shape[0], -np.inf), b_ub, lower, upper, maximize)

    def holds(self, key) -> bool:
        """True when the base loaded by :meth:`load` with this ``key`` (identity) is still in place."""
        return key is not None and self._key is key

    @_trouble_is_a_status(_refused)
    def add_rows(self, a_extra: np.ndarray, b_extra: np.ndarray) -> bool:
        """Add rows a_extra x <= b_extra ((k, n), (k,)) to the loaded base LP for good (the basis is kept)."""
        if not self._add(a_extra, b_extra):
            return False
        self._base_rows += a_extra.shape[0]
        return True

    def _add(self, a_extra: np.ndarray, b_extra: np.ndarray) -> bool:
        import highspy

        k = a_extra.shape[0]
        if not k:
            return True
        rows, cols = np.nonzero(a_extra)
        start = np.searchsorted(rows, np.arange(k)).astype(np.int32)
        return self._h.addRows(k, np.full(k, -highspy.kHighsInf), np.ascontiguousarray(b_extra, dtype=np.float64),
                               int(rows.size), start, cols.astype(np.int32),
                               np.ascontiguousarray(a_extra[rows, cols], dtype=np.float64)
                               ) != highspy.HighsStatus.kError

    @_trouble_is_a_status(_error_pair)
    def solve_with_rows(self, a_extra: np.ndarray, b_extra: np.ndarray):
        """Solve the loaded base LP with the rows a_extra x <= b_extra added ((k, n), (k,)), then drop them again.

        Warm-started from the basis of the previous solve on the same base. Returns (status, x) as
        :meth:`solve_arrays`."""
        h = self._h
        k = a_extra.shape[0]
        if not self._add(a_extra, b_extra):
            self._key = None
            return SolveStatus.ERROR, None
        h.run()
        status = status_of(status_name(h))
        x = np.array(h.getSolution().col_value, dtype=np.float64) if status is SolveStatus.OPTIMAL else None
        if k:
            base = self._base_rows
            h.deleteRows(k, np.arange(base, base + k, dtype=np.int32))
        return status, x

def solve_lp(lp: LinearProgram, time_limit: float | None = None, tolerance: float = 1e-9) -> SolveResult:
    """Solve one LP with a fresh HiGHS instance (use :class:`LPSolver` for many)."""
    return LPSolver(tolerance=tolerance, time_limit=time_limit).solve(lp)
