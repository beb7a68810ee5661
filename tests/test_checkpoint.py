"""Checkpoints: exact resume (also after SIGKILL), atomic saves, refusing newer formats."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.api import resume
from ganforge.config import load_config
from ganforge.errors import GanforgeError
from ganforge.train import checkpoint as ckpt_io

SMALL = ["model.g_width=32", "model.d_width=32", "model.g_depth=2", "model.d_depth=2",
         "train.batch_size=64", "train.log_every=10", "train.sample_every=0", "data.toy_points=5000",
         "method.ema_halflife_kimg=2", "method.d_steps=2"]


def quiet(*_):
    pass


def final_weights(run_dir):
    return load_file(str(ckpt_io.latest_checkpoint(run_dir) / "models.safetensors"))


def assert_same_weights(a, b):
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys() and any(k.startswith("G_ema.") for k in wa)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_resume_is_exact(tmp_path):
    straight = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=120", "train.checkpoint_every=60"]),
                              tmp_path / "straight", progress=False, log=quiet)
    half = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=60", "train.checkpoint_every=60"]),
                          tmp_path / "half", progress=False, log=quiet)
    resume(half, ["train.steps=120"], progress=False, log=quiet)
    assert_same_weights(straight, half)
    state = ckpt_io.read_state(ckpt_io.latest_checkpoint(half))
    assert state["step"] == 120 and state["images_seen"] == 120 * 2 * 64  # k = 2 real batches a step
    # metrics.jsonl has each step once, in order.
    steps = [json.loads(line)["step"] for line in (half / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(10, 121, 10))


def test_resume_after_sigkill_is_exact(tmp_path):
    overrides = SMALL + ["train.steps=400", "train.checkpoint_every=50"]
    args = [sys.executable, "-m", "ganforge", "train", "toy-ring", "--quiet"]
    sets = [a for o in overrides for a in ("--set", o)]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(args + sets + ["--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "checkpoints" / "step_000000150").exists():
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [p.name for p in ckpt_io.list_checkpoints(killed)]
    assert done and done[-1] < "step_000000400", f"the run finished before it was killed: {done}"
    subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(killed), "--quiet"],
                   check=True, capture_output=True)
    straight = ganforge.train(load_config("toy-ring", overrides), tmp_path / "straight", progress=False,
                              log=quiet)
    assert_same_weights(straight, killed)


def test_checkpoint_contents_are_not_pickles(tmp_path):
    run = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=20"]), tmp_path / "r", progress=False,
                         log=quiet)
    ckpt = ckpt_io.latest_checkpoint(run)
    assert sorted(p.name for p in ckpt.iterdir()) == ["models.safetensors", "state.json",
                                                      "train_state.safetensors"]
    state = json.loads((ckpt / "state.json").read_text())
    assert state["format_version"] == 1 and state["ganforge_version"] == ganforge.__version__
    assert state["config"]["train"]["steps"] == 20 and state["batches"]["epoch"] >= 0
    assert {"numpy", "python"} <= set(state["rng"])
    tensors = load_file(str(ckpt / "train_state.safetensors"))
    assert "rng.torch_cpu" in tensors and any(k.startswith("opt.D.") for k in tensors)


def test_newer_format_is_refused(tmp_path):
    run = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=10"]), tmp_path / "r", progress=False,
                         log=quiet)
    path = ckpt_io.latest_checkpoint(run) / "state.json"
    state = json.loads(path.read_text())
    state["format_version"] = 99
    path.write_text(json.dumps(state))
    with pytest.raises(GanforgeError, match="format version 99, newer than this ganforge supports"):
        ganforge.load_run(run)


@pytest.mark.parametrize("how", ["OSError", "SafetensorError"])
def test_disk_full_keeps_previous_checkpoint(tmp_path, monkeypatch, how):
    """A full disk, reported by the OS or by safetensors' own writer (which raises its own error)."""
    from safetensors import SafetensorError

    run = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=10"]), tmp_path / "r", progress=False,
                         log=quiet)
    before = {p.name: p.read_bytes() for p in ckpt_io.latest_checkpoint(run).iterdir()}
    real_save = ckpt_io.save_file

    def full_disk(tensors, path, *a, **k):
        if "train_state" in str(path):
            raise (OSError(errno.ENOSPC, "No space left on device") if how == "OSError" else
                   SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                                   "\"No space left on device\" })"))
        return real_save(tensors, path, *a, **k)

    monkeypatch.setattr(ckpt_io, "save_file", full_disk)
    with pytest.raises(GanforgeError, match="disk full while saving checkpoint step 20.*step_000000010 is intact"):
        resume(run, ["train.steps=20"], progress=False, log=quiet)
    ckpts = ckpt_io.list_checkpoints(run)
    assert [p.name for p in ckpts] == ["step_000000010"]
    assert {p.name: p.read_bytes() for p in ckpts[0].iterdir()} == before
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]


