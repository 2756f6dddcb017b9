"""The engine contract: one query and one result type for every engine that brackets a supremum.

A :class:`Query` asks for sup over the box of ||Q(x)||_p (Q = A* or J, the state columns when ``state_only``):
either its value (``threshold`` None: close the bracket) or whether it is <= ``threshold`` (certify mode: prune
below the threshold, stop once a replayed value exceeds it). Norm, seed, device, time limit, node budget and the
engines' options come from the query's :class:`~certify.config.VerifyConfig`.

An :class:`EngineResult` brackets the supremum: ``lower`` is attained at ``witness`` (replayed in float64 through
the IR), ``upper`` is sound whenever the engine stops, ``exact`` when a complete search closed the bracket.
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..config import VerifyConfig
from ..errors import UsageError
from ..ir.box import Box
from ..ir.metric import Metric, check_metric_applies
from ..ir.network import Network
from ..ir.numerics import check_norm
from ..ir.quantity import Quantity


class Outcome(str, enum.Enum):
    """Why a search stopped."""

    CERTIFIED = "certified"  # every node closed with bound <= threshold: upper <= threshold
    EXCEEDED = "exceeded"  # a replayed point exceeds the threshold
    BRACKETED = "bracketed"  # no threshold: every node closed (upper - lower within the gap tolerance)
    STALLED = "stalled"  # nodes that cannot be refined remain above the level
    TIMEOUT = "timeout"
    BUDGET = "budget"  # the node budget (config.budget) is spent
    UNSUPPORTED = "unsupported"  # the engine does not apply to this net or norm (see the reason)


@dataclass(frozen=True, eq=False)
class Query:
    """What an engine is asked (see the module docstring).

    ``network``/``box``: the map and its domain; ``quantity``: A* or J; ``state_only``: the first ``n_states``
    columns only (the dynamics checks); ``threshold``: certify mode when given, else the value is asked for;
    ``lower_seed``: a value known to be attained elsewhere (prunes only: ``lower`` always comes with the engine's own
    witness); ``lower_point``: a point (n_in,) to start from (replayed); ``deadline``: ``time.perf_counter()`` value
    at which to stop (default: now + ``config.timeout``); ``guard``: without a threshold, the level the caller will
    compare the value with (the check's 1 - margin): float64 values that rounding may carry across it are not
    reported as exact (an exact run asked for the value decides a verdict as a certify run would).
    """

    network: Network
    box: Box
    quantity: Quantity
    config: VerifyConfig
    state_only: bool = True
    threshold: float | None = None
    lower_seed: float = -math.inf
    lower_point: np.ndarray | None = None
    deadline: float | None = None
    metric: Metric | None = None
    guard: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantity", Quantity.coerce(self.quantity))
        check_norm(self.config.norm)
        if self.metric is not None and self.metric.is_identity:
            object.__setattr__(self, "metric", None)
        if self.metric is not None:
            if not self.state_only or not self.quantity.is_matrix:
                raise UsageError("a metric weights the state block of A* or J: it needs a state-only matrix query")
            check_metric_applies(self.metric, self.config.norm, self.network.n_states, self.network.n_out)
        if self.box.dim != self.network.n_in:
            raise UsageError(f"the box has {self.box.dim} coordinates but the net takes {self.network.n_in} inputs")
        if self.deadline is None:
            object.__setattr__(self, "deadline", time.perf_counter() + self.config.timeout)
        if self.lower_seed is None:
            object.__setattr__(self, "lower_seed", -math.inf)

    @property
    def norm(self) -> float:
        return float(self.config.norm)

    @property
    def seed(self) -> int:
        return int(self.config.seed)

    @property
    def budget(self) -> int | None:
        return self.config.budget

    @property
    def columns(self) -> int:
        return self.network.n_states if self.state_only else self.network.n_in

    @property
    def exact(self) -> bool:
        """True when the value itself is asked for (no threshold)."""
        return self.threshold is None

    def seconds_left(self) -> float:
        return self.deadline - time.perf_counter()

    def with_(self, **changes) -> "Query":
        return replace(self, **changes)


@dataclass(frozen=True)
class SearchCounts:
    """Work done by an engine: ``nodes`` expanded (region search), ``lps`` solved, ``boxes`` bounded (sub-box
    searches), SDP solves and their seconds, and per bound kind how many boxes it gave the smallest bound."""

    nodes: int = 0
    lps: int = 0
    boxes: int = 0
    sdp_calls: int = 0
    sdp_seconds: float = 0.0
    wins: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, eq=False)
class EngineResult:
    """sup over the box of the queried quantity lies in [lower, upper].

    ``witness``: (n_in,) point attaining ``lower`` (replayed in float64), or None; ``matrix``: the quantity's matrix
    there (None for scalar quantities such as the invariance violation). ``exhausted``: every node was closed.
    ``proven_fraction``: share of the box volume whose bound is proven below the threshold (sub-box searches).
    ``trace``: ((seconds, lower, upper), ...) as the search went, each upper sound at its time. ``method``: the
    label the check reports (``exact``, ``bnb``, ``boxes``, ``sdp``, ``interval``).
    """

    lower: float
    upper: float
    witness: np.ndarray | None
    matrix: np.ndarray | None
    exhausted: bool
    seconds: float
    reason: str = ""
    trace: tuple[tuple[float, float, float], ...] = ()
    outcome: Outcome = Outcome.TIMEOUT
    counts: SearchCounts = field(default_factory=SearchCounts)
    proven_fraction: float = 0.0
    method: str = ""
    closed: bool = False

    @property
    def exact(self) -> bool:
        """A complete search closed the bracket (``closed``: closed before a metric's float64 inverse correction
        widened it by a relative 1e-15 or so, :mod:`certify.ir.metric`)."""
        return self.exhausted and (self.upper <= self.lower or self.closed)

    @property
    def nodes(self) -> int:
        return self.counts.nodes

    @property
    def lps(self) -> int:
        return self.counts.lps

    @property
    def boxes(self) -> int:
        return self.counts.boxes

    @property
    def wins(self) -> tuple[tuple[str, int], ...]:
        return self.counts.wins

    def certified(self, threshold: float) -> bool:
        return self.upper <= threshold
