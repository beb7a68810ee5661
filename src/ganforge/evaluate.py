"""Evaluating a run: 2-D mode statistics now; image metrics build on the same entry point."""

from __future__ import annotations

import torch

from ganforge.data import Dataset
from ganforge.metrics.toy2d import mode_statistics


def evaluate_points(G: torch.nn.Module, dataset: Dataset, n: int, seed: int = 0, device="cpu") -> dict:
    """Modes captured, high-quality fraction and reverse KL of ``n`` samples (PacGAN protocol)."""
    from ganforge.train.loop import generate

    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    samples = generate(G, z)
    means = torch.tensor(dataset.info["means"])
    stds = torch.tensor(dataset.info["stds"])
    return {**mode_statistics(samples, means, stds), "seed": seed,
            "protocol": "PacGAN 2-D: high quality = within 3 std of nearest mode; reverse KL over "
                        "high-quality samples vs uniform"}
