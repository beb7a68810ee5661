"""Content losses of super-resolution: pixel MSE, and a distance in a network's feature maps."""

from __future__ import annotations

import torch


def pixel_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, in [-1, 1] units (SRResNet's loss)."""
    return (output.float() - target.float()).square().mean()


def feature_distance(output_feats: list[torch.Tensor], target_feats: list[torch.Tensor]) -> torch.Tensor:
    """The relative squared distance of feature maps, averaged over layers:

        1/L sum_l  mean (phi_l(output) - phi_l(target))^2 / mean phi_l(target)^2

    Dividing by the target's own energy puts every layer, and any feature network (trained or
    random, whatever its activation scale), on one scale: 1 means "as far as from zero".
    """
    total = 0.0
    for out, tgt in zip(output_feats, target_feats, strict=True):
        out, tgt = out.float(), tgt.float().detach()
        total = total + (out - tgt).square().mean() / tgt.square().mean().clamp_min(1e-8)
    return total / len(target_feats)
