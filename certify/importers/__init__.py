"""Model importers: ONNX files and PyTorch modules into the :class:`~certify.ir.network.Network` IR.

* :func:`load_model` (dispatch on the file), :func:`check_model_path`, :func:`load_onnx`, :func:`check_agreement_onnx`;
* :func:`from_torch` (a module exported to ONNX in memory, then the same importer).

Every import is checked numerically against the original model (onnxruntime, or the module) and refused with
:class:`~certify.errors.ModelMismatchError` on disagreement. Pickled PyTorch files are never loaded.

What imports (see :mod:`certify.importers.graph`): a chain of (affine, activation) steps, the output an affine
function of the last hidden vector plus a linear skip S x. Consecutive linear operators (Gemm, MatMul, Add/Sub/Mul/
Div by constants, Neg, 1x1 Conv, BatchNormalization, layout operators) fold into one affine map. Activations:
the operators Relu, LeakyRelu, PRelu, Elu, Selu, Gelu, Tanh, Sigmoid, Softplus, Clip, Max/Min with a constant,
HardSigmoid (its alpha x + beta folded into the affine map before clip(0, 1)), HardSwish, and the elementwise
patterns exporters write for catalogue activations, recognised by their structure and constants (never by
evaluating them on points; see :mod:`certify.importers.patterns`): GELU with Erf or Tanh, x * sigmoid(beta x),
x * HardSigmoid(x), (x + |x|) / 2, log(1 + exp(x)), torch's softplus(beta) with its Where. Refused, with the
file, node and operator named: other operators, other elementwise expressions (Abs alone, a GELU with a wrong
constant, ...), comparisons and Where on input-dependent values outside that softplus form, control flow (If,
Loop, Scan), two activations in parallel, skips into hidden layers, products of input-dependent tensors, non-1x1
convolutions, more than two inputs, non-vector outputs, external data outside the model's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ..errors import ModelError

# The importers are exported lazily (PEP 562), as in certify/__init__.py: this package also holds the region and
# YAML readers, which the command line runs before any model is read, so importing it (or any submodule) must not
# load onnx, onnxruntime or torch. Each name below is loaded from its module on first use.
_EXPORTS = {
    "SUPPORTED_OPS": "certify.importers.operators",
    "check_agreement_onnx": "certify.importers.onnx_import",
    "check_agreement_torch": "certify.importers.torch_import",
    "from_torch": "certify.importers.torch_import",
    "load_onnx": "certify.importers.onnx_import",
}

_PICKLED = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"}


def check_model_path(path: str | Path) -> None:
    """ModelError unless ``path`` names an existing regular file: a missing path, a folder and anything else (a
    device, a FIFO) each get a one-line message saying so. Cheap (no model is read, nothing heavy imported): the
    command line and :func:`certify.verify` run it before the region file, so a wrong model path is reported first.
    A ``.yaml`` / ``.yml`` path is left to the system-file reader, whose messages say the same for system files."""
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        return
    if not p.exists():
        raise ModelError(f"{path}: model file not found")
    if p.is_dir():
        raise ModelError(f"{path}: is a folder, not a model file; give the .onnx file (or the system file) in it")
    if not p.is_file():
        raise ModelError(f"{path}: the model is not a regular file; give an .onnx file or a system file (.yaml)")


def load_model(path: str | Path, n_states: int | None = None) -> Network:
    """Import a model file by its suffix: ``.onnx`` only (anything else is a ModelError saying what to do)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from .onnx_import import load_onnx  # deferred on purpose (onnx, onnxruntime): see _EXPORTS

        return load_onnx(p, n_states)
    if suffix in _PICKLED:
        raise ModelError(
            f"{path}: PyTorch checkpoint files are not loaded (unpickling can run arbitrary code); export the model "
            "with torch.onnx.export to an .onnx file, or call certify.importers.from_torch(module, example_input)"
        )
    raise ModelError(f"{path}: unknown model format {suffix or '(no suffix)'!r}; certify reads ONNX files (.onnx)")


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "SUPPORTED_OPS",
    "check_agreement_onnx",
    "check_model_path",
    "check_agreement_torch",
    "from_torch",
    "load_model",
    "load_onnx",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; never executed
    from ..ir.network import Network
    from .onnx_import import check_agreement_onnx, load_onnx
    from .operators import SUPPORTED_OPS
    from .torch_import import check_agreement_torch, from_torch
