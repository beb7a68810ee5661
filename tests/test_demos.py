"""Why a classifier can't generate: its confident inputs are not data."""

import json

from ganforge.cli import main
from ganforge.demos import invert_2d_classifier, invert_image_classifier
from ganforge.metrics.features import load_extractor


def test_image_inversion_is_confident_but_not_a_digit():
    fx = load_extractor("mnist-lenet")
    result = invert_image_classifier(fx, target=7, steps=100)
    assert result["start_prob"] < 0.5 < 0.99 < result["final_prob"]
    # Not digit-like: MNIST images are ~80 % background (pixels < -0.8); the inversion is not.
    background = float((result["image"] < -0.8).float().mean())
    assert background < 0.5, background


def test_2d_inversion_leaves_the_data():
    r = invert_2d_classifier(steps=300)
    assert r["classifier_accuracy"] > 0.99
    assert r["final_prob"] > 0.99 and r["final_radius"] > 1.5  # the ring has radius 1, std 0.01
    assert r["distance_from_data"] > 0.5


def test_demo_cli(tmp_path, capsys):
    out = tmp_path / "inv.png"
    assert main(["demo", "classifier-inversion", "--class", "3", "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["class"] == 3 and result["image_final_prob"] > 0.99 and out.is_file()
    assert main(["demo", "classifier-inversion", "--class", "12"]) == 1
    assert "--class must be a digit" in capsys.readouterr().err
