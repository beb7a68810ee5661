"""What a method exports: its sampling networks as graphs another runtime can call.

A :class:`SamplingGraph` is a module called with positional tensors, one per
:class:`GraphInput`, returning one tensor. The inputs say their shapes (named axes such as
"batch", "height" and "width" vary), their types and how to fill them, so that `ganforge export`
can write an ONNX file with dynamic axes and a ``config.json`` that tells a user of another
framework how to call it, and so that the parity check can draw random inputs of any batch.

Every picture that goes in or out is channels-first in [-1, 1]:
``pixel = clip(round((x + 1) * 127.5), 0, 255)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: how a picture tensor maps to 8-bit pixels (and back: x = pixel / 127.5 - 1)
PICTURE_VALUES = "pictures in [-1, 1], channels first; pixel = clip(round((x + 1) * 127.5), 0, 255)"

#: what each kind of input holds, for config.json
INPUT_KINDS = {
    "normal": "standard normal N(0, 1)",
    "index": "integers 0 .. {high_minus_1}",
    "picture": PICTURE_VALUES,
    "psi": "truncation in W per picture: w = w_avg + psi (w - w_avg); 1 is none, 0.7 is usual",
    "uniform": "uniform in [0, 1)",
}


@dataclass(frozen=True)
class GraphInput:
    """One input of a graph. ``shape`` holds ints and axis names ("batch", "height", "width")
    for the sizes that vary; ``kind`` is a key of :data:`INPUT_KINDS` (``high``: the number of
    values of an "index" input)."""

    name: str
    shape: tuple[int | str, ...]
    kind: str
    high: int = 0
    about: str = ""

    @property
    def dtype(self) -> torch.dtype:
        return torch.long if self.kind == "index" else torch.float32

    def describe(self) -> dict:
        """The input as config.json states it."""
        values = INPUT_KINDS[self.kind].format(high_minus_1=self.high - 1)
        return {"name": self.name, "shape": list(self.shape), "dtype": "int64" if self.kind == "index" else "float32",
                "values": values + (f"; {self.about}" if self.about else "")}

    def concrete_shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.shape)

    def draw(self, sizes: dict[str, int], generator: torch.Generator) -> torch.Tensor:
        """Random values of this input for the sizes of the named axes (for the parity check)."""
        shape = self.concrete_shape(sizes)
        if self.kind == "index":
            return torch.randint(self.high, shape, generator=generator)
        if self.kind == "normal":
            return torch.randn(shape, generator=generator)
        if self.kind == "picture":
            return torch.rand(shape, generator=generator) * 2 - 1
        if self.kind == "psi":
            return torch.rand(shape, generator=generator) * 0.8 + 0.4  # 0.4 .. 1.2
        return torch.rand(shape, generator=generator)


@dataclass(frozen=True)
class SamplingGraph:
    """A network as another runtime calls it: ``module(*inputs) -> output``.

    name: the file stem ("generator", "decoder", "a2b", ...); role: what it does ("sample": noise
    to pictures, "translate" and "upscale": pictures to pictures, "encode", "decode", "prior": code
    logits); output: (name, shape with axis names, what its values mean); sizes: the example size of
    each named axis; other_side: a second picture side the export is checked at, for graphs whose
    height and width vary (None when they are fixed).
    """

    name: str
    role: str
    module: nn.Module
    inputs: tuple[GraphInput, ...]
    output: tuple[str, tuple[int | str, ...], str]
    sizes: dict[str, int]
    other_side: int | None = None

    def describe(self) -> dict:
        out_name, out_shape, out_values = self.output
        return {"role": self.role, "inputs": [i.describe() for i in self.inputs],
                "output": {"name": out_name, "shape": list(out_shape), "values": out_values}}


def latent_graph(name: str, module: nn.Module, z_dim: int, out_shape: tuple[int, ...], is_image: bool,
                 role: str = "sample", about: str = "") -> SamplingGraph:
    """Latents z (batch, z_dim) -> pictures (batch, C, H, W), or points (batch, D) for 2-D data."""
    values = PICTURE_VALUES if is_image else "points in the data's coordinates"
    return SamplingGraph(name, role, module, (GraphInput("z", ("batch", z_dim), "normal", about=about),),
                         ("pictures" if is_image else "points", ("batch", *out_shape), values), {"batch": 2})


def picture_graph(name: str, role: str, module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                  scale: int = 1, other_side: int | None = None) -> SamplingGraph:
    """Pictures (batch, C_in, height, width) -> pictures (batch, C_out, height x scale, width x scale);
    fully convolutional, so height and width vary (``other_side``: a second side that must work)."""
    (c_in, h, w), c_out = in_shape, out_shape[0]
    out_h, out_w = ("height", "width") if scale == 1 else (f"height*{scale}", f"width*{scale}")
    return SamplingGraph(name, role, module, (GraphInput("input", ("batch", c_in, "height", "width"), "picture"),),
                         ("pictures", ("batch", c_out, out_h, out_w), PICTURE_VALUES),
                         {"batch": 2, "height": h, "width": w}, other_side)


class Clamped(nn.Module):
    """``net(*inputs).clamp(-1, 1)``: what ganforge does to a network's pictures before showing them."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(*inputs).clamp(-1, 1)
