"""Read an ONNX file safely, import it into the Network IR and check the IR against onnxruntime.

Reading never executes anything from the file and never follows external data outside the model's folder:
the model is parsed with external data left on disk, every external reference is resolved and checked (inside the
folder, an existing regular file, offset and length within it), then loaded. Any decode problem becomes a one-line
:class:`~certify.errors.ModelError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import external_data_helper as edh

from ..errors import ModelError
from ..ir.network import Network
from .agreement import TOLERANCES, compare, import_points
from .graph import InputSpec, graph_inputs, import_graph


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def parse_model(data: bytes, source: str) -> onnx.ModelProto:
    """Decode ONNX bytes (external data not loaded); ModelError when they are not an ONNX model."""
    if not data:
        raise ModelError(f"{source}: not an ONNX model (the file is empty); export the network with torch.onnx.export")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError, TypeError) as e:
        raise ModelError(
            f"{source}: not an ONNX model ({_first_line(e)}); export the network with torch.onnx.export"
        ) from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise ModelError(
            f"{source}: not an ONNX model (no graph with an output in it); export the network with torch.onnx.export"
        )
    return model


def _tensors_with_external_data(model: onnx.ModelProto):
    def from_graph(g: onnx.GraphProto):
        yield from g.initializer
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    yield from from_graph(attr.g)
                for sub in attr.graphs:
                    yield from from_graph(sub)

    for t in from_graph(model.graph):
        if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL:
            yield t


def load_external_data(model: onnx.ModelProto, folder: Path, source: str) -> None:
    """Load external tensors in place after checking each file lies inside ``folder`` (symlinks resolved)."""
    root = folder.resolve()
    for tensor in _tensors_with_external_data(model):
        info = edh.ExternalDataInfo(tensor)
        where = f"external data {info.location!r} of tensor {tensor.name!r}"
        if not info.location:
            raise ModelError(f"{source}: {where} has no location")
        target = (root / info.location).resolve()
        if not target.is_relative_to(root):
            raise ModelError(
                f"{source}: {where} resolves outside the model's folder ({target}); certify refuses it: keep the "
                "data file next to the model"
            )
        if not target.is_file():
            raise ModelError(f"{source}: {where} is missing ({target}); copy the data file next to the model")
        size = target.stat().st_size
        offset = int(info.offset or 0)
        length = int(info.length) if info.length else size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise ModelError(f"{source}: {where} asks for bytes {offset}..{offset + length} of a {size}-byte file")
        with open(target, "rb") as fh:
            fh.seek(offset)
            raw = fh.read(length)
        tensor.raw_data = raw
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def prepare(model: onnx.ModelProto, source: str) -> tuple[onnx.ModelProto, str | None]:
    """(model with local functions inlined (the dynamo exporter writes some), the ONNX checker's complaint or None).

    The complaint is raised only after an import attempt: the importer's own message (node, operator, list of
    supported operators) says more than the checker's for the usual problem, an unknown operator.
    """
    problem = None
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises ValidationError and friends; all mean "invalid model"
        problem = _first_line(e)
    if len(model.functions):
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:
            raise ModelError(f"{source}: cannot inline the model's local functions ({_first_line(e)})") from None
    return model, problem


def import_checked(model: onnx.ModelProto, problem: str | None, source: str, n_states: int | None) -> Network:
    """import_graph, then the checker's complaint (if any) when the importer itself found nothing wrong."""
    net = import_graph(model, source, n_states)
    if problem is not None:
        raise ModelError(f"{source}: invalid ONNX model ({problem})")
    return net


def read_model(path: str | Path) -> tuple[onnx.ModelProto, str | None]:
    """The self-contained ModelProto of an ONNX file (external data loaded, functions inlined) and the ONNX
    checker's complaint about it (None when valid)."""
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise ModelError(f"{source}: no such file; give the path of an .onnx model")
    if not p.is_file():
        raise ModelError(f"{source}: not a file; give the path of an .onnx model")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelError(f"{source}: cannot read the file ({_first_line(e)})") from None
    model = parse_model(data, source)
    load_external_data(model, p.parent, source)
    return prepare(model, source)


