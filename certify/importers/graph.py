"""Symbolic evaluation of an ONNX graph into the :class:`~certify.ir.network.Network` IR.

The graph is evaluated once, in topological order, for a single sample (batch axis of size 1), with the values of
:mod:`certify.importers.symbolic`. This module is the evaluator: it walks the nodes, keeps the values, closes
layers and builds the ``Network``; what each operator does is a handler in the table
:data:`certify.importers.operators.OPERATORS` (one entry per ONNX operator type):

* linear operators (Gemm, MatMul, Add/Sub/Mul/Div by constants, Neg, 1x1 Conv, BatchNormalization, Sum) and layout
  operators (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Slice, Gather, Split, Expand, Tile, Identity,
  Dropout, Cast) act on the affine coefficients, so consecutive linear operators fold into one affine map;
* an elementwise nonlinearity makes an :class:`Elementwise` value; expressions over the same pre-activation
  (x * sigmoid(x), the GELU written with Erf, HardSwish written with HardSigmoid) grow, in the normal form of
  :mod:`certify.importers.expression`, until a linear operator or the graph output needs the value: then it is
  recognised as an activation *by its structure* (:mod:`certify.importers.patterns`; never by evaluating it) and
  *closes a layer* z -> sigma(z) (:meth:`GraphEvaluator.materialize`);
* an affine function of the raw input x added to one of the last hidden vector gives the skip S.

Anything else (two activations in parallel, a skip into a hidden layer, a product of two input-dependent tensors,
an elementwise expression that is no recognised activation, a comparison or Where outside torch's softplus
threshold form, control flow, an operator outside the table) is refused with an
:class:`~certify.errors.UnsupportedOperatorError` or :class:`~certify.errors.ModelError` naming the file, the node
(name, and its index in the graph for refused operators) and the operator, and saying what to do. Layout operators
and every node whose inputs are all constant are evaluated with ONNX's reference implementation (``onnx.reference``), so
their semantics (negative axes, opset differences) are ONNX's own: a layout operator runs on a tensor of entry
indices and the result says where each output entry comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..errors import ModelError, UnsupportedOperatorError
from ..ir import activations as acts
from ..ir.activations import ActivationKind
from ..ir.network import Layer, Network
from .operators import CONTROL_FLOW_OPS, FLOAT_TYPES, OPERATORS, SUPPORTED_OPS, UNREPRESENTED_ELEMENTWISE_OPS
from .patterns import ADVICE, recognise, resemblance
from .symbolic import Affine, Condition, Const, Elementwise, Value, affine_scalar, lift

RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass(frozen=True)
class InputSpec:
    """One graph input: ``size`` entries, ``rank`` 1 ([n]) or 2 ([batch, n] / [1, n]); ``dynamic_batch`` when the
    first axis of a rank-2 input is symbolic; ``dtype`` the numpy dtype the model expects."""

    name: str
    size: int
    rank: int
    dynamic_batch: bool
    dtype: np.dtype


def graph_inputs(model: onnx.ModelProto, source: str) -> list[InputSpec]:
    """The one or two real inputs of the graph (initializers listed as inputs are constants, not inputs)."""
    inits = {t.name for t in model.graph.initializer}
    specs = []
    real = [i for i in model.graph.input if i.name not in inits]
    if not real:
        raise ModelError(f"{source}: the graph has no input; certify needs one input [batch, n] (or states and inputs)")
    if len(real) > 2:
        names = ", ".join(repr(i.name) for i in real)
        raise ModelError(
            f"{source}: the graph has {len(real)} inputs ({names}); certify takes one input x, or two (states, then "
            "exogenous inputs); merge the others into these"
        )
    for inp in real:
        t = inp.type.tensor_type if inp.type.HasField("tensor_type") else None
        if t is None or t.elem_type not in FLOAT_TYPES:
            raise ModelError(f"{source}: input {inp.name!r} is not a floating-point tensor; certify needs real inputs")
        if not t.HasField("shape"):
            raise ModelError(f"{source}: input {inp.name!r} has no declared shape; export it with shape [batch, n]")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        if len(dims) == 1 and dims[0]:
            specs.append(InputSpec(inp.name, dims[0], 1, False, helper.tensor_dtype_to_np_dtype(t.elem_type)))
        elif len(dims) == 2 and dims[1] and dims[0] in (None, 1):
            specs.append(
                InputSpec(inp.name, dims[1], 2, dims[0] is None, helper.tensor_dtype_to_np_dtype(t.elem_type))
            )
        else:
            raise ModelError(
                f"{source}: input {inp.name!r} has shape {shown}; certify needs [batch, n], [1, n] or [n] with a "
                "fixed n"
            )
    return specs


def describe_node(node: onnx.NodeProto, index: int) -> str:
    """``node 'name' (OpType)`` for messages; an unnamed node is named by its index and first output."""
    name = node.name or f"#{index} -> {node.output[0] if node.output else '?'}"
    return f"node {name!r} ({node.op_type})"


def node_attributes(node: onnx.NodeProto) -> dict:
    """Node attributes; a float attribute (stored as float32) becomes the shortest decimal that rounds to it, the
    value the author wrote (LeakyReLU 0.2, not 0.20000000298): a change far below float32 resolution."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = float(str(np.float32(v))) if a.type == onnx.AttributeProto.FLOAT else v
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class GraphEvaluator:
    """One symbolic pass over a graph: the context every operator handler receives.

    ``values``: tensor name -> :data:`~certify.importers.symbolic.Value`; ``layers``/``widths`` grow as activations
    close layers (``closed_by`` names the nodes of each layer's activation, for messages); ``node_desc`` describes
    the node being evaluated and ``node_index`` its position in the graph; ``n_in`` is the number of model inputs
    (the size of the level-0 basis).
    """

    def __init__(self, model: onnx.ModelProto, source: str):
        self.model = model
        self.source = source
        self.opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
        self.layers: list[Layer] = []
        self.widths: list[int] = []
        self.closed_by: list[str] = []
        self.values: dict[str, Value] = {}
        self.materialized: dict[Elementwise, Affine] = {}
        self.node_desc = ""
        self.node_index = -1
        self.node_positions: dict[str, int] = {}
        self.needed: set[str] = set()
        self.specs = graph_inputs(model, source)
        self.n_in = sum(s.size for s in self.specs)

    # ------------------------------------------------------------------ messages
    def positions(self, descs) -> str:
        """'graph node #3' or 'graph nodes #3, #5': where the described nodes are in the graph."""
        found = [f"#{self.node_positions[d]}" for d in descs if d in self.node_positions]
        return f"graph node{'s' if len(found) > 1 else ''} {', '.join(found)}" if found else "graph nodes unknown"

    def fail(self, msg: str, kind=ModelError) -> ModelError:
        """The exception to raise: ``kind`` with the file and the current node in front of ``msg``."""
        return kind(f"{self.source}: {self.node_desc}: {msg}" if self.node_desc else f"{self.source}: {msg}")

    # ------------------------------------------------------------------ the walk
    def run(self, n_states: int | None) -> Network:
        """Evaluate every node the output needs, in order, then build the Network."""
        graph = self.model.graph
        if len(graph.output) != 1:
            raise self.fail(
                f"the graph has {len(graph.output)} outputs; certify needs exactly one output f(x) (a vector), or, for "
                "a deep Markov model x+ = K(x) + L(x) w, the mean and noise outputs named under 'heads' in the "
                "region file"
            )
        if len(graph.sparse_initializer):
            raise self.fail("sparse initializers are not supported; store the weights as dense tensors")
        offset = 0
        for spec in self.specs:
            shape = (1, spec.size) if spec.rank == 2 else (spec.size,)
            coef = np.zeros((self.n_in, spec.size))
            coef[offset:offset + spec.size] = np.eye(spec.size)
            self.values[spec.name] = Affine(0, coef.reshape(self.n_in, *shape), np.zeros(shape))
            offset += spec.size
        nodes = list(graph.node)
        self.needed = {graph.output[0].name}
        keep = [False] * len(nodes)
        for i in range(len(nodes) - 1, -1, -1):
            if any(o in self.needed for o in nodes[i].output):
                keep[i] = True
                self.needed.update(n for n in nodes[i].input if n)
        for init in graph.initializer:  # only those the output needs: an unused tensor is never converted
            if init.name in self.needed:
                try:
                    self.values[init.name] = Const(numpy_helper.to_array(init))
                except Exception as e:  # raw data of the wrong size, an unknown type: a damaged file
                    raise self.fail(f"initializer {init.name!r} cannot be read ({_first_line(e)})") from None
        for i, node in enumerate(nodes):
            if keep[i]:
                self.node_desc, self.node_index = describe_node(node, i), i
                self.node_positions[self.node_desc] = i
                try:
                    self.evaluate_node(node)
                except ModelError as e:
                    if str(e).startswith(f"{self.source}: "):
                        raise
                    raise type(e)(f"{self.source}: {self.node_desc}: {e}") from None
                except (ValueError, IndexError) as e:  # numpy on shapes that do not fit
                    raise self.fail(f"shapes do not fit ({_first_line(e)})") from None
                except Exception as e:  # never a traceback from a bad file: name the node and keep the cause
                    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    raise self.fail(
                        f"cannot import this node ({type(e).__name__}: {text}); please report this model"
                    ) from e
        self.node_desc, self.node_index = "", -1
        return self.finish(graph.output[0].name, n_states)

    def evaluate_node(self, node: onnx.NodeProto) -> None:
        """Look up the node's inputs, run its handler (or fold it when every input is constant), store outputs."""
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(
                f"operator domain {node.domain!r} is not supported; export with standard ONNX operators only "
                f"(supported: {', '.join(SUPPORTED_OPS)})",
                UnsupportedOperatorError,
            )
        inputs = []
        for name in node.input:
            if not name:
                inputs.append(None)
            elif name not in self.values:
                raise self.fail(f"input tensor {name!r} is produced by no earlier node (the graph is not sorted)")
            else:
                inputs.append(self.values[name])
        op, where = node.op_type, f"graph node #{self.node_index}"
        if op in RANDOM_OPS:
            raise self.fail("random operators cannot be verified", UnsupportedOperatorError)
        if op in CONTROL_FLOW_OPS:
            raise self.fail(
                f"operator {op} ({where}) is control flow (a branch or loop chosen by a tensor's value), which "
                "certify does not import; export the inference path of the model without it", UnsupportedOperatorError
            )
        conditions = [v for v in inputs if isinstance(v, Condition)]
        if conditions and op != "Where":
            raise self.fail(
                f"operator {op} ({where}) uses the comparison [{conditions[0].node}] "
                f"({self.positions([conditions[0].node])}) of input-dependent tensors (a jump in the function); a "
                "comparison is accepted only inside torch's softplus threshold form Where(beta x > threshold, x, "
                f"softplus(beta x) / beta); {ADVICE}", UnsupportedOperatorError
            )
        if all(v is None or isinstance(v, Const) for v in inputs):
            outs = self.fold(node, inputs)
        else:
            handler = OPERATORS.get(op)
            if handler is None and op in UNREPRESENTED_ELEMENTWISE_OPS:
                raise self.fail(
                    f"operator {op} ({where}) on an input-dependent tensor is an elementwise function certify does "
                    f"not represent (no activation of the catalogue, no part of a recognised pattern); {ADVICE}; "
                    f"supported operators: {', '.join(SUPPORTED_OPS)}", UnsupportedOperatorError
                )
            if handler is None:
                raise self.fail(
                    f"operator {op} is not supported on input-dependent tensors ({where}); supported operators: "
                    f"{', '.join(SUPPORTED_OPS)}",
                    UnsupportedOperatorError,
                )
            outs = handler(self, node, inputs, node_attributes(node))
        for i, name in enumerate(node.output):
            if not name:
                continue
            if i >= len(outs) or outs[i] is None:
                if name in self.needed:
                    raise self.fail(f"output {i} ({name!r}) of this operator is not supported",
                                    UnsupportedOperatorError)
                continue
            self.values[name] = outs[i]

    # ------------------------------------------------------------------ reference evaluation
    def evaluate_reference(self, node: onnx.NodeProto, feeds: list) -> list[np.ndarray | None]:
        """Run ``node`` alone in ONNX's reference implementation on concrete ``feeds`` (None for absent inputs);
        one array per output (None for absent outputs)."""
        names = [f"in{i}" if n else "" for i, n in enumerate(node.input)]
        outs = [f"out{i}" if n else "" for i, n in enumerate(node.output)]
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(names)
        del copy.output[:]
        copy.output.extend(outs)
        g = helper.make_graph(
            [copy], "fold",
            [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in names if n],
            [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in outs if n],
        )
        m = helper.make_model(g, opset_imports=self.opsets or [helper.make_opsetid("", 17)])
        try:
            res = ReferenceEvaluator(m).run(None, {n: v for n, v in zip(names, feeds) if n})
        except Exception as e:  # a constant subgraph the reference implementation rejects: a broken model
            raise self.fail(f"cannot evaluate this operator on its constant inputs ({_first_line(e)})") from None
        it = iter(res)
        return [next(it) if n else None for n in outs]

    def fold(self, node: onnx.NodeProto, inputs: list) -> list:
        """A node whose inputs are all constant: its outputs as constants."""
        feeds = [None if v is None else v.value for v in inputs]
        return [None if r is None else Const(np.asarray(r)) for r in self.evaluate_reference(node, feeds)]

    # ------------------------------------------------------------------ levels and materialisation
    def common_level(self, values: list[Affine]) -> int:
        """The level a combination of ``values`` lives at (the raw input, level 0, mixes with any level)."""
        levels = {v.level for v in values}
        top = max(levels, default=0)
        if levels - {0, top}:
            raise self.fail(
                "combines values from different hidden layers (a skip connection between hidden layers); certify "
                "supports a chain of (affine, activation) steps with a linear skip from the input to the output only"
            )
        return top

    def affine_or_const(self, v: Value) -> Affine | Const:
        """``v`` with an elementwise expression materialised (a layer closed)."""
        if isinstance(v, Condition):
            raise self.fail(f"uses the comparison [{v.node}] as a number; {ADVICE}", UnsupportedOperatorError)
        if isinstance(v, Elementwise):
            return self.materialize(v)
        return v

    def affine(self, v: Value) -> Affine:
        """``v`` as an input-dependent affine tensor (refused when it is a constant)."""
        v = self.affine_or_const(v)
        if isinstance(v, Const):
            raise self.fail("this operator's data input must depend on the model input (its parameters do)",
                            UnsupportedOperatorError)
        return v

    def materialize(self, e: Elementwise) -> Affine:
        """Recognise the expression as an activation (:func:`~certify.importers.patterns.recognise`, by its
        structure only), close a layer z -> sigma(z), return a * sigma(z) + b as Affine."""
        if e in self.materialized:
            return self.materialized[e]
        z = e.base
        top = len(self.layers)
        nodes = ", ".join(e.nodes)
        if z.level != top:
            raise self.fail(
                f"the activation [{nodes}] is applied to a value computed before the activation "
                f"[{self.closed_by[z.level]}]: two activations in parallel (or a skip into a hidden layer); certify "
                "supports a chain of (affine, activation) steps with a linear skip to the output only"
            )
        found = recognise(e)
        if found is None:
            names = ", ".join(sorted(acts.CATALOGUE))
            raise self.fail(
                f"the elementwise expression built by [{nodes}] is not an activation certify knows ({names}): it is "
                f"{e.poly.describe()} in t = its input ({self.positions(e.nodes)}){resemblance(e)}; {ADVICE}",
                UnsupportedOperatorError,
            )
        act, a, b = found.activation, found.scale, found.shift
        z = affine_scalar(e.base, *found.variable)
        if act.kind is ActivationKind.IDENTITY:
            out = affine_scalar(z, a, b)
        else:
            n_h = z.coef.shape[0] if z.level == 0 else self.widths[z.level - 1]
            if z.level > 0 and np.any(z.coef[n_h:] != 0):
                raise self.fail(
                    f"the activation [{nodes}] is applied to a sum that includes the raw input (a skip into a hidden "
                    "layer); certify supports a linear skip to the output only"
                )
            m = z.size
            weight = z.coef[:n_h].reshape(n_h, m).T
            self.layers.append(Layer(weight, z.offset.ravel(), act))
            self.widths.append(m)
            self.closed_by.append(nodes)
            coef = np.concatenate([np.eye(m), np.zeros((self.n_in, m))]).reshape(m + self.n_in, *z.shape)
            out = affine_scalar(Affine(top + 1, coef, np.zeros(z.shape)), a, b)
        self.materialized[e] = out
        return out

    # ------------------------------------------------------------------ the output
    def finish(self, out_name: str, n_states: int | None) -> Network:
        """The Network: the output as an affine map of the last hidden vector (plus the skip S x)."""
        v = self.values.get(out_name)
        if v is None:
            raise self.fail(f"the graph output {out_name!r} is produced by no node")
        if isinstance(v, Const):
            raise self.fail(f"the graph output {out_name!r} does not depend on the input")
        if isinstance(v, Condition):
            raise self.fail(f"the graph output {out_name!r} is a comparison [{v.node}], not a real vector")
        self.node_desc = f"output {out_name!r}"
        v = self.affine(v)
        self.node_desc = ""
        if sum(1 for d in v.shape if d != 1) > 1:
            raise self.fail(
                f"the output {out_name!r} has shape {list(v.shape)} (batch axis 1); certify needs a vector output "
                "[batch, n] or [n]"
            )
        m = v.size
        top = len(self.layers)
        if v.level not in (0, top):
            raise self.fail(
                f"the output depends on hidden layer {v.level} but not on the last one ({top}); certify needs a chain"
            )
        if top == 0:
            out_w, skip = v.coef.reshape(self.n_in, m).T, None
        else:
            v = lift(v, top, self.n_in, self.widths)
            n_h = self.widths[-1]
            flat = v.coef.reshape(n_h + self.n_in, m)
            out_w, skip = flat[:n_h].T, flat[n_h:].T
            if not np.any(skip):
                skip = None
        if len(self.specs) == 2:
            first = self.specs[0].size
            if n_states is not None and n_states != first:
                raise self.fail(
                    f"n_states={n_states} conflicts with the model's two inputs (states {self.specs[0].name!r} has "
                    f"{first} entries)"
                )
            n_states = first
        try:
            return Network(
                layers=tuple(self.layers), out_weight=out_w, out_bias=v.offset.ravel(), skip=skip,
                n_states=n_states, input_names=tuple(s.name for s in self.specs),
            )
        except ModelError as e:
            raise self.fail(str(e)) from None


def import_graph(model: onnx.ModelProto, source: str, n_states: int | None = None) -> Network:
    """The Network of an in-memory ONNX model (local functions already inlined, external data loaded).

    ``source`` names the model in messages (a path, or '<torch Sequential>'). No numeric check here: see
    :func:`certify.importers.load_onnx`.
    """
    return GraphEvaluator(model, source).run(n_states)
