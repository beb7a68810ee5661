"""Method "stylegan": StyleGAN2 (Karras et al. 2020) on the shared loop, at CPU scale.

Networks in ``models/stylegan.py``. Each iteration, four phases:

    D       non-saturating BCE: softplus(-D(x)) + softplus(D(G(z)))      on a real batch and as many fakes
    D_r1    every 16 iterations: gamma/2 E ||grad_x D(x)||^2 (lazy R1; the loop multiplies it by 16)
    G       softplus(-D(G(z)))                                           non-saturating
    G_pl    every 4 iterations: path-length regularisation, weight 2 (the loop multiplies it by 4):
              for fakes y = g(ws) of half a batch and a random picture u ~ N(0, I) / sqrt(H W),
              a = || J_w^T u ||, the length of the gradient of <g(ws), u> w.r.t. each w, averaged
              over the L style inputs;  penalty E (a - a_bar)^2, a_bar the running mean of a (decay 0.01)

Fakes come with style mixing (probability ``method.mixing``, 0.9): two z's mapped to w1, w2, the
synthesis reads w1 for the style inputs before a random cut-off and w2 after it. With
``method.augment`` (off by default) D sees real and fake pictures through the same random
differentiable transforms (``data/augment.py``). Adam with betas (0, 0.99); the lazy phases'
optimizers get the paper's correction lr' = lr c, beta' = beta^c with c = k / (k + 1).
Sampling draws from the EMA copy of G with each layer's fixed noise picture; ``truncation`` is psi
in W: w' = w_avg + psi (w - w_avg).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from ganforge.config import MethodOptions, _opt
from ganforge.data import Batch
from ganforge.data.augment import augment, method_policy
from ganforge.errors import GanforgeError
from ganforge.health.signals import probe_output_gradient
from ganforge.losses.gan import GAMES, d_loss_bce, g_loss_ns, r1_penalty
from ganforge.methods.base import Carry, Method, OptimizerSpec, Phase
from ganforge.methods.gan import d_output_stats
from ganforge.methods.graphs import PICTURE_VALUES, GraphInput, SamplingGraph
from ganforge.models.stylegan import StyleDiscriminator, StyleGenerator

STYLE_MODEL_KEYS = ("z_dim", "w_dim", "mapping_layers", "g_width", "d_width", "demodulate")


@dataclass
class StyleGANOptions(MethodOptions):
    name: str = _opt("stylegan", "training method")
    lr: float = _opt(2e-3, "Adam learning rate of G and D (before the lazy-regularisation correction)",
                     min=0.0, max=1.0)
    beta2: float = _opt(0.99, "Adam beta2 (beta1 is 0)", min=0.0, max=1.0)
    r1_gamma: float = _opt(10.0, "gamma of the R1 penalty gamma/2 E||grad D(x)||^2 on real pictures (the paper: 10 "
                           "for FFHQ); 0 disables it",
                           min=0.0)
    r1_every: int = _opt(16, "apply R1 every this many iterations (lazy regularisation)", min=1, max=1000)
    pl_weight: float = _opt(2.0, "weight of the path-length regularisation; 0 disables it", min=0.0)
    pl_every: int = _opt(4, "apply path-length regularisation every this many iterations", min=1, max=1000)
    mixing: float = _opt(0.9, "probability that a batch of fakes mixes two styles at a random layer", min=0.0,
                         max=1.0)
    augment: str = _opt("", "differentiable augmentation of D's inputs, comma-separated: translation, cutout "
                        "(for small datasets; empty: none)")
    ema_halflife_kimg: float = _opt(10.0, "half-life of the generator EMA in thousands of images; 0 disables it",
                                    min=0.0)
    paper_keys = ("lr", "beta2", "r1_every", "pl_weight", "pl_every", "mixing")


def mapped_styles(G: StyleGenerator, n: int, device, mixing: float) -> torch.Tensor:
    """ws (n, L, W) for fresh z's; with probability ``mixing`` the inputs from a random cut-off on
    read the w of a second z (style-mixing regularisation)."""
    ws = G.broadcast(G.w(torch.randn(n, G.z_dim, device=device)))
    if mixing > 0 and float(torch.rand(())) < mixing:
        cut = int(torch.randint(1, G.n_styles, ()))
        second = G.broadcast(G.w(torch.randn(n, G.z_dim, device=device)))
        ws = torch.cat([ws[:, :cut], second[:, cut:]], 1)
    return ws


def discriminator_loss(models, batch: Batch, carry: Carry | None = None, *, mixing: float,
                       policy: tuple[str, ...]) -> dict[str, torch.Tensor]:
    G, D = models["G"], models["D"]
    with torch.no_grad():
        fake = G.synthesis(mapped_styles(G, len(batch), batch.x.device, mixing))
    real_out, fake_out = D(augment(batch.x, policy)), D(augment(fake, policy))
    out = d_loss_bce(real_out, fake_out)
    out.update(d_output_stats(GAMES["ns"], real_out, fake_out))
    return out


def r1_loss(models, batch: Batch, carry: Carry | None = None, *, r1_gamma: float,
            policy: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """gamma/2 R1 on real pictures (through the same augmentation D sees them with)."""
    real = batch.x.detach().requires_grad_(True)
    out = {"r1": r1_penalty(models["D"](augment(real, policy)), real)}
    out["loss"] = 0.5 * r1_gamma * out["r1"]
    return out


def generator_loss(models, batch: Batch, carry: Carry | None = None, *, mixing: float,
                   policy: tuple[str, ...]) -> dict[str, torch.Tensor]:
    G, D = models["G"], models["D"]
    fake = G.synthesis(mapped_styles(G, len(batch), batch.x.device, mixing))
    return {"loss": g_loss_ns(D(augment(fake, policy))), "G_out_grad": probe_output_gradient(fake)}


def path_length_loss(models, batch: Batch, carry: Carry | None = None, *, weight: float,
                     mixing: float) -> dict[str, torch.Tensor]:
    """weight x E (|J_w^T u| - a_bar)^2 on half a batch; moves G.pl_mean (a_bar) towards the batch mean."""
    G = models["G"]
    ws = mapped_styles(G, max(len(batch) // 2, 1), batch.x.device, mixing)
    fake = G.synthesis(ws)
    h, w = fake.shape[2:]
    u = torch.randn_like(fake) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((fake * u).sum(), ws, create_graph=True)  # (B, L, W)
    lengths = grad.float().square().sum(2).mean(1).sqrt()                  # (B,)
    with torch.no_grad():
        G.pl_mean.lerp_(lengths.mean(), 0.01)
    penalty = (lengths - G.pl_mean).square().mean()
    return {"loss": weight * penalty, "pl_penalty": penalty.detach(), "pl_length": lengths.mean().detach()}


class StyleGANMethod(Method):
    """StyleGAN2's G (mapping + synthesis) against its residual D, with lazy R1, path-length and
    style-mixing regularisation."""

    Options = StyleGANOptions
    model_keys = STYLE_MODEL_KEYS
    architecture = "StyleGAN2"
    preview_caption = "the same fixed z at every step, through the EMA generator"

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        self.require_pictures("draws")
        c, h, w = data.sample_shape
        if h != w or h < 8 or h & (h - 1):
            raise GanforgeError(f"StyleGAN draws square power-of-two pictures; these are {h}x{w} (set "
                                "data.resolution to 32 or 64)")
        self.policy = method_policy(self.options.augment)
        m = cfg.model
        G = StyleGenerator(m.z_dim, m.w_dim or m.z_dim, h, c, m.g_width, m.mapping_layers, demodulate=m.demodulate)
        self.models = {"G": G, "D": StyleDiscriminator(h, c, m.d_width)}

    def phases(self) -> list[Phase]:
        o = self.options
        phases = [Phase("D", "D", functools.partial(discriminator_loss, mixing=o.mixing, policy=self.policy))]
        if o.r1_gamma > 0:
            phases.append(Phase("D_r1", "D", functools.partial(r1_loss, r1_gamma=o.r1_gamma, policy=self.policy),
                                every=o.r1_every, double_backward=True))
        phases.append(Phase("G", "G", functools.partial(generator_loss, mixing=o.mixing, policy=self.policy),
                            needs_data=False))
        if o.pl_weight > 0:
            phases.append(Phase("G_pl", "G", functools.partial(path_length_loss, weight=o.pl_weight, mixing=o.mixing),
                                needs_data=False, every=o.pl_every, double_backward=True))
        return phases

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options

        def spec(every: int, regularised: bool) -> OptimizerSpec:
            c = every / (every + 1) if regularised else 1.0  # lazy regularisation's correction
            return OptimizerSpec(o.lr * c, (0.0, o.beta2 ** c), kind=o.optimizer, weight_decay=o.weight_decay,
                                 schedule=self.schedule())

        return {"D": spec(o.r1_every, o.r1_gamma > 0), "G": spec(o.pl_every, o.pl_weight > 0)}

    def critic(self):
        return self.models["D"], True

    def objective(self) -> str:
        o = self.options
        parts = ["loss ns", f"R1 {o.r1_gamma:g} every {o.r1_every}" if o.r1_gamma else "no R1",
                 f"path length {o.pl_weight:g} every {o.pl_every}" if o.pl_weight else "no path length",
                 f"mixing {o.mixing:g}"]
        if self.policy:
            parts.append("augment " + "+".join(self.policy))
        return ", ".join(parts)

    def example_inputs(self, n=2):
        return {"G": (torch.zeros(n, self.cfg.model.z_dim),), "D": (torch.zeros(n, *self.data.sample_shape),)}

    def export_graphs(self, ema=True):
        """generator: z (batch, z_dim), psi (batch,) and one noise picture per styled layer
        (noise_i: (batch, 1, r_i, r_i)) -> pictures. `ganforge sample` uses each layer's fixed noise
        picture, which the export writes to noise.safetensors."""
        G = self.exported("G", ema)
        noise = tuple(GraphInput(f"noise_{i}", ("batch", 1, layer.resolution, layer.resolution), "normal",
                                 about=f"layer {i}'s noise picture, scaled by its learned strength")
                      for i, layer in enumerate(G.synthesis.layers))
        inputs = (GraphInput("z", ("batch", G.z_dim), "normal"), GraphInput("psi", ("batch",), "psi"), *noise)
        return [SamplingGraph("generator", "sample", ExplicitNoise(G), inputs,
                              ("pictures", ("batch", *self.data.sample_shape), PICTURE_VALUES), {"batch": 2})]

    # -- sampling: truncation is psi in W ------------------------------------------------------

    def sampling_inputs(self, n, generator=None, *, label=None, truncation=None):
        self.check_label(label)
        if truncation is not None and not 0 <= truncation <= 2:
            raise GanforgeError(f"psi (truncation in W) must be between 0 and 2 (0.7 is usual), got {truncation}")
        z = torch.randn(n, self.cfg.model.z_dim, generator=generator)
        return {"z": z, "psi": torch.full((n,), 1.0 if truncation is None else float(truncation))}

    def inputs_for_latents(self, z, label=None):
        self.check_label(label)
        return {"z": z, "psi": torch.ones(len(z))}

    def forward_sampler(self, net, inputs):
        """Samples with each layer's fixed noise picture (as StyleGAN's generate.py does by
        default), so a seed gives the same picture every time."""
        return net(inputs["z"], psi=inputs["psi"], noise="const")


class ExplicitNoise(nn.Module):
    """G(z, psi, noise_0, ..., noise_{L-1}): the generator with every input explicit (for export)."""

    def __init__(self, G: StyleGenerator):
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, psi: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        return self.G(z, psi=psi, noise=list(noise))
