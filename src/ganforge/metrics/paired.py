"""Metrics of a translation against its known target: L1, PSNR and SSIM, per image then averaged.

Images are (N, C, H, W) in [-1, 1]; PSNR and SSIM read them in [0, 1] (data range 1), over all
channels: PSNR = 10 log10(1 / MSE); SSIM is Wang et al. (2004) with an 11x11 Gaussian window
(sigma 1.5), K1 = 0.01, K2 = 0.03, the window's own (population) moments, averaged over the
"valid" positions (no padding) and over channels: the same as scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)``, which a test checks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per image, in [-1, 1] units: (N,)."""
    return (output.float() - target.float()).abs().flatten(1).mean(1)


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, data range 1: (N,) (inf for identical images)."""
    mse = ((output.float() - target.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim(output: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image, in float64: (N,).

    SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
    C1 = (0.01)^2, C2 = (0.03)^2 for data range 1; local moments under the Gaussian window."""
    x = (output.double() + 1) / 2
    y = (target.double() + 1) / 2
    n, c = x.shape[:2]
    w = _gaussian_window(window, sigma).to(x.device).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(t, w, groups=c)  # "valid": no padding

    mu_x, mu_y = blur(x), blur(y)
    s_xx = blur(x * x) - mu_x ** 2
    s_yy = blur(y * y) - mu_y ** 2
    s_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * s_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (s_xx + s_yy + c2))
    return s.flatten(1).mean(1)


def summarise(values: torch.Tensor) -> dict:
    """Mean and standard error of per-image values."""
    v = values.double()
    finite = v[torch.isfinite(v)]
    se = float(finite.std() / math.sqrt(len(finite))) if len(finite) > 1 else 0.0
    return {"mean": float(finite.mean()) if len(finite) else float("inf"), "se": se, "n": len(v),
            "n_infinite": int((~torch.isfinite(v)).sum())}
