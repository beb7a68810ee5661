"""A training run, end to end: the run-level code around the training loop.

It loads the data, builds the method, writes run.json and config.json, hooks sample grids, the
health probe and monitor, periodic evaluation and TensorBoard into the loop, and when the loop
ends writes the final samples, the plots, the 2-D evaluation, summary.txt/.json and report.html.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ganforge.config import Config
from ganforge.data import Dataset, load_dataset
from ganforge.methods import Method, build_method
from ganforge.report.plots import plot_training_curves, read_metrics
from ganforge.train import checkpoint as ckpt_io
from ganforge.train import distributed
from ganforge.train.loop import LoopHooks, TrainingDiverged, TrainingLoop, seed_everything, select_device

N_FIXED_IMAGES = 64     # the fixed-input grid, 8 x 8
N_FIXED_POINTS = 2000   # generated points drawn in the 2-D picture
N_PROBE_IMAGES = 128    # samples the health probe measures at every log step
N_PROBE_POINTS = 512


def write_run_info(run_dir: Path, cfg: Config, dataset: Dataset) -> None:
    info = {"sample_shape": list(dataset.sample_shape), "is_image": dataset.is_image,
            "n_classes": dataset.n_classes, "condition_shape": dataset.spec.condition_shape,
            "unpaired": dataset.spec.unpaired,
            "dataset": dataset.name, "dataset_size": len(dataset),
            "data_info": {k: v for k, v in dataset.info.items() if k != "classes"}}
    (run_dir / "config.json").write_text(cfg.to_json())
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))


class RunHooks:
    """Sample grids, health, evaluation and TensorBoard for one run (see train.loop.LoopHooks)."""

    def __init__(self, run_dir: Path, cfg: Config, method: Method, dataset: Dataset, device, *, resume: bool,
                 log=print):
        self.run_dir, self.cfg, self.method, self.dataset, self.device, self.log = \
            run_dir, cfg, method, dataset, device, log
        t = cfg.train
        (run_dir / "samples").mkdir(exist_ok=True)
        # Fixed inputs for the grids: their own generator, so drawing them never moves training's RNG.
        n_fixed = N_FIXED_IMAGES if dataset.is_image else N_FIXED_POINTS
        self.preview_inputs, self.grid_cols = method.preview_inputs(dataset, t.seed + 1, n_fixed)
        if not dataset.is_image:  # the real points drawn beside the generated ones, the same each time
            self.real_points = dataset.x[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
                                         [:n_fixed]]
        self.evaluator = None
        if t.eval_every_kimg > 0 and not method.has_prior:
            log(f"note: train.eval_every_kimg samples from a prior, which method {cfg.method.name} has not; it is "
                f"ignored (measure the run with `ganforge evaluate {run_dir}`)")
        elif t.eval_every_kimg > 0:
            from ganforge.evaluation import PeriodicEvaluator

            self.evaluator = PeriodicEvaluator(dataset, t.eval_samples, seed=t.seed, log=log)
            if not self.evaluator.available():
                log(f"note: no feature extractor for {dataset.name}; train.eval_every_kimg is ignored")
                self.evaluator = None
        # Health: a sample probe on its own fixed inputs, and the monitor (replaying the kept log on
        # resume, so alerts already given are not given again).
        self.probe = self.monitor = None
        if t.health and method.has_prior:
            from ganforge.health import HealthMonitor, SampleProbe

            n_probe = N_PROBE_IMAGES if dataset.is_image else N_PROBE_POINTS
            self.probe_inputs = method.sampling_inputs(n_probe, torch.Generator().manual_seed(t.seed + 2))
            self.probe = SampleProbe(dataset, n_probe, log)
            if method.game is not None:
                self.monitor = HealthMonitor(method.game.saturating, t.log_every)
                for old in read_metrics(run_dir) if resume else []:
                    self.monitor.update(old, replay=True)
        self.board = None
        if t.tensorboard:
            from ganforge.report.tensorboard import open_tensorboard

            self.board = open_tensorboard(run_dir)

    def loop_hooks(self) -> LoopHooks:
        return LoopHooks(probe=self.health if self.probe else None, after_row=self.after_row,
                         evaluate=self.evaluate if self.evaluator else None, samples=self.samples,
                         checkpointed=self.checkpointed)

    def health(self, step: int) -> dict:
        """The probe measures the trained sampler (not its EMA): what training is doing now."""
        m = self.method
        return self.probe(m.generate(self.probe_inputs, self.device, network=m.models[m.sampler]))

    def after_row(self, row: dict) -> list[dict]:
        if self.board is not None:
            self.board.scalars(row)
        alerts = self.monitor.update(row) if self.monitor is not None else []
        for alert in alerts:
            self.log(f"ganforge: {alert.text()}")
            if self.board is not None:
                self.board.text(alert)
        return [a.row() for a in alerts]

    def evaluate(self, step: int) -> dict:
        return self.evaluator(lambda n, seed: self.method.sample(n, seed, self.device))

    def samples(self, step: int) -> Path:
        """The fixed-input grid (images) or the 2-D picture of both players at ``step``."""
        fake = self.method.preview(self.preview_inputs, self.device)
        path = self.run_dir / "samples" / f"step_{step:09d}.png"
        if self.dataset.is_image:
            from ganforge.report.images import save_grid

            save_grid(fake, path, nrow=self.grid_cols)
        else:
            from ganforge.report.plots import plot_2d

            critic = self.method.critic()
            plot_2d(self.real_points[:len(fake)], fake, critic[0] if critic else None, path,
                    title=f"{self.cfg.name}, step {step}", device=self.device,
                    probabilistic=critic[1] if critic else True)
        if self.board is not None:
            self.board.image(path, step)
        return path

    def checkpointed(self, step: int) -> None:
        plot_training_curves(read_metrics(self.run_dir), self.run_dir / "loss_curves.png")  # a look mid-run

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def run_training(run_dir: Path, cfg: Config, *, resume: bool = False, progress: bool = True, log=print) -> dict:
    """Train ``cfg`` in ``run_dir`` (fresh, or continuing its latest checkpoint) to cfg.train.steps.

    Returns the end-of-run summary (also written to summary.json and summary.txt).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    world = distributed.world()  # one process, or this rank of several (rank 0 alone writes and logs)
    if not world.is_main:
        log = _silent
    device = select_device(cfg.train.device)
    seed_everything(cfg.train.seed)
    dataset = load_dataset_once(cfg, world, log)
    method = build_method(cfg, dataset.spec, device, cfg.train.channels_last)
    dataset = method.prepare_data(dataset, log)
    loop = TrainingLoop(run_dir, cfg, method, dataset, device, LoopHooks(), log, world)
    if resume:  # the checkpoint is checked and loaded before anything in the run is written
        loop.resume()
    else:
        method.initialise(log)
        if world.active:  # every rank starts from rank 0's networks, then draws its own noise
            distributed.broadcast_modules(list(method.networks().values()))
            seed_everything(distributed.rank_seed(cfg.train.seed, world.rank))
    if not world.is_main:
        run_with_rollbacks(loop, cfg.train.nan_rollbacks, False, log)
        return {}
    write_run_info(run_dir, cfg, dataset)
    hooks = RunHooks(run_dir, cfg, method, dataset, device, resume=resume, log=log)
    loop.hooks = hooks.loop_hooks()
    setup_s = time.perf_counter() - started  # data, networks, checkpoint, hooks: not training time
    try:
        run_with_rollbacks(loop, cfg.train.nan_rollbacks, progress, log)
        final_samples = hooks.samples(cfg.train.steps)
    except TrainingDiverged:
        write_report_quietly(run_dir, log)
        raise
    finally:
        hooks.close()
    return finish_run(run_dir, cfg, method, dataset, device, final_samples, log, setup_s=setup_s,
                      trained_on=loop.devices, precision=loop.precision)


