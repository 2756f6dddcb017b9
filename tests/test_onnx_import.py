"""The ONNX importer against onnxruntime: every operator form, exporter patterns, skips, two inputs, folding,
and every refusal (with the file, node and operator named)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from certify.cli import run as cli_run
from certify.errors import ModelError, ModelMismatchError, UnsupportedOperatorError
from certify.importers import check_agreement_onnx, load_model, load_onnx
from certify.ir import activations as acts
from certify.ir.activations import ActivationKind
from certify.ir.network import Layer, Network
from tests.onnx_builders import ACTIVATION_FORMS, F32, F64, Graph, mlp, network_to_onnx, relu_mlp, save

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def ort_forward(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime on each row of x, fed in the model's dtype and input layout (one input [batch, n] or [n])."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    dtype = np.float64 if inputs[0].type == "tensor(double)" else np.float32
    rows = []
    for p in x:
        feeds, start = {}, 0
        for inp in inputs:
            n = inp.shape[-1]
            block = p[start:start + n].astype(dtype)
            start += n
            feeds[inp.name] = block if len(inp.shape) == 1 else block[None]
        rows.append(np.asarray(sess.run(None, feeds)[0], dtype=np.float64).ravel())
    return np.stack(rows)


def assert_pwa_identity(net: Network, x: np.ndarray) -> None:
    a, b = net.pwa(x)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", a, x) + b, net.forward(x), rtol=0, atol=1e-10)


def assert_matches_ort(net: Network, path: Path, rng, scale: float = 1.0, atol: float = 1e-5) -> None:
    x = scale * rng.standard_normal((40, net.n_in))
    ref = ort_forward(path, x)
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=atol)
    assert_pwa_identity(net, x)


# --------------------------------------------------------------------------- every activation form
CASES = [(f, opset) for f in ACTIVATION_FORMS for opset in f.opsets]


@pytest.mark.parametrize("form,opset", CASES, ids=[f"{f.name}-op{o}" for f, o in CASES])
def test_activation_forms_match_onnxruntime(tmp_path, form, opset):
    rng = np.random.default_rng(1)
    path = save(mlp(form, sizes=(3, 6, 5, 2), rng=rng, opset=opset), tmp_path)
    net = load_onnx(path)
    # Two hidden layers of the same form: the layer kinds repeat the form's kinds (a form may close two layers).
    assert tuple(a.kind for a in net.activations) == form.kinds * 2
    assert net.skip is None and net.n_out == 2 and net.n_in == 3
    assert_matches_ort(net, path, rng, 1.0)
    assert_matches_ort(net, path, rng, 5.0, atol=5e-5)


def test_matmul_add_and_float64_model_agree_tightly(tmp_path):
    rng = np.random.default_rng(2)
    form = next(f for f in ACTIVATION_FORMS if f.name == "tanh")
    path = save(mlp(form, sizes=(4, 7, 3), rng=rng, dtype=F64, linear="matmul"), tmp_path)
    net = load_onnx(path)
    x = rng.standard_normal((30, 4))
    np.testing.assert_allclose(net.forward(x), ort_forward(path, x), rtol=0, atol=1e-12)


def test_weights_come_through_exactly_round_trip(network_to_onnx, save_model):
    """A Network written as ONNX (float64) and read back gives the same matrices, not just the same outputs."""
    rng = np.random.default_rng(3)
    layers = (
        Layer(rng.standard_normal((5, 3)), rng.standard_normal(5), acts.relu()),
        Layer(rng.standard_normal((4, 5)), rng.standard_normal(4), acts.leaky_relu(0.125)),
    )
    net = Network(layers, rng.standard_normal((3, 4)), rng.standard_normal(3), skip=rng.standard_normal((3, 3)))
    back = load_onnx(save_model(network_to_onnx(net)))
    for la, lb in zip(net.layers, back.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
        np.testing.assert_array_equal(la.bias, lb.bias)
        assert la.activation == lb.activation
    np.testing.assert_array_equal(net.out_weight, back.out_weight)
    np.testing.assert_allclose(net.skip, back.skip, rtol=1e-15, atol=0)


@settings(max_examples=15, deadline=None)
@given(
    widths=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    n_in=st.integers(1, 4),
    kinds=st.lists(st.sampled_from(["relu", "tanh", "sigmoid", "elu", "clip"]), min_size=3, max_size=3),
    skip=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_networks_round_trip(tmp_path_factory, widths, n_in, kinds, skip, seed):
    rng = np.random.default_rng(seed)
    make = {"relu": acts.relu, "tanh": acts.tanh, "sigmoid": acts.sigmoid, "elu": lambda: acts.elu(0.5),
            "clip": lambda: acts.clip(-0.5, 0.75)}
    sizes = [n_in, *widths]
    layers = tuple(
        Layer(rng.standard_normal((b, a)), rng.standard_normal(b), make[kinds[i]]())
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
    )
    n_out = int(rng.integers(1, 4))
    net = Network(layers, rng.standard_normal((n_out, sizes[-1])), rng.standard_normal(n_out),
                  skip=rng.standard_normal((n_out, n_in)) if skip else None)
    path = save(network_to_onnx(net), tmp_path_factory.mktemp("rt"))
    back = load_onnx(path)
    assert back.widths == net.widths
    assert [a.kind for a in back.activations] == [a.kind for a in net.activations]
    x = 3 * rng.standard_normal((20, n_in))
    np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=1e-12, atol=1e-12)
    assert_pwa_identity(back, x)


@settings(max_examples=25, deadline=None)
@given(
    pattern=st.sampled_from(["swish", "hardsigmoid", "softplus_where", "scaled_tanh"]),
    p=st.floats(0.2, 5.0),
    q=st.floats(-1.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_parametrised_patterns_import_and_agree(tmp_path_factory, pattern, p, q, seed):
    """Exporter patterns with random constants: recognised (in the right variable) and equal to onnxruntime."""
    rng = np.random.default_rng(seed)
    g = Graph(F32)
    z = g.gemm("x", rng.standard_normal((4, 3)), rng.standard_normal(4))
    if pattern == "swish":  # x * sigmoid(p x) = silu(p x) / p
        h, kind = g.op("Mul", [z, g.op("Sigmoid", [g.op("Mul", [z, g.const(p, "p")])])]), ActivationKind.SILU
    elif pattern == "hardsigmoid":
        h, kind = g.op("HardSigmoid", [z], alpha=p / 5, beta=q), ActivationKind.CLIP
    elif pattern == "softplus_where":  # torch's softplus(beta=p, threshold=20)
        s = g.op("Mul", [z, g.const(p, "beta")])
        sp = g.op("Div", [g.op("Softplus", [s]), g.const(p, "beta")])
        h, kind = g.op("Where", [g.op("Greater", [s, g.const(20.0, "t")]), z, sp]), ActivationKind.SOFTPLUS
    else:
        h, kind = g.op("Add", [g.op("Mul", [g.op("Tanh", [z]), g.const(p, "p")]), g.const(q, "q")]), ActivationKind.TANH
    out = g.gemm(h, rng.standard_normal((2, 4)), rng.standard_normal(2))
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path_factory.mktemp("pat"))
    net = load_onnx(path)
    assert [a.kind for a in net.activations] == [kind]
    assert_matches_ort(net, path, rng, 2.0, atol=2e-5)


# --------------------------------------------------------------------------- linear operators fold
def test_chain_of_linear_operators_folds_into_one_layer(tmp_path):
    """Gemm(alpha, beta) -> Mul by vector -> Sub -> Div by vector -> Neg -> Reshape/Unsqueeze/Squeeze/Flatten ->
    Identity -> Dropout -> Relu: one layer; its output through Transpose/Gemm(transA on a constant) is one affine."""
    rng = np.random.default_rng(4)
    g = Graph(F32)
    h = g.op("Gemm", ["x", g.const(rng.standard_normal((3, 4)), "W"), g.const(rng.standard_normal(4), "b")],
             alpha=0.5, beta=2.0)
    h = g.op("Mul", [h, g.const(rng.uniform(0.5, 2, 4), "d")])
    h = g.op("Sub", [g.const(rng.standard_normal(4), "s"), h])
    h = g.op("Div", [h, g.const(rng.uniform(0.5, 2, 4), "q")])
    h = g.op("Neg", [h])
    h = g.op("Unsqueeze", [h, g.const([2, 3], "ax", np.int64)])  # [1, 4, 1, 1]
    h = g.op("Squeeze", [h, g.const([3], "ax", np.int64)])
    h = g.op("Flatten", [h], axis=1)
    h = g.op("Reshape", [h, g.const([1, -1], "shape", np.int64)])
    h = g.op("Dropout", [g.op("Identity", [h])])
    h = g.op("Relu", [h])
    # W (2, 4) stored transposed and used with transA=1 and B = h^T: y^T = W h^T, then back to a row.
    w2 = rng.standard_normal((2, 4))
    col = g.op("Gemm", [g.const(w2.T, "W2t"), h, g.const(rng.standard_normal((2, 1)), "b2")], transA=1, transB=1)
    out = g.op("Transpose", [col], perm=[1, 0])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    net = load_onnx(path)
    assert net.widths == (4,) and net.activations[0].kind is ActivationKind.RELU
    assert_matches_ort(net, path, rng)


def test_conv1x1_and_batchnorm_fold(tmp_path):
    rng = np.random.default_rng(5)
    g = Graph(F32)
    h = g.op("Reshape", ["x", g.const([1, 3, 1, 1], "shape", np.int64)])
    h = g.op("Conv", [h, g.const(rng.standard_normal((5, 3, 1, 1)), "K"), g.const(rng.standard_normal(5), "kb")])
    h = g.op("BatchNormalization", [h, *(g.const(v, n) for v, n in (
        (rng.uniform(0.5, 2, 5), "gamma"), (rng.standard_normal(5), "beta"), (rng.standard_normal(5), "mean"),
        (rng.uniform(0.5, 2, 5), "var")))], epsilon=1e-3)
    h = g.op("Tanh", [h])
    h = g.op("Conv", [h, g.const(rng.standard_normal((4, 5, 1, 1)), "K2")])
    h = g.op("Flatten", [h])
    h = g.op("BatchNormalization", [h, *(g.const(v, n) for v, n in (
        (rng.uniform(0.5, 2, 4), "gamma"), (rng.standard_normal(4), "beta"), (rng.standard_normal(4), "mean"),
        (rng.uniform(0.5, 2, 4), "var")))])
    h = g.op("Relu", [h])
    h = g.gemm(h, rng.standard_normal((2, 4)), rng.standard_normal(2))
    path = save(g.model([("x", [1, 3])], h, None, 15), tmp_path)
    net = load_onnx(path)
    assert net.widths == (5, 4)
    assert [a.kind for a in net.activations] == [ActivationKind.TANH, ActivationKind.RELU]
    assert_matches_ort(net, path, rng)


def test_grouped_1x1_conv(tmp_path):
    rng = np.random.default_rng(6)
    g = Graph(F32)
    h = g.op("Unsqueeze", [g.op("Unsqueeze", ["x", g.const([2], "a", np.int64)]), g.const([3], "a", np.int64)])
    h = g.op("Conv", [h, g.const(rng.standard_normal((4, 2, 1, 1)), "K")], group=2)
    h = g.op("Relu", [g.op("Flatten", [h])])
    h = g.gemm(h, rng.standard_normal((2, 4)), rng.standard_normal(2))
    path = save(g.model([("x", ["batch", 4])], h, None, 13), tmp_path)
    net = load_onnx(path)
    w = net.layers[0].weight
    assert np.all(w[:2, 2:] == 0) and np.all(w[2:, :2] == 0)  # block diagonal
    assert_matches_ort(net, path, rng)


def test_layout_operators_on_input_dependent_tensors(tmp_path):
    """Split, Concat, Slice (negative step), Gather, Transpose, Expand, Cast, Sum and Where with a constant mask
    rearrange entries exactly as onnxruntime does."""
    rng = np.random.default_rng(18)
    g = Graph(F32)
    a, b = g.op("Split", ["x", g.const([2, 3], "sp", np.int64)], n_out=2, axis=1)
    h = g.op("Concat", [b, a, g.const([[0.5]], "pad")], axis=1)  # [1, 6]
    h = g.op("Slice", [h, g.const([5], "s", np.int64), g.const([-100], "e", np.int64), g.const([1], "a", np.int64),
                       g.const([-1], "st", np.int64)])  # reversed
    h = g.op("Gather", [h, g.const([0, 2, 2, 5, 1], "idx", np.int64)], axis=1)  # [1, 5] with a repeat
    h = g.op("Transpose", [g.op("Transpose", [h], perm=[1, 0])], perm=[1, 0])
    h = g.op("Cast", [h], to=F32)
    first = g.op("Slice", [h, g.const([0], "s", np.int64), g.const([1], "e", np.int64), g.const([1], "a", np.int64)])
    h = g.op("Sum", [h, g.op("Expand", [first, g.const([1, 5], "sh", np.int64)])])
    h = g.op("Where", [g.const([True, False, True, True, False], "mask", np.bool_), h, g.const(0.25, "q")])
    h = g.op("Relu", [g.gemm(h, rng.standard_normal((4, 5)), rng.standard_normal(4))])
    h = g.gemm(h, rng.standard_normal((2, 4)), rng.standard_normal(2))
    path = save(g.model([("x", ["batch", 5])], h, None, 17), tmp_path)
    net = load_onnx(path)
    assert net.widths == (4,)
    assert_matches_ort(net, path, rng)


def test_input_shapes_vector_and_fixed_batch(tmp_path):
    rng = np.random.default_rng(7)
    for shape in ([3], [1, 3]):
        g = Graph(F32)
        h = g.op("Relu", [g.op("Add", [g.op("MatMul", ["x", g.const(rng.standard_normal((3, 4)), "W")]),
                                       g.const(rng.standard_normal(4), "b")])])
        h = g.op("Add", [g.op("MatMul", [h, g.const(rng.standard_normal((4, 2)), "W")]), g.const([1.0, 2.0], "b")])
        path = save(g.model([("x", shape)], h, None, 17), tmp_path, f"m{len(shape)}.onnx")
        net = load_onnx(path)
        assert net.n_in == 3 and net.n_out == 2
        assert_matches_ort(net, path, rng)


def test_torchscript_style_flatten_with_shape_ops(tmp_path):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape (old exporters' flatten) is folded on constants."""
    rng = np.random.default_rng(8)
    g = Graph(F32)
    shp = g.op("Shape", ["x"])
    n0 = g.op("Gather", [shp, g.const(0, "i", np.int64)], axis=0)
    target = g.op("Concat", [g.op("Unsqueeze", [n0, g.const([0], "a", np.int64)]), g.const([-1], "m", np.int64)],
                  axis=0)
    h = g.op("Reshape", ["x", target])
    h = g.op("Sigmoid", [g.gemm(h, rng.standard_normal((5, 3)), rng.standard_normal(5))])
    h = g.gemm(h, rng.standard_normal((3, 5)), rng.standard_normal(3))
    path = save(g.model([("x", ["batch", 3])], h, None, 13), tmp_path)
    net = load_onnx(path)
    assert net.widths == (5,)
    assert_matches_ort(net, path, rng)


