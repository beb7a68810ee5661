"""Contracts every registered component must keep.

- every method: builds, trains 3 steps on tiny real data, resumes bit-exactly (weights, optimizer
  and method state), samples what it declares (or refuses to, with a clear error), and refuses
  option keys it does not read;
- every preset: builds its networks, which run on their example inputs;
- every GAN game: trains 3 steps and logs the statistics its record promises;
- the phase machinery: lazy phases every N iterations with the loss scaled by N, a carry from
  one phase to the next, method state restored exactly on resume, AdamW and a linear LR decay.
"""

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.api import build, load_run, resume
from ganforge.calc import model_summary
from ganforge.config import (
    METHOD_SPECS,
    MethodOptions,
    _opt,
    config_from_dict,
    list_presets,
    load_config,
    register_method,
)
from ganforge.data import DataSpec
from ganforge.errors import GanforgeError
from ganforge.losses.gan import GAMES
from ganforge.methods import METHODS, Method, OptimizerSpec, Phase, build_method
from ganforge.report.plots import read_metrics
from ganforge.train import checkpoint as ckpt_io


def quiet(*_):
    pass


TINY_TRAIN = ["train.batch_size=32", "train.log_every=1", "train.sample_every=0", "train.checkpoint_every=2",
              "train.health=false"]
GAN_TOY = ["data.source=toy-ring", "data.toy_points=2000", "model.arch=mlp", "model.z_dim=2", "model.g_width=16",
           "model.d_width=16", "model.g_depth=2", "model.d_depth=2", "method.ema_halflife_kimg=1"]
# Tiny real data each method can train on: 2-D rings for the GANs, scikit-learn's 8x8 digits
# (labelled) for the conditional GAN and the autoencoders.
METHOD_SETUPS = {
    "gan": GAN_TOY,
    "wgan-gp": GAN_TOY,
    "wgan": GAN_TOY,
    "cgan": ["data.source=digits", "model.arch=mlp", "model.z_dim=8", "model.g_width=16", "model.d_width=16",
             "model.g_depth=1", "model.d_depth=1", "model.embed_dim=4"],
    # the ring has no labels InfoGAN could read: its 8 codes are drawn
    "infogan": GAN_TOY + ["method.codes=8", "model.embed_dim=4"],
    # the ring's points in 12 k-means clusters, found again on resume
    "selfcond": GAN_TOY + ["method.clusters=12", "model.embed_dim=4"],
    "ae": ["data.source=digits", "model.arch=mlp", "model.z_dim=4", "model.ae_width=16", "model.ae_depth=1"],
    "vae": ["data.source=digits", "model.arch=mlp", "model.z_dim=4", "model.ae_width=16", "model.ae_depth=1",
            "method.ema_halflife_kimg=1"],
    # paired emoji at 16 px (the smallest U-Net): jitter and flips draw from the global RNG
    "pix2pix": ["data.source=emoji-google2twitter", "data.resolution=16", "model.g_width=4", "model.d_width=4",
                "model.d_layers=1"],
    # unpaired emoji at 16 px; a pool of 40 fills in the first two steps of 32, so the resumed steps
    # draw from a restored pool
    "cyclegan": ["data.source=emoji-google-twitter", "data.resolution=16", "model.g_width=4", "model.d_width=4",
                 "model.d_layers=1", "model.res_blocks=1", "method.pool_size=40"],
    # 8x8 digits upscaled x2 from 4x4: crops and flips draw from the global RNG; the random CNN of
    # SRGAN's content loss is rebuilt from its seed
    "srresnet": ["data.source=digits", "model.g_width=4", "model.res_blocks=1", "method.scale=2", "method.crop=8"],
    "srgan": ["data.source=digits", "model.g_width=4", "model.res_blocks=1", "method.scale=2", "method.crop=8",
              "model.d_width=4", "model.d_layers=1", "method.content=random-cnn"],
    # 8x8 digits to a 2x2 grid of 8 codes: the EMA codebook and restarts live in buffers
    "vqvae": ["data.source=digits", "model.ae_width=8", "model.res_blocks=1", "model.codebook_size=8",
              "model.code_dim=4"],
    # 8x8 digits (the smallest synthesis network): lazy R1 and path length every 2 iterations so the
    # resumed steps run them; mixing and augmentation draw from the global RNG
    "stylegan": ["data.source=digits", "model.z_dim=8", "model.g_width=8", "model.d_width=8",
                 "model.mapping_layers=1", "method.r1_every=2", "method.pl_every=2",
                 "method.augment=translation,cutout", "method.ema_halflife_kimg=1"],
    # the prior over a tiny vqvae run's 2x2 codes (method.vq_run is added by the vq_runs fixture)
    "vqprior": ["data.source=digits", "model.prior_width=16", "model.prior_layers=1", "model.prior_heads=2"],
}
VQ_TINY = ["model.ae_width=8", "model.res_blocks=1", "model.codebook_size=8", "model.code_dim=4"]


