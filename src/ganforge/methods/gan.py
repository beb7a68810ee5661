"""Methods "gan", "wgan-gp", "wgan" and "cgan": the adversarial game in its common forms.

Each iteration: k discriminator (critic) steps, each on a fresh real batch and fresh noise, then
one generator step. ``method.loss`` picks the game, a record in ``losses.gan.GAMES``: ns / mm
(binary cross-entropy with the non-saturating or saturating generator loss), hinge, lsgan (least
squares), wgan (Wasserstein) or rsgan (relativistic). "wgan-gp" is the Wasserstein game with the
gradient penalty (Gulrajani et al. 2017); "wgan" the original with weight clipping (Arjovsky et
al. 2017); their paper settings are their options' defaults.

"cgan" is the class-conditional GAN (Mirza & Osindero 2014) with a projection discriminator
(Miyato & Koyama 2018) or an auxiliary classifier (AC-GAN, Odena et al. 2017). It uses the same
loss assembly: fakes get labels drawn uniformly, real batches bring their own, and R1, the
gradient penalty and clipping work as for the unconditional game. With AC-GAN both players also
minimise the auxiliary cross-entropy (weighted by method.acgan_weight).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.config import MethodOptions, _opt
from ganforge.data import Batch
from ganforge.errors import GanforgeError
from ganforge.health.signals import d_accuracy, probe_output_gradient
from ganforge.losses.gan import (
    GAMES,
    Game,
    clip_weights,
    gradient_penalty,
    info_loss,
    noise_recovery_loss,
    r1_penalty,
)
from ganforge.methods.base import Carry, Method, OptimizerSpec, Phase
from ganforge.methods.graphs import GraphInput
from ganforge.models import build_models
from ganforge.models.conditional import ConditionalDiscriminator, ConditionalGenerator
from ganforge.models.packing import PackedDiscriminator, packed_shape

GAN_MODEL_KEYS = ("arch", "z_dim", "g_width", "d_width", "g_depth", "d_depth", "d_norm", "minibatch_std",
                  "g_extra_layers", "d_extra_layers", "spectral_norm")


@dataclass
class GANOptions(MethodOptions):
    name: str = _opt("gan", "training method")
    loss: str = _opt("ns", "the game: " + "; ".join(f"{g.name} ({g.description})" for g in GAMES.values()),
                     choices=list(GAMES))
    d_steps: int = _opt(1, "discriminator steps per generator step (k)", min=1, max=100)
    lr_g: float = _opt(2e-4, "generator learning rate", min=0.0, max=1.0)
    lr_d: float = _opt(2e-4, "discriminator learning rate", min=0.0, max=1.0)
    beta1: float = _opt(0.5, "Adam beta1", min=0.0, max=1.0)
    beta2: float = _opt(0.999, "Adam beta2", min=0.0, max=1.0)
    r1_gamma: float = _opt(0.0, "weight of the R1 penalty gamma/2 * E||grad D(x)||^2 on real data; 0 disables it",
                           min=0.0)
    r1_every: int = _opt(1, "apply R1 every this many iterations as its own phase, scaled up to match (lazy "
                         "regularisation; StyleGAN2 uses 16); 1 adds it to every D step", min=1, max=1000)
    gp_weight: float = _opt(0.0, "lambda of the WGAN-GP gradient penalty E(||grad D(x_hat)|| - 1)^2 on "
                            "interpolates; 0 disables it", min=0.0)
    clip: float = _opt(0.0, "clip every critic weight to [-c, c] after each D step (the original WGAN); 0 disables it",
                       min=0.0)
    reuse_fakes: bool = _opt(False, "G's step trains through the fakes of the iteration's last D step instead of "
                             "drawing fresh noise: one generator forward less per iteration (the PyTorch DCGAN "
                             "example's order); G's forward graph is kept from the D step")
    pack: int = _opt(1, "PacGAN: D judges this many samples at once, joined along channels (1: one at a time; "
                     "the paper's 2-4 penalise mode collapse); train.batch_size must divide by it",
                     min=1, max=16)


@dataclass
class WassersteinOptions(GANOptions):
    """What WGAN and WGAN-GP share: the Wasserstein game, 5 critic steps, Adam(beta1 0, beta2 0.9)."""

    loss: str = _opt("wgan", "the game (a Wasserstein method plays wgan)", choices=list(GAMES))
    d_steps: int = _opt(5, "critic steps per generator step (n_critic)", min=1, max=100)
    beta1: float = _opt(0.0, "Adam beta1", min=0.0, max=1.0)
    beta2: float = _opt(0.9, "Adam beta2", min=0.0, max=1.0)

    def __post_init__(self):
        if self.loss != "wgan":
            raise GanforgeError(f"method {self.name} plays the wgan game; remove method.loss={self.loss} or use "
                                "method.name=gan")


@dataclass
class WGANGPOptions(WassersteinOptions):
    """Gulrajani et al. 2017: Adam(1e-4, 0, 0.9), lambda 10."""

    name: str = _opt("wgan-gp", "training method")
    lr_g: float = _opt(1e-4, "generator learning rate", min=0.0, max=1.0)
    lr_d: float = _opt(1e-4, "critic learning rate", min=0.0, max=1.0)
    gp_weight: float = _opt(10.0, "lambda of the gradient penalty", min=0.0)
    paper_keys = ("loss", "d_steps", "lr_g", "lr_d", "beta1", "beta2", "gp_weight")


@dataclass
class WGANOptions(WassersteinOptions):
    """Arjovsky et al. 2017 (lr 5e-5, c = 0.01; the paper used RMSProp, ganforge Adam(0, 0.9))."""

    name: str = _opt("wgan", "training method")
    lr_g: float = _opt(5e-5, "generator learning rate", min=0.0, max=1.0)
    lr_d: float = _opt(5e-5, "critic learning rate", min=0.0, max=1.0)
    clip: float = _opt(0.01, "weight clipping bound c for the critic", min=0.0)
    paper_keys = ("loss", "d_steps", "lr_g", "lr_d", "beta1", "beta2", "clip")


@dataclass
class CGANOptions(GANOptions):
    name: str = _opt("cgan", "training method")
    acgan_weight: float = _opt(1.0, "model.cond_d=acgan: weight of the auxiliary classification loss", min=0.0)


# ---------------------------------------------------------------------------------------------
# The loss assembly, shared by the unconditional and the conditional game. A conditional
# generator has ``n_classes``; then fakes get labels from G.draw_labels and D reads (image, label).

def draw_fake_inputs(G, n: int, device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z (n, z_dim), labels (n,) for a conditional G, else None)."""
    y = G.draw_labels(n, device) if getattr(G, "n_classes", 0) else None
    return torch.randn(n, G.z_dim, device=device), y