# --------------------------------------------------------------------------- skips and two inputs
def test_residual_x_plus_half_net(tmp_path):
    rng = np.random.default_rng(9)
    g = Graph(F32)
    h = g.op("Tanh", [g.gemm("x", rng.standard_normal((6, 3)), rng.standard_normal(6))])
    h = g.gemm(h, rng.standard_normal((3, 6)), rng.standard_normal(3))
    out = g.op("Add", ["x", g.op("Mul", [g.const(0.5, "half"), h])])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    net = load_onnx(path)
    np.testing.assert_array_equal(net.skip, np.eye(3))
    assert net.widths == (6,)
    assert_matches_ort(net, path, rng)


def test_pre_activation_plus_activation_gives_skip(tmp_path):
    """z + tanh(z) with z = W x + b: one tanh layer, out_weight I, skip W, output bias b."""
    rng = np.random.default_rng(17)
    w, b = rng.standard_normal((3, 3)), rng.standard_normal(3)
    g = Graph(F64)
    z = g.gemm("x", w, b)
    out = g.op("Add", [z, g.op("Tanh", [z])])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    net = load_onnx(path)
    np.testing.assert_array_equal(net.skip, w)
    np.testing.assert_array_equal(net.out_weight, np.eye(3))
    np.testing.assert_array_equal(net.out_bias, b)
    assert_matches_ort(net, path, rng, atol=1e-10)


