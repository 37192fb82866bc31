"""Exact ONNX graph rewrites that make the exported generator faster on onnxruntime's CPU provider.

``optimize`` applies, in order: ``fold_affine`` (tf2onnx's inference BatchNorm into the layer
before it), ``channels_first_dense`` (no NHWC->NCHW Transpose after the dense layer),
``subpixel_conv_transpose`` (below) and ``conv_before_depth_to_space`` (the last convolution
on the phases, before the interleave). Each leaves nodes it cannot prove equivalent untouched.

``subpixel_conv_transpose``: a strided ``ConvTranspose`` becomes one ``Conv`` per output phase,
a ``Concat`` and a ``DepthToSpace`` (the "sub-pixel convolution" of Shi et al. 2016). Both compute
the same sums of the same products, so the result matches to float rounding; onnxruntime runs
``Conv`` through its blocked (NCHWc) kernels, while ``ConvTranspose`` takes a slower
GEMM + col2im path. Measured with ``bench/inference.py``.

The derivation, per spatial axis (stride s, kernel k, leading pad p): ConvTranspose computes
``out[o] = sum over (i, t) with i*s + t - p = o of x[i] * W[t]``. Write ``o = s*m + a`` (a is the
output phase). Then tap t contributes iff ``t ≡ a + p (mod s)``, reading input ``i = m + d`` with
``d = (a + p - t) / s``. So phase a is an ordinary stride-1 convolution of x over the offsets d,
and interleaving the s phases (DepthToSpace) gives the output, provided its length is exactly
``s * len(x)``. Nodes that do not fit these conditions are left as they are.
"""

from __future__ import annotations

import itertools

import numpy as np


def _index(graph):
    """(initializers by name, consumers of each tensor, producer of each tensor, graph output names)."""
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {out: node for node in graph.node for out in node.output}
    return initializers, consumers, producer, {o.name for o in graph.output}


