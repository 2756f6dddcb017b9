"""Verdicts and check results: frozen dataclasses with enums, the only thing analyses hand to reports.

Soundness rules (DESIGN.md section 3):
* ``CERTIFIED`` only from an exact computation or a re-checked bound with ``upper <= 1 - margin``;
* ``FALSIFIED`` only with a witness replayed in float64 through the IR;
* ``UNKNOWN`` otherwise, always with [lower, upper] and a reason.

Each check attaches typed details (:class:`SupNormDetails`, :class:`WeightNormDetails`,
:class:`InvarianceDetails`, :class:`EquilibriaDetails`); ``to_json()`` gives the keys of the JSON schema
``certify/1`` for that check, with every float written by :func:`json_number` (strict JSON: no NaN or Infinity).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from .errors import UsageError


class Verdict(str, enum.Enum):
    """The answer of a check or a run; a ``str`` enum, so ``report.verdict == "certified"`` (``.value`` is the text)."""

    CERTIFIED = "certified"
    FALSIFIED = "falsified"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class CheckName(enum.Enum):
    DISSIPATIVITY = "dissipativity"  # sup_X ||A*(x)|| < 1 (state part)
    CONTRACTION = "contraction"  # sup_X ||J(x)|| < 1 (state part)
    WEIGHT_NORM = "weight_norm"  # Corollary 4 product of norms < 1
    GAIN = "gain"  # sup_X ||A*(x)||, any shape, no threshold
    INVARIANCE = "invariance"  # f(X) inside X
    EQUILIBRIA = "equilibria"  # Corollary 3 bounds and equilibria
    STABILITY = "stability"  # one equilibrium attracting every trajectory from X (or a region of attraction)
    OUTPUT_BOUNDS = "output_bounds"  # every output within its bounds over X (a VNNLIB property)
    MEAN_SQUARE = "mean_square"  # deep Markov model: mean map contracts, noise bounded: E||x_t - x_bar||^2 bound


def parse_checks(text) -> tuple[CheckName, ...]:
    """'dissipativity,contraction' (or a list of names) -> (CheckName.DISSIPATIVITY, CheckName.CONTRACTION); a
    UsageError naming the unknown name and the choices otherwise."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not names:
        raise UsageError("--check needs at least one check name")
    known = {c.value: c for c in CheckName}
    out = []
    for name in names:
        if name not in known:
            raise UsageError(f"unknown check '{name}'; choose from {', '.join(known)}")
        if known[name] not in out:
            out.append(known[name])
    return tuple(out)


class BoundMethod(str, enum.Enum):
    """Which computation settled a check (the ``method`` of a result; a ``str`` enum)."""

    SAMPLE = "sample"  # a replayed sampled point (falsified)
    WEIGHT_NORM = "weight_norm"  # Corollary 4
    EXACT = "exact"  # region branch and bound, closed bracket
    BNB = "bnb"  # region branch and bound, open bracket
    BOXES = "boxes"  # sub-box branch and bound
    CROWN = "crown"  # input-split branch and bound with CROWN bounds (invariance; float64, no solver)
    SDP = "sdp"  # one SDP over the box
    INTERVAL = "interval"  # interval arithmetic
    MILP = "milp"  # MILP output bounds (the back-end is named in the label: "milp:cbc")
    REGIONS = "regions"  # enumeration of activation regions (equilibria)
    NEWTON = "newton"  # Newton and Krawczyk (equilibria of smooth nets)
    NONE = "none"

    def __str__(self) -> str:
        return self.value


def json_number(v: float | None):
    """A float for strict JSON (RFC 8259): finite values as numbers, +-inf as the strings "inf" / "-inf", NaN as
    "nan", None as null."""
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _trace_json(trace) -> list[list]:
    return [[json_number(t) for t in row] for row in trace]