def _silent(*_) -> None:
    pass


def load_dataset_once(cfg: Config, world, log) -> Dataset:
    """The run's data; with several processes rank 0 loads (and fetches) it first, then the others
    read its cache."""
    if world.is_main:
        dataset = load_dataset(cfg.data, log)
        distributed.barrier()
        return dataset
    distributed.barrier()
    return load_dataset(cfg.data, log)


def run_with_rollbacks(loop: TrainingLoop, rollbacks: int, progress: bool, log=print) -> None:
    """Run the loop; when a loss becomes NaN or infinite, go back to the last checkpoint with the
    learning rates halved, at most ``rollbacks`` times (train.nan_rollbacks). The halved scale is
    saved in later checkpoints, so a resume continues with it."""
    for attempt in range(rollbacks + 1):
        try:
            loop.run(progress)
            return
        except TrainingDiverged as exc:
            last = ckpt_io.latest_checkpoint(loop.run_dir)
            if attempt == rollbacks or last is None:
                raise
            loop.resume()  # the newest checkpoint that passes its checks: weights, optimizers, RNGs, batches
            loop.set_lr_scale(loop.lr_scale / 2)
            log(f"ganforge: {exc}; rolled back to {last.name} with the learning rates x{loop.lr_scale:g} "
                f"(rollback {attempt + 1} of {rollbacks}, train.nan_rollbacks)")


def write_report_quietly(run_dir: Path, log=print) -> Path | None:
    """report.html for the run; a failure to draw it never costs the training run."""
    from ganforge.report.html import write_report

    try:
        return write_report(run_dir)
    except Exception as e:  # noqa: BLE001 - the run's files are complete; only the report is missing
        log(f"note: report.html was not written ({type(e).__name__}: {e}); try `ganforge report {run_dir}`")
        return None


def finish_run(run_dir: Path, cfg: Config, method: Method, dataset: Dataset, device, final_samples: Path,
               log=print, setup_s: float | None = None, trained_on: list[str] | None = None,
               precision: str | None = None) -> dict:
    """Plots, the 2-D evaluation (eval.json), summary.txt/.json and report.html. ``trained_on``:
    every device the run trained on, in order, when a resume moved it (the summary says "on cuda,
    then cpu"; its time and img/s span them all); ``precision``: what the step computed in, when
    it differs from train.precision (bf16 asked on a CPU without bf16 arithmetic)."""
    from ganforge.report.summary import write_summary

    rows = read_metrics(run_dir)
    plot_training_curves(rows, run_dir / "loss_curves.png")
    evaluation = None
    if not dataset.is_image:
        from ganforge.evaluation import evaluate_points

        seed = 0
        evaluation = evaluate_points(method.sample(cfg.train.eval_samples, seed, device), dataset, seed)
        (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=2))
    world = distributed.world()
    where = ", then ".join(trained_on) if trained_on else str(device)  # the summary's "on ..."
    if world.active:
        where = f"{where} x {world.size} processes"
    summary = write_summary(run_dir, cfg, rows, final_samples, evaluation, where, method.objective(), setup_s,
                            precision)
    write_report_quietly(run_dir, log)
    return summary