def test_linear_plant_plus_controller_gives_linear_skip(tmp_path):
    """x+ = A x + B pi(x): S = A and the last layer premultiplied by B."""
    rng = np.random.default_rng(10)
    a_mat, b_mat = rng.standard_normal((3, 3)), rng.standard_normal((3, 1))
    g = Graph(F64)
    pi = g.gemm(g.op("Relu", [g.gemm("x", rng.standard_normal((8, 3)), rng.standard_normal(8))]),
                rng.standard_normal((1, 8)), rng.standard_normal(1))
    out = g.op("Add", [g.op("MatMul", ["x", g.const(a_mat.T, "At")]), g.op("MatMul", [pi, g.const(b_mat.T, "Bt")])])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    net = load_onnx(path)
    np.testing.assert_allclose(net.skip, a_mat, rtol=0, atol=1e-15)
    assert net.out_weight.shape == (3, 8)
    assert_matches_ort(net, path, rng, atol=1e-10)


def test_two_inputs_states_then_inputs(tmp_path):
    rng = np.random.default_rng(11)
    g = Graph(F32)
    xu = g.op("Concat", ["x", "u"], axis=1)
    h = g.op("Elu", [g.gemm(xu, rng.standard_normal((6, 5)), rng.standard_normal(6))])
    h = g.op("Add", [g.gemm(h, rng.standard_normal((3, 6)), rng.standard_normal(3)), "x"])
    path = save(g.model([("x", ["batch", 3]), ("u", ["batch", 2])], h, None, 17), tmp_path)
    net = load_onnx(path)
    assert net.n_states == 3 and net.n_in == 5 and net.n_inputs == 2 and net.input_names == ("x", "u")
    np.testing.assert_array_equal(net.skip, np.hstack([np.eye(3), np.zeros((3, 2))]))
    assert_matches_ort(net, path, rng)
    with pytest.raises(ModelError, match="n_states=2 conflicts"):
        load_onnx(path, n_states=2)


