"""Small shared pieces for the architectures: normalisation choice and spectral norm."""

from __future__ import annotations

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
