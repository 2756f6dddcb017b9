"""Render a report (a :class:`~certify.report.report.Report`) as Markdown, one self-contained HTML file, or JUnit XML.

Every function takes the report as its first argument; this module does not import the report type (the report
calls it).
"""

from __future__ import annotations

import base64
import html
import math
import re
import xml.etree.ElementTree as ET

import numpy as np

from ..certificate import CheckName, EquilibriaDetails, MeanSquareDetails, StabilityDetails, Verdict
from ..ir.numerics import norm_label, spectral_radius
from . import figures, plots
from .provenance import certify_version

_BADGE = {Verdict.CERTIFIED: "#1a7f37", Verdict.FALSIFIED: "#cf222e", Verdict.UNKNOWN: "#9a6700"}
_NEUTRAL = "#57606a"  # a check without a threshold (the gain): its verdict is not a pass or a fail

# checks whose verdict says nothing about a threshold (no green or red in the HTML table)
NO_THRESHOLD = frozenset({CheckName.GAIN})

IMPLICATIONS = {
    CheckName.DISSIPATIVITY: "||x+|| - ||x|| <= ||b*(x)|| for every x in the box (Theorem 1).",
    CheckName.CONTRACTION: "f is a contraction on the (convex) box: with invariance, a unique equilibrium in the box "
    "attracts every trajectory from it (Banach).",
    CheckName.WEIGHT_NORM: "the product of layer norms and slope bounds is below 1, which proves dissipativity "
    "(Corollary 4).",
    CheckName.GAIN: "the gain sup ||A*(x)|| over the box (all columns) is known exactly: the bracket is closed "
    "(the local Lipschitz constant for ReLU-type nets).",
    CheckName.INVARIANCE: "f maps the box into itself, so trajectories starting in it stay in it.",
    CheckName.EQUILIBRIA: "the list of equilibria in the box is complete, and each lies within the Corollary 3 bounds "
    "on its norm.",
    CheckName.STABILITY: "one equilibrium attracts every trajectory that starts in the stated set (the box, or the "
    "P-ellipsoid around the equilibrium; a ball of the norm with --norm 1 or inf), at the stated rate in that norm.",
    CheckName.OUTPUT_BOUNDS: "every output stays strictly within its bounds for every input in the box: the "
    "property's unsafe set is unreachable (VNN-COMP: unsat).",
    CheckName.MEAN_SQUARE: "E[||x_t - x_bar||_P^2 ; x_0 .. x_t in the box] <= rho^(2t) ||x_0 - x_bar||_P^2 + "
    "sigma^2 / (1 - rho^2) for the deep Markov model x+ = K(x) + L(x) w: the mean square over the trajectories that "
    "have stayed in the box.",
}

# Beside dissipativity when A* is not the Jacobian (activations not piecewise linear through the origin).
NOT_JACOBIAN = ("A* is not the Jacobian for this net's activations, so this alone does not rule out several "
                "equilibria (the contraction check bounds J)")

# What [lower, upper] is, for each check: the numbers need words.
BRACKETS = {
    CheckName.DISSIPATIVITY: "[lower, upper] brackets sup over the box of {m}, the norm of A*(x) on the state "
    "columns; lower is attained at a replayed point; certified when upper <= 1 - margin, falsified when lower >= 1.",
    CheckName.CONTRACTION: "[lower, upper] brackets sup over the box of {m}, the norm of the Jacobian J(x) on the "
    "state columns; lower is attained at a replayed point; certified when upper <= 1 - margin, falsified when "
    "lower >= 1.",
    CheckName.WEIGHT_NORM: "upper is the Corollary 4 product of the layer norms and slope maxima (a bound on "
    "sup ||A*(x)||); lower is a replayed value of ||A*(x)||; the test passes when the product is <= 1 - margin.",
    CheckName.GAIN: "[lower, upper] brackets the gain sup over the box of ||A*(x)||, all columns (states and "
    "inputs). The gain has no threshold: its verdict is not a pass or a fail ('certified' means the bracket is "
    "closed and the value exact; 'unknown' that it is not).",
    CheckName.INVARIANCE: "[lower, upper] brackets V, the largest amount by which the image f(X) leaves the box: "
    "V = sup over x in the box of max over the states i of max(f_i(x) - upper_i, lower_i - f_i(x)). V > 0: some "
    "f(x) lies outside the box by V; V < 0: f(X) stays inside, at least |V| from every face. Certified when "
    "upper < 0, falsified when lower > 0.",
    CheckName.EQUILIBRIA: "[lower, upper] are the Corollary 3 bounds on the norm of every equilibrium x_bar in the "
    "box: inf ||b*|| / sup ||I - A*|| <= ||x_bar|| <= sup ||b*|| / (1 - sup ||A*||); upper is inf when "
    "sup ||A*|| >= 1 (Corollary 3 then gives no upper bound). The verdict is about the list of equilibria: "
    "certified means it is complete.",
    CheckName.STABILITY: "[lower, upper] brackets the contraction rate rho = sup over the box of {m} "
    "(J the Jacobian; in the metric P when there is one); certified needs rho < 1 and a start set S (below).",
    CheckName.OUTPUT_BOUNDS: "[lower, upper] brackets V = sup over the box of max over the bounded sides of "
    "f_i(x) - upper_i and lower_i - f_i(x). V > 0: some input drives an output into the unsafe set (falsified, "
    "VNN-COMP sat); V < 0: every output stays inside its bounds with room |V| (certified, unsat).",
    CheckName.MEAN_SQUARE: "[lower, upper] brackets the contraction rate rho of the mean map K in the metric P "
    "(sup over the box of ||T J_K(x) T^-1||_2); sigma bounds sup over the box of ||T L(x)||_F (below).",
}

