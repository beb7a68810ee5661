"""Class-conditional wrappers around any registered generator/discriminator pair.

Generator: the label's embedding is joined to z, G(z, y) = G_base([z, e_y])
    z (B, z_dim), y (B,) -> [z, e_y] (B, z_dim + embed_dim) -> image (B, C, H, W)

Discriminator, two options:
- projection (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + <e_y, sum_hw phi(x)>, where phi is the
  base discriminator without its last layer and psi that last layer;
- acgan (Odena et al. 2017): D(x) = psi(phi(x)) as before, plus an auxiliary classifier
  c(x) = W sum_hw phi(x) that predicts the class (returned by ``classify``).

Fake labels are drawn uniformly (``draw_labels``); :class:`WeightedConditionalGenerator` draws
them with the frequencies of its training labels instead (method selfcond, whose k-means clusters
differ in size).

InfoGAN (Chen et al. 2016) uses the same generator with an unsupervised categorical code c in
place of the label, and :class:`CodeDiscriminator`: D(x) = psi(phi(x)) ignores the code, and a
head Q on the same features phi(x) reads the code back, Q(c|x) = softmax(q(phi(x))).
"""

from __future__ import annotations

import torch
from torch import nn


class ConditionalGenerator(nn.Module):
    """G(z, y) = base([noise_scale * z, e_y]): the label's learned embedding e_y (embed_dim,)
    joined to the noise z (z_dim,). ``noise_scale`` sigma < 1 draws the effective noise from
    N(0, sigma^2 I) while callers keep drawing z ~ N(0, I); it is not a weight, it comes from the
    config."""

    def __init__(self, base: nn.Module, z_dim: int, n_classes: int, embed_dim: int, noise_scale: float = 1.0):
        super().__init__()
        self.base, self.z_dim, self.n_classes = base, z_dim, n_classes
        self.noise_scale = float(noise_scale)
        self.out_shape = getattr(base, "out_shape", None)
        self.embed = nn.Embedding(n_classes, embed_dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.noise_scale != 1.0:
            z = z * self.noise_scale
        return self.base(torch.cat([z, self.embed(y).to(z.dtype)], 1))

    def draw_labels(self, n: int, device) -> torch.Tensor:
        """Labels (n,) for a batch of fakes: uniform over the classes (global RNG)."""
        return torch.randint(self.n_classes, (n,), device=device)


class WeightedConditionalGenerator(ConditionalGenerator):
    """A conditional generator whose fake labels follow ``label_weights`` (n_classes,), a buffer
    saved with the weights (the share of each label in the training data), so that samples come
    in the data's proportions."""

    def __init__(self, base: nn.Module, z_dim: int, n_classes: int, embed_dim: int, noise_scale: float = 1.0):
        super().__init__(base, z_dim, n_classes, embed_dim, noise_scale)
        self.register_buffer("label_weights", torch.full((n_classes,), 1.0 / n_classes))

    def draw_labels(self, n: int, device) -> torch.Tensor:
        return torch.multinomial(self.label_weights.float(), n, replacement=True).to(device)


def _split(base: nn.Module) -> tuple[nn.Module, nn.Module, int]:
    """(body phi, head psi, feature channels) of a base discriminator whose ``net`` is a Sequential."""
    layers = list(base.net)
    head = layers[-1]
    channels = head.in_channels if isinstance(head, nn.Conv2d) else head.in_features
    return nn.Sequential(*layers[:-1]), head, channels


class ConditionalDiscriminator(nn.Module):
    def __init__(self, base: nn.Module, n_classes: int, mode: str = "projection"):
        super().__init__()
        self.body, self.head, channels = _split(base)
        self.n_classes, self.mode = n_classes, mode
        if mode == "projection":
            self.embed = nn.Embedding(n_classes, channels)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        else:
            self.aux = nn.Linear(channels, n_classes)

    def _features(self, x):
        h = self.body(x)
        pooled = h.flatten(2).sum(2) if h.ndim == 4 else h  # (B, channels)
        return h, pooled

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, pooled = self._features(x)
        out = self.head(h).flatten()
        if self.mode == "projection":
            out = out + (self.embed(y).to(pooled.dtype) * pooled).sum(1)
        return out

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """AC-GAN class logits (B, n_classes)."""
        return self.aux(self._features(x)[1])


class CodeDiscriminator(nn.Module):
    """InfoGAN's D and Q sharing one body: ``forward(x)`` is D's output (B,), ``judge(x)`` gives it
    with Q's reading of the picture from a single pass: the code logits (B, n_codes), then, with
    ``n_noise`` = z_dim, an estimate of the noise z (ClusterGAN's encoder).

    q has the geometry of D's last layer with ``hidden`` outputs, then LeakyReLU and a linear
    layer to the codes (the paper's Q: one hidden layer of 128 on D's shared features):
        phi(x) (B, C, s, s) -> conv s x s -> (B, hidden) -> LeakyReLU -> (B, n_codes + n_noise)
    """

    mode = "info"

    def __init__(self, base: nn.Module, n_codes: int, hidden: int = 128, n_noise: int = 0):
        super().__init__()
        self.body, self.head, channels = _split(base)
        self.n_codes, self.n_noise = n_codes, n_noise
        if isinstance(self.head, nn.Conv2d):
            first = nn.Conv2d(channels, hidden, self.head.kernel_size, self.head.stride, self.head.padding)
        else:
            first = nn.Linear(channels, hidden)
        self.q = nn.Sequential(first, nn.Flatten(), nn.LeakyReLU(0.2), nn.Linear(hidden, n_codes + n_noise))

    def judge(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(D's output (B,), Q's output (B, n_codes + n_noise): code logits, then noise estimate)."""
        h = self.body(x)
        return self.head(h).flatten(), self.q(h)

    def forward(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        """D's output (B,); ``code`` is accepted and ignored (D judges realism alone)."""
        return self.head(self.body(x)).flatten()