def onnxruntime_forward(model: onnx.ModelProto, source: str):
    """(run, name): ``run`` maps (B, n_in) float64 to (B, n_out) float64 by running ``model`` in onnxruntime (CPU,
    no graph optimisations, so the operators run as written). Points are fed in the model's dtype, as one batch
    when the inputs have a symbolic batch axis (else point by point).

    When onnxruntime has no kernel for an operator (it lacks some float64 ones, e.g. Elu) the check runs in ONNX's
    reference implementation (``onnx.reference``) instead, and ``name`` says so.
    """
    import onnxruntime as ort

    specs = graph_inputs(model, source)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        name, call = "onnxruntime", lambda f: session.run(None, f)[0]
    except Exception as e:  # onnxruntime raises its own exception types
        if "NOT_IMPLEMENTED" not in str(e):
            raise ModelError(
                f"{source}: onnxruntime cannot load the model ({_first_line(e)}); certify checks every import "
                "against onnxruntime"
            ) from None
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(model)
        name, call = "the ONNX reference implementation", lambda f: evaluator.run(None, f)[0]

    def feeds(pts: np.ndarray, batched: bool) -> dict:
        out, start = {}, 0
        for s in specs:
            block = pts[:, start:start + s.size].astype(s.dtype)
            start += s.size
            out[s.name] = block if batched else (block.reshape(s.size) if s.rank == 1 else block.reshape(1, s.size))
        return out

    def run(pts: np.ndarray) -> np.ndarray:
        try:
            if all(s.rank == 2 and s.dynamic_batch for s in specs):
                try:
                    return np.asarray(call(feeds(pts, True)), dtype=np.float64).reshape(pts.shape[0], -1)
                except Exception:
                    pass  # some graphs fix the batch inside (Reshape to [1, -1]): go point by point
            rows = [np.asarray(call(feeds(p[None], False)), dtype=np.float64).ravel() for p in pts]
            return np.stack(rows)
        except Exception as e:
            raise ModelError(f"{source}: {name} cannot run the model ({_first_line(e)})") from None

    return run, name


def _tolerance(specs: list[InputSpec]) -> tuple[float, float]:
    return TOLERANCES.get(np.dtype(specs[0].dtype), TOLERANCES[np.dtype(np.float32)])


def check_agreement_model(
    net: Network, model: onnx.ModelProto, source: str, points: np.ndarray,
    rtol: float | None = None, atol: float | None = None,
) -> float:
    """Compare ``net`` with onnxruntime running ``model`` on ``points`` (B, n_in); returns the max abs error."""
    r, a = _tolerance(graph_inputs(model, source))
    run, name = onnxruntime_forward(model, source)
    return compare(net, run, points, r if rtol is None else rtol, a if atol is None else atol, source, name)


def check_agreement_onnx(
    net: Network, path: str | Path, points: np.ndarray, rtol: float | None = None, atol: float | None = None
) -> float:
    """Re-check an imported network against onnxruntime on caller-chosen points (e.g. the box's).

    points: (B, n_in). Tolerances default to rtol 1e-4, atol 1e-5 for float32 models (see
    :mod:`certify.importers.agreement`). Raises ModelMismatchError on disagreement; returns the max abs error.
    """
    model, problem = read_model(path)
    if problem is not None:
        raise ModelError(f"{path}: invalid ONNX model ({problem})")
    return check_agreement_model(net, model, str(path), points, rtol, atol)


def load_onnx(path: str | Path, n_states: int | None = None) -> Network:
    """Import an ONNX file into the Network IR and check it against onnxruntime on N(0, I) x {0.1, 1, 10} points.

    ``n_states``: how many of the inputs are states (default: the size of the first input of a two-input graph,
    else all). Raises ModelError / UnsupportedOperatorError (file, node, operator named) or ModelMismatchError.
    """
    model, problem = read_model(path)
    net = import_checked(model, problem, str(path), n_states)
    check_agreement_model(net, model, str(path), import_points(net.n_in))
    return net
