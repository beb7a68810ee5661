"""Checkpoints: safetensors for tensors, JSON for everything else, no pickle anywhere.

A checkpoint is a folder ``checkpoints/step_000001000/`` holding

- ``models.safetensors``: every network's state dict, keys prefixed by the network's name
  (``G.net.0.weight``, ``D.…``, ``G_ema.…``); enough on its own to sample or export;
- ``train_state.safetensors``: optimizer tensors (``opt.<name>.<param index>.<key>``), the
  torch RNG states (``rng.torch_cpu``, ``rng.torch_cuda.<i>``) and the method's own tensors
  (``method.<key>``: image pools, running means, ...);
- ``state.json``: format version, ganforge version, step, images seen, wall time, optimizer
  hyper-parameters, numpy/python RNG states, the batch iterator's position, the method's own
  JSON state (``method_state``) and the resolved config.

The folder is written under a temporary name, fsynced, and renamed into place, so a crash or a
full disk mid-save leaves the previous checkpoint untouched. Loading reads tensors and JSON only
and never runs code.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from ganforge.errors import GanforgeError
from ganforge.train import checks
from ganforge.train.migrate import FORMAT_VERSION
from ganforge.version import __version__

CHECKPOINT_DIR = "checkpoints"


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"opt.{name}.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    prefix = f"opt.{name}."
    for key, val in tensors.items():
        if key.startswith(prefix):
            idx, k = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[k] = val
    for key, val in meta.get("scalars", {}).items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = val
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict, dict]:
    """(tensors, json) capturing torch (CPU and CUDA), numpy and python RNGs."""
    tensors = {"rng.torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.torch_cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    return tensors, {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [py[0], list(py[1]), py[2]],
    }


def set_rng_state(tensors: dict, meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch_cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.torch_cuda."))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    v, internal, gauss_next = meta["python"]
    random.setstate((v, tuple(internal), gauss_next))


def _write_json(path: Path, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir: Path, step: int, models: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], state: dict, keep: int = 2,
                    method_state: tuple[dict, dict] = ({}, {})) -> Path:
    """Write a complete checkpoint for ``step`` atomically; prune all but the newest ``keep``.
    ``method_state`` is the method's (tensors, JSON) state (Method.state_dict)."""
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:09d}"
    tmp = root / f".tmp-step_{step:09d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        weights = {f"{name}.{k}": v.detach().cpu().contiguous()
                   for name, m in models.items() for k, v in m.state_dict().items()}
        save_file(weights, str(tmp / "models.safetensors"))
        train_tensors, rng_json = rng_state()
        opt_meta = {}
        for name, opt in optimizers.items():
            t, meta = _flatten_optimizer(name, opt)
            train_tensors.update(t)
            opt_meta[name] = meta
        method_tensors, method_json = method_state
        train_tensors.update({f"method.{k}": v.detach().cpu().contiguous() for k, v in method_tensors.items()})
        save_file(train_tensors, str(tmp / "train_state.safetensors"))
        _write_json(tmp / "state.json", {
            "format_version": FORMAT_VERSION, "ganforge_version": __version__, "step": step,
            **state, "optimizers": opt_meta, "rng": rng_json, "method_state": method_json,
        })
        for f in ("models.safetensors", "train_state.safetensors"):
            _fsync_file(tmp / f)
        if final.exists():  # re-saving the same step (e.g. a resumed run's end): replace whole
            old = root / f".old-step_{step:09d}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
        shutil.rmtree(tmp, ignore_errors=True)
        prev = latest_checkpoint(run_dir)
        kept = f"the previous checkpoint {prev.name} is intact" if prev else "no earlier checkpoint exists"
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc):
            raise GanforgeError(f"disk full while saving checkpoint step {step} in {root}; {kept}. "
                                "Free some space and continue with `ganforge train --resume "
                                f"{run_dir}`") from None
        reason = getattr(exc, "strerror", None) or exc
        raise GanforgeError(f"could not save checkpoint step {step} ({reason}); {kept}") from None
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders from a crash are ignored)."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def remove_partial_checkpoints(run_dir: Path) -> None:
    root = Path(run_dir) / CHECKPOINT_DIR
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(p, ignore_errors=True)


def read_state(ckpt: Path) -> dict:
    """The checkpoint's JSON state, migrated to the current format (DamagedCheckpoint if unusable)."""
    return checks.read_state_json(ckpt)


def load_weights(ckpt: Path, models: dict[str, torch.nn.Module], strict: bool = True) -> None:
    """Load every network in ``models`` from ``models.safetensors`` (all checked first)."""
    tensors = checks.read_tensors(ckpt, "models.safetensors")
    if not strict:  # an older run without some network (e.g. no EMA copy): those it has
        models = {n: m for n, m in models.items() if any(k.startswith(n + ".") for k in tensors)}
    checks.check_weights(ckpt, tensors, models)
    _apply_weights(tensors, models)


def _apply_weights(tensors: dict[str, torch.Tensor], models: dict[str, torch.nn.Module]) -> None:
    """``models.safetensors``'s tensors (keys ``<network>.<parameter>``), already checked, into the networks."""
    for name, module in models.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)


def load_newest_usable(candidates: list[Path], load, log):
    """``load(ckpt)`` for the first of ``candidates`` (newest first) that loads without a
    GanforgeError, saying which ones were passed over; returns (ckpt, what load returned). When none
    loads, the first error is raised (with a word that the earlier ones failed too)."""
    first_error = None
    for i, ckpt in enumerate(candidates):
        try:
            return ckpt, load(ckpt)
        except GanforgeError as exc:
            first_error = first_error or exc
            if i + 1 < len(candidates):
                log(f"ganforge: {exc}; trying the checkpoint before it")
    more = "; no earlier checkpoint can be used either" if len(candidates) > 1 else ""
    raise GanforgeError(f"{first_error}{more}")


def load_checkpoint(ckpt: Path, networks: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    config: dict) -> dict:
    """Check the whole checkpoint against the run (``config``: its config as a dict), then load
    weights, optimizers and RNGs. Returns the JSON state (step, images seen, batch position, ...)
    with the method's own tensors under ``method_tensors`` (for Method.load_state_dict).
    Raises checks.DamagedCheckpoint, before anything is loaded, when any part is unusable."""
    state = checks.read_state_json(ckpt)
    weights = checks.read_tensors(ckpt, "models.safetensors")
    tensors = checks.read_tensors(ckpt, "train_state.safetensors")
    checks.check_state(ckpt, state, optimizers, config)
    checks.check_weights(ckpt, weights, networks)
    checks.check_train_tensors(ckpt, tensors, optimizers)
    _apply_weights(weights, networks)
    for name, opt in optimizers.items():
        try:
            opt.load_state_dict(_unflatten_optimizer(name, tensors, state["optimizers"][name]))
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise checks.DamagedCheckpoint(f"checkpoint {ckpt} is damaged: optimizer '{name}' cannot be "
                                           f"restored ({type(exc).__name__})") from None
    set_rng_state(tensors, state["rng"])
    state["method_tensors"] = {k[len("method."):]: v for k, v in tensors.items() if k.startswith("method.")}
    return state
