"""Read an ONNX file safely, import it into the Network IR and check the IR against onnxruntime.

Reading never executes anything from the file, never follows external data outside the model's folder and never
reads more than the model's tensors declare:

* the file (at most 2 GiB, protobuf's limit) is parsed from a read-only memory map, external data left on disk;
* the default-domain opset must be :data:`MIN_OPSET` or newer (older opsets broadcast differently and give some
  operators other semantics, which the importer and onnxruntime do not implement);
* initializers no node uses are dropped before any tensor is read from a data file or converted (an unused
  external tensor is never read; an unused embedded one is freed right after parsing);
* every external reference is checked (a location without NUL bytes, inside the folder, an existing regular file;
  offset and length decimal integers; the length, when given, equal to the size the tensor's type and shape
  declare; the bytes inside the file; the file not far larger than what the model's tensors declare in it), then
  exactly the declared bytes are read, by offset and length.

Any problem becomes a one-line :class:`~certify.errors.ModelError` naming the file and saying what to do.
"""

from __future__ import annotations

import math
import mmap
import re
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import helper
from onnx.reference import ReferenceEvaluator

from ..errors import ModelError
from ..ir.network import Network
from .agreement import TOLERANCES, compare, import_points
from .graph import InputSpec, graph_inputs, import_graph