# Said beside a falsified check in a fixed norm, so that nobody reads it as instability.
NOT_INSTABILITY = ("a falsified check in {norm} is not instability: a loop can be stable in a weighted "
                   "norm ||x||_P (try --metric auto, or --check stability)")


def _matrix_text(rows, digits: int = 4) -> str:
    """A matrix compactly: '[[a, b], [c, d]]' up to 4 x 4, else its diagonal."""
    m = np.array(rows, dtype=np.float64)
    if m.shape[0] <= 4:
        return "[" + ", ".join("[" + ", ".join(f"{v:.{digits}g}" for v in row) + "]" for row in m) + "]"
    diag = ", ".join(f"{v:.{digits}g}" for v in np.diag(m)[:6])
    return f"{m.shape[0]}x{m.shape[0]} with diagonal ({diag}{', ...' if m.shape[0] > 6 else ''}); the JSON has all"


def _point_text(x, digits: int = 6) -> str:
    return "(" + ", ".join(f"{v:.{digits}g}" for v in x) + ")"


def _condition(rows) -> float:
    return float(np.linalg.cond(np.array(rows, dtype=np.float64)))


def _uses_metric(details) -> bool:
    rows = getattr(details, "metric", None)
    return rows is not None and not np.array_equal(np.array(rows, dtype=np.float64), np.eye(len(rows)))


def _implication(r, net) -> str:
    text = IMPLICATIONS[r.check]
    metric = _uses_metric(r.details)
    if metric and r.check is CheckName.DISSIPATIVITY:
        text = ("||x+||_P - ||x||_P <= ||b*(x)||_P for every x in the box (Theorem 1 in the metric "
                "||x||_P = sqrt(x^T P x)).")
    elif metric and r.check is CheckName.CONTRACTION:
        text = ("f is a contraction in ||x||_P = sqrt(x^T P x) on the (convex) box: with invariance, a unique "
                "equilibrium in the box attracts every trajectory from it (Banach).")
    if r.check is CheckName.DISSIPATIVITY and (net is None or not net.piecewise_linear_through_origin):
        text = text[:-1] + "; " + NOT_JACOBIAN + "."
    return text


def _norm_symbol(r, p: float) -> str:
    m = "J(x)" if r.check in (CheckName.CONTRACTION, CheckName.STABILITY) else "A*(x)"
    if r.check is CheckName.STABILITY or _uses_metric(r.details):
        return f"||T {m} T^-1||_2"
    return f"||{m}||_{norm_label(p)}"


def _spectral_note(r, report) -> str:
    """The spectral-radius result beside NOT_INSTABILITY: at the witness, at sampled points, and the stability
    check's verdict when the report has one."""
    quantity = figures.QUANTITY[r.check]
    parts = []
    w = r.witness
    if w is not None and w.matrix is not None:
        m = np.array(w.matrix, dtype=np.float64)
        if m.ndim == 2 and m.shape[0] == m.shape[1]:
            parts.append(f"the spectral radius of {quantity.symbol}(x) at the witness is {spectral_radius(m):.4g}")
    net = None if report is None else report.network
    if net is not None and net.is_dynamics and net.n_states <= 50:
        mats = plots.sampled_matrices(net, report.box, quantity, n=2000 if net.n_states <= 10 else 200)
        top = max(spectral_radius(m) for m in mats)
        parts.append(f"the largest spectral radius of {quantity.symbol}(x) at {len(mats)} sampled points "
                     f"is {top:.4g}" + (" (below 1: a weighted norm may certify)" if top < 1 else
                                        " (>= 1 somewhere: --metric auto decides whether any weighted norm can)"))
    if report is not None:
        for s in report.results:
            if s.check is CheckName.STABILITY:
                parts.append(f"the stability check is {s.verdict.value}")
    return "; ".join(parts)


