"""Typed, validated run configuration.

A config is a tree of dataclasses. It comes from a shipped YAML preset or a user's YAML file,
plus ``key=value`` overrides, and is checked once at the edge: unknown keys (with the closest
name suggested), wrong types and out-of-range values raise :class:`GanforgeError` in one line.
The method section holds the options of the method it names (each method declares its own,
see ``schema.MethodOptions``). The resolved config is saved as JSON in the run directory and in
every checkpoint.

    schema.py     the sections, per-method options, the method registry
    validate.py   nested dicts -> Config, with checks
    presets.py    shipped presets, YAML files, overrides, --help-config
"""

from ganforge.config.presets import _set_path, describe_config, list_presets, load_config, parse_override, preset_dir
from ganforge.config.schema import (
    METHOD_SPECS,
    RESUMABLE_KEYS,
    Config,
    DataConfig,
    MethodOptions,
    MethodSpec,
    ModelConfig,
    TrainConfig,
    _opt,
    method_spec,
    register_method,
)
from ganforge.config.validate import config_from_dict, upgrade_config

__all__ = ["METHOD_SPECS", "RESUMABLE_KEYS", "Config", "DataConfig", "MethodOptions", "MethodSpec", "ModelConfig",
           "TrainConfig", "_opt", "_set_path", "config_from_dict", "describe_config", "list_presets", "load_config",
           "method_spec", "parse_override", "preset_dir", "register_method", "upgrade_config"]
