"""Export: every method's sampling networks as ONNX (dynamic batch, dynamic sides for the picture
translators) and safetensors, checked against what ganforge itself computes.

- every registered method: each exported ONNX graph, run in onnxruntime at batch 1 and 7, matches
  the method's own path (generate, translate, upscale, encode, decode, the prior's logits), and the
  export's own parity figures are within their tolerance;
- every registered method: a safetensors export rebuilds networks that give identical outputs;
- `ganforge sample --onnx` draws pictures with onnxruntime; bad input gets one-line errors; a
  failed export leaves an earlier one untouched.
"""

import json

import numpy as np
import pytest
import torch

import ganforge
from ganforge import export as export_module
from ganforge.api import load_run
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.export import export_run, load_graphs
from test_contracts import METHOD_SETUPS, method_config, quiet, vq_runs  # noqa: F401 (a fixture)

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, vq_runs):  # noqa: F811
    """A function: method name -> a tiny finished run of it (2 steps, made once)."""
    made = {}

    def run_for(name: str):
        if name not in made:
            extra = [f"method.vq_run={vq_runs('digits')}"] if name == "vqprior" else []
            made[name] = ganforge.train(method_config(name, 2, extra), tmp_path_factory.mktemp(name) / "run",
                                        progress=False, log=quiet)
        return made[name]
    return run_for


def reference(run, graph_name: str, role: str, inputs: list[torch.Tensor]) -> torch.Tensor:
    """What ganforge itself computes for a graph's inputs, through the method's public path."""
    method = run.method
    if role == "sample" and run.config.method.name == "stylegan":
        z, psi, *noise = inputs
        G = method.sampling_network
        assert all(torch.equal(n[0], layer.fixed_noise[0]) for n, layer in zip(noise, G.synthesis.layers, strict=True))
        return method.generate({"z": z, "psi": psi}, "cpu")
    if role == "sample":
        feed = method.inputs_for_latents(inputs[0])
        if len(inputs) > 1:
            feed["y"] = inputs[1]
        return method.generate(feed, "cpu")
    if role == "translate":
        return method.translate(inputs[0], "cpu", direction="b2a" if graph_name == "b2a" else "a2b")
    if role == "upscale":
        return method.upscale(inputs[0], "cpu")
    with torch.no_grad():
        if role == "encode":
            return method.encode(inputs[0])
        if role == "prior":
            return method.models["P"](inputs[0])
        if run.config.method.name == "vqprior":
            return method.vq.decode(inputs[0]).clamp(-1, 1)
        if run.config.method.name == "vqvae":
            return method.decode(inputs[0]).clamp(-1, 1)
        return method.models["G"](inputs[0])  # an autoencoder's decoder


def feed_for(run, folder, graph: dict, batch: int) -> list[torch.Tensor]:
    """Inputs for a graph at ``batch``: drawn as its description says (StyleGAN: the fixed noise)."""
    from safetensors.torch import load_file

    g = torch.Generator().manual_seed(batch)
    sizes = {"batch": batch, "height": run.info["sample_shape"][-1], "width": run.info["sample_shape"][-1]}
    if run.config.method.name in ("srresnet", "srgan"):
        side = run.config.method.crop // run.config.method.scale
        sizes.update(height=side, width=side)
    elif run.info.get("condition_shape") and graph["role"] == "translate":
        sizes.update(height=run.info["condition_shape"][-1], width=run.info["condition_shape"][-1])
    out = []
    for spec in graph["inputs"]:
        shape = [sizes[d] if isinstance(d, str) else d for d in spec["shape"]]
        if spec["name"].startswith("noise_"):
            out.append(load_file(str(folder / "noise.safetensors"))[spec["name"]].repeat(batch, 1, 1, 1))
        elif spec["dtype"] == "int64":
            high = int(spec["values"].split("..")[1].split(";")[0]) + 1
            out.append(torch.randint(high, shape, generator=g))
        elif spec["name"] == "psi":
            out.append(torch.rand(shape, generator=g) * 0.6 + 0.5)
        elif spec["name"] == "input":
            out.append(torch.rand(shape, generator=g) * 2 - 1)
        else:
            out.append(torch.randn(shape, generator=g))
    return out