@dataclass(frozen=True)
class Witness:
    """A point x in the box where the checked quantity takes ``value`` (replayed in float64 through the IR).

    ``x``: (n_in,) as a tuple; ``pattern``: activation signs per hidden layer (PWL nets), ``matrix``: the
    replayed matrix (A*(x) or J(x), state part) as rows.
    """

    x: tuple[float, ...]
    value: float
    pattern: tuple[tuple[int, ...], ...] | None = None
    matrix: tuple[tuple[float, ...], ...] | None = None

    def to_json(self) -> dict:
        out = {"x": [json_number(v) for v in self.x], "value": json_number(self.value)}
        if self.pattern is not None:
            out["pattern"] = [list(layer) for layer in self.pattern]
        if self.matrix is not None:
            out["matrix"] = [[json_number(v) for v in row] for row in self.matrix]
        return out


# ============================================================================================ per-check details
@dataclass(frozen=True)
class SupNormDetails:
    """What the engine of a sup-norm check (dissipativity, contraction, gain) did: region search ``nodes`` and
    ``lps``, or sub-box search ``boxes`` and ``proven_fraction``, or the SDP's ``sdp_min_eig`` and
    ``sdp_seconds``; ``trace``: (seconds, lower, upper) rows, thinned to at most 200. With a metric
    ||x||_P = ||T x||_2: ``metric`` P (rows), its ``metric_condition`` number and, when it was found by search,
    the SDP's ``metric_rate`` and the ``metric_rounds``; ``spectral_radius``: a refutation's spectral radius."""

    nodes: int | None = None
    lps: int | None = None
    proven_fraction: float | None = None
    boxes: int | None = None
    trace: tuple[tuple[float, float, float], ...] | None = None
    sdp_min_eig: float | None = None
    sdp_seconds: float | None = None
    metric: tuple[tuple[float, ...], ...] | None = None
    metric_condition: float | None = None
    metric_rate: float | None = None
    metric_rounds: int | None = None
    spectral_radius: float | None = None

    def to_json(self) -> dict:
        out: dict = {}
        if self.nodes is not None:
            out["nodes"] = int(self.nodes)
            out["lps"] = int(self.lps or 0)
        if self.proven_fraction is not None:
            out["proven_fraction"] = json_number(self.proven_fraction)
            out["boxes"] = int(self.boxes or 0)
        if self.trace is not None:
            out["trace"] = _trace_json(self.trace)
        if self.sdp_seconds is not None:
            out["sdp"] = {"min_eig": json_number(self.sdp_min_eig), "seconds": json_number(self.sdp_seconds)}
        if self.metric is not None:
            out["metric"] = {"P": [[json_number(v) for v in row] for row in self.metric],
                             "condition_number": json_number(self.metric_condition),
                             "rate": json_number(self.metric_rate), "rounds": self.metric_rounds}
        if self.spectral_radius is not None:
            out["spectral_radius"] = json_number(self.spectral_radius)
        return out


@dataclass(frozen=True)
class WeightNormDetails:
    """Corollary 4: the ``product`` and its factors (layer norms, slope maxima per layer, ||S||)."""

    product: float
    weight_norms: tuple[float, ...]
    slope_maxima: tuple[float, ...]
    skip_norm: float

    def to_json(self) -> dict:
        return {"product": json_number(self.product), "weight_norms": [json_number(v) for v in self.weight_norms],
                "slope_maxima": [json_number(v) for v in self.slope_maxima], "skip_norm": json_number(self.skip_norm)}


@dataclass(frozen=True)
class MilpSides:
    """The MILP step of the invariance check: the back-end, each side's final status ("x0:max" -> status),
    and the sound bound of each side's violation (f_i - upper_i, lower_i - f_i) after the MILPs."""

    backend: str
    status: tuple[tuple[str, str], ...]
    upper_excess: tuple[float, ...]
    lower_excess: tuple[float, ...]


@dataclass(frozen=True)
class InvarianceDetails:
    """The invariance check: the state output with the largest violation at the witness, the interval bound of the
    violation, the sub-box search's work (smooth nets), the MILP step (piecewise-linear nets) and whether a MILP
    certificate was confirmed without any solver."""

    worst_output: str
    interval_upper: float
    proven_fraction: float | None = None
    boxes: int | None = None
    milp: MilpSides | None = None
    solver_free_recheck: str | None = None

    def to_json(self) -> dict:
        out: dict = {"worst_output": self.worst_output, "interval_upper": json_number(self.interval_upper)}
        if self.proven_fraction is not None:
            out["proven_fraction"] = json_number(self.proven_fraction)
            out["boxes"] = int(self.boxes or 0)
        if self.milp is not None:
            out["milp_backend"] = self.milp.backend
            out["milp_status"] = dict(self.milp.status)
            out["output_upper_excess"] = [json_number(v) for v in self.milp.upper_excess]
            out["output_lower_excess"] = [json_number(v) for v in self.milp.lower_excess]
        if self.solver_free_recheck is not None:
            out["solver_free_recheck"] = self.solver_free_recheck
        return out


