"""Reconstruction at stated bits: the quantiser, the scores and the codebook statistics by hand,
then the cards of a tiny autoencoder and a tiny VQ-VAE run end to end (CLI, files, report)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import ganforge
from ganforge.config import config_from_dict
from ganforge.errors import GanforgeError
from ganforge.reconstruction import code_patches, code_usage, pixel_scores, quantise


def quiet(*_):
    pass


def test_quantise_rounds_to_evenly_spaced_levels_and_clamps():
    z = torch.tensor([[0.0, 10.0], [0.5, 12.0], [1.0, 14.0], [2.0, 20.0], [-1.0, 0.0]])
    low, high = torch.tensor([0.0, 10.0]), torch.tensor([1.0, 14.0])
    q = quantise(z, low, high, bits=2)  # 4 levels: 0, 1/3, 2/3, 1 of the span
    assert q[:, 0].tolist() == pytest.approx([0.0, 2 / 3, 1.0, 1.0, 0.0])  # 0.5 -> 1.5 of 3 -> even: 2
    assert q[:, 1].tolist() == pytest.approx([10.0, 10 + 4 * 2 / 3, 14.0, 14.0, 10.0])  # 12 -> 1.5 -> 2
    assert len(set(quantise(torch.rand(1000, 1), torch.zeros(1), torch.ones(1), 3).flatten().tolist())) <= 8


def test_pixel_scores_by_hand():
    x = torch.zeros(4, 1, 2, 2)  # grey 0.5
    recon = x + 0.2  # 0.1 brighter on the [0, 1] scale: MSE 0.01 everywhere, PSNR 20 dB
    s = pixel_scores(recon, x)
    assert s["mse"] == pytest.approx(0.01)
    assert s["psnr"]["mean"] == pytest.approx(20.0) and s["psnr"]["se"] == pytest.approx(0.0, abs=1e-6)
    varied = torch.tensor([-1.0, 1.0]).repeat(2).view(1, 1, 2, 2)  # pixels 0 and 1: variance 1/3 (unbiased)
    assert pixel_scores(varied + 0.2, varied)["mse_over_var"] == pytest.approx(0.01 / (1 / 3))


def test_code_usage_perplexity_by_hand():
    u = code_usage(torch.tensor([[0, 0], [1, 3]]), 4)  # p = 1/2, 1/4, 0, 1/4
    assert u["counts"] == [2, 1, 0, 1]
    assert u["perplexity"] == pytest.approx(2 ** 1.5)  # exp(H) with H = 1.5 bits
    assert u["used"] == 0.75


def test_code_patches_cut_the_cells_around_a_chosen_place():
    x = torch.arange(64.0).view(1, 1, 8, 8)  # one picture, a 2x2 grid of 4x4 cells
    codes = torch.tensor([[[0, 1], [2, 1]]])
    patches, picks = code_patches(x, codes, [1, 2, 1, 0], n=3, cells=1)
    assert picks == [1, 0, 2]  # by use: code 1 twice, then codes 0 and 2 once; code 3 unused
    assert torch.equal(patches[1], x[0, :, 0:4, 0:4])  # code 0 sits in the top-left cell
    assert torch.equal(patches[0], x[0, :, 4:8, 4:8])  # code 1's middle occurrence: bottom-right
    wide, _ = code_patches(x, codes, [1, 2, 1, 0], n=3, cells=3)
    assert wide.shape == (3, 1, 12, 12)
    assert torch.equal(wide[1, :, 4:8, 4:8], x[0, :, 0:4, 0:4])  # the code is the centre cell
    assert torch.equal(wide[1, :, 0, 4:8], x[0, :, 0, 0:4])  # outside the picture: the edge repeated


def test_an_autoencoder_card_states_its_bits_and_the_price_of_quantising(tmp_path, capsys):
    from ganforge.cli import main

    cfg = config_from_dict({
        "name": "tiny-ae", "data": {"source": "mnist"},
        "model": {"arch": "mlp", "z_dim": 6, "ae_width": 64, "ae_depth": 1},
        "method": {"name": "ae", "lr": 2e-3},
        "train": {"steps": 150, "batch_size": 128, "log_every": 50, "sample_every": 0, "checkpoint_every": 0,
                  "health": False, "precision": "fp32"}})
    run = ganforge.train(cfg, tmp_path / "ae", progress=False, log=quiet)
    assert main(["reconstruct", str(run), "--measure", "-n", "400", "--latent-bits", "1", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["bits_per_image"] == 6 and card["n"] == 400
    assert "6 latents (code), each quantised to 1 bits" in card["code"]
    # one bit per latent loses much of what the float code keeps
    assert card["metrics"]["mse"] > 1.2 * card["float_codes"]["mse"]
    assert card["metrics"]["fid"]["value"] > 0 and card["extractor"]["name"] == "mnist-lenet"
    assert (run / "eval" / "reconstruction_step_000000150_b1_n400.json").is_file()
    assert (run / "eval" / card["examples"]["path"]).is_file()
    assert main(["reconstruct", str(run), "--measure", "-n", "400", "--latent-bits", "0"]) == 0
    out = capsys.readouterr().out
    assert "6 float32 latents (code) = 192 bits per image" in out


def test_a_vqvae_is_evaluated_by_its_reconstructions_and_its_codebook_reaches_the_report(tmp_path, capsys):
    from ganforge.cli import main

    cfg = config_from_dict({
        "name": "tiny-vq", "data": {"source": "digits"},
        "model": {"ae_width": 16, "res_blocks": 1, "codebook_size": 32, "code_dim": 8},
        "method": {"name": "vqvae", "lr": 2e-3},
        "train": {"steps": 120, "batch_size": 64, "log_every": 20, "sample_every": 0, "checkpoint_every": 0,
                  "health": False, "precision": "fp32"}})
    run = ganforge.train(cfg, tmp_path / "vq", progress=False, log=quiet)
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "297 test pictures through 2x2 codes of a 32-entry codebook = 20 bits per image" in out
    card = json.loads((run / "eval" / "reconstruction_step_000000120.json").read_text())
    book = card["codebook"]
    assert sum(book["counts"]) == 297 * 4 and 1 <= book["perplexity"] <= 32
    assert book["used"] == pytest.approx(sum(c > 0 for c in book["counts"]) / 32)
    assert math.isclose(card["metrics"]["perplexity"], book["perplexity"])
    assert (run / "eval" / book["picture"]).is_file()
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    for element in ("id='codebook'", "id='codebook-usage'", "id='chart-codebook'", "bits per image"):
        assert element in page, element
    with pytest.raises(GanforgeError, match="needs an autoencoder run"):
        from ganforge.api import load_run
        from ganforge.autoencoding import arithmetic

        arithmetic(load_run(run), "1", "2", "3")