def _norm_index(d) -> str:
    """The subscript of the norm a stability result's rate and start set are in: P (the 2-norm, weighted or not),
    or 1 / inf."""
    return "P" if d.norm == 2.0 else norm_label(d.norm)


def _detail_notes(r) -> list[tuple[str, str]]:
    """Lines for the details dataclasses this module knows (the metric, the stability pieces, the equilibria)."""
    d = r.details
    notes = []
    if isinstance(d, EquilibriaDetails):
        listed = "; ".join(_point_text(x) for x in d.points[:5]) + (" ..." if len(d.points) > 5 else "")
        count = f"{len(d.points)} equilibri{'um' if len(d.points) == 1 else 'a'}" + (f": {listed}" if listed else "")
        if d.complete:
            notes.append(("equilibria", f"the list is complete ({count} in the box)"))
        else:
            notes.append(("equilibria", f"{count} found; the list is not known to be complete"))
    elif isinstance(d, StabilityDetails):
        if d.metric is not None:
            notes.append(("metric", f"P = {_matrix_text(d.metric)} (condition number {_condition(d.metric):.3g}); "
                                    f"||x||_P = sqrt(x^T P x)"))
        if d.rate is not None:
            k = _norm_index(d)
            notes.append(("rate", f"rho <= {d.rate:.6g}: ||f(x) - f(y)||_{k} <= rho ||x - y||_{k} on the box "
                                  f"(contraction {d.contraction or 'not run'})"))
        if d.equilibria:
            state = "the list is complete" if d.equilibria_complete else "the list is not known to be complete"
            notes.append(("equilibrium", f"x_bar = {_point_text(d.equilibria[0])} ({len(d.equilibria)} in the box; "
                                         f"{state})"))
        if d.start_set == "box":
            notes.append(("start set", "S = the whole box (invariant): every trajectory from it converges to x_bar"))
        elif d.start_set in ("ellipsoid", "ball") and d.radius is not None:
            share = "" if d.box_share is None else f", {100 * d.box_share:.3g}% of the box's volume"
            notes.append(("start set", f"S = {{x : ||x - x_bar||_{_norm_index(d)} <= {d.radius:.6g}}}{share}; "
                                       f"the box is "
                                       f"{'invariant' if d.invariance == 'certified' else 'not proven invariant'} "
                                       f"(invariance {d.invariance or 'not run'})"))
    elif isinstance(d, MeanSquareDetails):
        if d.metric is not None:
            notes.append(("metric", f"P = {_matrix_text(d.metric)}; ||x||_P = sqrt(x^T P x)"))
        notes.append(("noise", f"sigma: sup ||T L(x)||_F in [{d.sigma_lower:.6g}, {d.sigma_upper:.6g}] "
                               f"({d.form} noise head); stationary bound sigma^2 / (1 - rho^2) <= "
                               f"{_fmt(d.stationary)} (mean map: stability {d.stability})"))
        if d.x_bar is not None:
            notes.append(("equilibrium", f"x_bar = {_point_text(d.x_bar)}"))
    elif _uses_metric(d):
        rows = d.metric
        text = f"P = {_matrix_text(rows)} (condition number {_condition(rows):.3g}); ||x||_P = sqrt(x^T P x)"
        if getattr(d, "metric_rate", None) is not None:
            rounds = getattr(d, "metric_rounds", None)
            text += (f"; proposed by an SDP with rate {d.metric_rate:.6g}"
                     + (f" in {rounds} round{'s' if rounds != 1 else ''}" if rounds is not None else "")
                     + f", {_rate_text(r)}")
        notes.append(("metric", text))
    return notes


def _rate_text(r) -> str:
    """What the engine run in the metric found: 'certified' only under a certified verdict (the SDP's rate is a
    proposal, never a certificate)."""
    symbol = _norm_symbol(r, 2.0)
    if r.verdict is Verdict.CERTIFIED:
        return f"certified rate sup {symbol} <= {r.upper:.6g}"
    if r.verdict is Verdict.FALSIFIED:
        return f"sup {symbol} >= {r.lower:.6g} at the witness: this metric does not certify"
    return f"sup {symbol} lies in [{_fmt(r.lower)}, {_fmt(r.upper)}]: not proven below 1 in this metric"


