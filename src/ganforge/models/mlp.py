"""Multilayer-perceptron generator and discriminator, for 2-D points and flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLPGenerator(nn.Module):
    """z (B, z_dim) -> sample (B, *out_shape).

    Images end in tanh (pixels in [-1, 1]); points have no output activation.
    """

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int = 256, depth: int = 3,
                 image: bool = False):
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        layers, d = [], z_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        layers.append(nn.Linear(d, math.prod(out_shape)))
        if image:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """sample (B, *in_shape) -> logit (B,). LeakyReLU(0.2) hidden layers."""

    def __init__(self, in_shape: tuple[int, ...], width: int = 256, depth: int = 3):
        super().__init__()
        layers, d = [nn.Flatten()], math.prod(in_shape)
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(0.2)]
            d = width
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
