"""Image evaluation end to end: the feature network, reference features, cards and errors."""

import json

import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.config import DataConfig, load_config
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.evaluation import image_metrics, reference_features
from ganforge.metrics.features import load_extractor


@pytest.fixture(scope="session")
def mnist_lenet():
    return load_extractor("mnist-lenet")  # the canonical network shipped with ganforge


@pytest.fixture(scope="session")
def tiny_mnist_run(tmp_path_factory):
    cfg = load_config("dcgan-mnist", ["train.steps=20", "train.batch_size=32", "model.g_width=16",
                                      "model.d_width=16", "train.sample_every=0"])
    return ganforge.train(cfg, tmp_path_factory.mktemp("runs") / "tiny", progress=False, log=lambda *_: None)


def test_mnist_lenet_accuracy_recomputed(mnist_lenet):
    test = load_dataset(DataConfig(source="mnist", split="test"))
    _, probs = mnist_lenet.run(test.x.float() / 127.5 - 1)
    accuracy = float((probs.argmax(1) == test.y).float().mean())
    assert accuracy >= 0.99, accuracy
    assert len(mnist_lenet.sha256) == 64


def test_reference_floor_and_extremes(mnist_lenet):
    real_f, real_p = reference_features(mnist_lenet, "mnist", "test")
    train_f, train_p = reference_features(mnist_lenet, "mnist", "train")
    assert real_f.shape == (10000, 256) and train_f.shape == (60000, 256)
    floor = image_metrics(train_f, train_p, real_f, real_p, ["fid", "pr", "classes"])
    assert floor["fid"]["value"] < 5.0
    assert floor["fid"]["ci_low"] <= floor["fid"]["value"] <= floor["fid"]["ci_high"]
    assert floor["pr"]["precision"] > 0.8 and floor["pr"]["recall"] > 0.8
    assert floor["classes"]["classes_seen"] == 10 and floor["classes"]["confident"] > 0.95  # real test digits
    noise_f, noise_p = mnist_lenet.run(torch.rand(2000, 1, 28, 28) * 2 - 1)
    noise = image_metrics(real_f, real_p, noise_f, noise_p, ["fid", "pr", "dc"])
    assert noise["fid"]["value"] > 50 * floor["fid"]["value"]
    assert noise["pr"]["recall"] < 0.05 and noise["dc"]["coverage"] < 0.05
    # Noise maps to small ReLU features near the origin, inside the k-NN balls of faint real digits,
    # so precision (and density) alone cannot flag it; FID, recall and coverage do.


def test_evaluate_cli_writes_a_card(tiny_mnist_run, mnist_lenet, capsys):
    code = main(["evaluate", str(tiny_mnist_run), "-n", "300", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    card = json.loads(out)
    assert card["extractor"] == {"name": "mnist-lenet", "sha256": mnist_lenet.sha256, "origin": "canonical",
                                 "identity": f"canonical mnist-lenet {mnist_lenet.sha256}",
                                 "test_accuracy": mnist_lenet.card["test_accuracy"]}
    assert card["generated"]["n"] == 300 and card["reference"] == {"dataset": "mnist", "split": "test", "n": 10000}
    assert set(card["metrics"]) == {"fid", "kid", "pr", "dc", "score", "classes"}
    assert card["resize"] == "none" and card["step"] == 20
    on_disk = json.loads((tiny_mnist_run / "eval" / "card_step_000000020.json").read_text())
    assert on_disk["metrics"]["fid"]["value"] == card["metrics"]["fid"]["value"]
    code = main(["evaluate", str(tiny_mnist_run), "-n", "300", "--metrics", "fid"])
    text = capsys.readouterr().out
    assert code == 0 and "FID" in text and "95% CI" in text and "KID" not in text


def test_evaluate_errors(tiny_mnist_run, tmp_path, capsys):
    cases = [
        (["evaluate", str(tiny_mnist_run), "-n", "1", "--metrics", "fid"],
         "has 1 samples but this metric needs at least 2"),
        (["evaluate", str(tiny_mnist_run), "-n", "3", "--metrics", "pr"], "needs at least 4"),
        (["evaluate", str(tiny_mnist_run), "--metrics", "fdi"], "unknown metric 'fdi' (did you mean 'fid'?)"),
        (["evaluate", str(tmp_path)], "is not a ganforge run directory"),
    ]
    for argv, message in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 1 and message in err and err.count("\n") == 1, (argv, err)


def test_wrong_image_size_needs_explicit_resize(tmp_path, capsys):
    cfg = load_config("dcgan-mnist", ["data.resolution=32", "train.steps=2", "train.batch_size=16",
                                      "model.g_width=8", "model.d_width=8", "train.sample_every=0"])
    run = ganforge.train(cfg, tmp_path / "r32", progress=False, log=lambda *_: None)
    with pytest.raises(GanforgeError, match="add --resize"):
        ganforge.evaluate(run, n=50, metrics=["fid"])
    card = ganforge.evaluate(run, n=50, metrics=["fid"], resize=True)
    assert card["resize"].startswith("bilinear antialiased to (1, 28, 28)")


def test_inception_extractor_reads_a_weights_file_from_disk(tmp_path, monkeypatch):
    """No standard weights here, so a randomly initialised network saved in both accepted formats
    stands in; this checks the loading path, key names and shapes, not the published numbers."""
    from safetensors.torch import save_file

    from ganforge.models.inception import FIDInceptionV3

    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(GanforgeError, match="GANFORGE_INCEPTION_WEIGHTS=.*downloads nothing"):
        load_extractor("inception")
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    # Same total as Keras' InceptionV3 (23,817,352 trainable + 34,432 BN statistics) once the BN
    # scales it omits are added and its 1000-way fc is replaced by the 1008-way one.
    assert sum(p.numel() for p in net.parameters()) == 23_850_960
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    for name in ("w.pth", "w.safetensors"):
        path = tmp_path / name
        if name.endswith(".pth"):
            torch.save(net.state_dict(), path)
        else:
            save_file(net.state_dict(), str(path))
        monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(path))
        fx = load_extractor("inception")
        feats, probs = fx.run(images)
        assert feats.shape == (2, 2048) and probs.shape == (2, 1008) and torch.isfinite(feats).all()
        with torch.no_grad():
            assert torch.allclose(feats, net.features(images), atol=1e-5)
        assert fx.card["sha256"] and fx.card["path"].endswith(name)
    (tmp_path / "bad.pth").write_bytes(b"not weights")
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(tmp_path / "bad.pth"))
    with pytest.raises(GanforgeError, match="is not a usable FID Inception weights file"):
        load_extractor("inception")


