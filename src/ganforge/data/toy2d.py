"""2-D mixtures of Gaussians, the standard mode-collapse testbed.

The two standard layouts follow PacGAN's code (see REFERENCES.md):

- ring: 8 Gaussians at angles 2*pi*k/8, k = 0..7, on a circle of radius 1, std 0.01;
- grid: 25 Gaussians with means in {-4, -2, 0, 2, 4}^2, std 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge.errors import GanforgeError


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic Gaussians: means (M, 2), stds (M,)."""

    means: torch.Tensor
    stds: torch.Tensor

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` points (n, 2) float32 and the index of the component of each (n,)."""
        comp = torch.randint(len(self.means), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return self.means[comp] + noise * self.stds[comp, None], comp


def ring_mixture(modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture:
    # 2*pi*k/modes for k < modes: linspace(0, 2*pi, modes) would put two means on one point.
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    means = torch.stack([radius * angles.cos(), radius * angles.sin()], 1).float()
    return Mixture(means, torch.full((modes,), std))


def grid_mixture(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing  # -4..4
    xs, ys = torch.meshgrid(coords, coords, indexing="ij")
    means = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)
    return Mixture(means, torch.full((side * side,), std))


def custom_mixture(means: list, stds: list) -> Mixture:
    """A mixture from a user's list of [x, y] means and one std each (or one for all)."""
    try:
        m = torch.tensor(means, dtype=torch.float32)
        s = torch.tensor(stds, dtype=torch.float32).reshape(-1)
    except (TypeError, ValueError):
        raise GanforgeError("data.toy_means must be a list of [x, y] pairs and data.toy_stds a "
                            "list of numbers") from None
    if m.ndim != 2 or m.shape[1] != 2 or len(m) == 0:
        raise GanforgeError(f"data.toy_means must be a non-empty list of [x, y] pairs, got shape "
                            f"{tuple(m.shape)}")
    if len(s) == 1:
        s = s.expand(len(m)).clone()
    if len(s) != len(m) or bool((s <= 0).any()):
        raise GanforgeError(f"data.toy_stds needs one positive std per mean ({len(m)}) or a "
                            f"single one, got {stds}")
    return Mixture(m, s)


def mixture_for(source: str, means: list | None = None, stds: list | None = None) -> Mixture:
    if source == "toy-ring":
        return ring_mixture()
    if source == "toy-grid":
        return grid_mixture()
    return custom_mixture(means or [], stds or [])
