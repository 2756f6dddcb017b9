"""The one best-first branch and bound loop, shared by the region search, the sub-box searches and the invariance
search.

A search keeps nodes (a region-search node, a sub-box, ...) with a sound upper ``bound`` on the quantity over the
node, and an :class:`Incumbent`: the best value attained at a replayed point (the lower bound). Each step takes the
nodes with the largest bounds, asks the problem to expand them (split them, tighten them, or settle them) and
files the children:

* a node whose bound is <= the *level* is closed: the level is max(incumbent, lower seed) plus the gap tolerance
  without a threshold, and max(incumbent, lower seed, threshold) in certify mode;
* a ``final`` node (one that cannot be refined: a region without a verified interior point, a sub-box too small to
  split) keeps its bound in the upper bound for good;
* every other node waits in the priority queue.

``upper`` = max(incumbent, every closed bound, every final bound, every open bound): it is sound whenever the loop
stops, because every point of the domain lies in some node that was closed, is final or is still open, and each
such bound is sound for its node (the problem's contract). The loop stops when no node is open, when the incumbent
exceeds ``stop_above`` (certify mode: the threshold), at the deadline, or when ``max_nodes`` nodes were bounded.

With an ``executor`` (:mod:`certify.engines.parallel`) a step may instead send the largest open nodes to worker
processes as a round: the executor later returns their children, offers the workers' best replayed points to the
incumbent and merges the workers' counts into the problem, all in an order fixed by the nodes (never by the
workers' timing). Up to ``rounds_ahead`` rounds stay in flight beside the one the loop waits for; their nodes are
open (in ``upper`` and in the open count) until received, and the loop only finishes with none in flight.
Nothing else changes: the children are filed as above, so ``upper`` stays sound and, for a complete search, the
value is the serial one; only the order (hence the node count) differs.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .contract import Outcome


@dataclass(eq=False)
class Node:
    """One node of a search: a sound upper ``bound`` over ``item`` (the problem's own data), the share
    ``volume`` of the domain it covers (for the proven fraction), and ``final`` when it cannot be refined.

    A NaN bound (float64 overflow, inf - inf) bounds nothing: it is stored as +inf, so no comparison or maximum of
    the loop can drop it (NaN <= level and max(x, NaN) would both lose it)."""

    bound: float
    item: Any = None
    volume: float = 0.0
    final: bool = False

    def __post_init__(self) -> None:
        if self.bound != self.bound:
            self.bound = math.inf


class Incumbent:
    """The best lower bound found: ``value`` attained at ``point`` (replayed by the problem before it is offered),
    with any data the problem keeps beside it (``data``, e.g. the matrix at the point)."""

    def __init__(self, value: float = -math.inf, point=None, data=None) -> None:
        self.value, self.point, self.data = value, point, data

    def offer(self, value: float, point, data=None) -> bool:
        """Keep (value, point, data) if it beats the incumbent; True when it did."""
        if value > self.value:
            self.value, self.point, self.data = float(value), point, data
            return True
        return False


class SearchProblem(Protocol):
    """What a problem provides to :func:`best_first`."""

    def batch(self, top: Node, elapsed: float) -> int:
        """How many of the largest open nodes to expand in the next step (>= 1)."""

    def expand(self, nodes: list[Node], incumbent: Incumbent) -> list[Node]:
        """The children of ``nodes`` (bounds already <= their parent's), offering points to ``incumbent``.

        Together the children (and any node the problem proves empty) must cover the parents."""

    def after_step(self, top: Node | None, incumbent: Incumbent, elapsed: float) -> None:
        """Called after each step with the largest open node (e.g. for a local search near it)."""


class SearchExecutor(Protocol):
    """Expands nodes of a search elsewhere (:class:`certify.engines.parallel.ParallelSearch`), in rounds: a round is
    sent, and later received, in the order sent."""

    in_flight: int  # rounds sent and not received
    rounds_ahead: int  # rounds the loop may keep in flight beside the one it waits for

    def take(self, problem: SearchProblem, top: Node, elapsed: float, bounded: int) -> int:
        """How many of the largest open nodes the next step sends to the workers (0: the problem expands the next
        step here, as without an executor); ``bounded``: nodes filed so far."""

    def send(self, problem: SearchProblem, nodes: list[Node], incumbent: Incumbent) -> None:
        """Send ``nodes`` as one round (with the incumbent's value now)."""

    def receive(self, problem: SearchProblem, incumbent: Incumbent) -> list[Node]:
        """The children of the oldest round in flight (as ``problem.expand`` would give them), the workers' best
        points offered to ``incumbent`` and their counts merged into ``problem``, in an order that depends on the
        round's nodes only."""

    def open_nodes(self) -> int:
        """Nodes in the rounds in flight."""

    def open_max(self) -> float:
        """The largest bound of the nodes in the rounds in flight."""


@dataclass(frozen=True)
class SearchLimits:
    """When to close nodes and when to stop (see the module docstring).

    ``threshold``: certify mode; ``stop_above``: stop once the incumbent exceeds it (default: the threshold);
    ``gap_abs``/``gap_rel``: without a threshold, close nodes within gap_abs + gap_rel * max(1, |level|) of the
    incumbent; ``proof_level``: closed nodes with bound <= it add their volume to the proven fraction (default:
    the threshold, or everything closed without one); ``timeout``: seconds (for the reason text); ``unit``: what
    a node is called in reasons ("nodes", "boxes"); ``trace_every``: steps between trace entries.
    """

    threshold: float | None = None
    stop_above: float | None = None
    gap_abs: float = 0.0
    gap_rel: float = 0.0
    lower_seed: float = -math.inf
    deadline: float = math.inf
    timeout: float = math.inf
    max_nodes: int | None = None
    proof_level: float | None = None
    unit: str = "nodes"
    trace_every: int = 16


@dataclass(frozen=True)
class SearchOutcome:
    """How a search ended: ``upper`` (sound), ``outcome``, ``reason`` (empty when the search completed),
    ``trace`` ((seconds, lower, upper), ...), ``steps`` taken, ``bounded`` nodes filed, ``proven`` volume share,
    ``open`` nodes left, ``stuck`` final nodes above the level, and the maxima of closed and final bounds."""

    upper: float
    outcome: Outcome
    reason: str
    trace: tuple[tuple[float, float, float], ...]
    steps: int
    bounded: int
    proven: float
    open: int
    stuck: int
    closed_max: float
    final_max: float

    @property
    def exhausted(self) -> bool:
        return self.open == 0 and self.outcome is not Outcome.EXCEEDED


def best_first(problem: SearchProblem, roots: list[Node], incumbent: Incumbent, limits: SearchLimits,
               start: float | None = None, executor: SearchExecutor | None = None) -> SearchOutcome:
    """Run the search from ``roots`` (see the module docstring); ``start``: the clock origin of the trace;
    ``executor``: expand steps on worker processes (None: here)."""
    t0 = time.perf_counter() if start is None else start
    stop_above = limits.threshold if limits.stop_above is None else limits.stop_above
    proof_level = limits.proof_level
    if proof_level is None:
        proof_level = math.inf if limits.threshold is None else limits.threshold
    counter = itertools.count()
    heap: list = []
    closed_max = final_max = -math.inf
    proven = 0.0
    bounded = stuck = steps = 0
    trace = []

    def level() -> float:
        lv = max(incumbent.value, limits.lower_seed)
        if limits.threshold is not None:
            return max(lv, limits.threshold)
        return lv + limits.gap_abs + limits.gap_rel * max(1.0, abs(lv))

    def close(node: Node) -> None:
        nonlocal closed_max, proven
        closed_max = max(closed_max, node.bound)
        if node.bound <= proof_level:
            proven += node.volume

    def file(node: Node, lv: float) -> None:
        nonlocal final_max, stuck, bounded
        bounded += 1
        if node.final:
            final_max = max(final_max, node.bound)
            stuck += node.bound > lv
        elif node.bound <= lv:
            close(node)
        else:
            heapq.heappush(heap, (-node.bound, next(counter), node))

    def flying() -> int:
        return 0 if executor is None else executor.in_flight

    def open_count() -> int:
        return len(heap) + (executor.open_nodes() if flying() else 0)

    def upper() -> float:
        open_max = -heap[0][0] if heap else -math.inf
        if flying():
            open_max = max(open_max, executor.open_max())  # nodes out on the workers are open
        return max(incumbent.value, closed_max, final_max, open_max)

    def record() -> None:
        trace.append((time.perf_counter() - t0, incumbent.value, upper()))

    lv = level()
    for node in roots:
        file(node, lv)
    record()
    outcome, reason = Outcome.TIMEOUT, ""
    while True:
        if stop_above is not None and incumbent.value > stop_above:
            outcome = Outcome.EXCEEDED
            reason = f"a replayed point reaches {incumbent.value:.12g} > threshold {stop_above:.12g}"
            break
        lv = level()
        while heap and -heap[0][0] <= lv:
            close(heapq.heappop(heap)[2])
        if not heap and not flying():
            outcome = Outcome.CERTIFIED if limits.threshold is not None else Outcome.BRACKETED
            if stuck:
                outcome = Outcome.STALLED
            if limits.threshold is not None and limits.lower_seed > limits.threshold:
                # the level closed nodes up to the seed, a value attained elsewhere above the threshold: not proven
                outcome = Outcome.EXCEEDED
                reason = f"the lower seed {limits.lower_seed:.12g} exceeds the threshold {limits.threshold:.12g}"
            break
        if time.perf_counter() > limits.deadline:
            reason = f"timeout after {limits.timeout:g} s with {open_count()} open {limits.unit}"
            break
        if limits.max_nodes is not None and bounded >= limits.max_nodes:
            outcome = Outcome.BUDGET
            reason = f"budget of {limits.max_nodes} {limits.unit} spent with {open_count()} open {limits.unit}"
            break
        steps += 1
        elapsed = time.perf_counter() - t0
        remote = 0 if executor is None or not heap else executor.take(problem, heap[0][2], elapsed, bounded)
        take = []
        for _ in range(remote or (max(1, problem.batch(heap[0][2], elapsed)) if heap else 0)):
            if not heap or -heap[0][0] <= lv:
                break
            take.append(heapq.heappop(heap)[2])
        children = []
        if remote:
            executor.send(problem, take, incumbent)
        elif take:
            children = problem.expand(take, incumbent)
        # receive the oldest round once more than rounds_ahead are out, or when nothing is left to expand here
        if flying() and flying() > (executor.rounds_ahead if take else 0):
            children += executor.receive(problem, incumbent)
        lv = level()
        for child in children:
            file(child, lv)
        problem.after_step(heap[0][2] if heap else None, incumbent, time.perf_counter() - t0)
        if steps % limits.trace_every == 0:
            record()
    record()
    return SearchOutcome(upper(), outcome, reason, tuple(trace), steps, bounded, proven, open_count(), stuck,
                         closed_max, final_max)


# ============================================================================================ sub-box helpers
MIN_REL_WIDTH = 1e-9  # a sub-box narrower than this share of the root box in every coordinate is not split


def splittable(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which coordinates of boxes lo, hi (B, n) can be halved: their float64 midpoint lies strictly inside, so both
    halves are smaller (B, n). A coordinate a float64 step wide cannot: one half would be the box again."""
    mid = 0.5 * (lo + hi)
    return (lo < mid) & (mid < hi)


def split_axes(lo: np.ndarray, hi: np.ndarray, score: np.ndarray, width0: np.ndarray,
               max_aspect: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """(axis (B,), final (B,)) for sub-boxes lo, hi (B, n) of a root box of widths ``width0`` (n,) (> 0), given a
    split ``score`` (B, n) per coordinate (the larger, the better; NaN counts as 0).

    The axis maximises the score among the coordinates that can be split (their float64 midpoint lies strictly
    inside, so both halves are smaller) and, relative to the root widths, are at least 1 / ``max_aspect`` as wide
    as the widest of them; ties (a zero score) go to the relatively widest. A box is final when it is narrower than
    :data:`MIN_REL_WIDTH` of the root in every coordinate or has no coordinate to split: without this a box one
    float64 step wide was halved into itself for ever."""
    rel = (hi - lo) / width0
    ok = splittable(lo, hi)
    if math.isfinite(max_aspect):  # measured against the widest coordinate that can be split: one that cannot
        widest = np.where(ok, rel, 0.0).max(axis=1, keepdims=True)  # (a float64 step wide) would make none
        ok &= rel >= widest / max_aspect
    score = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=0.0, posinf=np.finfo(np.float64).max)
    axis = np.argmax(np.where(ok, score + rel * 1e-300, -1.0), axis=1)
    final = np.all(rel < MIN_REL_WIDTH, axis=1) | ~ok.any(axis=1)
    return axis, final


def halves(lo: np.ndarray, hi: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both halves of boxes (B, n) split along coordinate ``axis`` (B,): (lo, hi) of shape (2B, n), lower halves
    first. The midpoint is rounded, but both halves share it, so together they cover the box exactly."""
    rows = np.arange(lo.shape[0])
    mid = 0.5 * (lo[rows, axis] + hi[rows, axis])
    a_hi, b_lo = hi.copy(), lo.copy()
    a_hi[rows, axis], b_lo[rows, axis] = mid, mid
    return np.concatenate([lo, b_lo]), np.concatenate([a_hi, hi])


def volume_fraction(lo: np.ndarray, hi: np.ndarray, root_lo: np.ndarray, root_hi: np.ndarray) -> np.ndarray:
    """Share of the root box's volume of each box (B, n) (coordinates of zero root width count as 1)."""
    width = root_hi - root_lo
    free = width > 0
    return np.prod(np.where(free, (hi - lo) / np.where(free, width, 1.0), 1.0), axis=1)
