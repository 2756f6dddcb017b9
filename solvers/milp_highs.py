"""LP/MILP backend: HiGHS through highspy (the second backend).

The model is built and the status mapped by :mod:`certify.solvers.highs_quiet` (the one HiGHS model builder and status
table, shared with :mod:`certify.solvers.lp`). HiGHS returns values in full double precision; ``bound`` is HiGHS's MIP
dual bound (for an LP at optimality, the optimal objective). All of it is a floating-point claim under
``feasibility_tolerance``.

"Unbounded or infeasible" is settled without a guess: when every variable has finite bounds the problem cannot be
unbounded, so it is infeasible; otherwise HiGHS runs again with presolve off, which tells the two apart.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .base import LinearProgram, SolveResult, SolveStatus
from .highs_quiet import STATUS, new_highs, pass_program, status_name, status_of


@dataclass(frozen=True)
class HighsBackend:
    """HiGHS via highspy. ``feasibility_tolerance``: primal and MIP feasibility tolerance; ``gap_abs``/``gap_rel``:
    MIP gaps (the returned bound is HiGHS's dual bound, so gaps only decide when it stops).

    The thread count is left to HiGHS: its scheduler is global to the process, and a ``threads`` option that
    differs from the first Highs object's makes every later run fail (model status "Not Set")."""

    name: str = "highs"
    supports_integer: bool = True
    feasibility_tolerance: float = 1e-9
    gap_abs: float = 1e-9
    gap_rel: float = 1e-9

    def available(self) -> bool:
        try:
            import highspy  # noqa: F401
        except ImportError:
            return False
        return True

    def solve(self, problem: LinearProgram, time_limit: float) -> SolveResult:
        start = time.perf_counter()
        try:
            import highspy  # noqa: F401
        except ImportError as exc:
            return SolveResult(SolveStatus.NOT_INSTALLED, backend=self.name,
                               message=f"highspy is not installed ({exc})")
        try:
            return self._solve(problem, time_limit, start)
        except Exception as exc:  # noqa: BLE001 - solver trouble is a status, never an exception
            return SolveResult(
                SolveStatus.ERROR,
                seconds=time.perf_counter() - start,
                backend=self.name,
                message=f"{type(exc).__name__}: {exc}",
            )

    # ----------------------------------------------------------------- internals
    def _run(self, problem: LinearProgram, time_limit: float, presolve: bool):
        h = new_highs()
        for key, value in (
            ("time_limit", max(float(time_limit), 0.01)),
            ("primal_feasibility_tolerance", self.feasibility_tolerance),
            ("mip_feasibility_tolerance", self.feasibility_tolerance),
            ("mip_rel_gap", self.gap_rel),
            ("mip_abs_gap", self.gap_abs),
            ("presolve", "on" if presolve else "off"),
        ):
            h.setOptionValue(key, value)
        if not pass_program(h, problem):
            raise RuntimeError("HiGHS rejected the model (passModel returned an error)")
        status = h.run()
        if status.name == "kError" and h.getModelStatus().name == "kNotset":
            raise RuntimeError("HiGHS run() returned an error before solving")
        return h

    def _solve(self, problem: LinearProgram, time_limit: float, start: float) -> SolveResult:
        h = self._run(problem, time_limit, presolve=True)
        name = status_name(h)
        if name == "kUnboundedOrInfeasible":
            if np.all(np.isfinite(problem.lower)) and np.all(np.isfinite(problem.upper)):
                name = "kInfeasible"  # bounded variables: the problem cannot be unbounded
            else:
                remaining = time_limit - (time.perf_counter() - start)
                h = self._run(problem, max(remaining, 0.01), presolve=False)
                name = status_name(h)
        seconds = time.perf_counter() - start
        status = status_of(name)
        message = "" if name in STATUS else f"unrecognised HiGHS status {name}"
        if status is not SolveStatus.OPTIMAL and not message:
            message = f"HiGHS: {h.modelStatusToString(h.getModelStatus())}"
        info = h.getInfo()
        x = objective = bound = None
        if status in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT) and int(info.primal_solution_status) == 2:
            x = np.array(h.getSolution().col_value, dtype=np.float64)
            objective = float(info.objective_function_value)
        if problem.is_mip and status in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT):
            b = float(info.mip_dual_bound)
            bound = b if math.isfinite(b) else None
        elif status is SolveStatus.OPTIMAL:
            bound = objective
        return SolveResult(status, objective, bound, x, seconds, self.name, message)
