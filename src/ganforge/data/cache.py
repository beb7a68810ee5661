"""The on-disk dataset cache: safetensors files with a sha256 sidecar.

Each cached dataset is ``<name>.safetensors`` (tensors ``x`` uint8 N x C x H x W and ``y`` int64
labels) beside ``<name>.json`` holding the file's sha256. A file whose hash no longer matches is
treated as missing, so a corrupt cache is fetched again instead of trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load, save_file


def cache_dir() -> Path:
    """``$GANFORGE_CACHE``, else ``$XDG_CACHE_HOME/ganforge``, else ``~/.cache/ganforge``."""
    env = os.environ.get("GANFORGE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ganforge"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_cached(name: str, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Store ``tensors`` under ``name`` atomically and record their checksum."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.safetensors"
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        digest = sha256_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_bytes(root / f"{name}.json",
                       json.dumps({**meta, "sha256": digest}, indent=2).encode())
    return path


def load_cached(name: str) -> dict[str, torch.Tensor] | None:
    """The cached tensors, or None when missing or corrupt (checksum mismatch, unreadable)."""
    root = cache_dir()
    path, meta_path = root / f"{name}.safetensors", root / f"{name}.json"
    if not path.exists() or not meta_path.exists():
        return None
    try:
        expected = json.loads(meta_path.read_text())["sha256"]
        data = path.read_bytes()  # read once: hash these bytes and parse them (no mmap aliasing)
        if hashlib.sha256(data).hexdigest() != expected:
            return None
        return load(data)
    except Exception:  # unreadable, unparsable or truncated: treat as missing and fetch again
        return None
