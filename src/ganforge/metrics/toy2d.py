"""Mode coverage on 2-D mixtures, per the PacGAN/VEEGAN protocol (REFERENCES.md).

A sample is high quality when it lies within 3 standard deviations of its nearest mode; a mode
is captured when it is the nearest mode of at least one high-quality sample. Reverse KL is
KL(p_gen || uniform) between the histogram of high-quality samples over the modes and the
uniform distribution (0 = perfectly balanced; log M when every sample falls in one mode).
"""

from __future__ import annotations

import math

import torch

from ganforge.errors import GanforgeError


def mode_statistics(samples: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                    quality_sigmas: float = 3.0) -> dict[str, float]:
    """samples (N, 2), means (M, 2), stds (M,) -> modes captured, HQ fraction, reverse KL."""
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
    counts = torch.bincount(nearest[hq], minlength=len(means)).double()
    n_hq = int(hq.sum())
    if n_hq:
        p = counts / n_hq
        nz = p > 0
        rkl = float((p[nz] * (p[nz] * len(means)).log()).sum())
    else:
        rkl = math.inf
    return {"modes": int((counts > 0).sum()), "modes_total": len(means),
            "high_quality": n_hq / len(samples), "reverse_kl": rkl, "n": len(samples)}
