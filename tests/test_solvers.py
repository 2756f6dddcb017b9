"""One shared set of small LP/MILP problems with known optima, run on every registered backend.

Known optima are hand-computed (stated next to each problem) or found by exhaustive enumeration in the test.
Every optimal answer is re-checked here in float64: the solution satisfies the constraints, its objective matches,
and the bound sits on the right side of it.
"""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np
import pytest

from certify.solvers.base import LinearProgram, SolveStatus
from certify.solvers.registry import Backend, UnknownBackendError, available_backends, backend_names, get_backend

INF = math.inf
TOL = 1e-6

NO_LIMIT = 600.0  # seconds: far above what these tiny problems take, so no test depends on a time limit


@pytest.fixture(params=backend_names())
def backend(request) -> Backend:
    b = get_backend(request.param)
    if not b.available():
        pytest.skip(f"{request.param} is not installed")
    return b


def lp(c, a_ub=(), b_ub=(), a_eq=(), b_eq=(), lower=None, upper=None, integer=None, maximize=False):
    n = len(c)
    return LinearProgram(
        c=np.array(c, float),
        a_ub=np.array(a_ub, float),
        b_ub=np.array(b_ub, float),
        a_eq=np.array(a_eq, float),
        b_eq=np.array(b_eq, float),
        lower=np.zeros(n) if lower is None else np.array(lower, float),
        upper=np.full(n, INF) if upper is None else np.array(upper, float),
        integer=integer,
        maximize=maximize,
    )


def check_optimal(problem: LinearProgram, res, expected: float) -> None:
    assert res.status is SolveStatus.OPTIMAL, res.message
    x = res.x
    assert x is not None and x.shape == (problem.n_vars,)
    assert np.all(x >= problem.lower - TOL) and np.all(x <= problem.upper + TOL)
    if problem.a_ub.size:
        assert np.all(problem.a_ub @ x <= problem.b_ub + TOL)
    if problem.a_eq.size:
        assert np.allclose(problem.a_eq @ x, problem.b_eq, atol=TOL)
    ints = problem.integer
    assert np.allclose(x[ints], np.round(x[ints]), atol=TOL)
    assert res.objective == pytest.approx(expected, abs=1e-6)
    assert float(problem.c @ x) == pytest.approx(expected, abs=1e-6)
    assert res.bound is not None
    # the bound is on the correct side of the optimum, and tight at optimality
    if problem.maximize:
        assert res.bound >= expected - 1e-7
    else:
        assert res.bound <= expected + 1e-7
    assert res.bound == pytest.approx(expected, abs=1e-6)
    assert res.backend == get_backend(res.backend).name


# ------------------------------------------------------------------ the shared problem set
def test_lp_inequalities(backend):
    # max 3x + 2y, x + y <= 4, x + 3y <= 6, x <= 3: vertex (3, 1), value 11.
    p = lp([3, 2], [[1, 1], [1, 3]], [4, 6], upper=[3, INF], maximize=True)
    res = backend.solve(p, NO_LIMIT)
    check_optimal(p, res, 11.0)
    assert np.allclose(res.x, [3, 1], atol=1e-7)


def test_lp_equalities(backend):
    # min x + 2y + 3z, x + y + z = 1, x - y = 0.2, all >= 0: objective 2.6 - 3y, y <= 0.4 -> 1.4 at (0.6, 0.4, 0).
    p = lp([1, 2, 3], a_eq=[[1, 1, 1], [1, -1, 0]], b_eq=[1, 0.2])
    res = backend.solve(p, NO_LIMIT)
    check_optimal(p, res, 1.4)
    assert np.allclose(res.x, [0.6, 0.4, 0.0], atol=1e-7)


def test_lp_free_variables_and_negative_bounds(backend):
    # min |shifted|: min t, t >= x - 2.5, t >= 2.5 - x, x in [-1, 1] free t -> x = 1, t = 1.5.
    p = lp([0, 1], [[1, -1], [-1, -1]], [2.5, -2.5], lower=[-1, -INF], upper=[1, INF])
    check_optimal(p, backend.solve(p, NO_LIMIT), 1.5)


def test_mip_equality(backend):
    # min x + y, 3x + 5y = 23, x, y integer >= 0: (1, 4) -> 5 (the other solution (6, 1) gives 7).
    p = lp([1, 1], a_eq=[[3, 5]], b_eq=[23], upper=[20, 20], integer=[True, True])
    res = backend.solve(p, NO_LIMIT)
    check_optimal(p, res, 5.0)
    assert np.allclose(res.x, [1, 4], atol=1e-6)


def test_binary_knapsack_matches_enumeration(backend):
    rng = np.random.default_rng(7)
    n = 12
    values = rng.integers(5, 40, n).astype(float)
    weights = rng.integers(3, 30, n).astype(float)
    cap = float(np.floor(weights.sum() / 3))
    best = max(
        float(values @ np.array(bits))
        for bits in itertools.product((0, 1), repeat=n)
        if weights @ np.array(bits) <= cap
    )
    p = lp(values, [weights], [cap], upper=np.ones(n), integer=np.ones(n, bool), maximize=True)
    res = backend.solve(p, NO_LIMIT)
    check_optimal(p, res, best)


