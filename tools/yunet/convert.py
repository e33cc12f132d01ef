#!/usr/bin/env python3
"""Converts the YuNet-n ONNX graph into ferrite's detector file (safetensors).

    python3 tools/yunet/convert.py ../shared/models/yunet/yunet_n_dynamic.onnx \
        crates/infer/assets/yunet/yunet_n.safetensors

Needs `onnx` and `numpy` (pip); run once, by a developer. ferrite itself never reads ONNX:
the Rust detector (crates/infer/src/detect/yunet.rs) builds the network from the tensors
written here, so this script checks that the graph is the one that code hard-wires (every
operation, its input, kernel, stride, padding and groups) and refuses anything else.

Tensor names follow the ONNX initializers. Batch norm is already folded into the convs; the
exporter left those folded tensors without names (e.g. "462"), so each gets the name of the
unit it belongs to: the depthwise 3x3 after `P.conv1` (a 1x1 conv) is `P.conv2`, and the
first 3x3 conv is `backbone.model0.conv1`. Layouts stay as in ONNX: [out, in/groups, kh, kw].
"""
import json
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def convs_of(graph):
    """Every Conv node as (name, input, output, weight, bias, attributes)."""
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {}
    convs = []
    for node in graph.node:
        for out in node.output:
            producer[out] = node
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w, b = node.input[1], node.input[2]
        if w.endswith(".weight"):
            name = w[: -len(".weight")]
        else:
            src = producer.get(node.input[0])
            if src is not None and src.op_type == "Conv" and src.input[1].endswith(".conv1.weight"):
                name = src.input[1][: -len(".conv1.weight")] + ".conv2"
            elif node.input[0] == graph.input[0].name:
                name = "backbone.model0.conv1"
            else:
                sys.exit(f"cannot name the conv with weight {w!r}: unexpected graph")
        convs.append((name, node.input[0], node.output[0], inits[w], inits[b], attrs))
    return convs


def check_attrs(name, weight, attrs):
    k = weight.shape[2]
    groups = attrs.get("group", 1)
    want_stride = [2, 2] if name == "backbone.model0.conv1" else [1, 1]
    pad = (k - 1) // 2
    ok = (
        attrs.get("strides") == want_stride
        and attrs.get("pads") == [pad] * 4
        and attrs.get("dilations", [1, 1]) == [1, 1]
        and weight.shape[2] == weight.shape[3]
        and (groups == 1 or (groups == weight.shape[0] and weight.shape[1] == 1))
    )
    if not ok:
        sys.exit(f"{name}: unexpected conv {weight.shape} {attrs}")
    # A 3x3 conv is either the stem (group 1, 3 inputs) or depthwise (one input per group;
    # the heads' 1-channel 3x3 convs are both at once).
    if k == 3 and name != "backbone.model0.conv1" and weight.shape[1] != 1:
        sys.exit(f"{name}: a 3x3 conv that is not depthwise")


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    model = onnx.load(src)
    graph = model.graph
    outputs = [o.name for o in graph.output]
    want = [f"{h}_{s}" for h in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)]
    if sorted(outputs) != sorted(want):
        sys.exit(f"unexpected outputs {outputs}")
    ops = {n.op_type for n in graph.node}
    allowed = {"Conv", "Relu", "MaxPool", "Resize", "Add", "Sigmoid", "Transpose", "Shape",
               "Gather", "Unsqueeze", "Concat", "Reshape"}
    if not ops <= allowed:
        sys.exit(f"unexpected operations {ops - allowed}")
    tensors = {}
    for name, _, _, w, b, attrs in convs_of(graph):
        check_attrs(name, w, attrs)
        if name + ".weight" in tensors:
            sys.exit(f"two convs named {name}")
        tensors[name + ".weight"] = w
        tensors[name + ".bias"] = b
    params = sum(t.size for t in tensors.values())
    write_safetensors(dst, tensors, {
        "format": "ferrite-yunet-1",
        "network": "YuNet-n (Wu, Peng, Yu 2023), batch norm folded",
        "source": "ShiqiYu/libfacedetection.train commit 0047ac24, onnx/yunet_n_dynamic.onnx",
        "license": "Apache-2.0",
        "parameters": str(params),
    })
    print(f"{dst}: {len(tensors)} tensors, {params} parameters")


if __name__ == "__main__":
    main()
