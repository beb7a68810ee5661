"""Translating with a paired run (pix2pix): image files in, input | output (| target) rows out."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.autoencoding import image_files, read_images
from ganforge.errors import GanforgeError


def require_translation(run) -> None:
    if not run.info.get("condition_shape"):
        raise GanforgeError(f"{run.run_dir} is not a translation run (method {run.config.method.name}); translate "
                            "with a pix2pix run")


def translate_files(run, paths: list[Path], resize: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[Path]]:
    """(inputs, outputs, files): every image the paths name, read at the network's input size
    (refused with one line when it differs, unless ``resize``), and its translation."""
    require_translation(run)
    shape = tuple(run.info["condition_shape"])
    inputs = read_images(paths, run, resize, shape=shape)
    return inputs, run.method.translate(inputs), image_files(paths)


def translate_held_out(run, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, outputs, targets) of ``n`` seeded held-out pairs of the run's own task."""
    import dataclasses

    from ganforge.data import load_dataset

    require_translation(run)
    pairs = load_dataset(dataclasses.replace(run.config.data, split="test"), log=lambda *_: None)
    pick = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))[:n]
    inputs = pairs.extra["input"][pick].float() / 127.5 - 1
    return inputs, run.method.translate(inputs), pairs.x[pick].float() / 127.5 - 1


def rows(*columns: torch.Tensor) -> torch.Tensor:
    """Interleave columns (each (N, C, H, W)) into N rows of input | output (| target); grey
    columns are repeated to the widest channel count."""
    c = max(col.shape[1] for col in columns)
    columns = [col.expand(-1, c, -1, -1) if col.shape[1] != c else col for col in columns]
    return torch.stack(columns, 1).flatten(0, 1)
