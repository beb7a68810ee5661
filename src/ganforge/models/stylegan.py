"""StyleGAN2's networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), small enough to train on a CPU at 32-64 px.

Generator, for a picture of R x R (R a power of two, L = 2 log2 R - 2 style inputs):

    mapping   z (B, Z) -normalise-> [EqualLinear (lr x 0.01), lrelu] x depth -> w (B, W)
              (w_avg, the running mean of w, is kept for truncation: w' = w_avg + psi (w - w_avg))
    synthesis ws (B, L, W), one w per layer (the same w everywhere unless styles are mixed):
      4 x 4:  learned constant (C4, 4, 4) -ModConv3 w_0-> +noise, lrelu -> x;   rgb = ToRGB(x, w_1)
      r = 8 .. R: x -up x2 (bilinear)-> ModConv3 w_i -> +noise, lrelu -> ModConv3 w_i+1 -> +noise, lrelu
                  rgb = up(rgb) + ToRGB(x, w_i+2)                          (skip-connected outputs)
    the picture is rgb (B, C, R, R), linear (about [-1, 1]).

A modulated convolution with style s = A(w) (B, Cin), an affine map of w initialised to give 1:

    y = conv(x * s, W)                          scaling activations, not per-sample weights, so any
                                                batch size and a plain conv2d (exportable) serve
    demodulation: y_o *= 1 / sqrt(sum_{i,k} (W_oik s_i)^2 + 1e-8)     = rsqrt((W^2 summed over k) s^2)
                  (what instance norm did in StyleGAN1, without the droplet artefacts)

Noise: y + strength_l x n, n ~ N(0, 1) of shape (B, 1, H, W), strength learned (starts at 0).
Equalised learning rate: weights are drawn N(0, 1) and scaled by 1/sqrt(fan_in) at run time.

Discriminator (residual): FromRGB at R -> [conv3, lrelu, conv3, down x2] + skip(down, conv1) / sqrt 2
per resolution down to 4 x 4 -> minibatch standard deviation (groups of 4, one feature) -> conv3 ->
flatten -> EqualLinear, lrelu -> EqualLinear -> one logit per picture.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.layers import MinibatchStd

SQRT2 = math.sqrt(2)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (0.2) with gain sqrt 2, which keeps unit-variance activations unit-variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


def channels_at(resolution: int, widest: int) -> int:
    """Feature maps at a resolution: ``widest`` up to 16 px, halving at each doubling above it."""
    return max(widest * 16 // max(resolution, 16), 8)


def style_count(resolution: int) -> int:
    """How many w inputs the synthesis network reads at ``resolution`` px: 2 log2 R - 2."""
    return 2 * int(math.log2(resolution)) - 2


class EqualLinear(nn.Module):
    """A linear layer with an equalised learning rate: y = x (W c)^T + b lr_mul, with
    c = lr_mul / sqrt(fan_in) and W stored as N(0, 1) / lr_mul (so Adam's steps are alike for all)."""

    def __init__(self, n_in: int, n_out: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(n_in), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv(nn.Module):
    """A conv with an equalised learning rate (weights N(0, 1) scaled by 1/sqrt(fan_in) at run time)."""

    def __init__(self, n_in: int, n_out: int, kernel: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.scale, self.padding = 1 / math.sqrt(n_in * kernel * kernel), kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class MappingNetwork(nn.Module):
    """z (B, Z) -> w (B, W): normalise z to unit mean square, then ``depth`` EqualLinear + lrelu
    layers whose learning rate is ``lr_mul`` (0.01) times the rest's."""

    def __init__(self, z_dim: int, w_dim: int, depth: int = 8, lr_mul: float = 0.01):
        super().__init__()
        dims = [z_dim] + [w_dim] * depth
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.float().square().mean(1, keepdim=True) + 1e-8).to(z.dtype)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x


class ModulatedConv(nn.Module):
    """A conv whose input channels are scaled by a style s = A(w) (B, Cin), demodulated by default.
    (B, Cin, H, W), w (B, W) -> (B, Cout, H, W)."""

    def __init__(self, n_in: int, n_out: int, kernel: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.affine = EqualLinear(w_dim, n_in, bias_init=1.0)  # s starts at 1: an ordinary conv
        self.weight = nn.Parameter(torch.randn(n_out, n_in, kernel, kernel))
        self.scale, self.padding, self.demodulate = 1 / math.sqrt(n_in * kernel * kernel), kernel // 2, demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)                                           # (B, Cin)
        weight = self.weight * self.scale                            # (Cout, Cin, k, k)
        y = F.conv2d(x * s[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.padding)
        if self.demodulate:  # 1 / |W_o . s|: (B, Cin) @ (Cin, Cout) -> (B, Cout)
            d = torch.rsqrt(s.float().square() @ weight.float().square().sum((2, 3)).t() + 1e-8)
            y = y * d[:, :, None, None].to(y.dtype)
        return y


class StyledLayer(nn.Module):
    """Optional x2 upsampling, a modulated 3x3 conv, scaled noise, bias and lrelu."""

    def __init__(self, n_in: int, n_out: int, w_dim: int, resolution: int, up: bool, demodulate: bool):
        super().__init__()
        self.up, self.resolution = up, resolution
        self.conv = ModulatedConv(n_in, n_out, 3, w_dim, demodulate)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.register_buffer("fixed_noise", torch.randn(1, 1, resolution, resolution))  # for noise="const"

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: str | torch.Tensor = "random") -> torch.Tensor:
        """``noise``: "random", "const", "none", or the noise picture itself (B or 1, 1, r, r)."""
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        if isinstance(noise, torch.Tensor):  # given, e.g. as an exported graph's input
            x = x + self.noise_strength * noise.to(x.dtype)
        elif noise == "random":
            x = x + self.noise_strength * torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        elif noise == "const":
            x = x + self.noise_strength * self.fixed_noise.to(x.dtype)
        return lrelu(x + self.bias[None, :, None, None].to(x.dtype))


class ToRGB(nn.Module):
    """A modulated 1x1 conv to the picture's channels, without demodulation (its output is colour)."""

    def __init__(self, n_in: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(n_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None].to(x.dtype)


class SynthesisNetwork(nn.Module):
    """ws (B, L, W) -> pictures (B, C, R, R); see the module docstring for the layout."""

    def __init__(self, resolution: int, channels: int, w_dim: int, widest: int, demodulate: bool = True):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"StyleGAN draws power-of-two pictures of at least 8 px, not {resolution}")
        self.resolution, self.n_styles = resolution, style_count(resolution)
        self.const = nn.Parameter(torch.randn(1, channels_at(4, widest), 4, 4))
        self.layers = nn.ModuleList([StyledLayer(channels_at(4, widest), channels_at(4, widest), w_dim, 4, False,
                                                 demodulate)])
        self.to_rgb = nn.ModuleList([ToRGB(channels_at(4, widest), channels, w_dim)])
        r = 8
        while r <= resolution:
            c_in, c_out = channels_at(r // 2, widest), channels_at(r, widest)
            self.layers.append(StyledLayer(c_in, c_out, w_dim, r, True, demodulate))
            self.layers.append(StyledLayer(c_out, c_out, w_dim, r, False, demodulate))
            self.to_rgb.append(ToRGB(c_out, channels, w_dim))
            r *= 2

    def forward(self, ws: torch.Tensor, noise: str | list[str | torch.Tensor] = "random") -> torch.Tensor:
        """``noise``: "random" (fresh N(0, 1) pictures), "const" (each layer's fixed picture) or
        "none", for every layer, or a list with one mode or noise picture (B, 1, r, r) per layer
        (``len(self.layers)``)."""
        modes = [noise] * len(self.layers) if isinstance(noise, str) else list(noise)
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], modes[0])
        rgb = self.to_rgb[0](x, ws[:, 1])
        for i, to_rgb in enumerate(self.to_rgb[1:]):
            x = self.layers[1 + 2 * i](x, ws[:, 1 + 2 * i], modes[1 + 2 * i])  # up, style 2i + 1
            x = self.layers[2 + 2 * i](x, ws[:, 2 + 2 * i], modes[2 + 2 * i])  # style 2i + 2
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, ws[:, 3 + 2 * i])
        return rgb

    def style_resolution(self, index: int) -> int:
        """The resolution style input ``index`` acts at: 0 -> 4 px, 1 and 2 -> 8 px, 3 and 4 -> 16 px, ..."""
        return min(4 * 2 ** ((index + 1) // 2), self.resolution)


class StyleGenerator(nn.Module):
    """Mapping + synthesis. ``forward(z)`` draws pictures from z (B, Z) with every layer on the
    same w; :meth:`mapping` and :meth:`synthesis` expose the two halves (style mixing,
    truncation, noise control). Keeps ``w_avg``, the running mean of w in training (decay 0.995)."""

    def __init__(self, z_dim: int, w_dim: int, resolution: int, channels: int = 3, widest: int = 128,
                 mapping_layers: int = 8, mapping_lr_mul: float = 0.01, demodulate: bool = True):
        super().__init__()
        self.z_dim, self.w_dim = z_dim, w_dim
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul)
        self.synthesis = SynthesisNetwork(resolution, channels, w_dim, widest, demodulate)
        self.n_styles = self.synthesis.n_styles
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.register_buffer("pl_mean", torch.zeros(()))  # a_bar of the path-length penalty (methods/stylegan.py)

    def w(self, z: torch.Tensor, psi: float | torch.Tensor = 1.0) -> torch.Tensor:
        """w (B, W) for z; in training also moves w_avg; psi < 1 (a number, or one per row (B,))
        pulls w towards w_avg: the truncation trick in W."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(0), 1 - 0.995)
        if isinstance(psi, torch.Tensor):
            psi = psi.to(w.dtype)[:, None]
        elif psi == 1:
            return w
        avg = self.w_avg.to(w.dtype)
        return avg + psi * (w - avg)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w (B, W) -> ws (B, L, W), the same style for every layer."""
        return w[:, None].expand(-1, self.n_styles, -1)

    def forward(self, z: torch.Tensor, psi: float | torch.Tensor = 1.0,
                noise: str | list[str | torch.Tensor] = "random") -> torch.Tensor:
        return self.synthesis(self.broadcast(self.w(z, psi)), noise)


class _DBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv1, self.conv2 = EqualConv(n_in, n_in, 3), EqualConv(n_in, n_out, 3)
        self.skip = EqualConv(n_in, n_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / SQRT2


class StyleDiscriminator(nn.Module):
    """Residual discriminator with a minibatch standard-deviation layer: (B, C, R, R) -> (B, 1) logits."""

    def __init__(self, resolution: int, channels: int = 3, widest: int = 128):
        super().__init__()
        self.from_rgb = EqualConv(channels, channels_at(resolution, widest), 1)
        blocks, r = [], resolution
        while r > 4:
            blocks.append(_DBlock(channels_at(r, widest), channels_at(r // 2, widest)))
            r //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, widest)
        self.mbstd = MinibatchStd()
        self.conv = EqualConv(c4 + 1, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4)
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(lrelu(self.from_rgb(x)))
        x = lrelu(self.conv(self.mbstd(x)))
        return self.out(lrelu(self.fc(x.flatten(1))))
