"""Model importers: ONNX files and PyTorch modules into the :class:`~certify.network.Network` IR.

* :func:`load_model` (dispatch on the file), :func:`load_onnx`, :func:`check_agreement_onnx`;
* :func:`from_torch` (a module exported to ONNX in memory, then the same importer).

Every import is checked numerically against the original model (onnxruntime, or the module) and refused with
:class:`~certify.errors.ModelMismatchError` on disagreement. Pickled PyTorch files are never loaded.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from ..network import Network
from .graph import SUPPORTED_OPS
from .onnx_import import check_agreement_onnx, load_onnx
from .torch_import import check_agreement_torch, from_torch

_PICKLED = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}


def load_model(path: str | Path, n_states: int | None = None) -> Network:
    """Import a model file by its suffix: ``.onnx`` only (anything else is a ModelError saying what to do)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return load_onnx(p, n_states)
    if suffix in _PICKLED:
        raise ModelError(
            f"{path}: PyTorch checkpoint files are not loaded (unpickling can run arbitrary code); export the model "
            "with torch.onnx.export to an .onnx file, or call certify.importers.from_torch(module, example_input)"
        )
    raise ModelError(f"{path}: unknown model format {suffix or '(no suffix)'!r}; certify reads ONNX files (.onnx)")


__all__ = [
    "SUPPORTED_OPS",
    "check_agreement_onnx",
    "check_agreement_torch",
    "from_torch",
    "load_model",
    "load_onnx",
]
