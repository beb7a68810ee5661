"""The training loop, shared by every method.

A method supplies networks and a list of phases; this loop owns everything else: devices,
precision, optimizers, zero_grad/backward/step, gradient norms, EMA, metrics.jsonl, sample grids,
checkpoints with exact resume, and the end-of-run report files.
"""

from __future__ import annotations

import functools
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ganforge.config import Config
from ganforge.data import BatchIterator, Dataset, load_dataset
from ganforge.errors import GanforgeError
from ganforge.methods import Method, build_method
from ganforge.report.plots import plot_training_curves, read_metrics
from ganforge.train import checkpoint as ckpt_io
from ganforge.train.ema import ema_beta, make_ema, update_ema

N_FIXED_IMAGES = 64     # the fixed-noise grid, 8 x 8
N_FIXED_POINTS = 2000   # generated points drawn in the 2-D picture
N_PROBE_IMAGES = 128    # samples the health probe measures at every log step
N_PROBE_POINTS = 512


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise GanforgeError("train.device=cuda but no CUDA device is visible; use train.device=cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        # Fixed shapes every step: let cuDNN pick its fastest kernels; TF32 for fp32 matmuls.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params, lr: float, betas: tuple[float, float], device: torch.device):
    """Adam; the fused kernel where this PyTorch has it for the device (same maths, one kernel)."""
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=device.type == "cuda")


def build_networks(cfg: Config, sample_shape, is_image: bool, device: torch.device,
                   n_classes: int | None = None) -> tuple[Method, dict]:
    """The method with its networks on ``device``, plus an EMA copy of G when enabled.

    Returns (method, models) where models maps every network name (incl. "G_ema") to a module.
    """
    method = build_method(cfg, tuple(sample_shape), is_image, n_classes)
    memory_format = torch.channels_last if (cfg.train.channels_last and is_image) else torch.contiguous_format
    for m in method.models.values():
        m.to(device=device, memory_format=memory_format)
    models = dict(method.models)
    if cfg.method.ema_halflife_kimg > 0:
        models[method.generator_name + "_ema"] = make_ema(method.models[method.generator_name])
    return method, models


def sampling_generator(models: dict) -> torch.nn.Module:
    """The network to draw samples from: the EMA generator when there is one."""
    return models.get("G_ema", models["G"])


@torch.no_grad()
def generate(G: torch.nn.Module, z: torch.Tensor, y: torch.Tensor | None = None, batch: int = 1024) -> torch.Tensor:
    """G(z) (or G(z, y) for a conditional G) in eval mode, in chunks, as float32 on CPU.

    A conditional G without ``y`` gets the classes in turn: y_i = i mod n_classes.
    """
    was_training = G.training
    G.eval()
    n_classes = getattr(G, "n_classes", 0)
    if n_classes:
        if y is None:
            y = torch.arange(len(z)) % n_classes
        y = y.to(z.device)
        out = torch.cat([G(zc, yc).float().cpu() for zc, yc in zip(z.split(batch), y.split(batch), strict=True)])
    else:
        out = torch.cat([G(chunk).float().cpu() for chunk in z.split(batch)])
    G.train(was_training)
    return out


def n_classes_of(dataset: Dataset) -> int | None:
    return None if dataset.y is None else int(dataset.y.max()) + 1


@functools.cache
def stat_name(phase: str, key: str) -> str:
    """metrics.jsonl name of a loss output: 'loss' -> loss/D, 'real' -> loss/D_real, others as-is."""
    if key == "loss":
        return f"loss/{phase}"
    return f"loss/{phase}_{key}" if key in ("real", "fake") else key


def class_grid_latents(method: Method, rows: int, cols: int, seed: int, device) -> tuple:
    """Latents and labels for a grid with one row per class and the same z down each column."""
    z = method.latents(cols, torch.Generator().manual_seed(seed)).repeat(rows, 1).to(device)
    y = torch.arange(rows).repeat_interleave(cols)
    return z, y, cols


