"""Hand-built ONNX graphs for the importer tests (onnx.helper only, no exporter involved).

Every builder returns plain protos; :func:`save` writes a model to a folder. Weights are float32 unless a builder
is asked for float64. :data:`ACTIVATION_FORMS` lists every activation the importer accepts, in every form an
exporter writes it, with the ActivationKind the IR should end up with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from certify.ir.activations import ActivationKind

F32 = TensorProto.FLOAT
F64 = TensorProto.DOUBLE


class Graph:
    """A growing graph: nodes, initializers and fresh names."""

    def __init__(self, dtype: int = F32):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.dtype = dtype
        self.np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value, stem: str = "c", dtype=None) -> str:
        """An initializer holding ``value`` (in the graph's float type unless ``dtype`` is given)."""
        name = self.name(stem)
        arr = np.asarray(value, dtype=dtype or self.np_dtype)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def constant_node(self, value, stem: str = "k") -> str:
        """A Constant node (not an initializer) holding ``value``."""
        name = self.name(stem)
        arr = np.asarray(value, dtype=self.np_dtype)
        self.nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr)))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, inputs: list[tuple[str, list]], output: str, out_shape=None, opset: int = 17) -> onnx.ModelProto:
        ins = [helper.make_tensor_value_info(n, self.dtype, shape) for n, shape in inputs]
        outs = [helper.make_tensor_value_info(output, self.dtype, out_shape)]
        g = helper.make_graph(self.nodes, "g", ins, outs, initializer=self.inits)
        ir = 7 if opset <= 12 else (8 if opset <= 20 else 10)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
        if out_shape is None:  # let ONNX shape inference fill in the output's shape
            m = onnx.shape_inference.infer_shapes(m)
        onnx.checker.check_model(m)
        return m

    # --------------------------------------------------------------- linear pieces
    def gemm(self, x: str, w: np.ndarray, b: np.ndarray) -> str:
        """x @ w.T + b (torch Linear) as Gemm(transB=1)."""
        return self.op("Gemm", [x, self.const(w, "W"), self.const(b, "b")], transB=1)

    def matmul_add(self, x: str, w: np.ndarray, b: np.ndarray) -> str:
        return self.op("Add", [self.op("MatMul", [x, self.const(w.T, "Wt")]), self.const(b, "b")])


def save(model: onnx.ModelProto, folder: Path, name: str = "model.onnx") -> Path:
    path = Path(folder) / name
    onnx.save(model, str(path))
    return path


# ----------------------------------------------------------------------------- activation forms
@dataclass(frozen=True)
class Form:
    """One way of writing an activation: ``build(graph, x, n, rng) -> output name``; ``kinds``: the IR's layer
    activations it must become; ``opsets``: opsets at which to test it."""

    name: str
    build: Callable
    kinds: tuple[ActivationKind, ...]
    opsets: tuple[int, ...] = (13, 17, 20)


def _gelu_erf(g: Graph, x, n, rng):
    d = g.op("Div", [x, g.constant_node(math.sqrt(2.0))])
    e = g.op("Erf", [d])
    a = g.op("Add", [e, g.constant_node(1.0)])
    m = g.op("Mul", [x, a])
    return g.op("Mul", [m, g.constant_node(0.5)])


def _gelu_erf_reordered(g: Graph, x, n, rng):
    """0.5 x first, then (1 + erf(x * (1 / sqrt 2))): another exporter's order, a Mul instead of the Div."""
    e = g.op("Erf", [g.op("Mul", [g.constant_node(1.0 / math.sqrt(2.0)), x])])
    return g.op("Mul", [g.op("Mul", [g.constant_node(0.5), x]), g.op("Add", [g.constant_node(1.0), e])])


def _gelu_tanh_pattern(g: Graph, x, n, rng):
    cube = g.op("Mul", [x, g.op("Mul", [x, x])])
    inner = g.op("Mul", [g.constant_node(math.sqrt(2.0 / math.pi)),
                         g.op("Add", [x, g.op("Mul", [g.constant_node(0.044715), cube])])])
    one_plus_tanh = g.op("Add", [g.constant_node(1.0), g.op("Tanh", [inner])])
    return g.op("Mul", [g.constant_node(0.5), g.op("Mul", [x, one_plus_tanh])])


def _gelu_tanh_pow(g: Graph, x, n, rng):
    cube = g.op("Pow", [x, g.const(3.0, "three")])
    inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, "k")])]),
                         g.const(math.sqrt(2.0 / math.pi), "b")])
    return g.op("Mul", [g.op("Mul", [x, g.const(0.5, "h")]), g.op("Add", [g.op("Tanh", [inner]), g.const(1.0, "o")])])


