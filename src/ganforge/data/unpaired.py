"""Unpaired image-to-image tasks (CycleGAN): two collections, domain A and domain B, of any sizes.

An unpaired :class:`Dataset` holds domain B in ``x`` and domain A in ``extra["input"]``, both
cycled to the larger count (A[i % n_A], B[i % n_B]), so that an epoch of shuffled batches shows
every picture of each domain; which A meets which B in a batch means nothing, since no loss
compares them. ``info["unpaired"]`` is true, with the domain sizes in ``info["domains"]``.

Built in: ``emoji-<a>-<b>`` (e.g. ``emoji-apple-twitter``; ``emoji-apple<->twitter`` is read as
the same): vendor a's drawings against vendor b's. Training splits the *training* emoji into two
disjoint halves by base emoji (skin tones go with their base),
``sha256("ganforge-unpaired-v1:" + base) % 2``: domain A is vendor a's drawings of half 0, domain
B vendor b's of half 1, so the model never sees one emoji drawn by both vendors. The test split
is the paired task ``emoji-<a>2<b>``'s (the same held-out emoji drawn by both), so a translation
can also be scored against its true counterpart, which the usual CycleGAN benchmarks cannot do.

A user's own collections (``data.source=unpaired``, ``data.path=DIR``): CycleGAN's layout
``DIR/trainA``, ``DIR/trainB`` (``testA``, ``testB`` for ``data.split=test``), or
``DIR/<split>/A`` and ``B``, or ``DIR/A`` and ``DIR/B``; each side is read as an image folder is
(sub-folders included, converted and scaled to ``data.resolution``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ganforge.data.colour_sets import EMOJI_VENDORS, load_colour, source_meta
from ganforge.data.dataset import Dataset
from ganforge.errors import GanforgeError, did_you_mean

UNPAIRED_TASKS = tuple(f"emoji-{a}-{b}" for a in EMOJI_VENDORS for b in EMOJI_VENDORS if a != b)
UNPAIRED_SOURCES = (*UNPAIRED_TASKS, "unpaired")
HALF_SALT = "ganforge-unpaired-v1:"
SKIN_TONES = {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"}


def canonical_name(source: str) -> str:
    """``emoji-apple<->twitter`` -> ``emoji-apple-twitter`` (the spelling without shell symbols)."""
    return source.replace("<->", "-")


def base_of(key: str) -> str:
    """The base emoji of a key: its code points without skin-tone modifiers (a swatch, a skin
    tone alone, is its own base)."""
    return "-".join(c for c in key.split("-") if c not in SKIN_TONES) or key


def half_of(key: str) -> int:
    """0 or 1: which domain a training emoji (by its base) may appear in."""
    digest = hashlib.sha256((HALF_SALT + base_of(key)).encode()).digest()
    return digest[0] % 2


def two_domains(name: str, a: torch.Tensor, b: torch.Tensor, info: dict,
                codes: tuple[torch.Tensor, torch.Tensor] | None = None) -> Dataset:
    """An unpaired Dataset: A (n_A, C_A, H, W) and B (n_B, C_B, H, W) uint8, cycled to one length;
    ``codes`` (of A, of B) name the emoji, kept as ``extra["input_code"]`` and ``extra["code"]``."""
    n = max(len(a), len(b))
    index = torch.arange(n)
    extra = {"input": a[index % len(a)]}
    if codes is not None:
        extra.update(input_code=codes[0][index % len(a)], code=codes[1][index % len(b)])
    return Dataset(name, b[index % len(b)], None, {**info, "unpaired": True, "domains": {"A": len(a), "B": len(b)}},
                   extra)


def load_unpaired(source: str, split: str, background: str = "white", log=print) -> Dataset:
    """A built-in unpaired task's ``split`` (see the module docstring)."""
    from ganforge.data.paired import load_paired

    source = canonical_name(source)
    if source not in UNPAIRED_TASKS:
        raise GanforgeError(f"unknown unpaired task '{source}'{did_you_mean(source, UNPAIRED_TASKS)}; tasks: "
                            "emoji-<vendor>-<vendor>, e.g. emoji-apple-twitter")
    a, b = source.removeprefix("emoji-").split("-")
    if split == "test":  # the held-out emoji drawn by both: paired, for scoring against the true counterpart
        pairs = load_paired(f"emoji-{a}2{b}", "test", background, log)
        return Dataset(f"{source}-test", pairs.x, pairs.y, {**pairs.info, "source": source, "unpaired": True,
                                                           "paired_test": True}, pairs.extra)
    first = load_colour(f"emoji-{a}", split, background, log=log)
    second = load_colour(f"emoji-{b}", split, background, log=log)
    keys = source_meta(f"emoji-{a}")["codes"]
    in_a = torch.tensor([half_of(keys[int(c)]) == 0 for c in first.extra["code"]])
    in_b = torch.tensor([half_of(keys[int(c)]) == 1 for c in second.extra["code"]])
    info = {**second.info, "source": source, "input": f"emoji-{a}", "split": split,
            "halves": f"sha256('{HALF_SALT}' + base emoji) % 2: 0 -> A, 1 -> B"}
    return two_domains(f"{source}-{split}", first.x[in_a], second.x[in_b], info,
                       (first.extra["code"][in_a], second.extra["code"][in_b]))


def domain_folders(root: Path, split: str) -> tuple[Path, Path]:
    """The A and B folders of a user's unpaired data, in the first layout that exists."""
    for a, b in ((root / f"{split}A", root / f"{split}B"), (root / split / "A", root / split / "B"),
                 (root / "A", root / "B")):
        if a.is_dir() and b.is_dir():
            return a, b
    raise GanforgeError(f"'{root}' has no {split}A/ and {split}B/ (nor {split}/A and B, nor A/ and B/) folders; put "
                        "domain A's pictures in one and domain B's in the other")


def load_unpaired_folder(path: str, split: str, resolution: int, channels: int = 0, background: str = "white",
                         log=print) -> Dataset:
    """A user's two collections (see the module docstring) as an unpaired Dataset."""
    from ganforge.data.folders import load_image_folder

    root = Path(path).expanduser()
    if not path or not root.is_dir():
        raise GanforgeError(f"unpaired folder '{path}' does not exist; set data.path to a folder with trainA/ and "
                            "trainB/ (or A/ and B/) sub-folders")
    folder_a, folder_b = domain_folders(root, split)
    side = {}
    for name, folder in (("A", folder_a), ("B", folder_b)):
        side[name] = load_image_folder(str(folder), resolution, channels, lambda m, n=name: log(f"domain {n}: {m}"),
                                       background)
    a, b = side["A"].x, side["B"].x
    if a.shape[-2:] != b.shape[-2:]:
        raise GanforgeError(f"domain A's pictures are {a.shape[-1]} px and domain B's {b.shape[-1]} px; set "
                            "data.resolution to bring both to one size")
    return two_domains(f"unpaired:{root.name}", a, b, {"source": "unpaired", "path": str(root), "split": split,
                                                       "background": background,
                                                       "folders": [str(folder_a), str(folder_b)]})