def test_mixed_binary_continuous(backend):
    # max y, y <= 2 + 0.5 x - 3 (1 - d), y <= 1 + 3 d, x in [0, 4], d binary:
    # d = 0 -> y <= min(-1 + 0.5 x, 1) = 1; d = 1 -> y <= min(2 + 0.5 x, 4) = 4 at x = 4.
    p = lp([0, 1, 0], [[-0.5, 1, -3], [0, 1, -3]], [-1, 1], lower=[0, -10, 0], upper=[4, 10, 1],
           integer=[False, False, True], maximize=True)
    res = backend.solve(p, NO_LIMIT)
    check_optimal(p, res, 4.0)
    assert np.allclose(res.x, [4, 4, 1], atol=1e-6)


def test_infeasible_lp(backend):
    p = lp([1], [[-1]], [-2], upper=[1])  # x >= 2 with x <= 1
    res = backend.solve(p, NO_LIMIT)
    assert res.status is SolveStatus.INFEASIBLE
    assert res.x is None and res.bound is None


def test_infeasible_mip(backend):
    p = lp([1], a_eq=[[2]], b_eq=[3], upper=[3], integer=[True])  # 2x = 3 has no integer root
    assert backend.solve(p, NO_LIMIT).status is SolveStatus.INFEASIBLE


def test_unbounded_lp(backend):
    p = lp([1, 1], [[1, -1]], [1], maximize=True)  # x - y <= 1, x, y >= 0, max x + y
    res = backend.solve(p, NO_LIMIT)
    assert res.status is SolveStatus.UNBOUNDED
    assert res.bound is None


def test_unbounded_mip(backend):
    p = lp([1, 1], [[1, -1]], [1], integer=[True, False], maximize=True)
    assert backend.solve(p, NO_LIMIT).status is SolveStatus.UNBOUNDED


def test_no_constraints(backend):
    p = lp([1, -2], lower=[-1, -1], upper=[2, 3])  # min x - 2y in a box: (-1, 3) -> -7
    check_optimal(p, backend.solve(p, NO_LIMIT), -7.0)


def _market_split(m: int, n: int, seed: int):
    """A Cornuejols-Dawande market-split instance with a planted solution: hard for branch and bound."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, (m, n)).astype(float)
    planted = (rng.random(n) < 0.5).astype(float)
    c = rng.integers(1, 10, n).astype(float)
    p = lp(c, a_eq=a, b_eq=a @ planted, upper=np.ones(n), integer=np.ones(n, bool), maximize=True)
    return p, float(c @ planted)


def test_time_limit(backend):
    p, planted_value = _market_split(6, 50, seed=3)
    res = backend.solve(p, 0.5)
    assert res.status is SolveStatus.TIME_LIMIT, res.message
    if res.bound is not None:  # a dual bound after a time limit is still a bound
        assert res.bound >= planted_value - 1e-6
    if res.x is not None:  # an incumbent is feasible, and no better than the bound
        assert np.allclose(p.a_eq @ res.x, p.b_eq, atol=1e-6)
        if res.bound is not None:
            assert res.objective <= res.bound + 1e-6


# ------------------------------------------------------------------ failure modes never raise
def test_missing_library_gives_not_installed(monkeypatch, backend):
    module = {"cbc": "pulp", "highs": "highspy"}[backend.name]
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    assert not backend.available()
    res = backend.solve(lp([1], upper=[1]), 5)
    assert res.status is SolveStatus.NOT_INSTALLED
    assert module in res.message


def test_crash_gives_error_with_message(monkeypatch, backend):
    def boom(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(type(backend), "_solve", boom)
    res = backend.solve(lp([1], upper=[1]), 5)
    assert res.status is SolveStatus.ERROR
    assert "solver exploded" in res.message


def test_nan_data_never_raises_and_is_never_optimal(backend):
    p = lp([float("nan"), 1.0], [[1, 1]], [1], upper=[1, 1])
    res = backend.solve(p, 5)
    assert isinstance(res.status, SolveStatus)
    if res.status is SolveStatus.OPTIMAL:  # a solver may drop the NaN cost; then the answer must still be right
        assert np.all(res.x <= 1 + TOL)


def test_registry():
    assert set(backend_names()) == {"cbc", "highs"}
    assert get_backend("PuLP").name == "cbc" and get_backend("highspy").name == "highs"
    assert set(available_backends()) <= set(backend_names())
    for name in backend_names():
        assert isinstance(get_backend(name), Backend)
    with pytest.raises(UnknownBackendError, match="cbc"):
        get_backend("gurobi")
    assert issubclass(UnknownBackendError, ValueError)


def test_the_sdp_back_end_runs_with_one_blas_thread_and_restores_the_setting(monkeypatch):
    # multi-threaded BLAS on these dense steps oversubscribed a shared machine (a 256-neuron LipSDP took 21 s
    # instead of 1.3 s without OMP_NUM_THREADS=1): the back-end limits its own BLAS threads, for the call only
    import threadpoolctl

    import certify.solvers.sdp_ipm as ipm
    from certify.engines.lipsdp import lipschitz_sdp

    def counts():
        return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]

    seen = []
    solve = ipm.solve_ipm

    def recording(*args, **kwargs):
        seen.append(counts())
        return solve(*args, **kwargs)

    monkeypatch.setattr(ipm, "solve_ipm", recording)
    rng = np.random.default_rng(0)
    with threadpoolctl.threadpool_limits(limits=2):  # the caller's setting: two threads, whatever the machine
        before = counts()
        res = lipschitz_sdp([rng.normal(size=(6, 2)), rng.normal(size=(2, 6))], [np.zeros(6)], [np.ones(6)])
        after = counts()
    assert before and max(before) == 2
    assert res.value is not None and seen and all(max(c) == 1 for c in seen), seen
    assert after == before