@pytest.fixture(scope="module")
def vq_runs(tmp_path_factory):
    """A function: data source -> a tiny finished vqvae run on it (made once), for vqprior."""
    made = {}

    def run_for(source: str):
        if source not in made:
            cfg = load_config_from_tree({"name": "tiny-vq", "method": {"name": "vqvae"}},
                                        [f"data.source={source}", *VQ_TINY, *TINY_TRAIN, "train.steps=2"])
            made[source] = ganforge.train(cfg, tmp_path_factory.mktemp("vq") / source, progress=False, log=quiet)
        return made[source]
    return run_for


def method_config(name: str, steps: int, extra=()):
    tree = {"name": f"contract-{name}", "method": {"name": name}}
    cfg = load_config_from_tree(tree, METHOD_SETUPS[name] + TINY_TRAIN + [f"train.steps={steps}", *extra])
    return cfg


def load_config_from_tree(tree, overrides):
    from ganforge.config import _set_path, parse_override

    for text in overrides:
        key, value = parse_override(text)
        _set_path(tree, key, value)
    return config_from_dict(tree)


def assert_same_checkpoint(a, b):
    ca, cb = ckpt_io.latest_checkpoint(a), ckpt_io.latest_checkpoint(b)
    for name in ("models.safetensors", "train_state.safetensors"):
        ta, tb = load_file(str(ca / name)), load_file(str(cb / name))
        assert ta.keys() == tb.keys(), name
        for k in ta:
            assert torch.equal(ta[k], tb[k]), (name, k)
    sa, sb = ckpt_io.read_state(ca), ckpt_io.read_state(cb)
    assert sa["method_state"] == sb["method_state"] and sa["step"] == sb["step"]


def test_every_method_is_covered_here():
    assert set(METHODS) == set(METHOD_SETUPS) == set(METHOD_SPECS)