def _softplus_log_exp(g: Graph, x, n, rng):
    """Softplus as ONNX's own function body writes it: Log(Exp(x) + 1)."""
    return g.op("Log", [g.op("Add", [g.op("Exp", [x]), g.const(1.0, "one")])])


def _relu_abs(g: Graph, x, n, rng):
    return g.op("Div", [g.op("Sum", [x, g.op("Abs", [x])]), g.const(2.0, "two")])


def _silu(g: Graph, x, n, rng):
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


def _swish_beta(g: Graph, x, n, rng):
    """x * sigmoid(1.5 x) = silu(1.5 x) / 1.5: found in the variable the sigmoid is applied to."""
    return g.op("Mul", [x, g.op("Sigmoid", [g.op("Mul", [x, g.const(1.5, "beta")])])])


def _hardswish_pattern(g: Graph, x, n, rng):
    return g.op("Mul", [x, g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)])


def _softplus_where(g: Graph, x, n, rng):
    """torch's softplus(beta=2, threshold=20) as the dynamo exporter writes it."""
    beta = g.const(2.0, "beta")
    s = g.op("Mul", [x, beta])
    sp = g.op("Div", [g.op("Softplus", [s]), beta])
    return g.op("Where", [g.op("Greater", [s, g.const(20.0, "thr")]), x, sp])


def _clip_inputs(g: Graph, x, n, rng):
    return g.op("Clip", [x, g.const(-0.5, "lo"), g.const(0.7, "hi")])


def _clip_min_only(g: Graph, x, n, rng):
    return g.op("Clip", [x, g.const(-0.3, "lo")])


def _prelu_vec(g: Graph, x, n, rng):
    return g.op("PRelu", [x, g.const(rng.uniform(-0.5, 0.5, size=n), "slope")])


ACTIVATION_FORMS = [
    Form("relu", lambda g, x, n, r: g.op("Relu", [x]), (ActivationKind.RELU,)),
    Form("leaky_relu", lambda g, x, n, r: g.op("LeakyRelu", [x], alpha=0.1), (ActivationKind.LEAKY_RELU,)),
    Form("prelu_shared", lambda g, x, n, r: g.op("PRelu", [x, g.const([0.3], "slope")]), (ActivationKind.PRELU,)),
    Form("prelu_vector", _prelu_vec, (ActivationKind.PRELU,)),
    Form("elu", lambda g, x, n, r: g.op("Elu", [x], alpha=0.7), (ActivationKind.ELU,)),
    Form("selu", lambda g, x, n, r: g.op("Selu", [x]), (ActivationKind.SELU,)),
    Form("selu_custom", lambda g, x, n, r: g.op("Selu", [x], alpha=1.2, gamma=0.9), (ActivationKind.ELU,)),
    Form("gelu_op", lambda g, x, n, r: g.op("Gelu", [x]), (ActivationKind.GELU,), (20,)),
    Form("gelu_tanh_op", lambda g, x, n, r: g.op("Gelu", [x], approximate="tanh"), (ActivationKind.GELU_TANH,),
         (20,)),
    Form("gelu_erf_pattern", _gelu_erf, (ActivationKind.GELU,)),
    Form("gelu_erf_reordered", _gelu_erf_reordered, (ActivationKind.GELU,), (17,)),
    Form("gelu_tanh_pattern", _gelu_tanh_pattern, (ActivationKind.GELU_TANH,)),
    Form("gelu_tanh_pow_pattern", _gelu_tanh_pow, (ActivationKind.GELU_TANH,), (17,)),
    Form("softplus_log_exp", _softplus_log_exp, (ActivationKind.SOFTPLUS,), (17,)),
    Form("relu_abs_pattern", _relu_abs, (ActivationKind.RELU,), (17,)),
    Form("silu_pattern", _silu, (ActivationKind.SILU,)),
    Form("swish_beta_pattern", _swish_beta, (ActivationKind.SILU,), (17,)),
    Form("tanh", lambda g, x, n, r: g.op("Tanh", [x]), (ActivationKind.TANH,)),
    Form("sigmoid", lambda g, x, n, r: g.op("Sigmoid", [x]), (ActivationKind.SIGMOID,)),
    Form("softplus", lambda g, x, n, r: g.op("Softplus", [x]), (ActivationKind.SOFTPLUS,)),
    Form("softplus_where_beta", _softplus_where, (ActivationKind.SOFTPLUS,), (17, 20)),
    Form("clip_inputs", _clip_inputs, (ActivationKind.CLIP,)),
    Form("clip_min_only", _clip_min_only, (ActivationKind.CLIP,)),
    Form("clip_attributes", lambda g, x, n, r: g.op("Clip", [x], min=-0.4, max=0.9), (ActivationKind.CLIP,), (10,)),
    Form("hardsigmoid", lambda g, x, n, r: g.op("HardSigmoid", [x], alpha=0.3, beta=0.4), (ActivationKind.CLIP,)),
    Form("hardswish_op", lambda g, x, n, r: g.op("HardSwish", [x]), (ActivationKind.HARDSWISH,), (14, 17, 20)),
    Form("hardswish_pattern", _hardswish_pattern, (ActivationKind.HARDSWISH,)),
    Form("max_as_relu", lambda g, x, n, r: g.op("Max", [x, g.const(0.0, "zero")]), (ActivationKind.CLIP,)),
    Form("gelu_pattern_then_relu", lambda g, x, n, r: g.op("Relu", [_gelu_erf(g, x, n, r)]),
         (ActivationKind.GELU, ActivationKind.RELU), (17,)),
    Form("prelu_then_hardsigmoid",
         lambda g, x, n, r: g.op("HardSigmoid", [g.op("PRelu", [x, g.const([0.25], "slope")])], alpha=1 / 6, beta=0.5),
         (ActivationKind.PRELU, ActivationKind.CLIP), (17,)),
]


