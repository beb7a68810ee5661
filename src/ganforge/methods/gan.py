"""Methods "gan", "wgan-gp" and "wgan": the adversarial game in its common forms.

Each iteration: k discriminator (critic) steps, each on a fresh real batch and fresh noise, then
one generator step. ``method.loss`` picks the game: ns / mm (binary cross-entropy with the
non-saturating or saturating generator loss), hinge, lsgan (least squares) or wgan
(Wasserstein). "wgan-gp" is the Wasserstein game with the gradient penalty (Gulrajani et al.
2017); "wgan" is the original with weight clipping (Arjovsky et al. 2017). Their paper settings
are the defaults of those method names (config.METHOD_DEFAULTS).
"""

from __future__ import annotations

import functools

import torch

from ganforge.data import Batch
from ganforge.health.signals import d_accuracy, probe_output_gradient
from ganforge.losses.gan import D_LOSSES, G_LOSSES, clip_weights, gradient_penalty, r1_penalty
from ganforge.methods.base import Method, OptimizerSpec, Phase
from ganforge.models import build_models

PROBABILISTIC = ("ns", "mm")  # games whose D output is a logit of P(real)


def discriminator_loss(models, batch: Batch, *, kind: str = "ns", r1_gamma: float = 0.0,
                       gp_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """The discriminator's loss on a real batch and as many fakes, plus the optional penalties
    gamma/2 * R1 and lambda * GP. Reports mean D(x) and D(G(z)) as probabilities for the
    cross-entropy games and as raw outputs (D_out_real, D_out_fake) for the others."""
    G, D = models["G"], models["D"]
    z = torch.randn(len(batch), G.z_dim, device=batch.x.device)
    with torch.no_grad():
        fake = G(z)
    real = batch.x.detach().requires_grad_(r1_gamma > 0)
    real_out, fake_out = D(real), D(fake)
    out = D_LOSSES[kind](real_out, fake_out)
    if r1_gamma > 0:
        out["r1"] = r1_penalty(real_out, real)
        out["loss"] = out["loss"] + 0.5 * r1_gamma * out["r1"]
    if gp_weight > 0:
        out["gp"] = gradient_penalty(D, batch.x, fake)
        out["loss"] = out["loss"] + gp_weight * out["gp"]
    out.update(d_output_stats(kind, real_out, fake_out))
    return out


def d_output_stats(kind: str, real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean D(x) and D(G(z)): probabilities for the cross-entropy games (D_x, D_G_z), raw outputs
    for the others (D_out_real, D_out_fake); plus D's accuracy on real and fake (health signals)."""
    real_out, fake_out = real_out.detach().float(), fake_out.detach().float()
    acc = d_accuracy(kind, real_out, fake_out)
    if kind in PROBABILISTIC:
        return {"D_x": torch.sigmoid(real_out).mean(), "D_G_z": torch.sigmoid(fake_out).mean(), **acc}
    return {"D_out_real": real_out.mean(), "D_out_fake": fake_out.mean(), **acc}


def generator_loss(models, batch: Batch, *, kind: str) -> dict[str, torch.Tensor]:
    """The generator's loss on a fresh batch of fakes (``batch`` gives only size and device), and
    G_out_grad, the per-sample gradient that reaches G's output through D (filled by backward)."""
    G, D = models["G"], models["D"]
    z = torch.randn(len(batch), G.z_dim, device=batch.x.device)
    fake = G(z)
    return {"loss": G_LOSSES[kind](D(fake)), "G_out_grad": probe_output_gradient(fake)}


class GANMethod(Method):
    def __init__(self, cfg, sample_shape: tuple[int, ...], image: bool):
        super().__init__()
        self.cfg = cfg
        G, D = build_models(cfg.model, sample_shape, image)
        self.models = {"G": G, "D": D}

    def phases(self) -> list[Phase]:
        m = self.cfg.method
        gp = m.gp_weight if m.name == "wgan-gp" else 0.0
        clip = functools.partial(clip_weights_of_d, c=m.clip) if m.name == "wgan" else None
        d_loss = functools.partial(discriminator_loss, kind=m.loss, r1_gamma=m.r1_gamma, gp_weight=gp)
        return [
            Phase("D", "D", d_loss, repeats=m.d_steps, after_step=clip),
            Phase("G", "G", functools.partial(generator_loss, kind=m.loss), needs_data=False),
        ]

    def optimizers(self) -> dict[str, OptimizerSpec]:
        m = self.cfg.method
        return {"D": OptimizerSpec(m.lr_d, (m.beta1, m.beta2)),
                "G": OptimizerSpec(m.lr_g, (m.beta1, m.beta2))}


def clip_weights_of_d(models, *, c: float) -> None:
    clip_weights(models["D"], c)
