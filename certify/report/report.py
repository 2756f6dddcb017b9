"""The report of one verification run: a frozen record of the certificates, rendered as a table or JSON.

JSON schema ``certify/1`` (stable: later versions add keys, never rename)::

    {"schema": "certify/1", "model": {"path", "sha256", "description"}, "region": {"names", "lower", "upper",
     "n_states"}, "norm", "margin", "verdict",
     "checks": {"<name>": {"verdict", "lower", "upper", "method", "seconds", "reason",
                           "witness": {"x": [...], "value", "pattern", "matrix"} or null, ...the check's details}}}

``lower`` and ``upper`` bound the supremum being checked (for dissipativity sup ||A*(x)||); ``lower`` is a value
attained at a replayed point. Infinite values are written as the strings "inf" / "-inf" (JSON has no infinity).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..certificate import CheckResult, Verdict, overall_verdict
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import norm_label
from . import render

SCHEMA = "certify/1"


@dataclass(frozen=True, eq=False)
class Report:
    """Everything one run found. ``results`` in the order the checks were asked for."""

    model_path: str
    model_sha256: str
    model_description: str
    box: Box
    norm: float
    margin: float
    results: tuple[CheckResult, ...]
    network: Network | None = None  # for pictures; not serialised

    @property
    def verdict(self) -> Verdict:
        return overall_verdict(self.results)

    def result(self, name: str) -> CheckResult:
        for r in self.results:
            if r.check.value == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict:
        checks = {r.check.value: r.to_json() for r in self.results}
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
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self) -> str:
        return render.to_markdown(self)

    def to_html(self, path: str | Path | None = None, pictures: bool = True) -> str:
        """One self-contained HTML page (images embedded); written to ``path`` when given."""
        text = render.to_html(self, with_pictures=pictures)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_junit(self, path: str | Path | None = None, unknown_as: str = "failure") -> str:
        """JUnit XML, one test case per check (falsified = failure; unknown = failure or skipped)."""
        text = render.to_junit(self, unknown_as)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

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
        notes = [f"  {r.check.value}: {label}: {text}" for r in self.results for label, text in render.check_notes(r)]
        if notes:
            out += ["", *notes]
        out += ["", f"verdict: {self.verdict.value}"]
        return "\n".join(out)


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.6g}"


def _box_text(box: Box) -> str:
    parts = [f"{n} in [{lo:g}, {hi:g}]" for n, lo, hi in zip(box.names, box.lower, box.upper)]
    if len(parts) > 6:
        parts = parts[:5] + [f"... ({len(parts)} coordinates)"]
    return "; ".join(parts)
