"""The config's schema: typed sections, per-method options and the method registry."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import ClassVar

from ganforge.errors import GanforgeError, did_you_mean


def _opt(default, help: str, *, min=None, max=None, choices=None):  # noqa: A002
    """A config field with its help text and the range or choices it accepts."""
    meta = {"help": help, "min": min, "max": max, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    source: str = _opt("mnist", "dataset: mnist, fashion-mnist, digits, stacked-mnist, emoji-google, "
                       "emoji-twitter, emoji-apple, emoji-facebook, emoji-emojione, emoji-all, icons-oxygen, "
                       "toy-ring, toy-grid, toy-mixture, folder; paired (pix2pix): edges2emoji, gray2emoji, "
                       "masked2emoji, emoji-<vendor>2<vendor>, paired (a folder of pairs); unpaired (cyclegan): "
                       "emoji-<vendor>-<vendor>, unpaired (trainA/ and trainB/ folders)")
    split: str = _opt("train", "which split to train on", choices=["train", "test"])
    path: str = _opt("", "image folder (source=folder)")
    resolution: int = _opt(0, "resize + centre-crop images to this size; 0 keeps the native size (a folder of "
                           "mixed or non-square sizes: 64)",
                           min=0, max=1024)
    channels: int = _opt(0, "convert images to 1 (grey) or 3 (RGB) channels; 0 keeps native",
                         choices=[0, 1, 3])
    toy_means: list = _opt([], "toy-mixture: list of [x, y] means")
    toy_stds: list = _opt([], "toy-mixture: one std per mean (or a single std for all)")
    toy_points: int = _opt(200_000, "how many points a toy dataset holds", min=100,
                             max=10_000_000)
    classes: list = _opt([], "keep only images with these labels (e.g. [3] for one-class anomaly detection); "
                         "empty keeps all")
    background: str = _opt("white", "colour that transparent pixels are composited onto (emoji, icons, "
                           "RGBA folders): white, black, grey or #rrggbb")
    label: str = _opt("category", "emoji: which label y holds, category (10) or subcategory (99)",
                      choices=["category", "subcategory"])
    skip_unpaired: bool = _opt(False, "source=paired: skip (and count) pictures without a partner instead of "
                               "stopping at the first")
    holdout: float = _opt(0.0, "fraction of the split held out of training (seeded), e.g. to calibrate an "
                          "anomaly threshold on normal images the model never saw", min=0.0, max=0.9)


@dataclass
class ModelConfig:
    arch: str = _opt("dcgan", "architecture: mlp or dcgan")
    d_norm: str = _opt("batch", "dcgan discriminator normalisation: batch, layer (needed for a gradient "
                       "penalty, which is per sample) or none", choices=["batch", "layer", "none"])
    spectral_norm: bool = _opt(False, "spectral normalisation of every discriminator weight (Miyato et al.); "
                               "cyclegan: with no normalisation layer in its discriminators")
    embed_dim: int = _opt(32, "cgan, infogan: size of the label (code) embedding joined to z", min=1)
    cond_d: str = _opt("projection", "cgan discriminator: projection or acgan (auxiliary classifier)",
                       choices=["projection", "acgan"])
    z_dim: int = _opt(100, "latent dimension", min=1, max=4096)
    g_width: int = _opt(64, "generator width (channels of the last hidden layer, or MLP units; stylegan: channels "
                        "up to 16 px, halving at each doubling above)",
                        min=1)
    d_width: int = _opt(64, "discriminator width (channels of the first layer, or MLP units)",
                        min=1)
    g_depth: int = _opt(3, "MLP generator hidden layers", min=1, max=16)
    d_depth: int = _opt(3, "MLP discriminator hidden layers", min=1, max=16)
    ae_width: int = _opt(32, "ae/vae: conv channels of the first encoder layer, or MLP hidden units; vqvae: "
                        "channels of its encoder and decoder (the Sonnet example: 128)", min=1)
    ae_depth: int = _opt(2, "ae/vae with model.arch=mlp: hidden layers of encoder and decoder", min=1, max=16)
    minibatch_std: int = _opt(0, "dcgan: a minibatch standard-deviation feature before D's last layer over groups "
                              "of this many pictures (ProGAN's, 4; 0: none); it mixes the batch as batch norm does, so "
                              "a gradient penalty is then not per sample", min=0, max=64)
    g_extra_layers: int = _opt(0, "dcgan: 3x3 stride-1 conv layers added to G at its smallest resolution (7x7 at "
                               "28 px), right after the projection of z", min=0, max=8)
    d_extra_layers: int = _opt(0, "dcgan: 3x3 stride-1 conv layers added to D at its smallest resolution, right "
                               "before its last layer", min=0, max=8)
    d_layers: int = _opt(3, "pix2pix, cyclegan: strided layers of the PatchGAN discriminator (3: 70x70 patches, "
                         "2: 34x34); srgan: stride-2 stages of its discriminator (the paper: 4)", min=1, max=6)
    norm: str = _opt("batch", "pix2pix, cyclegan, srresnet, srgan: normalisation in the generator and the "
                     "discriminator, batch, instance or none", choices=["batch", "instance", "none"])
    upsample: str = _opt("transpose", "cyclegan: generator upsampling, transpose (the paper's strided transposed "
                         "conv) or resize (nearest x2 then a 3x3 conv, no checkerboard)",
                         choices=["transpose", "resize"])
    input_skip: bool = _opt(False, "cyclegan: each generator adds its input to its output and learns only the change "
                            "(starts as the identity; not in the paper; needs the domains' channels to match)")
    g_downsamplings: int = _opt(2, "cyclegan: stride-2 convolutions before the generator's residual blocks (and "
                                "as many upsamplings after them); the paper: 2 at every size, which leaves 8 x 8 "
                                "maps at 32 px", min=0, max=5)
    res_blocks: int = _opt(9, "cyclegan: residual blocks of the ResNet generator (the paper: 6 up to 128 px, 9 at "
                           "256); srresnet, srgan: of the SRResNet (the paper: 16); vqvae: of its encoder and "
                           "decoder (2)", min=0, max=32)
    codebook_size: int = _opt(512, "vqvae: codes in the codebook (K)", min=2, max=65536)
    code_dim: int = _opt(64, "vqvae: dimension of each code vector (D)", min=1, max=4096)
    prior_width: int = _opt(128, "vqprior: width of the causal transformer", min=8, max=4096)
    prior_layers: int = _opt(4, "vqprior: transformer layers", min=1, max=48)
    prior_heads: int = _opt(4, "vqprior: attention heads (prior_width must divide by it)", min=1, max=64)
    prior_dropout: float = _opt(0.0, "vqprior: dropout on the transformer's residual branches while training (against "
                                "overfitting a small dataset)", min=0.0, max=0.9)
    w_dim: int = _opt(0, "stylegan: dimension of the intermediate latent w (0: the same as z_dim)", min=0, max=4096)
    mapping_layers: int = _opt(8, "stylegan: layers of the mapping network z -> w (the paper: 8; its CIFAR "
                               "setting: 2)", min=1, max=16)
    demodulate: bool = _opt(True, "stylegan: weight demodulation in the modulated convolutions (off: StyleGAN2's "
                            "ablation, where the droplet artefacts return)")
    bicubic_skip: bool = _opt(False, "srresnet, srgan: add the bicubic upscaling of the input to the output, so the "
                              "network learns only what bicubic misses (VDSR's global residual; not in the paper)")
    likelihood: str = _opt("bernoulli", "ae/vae decoder p(x|z): bernoulli (pixels as probabilities; binary "
                           "cross-entropy) or gaussian (mean in [-1, 1], one learned sigma)",
                           choices=["bernoulli", "gaussian"])


@dataclass
class MethodOptions:
    """The options every method reads. A method declares its own options as a subclass (with the
    paper's defaults) in its method file and registers it with :func:`register_method`."""

    name: str = _opt("gan", "training method")
    ema_halflife_kimg: float = _opt(0.0, "half-life of the generator EMA in thousands of "
                                    "images; 0 disables it", min=0.0)
    optimizer: str = _opt("adam", "optimizer of every network: adam, or adamw (decoupled weight decay)",
                          choices=["adam", "adamw"])
    weight_decay: float = _opt(0.0, "method.optimizer=adamw: weight decay", min=0.0)
    lr_schedule: str = _opt("constant", "learning rates: constant, or linear (constant until lr_decay_start, "
                            "then linearly to zero at train.steps, as pix2pix and CycleGAN train)",
                            choices=["constant", "linear"])
    lr_decay_start: float = _opt(0.5, "method.lr_schedule=linear: the fraction of train.steps after which the "
                                 "learning rates decay", min=0.0, max=1.0)

    #: keys that define the method (its paper's settings): switching to this method with
    #: ``--set method.name=...`` resets them to these defaults instead of keeping the preset's
    paper_keys: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class MethodSpec:
    """What the config needs to know of a method: its options and the model keys it reads."""

    options: type
    model_keys: tuple[str, ...]


#: method name -> its spec, filled by ganforge.methods when the package is imported
METHOD_SPECS: dict[str, MethodSpec] = {}


def register_method(name: str, options: type, model_keys: tuple[str, ...]) -> None:
    """Make ``method.name=<name>`` valid, with ``options`` (a MethodOptions subclass) as its keys."""
    METHOD_SPECS[name] = MethodSpec(options, tuple(model_keys))


def method_spec(name: str) -> MethodSpec:
    if name not in METHOD_SPECS:
        raise GanforgeError(f"unknown method.name '{name}'{did_you_mean(str(name), METHOD_SPECS)}; choose one of "
                            f"{', '.join(METHOD_SPECS)}")
    return METHOD_SPECS[name]


@dataclass
class TrainConfig:
    steps: int = _opt(1000, "generator steps (iterations) to train", min=1, max=1_000_000_000)
    batch_size: int = _opt(128, "images per batch", min=1, max=65536)
    seed: int = _opt(0, "seed for weights, batches and noise", min=0, max=2**63 - 1)
    device: str = _opt("auto", "auto, cpu or cuda", choices=["auto", "cpu", "cuda"])
    precision: str = _opt("fp32", "fp32, or bf16 autocast (CUDA, and CPUs with AVX-512 or AMX; "
                          "elsewhere bf16 is emulated, so such a CPU trains in fp32 and says so)",
                          choices=["fp32", "bf16"])
    channels_last: bool = _opt(False, "use the channels_last memory format for conv nets")
    compile: bool = _opt(False, "compile the trained networks with torch.compile: fewer, fused kernels for a GPU "
                         "whose step is bound by kernel launches (StyleGAN); the first steps wait for the "
                         "compiler, and phases that differentiate a gradient (R1, gradient penalty, path length) "
                         "run the networks uncompiled")
    log_every: int = _opt(50, "steps between rows of metrics.jsonl", min=1)
    sample_every: int = _opt(500, "steps between fixed-noise sample grids; 0 = only at the end",
                             min=0)
    checkpoint_every: int = _opt(500, "steps between checkpoints; 0 = only at the end", min=0)
    checkpoint_minutes: float = _opt(10.0, "also save a checkpoint when this many minutes of wall time have "
                                     "passed since the last one (a slow run never loses more); 0 = off", min=0.0)
    keep_checkpoints: int = _opt(2, "how many recent checkpoints to keep", min=1)
    nan_rollbacks: int = _opt(0, "when a loss becomes NaN or infinite: go back to the last checkpoint with the "
                              "learning rates halved, at most this many times (0: stop the run)", min=0, max=10)
    eval_samples: int = _opt(2500, "samples drawn for the end-of-run and periodic evaluations", min=2)
    eval_every_kimg: float = _opt(0.0, "evaluate every this many thousand real images (FID for MNIST-family "
                                  "data, mode statistics for 2-D data), logged to metrics.jsonl; 0 = never",
                                  min=0.0)
    health: bool = _opt(True, "health monitor: D accuracy, the gradient reaching G, a sample-diversity probe at "
                        "every log step, and plain-language alerts (vanishing gradient, mode collapse, ...)")
    tensorboard: bool = _opt(False, "also log scalars and sample grids for TensorBoard under RUN/tensorboard "
                             "(needs the tensorboard package: pip install 'ganforge[tensorboard]')")


@dataclass
class Config:
    """The whole run configuration. ``name`` is the preset it came from (or the file stem)."""

    name: str = _opt("custom", "preset or experiment name")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodOptions = field(default_factory=lambda: method_spec("gan").options())
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        """The config as nested dicts, with only the model keys the method reads."""
        out = dataclasses.asdict(self)
        keys = method_spec(self.method.name).model_keys
        out["model"] = {k: v for k, v in out["model"].items() if k in keys}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# Keys a resumed run may change: how long it trains and how it reports, never what it is.
RESUMABLE_KEYS = {"train.steps", "train.device", "train.compile", "train.log_every", "train.sample_every",
                  "train.checkpoint_every", "train.checkpoint_minutes", "train.keep_checkpoints",
                  "train.nan_rollbacks", "train.eval_samples",
                  "train.eval_every_kimg", "train.health", "train.tensorboard"}