@pytest.mark.parametrize("name", sorted(METHOD_SETUPS))
def test_every_method_exports_onnx_that_matches_ganforge(name, tiny_runs, tmp_path):
    run = load_run(tiny_runs(name))
    folder = tmp_path / "export"
    config = export_run(run, "onnx", folder, log=quiet)
    assert json.loads((folder / "config.json").read_text()) == config
    assert config["graphs"] and config["weights"] == ("ema" if run.method.ema else "trained")
    for graph_name, graph in config["graphs"].items():
        checks = graph["parity"]
        assert {"batch 1", "batch 7"} <= set(checks)
        if graph["role"] in ("translate", "upscale"):
            assert any(label.startswith("side") for label in checks)  # height and width vary
        assert all(0 <= c["difference"] <= c["tolerance"] <= 1e-3 for c in checks.values()), checks
        session = ort.InferenceSession(str(folder / graph["file"]), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == [i["name"] for i in graph["inputs"]]
        for batch in (1, 7):
            inputs = feed_for(run, folder, graph, batch)
            got = torch.from_numpy(session.run(None, {s["name"]: t.numpy() for s, t in
                                                      zip(graph["inputs"], inputs, strict=True)})[0])
            want = reference(run, graph_name, graph["role"], inputs)
            assert got.shape == want.shape and got.shape[0] == batch
            if want.dtype.is_floating_point:
                assert torch.allclose(got, want.to(got.dtype), atol=1e-4, rtol=1e-4), (graph_name, batch)
            else:
                assert (got != want).float().mean() <= 1e-3


@pytest.mark.parametrize("name", sorted(METHOD_SETUPS))
def test_every_method_exports_safetensors_that_rebuild_exactly(name, tiny_runs, tmp_path):
    run = load_run(tiny_runs(name))
    config = export_run(run, "safetensors", tmp_path / "st", log=quiet)
    assert all(c["difference"] == 0 for g in config["graphs"].values() for c in g["parity"].values())
    rebuilt = load_graphs(tmp_path / "st")
    graphs = run.method.export_graphs()
    assert set(rebuilt) == {g.name for g in graphs}
    for graph in graphs:
        inputs = export_module.graph_inputs(graph, 3, None, seed=5)
        with torch.no_grad():
            assert torch.equal(rebuilt[graph.name](*inputs), graph.module.eval()(*inputs))


def test_trained_weights_and_ema_are_exported_as_asked(tiny_runs, tmp_path):
    run = load_run(tiny_runs("vae"))  # keeps an EMA copy of its decoder
    ema = export_run(run, "safetensors", tmp_path / "ema", ema=True, log=quiet)
    live = export_run(run, "safetensors", tmp_path / "live", ema=False, log=quiet)
    assert (ema["weights"], live["weights"]) == ("ema", "trained")
    from safetensors.torch import load_file

    ema_w = load_file(str(tmp_path / "ema/decoder.safetensors"))
    live_w = load_file(str(tmp_path / "live/decoder.safetensors"))
    assert all(torch.equal(ema_w[k], v) for k, v in run.method.ema["G_ema"].state_dict().items())
    assert all(torch.equal(live_w[k], v) for k, v in run.method.models["G"].state_dict().items())
    plain = load_run(tiny_runs("ae"))  # keeps none
    with pytest.raises(GanforgeError, match="keeps no EMA copy"):
        export_run(plain, "onnx", tmp_path / "x", ema=True, log=quiet)


def test_sample_onnx_draws_pictures_and_refuses_what_it_cannot(tiny_runs, tmp_path, capsys):
    for name in ("cgan", "stylegan", "vqprior"):
        folder = tmp_path / name
        assert main(["export", str(tiny_runs(name)), "-o", str(folder), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["graphs"]
        out = tmp_path / f"{name}.png"
        extra = ["--class", "1"] if name == "cgan" else ["--psi", "0.7"] if name == "stylegan" else []
        assert main(["sample", "--onnx", str(folder), "-n", "5", "-o", str(out), *extra]) == 0
        assert out.is_file() and "onnxruntime" in capsys.readouterr().out
    from ganforge.exported import sample_onnx

    a, b = sample_onnx(tmp_path / "stylegan", 4, seed=1), sample_onnx(tmp_path / "stylegan", 4, seed=1)
    assert a.shape == (4, *load_run(tiny_runs("stylegan")).info["sample_shape"]) and np.array_equal(a, b)
    capsys.readouterr()
    assert main(["export", str(tiny_runs("pix2pix")), "-o", str(tmp_path / "p2p")]) == 0
    bad = [(["sample", "--onnx", str(tmp_path / "p2p")], "translate rather than sample"),
           (["sample", "--onnx", str(tmp_path / "stylegan"), "--class", "1"], "unconditional"),
           (["sample", "--onnx", str(tmp_path / "cgan"), "--psi", "0.7"], "only a StyleGAN export"),
           (["sample", "--onnx", str(tmp_path / "nothing")], "not a ganforge export"),
           (["sample"], "name a run directory"),
           (["export", str(tiny_runs("gan")), "-o", str(tmp_path / "cgan.png")], "is not a ganforge export")]
    for argv, message in bad:
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_export_that_fails_its_check_leaves_the_earlier_one(tiny_runs, tmp_path, monkeypatch):
    run = load_run(tiny_runs("gan"))
    folder = tmp_path / "export"
    export_run(run, "onnx", folder, log=quiet)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # every check fails
    with pytest.raises(GanforgeError, match="differs from PyTorch .* the export was not written"):
        export_run(run, "onnx", folder, log=quiet)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folder left behind
