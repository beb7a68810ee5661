"""Translating with a translation run (pix2pix, CycleGAN): image files in, rows of input | output
(| reconstruction) (| target) or one output file per input out.

The generators are fully convolutional, so a run translates any picture whose sides are multiples
of its stride (the U-Net's: the training side; CycleGAN's ResNet: 4): a 64-px pix2pix model reads
64x64, 128x64, 256x256, ... (the paper applies its 256-px maps model to 512-px pictures the same
way). Other sizes are refused in one line, or scaled and centre-cropped to the training side with
``resize``. Colour modes are converted as training converts them (alpha composited onto the
run's ``data.background``). A CycleGAN run translates either way (``direction`` a2b or b2a) and
shows the reconstruction, the picture translated back.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.autoencoding import image_files
from ganforge.errors import GanforgeError
from ganforge.evaluation import held_out_pairs


def require_translation(run) -> None:
    if not run.info.get("condition_shape"):
        raise GanforgeError(f"{run.run_dir} is not a translation run (method {run.config.method.name}); translate "
                            "with a pix2pix or cyclegan run")


def stride_of(run) -> int:
    """Sides the run's translator accepts are multiples of this."""
    return run.info["condition_shape"][-1] if run.config.method.name == "pix2pix" else 4


def read_input(path: Path, run, resize: bool = False, direction: str = "a2b") -> torch.Tensor:
    """One picture as the translator's input (1, C, H, W) in [-1, 1]: any size whose sides are
    multiples of its stride, or (``resize``) scaled and centre-cropped to the training side."""
    import numpy as np
    from PIL import Image

    from ganforge.data.folders import convert_mode, parse_background, prepare_image

    c, side, _ = run.method.input_shape(direction)
    stride = stride_of(run)
    background = parse_background(run.config.data.background)
    try:
        with Image.open(path) as img:
            img.load()
            w, h = img.size
            if resize:
                array = prepare_image(img, side, c, background)
            elif w % stride or h % stride:
                raise GanforgeError(f"{path} is {w}x{h}; this model translates pictures whose sides are multiples of "
                                    f"{stride} px (e.g. {side}x{side}, {2 * side}x{side}); pass --resize to scale it "
                                    f"to {side}x{side}")
            else:  # the same conversions as training, without any scaling
                array = np.array(convert_mode(img, c, background), dtype=np.uint8)
                array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise GanforgeError(f"cannot read {path} as an image ({e}); pass PNG or JPEG files") from None
    return torch.from_numpy(array)[None].float() / 127.5 - 1


def translate_files(run, paths: list[Path], resize: bool = False,
                    direction: str = "a2b") -> list[tuple[Path, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(file, input, output, reconstruction or None) for every image the paths name, one at a time
    (sizes may differ); each (1, C, H, W) in [-1, 1]."""
    require_translation(run)
    out = []
    for f in image_files(paths):
        x = read_input(f, run, resize, direction)
        y = run.method.translate(x, direction=direction)
        out.append((f, x, y, run.method.reconstruct(y, direction=direction)))
    return out


def translate_held_out(run, n: int, seed: int = 0, direction: str = "a2b") -> dict[str, torch.Tensor]:
    """Columns of ``n`` seeded held-out pictures of the run's own task: input, output, and where
    they exist reconstruction and target; each (n, C, H, W) in [-1, 1]."""
    require_translation(run)
    inputs, targets, _ = held_out_pairs(run, direction)
    pick = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[:n]
    x = inputs[pick].float() / 127.5 - 1
    y = run.method.translate(x, direction=direction)
    columns = {"input": x, "output": y}
    back = run.method.reconstruct(y, direction=direction)
    if back is not None:
        columns["reconstruction"] = back
    if targets is not None:
        columns["target"] = targets[pick].float() / 127.5 - 1
    return columns


def rows(*columns: torch.Tensor) -> torch.Tensor:
    """Interleave columns (each (N, C, H, W)) into N rows of input | output (| ...); grey
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
