"""The small interface every method (model family) implements for the shared training loop.

A method owns its networks and says, as a list of :class:`Phase` records, what one training
iteration does. Loss functions are pure: ``loss(models, batch) -> {name: tensor}`` with the
scalar to minimise under ``"loss"``; they never touch optimizers. The loop does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ganforge.data import Batch

LossFn = Callable[[dict[str, nn.Module], Batch], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Phase:
    """One optimisation step type.

    name: label used in logs ("D", "G"); trains: the network it updates (its optimizer has the
    same name); loss: pure loss function; repeats: times per iteration (k for the
    discriminator); needs_data: draw a fresh real batch before each repeat; after_step: called
    with the models after each optimizer step (e.g. WGAN weight clipping), or None.
    """

    name: str
    trains: str
    loss: LossFn
    repeats: int = 1
    needs_data: bool = True
    after_step: Callable[[dict[str, nn.Module]], None] | None = None


@dataclass(frozen=True)
class OptimizerSpec:
    """Adam settings of one optimizer; ``networks`` it updates (default: the network of its name)."""

    lr: float
    betas: tuple[float, float]
    networks: tuple[str, ...] = ()


class Method:
    """Base class. Subclasses fill ``models`` and implement ``phases`` and ``optimizers``."""

    #: the network whose weights an EMA copy tracks and that ``sample`` uses
    generator_name = "G"
    #: whether latents drawn from N(0, I) mean anything to the generator (not for an autoencoder)
    has_prior = True
    #: thousands of images seen so far; the loop sets it before every iteration (for schedules)
    images_seen = 0

    def __init__(self):
        self.models: dict[str, nn.Module] = {}

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, OptimizerSpec]:
        raise NotImplementedError

    @property
    def z_dim(self) -> int:
        return self.models[self.generator_name].z_dim

    def latents(self, n: int, generator: torch.Generator | None = None,
                truncation: float | None = None) -> torch.Tensor:
        """Standard normal latents (n, z_dim) on CPU (seeded when ``generator`` is given).

        ``truncation`` t > 0 redraws every coordinate with |z_i| > t (the truncation trick of
        Brock et al. 2019): samples move towards the mode, trading variety for fidelity.
        """
        z = torch.randn(n, self.z_dim, generator=generator)
        if truncation is not None:
            for _ in range(1000):
                outside = z.abs() > truncation
                if not outside.any():
                    break
                z[outside] = torch.randn(int(outside.sum()), generator=generator)
        return z
