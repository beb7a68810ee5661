"""Image files a user brings: a folder of PNG/JPEG/BMP/WebP pictures becomes a :class:`Dataset`.

Every picture ends as uint8 (C, R, R): transparency composited onto a background colour, palette,
16-bit, CMYK and 1-bit pictures converted to 8-bit grey or RGB, the EXIF orientation applied, the
short side scaled to R and the centre cropped. Each kind of conversion is said once, with a count,
so a user knows what was done to their data; a picture too small to scale up honestly, or one that
cannot be read, is refused with one line naming the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganforge.data.dataset import Dataset
from ganforge.errors import GanforgeError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128)}
MAX_UPSCALE = 4  # a picture whose short side is under R / 4 is refused rather than blown up


def parse_background(name: str) -> tuple[int, int, int]:
    """"white", "black", "grey" or "#rrggbb" as an (r, g, b) triple."""
    key = str(name).strip().lower()
    if key in BACKGROUNDS:
        return BACKGROUNDS[key]
    if key.startswith("#") and len(key) == 7:
        try:
            return tuple(int(key[i:i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            pass
    raise GanforgeError(f"data.background '{name}' is not a colour; use white, black, grey or #rrggbb")


def composite_rgba(rgba: torch.Tensor, background: tuple[int, int, int]) -> torch.Tensor:
    """(N, 4, H, W) uint8 RGBA over a flat background -> (N, 3, H, W) uint8 RGB:
    out = a * rgb + (1 - a) * bg, rounded, with a = alpha / 255."""
    alpha = rgba[:, 3:4].float() / 255
    bg = torch.tensor(background, dtype=torch.float32).view(1, 3, 1, 1)
    out = alpha * rgba[:, :3].float() + (1 - alpha) * bg
    return out.round().clamp(0, 255).to(torch.uint8)


def _to_8bit(im, notes: Counter):
    """A Pillow image in an 8-bit mode: L, RGB or RGBA. 16-bit and 32-bit integer grey is scaled
    (not clipped) from its full range; CMYK and YCbCr become RGB; palettes expand."""
    from PIL import Image

    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        notes["16-bit grey scaled to 8 bits"] += 1
        return Image.fromarray(np.rint(arr * (255.0 / top)).clip(0, 255).astype(np.uint8), "L")
    if mode == "F":
        raise ValueError("floating-point pixels")
    if mode == "CMYK":
        notes["CMYK converted to RGB"] += 1
        return im.convert("RGB")
    if mode == "P":
        notes["palette expanded"] += 1
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode == "1":
        return im.convert("L")
    if mode in ("LA", "La", "PA", "RGBa"):
        return im.convert("RGBA")
    if mode not in ("L", "RGB", "RGBA"):
        notes[f"{mode} converted to RGB"] += 1
        return im.convert("RGB")
    return im


def convert_mode(im, channels: int, background=(255, 255, 255), notes: Counter | None = None):
    """One Pillow image in the mode training reads, at its own size: upright (EXIF), 8-bit, alpha
    composited onto ``background``, ``channels`` 1 (grey), 3 (RGB) or 0 (native grey or RGB)."""
    from PIL import Image, ImageOps

    notes = Counter() if notes is None else notes
    im = ImageOps.exif_transpose(im) or im
    im = _to_8bit(im, notes)
    if im.mode == "RGBA":
        if im.getextrema()[3][0] < 255:
            notes["transparency composited onto the background"] += 1
        bg = Image.new("RGBA", im.size, (*background, 255))
        im = Image.alpha_composite(bg, im).convert("RGB")
    return im.convert({1: "L", 3: "RGB"}.get(channels) or im.mode)


def prepare_image(im, size: int, channels: int, background=(255, 255, 255),
                  notes: Counter | None = None) -> np.ndarray:
    """One Pillow image as uint8 (C, size, size): 8-bit, alpha composited onto ``background``,
    ``channels`` (1 grey, 3 RGB, 0 native), the short side scaled to ``size``, the centre cropped."""
    from PIL import Image

    notes = Counter() if notes is None else notes
    im = convert_mode(im, channels, background, notes)
    w, h = im.size
    if (w, h) != (size, size):
        notes["rescaled and centre-cropped" if w == h else "non-square: short side scaled, centre cropped"] += 1
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    arr = np.array(im, dtype=np.uint8)  # a writable copy
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()


def load_image_folder(path: str, resolution: int, channels: int, log: Callable[[str], None] = print,
                      background: str = "white") -> Dataset:
    """Every image under ``path`` (recursively) as one :class:`Dataset`.

    Sub-folder names become class labels when there is more than one. Unreadable files are skipped
    and named in one warning; a folder with no readable image, or a picture smaller than a quarter
    of the resolution, is an error naming the fix."""
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
    if len(files) >= 1000:  # a read of many seconds: say what is happening
        log(f"reading {len(files):,} pictures from {root} at {size}x{size} ...")
    bg = parse_background(background)
    images, labels, skipped, notes = [], [], [], Counter()
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                if min(im.size) * MAX_UPSCALE < size:
                    raise GanforgeError(f"{p} is only {im.width}x{im.height}, too small to scale to {size} px; "
                                        f"remove it or set data.resolution to {min(im.size) * MAX_UPSCALE} or less")
                images.append(prepare_image(im, size, channels, bg, notes))
                labels.append(classes.index(p.parent.relative_to(root).as_posix()))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            skipped.append(f"{p.relative_to(root)} ({type(exc).__name__})")
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        log(f"warning: skipped {len(skipped)} unreadable image(s): {', '.join(skipped[:3])}{more}")
    if not images:
        raise GanforgeError(f"no readable image in '{path}' ({len(skipped)} unreadable); check the "
                            "files")
    chans = Counter(a.shape[0] for a in images)
    if len(chans) > 1:  # mixed grey and colour: promote grey to RGB
        notes["grey promoted to RGB (the folder mixes grey and colour)"] += chans[1]
        images = [np.repeat(a, 3, 0) if a.shape[0] == 1 else a for a in images]
    for what, count in sorted(notes.items()):
        log(f"note: {what}: {count} of {len(images)} image(s)"
            + (f" (data.background={background})" if "transparency" in what else ""))
    x = torch.from_numpy(np.stack(images))
    return Dataset(f"folder:{root.name}", x, torch.tensor(labels, dtype=torch.int64),
                   {"source": "folder", "path": str(root), "skipped": len(skipped), "classes": classes,
                    "background": background, "conversions": dict(notes)})


def save_png_file(image: torch.Tensor, path: Path) -> None:
    """One uint8 (C, H, W) image as a PNG (grey for C = 1), creating its folder."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = image.numpy()
    Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(path)


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


def read_picture(path: Path, channels: int, background=(255, 255, 255), size: int | None = None) -> torch.Tensor:
    """One picture file as (1, C, H, W) in [-1, 1], converted as training converts pictures (alpha
    composited onto ``background``): at its own size, or scaled and centre-cropped to ``size``."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if size is not None:
                array = prepare_image(img, size, channels, background)
            else:
                array = np.array(convert_mode(img, channels, background), dtype=np.uint8)
                array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise GanforgeError(f"cannot read {path} as an image ({e}); pass PNG or JPEG files") from None
    return torch.from_numpy(array)[None].float() / 127.5 - 1
