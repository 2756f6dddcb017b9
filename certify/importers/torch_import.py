"""PyTorch modules into the Network IR: export to ONNX in memory, import with the ONNX importer, check against the
module.

The module is deep-copied, put in eval mode and converted to float64 before export, so the IR carries the module's
weights exactly and the agreement check runs in float64 (rtol 1e-6, atol 1e-8: exporters store some constants as
float32 attributes, e.g. HardSigmoid's 1/6). Nothing is ever unpickled: the caller hands over a live module.

neuromancer wrappers are unwrapped first (:func:`unwrap_neuromancer`): a ``System`` of one ``Node`` gives its
node, a ``Node`` gives the block it calls (``node.callable``), so ``from_torch(node, (x, u))`` imports the map
``x+ = block(x, u)``. They are recognised by their attributes (a ``Node`` has ``callable``, ``input_keys`` and
``output_keys``; a ``System`` has ``nodes`` and ``nstep_key``), so neuromancer itself is never imported here.
Blocks the IR cannot represent are refused before any export, naming the submodule: ``ResMLP`` (its skips add the
input and each hidden output into later hidden layers) and neuromancer's own activations (``SmoothedReLU``, which
is written with ``torch.sign``, ``SoftExponential``, ...).

The exporters' console output (progress lines on stdout, their loggers' lines and warnings on stderr) is held back
during the in-memory export (:func:`quiet_export`); logger levels and warning filters are restored afterwards, and
an exporter error is reduced to one line that keeps its reason (:func:`exporter_reason`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
import warnings
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import ModelError
from ..ir.network import Network
from .agreement import TOLERANCES, compare, import_points
from .onnx_import import import_checked, parse_model, prepare

EXPORTERS = ("auto", "torchscript", "dynamo")
_OPSET = 17


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # exporters colour their messages
_SUMMARY = re.compile(r"## Exception summary\s*\n\s*(?:<class '([^']+)'>: )?([^\n]*)")
_CALL_SITE = re.compile(
    r'The following call raised this error:\s*\n\s*File "([^"]+)", line (\d+), in (\S+)\s*\n\s*([^\n]*)'
)


def _first_line(e: BaseException) -> str:
    text = _ANSI.sub("", str(e)).strip()
    return text.splitlines()[0] if text else type(e).__name__


def exporter_reason(e: BaseException) -> str:
    """One line that says why an exporter failed.

    The dynamo exporter's message starts with a generic sentence ("Failed to export the model with torch.export.
    This is step 1/3 ... Next steps:") and carries the real reason further down, under "## Exception summary", and
    the line of the user's code that raised it under "The following call raised this error"; the exception it
    wraps (``__cause__``) holds the same reason. Keep the first sentence up to "Next steps:", the reason
    (``TypeError: ...``) and the call site; anything else is reduced to its first line."""
    text = _ANSI.sub("", str(e)).strip()
    if not text:
        return type(e).__name__
    head = text.split("Next steps:")[0].strip().splitlines()[0].strip()
    reason = ""
    summary = _SUMMARY.search(text)
    if summary and summary.group(2).strip():
        kind = (summary.group(1) or "").rsplit(".", 1)[-1]
        reason = f"{kind}: {summary.group(2).strip()}" if kind else summary.group(2).strip()
    elif e.__cause__ is not None and "Next steps:" in text:
        reason = f"{type(e.__cause__).__name__}: {_first_line(e.__cause__)}"
    if reason and reason not in head:
        head = f"{head.rstrip('.')}: {reason}"
    site = _CALL_SITE.search(text)
    if site:
        file, line, func, code = site.groups()
        head += f" (at {file.rsplit('/', 1)[-1]}:{line} in {func}: {code.strip()})"
    return " ".join(head.split())


_EXPORTER_LOGGERS = ("torch", "onnxscript", "onnx_ir", "onnx")


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Hold back what the exporters print while they run: their progress lines (stdout), prints to stderr, warnings,
    and the records of the ``torch``, ``onnxscript``, ``onnx_ir`` and ``onnx`` loggers (torch gives its loggers
    handlers of their own, so the root logger's settings do not reach them).

    Every existing logger of those families is raised above CRITICAL for the duration (loggers created meanwhile
    inherit that level from their parents) and gets its own level back afterwards; the warning filters are restored
    by ``warnings.catch_warnings``. Nothing is left changed once the block ends, even when it raises. Not
    thread-safe (as ``warnings.catch_warnings`` is not): other threads' records of these loggers are held back too
    while an export runs."""
    manager = logging.root.manager
    names = [n for n in list(manager.loggerDict) if n.split(".", 1)[0] in _EXPORTER_LOGGERS]
    loggers = [logging.getLogger(n) for n in sorted(set(names) | set(_EXPORTER_LOGGERS))]
    saved = [(lg, lg.level) for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL + 1)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


# ============================================================================================ neuromancer
# neuromancer's own activations, none of which is in certify's catalogue (module class name -> what it computes)
_NEUROMANCER_ACTIVATIONS = {
    "SmoothedReLU": "max(clamp(sign(z) z^2 / (2 softplus(d)), 0, softplus(d) / 2), z - softplus(d) / 2), written "
                    "with torch.sign (an ONNX Sign node)",
    "SoftExponential": "the soft exponential of a learnt alpha (neuromancer's default nonlinearity of MLP)",
    "RectifiedSoftExp": "a rectified soft exponential of a learnt alpha",
    "BLU": "a bent linear unit with learnt parameters",
    "APLU": "an adaptive piecewise linear unit with learnt hinges",
    "PELU": "a parametric ELU with learnt scales",
}
_CATALOGUE_HINT = ("build the block with a standard activation (nonlin=torch.nn.ReLU, LeakyReLU, ELU, GELU, Tanh, "
                   "Sigmoid, Softplus, ...)")


