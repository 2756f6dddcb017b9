"""Build the small example models shipped in examples/ (deterministic; run `python examples/make_examples.py`).

* ``tank_relu.onnx``: a 2-16-16-2 ReLU model of x+ = f(x) whose layer norms are scaled below 1, so the cheap
  Corollary 4 bound already certifies dissipativity over ``box.yaml``.
* ``tank_tanh_unstable.onnx``: a 2-16-2 tanh model with a large gain: sampling falsifies dissipativity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent


def gemm_chain(weights, biases, activation: str, name: str) -> onnx.ModelProto:
    """x -> Gemm -> act -> Gemm -> act ... -> Gemm, with input 'x' of shape [batch, n] and output 'y'."""
    nodes, inits = [], []
    current = "x"
    for i, (w, b) in enumerate(zip(weights, biases)):
        wn, bn, out = f"W{i}", f"b{i}", f"z{i}"
        inits += [numpy_helper.from_array(w.astype(np.float32), wn), numpy_helper.from_array(b.astype(np.float32), bn)]
        nodes.append(helper.make_node("Gemm", [current, wn, bn], [out], name=f"gemm{i}", transB=1))
        current = out
        if i < len(weights) - 1:
            nodes.append(helper.make_node(activation, [out], [f"h{i}"], name=f"act{i}"))
            current = f"h{i}"
    nodes[-1].output[0] = "y"
    n_in, n_out = weights[0].shape[1], weights[-1].shape[0]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="certify-examples")
    onnx.checker.check_model(model)
    return model


def scaled(rng, shape, norm):
    w = rng.normal(size=shape)
    return w * (norm / np.linalg.norm(w, 2))


def main() -> None:
    rng = np.random.default_rng(2024)
    stable = gemm_chain(
        [scaled(rng, (16, 2), 0.95), scaled(rng, (16, 16), 0.9), scaled(rng, (2, 16), 0.9)],
        [rng.normal(size=16) * 0.1, rng.normal(size=16) * 0.1, np.array([0.45, 0.4])],
        "Relu",
        "tank_relu",
    )
    onnx.save(stable, HERE / "tank_relu.onnx")
    unstable = gemm_chain(
        [scaled(rng, (16, 2), 3.0), scaled(rng, (2, 16), 1.5)],
        [rng.normal(size=16) * 0.1, np.zeros(2)],
        "Tanh",
        "tank_tanh_unstable",
    )
    onnx.save(unstable, HERE / "tank_tanh_unstable.onnx")
    print("wrote", HERE / "tank_relu.onnx", "and", HERE / "tank_tanh_unstable.onnx")


if __name__ == "__main__":
    main()
