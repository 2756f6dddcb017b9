"""Weak-duality bounds of linear objectives over a polytope cut from a box, against brute-force vertex enumeration.

The bound of :func:`certify.bounds.lp_dual.dual_lower_bounds` must hold for every multiplier vector (sound whatever
the solver returns) and be tight for the multipliers of an optimal LP; the region search's node bounding boxes built
from it must contain every point of the node's polytope (the exact search gives the same value with and without
them: tests/test_dual_simplex.py).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.bounds.lp_dual import dual_lower_bounds
from certify.config import RegionSearchOptions
from certify.engines.regions import Traversal
from certify.solvers.base import SolveStatus
from certify.solvers.lp import LPSolver
from tests.random_nets import random_net, unit_box


def brute_force_min(c, a, b, lo, hi):
    """min c x over {a x <= b, lo <= x <= hi} by enumerating the vertices (every n tight constraints), or None
    when the polytope is empty. Exact up to float64 solves of n x n systems (n <= 3 here)."""
    n = c.shape[0]
    rows = np.vstack([a, np.eye(n), -np.eye(n)])
    rhs = np.concatenate([b, hi, -lo])
    best = None
    for idx in itertools.combinations(range(rows.shape[0]), n):
        sub = rows[list(idx)]
        if abs(np.linalg.det(sub)) < 1e-9:
            continue
        x = np.linalg.solve(sub, rhs[list(idx)])
        if np.all(rows @ x <= rhs + 1e-9):
            v = float(c @ x)
            best = v if best is None else min(best, v)
    return best


def polytope(seed: int, n: int, m: int):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(m, n))
    centre = rng.uniform(-0.5, 0.5, size=n)
    b = a @ centre + rng.uniform(0.05, 1.0, size=m)  # the centre is strictly inside: never empty
    lo, hi = -np.ones(n), np.ones(n)
    return a, b, lo, hi


def solver_duals(costs, a, b, lo, hi):
    solver = LPSolver()
    assert solver.load(costs[0], a, b, lo, hi)
    res = solver.solve_loaded_objectives_with_duals(costs)
    assert all(st is SolveStatus.OPTIMAL for st, _ in res)
    return np.array([sol[1] for _, sol in res])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 6))
def test_the_bound_from_the_solvers_multipliers_is_sound_and_tight(seed, n, m):
    a, b, lo, hi = polytope(seed, n, m)
    costs = np.random.default_rng(seed + 1).normal(size=(4, n))
    bounds = dual_lower_bounds(costs, a, b, lo, hi, solver_duals(costs, a, b, lo, hi))
    for c, bound in zip(costs, bounds):
        true = brute_force_min(c, a, b, lo, hi)
        assert bound <= true + 1e-12 * max(1.0, abs(true))
        assert bound >= true - 1e-6 * max(1.0, abs(true))  # tight: the LP's multipliers are optimal


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 6), st.floats(0.0, 10.0))
def test_any_multipliers_give_a_sound_bound(seed, n, m, scale):
    """A wrong, perturbed or negative y (a solver that lies) may weaken the bound, never make it unsound."""
    a, b, lo, hi = polytope(seed, n, m)
    rng = np.random.default_rng(seed + 2)
    costs = rng.normal(size=(3, n))
    exact = solver_duals(costs, a, b, lo, hi)
    for ys in (scale * rng.normal(size=(3, m)), exact + scale * rng.normal(size=(3, m)), np.zeros((3, m))):
        bounds = dual_lower_bounds(costs, a, b, lo, hi, ys)
        for c, bound in zip(costs, bounds):
            true = brute_force_min(c, a, b, lo, hi)
            assert bound <= true + 1e-12 * max(1.0, abs(true))


def test_non_finite_multipliers_give_no_bound():
    a, b, lo, hi = polytope(0, 2, 3)
    costs = np.array([[1.0, 0.0], [0.0, 1.0]])
    ys = np.array([[np.nan, 0.0, 0.0], [np.inf, 1.0, 0.0]])
    assert np.all(dual_lower_bounds(costs, a, b, lo, hi, ys) == -np.inf)


def test_rounding_is_accounted_for_on_large_data():
    """With entries around 1e12 the rounding of c + y a is far above the LP tolerance: still below the optimum."""
    a, b, lo, hi = polytope(3, 3, 5)
    a, b, lo, hi = a * 1e12, b * 1e12, lo * 1e3, hi * 1e3
    costs = np.random.default_rng(4).normal(size=(3, 3)) * 1e6
    bounds = dual_lower_bounds(costs, a, b, lo, hi, solver_duals(costs, a, b, lo, hi))
    for c, bound in zip(costs, bounds):
        true = brute_force_min(c, a / 1e12, b / 1e12, lo, hi)
        assert bound <= true


@pytest.mark.parametrize("seed", range(4))
def test_node_bounding_boxes_contain_their_polytope(seed):
    """Every sampled point of the box inside a node's polytope lies inside the node's bounding box."""
    net, box = random_net(seed, 2, (6, 6)), unit_box(2)
    tr = Traversal(net, box, 1e-8)
    pts = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(4000, 2))
    stack, seen = [tr.root()], 0
    while stack and seen < 40:
        kind, out = tr.expand(stack.pop())
        for node in out if kind == "branch" else []:
            bbox = tr.polytope_bbox(node)
            assert bbox is not None
            inside = pts[np.all(pts @ node.a.T <= node.b, axis=1)]
            assert np.all(inside >= bbox[0]) and np.all(inside <= bbox[1])
            seen += 1
            stack.append(node)
    assert seen > 0


def test_node_bbox_must_be_a_bool():
    with pytest.raises(TypeError, match="node_bbox"):
        RegionSearchOptions(node_bbox="yes")