def test_run_directory_is_not_overwritten(tmp_path):
    run = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=10"]), tmp_path / "r", progress=False,
                         log=quiet)
    with pytest.raises(GanforgeError, match="already exists; continue it with `ganforge train --resume"):
        ganforge.train(load_config("toy-ring", SMALL + ["train.steps=10"]), run, progress=False, log=quiet)
    with pytest.raises(GanforgeError, match="cannot change when resuming"):
        resume(run, ["model.g_width=64"], progress=False, log=quiet)


def test_periodic_evaluation_leaves_training_unchanged(tmp_path):
    base = SMALL + ["train.steps=40", "train.checkpoint_every=0"]
    plain = ganforge.train(load_config("toy-ring", base), tmp_path / "plain", progress=False, log=quiet)
    evald = ganforge.train(load_config("toy-ring", base + ["train.eval_every_kimg=1", "train.eval_samples=300"]),
                           tmp_path / "eval", progress=False, log=quiet)
    assert_same_weights(plain, evald)
    rows = [json.loads(line) for line in (evald / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/modes" in r]
    assert len(evals) == 40 * 2 * 64 // 1000  # every 1 kimg of 5.12 kimg
    assert all(0 <= r["eval/high_quality"] <= 1 for r in evals)


def test_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    overrides = SMALL + ["train.steps=120", "train.checkpoint_every=60", "train.keep_checkpoints=3"]
    straight = ganforge.train(load_config("toy-ring", overrides), tmp_path / "straight", progress=False, log=quiet)
    damaged = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=100", "train.checkpoint_every=60",
                                                              "train.keep_checkpoints=3"]),
                             tmp_path / "damaged", progress=False, log=quiet)
    newest = ckpt_io.latest_checkpoint(damaged)
    assert newest.name == "step_000000100"
    (newest / "train_state.safetensors").write_bytes(b"\x00" * 10)
    notes = []
    resume(damaged, ["train.steps=120"], progress=False, log=notes.append)
    assert any("step_000000100 is damaged" in n and "trying the checkpoint before it" in n for n in notes)
    assert any("resuming" in n and "step_000000060" in n for n in notes)
    assert_same_weights(straight, damaged)  # from step 60 on, exactly as a straight run


def test_a_second_training_in_the_same_folder_is_refused(tmp_path):
    from ganforge.train.lock import RunLock

    run = tmp_path / "r"
    ganforge.train(load_config("toy-ring", SMALL + ["train.steps=10"]), run, progress=False, log=quiet)
    before = sorted(p.name for p in run.iterdir())
    with RunLock(run):  # as if another process were training here
        with pytest.raises(GanforgeError, match=r"is being trained by process \d+"):
            resume(run, ["train.steps=20"], progress=False, log=quiet)
        with pytest.raises(GanforgeError, match="is being trained by process"):
            ganforge.train(load_config("toy-ring", SMALL + ["train.steps=10"]), run, overwrite=True,
                           progress=False, log=quiet)
    assert sorted(p.name for p in run.iterdir()) == before  # --overwrite removed nothing
    resume(run, ["train.steps=20"], progress=False, log=quiet)  # the lock is released with its holder
    assert ckpt_io.latest_checkpoint(run).name == "step_000000020"


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_saves_a_checkpoint_and_resume_is_exact(tmp_path, sig, code):
    overrides = SMALL + ["train.steps=200", "train.checkpoint_every=1000"]
    sets = [a for o in overrides for a in ("--set", o)]
    stopped = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", "toy-ring", "--quiet", *sets, "--out",
                             str(stopped)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (stopped / "metrics.jsonl").exists() or \
            not (stopped / "metrics.jsonl").read_text().count("\n") >= 2:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    saved = ckpt_io.latest_checkpoint(stopped)
    assert saved is not None and saved.name < "step_000000200", err
    assert f"checkpoint {saved.name} saved" in err and "--resume" in err and "Traceback" not in err
    subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(stopped), "--quiet"],
                   check=True, capture_output=True)
    straight = ganforge.train(load_config("toy-ring", overrides), tmp_path / "straight", progress=False, log=quiet)
    assert_same_weights(straight, stopped)


