"""One frozen configuration object that travels through every analysis (no module-level settings).

:class:`VerifyConfig` holds the user's options (norm, margin, sampling, seed, device, time limit, method) and the
solver back-ends (:class:`SolverChoice`). Every engine reads what it needs from it; nothing sets process-wide state
(thread counts, solver globals). Option values that name a choice are ``str`` enums (:class:`Method`,
:class:`Device`), so they compare equal to the strings users write (``config.method == "auto"``).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

from .errors import UsageError


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


@dataclass(frozen=True)
class SolverChoice:
    """The registered back-end names (see :mod:`certify.solvers.registry`) each kind of problem goes to.

    ``lp``: the many small LPs of the region traversal; ``lp_relaxation``: LP relaxations that tighten
    pre-activation bounds before a MILP; ``milp``: exact output bounds (invariance), equilibria, l1/linf gains;
    ``sdp``: the LipSDP bound.
    """

    lp: str = "highs"
    lp_relaxation: str = "highs"
    milp: str = "cbc"
    sdp: str = "scs"


@dataclass(frozen=True)
class RegionSearchOptions:
    """The region branch and bound (:mod:`certify.engines.region_search`).

    ``min_radius``: pieces with an inscribed ball of radius <= min_radius * (largest box width) are slivers (bounded
    soundly, never trusted to be empty); ``samples``: random points for the first lower bound."""

    min_radius: float = 1e-8
    samples: int = 256


@dataclass(frozen=True)
class BoxSearchOptions:
    """The sub-box branch and bound for sup norms (:mod:`certify.engines.box_search`).

    ``bounds``: the cheap bounds computed on every sub-box; ``gap_tol``: without a threshold, stop once
    upper - lower <= gap_tol * max(1, lower); ``samples``: points of the first falsification; ``batch``: boxes split
    per step; ``trial_split``: candidate split coordinates bounded per box (1: width x sensitivity only);
    ``sdp``: :class:`SdpUse`."""

    bounds: tuple[BoundKind, ...] = (BoundKind.INTERVAL, BoundKind.CENTRED)
    gap_tol: float = 1e-3
    samples: int = 2048
    batch: int = 32
    trial_split: int = 1
    sdp: SdpUse = SdpUse.AUTO


@dataclass(frozen=True)
class InvarianceOptions:
    """The invariance check (:mod:`certify.checks.invariance`).

    ``milp_cutoff``: give each output side's MILP a cutoff row at the level that matters (False: plain max/min, the
    reference a benchmark compares against); ``parallel_sides``: solve up to 2 sides at once when the MILP back-end
    is ``parallel_safe``; ``gap_tol``, ``samples``: the sub-box violation search for smooth nets
    (:mod:`certify.engines.violation_search`): in exact mode boxes that cannot raise the best violation by more than
    ``gap_tol`` are closed; ``samples`` random points give its first lower bound."""

    milp_cutoff: bool = True
    parallel_sides: bool = True
    gap_tol: float = 1e-6
    samples: int = 256


def _coerce(enum_type, value, option: str):
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(v.value for v in enum_type)
        raise UsageError(f"{option} must be one of {choices}, got {value!r}") from None


@dataclass(frozen=True)
class VerifyConfig:
    """Options of a verification run.

    norm: induced norm p in {1, 2, inf}; margin: a bound must be <= 1 - margin to certify; samples: points for
    falsification; seed: RNG seed; device: :class:`Device`; timeout: seconds per check; exact: compute the exact
    value instead of stopping once the verdict is settled; method: :class:`Method`; budget: at most this many nodes
    (regions or sub-boxes) bounded per search, a deterministic limit (None: only the time limit); solvers: the
    back-ends; regions, boxes, invariance: the options of each engine.
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
    solvers: SolverChoice = field(default_factory=SolverChoice)
    regions: RegionSearchOptions = field(default_factory=RegionSearchOptions)
    boxes: BoxSearchOptions = field(default_factory=BoxSearchOptions)
    invariance: InvarianceOptions = field(default_factory=InvarianceOptions)

    def __post_init__(self) -> None:
        if self.norm not in (1.0, 2.0, math.inf):
            raise UsageError(f"norm must be 1, 2 or inf, got {self.norm}")
        if not 0 <= self.margin < 1:
            raise UsageError(f"margin must be in [0, 1), got {self.margin}")
        if self.samples < 0:
            raise UsageError(f"samples must be >= 0, got {self.samples}")
        object.__setattr__(self, "device", _coerce(Device, self.device, "device"))
        object.__setattr__(self, "method", _coerce(Method, self.method, "method"))
        if not self.timeout > 0:
            raise UsageError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.budget is not None and (isinstance(self.budget, bool) or int(self.budget) != self.budget
                                        or self.budget < 1):
            raise UsageError(f"budget must be a positive whole number of nodes, got {self.budget!r}")

    @property
    def threshold(self) -> float:
        """The level a certified bound must reach: 1 - margin."""
        return 1.0 - self.margin

    def with_(self, **changes) -> "VerifyConfig":
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
