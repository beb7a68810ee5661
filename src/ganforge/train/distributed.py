"""Data-parallel training across processes, started by torchrun (``torchrun --nproc_per_node=N -m
ganforge train ...`` or ``ganforge train --nproc N``).

Every process (rank) holds the whole method. At each step the batch iterator draws one global
batch of N x train.batch_size pictures (the same seeded order as one process would draw) and rank
r takes the r-th slice, so the ranks' shards are disjoint and together are the global batch. After
each backward pass the gradients are averaged across ranks (one all-reduce of the flattened
gradients), so every rank takes the same optimizer step: N ranks x batch b train like one process
with batch N b whenever a loss is a mean over its batch.

Why not the ``DistributedDataParallel`` wrapper: ganforge's phases run a network several times
before one backward (D on reals and on fakes), differentiate through gradients (R1, the gradient
penalty and the path-length penalty use create_graph, which the wrapper's reducer does not
support) and train different networks in turn. Averaging the gradients of the networks a phase
trains, after its backward, is exact in all of these cases.

What else is kept the same across ranks:

- floating-point buffers (batch-norm running statistics, StyleGAN's w_avg and path-length mean,
  a VQ-VAE's moving-average codebook) are averaged after every iteration, which is exact for the
  running means updated linearly (each rank's update is an average of its own shard) and keeps
  the ranks identical; integer buffers (counters) come from rank 0;
- batch-norm layers normalise with their own shard's statistics (as the wrapper does without
  SyncBatchNorm), and a minibatch-standard-deviation layer groups within a shard;
- EMA copies are updated from identical weights on every rank, with the EMA's half-life counted
  in global images;
- each rank draws its own noise: rank r's RNG is seeded from (train.seed, r) and, on resume, from
  (train.seed, r, step), since a checkpoint keeps rank 0's RNG state only; a method's own state
  (CycleGAN's history pools) is rank 0's in checkpoints;
- rank 0 alone writes the run directory: metrics.jsonl (losses averaged over ranks), grids,
  checkpoints and the report. The other ranks read checkpoints from it when resuming, so on
  several machines the run directory must be on a shared filesystem.

Exactness: one process resumes bit-exactly; N processes resume with the same data order and
weights, but ranks above 0 draw new noise. A run may be resumed with another number of
processes (the data order is kept; the global batch, and with it the EMA's beta, changes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ganforge.errors import GanforgeError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: rank of size, and its rank on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = World()
_world = SINGLE


def world() -> World:
    """The world this process trains in (one process unless :func:`start` found torchrun's variables)."""
    return _world


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device_name: str) -> World:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT):
    gloo on CPU, nccl on CUDA. One process without torchrun: nothing to join."""
    global _world
    if not launched_by_torchrun() or _world.active:
        return _world
    env = {k: int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if k in os.environ}
    if len(env) < 3:
        raise GanforgeError("WORLD_SIZE is set but RANK or LOCAL_RANK is not; start distributed training with "
                            "torchrun (or `ganforge train --nproc N`)")
    cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(env["LOCAL_RANK"])
    dist.init_process_group("nccl" if cuda else "gloo")
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"]))
    if not cuda:  # the machine's cores shared between its processes
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_size))
    _world = World(env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], local_size)
    return _world


def stop() -> None:
    """Leave the process group once every rank is done: a rank that tore its group down while
    rank 0 still wrote the summary and report could abort, and torchrun would then stop rank 0."""
    global _world
    if _world.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _world = SINGLE


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """Rank r's RNG seed: train.seed itself for rank 0 of a fresh run (one process trains as before)."""
    return seed if rank == 0 and step == 0 else (seed * 1_000_003 + rank * 7919 + step) % 2**63


def _flat_all_reduce_mean(tensors: list[torch.Tensor]) -> None:
    """tensors <- their mean over ranks, in one all-reduce per dtype."""
    size = dist.get_world_size()
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat)
        flat /= size
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def average_gradients(params: list[nn.Parameter]) -> None:
    """Each gradient <- its mean over ranks (a parameter without a gradient on every rank keeps none;
    ranks run the same phases, so they agree on which have one)."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        _flat_all_reduce_mean(grads)


def sync_buffers(modules: list[nn.Module]) -> None:
    """Floating-point buffers averaged over ranks; the others (counters) copied from rank 0."""
    floats, others = [], []
    for module in modules:
        for b in module.buffers():
            (floats if b.dtype.is_floating_point else others).append(b)
    if floats:
        _flat_all_reduce_mean(floats)
    for b in others:
        dist.broadcast(b, 0)


def broadcast_modules(modules: list[nn.Module]) -> None:
    """Every parameter and buffer from rank 0 (a fresh run starts identical on every rank)."""
    with torch.no_grad():
        for module in modules:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, 0)


def mean_of(values: list[torch.Tensor]) -> list[torch.Tensor]:
    """The mean over ranks of scalar tensors (the logged losses)."""
    if not values:
        return values
    stacked = torch.stack([v.float() for v in values])
    dist.all_reduce(stacked)
    return list(stacked / dist.get_world_size())


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on any rank (a stop signal, a non-finite loss): all ranks then act alike."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def check_identical(modules: list[nn.Module], device: torch.device) -> None:
    """Raise if the ranks' weights have drifted apart (they must not: every rank steps alike)."""
    with torch.no_grad():
        total = sum((p.double().sum() + p.double().abs().sum() for m in modules for p in m.parameters()),
                    torch.zeros((), dtype=torch.float64, device=device))
        spread = torch.stack([total, -total])
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    if float(spread[0] + spread[1]) > 1e-9 * max(1.0, abs(float(total))):
        raise GanforgeError("the training processes' weights differ; this is a bug in ganforge's distributed "
                            "training; please report it with the run's config")


def _comm_device() -> torch.device:
    """Where collective tensors live: the GPU for nccl, the CPU for gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def share_text(text: str | None, error: str | None = None) -> str:
    """Rank 0's ``text`` on every rank (e.g. the run directory it chose), or rank 0's ``error``
    raised on every rank, so that a refusal on rank 0 stops all ranks at once."""
    if not _world.active:
        if error:
            raise GanforgeError(error)
        return text or ""
    payload = (f"E{error}" if error else f"T{text or ''}").encode() if _world.is_main else b""
    device = _comm_device()
    length = torch.tensor([len(payload)], dtype=torch.long, device=device)
    dist.broadcast(length, 0)
    buffer = torch.zeros(int(length), dtype=torch.uint8, device=device)
    if _world.is_main and payload:
        buffer.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(buffer, 0)
    message = bytes(buffer.cpu().tolist()).decode()
    if message.startswith("E"):
        raise GanforgeError(message[1:] if _world.is_main else f"rank 0 stopped: {message[1:]}")
    return message[1:]


def barrier() -> None:
    if _world.active:
        dist.barrier()