def _is_node(module) -> bool:
    return all(hasattr(module, a) for a in ("callable", "input_keys", "output_keys"))


def _is_system(module) -> bool:
    return hasattr(module, "nodes") and hasattr(module, "nstep_key")


def _node_name(node) -> str:
    return repr(getattr(node, "name", None) or type(node).__name__)


def unwrap_neuromancer(module, n_examples: int, source: str):
    """The block a neuromancer ``System`` (of one ``Node``) or ``Node`` wraps, or ``module`` itself.

    A ``Node`` maps its ``input_keys`` to its ``output_keys`` by calling ``node.callable(*inputs)``; certify imports
    that callable, with one example input per input key (states first). Refused, with a ModelError naming the
    node: a System of several nodes (a closed loop of policy and plant: compose them with
    :func:`certify.closed_loop` or pass the node of the dynamics), a node with several outputs, a node whose callable
    is no torch module, a count of example inputs other than the node's input keys."""
    while True:
        if _is_system(module) and not _is_node(module):
            nodes = list(module.nodes)
            names = ", ".join(_node_name(n) for n in nodes)
            if len(nodes) != 1:
                raise ModelError(
                    f"{source}: the neuromancer System has {len(nodes)} nodes ({names}); certify imports one map "
                    "x+ = f(x) or f(x, u): pass the node (or block) of the dynamics, e.g. system.nodes[0], or, for a "
                    "linear plant with a neural policy, certify.closed_loop(A, B, policy, u_min, u_max)"
                )
            module = nodes[0]
            continue
        if _is_node(module):
            name, ins, outs = _node_name(module), list(module.input_keys), list(module.output_keys)
            if len(outs) != 1:
                raise ModelError(f"{source}: the neuromancer Node {name} has {len(outs)} outputs {outs}; certify "
                                 "imports a node with one output (the next state)")
            if len(ins) != n_examples:
                raise ModelError(
                    f"{source}: the neuromancer Node {name} takes {len(ins)} input(s) {ins} but {n_examples} example "
                    f"input(s) were given; give one example per input key, states first"
                )
            block = module.callable
            if not isinstance(block, torch.nn.Module):
                raise ModelError(f"{source}: the neuromancer Node {name} calls a {type(block).__name__}, not a torch "
                                 "module; wrap the function in a torch.nn.Module")
            module = block
            continue
        return module


def refuse_unrepresentable(module: torch.nn.Module, source: str) -> None:
    """ModelError naming the first submodule the IR cannot represent: a ResMLP-style block (skips into hidden
    layers) or one of neuromancer's activations (:data:`_NEUROMANCER_ACTIVATIONS`)."""
    for path, sub in module.named_modules():
        where = f"submodule {path!r}" if path else "the block"
        kind = type(sub).__name__
        if kind == "ResMLP" or all(hasattr(sub, a) for a in ("inmap", "outmap", "skip", "linear", "nonlin")):
            every = getattr(sub, "skip", 1)
            raise ModelError(
                f"{source}: {where} is a ResMLP: its skips add inmap(x), a linear map of the input, to hidden layer "
                f"1, each hidden output to a later one (every {every} layer(s)) and outmap(h) to the output; "
                "certify's IR chains z_l = W_l h_l + b_l with a linear skip to the output only, so it cannot "
                "represent them; use neuromancer's MLP (blocks.MLP) or a net whose skips go to the output only"
            )
        if kind in _NEUROMANCER_ACTIVATIONS:
            raise ModelError(
                f"{source}: {where} is neuromancer's {kind}, {_NEUROMANCER_ACTIVATIONS[kind]}: not an activation "
                f"certify represents; {_CATALOGUE_HINT}"
            )


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
            with quiet_export():
                torch.onnx.export(
                    module, tuple(xs), buf, dynamo=False, opset_version=_OPSET, input_names=names,
                    output_names=["y"], dynamic_axes={n: {0: "batch"} for n, x in zip(names, xs) if x.ndim == 2},
                )
            return buf.getvalue()
        except Exception as e:  # exporter failures come in many types
            errors.append(f"TorchScript exporter: {exporter_reason(e)}")
    if exporter in ("auto", "dynamo"):
        try:
            with quiet_export():
                program = torch.onnx.export(module, tuple(xs), dynamo=True, input_names=names, output_names=["y"])
            return program.model_proto.SerializeToString()
        except Exception as e:
            errors.append(f"dynamo exporter: {exporter_reason(e)}")
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
    mod = _float64_copy(unwrap_neuromancer(module, len(net.input_names) or 1, source), source)
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
    second). A neuromancer ``System`` of one ``Node``, or a ``Node``, is unwrapped to the block it calls (module
    docstring). Raises ModelError / UnsupportedOperatorError / ModelMismatchError.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    source = f"<torch {type(module).__name__}>"
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{source}: from_torch needs a torch.nn.Module")
    xs = _examples(example_input, source)
    module = unwrap_neuromancer(module, len(xs), source)
    refuse_unrepresentable(module, source)
    mod = _float64_copy(module, source)
    model, problem = prepare(parse_model(_export(mod, xs, exporter, source), source), source)
    net = import_checked(model, problem, source, n_states)
    r, a = TOLERANCES[np.dtype(np.float64)]
    compare(net, module_forward(mod, net, [x.ndim for x in xs]), import_points(net.n_in), r, a, source,
            "the PyTorch module")
    return net
