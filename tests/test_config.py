"""Config loading, overrides and one-line errors."""

import pytest
import torch

from ganforge.config import Config, config_from_dict, describe_config, list_presets, load_config
from ganforge.errors import GanforgeError

REQUIRED_PRESETS = {"toy-ring", "toy-grid", "dcgan-mnist", "dcgan-fashion"}


def test_required_presets_ship_and_load():
    presets = list_presets()
    assert REQUIRED_PRESETS <= set(presets)
    for name, desc in presets.items():
        cfg = load_config(name)
        assert cfg.name == name and desc, name


def test_overrides_are_typed():
    cfg = load_config("toy-ring", ["train.steps=123", "method.lr_d=1e-3", "train.channels_last=true",
                                   "method.loss=mm", "data.toy_stds=[0.1]"])
    assert cfg.train.steps == 123 and isinstance(cfg.train.steps, int)
    assert cfg.method.lr_d == pytest.approx(1e-3)
    assert cfg.train.channels_last is True and cfg.method.loss == "mm"
    assert cfg.data.toy_stds == [0.1]


def test_dict_overrides_and_round_trip():
    cfg = load_config("dcgan-mnist", {"train.batch_size": 32})
    again = config_from_dict(cfg.to_dict())
    assert again == cfg and again.train.batch_size == 32


@pytest.mark.parametrize("override, message", [
    (["train.stepz=5"], "unknown config key 'train.stepz' (did you mean 'steps'?)"),
    (["trian.steps=5"], "unknown config key 'trian' (did you mean 'train'?)"),
    (["train.steps=many"], "train.steps must be an integer, got 'many'"),
    (["train.steps=0"], "train.steps must be >= 1, got 0"),
    (["method.loss=wasserstein"], "method.loss must be one of ns, mm"),
    (["method.lr_g=fast"], "method.lr_g must be a number"),
    (["train.channels_last=maybe"], "train.channels_last must be true or false"),
    (["steps"], "must look like key=value"),
])
def test_bad_values_give_one_line_errors(override, message):
    with pytest.raises(GanforgeError) as info:
        load_config("toy-ring", override)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_preset_suggests_closest():
    with pytest.raises(GanforgeError, match="unknown preset 'dcgan-mnsit' \\(did you mean 'dcgan-mnist'\\?\\)"):
        load_config("dcgan-mnsit")


def test_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("data:\n  source: toy-grid\nmodel:\n  arch: mlp\ntrain:\n  steps: 7\n")
    cfg = load_config(str(path))
    assert cfg.name == "mine" and cfg.train.steps == 7 and cfg.data.source == "toy-grid"
    with pytest.raises(GanforgeError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))


def test_describe_lists_every_key():
    text = describe_config()
    for key in ("train.steps", "method.d_steps", "method.loss", "data.source", "model.arch"):
        assert key in text
    assert Config().method.d_steps == 1


def test_yaml_whose_top_level_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- data\n- model\n")
    with pytest.raises(GanforgeError, match="must hold a mapping of sections"):
        load_config(str(path))


@pytest.mark.parametrize("override, message", [
    ("method.lr_g=nan", "method.lr_g must be a finite number"),
    ("method.lr_d=inf", "method.lr_d must be a finite number"),
    ("train.steps=1e30", "train.steps must be an integer"),
    ("name=a/../../../escaped", "must be a plain name"),
    ("name=..", "must be a plain name"),
])
def test_values_that_would_fail_later_are_refused_up_front(override, message):
    with pytest.raises(GanforgeError, match=message):
        load_config("toy-ring", [override])


def test_a_yaml_float_step_count_is_bounded():
    with pytest.raises(GanforgeError, match="train.steps must be <= 1000000000"):
        config_from_dict({"train": {"steps": 1e30}})


def test_sample_refuses_an_output_that_is_not_an_image(tmp_path):
    from ganforge.report.images import save_grid

    with pytest.raises(GanforgeError, match=r"cannot write an image to '.*x\.txt': name a \.png"):
        save_grid(torch.zeros(2, 1, 8, 8), tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()


def test_a_folder_named_like_a_preset_does_not_hide_the_preset(tmp_path, monkeypatch):
    """`ganforge train stylegan-mnist --out stylegan-mnist`, then the same again: the run folder in
    the working directory must not be read as the config."""
    from ganforge.config import load_config
    from ganforge.errors import GanforgeError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "dcgan-mnist").mkdir()
    assert load_config("dcgan-mnist").method.name == "gan"
    (tmp_path / "my-run").mkdir()
    with pytest.raises(GanforgeError, match="'my-run' is a folder, not a config.*--resume my-run"):
        load_config("my-run")
