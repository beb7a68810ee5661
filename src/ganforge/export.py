"""`ganforge export`: a run's sampling networks as ONNX or safetensors files another program can use.

The method says which networks it exports and how each is called (``Method.export_graphs``:
inputs with named axes, what their values mean, what the output holds). An export folder holds

    <graph>.onnx or <graph>.safetensors   one per graph (generator, decoder, a2b, prior, ...)
    config.json                           how to call each graph, the parity figures, the run's config
    noise.safetensors                     StyleGAN: each layer's fixed noise picture (what `sample` adds)

ONNX graphs have a dynamic batch axis (and dynamic height and width for the fully convolutional
translators and upscalers). Before the folder is put in place the export checks itself: it runs
each ONNX file in onnxruntime (each safetensors file: a network rebuilt from it) on random inputs
at batch 1 and 7 (and at a second picture side where height and width vary) and compares with
PyTorch. The folder is written under a temporary name and renamed into place, so an export that
fails its check, or is interrupted, leaves an earlier one untouched.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganforge.errors import GanforgeError
from ganforge.exported import EXPORT_VERSION, read_export
from ganforge.methods.graphs import PICTURE_VALUES, SamplingGraph
from ganforge.version import __version__

FORMATS = ("onnx", "safetensors")
#: the parity tolerance: max |onnx - torch| <= TOLERANCE x max(1, max |torch|)
TOLERANCE = 1e-4
PARITY_BATCHES = (1, 7)


def require_onnx() -> None:
    """A one-line error when onnx or onnxruntime is missing (they come with ganforge's export extra)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise GanforgeError(f"ONNX export needs {e.name}: pip install 'ganforge[export]' (onnx, onnxruntime, "
                            "onnxscript), or export --format safetensors") from None


def graph_inputs(graph: SamplingGraph, batch: int, side: int | None, seed: int) -> tuple[torch.Tensor, ...]:
    """Random inputs of ``graph`` at ``batch`` (and picture ``side`` where height and width vary)."""
    sizes = {**graph.sizes, "batch": batch}
    if side is not None:
        sizes.update(height=side, width=side)
    g = torch.Generator().manual_seed(seed)
    return tuple(i.draw(sizes, g) for i in graph.inputs)


def parity_cases(graph: SamplingGraph) -> list[tuple[str, int, int | None]]:
    """(label, batch, side) of every check: batch 1 and 7, and batch 2 at ``other_side``."""
    cases = [(f"batch {b}", b, None) for b in PARITY_BATCHES]
    if graph.other_side:
        cases.append((f"side {graph.other_side}", 2, graph.other_side))
    return cases


def difference(reference: torch.Tensor, other: torch.Tensor) -> float:
    """max |reference - other| for floats; the fraction of entries that differ for integers (codes)."""
    if reference.shape != other.shape:
        raise GanforgeError(f"an exported graph gives shape {tuple(other.shape)} where PyTorch gives "
                            f"{tuple(reference.shape)}")
    if reference.dtype.is_floating_point:
        return float((reference.double() - other.double()).abs().max())
    return float((reference != other).double().mean())


def tolerance(reference: torch.Tensor) -> float:
    if not reference.dtype.is_floating_point:
        return 1e-3  # codes: nearly tied distances may round either way
    return TOLERANCE * max(1.0, float(reference.abs().max()))


@contextlib.contextmanager
def _quiet():
    """torch.onnx prints its progress and warns about deprecations; an export prints its own lines."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        registry.setLevel(level)


def write_onnx(graph: SamplingGraph, path: Path) -> None:
    """The graph as one ONNX file (weights inside), by the torch.export-based exporter, its named axes dynamic."""
    from torch.export import Dim

    example = graph_inputs(graph, graph.sizes["batch"], None, seed=0)
    dynamic = tuple({axis: Dim.AUTO for axis, size in enumerate(i.shape) if isinstance(size, str)}
                    for i in graph.inputs)
    params = inspect.signature(graph.module.forward).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):  # forward(z, psi, *noise): the tail is one argument
        fixed = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        dynamic = (*dynamic[:fixed], dynamic[fixed:])
    with _quiet():
        try:
            program = torch.onnx.export(graph.module, example, input_names=[i.name for i in graph.inputs],
                                        output_names=[graph.output[0]], dynamic_shapes=dynamic, dynamo=True,
                                        external_data=False, verbose=False)
        except Exception as e:  # the exporter's errors run to pages: keep the first line of the root cause
            cause = e.__cause__ or e
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise GanforgeError(f"torch.onnx could not export {graph.name}: {first}") from None
        program.save(str(path))


def onnx_parity(graph: SamplingGraph, path: Path) -> dict:
    """Each case's max |onnxruntime - torch| (codes: the fraction that differ) and the tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = {}
    for label, batch, side in parity_cases(graph):
        inputs = graph_inputs(graph, batch, side, seed=batch + (side or 0))
        with torch.no_grad():
            reference = graph.module(*inputs)
        got = session.run(None, {i.name: t.numpy() for i, t in zip(graph.inputs, inputs, strict=True)})[0]
        out[label] = {"difference": difference(reference, torch.from_numpy(got)), "tolerance": tolerance(reference)}
    return out


def safetensors_parity(graph: SamplingGraph, rebuilt: torch.nn.Module) -> dict:
    """The same check for a network rebuilt from the exported weights (which should give identical outputs)."""
    out = {}
    for label, batch, side in parity_cases(graph):
        inputs = graph_inputs(graph, batch, side, seed=batch + (side or 0))
        with torch.no_grad():
            reference, got = graph.module(*inputs), rebuilt(*inputs)
        out[label] = {"difference": difference(reference, got), "tolerance": tolerance(reference)}
    return out


