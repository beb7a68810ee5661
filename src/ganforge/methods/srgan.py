"""Methods "srresnet" and "srgan" (Ledig et al. 2017): single-image super-resolution by s = 2, 3 or 4.

Training pairs are made on the fly from any image source: each high-resolution picture of a batch
gives a random ``crop`` x ``crop`` crop y (flipped left-right with probability 1/2), and its
low-resolution input x = bicubic_downscale(y, s) (antialiased, rounded to 8 bits:
data/resample.py). With G the SRResNet (models/srresnet.py):

    srresnet:  G minimises  mean (G(x) - y)^2                                   (pixel MSE)
    srgan:     D minimises  BCE(D(y), real) + BCE(D(G(x)), fake)
               G minimises  content(G(x), y) + adv_weight * -log D(G(x))        (adv_weight 1e-3)

SRGAN starts from a trained SRResNet (``method.init_run``), as the paper does, to avoid poor
local optima. The content loss is pixel MSE (``mse``) or the relative squared distance of feature
maps (losses/perceptual.py) in a network that no one can download here in the paper's place of
VGG: ``random-cnn``, a VGG-shaped CNN at a fixed random initialisation (Liu et al. 2021), or
``emoji-convnet``, the first blocks of ganforge's shipped colour classifier. Crops, flips and the
random CNN come from seeded generators or the global RNG that checkpoints restore: resume is exact.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge.config import MethodOptions, _opt
from ganforge.data import Batch
from ganforge.data.resample import bicubic_downscale, bicubic_upscale
from ganforge.errors import GanforgeError
from ganforge.losses.gan import GAMES
from ganforge.losses.perceptual import feature_distance, pixel_mse
from ganforge.methods.base import Carry, Method, OptimizerSpec, Phase, find_finished_run
from ganforge.methods.gan import d_output_stats
from ganforge.methods.graphs import Clamped, picture_graph
from ganforge.models.srresnet import ClassifierFeatures, RandomFeatureCNN, SRDiscriminator, SRResNet

SR_MODEL_KEYS = ("g_width", "res_blocks", "norm", "bicubic_skip", "d_width", "d_layers")
CONTENT_LOSSES = ("mse", "random-cnn", "emoji-convnet")


@dataclass
class SRResNetOptions(MethodOptions):
    name: str = _opt("srresnet", "training method")
    scale: int = _opt(4, "upscaling factor", choices=[2, 3, 4])
    crop: int = _opt(96, "side of the high-resolution training crops (the paper's 96); a multiple of the scale",
                     min=4, max=1024)
    flip: bool = _opt(True, "flip each training crop left-right with probability 1/2")
    lr: float = _opt(1e-4, "Adam learning rate", min=0.0, max=1.0)
    beta1: float = _opt(0.9, "Adam beta1", min=0.0, max=1.0)
    beta2: float = _opt(0.999, "Adam beta2", min=0.0, max=1.0)
    paper_keys = ("lr", "beta1", "beta2")


@dataclass
class SRGANOptions(SRResNetOptions):
    name: str = _opt("srgan", "training method")
    content: str = _opt("random-cnn", "content loss: mse (pixels), random-cnn (feature maps of a VGG-shaped CNN at "
                        "a fixed random initialisation) or emoji-convnet (of ganforge's shipped colour classifier)",
                        choices=list(CONTENT_LOSSES))
    adv_weight: float = _opt(1e-3, "weight of the adversarial term against the content loss", min=0.0)
    init_run: str = _opt("", "the srresnet run whose generator SRGAN starts from (the paper's initialisation): "
                         "its folder, or a preset name for the newest run of it under runs/; empty: random weights")
    paper_keys = ("lr", "beta1", "beta2", "adv_weight", "content")


def random_crops(images: torch.Tensor, side: int, flip: bool) -> torch.Tensor:
    """One random ``side`` x ``side`` crop of each picture (B, C, H, W), flipped left-right with
    probability 1/2 when ``flip``; offsets and flips from the global RNG."""
    b, _, h, w = images.shape
    tops = torch.randint(0, h - side + 1, (b,)).tolist()
    lefts = torch.randint(0, w - side + 1, (b,)).tolist()
    crops = torch.stack([img[:, t:t + side, s:s + side] for img, t, s in zip(images, tops, lefts, strict=True)])
    if flip:
        mirror = torch.rand(b) < 0.5
        crops = torch.where(mirror.to(crops.device)[:, None, None, None], crops.flip(-1), crops)
    return crops.contiguous()


def _pair(batch: Batch, carry: Carry | None, o: SRResNetOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """This iteration's (low-resolution input, high-resolution target), made by the first phase."""
    if carry and "lr_input" in carry:
        return carry["lr_input"], carry["hr_target"]
    hr = random_crops(batch.x, o.crop, o.flip)
    return bicubic_downscale(hr, o.scale).to(hr.dtype), hr