def test_purely_linear_model_has_no_layers(tmp_path):
    rng = np.random.default_rng(12)
    g = Graph(F32)
    out = g.gemm(g.gemm("x", rng.standard_normal((4, 3)), rng.standard_normal(4)), rng.standard_normal((2, 4)),
                 rng.standard_normal(2))
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    net = load_onnx(path)
    assert net.layers == () and net.out_weight.shape == (2, 3)
    assert_matches_ort(net, path, rng)


def test_shared_benchmarks_import(tmp_path):
    files = sorted(SHARED.glob("*/*.onnx")) if SHARED.is_dir() else []
    if not files:
        pytest.skip("shared benchmarks absent")
    rng = np.random.default_rng(13)
    for f in files:
        net = load_model(f)
        assert net.piecewise_linear_through_origin and len(net.layers) >= 2
        assert_matches_ort(net, f, rng)


# --------------------------------------------------------------------------- the agreement check can fail
def test_agreement_check_catches_a_wrong_network(tmp_path):
    rng = np.random.default_rng(14)
    path = save(relu_mlp(rng=rng), tmp_path)
    net = load_onnx(path)
    pts = rng.standard_normal((50, 3))
    assert check_agreement_onnx(net, path, pts) < 1e-5
    l0 = net.layers[0]
    w = l0.weight.copy()
    w[0, 0] += 1e-3
    wrong = Network((Layer(w, l0.bias, l0.activation), *net.layers[1:]), net.out_weight, net.out_bias)
    message = r"model\.onnx: the imported network disagrees with onnxruntime"
    with pytest.raises(ModelMismatchError, match=message) as info:
        check_agreement_onnx(wrong, path, pts)
    assert "\n" not in str(info.value)


def test_agreement_check_refuses_a_model_that_overflows(tmp_path):
    g = Graph(F32)
    out = g.op("Softplus", [g.gemm("x", np.array([[1e3]]), np.zeros(1))])
    out = g.gemm(out, np.array([[1e36]]), np.zeros(1))
    path = save(g.model([("x", ["batch", 1])], out, None, 17), tmp_path)
    with pytest.raises(ModelMismatchError, match="non-finite"):
        load_onnx(path)


# --------------------------------------------------------------------------- refusals
def test_missing_empty_and_garbage_files(tmp_path):
    with pytest.raises(ModelError, match=r"nope\.onnx: no such file"):
        load_model(tmp_path / "nope.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty\.onnx: not an ONNX model \(the file is empty\)"):
        load_model(empty)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    with pytest.raises(ModelError, match=r"garbage\.onnx: not an ONNX model"):
        load_model(garbage)
    text = tmp_path / "text.onnx"
    text.write_text("states:\n  a: [0, 1]\n")
    with pytest.raises(ModelError, match=r"text\.onnx: not an ONNX model"):
        load_model(text)


def test_pickled_and_unknown_files_are_refused(tmp_path):
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"\x80\x04K\x01.")  # a pickle: must never be unpickled
    with pytest.raises(ModelError, match=r"model\.pt: PyTorch checkpoint files are not loaded"):
        load_model(pt)
    other = tmp_path / "model.h5"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"model\.h5: unknown model format '\.h5'"):
        load_model(other)


def test_unsupported_operator_names_node_operator_and_file(tmp_path):
    g = Graph(F32)
    h = g.gemm("x", np.ones((4, 3)), np.zeros(4))
    g.nodes.append(helper.make_node("Softmax", [h], ["sm"], name="my_softmax", axis=1))
    path = save(g.model([("x", ["batch", 3])], "sm", None, 17), tmp_path)
    with pytest.raises(UnsupportedOperatorError) as info:
        load_onnx(path)
    msg = str(info.value)
    assert "model.onnx" in msg and "'my_softmax'" in msg and "Softmax" in msg and "supported operators:" in msg
    assert "Gemm" in msg and "\n" not in msg


