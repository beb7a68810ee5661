"""Methods "vqvae" (van den Oord et al. 2017), an autoencoder whose code is a grid of codebook
entries, and "vqprior", an autoregressive prior over those grids that makes it generative.

For a batch x in [-1, 1], z_e = E(x) (B, D, h, w), z_q = the nearest codebook vectors (models/vq.py,
straight-through gradient), x_hat = G(z_q):

    minimise  mean (x_hat - x)^2  +  beta * mean |z_e - sg(z_q)|^2   (+ mean |sg(z_e) - z_q|^2 without EMA)

with beta = 0.25; by default the codebook follows its assigned vectors by exponential moving
averages (decay 0.99, Laplace smoothing) instead of the last term, and dead codes (EMA count below
``method.dead_below``) restart at batch vectors. Logged: the reconstruction MSE, the same over the
batch's variance (``recon_over_var``, the Sonnet example's measure), the codebook's perplexity
(exp of the entropy of code use in the batch: K when all K codes are used equally), the fraction
of codes used in the batch and the restarts. One code of K is log2 K bits, so a 7x7 grid of 512
codes holds 49 x 9 = 441 bits per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import MethodOptions, _opt
from ganforge.data import Batch
from ganforge.errors import GanforgeError
from ganforge.losses.perceptual import pixel_mse
from ganforge.methods.autoencoder import alternate_rows, reconstruction_preview_inputs
from ganforge.methods.base import Carry, Method, OptimizerSpec, Phase, find_finished_run
from ganforge.methods.graphs import PICTURE_VALUES, GraphInput, SamplingGraph
from ganforge.models.vq import CodePrior, VectorQuantizer, VQDecoder, VQEncoder

VQ_MODEL_KEYS = ("ae_width", "res_blocks", "codebook_size", "code_dim")


@dataclass
class VQVAEOptions(MethodOptions):
    name: str = _opt("vqvae", "training method")
    lr: float = _opt(2e-4, "Adam learning rate", min=0.0, max=1.0)
    commitment: float = _opt(0.25, "beta, the weight of the commitment loss", min=0.0)
    codebook: str = _opt("ema", "how the codebook learns: ema (moving averages of its assigned vectors) or loss "
                         "(the codebook loss, by gradient)", choices=["ema", "loss"])
    decay: float = _opt(0.99, "method.codebook=ema: the moving averages' decay", min=0.0, max=1.0)
    dead_below: float = _opt(1.0, "restart a code at a batch vector when its moving count of assigned vectors "
                             "falls below this; 0: never", min=0.0)
    paper_keys = ("lr", "commitment", "codebook", "decay")


class VQVAEMethod(Method):
    """Encoder E, vector quantiser Q and decoder G, one Adam over all three."""

    Options = VQVAEOptions
    model_keys = VQ_MODEL_KEYS
    architecture = "conv VQ-VAE"
    has_prior = False
    preview_caption = "the same real images (odd rows) and their reconstructions (even rows) at every step"

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        self.require_pictures("encodes")
        c, h, w = data.sample_shape
        if h % 4 or w % 4:
            raise GanforgeError(f"method vqvae halves the pictures twice; {h}x{w} does not divide by 4 (set "
                                "data.resolution to 28, 32, 64 or 128)")
        m, o = cfg.model, self.options
        self.models = {"E": VQEncoder(c, m.ae_width, m.res_blocks, m.code_dim),
                       "Q": VectorQuantizer(m.codebook_size, m.code_dim, o.codebook == "ema", o.decay,
                                            dead_below=o.dead_below),
                       "G": VQDecoder(c, m.ae_width, m.res_blocks, m.code_dim)}

    def phases(self) -> list[Phase]:
        return [Phase("AE", "AE", self.loss)]

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options
        networks = ("E", "G") if o.codebook == "ema" else ("E", "Q", "G")
        return {"AE": OptimizerSpec(o.lr, (0.9, 0.999), networks=networks, kind=o.optimizer,
                                    weight_decay=o.weight_decay, schedule=self.schedule())}

    @property
    def code_bits(self) -> float:
        """Bits one picture's code holds: h w log2 K (the grid is a quarter of the picture's side)."""
        _, h, w = self.data.sample_shape
        return (h // 4) * (w // 4) * math.log2(self.cfg.model.codebook_size)

    def objective(self) -> str:
        m = self.cfg.model
        return (f"MSE + {self.options.commitment:g} x commitment, {m.codebook_size} codes of {m.code_dim} "
                f"({self.options.codebook} codebook), {self.code_bits:g} bits per image")

    def example_inputs(self, n=2):
        c, h, w = self.data.sample_shape
        dim = self.cfg.model.code_dim
        return {"E": (torch.zeros(n, c, h, w),), "Q": (torch.zeros(n, dim, h // 4, w // 4),),
                "G": (torch.zeros(n, dim, h // 4, w // 4),)}

    def loss(self, models, batch: Batch, carry: Carry | None = None) -> dict[str, torch.Tensor]:
        x = batch.x
        z_q, _, q = models["Q"](models["E"](x))
        mse = pixel_mse(models["G"](z_q), x)
        loss = mse + self.options.commitment * q["commitment"]
        if "codebook" in q:
            loss = loss + q["codebook"]
        over_var = mse.detach() / x.float().var().clamp_min(1e-8)
        return {"loss": loss, "recon_mse": mse.detach(), "recon_over_var": over_var, **q}

    # -- encoding and decoding ---------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (B, h, w) of pictures in [-1, 1]."""
        return self.models["Q"](self.models["E"](x))[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Pictures for codes (B, h, w)."""
        return self.models["G"](self.models["Q"].lookup(codes))

    def export_graphs(self, ema=True):
        """encoder: pictures -> codes (batch, h, w); decoder: codes -> pictures. The VQ-VAE is exported
        as ganforge encodes and decodes with it (its trained weights; ``ema`` does not apply)."""
        models = self.models
        return [code_graph("encoder", "encode", CodesOf(models["E"], models["Q"]), self.data.sample_shape,
                           self.cfg.model.codebook_size, reads_codes=False),
                code_graph("decoder", "decode", PicturesOf(models["Q"], models["G"]), self.data.sample_shape,
                           self.cfg.model.codebook_size, reads_codes=True)]

    def sampling_inputs(self, n, generator=None, *, label=None, truncation=None):
        raise GanforgeError("a vqvae run learns codes, not a distribution over them; its pictures are "
                            "reconstructions (report.html shows them)")

    def preview_inputs(self, dataset, seed, n):
        return reconstruction_preview_inputs(dataset, seed)

    @torch.no_grad()
    def preview(self, inputs: dict[str, torch.Tensor], device) -> torch.Tensor:
        """Originals and their reconstructions in alternating rows of 8."""
        was = {k: m.training for k, m in self.models.items()}
        for m in self.models.values():
            m.eval()
        real = inputs["x"].to(device)
        recon = self.decode(self.encode(real)).float().clamp(-1, 1).cpu()
        for k, m in self.models.items():
            m.train(was[k])
        real = real.float().cpu()
        return alternate_rows(real, recon)


@dataclass
class VQPriorOptions(MethodOptions):
    name: str = _opt("vqprior", "training method")
    vq_run: str = _opt("", "the finished vqvae run whose codes the prior learns: its folder, or a preset name for "
                       "the newest run of it under runs/")
    lr: float = _opt(3e-4, "AdamW learning rate", min=0.0, max=1.0)
    temperature: float = _opt(1.0, "sampling temperature of the prior's softmax (below 1: safer, less varied)",
                              min=1e-3, max=10.0)
    paper_keys = ("lr",)


class CodesOf(nn.Module):
    """Pictures (B, C, H, W) -> the nearest codes (B, H/4, W/4)."""

    def __init__(self, encoder: nn.Module, quantizer: VectorQuantizer):
        super().__init__()
        self.encoder, self.quantizer = encoder, quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer.codes(self.encoder(x))


class PicturesOf(nn.Module):
    """Codes (B, h, w) -> pictures (B, C, 4h, 4w) in [-1, 1]."""

    def __init__(self, quantizer: VectorQuantizer, decoder: nn.Module):
        super().__init__()
        self.quantizer, self.decoder = quantizer, decoder

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(codes)).clamp(-1, 1)


def code_graph(name: str, role: str, module: nn.Module, sample_shape, n_codes: int, reads_codes: bool) -> SamplingGraph:
    """Pictures <-> the code grid (batch, H/4, W/4) of a VQ-VAE with ``n_codes`` codes."""
    c, h, w = sample_shape
    codes = ("batch", h // 4, w // 4)
    pictures = GraphInput("input", ("batch", c, h, w), "picture")
    grid = GraphInput("codes", codes, "index", high=n_codes, about="the code grid")
    if reads_codes:
        return SamplingGraph(name, role, module, (grid,), ("pictures", ("batch", c, h, w), PICTURE_VALUES),
                             {"batch": 2})
    return SamplingGraph(name, role, module, (pictures,), ("codes", codes, f"integers 0 .. {n_codes - 1}"),
                         {"batch": 2})


def load_vq_run(name: str, key: str = "method.vq_run") -> tuple[VQVAEMethod, Path]:
    """The frozen VQ-VAE of a finished vqvae run (eval mode) and the checkpoint it came from."""
    import json

    from ganforge.config import config_from_dict
    from ganforge.data import DataSpec
    from ganforge.train.checkpoint import latest_checkpoint, load_weights

    if not name:
        raise GanforgeError(f"{key} is empty; name the vqvae run whose codes the prior learns (e.g. "
                            f"--set {key}=vqvae-mnist after `ganforge train vqvae-mnist`)")
    run = find_finished_run(name, key)
    cfg = config_from_dict(json.loads((run / "config.json").read_text()))
    if cfg.method.name != "vqvae":
        raise GanforgeError(f"{key}={name} is a {cfg.method.name} run; the prior needs a vqvae run")
    info = json.loads((run / "run.json").read_text())
    vq = VQVAEMethod(cfg, DataSpec(tuple(info["sample_shape"]), True, info.get("n_classes")))
    ckpt = latest_checkpoint(run)
    load_weights(ckpt, vq.models)
    for m in vq.models.values():
        m.eval().requires_grad_(False)
    return vq, ckpt


class VQPriorMethod(Method):
    """A causal transformer P over the code grids of a frozen VQ-VAE (``method.vq_run``); samples
    are codes drawn from P and decoded by the VQ-VAE."""

    Options = VQPriorOptions
    model_keys = ("prior_width", "prior_layers", "prior_heads", "prior_dropout")
    architecture = "causal transformer over VQ-VAE codes"
    sampler = "P"
    preview_caption = "codes drawn from the prior (the same uniforms at every step), decoded by the VQ-VAE"

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        self.vq, self.vq_checkpoint = load_vq_run(self.options.vq_run)
        if tuple(self.vq.data.sample_shape) != tuple(data.sample_shape):
            raise GanforgeError(f"method.vq_run encodes {tuple(self.vq.data.sample_shape)} pictures and this data is "
                                f"{tuple(data.sample_shape)}; train the prior on the VQ-VAE's data.source and "
                                "resolution")
        c, h, w = data.sample_shape
        self.grid = (h // 4, w // 4)
        m = cfg.model
        self.models = {"P": CodePrior(self.vq.cfg.model.codebook_size, self.codes_per_image, m.prior_width,
                                      m.prior_layers, m.prior_heads, m.prior_dropout)}

    def fixed_networks(self) -> dict[str, torch.nn.Module]:
        return {f"vq_{name}": module for name, module in self.vq.models.items()}

    @property
    def codes_per_image(self) -> int:
        return self.grid[0] * self.grid[1]

    def phases(self) -> list[Phase]:
        return [Phase("P", "P", self.loss)]

    def optimizers(self) -> dict[str, OptimizerSpec]:
        o = self.options
        return {"P": OptimizerSpec(o.lr, (0.9, 0.95), kind="adamw", weight_decay=o.weight_decay,
                                   schedule=self.schedule())}

    def objective(self) -> str:
        return f"negative log-likelihood of {self.grid[0]}x{self.grid[1]} VQ-VAE codes"

    def example_inputs(self, n=2):
        return {"P": (torch.zeros(n, self.codes_per_image, dtype=torch.long),)}

    def state_dict(self):
        return {}, {"vq_checkpoint": str(self.vq_checkpoint)}

    def load_state_dict(self, tensors, state):
        if state.get("vq_checkpoint") != str(self.vq_checkpoint):
            raise GanforgeError(f"this prior was trained on the codes of {state.get('vq_checkpoint')}, and "
                                f"method.vq_run now gives {self.vq_checkpoint}; point method.vq_run at that run")

    def code_nll(self, models, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the codes of pictures x, nats per code, per picture (B,)."""
        with torch.no_grad():
            codes = self.vq.encode(x).flatten(1)
        logits = models["P"](codes)
        return F.cross_entropy(logits.float().transpose(1, 2), codes, reduction="none").mean(1)

    def loss(self, models, batch: Batch, carry: Carry | None = None) -> dict[str, torch.Tensor]:
        nll = self.code_nll(models, batch.x).mean()
        return {"loss": nll, "bits_per_code": nll.detach() / math.log(2)}

    @torch.no_grad()
    def test_bits_per_code(self, images: torch.Tensor, device="cpu", batch: int = 500) -> float:
        """Mean negative log-likelihood of the codes of ``images`` (uint8 N x C x H x W), bits per code."""
        net = self.models["P"]
        was = net.training
        net.eval()
        total = 0.0
        for chunk in images.split(batch):
            x = chunk.to(device).float() / 127.5 - 1
            total += float(self.code_nll(self.models, x).sum())
        net.train(was)
        return total / len(images) / math.log(2)

    # -- sampling ----------------------------------------------------------------------------

    def export_graphs(self, ema=True):
        """prior: codes (batch, L) -> logits (batch, L, K) of each code given the codes before it (draw
        a grid by L calls, position by position); decoder: the VQ-VAE's codes (batch, h, w) -> pictures."""
        k, length = self.vq.cfg.model.codebook_size, self.codes_per_image
        prior = SamplingGraph("prior", "prior", self.exported("P", ema),
                              (GraphInput("codes", ("batch", length), "index", high=k,
                                          about="the grid in raster order; position t's logits read codes 0..t-1"),),
                              ("logits", ("batch", length, k), "logits of each code given the codes before it"),
                              {"batch": 2})
        decoder = code_graph("decoder", "decode", PicturesOf(self.vq.models["Q"], self.vq.models["G"]),
                             self.data.sample_shape, k, reads_codes=True)
        return [prior, decoder]

    def sampling_inputs(self, n, generator=None, *, label=None, truncation=None):
        self.check_label(label)
        if truncation is not None:
            raise GanforgeError("--truncation is for Gaussian latents; a vqprior run has method.temperature")
        return {"u": torch.rand(n, self.codes_per_image, generator=generator)}

    def forward_sampler(self, net, inputs):
        codes = net.sample(inputs["u"], self.options.temperature).view(-1, *self.grid)
        return self.vq.decode(codes).clamp(-1, 1)
