"""Super-resolution networks (Ledig et al. 2017): the SRResNet generator, the SRGAN discriminator,
and the fixed feature networks a content loss can compare pictures in.

SRResNet, for a low-resolution picture x (B, C, h, w) in [-1, 1] and scale s in {2, 3, 4}:

    x -Conv 9x9, width, PReLU-> u                                       (B, width, h, w)
    u -[Conv 3x3, norm, PReLU, Conv 3x3, norm, + skip] x blocks->
      -Conv 3x3, norm, + u (the global skip)->                         (B, width, h, w)
      -[Conv 3x3 -> 4 width, PixelShuffle 2, PReLU] x 2  (s = 4; one step for 2; one x3 step for 3)
      -Conv 9x9 -> C->                                                  (B, C, s h, s w)
      (+ bicubic(x, s) with ``bicubic_skip``)

``bicubic_skip`` (ganforge's option, not the paper's) adds the bicubic upscaling of the input to
the output, so the network learns only the detail that bicubic interpolation misses (global
residual learning, as VDSR, Kim et al. 2016): a short CPU training gets much further with it.
The output is linear (not squashed); upscaling clamps it to [-1, 1]. Every layer is a
convolution with zero padding, so an output pixel depends only on the input pixels within
:attr:`SRResNet.receptive_radius` of it: tiles cut with that much margin and stitched back give
the same picture as one pass over the whole (what ``ganforge upscale`` relies on).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.layers import norm2d

#: upscaling steps for each scale: PixelShuffle factors applied in turn
UPSCALE_STEPS = {2: (2,), 3: (3,), 4: (2, 2)}


class SRResidualBlock(nn.Module):
    def __init__(self, width: int, norm: str):
        super().__init__()
        bias = norm != "batch"
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=bias), norm2d(norm, width), nn.PReLU(),
                                  nn.Conv2d(width, width, 3, padding=1, bias=bias), norm2d(norm, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """The SRResNet generator: ``blocks`` residual blocks of ``width`` channels, a global skip and
    PixelShuffle upscaling by ``scale`` (2, 3 or 4); ``norm`` batch (the paper's) or none;
    ``bicubic_skip`` adds the bicubic upscaling of the input to the output."""

    def __init__(self, channels: int = 3, scale: int = 4, width: int = 64, blocks: int = 16, norm: str = "batch",
                 bicubic_skip: bool = False):
        super().__init__()
        if scale not in UPSCALE_STEPS:
            raise ValueError(f"scale must be one of {sorted(UPSCALE_STEPS)}, got {scale}")
        self.scale, self.bicubic_skip = scale, bicubic_skip
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[SRResidualBlock(width, norm) for _ in range(blocks)])
        self.after_blocks = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=norm != "batch"),
                                          norm2d(norm, width))
        up = []
        for factor in UPSCALE_STEPS[scale]:
            up += [nn.Conv2d(width, width * factor * factor, 3, padding=1), nn.PixelShuffle(factor), nn.PReLU()]
        self.upscale = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)
        # Input pixels on each side that reach one output pixel (in low-resolution pixels):
        # head 4, two 3x3 convs per block, one after the blocks, each upscale conv 1 at its own
        # resolution, the tail 4 at the output's; rounded up.
        radius_lr = 4 + 2 * blocks + 1
        resolution = 1
        for factor in UPSCALE_STEPS[scale]:
            radius_lr += 1 / resolution
            resolution *= factor
        radius_lr += 4 / resolution
        self.receptive_radius = math.ceil(radius_lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.head(x)
        out = self.tail(self.upscale(u + self.after_blocks(self.blocks(u))))
        if self.bicubic_skip:  # bicubic reaches 2 input pixels: within the receptive radius
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out


class SRDiscriminator(nn.Module):
    """The SRGAN discriminator: Conv 3x3 (LeakyReLU 0.2), then conv blocks (norm, LeakyReLU) that
    alternate stride 2 and 1 while doubling the width every second block (64, 64s2, 128, 128s2,
    256, 256s2, 512, 512s2 in the paper: ``layers`` = 8), then Dense 1024, LeakyReLU, Dense 1
    (a logit). The dense layer reads the flattened map of a ``side`` x ``side`` crop."""

    def __init__(self, channels: int = 3, side: int = 96, width: int = 64, layers: int = 8, norm: str = "batch"):
        super().__init__()
        seq = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        c, size = width, side
        for i in range(1, layers):
            out = width * 2 ** (i // 2)
            stride = 2 if i % 2 == 1 else 1
            seq += [nn.Conv2d(c, out, 3, stride, 1, bias=norm != "batch"), norm2d(norm, out), nn.LeakyReLU(0.2)]
            c, size = out, (size + stride - 1) // stride
        self.features = nn.Sequential(*seq)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * size * size, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()


class RandomFeatureCNN(nn.Module):
    """A VGG-shaped CNN left at its random initialisation, as a content loss's feature space
    (Liu et al. 2021, "Generic Perceptual Loss": the structure, not trained weights, carries
    the perceptual signal). Stages of [Conv 3x3, ReLU] x 2 with widths 64, 128, 256 and a max
    pool between stages; Kaiming-normal weights drawn from a generator seeded with ``seed``, so
    every run (and every resume) compares in the same space without storing it. Frozen."""

    def __init__(self, channels: int = 3, widths: tuple[int, ...] = (64, 128, 256), seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.stages = nn.ModuleList()
        c = channels
        for i, w in enumerate(widths):
            layers = [nn.MaxPool2d(2)] if i else []
            for _ in range(2):
                conv = nn.Conv2d(c, w, 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * math.sqrt(2 / (c * 9)))
                    conv.bias.zero_()
                layers += [conv, nn.ReLU()]
                c = w
            self.stages.append(nn.Sequential(*layers))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ReLU output of every stage: [(B, 64, H, W), (B, 128, H/2, W/2), (B, 256, H/4, W/4)]."""
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class ClassifierFeatures(nn.Module):
    """The conv blocks of a trained classifier (``EmojiConvNet``) as a content loss's feature
    space: the ReLU output of each block (before its pooling). Frozen, in eval mode (its batch
    norms use their running statistics)."""

    def __init__(self, classifier: nn.Module, n_blocks: int = 3):
        super().__init__()
        self.body = classifier.body
        self.n_blocks = n_blocks
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)  # always eval: the running statistics are part of the feature space

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.body:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                out.append(x)
                if len(out) == self.n_blocks:
                    break
            elif isinstance(layer, nn.Flatten):
                break
        return out
