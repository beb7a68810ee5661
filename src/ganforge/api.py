"""The Python API: the same verbs as the command line."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import torch

from ganforge.config import RESUMABLE_KEYS, Config, config_from_dict, parse_override, upgrade_config
from ganforge.errors import GanforgeError
from ganforge.train import checkpoint as ckpt_io
from ganforge.train.lock import LOCK_NAME, RunLock


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def next_run_dir(root: str | Path, name: str) -> Path:
    """runs/00003-<name>: one more than the highest numbered run under ``root``."""
    root = Path(root)
    numbers = [int(m.group(1)) for p in root.glob("*") if (m := re.match(r"(\d{5})-", p.name))]
    return root / f"{max(numbers, default=-1) + 1:05d}-{name}"


def train(cfg: Config, out: str | Path | None = None, *, overwrite: bool = False,
          progress: bool = True, log=print) -> Path:
    """Train ``cfg`` into a new run directory (``out``, or the next numbered one under runs/).

    An existing non-empty directory is refused unless ``overwrite`` is set; use :func:`resume`
    to continue a run. Returns the run directory.
    """
    from ganforge.train import distributed
    from ganforge.training import run_training

    world = distributed.start(cfg.train.device)  # several processes under torchrun: rank 0 owns the run dir
    if not world.is_main:
        run_dir = Path(distributed.share_text(None))  # where rank 0 trains (or its refusal, raised here)
        run_training(run_dir, cfg, progress=progress, log=log)
        return run_dir
    run_dir = Path(out) if out else next_run_dir("runs", cfg.name)
    refusal = None
    if run_dir.exists() and not run_dir.is_dir():
        refusal = f"{run_dir} is a file, not a run directory; choose another --out"
    elif run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()) and not overwrite:
        refusal = (f"run directory {run_dir} already exists; continue it with `ganforge train --resume {run_dir}` "
                   "or choose another --out")
    if refusal:
        distributed.share_text(None, error=refusal)
    created = not run_dir.exists()
    with RunLock(run_dir):  # refuses while another process trains here, before anything is removed
        for p in run_dir.iterdir():
            if p.name != LOCK_NAME:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        distributed.share_text(str(run_dir))
        try:
            run_training(run_dir, cfg, progress=progress, log=log)
        except GanforgeError:
            if created and not (run_dir / "config.json").exists():  # failed before it began: leave no trace
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    return run_dir


def read_run_config(run_dir: str | Path) -> Config:
    """The run's resolved config (config.json), from this or an older ganforge."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise GanforgeError(f"{run_dir} is not a ganforge run directory (no config.json); check the path")
    try:
        tree = json.loads(path.read_text())
    except ValueError:
        raise GanforgeError(f"{path} is not valid JSON; restore it from the checkpoint's state.json") from None
    return config_from_dict(upgrade_config(tree), strict=False)


def read_run_info(run_dir: str | Path) -> dict:
    """run.json: what the run was trained on (sample shape, classes, ...), checked for the keys loading needs."""
    path = Path(run_dir) / "run.json"
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise GanforgeError(f"{run_dir} lacks run.json (what it was trained on); copy it back from the run's "
                            "latest checkpoint/state.json ('data'), or train the run again") from None
    except (OSError, ValueError):
        raise GanforgeError(f"{path} is not valid JSON; restore it from the latest checkpoint's state.json "
                            "('data')") from None
    def is_shape(v) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                                       for n in v)

    ok = isinstance(info, dict) and is_shape(info.get("sample_shape")) and isinstance(info.get("is_image"), bool) \
        and (info.get("condition_shape") is None or is_shape(info["condition_shape"])) \
        and (info.get("n_classes") is None or isinstance(info["n_classes"], int) and 0 <= info["n_classes"] < 10**5) \
        and isinstance(info.get("unpaired", False), bool)
    if not ok:
        raise GanforgeError(f"{path} is damaged (sample_shape, is_image, condition_shape, n_classes or unpaired); "
                            "restore it from the latest checkpoint's state.json ('data')")
    return info


