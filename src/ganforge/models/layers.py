"""Small shared pieces for the architectures: normalisation choice and spectral norm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def norm2d(kind: str, channels: int) -> nn.Module:
    """batch: BatchNorm2d; layer: GroupNorm with one group (normalises each sample over C, H, W,
    so per-sample penalties such as WGAN-GP stay per sample); instance: InstanceNorm2d without
    affine parameters (pix2pix/CycleGAN's choice); none: identity."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    return nn.Identity()


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Constrain every conv and linear weight of ``module`` to spectral norm 1 (one power iteration
    per forward pass in training mode, Miyato et al. 2018)."""
    for child in list(module.modules()):
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            spectral_norm(child)
    return module


class MinibatchStd(nn.Module):
    """Appends one feature map: the standard deviation over groups of ``group`` pictures, averaged
    over features and pixels (Karras et al. 2018; lets D see a batch's lack of variety). Group j
    holds pictures j, j + B/G, j + 2B/G, ... (G the largest divisor of B up to ``group``)."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        y = x.float().reshape(g, -1, c, h, w)                       # (G, B/G, C, H, W)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # (B/G,)
        y = y.repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], 1)
