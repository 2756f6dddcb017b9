"""certify: formal verification of neural dynamical systems x+ = f(x) (or f(x, u)) over a box.

Data flows one way: model file -> importer -> :class:`Network` (float64 IR) -> with a :class:`Box` ->
analyses -> :class:`CheckResult` certificates -> report / JSON / exit code.
"""

from .api import load, verify
from .certificate import CheckName, CheckResult, Verdict, Witness
from .config import VerifyConfig
from .errors import CertifyError, ModelError, RegionError, UnsupportedOperatorError, UsageError
from .importers.region_file import Region, load_region
from .ir.activations import Activation, ActivationKind
from .ir.box import Box
from .ir.network import Layer, Network
from .report.report import Report


def __getattr__(name):
    # The importers pull in onnx/onnxruntime/torch export machinery: load them on first use.
    if name in ("from_torch", "load_onnx", "load_model"):
        from . import importers

        return getattr(importers, name)
    raise AttributeError(f"module 'certify' has no attribute {name!r}")

__all__ = [
    "Activation",
    "ActivationKind",
    "Box",
    "CertifyError",
    "CheckName",
    "CheckResult",
    "Layer",
    "ModelError",
    "Network",
    "Region",
    "Report",
    "from_torch",
    "load",
    "load_model",
    "load_onnx",
    "verify",
    "RegionError",
    "UnsupportedOperatorError",
    "UsageError",
    "Verdict",
    "VerifyConfig",
    "Witness",
    "load_region",
]
