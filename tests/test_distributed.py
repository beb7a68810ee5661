"""Data-parallel training with several processes (gloo on CPU, started by `ganforge train --nproc`).

- 2 ranks x batch b reach the weights of 1 process with batch 2b (a deterministic autoencoder:
  the same data order, gradients averaged), to 1e-5;
- a StyleGAN run (lazy R1 and path length through create_graph, w_avg and EMA, augmentation)
  trains on 2 ranks whose weights stay identical (checked at every checkpoint), and resumes with
  1 and then 2 processes;
- the batch iterator's shards are disjoint and together make the one-process batch;
- a refusal on rank 0 stops every rank with one line.
"""

import json
import os

import pytest
import torch
from safetensors.torch import load_file

from ganforge.cli import main
from ganforge.cli.train import torchrun_command
from ganforge.data import BatchIterator
from ganforge.report.plots import read_metrics
from ganforge.train import checkpoint as ckpt_io

AE = """name: ddp-ae
method: {name: ae}
data: {source: digits}
model: {arch: mlp, z_dim: 4, ae_width: 16, ae_depth: 1}
train: {steps: 20, log_every: 5, sample_every: 0, checkpoint_every: 0, health: false}
"""
STYLEGAN = """name: ddp-sg
method: {name: stylegan, r1_every: 2, pl_every: 2, augment: "translation,cutout", ema_halflife_kimg: 1}
data: {source: digits}
model: {z_dim: 8, g_width: 8, d_width: 8, mapping_layers: 1}
train: {steps: 6, batch_size: 16, log_every: 2, sample_every: 0, checkpoint_every: 2, health: false}
"""

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or os.name != "posix",
                                reason="torch.distributed with gloo")


def latest_weights(run_dir):
    return load_file(str(ckpt_io.latest_checkpoint(run_dir) / "models.safetensors"))


def test_two_processes_with_batch_b_match_one_process_with_batch_2b(tmp_path, capsys):
    config = tmp_path / "ae.yaml"
    config.write_text(AE)
    assert main(["train", str(config), "--set", "train.batch_size=64", "--out", str(tmp_path / "one"), "--quiet"]) == 0
    assert main(["train", str(config), "--set", "train.batch_size=32", "--out", str(tmp_path / "two"), "--quiet",
                 "--nproc", "2"]) == 0
    one, two = latest_weights(tmp_path / "one"), latest_weights(tmp_path / "two")
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-5, worst
    rows_one = [r for r in read_metrics(tmp_path / "one") if "loss/AE" in r]
    rows_two = [r for r in read_metrics(tmp_path / "two") if "loss/AE" in r]
    assert [r["kimg"] for r in rows_one] == [r["kimg"] for r in rows_two]  # images counted over both ranks
    assert all(abs(a["loss/AE"] - b["loss/AE"]) < 1e-4 for a, b in zip(rows_one, rows_two, strict=True))
    # The training did something: the weights moved from their start.
    assert rows_one[-1]["loss/AE"] < rows_one[0]["loss/AE"]


def test_stylegan_trains_on_two_ranks_and_resumes_with_another_count(tmp_path, capsys):
    config = tmp_path / "sg.yaml"
    config.write_text(STYLEGAN)
    run = tmp_path / "sg"
    # Every checkpoint (steps 2, 4, 6) checks that both ranks hold the same weights.
    assert main(["train", str(config), "--out", str(run), "--quiet", "--nproc", "2"]) == 0
    assert main(["train", "--resume", str(run), "--set", "train.steps=8", "--quiet"]) == 0
    assert main(["train", "--resume", str(run), "--set", "train.steps=10", "--quiet", "--nproc", "2"]) == 0
    rows = [r for r in read_metrics(run) if "loss/D" in r]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10]
    # 1.5 real batches a step (D every step, R1 every 2nd): 48 pictures a step on 2 ranks of 16, 24 on one.
    assert [r["kimg"] for r in rows] == [0.096, 0.192, 0.288, 0.336, 0.432]
    assert all(torch.isfinite(torch.tensor([r["loss/D"], r["loss/G"]])).all() for r in rows)
    state = ckpt_io.read_state(ckpt_io.latest_checkpoint(run))
    assert state["step"] == 10 and state["images_seen"] == 432
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 10


def test_the_shards_of_a_global_batch_are_disjoint_and_make_the_one_process_batch():
    data = {"x": torch.arange(100).view(100, 1)}
    whole = BatchIterator(data, 20, seed=3)
    shards = [BatchIterator(data, 10, seed=3, shards=2, shard=r) for r in range(2)]
    for _ in range(7):  # across an epoch boundary (5 batches of 20 an epoch)
        a, b = (next(s).x.view(-1) for s in shards)
        assert not set(a.tolist()) & set(b.tolist())
        assert torch.equal(torch.cat([a, b]), next(whole).x.view(-1))


def test_the_torchrun_command_repeats_the_arguments(tmp_path):
    from ganforge.cli import build_parser

    args = build_parser().parse_args(["train", "dcgan-mnist", "--set", "train.steps=5", "--out", "r", "--quiet",
                                      "--json", "--nproc", "3"])
    cmd = torchrun_command(args)
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3", "-m"]
    assert cmd[6:] == ["ganforge", "train", "dcgan-mnist", "--set", "train.steps=5", "--out", "r", "--quiet", "--json"]


def test_a_refusal_on_rank_0_stops_every_rank_with_one_line(tmp_path, capfd):
    config = tmp_path / "ae.yaml"
    config.write_text(AE)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert main(["train", str(config), "--out", str(tmp_path / "taken"), "--quiet", "--nproc", "2"]) != 0
    err = capfd.readouterr().err
    assert err.count("ganforge: error:") == 1 and "already exists" in err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    assert main(["train", str(config), "--nproc", "0"]) == 1
