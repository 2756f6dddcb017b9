"""Exception types for misuse: bad models, bad region files, bad options.

Every error is a ``ValueError`` whose message names the file, the key or the ONNX node and operator, and says
what to do. The command line prints the message on one line and exits with code 3. Solver trouble is never an
exception: it becomes an ``unknown`` verdict with a reason.
"""

from __future__ import annotations


class CertifyError(ValueError):
    """Base class of every user-facing error of certify."""


class ModelError(CertifyError):
    """A model file cannot be imported: unreadable, unsupported operator, shapes that do not fit."""


class UnsupportedOperatorError(ModelError):
    """An ONNX node (or PyTorch module) whose operator certify cannot represent exactly."""


class ModelMismatchError(ModelError):
    """The imported IR disagrees numerically with the original model (onnxruntime or torch)."""


class RegionError(CertifyError):
    """A region file (box.yaml) is malformed or does not match the model."""


class SystemFileError(CertifyError):
    """A closed-loop system file is malformed or its shapes do not match."""


class UsageError(CertifyError):
    """A request that does not make sense for this model: e.g. a dynamics check on a non-square map."""