def run_generator(G, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return G(z) if y is None else G(z, y)


def run_discriminator(D, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return D(x) if y is None else D(x, y)


def real_labels(D, batch: Batch) -> torch.Tensor | None:
    return batch.y if getattr(D, "n_classes", 0) else None


def judge_fakes(D, fake: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(D's output on the fakes (B,), InfoGAN's code logits (B, K) from the same pass, else None)."""
    if getattr(D, "mode", None) == "info":
        return D.judge(fake)
    return run_discriminator(D, fake, y), None


def add_info_terms(out: dict, q_out: torch.Tensor, codes: torch.Tensor, z: torch.Tensor, D, *,
                   info_weight: float, noise_weight: float) -> None:
    """InfoGAN's lambda * L_I on Q's code logits (the first n_codes of ``q_out``) and, where Q
    also estimates the noise, noise_weight * the noise's mean squared error; added to out["loss"]
    and logged as "info" and "noise"."""
    out["info"] = info_loss(q_out[:, :D.n_codes], codes)
    out["loss"] = out["loss"] + info_weight * out["info"]
    if D.n_noise:
        out["noise"] = noise_recovery_loss(q_out[:, D.n_codes:], z)
        out["loss"] = out["loss"] + noise_weight * out["noise"]


def d_output_stats(game: Game, real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean D(x) and D(G(z)): probabilities for the games whose D output is a logit (D_x, D_G_z), raw
    outputs for the others (D_out_real, D_out_fake); plus D's accuracy on real and fake."""
    real_out, fake_out = real_out.detach().float(), fake_out.detach().float()
    acc = d_accuracy(game.threshold, real_out, fake_out)
    if game.probabilistic:
        return {"D_x": torch.sigmoid(real_out).mean(), "D_G_z": torch.sigmoid(fake_out).mean(), **acc}
    return {"D_out_real": real_out.mean(), "D_out_fake": fake_out.mean(), **acc}


def discriminator_loss(models, batch: Batch, carry: Carry | None = None, *, game: Game, r1_gamma: float = 0.0,
                       gp_weight: float = 0.0, acgan_weight: float = 0.0, info_weight: float = 0.0,
                       noise_weight: float = 0.0, hand_on_fakes: bool = False) -> dict[str, torch.Tensor]:
    """D's loss on a real batch and as many fakes, plus the optional penalties gamma/2 * R1,
    lambda * GP, the AC-GAN auxiliary cross-entropy and InfoGAN's code cross-entropy L_I (Q reads
    the fakes' codes back; logged with Q's accuracy Q_acc) with the noise-recovery term. With
    ``hand_on_fakes`` the fakes are made with G's graph (the phase keeps it) and returned under
    "handed_fake" (their noise under "handed_fake_z", and their labels under "handed_fake_y" for a
    conditional G) for the G step; D itself sees them detached."""
    G, D = models["G"], models["D"]
    y_real = real_labels(D, batch)
    z, y_fake = draw_fake_inputs(G, len(batch), batch.x.device)
    handed = {}
    if hand_on_fakes:
        handed["handed_fake"], handed["handed_fake_z"] = run_generator(G, z, y_fake), z
        if y_fake is not None:
            handed["handed_fake_y"] = y_fake
        fake = handed["handed_fake"].detach()
    else:
        with torch.no_grad():
            fake = run_generator(G, z, y_fake)
    real = batch.x.detach().requires_grad_(r1_gamma > 0)
    real_out = run_discriminator(D, real, y_real)
    fake_out, code_logits = judge_fakes(D, fake, y_fake)
    out = game.d_loss(real_out, fake_out)
    if r1_gamma > 0:
        out["r1"] = r1_penalty(real_out, real)
        out["loss"] = out["loss"] + 0.5 * r1_gamma * out["r1"]
    if gp_weight > 0:  # interpolates carry the real batch's labels for a conditional critic
        out["gp"] = gradient_penalty(lambda x: run_discriminator(D, x, y_real), batch.x, fake)
        out["loss"] = out["loss"] + gp_weight * out["gp"]
    if getattr(D, "mode", None) == "acgan":
        out["aux"] = F.cross_entropy(D.classify(batch.x), batch.y) + F.cross_entropy(D.classify(fake), y_fake)
        out["loss"] = out["loss"] + acgan_weight * out["aux"]
    if code_logits is not None:
        add_info_terms(out, code_logits, y_fake, z, D, info_weight=info_weight, noise_weight=noise_weight)
        out["Q_acc"] = (code_logits[:, :D.n_codes].detach().argmax(1) == y_fake).float().mean()
    out.update(d_output_stats(game, real_out, fake_out))
    out.update(handed)
    return out


def r1_loss(models, batch: Batch, carry: Carry | None = None, *, r1_gamma: float) -> dict[str, torch.Tensor]:
    """gamma/2 * R1 on its own (lazy regularisation; the loop scales it by the phase's interval)."""
    D = models["D"]
    real = batch.x.detach().requires_grad_(True)
    out = {"r1": r1_penalty(run_discriminator(D, real, real_labels(D, batch)), real)}
    out["loss"] = 0.5 * r1_gamma * out["r1"]
    return out


def generator_loss(models, batch: Batch, carry: Carry | None = None, *, game: Game,
                   acgan_weight: float = 0.0, info_weight: float = 0.0,
                   noise_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """G's loss on a fresh batch of fakes (or on the fakes the D step handed on in ``carry``) plus
    the AC-GAN or InfoGAN term that asks for the fakes' class or code to be read back, and
    G_out_grad, the per-sample gradient that reaches G's output through D (filled by backward).
    ``batch`` gives size and device, and the real samples a relativistic game compares the fakes
    with."""
    G, D = models["G"], models["D"]
    if carry and "handed_fake" in carry:  # made by the last D step, G's graph attached (method.reuse_fakes)
        fake, y, z = carry["handed_fake"], carry.get("handed_fake_y"), carry.get("handed_fake_z")
    else:
        z, y = draw_fake_inputs(G, len(batch), batch.x.device)
        fake = run_generator(G, z, y)
    fake_out, code_logits = judge_fakes(D, fake, y)
    real_out = run_discriminator(D, batch.x, real_labels(D, batch)) if game.g_uses_real else None
    out = {"loss": game.g_loss(real_out, fake_out), "G_out_grad": probe_output_gradient(fake)}
    if getattr(D, "mode", None) == "acgan":
        out["aux"] = F.cross_entropy(D.classify(fake), y)
        out["loss"] = out["loss"] + acgan_weight * out["aux"]
    if code_logits is not None:
        add_info_terms(out, code_logits, y, z, D, info_weight=info_weight, noise_weight=noise_weight)
    return out


class GANMethod(Method):
    """G(z) against D(x) under one of the games."""

    Options = GANOptions
    model_keys = GAN_MODEL_KEYS

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        o = self.options
        self.game = GAMES[o.loss]
        if cfg.train.batch_size % o.pack:
            raise GanforgeError(f"train.batch_size {cfg.train.batch_size} does not divide into packs of "
                                f"method.pack={o.pack}; use a multiple of {o.pack}")
        self.models = dict(zip(("G", "D"), self.build_networks(cfg.model, data), strict=True))

    def build_networks(self, model_cfg, data):
        shape, pack = tuple(data.sample_shape), self.options.pack
        G, D = build_models(model_cfg, shape, data.is_image)
        if pack > 1:  # D rebuilt to read m samples side by side
            D = PackedDiscriminator(build_models(model_cfg, packed_shape(shape, pack), data.is_image)[1], pack)
        return G, D

    def phases(self) -> list[Phase]:
        o = self.options
        lazy_r1 = o.r1_gamma > 0 and o.r1_every > 1
        aux = {"acgan_weight": getattr(o, "acgan_weight", 0.0),  # an option of cgan only
               "info_weight": getattr(o, "info_weight", 0.0),  # of infogan only
               "noise_weight": getattr(o, "noise_weight", 0.0)}
        d_loss = functools.partial(discriminator_loss, game=self.game, r1_gamma=0.0 if lazy_r1 else o.r1_gamma,
                                   gp_weight=o.gp_weight, hand_on_fakes=o.reuse_fakes, **aux)
        clip = functools.partial(clip_weights_of_d, c=o.clip) if o.clip > 0 else None
        # Reusing fakes: every D step makes them with G's graph; the last one's reach the G step.
        handed = ("handed_fake", "handed_fake_z") + (("handed_fake_y",) if self.n_classes else ())
        handed = handed if o.reuse_fakes else ()
        phases = [Phase("D", "D", d_loss, repeats=o.d_steps, after_step=clip, hands_on=handed,
                        keeps_graph_of=("G",) if o.reuse_fakes else (),
                        double_backward=o.gp_weight > 0 or (o.r1_gamma > 0 and not lazy_r1))]
        if lazy_r1:
            phases.append(Phase("D_r1", "D", functools.partial(r1_loss, r1_gamma=o.r1_gamma), every=o.r1_every,
                                double_backward=True))
        phases.append(Phase("G", "G", functools.partial(generator_loss, game=self.game, **aux), needs_data=False))
        return phases

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options
        common = {"betas": (o.beta1, o.beta2), "kind": o.optimizer, "weight_decay": o.weight_decay,
                  "schedule": self.schedule()}
        return {"D": OptimizerSpec(o.lr_d, **common), "G": OptimizerSpec(o.lr_g, **common)}

    def critic(self):
        if self.options.pack > 1:
            return None  # D scores packs of points: there is no surface over single points to draw
        return self.models["D"], self.game.probabilistic

    def objective(self) -> str:
        packed = f", packs of {self.options.pack}" if self.options.pack > 1 else ""
        return f"loss {self.game.name}{packed}"

    def example_inputs(self, n=2):
        labels = (torch.zeros(n, dtype=torch.long),) if self.n_classes else ()
        d_in = torch.zeros(n * self.options.pack, *self.data.sample_shape)
        return {"G": (torch.zeros(n, self.z_dim), *labels), "D": (d_in, *labels)}


def clip_weights_of_d(models, *, c: float) -> None:
    clip_weights(models["D"], c)


def base_networks_for_embedding(model_cfg, data):
    """The registered (G, D) pair with G reading z_dim + embed_dim inputs: [z, e_y] for a
    ConditionalGenerator to wrap."""
    base_cfg = type(model_cfg)(**{**model_cfg.__dict__, "z_dim": model_cfg.z_dim + model_cfg.embed_dim})
    return build_models(base_cfg, tuple(data.sample_shape), data.is_image)


class ConditionalGANMethod(GANMethod):
    """The GAN with labels: the same game and optimizers, conditional networks."""

    Options = CGANOptions
    model_keys = GAN_MODEL_KEYS + ("embed_dim", "cond_d")
    preview_caption = "the same fixed noise at every step, one row per class"
    label_about = "the class of each picture"
    label_word = "class"  # what a label is called in messages (infogan: code, selfcond: cluster)

    def __init__(self, cfg, data):
        # Only cgan reads the data's labels; infogan's codes and selfcond's clusters are its own.
        if self.labels_are_classes and (not data.n_classes or data.n_classes < 2):
            raise GanforgeError(f"method {cfg.method.name} needs labelled data with at least 2 classes; data.source "
                                f"{cfg.data.source} has {data.n_classes or 'no'} labels")
        if cfg.method.pack > 1:
            raise GanforgeError(f"method.pack does not combine with {cfg.method.name} (a pack would mix "
                                f"{self.label_word}s; packs are for the unconditional games); set method.pack=1 for "
                                f"{cfg.method.name}")
        super().__init__(cfg, data)

    def build_networks(self, model_cfg, data):
        G, D = base_networks_for_embedding(model_cfg, data)
        return (ConditionalGenerator(G, model_cfg.z_dim, data.n_classes, model_cfg.embed_dim),
                ConditionalDiscriminator(D, data.n_classes, model_cfg.cond_d))

    @property
    def n_classes(self) -> int:
        return self.models["G"].n_classes

    def check_label(self, label):
        if label is not None and not 0 <= label < self.n_classes:
            word = self.label_word
            raise GanforgeError(f"{word} {label} is out of range: {word}s are 0..{self.n_classes - 1}")

    def inputs_for_latents(self, z, label=None):
        """{"z", "y"}: all class ``label``, or the classes in turn (y_i = i mod n_classes)."""
        self.check_label(label)
        n = len(z)
        return {"z": z, "y": torch.full((n,), label) if label is not None else torch.arange(n) % self.n_classes}

    def grid_inputs(self, n, seed):
        """One row per class (at most 10), the same z down each column."""
        rows = min(self.n_classes, 10)
        cols = max(1, n // rows)
        z = self.latents(cols, torch.Generator().manual_seed(seed)).repeat(rows, 1)
        return {"z": z, "y": torch.arange(rows).repeat_interleave(cols)}, cols

    def preview_inputs(self, dataset, seed, n):
        """Training-time grids: one row per class (at most 10), 8 columns."""
        return self.grid_inputs(min(self.n_classes, 10) * 8, seed)

    def forward_sampler(self, net, inputs):
        return net(inputs["z"], inputs["y"])

    def export_graphs(self, ema=True):
        """G: latents z (batch, z_dim) and classes y (batch,) -> pictures of those classes."""
        graph = super().export_graphs(ema)[0]
        y = GraphInput("y", ("batch",), "index", high=self.n_classes, about=self.label_about)
        return [dataclasses.replace(graph, inputs=(*graph.inputs, y))]

    def critic(self):
        return None  # D needs a label for every point: there is no single surface to draw