@dataclass(frozen=True)
class EquilibriaDetails:
    """The equilibria found (each a tuple of state values), the Corollary 3 bounds on their norm, whether the list
    is ``complete``; ``regions`` solved (piecewise-linear nets) or per point whether a Krawczyk test ``proven`` it
    (smooth nets)."""

    points: tuple[tuple[float, ...], ...]
    norm_lower: float
    norm_upper: float
    complete: bool
    regions: int | None = None
    proven: tuple[bool, ...] | None = None

    def to_json(self) -> dict:
        inner: dict = {"points": [[json_number(v) for v in x] for x in self.points],
                       "norm_lower": json_number(self.norm_lower), "norm_upper": json_number(self.norm_upper)}
        if self.proven is not None:
            inner["proven"] = [bool(v) for v in self.proven]
        inner["complete"] = bool(self.complete)
        if self.regions is not None:
            inner["regions"] = int(self.regions)
        return {"equilibria": inner}


@dataclass(frozen=True)
class StabilityDetails:
    """The pieces of the stability check: the ``equilibria`` found (and whether the list is complete), the metric P
    and the contraction ``rate`` (an upper bound on sup ||T J T^-1||_2) with the contraction verdict, the invariance
    verdict with its upper bound on max_i max(f_i(x) - upper_i, lower_i - f_i(x)) over the box
    (``invariance_upper``: < 0 proves f(X) inside X), and the set S of starts that converge: ``start_set`` "box" or
    "ellipsoid" (centred at the first equilibrium, ``radius`` in ||.||_P) or, when the rate is in the 1- or
    inf-norm (``norm``; no metric), "ball" ({||x - x_bar||_norm <= radius}), with its ``box_share`` of the box's
    volume."""

    equilibria: tuple[tuple[float, ...], ...] = ()
    equilibria_complete: bool = False
    metric: tuple[tuple[float, ...], ...] | None = None
    rate: float | None = None
    contraction: str | None = None
    invariance: str | None = None
    invariance_upper: float | None = None
    start_set: str | None = None
    box_share: float | None = None
    radius: float | None = None
    norm: float = 2.0

    def with_invariance(self, verdict: str, upper: float | None = None) -> "StabilityDetails":
        return replace(self, invariance=verdict, invariance_upper=upper)

    def with_set(self, kind: str, share: float, radius: float | None) -> "StabilityDetails":
        return replace(self, start_set=kind, box_share=share, radius=radius)

    def to_json(self) -> dict:
        out: dict = {"equilibria": {"points": [[json_number(v) for v in x] for x in self.equilibria],
                                    "complete": bool(self.equilibria_complete)}}
        if self.metric is not None:
            out["metric"] = {"P": [[json_number(v) for v in row] for row in self.metric]}
        out["rate"] = json_number(self.rate)
        out["contraction"] = self.contraction
        out["invariance"] = self.invariance
        out["invariance_upper"] = json_number(self.invariance_upper)
        out["start_set"] = self.start_set
        out["box_share"] = json_number(self.box_share)
        out["radius"] = json_number(self.radius)
        out["norm"] = "inf" if math.isinf(self.norm) else str(int(self.norm))  # as the report's "norm"
        return out


