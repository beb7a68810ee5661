"""Canonical feature networks: shipped, pinned, loaded without training, marked on every card;
a local retrain is used only when named and says so; the recipe is deterministic."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.evaluation import extractor_record, image_metrics
from ganforge.metrics import features
from ganforge.metrics.features import CANONICAL_SHA256, load_extractor, load_retrained, train_extractor


def quiet(*_):
    pass


@pytest.mark.parametrize("name", sorted(CANONICAL_SHA256))
def test_canonical_network_ships_small_pinned_and_needs_no_cache(name, tmp_cache):
    """An empty cache: the network loads from the package, without training, at its pinned hash."""
    fx = load_extractor(name)
    weights, card = features._canonical_files(name)
    assert weights.stat().st_size < 3_500_000  # float16: 1.7 MB (LeNet), 3.0 MB (EmojiConvNet)
    assert fx.sha256 == CANONICAL_SHA256[name] and fx.origin == "canonical"
    assert fx.identity == f"canonical {name} {CANONICAL_SHA256[name]}"
    assert fx.card["test_accuracy"] >= fx.spec.min_accuracy
    assert not (tmp_cache / "evaluators").exists()  # nothing was trained or written
    # The features are what a float16-stored network gives: finite, 256-d, probabilities sum to one.
    f, p = fx.run(torch.zeros(3, *fx.spec.input_shape))
    assert f.shape == (3, 256) and p.shape == (3, fx.spec.n_classes) and torch.allclose(p.sum(1), torch.ones(3))
    assert torch.isfinite(f).all()


def test_damaged_shipped_weights_are_refused(tmp_path, monkeypatch):
    weights, card = features._canonical_files("mnist-lenet")
    bad = tmp_path / "mnist-lenet.safetensors"
    tensors = load_file(str(weights))
    tensors["head.1.bias"] = tensors["head.1.bias"] + 1  # a silently different network
    save_file(tensors, str(bad))
    monkeypatch.setattr(features, "_canonical_files", lambda name: (bad, card))
    with pytest.raises(GanforgeError, match="shipped mnist-lenet weights are damaged.*reinstall"):
        load_extractor("mnist-lenet")


def test_missing_local_network_says_how_to_make_it(tmp_cache):
    with pytest.raises(GanforgeError, match=r"mnist-lenet:local does not exist yet; make it with `ganforge "
                                            r"evaluator train mnist`"):
        load_extractor("mnist-lenet:local")


@pytest.fixture
def cache_with_mnist(tmp_path, monkeypatch):
    """A fresh cache holding only the MNIST tensors (no feature networks, no reference features)."""
    from ganforge.data.cache import cache_dir

    real = cache_dir()
    path = tmp_path / "cache"
    path.mkdir()
    for f in real.glob("mnist-*"):
        shutil.copy(f, path / f.name)
    monkeypatch.setenv("GANFORGE_CACHE", str(path))
    return path


def _fake_local_network(cache, shift: float = 0.05):
    """A 'retrained' mnist-lenet in the cache: the canonical one with its weights nudged."""
    weights, card = features._canonical_files("mnist-lenet")
    folder = cache / "evaluators"
    folder.mkdir(parents=True)
    tensors = {k: (v.float() + shift * torch.randn(v.shape, generator=torch.Generator().manual_seed(0))).half()
               for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(folder / "mnist-lenet.safetensors"))
    record = json.loads(card.read_text())
    record["sha256"] = features.sha256_file(folder / "mnist-lenet.safetensors")
    (folder / "mnist-lenet.json").write_text(json.dumps(record))
    return folder


def test_local_network_is_used_only_when_named_and_is_marked(cache_with_mnist, capsys):
    _fake_local_network(cache_with_mnist)
    assert load_extractor("mnist-lenet").origin == "canonical"  # the default never changes
    local = load_extractor("mnist-lenet:local")
    assert local.origin == "retrained locally" and local.sha256 != CANONICAL_SHA256["mnist-lenet"]
    assert extractor_record(local)["identity"].startswith("retrained locally mnist-lenet ")
    # The printed floor names it and warns that its numbers are its own.
    assert main(["evaluator", "floor", "mnist-lenet:local"]) == 0
    out = capsys.readouterr().out
    assert "mnist-lenet (retrained locally, sha256" in out and "not the canonical network" in out


def test_evaluation_card_names_the_canonical_network(tmp_path):
    import ganforge
    from ganforge.config import load_config

    cfg = load_config("dcgan-mnist", ["train.steps=2", "train.batch_size=16", "train.sample_every=0",
                                      "model.g_width=8", "model.d_width=8"])
    run = ganforge.train(cfg, tmp_path / "run", progress=False, log=quiet)
    card = ganforge.evaluate(run, n=500, metrics=["fid"], log=quiet)
    assert card["extractor"]["origin"] == "canonical"
    assert card["extractor"]["identity"] == f"canonical mnist-lenet {CANONICAL_SHA256['mnist-lenet']}"


def test_fid_does_not_depend_on_the_thread_count():
    """The same images give the same FID with 1 and with 2 threads (to the printed 3 decimals)."""
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset

    fx = load_extractor("mnist-lenet")
    x = load_dataset(DataConfig(source="mnist", split="test"), log=quiet).x[:3000].float() / 127.5 - 1
    real, noisy = x[:1500], (x[1500:] + 0.3 * torch.randn(1500, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    saved = torch.get_num_threads()
    values = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rf, rp = fx.run(real)
            ff, fp = fx.run(noisy)
            values.append(image_metrics(rf, rp, ff, fp, ["fid"])["fid"]["value"])
    finally:
        torch.set_num_threads(saved)
    assert values[0] > 1 and round(values[0], 3) == round(values[1], 3), values


@pytest.mark.slow
def test_recipe_reproduces_the_canonical_network(tmp_path):
    """Seed 0 by the recipe (one thread, deterministic algorithms) gives the shipped bytes, whatever
    the caller's thread count (about 80 s)."""
    torch.set_num_threads(2)
    card = train_extractor("mnist-lenet", seed=0, out_dir=tmp_path, progress=False, log=quiet)
    assert card["canonical"] and card["sha256"] == CANONICAL_SHA256["mnist-lenet"]
    assert torch.get_num_threads() == 2  # the recipe restores the caller's setting
    assert load_retrained("mnist-lenet", tmp_path).origin == "retrained locally"
    shutil.rmtree(tmp_path)


