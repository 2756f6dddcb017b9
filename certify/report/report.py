"""The report of one verification run: a frozen record of the certificates, rendered as a table or JSON.

JSON schema ``certify/1`` (stable: later versions add keys, never rename)::

    {"schema": "certify/1", "model": {"path", "sha256", "description"}, "region": {"names", "lower", "upper",
     "n_states"}, "norm", "margin", "verdict",
     "checks": {"<name>": {"verdict", "lower", "upper", "method", "seconds", "reason",
                           "witness": {"x": [...], "value", "pattern", "matrix"} or null, ...the check's details}},
     "tool": {"name": "certify", "version"},
     "options": {"seed", "samples", "timeout", "budget", "method", "norm", "margin", "exact", "device", ...} or null,
     "versions": {"python", "numpy", "torch", "onnxruntime", "pulp", "highspy", "cvxpy", ...} or null}

``lower`` and ``upper`` bound the supremum being checked (for dissipativity sup ||A*(x)||); ``lower`` is a value
attained at a replayed point. The output is strict JSON (RFC 8259): an infinite value is the string "inf" or "-inf",
an undefined one "nan", a missing one null (JSON has no infinity and no NaN).

A report answers ``report.verdict == "certified"`` (a ``str`` enum) and ``report["dissipativity"]`` (that check's
:class:`~certify.certificate.CheckResult`); ``bool(report)`` is refused, because a report is not its verdict.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..certificate import CheckName, CheckResult, Verdict, overall_verdict
from ..ir.box import Box
from ..ir.numerics import norm_label
from . import render
from .output import write_atomic
from .provenance import Provenance, certify_version

if TYPE_CHECKING:  # annotations only: a report can be read and written without loading torch
    from ..ir.network import Network
    from ..ir.output_property import OutputProperty

SCHEMA = "certify/1"


@dataclass(frozen=True, eq=False)
class Report:
    """Everything one run found. ``results`` in the order the checks were asked for; ``provenance``: the options
    and library versions of the run (None for a report built by hand)."""

    model_path: str
    model_sha256: str
    model_description: str
    box: Box
    norm: float
    margin: float
    results: tuple[CheckResult, ...]
    network: Network | None = None  # for pictures; not serialised
    provenance: Provenance | None = None
    outputs: OutputProperty | None = None  # a VNNLIB property's output bounds, for proofs; not serialised

    @property
    def verdict(self) -> Verdict:
        return overall_verdict(self.results)

    @property
    def checks(self) -> tuple[str, ...]:
        """The names of the checks in this report, in order."""
        return tuple(r.check.value for r in self.results)

    def __getitem__(self, name: str | CheckName) -> CheckResult:
        """``report["dissipativity"]``: that check's result (KeyError naming the checks there are otherwise)."""
        key = name.value if isinstance(name, CheckName) else name
        for r in self.results:
            if r.check.value == key:
                return r
        raise KeyError(f"no check {name!r} in this report; it has {', '.join(self.checks) or 'no checks'}")

    def __contains__(self, name: object) -> bool:
        key = name.value if isinstance(name, CheckName) else name
        return key in self.checks

    def __bool__(self) -> bool:
        raise TypeError("the truth value of a Report is ambiguous (it is not its verdict); use "
                        "report.verdict == \"certified\" (or report[\"<check>\"].verdict for one check)")

    def result(self, name: str | CheckName) -> CheckResult:
        """The same as ``report[name]``."""
        return self[name]

    def to_dict(self) -> dict:
        checks = {r.check.value: r.to_json() for r in self.results}
        prov = self.provenance
        return {
            "schema": SCHEMA,
            "model": {"path": self.model_path, "sha256": self.model_sha256, "description": self.model_description},
            "region": {
                "names": list(self.box.names),
                "lower": [float(v) for v in self.box.lower],
                "upper": [float(v) for v in self.box.upper],
                "n_states": self.box.n_states,
            },
            "norm": norm_label(self.norm),
            "margin": self.margin,
            "verdict": self.verdict.value,
            "checks": checks,
            "tool": {"name": "certify", "version": prov.certify if prov is not None else certify_version()},
            "options": None if prov is None else dict(prov.options),
            "versions": None if prov is None else dict(prov.versions),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (RFC 8259; ``allow_nan=False`` refuses a stray NaN or infinity rather than write one)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, path: str | Path | None = None) -> str:
        """A Markdown report (user text escaped); written atomically to ``path`` when given."""
        text = render.to_markdown(self)
        if path is not None:
            write_atomic(path, text)
        return text

    def to_html(self, path: str | Path | None = None, pictures: bool = True) -> str:
        """One self-contained HTML page (images embedded); written atomically to ``path`` when given."""
        text = render.to_html(self, with_pictures=pictures)
        if path is not None:
            write_atomic(path, text)
        return text

    def to_junit(self, path: str | Path | None = None, unknown_as: str = "failure") -> str:
        """JUnit XML, one test case per check (falsified = failure; unknown = failure or skipped); written
        atomically to ``path`` when given."""
        text = render.to_junit(self, unknown_as)
        if path is not None:
            write_atomic(path, text)
        return text

    def to_proof(self, path: str | Path, **options) -> dict:
        """Write a proof file for every certified check (re-checked by ``certify-proof check``; gzip when ``path``
        ends with .gz) and return it; ``options``: :class:`certify.proof.producer.ProofOptions` fields."""
        from ..proof.producer import ProofOptions, write_proof  # deferred: the proof search loads the engines

        return write_proof(self, path, ProofOptions(**options))

    def _repr_html_(self) -> str:  # notebooks
        return render.to_html(self, with_pictures=True)

    def to_table(self) -> str:
        """A plain-text table: one row per check, then the reasons and witnesses."""
        head = ("check", "verdict", "lower", "upper", "method", "seconds")
        rows = [
            (r.check.value, r.verdict.value, _fmt(r.lower), _fmt(r.upper), r.method_label, f"{r.seconds:.2f}")
            for r in self.results
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
        line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
        out = [
            f"model  {self.model_path}  ({self.model_description})",
            f"region {_box_text(self.box)}",
            f"norm   {norm_label(self.norm)}   margin {self.margin:g}",
            "",
            line,
            "  ".join("-" * w for w in widths),
        ]
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
        notes = [f"  {r.check.value}: {label}: {text}" for r in self.results  # what each bracket is: said in
                 for label, text in render.check_notes(r, self) if label != "bracket"]  # the HTML and Markdown
        if notes:
            out += ["", *notes]
        out += ["", f"verdict: {self.verdict.value}"]
        return "\n".join(out)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.6g}"


def _box_text(box: Box) -> str:
    parts = [f"{n} in [{lo:g}, {hi:g}]" for n, lo, hi in zip(box.names, box.lower, box.upper)]
    if len(parts) > 6:
        parts = parts[:5] + [f"... ({len(parts)} coordinates)"]
    return "; ".join(parts)
