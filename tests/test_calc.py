"""The hand calculators against the course's worked examples."""

import math

import pytest

from ganforge.calc import conv_volumes, gan_losses
from ganforge.cli import main
from ganforge.errors import GanforgeError


def test_gan_loss_course_example_base10():
    r = gan_losses([0.6, 0.7, 0.8], [0.1, 0.2, 0.3], "10")["values"]
    # The course prints 0.157, 0.099, 0.256 (= 0.157 + 0.099) and 0.740: the exact values truncated.
    assert [math.floor(r[k] * 1000) / 1000 for k in ("L_D_real", "L_D_fake", "L_G_ns")] == [0.157, 0.099, 0.740]
    assert r["L_D"] == pytest.approx(0.25708, abs=1e-5)
    assert r["L_G_mm"] == pytest.approx(-r["L_D_fake"])


def test_gan_loss_other_bases_and_steps():
    e = gan_losses([0.5], [0.5], "e")
    assert e["values"]["L_D"] == pytest.approx(2 * math.log(2))
    two = gan_losses([0.5], [0.5], "2")["values"]
    assert two["L_D"] == pytest.approx(2.0) and two["L_G_ns"] == pytest.approx(1.0)
    assert "log(0.5) [-0.6931]" in e["steps"]["L_D_real"]


@pytest.mark.parametrize("real, fake, message", [
    ([1.0], [0.5], "--real values must lie strictly between 0 and 1"),
    ([0.5], [0.0], "--fake values must lie strictly between 0 and 1"),
    ([], [0.5], "--real needs at least one"),
])
def test_gan_loss_rejects_non_probabilities(real, fake, message):
    with pytest.raises(GanforgeError, match=message):
        gan_losses(real, fake)


def test_conv_alexnet_example():
    rows = conv_volumes("227x227x3", ["conv:96:11:stride=4", "pool:3:stride=2"])
    assert [r["output"] for r in rows] == ["55x55x96", "27x27x96"]
    assert rows[0]["params"] == 11 * 11 * 3 * 96 + 96 == 34944
    assert rows[0]["flops"] == 2 * 11 * 11 * 3 * 96 * 55 * 55
    assert rows[1]["params"] == 0


def test_conv_padding_same_and_fc():
    rows = conv_volumes("32x32x3", ["conv:16:3:pad=1", "pool:2", "fc:10"])
    assert [r["output"] for r in rows] == ["32x32x16", "16x16x16", "1x1x10"]
    assert rows[2]["params"] == 16 * 16 * 16 * 10 + 10


@pytest.mark.parametrize("layers, message", [
    (["conv:8:3", "pool:3:stride=2", "pool:3"], "layer 3 \\('pool:3'\\): kernel 3 does not fit the 1x1 input"),
    (["conv:8"], "layer 1 \\('conv:8'\\) is not conv:FILTERS:KERNEL"),
    (["conv:8:x"], "sizes must be integers"),
])
def test_conv_impossible_shapes_name_the_layer(layers, message):
    with pytest.raises(GanforgeError, match=message):
        conv_volumes("5x5x3", layers)


def test_calc_cli(capsys):
    assert main(["calc", "gan-loss", "--real", "0.6", "0.7", "0.8", "--fake", "0.1", "0.2", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "= 0.1579" in out and "= 0.7406" in out and "log10(1 - 0.1) [-0.0458]" in out
    assert main(["calc", "conv", "--input", "227x227x3", "--layer", "conv:96:11:stride=4",
                 "--layer", "pool:3:stride=2"]) == 0
    out = capsys.readouterr().out
    assert "55x55x96" in out and "27x27x96" in out and "floor((227 + 2*0 - 11) / 4) + 1 = 55" in out
    assert main(["calc", "conv", "--input", "227x227", "--layer", "pool:3"]) == 1
    assert "--input must look like HxWxC" in capsys.readouterr().err


def test_summary_of_preset_and_run(capsys, tmp_path):
    assert main(["summary", "dcgan-mnist"]) == 0
    out = capsys.readouterr().out
    # 100 -> 128x7x7 transposed conv: 100 * 128 * 7 * 7 weights, no bias (batch norm follows).
    assert "G: 759,681 parameters" in out and "128x7x7" in out and "627,200" in out and "1x28x28" in out
    assert main(["summary", "toy-ring", "--json"]) == 0
    import json

    table = json.loads(capsys.readouterr().out)
    assert table["G"][-1]["output"] == [2] and table["D"][-1]["output"] == [1]
