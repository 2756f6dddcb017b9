"""LP/MILP backend: the CBC binary bundled with pulp (the default backend).

pulp writes the problem as MPS (coefficients to 13 significant digits), runs CBC and reads back a solution file in
which CBC prints values to about 8 significant digits. Consequences, relied on by callers that pad bounds: the
returned ``x`` is accurate to about 1e-8 relative, and the objective and bound (read from CBC's log, 8 decimals) to
about 1e-8 absolute. Everything CBC claims is a floating-point claim under ``feasibility_tolerance``.

Statuses: pulp reports a pair (status, sol_status); ``_STATUS`` is the one table that maps it. pulp labels a run
stopped on the time limit with an integer solution as (Optimal, IntegerFeasible): the table maps that pair to
TIME_LIMIT, never to OPTIMAL.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .base import LinearProgram, SolveResult, SolveStatus

# (pulp status, pulp sol_status) -> SolveStatus. pulp constants: status 1 Optimal, 0 Not Solved, -1 Infeasible,
# -2 Unbounded, -3 Undefined; sol_status 1 Optimal, 2 IntegerFeasible, 0 NoSolutionFound, -1 Infeasible,
# -2 Unbounded. Only a time limit is ever passed to CBC, so "stopped" means stopped on time.
_STATUS: dict[tuple[int, int], SolveStatus] = {
    (1, 1): SolveStatus.OPTIMAL,
    (1, 2): SolveStatus.TIME_LIMIT,  # "Stopped on time - objective value ...": a solution, no proof
    (0, 0): SolveStatus.TIME_LIMIT,  # "Stopped on time (no integer solution ...)"
    (-1, -1): SolveStatus.INFEASIBLE,
    (-1, 0): SolveStatus.INFEASIBLE,  # "Integer infeasible"
    (-2, -2): SolveStatus.UNBOUNDED,
    (-2, 0): SolveStatus.UNBOUNDED,
    (-3, 0): SolveStatus.ERROR,
    (-3, -1): SolveStatus.ERROR,
}

_BEST_POSSIBLE = re.compile(r"best possible\s+([-+0-9.eE]+)")
_OBJECTIVE = re.compile(r"^Objective value:\s+([-+0-9.eE]+)", re.MULTILINE)


def _cbc_cmd(**options):
    """pulp's command for its bundled CBC binary (pulp 3.3 flags it as deprecated in favour of a separately
    installed CBC; the bundled binary is the one this backend is about, so the warning is silenced)."""
    import pulp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(**options)


@dataclass(frozen=True)
class PulpCbcBackend:
    """CBC through pulp. ``feasibility_tolerance``: CBC's primal and integer tolerance; ``gap_abs``/``gap_rel``:
    the optimality gaps CBC may stop at (the returned bound includes them); ``threads``: CBC threads;
    ``parallel_safe``: solves may run at once from several threads (each is its own CBC process, with its own
    temporary files)."""

    name: str = "cbc"
    supports_integer: bool = True
    parallel_safe: bool = True
    feasibility_tolerance: float = 1e-9
    gap_abs: float = 1e-9
    gap_rel: float = 1e-9
    threads: int = 1

    def available(self) -> bool:
        try:
            import pulp  # noqa: F401 (is it installed?)
        except ImportError:
            return False
        try:
            return bool(_cbc_cmd(msg=False).available())
        except Exception:  # noqa: BLE001 - a broken install is "not available"
            return False

    def solve(self, problem: LinearProgram, time_limit: float) -> SolveResult:
        start = time.perf_counter()
        try:
            import pulp  # noqa: F401
        except ImportError as exc:
            return SolveResult(SolveStatus.NOT_INSTALLED, backend=self.name, message=f"pulp is not installed ({exc})")
        if not self.available():
            return SolveResult(SolveStatus.NOT_INSTALLED, backend=self.name, message="pulp's CBC binary cannot run")
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
    def _solve(self, problem: LinearProgram, time_limit: float, start: float) -> SolveResult:
        import pulp

        n = problem.n_vars
        sense = pulp.LpMaximize if problem.maximize else pulp.LpMinimize
        prob = pulp.LpProblem("certify", sense)
        make_var = getattr(prob, "add_variable", pulp.LpVariable)  # pulp >= 3.3 attaches variables to the model
        xs = []
        for i in range(n):
            lo = problem.lower[i]
            hi = problem.upper[i]
            xs.append(
                make_var(
                    f"v{i}",
                    lowBound=None if lo == -math.inf else float(lo),
                    upBound=None if hi == math.inf else float(hi),
                    cat=pulp.LpInteger if problem.integer[i] else pulp.LpContinuous,
                )
            )
        prob += pulp.LpAffineExpression([(xs[i], float(problem.c[i])) for i in np.flatnonzero(problem.c)])
        for kind, a, b in (("ub", problem.a_ub, problem.b_ub), ("eq", problem.a_eq, problem.b_eq)):
            for r in range(a.shape[0]):
                cols = np.flatnonzero(a[r])
                expr = pulp.LpAffineExpression([(xs[j], float(a[r, j])) for j in cols])
                op = pulp.LpConstraintLE if kind == "ub" else pulp.LpConstraintEQ
                prob += pulp.LpConstraint(expr, op, name=f"{kind}{r}", rhs=float(b[r]))
        fd, log_path = tempfile.mkstemp(prefix="certify_cbc_", suffix=".log")
        os.close(fd)
        try:
            tol = f"{self.feasibility_tolerance:.3e}"
            solver = _cbc_cmd(
                msg=False,
                timeLimit=max(float(time_limit), 0.01),
                gapRel=self.gap_rel,
                gapAbs=self.gap_abs,
                threads=self.threads,
                logPath=log_path,
                options=[f"primalT {tol}", f"integerT {tol}"],
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                prob.solve(solver)
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                log = fh.read()
        finally:
            try:
                os.remove(log_path)
            except OSError:
                pass
        seconds = time.perf_counter() - start
        key = (int(prob.status), int(prob.sol_status))
        status = _STATUS.get(key, SolveStatus.ERROR)
        message = "" if key in _STATUS else f"unrecognised pulp status pair {key}"
        x = None
        objective = None
        bound = None
        has_solution = status is SolveStatus.OPTIMAL or key == (1, 2)
        if has_solution:
            x = np.array([v.value() if v.value() is not None else 0.0 for v in xs], dtype=np.float64)
            m = _OBJECTIVE.search(log)
            objective = float(m.group(1)) if m else float(problem.c @ x)
        if status is SolveStatus.OPTIMAL:
            slack = self.gap_abs + self.gap_rel * abs(objective)
            bound = objective + slack if problem.maximize else objective - slack
        elif status is SolveStatus.TIME_LIMIT:
            bound = self._time_limit_bound(log, problem.maximize)
            message = message or "CBC stopped on the time limit"
        return SolveResult(status, objective, bound, x, seconds, self.name, message)

    @staticmethod
    def _time_limit_bound(log: str, maximize: bool) -> float | None:
        """CBC's dual bound after a time limit, from its log ("best possible v", in CBC's minimisation sense:
        pulp passes -max, so for a maximisation the bound is -v). None when the log has none."""
        found = _BEST_POSSIBLE.findall(log)
        if not found:
            return None
        try:
            v = float(found[-1])
        except ValueError:
            return None
        if not math.isfinite(v) or abs(v) >= 1e49:
            return None
        return -v if maximize else v
