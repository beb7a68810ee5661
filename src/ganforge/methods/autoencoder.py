"""Methods "ae" and "vae": an encoder E and a decoder G trained together by one optimizer.

ae:  minimise  -log p(x | z = E(x))                  (binary cross-entropy, or the Gaussian NLL)
vae: minimise  -E_q[log p(x | z)] + w * KL(q(z|x) || N(0, I)),   q(z|x) = N(mu(x), sigma^2(x))

with w = beta after a linear KL warm-up (w = 1 gives the negative ELBO, logged as ``neg_elbo``
with w = 1 whatever the schedule). With ``method.iw_samples`` k > 1 the VAE minimises the
importance-weighted bound instead (IWAE, Burda et al. 2016):

    -L_k = -(logsumexp_i [log p(x | z_i) + w * (log p(z_i) - log q(z_i | x))] - log k),  z_i ~ q(z | x)

(the warm-up weight scales the prior-over-proposal ratio; w = 1 gives the bound, logged as
``neg_iw_bound``). With ``method.binarize`` every batch is binarised afresh
(pixel ~ Bernoulli(grey level)), the dynamically binarised MNIST of the likelihood literature.
All terms are per image in nats, averaged over the batch.

The decoder is the run's generator ("G"): ``ganforge sample`` decodes z ~ N(0, I) for a VAE. An
autoencoder has no prior to sample from; its sample grids during training show reconstructions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganforge.config import MethodOptions, _opt
from ganforge.data import Batch
from ganforge.errors import GanforgeError
from ganforge.losses.vae import (
    gaussian_kl,
    importance_weighted_bound,
    kl_weight,
    log_likelihood,
    posterior_log_density,
    reparameterize,
    split_posterior,
    standard_normal_log_density,
)
from ganforge.methods.base import Carry, Method, OptimizerSpec, Phase
from ganforge.methods.graphs import GraphInput, SamplingGraph, latent_graph
from ganforge.models.autoencoder import build_autoencoder

AE_MODEL_KEYS = ("arch", "z_dim", "ae_width", "ae_depth", "likelihood")


@dataclass
class AEOptions(MethodOptions):
    name: str = _opt("ae", "training method")
    lr: float = _opt(1e-3, "Adam learning rate of encoder and decoder", min=0.0, max=1.0)
    binarize: bool = _opt(False, "with a bernoulli decoder: train on dynamically binarised images (each pixel "
                          "drawn as 0/1 with its grey level as probability, afresh every batch)")
    perceptual_weight: float = _opt(0.0, "add this weight x squared distance between the dataset classifier's "
                                    "features of input and reconstruction", min=0.0)


@dataclass
class VAEOptions(AEOptions):
    name: str = _opt("vae", "training method")
    beta: float = _opt(1.0, "weight of the KL term (beta-VAE; 1 gives the ELBO)", min=0.0)
    kl_warmup_kimg: float = _opt(0.0, "ramp the KL weight from 0 to beta over this many thousand images", min=0.0)
    iw_samples: int = _opt(1, "samples of q(z|x) per image: 1 trains on the ELBO, k > 1 on the importance-weighted "
                           "bound L_k (IWAE; k decoder passes per image)", min=1, max=5000)


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

    Options = AEOptions
    model_keys = AE_MODEL_KEYS
    preview_caption = "the same real images (odd rows) and their reconstructions (even rows) at every step"
    variational = False

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        sample_shape = tuple(data.sample_shape)
        E, G = build_autoencoder(cfg.model, sample_shape, data.is_image, self.variational)
        self.models = {"E": E, "G": G}
        self._features = None
        if cfg.method.perceptual_weight > 0:
            if getattr(cfg.method, "iw_samples", 1) > 1:
                raise GanforgeError("method.perceptual_weight works with the ELBO only; set method.iw_samples=1 "
                                    "or method.perceptual_weight=0")
            self._features = _perceptual_network(cfg.data.source, sample_shape)

    def fixed_networks(self) -> dict[str, nn.Module]:
        return {"features": self._features} if self._features is not None else {}

    @property
    def has_prior(self) -> bool:
        return self.variational

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options
        return {"AE": OptimizerSpec(o.lr, (0.9, 0.999), networks=("E", "G"), kind=o.optimizer,
                                    weight_decay=o.weight_decay, schedule=self.schedule())}

    def objective(self) -> str:
        beta = f", beta {self.options.beta:g}" if self.variational else ""
        k = getattr(self.options, "iw_samples", 1)
        bound = f", IWAE bound k={k}" if self.variational and k > 1 else ""
        return f"{self.models['G'].likelihood} decoder{beta}{bound}"

    def example_inputs(self, n=2):
        return {"E": (torch.zeros(n, *self.data.sample_shape),), "G": (torch.zeros(n, self.models["G"].z_dim),)}

    @property
    def encoder(self) -> nn.Module:
        return self.models["E"]

    @property
    def decoder(self) -> nn.Module:
        """The trained decoder p(x | z) (sampling uses its EMA copy when the run keeps one)."""
        return self.models["G"]

    def phases(self) -> list[Phase]:
        return [Phase("AE", "AE", self.loss)]

    def export_graphs(self, ema=True):
        """decoder: codes z (batch, z_dim) -> pictures (a VAE's codes are drawn from its prior N(0, I));
        encoder: pictures -> codes (a VAE's posterior mean mu)."""
        shape = tuple(self.data.sample_shape)
        about = "" if self.variational else "codes as the encoder gives them (an autoencoder has no prior)"
        decoder = latent_graph("decoder", self.exported("G", ema), self.z_dim, shape, True,
                               role="sample" if self.variational else "decode", about=about)
        encoder = SamplingGraph("encoder", "encode", CodeOf(self.models["E"], self.variational),
                                (GraphInput("input", ("batch", *shape), "picture"),),
                                ("z", ("batch", self.z_dim), "codes (the posterior mean for a VAE)"), {"batch": 2})
        return [decoder, encoder]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of images in [-1, 1]: z for ae, the posterior mean mu for vae."""
        return CodeOf(self.models["E"], self.variational)(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.models["G"](self.encode(x))

    def loss(self, models: dict[str, nn.Module], batch: Batch, carry: Carry | None = None) -> dict[str, torch.Tensor]:
        E, G = models["E"], models["G"]
        m = self.options
        target = likelihood_target(G, batch.x, m.binarize)
        h = E(encoder_input(target, G))
        if self.variational and m.iw_samples > 1:
            return self.importance_weighted_loss(G, h, target)
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
            w = kl_weight(self.images_seen, m.beta, m.kl_warmup_kimg)  # images_seen: set by the loop
            out["kl"] = kl.mean()
            out["neg_elbo"] = (recon_nll + kl).mean().detach()
            loss = loss + w * kl.mean()
        if self._features is not None:
            fx, fr = self._features(batch.x), self._features(G(z))
            out["perceptual"] = (fx - fr).pow(2).flatten(1).sum(1).mean()
            loss = loss + m.perceptual_weight * out["perceptual"]
        out["loss"] = loss
        return out

    def importance_weighted_loss(self, G: nn.Module, h: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """IWAE: minus the bound L_k of k samples per image (k = method.iw_samples), the KL warm-up
        weight scaling log p(z) - log q(z | x). Logged: the single-sample terms averaged over the
        k draws (recon, kl, neg_elbo) and neg_iw_bound (w = 1)."""
        m = self.options
        mu, logvar = split_posterior(h)                                   # (N, z_dim) each
        eps = torch.randn(m.iw_samples, *mu.shape, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps                            # (k, N, z_dim)
        log_ratio = (standard_normal_log_density(z.float())
                     - posterior_log_density(eps.float(), logvar.float()))   # log p(z) - log q(z|x): (k, N)
        params = G.params(z.flatten(0, 1))                                # (k N, ...)
        repeated = target.float().expand(m.iw_samples, *target.shape).flatten(0, 1)
        log_px_z = log_likelihood(G, params.float(), repeated).view(m.iw_samples, -1)   # (k, N)
        w = kl_weight(self.images_seen, m.beta, m.kl_warmup_kimg)
        bound = importance_weighted_bound(log_px_z + w * log_ratio)
        return {"loss": -bound.mean(), "recon": -log_px_z.mean(), "kl": -log_ratio.mean(),
                "neg_elbo": -(log_px_z + log_ratio).mean().detach(),
                "neg_iw_bound": -importance_weighted_bound(log_px_z + log_ratio).mean().detach()}

    def preview_inputs(self, dataset, seed, n):
        return reconstruction_preview_inputs(dataset, seed)

    @torch.no_grad()
    def preview(self, inputs: dict[str, torch.Tensor], device) -> torch.Tensor:
        """Originals and their reconstructions in alternating rows of 8 (the training-time grid)."""
        G, E = self.models["G"], self.models["E"]
        real = inputs["x"].to(device)
        was = G.training, E.training
        G.eval()
        E.eval()
        recon = G(CodeOf(E, self.variational)(real)).float().cpu()
        G.train(was[0])
        E.train(was[1])
        return alternate_rows(real.float().cpu(), recon)


class CodeOf(nn.Module):
    """Pictures -> codes: the encoder's output, or the posterior mean mu of a VAE's."""

    def __init__(self, encoder: nn.Module, variational: bool):
        super().__init__()
        self.encoder, self.variational = encoder, variational

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return split_posterior(h)[0] if self.variational else h


def reconstruction_preview_inputs(dataset, seed: int) -> tuple[dict[str, torch.Tensor], int]:
    """32 fixed real images (seeded pick) for grids that show them and their reconstructions."""
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed + 2))[:32]
    return {"x": dataset.x[pick].float() / 127.5 - 1}, 8


def alternate_rows(real: torch.Tensor, recon: torch.Tensor, per_row: int = 8) -> torch.Tensor:
    """Originals and their reconstructions in alternating rows of ``per_row``."""
    return torch.cat([t for i in range(0, len(real), per_row) for t in (real[i:i + per_row], recon[i:i + per_row])])


class VAEMethod(AutoencoderMethod):
    Options = VAEOptions
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