def check_notes(r, report=None) -> list[tuple[str, str]]:
    """(label, text) lines that explain one result: what a certificate proves, what the numbers are, the metric
    or the pieces of a composite check, the reason, the witness. ``report``: the report it belongs to (for the
    net's activations and the spectral radius beside a falsified norm check); optional."""
    net = None if report is None else report.network
    p = 2.0 if report is None else report.norm
    notes = []
    if r.verdict is Verdict.CERTIFIED:
        notes.append(("proven", _implication(r, net)))
    if r.check in BRACKETS:
        notes.append(("bracket", BRACKETS[r.check].format(m=_norm_symbol(r, p))))
    notes += _detail_notes(r)
    share = getattr(r.details, "proven_fraction", None)
    if share is not None and r.verdict is Verdict.UNKNOWN and r.check not in NO_THRESHOLD:
        notes.append(("proven share", f"the sub-box search proved the bound on {100 * share:.3g}% of the box's "
                                      f"volume ({getattr(r.details, 'boxes', 0) or 0} sub-boxes) before it stopped; "
                                      f"the rest is open, so the check as a whole is not proven"))
    spectral = getattr(r.details, "spectral_radius", None)
    if r.verdict is Verdict.FALSIFIED and r.check in (CheckName.DISSIPATIVITY, CheckName.CONTRACTION) and \
            spectral is None:
        where = "the metric P" if _uses_metric(r.details) else f"the {norm_label(p)}-norm" if p != 2 else \
            "the Euclidean norm"
        text = NOT_INSTABILITY.format(norm=where)
        beside = _spectral_note(r, report)
        notes.append(("note", text + (f"; {beside}" if beside else "")))
    if r.reason:
        notes.append(("reason", r.reason))
    if r.witness is not None:
        x = ", ".join(f"{v:.6g}" for v in r.witness.x)
        label = "witness" if r.verdict is Verdict.FALSIFIED else "largest value found"
        notes.append((label, f"x = [{x}], value = {r.witness.value:.10g}"))
    return notes


def _fmt(v: float) -> str:
    if v is None:
        return "-"
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.6g}"


def _rows(report):
    for r in report.results:
        yield r, (r.check.value, r.verdict.value, _fmt(r.lower), _fmt(r.upper), r.method_label, f"{r.seconds:.2f}")


# Markdown punctuation that can start emphasis, code, links, tables or strikethrough anywhere in a line (an
# underscore inside a word, as in weight_norm, cannot, and stays as it is)
_MD_SPECIAL = re.compile(r"([\\`*{}\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")


def md_escape(text) -> str:
    """User text (region names, paths, reasons) as inert Markdown: HTML special characters as entities (so
    ``<script>`` stays text), Markdown punctuation backslash-escaped, line breaks as spaces."""
    text = " ".join(str(text).splitlines())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def to_markdown(report) -> str:
    head = ("check", "verdict", "lower", "upper", "method", "seconds")
    region = ", ".join(f"{md_escape(n)} in [{lo:g}, {hi:g}]"
                       for n, lo, hi in zip(report.box.names, report.box.lower, report.box.upper))
    lines = [
        "# certify report",
        "",
        f"* model: {md_escape(report.model_path)} ({md_escape(report.model_description)})",
        f"* sha256: {md_escape(report.model_sha256 or '-')}",
        f"* region: {region}",
        f"* norm: {norm_label(report.norm)}, margin: {report.margin:g}",
    ]
    if report.provenance is not None:
        lines.append(f"* run: {md_escape(report.provenance.summary())}")
    lines += [
        f"* **verdict: {report.verdict.value}**",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(md_escape(c) for c in cells) + " |" for _, cells in _rows(report)]
    lines.append("")
    for r in report.results:
        lines.append(f"## {r.check.value}: {r.verdict.value}")
        lines.append("")
        # one list item per note, so that Reason, Witness and the rest stay on lines of their own
        lines += [f"- **{label.capitalize()}:** {md_escape(text)}" for label, text in check_notes(r, report)]
        lines.append("")
    return "\n".join(lines)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'


def pictures(report) -> list[plots.Picture]:
    """The report's pictures (:func:`certify.report.figures.pictures`): each a PNG with what it claims."""
    return figures.pictures(report)


def _figure_html(pic: plots.Picture) -> str:
    return f"<figure>{_img(pic.png, pic.caption)}<figcaption>{html.escape(pic.caption)}</figcaption></figure>"


def _badge(r) -> str:
    if r.check in NO_THRESHOLD:
        return (f'<span class="v" style="background:{_NEUTRAL}" title="no threshold: not a pass or a fail">'
                f'{r.verdict.value}</span> <small>(no threshold)</small>')
    return f'<span class="v" style="background:{_BADGE[r.verdict]}">{r.verdict.value}</span>'