MIN_OPSET = 7
MAX_MODEL_BYTES = 2**31 - 1  # protobuf cannot parse a larger message
MAX_TENSOR_BYTES = 2**31 - 1  # nor hold a larger raw_data field
EXTERNAL_SLACK_BYTES = 1 << 16  # what a data file may hold beyond its declared tensors (alignment padding)
_DECIMAL = re.compile(r"[0-9]+")
_KNOWN_TYPES = set(onnx.TensorProto.DataType.values())
_PACKED_4BIT = {getattr(onnx.TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1")
                if hasattr(onnx.TensorProto, n)}  # two entries per byte


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def parse_model(data: bytes | memoryview, source: str) -> onnx.ModelProto:
    """Decode ONNX bytes (external data not loaded); ModelError when they are not an ONNX model of a supported
    opset."""
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
    check_opset(model, source)
    return model


def check_opset(model: onnx.ModelProto, source: str) -> None:
    """ModelError unless the model imports one default-domain opset, MIN_OPSET or newer."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelError(
            f"{source}: the model declares no ONNX opset (opset_import has no default domain); re-export it with "
            f"torch.onnx.export (opset {MIN_OPSET} or newer)"
        )
    if min(versions) < MIN_OPSET:
        raise ModelError(
            f"{source}: the model uses ONNX opset {min(versions)}; certify supports opset {MIN_OPSET} or newer (older "
            "opsets broadcast differently and give operators other semantics); convert it with "
            "onnx.version_converter.convert_version(model, 17) or re-export it with a recent exporter"
        )


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Remove, in place, the initializers no node (subgraphs included) and no graph output refers to, and their
    entries in the graph inputs: they cannot change the function, and reading or converting them only costs
    memory."""
    graph = model.graph
    used = {o.name for o in graph.output}

    def collect(g: onnx.GraphProto) -> None:
        for node in g.node:
            used.update(node.input)
            for attr in node.attribute:
                if attr.HasField("g"):
                    collect(attr.g)
                for sub in attr.graphs:
                    collect(sub)

    collect(graph)
    dropped = {t.name for t in graph.initializer if t.name not in used}
    if not dropped:
        return
    for i in range(len(graph.initializer) - 1, -1, -1):
        if graph.initializer[i].name in dropped:
            del graph.initializer[i]
    for i in range(len(graph.input) - 1, -1, -1):
        if graph.input[i].name in dropped:
            del graph.input[i]


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


def tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """The bytes the tensor's type and shape declare (None for a type with no fixed size, e.g. strings)."""
    if tensor.data_type in _PACKED_4BIT:
        return (math.prod(tensor.dims) + 1) // 2
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    except Exception:  # onnx raises KeyError or ValueError for an unknown type
        return None
    if dtype.kind in "OUS":
        return None
    return math.prod(tensor.dims) * dtype.itemsize


def _entry_integer(entries: dict[str, str], key: str, where: str, source: str) -> int | None:
    if key not in entries:
        return None
    text = entries[key]
    if not _DECIMAL.fullmatch(text):
        raise ModelError(
            f"{source}: {where} has {key} {text!r}, not a non-negative decimal integer; the model file is damaged: "
            "export it again"
        )
    return int(text)


def _external_reference(tensor: onnx.TensorProto, root: Path, source: str) -> tuple[Path, int, int]:
    """(file, offset, number of bytes) of an external tensor, after every check of the module docstring but the
    size of the whole file."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    where = f"external data {location!r} of tensor {tensor.name!r}"
    if not location:
        raise ModelError(f"{source}: {where} has no location")
    if "\x00" in location:
        raise ModelError(
            f"{source}: {where}: the location contains a NUL byte; the model file is damaged: export it again"
        )
    target = (root / location).resolve()
    if not target.is_relative_to(root):
        raise ModelError(
            f"{source}: {where} resolves outside the model's folder ({target}); certify refuses it: keep the "
            "data file next to the model"
        )
    if not target.is_file():
        raise ModelError(f"{source}: {where} is missing ({target}); copy the data file next to the model")
    if any(d < 0 for d in tensor.dims):
        raise ModelError(f"{source}: {where}: the tensor has a negative dimension {list(tensor.dims)}")
    nbytes = tensor_nbytes(tensor)
    type_name = onnx.TensorProto.DataType.Name(tensor.data_type) if tensor.data_type in _KNOWN_TYPES else (
        f"#{tensor.data_type}")
    if nbytes is None:
        raise ModelError(
            f"{source}: {where}: a tensor of type {type_name} cannot be stored as external data; export the model "
            "again"
        )
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelError(
            f"{source}: {where}: the tensor declares {nbytes} bytes (shape {list(tensor.dims)}), more than 2 GiB; "
            "certify does not load tensors that large"
        )
    offset = _entry_integer(entries, "offset", where, source) or 0
    length = _entry_integer(entries, "length", where, source)
    if length is not None and length != nbytes:
        raise ModelError(
            f"{source}: {where} declares a length of {length} bytes but the tensor (shape {list(tensor.dims)}, type "
            f"{type_name}) has {nbytes}: the length is too {'short' if length < nbytes else 'long'}; the model and "
            "its data file do not match: export them again together"
        )
    size = target.stat().st_size
    if offset + nbytes > size:
        raise ModelError(f"{source}: {where} asks for bytes {offset}..{offset + nbytes} of a {size}-byte file")
    return target, offset, nbytes


def load_external_data(model: onnx.ModelProto, folder: Path, source: str) -> None:
    """Check every external reference (see the module docstring), drop the initializers no node uses, then load
    the remaining external tensors in place, reading only the bytes each one declares, by offset and length."""
    root = folder.resolve()
    extents: dict[Path, int] = {}
    for tensor in _tensors_with_external_data(model):
        target, offset, nbytes = _external_reference(tensor, root, source)
        extents[target] = max(extents.get(target, 0), offset + nbytes)
    for target, extent in extents.items():
        size = target.stat().st_size
        if size > extent + EXTERNAL_SLACK_BYTES:
            raise ModelError(
                f"{source}: external data file {target.name!r} has {size} bytes but the model's tensors declare only "
                f"the first {extent}; certify refuses a data file far larger than what the model declares in it: "
                "save the model again with its own data file (onnx.save_model(..., save_as_external_data=True))"
            )
    drop_unused_initializers(model)
    for tensor in _tensors_with_external_data(model):
        target, offset, nbytes = _external_reference(tensor, root, source)
        with open(target, "rb") as fh:
            fh.seek(offset)
            raw = fh.read(nbytes)
        if len(raw) != nbytes:
            raise ModelError(f"{source}: external data of tensor {tensor.name!r}: {target.name!r} ended early")
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
        size = p.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelError(
                f"{source}: the file has {size} bytes, more than an ONNX (protobuf) file can hold (2 GiB); store "
                "the weights as external data (onnx.save_model(..., save_as_external_data=True))"
            )
        if size == 0:
            model = parse_model(b"", source)
        else:
            with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    model = parse_model(view, source)
                finally:
                    view.release()
    except OSError as e:
        raise ModelError(f"{source}: cannot read the file ({_first_line(e)})") from None
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
    opts.log_severity_level = 4  # fatal only: a kernel's failure comes back as our one-line error, not [E:...] lines
    try:
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        name, call = "onnxruntime", lambda f: session.run(None, f)[0]
    except Exception as e:  # onnxruntime raises its own exception types
        if "NOT_IMPLEMENTED" not in str(e):
            raise ModelError(
                f"{source}: onnxruntime cannot load the model ({_first_line(e)}); certify checks every import "
                "against onnxruntime"
            ) from None
        try:
            evaluator = ReferenceEvaluator(model)
        except Exception as e2:  # an operator neither implementation knows
            raise ModelError(
                f"{source}: neither onnxruntime ({_first_line(e)}) nor the ONNX reference implementation "
                f"({_first_line(e2)}) can load the model; certify checks every import against one of them"
            ) from None
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
