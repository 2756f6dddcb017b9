"""The one place that creates HiGHS instances, builds HiGHS models and maps HiGHS statuses.

Used by :mod:`certify.solvers.lp` (many small LPs of the region traversal) and :mod:`certify.solvers.milp_highs` (the
MILP
backend), so both read the same model and the same status table.

* :func:`new_highs`: a ``highspy.Highs()`` that does not print its banner on the process's stdout (which carries
  certify's table/JSON). highspy prints the banner from C++ when the first ``Highs()`` of a process is built;
  Python-level redirection cannot catch it, so the file descriptor is pointed at /dev/null for that construction.
  The ``threads`` option is never set: HiGHS's scheduler is process-global, and a ``threads`` value that differs
  from the first instance's makes every later run fail (model status "Not Set").
* :func:`pass_program`: a :class:`~certify.solvers.base.LinearProgram` (LP or MILP) handed to a Highs instance as one
  column-wise sparse matrix with row bounds (``<=`` rows get -inf lower bounds, equality rows equal bounds),
  objective sense and integrality.
* ``STATUS``: the one literal table from HiGHS model status names to :class:`~certify.solvers.base.SolveStatus`;
  :func:`status_of` applies it (anything not in it is ``ERROR``). ``kUnboundedOrInfeasible`` proves neither and
  maps to ``ERROR``; a caller that can settle it (bounded variables, a second run without presolve) does so
  before mapping. Every status is a floating-point claim under HiGHS's feasibility tolerances.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .base import LinearProgram, SolveStatus

# HighsModelStatus name -> SolveStatus (names rather than enum objects so that the table needs no import).
STATUS: dict[str, SolveStatus] = {
    "kOptimal": SolveStatus.OPTIMAL,
    "kModelEmpty": SolveStatus.OPTIMAL,  # no rows and no columns: the empty problem, objective 0
    "kInfeasible": SolveStatus.INFEASIBLE,
    "kUnbounded": SolveStatus.UNBOUNDED,
    "kUnboundedOrInfeasible": SolveStatus.ERROR,  # proves neither (callers may settle it first)
    "kTimeLimit": SolveStatus.TIME_LIMIT,
    "kIterationLimit": SolveStatus.TIME_LIMIT,
    "kSolutionLimit": SolveStatus.TIME_LIMIT,
    "kInterrupt": SolveStatus.TIME_LIMIT,
    "kHighsInterrupt": SolveStatus.TIME_LIMIT,
    "kObjectiveBound": SolveStatus.INACCURATE,
    "kObjectiveTarget": SolveStatus.INACCURATE,
    "kUnknown": SolveStatus.INACCURATE,
    "kMemoryLimit": SolveStatus.ERROR,
    "kNotset": SolveStatus.ERROR,
    "kLoadError": SolveStatus.ERROR,
    "kModelError": SolveStatus.ERROR,
    "kPresolveError": SolveStatus.ERROR,
    "kSolveError": SolveStatus.ERROR,
    "kPostsolveError": SolveStatus.ERROR,
}


def new_highs():
    """``highspy.Highs()`` with the banner suppressed and ``output_flag`` off."""
    import highspy

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (e.g. captured): nothing to protect
        h = highspy.Highs()
    else:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
    h.setOptionValue("output_flag", False)
    return h


def status_name(h) -> str:
    """The name of the instance's model status (e.g. ``"kOptimal"``)."""
    return h.getModelStatus().name


def status_of(name: str) -> SolveStatus:
    """``STATUS[name]``, or ``ERROR`` for a status the table does not know."""
    return STATUS.get(name, SolveStatus.ERROR)


def _csc(a: np.ndarray):
    """Column-wise sparse arrays (start, index, value) of a dense (m, n) matrix, explicit zeros dropped."""
    at = np.ascontiguousarray(a.T, dtype=np.float64)
    cols, rows = np.nonzero(at)
    start = np.zeros(a.shape[1] + 1, dtype=np.int32)
    np.cumsum(np.bincount(cols, minlength=a.shape[1]), out=start[1:])
    return start, rows.astype(np.int32), at[cols, rows]


def pass_arrays(h, c: np.ndarray, a: np.ndarray, row_lower: np.ndarray, row_upper: np.ndarray,
                lower: np.ndarray, upper: np.ndarray, maximize: bool = False,
                integer: np.ndarray | None = None) -> bool:
    """Load  min/max c x  s.t.  row_lower <= a x <= row_upper, lower <= x <= upper  into ``h``.

    Shapes: c (n,), a (m, n) dense, row bounds (m,), variable bounds (n,); +-inf allowed anywhere a bound is;
    ``integer`` (n,) bool marks integer variables (None: an LP). Returns False when HiGHS refuses the model.
    Replaces any model ``h`` held (its basis is dropped).
    """
    import highspy

    inf = highspy.kHighsInf
    n, m = c.shape[0], a.shape[0]
    start, index, value = _csc(a)
    sense = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    integrality = (np.zeros(n, dtype=np.int32) if integer is None
                   else np.where(integer, highspy.HighsVarType.kInteger.value, 0).astype(np.int32))
    status = h.passModel(
        int(n), int(m), int(value.size), int(highspy.MatrixFormat.kColwise.value), int(sense.value), 0.0,
        np.ascontiguousarray(c, dtype=np.float64),
        np.clip(lower, -inf, inf).astype(np.float64), np.clip(upper, -inf, inf).astype(np.float64),
        np.clip(row_lower, -inf, inf).astype(np.float64), np.clip(row_upper, -inf, inf).astype(np.float64),
        start, index, value, integrality)
    return status != highspy.HighsStatus.kError


def pass_program(h, lp: LinearProgram) -> bool:
    """Load a :class:`LinearProgram` (``<=`` rows, equality rows, bounds, sense, integrality) into ``h``.

    Returns False when HiGHS refuses the model."""
    a = np.vstack([lp.a_ub, lp.a_eq]) if lp.a_eq.shape[0] else lp.a_ub
    row_lo = np.concatenate([np.full(lp.a_ub.shape[0], -np.inf), lp.b_eq])
    row_hi = np.concatenate([lp.b_ub, lp.b_eq])
    return pass_arrays(h, lp.c, a, row_lo, row_hi, lp.lower, lp.upper, lp.maximize,
                       lp.integer if lp.is_mip else None)
