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

from ..certificate import CheckName, EquilibriaDetails, Verdict
from ..ir.numerics import norm_label
from . import plots
from .provenance import certify_version

_BADGE = {Verdict.CERTIFIED: "#1a7f37", Verdict.FALSIFIED: "#cf222e", Verdict.UNKNOWN: "#9a6700"}

IMPLICATIONS = {
    CheckName.DISSIPATIVITY: "||x+|| - ||x|| <= ||b*(x)|| for every x in the box (Theorem 1); this alone does not "
    "rule out several equilibria for smooth activations.",
    CheckName.CONTRACTION: "f is a contraction on the (convex) box: with invariance, a unique equilibrium in the box "
    "attracts every trajectory from it (Banach).",
    CheckName.WEIGHT_NORM: "the product of layer norms and slope bounds is below 1, which proves dissipativity "
    "(Corollary 4).",
    CheckName.GAIN: "the value bounds sup ||A*(x)|| over the box (the local Lipschitz constant for ReLU-type nets).",
    CheckName.INVARIANCE: "f maps the box into itself, so trajectories starting in it stay in it.",
    CheckName.EQUILIBRIA: "the equilibria in the box and the Corollary 3 bounds on their norm.",
    CheckName.STABILITY: "one equilibrium attracts every trajectory that starts in the stated set (the box, or the "
    "P-ellipsoid around the equilibrium), at the stated rate in ||.||_P.",
}

# Said beside a falsified check in the plain 2-norm, so that nobody reads it as instability.
NOT_INSTABILITY = ("a falsified check in the Euclidean norm is not instability: a loop can be stable in a weighted "
                   "norm ||x||_P (try --metric auto, or --check stability)")


def check_notes(r) -> list[tuple[str, str]]:
    """(label, text) lines that explain one result: what a certificate proves, the reason, the witness."""
    notes = []
    if r.verdict is Verdict.CERTIFIED:
        notes.append(("proven", IMPLICATIONS[r.check]))
    plain = getattr(r.details, "metric", None) is None and getattr(r.details, "spectral_radius", None) is None
    if r.verdict is Verdict.FALSIFIED and r.check in (CheckName.DISSIPATIVITY, CheckName.CONTRACTION) and plain:
        notes.append(("note", NOT_INSTABILITY))
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
        lines += [f"{label.capitalize()}: {md_escape(text)}" for label, text in check_notes(r)]
        lines.append("")
    return "\n".join(lines)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'


def pictures(report) -> list[tuple[str, bytes]]:
    """(caption, PNG) pairs for the report; empty without a network or with fewer than 2 coordinates."""
    net, box = report.network, report.box
    if net is None or box.dim < 2:
        return []
    witness, label = None, "witness"
    for r in report.results:
        if r.witness is not None and r.check in (CheckName.DISSIPATIVITY, CheckName.GAIN, CheckName.WEIGHT_NORM):
            witness = r.witness.x
            label = "witness" if r.verdict is Verdict.FALSIFIED else "largest value found"
            break
    eq = None
    for r in report.results:
        if isinstance(r.details, EquilibriaDetails) and r.details.points:
            eq = np.array(r.details.points)
    out = [("||A*(x)|| over the box (first two coordinates)",
            plots.norm_map(net, box, report.norm, witness=None if witness is None else np.array(witness),
                           equilibria=eq, witness_label=label))]
    if net.is_dynamics and net.n_states >= 2:
        out.append(("simulated trajectories", plots.phase_portrait(net, box)))
    if net.is_dynamics:
        out.append(("eigenvalues of A*(x)", plots.eigenvalue_plot(net, box)))
    for r in report.results:
        trace = getattr(r.details, "trace", None)
        if trace and len(trace) > 1:
            out.append((f"{r.check.value}: bracket against time", plots.bracket_plot(trace)))
    return out


def to_html(report, with_pictures: bool = True) -> str:
    style = (
        "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#1f2328}"
        "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:left}"
        ".v{color:white;padding:2px 8px;border-radius:10px;font-weight:600}"
        "figure{display:inline-block;margin:8px}figcaption{font-size:90%;color:#57606a}"
    )
    rows = []
    for r, cells in _rows(report):
        badge = f'<span class="v" style="background:{_BADGE[r.verdict]}">{cells[1]}</span>'
        rows.append("<tr>" + "".join(
            f"<td>{badge if i == 1 else html.escape(c)}</td>" for i, c in enumerate(cells)) + "</tr>")
    details = []
    for r in report.results:
        parts = [f"<h3>{html.escape(r.check.value)}: {r.verdict.value}</h3>"]
        parts += [f"<p>{label.capitalize()}: {html.escape(text)}</p>" for label, text in check_notes(r)]
        details.append("\n".join(parts))
    figs = []
    if with_pictures:
        figs = [f"<figure>{_img(png, cap)}<figcaption>{html.escape(cap)}</figcaption></figure>"
                for cap, png in pictures(report)]
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
        f"<th>lower</th><th>upper</th><th>method</th><th>seconds</th></tr>{''.join(rows)}</table>{''.join(details)}"
        f"<div>{''.join(figs)}</div></body></html>"
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
