"""Mode coverage on 2-D mixtures, per the PacGAN/VEEGAN protocol (REFERENCES.md).

A sample is high quality when it lies within 3 standard deviations of its nearest mode; a mode
is captured when it is the nearest mode of at least one high-quality sample. Reverse KL is
KL(p_gen || uniform) between the histogram of high-quality samples over the modes and the
uniform distribution (0 = perfectly balanced; log M when every sample falls in one mode).

Beside the protocol, ``off_modes`` is the share of samples more than 6 standard deviations from
every mode: a 2-D Gaussian leaves exp(-18) ~ 2e-8 of its mass there, so these samples lie on the
paths between modes (where a continuous G fed a connected latent must cross), not in a mode's
tail. It separates the two ways to lose high quality: modes drawn too wide (samples 3-6 std out)
and mass between the modes.

High quality also rewards modes drawn too narrow (a generator that puts every sample on a mode's
centre scores 100 %), so ``spread`` measures the width: per captured mode, the RMS distance of its
high-quality samples from the mode's centre over what the data itself gives, averaged over the
modes. For a 2-D Gaussian of std s cut at q = 3 std, E[r^2 | r <= q s] = s^2 (2 - q^2 e^(-q^2/2) /
(1 - e^(-q^2/2))) = 1.899 s^2, so the data scores 1, a mode drawn as one point 0, and a mode drawn
wider than the data above 1.
"""

from __future__ import annotations

import math

import torch

from ganforge.errors import GanforgeError

OFF_MODE_SIGMAS = 6.0


def mode_statistics(samples: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                    quality_sigmas: float = 3.0) -> dict[str, float]:
    """samples (N, 2), means (M, 2), stds (M,) -> modes captured, HQ fraction, reverse KL, and the
    share of samples off every mode (farther than OFF_MODE_SIGMAS standard deviations)."""
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise GanforgeError(f"2-D mode statistics need (N, 2) samples, got {tuple(samples.shape)}")
    if len(samples) < 1:
        raise GanforgeError("2-D mode statistics need at least one sample")
    if not torch.isfinite(samples).all():
        raise GanforgeError("generated samples contain NaN or infinity; training diverged")
    samples, means, stds = samples.double(), means.double(), stds.double()
    dist = torch.cdist(samples, means)                 # (N, M)
    nearest_dist, nearest = dist.min(1)                # (N,)
    hq = nearest_dist <= quality_sigmas * stds[nearest]
    off = nearest_dist > OFF_MODE_SIGMAS * stds[nearest]
    counts = torch.bincount(nearest[hq], minlength=len(means)).double()
    n_hq = int(hq.sum())
    if n_hq:
        p = counts / n_hq
        nz = p > 0
        rkl = float((p[nz] * (p[nz] * len(means)).log()).sum())
    else:
        rkl = math.inf
    return {"modes": int((counts > 0).sum()), "modes_total": len(means),
            "high_quality": n_hq / len(samples), "reverse_kl": rkl,
            "off_modes": int(off.sum()) / len(samples),
            "spread": mode_spread(nearest_dist[hq] / stds[nearest[hq]], nearest[hq], len(means), quality_sigmas),
            "n": len(samples)}


def mode_spread(radius: torch.Tensor, mode: torch.Tensor, n_modes: int, quality_sigmas: float = 3.0) -> float:
    """Mean over the modes with at least 2 high-quality samples of sqrt(mean r^2 / E_data[r^2]),
    r (N,) the samples' distances from their mode's centre in units of its std, mode (N,) the
    mode of each; E_data[r^2] = 2 - q^2 e^(-q^2/2) / (1 - e^(-q^2/2)) for a 2-D Gaussian cut at
    q std. NaN when no mode has 2 samples."""
    tail = math.exp(-quality_sigmas ** 2 / 2)
    data_r2 = 2 - quality_sigmas ** 2 * tail / (1 - tail)
    sums = torch.zeros(n_modes, dtype=torch.float64).index_add_(0, mode, radius.double() ** 2)
    counts = torch.bincount(mode, minlength=n_modes)
    kept = counts >= 2
    if not kept.any():
        return math.nan
    return float((sums[kept] / counts[kept] / data_r2).sqrt().mean())
