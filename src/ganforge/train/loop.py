"""The training loop, shared by every method. It trains, and only trains.

A method supplies networks, optimizer specs and a list of phases; this loop owns the rest of a
training step: precision, optimizers and their LR schedules, zero_grad/backward/step, gradient
norms, EMA, rows of metrics.jsonl, checkpoints with exact resume. What a run does around
training (sample grids, the health probe, evaluation, TensorBoard, plots, the report) comes in
as :class:`LoopHooks` from run-level code (``ganforge.training``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import random
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ganforge.data import BatchIterator, Dataset
from ganforge.errors import GanforgeError, Interrupted
from ganforge.train import checkpoint as ckpt_io
from ganforge.train import distributed
from ganforge.train.allocator import keep_freed_memory
from ganforge.train.checks import DamagedCheckpoint
from ganforge.train.ema import ema_beta, update_ema
from ganforge.train.metrics_log import MetricsLog
from ganforge.train.precision import step_precision
from ganforge.train.signals import StopSignals


class TrainingDiverged(GanforgeError):
    """A logged value became NaN or infinite; the last checkpoint is intact."""


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise GanforgeError("train.device=cuda but no CUDA device is visible; use train.device=cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        keep_freed_memory()  # no page faults for the activations each step frees and allocates again
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


def make_optimizer(params, spec, device: torch.device) -> torch.optim.Optimizer:
    """Adam or AdamW from an OptimizerSpec; the fused kernel where this PyTorch has it for the
    device (same maths, one kernel)."""
    cls = torch.optim.AdamW if spec.kind == "adamw" else torch.optim.Adam
    kwargs = {"lr": spec.lr, "betas": spec.betas, "weight_decay": spec.weight_decay}
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, foreach=device.type == "cuda", **kwargs)


def compile_networks(networks) -> None:
    """torch.compile each network in place, and its direct children (a method may call a part
    alone, e.g. StyleGAN's G.synthesis): parameter names and checkpoints stay those of the eager
    network, and ``torch.compiler.set_stance("force_eager")`` runs them uncompiled."""
    if not hasattr(torch.compiler, "set_stance"):
        raise GanforgeError(f"train.compile needs PyTorch 2.6 or newer (this is {torch.__version__}); upgrade "
                            "torch or set train.compile=false")
    for net in networks:
        net.compile()
        for child in net.children():
            child.compile()


@functools.cache
def stat_name(phase: str, key: str) -> str:
    """metrics.jsonl name of a loss output: 'loss' -> loss/D, 'real' -> loss/D_real, others as-is."""
    if key == "loss":
        return f"loss/{phase}"
    return f"loss/{phase}_{key}" if key in ("real", "fake") else key


@dataclass
class LoopHooks:
    """What run-level code does at the loop's moments (each optional).

    probe(step) -> values added to a log row (measured before its timing ends); after_row(row) ->
    extra rows to write after it (e.g. alerts); evaluate(step) -> values of an evaluation row
    (its time is not counted as training time); samples(step) at sample steps; checkpointed(step)
    after each intermediate checkpoint.
    """

    probe: Callable[[int], dict] | None = None
    after_row: Callable[[dict], list[dict]] | None = None
    evaluate: Callable[[int], dict] | None = None
    samples: Callable[[int], None] | None = None
    checkpointed: Callable[[int], None] | None = None


class TrainingLoop:
    """The state of one training run between steps: ``TrainingLoop(...)``, then :meth:`resume` to
    continue from the run's checkpoint, then :meth:`run` to train to cfg.train.steps."""

    def __init__(self, run_dir: Path, cfg, method, dataset: Dataset, device: torch.device, hooks: LoopHooks, log,
                 world: distributed.World = distributed.SINGLE):
        self.run_dir, self.cfg, self.method, self.device, self.hooks, self.log = \
            run_dir, cfg, method, device, hooks, log
        self.world = world  # several processes: rank 0 alone writes (see train/distributed.py)
        t = cfg.train
        self.trained, self.networks = method.models, method.networks()
        # Each optimizer updates its networks (GANs: "D" and "G" apart; autoencoders: "E" and "G" together).
        self.specs = method.optimizers()
        self.owned = {name: spec.networks or (name,) for name, spec in self.specs.items()}
        self.params = {name: [p for net in self.owned[name] for p in self.trained[net].parameters()]
                       for name in self.specs}
        self.optimizers = {name: make_optimizer(self.params[name], spec, device) for name, spec in self.specs.items()}
        self.scheduled = {name: spec for name, spec in self.specs.items() if spec.schedule.kind != "constant"}
        extras = {name: dataset.extra[name] for name in method.batch_extras}
        self.batches = BatchIterator({"x": dataset.x, "y": dataset.y, **extras}, t.batch_size, t.seed, device,
                                     channels_last=t.channels_last, shards=world.size, shard=world.rank)
        self.ema_beta = ema_beta(t.batch_size * world.size, cfg.method.ema_halflife_kimg) if method.ema else None
        # (EMA copy, trained network) pairs, resolved once rather than at every step.
        self.ema_pairs = [(method.ema[name + "_ema"], self.trained[name]) for name in method.ema_networks()]
        self.precision = step_precision(t.precision, device, log)  # train.precision unless it cannot pay here
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        self.phases = method.phases()
        self.compiled = t.compile
        if self.compiled:
            compile_networks(self.trained.values())
        self.step, self.images_seen, self.elapsed_s = 0, 0, 0.0
        self.devices = [device.type]  # every device the run trained on, in order (a resume elsewhere adds one)
        self.lr_scale = 1.0  # halved by each NaN rollback (train.nan_rollbacks); saved in checkpoints
        self.resumed = False
        self.batch = None
        self.sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
        self.counts: dict[str, int] = defaultdict(int)
        self.grad_norms: dict[str, float] = {}

    def resume(self) -> None:
        """Load weights, optimizers, RNGs, the method's state and the batch position from the newest
        checkpoint that passes its checks (train.checks), saying which damaged ones were passed over.
        Writes nothing: a run that cannot be resumed is left as it was."""
        ckpt_io.remove_partial_checkpoints(self.run_dir)
        candidates = ckpt_io.list_checkpoints(self.run_dir)[::-1]
        if not candidates:
            raise GanforgeError(f"{self.run_dir} has no complete checkpoint to resume from; start it again "
                                "without --resume")
        ckpt, state = ckpt_io.load_newest_usable(candidates, self.load, self.log)
        self.step, self.images_seen, self.elapsed_s = state["step"], state["images_seen"], state["elapsed_s"]
        earlier = state.get("devices", [])
        self.devices = earlier if earlier[-1:] == self.devices[-1:] else earlier + self.devices[-1:]
        self.set_lr_scale(state.get("lr_scale", 1.0))
        self.sums.clear()
        self.counts.clear()
        self.resumed = True
        if self.world.rank > 0:  # the checkpoint holds rank 0's RNG state; other ranks draw their own noise
            torch.manual_seed(distributed.rank_seed(self.cfg.train.seed, self.world.rank, self.step))
        self.log(f"resuming {self.run_dir} from {ckpt.name} (step {self.step}, "
                 f"{self.images_seen / 1000:.1f} kimg)")

    def set_lr_scale(self, scale: float) -> None:
        """Every optimizer's learning rate becomes ``scale`` x its spec's (the schedule then applies)."""
        self.lr_scale = scale
        for name, spec in self.specs.items():
            for group in self.optimizers[name].param_groups:
                group["lr"] = spec.lr * scale

    def load(self, ckpt: Path) -> dict:
        """Everything in ``ckpt`` into the networks, optimizers, RNGs, method and batch iterator."""
        state = ckpt_io.load_checkpoint(ckpt, self.networks, self.optimizers, self.cfg.to_dict())
        try:
            self.method.load_state_dict(state["method_tensors"], state.get("method_state", {}))
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
            raise DamagedCheckpoint(f"checkpoint {ckpt} is damaged: the method's state cannot be restored "
                                    f"({type(exc).__name__})") from None
        self.batches.load_state_dict(state["batches"])
        return state

    def save_checkpoint(self) -> None:
        """A complete checkpoint of this step, once every loss since the last log row is finite."""
        self.check_finite()
        self.last_save_time = time.monotonic()
        if self.world.active:
            distributed.check_identical(list(self.trained.values()), self.device)
        if self.world.is_main:
            ckpt_io.save_checkpoint(self.run_dir, self.step, self.networks, self.optimizers, {
                "images_seen": self.images_seen, "elapsed_s": self.elapsed_s, "batches": self.batches.state_dict(),
                "lr_scale": self.lr_scale, "devices": self.devices,
                "config": self.cfg.to_dict(), "data": json.loads((self.run_dir / "run.json").read_text()),
            }, keep=self.cfg.train.keep_checkpoints, method_state=self.method.state_dict())
        distributed.barrier()  # no rank reads a checkpoint (a rollback) before it is complete

    def run(self, progress: bool) -> dict:
        """Train from the current step (0, or where :meth:`resume` left it) to train.steps."""
        t = self.cfg.train
        self.prepare(MetricsLog(self.run_dir / "metrics.jsonl", self.step if self.resumed else None)
                     if self.world.is_main else None, progress)
        with StopSignals(self.log) as stop:
            try:
                while self.step < t.steps:
                    self.train_one_step()
                    stopping = stop.signum is not None
                    if self.world.active:  # every rank stops at the same step
                        stopping = distributed.any_rank(stopping, self.device)
                    if stopping and self.step < t.steps:
                        self.bar.close()
                        self.save_checkpoint()
                        by = signal.Signals(stop.signum).name if stop.signum is not None else "another process"
                        raise Interrupted(f"stopped at step {self.step} by {by}; checkpoint step_{self.step:09d} "
                                          f"saved; continue with `ganforge train --resume {self.run_dir}`",
                                          stop.exit_code if stop.signum is not None else 1)
            except KeyboardInterrupt:
                self.bar.close()
                last = ckpt_io.latest_checkpoint(self.run_dir)
                where = (f"the last checkpoint is {last.name}; continue with `ganforge train --resume "
                         f"{self.run_dir}`") if last else "no checkpoint was saved yet; start the run again"
                raise Interrupted(f"interrupted at step {self.step}; {where}", 130) from None
        self.bar.close()
        self.save_checkpoint()
        return {"step": self.step, "images_seen": self.images_seen, "elapsed_s": self.elapsed_s}

    def prepare(self, metrics, progress: bool) -> None:
        """Set up what :meth:`train_one_step` needs besides the networks: where rows go (an object
        with ``write(row)``, or None), the progress bar, the clocks of logging, evaluation and
        checkpoints. :meth:`run` calls it; a driver that steps by hand (the lab) calls it once."""
        t = self.cfg.train
        self.metrics = metrics
        self.eval_every = t.eval_every_kimg * 1000
        self.evals_done = int(self.images_seen // self.eval_every) if self.hooks.evaluate else 0
        self.last_log_time, self.last_log_images = time.perf_counter(), self.images_seen
        # Redraw often on a terminal; only every 30 s into a log file or a CI console.
        self.bar = tqdm(total=t.steps, initial=self.step, disable=not progress or not self.world.is_main, unit="step",
                        dynamic_ncols=True,
                        desc=self.cfg.name, mininterval=0.5 if sys.stderr.isatty() else 30)
        self.last_save_time = time.monotonic()

    def train_one_step(self, only: str | None = None) -> None:
        """One iteration, then what falls due after it: the log row, evaluation, grids, checkpoints.

        ``only``: run just the phase of that name, one optimizer step of it (the lab's "step D
        only" and "step G only"); it counts as a step like a full iteration."""
        t, hooks = self.cfg.train, self.hooks
        is_log_step = (self.step + 1) % t.log_every == 0 or self.step + 1 == t.steps
        self.iteration(is_log_step, only)
        self.step += 1
        self.bar.update(1)
        if is_log_step:
            self.write_log_row()
        # Evaluate (its time is not training time).
        if hooks.evaluate and self.images_seen // self.eval_every > self.evals_done:
            self.evals_done = int(self.images_seen // self.eval_every)
            t_eval = time.perf_counter()
            self.metrics.write({"step": self.step, "kimg": round(self.images_seen / 1000, 3),
                                **hooks.evaluate(self.step)})
            self.last_log_time += time.perf_counter() - t_eval
        # Samples and checkpoints (every checkpoint_every steps, and every checkpoint_minutes of wall time).
        if hooks.samples and t.sample_every and self.step % t.sample_every == 0 and self.step < t.steps:
            hooks.samples(self.step)
        by_time = t.checkpoint_minutes > 0 and time.monotonic() - self.last_save_time >= 60 * t.checkpoint_minutes
        if self.world.active:  # the ranks' clocks differ: every rank saves when any rank's time is up
            by_time = distributed.any_rank(by_time, self.device)
        if self.step < t.steps and (by_time or t.checkpoint_every and self.step % t.checkpoint_every == 0):
            self.save_checkpoint()
            if hooks.checkpointed:
                hooks.checkpointed(self.step)

    def iteration(self, is_log_step: bool, only: str | None = None) -> None:
        """One training iteration: every phase due at this step (or one step of phase ``only``),
        then the EMA update."""
        self.method.images_seen = self.images_seen
        # Set scheduled learning rates (a pure function of the step, so resume needs no state).
        for name, spec in self.scheduled.items():
            for group in self.optimizers[name].param_groups:
                group["lr"] = spec.lr * self.lr_scale * spec.schedule.factor(self.step, self.cfg.train.steps)
        carry: dict[str, torch.Tensor] = {}
        for phase in self.phases:
            if only is not None:
                if phase.name == only:
                    self.run_phase(dataclasses.replace(phase, repeats=1, every=1), carry, is_log_step)
            elif self.step % phase.every == 0:
                self.run_phase(phase, carry, is_log_step)
        if self.world.active:  # batch-norm statistics, w_avg, codebooks: the same on every rank
            distributed.sync_buffers(list(self.trained.values()))
        # Update EMA.
        for ema, network in self.ema_pairs:
            update_ema(ema, network, self.ema_beta)

    def run_phase(self, phase, carry: dict, is_log_step: bool) -> None:
        """``phase.repeats`` optimizer steps of one phase."""
        # Only the phase's own networks collect weight gradients (and those whose graph it keeps
        # for a later phase: their outputs reach this phase's loss detached, so they get none here).
        for name, module in self.trained.items():
            module.requires_grad_(name in self.owned[phase.trains] or name in phase.keeps_graph_of)
        opt = self.optimizers[phase.trains]
        for repeat in range(phase.repeats):
            # Fetch a real batch.
            if phase.needs_data or self.batch is None:
                self.batch = next(self.batches)
                self.images_seen += len(self.batch) * self.world.size
            # Forward and loss; a lazy phase's loss is scaled by its interval.
            uncompiled = self.compiled and phase.double_backward
            with self.autocast, torch.compiler.set_stance("force_eager") if uncompiled else contextlib.nullcontext():
                out = phase.loss(self.trained, self.batch, carry)
            for key in phase.hands_on:
                carry[key] = out.pop(key)
            # Backward and step.
            opt.zero_grad(set_to_none=True)
            (out["loss"] * phase.every if phase.every > 1 else out["loss"]).backward()
            if self.world.active:  # every rank takes the step of the global batch
                distributed.average_gradients(self.params[phase.trains])
            if is_log_step and repeat == phase.repeats - 1:
                grads = [p.grad for p in self.params[phase.trains] if p.grad is not None]
                self.grad_norms[phase.trains] = float(torch.linalg.vector_norm(
                    torch.stack(torch._foreach_norm(grads)))) if grads else 0.0
            opt.step()
            if phase.after_step is not None:
                phase.after_step(self.trained)
            # Accumulate statistics without a device sync.
            for key, val in out.items():
                name = stat_name(phase.name, key)
                self.sums[name] += val.detach().float()
                self.counts[name] += 1

    def check_finite(self) -> None:
        """Stop before a checkpoint would keep a NaN: the sums since the last log row hold every
        step's losses, so one NaN or inf anywhere in them shows."""
        bad = [k for k, v in self.sums.items() if not bool(torch.isfinite(v))]
        if self.world.active and distributed.any_rank(bool(bad), self.device) and not bad:
            bad = ["a loss on another process"]
        if bad:
            self.bar.close()
            raise TrainingDiverged(f"training diverged: {bad[0]} became NaN or infinite before step {self.step}; "
                                   "the last checkpoint is intact; lower the learning rates or try method.loss=ns")

    def write_log_row(self) -> None:
        """Average the interval's statistics into a metrics.jsonl row; stop on a non-finite value."""
        # The probe runs first, so img/s and time_s include its cost.
        probed = self.hooks.probe(self.step) if self.hooks.probe else {}
        if self.world.active:  # the losses of the global batch: the mean of the ranks' means
            keys = sorted(self.sums)
            self.sums.update(zip(keys, distributed.mean_of([self.sums[k] for k in keys]), strict=True))
        now = time.perf_counter()
        row = {"step": self.step, "kimg": round(self.images_seen / 1000, 3)}
        row.update({k: float(s) / self.counts[k] for k, s in self.sums.items()})
        row.update({f"grad_norm/{k}": v for k, v in self.grad_norms.items()})
        row.update({f"lr/{k}": self.optimizers[k].param_groups[0]["lr"] for k in self.scheduled})
        ips = (self.images_seen - self.last_log_images) / max(now - self.last_log_time, 1e-9)
        self.elapsed_s += now - self.last_log_time
        row["img_per_s"] = round(ips, 1)
        row["time_s"] = round(self.elapsed_s, 2)
        row.update(probed)
        if self.metrics is not None:
            self.metrics.write(row)
        for extra in self.hooks.after_row(row) if self.hooks.after_row else []:
            self.bar.clear()
            self.metrics.write(extra)
        bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        if self.world.active and distributed.any_rank(bool(bad), self.device) and not bad:
            bad = ["a value on rank 0"]  # the health probe runs on rank 0 only
        if bad:
            self.bar.close()
            raise TrainingDiverged(f"training diverged: {bad[0]} is {row.get(bad[0], 'not finite')} at step "
                                   f"{self.step}; lower the learning rates or try method.loss=ns (see report.html)")
        losses = "  ".join(f"L_{k[5:]} {v:.3f}" for k, v in row.items() if k.count("/") == 1
                           and k.startswith("loss/") and "_" not in k)
        self.bar.set_postfix_str(f"{ips:,.0f} img/s  {losses}", refresh=False)
        self.sums.clear()
        self.counts.clear()
        self.last_log_time, self.last_log_images = time.perf_counter(), self.images_seen
