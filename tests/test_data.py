"""Data sources, the cache and the batch iterator."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import BatchIterator, fetch, load_dataset
from ganforge.data.cache import cache_dir, load_cached
from ganforge.data.sources import parse_idx, read_numpy_pickle
from ganforge.errors import GanforgeError


def test_idx_parser():
    payload = bytes(range(6))
    data = b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + payload
    arr = parse_idx(data)
    assert arr.shape == (2, 3) and arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError):
        parse_idx(b"\x00\x00\x08\x02" + struct.pack(">II", 2, 4) + payload)


def test_numpy_pickle_reader_refuses_code():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(read_numpy_pickle(pickle.dumps((arr, arr), protocol=4)), (arr, arr))

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_numpy_pickle(pickle.dumps(Evil()))


def test_mnist_is_cached_with_canonical_content():
    ds = load_dataset(DataConfig(source="mnist"))
    assert ds.x.shape == (60000, 1, 28, 28) and ds.x.dtype == torch.uint8
    assert ds.y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the canonical first training labels
    assert torch.bincount(ds.y).tolist()[1] == 6742  # ones in the canonical train split
    test = load_dataset(DataConfig(source="mnist", split="test"))
    assert len(test) == 10000 and test.y[:3].tolist() == [7, 2, 1]


def test_digits_and_corrupt_cache_is_refetched(tmp_cache):
    ds = load_dataset(DataConfig(source="digits"))
    assert ds.x.shape == (1500, 1, 8, 8) and int(ds.x.max()) == 255
    path = cache_dir() / "digits-train.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF  # flip a pixel: checksum mismatch
    path.write_bytes(bytes(raw))
    assert load_cached("digits-train") is None
    again = load_dataset(DataConfig(source="digits"))
    assert torch.equal(again.x, ds.x)


def test_resize_and_channels():
    ds = load_dataset(DataConfig(source="digits", resolution=32, channels=3))
    assert ds.x.shape == (1500, 3, 32, 32)


def test_fetch_with_no_allowed_route(tmp_cache, monkeypatch):
    monkeypatch.setenv("GANFORGE_FETCH_FROM", "canonical")
    monkeypatch.setattr("ganforge.data.sources.MIRRORS", {"mnist": ["http://127.0.0.1:9/"]})
    with pytest.raises(GanforgeError, match="could not fetch mnist.*GANFORGE_FETCH_FROM"):
        fetch("mnist", log=lambda *_: None)
    monkeypatch.setenv("GANFORGE_FETCH_FROM", "carrier-pigeon")
    with pytest.raises(GanforgeError, match="unknown route 'carrier-pigeon'"):
        fetch("mnist")


def _write_images(folder, n=5):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / "grey.jpg")


def test_image_folder(tmp_path):
    _write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png at all")
    messages = []
    ds = load_dataset(DataConfig(source="folder", path=str(tmp_path / "imgs"), resolution=16),
                      log=messages.append)
    assert ds.x.shape == (6, 3, 16, 16) and ds.x.dtype == torch.uint8
    warnings = [m for m in messages if m.startswith("warning")]
    assert len(warnings) == 1 and "skipped 1 unreadable image(s): broken.png" in warnings[0]
    assert any("grey promoted to RGB" in m for m in messages)
    grey = load_dataset(DataConfig(source="folder", path=str(tmp_path / "imgs"), resolution=8, channels=1),
                        log=lambda *_: None)
    assert grey.x.shape == (6, 1, 8, 8)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="holds no PNG/JPEG images"):
        load_dataset(DataConfig(source="folder", path=str(tmp_path / "empty")))
    with pytest.raises(GanforgeError, match="does not exist"):
        load_dataset(DataConfig(source="folder", path=str(tmp_path / "nope")))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"garbage")
    with pytest.raises(GanforgeError, match="no readable image"):
        load_dataset(DataConfig(source="folder", path=str(tmp_path / "bad")), log=lambda *_: None)


def test_unknown_source():
    with pytest.raises(GanforgeError, match="did you mean 'mnist'"):
        load_dataset(DataConfig(source="mnsit"))


def test_batch_iterator_is_seeded_resumable_and_scaled():
    x = torch.arange(10, dtype=torch.uint8).mul(25).view(10, 1, 1, 1)
    it = BatchIterator({"x": x, "y": torch.arange(10)}, batch_size=3, seed=7)
    first = [next(it) for _ in range(5)]  # crosses an epoch boundary (3 batches per epoch)
    assert all(b.x.shape == (3, 1, 1, 1) for b in first)
    assert first[0].x.min() >= -1 and first[0].x.max() <= 1
    # Labels travel with their images: value = label * 25 scaled to [-1, 1].
    for b in first:
        assert torch.allclose(b.x.view(-1), (b.y * 25).float() / 127.5 - 1)
    epoch0 = torch.cat([b.y for b in first[:3]])
    assert len(set(epoch0.tolist())) == 9  # no repeats within an epoch
    # Resume from a saved state reproduces the remaining batches exactly.
    it2 = BatchIterator({"x": x, "y": torch.arange(10)}, batch_size=3, seed=7)
    for _ in range(2):
        next(it2)
    state = it2.state_dict()
    it3 = BatchIterator({"x": x, "y": torch.arange(10)}, batch_size=3, seed=7)
    it3.load_state_dict(state)
    for b in first[2:]:
        assert torch.equal(next(it3).y, b.y)
    other = BatchIterator({"x": x, "y": torch.arange(10)}, batch_size=3, seed=8)
    assert not all(torch.equal(next(other).y, b.y) for b in first[:3])


def test_batch_larger_than_dataset():
    with pytest.raises(GanforgeError, match="larger than the dataset"):
        BatchIterator({"x": torch.zeros(4, 2)}, batch_size=5, seed=0)


def test_gzip_roundtrip_of_idx_helper():
    # The canonical route decompresses .gz IDX files; check the helper chain on a tiny file.
    from ganforge.data.sources import _splits_from_idx

    def idx(arr):
        header = b"\x00\x00\x08" + bytes([arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
        return gzip.compress(header + arr.tobytes())

    imgs, labels = np.zeros((2, 28, 28), np.uint8), np.array([3, 4], np.uint8)
    files = {"train-images-idx3-ubyte.gz": idx(imgs), "train-labels-idx1-ubyte.gz": idx(labels),
             "t10k-images-idx3-ubyte.gz": idx(imgs), "t10k-labels-idx1-ubyte.gz": idx(labels)}
    splits = _splits_from_idx(files)
    assert splits["test"][1].tolist() == [3, 4] and splits["train"][0].shape == (2, 28, 28)


def test_toy_mixture_from_config():
    ds = load_dataset(DataConfig(source="toy-mixture", toy_means=[[0, 0], [3, 1]], toy_stds=[0.1],
                                 toy_points=1000))
    assert ds.x.shape == (1000, 2) and not ds.is_image
    assert ds.info["means"] == [[0.0, 0.0], [3.0, 1.0]] and ds.info["stds"] == pytest.approx([0.1, 0.1])
    near = torch.cdist(ds.x, torch.tensor(ds.info["means"])).min(1).values
    assert float(near.max()) < 0.6  # 6 std
    with pytest.raises(GanforgeError, match="toy_means"):
        load_dataset(DataConfig(source="toy-mixture"))


def test_stacked_mnist_channels_are_mnist_digits_and_label_encodes_them():
    stacked = load_dataset(DataConfig(source="stacked-mnist", split="test"))
    mnist = load_dataset(DataConfig(source="mnist", split="test"))
    assert stacked.x.shape == (26000, 3, 28, 28) and stacked.x.dtype == torch.uint8
    assert int(stacked.y.min()) >= 0 and int(stacked.y.max()) <= 999
    assert len(torch.unique(stacked.y)) > 990  # 26k draws cover nearly all 1000 modes
    # Each channel is an MNIST test image whose digit is the matching decimal place of the label.
    for i in range(3):
        for c, place in enumerate((100, 10, 1)):
            match = (mnist.x[:, 0] == stacked.x[i, c]).flatten(1).all(1).nonzero()
            assert len(match) >= 1
            assert int(mnist.y[match[0, 0]]) == int(stacked.y[i]) // place % 10
    again = load_dataset(DataConfig(source="stacked-mnist", split="test"))
    assert torch.equal(again.x[:100], stacked.x[:100])  # seeded


def test_image_folder_keeps_a_common_square_size(tmp_path):
    """resolution 0: a folder of same-size square images keeps that size; mixed sizes become 64."""
    same = tmp_path / "same"
    same.mkdir()
    for i in range(3):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(same / f"{i}.png")
    ds = load_dataset(DataConfig(source="folder", path=str(same)), log=lambda *_: None)
    assert ds.sample_shape == (1, 28, 28)
    assert [int(v) for v in ds.x[:, 0, 0, 0]] == [0, 40, 80]  # untouched pixels
    _write_images(tmp_path / "mixed")  # 40x30 colour and 20x20 grey
    assert load_dataset(DataConfig(source="folder", path=str(tmp_path / "mixed")),
                        log=lambda *_: None).sample_shape == (3, 64, 64)


def test_image_folder_converts_every_kind_of_png_and_jpeg_and_says_so_once(tmp_path):
    """RGBA, palette, 16-bit grey, CMYK and mixed sizes are converted; each kind is said once."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:16, :, 3] = 255                           # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(folder / "a_rgba.png")
    Image.fromarray(rgba, "RGBA").save(folder / "b_rgba.png")
    Image.fromarray(np.full((32, 32, 3), 40, np.uint8)).convert("P").save(folder / "c_palette.png")
    Image.fromarray(np.full((32, 32), 65535 // 2, np.uint16)).save(folder / "d_16bit.png")
    Image.fromarray(np.full((32, 32, 4), 0, np.uint8), "CMYK").save(folder / "e_cmyk.jpg")
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(folder / "f_wide.png")
    messages = []
    ds = load_dataset(DataConfig(source="folder", path=str(folder), resolution=32, background="black"),
                      log=messages.append)
    assert ds.x.shape == (6, 3, 32, 32)
    a = ds.x[0]
    assert a[:, :8].tolist() == torch.tensor([255, 0, 0]).view(3, 1, 1).expand(3, 8, 32).tolist()
    assert int(a[:, 20:].max()) == 0                # transparency onto the black background
    assert abs(int(ds.x[3].float().mean()) - 127) <= 1  # 16-bit half scale -> 8-bit half scale
    assert int(ds.x[4].min()) == 255                # CMYK (0, 0, 0, 0) is white
    assert ds.info["conversions"]["transparency composited onto the background"] == 2
    said = [m for m in messages if m.startswith("note")]
    for what in ("transparency", "palette", "16-bit", "CMYK", "non-square"):
        assert sum(what in m for m in said) == 1, (what, said)
    assert "data.background=black" in next(m for m in said if "transparency" in m)


def test_image_folder_refuses_a_tiny_picture_naming_the_file(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "fine.png")
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(folder / "speck.png")
    with pytest.raises(GanforgeError, match=r"speck.png is only 6x6.*set data.resolution to 24 or less"):
        load_dataset(DataConfig(source="folder", path=str(folder), resolution=64), log=lambda *_: None)
    with pytest.raises(GanforgeError, match="data.background 'teal-ish' is not a colour"):
        load_dataset(DataConfig(source="folder", path=str(folder), resolution=16, background="teal-ish"))


def test_a_large_folder_says_what_it_reads_before_reading(tmp_path):
    from ganforge.data.folders import load_image_folder

    folder = tmp_path / "many"
    folder.mkdir()
    tile = Image.fromarray(np.full((8, 8), 200, np.uint8))
    for i in range(1000):
        tile.save(folder / f"{i:04d}.png")
    notes = []
    data = load_image_folder(str(folder), 8, 1, log=notes.append)
    assert len(data) == 1000 and notes[0].startswith(f"reading 1,000 pictures from {folder} at 8x8")


# ---------------------------------------------------------------------------------------------
# Colour sets: the emoji of five vendors (fetched by `make test`) and their shared split.

def test_emoji_split_is_shared_by_every_vendor_and_pairs_by_code():
    """No vendor trains on an emoji that any vendor holds out, and a code names the same emoji
    (same labels) in every vendor's drawing."""
    from ganforge.data.colour_sets import EMOJI_VENDORS

    test_codes, train_codes, labels = set(), set(), {}
    for vendor in EMOJI_VENDORS:
        for split in ("train", "test"):
            ds = load_dataset(DataConfig(source=f"emoji-{vendor}", split=split), log=lambda *_: None)
            assert ds.x.shape[1:] == (3, 64, 64) and ds.x.dtype == torch.uint8
            assert ds.n_classes == 10 and ds.info["background"] == "white"
            codes = ds.extra["code"].tolist()
            (test_codes if split == "test" else train_codes).update(codes)
            for c, y, sub in zip(codes, ds.y.tolist(), ds.extra["subcategory"].tolist(), strict=True):
                assert labels.setdefault(c, (y, sub)) == (y, sub)
    assert not test_codes & train_codes
    assert 0.10 < len(test_codes) / len(test_codes | train_codes) < 0.20   # about TEST_PERCENT
    everyone = load_dataset(DataConfig(source="emoji-all", split="test"), log=lambda *_: None)
    assert set(everyone.info["vendors"]) == {f"emoji-{v}" for v in EMOJI_VENDORS}
    assert len(everyone) == sum(everyone.info["vendors"].values())


def test_emoji_background_and_subcategory_labels():
    white = load_dataset(DataConfig(source="emoji-google", split="test"), log=lambda *_: None)
    black = load_dataset(DataConfig(source="emoji-google", split="test", background="#000000",
                                    label="subcategory", resolution=32), log=lambda *_: None)
    assert black.x.shape[1:] == (3, 32, 32) and black.n_classes == len(black.info["class_names"]) > 50
    assert int(white.x[:, :, 0, 0].float().mean()) > 250 and int(black.x[:, :, 0, 0].float().mean()) < 5
    assert torch.equal(black.extra["code"], white.extra["code"])


def test_export_emoji_then_train_on_the_folder_in_one_command(tmp_path, capsys):
    """`data export` writes the pictures a user would bring; `train --data` trains on them."""
    import json

    from ganforge.cli import main

    folder = tmp_path / "emoji"
    assert main(["data", "export", "emoji-google", str(folder), "--split", "test", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["images"] == len(list(folder.rglob("*.png"))) > 500 and written["classes"] == 10
    assert (folder / "smileys-and-emotion").is_dir()
    assert main(["data", "export", "emoji-google", str(folder)]) == 1  # never into a folder with files
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", "dcgan-emoji", "--data", str(folder), "--out", str(run), "--quiet", "--json",
                 "--set", "train.steps=2", "--set", "train.batch_size=8", "--set", "model.g_width=8",
                 "--set", "model.d_width=8", "--set", "data.resolution=32"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["sample_shape"] == [3, 32, 32]


def test_data_info_names_the_licence_before_and_after_fetching(tmp_cache, capsys):
    from ganforge.cli import main

    assert main(["data", "info", "emoji-apple"]) == 0
    out = capsys.readouterr().out
    assert "emoji-apple: not cached yet" in out and "not licensed for commercial use" in out
    assert main(["data", "info", "emoji-al"]) == 1
    assert "unknown dataset 'emoji-al' (did you mean 'emoji-all'?)" in capsys.readouterr().err
    assert main(["data", "info", "fashion-mnist", "--json"]) == 0
    assert "MIT" in capsys.readouterr().out


def test_without_npm_the_tarball_route_needs_a_registry_and_says_so(tmp_cache, monkeypatch):
    """No npm on the PATH: the tarball is downloaded with Python from npm's configured registry;
    with none configured, one line names the fix and nothing is cached."""
    import shutil as real_shutil

    from ganforge.data import fetching

    monkeypatch.setattr(fetching.shutil, "which", lambda name: None if name == "npm" else real_shutil.which(name))
    monkeypatch.delenv("npm_config_registry", raising=False)
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    with pytest.raises(GanforgeError, match="could not fetch emoji-google .*npm is not installed and "
                                            "npm_config_registry is not set"):
        load_dataset(DataConfig(source="emoji-google"), log=lambda *_: None)
    assert not list(tmp_cache.glob("emoji-google*"))


def test_icons_are_drawn_at_each_size_and_split_by_name():
    """icons-oxygen: data.resolution picks the drawings made at that size (or the next larger,
    downscaled); the same icon keeps its code at every size, and the split is by icon."""
    big = load_dataset(DataConfig(source="icons-oxygen", resolution=128), log=lambda *_: None)
    small = load_dataset(DataConfig(source="icons-oxygen", resolution=32), log=lambda *_: None)
    held = load_dataset(DataConfig(source="icons-oxygen", resolution=128, split="test"), log=lambda *_: None)
    assert big.x.shape[1:] == (3, 128, 128) and small.x.shape[1:] == (3, 32, 32)
    assert big.info["native_resolution"] == 128 and big.n_classes == 8
    assert len(set(big.extra["code"].tolist()) & set(small.extra["code"].tolist())) > 300  # drawn at both sizes
    assert not set(big.extra["code"].tolist()) & set(held.extra["code"].tolist())
    mid = load_dataset(DataConfig(source="icons-oxygen", resolution=100), log=lambda *_: None)
    assert mid.x.shape[1:] == (3, 100, 100) and mid.info["native_resolution"] == 128  # downscaled from 128


def test_kmeans_finds_separated_groups_and_is_seeded():
    """Three tight groups of 2-D points, k = 3: one cluster per group, centres at the group means,
    the same labels for the same seed; fewer samples than k is refused."""
    from ganforge.data.clusters import kmeans

    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    group = torch.arange(300) % 3
    x = means[group] + 0.1 * torch.randn(300, 2, generator=g)
    centres, labels = kmeans(x, 3, seed=4)
    for k in range(3):  # every group lands in exactly one cluster, whose centre is the group's mean
        assert labels[group == k].unique().numel() == 1
        assert torch.allclose(centres[labels[group == k][0]], x[group == k].mean(0), atol=1e-5)
    assert labels.unique().numel() == 3
    assert torch.equal(kmeans(x, 3, seed=4)[1], labels)
    with pytest.raises(ValueError, match="needs at least 5 samples"):
        kmeans(x[:4], 5)


def test_cluster_features_average_big_pictures_down():
    from ganforge.data.clusters import MAX_SIDE, cluster_features

    pictures = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    pictures[1, :, :32] = 255  # top half white
    feats = cluster_features(pictures)
    assert feats.shape == (2, 3 * MAX_SIDE * MAX_SIDE)
    assert feats[0].max() == 0 and feats[1].mean() == pytest.approx(0.5)
    assert cluster_features(torch.zeros(5, 1, 28, 28, dtype=torch.uint8)).shape == (5, 784)  # MNIST as it is
    points = torch.randn(7, 2)
    assert torch.equal(cluster_features(points), points)
