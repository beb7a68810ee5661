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

from collections.abc import Callable
from dataclasses import dataclass

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


# Other games, also pure functions of D's raw outputs (logits or critic values).

def d_loss_hinge(real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Hinge loss (Lim & Ye 2017; SAGAN): E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    real, fake = F.relu(1 - real_out).mean(), F.relu(1 + fake_out).mean()
    return {"real": real, "fake": fake, "loss": real + fake}


def g_loss_hinge(fake_out: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: -E[D(G(z))]."""
    return -fake_out.mean()


def d_loss_lsgan(real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Least squares (Mao et al. 2017), targets a = 0 (fake), b = 1 (real):
    1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    real, fake = 0.5 * (real_out - 1).square().mean(), 0.5 * fake_out.square().mean()
    return {"real": real, "fake": fake, "loss": real + fake}


def g_loss_lsgan(fake_out: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss with target c = 1: 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake_out - 1).square().mean()


def d_loss_wasserstein(real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wasserstein critic loss (Arjovsky et al. 2017): E[D(G(z))] - E[D(x)], the negative of the
    critic's estimate of the earth mover's distance."""
    real, fake = -real_out.mean(), fake_out.mean()
    return {"real": real, "fake": fake, "loss": real + fake}


def g_loss_wasserstein(fake_out: torch.Tensor) -> torch.Tensor:
    """Wasserstein generator loss: -E[D(G(z))]."""
    return -fake_out.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): E[(||grad D(x_hat)||_2 - 1)^2] at
    x_hat = eps * x + (1 - eps) * G(z), one eps ~ U[0, 1] per sample (shape (B,) broadcast over the
    other dimensions); the norm is taken over every non-batch dimension. The graph is kept so the
    penalty trains the critic; the caller multiplies it by lambda (10 in the paper)."""
    if eps is None:
        eps = torch.rand(len(real), device=real.device)
    eps = eps.view(-1, *([1] * (real.ndim - 1))).to(real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.float().flatten(1).norm(dim=1) - 1).square().mean()


@torch.no_grad()
def clip_weights(module: torch.nn.Module, c: float) -> None:
    """The original WGAN's Lipschitz constraint: clamp every parameter of the critic to [-c, c]."""
    for p in module.parameters():
        p.clamp_(-c, c)


def d_loss_relativistic(real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Relativistic standard GAN (Jolicoeur-Martineau 2019): D judges whether a real sample is more
    real than a fake one, pairing the i-th real with the i-th fake:
    -E[log sigmoid(C(x) - C(G(z)))] = E[softplus(-(c_real - c_fake))]."""
    loss = F.softplus(-(real_out - fake_out)).mean()
    return {"loss": loss}


def g_loss_relativistic(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Relativistic generator loss, the mirror image: E[softplus(-(c_fake - c_real))]."""
    return F.softplus(-(fake_out - real_out)).mean()


@dataclass(frozen=True)
class Game:
    """One GAN game, everything the rest of ganforge needs to know about it.

    d_loss(real_out, fake_out) -> {"loss", and "real"/"fake" where the loss splits that way};
    g_loss(real_out, fake_out) -> scalar, where real_out is None unless ``g_uses_real`` (a
    relativistic game compares fakes with reals, so G's step then also runs D on a real batch).
    probabilistic: D's raw output is the logit of P(real), so D(x) = sigmoid(out) is reported and
    drawn. threshold: the raw output above which D says "real" (None: the Wasserstein critic has
    no decision, hence no accuracy). saturating: G's gradient vanishes when D rejects the fakes
    confidently (the health monitor names this failure).
    """

    name: str
    description: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
    g_loss: Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]
    probabilistic: bool = False
    threshold: float | None = None
    g_uses_real: bool = False
    saturating: bool = False


def _fake_only(g_loss: Callable[[torch.Tensor], torch.Tensor]):
    """A generator loss of D's output on fakes alone, in the (real_out, fake_out) signature."""
    def loss(real_out, fake_out):
        return g_loss(fake_out)
    loss.__doc__ = g_loss.__doc__
    loss.__name__ = g_loss.__name__
    return loss


#: every game, by the name ``method.loss`` takes
GAMES: dict[str, Game] = {g.name: g for g in (
    Game("ns", "BCE, non-saturating G loss -log D(G(z))", d_loss_bce, _fake_only(g_loss_ns),
         probabilistic=True, threshold=0.0),
    Game("mm", "BCE, saturating G loss log(1 - D(G(z)))", d_loss_bce, _fake_only(g_loss_mm),
         probabilistic=True, threshold=0.0, saturating=True),
    Game("hinge", "hinge loss", d_loss_hinge, _fake_only(g_loss_hinge), threshold=0.0),
    Game("lsgan", "least squares", d_loss_lsgan, _fake_only(g_loss_lsgan), threshold=0.5),
    Game("wgan", "Wasserstein", d_loss_wasserstein, _fake_only(g_loss_wasserstein)),
    Game("rsgan", "relativistic BCE (real more real than fake)", d_loss_relativistic, g_loss_relativistic,
         threshold=0.0, g_uses_real=True),
)}


def r1_penalty(real_logits: torch.Tensor, real_x: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 over real samples (the caller scales it by
    gamma / 2). ``real_x`` must have had requires_grad set before D saw it. The gradient norm is
    taken over every non-batch dimension; the graph is kept so the penalty can be trained on.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_x, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def info_loss(code_logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """InfoGAN's mutual-information term for a categorical code (Chen et al. 2016), in nats.

    With Q(c|x) the auxiliary network's softmax over K codes and c ~ Uniform{0..K-1} the code G
    was given, the variational lower bound is I(c; G(z, c)) >= H(c) + E[log Q(c | G(z, c))] =
    log K - L_I, so minimising the cross-entropy L_I = -E[log Q(c | G(z, c))] (code_logits
    (B, K), codes (B,)) maximises the bound: at L_I = 0 every code is read back from its picture.
    """
    return F.cross_entropy(code_logits.float(), codes)


def noise_recovery_loss(noise_estimate: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean squared error of Q's estimate (B, z_dim) of the noise z (B, z_dim) a fake was made
    from: ClusterGAN's encoder term (Mukherjee et al. 2019). At 0 the noise is read back from the
    picture, so G cannot draw one picture per code whatever z is (the collapse a code with a
    small noise beside it invites)."""
    return (noise_estimate.float() - z.float()).square().mean()