def test_a_nan_between_log_rows_stops_before_the_checkpoint(tmp_path, monkeypatch):
    from ganforge.train.loop import TrainingDiverged, TrainingLoop

    real_iteration = TrainingLoop.iteration

    def poisoned(self, is_log_step, only=None):
        real_iteration(self, is_log_step, only)
        if self.step == 12:  # step 13 of a run that logs every 50 and checkpoints every 15
            self.sums["loss/D"] += float("nan")

    monkeypatch.setattr(TrainingLoop, "iteration", poisoned)
    run = tmp_path / "r"
    with pytest.raises(TrainingDiverged, match="loss/D became NaN or infinite before step 15"):
        ganforge.train(load_config("toy-ring", SMALL + ["train.steps=100", "train.log_every=50",
                                                        "train.checkpoint_every=15"]), run, progress=False, log=quiet)
    assert ckpt_io.list_checkpoints(run) == []


def test_a_torn_last_metrics_line_does_not_block_resume(tmp_path):
    run = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=20"]), tmp_path / "r", progress=False,
                         log=quiet)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 30, "loss/D": 0.6')  # a write cut off by a kill
    resume(run, ["train.steps=30"], progress=False, log=quiet)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]


def test_time_based_checkpoints(tmp_path, monkeypatch):
    """train.checkpoint_minutes saves between step intervals once that much wall time has passed."""
    import types

    from ganforge.train import loop

    clock = iter(range(0, 10**6, 61))  # each reading of the loop's wall clock: one more minute
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=loop.time.perf_counter,
                                                            monotonic=lambda: next(clock)))
    run = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=12", "train.checkpoint_every=0",
                                                          "train.checkpoint_minutes=1", "train.keep_checkpoints=50"]),
                         tmp_path / "r", progress=False, log=quiet)
    steps = [int(p.name[5:]) for p in ckpt_io.list_checkpoints(run)]
    assert steps[-1] == 12 and len(steps) >= 6


def test_nan_rollback_goes_back_to_the_last_checkpoint_with_halved_learning_rates(tmp_path, monkeypatch):
    from ganforge.train.loop import TrainingLoop

    real_iteration, poisoned_once = TrainingLoop.iteration, []

    def poisoned(self, is_log_step, only=None):
        real_iteration(self, is_log_step, only)
        if self.step == 14 and not poisoned_once:  # once: the rerun from step 10 stays finite
            poisoned_once.append(True)
            self.sums["loss/G"] += float("inf")

    monkeypatch.setattr(TrainingLoop, "iteration", poisoned)
    notes = []
    run = ganforge.train(load_config("toy-ring", SMALL + ["train.steps=30", "train.checkpoint_every=10",
                                                          "train.nan_rollbacks=2", "train.keep_checkpoints=5"]),
                         tmp_path / "r", progress=False, log=notes.append)
    assert any("training diverged: loss/G is inf at step 20" in n and "rolled back to step_000000010 with the "
               "learning rates x0.5" in n and "rollback 1 of 2" in n for n in notes), notes
    state = ckpt_io.read_state(ckpt_io.latest_checkpoint(run))
    assert state["step"] == 30 and state["lr_scale"] == 0.5
    for name in ("G", "D"):  # toy-ring trains both at 5e-4, constant
        assert [g["lr"] for g in state["optimizers"][name]["param_groups"]] == [pytest.approx(2.5e-4)]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]  # the diverged interval's row was dropped with the rollback
