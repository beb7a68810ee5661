"""Method "gan": the original minimax game (Goodfellow et al. 2014).

Each iteration: k discriminator steps, each on a fresh real batch and fresh noise, minimising
the binary cross-entropy L_D; then one generator step minimising the saturating (mm) or
non-saturating (ns) generator loss.
"""

from __future__ import annotations

import functools

import torch

from ganforge.data import Batch
from ganforge.losses.gan import G_LOSSES, d_loss_bce, r1_penalty
from ganforge.methods.base import Method, OptimizerSpec, Phase
from ganforge.models import build_models


def discriminator_loss(models, batch: Batch, *, r1_gamma: float = 0.0) -> dict[str, torch.Tensor]:
    """L_D on a real batch and as many fakes (+ gamma/2 * R1 when r1_gamma > 0); also reports
    mean D(x) and D(G(z))."""
    G, D = models["G"], models["D"]
    z = torch.randn(len(batch), G.z_dim, device=batch.x.device)
    with torch.no_grad():
        fake = G(z)
    real = batch.x.detach().requires_grad_(r1_gamma > 0)
    real_logits, fake_logits = D(real), D(fake)
    out = d_loss_bce(real_logits, fake_logits)
    if r1_gamma > 0:
        out["r1"] = r1_penalty(real_logits, real)
        out["loss"] = out["loss"] + 0.5 * r1_gamma * out["r1"]
    out["D_x"] = torch.sigmoid(real_logits.detach().float()).mean()
    out["D_G_z"] = torch.sigmoid(fake_logits.detach().float()).mean()
    return out


def generator_loss(models, batch: Batch, *, kind: str) -> dict[str, torch.Tensor]:
    """The generator's loss on a fresh batch of fakes (``batch`` gives only size and device)."""
    G, D = models["G"], models["D"]
    z = torch.randn(len(batch), G.z_dim, device=batch.x.device)
    fake_logits = D(G(z))
    return {"loss": G_LOSSES[kind](fake_logits)}


class GANMethod(Method):
    def __init__(self, cfg, sample_shape: tuple[int, ...], image: bool):
        super().__init__()
        self.cfg = cfg
        G, D = build_models(cfg.model, sample_shape, image)
        self.models = {"G": G, "D": D}

    def phases(self) -> list[Phase]:
        m = self.cfg.method
        return [
            Phase("D", "D", functools.partial(discriminator_loss, r1_gamma=m.r1_gamma), repeats=m.d_steps),
            Phase("G", "G", functools.partial(generator_loss, kind=m.loss), needs_data=False),
        ]

    def optimizers(self) -> dict[str, OptimizerSpec]:
        m = self.cfg.method
        return {"D": OptimizerSpec(m.lr_d, (m.beta1, m.beta2)),
                "G": OptimizerSpec(m.lr_g, (m.beta1, m.beta2))}
