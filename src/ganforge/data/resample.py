"""How super-resolution makes its low-resolution inputs: bicubic downscaling with antialiasing.

A high-resolution picture (N, C, H, W) in [-1, 1] with H and W multiples of the scale s becomes
(N, C, H/s, W/s) by bicubic interpolation (a = -0.5) with an antialiasing filter stretched by s,
which is what PIL's ``Image.resize(..., Image.BICUBIC)`` does (and MATLAB's ``imresize``, the
SRGAN paper's tool, up to rounding); then rounded to 8 bits, as a saved picture is. A test
checks the match with PIL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] pictures to the 256 levels of an 8-bit file (clamped)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def bicubic_downscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/scale, W/scale), bicubic with antialiasing, rounded to 8 bits."""
    h, w = images.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"a {w}x{h} picture does not divide by the scale {scale}")
    small = F.interpolate(images.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True,
                          align_corners=False)
    return quantise(small)


def bicubic_upscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline an SR model must beat: (N, C, h, w) -> (N, C, h*scale, w*scale), bicubic, clamped."""
    return F.interpolate(images.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def nearest_upscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Each low-resolution pixel as a scale x scale block (what the input holds, shown big)."""
    return F.interpolate(images.float(), scale_factor=scale, mode="nearest")


def centre_crop_to_multiple(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop (N, C, H, W) to the largest centred H', W' that divide by ``scale`` (the "mod crop")."""
    h, w = images.shape[-2:]
    top, left = (h % scale) // 2, (w % scale) // 2
    return images[..., top:top + h - h % scale, left:left + w - w % scale]
