"""certify: formal verification of neural dynamical systems x+ = f(x) (or f(x, u)) over a box.

Data flows one way: model file -> importer -> :class:`Network` (float64 IR) -> with a :class:`Box` ->
analyses -> :class:`CheckResult` certificates -> report / JSON / exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

# The public names are exported lazily (PEP 562): importing ``certify`` (and so ``certify.cli``, ``certify.config``
# or any other submodule, which first runs this file) must not load torch, onnx or the engines, so that
# ``certify --help``, ``certify --version`` and bad-input errors answer at once. Each name is loaded from the module
# listed here on first use; this table is the whole public surface and ``__all__`` is built from it.
_EXPORTS = {
    "Activation": "certify.ir.activations",
    "ActivationKind": "certify.ir.activations",
    "Box": "certify.ir.box",
    "CertifyError": "certify.errors",
    "CheckName": "certify.certificate",
    "CheckResult": "certify.certificate",
    "DeepMarkovModel": "certify.ir.stochastic",
    "Layer": "certify.ir.network",
    "Metric": "certify.ir.metric",
    "ModelError": "certify.errors",
    "Network": "certify.ir.network",
    "Region": "certify.importers.region_file",
    "RegionError": "certify.errors",
    "Report": "certify.report.report",
    "UnsupportedOperatorError": "certify.errors",
    "UsageError": "certify.errors",
    "Verdict": "certify.certificate",
    "VerifyConfig": "certify.config",
    "Witness": "certify.certificate",
    "closed_loop": "certify.importers.closed_loop",
    "deep_markov_from_torch": "certify.importers.deep_markov",
    "from_torch": "certify.importers",
    "load": "certify.api",
    "load_model": "certify.importers",
    "load_onnx": "certify.importers",
    "load_deep_markov": "certify.importers.deep_markov",
    "load_region": "certify.importers.region_file",
    "verify": "certify.api",
}

__all__ = [  # the keys of _EXPORTS, and the version
    "Activation",
    "ActivationKind",
    "Box",
    "CertifyError",
    "CheckName",
    "CheckResult",
    "DeepMarkovModel",
    "Layer",
    "Metric",
    "ModelError",
    "Network",
    "Region",
    "RegionError",
    "Report",
    "UnsupportedOperatorError",
    "UsageError",
    "Verdict",
    "VerifyConfig",
    "Witness",
    "closed_loop",
    "deep_markov_from_torch",
    "from_torch",
    "load",
    "load_model",
    "load_onnx",
    "load_deep_markov",
    "load_region",
    "verify",
    "__version__",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("certify")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


__version__ = _version()


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # what type checkers and IDEs see; never executed
    from .api import load, verify
    from .certificate import CheckName, CheckResult, Verdict, Witness
    from .config import VerifyConfig
    from .errors import CertifyError, ModelError, RegionError, UnsupportedOperatorError, UsageError
    from .importers import from_torch, load_model, load_onnx
    from .importers.region_file import Region, load_region
    from .ir.activations import Activation, ActivationKind
    from .ir.box import Box
    from .ir.network import Layer, Network
    from .report.report import Report