@pytest.mark.parametrize("domain", ["", "com.example"])
def test_unknown_operator_is_named_even_when_onnx_does_not_know_it(tmp_path, domain):
    g = Graph(F32)
    h = g.gemm("x", np.ones((4, 3)), np.zeros(4))
    g.nodes.append(helper.make_node("FooBar", [h], ["y"], name="mystery", domain=domain))
    graph = helper.make_graph(g.nodes, "g", [helper.make_tensor_value_info("x", F32, ["batch", 3])],
                              [helper.make_tensor_value_info("y", F32, ["batch", 4])], initializer=g.inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    path = save(helper.make_model(graph, opset_imports=opsets), tmp_path)
    with pytest.raises(UnsupportedOperatorError, match=r"model\.onnx: node 'mystery' \(FooBar\): "):
        load_onnx(path)


def test_invalid_model_that_imports_is_still_refused(tmp_path):
    """The ONNX checker's complaint stands when the importer itself finds nothing wrong."""
    g = Graph(F32)
    out = g.op("Relu", [g.gemm("x", np.ones((2, 3)), np.zeros(2))])
    m = g.model([("x", ["batch", 3])], out, None, 17)
    m.graph.node[0].attribute.append(helper.make_attribute("not_an_attribute", 1))
    path = save(m, tmp_path)
    with pytest.raises(ModelError, match=r"model\.onnx: invalid ONNX model \("):
        load_onnx(path)


def test_conv_that_is_not_1x1(tmp_path):
    g = Graph(F32)
    h = g.op("Reshape", ["x", g.const([1, 1, 2, 2], "s", np.int64)])
    h = g.op("Conv", [h, g.const(np.ones((1, 1, 2, 2)), "K")])
    h = g.op("Flatten", [h])
    path = save(g.model([("x", ["batch", 4])], h, None, 17), tmp_path)
    message = r"node 'Conv_\d+' \(Conv\): Conv with kernel shape \[2, 2\] is not 1x1"
    with pytest.raises(UnsupportedOperatorError, match=message):
        load_onnx(path)


def test_shapes_that_do_not_fit(tmp_path):
    g = Graph(F32)
    h = g.op("MatMul", ["x", g.const(np.ones((4, 2)), "W")])  # x has 3 entries
    path = save(g.model([("x", ["batch", 3])], h, ["batch", 2], 17), tmp_path)
    with pytest.raises(ModelError, match=r"model\.onnx: node 'MatMul_\d+' \(MatMul\): shapes do not fit"):
        load_onnx(path)


def test_three_inputs_are_refused(tmp_path):
    g = Graph(F32)
    out = g.op("Add", [g.op("Add", ["a", "b"]), "c"])
    path = save(g.model([("a", ["batch", 2]), ("b", ["batch", 2]), ("c", ["batch", 2])], out, None, 17), tmp_path)
    with pytest.raises(ModelError, match=r"model\.onnx: the graph has 3 inputs \('a', 'b', 'c'\)"):
        load_onnx(path)


def test_input_of_unsupported_shape(tmp_path):
    g = Graph(F32)
    out = g.op("Relu", ["x"])
    path = save(g.model([("x", [2, 3])], out, None, 17), tmp_path)
    with pytest.raises(ModelError, match=r"input 'x' has shape \[2, 3\]; certify needs \[batch, n\]"):
        load_onnx(path)


def test_output_that_is_not_a_vector(tmp_path):
    g = Graph(F32)
    h = g.op("Reshape", [g.gemm("x", np.ones((4, 3)), np.zeros(4)), g.const([1, 2, 2], "s", np.int64)])
    path = save(g.model([("x", ["batch", 3])], h, None, 17), tmp_path)
    message = r"model\.onnx: the output '.*' has shape \[1, 2, 2\] .* needs a vector output"
    with pytest.raises(ModelError, match=message):
        load_onnx(path)


def test_two_activations_in_parallel(tmp_path):
    rng = np.random.default_rng(15)
    g = Graph(F32)
    z = g.gemm("x", rng.standard_normal((4, 3)), np.zeros(4))
    a = g.op("Relu", [z])
    b = g.op("Tanh", [z])
    out = g.op("Add", [g.gemm(a, np.ones((2, 4)), np.zeros(2)), g.gemm(b, np.ones((2, 4)), np.zeros(2))])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    with pytest.raises(ModelError, match=r"model\.onnx: node .*: the activation \[node 'Tanh_\d+' \(Tanh\)\] is "
                                         r"applied to a value computed before the activation \[node 'Relu_\d+' "
                                         r"\(Relu\)\]: two activations in parallel"):
        load_onnx(path)


def test_skip_into_a_hidden_layer_and_between_hidden_layers(tmp_path):
    rng = np.random.default_rng(16)
    g = Graph(F32)
    h1 = g.op("Relu", [g.gemm("x", rng.standard_normal((4, 3)), np.zeros(4))])
    z2 = g.op("Add", [g.gemm(h1, rng.standard_normal((3, 4)), np.zeros(3)), "x"])  # skip into layer 2
    out = g.op("Relu", [z2])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    with pytest.raises(ModelError, match="skip into a hidden layer"):
        load_onnx(path)
    g = Graph(F32)
    h1 = g.op("Relu", [g.gemm("x", rng.standard_normal((4, 3)), np.zeros(4))])
    h2 = g.op("Relu", [g.gemm(h1, rng.standard_normal((4, 4)), np.zeros(4))])
    out = g.op("Add", [h2, h1])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path, "m2.onnx")
    with pytest.raises(ModelError, match=r"m2\.onnx: node 'Add_\d+' \(Add\): .*skip connection between hidden"):
        load_onnx(path)


def test_product_of_two_different_tensors(tmp_path):
    g = Graph(F32)
    a = g.gemm("x", np.eye(3), np.zeros(3))
    b = g.gemm("x", np.ones((3, 3)), np.zeros(3))
    out = g.op("Mul", [a, b])
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    with pytest.raises(UnsupportedOperatorError, match=r"\(Mul\): multiplies two input-dependent tensors"):
        load_onnx(path)


def test_unrecognised_elementwise_expression(tmp_path):
    """x * tanh(x) is no activation of the catalogue: refused, naming the nodes that built it."""
    g = Graph(F32)
    z = g.gemm("x", np.eye(3), np.zeros(3))
    out = g.gemm(g.op("Mul", [z, g.op("Tanh", [z])]), np.ones((1, 3)), np.zeros(1))
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    with pytest.raises(UnsupportedOperatorError, match=r"expression built by \[node 'Tanh_\d+' \(Tanh\), node "
                                                       r"'Mul_\d+' \(Mul\)\] is not an activation certify knows"):
        load_onnx(path)


def test_near_miss_of_a_pattern_is_refused_not_misidentified(tmp_path):
    """0.5 x (1 + erf(x / 1.3)) is not GELU (whose constant is sqrt 2): identification must not accept it."""
    g = Graph(F64)
    z = g.gemm("x", np.eye(3), np.zeros(3))
    e = g.op("Erf", [g.op("Div", [z, g.constant_node(1.3)])])
    act = g.op("Mul", [g.op("Mul", [z, g.op("Add", [e, g.constant_node(1.0)])]), g.constant_node(0.5)])
    out = g.gemm(act, np.ones((1, 3)), np.zeros(1))
    path = save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path)
    with pytest.raises(UnsupportedOperatorError, match="is not an activation certify knows"):
        load_onnx(path)


# --------------------------------------------------------------------------- structural recognition only
def _elementwise_model(tmp_path: Path, build, name: str = "model.onnx", dtype=F32) -> Path:
    """x [batch, 3] -> z = Gemm -> build(graph, z) -> Gemm to 1 output."""
    g = Graph(dtype)
    z = g.gemm("x", np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, -0.5, 1.0]]), np.array([0.1, 0.0, -0.2]))
    out = g.gemm(build(g, z), np.ones((1, 3)), np.zeros(1))
    return save(g.model([("x", ["batch", 3])], out, None, 17), tmp_path, name)


