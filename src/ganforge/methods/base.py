"""The interface every method (model family) implements, and the records it hands the loop.

A method owns its networks, its options and any state of its own, and says

* how one training iteration goes, as a list of :class:`Phase` records, and which optimizers
  exist (:class:`OptimizerSpec`, with an LR schedule);
* how to sample: :meth:`Method.sampling_inputs` draws the inputs (noise, labels, ...) on CPU and
  :meth:`Method.generate` turns them into samples; :meth:`Method.preview` is what a training-time
  grid shows; :meth:`Method.critic` is the network the 2-D picture draws as a heat map.

Loss functions are pure: ``loss(models, batch, carry) -> {name: tensor}`` with the scalar to
minimise under ``"loss"``; they never touch optimizers. ``carry`` holds what earlier phases of
the same iteration handed on (:attr:`Phase.hands_on`). The training loop does everything else.
Nothing outside ``ganforge.methods`` names a network ("G", "D", ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ganforge.data import Batch
from ganforge.errors import GanforgeError
from ganforge.methods.graphs import SamplingGraph, latent_graph

Carry = dict[str, torch.Tensor]
LossFn = Callable[[dict[str, nn.Module], Batch, Carry], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Phase:
    """One kind of optimisation step.

    name: label in logs ("D", "G"); trains: the optimizer it steps (see :meth:`Method.optimizers`);
    loss: a pure loss function; repeats: steps per iteration (k for the discriminator), each on
    a fresh real batch when ``needs_data``; every: run only on iterations i with i % every == 0,
    the loss multiplied by ``every`` so that its average pull is what it would be at every step
    (lazy regularisation, StyleGAN2); hands_on: keys of the loss output that are put in the
    iteration's carry for later phases instead of being logged (e.g. the generator's fakes);
    keeps_graph_of: networks the phase runs with their weights tracked although it does not step
    them, so that an output it hands on can be trained through by a later phase (the fakes a GAN's
    D step made, reused by the G step; the loss itself must see them detached);
    after_step: called with the models after each optimizer step (e.g. WGAN weight clipping);
    double_backward: the loss differentiates through a gradient it takes with create_graph (R1,
    the gradient penalty, path length), which compiled graphs cannot: with train.compile the loop
    runs such a phase's networks uncompiled.
    """

    name: str
    trains: str
    loss: LossFn
    repeats: int = 1
    needs_data: bool = True
    every: int = 1
    hands_on: tuple[str, ...] = ()
    keeps_graph_of: tuple[str, ...] = ()
    after_step: Callable[[dict[str, nn.Module]], None] | None = None
    double_backward: bool = False


@dataclass(frozen=True)
class LRSchedule:
    """Learning-rate factor as a pure function of the iteration, so a resumed run needs no state.

    constant: 1. linear: 1 until ``decay_start`` x total steps, then linearly down to 0 at the
    last step (pix2pix/CycleGAN train half their epochs at a constant LR, half decaying).
    """

    kind: str = "constant"
    decay_start: float = 0.5

    def factor(self, step: int, total_steps: int) -> float:
        if self.kind == "constant":
            return 1.0
        start = self.decay_start * total_steps
        if step < start:
            return 1.0
        return max(0.0, (total_steps - step) / max(total_steps - start, 1.0))


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: kind (adam or adamw), its settings, the ``networks`` it updates (default:
    the network of its own name) and its learning-rate schedule."""

    lr: float
    betas: tuple[float, float]
    networks: tuple[str, ...] = ()
    kind: str = "adam"
    weight_decay: float = 0.0
    schedule: LRSchedule = field(default_factory=LRSchedule)


