"""Provenance of a run: the certify version, the options it ran with, and the versions of the libraries around it.

The JSON report writes it as the keys ``tool``, ``options`` and ``versions``; JUnit as ``<properties>``. Versions
come from the installed distributions' metadata (:mod:`importlib.metadata`), so recording them imports nothing.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from ..certificate import json_number
from ..ir.numerics import norm_label

# (key in the report, distribution names to try in order): the numerical stack, the ONNX runtime the imports are
# checked against, and the solver libraries (pulp bundles the CBC binary; highspy is HiGHS; cvxpy drives SCS and
# Clarabel). A library that is not installed is written as null.
LIBRARIES = (
    ("numpy", ("numpy",)),
    ("scipy", ("scipy",)),
    ("torch", ("torch",)),
    ("onnx", ("onnx",)),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    ("pulp", ("pulp",)),
    ("highspy", ("highspy",)),
    ("cvxpy", ("cvxpy", "cvxpy-base")),
    ("scs", ("scs",)),
    ("clarabel", ("clarabel",)),
)


def distribution_version(*names: str) -> str | None:
    """The installed version of the first of ``names`` that is installed, else None."""
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def certify_version() -> str:
    return distribution_version("certify") or "0+unknown"


def library_versions() -> dict[str, str | None]:
    out = {"python": platform.python_version()}
    out.update({key: distribution_version(*names) for key, names in LIBRARIES})
    return out


def _metric_json(metric):
    """A weighted-norm metric as JSON: its own ``to_json()``, a matrix as rows, or its text."""
    if hasattr(metric, "to_json"):
        return metric.to_json()
    if hasattr(metric, "tolist"):
        metric = metric.tolist()
    if isinstance(metric, (list, tuple)):
        return [_metric_json(v) for v in metric]
    if isinstance(metric, (int, float)) and not isinstance(metric, bool):
        return json_number(metric)
    return str(metric)


def options_of(config, device_used: str | None = None) -> dict:
    """The options of a :class:`~certify.config.VerifyConfig` as JSON values (the run's ``options``)."""
    out = {
        "seed": int(config.seed),
        "samples": int(config.samples),
        "timeout": json_number(config.timeout),
        "budget": None if config.budget is None else int(config.budget),
        "method": str(config.method.value),
        "norm": norm_label(config.norm),
        "margin": json_number(config.margin),
        "exact": bool(config.exact),
        "device": str(config.device.value),
    }
    workers = getattr(config, "workers", None)  # where the searches ran (the verdict does not depend on it)
    if workers is not None:
        out["workers"] = int(workers)
        out["cluster"] = getattr(config, "cluster", None)
    if device_used is not None:
        out["device_used"] = device_used
    metric = getattr(config, "metric", None)  # weighted norms, where the configuration has them
    if metric is not None:
        out["metric"] = _metric_json(metric)
    solvers = getattr(config, "solvers", None)
    if solvers is not None:
        out["solvers"] = {k: str(getattr(solvers, k)) for k in ("lp", "lp_relaxation", "milp", "sdp")
                          if hasattr(solvers, k)}
    return out


@dataclass(frozen=True)
class Provenance:
    """Where a report came from: ``certify`` (version), ``options`` (JSON values) and library ``versions``."""

    certify: str
    options: dict
    versions: dict

    @classmethod
    def of(cls, config, device_used: str | None = None) -> "Provenance":
        return cls(certify_version(), options_of(config, device_used), library_versions())

    def properties(self) -> list[tuple[str, str]]:
        """(name, value) pairs for JUnit ``<property>`` elements: ``certify.version``, ``option.*``, ``version.*``."""
        out = [("certify.version", self.certify)]
        for key, value in self.options.items():
            out.append((f"option.{key}", _text(value)))
        for key, value in self.versions.items():
            if value is not None:
                out.append((f"version.{key}", value))
        return out

    def summary(self) -> str:
        """One line for Markdown and HTML: the version and the options."""
        opts = ", ".join(f"{k} {_text(v)}" for k, v in self.options.items() if k not in ("solvers", "metric"))
        return f"certify {self.certify}; {opts}"


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value)
