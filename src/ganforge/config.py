"""Typed, validated run configuration.

A config is a tree of dataclasses. It comes from a shipped YAML preset or a user's YAML file,
plus ``key=value`` overrides, and is checked once at the edge: unknown keys (with the closest
name suggested), wrong types and out-of-range values raise :class:`GanforgeError` in one line.
The resolved config is saved as JSON in the run directory and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from ganforge.errors import GanforgeError, did_you_mean


def _opt(default, help: str, *, min=None, max=None, choices=None):  # noqa: A002
    """A config field with its help text and the range or choices it accepts."""
    meta = {"help": help, "min": min, "max": max, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    source: str = _opt("mnist", "dataset: mnist, fashion-mnist, digits, toy-ring, toy-grid, "
                       "toy-mixture, folder")
    split: str = _opt("train", "which split to train on", choices=["train", "test"])
    path: str = _opt("", "image folder (source=folder)")
    resolution: int = _opt(0, "resize + centre-crop images to this size; 0 keeps the native size (a folder of "
                           "mixed or non-square sizes: 64)",
                           min=0, max=1024)
    channels: int = _opt(0, "convert images to 1 (grey) or 3 (RGB) channels; 0 keeps native",
                         choices=[0, 1, 3])
    toy_means: list = _opt([], "toy-mixture: list of [x, y] means")
    toy_stds: list = _opt([], "toy-mixture: one std per mean (or a single std for all)")
    toy_points: int = _opt(200_000, "how many points a toy dataset holds", min=100)
    classes: list = _opt([], "keep only images with these labels (e.g. [3] for one-class anomaly detection); "
                         "empty keeps all")
    holdout: float = _opt(0.0, "fraction of the split held out of training (seeded), e.g. to calibrate an "
                          "anomaly threshold on normal images the model never saw", min=0.0, max=0.9)


@dataclass
class ModelConfig:
    arch: str = _opt("dcgan", "architecture: mlp or dcgan")
    d_norm: str = _opt("batch", "dcgan discriminator normalisation: batch, layer (needed for a gradient "
                       "penalty, which is per sample) or none", choices=["batch", "layer", "none"])
    spectral_norm: bool = _opt(False, "spectral normalisation of every discriminator weight (Miyato et al.)")
    embed_dim: int = _opt(32, "cgan: size of the label embedding joined to z", min=1)
    cond_d: str = _opt("projection", "cgan discriminator: projection or acgan (auxiliary classifier)",
                       choices=["projection", "acgan"])
    z_dim: int = _opt(100, "latent dimension", min=1, max=4096)
    g_width: int = _opt(64, "generator width (channels of the last hidden layer, or MLP units)",
                        min=1)
    d_width: int = _opt(64, "discriminator width (channels of the first layer, or MLP units)",
                        min=1)
    g_depth: int = _opt(3, "MLP generator hidden layers", min=1, max=16)
    d_depth: int = _opt(3, "MLP discriminator hidden layers", min=1, max=16)
    ae_width: int = _opt(32, "ae/vae: conv channels of the first encoder layer, or MLP hidden units", min=1)
    ae_depth: int = _opt(2, "ae/vae with model.arch=mlp: hidden layers of encoder and decoder", min=1, max=16)
    likelihood: str = _opt("bernoulli", "ae/vae decoder p(x|z): bernoulli (pixels as probabilities; binary "
                           "cross-entropy) or gaussian (mean in [-1, 1], one learned sigma)",
                           choices=["bernoulli", "gaussian"])


@dataclass
class MethodConfig:
    name: str = _opt("gan", "training method")
    loss: str = _opt("ns", "the game: ns (BCE, non-saturating G loss -log D(G(z))), mm (BCE, saturating "
                     "log(1 - D(G(z)))), hinge, lsgan (least squares) or wgan (Wasserstein)",
                     choices=["ns", "mm", "hinge", "lsgan", "wgan"])
    d_steps: int = _opt(1, "discriminator steps per generator step (k)", min=1, max=100)
    lr_g: float = _opt(2e-4, "generator Adam learning rate", min=0.0, max=1.0)
    lr_d: float = _opt(2e-4, "discriminator Adam learning rate", min=0.0, max=1.0)
    beta1: float = _opt(0.5, "Adam beta1", min=0.0, max=1.0)
    beta2: float = _opt(0.999, "Adam beta2", min=0.0, max=1.0)
    r1_gamma: float = _opt(0.0, "weight of the R1 penalty gamma/2 * E||grad D(x)||^2 on real data; "
                           "0 disables it", min=0.0)
    acgan_weight: float = _opt(1.0, "cgan with model.cond_d=acgan: weight of the auxiliary classification loss",
                               min=0.0)
    gp_weight: float = _opt(10.0, "lambda of the gradient penalty (method wgan-gp)", min=0.0)
    clip: float = _opt(0.01, "weight clipping bound c for the critic (method wgan)", min=0.0)
    lr: float = _opt(1e-3, "ae/vae: Adam learning rate of encoder and decoder", min=0.0, max=1.0)
    beta: float = _opt(1.0, "vae: weight of the KL term (beta-VAE; 1 gives the ELBO)", min=0.0)
    kl_warmup_kimg: float = _opt(0.0, "vae: ramp the KL weight from 0 to beta over this many thousand images",
                                 min=0.0)
    binarize: bool = _opt(False, "ae/vae with a bernoulli decoder: train on dynamically binarised images (each "
                          "pixel drawn as 0/1 with its grey level as probability, afresh every batch)")
    perceptual_weight: float = _opt(0.0, "ae/vae: add this weight x squared distance between the dataset "
                                    "classifier's features of input and reconstruction", min=0.0)
    ema_halflife_kimg: float = _opt(0.0, "half-life of the generator EMA in thousands of "
                                    "images; 0 disables it", min=0.0)


@dataclass
class TrainConfig:
    steps: int = _opt(1000, "generator steps (iterations) to train", min=1)
    batch_size: int = _opt(128, "images per batch", min=1, max=65536)
    seed: int = _opt(0, "seed for weights, batches and noise", min=0)
    device: str = _opt("auto", "auto, cpu or cuda", choices=["auto", "cpu", "cuda"])
    precision: str = _opt("fp32", "fp32, or bf16 autocast (CPU and CUDA)",
                          choices=["fp32", "bf16"])
    channels_last: bool = _opt(False, "use the channels_last memory format for conv nets")
    log_every: int = _opt(50, "steps between rows of metrics.jsonl", min=1)
    sample_every: int = _opt(500, "steps between fixed-noise sample grids; 0 = only at the end",
                             min=0)
    checkpoint_every: int = _opt(500, "steps between checkpoints; 0 = only at the end", min=0)
    keep_checkpoints: int = _opt(2, "how many recent checkpoints to keep", min=1)
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
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# The papers' settings, used for keys a config leaves unset when it names one of these methods.
METHOD_DEFAULTS = {
    "wgan-gp": {"loss": "wgan", "d_steps": 5, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9,
                "gp_weight": 10.0},
    "wgan": {"loss": "wgan", "d_steps": 5, "lr_g": 5e-5, "lr_d": 5e-5, "beta1": 0.0, "beta2": 0.9, "clip": 0.01},
}

# Keys a resumed run may change: how long it trains and how it reports, never what it is.
RESUMABLE_KEYS = {"train.steps", "train.device", "train.log_every", "train.sample_every",
                  "train.checkpoint_every", "train.keep_checkpoints", "train.eval_samples",
                  "train.eval_every_kimg", "train.health", "train.tensorboard"}


# ---------------------------------------------------------------------------------------------
# Building a config from nested dicts, with validation.

def _check_value(key: str, value: Any, typ: type, meta: dict) -> Any:
    """Coerce ``value`` to ``typ`` where that is lossless, then check range and choices."""
    if typ is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            value = value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise GanforgeError(f"{key} must be true or false, got {value!r}")
    elif typ is int:
        if isinstance(value, str):
            try:
                value = int(value.replace("_", ""))
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise GanforgeError(f"{key} must be an integer, got {value!r}")
    elif typ is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise GanforgeError(f"{key} must be a number, got {value!r}")
        value = float(value)
    elif typ is str:
        if not isinstance(value, str):
            raise GanforgeError(f"{key} must be a string, got {value!r}")
    elif typ is list:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, list):
            raise GanforgeError(f"{key} must be a list, got {value!r}")
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if lo is not None and value < lo:
        raise GanforgeError(f"{key} must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise GanforgeError(f"{key} must be <= {hi}, got {value!r}")
    if choices is not None and value not in choices:
        raise GanforgeError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def _build(cls, data: dict, prefix: str = ""):
    if not isinstance(data, dict):
        raise GanforgeError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = prefix + str(key)
        if key not in known:
            hint = did_you_mean(str(key), known)
            raise GanforgeError(f"unknown config key '{full}'{hint}; see `ganforge train --help-config`")
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            kwargs[key] = _build(typ, value, full + ".")
        else:
            kwargs[key] = _check_value(full, value, typ, known[key].metadata)
    return cls(**kwargs)


def config_from_dict(data: dict) -> Config:
    """Validate a nested dict (as read from YAML or JSON) into a :class:`Config`.

    When ``method.name`` has paper defaults (METHOD_DEFAULTS), they fill the method keys the
    dict leaves unset; ``method.loss`` must then be the method's own game.
    """
    data = dict(data or {})
    method = data.get("method")
    if isinstance(method, dict) and method.get("name") in METHOD_DEFAULTS:
        defaults = METHOD_DEFAULTS[method["name"]]
        if method.get("loss", defaults["loss"]) != defaults["loss"]:
            raise GanforgeError(f"method {method['name']} plays the {defaults['loss']} game; remove "
                                f"method.loss={method['loss']} or use method.name=gan")
        data["method"] = {**defaults, **method}
    return _build(Config, data)


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise GanforgeError(f"cannot set '{dotted}': '{p}' is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is read as YAML so numbers, booleans and lists work."""
    if "=" not in text:
        raise GanforgeError(f"override '{text}' must look like key=value, e.g. train.steps=2000")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # Keep strings that YAML would reinterpret (e.g. "1e-4" stays a float, "on" a string).
    if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
        value = raw.strip()
    return key, value


