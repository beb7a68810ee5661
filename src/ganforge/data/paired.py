"""Paired image-to-image tasks: each sample is a target picture ``x`` and its input ``extra["input"]``.

Built from the emoji (their fixed test split carries over, so no task trains on a test emoji):

- ``emoji-<a>2<b>`` (e.g. ``emoji-google2twitter``): vendor a's drawing -> vendor b's drawing of
  the same emoji, paired by code point;
- ``edges2emoji``: an edge map -> the emoji (all five vendors); the edges are
  :func:`edge_map` of the emoji itself;
- ``gray2emoji``: the emoji's luma -> the emoji (colourisation);
- ``masked2emoji``: the emoji with a grey square hidden at a seeded position -> the emoji
  (inpainting).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.data.colour_sets import EMOJI_VENDORS, load_colour
from ganforge.data.dataset import Dataset
from ganforge.errors import GanforgeError, did_you_mean

DERIVED_TASKS = ("edges2emoji", "gray2emoji", "masked2emoji")
VENDOR_TASKS = tuple(f"emoji-{a}2{b}" for a in EMOJI_VENDORS for b in EMOJI_VENDORS if a != b)
PAIRED_SOURCES = (*DERIVED_TASKS, *VENDOR_TASKS)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (N, 1, H, W) uint8 grey."""
    w = torch.tensor(LUMA).view(1, 3, 1, 1)
    return (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def edge_map(x: torch.Tensor, threshold: float = 0.07) -> torch.Tensor:
    """The fixed edge detector of ``edges2emoji``: the luma in [0, 1], blurred by a 3x3 binomial
    filter [1 2 1]^T [1 2 1] / 16, Sobel gradients gx, gy (kernels / 8, so a unit step gives
    magnitude 0.5), and an edge wherever sqrt(gx^2 + gy^2) > ``threshold``. Returns uint8
    (N, 1, H, W): edges black (0) on white (255), as in edges2shoes."""
    y = luma(x).float() / 255
    b = torch.tensor([1.0, 2.0, 1.0])
    blur = (b[:, None] * b[None, :] / 16).view(1, 1, 3, 3)
    y = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), blur)
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3) / 8
    padded = F.pad(y, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, sobel_x), F.conv2d(padded, sobel_x.transpose(2, 3))
    edges = (gx ** 2 + gy ** 2).sqrt() > threshold
    return torch.where(edges, 0, 255).to(torch.uint8)


def masked(x: torch.Tensor, seed: int, side: float = 0.375) -> torch.Tensor:
    """Each picture with one mid-grey square (``side`` x the image side) at a seeded position."""
    n, _, h, w = x.shape
    size = round(side * h)
    g = torch.Generator().manual_seed(seed)
    top, left = torch.randint(0, h - size + 1, (n,), generator=g), torch.randint(0, w - size + 1, (n,), generator=g)
    out = x.clone()
    for i in range(n):
        out[i, :, top[i]:top[i] + size, left[i]:left[i] + size] = 128
    return out


def load_paired(source: str, split: str, background: str = "white", log=print) -> Dataset:
    """A paired task's ``split``: ``x`` the targets (N, 3, 64, 64), ``extra["input"]`` the inputs
    (N, C_in, 64, 64) uint8, ``extra["code"]`` the emoji; ``y`` the target's category."""
    if source not in PAIRED_SOURCES:
        raise GanforgeError(f"unknown paired task '{source}'{did_you_mean(source, PAIRED_SOURCES)}; tasks: "
                            f"{', '.join(DERIVED_TASKS)}, emoji-<vendor>2<vendor>")
    if source in DERIVED_TASKS:
        target = load_colour("emoji-all", split, background, log=log)
        make = {"edges2emoji": lambda t: edge_map(t),
                "gray2emoji": luma,
                "masked2emoji": lambda t: masked(t, seed=7 if split == "train" else 8)}[source]
        inputs = make(target.x)
        info = {**target.info, "source": source, "input": source.split("2")[0]}
        return Dataset(f"{source}-{split}", target.x, target.y, info, {**target.extra, "input": inputs})
    a, b = source.removeprefix("emoji-").split("2")
    first = load_colour(f"emoji-{a}", split, background, log=log)
    second = load_colour(f"emoji-{b}", split, background, log=log)
    row_of = {int(c): i for i, c in enumerate(second.extra["code"])}
    pairs = [(i, row_of[int(c)]) for i, c in enumerate(first.extra["code"]) if int(c) in row_of]
    ia = torch.tensor([p[0] for p in pairs])
    ib = torch.tensor([p[1] for p in pairs])
    info = {**second.info, "source": source, "input": f"emoji-{a}", "pairs": len(pairs)}
    return Dataset(f"{source}-{split}", second.x[ib], second.y[ib], info,
                   {"code": second.extra["code"][ib], "subcategory": second.extra["subcategory"][ib],
                    "input": first.x[ia]})
