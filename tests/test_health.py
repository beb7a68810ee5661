"""The health monitor: signals with hand-computed values, each rule on synthetic logs, and the
three demonstration presets trained for real (the monitor must flag the two failures with the
right alert and stay silent on the healthy run)."""

import json
import math

import pytest
import torch

import ganforge
from ganforge.config import load_config
from ganforge.health import HealthMonitor, SampleProbe, d_accuracy, probe_output_gradient
from ganforge.health.monitor import Thresholds
from ganforge.losses.gan import GAMES


def quiet(*_):
    pass


# -- signals ----------------------------------------------------------------------------------

def test_d_accuracy_counts_decisions_per_game():
    real, fake = torch.tensor([2.0, -1.0, 0.5, 3.0]), torch.tensor([-2.0, 0.3, -0.1, 0.0])
    acc = d_accuracy(GAMES["ns"].threshold, real, fake)  # logit > 0 means "real"
    assert float(acc["D_acc_real"]) == 0.75 and float(acc["D_acc_fake"]) == 0.75
    acc = d_accuracy(GAMES["lsgan"].threshold, real, fake)  # threshold 0.5 between the targets 0 and 1
    assert float(acc["D_acc_real"]) == 0.5 and float(acc["D_acc_fake"]) == 1.0
    assert d_accuracy(GAMES["wgan"].threshold, real, fake) == {}  # a critic has no decision threshold


def test_output_gradient_probe_is_the_per_sample_gradient_norm():
    # loss = mean_i ||x_i||^2 -> dl_i/dx_i = 2 x_i; rows of norm 5 and 1 -> mean 2 * 3 = 6.
    x = torch.tensor([[3.0, 4.0], [0.0, 1.0]], requires_grad=True)
    probe = probe_output_gradient(x)
    assert float(probe) == 0.0  # filled by backward, not before
    (x ** 2).sum(1).mean().backward()
    assert float(probe) == pytest.approx(6.0)
    assert torch.equal(x.grad, 2 * x.detach() / 2)  # the hook leaves the gradient unchanged


def test_output_gradient_vanishes_with_the_saturating_loss():
    """d/dx log(1 - sigmoid(w.x)) = -sigmoid(w.x) w: tiny when D rejects the fake (w.x << 0);
    the non-saturating -log sigmoid(w.x) has gradient -(1 - sigmoid(w.x)) w, near |w| there."""
    from ganforge.losses.gan import g_loss_mm, g_loss_ns

    w = torch.tensor([3.0, 4.0])
    for loss, expected in ((g_loss_mm, torch.sigmoid(torch.tensor(-8.0)) * 5), (g_loss_ns, (1 - torch.sigmoid(
            torch.tensor(-8.0))) * 5)):
        x = torch.full((4, 2), -0.8, requires_grad=True)  # w.x = -5.6 ... use exact below
        x = torch.tensor([[-0.96, -1.28]] * 4, requires_grad=True)  # w.x = -8
        probe = probe_output_gradient(x)
        loss(x @ w).backward()
        assert float(probe) == pytest.approx(float(expected), rel=1e-4)


class _ConstantG(torch.nn.Module):
    """A fully collapsed generator: the same image whatever z."""

    z_dim = 8

    def __init__(self, image):
        super().__init__()
        self.image = torch.nn.Parameter(image)

    def forward(self, z):
        return self.image.expand(len(z), *self.image.shape)


class _CopyG(torch.nn.Module):
    """A perfect 'generator': returns real images indexed by z."""

    z_dim = 8

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        idx = (z[:, 0].abs() * 1e6).long() % len(self.images)
        return self.images[idx]


