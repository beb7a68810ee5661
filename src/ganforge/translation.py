"""Translating with a paired run (pix2pix): image files in, input | output (| target) rows or one
output file per input out.

The U-Net is fully convolutional, so it translates any picture whose sides are multiples of its
stride (2^depth, the training side): a 64-px model reads 64x64, 128x64, 256x256, ... (the paper
applies its 256-px maps model to 512-px pictures the same way). Other sizes are refused in one
line, or scaled and centre-cropped to the training side with ``resize``. Colour modes are
converted as training converts them (alpha composited onto the run's ``data.background``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.autoencoding import image_files
from ganforge.errors import GanforgeError


def require_translation(run) -> None:
    if not run.info.get("condition_shape"):
        raise GanforgeError(f"{run.run_dir} is not a translation run (method {run.config.method.name}); translate "
                            "with a pix2pix run")


def read_input(path: Path, run, resize: bool = False) -> torch.Tensor:
    """One picture as the network's input (1, C_in, H, W) in [-1, 1]: any size that is a multiple of
    the training side, or (``resize``) scaled and centre-cropped to the training side."""
    import numpy as np
    from PIL import Image

    from ganforge.data.folders import convert_mode, parse_background, prepare_image

    c, side, _ = run.info["condition_shape"]
    background = parse_background(run.config.data.background)
    try:
        with Image.open(path) as img:
            img.load()
            w, h = img.size
            if resize:
                array = prepare_image(img, side, c, background)
            elif w % side or h % side:
                raise GanforgeError(f"{path} is {w}x{h}; this model translates pictures whose sides are multiples of "
                                    f"{side} px (e.g. {side}x{side}, {2 * side}x{side}); pass --resize to scale it "
                                    f"to {side}x{side}")
            else:  # the same conversions as training, without any scaling
                array = np.array(convert_mode(img, c, background), dtype=np.uint8)
                array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise GanforgeError(f"cannot read {path} as an image ({e}); pass PNG or JPEG files") from None
    return torch.from_numpy(array)[None].float() / 127.5 - 1


def translate_files(run, paths: list[Path], resize: bool = False) -> list[tuple[Path, torch.Tensor, torch.Tensor]]:
    """(file, input, output) for every image the paths name, one at a time (sizes may differ);
    input and output are (1, C, H, W) in [-1, 1]."""
    require_translation(run)
    out = []
    for f in image_files(paths):
        x = read_input(f, run, resize)
        out.append((f, x, run.method.translate(x)))
    return out


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


def output_names(files: list[Path]) -> list[str]:
    """A PNG name for each input's translation: its stem, made unique when two inputs share one."""
    names, seen = [], {}
    for f in files:
        stem = f.stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png")
    return names