def to_html(report, with_pictures: bool = True, pictures: list[plots.Picture] | None = None) -> str:
    """One self-contained HTML page: the table, then per check its notes and pictures, then the state space.
    ``pictures``: the pictures to embed (default: drawn now when ``with_pictures``)."""
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1f2328}"
        "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:left}"
        ".v{color:white;padding:2px 8px;border-radius:10px;font-weight:600}"
        "figure{display:inline-block;margin:6px;vertical-align:top;max-width:48%}"
        "figcaption{font-size:85%;color:#57606a}img{max-width:100%}dt{font-weight:600}dd{margin:0 0 4px 1.5em}"
    )
    if pictures is None:
        pictures = figures.pictures(report) if with_pictures else []
    rows = []
    for r, cells in _rows(report):
        rows.append("<tr>" + "".join(
            f"<td>{_badge(r) if i == 1 else html.escape(c)}</td>" for i, c in enumerate(cells)) + "</tr>")
    details = []
    for r in report.results:
        parts = [f"<h3>{html.escape(r.check.value)}: {r.verdict.value}</h3><dl>"]
        parts += [f"<dt>{html.escape(label.capitalize())}</dt><dd>{html.escape(text)}</dd>"
                  for label, text in check_notes(r, report)]
        parts.append("</dl>")
        parts += [_figure_html(p) for p in pictures if p.check == r.check.value]
        details.append("\n".join(parts))
    general = [_figure_html(p) for p in pictures if p.check is None]
    if general:
        details.append("<h3>state space</h3>" + "".join(general))
    verdict = report.verdict
    run = "" if report.provenance is None else f"<br>run {html.escape(report.provenance.summary())}"
    region = ", ".join(f"{html.escape(n)} &isin; [{lo:g}, {hi:g}]"
                       for n, lo, hi in zip(report.box.names, report.box.lower, report.box.upper))
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>certify report</title><style>{style}</style>"
        f"</head><body><h1>certify report: <span class='v' style='background:{_BADGE[verdict]}'>{verdict.value}"
        f"</span></h1><p>model <code>{html.escape(report.model_path)}</code> ({html.escape(report.model_description)})"
        f"<br>sha256 <code>{html.escape(report.model_sha256 or '-')}</code><br>region {region}<br>norm "
        f"{norm_label(report.norm)}, margin {report.margin:g}{run}</p><table><tr><th>check</th><th>verdict</th>"
        f"<th>lower</th><th>upper</th><th>method</th><th>seconds</th></tr>{''.join(rows)}</table>"
        f"{''.join(details)}</body></html>"
    )


# characters XML 1.0 cannot hold at all (ElementTree would write them and give a file no parser reads)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text) -> str:
    return _XML_INVALID.sub("\ufffd", str(text))


def to_junit(report, unknown_as: str = "failure") -> str:
    """JUnit XML: one test case per check; falsified is a failure, unknown a failure or skipped (``unknown_as``).

    The suite's ``<properties>`` record the certify version, the options and the library versions of the run."""
    if unknown_as not in ("failure", "skipped"):
        raise ValueError("unknown_as must be 'failure' or 'skipped'")
    suite = ET.Element("testsuite", name="certify", tests=str(len(report.results)))
    properties = ET.SubElement(suite, "properties")
    prov = report.provenance
    pairs = prov.properties() if prov is not None else [("certify.version", certify_version())]
    for name, value in pairs:
        ET.SubElement(properties, "property", name=_xml(name), value=_xml(value))
    failures = skipped = 0
    total = 0.0
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=_xml(report.model_path), name=r.check.value,
                             time=f"{r.seconds:.3f}")
        total += r.seconds
        text = f"[{_fmt(r.lower)}, {_fmt(r.upper)}] by {r.method_label}. {r.reason}".strip()
        if r.witness is not None:
            text += f" witness x = {list(r.witness.x)}, value = {r.witness.value:.10g}"
        text = _xml(text)
        if r.verdict is Verdict.FALSIFIED:
            ET.SubElement(case, "failure", message=f"{r.check.value} falsified", type="falsified").text = text
            failures += 1
        elif r.verdict is Verdict.UNKNOWN:
            if unknown_as == "skipped":
                ET.SubElement(case, "skipped", message=f"{r.check.value} unknown: {text}")
                skipped += 1
            else:
                ET.SubElement(case, "failure", message=f"{r.check.value} unknown", type="unknown").text = text
                failures += 1
        else:
            ET.SubElement(case, "system-out").text = text
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    suite.set("time", f"{total:.3f}")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
