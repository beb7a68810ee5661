"""Exponential moving average of a network's weights (used for sampling, never trained)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(batch_size: int, halflife_kimg: float) -> float:
    """Per-step decay so that the weight of old parameters halves every ``halflife_kimg`` kimg."""
    return 0.5 ** (batch_size / (halflife_kimg * 1000.0))


def make_ema(module: nn.Module) -> nn.Module:
    ema = copy.deepcopy(module).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, module: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * module for parameters; buffers are copied."""
    e_params, m_params = list(ema.parameters()), list(module.parameters())
    torch._foreach_lerp_(e_params, m_params, 1.0 - beta)
    for eb, mb in zip(ema.buffers(), module.buffers(), strict=True):
        eb.copy_(mb)
