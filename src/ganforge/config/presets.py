"""Presets, YAML files and ``key=value`` overrides; the --help-config listing."""

from __future__ import annotations

import dataclasses
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from ganforge.config.schema import METHOD_SPECS, Config, method_spec
from ganforge.config.validate import config_from_dict
from ganforge.errors import GanforgeError, did_you_mean


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise GanforgeError(f"cannot set '{dotted}': '{p}' is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is read as YAML so numbers, booleans and lists work."""
    if "=" not in text:
        raise GanforgeError(f"override '{text}' must look like key=value, e.g. train.steps=2000")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # Keep strings that YAML would reinterpret (e.g. "1e-4" stays a float, "on" a string).
    if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
        value = raw.strip()
    return key, value


def preset_dir():
    return resources.files("ganforge") / "configs"


def list_presets() -> dict[str, str]:
    """Preset name -> its one-line description (the YAML file's first comment line)."""
    out = {}
    for entry in sorted(preset_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            first = entry.read_text().splitlines()[0] if entry.read_text() else ""
            out[entry.name[:-5]] = first.lstrip("# ").strip()
    return out


def load_config(preset_or_path: str, overrides: list[str] | dict | None = None) -> Config:
    """Load a shipped preset by name, or a YAML file by path, and apply ``key=value`` overrides."""
    path = Path(preset_or_path)
    if path.is_dir() and preset_or_path not in list_presets():  # a folder named like a preset is a run, not a config
        raise GanforgeError(f"'{path}' is a folder, not a config; pass a preset name or a YAML file (to continue a "
                            f"run: `ganforge train --resume {path}`)")
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise GanforgeError(f"config file '{path}' does not exist; check the path or run "
                                "`ganforge presets`")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise GanforgeError(f"{path} is not a text file (not UTF-8); a config is a YAML file of sections "
                                "data, model, method, train") from None
        name = path.stem
    else:
        presets = list_presets()
        if preset_or_path not in presets:
            hint = did_you_mean(preset_or_path, presets)
            raise GanforgeError(f"unknown preset '{preset_or_path}'{hint}; `ganforge presets` "
                                "lists them")
        text = (preset_dir() / f"{preset_or_path}.yaml").read_text()
        name = preset_or_path
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise GanforgeError(f"cannot parse {preset_or_path} as YAML: {exc}".splitlines()[0]) from None
    if not isinstance(tree, dict):
        raise GanforgeError(f"{preset_or_path} must hold a mapping of sections (data, model, method, train), "
                            f"not a {type(tree).__name__}; see `ganforge train --help-config`")
    tree.setdefault("name", name)
    items = list(overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or []))
    for key, value in items:
        _set_path(tree, key, value)
    # Switching method on the command line (e.g. --set method.name=wgan-gp on an NS-GAN preset): the
    # preset's method and model keys that the new method does not read are dropped, and its paper
    # settings replace the preset's, except the ones set on the same command line.
    new_method = dict(items).get("method.name")
    if new_method is not None and isinstance(tree.get("method"), dict):
        spec = method_spec(new_method)
        given = {k.split(".", 1)[1] for k, _ in items if k.startswith("method.")}
        readable = {f.name for f in fields(spec.options)}
        for key in list(tree["method"]):
            if key not in given and (key not in readable or key in spec.options.paper_keys):
                tree["method"].pop(key)
        given_model = {k.split(".", 1)[1] for k, _ in items if k.startswith("model.")}
        for key in list(tree.get("model") or {}):
            if key not in given_model and key not in spec.model_keys:
                tree["model"].pop(key)
    return config_from_dict(tree)


def describe_config() -> str:
    """Every config key with its default and help, for `ganforge train --help-config`; method and
    model keys say which methods read them."""
    lines = []

    def users(pred) -> str:
        names = [n for n, spec in METHOD_SPECS.items() if pred(spec)]
        return "" if len(names) == len(METHOD_SPECS) else f"  [{', '.join(names)}]"

    for section in fields(Config):
        if section.name == "method":
            seen = {}
            for spec in METHOD_SPECS.values():
                for f in fields(spec.options):
                    seen.setdefault(f.name, f)
            for key, f in seen.items():
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                tag = users(lambda spec, key=key: key in {g.name for g in fields(spec.options)})
                lines.append(f"method.{key} = {default!r}  # {f.metadata['help']}{tag}")
            continue
        cls = get_type_hints(Config)[section.name]
        if not dataclasses.is_dataclass(cls):
            lines.append(f"{section.name} = {section.default!r}  # {section.metadata['help']}")
            continue
        for f in fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            tag = users(lambda spec, key=f.name: key in spec.model_keys) if section.name == "model" else ""
            lines.append(f"{section.name}.{f.name} = {default!r}  # {f.metadata['help']}{tag}")
    lines.append("(method keys are per method: each default shown is the first method's; "
                 "`ganforge train PRESET --dry-run` prints a preset's resolved values)")
    return "\n".join(lines)