def _tiny_colour_run(tmp_path, name, overrides):
    cfg = load_config("dcgan-emoji", ["train.steps=2", "train.batch_size=16", "model.g_width=8", "model.d_width=8",
                                      "train.sample_every=0", "method.ema_halflife_kimg=0", *overrides])
    return ganforge.train(cfg, tmp_path / name, progress=False, log=lambda *_: None)


def test_emoji_run_at_32px_is_measured_in_domain_through_one_resize(tmp_path):
    """A 32 px emoji run: its samples and the reference pictures (brought to 32 px first) pass the
    same bilinear resize to the colour network's 64 px; the card says so and names no domain issue."""
    run = _tiny_colour_run(tmp_path, "e32", ["data.source=emoji-google", "data.resolution=32"])
    with pytest.raises(GanforgeError, match="add --resize"):
        ganforge.evaluate(run, n=40, metrics=["fid"])
    card = ganforge.evaluate(run, n=40, metrics=["fid"], resize=True, log=lambda *_: None)
    assert card["extractor"]["name"] == "emoji-convnet" and card["extractor"]["origin"] == "canonical"
    assert card["reference"]["dataset"] == "emoji-google" and "domain" not in card["reference"]
    assert card["resize"].startswith("bilinear antialiased to (3, 64, 64) (samples and reference alike)")
    assert card["metrics"]["fid"]["value"] > 50  # two steps of training are far from emoji


def test_a_user_colour_folder_is_measured_against_itself_and_marked_out_of_domain(tmp_path):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(24):  # flat-coloured discs on white: not emoji
        img = torch.full((32, 32, 3), 255, dtype=torch.uint8)
        yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
        disc = (yy - 16) ** 2 + (xx - 16) ** 2 < int(torch.randint(30, 200, (1,), generator=gen))
        img[disc] = torch.randint(0, 255, (3,), generator=gen, dtype=torch.uint8)
        Image.fromarray(img.numpy()).save(folder / f"{i}.png")
    run = _tiny_colour_run(tmp_path, "folder", ["data.source=folder", f"data.path={folder}", "data.resolution=32"])
    notes = []
    card = ganforge.evaluate(run, n=40, metrics=["fid", "pr"], log=notes.append)
    assert card["reference"]["dataset"] == f"folder {folder}" and card["reference"]["n"] == 24
    assert card["reference"]["domain"].startswith("out of domain: emoji-convnet was trained on emoji-all")
    assert any("out of domain" in m for m in notes)
    assert card["resize"].startswith("bilinear antialiased to (3, 64, 64)")
