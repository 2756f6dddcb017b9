"""One frozen configuration object that travels through every analysis (no module-level settings).

:class:`VerifyConfig` holds the user's options (norm, margin, sampling, seed, device, time limit, method) and the
solver back-ends (:class:`SolverChoice`). Every engine reads what it needs from it; nothing sets process-wide state
(thread counts, solver globals). Option values that name a choice are ``str`` enums (:class:`Method`,
:class:`Device`), so they compare equal to the strings users write (``config.method == "auto"``).
"""

from __future__ import annotations

import enum
import math
import numbers
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from .errors import UsageError
from .ir.metric import Metric


class Method(str, enum.Enum):
    """Which engine bounds sup ||A*|| / ||J|| after sampling and Corollary 4 (``--method``)."""

    AUTO = "auto"  # region branch and bound for piecewise-linear nets, sub-box branch and bound (with SDP) otherwise
    EXACT = "exact"  # region search only (piecewise-linear nets)
    BNB = "bnb"  # either branch and bound, without SDP
    SDP = "sdp"  # one SDP over the box
    INTERVAL = "interval"  # one interval-matrix bound
    SAMPLE = "sample"  # sampling only (no upper bound beyond Corollary 4)

    def __str__(self) -> str:
        return self.value


class Device(str, enum.Enum):
    """Where batched sampling runs: CUDA when asked or, for AUTO, when torch sees a CUDA device; else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"

    def __str__(self) -> str:
        return self.value


class BoundKind(str, enum.Enum):
    """The cheap upper bounds the sub-box search computes on every sub-box (:mod:`certify.bounds.norm_bounds`)."""

    INTERVAL = "interval"
    PRODUCT = "product"
    SCALED = "scaled"
    SDP = "sdp"
    CENTRED = "centred"
    SECOND_ORDER = "second_order"

    def __str__(self) -> str:
        return self.value


class SdpUse(str, enum.Enum):
    """When the sub-box search runs the SDP bound on its largest box (2-norm only).

    AUTO: for nets with at most 64 hidden neurons, once a quarter of the time limit has passed without a verdict,
    and only when the method is ``auto``; ALWAYS: from the start; NEVER."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"

    def __str__(self) -> str:
        return self.value


METHODS = tuple(m.value for m in Method)
DEVICES = tuple(d.value for d in Device)
SEED_MAX = 2**63 - 1  # seeds are whole numbers in [0, SEED_MAX] (numpy and torch take them all)


# --------------------------------------------------------------------------- validation of option values
def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _whole(owner: str, option: str, value, least: int, most: int | None = None) -> int:
    """``value`` as an int in [least, most]; TypeError for a bool, a float (10.5 or 10.0) or text."""
    if not _is_int(value):
        raise TypeError(f"{owner}: {option} must be a whole number (an int), got {value!r}")
    value = int(value)
    if value < least or most is not None and value > most:
        span = f">= {least}" if most is None else f"in [{least}, {most}]"
        raise UsageError(f"{owner}: {option} must be {span}, got {value}")
    return value