def resume(run_dir: str | Path, overrides: list[str] | None = None, *, progress: bool = True,
           log=print) -> Path:
    """Continue a run from its latest checkpoint; ``overrides`` may change train.steps and the
    reporting intervals (e.g. ``["train.steps=4000"]``) but not the model or data."""
    from ganforge.training import run_training

    run_dir = Path(run_dir)
    tree = read_run_config(run_dir).to_dict()
    for text in overrides or []:
        key, value = parse_override(text)
        if key not in RESUMABLE_KEYS:
            raise GanforgeError(f"'{key}' cannot change when resuming (only {', '.join(sorted(RESUMABLE_KEYS))}); "
                                "start a new run to change it")
        section, leaf = key.split(".")
        tree[section][leaf] = value
    cfg = config_from_dict(tree)
    from ganforge.train import distributed

    if not distributed.start(cfg.train.device).is_main:  # rank 0 holds the lock; every rank reads the checkpoint
        run_training(run_dir, cfg, resume=True, progress=progress, log=log)
        return run_dir
    with RunLock(run_dir):
        run_training(run_dir, cfg, resume=True, progress=progress, log=log)
    return run_dir


class Run:
    """A trained run loaded for sampling: ``Run(run_dir).sample(64, seed=0)``. Everything it draws
    goes through the run's method (``run.method``), which knows how its family samples."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", checkpoint: str | None = None, log=None):
        from ganforge.data import DataSpec
        from ganforge.methods import build_method
        from ganforge.train.loop import select_device

        self.run_dir = Path(run_dir)
        self.config = read_run_config(self.run_dir)
        if not ckpt_io.list_checkpoints(self.run_dir):
            raise GanforgeError(f"{self.run_dir} has no checkpoint with a generator yet; train it first "
                                f"(or resume it: `ganforge train --resume {self.run_dir}`)")
        self.info = read_run_info(self.run_dir)
        self.device = select_device(device)
        condition = self.info.get("condition_shape")
        data = DataSpec(tuple(self.info["sample_shape"]), self.info["is_image"], self.info.get("n_classes"),
                        tuple(condition) if condition else None, bool(self.info.get("unpaired")))
        self.method = build_method(self.config, data, self.device)
        # The newest checkpoint whose weights pass their checks, unless one was named.
        candidates = [Path(checkpoint)] if checkpoint else ckpt_io.list_checkpoints(self.run_dir)[::-1]

        def load(ckpt: Path) -> dict:
            state = ckpt_io.read_state(ckpt)
            ckpt_io.load_weights(ckpt, self.method.networks())
            return state

        self.checkpoint, self.state = ckpt_io.load_newest_usable(candidates, load, log or _to_stderr)
        for m in self.method.networks().values():
            m.eval()

    @property
    def models(self) -> dict[str, torch.nn.Module]:
        """Every network of the run by name (incl. EMA copies)."""
        return self.method.networks()

    @property
    def generator(self) -> torch.nn.Module:
        """The sampling network (the EMA copy when the run kept one)."""
        return self.method.sampling_network

    @property
    def sampling_network_name(self) -> str:
        name = self.method.sampler
        return f"{name}_ema" if f"{name}_ema" in self.method.ema else name

    @property
    def step(self) -> int:
        return self.state["step"]

    @property
    def n_classes(self) -> int:
        """Number of classes of a conditional run; 0 for an unconditional one."""
        return self.method.n_classes

    def labels(self, n: int, label: int | None = None) -> torch.Tensor | None:
        """Labels ``n`` samples get: all ``label``, else the classes in turn (None if unconditional)."""
        return self.method.inputs_for_latents(torch.zeros(n, 1), label).get("y")

    def generate(self, z: torch.Tensor, label: int | None = None) -> torch.Tensor:
        """Samples (on CPU) for the latents ``z`` (n, z_dim), of class ``label`` or the classes in turn."""
        return self.method.generate(self.method.inputs_for_latents(z, label), self.device)

    def sample(self, n: int, seed: int = 0, label: int | None = None, truncation: float | None = None) -> torch.Tensor:
        """``n`` samples on CPU: images (n, C, H, W) in [-1, 1], or points (n, 2). A conditional run
        draws class ``label``, or the classes in turn when it is None; ``truncation`` redraws latent
        coordinates beyond +-truncation."""
        return self.method.sample(n, seed, self.device, label=label, truncation=truncation)

    def grid(self, n: int, seed: int = 0) -> tuple[torch.Tensor, int]:
        """About ``n`` samples laid out as the method's grid (a conditional run: one row per class,
        the same z down each column) and the images per row."""
        inputs, nrow = self.method.grid_inputs(n, seed)
        return self.method.generate(inputs, self.device), nrow


def build(cfg: Config, device: str = "cpu", log=print):
    """The method of ``cfg`` with freshly initialised networks for its data (seeded by train.seed):
    what `ganforge summary PRESET` describes."""
    from ganforge.data import load_dataset
    from ganforge.methods import build_method
    from ganforge.train.loop import seed_everything, select_device

    seed_everything(cfg.train.seed)
    data = load_dataset(cfg.data, log)
    return build_method(cfg, data.spec, select_device(device))


def load_run(run_dir: str | Path, device: str = "cpu", step: int | None = None) -> Run:
    """Load a run's latest checkpoint (or the one saved at ``step``) for sampling and evaluation."""
    if step is None:
        return Run(run_dir, device)
    ckpt = Path(run_dir) / ckpt_io.CHECKPOINT_DIR / f"step_{step:09d}"
    if not ckpt.is_dir():
        kept = ", ".join(str(int(p.name[5:])) for p in ckpt_io.list_checkpoints(run_dir)) or "none"
        raise GanforgeError(f"{run_dir} has no checkpoint at step {step}; kept steps: {kept}")
    return Run(run_dir, device, checkpoint=str(ckpt))


