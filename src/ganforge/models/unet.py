"""The pix2pix networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator.

U-Net, with w = model.g_width and n = log2(resolution) downsamplings (6 at 64 px, 5 at 32 px),
channel multipliers m_i = min(2^i, 8):

    x (B, C_in, R, R) -Conv 4/2-> (B, w, R/2) -[LReLU, Conv 4/2, Norm]-> (B, 2w, R/4) ... -> (B, 8w, 1, 1)
    ... each decoder level: ReLU, ConvT 4/2, Norm (, Dropout 0.5), then concatenated with the
    encoder's output of the same size (the skip) ... -> ReLU, ConvT 4/2, tanh -> (B, C_out, R, R)

Dropout in the decoder is the generator's only noise (the paper found a z input ignored); as in
the reference implementation it sits in the n - 5 intermediate 8w-wide levels (one at 64 px).

PatchGAN with d = model.d_width and L = model.d_layers strided layers, on the pair (input,
output) concatenated along channels:

    (B, C_in + C_out, R, R) -Conv 4/2, LReLU-> -[Conv 4/2, Norm, LReLU] x (L-1)->
    -Conv 4/1, Norm, LReLU-> -Conv 4/1-> (B, 1, P, P) logits, one per overlapping patch

Each logit sees a ``receptive_field(L)`` square of the input (70 px for L = 3, 34 for L = 2).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models.dcgan import dcgan_init
from ganforge.models.layers import norm2d


def unet_depth(resolution: int) -> int:
    """Downsamplings to reach 1x1: log2 of the side, which must be a power of two >= 16."""
    if resolution < 16 or resolution & (resolution - 1):
        raise GanforgeError(f"the U-Net needs a power-of-two image side of at least 16 px, not {resolution}; "
                            "set data.resolution to 32, 64, 128 or 256")
    return int(math.log2(resolution))


class UNetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, resolution: int, width: int = 64,
                 norm: str = "batch", dropout: float = 0.5):
        super().__init__()
        depth = unet_depth(resolution)
        widths = [width * min(2 ** i, 8) for i in range(depth)]
        self.downs = nn.ModuleList()
        c = in_channels
        for i, w in enumerate(widths):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c, w, 4, 2, 1, bias=norm != "batch" or i in (0, depth - 1)))
            if 0 < i < depth - 1:  # no norm on the outermost input nor on the 1x1 bottleneck
                layers.append(norm2d(norm, w))
            self.downs.append(nn.Sequential(*layers))
            c = w
        self.ups = nn.ModuleList()
        dropout_levels = set(range(depth - 1 - max(0, depth - 5), depth - 1))  # the n-5 innermost 8w levels
        for i in reversed(range(depth)):
            c_in = widths[i] if i == depth - 1 else 2 * widths[i]  # the bottleneck has no skip yet
            c_out = out_channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=i == 0 or norm != "batch")]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(norm2d(norm, c_out))
                if i in dropout_levels and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        dcgan_init(self)  # the same init as DCGAN: N(0, 0.02) convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[0](skips.pop())           # the bottleneck, 1x1 -> 2x2
        for up in self.ups[1:]:
            x = up(torch.cat([x, skips.pop()], 1))  # (B, 2 w_i, r, r): decoder + encoder skip
        return x


def receptive_field(layers: int) -> int:
    """Side of the input square one PatchGAN logit sees: r_in = (r_out - 1) * stride + kernel,
    from the logit back through two stride-1 and ``layers`` stride-2 4x4 convolutions."""
    r = 1
    for stride in [1, 1] + [2] * layers:
        r = (r - 1) * stride + 4
    return r


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, width: int = 64, layers: int = 3, norm: str = "batch"):
        super().__init__()
        seq = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for n in range(1, layers + 1):
            w = width * min(2 ** n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(c, w, 4, stride, 1, bias=norm != "batch"), norm2d(norm, w), nn.LeakyReLU(0.2)]
            c = w
        seq.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)
        self.receptive_field = receptive_field(layers)
        dcgan_init(self)  # the same init as DCGAN: N(0, 0.02) convs

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.net(pair)  # (B, 1, P, P) patch logits
