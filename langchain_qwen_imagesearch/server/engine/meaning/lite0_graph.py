"""EfficientNet-Lite0 as an ONNX graph, built from its published weights.

The architecture is the published one (Tan & Le, EfficientNet, 2019; the Lite variants of
the TensorFlow release): a 32-channel stem, 16 MBConv blocks in 7 stages with ReLU6 and no
squeeze-and-excitation, a 1280-channel head, TensorFlow "SAME" padding. Weights follow the
parameter names of the EfficientNet-PyTorch layout (``_conv_stem``, ``_blocks.N._expand_conv``,
``_depthwise_conv``, ``_project_conv``, ``_conv_head``, ``_fc``). Each BatchNorm (eps 1e-3,
as trained) is folded into the convolution before it, so the graph has only Conv, Clip, Add,
GlobalAveragePool, Flatten and Gemm nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from langchain_qwen_imagesearch.server.engine.meaning.lite0_spec import (
    BATCH_NORM_EPS,
    EMBEDDING_DIM,
    IMAGE_SIDE,
    LITE0_STAGES,
    STEM_CHANNELS,
)

OPSET = 17

Weights = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class _Block:
    in_channels: int
    out_channels: int
    stride: int
    expansion: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def _blocks() -> list[_Block]:
    """Only a stage's first block strides or changes the width."""
    blocks = []
    channels = STEM_CHANNELS
    for repeats, _kernel, stride, expansion, out_channels in LITE0_STAGES:
        for repeat in range(repeats):
            blocks.append(_Block(channels, out_channels, stride if repeat == 0 else 1, expansion))
            channels = out_channels
    return blocks


class _Graph:
    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers = [
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(6.0, np.float32), "six"),
        ]

    def conv(
        self, x: str, conv: str, norm: str, stride: int, groups: int = 1, relu6: bool = True
    ) -> str:
        weight, bias = self._folded(conv, norm)
        self.initializers += [
            numpy_helper.from_array(weight, f"{conv}.w"),
            numpy_helper.from_array(bias, f"{conv}.b"),
        ]
        kernel = int(weight.shape[-1])
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{conv}.w", f"{conv}.b"],
                [f"{conv}.out"],
                name=conv,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                group=groups,
                auto_pad="SAME_UPPER",  # TensorFlow's SAME: odd padding at the bottom right
            )
        )
        if not relu6:
            return f"{conv}.out"
        self.nodes.append(
            helper.make_node("Clip", [f"{conv}.out", "zero", "six"], [f"{conv}.relu6"])
        )
        return f"{conv}.relu6"

    def block(self, x: str, number: int, block: _Block) -> str:
        name = f"_blocks.{number}"
        h = x
        if block.expansion != 1:
            h = self.conv(h, f"{name}._expand_conv", f"{name}._bn0", 1)
        width = block.in_channels * block.expansion
        h = self.conv(h, f"{name}._depthwise_conv", f"{name}._bn1", block.stride, groups=width)
        h = self.conv(h, f"{name}._project_conv", f"{name}._bn2", 1, relu6=False)
        if not block.residual:
            return h
        self.nodes.append(helper.make_node("Add", [h, x], [f"{name}.out"]))
        return f"{name}.out"

    def _folded(self, conv: str, norm: str) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        def weight(name: str) -> NDArray[np.float64]:
            return self.weights[name].astype(np.float64)

        scale = weight(f"{norm}.weight") / np.sqrt(weight(f"{norm}.running_var") + BATCH_NORM_EPS)
        folded = weight(f"{conv}.weight") * scale.reshape(-1, 1, 1, 1)
        bias = weight(f"{norm}.bias") - weight(f"{norm}.running_mean") * scale
        return folded.astype(np.float32), bias.astype(np.float32)


def lite0_model(weights: Weights) -> onnx.ModelProto:
    """The network: input ``image`` (n, 3, 224, 224), outputs ``embedding`` (n, 1280, the
    pooled features) and ``logits`` (n, 1000, the ImageNet classifier)."""
    graph = _Graph(weights)
    h = graph.conv("image", "_conv_stem", "_bn0", 2)
    for number, block in enumerate(_blocks()):
        h = graph.block(h, number, block)
    h = graph.conv(h, "_conv_head", "_bn1", 1)
    graph.nodes += [
        helper.make_node("GlobalAveragePool", [h], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1),
        helper.make_node("Gemm", ["embedding", "_fc.w", "_fc.b"], ["logits"], transB=1),
    ]
    graph.initializers += [
        numpy_helper.from_array(weights["_fc.weight"].astype(np.float32), "_fc.w"),
        numpy_helper.from_array(weights["_fc.bias"].astype(np.float32), "_fc.b"),
    ]
    classes = int(weights["_fc.weight"].shape[0])
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "efficientnet_lite0",
            [
                helper.make_tensor_value_info(
                    "image", TensorProto.FLOAT, ["n", 3, IMAGE_SIDE, IMAGE_SIDE]
                )
            ],
            [
                helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", EMBEDDING_DIM]),
                helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes]),
            ],
            initializer=graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="langchain-qwen-imagesearch",
        ir_version=8,
    )
    onnx.checker.check_model(model)
    return model