@pytest.mark.slow
def test_recipe_reproduces_the_canonical_emoji_network(tmp_path):
    """The colour network too (about 7 minutes: 15 epochs of 13.5k pictures on one thread)."""
    card = train_extractor("emoji-convnet", seed=0, out_dir=tmp_path, progress=False, log=quiet)
    assert card["canonical"] and card["sha256"] == CANONICAL_SHA256["emoji-convnet"]


def test_loading_a_feature_network_never_moves_the_global_rng():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    load_extractor("mnist-lenet")
    load_extractor("fashion-lenet")
    assert torch.equal(before, torch.get_rng_state())


def test_health_probe_and_grids_do_not_change_training(tmp_path):
    """The probe loads a feature network and runs G in eval mode; neither may change the weights
    a run ends with (they once did: building the network drew its throw-away initialisation)."""
    import ganforge
    from ganforge.config import load_config
    from ganforge.train import checkpoint as ckpt_io

    def weights(extra, name):
        cfg = load_config("dcgan-mnist", ["train.steps=6", "train.log_every=2", "train.batch_size=32",
                                          "model.g_width=16", "model.d_width=16", *extra])
        run = ganforge.train(cfg, tmp_path / name, progress=False, log=quiet)
        return load_file(str(ckpt_io.latest_checkpoint(run) / "models.safetensors"))

    on = weights(["train.health=true", "train.sample_every=2"], "on")
    off = weights(["train.health=false", "train.sample_every=0"], "off")
    assert all(torch.equal(on[k], off[k]) for k in on)
