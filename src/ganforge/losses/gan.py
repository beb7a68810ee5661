"""The GAN game's losses, as pure functions of the discriminator's logits.

D outputs a logit l, with D(x) = sigmoid(l). Written with softplus, every term is stable for
any logit (log sigmoid(l) = -softplus(-l), log(1 - sigmoid(l)) = -softplus(l)):

    L_D      = -E[log D(x)] - E[log(1 - D(G(z)))]     = E[softplus(-l_real)] + E[softplus(l_fake)]
    L_G (mm) =  E[log(1 - D(G(z)))]                    = -E[softplus(l_fake)]   (saturating)
    L_G (ns) = -E[log D(G(z))]                         =  E[softplus(-l_fake)]  (non-saturating)

All values are in nats; divide by ln(10) for the base-10 numbers some course notes use.
MM-GAN's gradient dL/dl = -sigmoid(l) vanishes when D confidently rejects fakes (l -> -inf),
which is exactly when G most needs it; NS-GAN's gradient -(1 - sigmoid(l)) is largest there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Discriminator binary cross-entropy: {'real', 'fake', 'loss' = real + fake}."""
    real = F.softplus(-real_logits).mean()
    fake = F.softplus(fake_logits).mean()
    return {"real": real, "fake": fake, "loss": real + fake}


def g_loss_mm(fake_logits: torch.Tensor) -> torch.Tensor:
    """Saturating minimax generator loss: minimise E[log(1 - D(G(z)))] (always <= 0)."""
    return -F.softplus(fake_logits).mean()


def g_loss_ns(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: minimise -E[log D(G(z))]."""
    return F.softplus(-fake_logits).mean()


G_LOSSES = {"mm": g_loss_mm, "ns": g_loss_ns}


def r1_penalty(real_logits: torch.Tensor, real_x: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 over real samples (the caller scales it by
    gamma / 2). ``real_x`` must have had requires_grad set before D saw it. The gradient norm is
    taken over every non-batch dimension; the graph is kept so the penalty can be trained on.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_x, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()
