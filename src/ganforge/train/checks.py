"""A checkpoint checked as a whole before any of it is used.

Resuming from a damaged checkpoint must fail before it touches a network or an optimizer, with
a line that says what is wrong, so that the loop can fall back to the previous checkpoint. The
checks here read nothing but JSON and safetensors, and cover every value the loop will use:

- ``state.json``: a mapping; step, images seen, wall time, the batch position as non-negative
  finite numbers of the right type; the learning-rate scale of NaN rollbacks in (0, 1]; each
  optimizer's hyper-parameters (one param group per group of the live optimizer, the same
  parameter indices, finite lr >= 0, betas in [0, 1), eps > 0); the RNG states (set on scratch
  generators); the config it was saved with equal to the run's (except the keys a resume may
  change, config.RESUMABLE_KEYS).
- ``models.safetensors``: exactly the tensors of every network, each of its shape, all finite.
- ``train_state.safetensors``: the CPU RNG state; each optimizer tensor belongs to a parameter
  of that optimizer, moments have the parameter's shape, all finite.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from ganforge.config import RESUMABLE_KEYS, config_from_dict, upgrade_config
from ganforge.errors import GanforgeError
from ganforge.train.migrate import migrate

#: the torch CPU generator's state is this many bytes (Mersenne Twister + normal cache)
CPU_RNG_BYTES = torch.get_rng_state().numel()


class DamagedCheckpoint(GanforgeError):
    """A checkpoint that cannot be used as it is; the message says what is wrong in it."""


def _fail(ckpt: Path, what: str) -> None:
    raise DamagedCheckpoint(f"checkpoint {ckpt} is damaged: {what}")


def _count(ckpt, state: dict, key: str, kind=int) -> None:
    """state[key] is a non-negative finite number of type ``kind`` (bool is not a number here)."""
    v = state.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int) \
            or not math.isfinite(v) or v < 0:
        _fail(ckpt, f"'{key}' is {v!r}, not a non-negative {'number' if kind is float else 'integer'}")


def read_state_json(ckpt: Path) -> dict:
    """state.json as a migrated mapping, or DamagedCheckpoint."""
    try:
        state = json.loads((Path(ckpt) / "state.json").read_text())
    except (OSError, ValueError) as exc:
        _fail(ckpt, f"state.json is unreadable ({type(exc).__name__})")
    if not isinstance(state, dict):
        _fail(ckpt, f"state.json holds a {type(state).__name__}, not a mapping")
    try:
        return migrate(state, str(ckpt))
    except GanforgeError as exc:
        raise DamagedCheckpoint(str(exc)) from None


def read_tensors(ckpt: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(Path(ckpt) / name))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types on damage
        _fail(ckpt, f"{name} is missing or corrupt ({type(exc).__name__})")


def check_state(ckpt: Path, state: dict, optimizers: dict[str, torch.optim.Optimizer], config: dict) -> None:
    """Every JSON value the loop will use (see the module docstring)."""
    _count(ckpt, state, "step")
    _count(ckpt, state, "images_seen")
    _count(ckpt, state, "elapsed_s", float)
    scale = state.get("lr_scale", 1.0)
    if not _finite(scale) or not 0 < scale <= 1:
        _fail(ckpt, f"'lr_scale' is {scale!r}, not a number in (0, 1]")
    batches = state.get("batches")
    if not isinstance(batches, dict):
        _fail(ckpt, "'batches' (the batch position) is missing")
    for key in ("epoch", "cursor"):
        _count(ckpt, batches, key)
    rng = state.get("rng")
    try:  # set on scratch generators: what the global ones would be given, checked by their own code
        kind, keys, pos, has_gauss, gauss = rng["numpy"]
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in [pos, has_gauss, *keys]) \
            and _finite(gauss) and has_gauss in (0, 1)
        if ok:
            np.random.RandomState().set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
            v, internal, gauss_next = rng["python"]
            random.Random().setstate((v, tuple(internal), gauss_next))
    except (TypeError, KeyError, ValueError, IndexError, OverflowError):
        ok = False
    if not ok:
        _fail(ckpt, "the random-number states ('rng') are malformed")
    saved = state.get("optimizers")
    if not isinstance(saved, dict) or set(saved) != set(optimizers):
        _fail(ckpt, f"'optimizers' should hold {sorted(optimizers)}")
    for name, opt in optimizers.items():
        _check_optimizer_meta(ckpt, name, saved[name], opt)
    method_state = state.get("method_state", {})
    if not isinstance(method_state, dict):
        _fail(ckpt, "'method_state' is not a mapping")
    _check_config(ckpt, state.get("config"), config)


def _check_optimizer_meta(ckpt, name: str, meta, opt: torch.optim.Optimizer) -> None:
    groups = meta.get("param_groups") if isinstance(meta, dict) else None
    if not isinstance(groups, list) or len(groups) != len(opt.param_groups) \
            or not isinstance(meta.get("scalars", {}), dict):
        _fail(ckpt, f"optimizer '{name}' has no usable param_groups")
    live = opt.state_dict()["param_groups"]
    for saved, now in zip(groups, live, strict=True):
        if not isinstance(saved, dict) or saved.get("params") != now["params"]:
            _fail(ckpt, f"optimizer '{name}' covers other parameters than this run's networks")
        lr, betas, eps = saved.get("lr"), saved.get("betas"), saved.get("eps")
        if not _finite(lr) or lr < 0:
            _fail(ckpt, f"optimizer '{name}' has learning rate {lr!r}")
        if not isinstance(betas, list) or len(betas) != 2 or not all(_finite(b) and 0 <= b < 1 for b in betas):
            _fail(ckpt, f"optimizer '{name}' has betas {betas!r}, not two numbers in [0, 1)")
        if not _finite(eps) or eps <= 0:
            _fail(ckpt, f"optimizer '{name}' has eps {eps!r}")
        if not _finite(saved.get("weight_decay", 0.0)) or saved.get("weight_decay", 0.0) < 0:
            _fail(ckpt, f"optimizer '{name}' has weight_decay {saved.get('weight_decay')!r}")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_config(ckpt, saved, config: dict) -> None:
    """The checkpoint belongs to this run: its config equals the run's but for resumable keys."""
    if not isinstance(saved, dict):
        _fail(ckpt, "the config it was saved with is missing")
    try:
        saved = config_from_dict(upgrade_config(saved), strict=False).to_dict()
    except GanforgeError as exc:
        _fail(ckpt, f"the config it was saved with is invalid ({exc})")
    for section, values in config.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if f"{section}.{key}" in RESUMABLE_KEYS or section == "name":
                continue
            old = saved.get(section, {}).get(key)
            if old != value:
                raise DamagedCheckpoint(
                    f"checkpoint {ckpt} was saved by another config ({section}.{key} is {old!r} there, {value!r} "
                    "in the run's config.json); resume the run it came from, or restore config.json")


