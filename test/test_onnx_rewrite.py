# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The PRelu rewrite of the exported graph: the same values from ONNX Runtime, and only where that holds."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from daain_ros.deploy.onnxruntime_backend import open_session
from daain_ros.deploy.rewrite import without_prelu

SHAPE = [1, 6, 9, 11]


def prelu_graph(slopes):
    slope = numpy_helper.from_array(np.asarray(slopes, np.float32).reshape(1, -1, 1, 1), "slope")
    graph = helper.make_graph([helper.make_node("PRelu", ["x", "slope"], ["y"], name="act")], "prelu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)], [slope])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def run(proto, x):
    return open_session(proto.SerializeToString(), threads=1).run(None, {"x": x})[0]


@pytest.mark.parametrize("slopes, ops", [
    ([0.25, -0.7, 0.0, 1.0, 0.01, -0.1], ["Mul", "Max"]),  # every slope <= 1
    ([1.0, 2.25, 1.5, 3.0, 1.0, 7.0], ["Mul", "Min"]),  # every slope >= 1
    ([0.25, -0.7, 0.0, 2.25, 0.01, -0.1], ["Mul", "Mul", "Max", "Mul"]),  # both: Max on sign-flipped channels
])
def test_rewritten_with_the_same_values(slopes, ops):
    """Equal values; a zero may change its sign, which no later sum, product or comparison sees."""
    x = np.random.default_rng(0).normal(0, 3, SHAPE).astype(np.float32)
    x[0, :, 0, :3] = [0.0, -0.0, 1e-30]  # zeros, signed zero and a tiny value
    expected = run(prelu_graph(slopes), x)
    proto = without_prelu(prelu_graph(slopes))
    onnx.checker.check_model(proto)
    assert [n.op_type for n in proto.graph.node] == ops
    np.testing.assert_array_equal(run(proto, x), expected)


def test_a_prelu_whose_slope_is_computed_is_kept():
    """Only constant slopes are known when the graph is rewritten."""
    proto = prelu_graph([0.5] * SHAPE[1])
    del proto.graph.initializer[:]
    proto.graph.input.append(helper.make_tensor_value_info("slope", TensorProto.FLOAT, [1, SHAPE[1], 1, 1]))
    assert [n.op_type for n in without_prelu(proto).graph.node] == ["PRelu"]
