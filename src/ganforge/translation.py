"""Translating with a translation run (pix2pix, CycleGAN): image files in, rows of input | output
(| reconstruction) (| target) or one output file per input out; and scoring a run on its
held-out pictures (:func:`evaluate_translation`).

The generators are fully convolutional, so a run translates any picture whose sides are multiples
of its method's ``side_multiple()`` (the U-Net's: the training side; CycleGAN's ResNet: 2 **
model.g_downsamplings, 4 by default): a 64-px pix2pix model reads 64x64, 128x64, 256x256, ...
(the paper applies its 256-px maps model to 512-px pictures the same way). Other sizes are
refused in one line, or scaled and centre-cropped to the training side with ``resize``. Colour
modes are converted as training converts them (alpha composited onto the run's
``data.background``). A CycleGAN run translates either way (``direction`` a2b or b2a) and
shows the reconstruction, the picture translated back.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.autoencoding import image_files
from ganforge.errors import GanforgeError


def require_translation(run) -> None:
    if not run.info.get("condition_shape"):
        hint = "; it upscales: `ganforge upscale RUN IMAGE... -o OUT`" if hasattr(run.method, "upscale") else ""
        raise GanforgeError(f"{run.run_dir} is not a translation run (method {run.config.method.name}); translate "
                            f"with a pix2pix or cyclegan run{hint}")


def read_input(path: Path, run, resize: bool = False, direction: str = "a2b") -> torch.Tensor:
    """One picture as the translator's input (1, C, H, W) in [-1, 1]: any size whose sides are
    multiples of its stride, or (``resize``) scaled and centre-cropped to the training side."""
    from ganforge.data.folders import parse_background, read_picture

    c, side, _ = run.method.input_shape(direction)
    stride = run.method.side_multiple()
    background = parse_background(run.config.data.background)
    if resize:
        return read_picture(path, c, background, size=side)
    picture = read_picture(path, c, background)  # the same conversions as training, without any scaling
    h, w = picture.shape[-2:]
    if w % stride or h % stride:
        raise GanforgeError(f"{path} is {w}x{h}; this model translates pictures whose sides are multiples of "
                            f"{stride} px (e.g. {side}x{side}, {2 * side}x{side}); pass --resize to scale it "
                            f"to {side}x{side}")
    return picture


def translate_files(run, paths: list[Path], resize: bool = False,
                    direction: str = "a2b") -> list[tuple[Path, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(file, input, output, reconstruction or None) for every image the paths name, one at a time
    (sizes may differ); each (1, C, H, W) in [-1, 1]."""
    require_translation(run)
    out = []
    for f in image_files(paths):
        x = read_input(f, run, resize, direction)
        y = run.method.translate(x, direction=direction)
        out.append((f, x, y, run.method.reconstruct(y, direction=direction)))
    return out


def translate_held_out(run, n: int, seed: int = 0, direction: str = "a2b") -> dict[str, torch.Tensor]:
    """Columns of ``n`` seeded held-out pictures of the run's own task: input, output, and where
    they exist reconstruction and target; each (n, C, H, W) in [-1, 1]."""
    require_translation(run)
    inputs, targets, _ = held_out_pairs(run, direction)
    pick = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[:n]
    x = inputs[pick].float() / 127.5 - 1
    y = run.method.translate(x, direction=direction)
    columns = {"input": x, "output": y}
    back = run.method.reconstruct(y, direction=direction)
    if back is not None:
        columns["reconstruction"] = back
    if targets is not None:
        columns["target"] = targets[pick].float() / 127.5 - 1
    return columns


def rows(*columns: torch.Tensor) -> torch.Tensor:
    """Interleave columns (each (N, C, H, W)) into N rows of input | output (| ...); grey
    columns are repeated to the widest channel count."""
    c = max(col.shape[1] for col in columns)
    columns = [col.expand(-1, c, -1, -1) if col.shape[1] != c else col for col in columns]
    return torch.stack(columns, 1).flatten(0, 1)


def output_names(files: list[Path]) -> list[str]:
    """A PNG name for each input's translation: its stem, made unique when two inputs share one."""
    names, seen = [], {}
    for f in files:
        stem = f.stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png")
    return names


def held_out_pairs(run, direction: str = "a2b", split: str = "test"):
    """(inputs, targets or None, dataset) of a translation run's held-out split, uint8: a paired
    task's (input, target) pairs, read either way for a CycleGAN emoji task (whose test emoji
    exist in both styles); a user's unpaired test folders give each domain once and no targets."""
    import dataclasses

    from ganforge.data import load_dataset

    data = load_dataset(dataclasses.replace(run.config.data, split=split), log=lambda *_: None)
    paired = not data.info.get("unpaired") or bool(data.info.get("paired_test"))
    a, b = data.extra["input"], data.x
    if not paired:  # two collections: each domain once, in its own count
        n = data.info["domains"]
        a, b = a[:n["A"]], b[:n["B"]]
    inputs, targets = (a, b) if direction == "a2b" else (b, a)
    return inputs, (targets if paired else None), data