@pytest.mark.parametrize("name", sorted(METHOD_SETUPS))
def test_method_trains_resumes_exactly_and_samples(name, tmp_path, vq_runs):
    extra = [f"method.vq_run={vq_runs('digits')}"] if name == "vqprior" else []
    straight = ganforge.train(method_config(name, 4, extra), tmp_path / "straight", progress=False, log=quiet)
    half = ganforge.train(method_config(name, 2, extra), tmp_path / "half", progress=False, log=quiet)
    resume(half, ["train.steps=4"], progress=False, log=quiet)
    assert_same_checkpoint(straight, half)
    rows = [r for r in read_metrics(half) if "time_s" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    loss_keys = [k for k in rows[-1] if k.startswith("loss/")]
    assert loss_keys and all(torch.isfinite(torch.tensor(rows[-1][k])) for k in loss_keys)

    run = load_run(half)
    shape = tuple(run.info["sample_shape"])
    assert {k for k in run.models} == set(run.method.models) | set(run.method.ema)
    assert set(run.method.example_inputs()) == set(run.method.models)
    if run.method.has_prior:
        samples = run.sample(5, seed=3)
        assert samples.shape == (5, *shape) and samples.dtype == torch.float32
        assert torch.equal(samples, run.sample(5, seed=3))  # seeded
        grid, nrow = run.grid(20, seed=0)
        assert grid.shape[1:] == shape and nrow >= 1
    else:  # an autoencoder has no prior; a translation or upscaling network needs inputs, not noise
        with pytest.raises(GanforgeError, match="no distribution|(translates|upscales) (images|pictures) rather|"
                                                "learns codes, not a distribution"):
            run.sample(5)
    # The preview grid of the fixed inputs has the data's shape too.
    from ganforge.data import load_dataset

    dataset = load_dataset(run.config.data, log=quiet)
    inputs, _ = run.method.preview_inputs(dataset, 1, 16)
    assert run.method.preview(inputs, "cpu").shape[1:] == shape


@pytest.mark.parametrize("name", sorted(METHOD_SETUPS))
def test_method_refuses_keys_it_does_not_read(name):
    readable = {f for f in METHOD_SPECS[name].options.__dataclass_fields__}
    foreign = next(k for spec in METHOD_SPECS.values() for k in spec.options.__dataclass_fields__
                   if k not in readable)
    with pytest.raises(GanforgeError, match=f"method {name} does not read method.{foreign}\\b.*; its keys are"):
        config_from_dict({"method": {"name": name, foreign: 1}})
    unread_model = next(k for k in ("likelihood", "d_norm", "cond_d") if k not in METHOD_SPECS[name].model_keys)
    with pytest.raises(GanforgeError, match=f"method {name} does not read model.{unread_model}"):
        config_from_dict({"method": {"name": name}, "model": {unread_model: "batch"}})


# Data shapes of the presets' sources: building networks needs only these.
SOURCE_SPECS = {"mnist": DataSpec((1, 28, 28), True, 10), "fashion-mnist": DataSpec((1, 28, 28), True, 10),
                "stacked-mnist": DataSpec((3, 28, 28), True, None), "toy-ring": DataSpec((2,), False, None),
                "toy-grid": DataSpec((2,), False, None), "emoji-all": DataSpec((3, 64, 64), True, 10),
                "edges2emoji": DataSpec((3, 64, 64), True, 10, (1, 64, 64)),
                "emoji-google2twitter": DataSpec((3, 64, 64), True, 10, (3, 64, 64)),
                "emoji-google-twitter": DataSpec((3, 64, 64), True, 10, (3, 64, 64), True),
                "icons-oxygen": DataSpec((3, 128, 128), True, 8)}


def preset_data_spec(cfg) -> DataSpec:
    """The shape of the preset's data, resized where the preset resizes (stylegan-mnist: 32 px)."""
    spec = SOURCE_SPECS[cfg.data.source]
    r = cfg.data.resolution
    if r and spec.is_image and spec.sample_shape[1:] != (r, r):
        spec = dataclasses.replace(spec, sample_shape=(spec.sample_shape[0], r, r))
    return spec


@pytest.mark.parametrize("preset", sorted(list_presets()))
def test_every_preset_builds_networks_that_run(preset, vq_runs):
    cfg = load_config(preset)
    if cfg.method.name == "vqprior":  # it reads a finished vqvae run: a tiny one on the same data
        cfg = load_config(preset, [f"method.vq_run={vq_runs(cfg.data.source)}"])
    method = build_method(cfg, preset_data_spec(cfg))
    table = model_summary(method)  # runs every trained network on its example inputs
    assert set(table) == set(method.models) and all(table.values())
    assert method.phases() and method.optimizers()
    assert config_from_dict(cfg.to_dict()) == cfg  # the resolved config reloads strictly


@pytest.mark.parametrize("game", sorted(GAMES))
def test_every_game_trains(game, tmp_path):
    cfg = load_config_from_tree({"name": f"game-{game}", "method": {"name": "gan", "loss": game}},
                                GAN_TOY + TINY_TRAIN + ["train.steps=3", "method.r1_gamma=0.1"])
    run_dir = ganforge.train(cfg, tmp_path / game, progress=False, log=quiet)
    row = [r for r in read_metrics(run_dir) if "time_s" in r][-1]
    record = GAMES[game]
    assert all(torch.isfinite(torch.tensor(row[k])) for k in ("loss/D", "loss/G", "r1"))
    assert ("D_x" in row) == record.probabilistic and ("D_out_real" in row) == (not record.probabilistic)
    assert ("D_acc_real" in row) == (record.threshold is not None)


def test_cgan_uses_the_gan_assembly_with_penalties(tmp_path):
    """R1, the gradient penalty and clipping work for the conditional game too."""
    cfg = method_config("cgan", 3, ["method.r1_gamma=1.0", "method.gp_weight=10", "method.clip=0.05",
                                    "method.loss=wgan"])
    run_dir = ganforge.train(cfg, tmp_path / "cgan", progress=False, log=quiet)
    row = [r for r in read_metrics(run_dir) if "time_s" in r][-1]
    assert row["r1"] > 0 and row["gp"] > 0
    D = load_run(run_dir).method.models["D"]
    assert max(float(p.detach().abs().max()) for p in D.parameters()) <= 0.05 + 1e-7


def test_lazy_r1_runs_every_n_iterations(tmp_path):
    cfg = load_config_from_tree({"name": "lazy", "method": {"name": "gan"}},
                                GAN_TOY + TINY_TRAIN + ["train.steps=8", "method.r1_gamma=1", "method.r1_every=4"])
    phases = build(cfg, log=quiet).phases()
    assert [(p.name, p.every) for p in phases] == [("D", 1), ("D_r1", 4), ("G", 1)]
    run_dir = ganforge.train(cfg, tmp_path / "lazy", progress=False, log=quiet)
    rows = [r for r in read_metrics(run_dir) if "time_s" in r]
    assert [r["step"] for r in rows if "r1" in r] == [1, 5]  # iterations 0 and 4


# -- the phase machinery, on a small method registered for these tests ----------------------

@dataclass
class CounterOptions(MethodOptions):
    name: str = _opt("test-counter", "training method")
    lr: float = _opt(0.05, "learning rate")


class CounterMethod(Method):
    """Fits a 2-D point cloud with an affine map of z; a lazy phase every 2 iterations reads the
    fit phase's fakes from the carry and keeps state: a call counter (JSON) and a running mean
    of the fakes (a tensor)."""

    Options = CounterOptions
    model_keys = ("z_dim",)

    def __init__(self, cfg, data):
        super().__init__(cfg, data)
        self.models = {"G": torch.nn.Linear(2, 2)}
        self.models["G"].z_dim = 2
        self.reg_calls = 0
        self.running = torch.zeros(2)

    def fit(self, models, batch, carry):
        fake = models["G"](torch.randn(len(batch), 2, device=batch.x.device))
        loss = (fake.mean(0) - batch.x.mean(0)).square().sum() + (fake.std(0) - batch.x.std(0)).square().sum()
        return {"loss": loss, "fakes": fake.detach()}

    def reg(self, models, batch, carry):
        fakes = carry["fakes"]  # handed on by the fit phase of this iteration
        self.reg_calls += 1
        self.running = 0.9 * self.running + 0.1 * fakes.mean(0).cpu()
        return {"loss": 1e-3 * models["G"].weight.square().sum(), "carried": fakes.mean()}

    def phases(self):
        return [Phase("fit", "G", self.fit, hands_on=("fakes",)),
                Phase("reg", "G", self.reg, every=2, needs_data=False)]

    def optimizers(self):
        return {"G": OptimizerSpec(self.options.lr, (0.9, 0.99), kind="adamw", weight_decay=0.01,
                                   schedule=self.schedule())}

    def example_inputs(self, n=2):
        return {"G": (torch.zeros(n, 2),)}

    def state_dict(self):
        return {"running": self.running}, {"reg_calls": self.reg_calls}

    def load_state_dict(self, tensors, state):
        self.running, self.reg_calls = tensors["running"], state["reg_calls"]


@pytest.fixture
def counter_method():
    METHODS["test-counter"] = CounterMethod
    register_method("test-counter", CounterOptions, CounterMethod.model_keys)
    yield
    METHODS.pop("test-counter")
    METHOD_SPECS.pop("test-counter")


def test_phases_carry_lazy_steps_state_and_schedule(counter_method, tmp_path):
    def cfg(steps):
        return config_from_dict({"name": "counter", "data": {"source": "toy-ring", "toy_points": 1000},
                                 "model": {"z_dim": 2},
                                 "method": {"name": "test-counter", "lr_schedule": "linear", "lr_decay_start": 0.5},
                                 "train": {"steps": steps, "batch_size": 50, "log_every": 1, "sample_every": 0,
                                           "checkpoint_every": 3, "health": False}})

    straight = ganforge.train(cfg(6), tmp_path / "straight", progress=False, log=quiet)
    # Resume the same run from its step-3 checkpoint (the LR schedule depends on train.steps, so
    # the run must be the same length: as after an interruption).
    import shutil

    half = tmp_path / "half"
    shutil.copytree(straight, half)
    shutil.rmtree(ckpt_io.latest_checkpoint(half))
    assert ckpt_io.latest_checkpoint(half).name == "step_000000003"
    resume(half, [], progress=False, log=quiet)
    assert_same_checkpoint(straight, half)
    state = ckpt_io.read_state(ckpt_io.latest_checkpoint(half))
    assert state["method_state"] == {"reg_calls": 3}  # iterations 0, 2 and 4
    rows = [r for r in read_metrics(half) if "time_s" in r]
    assert [r["step"] for r in rows if "carried" in r] == [1, 3, 5]
    # Linear decay from half-way: factor 1 for iterations 0..3, then 2/3 and 1/3.
    assert [round(r["lr/G"] / 0.05, 6) for r in rows] == [1, 1, 1, 1, round(2 / 3, 6), round(1 / 3, 6)]
    # The lazy phase's loss is scaled by its interval: the weight-decay pull of 'reg' is doubled.
    method = build_method(cfg(6), DataSpec((2,), False))
    G = method.models["G"]
    from ganforge.data import Batch

    out = method.reg(method.models, Batch(torch.zeros(4, 2)), {"fakes": torch.zeros(4, 2)})
    (out["loss"] * method.phases()[1].every).backward()
    assert torch.allclose(G.weight.grad, 2 * 2e-3 * G.weight.detach())


def test_method_state_in_the_checkpoint_is_required_by_a_stateless_method(tmp_path):
    """A checkpoint whose method state the method does not know is refused, not ignored."""
    run_dir = ganforge.train(method_config("gan", 2), tmp_path / "gan", progress=False, log=quiet)
    method = load_run(run_dir).method
    with pytest.raises(GanforgeError, match="holds state for method gan"):
        method.load_state_dict({"pool": torch.zeros(1)}, {})


def _gradient_penalising_presets():
    from ganforge.methods.gan import GANMethod
    from ganforge.methods.stylegan import StyleGANMethod

    return sorted(p for p in list_presets()
                  if issubclass(METHODS[load_config(p).method.name], GANMethod | StyleGANMethod))


def test_only_the_gan_family_and_stylegan_differentiate_gradients():
    """create_graph (a loss that differentiates a gradient) appears only in the modules whose
    phases the next test checks."""
    from pathlib import Path

    src = Path(ganforge.__file__).parent
    users = sorted(str(f.relative_to(src)) for f in src.rglob("*.py") if "create_graph=True" in f.read_text())
    assert users == ["losses/gan.py", "methods/stylegan.py"], users


@pytest.mark.parametrize("preset", _gradient_penalising_presets())
def test_phases_declare_their_double_backward(preset, monkeypatch):
    """Phase.double_backward is what train.compile relies on to run a phase uncompiled: it must
    be true exactly for the phases whose loss takes a gradient with create_graph."""
    cfg = load_config(preset)  # covers R1 inside the D phase (toy-ring), lazy R1, the gradient penalty, path length
    spec = preset_data_spec(cfg)
    method = build_method(cfg, spec)
    tensors = {"x": torch.rand(4, *spec.sample_shape) * 2 - 1}
    if spec.n_classes:
        tensors["y"] = torch.arange(4) % spec.n_classes
    batch, carry = ganforge.data.Batch(tensors), {}
    real_grad, seen = torch.autograd.grad, []
    monkeypatch.setattr(torch.autograd, "grad",
                        lambda *a, **k: seen.append(k.get("create_graph", False)) or real_grad(*a, **k))
    for phase in method.phases():
        seen.clear()
        out = phase.loss(method.models, batch, carry)
        carry.update({key: out.pop(key) for key in phase.hands_on})
        assert phase.double_backward == any(seen), (phase.name, seen)
