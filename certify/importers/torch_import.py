"""PyTorch modules into the Network IR: export to ONNX in memory, import with the ONNX importer, check against the
module.

The module is deep-copied, put in eval mode and converted to float64 before export, so the IR carries the module's
weights exactly and the agreement check runs in float64 (rtol 1e-6, atol 1e-8: exporters store some constants as
float32 attributes, e.g. HardSigmoid's 1/6). Nothing is ever unpickled: the caller hands over a live module.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import warnings
from typing import Sequence

import numpy as np
import torch

from ..errors import ModelError
from ..ir.network import Network
from .agreement import TOLERANCES, compare, import_points
from .onnx_import import import_checked, parse_model, prepare

EXPORTERS = ("auto", "torchscript", "dynamo")
_OPSET = 17


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # exporters colour their messages
    return text.splitlines()[0] if text else type(e).__name__


def _examples(example_input, source: str) -> list[torch.Tensor]:
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    if not 1 <= len(items) <= 2:
        raise ModelError(f"{source}: give one example input (states) or two (states, inputs), got {len(items)}")
    out = []
    for x in items:
        x = torch.as_tensor(x).detach().to(torch.float64)
        if x.ndim == 2:
            x = x[:1]
        elif x.ndim != 1:
            raise ModelError(f"{source}: example input of shape {list(x.shape)}; give [batch, n] or [n]")
        out.append(x)
    return out


def _export(module: torch.nn.Module, xs: list[torch.Tensor], exporter: str, source: str) -> bytes:
    names = ["x", "u"][: len(xs)]
    errors = []
    if exporter in ("auto", "torchscript"):
        try:
            buf = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module, tuple(xs), buf, dynamo=False, opset_version=_OPSET, input_names=names,
                    output_names=["y"], dynamic_axes={n: {0: "batch"} for n, x in zip(names, xs) if x.ndim == 2},
                )
            return buf.getvalue()
        except Exception as e:  # exporter failures come in many types
            errors.append(f"TorchScript exporter: {_first_line(e)}")
    if exporter in ("auto", "dynamo"):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                program = torch.onnx.export(module, tuple(xs), dynamo=True, input_names=names, output_names=["y"])
            return program.model_proto.SerializeToString()
        except Exception as e:
            errors.append(f"dynamo exporter: {_first_line(e)}")
    raise ModelError(f"{source}: cannot export the module to ONNX ({'; '.join(errors)})")


def _split(points: np.ndarray, net: Network) -> list[np.ndarray]:
    if len(net.input_names) == 2:
        return [points[:, : net.n_states], points[:, net.n_states:]]
    return [points]


def module_forward(module: torch.nn.Module, net: Network, ranks: Sequence[int] | None = None):
    """(B, n_in) float64 -> (B, n_out): the float64 copy of ``module`` on each point (one batch when it takes
    [batch, n] inputs, else point by point)."""
    ranks = list(ranks) if ranks is not None else [2] * max(1, len(net.input_names))

    def run(pts: np.ndarray) -> np.ndarray:
        blocks = [torch.from_numpy(b.copy()) for b in _split(pts, net)]
        with torch.no_grad():
            if all(r == 2 for r in ranks):
                y = module(*blocks)
                return y.detach().to(torch.float64).numpy().reshape(pts.shape[0], -1)
            rows = [module(*(b[i] for b in blocks)).detach().to(torch.float64).numpy().ravel() for i in range(len(pts))]
        return np.stack(rows)

    return run


def _float64_copy(module: torch.nn.Module, source: str) -> torch.nn.Module:
    try:
        return copy.deepcopy(module).eval().to(device="cpu", dtype=torch.float64)
    except Exception as e:
        raise ModelError(f"{source}: cannot copy the module to float64 ({_first_line(e)})") from None


def check_agreement_torch(
    net: Network, module: torch.nn.Module, points: np.ndarray, ranks: Sequence[int] | None = None,
    rtol: float | None = None, atol: float | None = None,
) -> float:
    """Compare ``net`` with a float64 copy of ``module`` (eval mode) on ``points`` (B, n_in).

    ``ranks``: 2 per input when the module takes [batch, n] tensors (default), 1 when it takes [n].
    Raises ModelMismatchError on disagreement; returns the max abs error.
    """
    source = f"<torch {type(module).__name__}>"
    r, a = TOLERANCES[np.dtype(np.float64)]
    mod = _float64_copy(module, source)
    return compare(
        net, module_forward(mod, net, ranks), points, r if rtol is None else rtol, a if atol is None else atol,
        source, "the PyTorch module",
    )


def from_torch(
    module: torch.nn.Module, example_input, n_states: int | None = None, *, exporter: str = "auto"
) -> Network:
    """The Network of a PyTorch module, checked against the module on N(0, I) x {0.1, 1, 10} points.

    ``example_input``: a tensor [batch, n] or [n] (or a pair (states, inputs)); only its shape matters.
    ``exporter``: 'torchscript' (torch.onnx.export(dynamo=False)), 'dynamo', or 'auto' (the first, then the
    second). Raises ModelError / UnsupportedOperatorError / ModelMismatchError.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    source = f"<torch {type(module).__name__}>"
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{source}: from_torch needs a torch.nn.Module")
    xs = _examples(example_input, source)
    mod = _float64_copy(module, source)
    model, problem = prepare(parse_model(_export(mod, xs, exporter, source), source), source)
    net = import_checked(model, problem, source, n_states)
    r, a = TOLERANCES[np.dtype(np.float64)]
    compare(net, module_forward(mod, net, [x.ndim for x in xs]), import_points(net.n_in), r, a, source,
            "the PyTorch module")
    return net
