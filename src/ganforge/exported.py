"""Drawing pictures from an export folder (`ganforge export`) with onnxruntime and NumPy alone:
what `ganforge sample --onnx FOLDER` runs, and an example of calling the graphs from another program.

config.json says how: a "sample" graph maps noise to pictures (z ~ N(0, 1); y the class; psi
and noise_i for StyleGAN, whose fixed noise pictures are in noise.safetensors), and a "prior"
graph gives the logits of each code of a VQ-VAE grid given the codes before it, so a grid is drawn
position by position and decoded by the "decode" graph. NumPy's generator draws the noise, so a
seed here gives other pictures than the same seed in `ganforge sample` (which draws with torch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError

EXPORT_VERSION = 1
#: pictures per onnxruntime call (bounds memory)
CHUNK = 256


def read_export(folder: str | Path) -> dict:
    """An export folder's config.json, checked to be one."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise GanforgeError(f"{folder} is not a ganforge export (no config.json); make one with `ganforge export "
                            "RUN -o FOLDER`") from None
    except (OSError, ValueError):
        raise GanforgeError(f"{path} is not valid JSON; export the run again") from None
    if not isinstance(config, dict) or config.get("ganforge_export") != EXPORT_VERSION or "graphs" not in config:
        raise GanforgeError(f"{path} is not a ganforge export config (version {EXPORT_VERSION}); export the run again")
    return config


def _session(folder: Path, graph: dict):
    try:
        import onnxruntime as ort
    except ImportError:
        raise GanforgeError("sampling an ONNX export needs onnxruntime: pip install 'ganforge[export]'") from None
    path = folder / graph["file"]
    if not path.is_file():
        raise GanforgeError(f"{path} is missing; export the run again")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _graph_with_role(config: dict, role: str) -> tuple[str, dict] | None:
    return next(((name, g) for name, g in config["graphs"].items() if g["role"] == role), None)


def sample_onnx(folder: str | Path, n: int, seed: int = 0, label: int | None = None,
                psi: float | None = None) -> np.ndarray:
    """``n`` pictures (n, C, H, W) float32 in [-1, 1] drawn from an ONNX export with onnxruntime."""
    folder = Path(folder)
    config = read_export(folder)
    if config["format"] != "onnx":
        raise GanforgeError(f"{folder} holds {config['format']} weights; `sample --onnx` reads an export made with "
                            "--format onnx")
    if n < 1:
        raise GanforgeError(f"number of samples must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    if _graph_with_role(config, "prior"):
        if label is not None or psi is not None:
            raise GanforgeError("a VQ-VAE prior draws codes: --class and --psi do not apply")
        return _sample_codes(folder, config, n, rng)
    found = _graph_with_role(config, "sample")
    if found is None:
        roles = ", ".join(sorted({g["role"] for g in config["graphs"].values()}))
        raise GanforgeError(f"{folder} holds networks that {roles} rather than sample; call them with onnxruntime as "
                            "its config.json describes (`sample --onnx` draws from generators, VAE decoders, priors)")
    name, graph = found
    if graph["output"]["name"] != "pictures":
        raise GanforgeError(f"{folder}'s {name} draws {graph['output']['name']}, not pictures; call it with "
                            "onnxruntime as its config.json describes")
    session = _session(folder, graph)
    inputs = _sampling_inputs(folder, config, graph, n, rng, label, psi)
    out = [session.run(None, {k: v[i:i + CHUNK] for k, v in inputs.items()})[0] for i in range(0, n, CHUNK)]
    return np.concatenate(out).astype(np.float32)


def _sampling_inputs(folder: Path, config: dict, graph: dict, n: int, rng: np.random.Generator,
                     label: int | None, psi: float | None) -> dict[str, np.ndarray]:
    names = [i["name"] for i in graph["inputs"]]
    classes = config["sampling"].get("classes", 0)
    if label is not None and "y" not in names:
        raise GanforgeError("this export is unconditional; --class needs an export of a cgan run")
    if label is not None and not 0 <= label < classes:
        raise GanforgeError(f"class {label} is out of range: classes are 0..{classes - 1}")
    if psi is not None and "psi" not in names:
        raise GanforgeError("--psi truncates in W, which only a StyleGAN export has")
    out = {}
    for spec in graph["inputs"]:
        name, shape = spec["name"], spec["shape"]
        if name == "z":
            out[name] = rng.standard_normal((n, *shape[1:])).astype(np.float32)
        elif name == "y":
            out[name] = np.full(n, label, np.int64) if label is not None else np.arange(n, dtype=np.int64) % classes
        elif name == "psi":
            out[name] = np.full(n, 1.0 if psi is None else psi, np.float32)
        elif name.startswith("noise_"):
            out[name] = np.repeat(_fixed_noise(folder, config)[name], n, axis=0)
        else:
            raise GanforgeError(f"{folder}: input {name!r} of {graph['file']} is not one `sample --onnx` can fill")
    return out


def _fixed_noise(folder: Path, config: dict) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = folder / config.get("noise", "noise.safetensors")
    if not path.is_file():
        raise GanforgeError(f"{path} is missing (each layer's fixed noise picture); export the run again")
    return load_file(str(path))


def _sample_codes(folder: Path, config: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """Codes drawn position by position from the prior (inverse CDF of softmax(logits / T), as the
    prior's own sampler does), then decoded."""
    (_, prior_graph), (_, decoder_graph) = _graph_with_role(config, "prior"), _graph_with_role(config, "decode")
    prior, decoder = _session(folder, prior_graph), _session(folder, decoder_graph)
    temperature, (h, w) = config["sampling"]["temperature"], config["sampling"]["grid"]
    length = h * w
    pictures = []
    for start in range(0, n, CHUNK):
        b = min(CHUNK, n - start)
        codes = np.zeros((b, length), np.int64)  # position t's logits read codes 0..t-1 only
        uniforms = rng.random((b, length))
        for t in range(length):
            logits = prior.run(None, {"codes": codes})[0][:, t].astype(np.float64) / temperature
            probs = np.exp(logits - logits.max(1, keepdims=True))
            cdf = np.cumsum(probs / probs.sum(1, keepdims=True), 1)
            codes[:, t] = np.minimum((cdf < uniforms[:, t:t + 1]).sum(1), logits.shape[1] - 1)
        pictures.append(decoder.run(None, {"codes": codes.reshape(b, h, w)})[0])
    return np.concatenate(pictures).astype(np.float32)