def batch_psnr(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB (data range [0, 1]) of a mean squared error measured in [-1, 1] units (4 x larger)."""
    return 10 * torch.log10(4 / mse.detach().clamp_min(1e-12))


def pixel_loss(models, batch: Batch, carry: Carry | None = None, *, options: SRResNetOptions) -> dict:
    """SRResNet: mean squared error of G(x) against the crop; logs the batch's PSNR."""
    lr, hr = _pair(batch, carry, options)
    mse = pixel_mse(models["G"](lr), hr)
    return {"loss": mse, "mse": mse.detach(), "psnr": batch_psnr(mse)}


def discriminator_loss(models, batch: Batch, carry: Carry | None = None, *, options: SRGANOptions) -> dict:
    """SRGAN's D: binary cross-entropy on real crops and upscaled ones; hands the pair on to G."""
    lr, hr = _pair(batch, carry, options)
    with torch.no_grad():
        fake = models["G"](lr)
    game = GAMES["ns"]
    real_out, fake_out = models["D"](hr), models["D"](fake)
    out = game.d_loss(real_out, fake_out)
    out.update(d_output_stats(game, real_out, fake_out))
    out["lr_input"], out["hr_target"] = lr, hr
    return out


def generator_loss(models, batch: Batch, carry: Carry | None = None, *, options: SRGANOptions,
                   content_net: torch.nn.Module | None) -> dict:
    """SRGAN's G: content(G(x), y) + adv_weight * the non-saturating loss -log D(G(x))."""
    lr, hr = _pair(batch, carry, options)
    fake = models["G"](lr)
    mse = pixel_mse(fake, hr)
    content = mse if content_net is None else feature_distance(content_net(fake), content_net(hr))
    out = {"content": content, "mse": mse.detach(), "psnr": batch_psnr(mse)}
    if options.adv_weight > 0:
        out["gan"] = GAMES["ns"].g_loss(None, models["D"](fake))
        out["loss"] = content + options.adv_weight * out["gan"]
    else:
        out["loss"] = content
    return out


def content_network(name: str, channels: int) -> torch.nn.Module | None:
    """The fixed feature network of a content loss (None for pixel MSE)."""
    if name == "mse":
        return None
    if name == "random-cnn":
        return RandomFeatureCNN(channels)
    if channels != 3:
        raise GanforgeError("method.content=emoji-convnet reads colour pictures; use random-cnn or mse for grey ones")
    from ganforge.metrics.features import load_extractor

    return ClassifierFeatures(load_extractor("emoji-convnet", log=lambda *_: None).net)


def find_init_run(name: str, runs_root: Path = Path("runs")) -> Path:
    """The run ``method.init_run`` names (see :func:`methods.base.find_finished_run`)."""
    return find_finished_run(name, "method.init_run", runs_root)


class SRResNetMethod(Method):
    """SRResNet trained on pixel MSE; its generator upscales (``upscale``)."""

    Options = SRResNetOptions
    model_keys = SR_MODEL_KEYS
    architecture = "SRResNet"
    has_prior = False
    preview_caption = ("eight fixed training crops at every step, in three rows: bicubic upscaling of the "
                       "low-resolution input, the model's upscaling, the original")

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        o, m = self.options, cfg.model
        self.require_pictures("upscales")
        side = data.sample_shape[-1]
        if o.crop % o.scale:
            raise GanforgeError(f"method.crop={o.crop} is not a multiple of method.scale={o.scale}; use e.g. "
                                f"{o.crop - o.crop % o.scale or o.scale * 8}")
        if o.crop > min(data.sample_shape[-2:]):
            raise GanforgeError(f"method.crop={o.crop} is larger than the {side}-px pictures of {cfg.data.source}; "
                                f"set method.crop to at most {side - side % o.scale} or data.resolution higher")
        self.channels = data.sample_shape[0]
        self.models = {"G": SRResNet(self.channels, o.scale, m.g_width, m.res_blocks, m.norm, m.bicubic_skip)}

    def phases(self) -> list[Phase]:
        return [Phase("G", "G", functools.partial(pixel_loss, options=self.options))]

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options
        return {name: OptimizerSpec(o.lr, (o.beta1, o.beta2), kind=o.optimizer, weight_decay=o.weight_decay,
                                    schedule=self.schedule()) for name in self.models}

    def objective(self) -> str:
        return f"pixel MSE, x{self.options.scale}"

    def example_inputs(self, n=2):
        side = self.options.crop // self.options.scale
        out = {"G": (torch.zeros(n, self.channels, side, side),)}
        if "D" in self.models:
            out["D"] = (torch.zeros(n, self.channels, self.options.crop, self.options.crop),)
        return out

    def export_graphs(self, ema=True):
        """G: low-resolution pictures (batch, C, h, w) -> (batch, C, h x scale, w x scale), clamped to
        [-1, 1] as `ganforge upscale` does; any h and w (checked at twice the training crop)."""
        side = self.options.crop // self.scale
        shape = (self.channels, side, side)
        return [picture_graph("generator", "upscale", Clamped(self.exported("G", ema)), shape, shape, self.scale,
                              other_side=2 * side)]

    # -- upscaling ----------------------------------------------------------------------------

    @property
    def scale(self) -> int:
        return self.options.scale

    @property
    def receptive_radius(self) -> int:
        """Low-resolution pixels on each side that reach an output pixel (the tiling margin)."""
        return self.models["G"].receptive_radius

    def sampling_inputs(self, n, generator=None, *, label=None, truncation=None):
        raise GanforgeError(f"a {self.options.name} run upscales pictures rather than sampling them; use `ganforge "
                            "upscale RUN IMAGE... -o OUT`, or `ganforge evaluate RUN` for its held-out pictures")

    def forward_sampler(self, net, inputs):
        return net(inputs["input"]).clamp(-1, 1)

    def upscale(self, images: torch.Tensor, device="cpu") -> torch.Tensor:
        """G(x) for low-resolution pictures (N, C, h, w) in [-1, 1], eval mode, clamped, on CPU."""
        return self.generate({"input": images}, device, chunk=16)

    def preview_inputs(self, dataset, seed: int, n: int) -> tuple[dict[str, torch.Tensor], int]:
        """Centre crops of eight fixed training pictures (seeded) and their low-resolution copies."""
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:8]
        hr = dataset.x[pick].float() / 127.5 - 1
        top, left = (hr.shape[-2] - self.options.crop) // 2, (hr.shape[-1] - self.options.crop) // 2
        hr = hr[..., top:top + self.options.crop, left:left + self.options.crop]
        return {"lr": bicubic_downscale(hr, self.scale), "hr": hr}, 8

    def preview(self, inputs: dict[str, torch.Tensor], device) -> torch.Tensor:
        lr = inputs["lr"]
        return torch.cat([bicubic_upscale(lr, self.scale), self.upscale(lr, device), inputs["hr"]])


