"""Which pictures a report shows: for each check, a picture of the quantity that check bounded, drawn so that it
cannot contradict the verdict (:mod:`certify.report.plots` draws them).

* dissipativity: ||A*(x)|| (in a metric ||.||_P: ||T A*(x) T^-1||_2); contraction: ||J(x)|| (the same); a check
  falsified by a spectral radius >= 1 (no metric can certify): the spectral radius of the matrix instead;
* gain: ||A*(x)|| on all columns, with a sequential colour scale (the gain has no threshold);
* invariance: the violation V(x), diverging at 0 (> 0: f(x) leaves the box);
* weight_norm: the factors of the Corollary 4 product against 1;
* stability: ||T J(x) T^-1||_2 in the metric found (without one: the spectral radius of J), the state space with
  the equilibrium and the certified start set (the box, or the P-ellipsoid around x_bar);
* an unknown check whose engine was the sub-box search: which cells of a cut of the box a sound bound proves;
* for every branch and bound: its bracket against time on the check's clock; for every square matrix field: the
  eigenvalues at sampled points against the unit circle (the witness's marked).

A map of a box with more than two coordinates is a slice through the check's witness (or, without one, through the
point of the largest sampled value, or the equilibrium for stability), and its caption says where the other
coordinates are fixed. Reports are generic over the details dataclasses: a check this module does not know gets its
bracket plot (when its details carry a ``trace``) and nothing else.
"""

from __future__ import annotations

import numpy as np

from ..certificate import (
    CheckName,
    CheckResult,
    EquilibriaDetails,
    StabilityDetails,
    SupNormDetails,
    Verdict,
    WeightNormDetails,
)
from ..config import VerifyConfig
from ..errors import CertifyError
from ..ir.metric import Metric
from ..ir.quantity import Quantity
from . import plots
from .plots import Field, Picture

# the matrix field each check bounds (None: no matrix field of its own)
QUANTITY = {
    CheckName.DISSIPATIVITY: Quantity.A_STAR,
    CheckName.CONTRACTION: Quantity.JACOBIAN,
    CheckName.GAIN: Quantity.A_STAR,
    CheckName.WEIGHT_NORM: Quantity.A_STAR,
    CheckName.STABILITY: Quantity.JACOBIAN,
    CheckName.INVARIANCE: Quantity.VIOLATION,
}


def metric_of(details) -> Metric | None:
    """The metric P a check's details carry (``details.metric``, rows of P), or None (the plain norm)."""
    rows = getattr(details, "metric", None)
    if rows is None:
        return None
    try:
        metric = Metric.of(np.array(rows, dtype=np.float64), where="report metric")
    except CertifyError:
        return None
    return None if metric.is_identity else metric


def equilibria_of(results) -> np.ndarray | None:
    """The equilibria some check found (equilibria or stability details), (k, n_states), or None."""
    for r in results:
        pts = None
        if isinstance(r.details, EquilibriaDetails):
            pts = r.details.points
        elif isinstance(r.details, StabilityDetails):
            pts = r.details.equilibria
        if pts:
            return np.array(pts, dtype=np.float64)
    return None


START_SET_LABEL = "||x - x_bar||_P <= r (certified start set)"

TITLES = {CheckName.INVARIANCE: "{name}: {symbol}, how far f(x) leaves the box (< 0: inside)",
          CheckName.GAIN: "{name}: {symbol} (no threshold)"}


def _certified_ellipsoid(r: CheckResult) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(x_bar, P, r) of a certified stability result whose start set is a P-ellipsoid, else None."""
    d = r.details
    if not isinstance(d, StabilityDetails) or r.verdict is not Verdict.CERTIFIED or d.start_set != "ellipsoid":
        return None
    if d.metric is None or d.radius is None or not d.equilibria:
        return None
    return np.array(d.equilibria[0], dtype=np.float64), np.array(d.metric, dtype=np.float64), float(d.radius)


def _certified_ball(r: CheckResult) -> tuple[np.ndarray, float, float] | None:
    """(x_bar, p, r) of a certified stability result whose start set is a ball of the 1- or inf-norm, else None."""
    d = r.details
    if not isinstance(d, StabilityDetails) or r.verdict is not Verdict.CERTIFIED or d.start_set != "ball":
        return None
    if d.radius is None or not d.equilibria:
        return None
    return np.array(d.equilibria[0], dtype=np.float64), float(d.norm), float(d.radius)


def check_field(r: CheckResult, norm: float) -> Field | None:
    """The field a map of this check's result draws (module docstring), or None."""
    quantity = QUANTITY.get(r.check)
    if quantity is None or r.check is CheckName.WEIGHT_NORM:
        return None
    if quantity is Quantity.VIOLATION:
        return Field(Quantity.VIOLATION, threshold=0.0)
    if r.check is CheckName.GAIN:
        return Field(quantity, norm, state_only=False, threshold=None)
    metric = metric_of(r.details)
    refuted = getattr(r.details, "spectral_radius", None) is not None
    if r.check is CheckName.STABILITY and metric is None:
        refuted = True
    if refuted:
        return Field(quantity, 2.0, metric=None, measure="radius")
    return Field(quantity, 2.0 if metric is not None else norm, metric=metric)


def _map_marks(r: CheckResult, equilibria) -> tuple[tuple, np.ndarray | None, str]:
    """(marks, slice point, what the slice point is) for the map of one result."""
    if r.check is CheckName.STABILITY:
        d = r.details
        if r.witness is not None and isinstance(d, StabilityDetails) and len(d.equilibria) < 2:
            x = np.array(r.witness.x)
            return (("unstable equilibrium", x),), x, "through the unstable equilibrium"
        if equilibria is not None and len(equilibria):
            return (), equilibria[0], "through the equilibrium x_bar"
        return (), None, ""
    if r.witness is None:
        return (), None, ""
    label = "witness" if r.verdict is Verdict.FALSIFIED else "largest value found"
    x = np.array(r.witness.x, dtype=np.float64)
    return ((label, x),), x, f"through the {label}"