def test_sample_probe_separates_collapse_from_real_data():
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset

    ds = load_dataset(DataConfig(source="mnist"), log=quiet)
    z = torch.randn(128, 8, generator=torch.Generator().manual_seed(0))
    probe = SampleProbe(ds, len(z))
    images = ds.x[5000:7000].float() / 127.5 - 1
    healthy = probe(_CopyG(images)(z))
    collapsed = probe(_ConstantG(images[0])(z))
    assert 0.8 < healthy["health/diversity"] < 1.25, healthy
    assert collapsed["health/diversity"] == pytest.approx(0.0, abs=1e-6), collapsed
    if "health/top_class" in collapsed:  # a trained MNIST classifier is in the cache
        assert collapsed["health/top_class"] == 1.0 and collapsed["health/classes_seen"] == 1
        assert healthy["health/classes_seen"] == 10 and healthy["health/top_class"] < 0.25


def test_target_correlation_by_hand():
    from ganforge.health.signals import target_correlation

    target = torch.tensor([0.0, 1.0, 2.0, 3.0]).reshape(1, 1, 2, 2)
    # centred: t = (-1.5, -0.5, 0.5, 1.5), o = (-1.5, 0.5, -0.5, 1.5): sum o t = 4, |o|^2 = |t|^2 = 5
    assert float(target_correlation(torch.tensor([0.0, 2.0, 1.0, 3.0]).reshape(1, 1, 2, 2), target)) == \
        pytest.approx(0.8)
    x = torch.randn(3, 3, 4, 4)
    assert float(target_correlation(0.5 * x - 0.2, x)) == pytest.approx(1.0)      # scale and offset do not matter
    assert float(target_correlation(-x, x)) == pytest.approx(-1.0)                # inverted colours


# -- rules on synthetic logs -------------------------------------------------------------------

def _row(step, **values):
    base = {"step": step, "kimg": step * 0.128, "loss/D": 1.2, "loss/G": 0.9, "D_x": 0.7, "D_G_z": 0.3,
            "G_out_grad": 0.02, "grad_norm/D": 1.0, "grad_norm/G": 1.0, "health/diversity": 0.9}
    base.update(values)
    return base


def _feed(monitor, rows):
    return [a for r in rows for a in monitor.update(r)]


def test_healthy_log_gives_no_alert():
    rows = [_row(10 * i, D_x=0.7 + 0.02 * math.sin(i), D_G_z=0.3 + 0.02 * math.cos(i)) for i in range(1, 60)]
    assert _feed(HealthMonitor(False, 10), rows) == []


def test_vanishing_gradient_alert_is_given_once_with_evidence():
    rows = [_row(10 * i) for i in range(1, 4)]
    rows += [_row(10 * i, D_x=0.999, D_G_z=0.001, G_out_grad=2e-6) for i in range(4, 40)]
    alerts = _feed(HealthMonitor(True, 10), rows)
    assert [a.kind for a in alerts] == ["vanishing-gradient"]
    a = alerts[0]
    assert a.step == 90  # rows 4..9: patience 6
    assert "D(G(z)) has stayed below 0.05 for 60 steps" in a.message
    assert "1.0e-04 of what it was at the start" in a.message
    assert "saturating loss" in a.message and "method.loss=ns" in a.suggestion


def test_discriminator_winning_needs_a_vanished_gradient():
    # The non-saturating loss keeps G's gradient alive although D wins: no vanishing-gradient alert.
    rows = [_row(10 * i) for i in range(1, 4)] + [_row(10 * i, D_G_z=0.01, G_out_grad=0.02) for i in range(4, 30)]
    assert _feed(HealthMonitor(False, 10), rows) == []


def test_alert_fires_again_only_after_clearing():
    m = HealthMonitor(True, 10, Thresholds(patience=2))
    bad = {"D_G_z": 0.001, "G_out_grad": 1e-6}
    rows = ([_row(10)] + [_row(10 * i, **bad) for i in range(2, 6)] + [_row(10 * i) for i in range(6, 9)]
            + [_row(10 * i, **bad) for i in range(9, 12)])
    assert [a.step for a in _feed(m, rows)] == [30, 100]