def _crafted_jump(g: Graph, z: str) -> str:
    """Where(z > a, Where(z < a + 1e-5, c, relu(z)), relu(z)): ReLU except on a window of width 1e-5."""
    a = 0.31234
    jump = g.op("Greater", [z, g.const(a, "a")])
    inner = g.op("Where", [g.op("Less", [z, g.const(a + 1e-5, "a2")]), g.const(5.0, "c"), g.op("Relu", [z])])
    return g.op("Where", [jump, inner, g.op("Relu", [z])])


def test_crafted_jump_is_refused_not_taken_for_relu(tmp_path):
    """It agrees with ReLU on every grid and random point but is not ReLU: refused, naming the Where node and
    the comparison. (The grid identification used to accept it as ReLU.)"""
    path = _elementwise_model(tmp_path, _crafted_jump)
    x = np.array([[0.31234 + 5e-6 - 0.1, 0.0, 0.0]])  # z_0 = 0.31234 + 5e-6: inside the window
    assert ort_forward(path, x)[0, 0] == pytest.approx(5.0, abs=1e-5)  # the graph's jump (relu gives 0.31)
    with pytest.raises(UnsupportedOperatorError, match=r"model\.onnx: node 'Where_\d+' \(Where\): operator Where "
                                                       r"\(graph node #\d+\) on a condition computed from the "
                                                       r"comparison \[node 'Less_\d+' \(Less\)\]") as info:
        load_onnx(path)
    msg = str(info.value)
    assert "export the activation as a standard ONNX operator (Relu" in msg and "\n" not in msg


def _sign(g, z):
    return g.op("Sign", [z])


def _equal(g, z):
    return g.op("Where", [g.op("Equal", [z, g.const(0.5, "h")]), g.const(0.0, "zero"), z])


def _abs_alone(g, z):
    return g.op("Abs", [z])


def _round(g, z):
    return g.op("Round", [z])


def _if(g, z):
    total = g.op("Reshape", [g.gemm(z, np.ones((1, 3)), np.zeros(1)), g.const(np.zeros(0), "scalar", np.int64)])
    cond = g.op("Greater", [total, g.const(0.0, "zero")])
    then = helper.make_graph([helper.make_node("Relu", [z], ["t_out"])], "then", [],
                             [helper.make_tensor_value_info("t_out", F32, None)])
    other = helper.make_graph([helper.make_node("Identity", [z], ["e_out"])], "else", [],
                              [helper.make_tensor_value_info("e_out", F32, None)])
    out = g.name("if")
    g.nodes.append(helper.make_node("If", [cond], [out], name="my_if", then_branch=then, else_branch=other))
    return out


def _sign_via_cast(g, z):
    return g.op("Mul", [z, g.op("Cast", [g.op("Greater", [z, g.const(0.0, "zero")])], to=F32)])


