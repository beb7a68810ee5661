"""Method "pix2pix" (Isola et al. 2017): paired image-to-image translation, a conditional GAN + L1.

For a pair (a, b) of input and target, G(a) is a U-Net's translation and D reads (input, image)
pairs concatenated along channels, one logit per patch (models/unet.py):

    D: minimise  1/2 [ l_D(D(a, b), real) + l_D(D(a, G(a)), fake) ]        (halved, as the paper)
    G: minimise  gan_weight * l_G(D(a, G(a))) + l1_weight * |G(a) - b|_1     (mean over pixels)

with the game's losses (BCE with the non-saturating G loss, or least squares). ``gan_weight=0``
is the paper's "L1 only" ablation (no D is built), ``l1_weight=0`` its "cGAN only". Each batch
is jittered as the paper does, identically for input and target: scaled up by 9/8 (286/256),
randomly cropped back, and flipped left-right with probability 1/2 (the crops and flips come
from the global RNG, which checkpoints restore, so resume stays exact).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.config import MethodOptions, _opt
from ganforge.data import Batch
from ganforge.errors import GanforgeError
from ganforge.health.signals import target_correlation
from ganforge.losses.gan import GAMES
from ganforge.methods.base import Carry, OptimizerSpec, Phase, TranslationMethod
from ganforge.methods.gan import d_output_stats
from ganforge.methods.graphs import picture_graph
from ganforge.models.unet import PatchDiscriminator, UNetGenerator

PIX2PIX_MODEL_KEYS = ("g_width", "d_width", "d_layers", "norm")


@dataclass
class Pix2PixOptions(MethodOptions):
    name: str = _opt("pix2pix", "training method")
    loss: str = _opt("ns", "the adversarial game: ns (binary cross-entropy, the paper's) or lsgan",
                     choices=["ns", "lsgan"])
    l1_weight: float = _opt(100.0, "lambda, the weight of the L1 distance between G(a) and the target", min=0.0)
    gan_weight: float = _opt(1.0, "weight of the adversarial term; 0 trains the U-Net with L1 alone (no D)", min=0.0)
    lr: float = _opt(2e-4, "Adam learning rate of G and D", min=0.0, max=1.0)
    beta1: float = _opt(0.5, "Adam beta1", min=0.0, max=1.0)
    beta2: float = _opt(0.999, "Adam beta2", min=0.0, max=1.0)
    jitter: bool = _opt(True, "scale each pair up by 9/8 and crop back at a random offset (both sides alike)")
    flip: bool = _opt(True, "flip each pair left-right with probability 1/2 (both sides alike)")
    lr_schedule: str = _opt("linear", "learning rates: constant, or linear (constant until lr_decay_start, then "
                            "linearly to zero at train.steps, as pix2pix trains)", choices=["constant", "linear"])
    paper_keys = ("l1_weight", "gan_weight", "lr", "beta1", "beta2", "loss")


def jitter_pairs(a: torch.Tensor, b: torch.Tensor, jitter: bool, flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random scale-up-and-crop and left-right flip for input ``a`` and target ``b``
    (both (B, C, R, R) in [-1, 1])."""
    both = torch.cat([a, b], 1)
    if jitter:
        side = both.shape[-1]
        big = side * 9 // 8
        both = F.interpolate(both, size=(big, big), mode="bilinear", align_corners=False)
        top, left = (int(v) for v in torch.randint(0, big - side + 1, (2,)))
        both = both[:, :, top:top + side, left:left + side]
    if flip:
        mirror = torch.rand(len(both), device=both.device) < 0.5
        both = torch.where(mirror[:, None, None, None], both.flip(-1), both)
    return both[:, :a.shape[1]].contiguous(), both[:, a.shape[1]:].contiguous()


