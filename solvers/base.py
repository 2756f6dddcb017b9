"""Solver-neutral problem and result types shared by every backend.

A backend turns a :class:`LinearProgram` (LP, or MILP when ``integer`` marks variables) into a
:class:`SolveResult`. Its native statuses go through one literal table to :class:`SolveStatus`. Results are only
floating-point claims: callers that certify must re-check them independently (DESIGN.md section 3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class SolveStatus(enum.Enum):
    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"  # stopped early; ``bound`` may still hold a valid dual bound
    INACCURATE = "inaccurate"  # the solver finished but does not vouch for its accuracy
    ERROR = "error"
    NOT_INSTALLED = "not_installed"

    @property
    def is_optimal(self) -> bool:
        return self is SolveStatus.OPTIMAL


@dataclass(frozen=True, eq=False)
class LinearProgram:
    """minimise (or maximise) c @ x  s.t.  a_ub @ x <= b_ub,  a_eq @ x == b_eq,  lower <= x <= upper.

    Shapes: c (n,), a_ub (m, n), b_ub (m,), a_eq (k, n), b_eq (k,), lower/upper (n,) (may hold +-inf),
    integer (n,) bool (True marks an integer variable; with lower 0 and upper 1 a binary).
    """

    c: np.ndarray
    a_ub: np.ndarray
    b_ub: np.ndarray
    a_eq: np.ndarray
    b_eq: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray = field(default=None)
    maximize: bool = False
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = np.asarray(self.c).shape[0]

        def arr(a, shape):
            out = np.asarray(a, dtype=np.float64)
            return out.reshape(shape)

        object.__setattr__(self, "c", arr(self.c, (n,)))
        object.__setattr__(self, "a_ub", arr(self.a_ub, (-1, n)) if np.size(self.a_ub) else np.zeros((0, n)))
        object.__setattr__(self, "b_ub", arr(self.b_ub, (-1,)) if np.size(self.b_ub) else np.zeros(0))
        object.__setattr__(self, "a_eq", arr(self.a_eq, (-1, n)) if np.size(self.a_eq) else np.zeros((0, n)))
        object.__setattr__(self, "b_eq", arr(self.b_eq, (-1,)) if np.size(self.b_eq) else np.zeros(0))
        object.__setattr__(self, "lower", arr(self.lower, (n,)))
        object.__setattr__(self, "upper", arr(self.upper, (n,)))
        integer = np.zeros(n, dtype=bool) if self.integer is None else np.asarray(self.integer, dtype=bool).reshape(n)
        object.__setattr__(self, "integer", integer)
        if self.a_ub.shape[0] != self.b_ub.shape[0] or self.a_eq.shape[0] != self.b_eq.shape[0]:
            raise ValueError("constraint matrices and right-hand sides disagree in length")

    @property
    def n_vars(self) -> int:
        return self.c.shape[0]

    @property
    def is_mip(self) -> bool:
        return bool(self.integer.any())


@dataclass(frozen=True, eq=False)
class SolveResult:
    """What a backend returns.

    ``objective``: value of the returned solution (None without one). ``bound``: the solver's proven bound on
    the optimum in the problem's own sense (an upper bound when maximising; for an LP at optimality equal to
    ``objective`` up to tolerances). ``x``: solution (n,) or None.
    """

    status: SolveStatus
    objective: float | None = None
    bound: float | None = None
    x: np.ndarray | None = None
    seconds: float = 0.0
    backend: str = ""
    message: str = ""