def state_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A graph's weights and buffers as separate contiguous tensors (safetensors refuses shared storage)."""
    return {k: v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}


def _method_config(run) -> dict:
    """What rebuilding the run's networks needs: its config and what it was trained on."""
    return {"config": run.config.to_dict(), "run": run.info}


def _sampling_recipe(run, graphs: list[SamplingGraph]) -> dict:
    """How `ganforge sample --onnx` (or any caller) draws pictures from the graphs."""
    roles = {g.role for g in graphs}
    method = run.method
    if "prior" in roles:
        return {"how": "codes drawn position by position from the prior's softmax(logits / temperature), "
                       "then decoded", "temperature": method.options.temperature, "grid": list(method.grid)}
    if "sample" in roles:
        how = "inputs as each graph's inputs describe them"
        if run.config.method.name == "stylegan":
            how += "; noise_i from noise.safetensors (each layer's fixed picture, as `ganforge sample` uses)"
        return {"how": how, "classes": method.n_classes}
    return {"how": "this export maps pictures (or codes) to pictures; it draws no samples"}


def export_run(run, fmt: str, out: str | Path, ema: bool | None = None, log=print) -> dict:
    """Write the sampling networks of a loaded run (``api.load_run``) to the folder ``out`` in ``fmt``
    ("onnx" or "safetensors"), check them, and return the written config.json as a dict.

    ``ema``: True exports the EMA copies (an error when the run keeps none), False the trained
    weights, None the EMA copies when there are some (what `ganforge sample` draws from).
    """
    if fmt not in FORMATS:
        raise GanforgeError(f"unknown export format {fmt!r}: choose {' or '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    keeps_ema = bool(run.method.ema)
    if ema and not keeps_ema:
        raise GanforgeError(f"{run.run_dir} keeps no EMA copy (method.ema_halflife_kimg is 0); export without --ema")
    use_ema = keeps_ema if ema is None else bool(ema)
    out = Path(out)
    if out.exists() and not (out / "config.json").is_file() and (not out.is_dir() or any(out.iterdir())):
        raise GanforgeError(f"{out} exists and is not a ganforge export; name a new folder (or an earlier export "
                            "to replace it)")
    log(f"exporting {run.run_dir} (step {run.step}) as {fmt} to {out}; parity with PyTorch, max |difference| "
        "per check:")
    graphs = run.method.export_graphs(ema=use_ema)
    for g in graphs:
        g.module.eval()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        config = _write(run, graphs, fmt, use_ema, tmp, log)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return config


def _write(run, graphs: list[SamplingGraph], fmt: str, use_ema: bool, folder: Path, log) -> dict:
    described = {}
    for graph in graphs:
        path = folder / f"{graph.name}.{fmt}"
        if fmt == "onnx":
            write_onnx(graph, path)
            parity = onnx_parity(graph, path)
        else:
            save_file(state_of(graph.module), str(path))
            parity = None  # checked below, once every file is written
        described[graph.name] = {"file": path.name, **graph.describe(), "parity": parity}
    config = {"ganforge_export": EXPORT_VERSION, "ganforge_version": __version__, "format": fmt,
              "run": str(run.run_dir), "step": run.step, "name": run.config.name, "method": run.config.method.name,
              "weights": "ema" if use_ema else "trained", "pictures": PICTURE_VALUES,
              "sampling": _sampling_recipe(run, graphs), "graphs": described, "ganforge": _method_config(run)}
    if run.config.method.name == "stylegan":
        layers = graphs[0].module.G.synthesis.layers
        save_file({f"noise_{i}": layer.fixed_noise.detach().cpu().contiguous() for i, layer in enumerate(layers)},
                  str(folder / "noise.safetensors"))
        config["noise"] = "noise.safetensors"
    if fmt == "safetensors":
        rebuilt = load_graphs(folder, config)
        for graph in graphs:
            described[graph.name]["parity"] = safetensors_parity(graph, rebuilt[graph.name])
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    worst = [(g, label, p) for g, d in described.items() for label, p in d["parity"].items()
             if not p["difference"] <= p["tolerance"]]
    for name, d in described.items():
        log(f"{name}: " + ", ".join(f"{label} {p['difference']:.2e}" for label, p in d["parity"].items())
            + f" (tolerance {max(p['tolerance'] for p in d['parity'].values()):.0e})")
    if worst:
        g, label, p = worst[0]
        raise GanforgeError(f"the exported {g} differs from PyTorch by {p['difference']:.3g} at {label} (tolerance "
                            f"{p['tolerance']:.0e}); the export was not written")
    return config


def load_graphs(folder: str | Path, config: dict | None = None) -> dict[str, torch.nn.Module]:
    """The networks of a safetensors export, rebuilt with ganforge and loaded (eval mode, CPU):
    {graph name: module called as config.json describes}. A vqprior export also needs its
    VQ-VAE run where the prior's config names it (method.vq_run), to build the method."""
    from ganforge.config import config_from_dict
    from ganforge.data import DataSpec
    from ganforge.methods import build_method

    folder = Path(folder)
    config = config or read_export(folder)
    if config["format"] != "safetensors":
        raise GanforgeError(f"{folder} holds {config['format']} files; load_graphs reads a --format safetensors export")
    info = config["ganforge"]["run"]
    condition = info.get("condition_shape")
    data = DataSpec(tuple(info["sample_shape"]), info["is_image"], info.get("n_classes"),
                    tuple(condition) if condition else None, bool(info.get("unpaired")))
    method = build_method(config_from_dict(config["ganforge"]["config"]), data, "cpu")
    modules = {}
    for graph in method.export_graphs(ema=config["weights"] == "ema"):
        state = load_file(str(folder / config["graphs"][graph.name]["file"]))
        graph.module.load_state_dict(state)
        modules[graph.name] = graph.module.eval()
    return modules
