"""Verdicts and check results: frozen dataclasses with enums, the only thing analyses hand to reports.

Soundness rules (DESIGN.md section 3):
* ``CERTIFIED`` only from an exact computation or a re-checked bound with ``upper <= 1 - margin``;
* ``FALSIFIED`` only with a witness replayed in float64 through the IR;
* ``UNKNOWN`` otherwise, always with [lower, upper] and a reason.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    CERTIFIED = "certified"
    FALSIFIED = "falsified"
    UNKNOWN = "unknown"


class CheckName(enum.Enum):
    DISSIPATIVITY = "dissipativity"  # sup_X ||A*(x)|| < 1 (state part)
    CONTRACTION = "contraction"  # sup_X ||J(x)|| < 1 (state part)
    WEIGHT_NORM = "weight_norm"  # Corollary 4 product of norms < 1
    GAIN = "gain"  # sup_X ||A*(x)||, any shape, no threshold
    INVARIANCE = "invariance"  # f(X) inside X
    EQUILIBRIA = "equilibria"  # Corollary 3 bounds and equilibria


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


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: the verdict and a bracket [lower, upper] on the supremum being checked.

    ``lower`` is a value attained at a replayed point (or -inf/0 when none); ``upper`` a sound bound (or inf).
    ``extra`` holds check-specific JSON-ready data (equilibria, worst output, ...).
    """

    check: CheckName
    verdict: Verdict
    lower: float
    upper: float
    method: str
    seconds: float
    witness: Witness | None = None
    reason: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict is Verdict.FALSIFIED and self.witness is None:
            raise AssertionError("a falsified verdict needs a replayed witness")
        slack = 1e-9 * max(1.0, abs(self.upper)) if math.isfinite(self.upper) else 0.0
        if self.lower > self.upper + slack:
            raise AssertionError(f"bracket [{self.lower}, {self.upper}] is empty: an analysis is unsound")


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
