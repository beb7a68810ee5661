"""Method "cgan": class-conditional GANs (Mirza & Osindero 2014) with a projection discriminator
(Miyato & Koyama 2018) or an auxiliary classifier (AC-GAN, Odena et al. 2017).

The game is any of the unconditional ones (method.loss). Fakes get labels drawn uniformly; real
batches bring their own. With AC-GAN, both players also minimise the cross-entropy of the
auxiliary classifier (weighted by method.acgan_weight): D on real and fake images, G on fakes.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ganforge.data import Batch
from ganforge.errors import GanforgeError
from ganforge.health.signals import probe_output_gradient
from ganforge.losses.gan import D_LOSSES, G_LOSSES
from ganforge.methods.base import Phase
from ganforge.methods.gan import GANMethod, d_output_stats
from ganforge.models import build_models
from ganforge.models.conditional import ConditionalDiscriminator, ConditionalGenerator


def _fake_labels(G, n: int, device) -> torch.Tensor:
    return torch.randint(G.n_classes, (n,), device=device)


def cond_discriminator_loss(models, batch: Batch, *, kind: str, acgan_weight: float) -> dict[str, torch.Tensor]:
    G, D = models["G"], models["D"]
    n, device = len(batch), batch.x.device
    y_fake = _fake_labels(G, n, device)
    z = torch.randn(n, G.z_dim, device=device)
    with torch.no_grad():
        fake = G(z, y_fake)
    real_out, fake_out = D(batch.x, batch.y), D(fake, y_fake)
    out = D_LOSSES[kind](real_out, fake_out)
    if D.mode == "acgan":
        out["aux"] = F.cross_entropy(D.classify(batch.x), batch.y) + F.cross_entropy(D.classify(fake), y_fake)
        out["loss"] = out["loss"] + acgan_weight * out["aux"]
    out.update(d_output_stats(kind, real_out, fake_out))
    return out


def cond_generator_loss(models, batch: Batch, *, kind: str, acgan_weight: float) -> dict[str, torch.Tensor]:
    G, D = models["G"], models["D"]
    n, device = len(batch), batch.x.device
    y = _fake_labels(G, n, device)
    fake = G(torch.randn(n, G.z_dim, device=device), y)
    out = {"loss": G_LOSSES[kind](D(fake, y)), "G_out_grad": probe_output_gradient(fake)}
    if D.mode == "acgan":
        out["aux"] = F.cross_entropy(D.classify(fake), y)
        out["loss"] = out["loss"] + acgan_weight * out["aux"]
    return out


class ConditionalGANMethod(GANMethod):
    """The GAN method with labels: same optimizers, conditional networks and losses."""

    def __init__(self, cfg, sample_shape: tuple[int, ...], image: bool, n_classes: int | None = None):
        super(GANMethod, self).__init__()  # networks are built here, not by GANMethod
        if not n_classes or n_classes < 2:
            raise GanforgeError("method cgan needs labelled data with at least 2 classes; data.source "
                                f"{cfg.data.source} has {n_classes or 'no'} labels")
        self.cfg = cfg
        m = cfg.model
        base_cfg = type(m)(**{**m.__dict__, "z_dim": m.z_dim + m.embed_dim})
        G, D = build_models(base_cfg, sample_shape, image)
        self.models = {"G": ConditionalGenerator(G, m.z_dim, n_classes, m.embed_dim),
                       "D": ConditionalDiscriminator(D, n_classes, m.cond_d)}

    def phases(self) -> list[Phase]:
        m = self.cfg.method
        return [
            Phase("D", "D", functools.partial(cond_discriminator_loss, kind=m.loss, acgan_weight=m.acgan_weight),
                  repeats=m.d_steps),
            Phase("G", "G", functools.partial(cond_generator_loss, kind=m.loss, acgan_weight=m.acgan_weight),
                  needs_data=False),
        ]
