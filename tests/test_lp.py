"""The HiGHS LP backend on small problems with known optima (one shared table), statuses and re-use."""


import numpy as np
import pytest

from certify.solvers.base import LinearProgram, SolveStatus
from certify.solvers.lp import LPSolver, solve_lp


def _lp(c, a_ub=(), b_ub=(), a_eq=(), b_eq=(), lower=None, upper=None, maximize=False, integer=None):
    n = len(c)
    return LinearProgram(
        c=np.array(c, float), a_ub=np.array(a_ub, float), b_ub=np.array(b_ub, float), a_eq=np.array(a_eq, float),
        b_eq=np.array(b_eq, float), lower=np.full(n, -np.inf) if lower is None else np.array(lower, float),
        upper=np.full(n, np.inf) if upper is None else np.array(upper, float), maximize=maximize, integer=integer)


# (problem, status, optimum): hand-solved
PROBLEMS = [
    # max x + y s.t. x + 2y <= 4, 3x + y <= 6, x, y >= 0  -> vertex (8/5, 6/5), value 14/5
    (_lp([1, 1], [[1, 2], [3, 1]], [4, 6], lower=[0, 0], maximize=True), SolveStatus.OPTIMAL, 14 / 5),
    # min x - y s.t. x + y == 1, 0 <= x, y <= 1 -> x = 0, y = 1, value -1
    (_lp([1, -1], a_eq=[[1, 1]], b_eq=[1], lower=[0, 0], upper=[1, 1]), SolveStatus.OPTIMAL, -1.0),
    # x <= -1 and x >= 0: infeasible
    (_lp([1], [[1]], [-1], lower=[0]), SolveStatus.INFEASIBLE, None),
    # min -x, x >= 0 unbounded above
    (_lp([-1], lower=[0]), SolveStatus.UNBOUNDED, None),
    # Chebyshev centre of the unit square: max t s.t. box rows -> t = 1/2 at (1/2, 1/2)
    (_lp([0, 0, 1], [[1, 0, 1], [-1, 0, 1], [0, 1, 1], [0, -1, 1]], [1, 0, 1, 0], lower=[0, 0, -np.inf],
         upper=[1, 1, np.inf], maximize=True), SolveStatus.OPTIMAL, 0.5),
]


@pytest.mark.parametrize("problem,status,optimum", PROBLEMS)
def test_known_problems(problem, status, optimum):
    res = solve_lp(problem)
    assert res.status is status
    if optimum is not None:
        assert res.objective == pytest.approx(optimum, abs=1e-9)
        assert res.bound == pytest.approx(optimum, abs=1e-9)
        x = res.x
        assert np.all(problem.a_ub @ x <= problem.b_ub + 1e-9)
        assert np.all(x >= problem.lower - 1e-9) and np.all(x <= problem.upper + 1e-9)
        assert problem.c @ x == pytest.approx(optimum, abs=1e-9)
    else:
        assert res.x is None and res.objective is None


def test_reused_solver_matches_fresh_solves():
    solver = LPSolver()
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(size=(12, 4))
        b = rng.uniform(0.5, 1.5, size=12)
        c = rng.normal(size=4)
        lp = _lp(c, a, b, lower=-np.ones(4), upper=np.ones(4), maximize=bool(rng.integers(2)))
        r1, r2 = solver.solve(lp), solve_lp(lp)
        assert r1.status is r2.status is SolveStatus.OPTIMAL
        assert r1.objective == pytest.approx(r2.objective, abs=1e-9)


def test_integer_variables_are_refused_not_relaxed():
    lp = _lp([1.0], lower=[0], upper=[1], integer=[True])
    res = solve_lp(lp)
    assert res.status is SolveStatus.ERROR and "integer" in res.message


def test_status_table_never_maps_an_ambiguous_status_to_a_proof():
    from certify.solvers import highs_quiet, milp_highs
    from certify.solvers import lp as lp_mod

    ms = highs_quiet.STATUS
    assert lp_mod._STATUS is ms  # one table, shared by the LP and MILP paths
    assert milp_highs.STATUS is ms
    assert ms["kUnboundedOrInfeasible"] is SolveStatus.ERROR
    for native, status in ms.items():
        if status is SolveStatus.OPTIMAL:
            assert native in ("kOptimal", "kModelEmpty")
    assert highs_quiet.status_of("kSomethingNew") is SolveStatus.ERROR


def test_every_highs_model_status_is_in_the_table():
    import highspy

    from certify.solvers.highs_quiet import STATUS

    names = [n for n in dir(highspy.HighsModelStatus) if n.startswith("k") and n != "kMin" and n != "kMax"]
    assert set(names) <= set(STATUS), set(names) - set(STATUS)


def test_solve_objectives_matches_separate_solves():
    rng = np.random.default_rng(3)
    solver = LPSolver()
    for _ in range(20):
        n = 3
        a = rng.normal(size=(6, n))
        b = rng.uniform(0.1, 1.0, size=6)
        lo, hi = -np.ones(n), np.ones(n)
        costs = np.vstack([np.eye(n), -np.eye(n), rng.normal(size=(2, n))])
        warm = solver.solve_objectives(costs, a, b, lo, hi)
        for c, (status, x) in zip(costs, warm):
            ref = solve_lp(_lp_dense(c, a, b, lo, hi))
            assert status is SolveStatus.OPTIMAL and ref.status is SolveStatus.OPTIMAL
            assert c @ x == pytest.approx(ref.objective, abs=1e-8)
            assert np.all(a @ x <= b + 1e-8)
            st2, x2 = solver.solve_arrays(c, a, b, lo, hi)
            assert st2 is SolveStatus.OPTIMAL and c @ x2 == pytest.approx(ref.objective, abs=1e-8)


def test_solve_objectives_reports_infeasible():
    solver = LPSolver()
    a = np.array([[1.0, 0.0], [-1.0, 0.0]])
    b = np.array([-0.5, -0.5])  # x <= -0.5 and x >= 0.5
    out = solver.solve_objectives(np.eye(2), a, b, -np.ones(2), np.ones(2))
    assert all(st is not SolveStatus.OPTIMAL and x is None for st, x in out)


def _lp_dense(c, a, b, lo, hi):
    n = c.shape[0]
    return LinearProgram(c=c, a_ub=a, b_ub=b, a_eq=np.zeros((0, n)), b_eq=np.zeros(0), lower=lo, upper=hi)
