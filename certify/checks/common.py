"""What every check shares: fitting the box to the model, the dynamics requirement, witnesses, and one sampling
per quantity per run.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..certificate import CheckName, Witness
from ..config import VerifyConfig
from ..engines.sampling import SampleResult, falsify, pattern_of
from ..errors import RegionError, UsageError
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.quantity import Quantity

_TRACE_ROWS = 200


def align(net: Network, box: Box, box_path: str = "region") -> tuple[Network, Box]:
    """Check that the box fits the model and agree on which coordinates are states.

    A single-input model takes its state/input split from the region file; a two-input model fixes it.
    """
    if box.dim != net.n_in:
        raise RegionError(
            f"{box_path}: the region has {box.dim} coordinates but the model takes {net.n_in} inputs "
            f"({net.n_states} states, {net.n_inputs} exogenous inputs); give one [lower, upper] per model input"
        )
    if box.n_states != net.n_states:
        if net.n_states == net.n_in:
            net = replace(net, n_states=box.n_states)
        elif box.n_states == box.dim:
            box = replace(box, n_states=net.n_states)
        else:
            raise RegionError(
                f"{box_path}: the region lists {box.n_states} states but the model's first input has "
                f"{net.n_states}; list the states under 'states' and the rest under 'inputs'"
            )
    return net, box


def require_dynamics(net: Network, check: CheckName) -> None:
    """UsageError unless the model maps states to states (x+ = f(x, u))."""
    if not net.is_dynamics:
        raise UsageError(
            f"the {check.value} check needs a dynamical system x+ = f(x): the model has {net.n_out} outputs but "
            f"{net.n_states} states; use --check gain for a map of another shape, or mark exogenous inputs "
            f"under 'inputs' in the region file"
        )


def matrix_witness(net: Network, x: np.ndarray, value: float, matrix: np.ndarray) -> Witness:
    """A :class:`Witness` at x (n_in,) with its value, activation pattern (PWL nets) and replayed matrix."""
    pattern = pattern_of(net, x) if net.piecewise_linear else None
    rows = tuple(tuple(float(v) for v in row) for row in np.atleast_2d(matrix))
    return Witness(tuple(float(v) for v in x), float(value), pattern, rows)


def thin_trace(trace, most: int = _TRACE_ROWS) -> tuple[tuple[float, float, float], ...]:
    """At most ``most`` (seconds, lower, upper) entries of a search trace, the last one always kept."""
    rows = [tuple(map(float, t)) for t in trace]
    if len(rows) <= most:
        return tuple(rows)
    step = math.ceil(len(rows) / most)
    return tuple(rows[:-1:step] + [rows[-1]])


class SamplingMemo:
    """One falsification per (quantity, state_only) per run, shared by the checks of the run: A* = J for nets that
    are piecewise linear through the origin, so one sampling serves dissipativity, contraction and weight_norm."""

    def __init__(self) -> None:
        self._results: dict[tuple, SampleResult] = {}

    def sample(self, net: Network, box: Box, config: VerifyConfig, quantity: Quantity, state_only: bool,
               metric: Metric | None = None) -> SampleResult:
        """The run's falsification of sup ||Q(x)|| (in ``metric`` when one is given)."""
        key = (Quantity.A_STAR if net.piecewise_linear_through_origin else quantity, state_only, id(metric))
        if key not in self._results:
            self._results[key] = falsify(net, box, quantity, config.norm, config, state_only=state_only,
                                         metric=metric)
        return self._results[key]


def bracket_text(lower: float, upper: float) -> str:
    """"[lower, upper]" with both ends at the fewest significant digits (6 to 17) that tell them apart in print:
    [0.75, 0.7500000000015] prints as "[0.75, 0.750000000002]", not as "[0.75, 0.75]" (which reads as settled)."""
    for digits in range(6, 18):
        lo, hi = f"{lower:.{digits}g}", f"{upper:.{digits}g}"
        if lo != hi or lower == upper:
            return f"[{lo}, {hi}]"
    return f"[{float(lower)!r}, {float(upper)!r}]"


def digits_beside(value: float, reference: float = 1.0) -> str:
    """``value`` with as many significant digits (6 to 17) as it takes to tell it from ``reference`` in print:
    1.00000002 against 1 prints as "1.00000002", not "1" (a reason "||J|| = 1 >= 1" reads as a contradiction)."""
    for digits in range(6, 18):
        text = f"{value:.{digits}g}"
        if value == reference or float(text) != reference:
            return text
    return repr(float(value))
