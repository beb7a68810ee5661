"""The in-memory batch iterator: seeded, resumable, no per-sample Python.

The whole dataset sits on the training device. Each epoch draws a permutation from a generator
seeded by (seed, epoch), so the iterator's entire state is two integers and a resumed run sees
exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import torch


class Batch:
    """A batch as named tensors of equal length: ``x`` float (B, C, H, W) in [-1, 1] for images,
    (B, 2) for points; ``y`` (B,) labels when the data has them; other names (a condition image, a
    second domain) as a method's data provides them. ``batch["name"]``, ``batch.x``, ``batch.y``."""

    def __init__(self, tensors: dict[str, torch.Tensor] | torch.Tensor, y: torch.Tensor | None = None):
        if torch.is_tensor(tensors):  # Batch(x, y)
            tensors = {"x": tensors} if y is None else {"x": tensors, "y": y}
        self.tensors = dict(tensors)

    @property
    def x(self) -> torch.Tensor:
        return self.tensors["x"]

    @property
    def y(self) -> torch.Tensor | None:
        return self.tensors.get("y")

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))


class BatchIterator:
    """Infinite iterator of shuffled batches of ``batch_size`` over named tensors of equal length
    (the last partial batch of an epoch is dropped, so every batch has the same shape). uint8
    tensors are images: they arrive as floats in [-1, 1]."""

    def __init__(self, tensors: dict[str, torch.Tensor | None], batch_size: int, seed: int,
                 device: torch.device | str = "cpu", channels_last: bool = False, shards: int = 1, shard: int = 0):
        tensors = {k: v.to(device) for k, v in tensors.items() if v is not None}
        n = len(next(iter(tensors.values())))
        # Distributed training: the global batch is shards x batch_size in the one seeded order, and
        # this process takes slice ``shard`` of it (disjoint shards that together are the global batch).
        self.shards, self.shard, self.shard_size = shards, shard, batch_size
        batch_size *= shards
        if batch_size > n:
            from ganforge.errors import GanforgeError

            per = f" x {shards} processes" if shards > 1 else ""
            raise GanforgeError(f"train.batch_size={self.shard_size}{per} is larger than the dataset "
                                f"({n} samples); lower it")
        self.tensors, self.n = tensors, n
        self.batch_size = batch_size
        self.seed = seed
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.epoch = 0
        self.cursor = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).to(self.device)

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        if self.cursor + self.batch_size > self.n:
            self.epoch += 1
            self.cursor = 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.cursor:self.cursor + self.batch_size]
        self.cursor += self.batch_size
        if self.shards > 1:
            idx = idx[self.shard * self.shard_size:(self.shard + 1) * self.shard_size]
        out = {}
        for name, t in self.tensors.items():
            v = t[idx]
            if v.dtype == torch.uint8:
                v = v.float().mul_(1 / 127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
                if self.channels_last and v.ndim == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[name] = v
        return Batch(out)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._perm = self._permutation(self.epoch)