def test_mode_collapse_from_diversity_class_share_and_modes():
    rows = [_row(10 * i) for i in range(1, 6)] + [_row(10 * i, **{"health/diversity": 0.05}) for i in range(6, 14)]
    alerts = _feed(HealthMonitor(False, 10), rows)
    assert [a.kind for a in alerts] == ["mode-collapse"] and "5% as spread out" in alerts[0].message
    # A dominant class is given as further evidence of low diversity.
    rows = [_row(10 * i, **{"health/top_class": 0.12}) for i in range(1, 6)]
    rows += [_row(10 * i, **{"health/top_class": 0.8, "health/classes_seen": 3, "health/diversity": 0.1})
             for i in range(6, 14)]
    alerts = _feed(HealthMonitor(False, 10), rows)
    assert [a.kind for a in alerts] == ["mode-collapse"] and "one class makes up 80%" in alerts[0].message
    rows = [_row(10 * i, **{"health/modes": 8}) for i in range(1, 6)]
    rows += [_row(10 * i, **{"health/modes": 2}) for i in range(6, 14)]
    alerts = _feed(HealthMonitor(False, 10), rows)
    assert [a.kind for a in alerts] == ["mode-collapse"] and "2 modes, down from 8" in alerts[0].message


def test_low_diversity_of_a_fresh_generator_is_not_collapse():
    # The first rows of every run: G(z) is a grey blur with no spread; warm-up rows are not judged,
    # and a young G that is still spreading out is making progress. These are the diversities
    # of demo-healthy's first rows (log_every 20).
    healthy = [0.01, 0.02, 0.03, 0.09, 0.16, 0.22, 0.29, 0.33, 0.38, 0.41, 0.43, 0.44, 0.45]
    rows = [_row(10 * (i + 1), **{"health/diversity": d}) for i, d in enumerate(healthy)]
    assert _feed(HealthMonitor(False, 10), rows) == []
    # demo-mode-collapse's first rows: the same start, but it stays low.
    collapsed = [0.01, 0.02, 0.02, 0.02, 0.02, 0.02, 0.04, 0.03, 0.03, 0.04, 0.04, 0.04, 0.06]
    rows = [_row(10 * (i + 1), **{"health/diversity": d}) for i, d in enumerate(collapsed)]
    assert [a.step for a in _feed(HealthMonitor(False, 10), rows)] == [100]


def test_oscillation_without_progress():
    rows = [_row(10 * i, D_x=0.5 + 0.3 * (-1) ** i, D_G_z=0.5 - 0.3 * (-1) ** i) for i in range(1, 40)]
    alerts = _feed(HealthMonitor(False, 10), rows)
    assert [a.kind for a in alerts] == ["oscillation"]
    assert "swapped places" in alerts[0].message
    # The same swings while FID keeps falling are progress, not an alert.
    m = HealthMonitor(False, 10)
    mixed = []
    for i in range(1, 40):
        mixed.append(rows[i - 1])
        mixed.append({"step": 10 * i, "kimg": 0, "eval/fid": 100.0 / i})
    assert _feed(m, mixed) == []


def test_divergence_and_non_finite():
    rows = [_row(10 * i) for i in range(1, 5)] + [_row(10 * i, **{"loss/D": 500.0}) for i in range(5, 15)]
    alerts = _feed(HealthMonitor(False, 10), rows)
    assert [a.kind for a in alerts] == ["divergence"] and "loss/D is 500" in alerts[0].message
    alerts = _feed(HealthMonitor(False, 10), [_row(10), _row(20, **{"loss/G": float("nan")})])
    assert [a.kind for a in alerts] == ["non-finite"] and alerts[0].step == 20