def evaluate_translation(run, n: int | None = None, ref_split: str = "test", seed: int = 0,
                         extractor: str | None = None, log=print, examples: int = 8) -> dict:
    """A translation run on its held-out pictures, every direction it has (pix2pix: a2b; CycleGAN:
    a2b and b2a). Where the true counterpart is known: L1, PSNR and SSIM of the translation
    against it (metrics/paired.py) and the same for the identity (output = input) where shapes
    allow. For colour targets: the FID of the translations against the real target pictures, and
    (CycleGAN) of the untranslated inputs against them. CycleGAN: the cycle error |G_BA(G_AB(a)) - a|.

    pix2pix's card keeps its metrics at the top level ({"translation", "identity", "fid"}); a
    CycleGAN card has one such dict per direction plus "fid_identity" and "cycle". The card also
    holds ``example_rows``, a tensor (not JSON) of ``examples`` evenly spaced held-out pictures of
    the first direction as input | output (| reconstruction) (| target) rows, and ``examples``
    (their indices), for the caller to save as a picture."""
    import time

    from ganforge.evaluation import extractor_record, fit_to
    from ganforge.metrics import distances as dist
    from ganforge.metrics import paired
    from ganforge.metrics.features import load_extractor

    t0 = time.perf_counter()
    data = run.config.data
    directions = ("a2b", "b2a") if run.config.method.name == "cyclegan" else ("a2b",)
    fx = None
    metrics, example_rows, shown_pairs, sizes = {}, None, [], {}

    def scores(images, targets):
        return {name: paired.summarise(fn(images, targets))
                for name, fn in (("l1", paired.l1), ("psnr", paired.psnr), ("ssim", paired.ssim))}

    for direction in directions:
        inputs_u8, targets_u8, dataset = held_out_pairs(run, direction, ref_split)
        pick = torch.arange(len(inputs_u8))
        if n is not None and n < len(inputs_u8):
            pick = torch.randperm(len(inputs_u8), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        inputs = inputs_u8[pick].float() / 127.5 - 1
        outputs = run.method.translate(inputs, direction=direction)
        back = run.method.reconstruct(outputs, direction=direction)
        targets = None if targets_u8 is None else targets_u8[pick].float() / 127.5 - 1
        m = {}
        if targets is not None:
            m["translation"] = scores(outputs, targets)
            if inputs.shape == targets.shape:
                m["identity"] = scores(inputs, targets)
        if back is not None:
            m["cycle"] = {"l1": paired.summarise(paired.l1(back, inputs))}
        # The real pictures of the target domain: the counterparts, or the other domain's test pictures.
        if targets is not None:
            real = targets
        else:
            other, _, _ = held_out_pairs(run, "b2a" if direction == "a2b" else "a2b", ref_split)
            real = other.float() / 127.5 - 1
        if real.shape[1] == 3:
            fx = fx or load_extractor(extractor or "emoji-convnet", log=log)
            real_feats, fake_feats = fx.run(fit_to(real, fx))[0], fx.run(fit_to(outputs, fx))[0]
            real_stats = dist.gaussian_stats(real_feats)
            m["fid"] = {**dist.fid_with_interval(real_stats, fake_feats, seed=seed), "n_real": len(real),
                        "n_fake": len(fake_feats)}
            if back is not None:  # collapse shows as translations that look alike whatever the input
                from ganforge.health.signals import mean_pairwise_distance

                m["spread"] = float(mean_pairwise_distance(fake_feats) / mean_pairwise_distance(real_feats))
            if back is not None and inputs.shape[1] == 3:  # no translation at all, in the same features
                m["fid_identity"] = {**dist.fid_with_interval(real_stats, fx.run(fit_to(inputs, fx))[0], seed=seed),
                                     "n_real": len(real), "n_fake": len(inputs)}
        sizes[direction] = len(pick)
        if example_rows is None:
            shown = torch.linspace(0, len(pick) - 1, min(examples, len(pick))).round().long()
            columns = [col[shown] for col in (inputs, outputs, back, targets) if col is not None]
            example_rows, shown_pairs, n_columns = rows(*columns), [int(pick[i]) for i in shown], len(columns)
        metrics[direction] = m
    if directions == ("a2b",):
        metrics = metrics["a2b"]
    from ganforge.version import __version__

    protocol = ("G in eval mode on each held-out input; L1 in [-1, 1] units, PSNR (dB) and SSIM (11x11 Gaussian "
                "window, sigma 1.5) in [0, 1] per image against the true counterpart, mean and standard error; "
                "FID of the outputs against the real pictures of the target domain")
    if len(directions) == 2:
        protocol += ("; fid_identity: the untranslated inputs against the same pictures; cycle: mean |G_BA(G_AB(a)) "
                     "- a| (a2b) or |G_AB(G_BA(b)) - b| (b2a); spread: mean pairwise feature distance of the "
                     "translations over that of the real targets (near 0: one output whatever the input)")
    return {"run": str(run.run_dir), "step": run.step, "checkpoint": run.checkpoint.name,
            "examples": {"pairs": shown_pairs, "columns": n_columns}, "example_rows": example_rows,
            "kimg": run.state["images_seen"] / 1000, "extractor": extractor_record(fx) if fx else None,
            "reference": {"dataset": data.source, "split": ref_split, "n": sizes[directions[0]],
                          **({"n_b2a": sizes["b2a"]} if "b2a" in sizes else {})},
            "protocol": protocol, "ganforge_version": __version__, "time_s": round(time.perf_counter() - t0, 2),
            "metrics": metrics}