def mlp(
    act: Form, sizes=(3, 6, 2), rng=None, opset: int = 17, dtype: int = F32, linear: str = "gemm",
    batch="batch",
) -> onnx.ModelProto:
    """x [batch, n0] -> (linear, act) per hidden size -> linear; weights N(0, 1/fan_in)."""
    rng = rng or np.random.default_rng(0)
    g = Graph(dtype)
    h = "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.standard_normal((b, a)) / math.sqrt(a)
        bias = 0.3 * rng.standard_normal(b)
        h = g.gemm(h, w, bias) if linear == "gemm" else g.matmul_add(h, w, bias)
        if i < len(sizes) - 2:
            h = act.build(g, h, b, rng)
    return g.model([("x", [batch, sizes[0]])], h, None, opset)


def gemm_chain(weights, biases, activation: str = "Relu", extra_node=None) -> onnx.ModelProto:
    """x [batch, n] -> Gemm -> activation -> ... -> Gemm (float32, opset 17) -> y [batch, m], nodes named
    ``gemm<i>`` / ``act<i>``; ``extra_node(name)`` appends one node after the last Gemm (its first output is y's).

    ``weights[l]`` has shape (n_{l+1}, n_l), ``biases[l]`` (n_{l+1},)."""
    nodes, inits, cur = [], [], "x"
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits += [numpy_helper.from_array(np.asarray(w, np.float32), f"W{i}"),
                  numpy_helper.from_array(np.asarray(b, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"b{i}"], [f"z{i}"], name=f"gemm{i}", transB=1))
        cur = f"z{i}"
        if i < len(weights) - 1:
            nodes.append(helper.make_node(activation, [cur], [f"h{i}"], name=f"act{i}"))
            cur = f"h{i}"
    if extra_node is not None:
        nodes.append(extra_node(cur))
        cur = nodes[-1].output[0]
    nodes.append(helper.make_node("Identity", [cur], ["y"], name="out"))
    n_in, n_out = np.shape(weights[0])[1], np.shape(weights[-1])[0]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def relu_mlp(sizes=(3, 5, 2), rng=None, opset: int = 17, dtype: int = F32) -> onnx.ModelProto:
    return mlp(ACTIVATION_FORMS[0], sizes, rng, opset, dtype)


def network_to_onnx(net, dtype: int = F64, opset: int = 17) -> onnx.ModelProto:
    """A Network written back as Gemm + activation operators (ReLU, LeakyReLU, Tanh, Sigmoid, ...), skip as MatMul."""
    g = Graph(dtype)
    h = "x"
    for layer in net.layers:
        h = g.gemm(h, layer.weight, layer.bias)
        a = layer.activation
        k = a.kind
        if k is ActivationKind.RELU:
            h = g.op("Relu", [h])
        elif k is ActivationKind.LEAKY_RELU:
            h = g.op("LeakyRelu", [h], alpha=a.alpha)
        elif k is ActivationKind.TANH:
            h = g.op("Tanh", [h])
        elif k is ActivationKind.SIGMOID:
            h = g.op("Sigmoid", [h])
        elif k is ActivationKind.ELU:
            h = g.op("Elu", [h], alpha=a.alpha)
        elif k is ActivationKind.CLIP:
            h = g.op("Clip", [h, g.const(a.lo, "lo"), g.const(a.hi, "hi")])
        else:
            raise ValueError(f"network_to_onnx: no writer for {k}")
    out = g.gemm(h, net.out_weight, net.out_bias)
    if net.skip is not None:
        out = g.op("Add", [out, g.op("MatMul", ["x", g.const(net.skip.T, "S")])])
    return g.model([("x", ["batch", net.n_in])], out, None, opset)
