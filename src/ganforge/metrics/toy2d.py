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
            "off_modes": int(off.sum()) / len(samples), "n": len(samples)}
