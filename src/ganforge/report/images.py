"""Image grids and PNG files, with Pillow (no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) floats in [-1, 1] -> uint8 in [0, 255] (the inverse of the batch iterator)."""
    return ((images.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def make_grid(images: torch.Tensor | np.ndarray, nrow: int | None = None, pad: int = 2,
              pad_value: int = 255) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] (a tensor or a NumPy array) -> one (H', W', C) uint8 array,
    ``nrow`` images a row, on a background of grey level ``pad_value`` (white by default)."""
    if isinstance(images, np.ndarray):
        x = np.clip(np.round((images.astype(np.float32) + 1) * 127.5), 0, 255).astype(np.uint8)
    else:
        x = to_uint8(images).numpy()
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top:top + h, left:left + w] = x[i].transpose(1, 2, 0)
    return grid


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # what Pillow writes from a file name


def picture_path(path: str | Path) -> Path:
    """``path`` as a Path, or a one-line error when its suffix names no picture format ganforge writes."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        from ganforge.errors import GanforgeError

        raise GanforgeError(f"cannot write an image to '{path}': name a {', '.join(IMAGE_SUFFIXES)} file, "
                            f"e.g. {path.with_suffix('.png').name}")
    return path


def save_png(array: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Save an (H, W, C) uint8 array, optionally enlarged by an integer factor (nearest)."""
    path = picture_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    img.save(path)
    return path


def save_grid(images: torch.Tensor | np.ndarray, path: str | Path, nrow: int | None = None,
              pad_value: int = 255) -> Path:
    """Save a grid of images, enlarged so small (28 px) images stay visible."""
    scale = max(1, 64 // images.shape[-1])
    return save_png(make_grid(images, nrow, pad_value=pad_value), path, scale=min(scale, 4))