class MetricsLog:
    """Appends JSON rows to metrics.jsonl; on resume drops rows past the checkpoint's step."""

    def __init__(self, path: Path, keep_through_step: int | None):
        self.path = path
        if keep_through_step is not None and path.exists():
            rows = [line for line in path.read_text().splitlines() if line.strip()]
            kept = [r for r in rows if json.loads(r).get("step", 0) <= keep_through_step]
            path.write_text("".join(r + "\n" for r in kept))
        elif keep_through_step is None:
            path.write_text("")

    def write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def write_run_info(run_dir: Path, cfg: Config, dataset: Dataset) -> None:
    info = {"sample_shape": list(dataset.sample_shape), "is_image": dataset.is_image,
            "n_classes": n_classes_of(dataset),
            "dataset": dataset.name, "dataset_size": len(dataset),
            "data_info": {k: v for k, v in dataset.info.items() if k != "classes"}}
    (run_dir / "config.json").write_text(cfg.to_json())
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))


def training_loop(run_dir: Path, cfg: Config, *, resume: bool = False, progress: bool = True,
                  log=print) -> dict:
    """Train ``cfg`` in ``run_dir`` (fresh, or continuing its latest checkpoint) to cfg.train.steps.

    Returns the end-of-run summary (also written to summary.json and summary.txt).
    """
    t = cfg.train
    run_dir = Path(run_dir)
    device = select_device(t.device)
    seed_everything(t.seed)

    # Data and networks.
    dataset = load_dataset(cfg.data, log)
    method, models = build_networks(cfg, dataset.sample_shape, dataset.is_image, device, n_classes_of(dataset))
    trained = method.models
    # Each optimizer updates its networks (GANs: "D" and "G" apart; autoencoders: "E" and "G" together).
    owned = {name: spec.networks or (name,) for name, spec in method.optimizers().items()}
    optimizers = {name: make_optimizer([p for net in owned[name] for p in trained[net].parameters()],
                                       spec.lr, spec.betas, device)
                  for name, spec in method.optimizers().items()}
    batches = BatchIterator(dataset.x, dataset.y, t.batch_size, t.seed, device,
                            channels_last=t.channels_last)
    ema_name = method.generator_name + "_ema"
    beta = ema_beta(t.batch_size, cfg.method.ema_halflife_kimg) if ema_name in models else None

    # Fresh start or exact resume.
    step, images_seen, elapsed_s = 0, 0, 0.0
    if resume:
        ckpt_io.remove_partial_checkpoints(run_dir)
        latest = ckpt_io.latest_checkpoint(run_dir)
        if latest is None:
            raise GanforgeError(f"{run_dir} has no complete checkpoint to resume from; start it again "
                                "without --resume")
        ckpt_io.load_weights(latest, models)
        state = ckpt_io.load_training_state(latest, optimizers)
        batches.load_state_dict(state["batches"])
        step, images_seen, elapsed_s = state["step"], state["images_seen"], state["elapsed_s"]
        log(f"resuming {run_dir} from {latest.name} (step {step}, {images_seen / 1000:.1f} kimg)")
    write_run_info(run_dir, cfg, dataset)
    metrics = MetricsLog(run_dir / "metrics.jsonl", step if resume else None)
    (run_dir / "samples").mkdir(exist_ok=True)

    # Fixed noise for sample grids: its own generator, so drawing it never moves training's RNG.
    n_fixed = N_FIXED_IMAGES if dataset.is_image else N_FIXED_POINTS
    z_fixed = method.latents(n_fixed, torch.Generator().manual_seed(t.seed + 1)).to(device)
    y_fixed, grid_cols = None, 8
    if getattr(trained[method.generator_name], "n_classes", 0) and dataset.is_image:
        rows = min(trained[method.generator_name].n_classes, 10)
        z_fixed, y_fixed, grid_cols = class_grid_latents(method, rows, 8, t.seed + 1, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")

    preview = None
    if not method.has_prior:  # an autoencoder: originals and reconstructions of fixed real images
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(t.seed + 3))[:32]
        preview = (dataset.x[pick].float() / 127.5 - 1).to(device)

    def save_samples(at_step: int) -> Path:
        G = sampling_generator(models)
        fake = method.preview(trained, preview) if preview is not None else generate(G, z_fixed, y_fixed)
        path = run_dir / "samples" / f"step_{at_step:09d}.png"
        if dataset.is_image:
            from ganforge.report.images import save_grid
            save_grid(fake, path, nrow=grid_cols)
        else:
            from ganforge.report.plots import plot_2d
            real = dataset.x[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:n_fixed]]
            plot_2d(real, fake, models["D"], path, title=f"{cfg.name}, step {at_step}", device=device,
                    probabilistic=cfg.method.loss in ("ns", "mm"))
        return path

    def save_checkpoint(at_step: int) -> None:
        ckpt_io.save_checkpoint(run_dir, at_step, models, optimizers, {
            "images_seen": images_seen, "elapsed_s": elapsed_s, "batches": batches.state_dict(),
            "config": cfg.to_dict(), "data": json.loads((run_dir / "run.json").read_text()),
        }, keep=t.keep_checkpoints)

    # Periodic evaluation, on its own random stream.
    evaluator = None
    if t.eval_every_kimg > 0:
        from ganforge.evaluation import PeriodicEvaluator

        evaluator = PeriodicEvaluator(dataset, t.eval_samples, seed=t.seed, log=log)
        if not evaluator.available():
            log(f"note: no feature extractor for {dataset.name}; train.eval_every_kimg is ignored")
            evaluator = None
    eval_every = t.eval_every_kimg * 1000
    evals_done = int(images_seen // eval_every) if evaluator else 0

    # Health: a sample probe on its own fixed latents, and the monitor (replaying the kept log on
    # resume, so alerts already given are not given again).
    probe = monitor = None
    if t.health and method.has_prior:
        from ganforge.health import HealthMonitor, SampleProbe

        n_probe = N_PROBE_IMAGES if dataset.is_image else N_PROBE_POINTS
        probe = SampleProbe(dataset, method.latents(n_probe, torch.Generator().manual_seed(t.seed + 2)), log)
        monitor = HealthMonitor(cfg.method.loss, t.log_every)
        for old in read_metrics(run_dir) if resume else []:
            monitor.update(old, replay=True)
    board = open_tensorboard(run_dir) if t.tensorboard else None

    phases = method.phases()
    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
    counts: dict[str, int] = defaultdict(int)
    grad_norms: dict[str, float] = {}
    last_log_time, last_log_images = time.perf_counter(), images_seen
    # Redraw often on a terminal; only every 30 s into a log file or a CI console.
    bar = tqdm(total=t.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True,
               desc=cfg.name, mininterval=0.5 if sys.stderr.isatty() else 30)
    batch = None
    try:
        while step < t.steps:
            is_log_step = (step + 1) % t.log_every == 0 or step + 1 == t.steps
            method.images_seen = images_seen
            for phase in phases:
                # Only the phase's own network collects weight gradients.
                for name, module in trained.items():
                    module.requires_grad_(name in owned[phase.trains])
                opt = optimizers[phase.trains]
                for repeat in range(phase.repeats):
                    # Fetch a real batch.
                    if phase.needs_data or batch is None:
                        batch = next(batches)
                        images_seen += len(batch)
                    # Forward and loss.
                    with autocast:
                        out = phase.loss(trained, batch)
                    # Backward and step.
                    opt.zero_grad(set_to_none=True)
                    out["loss"].backward()
                    if is_log_step and repeat == phase.repeats - 1:
                        grads = [p.grad for net in owned[phase.trains] for p in trained[net].parameters()
                                 if p.grad is not None]
                        grad_norms[phase.trains] = float(torch.linalg.vector_norm(
                            torch.stack(torch._foreach_norm(grads)))) if grads else 0.0
                    opt.step()
                    if phase.after_step is not None:
                        phase.after_step(trained)
                    # Accumulate statistics without a device sync.
                    for key, val in out.items():
                        name = stat_name(phase.name, key)
                        sums[name] += val.detach().float()
                        counts[name] += 1
            # Update EMA.
            if beta is not None:
                update_ema(models[ema_name], trained[method.generator_name], beta)
            step += 1
            bar.update(1)

            # Log.
            if is_log_step:
                # The health probe runs first, so img/s and time_s include its cost.
                health = probe(trained[method.generator_name]) if probe is not None else {}
                now = time.perf_counter()
                row = {"step": step, "kimg": round(images_seen / 1000, 3)}
                row.update({k: float(s) / counts[k] for k, s in sums.items()})
                row.update({f"grad_norm/{k}": v for k, v in grad_norms.items()})
                ips = (images_seen - last_log_images) / max(now - last_log_time, 1e-9)
                elapsed_s += now - last_log_time
                row["img_per_s"] = round(ips, 1)
                row["time_s"] = round(elapsed_s, 2)
                row.update(health)
                metrics.write(row)
                if board is not None:
                    board.scalars(row)
                alerts = monitor.update(row) if monitor is not None else []
                for alert in alerts:
                    metrics.write(alert.row())
                    bar.clear()
                    log(f"ganforge: {alert.text()}")
                    if board is not None:
                        board.text(alert)
                bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
                if bad:
                    bar.close()
                    write_report_quietly(run_dir, log)
                    raise GanforgeError(f"training diverged: {bad[0]} is {row[bad[0]]} at step {step}; "
                                        "lower the learning rates or try method.loss=ns (see report.html)")
                losses = "  ".join(f"L_{k[5:]} {v:.3f}" for k, v in row.items() if k.count("/") == 1
                                   and k.startswith("loss/") and "_" not in k)
                bar.set_postfix_str(f"{ips:,.0f} img/s  {losses}", refresh=False)
                sums.clear()
                counts.clear()
                last_log_time, last_log_images = time.perf_counter(), images_seen

            # Evaluate.
            if evaluator is not None and images_seen // eval_every > evals_done:
                evals_done = int(images_seen // eval_every)
                t_eval = time.perf_counter()
                metrics.write({"step": step, "kimg": round(images_seen / 1000, 3),
                               **evaluator(sampling_generator(models), device)})
                last_log_time += time.perf_counter() - t_eval  # time_s and img/s count training only

            # Samples and checkpoints.
            if t.sample_every and step % t.sample_every == 0 and step < t.steps:
                grid = save_samples(step)
                if board is not None:
                    board.image(grid, step)
            if t.checkpoint_every and step % t.checkpoint_every == 0 and step < t.steps:
                save_checkpoint(step)
                plot_training_curves(read_metrics(run_dir), run_dir / "loss_curves.png")  # a look mid-run
    except KeyboardInterrupt:
        bar.close()
        last = ckpt_io.latest_checkpoint(run_dir)
        where = f"the last checkpoint is {last.name}" if last else "no checkpoint was saved yet"
        raise GanforgeError(f"interrupted at step {step}; {where}; continue with "
                            f"`ganforge train --resume {run_dir}`") from None
    bar.close()

    # Finish: checkpoint, samples, plots, evaluation and summary.
    save_checkpoint(step)
    final_samples = save_samples(step)
    if board is not None:
        board.image(final_samples, step)
        board.close()
    return finish_run(run_dir, cfg, models, dataset, device, final_samples, log)


def write_report_quietly(run_dir: Path, log=print) -> Path | None:
    """report.html for the run; a failure to draw it never costs the training run."""
    from ganforge.report.html import write_report

    try:
        return write_report(run_dir)
    except Exception as e:  # noqa: BLE001 - the run's files are complete; only the report is missing
        log(f"note: report.html was not written ({type(e).__name__}: {e}); try `ganforge report {run_dir}`")
        return None


class TensorBoardLog:
    """Scalars, sample grids and alerts for TensorBoard, in RUN/tensorboard (x axis: step)."""

    def __init__(self, writer):
        self.writer = writer

    def scalars(self, row: dict) -> None:
        for key, value in row.items():
            if key not in ("step",) and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, row["step"])

    def image(self, png: Path, step: int) -> None:
        from PIL import Image

        pixels = np.asarray(Image.open(png).convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def text(self, alert) -> None:
        self.writer.add_text(f"alerts/{alert.kind}", alert.text(), alert.step)

    def close(self) -> None:
        self.writer.close()


def open_tensorboard(run_dir: Path) -> TensorBoardLog:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GanforgeError("train.tensorboard=true needs the tensorboard package; install it with "
                            "pip install 'ganforge[tensorboard]' or set train.tensorboard=false") from None
    return TensorBoardLog(SummaryWriter(str(Path(run_dir) / "tensorboard")))


def finish_run(run_dir: Path, cfg: Config, models: dict, dataset: Dataset, device, final_samples: Path,
               log=print) -> dict:
    from ganforge.report.summary import write_summary

    rows = read_metrics(run_dir)
    plot_training_curves(rows, run_dir / "loss_curves.png")
    evaluation = None
    if not dataset.is_image:
        from ganforge.evaluation import evaluate_points

        evaluation = evaluate_points(sampling_generator(models), dataset, cfg.train.eval_samples,
                                     seed=0, device=device)
        (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=2))
    summary = write_summary(run_dir, cfg, rows, final_samples, evaluation, device)
    write_report_quietly(run_dir, log)
    return summary
