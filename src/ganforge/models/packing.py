"""PacGAN packing (Lin et al. 2018): the discriminator judges m samples at once.

m samples of one kind (all real or all generated) are joined along the channel axis and D sees
them as one input:

    x (B, C, H, W) -> (B / m, m C, H, W)     images
    x (B, F)       -> (B / m, m F)           points

so D outputs one score per pack. A generator that collapses onto a few modes makes packs whose
members look alike, which real packs rarely do: D can see the lack of diversity that a single
sample hides, and G is pushed to cover the modes (the paper's Theorem 3: packing sharpens the
penalty on mode collapse). The inner network is built for m C channels (or m F features).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import GanforgeError


def packed_shape(sample_shape: tuple[int, ...], pack: int) -> tuple[int, ...]:
    """The shape the inner discriminator reads: the first axis (channels or features) times m."""
    return (sample_shape[0] * pack, *sample_shape[1:])


class PackedDiscriminator(nn.Module):
    """D(x_1..x_m) of consecutive samples of the batch: (B, ...) -> (B / m,)."""

    def __init__(self, net: nn.Module, pack: int):
        super().__init__()
        self.net, self.pack = net, pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n % self.pack:
            raise GanforgeError(f"a batch of {n} cannot be split into packs of {self.pack}; make "
                                f"train.batch_size a multiple of method.pack")
        # (B, C, ...) -> (B/m, m C, ...): samples i*m .. i*m + m - 1 form pack i
        return self.net(x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:]))