def proven_boxes_picture(report, r: CheckResult, field: Field | None) -> Picture | None:
    """The proven-sub-box map of an unknown sup-norm check whose engine was the sub-box search (its details carry
    ``proven_fraction``): what a sound bound proves on each cell of a cut of the box (:func:`plots.proven_boxes_map`)
    beside the map of values. None for every other result: a certified check was proven on the whole box, a
    falsified one has its witness."""
    d = r.details
    if r.verdict is not Verdict.UNKNOWN or not isinstance(d, SupNormDetails) or d.proven_fraction is None:
        return None
    if field is None or field.threshold is None or field.measure != "norm" or report.box.dim < 2:
        return None
    marks = () if r.witness is None else (("largest value found", np.array(r.witness.x, dtype=np.float64)),)
    return plots.proven_boxes_map(report.network, report.box, field, 1.0 - report.margin, VerifyConfig().boxes.bounds,
                                  marks=marks, check=r.check.value, searched=d.proven_fraction)


def check_pictures(report, r: CheckResult, equilibria) -> list[Picture]:
    """The map (or bar chart) and bracket plot of one check (module docstring)."""
    net, box = report.network, report.box
    out: list[Picture] = []
    name = r.check.value
    field = check_field(r, report.norm)
    if field is not None:
        marks, at, where = _map_marks(r, equilibria)
        if at is None and box.dim > 2:
            at, where = plots.largest_sampled(net, box, field), "through the largest sampled value"
        eq = equilibria if r.check in (CheckName.STABILITY, CheckName.DISSIPATIVITY, CheckName.CONTRACTION) else None
        ellipsoid = _certified_ellipsoid(r)
        curves = () if ellipsoid is None or net.n_states < 2 else (
            (START_SET_LABEL, plots.ellipse_points(*ellipsoid, dims=(0, 1))),)
        out.append(plots.norm_map(net, box, field, at=at, where=where, marks=marks, equilibria=eq, check=name,
                                  title=TITLES.get(r.check, "{name}: {symbol}").format(name=name,
                                                                                      symbol=field.symbol),
                                  curves=curves))
    boxes = proven_boxes_picture(report, r, field)
    if boxes is not None:
        out.append(boxes)
    if isinstance(r.details, WeightNormDetails):
        d = r.details
        names = [f"||W_{k}||" for k in range(len(d.weight_norms))] + \
                [f"max slope {k}" for k in range(len(d.slope_maxima))]
        values = [*d.weight_norms, *d.slope_maxima]
        if d.skip_norm:
            names.append("||S||")
            values.append(d.skip_norm)
        out.append(plots.factor_plot(names, values, d.product, check=name))
    trace = getattr(r.details, "trace", None)
    if trace:
        threshold = None if r.check is CheckName.GAIN else (0.0 if r.check is CheckName.INVARIANCE else 1.0)
        label = f"sup {field.symbol}" if field is not None else "the supremum"
        out.append(plots.bracket_plot(trace, r.seconds, threshold, check=name, label=label))
    return out


def _eigen_pictures(report) -> list[Picture]:
    """One eigenvalue plot per square matrix field checked (A* and J are one field for nets piecewise linear
    through the origin), under the first check that bounded it."""
    net = report.network
    if not net.is_dynamics:
        return []
    seen: dict[Quantity, bool] = {}
    out = []
    for r in report.results:
        quantity = QUANTITY.get(r.check)
        if quantity is None or quantity is Quantity.VIOLATION or r.check is CheckName.GAIN:
            continue
        key = Quantity.A_STAR if net.piecewise_linear_through_origin else quantity
        if key in seen:
            continue
        seen[key] = True
        matrix = None
        if r.witness is not None and r.witness.matrix is not None and r.check is not CheckName.STABILITY:
            matrix = np.array(r.witness.matrix, dtype=np.float64)
        out.append(plots.eigenvalue_plot(net, report.box, quantity, witness_matrix=matrix, check=r.check.value))
    return out


def _state_space(report, equilibria) -> list[Picture]:
    net, box = report.network, report.box
    if not net.is_dynamics or net.n_states < 2:
        return []
    ellipsoid, ball, whole_box, check, at = None, None, False, None, None
    for r in report.results:
        d = r.details
        if isinstance(d, StabilityDetails) and r.verdict is Verdict.CERTIFIED:
            check = r.check.value
            whole_box = d.start_set == "box"
            ellipsoid, ball = _certified_ellipsoid(r), _certified_ball(r)
            centre = ellipsoid if ellipsoid is not None else ball
            if centre is not None:
                at = np.concatenate([centre[0], box.center[net.n_states:]])
    return [plots.phase_portrait(net, box, at=at, equilibria=equilibria, ellipsoid=ellipsoid,
                                 start_set_is_box=whole_box, check=check, ball=ball)]


def pictures(report) -> list[Picture]:
    """Every picture of the report, in order: per check (in the order of the checks), then the state space and
    the eigenvalues; empty without a network or with fewer than 2 coordinates."""
    net, box = report.network, report.box
    if net is None or box.dim < 2:
        return []
    equilibria = equilibria_of(report.results)
    out: list[Picture] = []
    for r in report.results:
        out += check_pictures(report, r, equilibria)
    out += _state_space(report, equilibria)
    out += _eigen_pictures(report)
    return out