class SRGANMethod(SRResNetMethod):
    """SRResNet G against the SRGAN discriminator, with a content loss (``method.content``)."""

    Options = SRGANOptions
    architecture = "SRResNet + SRGAN discriminator"
    game = GAMES["ns"]

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        o, m = self.options, cfg.model
        self.models["D"] = SRDiscriminator(self.channels, o.crop, m.d_width, 2 * m.d_layers, m.norm)
        self.content_net = content_network(o.content, self.channels)

    def phases(self) -> list[Phase]:
        o = self.options
        g = functools.partial(generator_loss, options=o, content_net=self.content_net)
        return [Phase("D", "D", functools.partial(discriminator_loss, options=o), hands_on=("lr_input", "hr_target")),
                Phase("G", "G", g, needs_data=False)]  # G reads the pair D's phase made (carry)

    def fixed_networks(self) -> dict[str, torch.nn.Module]:
        return {"content": self.content_net} if self.content_net is not None else {}

    def objective(self) -> str:
        o = self.options
        return f"content ({o.content}) + {o.adv_weight:g} x adversarial, x{o.scale}"

    def initialise(self, log=print) -> None:
        """Start G from ``method.init_run``'s generator (a fresh run only; resume reads its own)."""
        if not self.options.init_run:
            return
        from ganforge.train.checkpoint import latest_checkpoint, load_weights

        run = find_init_run(self.options.init_run)
        ckpt = latest_checkpoint(run)
        theirs = json.loads((run / "config.json").read_text())
        differ = [f"model.{k}" for k in ("g_width", "res_blocks", "norm", "bicubic_skip")
                  if theirs["model"].get(k) != getattr(self.cfg.model, k)]
        if theirs["method"].get("scale") != self.options.scale:
            differ.append("method.scale")
        if differ:
            raise GanforgeError(f"method.init_run={run} has another generator ({', '.join(differ)} differ); use the "
                                "same settings as that run")
        load_weights(ckpt, {"G": self.models["G"]})
        log(f"G starts from {ckpt} (method.init_run={self.options.init_run})")