@pytest.mark.parametrize("build,pattern", [
    (_sign, r"node 'Sign_\d+' \(Sign\): operator Sign \(graph node #\d+\) on an input-dependent tensor is an "
            r"elementwise function certify does not represent"),
    (_round, r"node 'Round_\d+' \(Round\): operator Round \(graph node #\d+\)"),
    (_equal, r"node 'Where_\d+' \(Where\): operator Where .*\[node 'Equal_\d+' \(Equal\)\].*its condition is an? "
             r"Equal"),
    (_abs_alone, r"the elementwise expression built by \[node 'Abs_\d+' \(Abs\)\] is not an activation certify "
                 r"knows"),
    (_if, r"node 'my_if' \(If\): operator If \(graph node #\d+\) is control flow"),
    (_sign_via_cast, r"node 'Cast_\d+' \(Cast\): operator Cast \(graph node #\d+\) uses the comparison "
                     r"\[node 'Greater_\d+' \(Greater\)\]"),
], ids=["sign", "round", "equal", "abs_alone", "if", "comparison_cast_to_float"])
def test_elementwise_operators_outside_the_catalogue_are_refused(tmp_path, build, pattern):
    path = _elementwise_model(tmp_path, build)
    with pytest.raises(UnsupportedOperatorError, match=pattern) as info:
        load_onnx(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and "export" in msg and "graph node #" in msg


def test_an_expression_that_would_explode_is_refused_at_once(tmp_path):
    """tanh(z + 1) squared 30 times (a power 2^30), or Erf nested 12 deep: refused as soon as the normal form passes
    its bounds, never expanded."""
    def build(g, z):
        p = g.op("Add", [z, g.const(1.0, "one")])
        p = g.op("Tanh", [p])
        for _ in range(30):
            p = g.op("Mul", [p, p])
        return p

    with pytest.raises(UnsupportedOperatorError, match=r"node 'Mul_\d+' \(Mul\): the elementwise expression grows "
                                                       r"past degree 16"):
        load_onnx(_elementwise_model(tmp_path, build))

    def nested(g, z):
        for _ in range(12):
            z = g.op("Erf", [z])
        return z

    with pytest.raises(UnsupportedOperatorError, match=r"\(Erf\): the elementwise expression grows past 8 nested"):
        load_onnx(_elementwise_model(tmp_path, nested, "nested.onnx"))


def _gelu_tanh_with(cubic: float):
    def build(g, z):
        cube = g.op("Mul", [z, g.op("Mul", [z, z])])
        inner = g.op("Mul", [g.constant_node(np.sqrt(2.0 / np.pi)),
                             g.op("Add", [z, g.op("Mul", [g.constant_node(cubic), cube])])])
        half = g.op("Mul", [g.constant_node(0.5), z])
        return g.op("Mul", [half, g.op("Add", [g.constant_node(1.0), g.op("Tanh", [inner])])])
    return build


def _gelu_erf_over(divisor: float):
    def build(g, z):
        e = g.op("Erf", [g.op("Div", [z, g.constant_node(divisor)])])
        return g.op("Mul", [g.op("Mul", [z, g.op("Add", [e, g.constant_node(1.0)])]), g.constant_node(0.5)])
    return build


@pytest.mark.parametrize("build,looks_like", [
    (_gelu_tanh_with(0.05), r"GELU \(tanh\)"),
    (_gelu_erf_over(1.5), r"GELU 0\.5 x \(1 \+ erf\(x / sqrt 2\)\)"),
], ids=["gelu_tanh_0.05", "gelu_erf_over_1.5"])
def test_pattern_with_a_wrong_constant_is_refused_not_approximated(tmp_path, build, looks_like):
    path = _elementwise_model(tmp_path, build, dtype=F64)
    with pytest.raises(UnsupportedOperatorError, match=r"is not an activation certify knows .*it uses the "
                                                       rf"functions of {looks_like}.* but not its exact structure"):
        load_onnx(path)


def test_right_constants_in_float32_and_float64_are_recognised(tmp_path):
    """The same GELU tanh pattern with 0.044715 (float32 or float64 constants) imports as GELU_TANH."""
    for dtype, name in ((F32, "f32.onnx"), (F64, "f64.onnx")):
        path = _elementwise_model(tmp_path, _gelu_tanh_with(0.044715), name, dtype)
        net = load_onnx(path)
        assert [a.kind for a in net.activations] == [ActivationKind.GELU_TANH]
        assert_matches_ort(net, path, np.random.default_rng(0), 3.0, atol=2e-5)


def _softplus_where(threshold: float, true_scale: float = 1.0):
    def build(g, z):
        beta = g.const(2.0, "beta")
        s = g.op("Mul", [z, beta])
        sp = g.op("Div", [g.op("Softplus", [s]), beta])
        x = z if true_scale == 1.0 else g.op("Mul", [z, g.const(true_scale, "k")])
        return g.op("Where", [g.op("Greater", [s, g.const(threshold, "thr")]), x, sp])
    return build


@pytest.mark.parametrize("build,reason", [
    (_softplus_where(5.0), r"its threshold 5 is below 20"),
    (_softplus_where(20.0, true_scale=1.1), r"its true branch is not the compared value divided by beta"),
], ids=["low_threshold", "wrong_linear_branch"])
def test_softplus_threshold_form_only_with_its_exact_branches(tmp_path, build, reason):
    path = _elementwise_model(tmp_path, build)
    with pytest.raises(UnsupportedOperatorError, match=rf"\(Where\): operator Where .*\[node 'Greater_\d+' "
                                                       rf"\(Greater\)\].*{reason}"):
        load_onnx(path)
    ok = load_onnx(_elementwise_model(tmp_path, _softplus_where(20.0), "ok.onnx"))
    assert [a.kind for a in ok.activations] == [ActivationKind.SOFTPLUS]


def test_dropout_in_training_mode(tmp_path):
    g = Graph(F32)
    h = g.op("Dropout", [g.gemm("x", np.eye(3), np.zeros(3)), g.const(0.5, "r"), g.const(True, "t", np.bool_)])
    path = save(g.model([("x", ["batch", 3])], h, None, 17), tmp_path)
    with pytest.raises(UnsupportedOperatorError, match="training mode"):
        load_onnx(path)


def _external_tensor(name: str, shape, location: str, **entries: str) -> TensorProto:
    """A float32 tensor of ``shape`` whose data is external (``location`` and further entries, e.g. offset)."""
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape))
    t.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, **entries}.items():
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def _external_model(tmp_path: Path, location: str, extra: tuple = (), **entries: str) -> Path:
    """y = x @ W with W (2 x 2, float32) stored in ``location``; ``extra`` initializers no node uses."""
    w = _external_tensor("W", (2, 2), location, **entries)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", F32, ["batch", 2])],
                          [helper.make_tensor_value_info("y", F32, ["batch", 2])], initializer=[w, *extra])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(m.SerializeToString())
    return path


def test_external_data_outside_the_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.eye(2, dtype=np.float32).tobytes())
    path = _external_model(tmp_path, "../secret.bin")
    with pytest.raises(ModelError, match=r"m\.onnx: external data '\.\./secret\.bin' of tensor 'W' resolves "
                                         r"outside the model's folder"):
        load_onnx(path)
    path = _external_model(tmp_path, str(secret))  # an absolute path is no better
    with pytest.raises(ModelError, match="resolves outside the model's folder"):
        load_onnx(path)


def test_external_data_inside_the_folder_loads(tmp_path):
    path = _external_model(tmp_path, "w.bin")
    with pytest.raises(ModelError, match=r"external data 'w\.bin' of tensor 'W' is missing"):
        load_onnx(path)
    (path.parent / "w.bin").write_bytes(np.array([[1, 2], [3, 4]], dtype=np.float32).tobytes())
    net = load_onnx(path)
    np.testing.assert_array_equal(net.out_weight, np.array([[1, 3], [2, 4]]))


def test_clip_attribute_form_at_old_opset_and_hardsigmoid_fold(tmp_path):
    """HardSigmoid(alpha, beta) folds alpha z + beta into the preceding affine map, then clip(0, 1)."""
    g = Graph(F32)
    w = np.array([[1.0, -2.0], [0.5, 0.25]])
    h = g.op("HardSigmoid", [g.gemm("x", w, np.array([0.1, -0.2]))], alpha=0.25, beta=0.5)
    path = save(g.model([("x", ["batch", 2])], h, None, 17), tmp_path)
    net = load_onnx(path)
    np.testing.assert_allclose(net.layers[0].weight, 0.25 * w, rtol=1e-7)
    np.testing.assert_allclose(net.layers[0].bias, 0.25 * np.array([0.1, -0.2]) + 0.5, rtol=1e-7)
    assert net.activations[0] == acts.clip(0.0, 1.0)
    np.testing.assert_array_equal(net.out_weight, np.eye(2))