def test_inverted_colours_of_a_translator_after_the_warm_up():
    # A fresh translator is uncorrelated or briefly inverted: warm-up rows are not judged.
    rows = [_row(10 * i, target_corr=-0.4 if i < 5 else 0.6) for i in range(1, 30)]
    assert _feed(HealthMonitor(False, 10), rows) == []
    rows = [_row(10 * i, target_corr=0.2 if i < 6 else -0.35) for i in range(1, 20)]
    alerts = _feed(HealthMonitor(False, 10), rows)
    assert [(a.kind, a.step) for a in alerts] == [("inverted-colours", 110)]  # rows 6..11: patience 6
    assert "r = -0.35 for 60 steps" in alerts[0].message and "A/ holds the inputs" in alerts[0].suggestion


def test_replaying_a_log_restores_given_alerts():
    rows = [_row(10 * i) for i in range(1, 4)] + [_row(10 * i, D_G_z=0.001, G_out_grad=1e-6) for i in range(4, 12)]
    first = HealthMonitor(True, 10)
    log = []
    for r in rows:
        log.append(r)
        log += [a.row() for a in first.update(r)]
    again = HealthMonitor(True, 10)
    assert [a for r in log for a in again.update(r, replay=True)] == []
    assert _feed(again, [_row(200, D_G_z=0.001, G_out_grad=1e-6)]) == []  # still active: not repeated
    assert [a.kind for a in again.given] == ["vanishing-gradient"]


# -- the demonstration presets, trained for real ------------------------------------------------

def _train_demo(preset, tmp_path, steps):
    cfg = load_config(preset, [f"train.steps={steps}", "train.sample_every=0"])
    lines = []
    run = ganforge.train(cfg, tmp_path / preset, progress=False, log=lines.append)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return run, rows, lines


def test_demo_healthy_run_gives_no_alert(tmp_path):
    run, rows, lines = _train_demo("demo-healthy", tmp_path, 400)
    assert [r for r in rows if "alert" in r] == []
    assert not any("alert" in line for line in lines)
    last = rows[-1]
    assert 0.4 < last["D_x"] < 0.95 and 0.05 < last["D_G_z"] < 0.6, last
    assert last["health/diversity"] > 0.4, last  # 0.48 at step 400, 0.58 at 800
    assert "no alerts" in (run / "summary.txt").read_text()
    assert (run / "report.html").exists()


def test_demo_vanishing_gradient_is_flagged(tmp_path):
    run, rows, lines = _train_demo("demo-vanishing-gradient", tmp_path, 300)
    alerts = [r for r in rows if "alert" in r]
    assert [a["alert"] for a in alerts] == ["vanishing-gradient"], alerts
    assert sum("alert at step" in line and "vanishing-gradient" in line for line in lines) == 1  # printed once
    train_rows = [r for r in rows if "loss/D" in r]
    assert train_rows[-1]["D_G_z"] < 0.05 and train_rows[-1]["D_acc_fake"] > 0.99
    early = max(r["G_out_grad"] for r in train_rows[:3])
    assert min(r["G_out_grad"] for r in train_rows[3:]) < 0.1 * early
    assert train_rows[-1]["G_out_grad"] < 0.25 * early
    html = (run / "report.html").read_text()
    assert "data-alert='vanishing-gradient'" in html


def test_demo_mode_collapse_is_flagged(tmp_path):
    run, rows, lines = _train_demo("demo-mode-collapse", tmp_path, 300)
    kinds = [r["alert"] for r in rows if "alert" in r]
    assert kinds == ["mode-collapse"], kinds
    train_rows = [r for r in rows if "loss/D" in r]
    assert train_rows[-1]["health/diversity"] < 0.25
    # In pixel space too: real digits are 19.5 apart on average, this run's samples 8.2 (5.2 at
    # step 800), a healthy run's 20.
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset

    real = load_dataset(DataConfig(source="mnist"), log=quiet).x[:64].float() / 127.5 - 1
    fake = ganforge.load_run(run).sample(64, seed=0)

    def spread(x):
        return float(torch.cdist(x.flatten(1), x.flatten(1)).mean())

    assert spread(fake) < 0.5 * spread(real), (spread(fake), spread(real))
