"""CycleGAN's generator (Zhu et al. 2017, after Johnson et al. 2016): a ResNet that keeps the
picture's size. With w = model.g_width and n = model.res_blocks (6 for 128 px and below in the
paper, 9 for 256 px):

    x (B, C_in, H, W) -ReflPad 3, Conv 7x7, Norm, ReLU-> (B, w, H, W)
      -Conv 3x3/2, Norm, ReLU-> (B, 2w, H/2) -Conv 3x3/2, Norm, ReLU-> (B, 4w, H/4)
      -> n residual blocks at (B, 4w, H/4, W/4): y = x + [ReflPad 1, Conv 3x3, Norm, ReLU,
         ReflPad 1, Conv 3x3, Norm](x)
      -ConvT 3x3/2, Norm, ReLU-> (B, 2w, H/2) -ConvT 3x3/2, Norm, ReLU-> (B, w, H, W)
      -ReflPad 3, Conv 7x7, tanh-> (B, C_out, H, W)

``input_skip`` (ganforge's option, not the paper's) drops the tanh and adds the input to the
output, y = x + f(x): the network starts as the identity and learns only the change, which suits
domains that differ in style but share their shapes (two vendors' emoji, summer and winter), as
the global skip of VDSR does for super-resolution. y is linear while training (so the
discriminators and the cycle loss see, and pull back, values outside [-1, 1]) and clamped to
[-1, 1] in eval mode (translating, exporting).

Reflection padding keeps the border free of the dark frame zero padding would draw. Any H and W
divisible by 4 work (the network is fully convolutional). ``upsample="resize"`` replaces each
ConvT 3x3/2 by nearest-neighbour x2 and a 3x3 conv (same parameter count), which cannot draw the
checkerboard a strided transposed convolution's uneven overlap does (Odena et al. 2016).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.models.dcgan import dcgan_init
from ganforge.models.layers import norm2d


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str, bias: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm2d(norm, channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm2d(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 9,
                 norm: str = "instance", upsample: str = "transpose", input_skip: bool = False,
                 downsamplings: int = 2):
        super().__init__()
        if input_skip and in_channels != out_channels:
            raise ValueError(f"input_skip adds the input to the output: {in_channels} and {out_channels} "
                             "channels differ")
        bias = norm != "batch"  # a batch norm's shift makes a conv bias redundant
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias), norm2d(norm, width), nn.ReLU()]
        c = width
        for _ in range(downsamplings):  # the paper halves twice: 32 px -> 8 x 8 residual maps
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm2d(norm, 2 * c), nn.ReLU()]
            c *= 2
        layers += [ResidualBlock(c, norm, bias) for _ in range(blocks)]
        for _ in range(downsamplings):  # back up to the input's side
            if upsample == "resize":  # nearest x2 then a 3x3 conv: every output pixel gets the same kernel taps
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                           nn.Conv2d(c, c // 2, 3, bias=bias)]
            else:  # the paper's strided transposed conv (uneven kernel overlap: checkerboard-prone)
                layers.append(nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias))
            layers += [norm2d(norm, c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7)] + ([] if input_skip else [nn.Tanh()])
        self.net = nn.Sequential(*layers)
        self.in_channels, self.out_channels, self.input_skip = in_channels, out_channels, input_skip
        dcgan_init(self)  # N(0, 0.02) convs, as the reference implementation initialises
        if input_skip:  # f = 0 at the start (its last conv reads ~1,500 unit-scale inputs: N(0, 0.02) is not small)
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.input_skip:
            return self.net(x)
        y = x + self.net(x)  # f's last conv starts at 0: G starts as the identity
        return y if self.training else y.clamp(-1, 1)