# --------------------------------------------------------------------------- bad files: one clear ModelError each
def _peak_memory(fn) -> int:
    """Peak bytes allocated (tracemalloc: Python objects and numpy arrays) while ``fn()`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("opset", [1, 6])
def test_opset_older_than_supported_is_refused(tmp_path, opset):
    """Opsets before 7 broadcast differently (Add's broadcast/axis attributes, Gemm-6); opset 1 used to crash."""
    w = numpy_helper.from_array(np.eye(2, dtype=np.float32), "W")
    b = numpy_helper.from_array(np.ones(2, dtype=np.float32), "b")
    g = helper.make_graph([helper.make_node("Gemm", ["x", "W", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", F32, [1, 2])],
                          [helper.make_tensor_value_info("y", F32, [1, 2])], initializer=[w, b])
    path = tmp_path / "old.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=4)
                     .SerializeToString())
    with pytest.raises(ModelError, match=rf"old\.onnx: the model uses ONNX opset {opset}; certify supports opset 7 "
                                         r"or newer .*convert it with onnx\.version_converter"):
        load_onnx(path)


@pytest.mark.parametrize("entries,message", [
    ({"length": "-16"}, r"has length '-16', not a non-negative decimal integer"),
    ({"length": "8"}, r"declares a length of 8 bytes but the tensor \(shape \[2, 2\], type FLOAT\) has 16: the "
                      r"length is too short"),
    ({"length": "32"}, r"declares a length of 32 bytes .* has 16: the length is too long"),
    ({"offset": "abc"}, r"has offset 'abc', not a non-negative decimal integer"),
    ({"offset": "-4"}, r"has offset '-4', not a non-negative decimal integer"),
    ({"offset": "8"}, r"asks for bytes 8\.\.24 of a 16-byte file"),
], ids=["negative_length", "short_length", "long_length", "non_numeric_offset", "negative_offset", "past_the_end"])
def test_external_data_with_a_bad_offset_or_length_is_refused(tmp_path, entries, message):
    path = _external_model(tmp_path, "w.bin", **entries)
    (path.parent / "w.bin").write_bytes(np.eye(2, dtype=np.float32).tobytes())
    with pytest.raises(ModelError, match=rf"m\.onnx: external data 'w\.bin' of tensor 'W' {message}") as info:
        load_onnx(path)
    assert "\n" not in str(info.value)


def test_external_data_location_with_a_nul_byte_is_refused(tmp_path):
    path = _external_model(tmp_path, "w.bin\x00../../etc/passwd")
    (path.parent / "w.bin").write_bytes(np.eye(2, dtype=np.float32).tobytes())
    with pytest.raises(ModelError, match=r"m\.onnx: external data .* of tensor 'W': the location contains a NUL "
                                         r"byte; the model file is damaged"):
        load_onnx(path)


def test_external_data_file_far_larger_than_its_tensors_is_refused_without_reading_it(tmp_path):
    """A small model naming a 2 GiB (sparse) file for a 16-byte tensor: refused; the file is never read whole."""
    path = _external_model(tmp_path, "big.bin")
    with open(path.parent / "big.bin", "wb") as f:
        f.truncate(2**31)
    assert path.stat().st_size < 1000

    def load():
        with pytest.raises(ModelError, match=r"m\.onnx: external data file 'big\.bin' has 2147483648 bytes but the "
                                             r"model's tensors declare only the first 16; .*save the model again"):
            load_onnx(path)

    assert _peak_memory(load) < 20 * 2**20


def test_unused_external_initializer_is_never_read(tmp_path):
    """A 200 MB initializer no node uses (a sparse file): the model imports, and the tensor costs no memory."""
    unused = _external_tensor("unused", (50_000_000,), "unused.bin")
    path = _external_model(tmp_path, "w.bin", extra=(unused,))
    (path.parent / "w.bin").write_bytes(np.array([[1, 2], [3, 4]], dtype=np.float32).tobytes())
    with open(path.parent / "unused.bin", "wb") as f:
        f.truncate(200_000_000)
    nets = []
    assert _peak_memory(lambda: nets.append(load_onnx(path))) < 30 * 2**20
    np.testing.assert_array_equal(nets[0].out_weight, np.array([[1, 3], [2, 4]]))


def test_unused_embedded_initializer_is_not_materialised(tmp_path):
    """A 32 MB initializer inside the model file that no node uses: the file is mapped, not copied, and the
    tensor is dropped before any conversion (it used to be read, converted and serialised several times)."""
    g = Graph(F32)
    out = g.op("Relu", [g.gemm("x", np.eye(2), np.zeros(2))])
    g.inits.append(numpy_helper.from_array(np.ones(8_000_000, dtype=np.float32), "unused"))
    path = save(g.model([("x", ["batch", 2])], out, None, 17), tmp_path)
    g.inits.clear()
    assert path.stat().st_size > 32_000_000
    nets = []
    assert _peak_memory(lambda: nets.append(load_onnx(path))) < 16 * 2**20
    assert nets[0].widths == (2,)


@pytest.mark.parametrize("case", ["opset_1", "non_numeric_offset", "nul_location", "short_length"])
def test_bad_files_exit_3_with_one_line(tmp_path, case, capsys):
    """Through the command line: exit code 3 and one line on stderr, never a traceback."""
    if case == "opset_1":
        g = helper.make_graph([helper.make_node("Gemm", ["x", "W", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", F32, [1, 2])],
                              [helper.make_tensor_value_info("y", F32, [1, 2])],
                              initializer=[numpy_helper.from_array(np.eye(2, dtype=np.float32), "W"),
                                           numpy_helper.from_array(np.ones(2, dtype=np.float32), "b")])
        path = tmp_path / "model" / "m.onnx"
        path.parent.mkdir()
        path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 1)], ir_version=4)
                         .SerializeToString())
    else:
        entries = {"non_numeric_offset": {"offset": "1e3"}, "nul_location": {}, "short_length": {"length": "4"}}[case]
        path = _external_model(tmp_path, "w.bin\x00" if case == "nul_location" else "w.bin", **entries)
        (path.parent / "w.bin").write_bytes(np.eye(2, dtype=np.float32).tobytes())
    box = tmp_path / "box.yaml"
    box.write_text("lower: [-1, -1]\nupper: [1, 1]\n")
    code = cli_run([str(path), "--region", str(box), "--check", "weight_norm"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert len(err.strip().splitlines()) == 1 and "m.onnx" in err and "Traceback" not in err
