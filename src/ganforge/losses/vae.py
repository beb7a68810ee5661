"""Pure loss functions for autoencoders and VAEs. Every value is per sample, in nats.

Notation: x (N, C, H, W); for a Bernoulli decoder the targets are in {0, 1} (or [0, 1]) and the
decoder gives logits l; for a Gaussian decoder the targets are in [-1, 1], the decoder gives the
mean m and one learned log sigma for all pixels. The encoder gives mu, log sigma^2 of
q(z | x) = N(mu, diag sigma^2); the prior is p(z) = N(0, I).

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))   <= log p(x)
    KL      = 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)

With k samples z_i ~ q(z | x) and log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x):

    L_k(x)  = E[logsumexp_i log w_i - log k]   (Burda et al.'s importance-weighted bound)

ELBO = L_1 <= L_k <= L_{k+1} <= log p(x): training on L_k (IWAE) lets q be a proposal rather than
the posterior itself, and tightens the bound the model is trained to raise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample: (N, z_dim) -> (N,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)


def bernoulli_log_likelihood(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log p(x | z) = sum_pixels x log sigmoid(l) + (1 - x) log(1 - sigmoid(l)): (N, ...) -> (N,)."""
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


def gaussian_log_likelihood(mean: torch.Tensor, target: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(x; m, sigma^2 I) = sum_pixels -((x - m)^2 / (2 sigma^2)) - log sigma - log(2 pi)/2."""
    sq = (target - mean).pow(2).flatten(1)
    return (-0.5 * sq * torch.exp(-2 * log_sigma) - log_sigma - 0.5 * LOG_2PI).sum(1)


def log_likelihood(decoder, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log p(x | z) per sample for the decoder's likelihood, from its raw output ``params``."""
    if decoder.likelihood == "bernoulli":
        return bernoulli_log_likelihood(params, target)
    return gaussian_log_likelihood(params, target, decoder.log_sigma)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension: (..., z_dim) -> (...)."""
    return (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)


def posterior_log_density(eps: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z | x) of z = mu + sigma * eps, from the noise that drew it: sum_j log N(eps_j; 0, 1)
    - log sigma_j. (..., z_dim) -> (...); ``logvar`` broadcasts against ``eps``."""
    return (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)


def importance_weighted_bound(log_w: torch.Tensor) -> torch.Tensor:
    """L_k = logsumexp_i log w_i - log k over the first dimension: (k, N) -> (N,). k = 1 gives the
    ELBO's single-sample estimate log w_1."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


def split_posterior(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder output (N, 2 z_dim) as mu, log sigma^2 (log variance clamped to [-12, 8] so a
    stray encoder output cannot overflow exp)."""
    mu, logvar = h.chunk(2, dim=1)
    return mu, logvar.clamp(-12.0, 8.0)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a sample of q(z | x) that gradients flow through."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_weight(images_seen: float, beta: float, warmup_kimg: float) -> float:
    """beta, ramped linearly from 0 over the first ``warmup_kimg`` thousand images (KL warm-up)."""
    if warmup_kimg <= 0:
        return beta
    return beta * min(1.0, images_seen / (1000 * warmup_kimg))


@torch.no_grad()
def importance_sampled_log_likelihood(encoder, decoder, target: torch.Tensor, x_in: torch.Tensor, k: int,
                                      chunk: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x) per image, estimated with k importance samples from q(z | x) (Burda et al. 2016):

        log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x),   z_i ~ q(z | x)
        log p(x) ~= logsumexp_i log w_i - log k,   ELBO ~= mean_i log w_i

    The first is a lower bound in expectation that tightens as k grows (k = 1 gives the ELBO).
    ``x_in`` is what the encoder reads, ``target`` what the likelihood scores. Returns
    (log p(x), ELBO), each (N,) in nats.
    """
    mu, logvar = split_posterior(encoder(x_in))
    std = torch.exp(0.5 * logvar)
    log_px, elbo = [], []
    for i in range(len(target)):
        weights = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            eps = torch.randn(n, mu.shape[1], device=mu.device)
            z = mu[i] + std[i] * eps
            params = decoder.params(z)
            log_px_z = log_likelihood(decoder, params, target[i:i + 1].expand(n, *target.shape[1:]))
            weights.append(log_px_z + standard_normal_log_density(z) - posterior_log_density(eps, logvar[i]))
        w = torch.cat(weights).double()
        log_px.append(importance_weighted_bound(w))
        elbo.append(w.mean())
    return torch.stack(log_px), torch.stack(elbo)