@dataclass(frozen=True)
class MeanSquareDetails:
    """The mean-square bound of a deep Markov model x+ = K(x) + L(x) w (w ~ N(0, I)): the contraction ``rate`` rho
    of K in the metric P (rows; ||x||_P = ||T x||_2, P = T^T T), the equilibrium ``x_bar`` of K (None when it was
    not located), ``x_bar_within`` (a bound on ||x_bar - x_found||_P for the exact fixed point, or None),
    ``sigma_lower``/``sigma_upper`` bracketing sup_X ||T L(x)||_F (sampled / sound), the noise ``form``, the
    ``stationary`` bound sigma_upper^2 / (1 - rho^2), the stability check's verdict, and the sub-boxes of the
    sigma search. The statement: E[||x_t - x_bar||_P^2 ; x_0 .. x_t in the box] <= rho^(2t) ||x_0 - x_bar||_P^2 +
    sigma^2 / (1 - rho^2) (over the trajectories that have stayed in the box)."""

    rate: float | None
    metric: tuple[tuple[float, ...], ...] | None
    x_bar: tuple[float, ...] | None
    x_bar_within: float | None
    sigma_lower: float
    sigma_upper: float
    form: str
    stationary: float
    stability: str
    noise_boxes: int = 0

    def to_json(self) -> dict:
        return {
            "rate": json_number(self.rate),
            "metric": None if self.metric is None else {"P": [[json_number(v) for v in r] for r in self.metric]},
            "x_bar": None if self.x_bar is None else [json_number(v) for v in self.x_bar],
            "x_bar_within": json_number(self.x_bar_within),
            "sigma": {"lower": json_number(self.sigma_lower), "upper": json_number(self.sigma_upper),
                      "form": self.form, "boxes": int(self.noise_boxes)},
            "stationary_bound": json_number(self.stationary),
            "stability": self.stability,
            "valid_while": "over the trajectories that have stayed in the box up to t: E[. ; tau > t]",
        }


CheckDetails = (SupNormDetails | WeightNormDetails | InvarianceDetails | EquilibriaDetails | StabilityDetails
                | MeanSquareDetails)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: the verdict and a bracket [lower, upper] on the supremum being checked.

    ``lower`` is a value attained at a replayed point (or -inf/0 when none); ``upper`` a sound bound (or inf).
    ``method``: what settled it; ``details``: the check's typed details (or None).
    """

    check: CheckName
    verdict: Verdict
    lower: float
    upper: float
    method: BoundMethod
    seconds: float
    witness: Witness | None = None
    reason: str = ""
    details: CheckDetails | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", BoundMethod(self.method))
        if self.verdict is Verdict.FALSIFIED and self.witness is None:
            raise AssertionError("a falsified verdict needs a replayed witness")
        slack = 1e-9 * max(1.0, abs(self.upper)) if math.isfinite(self.upper) else 0.0
        if self.lower > self.upper + slack:
            raise AssertionError(f"bracket [{self.lower}, {self.upper}] is empty: an analysis is unsound")

    @property
    def method_label(self) -> str:
        """The method as written in reports and JSON: ``milp:<backend>`` for MILP output bounds."""
        if self.method is BoundMethod.MILP and isinstance(self.details, InvarianceDetails) and self.details.milp:
            return f"milp:{self.details.milp.backend}"
        return self.method.value

    def to_json(self) -> dict:
        """This check's entry of the JSON report (schema ``certify/1``)."""
        entry = {
            "verdict": self.verdict.value,
            "lower": json_number(self.lower),
            "upper": json_number(self.upper),
            "method": self.method_label,
            "seconds": json_number(round(float(self.seconds), 6)),
            "witness": None if self.witness is None else self.witness.to_json(),
            "reason": self.reason,
        }
        if self.details is not None:
            for key, value in self.details.to_json().items():
                entry.setdefault(key, value)
        return entry


def overall_verdict(results) -> Verdict:
    """Falsified if any check is falsified; certified if all are; unknown otherwise."""
    verdicts = [r.verdict for r in results]
    if any(v is Verdict.FALSIFIED for v in verdicts):
        return Verdict.FALSIFIED
    if verdicts and all(v is Verdict.CERTIFIED for v in verdicts):
        return Verdict.CERTIFIED
    return Verdict.UNKNOWN


def threshold_verdict(lower: float, upper: float, margin: float, witness: Witness | None) -> Verdict:
    """Verdict for 'sup < 1': certified when upper <= 1 - margin, falsified when a replayed witness reaches >= 1."""
    if upper <= 1.0 - margin:
        return Verdict.CERTIFIED
    if witness is not None and witness.value >= 1.0:
        return Verdict.FALSIFIED
    return Verdict.UNKNOWN