class Method:
    """Base class. A subclass fills ``self.models`` and implements ``phases`` and ``optimizers``;
    it declares its options as ``Options`` (a config.MethodOptions subclass) and the model keys
    it reads as ``model_keys``."""

    #: the network samples come from (an EMA copy of it is used when the run keeps one)
    sampler = "G"
    #: whether latents drawn from N(0, I) mean anything to the generator (not for an autoencoder)
    has_prior = True
    #: the GAN game (losses.gan.Game) for adversarial methods, else None
    game = None
    #: per-sample tensors besides x and y that batches must carry (from Dataset.extra), e.g. "input"
    batch_extras: tuple[str, ...] = ()
    #: the networks in a few words for summaries (None: the config's model.arch)
    architecture: str | None = None
    #: what the training-time grids show, for the report's caption
    preview_caption = "the same fixed noise at every step"

    def __init__(self, cfg, data):
        self.cfg, self.data = cfg, data  # data: a DataSpec (sample shape, images or not, classes)
        self.options = cfg.method
        self.models: dict[str, nn.Module] = {}
        self.ema: dict[str, nn.Module] = {}  # "<network>_ema" -> the EMA copy (filled by build_method)
        #: real images seen so far; the loop sets it before every iteration (for schedules)
        self.images_seen = 0

    def require_pictures(self, doing: str) -> None:
        """A one-line error when a method that ``doing`` pictures (e.g. "draws") is given 2-D points."""
        if not self.data.is_image:
            raise GanforgeError(f"method {self.options.name} {doing} pictures; {self.cfg.data.source} holds points")

    # -- training ---------------------------------------------------------------------------

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, OptimizerSpec]:
        raise NotImplementedError

    def schedule(self) -> LRSchedule:
        """The LR schedule the method's options ask for (method.lr_schedule, method.lr_decay_start)."""
        return LRSchedule(self.options.lr_schedule, self.options.lr_decay_start)

    def ema_networks(self) -> tuple[str, ...]:
        """Networks that get an EMA copy (the sampler, when method.ema_halflife_kimg > 0)."""
        return (self.sampler,) if self.options.ema_halflife_kimg > 0 else ()

    def fixed_networks(self) -> dict[str, nn.Module]:
        """Networks the method runs but never trains nor checkpoints (a perceptual loss's feature
        network, a frozen VQ-VAE); build_method puts them on the run's device with the others."""
        return {}

    def networks(self) -> dict[str, nn.Module]:
        """Every network to checkpoint: the trained ones and their EMA copies."""
        return {**self.models, **self.ema}

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The method's own state besides weights (pools, running means, counters) as
        (tensors, JSON-able dict); saved in every checkpoint and restored exactly on resume."""
        return {}, {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        if tensors or state:
            raise GanforgeError(f"the checkpoint holds state for method {self.options.name} that it does not use")

    def prepare_data(self, dataset, log=print):
        """The training data as this method trains on it, called once before training starts or
        resumes (it must give the same result both times). Default: unchanged. selfcond
        replaces the labels with k-means clusters."""
        return dataset

    def initialise(self, log=print) -> None:
        """Called once when a run starts fresh (never on resume, whose checkpoint holds the
        weights): e.g. SRGAN's generator starts from a finished SRResNet run. Default: nothing."""

    def objective(self) -> str:
        """A few words on what the method minimises, for summaries and reports."""
        return f"method {self.options.name}"

    def example_inputs(self, n: int = 2) -> dict[str, tuple[torch.Tensor, ...]]:
        """Zero inputs (a batch of ``n``) for each trained network, for summaries and export."""
        raise NotImplementedError

    # -- export -----------------------------------------------------------------------------

    def export_graphs(self, ema: bool = True) -> list[SamplingGraph]:
        """The networks `ganforge export` writes, each with its inputs described (``ema``: the EMA
        copies where the run keeps them, else the trained weights). Here: latents z -> samples."""
        return [latent_graph("generator", self.exported(self.sampler, ema), self.z_dim,
                             tuple(self.data.sample_shape), self.data.is_image)]

    def exported(self, name: str, ema: bool) -> nn.Module:
        """Network ``name`` for export: its EMA copy when ``ema`` and the run keeps one."""
        return self.for_sampling(name) if ema else self.models[name]

    # -- sampling ---------------------------------------------------------------------------

    @property
    def sampling_network(self) -> nn.Module:
        """The network samples come from: the EMA copy when there is one."""
        return self.for_sampling(self.sampler)

    def for_sampling(self, name: str) -> nn.Module:
        """Network ``name`` as used to draw or translate: its EMA copy when there is one."""
        return self.ema.get(name + "_ema", self.models[name])

    @property
    def z_dim(self) -> int:
        return self.models[self.sampler].z_dim

    #: whether the labels a conditional method generates are the dataset's classes (cgan), so that
    #: a classifier's reading can be compared with them; InfoGAN's codes are its own discovery
    labels_are_classes = True

    @property
    def n_classes(self) -> int:
        """Classes (InfoGAN: codes) a conditional method generates (0 when unconditional)."""
        return 0

    def latents(self, n: int, generator: torch.Generator | None = None,
                truncation: float | None = None) -> torch.Tensor:
        """Standard normal latents (n, z_dim) on CPU (seeded when ``generator`` is given).

        ``truncation`` t > 0 redraws every coordinate with |z_i| > t (the truncation trick of
        Brock et al. 2019): samples move towards the mode, trading variety for fidelity.
        """
        z = torch.randn(n, self.z_dim, generator=generator)
        if truncation is not None:
            for _ in range(1000):
                outside = z.abs() > truncation
                if not outside.any():
                    break
                z[outside] = torch.randn(int(outside.sum()), generator=generator)
        return z

    def sampling_inputs(self, n: int, generator: torch.Generator | None = None, *, label: int | None = None,
                        truncation: float | None = None) -> dict[str, torch.Tensor]:
        """What ``generate`` needs for ``n`` samples, on CPU (seeded when ``generator`` is given)."""
        if not self.has_prior:
            raise GanforgeError(f"method {self.options.name} learns no distribution of codes to sample from; "
                                "train a VAE (method.name=vae), or use `ganforge reconstruct`")
        self.check_label(label)
        return self.inputs_for_latents(self.latents(n, generator, truncation), label)

    def check_label(self, label: int | None) -> None:
        if label is not None:
            raise GanforgeError(f"method {self.options.name} is unconditional; --class needs a run trained with "
                                "method.name=cgan")

    def inputs_for_latents(self, z: torch.Tensor, label: int | None = None) -> dict[str, torch.Tensor]:
        """Sampling inputs for given latents z (n, z_dim): here {"z": z}."""
        self.check_label(label)
        return {"z": z}

    def grid_inputs(self, n: int, seed: int) -> tuple[dict[str, torch.Tensor], int]:
        """Inputs for a sample grid of about ``n`` images and its images per row."""
        return self.sampling_inputs(n, torch.Generator().manual_seed(seed)), 8

    def forward_sampler(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One chunk of samples from the sampling network (inputs already on its device)."""
        return net(inputs["z"])

    @torch.no_grad()
    def generate(self, inputs: dict[str, torch.Tensor], device, chunk: int = 1024,
                 network: nn.Module | None = None) -> torch.Tensor:
        """Samples for ``inputs`` in eval mode, in chunks, as float32 on CPU (from the EMA copy of
        the sampler when there is one, or from ``network``)."""
        net = network if network is not None else self.sampling_network
        was_training = net.training
        net.eval()
        n = len(next(iter(inputs.values())))
        out = []
        for start in range(0, n, chunk):
            part = {k: v[start:start + chunk].to(device) for k, v in inputs.items()}
            out.append(self.forward_sampler(net, part).float().cpu())
        net.train(was_training)
        return torch.cat(out)

    def sample(self, n: int, seed: int = 0, device="cpu", *, label: int | None = None,
               truncation: float | None = None) -> torch.Tensor:
        """``n`` samples on CPU, drawn from a generator seeded with ``seed``."""
        if n < 1:
            raise GanforgeError(f"number of samples must be at least 1, got {n}")
        if truncation is not None and truncation <= 0:
            raise GanforgeError(f"--truncation must be positive (e.g. 0.7), got {truncation}")
        inputs = self.sampling_inputs(n, torch.Generator().manual_seed(seed), label=label, truncation=truncation)
        return self.generate(inputs, device)

    def preview_inputs(self, dataset, seed: int, n: int) -> tuple[dict[str, torch.Tensor], int]:
        """Fixed inputs for the training-time sample grids (and its images per row)."""
        if not dataset.is_image:
            return self.sampling_inputs(n, torch.Generator().manual_seed(seed)), 8
        return self.grid_inputs(n, seed)

    def preview(self, inputs: dict[str, torch.Tensor], device) -> torch.Tensor:
        """What a training-time grid shows for the fixed ``inputs``: here, samples."""
        return self.generate(inputs, device)

    def critic(self) -> tuple[nn.Module, bool] | None:
        """(network, whether its output is the logit of P(real)) for the 2-D heat map, or None."""
        return None


class TranslationMethod(Method):
    """A method that translates pictures (pix2pix, CycleGAN): batches carry the input picture as
    ``batch["input"]``, the sampling network reads ``{"input": pictures}``, and there is no prior
    to sample from. Subclasses give ``input_shape(direction)``, ``side_multiple()``, ``translate``
    and ``reconstruct``."""

    has_prior = False
    batch_extras = ("input",)
    #: what `ganforge translate` needs to be told besides the inputs (for the refusal to sample)
    translate_usage = "RUN INPUT... -o OUT"

    def sampling_inputs(self, n, generator=None, *, label=None, truncation=None):
        raise GanforgeError(f"a {self.options.name} run translates images rather than sampling them; use `ganforge "
                            f"translate {self.translate_usage}`, or `ganforge evaluate RUN` for its held-out pictures")

    def forward_sampler(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return net(inputs["input"])


def find_finished_run(name: str, key: str, runs_root: Path = Path("runs")) -> Path:
    """The run a setting (``key``, e.g. method.init_run) names: a run directory, or a preset name such as
    ``srresnet-icons-x4``, meaning the newest finished run of it under ``runs/`` (where
    ``ganforge train PRESET`` puts runs by default, numbered)."""
    from ganforge.train.checkpoint import latest_checkpoint

    def finished(path: Path) -> bool:
        return (path / "config.json").is_file() and latest_checkpoint(path) is not None

    path = Path(name)
    if path.is_dir():
        if not finished(path):
            raise GanforgeError(f"{key}={name} holds no checkpoint; train that run first")
        return path
    if "/" not in name and runs_root.is_dir():
        candidates = sorted(p for p in runs_root.glob(f"*-{name}") if p.name.split("-", 1)[0].isdigit()
                            and finished(p))
        if candidates:
            return candidates[-1]
    raise GanforgeError(f"{key}={name}: no such run directory, and no finished run of preset {name} under "
                        f"{runs_root}/; train one first (`ganforge train {name}`), or pass its folder "
                        f"(--set {key}=runs/00001-...)")
