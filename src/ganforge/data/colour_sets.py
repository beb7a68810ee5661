"""Colour pictures that ship in package registries: emoji of five vendors and the Oxygen icons.

Emoji (64x64 RGBA, labelled by category and subcategory):

- ``emoji-google``, ``emoji-twitter``, ``emoji-apple``, ``emoji-facebook``: the npm packages
  ``emoji-datasource-<vendor>`` (16.0.0): ``img/<vendor>/64/*.png`` described by ``emoji.json``;
- ``emoji-emojione``: Debian's ``ruby-gemojione`` (64x64 PNGs named by code point), labelled by
  matching its code points with the same ``emoji.json`` (taken from the npm package
  ``emoji-datasource``);
- ``emoji-all``: the five together (what the ``emoji-convnet`` feature network learns from).

Every emoji is named by its code points without the presentation selector FE0F and the zero-width
joiner 200D, so the five vendors' drawings of one emoji share a ``code`` (paired translation).
The train/test split is of *base* emoji (an emoji and its skin-tone variants fall together),
decided by a salted hash of the base code: fixed, the same for every vendor and for every emoji
added later, so no translation task ever sees a test emoji in training.

Icons: ``icons-oxygen`` is Debian's ``oxygen-icon-theme``: the same icon drawn by hand at 16 to
256 px, labelled by context (actions, apps, devices, ...), split by icon name the same way.

Images are cached as RGBA; transparency is composited onto ``data.background`` when loaded, and
the choice is recorded.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganforge.data.cache import atomic_write_bytes, cache_dir, load_cached, save_cached
from ganforge.data.dataset import Dataset
from ganforge.data.fetching import allowed_routes, debian_package, npm_package
from ganforge.data.folders import composite_rgba, parse_background
from ganforge.errors import GanforgeError

EMOJI_VERSION = "16.0.0"
NPM_VENDORS = ("google", "twitter", "apple", "facebook")
EMOJI_VENDORS = (*NPM_VENDORS, "emojione")
EMOJI_SOURCES = tuple(f"emoji-{v}" for v in EMOJI_VENDORS) + ("emoji-all",)
ICON_SOURCES = ("icons-oxygen",)
#: Unicode's category order (emoji.json's "category" values)
CATEGORIES = ("Smileys & Emotion", "People & Body", "Component", "Animals & Nature", "Food & Drink",
              "Travel & Places", "Activities", "Objects", "Symbols", "Flags")
ICON_CONTEXTS = ("actions", "applets", "apps", "categories", "devices", "mimetypes", "places", "status")
ICON_SIZES = (16, 22, 32, 48, 64, 128, 256)
TEST_PERCENT = 15
SPLIT_SALT = "ganforge-split-v1:"

LICENCES = {
    "google": "Noto emoji images: Apache License 2.0 (emoji-datasource-google; data: MIT, Cal Henderson)",
    "twitter": "Twemoji images: CC-BY 4.0 (emoji-datasource-twitter; data: MIT, Cal Henderson)",
    "apple": "Apple emoji images: Copyright Apple Inc., not licensed for commercial use "
             "(emoji-datasource-apple; data: MIT, Cal Henderson)",
    "facebook": "Facebook emoji images: Copyright Facebook, Inc., no clear licence "
                "(emoji-datasource-facebook; data: MIT, Cal Henderson)",
    "emojione": "EmojiOne 2 images: CC-BY-SA 4.0, Ranks.com Inc. (Debian ruby-gemojione; labels from "
                "emoji-datasource, MIT)",
    "oxygen": "Oxygen icons: LGPL-3+ (Debian oxygen-icon-theme)",
}


def emoji_key(code: str) -> str:
    """The name two vendors agree on: upper-case code points without FE0F and 200D."""
    return "-".join(c for c in code.upper().split("-") if c not in ("FE0F", "200D"))


def is_test(base_key: str) -> bool:
    """The fixed split: a base emoji (or icon name) is in the test split when its salted hash says so."""
    digest = hashlib.sha256((SPLIT_SALT + base_key).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT


# ---------------------------------------------------------------------------------------------
# emoji.json: one record per picture (base emoji and skin-tone variants).

def emoji_records(emoji_json: list[dict]) -> list[dict]:
    """Flatten emoji.json to records {key, base, image, category, subcategory, has: {vendor: bool}},
    sorted by key. ``also`` lists other spellings of the key (the non-qualified code)."""
    records = []
    for e in emoji_json:
        base = emoji_key(e["unified"])
        variants = [e, *e.get("skin_variations", {}).values()]
        for v in variants:
            records.append({"key": emoji_key(v["unified"]), "base": base, "image": v["image"],
                            "category": e["category"], "subcategory": e["subcategory"],
                            "also": [emoji_key(v["non_qualified"])] if v.get("non_qualified") else [],
                            "has": {vendor: bool(v.get(f"has_img_{vendor}")) for vendor in NPM_VENDORS}})
    records.sort(key=lambda r: r["key"])
    return records


def _subcategories(emoji_json: list[dict]) -> list[str]:
    """Subcategory names in the order emoji.json sorts them (Unicode's order)."""
    seen = {}
    for e in sorted(emoji_json, key=lambda e: e["sort_order"]):
        seen.setdefault(e["subcategory"], None)
    return list(seen)


def _read_rgba(path: Path, size: int) -> np.ndarray:
    """A PNG as uint8 (4, size, size) RGBA (palette, grey and grey+alpha pictures expanded)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGBA")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def _cache_emoji(vendor: str, pictures: list[tuple[dict, Path]], emoji_json: list[dict], route: str,
                 licence_text: str, log) -> None:
    """Store one vendor's pictures (RGBA) with their labels, codes and the licence."""
    records = emoji_records(emoji_json)
    keys = [r["key"] for r in records]
    index = {k: i for i, k in enumerate(keys)}
    subcats = _subcategories(emoji_json)
    x = np.stack([_read_rgba(p, 64) for _, p in pictures])
    meta = {"dataset": f"emoji-{vendor}", "route": route, "version": EMOJI_VERSION, "licence": LICENCES[vendor],
            "categories": list(CATEGORIES), "subcategories": subcats, "codes": keys,
            "split": f"base emoji with sha256('{SPLIT_SALT}' + code) % 100 < {TEST_PERCENT} are test"}
    save_cached(f"emoji-{vendor}", {
        "x": torch.from_numpy(x),
        "category": torch.tensor([CATEGORIES.index(r["category"]) for r, _ in pictures]),
        "subcategory": torch.tensor([subcats.index(r["subcategory"]) for r, _ in pictures]),
        "code": torch.tensor([index[r["key"]] for r, _ in pictures]),
        "test": torch.tensor([is_test(r["base"]) for r, _ in pictures]),
    }, meta)
    atomic_write_bytes(cache_dir() / "licences" / f"emoji-{vendor}.txt", licence_text.encode())
    log(f"cached emoji-{vendor}: {len(pictures)} pictures ({route})")


def _fetch_npm_vendor(vendor: str, log) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pkg = npm_package(f"emoji-datasource-{vendor}@{EMOJI_VERSION}", Path(tmp),
                          f"emoji.json,img/{vendor}/64/,LICENSE,README.md")
        emoji_json = json.loads((pkg / "emoji.json").read_text())
        folder = pkg / "img" / vendor / "64"
        pictures = [(r, folder / r["image"]) for r in emoji_records(emoji_json)
                    if r["has"][vendor] and (folder / r["image"]).is_file()]
        readme = (pkg / "README.md").read_text(errors="replace")
        terms = "\n".join(line for line in readme.splitlines() if line.startswith("* ") and "images" in line)
        licence = f"{LICENCES[vendor]}\n\n{terms}\n\n{(pkg / 'LICENSE').read_text(errors='replace')}"
        _cache_emoji(vendor, pictures, emoji_json, "npm-package", licence, log)


def _fetch_emojione(log) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = debian_package("ruby-gemojione", Path(tmp))
        pkg = npm_package(f"emoji-datasource@{EMOJI_VERSION}", Path(tmp), "emoji.json")
        emoji_json = json.loads((pkg / "emoji.json").read_text())
        by_key = {}
        for r in emoji_records(emoji_json):
            for k in (r["key"], *r["also"]):
                by_key.setdefault(k, r)
        pngs = sorted(root.glob("usr/share/rubygems-integration/all/gems/gemojione-*/assets/png/*.png"))
        pictures, unmatched, seen = [], 0, set()
        for p in pngs:
            r = by_key.get(emoji_key(p.stem))
            if r is None or r["key"] in seen:
                unmatched += 1
                continue
            seen.add(r["key"])
            pictures.append((r, p))
        pictures.sort(key=lambda rp: rp[0]["key"])
        log(f"emoji-emojione: {len(pictures)} of {len(pngs)} pictures matched to emoji.json; {unmatched} "
            "without a Unicode 16 name dropped")
        copyright_file = next(root.glob("usr/share/doc/ruby-gemojione/copyright"))
        licence = f"{LICENCES['emojione']}\n\n{copyright_file.read_text(errors='replace')}"
        _cache_emoji("emojione", pictures, emoji_json, "debian-package", licence, log)


def _fetch_oxygen(log) -> None:

    with tempfile.TemporaryDirectory() as tmp:
        root = debian_package("oxygen-icon-theme", Path(tmp)) / "usr/share/icons/oxygen/base"
        names = sorted({f"{p.parent.name}/{p.stem}" for p in root.glob("*x*/*/*.png")})
        index = {n: i for i, n in enumerate(names)}
        for size in ICON_SIZES:
            files = sorted((root / f"{size}x{size}").glob("*/*.png"))
            files = [f for f in files if f.parent.name in ICON_CONTEXTS and _size_of(f) == (size, size)]
            keys = [f"{f.parent.name}/{f.stem}" for f in files]
            save_cached(f"icons-oxygen-{size}", {
                "x": torch.from_numpy(np.stack([_read_rgba(f, size) for f in files])),
                "category": torch.tensor([ICON_CONTEXTS.index(f.parent.name) for f in files]),
                "code": torch.tensor([index[k] for k in keys]),
                "test": torch.tensor([is_test(k) for k in keys]),
            }, {"dataset": "icons-oxygen", "size": size, "route": "debian-package", "licence": LICENCES["oxygen"],
                "categories": list(ICON_CONTEXTS), "codes": names,
                "split": f"icons with sha256('{SPLIT_SALT}' + context/name) % 100 < {TEST_PERCENT} are test"})
        copyright_file = next(Path(tmp).glob("x/usr/share/doc/oxygen-icon-theme/copyright"), None)
        text = copyright_file.read_text(errors="replace") if copyright_file else ""
        atomic_write_bytes(cache_dir() / "licences" / "icons-oxygen.txt", f"{LICENCES['oxygen']}\n\n{text}".encode())
        log(f"cached icons-oxygen: {len(names)} icons at {', '.join(map(str, ICON_SIZES))} px (debian-package)")


def _size_of(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def licence_of(name: str) -> str:
    """The licence summary of an emoji or icon source (known before fetching)."""
    if name == "icons-oxygen":
        return LICENCES["oxygen"]
    if name == "emoji-all":
        return "; ".join(LICENCES[v] for v in EMOJI_VENDORS)
    return LICENCES[name.removeprefix("emoji-")]


def _cache_names(name: str) -> list[str]:
    if name == "icons-oxygen":
        return [f"icons-oxygen-{s}" for s in ICON_SIZES]
    if name == "emoji-all":
        return [f"emoji-{v}" for v in EMOJI_VENDORS]
    return [name]


def fetch_colour(name: str, force: bool, log: Callable[[str], None]) -> None:
    """Fetch an emoji or icon source into the cache (a no-op when a valid copy is there)."""
    if name == "emoji-all":
        for vendor in EMOJI_VENDORS:
            fetch_colour(f"emoji-{vendor}", force, log)
        return
    if not force and all(load_cached(n) is not None for n in _cache_names(name)):
        return
    route = "debian-package" if name in ("emoji-emojione", "icons-oxygen") else "npm-package"
    needs = {route, "npm-package"} if name == "emoji-emojione" else {route}
    if not needs <= set(allowed_routes()):
        raise GanforgeError(f"{name} is fetched with the {' and '.join(sorted(needs))} route(s), which "
                            f"GANFORGE_FETCH_FROM does not allow; add them to it")
    log(f"fetching {name} via {route} ...")
    try:
        if name == "icons-oxygen":
            _fetch_oxygen(log)
        elif name == "emoji-emojione":
            _fetch_emojione(log)
        else:
            _fetch_npm_vendor(name.removeprefix("emoji-"), log)
    except GanforgeError:
        raise
    except Exception as exc:  # the package clients fail in many ways; one line says which
        raise GanforgeError(f"could not fetch {name} ({type(exc).__name__}: {exc}); check that the package "
                            "registries are reachable and try `ganforge data fetch " + name + " --force`") from None


def source_meta(name: str) -> dict:
    """The cache record of a fetched source (licence, labels, split rule, route)."""
    path = cache_dir() / f"{_cache_names(name)[0]}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _load_cached_or_fetch(cache_name: str, source: str, log) -> dict[str, torch.Tensor]:
    tensors = load_cached(cache_name)
    if tensors is None:
        fetch_colour(source, False, log)
        tensors = load_cached(cache_name)
        if tensors is None:
            raise GanforgeError(f"the cached {cache_name} is unreadable after fetching; check that the cache "
                                "folder (GANFORGE_CACHE) is writable")
    return tensors


def load_colour(source: str, split: str, background: str = "white", label: str = "category",
                resolution: int = 0, log: Callable[[str], None] = print) -> Dataset:
    """An emoji or icon source's ``split`` as an RGB :class:`Dataset` (transparency composited onto
    ``background``); ``y`` is ``label`` (category, or subcategory for emoji); ``extra`` holds
    ``code`` (and ``subcategory``) for pairing and the feature network."""
    bg = parse_background(background)
    if source == "icons-oxygen":
        size = next((s for s in ICON_SIZES if s >= (resolution or 64)), ICON_SIZES[-1])
        parts = [(f"icons-oxygen-{size}", _load_cached_or_fetch(f"icons-oxygen-{size}", source, log))]
        meta = source_meta(source)
    else:
        parts = [(n, _load_cached_or_fetch(n, n, log)) for n in _cache_names(source)]
        meta = source_meta(parts[0][0])
    if label == "subcategory" and source.startswith("icons"):
        raise GanforgeError("icons-oxygen has one label, its context; set data.label: category")
    keep = [t["test"] if split == "test" else ~t["test"] for _, t in parts]
    x = torch.cat([t["x"][k] for (_, t), k in zip(parts, keep, strict=True)])
    extra = {key: torch.cat([t[key][k] for (_, t), k in zip(parts, keep, strict=True)])
             for key in ("category", "subcategory", "code") if key in parts[0][1]}
    classes = meta["subcategories"] if label == "subcategory" else meta["categories"]
    info = {"source": source, "split": split, "background": background, "label": label,
            "n_classes": len(classes), "class_names": classes, "licence": meta.get("licence", ""),
            "native_resolution": int(x.shape[-1])}
    if source == "emoji-all":
        info["vendors"] = {n: int(k.sum()) for (n, _), k in zip(parts, keep, strict=True)}
    y = extra.pop(label)
    return Dataset(f"{source}-{split}", composite_rgba(x, bg), y, info, extra)
