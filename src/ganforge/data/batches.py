"""The in-memory batch iterator: seeded, resumable, no per-sample Python.

The whole dataset sits on the training device. Each epoch draws a permutation from a generator
seeded by (seed, epoch), so the iterator's entire state is two integers and a resumed run sees
exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """x: float (B, C, H, W) in [-1, 1] for images, (B, 2) for points; y: (B,) labels or None."""

    x: torch.Tensor
    y: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.x)


class BatchIterator:
    """Infinite iterator of shuffled batches of ``batch_size`` (the last partial batch of an
    epoch is dropped, so every batch has the same shape)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, batch_size: int, seed: int,
                 device: torch.device | str = "cpu", channels_last: bool = False):
        if batch_size > len(x):
            from ganforge.errors import GanforgeError

            raise GanforgeError(f"train.batch_size={batch_size} is larger than the dataset "
                                f"({len(x)} samples); lower it")
        self.x = x.to(device)
        self.y = None if y is None else y.to(device)
        self.batch_size = batch_size
        self.seed = seed
        self.device = torch.device(device)
        self.channels_last = channels_last and x.ndim == 4
        self.epoch = 0
        self.cursor = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.x), generator=g).to(self.device)

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        if self.cursor + self.batch_size > len(self.x):
            self.epoch += 1
            self.cursor = 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.cursor:self.cursor + self.batch_size]
        self.cursor += self.batch_size
        x = self.x[idx]
        if x.dtype == torch.uint8:
            x = x.float().mul_(1 / 127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return Batch(x, None if self.y is None else self.y[idx])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._perm = self._permutation(self.epoch)