def _pair(batch: Batch, carry: Carry | None, o: Pix2PixOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """This iteration's (input, target): jittered by the first phase, handed on to the next."""
    if carry and "input" in carry:
        return carry["input"], carry["target"]
    return jitter_pairs(batch["input"], batch.x, o.jitter, o.flip)


def discriminator_loss(models, batch: Batch, carry: Carry | None = None, *, options: Pix2PixOptions) -> dict:
    """D's loss on the real pair and the translated pair, halved; hands the jittered pair on."""
    G, D = models["G"], models["D"]
    a, b = _pair(batch, carry, options)
    with torch.no_grad():
        fake = G(a)
    real_out, fake_out = D(torch.cat([a, b], 1)), D(torch.cat([a, fake], 1))
    game = GAMES[options.loss]
    out = game.d_loss(real_out.flatten(), fake_out.flatten())
    out["loss"] = 0.5 * out["loss"]
    out.update(d_output_stats(game, real_out.flatten(), fake_out.flatten()))
    out["input"], out["target"] = a, b
    return out


def generator_loss(models, batch: Batch, carry: Carry | None = None, *, options: Pix2PixOptions) -> dict:
    """G's adversarial loss (when gan_weight > 0) + l1_weight * mean |G(a) - b|; logs how well
    G(a) follows b (``target_corr``, the health monitor's evidence for inverted colours)."""
    G = models["G"]
    a, b = _pair(batch, carry, options)
    fake = G(a)
    l1 = (fake.float() - b.float()).abs().mean()
    out = {"L1": l1, "loss": options.l1_weight * l1, "target_corr": target_correlation(fake, b)}
    if options.gan_weight > 0:
        fake_out = models["D"](torch.cat([a, fake], 1))
        out["gan"] = GAMES[options.loss].g_loss(None, fake_out.flatten())
        out["loss"] = out["loss"] + options.gan_weight * out["gan"]
    return out


class Pix2PixMethod(TranslationMethod):
    """A U-Net G(a) and, unless gan_weight is 0, a PatchGAN D(a, b)."""

    Options = Pix2PixOptions
    model_keys = PIX2PIX_MODEL_KEYS
    architecture = "U-Net + PatchGAN"
    preview_caption = ("eight fixed training pairs at every step, in three rows: the inputs, G's translations "
                       "(dropout off), the targets")

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        if data.condition_shape is None:
            raise GanforgeError(f"method pix2pix needs paired data (an input for every target); {cfg.data.source} "
                                "has none: use edges2emoji, emoji-google2twitter, ... or data.source=paired")
        if data.unpaired:
            raise GanforgeError(f"{cfg.data.source} holds two unpaired collections, and pix2pix learns from pairs; "
                                "train it with method.name=cyclegan (e.g. the cyclegan-emoji presets)")
        m, o = cfg.model, self.options
        c_in, c_out, side = data.condition_shape[0], data.sample_shape[0], data.sample_shape[-1]
        self.models = {"G": UNetGenerator(c_in, c_out, side, m.g_width, m.norm)}
        if o.gan_weight > 0:
            self.models["D"] = PatchDiscriminator(c_in + c_out, m.d_width, m.d_layers, m.norm)
        self.game = GAMES[o.loss]

    def phases(self) -> list[Phase]:
        o = self.options
        g = Phase("G", "G", functools.partial(generator_loss, options=o), needs_data=o.gan_weight == 0)
        if o.gan_weight == 0:
            return [g]
        return [Phase("D", "D", functools.partial(discriminator_loss, options=o), hands_on=("input", "target")), g]

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options
        common = {"betas": (o.beta1, o.beta2), "kind": o.optimizer, "weight_decay": o.weight_decay,
                  "schedule": self.schedule()}
        return {name: OptimizerSpec(o.lr, **common) for name in self.models}

    def objective(self) -> str:
        o = self.options
        if o.gan_weight == 0:
            return f"L1 only (x{o.l1_weight:g})"
        return f"cGAN ({o.loss}) + {o.l1_weight:g} x L1" if o.l1_weight > 0 else f"cGAN ({o.loss}) only"

    def example_inputs(self, n=2):
        c, h, w = self.data.sample_shape
        ci = self.data.condition_shape[0]
        out = {"G": (torch.zeros(n, ci, h, w),)}
        if "D" in self.models:
            out["D"] = (torch.zeros(n, ci + c, h, w),)
        return out

    def export_graphs(self, ema=True):
        """G: input pictures -> translations, at any power-of-two side (checked at twice the training side)."""
        side = self.data.sample_shape[-1]
        return [picture_graph("generator", "translate", self.exported("G", ema), tuple(self.data.condition_shape),
                              tuple(self.data.sample_shape), other_side=2 * side)]

    # -- translating --------------------------------------------------------------------------

    def side_multiple(self) -> int:
        """Sides G translates are multiples of this: the U-Net halves down to 1 x 1 at the training side."""
        return self.data.condition_shape[-1]

    def input_shape(self, direction: str = "a2b") -> tuple[int, ...]:
        """The shape of one picture G reads (pix2pix translates one way only)."""
        if direction != "a2b":
            raise GanforgeError("a pix2pix run translates its inputs to targets (a2b) only; CycleGAN runs go both ways")
        return tuple(self.data.condition_shape)

    def translate(self, inputs: torch.Tensor, device="cpu", direction: str = "a2b") -> torch.Tensor:
        """G(a) for inputs (N, C_in, H, W) in [-1, 1], in eval mode (dropout off), on CPU."""
        self.input_shape(direction)
        return self.generate({"input": inputs}, device)

    def reconstruct(self, translations: torch.Tensor, device="cpu", direction: str = "a2b") -> None:
        """No way back: pix2pix has one generator."""
        return None

    def preview_inputs(self, dataset, seed: int, n: int) -> tuple[dict[str, torch.Tensor], int]:
        """Eight fixed pairs of the training data (seeded), shown as input | output | target rows."""
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:8]
        to_float = lambda t: t.float() / 127.5 - 1  # noqa: E731
        return {"input": to_float(dataset.extra["input"][pick]), "target": to_float(dataset.x[pick])}, 8

    def preview(self, inputs: dict[str, torch.Tensor], device) -> torch.Tensor:
        a, b = inputs["input"], inputs["target"]
        out = self.translate(a, device)
        if a.shape[1] != b.shape[1]:
            a = a.expand(-1, b.shape[1], -1, -1)
        return torch.cat([a, out, b])  # three rows: inputs, translations, targets