def _real(owner: str, option: str, value, least: float = -math.inf, positive: bool = False,
          below: float | None = None) -> float:
    """``value`` as a finite float >= least (> 0 when ``positive``, < ``below`` when given)."""
    if not _is_real(value):
        raise TypeError(f"{owner}: {option} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x < least or positive and x <= 0 or below is not None and x >= below:
        span = ("> 0" if positive else f">= {least:g}") + ("" if below is None else f" and < {below:g}")
        raise UsageError(f"{owner}: {option} must be a finite number {span}, got {value!r}")
    return x


def _flag(owner: str, option: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {option} must be True or False, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class SolverChoice:
    """The registered back-end names (see :mod:`certify.solvers.registry`) each kind of problem goes to.

    ``lp``: the many small LPs of the region traversal; ``lp_relaxation``: LP relaxations that tighten
    pre-activation bounds before a MILP; ``milp``: exact output bounds (invariance), equilibria, l1/linf gains;
    ``sdp``: the LipSDP bound and the metric proposals ('ipm': the interior-point method of
    :mod:`certify.solvers.sdp_ipm`, which exploits the LipSDP LMI's low-rank structure; 'scs', 'clarabel').
    """

    lp: str = "highs"
    lp_relaxation: str = "highs"
    milp: str = "cbc"
    sdp: str = "ipm"

    def __post_init__(self) -> None:
        # Names are looked up in the registry when a search starts (tests register their own back-ends there).
        for option in ("lp", "lp_relaxation", "milp", "sdp"):
            name = getattr(self, option)
            if not isinstance(name, str) or not name.strip():
                raise TypeError(f"SolverChoice: {option} must be a back-end name (a non-empty str), got {name!r}")


@dataclass(frozen=True)
class RegionSearchOptions:
    """The region branch and bound (:mod:`certify.engines.region_search`).

    ``min_radius``: pieces with an inscribed ball of radius <= min_radius * (largest box width) are slivers (bounded
    soundly, never trusted to be empty); ``samples``: random points for the first lower bound; ``node_bbox``: bound
    each node over the bounding box of its polytope (2 LPs per coordinate, each end re-derived from the LP's
    multipliers in float64) instead of over the whole box, for boxes with at most 4 free coordinates (False: always
    over the box, the earlier and looser node bounds); ``by_influence``: split a node's neurons largest effect first
    (:class:`certify.engines.regions.Traversal`; False: in index order); ``node_lp``: also tighten, by one LP over
    the node's polytope each (re-derived from its multipliers in float64), the end nearer to a breakpoint of every
    free neuron whose node bound meets several pieces (:func:`certify.bounds.crown.chain_bounds`), for boxes with at
    most ``NODE_LP_MAX_DIM`` free coordinates (False: the bounding-box bounds only); ``slope_bnb``: for nodes with
    more unstable neurons than the vertex bound enumerates, bound the max over the slope box's vertices by a small
    branch and bound over the slopes, aimed at the search's pruning level
    (:meth:`certify.engines.region_search.NodeBounder.bound`; False: the interval-matrix bounds only);
    ``input_split``: for boxes with at most 4 free coordinates, a node whose bound stays above the pruning level is
    bounded again over up to this many halves, quarters, ... of its bounding box (0, the default: off; at 32 it cut
    the exact run's nodes 1.2-3.4x but, one CROWN pass and vertex bound per sub-box, took 2.1-3.7x the time:
    benchmarks/exact_scale.py)."""

    min_radius: float = 1e-8
    samples: int = 256
    node_bbox: bool = True
    by_influence: bool = True
    node_lp: bool = True
    slope_bnb: bool = True
    input_split: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_radius", _real("RegionSearchOptions", "min_radius", self.min_radius, 0.0))
        object.__setattr__(self, "samples", _whole("RegionSearchOptions", "samples", self.samples, 0))
        object.__setattr__(self, "node_bbox", _flag("RegionSearchOptions", "node_bbox", self.node_bbox))
        object.__setattr__(self, "by_influence", _flag("RegionSearchOptions", "by_influence", self.by_influence))
        object.__setattr__(self, "node_lp", _flag("RegionSearchOptions", "node_lp", self.node_lp))
        object.__setattr__(self, "slope_bnb", _flag("RegionSearchOptions", "slope_bnb", self.slope_bnb))
        object.__setattr__(self, "input_split", _whole("RegionSearchOptions", "input_split", self.input_split, 0))


@dataclass(frozen=True)
class BoxSearchOptions:
    """The sub-box branch and bound for sup norms (:mod:`certify.engines.box_search`).

    ``bounds``: the bounds computed on the sub-boxes (the second-order one only where it applies, deferred);
    ``gap_tol``: without a threshold, stop once
    upper - lower <= gap_tol * max(1, lower); ``samples``: points of the first falsification; ``batch``: boxes split
    per step; ``trial_split``: candidate split coordinates bounded per box (1: width x sensitivity only);
    ``sdp``: :class:`SdpUse`."""

    bounds: tuple[BoundKind, ...] = (BoundKind.INTERVAL, BoundKind.CENTRED, BoundKind.SECOND_ORDER)
    gap_tol: float = 1e-3
    samples: int = 2048
    batch: int = 32
    trial_split: int = 1
    sdp: SdpUse = SdpUse.AUTO

    def __post_init__(self) -> None:
        owner = "BoxSearchOptions"
        bounds = self.bounds
        if isinstance(bounds, (str, BoundKind)) or not isinstance(bounds, (tuple, list)):
            raise TypeError(f"{owner}: bounds must be a tuple of BoundKind names, got {bounds!r}")
        object.__setattr__(self, "bounds", tuple(_coerce(BoundKind, b, f"{owner}: bounds entry") for b in bounds))
        object.__setattr__(self, "gap_tol", _real(owner, "gap_tol", self.gap_tol, 0.0))
        object.__setattr__(self, "samples", _whole(owner, "samples", self.samples, 0))
        object.__setattr__(self, "batch", _whole(owner, "batch", self.batch, 1))
        object.__setattr__(self, "trial_split", _whole(owner, "trial_split", self.trial_split, 1))
        object.__setattr__(self, "sdp", _coerce(SdpUse, self.sdp, f"{owner}: sdp"))


@dataclass(frozen=True)
class InvarianceOptions:
    """The invariance check (:mod:`certify.checks.invariance`).

    ``bnb``: piecewise-linear nets go first through the input-split branch and bound with batched CROWN bounds
    (:mod:`certify.engines.output_bnb`), the MILP only where it does not settle the check (False: MILP only, the
    reference a benchmark compares against); ``milp_cutoff``: give each output side's MILP a cutoff row at the
    level that matters (False: plain max/min); ``parallel_sides``: solve up to 2 sides at once when the MILP back-end
    is ``parallel_safe``; ``gap_tol``, ``samples``: the sub-box violation search for smooth nets
    (:mod:`certify.engines.violation_search`): in exact mode boxes that cannot raise the best violation by more than
    ``gap_tol`` are closed; ``samples`` random points give its first lower bound."""

    bnb: bool = True
    milp_cutoff: bool = True
    parallel_sides: bool = True
    gap_tol: float = 1e-6
    samples: int = 256

    def __post_init__(self) -> None:
        owner = "InvarianceOptions"
        object.__setattr__(self, "bnb", _flag(owner, "bnb", self.bnb))
        object.__setattr__(self, "milp_cutoff", _flag(owner, "milp_cutoff", self.milp_cutoff))
        object.__setattr__(self, "parallel_sides", _flag(owner, "parallel_sides", self.parallel_sides))
        object.__setattr__(self, "gap_tol", _real(owner, "gap_tol", self.gap_tol, 0.0))
        object.__setattr__(self, "samples", _whole(owner, "samples", self.samples, 0))


@dataclass(frozen=True)
class ParallelOptions:
    """How a search spreads over worker processes (:mod:`certify.engines.parallel`; ``VerifyConfig.workers`` and
    ``cluster`` say where).

    ``start_seconds``: the pool starts once the search has run this long (and bounded ``start_after // 2`` nodes),
    in the background: the search goes on serially and sends tasks only to workers that have started (the first
    pool of a process imports the engines once, about a CPU second), so a search that ends first loses nothing;
    ``start_after``: nodes bounded serially before any step is sent to the workers;
    ``chunk``: nodes per task on local workers for searches that expand one node per step (the region search; the
    sub-box searches send one step's batch); ``cluster_chunk``: the same on a Dask cluster, where each task costs
    the scheduler a few milliseconds; ``tasks_per_worker``: tasks per round and worker (load balance against the
    wait at the end of a round); ``rounds_ahead``: rounds a search keeps in flight beside the one it waits for
    (taken from the open nodes without the children of the rounds still out, so that the workers never wait for
    the main process; 0: each round is received before the next is sent); ``threads``: BLAS and torch threads of
    each worker process. ``chunk`` 2 against 8 (benchmarks/parallel.py): fewer nodes go out against a stale incumbent
    (8-16-16-8: 2004 nodes against 2215, serial 1937) and the rounds end more evenly; on Dask, 2 nodes a task
    measured 1.32-1.36x against 1.48-1.58x with 8 (3.3-4.7 against 2.0-2.2 ms of overhead per node)."""

    start_after: int = 16
    start_seconds: float = 0.25
    chunk: int = 2
    cluster_chunk: int = 8
    tasks_per_worker: int = 2
    rounds_ahead: int = 1
    threads: int = 1

    def __post_init__(self) -> None:
        owner = "ParallelOptions"
        object.__setattr__(self, "start_after", _whole(owner, "start_after", self.start_after, 0))
        object.__setattr__(self, "start_seconds", _real(owner, "start_seconds", self.start_seconds, 0.0))
        object.__setattr__(self, "chunk", _whole(owner, "chunk", self.chunk, 1))
        object.__setattr__(self, "cluster_chunk", _whole(owner, "cluster_chunk", self.cluster_chunk, 1))
        object.__setattr__(self, "tasks_per_worker", _whole(owner, "tasks_per_worker", self.tasks_per_worker, 1))
        object.__setattr__(self, "rounds_ahead", _whole(owner, "rounds_ahead", self.rounds_ahead, 0))
        object.__setattr__(self, "threads", _whole(owner, "threads", self.threads, 1))


def _cluster(value) -> str | None:
    """None, or the address of a Dask scheduler (a non-empty str such as ``tcp://host:8786``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"VerifyConfig: cluster must be a scheduler address (a non-empty str), got {value!r}")
    return value.strip()


def _coerce(enum_type, value, option: str):
    if isinstance(value, enum_type):
        return value
    choices = ", ".join(v.value for v in enum_type)
    if not isinstance(value, str):
        raise TypeError(f"{option} must be one of {choices} (a str or {enum_type.__name__}), got {value!r}")
    try:
        return enum_type(value.strip().lower())
    except ValueError:
        raise UsageError(f"{option} must be one of {choices}, got {value!r}") from None


def _norm(value) -> float:
    if isinstance(value, str):
        key = {"1": 1.0, "2": 2.0, "inf": math.inf, "infinity": math.inf}.get(value.strip().lower())
        if key is None:
            raise UsageError(f"VerifyConfig: norm must be 1, 2 or inf, got {value!r}")
        return key
    if not _is_real(value):
        raise TypeError(f"VerifyConfig: norm must be 1, 2 or math.inf, got {value!r}")
    if float(value) not in (1.0, 2.0, math.inf):
        raise UsageError(f"VerifyConfig: norm must be 1, 2 or inf, got {value!r}")
    return float(value)


def _instance(option: str, value, cls):
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"VerifyConfig: {option} must be {article} {cls.__name__}, got {type(value).__name__}")
    return value


METRIC_AUTO = "auto"


def _metric(value):
    """None (the plain norm), "auto", or a validated :class:`Metric` (from a Metric or a matrix P)."""
    if value is None or isinstance(value, Metric):
        return None if value is not None and value.is_identity else value
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ("identity", "none", "euclidean"):
            return None
        if key == METRIC_AUTO:
            return METRIC_AUTO
        raise UsageError(f"VerifyConfig: metric must be 'identity', 'auto' or a matrix P, got {value!r}")
    return _metric(Metric.of(value, "VerifyConfig: metric"))


@dataclass(frozen=True)
class VerifyConfig:
    """Options of a verification run.

    norm: induced norm p in {1, 2, inf}; margin: a bound must be <= 1 - margin to certify; samples: points for
    falsification; seed: RNG seed; device: :class:`Device`; timeout: seconds per check; exact: compute the exact
    value instead of stopping once the verdict is settled; method: :class:`Method`; budget: at most this many nodes
    (regions or sub-boxes) bounded per search, a deterministic limit (None: only the time limit); metric: the weighted
    2-norm ||x||_P = ||T x||_2 on the states that dissipativity, contraction, weight_norm and Corollary 3 use (a
    :class:`~certify.ir.metric.Metric` or a matrix P; None or "identity": the plain norm; "auto": search for one,
    see :mod:`certify.engines.metric_search`); solvers: the back-ends; regions, boxes, invariance: the options of
    each engine; workers: local worker processes for the searches (1: serial; the command line defaults to the
    number of cores); cluster: a Dask scheduler address to run the searches on instead (``workers`` is then
    ignored); parallel: :class:`ParallelOptions`. The verdict does not depend on workers or cluster.
    """

    norm: float = 2.0
    margin: float = 1e-6
    samples: int = 100_000
    seed: int = 0
    device: Device = Device.AUTO
    timeout: float = 60.0
    exact: bool = False
    method: Method = Method.AUTO
    budget: int | None = None
    metric: Metric | str | None = None
    solvers: SolverChoice = field(default_factory=SolverChoice)
    regions: RegionSearchOptions = field(default_factory=RegionSearchOptions)
    boxes: BoxSearchOptions = field(default_factory=BoxSearchOptions)
    invariance: InvarianceOptions = field(default_factory=InvarianceOptions)
    workers: int = 1
    cluster: str | None = None
    parallel: ParallelOptions = field(default_factory=ParallelOptions)

    def __post_init__(self) -> None:
        owner = "VerifyConfig"
        put = partial(object.__setattr__, self)
        put("norm", _norm(self.norm))
        put("margin", _real(owner, "margin", self.margin, 0.0, below=1.0))
        put("samples", _whole(owner, "samples", self.samples, 0))
        put("seed", _whole(owner, "seed", self.seed, 0, SEED_MAX))
        put("device", _coerce(Device, self.device, f"{owner}: device"))
        put("timeout", _real(owner, "timeout (seconds)", self.timeout, positive=True))
        put("exact", _flag(owner, "exact", self.exact))
        put("method", _coerce(Method, self.method, f"{owner}: method"))
        if self.budget is not None:
            put("budget", _whole(owner, "budget (nodes per search)", self.budget, 1))
        put("metric", _metric(self.metric))
        _instance("solvers", self.solvers, SolverChoice)
        _instance("regions", self.regions, RegionSearchOptions)
        _instance("boxes", self.boxes, BoxSearchOptions)
        _instance("invariance", self.invariance, InvarianceOptions)
        put("workers", _whole(owner, "workers", self.workers, 1))
        put("cluster", _cluster(self.cluster))
        _instance("parallel", self.parallel, ParallelOptions)

    @property
    def threshold(self) -> float:
        """The level a certified bound must reach: 1 - margin."""
        return 1.0 - self.margin

    def with_(self, **changes) -> "VerifyConfig":
        """A copy with ``changes``. Engines derive seeds by adding to the user's (``seed + k``): a derived seed past
        :data:`SEED_MAX` wraps around (modulo 2**63) instead of being refused."""
        seed = changes.get("seed")
        if _is_int(seed) and seed > SEED_MAX:
            changes["seed"] = int(seed) % (SEED_MAX + 1)
        return replace(self, **changes)

    def torch_device(self) -> str:
        """The torch device string to use: CUDA when asked or (for 'auto') when available, else CPU."""
        import torch  # deferred on purpose: reading options (e.g. for --help) must not load torch

        if self.device is Device.CUDA:
            if not torch.cuda.is_available():
                raise UsageError("--device cuda was asked for but torch sees no CUDA device; use --device auto or cpu")
            return "cuda"
        if self.device is Device.AUTO and torch.cuda.is_available():
            return "cuda"
        return "cpu"
