"""Methods "ae" and "vae": an encoder E and a decoder G trained together by one optimizer.

ae:  minimise  -log p(x | z = E(x))                  (binary cross-entropy, or the Gaussian NLL)
vae: minimise  -E_q[log p(x | z)] + w * KL(q(z|x) || N(0, I)),   q(z|x) = N(mu(x), sigma^2(x))

with w = beta after a linear KL warm-up (w = 1 gives the negative ELBO, logged as ``neg_elbo``
with w = 1 whatever the schedule). With ``method.binarize`` every batch is binarised afresh
(pixel ~ Bernoulli(grey level)), the dynamically binarised MNIST of the likelihood literature.
All terms are per image in nats, averaged over the batch.

The decoder is the run's generator ("G"): ``ganforge sample`` decodes z ~ N(0, I) for a VAE. An
autoencoder has no prior to sample from; its sample grids during training show reconstructions.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.data import Batch
from ganforge.errors import GanforgeError
from ganforge.losses.vae import gaussian_kl, kl_weight, log_likelihood, reparameterize, split_posterior
from ganforge.methods.base import Method, OptimizerSpec, Phase
from ganforge.models.autoencoder import build_autoencoder


def likelihood_target(decoder, x: torch.Tensor, binarize: bool) -> torch.Tensor:
    """What p(x | z) scores: grey levels in [0, 1] (or a fresh 0/1 draw) for a Bernoulli decoder,
    the image in [-1, 1] for a Gaussian one."""
    if decoder.likelihood != "bernoulli":
        return x
    grey = ((x.float() + 1) / 2).clamp(0, 1)
    return torch.bernoulli(grey) if binarize else grey


def encoder_input(target: torch.Tensor, decoder) -> torch.Tensor:
    """The encoder reads images in [-1, 1]: a Bernoulli target {0, 1} or [0, 1] is mapped back."""
    return target * 2 - 1 if decoder.likelihood == "bernoulli" else target


class AutoencoderMethod(Method):
    """Shared by ae and vae: networks, one optimizer over both, previews and encoding."""

    variational = False

    def __init__(self, cfg, sample_shape: tuple[int, ...], image: bool):
        super().__init__()
        self.cfg = cfg
        E, G = build_autoencoder(cfg.model, sample_shape, image, self.variational)
        self.models = {"E": E, "G": G}
        self.images_seen = 0  # set by the training loop before each iteration (KL warm-up)
        self._features = None
        if cfg.method.perceptual_weight > 0:
            self._features = _perceptual_network(cfg.data.source, sample_shape)

    @property
    def has_prior(self) -> bool:
        return self.variational

    def optimizers(self) -> dict[str, OptimizerSpec]:
        m = self.cfg.method
        return {"AE": OptimizerSpec(m.lr, (0.9, 0.999), networks=("E", "G"))}

    def phases(self) -> list[Phase]:
        return [Phase("AE", "AE", self.loss)]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of images in [-1, 1]: z for ae, the posterior mean mu for vae."""
        h = self.models["E"](x)
        return split_posterior(h)[0] if self.variational else h

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.models["G"](self.encode(x))

    def loss(self, models: dict[str, nn.Module], batch: Batch) -> dict[str, torch.Tensor]:
        E, G = models["E"], models["G"]
        m = self.cfg.method
        target = likelihood_target(G, batch.x, m.binarize)
        h = E(encoder_input(target, G))
        if self.variational:
            mu, logvar = split_posterior(h)
            z = reparameterize(mu, logvar)
            kl = gaussian_kl(mu.float(), logvar.float())
        else:
            z, kl = h, None
        params = G.params(z)
        recon_nll = -log_likelihood(G, params.float(), target.float())
        out = {"recon": recon_nll.mean()}
        loss = recon_nll.mean()
        if kl is not None:
            w = kl_weight(self.images_seen, m.beta, m.kl_warmup_kimg)
            out["kl"] = kl.mean()
            out["neg_elbo"] = (recon_nll + kl).mean().detach()
            loss = loss + w * kl.mean()
        if self._features is not None:
            self._features.to(batch.x.device)
            fx, fr = self._features(batch.x), self._features(G(z))
            out["perceptual"] = (fx - fr).pow(2).flatten(1).sum(1).mean()
            loss = loss + m.perceptual_weight * out["perceptual"]
        out["loss"] = loss
        return out

    @torch.no_grad()
    def preview(self, models: dict[str, nn.Module], real: torch.Tensor) -> torch.Tensor:
        """Originals and their reconstructions in alternating rows of 8 (the training-time grid)."""
        G, E = models["G"], models["E"]
        was = G.training, E.training
        G.eval()
        E.eval()
        h = E(real)
        recon = G(split_posterior(h)[0] if self.variational else h).float().cpu()
        G.train(was[0])
        E.train(was[1])
        rows = [t for i in range(0, len(real), 8) for t in (real[i:i + 8].float().cpu(), recon[i:i + 8])]
        return torch.cat(rows)


class VAEMethod(AutoencoderMethod):
    variational = True


def _perceptual_network(source: str, sample_shape) -> nn.Module:
    """The feature layers of ganforge's own classifier for the dataset, frozen."""
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

    name = DEFAULT_FOR_DATASET.get(source)
    if name is None or name == "inception":
        raise GanforgeError(f"method.perceptual_weight needs a ganforge classifier for {source}; there is one for "
                            "mnist and fashion-mnist (set method.perceptual_weight=0 otherwise)")
    fx = load_extractor(name)
    if tuple(sample_shape) != fx.spec.input_shape:
        raise GanforgeError(f"the {name} features read {fx.spec.input_shape} images, this run has "
                            f"{tuple(sample_shape)}; set method.perceptual_weight=0 or data.resolution=0")
    net = fx.net.eval()
    net.requires_grad_(False)
    return _Features(net)


class _Features(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.features(x.float())
