"""Paired image-to-image tasks: each sample is a target picture ``x`` and its input ``extra["input"]``.

Built from the emoji (their fixed test split carries over, so no task trains on a test emoji):

- ``emoji-<a>2<b>`` (e.g. ``emoji-google2twitter``): vendor a's drawing -> vendor b's drawing of
  the same emoji, paired by code point;
- ``edges2emoji``: an edge map -> the emoji (all five vendors); the edges are
  :func:`edge_map` of the emoji itself;
- ``gray2emoji``: the emoji's luma -> the emoji (colourisation);
- ``masked2emoji``: the emoji with a grey square hidden at a seeded position -> the emoji
  (inpainting).

A user's own pairs (``data.source=paired``, ``data.path=DIR``), in either layout of the original
pix2pix data sets, with ``DIR/train`` and ``DIR/test`` chosen by ``data.split`` when they exist:

- two folders ``A/`` (inputs) and ``B/`` (targets), files paired by their path relative to the
  folder, extension aside;
- single pictures twice as wide as high, input on the left and target on the right.

A picture without a partner is an error naming it, or, with ``data.skip_unpaired``, skipped and
counted once. Pictures are brought to ``data.resolution`` as a folder's are (short side scaled,
centre crop); one smaller than that is scaled up and counted in a note (the blurry targets a
pix2pix user otherwise discovers in the samples), one under a quarter of it is refused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.data.colour_sets import EMOJI_VENDORS, load_colour
from ganforge.data.dataset import Dataset
from ganforge.errors import GanforgeError, did_you_mean

DERIVED_TASKS = ("edges2emoji", "gray2emoji", "masked2emoji")
VENDOR_TASKS = tuple(f"emoji-{a}2{b}" for a in EMOJI_VENDORS for b in EMOJI_VENDORS if a != b)
PAIRED_SOURCES = (*DERIVED_TASKS, *VENDOR_TASKS, "paired")
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


def load_paired_folder(path: str, split: str, resolution: int, background: str = "white",
                       skip_unpaired: bool = False, log=print) -> Dataset:
    """A user's folder of pairs (see the module docstring) as a paired :class:`Dataset`."""
    from collections import Counter
    from pathlib import Path

    from PIL import Image

    from ganforge.data.folders import IMAGE_EXTENSIONS, MAX_UPSCALE, parse_background, prepare_image

    root = Path(path).expanduser()
    if not path or not root.is_dir():
        raise GanforgeError(f"paired folder '{path}' does not exist; set data.path to a folder with A/ and B/ "
                            "sub-folders, or of side-by-side input|target pictures")
    if (root / split).is_dir():
        root = root / split
    bg, notes, size = parse_background(background), Counter(), resolution or 0

    def images_under(folder: Path) -> dict[str, Path]:
        return {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*"))
                if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}

    def read(p: Path, box=None):
        with Image.open(p) as im:
            im.load()
            if box is not None:
                im = im.crop(box)
            if size and min(im.size) < size:  # pix2pix's users' most common surprise: pictures below the crop
                if min(im.size) * MAX_UPSCALE < size:
                    raise GanforgeError(f"{p} is only {im.width}x{im.height}, too small to scale to {size} px; "
                                        f"remove it or set data.resolution to {min(im.size) * MAX_UPSCALE} or less")
                notes[f"smaller than data.resolution={size}, scaled up (blurrier than the rest)"] += 1
            return prepare_image(im, size or min(im.size), 0, bg, notes)

    inputs, targets = [], []
    if (root / "A").is_dir() and (root / "B").is_dir():
        a, b = images_under(root / "A"), images_under(root / "B")
        alone = sorted(set(a) ^ set(b))
        if alone and not skip_unpaired:
            side = "A" if alone[0] in a else "B"
            raise GanforgeError(f"{root / side / alone[0]}.* has no partner in {'B' if side == 'A' else 'A'}/ "
                                f"({len(alone)} unpaired); add it, remove it, or set data.skip_unpaired=true")
        if alone:
            log(f"note: skipped {len(alone)} picture(s) without a partner (data.skip_unpaired)")
        for key in sorted(set(a) & set(b)):
            inputs.append(read(a[key]))
            targets.append(read(b[key]))
    else:
        files = list(images_under(root).values())
        if not files:
            raise GanforgeError(f"paired folder '{path}' holds no A/ and B/ sub-folders and no pictures; see "
                                "`ganforge train --help-config` for data.source=paired")
        for p in files:
            with Image.open(p) as im:
                w, h = im.size
            if w != 2 * h:
                raise GanforgeError(f"{p} is {w}x{h}; a side-by-side pair is twice as wide as high (input on the "
                                    "left, target on the right), or use A/ and B/ sub-folders")
            inputs.append(read(p, (0, 0, h, h)))
            targets.append(read(p, (h, 0, 2 * h, h)))
    if not inputs:
        raise GanforgeError(f"no pairs in '{path}'; check the A/ and B/ file names")
    sizes = {t.shape[1:] for t in inputs} | {t.shape[1:] for t in targets}
    if len(sizes) > 1:
        raise GanforgeError(f"the pictures in '{path}' have different sizes {sorted(sizes)}; set data.resolution")
    inputs, targets = _same_channels(inputs), _same_channels(targets)
    for what, count in sorted(notes.items()):
        log(f"note: {what}: {count} picture(s)")
    import numpy as np

    x_in, x_out = torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))
    return Dataset(f"paired:{root.name}", x_out, None,
                   {"source": "paired", "path": str(root), "split": split, "background": background,
                    "conversions": dict(notes)}, {"input": x_in})


def _same_channels(images: list) -> list:
    """Grey pictures promoted to RGB when the side mixes grey and colour."""
    import numpy as np

    if len({a.shape[0] for a in images}) == 1:
        return images
    return [np.repeat(a, 3, 0) if a.shape[0] == 1 else a for a in images]
