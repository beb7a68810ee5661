"""Method "infogan": an unconditional GAN whose generator also reads a categorical code that an
auxiliary head must recover from the picture (Chen et al. 2016).

G(z, c) with c ~ Uniform{0..K-1} (method.codes = K) joined to z as an embedding, exactly as
cgan joins a label; D(x) judges realism alone and never sees c or a dataset label; Q(c|x) shares
D's body (models.conditional.CodeDiscriminator). Both players add lambda * L_I, the cross-entropy
of Q on the fakes' codes (losses.gan.info_loss): minimising it maximises the lower bound
log K - L_I on the mutual information I(c; G(z, c)). To keep c readable G must make K
distinguishable kinds of picture, and on MNIST these become the digits without a label being
seen: the code splits the data into separate modes, so G no longer has to bend one connected
latent space over ten disconnected digit manifolds (the blends between digits are what an
unconditional G draws in the gaps).

ClusterGAN's two changes (Mukherjee et al. 2019) are options: ``noise_scale`` sigma shrinks the
noise beside the code (G reads [sigma z, e_c]), so that the code rather than z decides the mode,
and ``noise_weight`` beta_n makes Q also estimate z (losses.gan.noise_recovery_loss), so that G
cannot ignore it. The paper's InfoGAN has sigma 1 and beta_n 0.

Everything else is the GAN assembly of methods.gan: the games, k D-steps, R1, reuse_fakes, EMA.
A code plays the part of a class for sampling (`ganforge sample --class K` draws code K; the
grid shows one row per code), but evaluation does not compare codes with classes directly:
it maps each code to the class the classifier reads most often and reports that purity.
"""

from __future__ import annotations

from dataclasses import dataclass

from ganforge.config import _opt
from ganforge.methods.gan import (
    GAN_MODEL_KEYS,
    ConditionalGANMethod,
    GANMethod,
    GANOptions,
    base_networks_for_embedding,
)
from ganforge.models.conditional import CodeDiscriminator, ConditionalGenerator


@dataclass
class InfoGANOptions(GANOptions):
    name: str = _opt("infogan", "training method")
    codes: int = _opt(10, "K, the number of values of the categorical code c (10 for the MNIST digits)",
                      min=2, max=1000)
    info_weight: float = _opt(1.0, "lambda, the weight of the code cross-entropy L_I for both players (the "
                              "paper's 1 for a categorical code)", min=0.0)
    noise_scale: float = _opt(1.0, "sigma of G's noise beside the code, z ~ N(0, sigma^2 I) (the paper: 1; "
                              "ClusterGAN, Mukherjee et al. 2019: 0.1, so that the code rather than z decides "
                              "which mode a sample lands in)", min=0.001, max=10.0)
    noise_weight: float = _opt(0.0, "beta_n, the weight of a noise-recovery term for both players: Q also "
                               "estimates G's noise z and the squared error counts (ClusterGAN's encoder; "
                               "0: the paper's InfoGAN, Q reads the code only)", min=0.0)


class InfoGANMethod(ConditionalGANMethod):
    """G(z, c) against D(x), with Q(c | x) on D's features asking for the code back."""

    Options = InfoGANOptions
    model_keys = GAN_MODEL_KEYS + ("embed_dim",)
    preview_caption = "the same fixed noise at every step, one row per code"
    labels_are_classes = False
    label_word = "code"
    label_about = "the categorical code of each picture (InfoGAN's own, not a dataset class)"

    def build_networks(self, model_cfg, data):
        k = self.options.codes
        G, D = base_networks_for_embedding(model_cfg, data)
        G = ConditionalGenerator(G, model_cfg.z_dim, k, model_cfg.embed_dim, self.options.noise_scale)
        n_noise = model_cfg.z_dim if self.options.noise_weight > 0 else 0
        return G, CodeDiscriminator(D, k, n_noise=n_noise)

    def critic(self):
        return GANMethod.critic(self)  # D ignores the code: one surface over the plane

    def objective(self) -> str:
        o = self.options
        noise = f", noise sigma {o.noise_scale:g}" if o.noise_scale != 1 else ""
        noise += f", beta_n {o.noise_weight:g}" if o.noise_weight > 0 else ""
        return f"{super().objective()}, {o.codes} codes, lambda_I {o.info_weight:g}{noise}"
