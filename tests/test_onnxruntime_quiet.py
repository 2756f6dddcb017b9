"""onnxruntime's own log lines never reach the user's terminal (issue 8, item 13): the agreement check runs the
model batched first and point by point when a graph fixes its batch inside; the failed batched run is ours to
handle, so onnxruntime must not print its ``[E:onnxruntime:...]`` line about it."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from certify.importers.onnx_import import onnxruntime_forward


def fixed_batch_model():
    """x [batch, 2] -> Reshape to [2]: runs for one point at a time, fails in onnxruntime for a batch of three."""
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 2])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2])
    shape = numpy_helper.from_array(np.array([2], dtype=np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "g", [x], [y], [shape])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_failed_batched_run_prints_nothing(capfd):
    run, name = onnxruntime_forward(fixed_batch_model(), "m.onnx")
    pts = np.arange(6.0).reshape(3, 2)
    assert name == "onnxruntime" and np.array_equal(run(pts), pts)  # point by point after the batch failed
    out, err = capfd.readouterr()
    assert "[E:" not in err and "onnxruntime" not in err + out, err
