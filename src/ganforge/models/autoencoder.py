"""Encoders and decoders for autoencoders and VAEs: an MLP pair and a convolutional pair.

Images are (N, C, H, W) in [-1, 1]. An encoder maps them to ``out_dim`` numbers: the code z for
an autoencoder, or (mu, log sigma^2) stacked for a VAE (out_dim = 2 * z_dim). A decoder maps z
(N, z_dim) to the parameters of p(x | z) per pixel: logits for a Bernoulli decoder, the mean in
[-1, 1] for a Gaussian one (see ``losses/vae.py``); ``decoder(z)`` itself returns the image a
user sees, the mean of p(x | z) in [-1, 1], so a decoder is a generator to every command that
samples.

Convolutional sizes, with w = model.ae_width (28 px: two stride-2 steps to 7x7; 32, 64 and 128
px: three, four and five steps to 4x4):

    encoder  (C, R, R) -conv4s2-> (w, R/2, R/2) -conv4s2-> (2w, R/4, R/4) ... -> flatten -> linear(out_dim)
    decoder  z -> linear -> (top, r0, r0) -convT4s2-> ... -> (w, R/2, R/2) -convT4s2-> (C, R, R)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.errors import GanforgeError

CONV_RESOLUTIONS = {28: 2, 32: 3, 64: 4, 128: 5}  # resolution -> number of stride-2 steps


def _decoder_output(params: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The mean image in [-1, 1] from the decoder's raw output."""
    return torch.sigmoid(params) * 2 - 1 if likelihood == "bernoulli" else params


def _mlp(n_in: int, width: int, depth: int, n_out: int) -> list[nn.Module]:
    """depth hidden layers of ``width`` ELU units between n_in inputs and n_out outputs."""
    layers, n = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(n, width), nn.ELU()]
        n = width
    return [*layers, nn.Linear(n, n_out)]


class MLPEncoder(nn.Module):
    def __init__(self, sample_shape: tuple[int, ...], out_dim: int, width: int, depth: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), *_mlp(math.prod(sample_shape), width, depth, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    def __init__(self, z_dim: int, sample_shape: tuple[int, ...], width: int, depth: int, likelihood: str):
        super().__init__()
        self.z_dim, self.sample_shape, self.likelihood = z_dim, tuple(sample_shape), likelihood
        layers = _mlp(z_dim, width, depth, math.prod(sample_shape))
        if likelihood == "gaussian":
            layers.append(nn.Tanh())
            self.log_sigma = nn.Parameter(torch.tensor(-1.0))  # learned pixel noise (a sigma-VAE)
        self.net = nn.Sequential(*layers)

    def params(self, z: torch.Tensor) -> torch.Tensor:
        """Raw per-pixel parameters of p(x | z), shaped like the images."""
        return self.net(z).view(z.shape[0], *self.sample_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _decoder_output(self.params(z), self.likelihood)


def _conv_steps(sample_shape) -> int:
    c, h, w = sample_shape
    if h != w or h not in CONV_RESOLUTIONS:
        raise GanforgeError(f"the conv autoencoder takes square 28, 32, 64 or 128 px images, got {h}x{w}; "
                            "set data.resolution to one of them")
    return CONV_RESOLUTIONS[h]


class ConvEncoder(nn.Module):
    def __init__(self, sample_shape: tuple[int, int, int], out_dim: int, width: int):
        super().__init__()
        steps = _conv_steps(sample_shape)
        layers, ch = [], sample_shape[0]
        for i in range(steps):
            out = width * 2 ** i
            layers += [nn.Conv2d(ch, out, 4, 2, 1), nn.BatchNorm2d(out) if i else nn.Identity(), nn.LeakyReLU(0.2)]
            ch = out
        side = sample_shape[1] // 2 ** steps
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch * side * side, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    def __init__(self, z_dim: int, sample_shape: tuple[int, int, int], width: int, likelihood: str):
        super().__init__()
        self.z_dim, self.sample_shape, self.likelihood = z_dim, tuple(sample_shape), likelihood
        steps = _conv_steps(sample_shape)
        top = width * 2 ** (steps - 1)
        self.side = sample_shape[1] // 2 ** steps
        self.project = nn.Sequential(nn.Linear(z_dim, top * self.side * self.side), nn.ReLU())
        self.top = top
        layers, ch = [], top
        for i in reversed(range(steps - 1)):
            out = width * 2 ** i
            layers += [nn.ConvTranspose2d(ch, out, 4, 2, 1), nn.BatchNorm2d(out), nn.ReLU()]
            ch = out
        layers.append(nn.ConvTranspose2d(ch, sample_shape[0], 4, 2, 1))
        if likelihood == "gaussian":
            layers.append(nn.Tanh())
            self.log_sigma = nn.Parameter(torch.tensor(-1.0))
        self.net = nn.Sequential(*layers)

    def params(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(z.shape[0], self.top, self.side, self.side))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _decoder_output(self.params(z), self.likelihood)


def build_autoencoder(cfg, sample_shape: tuple[int, ...], image: bool,
                      variational: bool) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) for model.arch mlp or conv; a VAE's encoder outputs mu and log sigma^2."""
    if not image:
        raise GanforgeError("autoencoders in ganforge take image data; choose an image data.source")
    out_dim = 2 * cfg.z_dim if variational else cfg.z_dim
    if cfg.arch == "mlp":
        return (MLPEncoder(sample_shape, out_dim, cfg.ae_width, cfg.ae_depth),
                MLPDecoder(cfg.z_dim, sample_shape, cfg.ae_width, cfg.ae_depth, cfg.likelihood))
    if cfg.arch == "conv":
        return (ConvEncoder(sample_shape, out_dim, cfg.ae_width),
                ConvDecoder(cfg.z_dim, sample_shape, cfg.ae_width, cfg.likelihood))
    raise GanforgeError(f"model.arch '{cfg.arch}' is not an autoencoder architecture; methods ae and vae take "
                        "model.arch=mlp or conv")
