"""The in-memory dataset every source ends as, and the spec a method builds its networks from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Dataset:
    """Training data held in memory.

    x: uint8 (N, C, H, W) for images, float32 (N, 2) for points; y: int64 (N,) labels or None.
    extra: more per-sample tensors of length N that some sources carry (the emoji sets: a second
    label, ``subcategory``, and ``code``, which names the emoji so that two vendors' drawings of
    it can be paired).
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def subset(self, idx: torch.Tensor, **info) -> Dataset:
        """The samples at ``idx`` (indices or a boolean mask), with ``info`` added to the record."""
        return Dataset(self.name, self.x[idx], None if self.y is None else self.y[idx], {**self.info, **info},
                       {k: v[idx] for k, v in self.extra.items()})

    @property
    def is_image(self) -> bool:
        return self.x.dtype == torch.uint8

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def n_classes(self) -> int | None:
        """The size of the label vocabulary (a source may name more classes than a subset holds)."""
        if self.y is None:
            return None
        return int(self.info.get("n_classes") or int(self.y.max()) + 1)

    @property
    def spec(self) -> DataSpec:
        condition = self.extra.get("input")
        return DataSpec(self.sample_shape, self.is_image, self.n_classes,
                        None if condition is None else tuple(condition.shape[1:]), bool(self.info.get("unpaired")))

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class DataSpec:
    """What a method needs to know of its data to build networks: the shape of one sample,
    whether samples are images, the number of classes (None without labels), and for paired data
    the shape of one input image (what a translation network reads; None otherwise); unpaired:
    the inputs (domain A) and samples (domain B) are two collections, not pairs (CycleGAN)."""

    sample_shape: tuple[int, ...]
    is_image: bool
    n_classes: int | None = None
    condition_shape: tuple[int, ...] | None = None
    unpaired: bool = False
