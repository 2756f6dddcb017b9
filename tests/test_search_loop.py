"""The one search loop on hand-made problems: a bound that is no number never disappears from the upper bound."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ---------------------------------------------------------------------------------------- rounds in flight
class _Tree:
    """A binary tree over ``values`` (2^depth leaves): a node (lo, hi) of leaf indices has the bound max(values[lo:hi])
    + its slack; a leaf offers its value. The exact max is max(values)."""

    def __init__(self, values, slack) -> None:
        self.values, self.slack = list(values), list(slack)

    def node(self, lo: int, hi: int) -> Node:
        return Node(max(self.values[lo:hi]) + self.slack[(lo * 7 + hi) % len(self.slack)], (lo, hi))

    def batch(self, top, elapsed):
        return 1

    def expand(self, nodes, incumbent):
        out = []
        for n in nodes:
            lo, hi = n.item
            if hi - lo == 1:
                incumbent.offer(self.values[lo], lo)
                continue
            mid = (lo + hi) // 2
            out += [self.node(lo, mid), self.node(mid, hi)]
        return out

    def after_step(self, top, incumbent, elapsed):
        pass


class _InProcess:
    """An executor that expands its rounds here, in the order sent, when they are received: the loop's bookkeeping of
    rounds in flight without processes. Rounds of ``size`` nodes once ``start`` nodes are filed."""

    def __init__(self, problem, rounds_ahead: int, size: int, start: int) -> None:
        self.problem, self.rounds_ahead, self.size, self.start = problem, rounds_ahead, size, start
        self.flight: list = []
        self.sent = 0

    @property
    def in_flight(self) -> int:
        return len(self.flight)

    def take(self, problem, top, elapsed, bounded):
        return self.size if bounded >= self.start else 0

    def send(self, problem, nodes, incumbent):
        self.flight.append((list(nodes), incumbent.value))
        self.sent += 1

    def receive(self, problem, incumbent):
        nodes, value = self.flight.pop(0)
        snapshot = Incumbent(value)  # the workers see the value sent with the round
        children = self.problem.expand(nodes, snapshot)
        incumbent.offer(snapshot.value, snapshot.point)
        return children

    def open_nodes(self):
        return sum(len(nodes) for nodes, _ in self.flight)

    def open_max(self):
        return max((n.bound for nodes, _ in self.flight for n in nodes), default=-math.inf)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=32, max_size=32), st.lists(st.floats(0.0, 2.0), min_size=5, max_size=5),
       st.integers(0, 3), st.integers(1, 6), st.integers(0, 8), st.integers(1, 60),
       st.sampled_from([None, 4.0, 8.0]))
def test_rounds_in_flight_stay_open_until_received(values, slack, ahead, size, start, budget, threshold):
    """Stopped by its budget with rounds still out, the loop's upper bound is still >= the max (the nodes out are
    the largest it had: they count as open); finished, it gives the serial value and verdict."""
    tree = _Tree(values, slack)
    true_max = max(values)
    limits = SearchLimits(threshold=threshold, max_nodes=budget)
    ex = _InProcess(tree, ahead, size, start)
    run = best_first(tree, [tree.node(0, 32)], Incumbent(), limits, executor=ex)
    assert run.upper >= true_max or run.outcome is Outcome.EXCEEDED
    assert run.open >= ex.open_nodes()
    full = best_first(tree, [tree.node(0, 32)], Incumbent(), SearchLimits(threshold=threshold),
                      executor=_InProcess(tree, ahead, size, start))
    serial = best_first(tree, [tree.node(0, 32)], Incumbent(), SearchLimits(threshold=threshold))
    assert full.outcome is serial.outcome
    assert full.open == 0 or full.outcome is Outcome.EXCEEDED
    if threshold is None:
        assert full.upper == serial.upper == true_max