def evaluate(run_dir: str | Path, n: int | None = None, seed: int = 0, metrics=None, ref_split: str = "test",
             extractor: str | None = None, resize: bool = False, step: int | None = None, log=print,
             device: str = "cpu", truncation: float | None = None) -> dict:
    """The run's metrics, returned and written as an evaluation card under ``run_dir/eval/``.

    ``truncation``: sample with the truncation trick (psi in W for StyleGAN), recorded in the card.
    2-D runs: modes captured, high-quality fraction and reverse KL. VQ-VAE runs: the reconstruction
    card of the ``ref_split`` (:func:`ganforge.reconstruction.reconstruction_card`). Image runs: FID (with a
    bootstrap interval), KID, precision/recall, density/coverage, classifier score and class
    histogram in the features of a ganforge-trained classifier (see ``metrics.features``).
    """
    from ganforge.data import load_dataset
    from ganforge.evaluation import DEFAULT_IMAGE_METRICS, evaluate_images, evaluate_points
    from ganforge.report.plots import read_metrics

    run = load_run(run_dir, device=device, step=step)
    from ganforge.reconstruction import is_vq, reconstruction_card

    if is_vq(run):  # a VQ-VAE draws nothing by itself: its measure is how well its codes keep pictures
        card = reconstruction_card(run, ref_split, None, n, extractor, log)
        refresh_report(run.run_dir, log)
        return card
    if hasattr(run.method, "upscale"):
        from ganforge.upscaling import evaluate_upscaling

        card = evaluate_upscaling(run, n, seed, extractor, device=run.device, log=log)
        _save_examples(card, run.run_dir / "eval" / f"upscaled_step_{run.step:09d}.png")
    elif run.info.get("condition_shape"):
        from ganforge.translation import evaluate_translation

        card = evaluate_translation(run, n, ref_split, seed, extractor, log)
        _save_examples(card, run.run_dir / "eval" / f"translations_step_{run.step:09d}.png")
    elif run.info["is_image"]:
        card = evaluate_images(run, metrics or DEFAULT_IMAGE_METRICS, n or 10000, ref_split, seed, extractor,
                               resize, log, truncation)
        if hasattr(run.method, "test_bits_per_code"):  # an autoregressive prior: its likelihood of held-out codes
            import dataclasses

            held = load_dataset(dataclasses.replace(run.config.data, split=ref_split), log=lambda *_: None)
            card["code_nll"] = {"bits_per_code": run.method.test_bits_per_code(held.x, run.device),
                                "split": ref_split, "n": len(held), "codes_per_image": run.method.codes_per_image}
    else:
        dataset = load_dataset(run.config.data, log=lambda *_: None)
        card = {"run": str(run.run_dir), "step": run.step, "kimg": run.state["images_seen"] / 1000,
                "modes": evaluate_points(run.sample(n or run.config.train.eval_samples, seed), dataset, seed)}
    last = [r for r in read_metrics(run.run_dir) if r.get("step") == run.step and "loss/D" in r]
    if last:
        card["training"] = {k: last[-1][k] for k in ("loss/D", "loss/G", "D_x", "D_G_z") if k in last[-1]}
    out = run.run_dir / "eval" / f"card_step_{run.step:09d}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(card, indent=2))
    card["card_path"] = str(out)
    refresh_report(run.run_dir, log)
    return card


def refresh_report(run_dir: Path, log) -> None:
    """Rewrite the run's report.html (when it has one) so it shows the new card."""
    if (run_dir / "report.html").exists():
        from ganforge.training import write_report_quietly

        write_report_quietly(run_dir, log)


def _save_examples(card: dict, picture: Path) -> None:
    """Save a card's ``example_rows`` (a tensor) as ``picture`` and name it in the card."""
    from ganforge.report.images import save_grid

    save_grid(card.pop("example_rows"), picture, nrow=card["examples"]["columns"])
    card["examples"]["path"] = picture.name
