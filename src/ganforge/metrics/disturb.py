"""Disturbances of real images at increasing strength, to show that a feature space is sane.

Heusel et al. (2017) checked the Inception FID this way: disturb real images more and more, and
the FID to the undisturbed data must rise monotonically. Each function here takes images
(N, C, H, W) in [-1, 1], a strength and a seeded generator, and returns disturbed images in
[-1, 1]; strength 0 returns the images unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_noise(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    """x + sigma * N(0, 1) per pixel, clipped to [-1, 1]."""
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def blur(x: torch.Tensor, sigma: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel radius ceil(3 sigma), at most
    the image side - 1), each channel on its own, separably, reflecting at the border."""
    if sigma <= 0:
        return x
    c, h, w = x.shape[1:]
    radius = max(1, min(math.ceil(3 * sigma), h - 1, w - 1))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    out = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                   groups=c)  # along rows
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                    groups=c)  # along columns


def occlusion(x: torch.Tensor, side: float, g: torch.Generator) -> torch.Tensor:
    """One mid-grey square per image, ``side`` x the image side, at a random position (grey shows
    on dark and light backgrounds alike)."""
    n, _, h, w = x.shape
    size = round(side * min(h, w))
    if size <= 0:
        return x
    out = x.clone()
    top = torch.randint(0, h - size + 1, (n,), generator=g)
    left = torch.randint(0, w - size + 1, (n,), generator=g)
    for i in range(n):
        out[i, :, top[i]:top[i] + size, left[i]:left[i] + size] = 0.0
    return out


def salt_and_pepper(x: torch.Tensor, fraction: float, g: torch.Generator) -> torch.Tensor:
    """A ``fraction`` of pixel positions set to white or black (half each), all channels at once."""
    n, _, h, w = x.shape
    hit = torch.rand((n, 1, h, w), generator=g) < fraction
    value = torch.where(torch.rand((n, 1, h, w), generator=g) < 0.5, -1.0, 1.0)
    return torch.where(hit, value.expand_as(x), x)


def colour_shift(x: torch.Tensor, amount: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Add ``amount`` to every pixel: a brightness shift for grey images; for colour images the
    shift differs per channel (+1, -1, +0.5 times amount), which moves hue as well."""
    direction = torch.tensor([1.0, -1.0, 0.5][: x.shape[1]]) if x.shape[1] == 3 else torch.ones(x.shape[1])
    return (x + amount * direction.view(1, -1, 1, 1)).clamp(-1, 1)


#: name -> (function, strengths from none to strong, what the strength means)
DISTURBANCES = {
    "gaussian noise": (gaussian_noise, [0.0, 0.1, 0.2, 0.4, 0.7, 1.0], "noise std (image range 2)"),
    "blur": (blur, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0], "Gaussian sigma (pixels)"),
    "occlusion": (occlusion, [0.0, 0.15, 0.25, 0.35, 0.5, 0.65], "grey square side / image side"),
    "salt and pepper": (salt_and_pepper, [0.0, 0.01, 0.03, 0.1, 0.2, 0.3], "fraction of pixels"),
    "colour shift": (colour_shift, [0.0, 0.1, 0.2, 0.4, 0.6, 0.8], "shift (image range 2)"),
}
