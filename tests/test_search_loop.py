"""The one search loop on hand-made problems: a bound that is no number never disappears from the upper bound."""

import math

import numpy as np

from certify.engines.contract import Outcome
from certify.engines.search import Incumbent, Node, SearchLimits, best_first


class _Splitter:
    """Each node splits into one child with the bound ``child_bound`` (a problem whose bounds overflow)."""

    def __init__(self, child_bound: float) -> None:
        self.child_bound = child_bound

    def batch(self, top, elapsed):
        return 1

    def expand(self, nodes, incumbent):
        return [Node(self.child_bound, volume=n.volume) for n in nodes]

    def after_step(self, top, incumbent, elapsed):
        pass


def test_a_final_node_with_a_nan_bound_is_never_certified():
    run = best_first(_Splitter(0.5), [Node(math.nan, final=True, volume=1.0)], Incumbent(0.2),
                     SearchLimits(threshold=1.0))
    assert run.outcome is not Outcome.CERTIFIED and run.upper == math.inf


def test_open_nodes_with_nan_bounds_keep_the_upper_bound_infinite():
    run = best_first(_Splitter(math.nan), [Node(math.nan, volume=1.0)], Incumbent(0.2),
                     SearchLimits(threshold=1.0, max_nodes=5))
    assert run.outcome is Outcome.BUDGET and run.upper == math.inf


def test_finite_bounds_still_certify():
    run = best_first(_Splitter(0.5), [Node(3.0, volume=1.0)], Incumbent(0.2), SearchLimits(threshold=1.0))
    assert run.outcome is Outcome.CERTIFIED and run.upper == 0.5


def test_a_lower_seed_above_the_threshold_is_never_certified():
    """The level max(incumbent, seed, threshold) closes nodes up to the seed; the seed says the sup exceeds the
    threshold, so the loop must not call that certified."""
    run = best_first(_Splitter(1.5), [Node(3.0, volume=1.0)], Incumbent(0.2),
                     SearchLimits(threshold=1.0, lower_seed=2.0))
    assert run.outcome is Outcome.EXCEEDED


def test_bisection_never_halves_a_coordinate_its_midpoint_cannot_split():
    # one split rule (search.split_axes) for every sub-box search: a coordinate one float64 step wide with a huge
    # sensitivity was chosen by the bisection for ever (each half was the box again)
    from certify.engines.bisection import BisectionProblem
    from certify.engines.search import Incumbent
    from certify.ir.box import Box

    c = 0.3
    box = Box(np.array([c, -1.0]), np.array([np.nextafter(c, 1.0), 1.0]))
    problem = BisectionProblem(box, np.array([1e20, 1e-12]), lambda lo, hi: float(hi[1] - lo[1]),
                               lambda inc, pts: None)
    kids = problem.expand([problem.root()], Incumbent())
    assert len(kids) == 2 and all(k.item[1][1] - k.item[0][1] == 1.0 for k in kids), [k.item for k in kids]
    flat = Box(np.array([c, 0.5]), np.array([np.nextafter(c, 1.0), 0.5]))
    flat_problem = BisectionProblem(flat, np.ones(2), lambda lo, hi: 1.0, lambda inc, pts: None)
    assert [k.final for k in flat_problem.expand([flat_problem.root()], Incumbent())] == [True]