# ---------------------------------------------------------------------------------------------
# Presets.

def preset_dir():
    return resources.files("ganforge") / "configs"


def list_presets() -> dict[str, str]:
    """Preset name -> its one-line description (the YAML file's first comment line)."""
    out = {}
    for entry in sorted(preset_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            first = entry.read_text().splitlines()[0] if entry.read_text() else ""
            out[entry.name[:-5]] = first.lstrip("# ").strip()
    return out


def load_config(preset_or_path: str, overrides: list[str] | dict | None = None) -> Config:
    """Load a shipped preset by name, or a YAML file by path, and apply ``key=value`` overrides."""
    path = Path(preset_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise GanforgeError(f"config file '{path}' does not exist; check the path or run "
                                "`ganforge presets`")
        text = path.read_text()
        name = path.stem
    else:
        presets = list_presets()
        if preset_or_path not in presets:
            hint = did_you_mean(preset_or_path, presets)
            raise GanforgeError(f"unknown preset '{preset_or_path}'{hint}; `ganforge presets` "
                                "lists them")
        text = (preset_dir() / f"{preset_or_path}.yaml").read_text()
        name = preset_or_path
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise GanforgeError(f"cannot parse {preset_or_path} as YAML: {exc}".splitlines()[0]) from None
    tree.setdefault("name", name)
    items = list(overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or []))
    for key, value in items:
        _set_path(tree, key, value)
    # Switching to a method with paper settings (e.g. --set method.name=wgan-gp on an NS-GAN preset)
    # takes those settings, except the ones set on the same command line.
    new_method = dict(items).get("method.name")
    if new_method in METHOD_DEFAULTS:
        given = {k.split(".", 1)[1] for k, _ in items if k.startswith("method.")}
        for key in METHOD_DEFAULTS[new_method]:
            if key not in given:
                tree["method"].pop(key, None)
    return config_from_dict(tree)


def describe_config() -> str:
    """Every config key with its default and help, for `ganforge train --help-config`."""
    lines = []
    for section in fields(Config):
        cls = get_type_hints(Config)[section.name]
        if not dataclasses.is_dataclass(cls):
            lines.append(f"{section.name} = {section.default!r}  # {section.metadata['help']}")
            continue
        for f in fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"{section.name}.{f.name} = {default!r}  # {f.metadata['help']}")
    return "\n".join(lines)