def _drop_unused_initializers(graph) -> None:
    used = {name for n in graph.node for name in n.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _string_attribute(attrs: dict, name: str, default: str) -> str:
    """A string attribute (``auto_pad``, ``mode``) as str: onnx hands them back as bytes."""
    value = attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def _sole_user(consumers: dict, graph_outputs: set, name: str):
    """The one node that reads tensor ``name``, or None when it has several readers, none,
    or is a graph output (then rewriting its producer would change what the graph returns)."""
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and name not in graph_outputs else None


def _phase_taps(stride: int, kernel: int, pad: int, phase: int) -> dict[int, int]:
    """Input offset d -> kernel tap t for one output phase along one axis."""
    return {(phase + pad - t) // stride: t for t in range(kernel) if (phase + pad - t) % stride == 0}


def _conv_phase_taps(stride: int, kernel: int, pad: int, phase: int) -> dict[int, tuple[int, int]]:
    """Kernel tap j -> (input phase, input offset) for one output phase of a stride-1 convolution
    over an interleaved (DepthToSpace) input, along one axis."""
    return {j: ((phase + j - pad) % stride, (phase + j - pad) // stride) for j in range(kernel)}


def _rewritable(attrs: dict, weight: np.ndarray) -> bool:
    spatial = weight.ndim - 2
    strides = list(attrs.get("strides", [1] * spatial))
    kernel = list(attrs.get("kernel_shape", weight.shape[2:]))
    pads = list(attrs.get("pads", [0] * 2 * spatial))
    output_padding = list(attrs.get("output_padding", [0] * spatial))
    return (
        spatial == 2
        and _string_attribute(attrs, "auto_pad", "NOTSET") == "NOTSET"
        and "output_shape" not in attrs
        and attrs.get("group", 1) == 1
        and list(attrs.get("dilations", [1, 1])) == [1, 1]
        and strides[0] == strides[1] > 1
        and kernel == list(weight.shape[2:])
        # output length exactly stride * input length on both axes
        and all(output_padding[i] + kernel[i] - pads[i] - pads[i + 2] == strides[i] for i in range(2))
    )


def _phase_convolutions(graph, nodes: list, node, weight, biased: bool, geometry, prefix: str, relu) -> list[str]:
    """Append to ``nodes`` the stride x stride ordinary convolutions (one per output phase, in
    DepthToSpace's DCR channel order) that together equal the transposed convolution ``node``
    of ``weight`` (C_in, C_out, kH, kW), each followed by its own Relu when ``relu`` is absorbed;
    their kernels go into ``graph``'s initializers. ``geometry``: (stride, pads). Returns the
    phases' output names."""
    from onnx import helper, numpy_helper

    stride, pads = geometry
    phase_outputs = []
    for a, b in itertools.product(range(stride), repeat=2):  # DepthToSpace DCR channel order
        taps_h = _phase_taps(stride, weight.shape[2], pads[0], a)
        taps_w = _phase_taps(stride, weight.shape[3], pads[1], b)
        # the offsets must span 0 so that the conv's pads are non-negative; zero taps fill gaps
        lo_h, hi_h = min(0, *taps_h), max(0, *taps_h)
        lo_w, hi_w = min(0, *taps_w), max(0, *taps_w)
        kernel = np.zeros((weight.shape[1], weight.shape[0], hi_h - lo_h + 1, hi_w - lo_w + 1), weight.dtype)
        for (dh, th), (dw, tw) in itertools.product(taps_h.items(), taps_w.items()):
            kernel[:, :, dh - lo_h, dw - lo_w] = weight[:, :, th, tw].T
        kernel_name = f"{prefix}/W{a}{b}"
        graph.initializer.append(numpy_helper.from_array(kernel, kernel_name))
        inputs = [node.input[0], kernel_name]
        if biased:
            inputs.append(node.input[2])
        out = f"{prefix}/phase{a}{b}"
        nodes.append(
            helper.make_node(
                "Conv",
                inputs,
                [out],
                name=out,
                kernel_shape=list(kernel.shape[2:]),
                pads=[-lo_h, -lo_w, hi_h, hi_w],
            )
        )
        if relu is not None:
            nodes.append(helper.make_node("Relu", [out], [f"{out}/relu"], name=f"{out}/relu"))
            out = f"{out}/relu"
        phase_outputs.append(out)
    return phase_outputs


def subpixel_conv_transpose(model):
    """Rewrite every eligible 2-D ``ConvTranspose`` of ``model`` (an onnx ModelProto) in place;
    returns the number of nodes rewritten."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers, consumers, _, graph_outputs = _index(graph)
    absorbed = set()  # ids of Relu nodes moved before the DepthToSpace
    rewritten = 0
    nodes = []
    for node in graph.node:
        if id(node) in absorbed:
            continue
        weight_name = node.input[1] if len(node.input) > 1 else ""
        if node.op_type != "ConvTranspose" or weight_name not in initializers:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(initializers[weight_name])  # (C_in, C_out, kH, kW)
        attrs = _attributes(node)
        if not _rewritable(attrs, weight):
            nodes.append(node)
            continue
        stride = attrs["strides"][0]
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        bias = None
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in initializers:
                nodes.append(node)
                continue
            bias = numpy_helper.to_array(initializers[node.input[2]])
        prefix = f"{node.name or node.output[0]}/subpixel"
        # A Relu right after commutes with the interleaving: run it on each phase, where
        # onnxruntime fuses it into the Conv.
        outputs = list(node.output)
        user = _sole_user(consumers, graph_outputs, node.output[0])
        relu = user if user is not None and user.op_type == "Relu" else None
        if relu is not None:
            absorbed.add(id(relu))
            outputs = list(relu.output)
        phase_outputs = _phase_convolutions(graph, nodes, node, weight, bias is not None, (stride, pads), prefix, relu)
        concat = f"{prefix}/phases"
        nodes.append(helper.make_node("Concat", phase_outputs, [concat], name=concat, axis=1))
        nodes.append(
            helper.make_node(
                "DepthToSpace", [concat], outputs, name=f"{prefix}/interleave", blocksize=stride, mode="DCR"
            )
        )
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return rewritten


ELEMENTWISE = {"Relu", "LeakyRelu", "Tanh", "Sigmoid", "Elu", "Selu", "HardSigmoid"}


def channels_first_dense(model):
    """Remove the NHWC -> NCHW ``Transpose`` that follows a dense layer reshaped into an image.

    Pattern: ``MatMul(x, W)`` [-> ``Add(b)``] [-> element-wise activations] -> ``Reshape`` to
    (batch, H, W, C) -> ``Transpose`` perm (0, 3, 1, 2). Permuting W's columns (and b) makes the
    reshape produce (batch, C, H, W) directly, so the Transpose goes. Returns the number removed.
    """
    graph = model.graph
    index = _index(graph)
    initializers, consumers, _, graph_outputs = index
    removed = []
    for transpose in list(graph.node):
        found = _dense_into_transpose(transpose, index)
        if found is None:
            continue
        reshape, matmul, bias, (height, width, channels) = found
        # column (c, h, w) of the new layout is column (h, w, c) of the old one
        order = np.arange(height * width * channels).reshape(height, width, channels).transpose(2, 0, 1).ravel()
        _replace_initializer(graph, matmul.input[1], _array(initializers, matmul.input[1])[:, order])
        if bias is not None:
            _replace_initializer(graph, bias, _array(initializers, bias)[order])
        shape = _array(initializers, reshape.input[1])
        _replace_initializer(graph, reshape.input[1], np.array([shape[0], channels, height, width], dtype=shape.dtype))
        # the Transpose's consumers now read the Reshape's output
        for user in consumers.get(transpose.output[0], []):
            for i, name in enumerate(user.input):
                if name == transpose.output[0]:
                    user.input[i] = reshape.output[0]
        if transpose.output[0] in graph_outputs:
            reshape.output[0] = transpose.output[0]
        removed.append(transpose)
    for node in removed:
        graph.node.remove(node)
    return len(removed)


def _array(initializers, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(initializers[name])


def _dense_source(node, index, size: int):
    """Walking back from ``node`` through element-wise activations and a constant bias ``Add``
    (of ``size``) to a ``MatMul`` with a constant (n, size) weight: (that MatMul, the bias
    initializer's name or None); None when the chain is anything else."""
    initializers, consumers, producer, graph_outputs = index
    while (
        node is not None
        and node.op_type in ELEMENTWISE
        and _sole_user(consumers, graph_outputs, node.output[0]) is not None
    ):
        node = producer.get(node.input[0])
    bias = None
    if node is not None and node.op_type == "Add" and _sole_user(consumers, graph_outputs, node.output[0]) is not None:
        bias = next((name for name in node.input if name in initializers), None)
        if bias is None or _array(initializers, bias).shape != (size,):
            return None
        node = producer.get(next(name for name in node.input if name != bias))
    if node is None or node.op_type != "MatMul" or node.input[1] not in initializers:
        return None
    if _sole_user(consumers, graph_outputs, node.output[0]) is None:
        return None
    weight = _array(initializers, node.input[1])
    if weight.ndim != 2 or weight.shape[1] != size:
        return None
    return node, bias


def _dense_into_transpose(transpose, index):
    """For a (0, 3, 1, 2) ``transpose`` fed by the dense pattern of ``channels_first_dense``:
    (its Reshape, the MatMul, the bias initializer's name or None, (H, W, C)); else None."""
    initializers, consumers, producer, graph_outputs = index
    if transpose.op_type != "Transpose" or list(_attributes(transpose).get("perm", [])) != [0, 3, 1, 2]:
        return None
    reshape = producer.get(transpose.input[0])
    if reshape is None or reshape.op_type != "Reshape" or reshape.input[1] not in initializers:
        return None
    if _sole_user(consumers, graph_outputs, reshape.output[0]) is not transpose:
        return None
    shape = _array(initializers, reshape.input[1])
    if shape.shape != (4,) or min(shape[1:]) <= 0:
        return None
    dims = tuple(int(v) for v in shape[1:])
    found = _dense_source(producer.get(reshape.input[0]), index, dims[0] * dims[1] * dims[2])
    if found is None:
        return None
    node, bias = found
    return reshape, node, bias, dims


def _replace_initializer(graph, name: str, array: np.ndarray) -> None:
    """Give the initializer ``name`` new contents. It must have a single user (checked by the caller)."""
    from onnx import numpy_helper

    for i, init in enumerate(graph.initializer):
        if init.name == name:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
            return
    raise KeyError(name)


def conv_before_depth_to_space(model):
    """Move a stride-1 ``Conv`` that reads a ``DepthToSpace`` (DCR) in front of it.

    ``Conv(DepthToSpace(x))`` equals ``DepthToSpace(Conv'(x))``, where ``Conv'`` works on the
    s*s phases of x at the low resolution: output phase (a, b), tap j of the kernel reads phase
    ``(a + j - p) mod s`` at offset ``floor((a + j - p) / s)``. The full-resolution interleave
    of the many input channels becomes one of the few output channels (the DCGAN's last layer:
    32 channels before, 1 after). Needs a "same" convolution (output as large as its input).
    Returns the number of Conv nodes moved.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    index = _index(graph)
    initializers = index[0]
    moved = 0
    for conv in list(graph.node):
        d2s = _same_conv_after_depth_to_space(conv, index)
        if d2s is None:
            continue
        s = int(_attributes(d2s)["blocksize"])
        new, lo, hi = _phase_kernel(_array(initializers, conv.input[1]), s, _attributes(conv))
        prefix = f"{conv.name or conv.output[0]}/before_depth_to_space"
        inputs = [d2s.input[0], f"{prefix}/W"]
        graph.initializer.append(numpy_helper.from_array(new, inputs[1]))
        if len(conv.input) > 2 and conv.input[2]:
            inputs.append(f"{prefix}/B")
            graph.initializer.append(
                numpy_helper.from_array(np.tile(_array(initializers, conv.input[2]), s * s), inputs[2])
            )
        position = list(graph.node).index(d2s)
        new_conv = helper.make_node(
            "Conv",
            inputs,
            [f"{prefix}/phases"],
            name=f"{prefix}/conv",
            kernel_shape=list(new.shape[2:]),
            pads=[-lo, -lo, hi, hi],
        )
        new_d2s = helper.make_node(
            "DepthToSpace",
            [f"{prefix}/phases"],
            list(conv.output),
            name=f"{prefix}/interleave",
            blocksize=s,
            mode="DCR",
        )
        graph.node.remove(conv)
        graph.node.remove(d2s)
        graph.node.insert(position, new_d2s)
        graph.node.insert(position, new_conv)
        moved += 1
    _drop_unused_initializers(graph)
    return moved


def _same_conv_after_depth_to_space(conv, index):
    """The DCR ``DepthToSpace`` that only ``conv`` reads, when ``conv`` is a plain stride-1 "same"
    convolution with constant weights (and bias); else None."""
    initializers, consumers, producer, graph_outputs = index
    if conv.op_type != "Conv" or len(conv.input) < 2 or conv.input[1] not in initializers:
        return None
    d2s = producer.get(conv.input[0])
    if d2s is None or d2s.op_type != "DepthToSpace" or _string_attribute(_attributes(d2s), "mode", "DCR") != "DCR":
        return None
    if _sole_user(consumers, graph_outputs, d2s.output[0]) is not conv:
        return None
    if len(conv.input) > 2 and conv.input[2] and conv.input[2] not in initializers:
        return None
    attrs = _attributes(conv)
    weight = _array(initializers, conv.input[1])  # (C_out, C_in, kH, kW)
    kernel = list(attrs.get("kernel_shape", weight.shape[2:]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    plain = (
        weight.ndim == 4
        and _string_attribute(attrs, "auto_pad", "NOTSET") == "NOTSET"
        and attrs.get("group", 1) == 1
        and list(attrs.get("strides", [1, 1])) == [1, 1]
        and list(attrs.get("dilations", [1, 1])) == [1, 1]
        and all(kernel[i] - 1 == pads[i] + pads[i + 2] for i in range(2))  # "same"
    )
    return d2s if plain else None


def _phase_kernel(weight: np.ndarray, s: int, attrs: dict):
    """(the low-resolution kernel (s*s*C_out, s*s*C_in, k', k') equal to ``weight`` run after a
    DepthToSpace of block ``s``, its lowest offset, its highest offset)."""
    kernel = list(attrs.get("kernel_shape", weight.shape[2:]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    c_out, c_in = weight.shape[:2]

    def offsets(phase, axis):
        return _conv_phase_taps(s, kernel[axis], pads[axis], phase)

    spans = [d for axis in range(2) for a in range(s) for _, d in offsets(a, axis).values()]
    lo, hi = min(0, *spans), max(0, *spans)
    new = np.zeros((s * s * c_out, s * s * c_in, hi - lo + 1, hi - lo + 1), weight.dtype)
    for a, b in itertools.product(range(s), repeat=2):
        rows, cols = offsets(a, 0), offsets(b, 1)
        out = slice((a * s + b) * c_out, (a * s + b + 1) * c_out)
        for (j, (pa, dh)), (k, (pb, dw)) in itertools.product(rows.items(), cols.items()):
            phase_in = slice((pa * s + pb) * c_in, (pa * s + pb + 1) * c_in)
            new[out, phase_in, dh - lo, dw - lo] += weight[:, :, j, k]
    return new, lo, hi


def _per_channel(array: np.ndarray, channels: int, axis_from_end: int) -> np.ndarray | None:
    """``array`` as a (channels,) vector when it broadcasts as one value per channel on the axis
    ``axis_from_end`` places from the end (1 = last: MatMul; 3 = NCHW's C), else None."""
    if array.size == 1:
        return np.full(channels, array.reshape(()), array.dtype)
    shape = list(array.shape)
    if len(shape) < axis_from_end or shape[-axis_from_end] != channels:
        return None
    if any(d != 1 for i, d in enumerate(shape) if i != len(shape) - axis_from_end):
        return None
    return array.reshape(channels)


def fold_affine(model):
    """Fold the per-channel ``Mul`` [+ ``Add``] that follows a ``MatMul``, ``Conv`` or
    ``ConvTranspose`` with constant weights into those weights and a bias.

    tf2onnx writes inference-mode BatchNormalization as ``x * scale + shift`` after the layer;
    folded, the layer is followed directly by its activation, which onnxruntime fuses, and the
    rewrites below see the patterns they look for. Returns the number of Mul nodes folded.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    index = _index(graph)
    folded = 0
    for layer in list(graph.node):
        found = _affine_after(layer, index)
        if found is None:
            continue
        mul, last, weight, bias, (scale, shift, channel_axis) = found
        broadcast = [1] * weight.ndim
        broadcast[channel_axis] = len(scale)
        prefix = f"{layer.name or layer.output[0]}/folded"
        graph.initializer.append(
            numpy_helper.from_array((weight * scale.reshape(broadcast)).astype(weight.dtype), f"{prefix}/W")
        )
        graph.initializer.append(numpy_helper.from_array((bias * scale + shift).astype(weight.dtype), f"{prefix}/B"))
        layer.input[1] = f"{prefix}/W"
        if layer.op_type == "MatMul":  # MatMul has no bias input: an Add carries it
            layer.output[0] = f"{prefix}/product"
            add = helper.make_node("Add", [layer.output[0], f"{prefix}/B"], list(last.output), name=f"{prefix}/bias")
            graph.node.insert(list(graph.node).index(layer) + 1, add)
        else:
            if len(layer.input) > 2 and layer.input[2]:
                layer.input[2] = f"{prefix}/B"
            else:
                layer.input.append(f"{prefix}/B")
            layer.output[0] = last.output[0]
        graph.node.remove(mul)
        if last is not mul:
            graph.node.remove(last)
        folded += 1
    _drop_unused_initializers(graph)
    return folded


def _constant_operand(node, initializers):
    """The constant of a two-input ``node`` with exactly one constant input, else None."""
    names = [n for n in node.input if n in initializers]
    if len(node.input) != 2 or len(names) != 1:
        return None
    return _array(initializers, names[0])


def _affine_after(layer, index):
    """For a ``layer`` followed by a per-channel ``Mul`` [+ ``Add``]: (the Mul, the last node
    folded, the layer's weight, its bias (zeros when it has none), (scale, shift, the weight's
    channel axis)); else None."""
    initializers, consumers, _, graph_outputs = index
    if layer.op_type not in ("MatMul", "Conv", "ConvTranspose") or len(layer.input) < 2:
        return None
    if layer.input[1] not in initializers:
        return None
    if layer.op_type == "ConvTranspose" and _attributes(layer).get("group", 1) != 1:
        return None
    mul = _sole_user(consumers, graph_outputs, layer.output[0])
    if mul is None or mul.op_type != "Mul":
        return None
    weight = _array(initializers, layer.input[1])
    if weight.ndim != (2 if layer.op_type == "MatMul" else 4):
        return None
    channel_axis = {"MatMul": 1, "Conv": 0, "ConvTranspose": 1}[layer.op_type]
    channels, axis_from_end = weight.shape[channel_axis], (1 if layer.op_type == "MatMul" else 3)
    scale = _constant_operand(mul, initializers)
    scale = None if scale is None else _per_channel(scale, channels, axis_from_end)
    if scale is None:
        return None
    has_bias = len(layer.input) > 2 and bool(layer.input[2])
    if has_bias and layer.input[2] not in initializers:
        return None
    bias = _array(initializers, layer.input[2]) if has_bias else np.zeros(channels, weight.dtype)
    last, add = mul, _sole_user(consumers, graph_outputs, mul.output[0])
    shift = _constant_operand(add, initializers) if add is not None and add.op_type == "Add" else None
    shift = None if shift is None else _per_channel(shift, channels, axis_from_end)
    if shift is not None:
        last = add
    else:
        shift = np.zeros(channels, weight.dtype)
    return mul, last, weight, bias, (scale, shift, channel_axis)


def optimize(model) -> dict[str, int]:
    """Apply every rewrite to ``model`` (in place); returns how many nodes each one changed."""
    return {
        "fold_affine": fold_affine(model),
        "channels_first_dense": channels_first_dense(model),
        "subpixel_conv_transpose": subpixel_conv_transpose(model),
        "conv_before_depth_to_space": conv_before_depth_to_space(model),
    }
