"""The sub-pixel rewrite of ConvTranspose: same outputs as the original node, on real onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export import rewrite


def conv_transpose_model(c_in, c_out, kernel, stride, pads, bias=True, group=1, output_padding=None, seed=0):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((c_in, c_out // group, kernel, kernel)).astype(np.float32)
    initializers = [numpy_helper.from_array(weight, "W")]
    inputs = ["x", "W"]
    if bias:
        initializers.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), "B"))
        inputs.append("B")
    attrs = {"strides": [stride, stride], "kernel_shape": [kernel, kernel], "pads": pads, "group": group}
    if output_padding:
        attrs["output_padding"] = output_padding
    node = helper.make_node("ConvTranspose", inputs, ["y"], name="up", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", c_in, 5, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", c_out, None, None])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize(
    "kernel, stride, pads, output_padding, bias",
    [
        (4, 2, [1, 1, 1, 1], None, False),  # Keras Conv2DTranspose(k=4, s=2, "same"): the DCGAN's layers
        (3, 2, [0, 0, 1, 1], None, True),  # Keras k=3, s=2, "same": the VAE decoder's layers
        (3, 2, [1, 1, 1, 1], [1, 1], True),  # the PyTorch spelling of the same shape
        (5, 2, [2, 2, 1, 1], None, True),
        (2, 2, [0, 0, 0, 0], None, True),
        (6, 3, [1, 1, 2, 2], None, False),  # stride 3, phases with offsets that skip 0
    ],
)
def test_rewrite_matches_conv_transpose(kernel, stride, pads, output_padding, bias):
    model = conv_transpose_model(3, 8, kernel, stride, pads, bias=bias, output_padding=output_padding)
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 6)).astype(np.float32)
    expected = run(model, x)
    assert expected.shape == (2, 8, 5 * stride, 6 * stride)
    assert rewrite.subpixel_conv_transpose(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert {n.op_type for n in model.graph.node} == {"Conv", "Concat", "DepthToSpace"}
    assert {i.name for i in model.graph.initializer} & {"W"} == set()  # the old weight is dropped
    np.testing.assert_allclose(run(model, x), expected, atol=1e-5)


@pytest.mark.parametrize(
    "kernel, stride, pads, group",
    [
        (3, 2, [0, 0, 0, 0], 1),  # "valid": output 2H + 1, not a whole number of phases
        (4, 2, [1, 1, 1, 1], 2),  # grouped
        (3, 1, [1, 1, 1, 1], 1),  # stride 1: nothing to gain
    ],
)
def test_ineligible_nodes_are_left_alone(kernel, stride, pads, group):
    model = conv_transpose_model(4, 8, kernel, stride, pads, group=group)
    before = model.SerializeToString()
    assert rewrite.subpixel_conv_transpose(model) == 0
    assert model.SerializeToString() == before


def dense_to_image_model(activation: str | None, bias: bool, seed=0):
    """z (batch, 5) -> MatMul [-> Add] [-> activation] -> Reshape (batch, 3, 4, 2) -> Transpose -> Conv."""
    rng = np.random.default_rng(seed)
    initializers = [
        numpy_helper.from_array(rng.standard_normal((5, 24)).astype(np.float32), "W"),
        numpy_helper.from_array(np.array([-1, 3, 4, 2], dtype=np.int64), "shape"),
        numpy_helper.from_array(rng.standard_normal((6, 2, 3, 3)).astype(np.float32), "K"),
    ]
    nodes = [helper.make_node("MatMul", ["z", "W"], ["dense"])]
    last = "dense"
    if bias:
        initializers.append(numpy_helper.from_array(rng.standard_normal(24).astype(np.float32), "b"))
        nodes.append(helper.make_node("Add", [last, "b"], ["biased"]))
        last = "biased"
    if activation:
        nodes.append(helper.make_node(activation, [last], ["act"]))
        last = "act"
    nodes += [
        helper.make_node("Reshape", [last, "shape"], ["nhwc"]),
        helper.make_node("Transpose", ["nhwc"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "K"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6, 3, 4])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("activation, bias", [(None, False), ("Relu", True), ("Tanh", False)])
def test_channels_first_dense_drops_the_transpose(activation, bias):
    model = dense_to_image_model(activation, bias)
    z = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)

    def run_z(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]

    expected = run_z(model)
    assert rewrite.channels_first_dense(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert "Transpose" not in {n.op_type for n in model.graph.node}
    np.testing.assert_allclose(run_z(model), expected, atol=1e-5)


def test_relu_after_conv_transpose_moves_onto_the_phases():
    model = conv_transpose_model(3, 8, 4, 2, [1, 1, 1, 1], bias=True)
    model.graph.node[0].output[0] = "pre"
    model.graph.node.append(helper.make_node("Relu", ["pre"], ["y"]))
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 6)).astype(np.float32)
    expected = run(model, x)
    assert rewrite.optimize(model) == {
        "fold_affine": 0,
        "channels_first_dense": 0,
        "subpixel_conv_transpose": 1,
        "conv_before_depth_to_space": 0,
    }
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Relu") == 4 and ops[-1] == "DepthToSpace"  # one Relu per phase, fused by onnxruntime
    np.testing.assert_allclose(run(model, x), expected, atol=1e-5)


def depth_to_space_conv_model(blocksize, kernel, pads, bias, mode="DCR", strides=(1, 1), seed=0):
    """x (batch, s*s*3, 4, 5) -> DepthToSpace -> Conv (3 -> 2 channels) -> Tanh."""
    rng = np.random.default_rng(seed)
    initializers = [numpy_helper.from_array(rng.standard_normal((2, 3, kernel, kernel)).astype(np.float32), "W")]
    inputs = ["up", "W"]
    if bias:
        initializers.append(numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "B"))
        inputs.append("B")
    nodes = [
        helper.make_node("DepthToSpace", ["x"], ["up"], blocksize=blocksize, mode=mode),
        helper.make_node("Conv", inputs, ["c"], kernel_shape=[kernel, kernel], pads=pads, strides=list(strides)),
        helper.make_node("Tanh", ["c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", blocksize * blocksize * 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, None, None])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "blocksize, kernel, pads, bias",
    [
        (2, 3, [1, 1, 1, 1], True),  # the DCGAN's last layer
        (2, 1, [0, 0, 0, 0], False),
        (2, 5, [2, 2, 2, 2], True),
        (3, 3, [1, 1, 1, 1], True),
        (2, 4, [1, 1, 2, 2], False),  # even kernel, uneven "same" padding
    ],
)
def test_conv_moves_before_depth_to_space(blocksize, kernel, pads, bias):
    model = depth_to_space_conv_model(blocksize, kernel, pads, bias)
    x = np.random.default_rng(3).standard_normal((2, blocksize * blocksize * 3, 4, 5)).astype(np.float32)
    expected = run(model, x)
    assert expected.shape == (2, 2, 4 * blocksize, 5 * blocksize)
    assert rewrite.conv_before_depth_to_space(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Conv", "DepthToSpace", "Tanh"]
    np.testing.assert_allclose(run(model, x), expected, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "CRD"},  # another channel order
        {"strides": (2, 2)},  # strided: not a "same" convolution
        {"pads": [0, 0, 0, 0]},  # "valid": smaller output
    ],
)
def test_conv_after_other_depth_to_space_is_left_alone(kwargs):
    model = depth_to_space_conv_model(2, 3, kwargs.pop("pads", [1, 1, 1, 1]), True, **kwargs)
    before = model.SerializeToString()
    assert rewrite.conv_before_depth_to_space(model) == 0
    assert model.SerializeToString() == before


def batchnorm_after(op: str, with_add: bool, seed=0):
    """x -> op (constant weights) -> Mul(scale) [-> Add(shift)] -> Relu: tf2onnx's inference BatchNorm."""
    rng = np.random.default_rng(seed)
    if op == "MatMul":
        x_shape, weight, const_shape = ["batch", 5], rng.standard_normal((5, 6)), (6,)
        layer = helper.make_node("MatMul", ["x", "W"], ["h"])
    elif op == "Conv":
        x_shape, weight, const_shape = ["batch", 3, 5, 5], rng.standard_normal((6, 3, 3, 3)), (1, 6, 1, 1)
        layer = helper.make_node("Conv", ["x", "W"], ["h"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    else:
        x_shape, weight, const_shape = ["batch", 3, 5, 5], rng.standard_normal((3, 6, 4, 4)), (1, 6, 1, 1)
        layer = helper.make_node(
            "ConvTranspose", ["x", "W"], ["h"], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1]
        )
    initializers = [
        numpy_helper.from_array(weight.astype(np.float32), "W"),
        numpy_helper.from_array(rng.uniform(0.5, 2, const_shape).astype(np.float32), "scale"),
        numpy_helper.from_array(rng.standard_normal(const_shape).astype(np.float32), "shift"),
    ]
    nodes = [layer, helper.make_node("Mul", ["h", "scale"], ["scaled"])]
    last = "scaled"
    if with_add:
        nodes.append(helper.make_node("Add", ["scaled", "shift"], ["shifted"]))
        last = "shifted"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None if op == "MatMul" else ["batch", 6, None, None])],
        [i for i in initializers if with_add or i.name != "shift"],
    )
    graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    if op == "MatMul":
        graph.output[0].type.tensor_type.shape.dim.add().dim_param = "batch"
        graph.output[0].type.tensor_type.shape.dim.add().dim_value = 6
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), x_shape


@pytest.mark.parametrize("op", ["MatMul", "Conv", "ConvTranspose"])
@pytest.mark.parametrize("with_add", [True, False])
def test_batchnorm_folds_into_the_layer(op, with_add):
    model, x_shape = batchnorm_after(op, with_add)
    x = np.random.default_rng(4).standard_normal([2, *x_shape[1:]]).astype(np.float32)
    expected = run(model, x)
    assert rewrite.fold_affine(model) == 1
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert "Mul" not in ops and ops == ([op, "Add", "Relu"] if op == "MatMul" else [op, "Relu"])
    np.testing.assert_allclose(run(model, x), expected, atol=1e-5)
