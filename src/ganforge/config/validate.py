"""Building a config from nested dicts (YAML, JSON), with validation and one-line errors."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import fields
from typing import Any, get_type_hints

import yaml

from ganforge.config.schema import Config, ModelConfig, method_spec
from ganforge.errors import GanforgeError, did_you_mean

#: the largest integer any config key takes unless it says otherwise (2^31 - 1)
MAX_INT = 2**31 - 1


def _check_value(key: str, value: Any, typ: type, meta: dict) -> Any:
    """Coerce ``value`` to ``typ`` where that is lossless, then check range and choices."""
    if typ is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            value = value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise GanforgeError(f"{key} must be true or false, got {value!r}")
    elif typ is int:
        if isinstance(value, str):
            try:
                value = int(value.replace("_", ""))
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise GanforgeError(f"{key} must be an integer, got {value!r}")
    elif typ is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise GanforgeError(f"{key} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise GanforgeError(f"{key} must be a finite number, got {value!r}")
    elif typ is str:
        if not isinstance(value, str):
            raise GanforgeError(f"{key} must be a string, got {value!r}")
    elif typ is list:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, list):
            raise GanforgeError(f"{key} must be a list, got {value!r}")
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if lo is not None and value < lo:
        raise GanforgeError(f"{key} must be >= {lo}, got {value!r}")
    if hi is None and typ is int:
        hi = MAX_INT  # no count, size or interval is larger; a typo like 1e30 is caught here
    if hi is not None and value > hi:
        raise GanforgeError(f"{key} must be <= {hi}, got {value!r}")
    if choices is not None and value not in choices:
        raise GanforgeError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def _build(cls, data: dict, prefix: str = ""):
    if not isinstance(data, dict):
        raise GanforgeError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = prefix + str(key)
        if key not in known:
            hint = did_you_mean(str(key), known)
            raise GanforgeError(f"unknown config key '{full}'{hint}; see `ganforge train --help-config`")
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            kwargs[key] = _build(typ, value, full + ".")
        else:
            kwargs[key] = _check_value(full, value, typ, known[key].metadata)
    return cls(**kwargs)


def config_from_dict(data: dict, *, strict: bool = True) -> Config:
    """Validate a nested dict (as read from YAML or JSON) into a :class:`Config`.

    The method section is checked against the options of the method it names, and the model
    section against the model keys that method reads: a key the method would ignore is an error
    naming the keys it does read. ``strict=False`` drops such keys instead (reading the config
    of a run written by an older ganforge, which saved every key).
    """
    if not isinstance(data, dict):
        raise GanforgeError(f"a config must be a mapping of sections (data, model, method, train), got {data!r}")
    data = dict(data)
    method = data.pop("method", None) or {}
    if not isinstance(method, dict):
        raise GanforgeError(f"method must be a mapping, got {method!r}")
    name = method.get("name", "gan")
    if not isinstance(name, str):
        raise GanforgeError(f"method.name must be a method's name (see `ganforge train --help-config`), got {name!r}")
    spec = method_spec(name)
    readable = [f.name for f in fields(spec.options)]
    model = data.get("model") or {}
    if not isinstance(model, dict):
        raise GanforgeError(f"model must be a mapping, got {model!r}")
    model_known = {f.name for f in fields(ModelConfig)}
    for key in list(method):
        if key not in readable:
            if strict:
                hint = did_you_mean(str(key), readable)
                raise GanforgeError(f"method {name} does not read method.{key}{hint}; its keys are "
                                    f"{', '.join(k for k in readable if k != 'name')}")
            method.pop(key)
    for key in list(model):
        if key in model_known and key not in spec.model_keys:
            if strict:
                raise GanforgeError(f"method {name} does not read model.{key}; its model keys are "
                                    f"{', '.join(spec.model_keys)}")
            model.pop(key)
    data["model"] = model
    cfg = _build(Config, data)
    if cfg.name in ("", ".", "..") or any(c in cfg.name for c in "/\\\0"):
        raise GanforgeError(f"name {cfg.name!r} must be a plain name (no path separators); it names the run "
                            "folder under runs/ - choose where the run goes with --out")
    cfg.method = _build(spec.options, method, "method.")
    return cfg


def upgrade_config(tree: dict) -> dict:
    """A resolved config written by an older ganforge, in today's terms. Until per-method options,
    config.json held every method key; "gan" and "cgan" ignored gp_weight and clip, which are
    options of every GAN now (default 0), so they are set to 0 for such a run."""
    method = tree.get("method") if isinstance(tree, dict) else None
    if isinstance(method, dict) and {"lr_g", "kl_warmup_kimg"} <= method.keys():
        method = dict(method)
        if method.get("name") in ("gan", "cgan"):
            method["gp_weight"], method["clip"] = 0.0, 0.0
        tree = {**tree, "method": method}
    return tree


