"""DCGAN (Radford et al. 2016): all-convolutional G and D with batch norm.

Sizes 28 (start 7x7), 32, 64 and 128 (start 4x4), any channel count. With width w and n upsamplings:

    G: z (B, z_dim, 1, 1) -ConvT(k=s0)-> (B, w*2^(n-1), s0, s0) -[ConvT 4/2/1, BN, ReLU]...->
       (B, w, H/2, W/2) -ConvT 4/2/1, tanh-> (B, C, H, W)
    D: (B, C, H, W) -Conv 4/2/1, LReLU-> (B, w, H/2, W/2) -[Conv 4/2/1, BN, LReLU]...->
       (B, w*2^(n-1), s0, s0) [-minibatch std-> (B, w*2^(n-1) + 1, s0, s0)] -Conv(k=s0)-> (B,) logits

Extra layers (model.g_extra_layers / d_extra_layers, 0 by default; the WGAN reference code's
`n_extra_layers` puts them at the largest resolution instead) are 3x3 stride-1 convolutions with
batch norm (D: its norm) at the s0 x s0 resolution: in G right after the projection of z, in D
right before its last layer. There each unit sees the most of the picture (at 28 px D's 7x7
units see 10x10 pixels, 18x18 after one extra layer), so D can judge a digit's shape by more than
a linear read-out of local strokes, and G gets one more nonlinearity before it commits to
strokes. Each costs about as much as the widest existing layer.

The minibatch standard deviation (off by default; model.minibatch_std = its group size) is
ProGAN's (Karras et al. 2018): one more feature map before D's last layer, how much the pictures
of a group differ, so a G that draws too few kinds of picture can be told from the data.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models.layers import MinibatchStd, norm2d

SIZES = {28: 7, 32: 4, 64: 4, 128: 4}  # output size -> spatial size of the first/last feature map


def _plan(size: int) -> tuple[int, int]:
    if size not in SIZES:
        raise GanforgeError(f"the dcgan architecture supports 28, 32, 64 and 128 px images, not {size}; "
                            "set data.resolution to one of them")
    s0 = SIZES[size]
    n_up = (size // s0).bit_length() - 1  # 28/7 = 4 -> 2, 32/4 = 8 -> 3, 64/4 = 16 -> 4, 128/4 = 32 -> 5
    return s0, n_up


def dcgan_init(module: nn.Module) -> None:
    """The paper's init: conv weights ~ N(0, 0.02), BN scale ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class LatentProjection(nn.ConvTranspose2d):
    """DCGAN's "project and reshape": ConvTranspose2d(z_dim, C, k) on a 1 x 1 input, computed as
    one matrix product, out[b] = z[b] @ W.view(z_dim, C * k * k) (+ bias).

    The same parameter as the transposed convolution (checkpoints are unchanged) and the same
    values up to summation order; on this CPU the convolution kernels take 2-3x longer for it,
    and in channels_last much longer. With a channels_last weight (z_dim, k, k, C in memory) the
    product is taken in that order, so the output is channels_last without a copy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, z_dim, 1, 1)
        if x.shape[-2:] != (1, 1):
            return super().forward(x)
        w = self.weight                        # (z_dim, C, k, k)
        z_dim, c, kh, kw = w.shape
        z = x.flatten(1)
        if w.is_contiguous():
            out = (z @ w.reshape(z_dim, -1)).view(len(z), c, kh, kw)
        else:  # channels_last: W is (z_dim, k, k, C) in memory
            out = (z @ w.permute(0, 2, 3, 1).reshape(z_dim, -1)).view(len(z), kh, kw, c).permute(0, 3, 1, 2)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, out_shape: tuple[int, int, int], width: int = 64, extra_layers: int = 0):
        super().__init__()
        channels, size = out_shape[0], out_shape[-1]
        s0, n_up = _plan(size)
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        ch = width * 2 ** (n_up - 1)
        layers = [LatentProjection(z_dim, ch, s0, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(extra_layers):
            layers += [nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2),
                       nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, in_shape: tuple[int, int, int], width: int = 64, norm: str = "batch", minibatch_std: int = 0,
                 extra_layers: int = 0):
        super().__init__()
        channels, size = in_shape[0], in_shape[-1]
        s0, n_up = _plan(size)
        ch = width
        layers = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(n_up - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), norm2d(norm, ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        for _ in range(extra_layers):
            layers += [nn.Conv2d(ch, ch, 3, 1, 1, bias=norm == "none"), norm2d(norm, ch), nn.LeakyReLU(0.2, True)]
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
        layers.append(nn.Conv2d(ch + (1 if minibatch_std else 0), 1, s0, 1, 0))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
