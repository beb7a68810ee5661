"""Method "cyclegan" (Zhu et al. 2017): unpaired translation between domains A and B.

Two ResNet generators, G_AB: A -> B and G_BA: B -> A (models/resnet.py), and two PatchGAN
discriminators, D_A on domain A and D_B on domain B (models/unet.py). For a batch a of A and b of B:

    G (one Adam over both generators, as the reference implementation):
        L_G = l_G(D_B(G_AB(a))) + l_G(D_A(G_BA(b)))                                  adversarial
            + lambda (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)                 cycle, lambda = 10
            + identity * lambda (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)                  identity, 0.5
    D (one Adam over both discriminators):
        L_D = l_D(D_A(a), D_A(pool_A(G_BA(b)))) + l_D(D_B(b), D_B(pool_B(G_AB(a))))

with least squares as the paper (l_G = E[(D(fake) - 1)^2], l_D = 1/2 E[(D(x) - 1)^2] + 1/2
E[D(fake)^2]: ganforge's least-squares G loss carries a factor 1/2, doubled here so that the
weights are the paper's). Each D sees, for every fake of the batch, either that fake or, with
probability 1/2 once the pool is full, one of the last ``pool_size`` (50) fakes (Shrivastava et
al. 2017), which damps oscillation. The pool is method state: saved in every checkpoint and
restored on resume, its draws come from the global RNG that checkpoints restore, so resume is
exact. The identity term needs A and B to have the same number of channels; it is skipped (and
said) otherwise. Learning rates are constant, then decay linearly to zero (lr_schedule linear).

Off by default (not in the paper): ``method.augment`` shows both discriminators real and fake
pictures through the same random differentiable transforms (DiffAugment, data/augment.py), and
``method.r1_gamma`` adds a lazy R1 phase, gamma/2 E||grad_x D(x)||^2 on each domain's real pictures.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ganforge.config import MethodOptions, _opt
from ganforge.data import Batch
from ganforge.data.augment import augment, method_policy
from ganforge.errors import GanforgeError
from ganforge.health.signals import d_accuracy
from ganforge.losses.gan import GAMES, r1_penalty
from ganforge.methods.base import Carry, OptimizerSpec, Phase, TranslationMethod
from ganforge.methods.graphs import picture_graph
from ganforge.models.layers import apply_spectral_norm
from ganforge.models.resnet import ResnetGenerator
from ganforge.models.unet import PatchDiscriminator

CYCLEGAN_MODEL_KEYS = ("g_width", "d_width", "d_layers", "norm", "res_blocks", "g_downsamplings", "upsample",
                       "input_skip", "spectral_norm")
DIRECTIONS = {"a2b": ("G_AB", "G_BA"), "b2a": ("G_BA", "G_AB")}  # direction -> (translator, its way back)


@dataclass
class CycleGANOptions(MethodOptions):
    name: str = _opt("cyclegan", "training method")
    loss: str = _opt("lsgan", "the adversarial game: lsgan (least squares, the paper's) or ns (cross-entropy)",
                     choices=["lsgan", "ns"])
    cycle_weight: float = _opt(10.0, "lambda, the weight of each cycle-consistency L1 term; 0 drops the cycle "
                               "loss (the paper's ablation)", min=0.0)
    identity_weight: float = _opt(0.5, "the identity L1 terms' weight as a fraction of lambda (0.5 in the paper; "
                                  "0 drops them)", min=0.0)
    cycle_noise: float = _opt(0.0, "std of Gaussian noise added to each translation before the way back (the cycle "
                              "terms only), which jams a hidden high-frequency copy of the input (Bashkirova et al. "
                              "2019); 0: none, as the paper", min=0.0, max=2.0)
    augment: str = _opt("", "differentiable augmentation of the discriminators' inputs, real and fake alike, "
                        "comma-separated: translation, cutout (data/augment.py; empty: none, as the paper)")
    r1_gamma: float = _opt(0.0, "gamma of an R1 penalty gamma/2 E||grad D(x)||^2 on each domain's real pictures "
                           "(Mescheder et al. 2018; 0: none, as the paper)", min=0.0)
    r1_every: int = _opt(16, "apply R1 every this many iterations (lazy regularisation)", min=1, max=1000)
    pool_size: int = _opt(50, "fakes each discriminator keeps in its history pool (0: none)", min=0, max=10_000)
    lr: float = _opt(2e-4, "Adam learning rate of the generators and the discriminators", min=0.0, max=1.0)
    beta1: float = _opt(0.5, "Adam beta1", min=0.0, max=1.0)
    beta2: float = _opt(0.999, "Adam beta2", min=0.0, max=1.0)
    lr_schedule: str = _opt("linear", "learning rates: constant, or linear (constant until lr_decay_start, then "
                            "linearly to zero at train.steps, as CycleGAN trains)", choices=["constant", "linear"])
    paper_keys = ("loss", "cycle_weight", "identity_weight", "pool_size", "lr", "beta1", "beta2")


class ImagePool:
    """The last ``size`` fakes a discriminator was shown (Shrivastava et al. 2017). ``query``
    returns, per image, the image itself while the pool fills; afterwards, with probability 1/2,
    a stored fake (which the new image replaces) and otherwise the image itself."""

    def __init__(self, size: int):
        self.size = size
        self.images: torch.Tensor | None = None  # (n <= size, C, H, W), detached

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes.detach()
        out = []
        for image in fakes.detach():
            image = image[None]
            if self.images is None or len(self.images) < self.size:
                self.images = image.clone() if self.images is None else torch.cat([self.images, image])
                out.append(image)
            elif float(torch.rand(())) < 0.5:  # the global CPU RNG, which checkpoints restore
                slot = int(torch.randint(0, self.size, ()))
                out.append(self.images[slot:slot + 1].clone())
                self.images[slot] = image[0]
            else:
                out.append(image)
        return torch.cat(out)


def jammed(translation: torch.Tensor, std: float) -> torch.Tensor:
    """translation + std * N(0, 1) on the way back of the cycle. Without it a generator can satisfy
    the cycle loss by hiding a faint high-frequency copy of its input in its output (Chu et al. 2017),
    a grain the discriminator tolerates and the reverse generator decodes; noise of a larger
    amplitude drowns that channel, so the way back must work from what the translation shows."""
    return translation if std == 0 else translation + std * torch.randn_like(translation)


def generator_loss(models, batch: Batch, carry: Carry | None = None, *, options: CycleGANOptions,
                   identity: bool, policy: tuple[str, ...] = ()) -> dict:
    """Both generators' adversarial, cycle and identity losses; hands the fakes on to D's phase."""
    o, game = options, GAMES[options.loss]
    scale = 2.0 if o.loss == "lsgan" else 1.0  # the paper's MSE = 2 x ganforge's 1/2-scaled least squares
    a, b = batch["input"], batch.x
    G_AB, G_BA, D_A, D_B = models["G_AB"], models["G_BA"], models["D_A"], models["D_B"]
    fake_b, fake_a = G_AB(a), G_BA(b)
    out = {"gan_AB": scale * game.g_loss(None, D_B(augment(fake_b, policy)).flatten()),
           "gan_BA": scale * game.g_loss(None, D_A(augment(fake_a, policy)).flatten())}
    loss = out["gan_AB"] + out["gan_BA"]
    if o.cycle_weight > 0:
        out["cycle_A"] = (G_BA(jammed(fake_b, o.cycle_noise)).float() - a.float()).abs().mean()  # A -> B -> A
        out["cycle_B"] = (G_AB(jammed(fake_a, o.cycle_noise)).float() - b.float()).abs().mean()  # B -> A -> B
        loss = loss + o.cycle_weight * (out["cycle_A"] + out["cycle_B"])
    if identity and o.identity_weight > 0:
        out["idt_A"] = (G_BA(a).float() - a.float()).abs().mean()        # G_BA leaves an A picture alone
        out["idt_B"] = (G_AB(b).float() - b.float()).abs().mean()
        loss = loss + o.identity_weight * o.cycle_weight * (out["idt_A"] + out["idt_B"])
    out["loss"] = loss
    out["fake_a"], out["fake_b"] = fake_a.detach(), fake_b.detach()
    return out


def discriminator_loss(models, batch: Batch, carry: Carry, *, options: CycleGANOptions,
                       pools: dict[str, ImagePool], policy: tuple[str, ...] = ()) -> dict:
    """Each D on its real domain against the fakes of this step, drawn through its history pool.
    (The pools are the one piece of state a loss touches; the method owns and checkpoints them.)"""
    game = GAMES[options.loss]
    a, b = batch["input"], batch.x
    out, loss = {}, 0.0
    real_outs, fake_outs = [], []
    for name, real, fake in (("A", a, carry["fake_a"]), ("B", b, carry["fake_b"])):
        D = models[f"D_{name}"]
        real_out = D(augment(real, policy)).flatten()
        fake_out = D(augment(pools[name].query(fake), policy)).flatten()
        part = game.d_loss(real_out, fake_out)
        out[f"D_{name}"] = part["loss"]
        loss = loss + part["loss"]
        real_outs.append(real_out)
        fake_outs.append(fake_out)
    real_out, fake_out = torch.cat(real_outs).detach(), torch.cat(fake_outs).detach()
    out.update(d_accuracy(game.threshold, real_out, fake_out))
    if game.probabilistic:
        out["D_x"], out["D_G_z"] = torch.sigmoid(real_out).mean(), torch.sigmoid(fake_out).mean()
    else:  # least squares: D's mean output, whose targets are 1 for real and 0 for fake
        out["D_x"], out["D_G_z"] = real_out.float().mean(), fake_out.float().mean()
    out["loss"] = loss
    return out


def r1_loss(models, batch: Batch, carry: Carry | None = None, *, r1_gamma: float,
            policy: tuple[str, ...] = ()) -> dict:
    """gamma/2 (R1(D_A on a) + R1(D_B on b)), each seen through the same augmentation as in D's step.
    A PatchGAN gives P decisions per picture; R1 here is ||grad_x sum_p D_p(x)||^2 / P, the mean
    squared gradient norm of one decision when the patches barely overlap. R1 flattens D around the
    real pictures, so a generator cannot gain by small high-frequency changes that an over-fitted D
    rewards (the grain of the 32 px emoji translations)."""
    out = {}
    for name, real in (("A", batch["input"]), ("B", batch.x)):
        real = real.detach().requires_grad_(True)
        decisions = models[f"D_{name}"](augment(real, policy)).flatten(1)  # (B, P)
        out[f"r1_{name}"] = r1_penalty(decisions, real) / decisions.shape[1]
    out["loss"] = 0.5 * r1_gamma * (out["r1_A"] + out["r1_B"])
    return out


def patch_discriminator(channels: int, m) -> PatchDiscriminator:
    """The PatchGAN with model.norm, or with ``model.spectral_norm``: spectral normalisation of every
    weight and no normalisation layer (as SN-GAN's discriminators; a norm layer after it would
    rescale what it bounds)."""
    if m.spectral_norm:
        return apply_spectral_norm(PatchDiscriminator(channels, m.d_width, m.d_layers, "none"))
    return PatchDiscriminator(channels, m.d_width, m.d_layers, m.norm)


class CycleGANMethod(TranslationMethod):
    """G_AB, G_BA (ResNet) and D_A, D_B (PatchGAN) on unpaired domains A (inputs) and B."""

    Options = CycleGANOptions
    model_keys = CYCLEGAN_MODEL_KEYS
    architecture = "ResNet + PatchGAN"
    sampler = "G_AB"
    translate_usage = "RUN --direction a2b|b2a INPUT... -o OUT"
    preview_caption = ("eight fixed training pictures of each domain at every step: rows of A, G_AB(A), "
                       "G_BA(G_AB(A)), then B, G_BA(B), G_AB(G_BA(B)) (input, translation, reconstruction)")

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        if data.condition_shape is None:
            raise GanforgeError(f"method cyclegan needs two domains of pictures; {cfg.data.source} has one: use "
                                "emoji-apple-twitter, ... or data.source=unpaired (trainA/ and trainB/ folders)")
        m, o = cfg.model, self.options
        c_a, c_b = data.condition_shape[0], data.sample_shape[0]
        step = self.side_multiple()
        if data.sample_shape[-1] % step or data.sample_shape[-2] % step:
            raise GanforgeError(f"the CycleGAN generator halves the picture {m.g_downsamplings} times "
                                f"(model.g_downsamplings), so its sides must be multiples of {step}, not "
                                f"{data.sample_shape[-2]} x {data.sample_shape[-1]}; set data.resolution (e.g. 32 or "
                                f"64) or fewer model.g_downsamplings")
        if m.input_skip and c_a != c_b:
            raise GanforgeError(f"model.input_skip adds each picture to its translation, but domain A has {c_a} "
                                f"channels and B {c_b}; set model.input_skip=false")
        generator = functools.partial(ResnetGenerator, width=m.g_width, blocks=m.res_blocks, norm=m.norm,
                                      upsample=m.upsample, input_skip=m.input_skip, downsamplings=m.g_downsamplings)
        self.models = {"G_AB": generator(c_a, c_b), "G_BA": generator(c_b, c_a),
                       "D_A": patch_discriminator(c_a, m), "D_B": patch_discriminator(c_b, m)}
        self.identity = c_a == c_b  # G_AB(b) must read a B picture as if it were an A picture
        self.pools = {"A": ImagePool(o.pool_size), "B": ImagePool(o.pool_size)}
        self.game = GAMES[o.loss]
        self.policy = method_policy(o.augment)

    def phases(self) -> list[Phase]:
        o, policy = self.options, self.policy
        phases = [Phase("G", "G", functools.partial(generator_loss, options=o, identity=self.identity, policy=policy),
                        hands_on=("fake_a", "fake_b")),
                  Phase("D", "D", functools.partial(discriminator_loss, options=o, pools=self.pools, policy=policy),
                        needs_data=False)]
        if o.r1_gamma > 0:  # on a fresh real batch of each domain, every r1_every iterations
            phases.append(Phase("D_r1", "D", functools.partial(r1_loss, r1_gamma=o.r1_gamma, policy=policy),
                                every=o.r1_every, double_backward=True))
        return phases

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options
        common = {"betas": (o.beta1, o.beta2), "kind": o.optimizer, "weight_decay": o.weight_decay,
                  "schedule": self.schedule()}
        return {"G": OptimizerSpec(o.lr, networks=("G_AB", "G_BA"), **common),
                "D": OptimizerSpec(o.lr, networks=("D_A", "D_B"), **common)}

    def objective(self) -> str:
        o = self.options
        parts = [f"{o.loss} GAN x 2"]
        if o.cycle_weight > 0:
            parts.append(f"{o.cycle_weight:g} x cycle" + (f" (noise {o.cycle_noise:g} on the way back)"
                                                           if o.cycle_noise else ""))
        if self.identity and o.identity_weight > 0 and o.cycle_weight > 0:
            parts.append(f"{o.identity_weight * o.cycle_weight:g} x identity")
        extras = [f"pool {o.pool_size}"] if o.pool_size else []
        if o.r1_gamma > 0:
            extras.append(f"R1 {o.r1_gamma:g} every {o.r1_every}")
        if self.policy:
            extras.append(f"D sees {'+'.join(self.policy)}")
        return ", ".join([" + ".join(parts)] + extras)

    def ema_networks(self) -> tuple[str, ...]:
        """Both generators get an EMA copy when method.ema_halflife_kimg > 0 (translate reads it)."""
        return ("G_AB", "G_BA") if self.options.ema_halflife_kimg > 0 else ()

    def example_inputs(self, n=2):
        c_b, h, w = self.data.sample_shape
        c_a = self.data.condition_shape[0]
        return {"G_AB": (torch.zeros(n, c_a, h, w),), "G_BA": (torch.zeros(n, c_b, h, w),),
                "D_A": (torch.zeros(n, c_a, h, w),), "D_B": (torch.zeros(n, c_b, h, w),)}

    # -- state: the history pools --------------------------------------------------------------

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {f"pool_{k}": p.images for k, p in self.pools.items() if p.images is not None}
        return tensors, {"pool_size": self.options.pool_size}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        device = next(self.models["D_A"].parameters()).device
        for k, pool in self.pools.items():
            stored = tensors.get(f"pool_{k}")
            pool.images = None if stored is None else stored.to(device)

    def side_multiple(self) -> int:
        """Sides the generators translate are multiples of this: 2 ** model.g_downsamplings."""
        return 2 ** self.cfg.model.g_downsamplings

    def export_graphs(self, ema=True):
        """G_AB as "a2b" and G_BA as "b2a": pictures -> pictures at any side that is a multiple of
        :meth:`side_multiple` (checked at twice the training side)."""
        side, a, b = self.data.sample_shape[-1], tuple(self.data.condition_shape), tuple(self.data.sample_shape)
        return [picture_graph("a2b", "translate", self.exported("G_AB", ema), a, b, other_side=2 * side),
                picture_graph("b2a", "translate", self.exported("G_BA", ema), b, a, other_side=2 * side)]

    # -- translating ---------------------------------------------------------------------------

    def input_shape(self, direction: str = "a2b") -> tuple[int, ...]:
        """The shape of one picture the ``direction``'s translator reads."""
        return tuple(self.data.condition_shape if direction == "a2b" else self.data.sample_shape)

    def translate(self, inputs: torch.Tensor, device="cpu", direction: str = "a2b") -> torch.Tensor:
        """G_AB(a) (``a2b``) or G_BA(b) (``b2a``) for (N, C, H, W) in [-1, 1], in eval mode, on CPU."""
        forward, _ = DIRECTIONS[direction]
        return self.generate({"input": inputs}, device, network=self.for_sampling(forward))

    def reconstruct(self, translations: torch.Tensor, device="cpu", direction: str = "a2b") -> torch.Tensor:
        """The way back: G_BA(G_AB(a)) from G_AB(a) for ``a2b``, G_AB(G_BA(b)) for ``b2a``."""
        _, back = DIRECTIONS[direction]
        return self.generate({"input": translations}, device, network=self.for_sampling(back))

    def preview_inputs(self, dataset, seed: int, n: int) -> tuple[dict[str, torch.Tensor], int]:
        """Eight fixed training pictures of each domain (seeded)."""
        g = torch.Generator().manual_seed(seed)
        domains = dataset.info.get("domains") or {"A": len(dataset), "B": len(dataset)}  # paired data: one count
        n_a, n_b = domains["A"], domains["B"]
        to_float = lambda t: t.float() / 127.5 - 1  # noqa: E731
        pick_a, pick_b = torch.randperm(n_a, generator=g)[:8], torch.randperm(n_b, generator=g)[:8]
        return {"a": to_float(dataset.extra["input"][pick_a]), "b": to_float(dataset.x[pick_b])}, 8

    def preview(self, inputs: dict[str, torch.Tensor], device) -> torch.Tensor:
        rows = []
        for direction, x in (("a2b", inputs["a"]), ("b2a", inputs["b"])):
            y = self.translate(x, device, direction)
            rows += [x, y, self.reconstruct(y, device, direction)]
        width = max(r.shape[1] for r in rows)  # a grey domain beside a colour one: repeat its channel
        return torch.cat([r.expand(-1, width, -1, -1) for r in rows])