def check_weights(ckpt: Path, tensors: dict[str, torch.Tensor], networks: dict[str, torch.nn.Module]) -> None:
    expected = {f"{name}.{k}": tuple(v.shape) for name, m in networks.items() for k, v in m.state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    if missing:
        _fail(ckpt, f"models.safetensors lacks {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1
                                                                  else ""))
    for key, shape in expected.items():
        t = tensors[key]
        if tuple(t.shape) != shape:
            _fail(ckpt, f"{key} has shape {tuple(t.shape)}, the run's network needs {shape}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            _fail(ckpt, f"{key} holds NaN or infinite values")


def check_train_tensors(ckpt: Path, tensors: dict[str, torch.Tensor],
                        optimizers: dict[str, torch.optim.Optimizer]) -> None:
    cpu = tensors.get("rng.torch_cpu")
    if cpu is None or cpu.dtype != torch.uint8 or cpu.numel() != CPU_RNG_BYTES:
        _fail(ckpt, "the torch random-number state is missing or malformed")
    for name, opt in optimizers.items():
        params = [p for group in opt.param_groups for p in group["params"]]
        prefix = f"opt.{name}."
        for key, t in tensors.items():
            if not key.startswith(prefix):
                continue
            idx, _, leaf = key[len(prefix):].partition(".")
            if not idx.isdigit() or int(idx) >= len(params):
                _fail(ckpt, f"{key} names no parameter of optimizer '{name}'")
            if leaf in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") and tuple(t.shape) != tuple(params[int(idx)].shape):
                _fail(ckpt, f"{key} has shape {tuple(t.shape)}, its parameter {tuple(params[int(idx)].shape)}")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                _fail(ckpt, f"{key} holds NaN or infinite values")
            if leaf == "step" and (t.numel() != 1 or float(t) < 0):
                _fail(ckpt, f"{key} is not a step count")
