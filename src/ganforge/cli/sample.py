"""Drawing from a run: `sample`, `interpolate`, latent directions (`directions`, `edit`), `translate`, `upscale`."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.cli.common import _err, run_command
from ganforge.errors import GanforgeError


def add_parsers(sub) -> None:
    s = run_command(sub, "sample", "draw samples from a run's latest checkpoint (or from an ONNX export: --onnx)",
                    cmd_sample, output="samples.png", run_optional=True)
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nrow", type=int, default=None, help="images per row")
    s.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    s.add_argument("--truncation", type=float, default=None,
                   help="redraw latent coordinates beyond +-T (truncation trick; smaller = less varied)")
    s.add_argument("--class", dest="class_", type=int, default=None,
                   help="conditional runs: draw this class (default: one row per class)")
    s.add_argument("--psi", type=float, default=None,
                   help="StyleGAN: truncation in W, w_avg + psi (w - w_avg) (0.7 is usual; 1: none)")
    s.add_argument("--psi-sweep", default=None, metavar="P1,P2,...",
                   help="StyleGAN: one row per seed (n rows from --seed on), one column per psi")
    s.add_argument("--onnx", default=None, metavar="FOLDER",
                   help="draw from an export (`ganforge export RUN -o FOLDER`) with onnxruntime, without torch in "
                   "the loop (NumPy draws the noise: a seed gives other pictures than from the run)")

    it = run_command(sub, "interpolate", "a strip of images between the latents of two seeds",
                     cmd_interpolate, output="interpolation.png")
    it.add_argument("--from", dest="from_seed", type=int, default=None, help="seed of the first latent")
    it.add_argument("--to", dest="to_seed", type=int, default=None, help="seed of the last latent")
    it.add_argument("--from-image", default=None, help="autoencoders: a test image ('test:3') or an image file")
    it.add_argument("--to-image", default=None, help="autoencoders: a test image ('test:7') or an image file")
    it.add_argument("--steps", type=int, default=10)
    it.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    it.add_argument("--space", choices=["z", "w"], default="z",
                    help="StyleGAN: interpolate in the intermediate latent space W instead of Z (default z)")
    it.add_argument("--class", dest="class_", type=int, default=None, help="conditional runs: the class")

    di = run_command(sub, "directions", "find a latent direction for a classifier class (linear probe)", cmd_directions)
    di.add_argument("--attribute", type=int, required=True, help="evaluator class, e.g. 7 for 'looks like a 7'")
    di.add_argument("--name", default=None, help="name to save it under (default class-K)")
    di.add_argument("-n", type=int, default=5000, help="samples for the probe")
    di.add_argument("--seed", type=int, default=0)
    di.add_argument("--space", choices=["z", "w"], default="z",
                    help="StyleGAN: find the direction in W, the intermediate space, instead of Z (default z)")

    ed = run_command(sub, "edit", "move one latent along a saved direction; report entanglement",
                     cmd_edit, output="edit.png")
    ed.add_argument("--seed", type=int, default=0)
    ed.add_argument("--direction", required=True)
    ed.add_argument("--amount", default="-3:3:7", help="START:STOP:COUNT (default -3:3:7)")

    tr = run_command(sub, "translate", "translate images with a pix2pix or cyclegan run: rows of input | output "
                     "(| reconstruction) (| target) in one .png, or with -o FOLDER one output file per input",
                     cmd_translate, output="translations.png")
    tr.add_argument("inputs", nargs="*", help="image files or folders (default: --test held-out pairs)")
    tr.add_argument("--test", type=int, default=None, metavar="N",
                    help="translate N held-out pairs of the run's task and show their targets too")
    tr.add_argument("--seed", type=int, default=0, help="which held-out pairs --test picks")
    tr.add_argument("--direction", choices=["a2b", "b2a"], default="a2b",
                    help="cyclegan: translate domain A to B (default) or B to A")
    tr.add_argument("--resize", action="store_true",
                    help="scale and centre-crop pictures whose sides are not multiples of the training side")

    up = run_command(sub, "upscale", "upscale images of any size with a srresnet or srgan run (tiled, seamless); "
                     "--compare shows nearest | bicubic | model | original", cmd_upscale, output="upscaled")
    up.add_argument("inputs", nargs="+", help="image files or folders")
    up.add_argument("--scale", type=int, default=None,
                    help="the factor (default the run's; a smaller one resizes the model's output down)")
    up.add_argument("--compare", action="store_true",
                    help="take each input as the original: downscale it, then show nearest | bicubic | model | "
                    "original side by side")
    up.add_argument("--tile", type=int, default=96, help="input pixels per tile side (bounds memory; default 96)")
    up.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])


def cmd_sample(args) -> int:
    from ganforge import api

    if args.onnx:
        return _sample_onnx(args)
    if args.run_dir is None:
        raise GanforgeError("name a run directory (ganforge sample RUN_DIR), or an export folder with --onnx FOLDER")
    run = api.load_run(args.run_dir, device=args.device, step=args.step)
    stylegan = run.config.method.name == "stylegan"
    if (args.psi is not None or args.psi_sweep) and not stylegan:
        raise GanforgeError("--psi and --psi-sweep truncate in W, which only a StyleGAN run has; for other runs use "
                            "--truncation")
    if stylegan and args.truncation is not None:
        raise GanforgeError("a StyleGAN run truncates in W: pass --psi 0.7 instead of --truncation")
    if args.psi_sweep:
        return _psi_sweep(run, args)
    if args.psi is not None:
        args.truncation = args.psi
    nrow = args.nrow
    if run.n_classes and args.class_ is None and run.info["is_image"] and args.truncation is None:
        # A conditional run without --class: one row per class, the same z down each column.
        samples, nrow = run.grid(args.n, args.seed)
    else:
        samples = run.sample(args.n, seed=args.seed, label=args.class_, truncation=args.truncation)
    out = Path(args.output)
    if run.info["is_image"]:
        from ganforge.report.images import save_grid

        save_grid(samples, out, nrow=nrow)
    else:
        from ganforge.data import load_dataset
        from ganforge.report.plots import plot_2d

        real = load_dataset(run.config.data, log=lambda *_: None).x[: len(samples)]
        critic = run.method.critic()
        plot_2d(real, samples, critic[0] if critic else None, out, title=f"{run.config.name}, step {run.step}",
                probabilistic=critic[1] if critic else True)
    result = {"path": str(out), "n": len(samples), "seed": args.seed, "step": run.step,
              "checkpoint": run.checkpoint.name, "class": args.class_}
    print(json.dumps(result) if args.json else
          f"wrote {len(samples)} samples (seed {args.seed}, step {run.step}) to {out}")
    return 0


def _sample_onnx(args) -> int:
    from ganforge.exported import sample_onnx
    from ganforge.report.images import save_grid

    if args.run_dir is not None:
        raise GanforgeError(f"--onnx reads an export folder, not a run: drop {args.run_dir} (or drop --onnx)")
    if args.step is not None or args.truncation is not None or args.psi_sweep:
        raise GanforgeError("--step, --truncation and --psi-sweep read a run; with --onnx use -n, --seed, --class "
                            "and --psi")
    pictures = sample_onnx(args.onnx, args.n, args.seed, args.class_, args.psi)
    save_grid(pictures, args.output, nrow=args.nrow)
    result = {"path": str(args.output), "n": len(pictures), "seed": args.seed, "onnx": args.onnx, "class": args.class_}
    print(json.dumps(result) if args.json else
          f"wrote {len(pictures)} samples (seed {args.seed}, onnxruntime) from {args.onnx} to {args.output}")
    return 0


def _psi_sweep(run, args) -> int:
    from ganforge.report.images import save_grid
    from ganforge.styles import psi_sweep

    try:
        psis = [float(v) for v in args.psi_sweep.split(",") if v.strip()]
    except ValueError:
        raise GanforgeError(f"--psi-sweep {args.psi_sweep!r}: give psi values as 1,0.7,0.5,0") from None
    if not psis or not all(0 <= p <= 2 for p in psis):
        raise GanforgeError(f"--psi-sweep {args.psi_sweep!r}: psi values between 0 and 2, e.g. 1,0.7,0.5,0")
    n = min(args.n, 16)
    seeds = list(range(args.seed, args.seed + n))
    save_grid(psi_sweep(run, seeds, psis), args.output, nrow=len(psis))
    result = {"path": args.output, "seeds": seeds, "psi": psis, "step": run.step}
    print(json.dumps(result) if args.json else
          f"wrote {n} seeds (rows) x psi {', '.join(f'{p:g}' for p in psis)} (columns) to {args.output}")
    return 0


def cmd_interpolate(args) -> int:
    from ganforge import api
    from ganforge.latent import interpolate
    from ganforge.report.images import save_grid

    run = api.load_run(args.run_dir, step=args.step)
    if not run.info["is_image"]:
        raise GanforgeError("interpolate draws image strips; this run generates 2-D points")
    if args.from_image is not None or args.to_image is not None:  # between the codes of two images
        from ganforge.autoencoding import interpolate_images

        if args.from_image is None or args.to_image is None:
            raise GanforgeError("give both --from-image and --to-image (test images as 'test:3', or image files)")
        first, second = (_image_arg(run, v) for v in (args.from_image, args.to_image))
        images = interpolate_images(run, first, second, args.steps)
        ends = (args.from_image, args.to_image)
    else:
        if args.from_seed is None or args.to_seed is None:
            raise GanforgeError("give --from and --to seeds (or, for an autoencoder, --from-image and --to-image)")
        if not run.method.has_prior:
            raise GanforgeError("an autoencoder (method ae) has no prior to draw seeds from; interpolate between two "
                                "images with --from-image and --to-image")
        if args.space == "w":
            from ganforge.styles import interpolate_w

            if args.slerp:
                raise GanforgeError("--slerp is for Gaussian z; in W the path is a straight line (drop --slerp)")
            images = interpolate_w(run, args.from_seed, args.to_seed, args.steps)
        else:
            images = interpolate(run, args.from_seed, args.to_seed, args.steps, args.slerp, args.class_)
        ends = (args.from_seed, args.to_seed)
    save_grid(images, args.output, nrow=len(images))
    result = {"path": args.output, "from": ends[0], "to": ends[1], "steps": args.steps,
              "path_kind": "slerp" if args.slerp else "linear", "space": args.space}
    print(json.dumps(result) if args.json else
          f"wrote a {args.steps}-image {result['path_kind']} strip to {args.output}")
    return 0


def _image_arg(run, value: str):
    """A test-split image ('test:17') or an image file, as one image in [-1, 1]. A bare number is
    refused: in `arithmetic` it names a class, so here the index must say that it is one."""
    from ganforge.autoencoding import load_split, read_images

    index = value[len("test:"):] if value.startswith("test:") else None
    if value.isdigit() or value.startswith("class:"):
        raise GanforgeError(f"--from-image/--to-image take one picture: 'test:{value.split(':')[-1]}' for test image "
                            f"#{value.split(':')[-1]}, or an image file (a bare number names a class in `arithmetic`)")
    if index is not None:
        x, _ = load_split(run, "test")
        if not index.isdigit() or int(index) >= len(x):
            raise GanforgeError(f"test image '{index}' does not exist; the test split has images 0 to {len(x) - 1}")
        return x[int(index)]
    return read_images([Path(value)], run)[0]


def cmd_directions(args) -> int:
    from ganforge import api
    from ganforge.latent import find_direction

    run = api.load_run(args.run_dir, step=args.step)
    record = find_direction(run, args.attribute, n=args.n, seed=args.seed, name=args.name, log=_err,
                            space=args.space)
    record.pop("vector")
    if args.json:
        print(json.dumps(record))
    else:
        print(f"direction '{record['name']}': linear probe of {record['score']} with k = {args.attribute} on "
              f"{record['n']} samples, R^2 {record['r2']:.3f}; saved to {record['path']}")
    return 0


def cmd_edit(args) -> int:
    from ganforge import api
    from ganforge.latent import edit, parse_amounts
    from ganforge.report.images import save_grid

    run = api.load_run(args.run_dir, step=args.step)
    result = edit(run, args.seed, args.direction, parse_amounts(args.amount), log=_err)
    images = result.pop("images")
    save_grid(images, args.output, nrow=len(images))
    result["path"] = args.output
    if args.json:
        print(json.dumps(result))
        return 0
    k = result["attribute"]
    probs = " ".join(f"{p:.2f}" for p in result["strip_target_prob"])
    print(f"wrote {len(images)} edits of seed {args.seed} along '{args.direction}' to {args.output}")
    print(f"  p(class {k}) along the strip: {probs}")
    print(f"  entanglement over {result['population']} latents: p(class {k}) moves {result['target_slope']:+.3f} "
          f"per unit; other classes {result['others_mean_abs_slope']:.3f} on average (most: class "
          f"{result['most_moved_other']}, {result['others_max_abs_slope']:.3f})")
    return 0


def cmd_translate(args) -> int:
    import torch

    from ganforge import api
    from ganforge.data.folders import save_png_file
    from ganforge.report.images import IMAGE_SUFFIXES, save_grid, to_uint8
    from ganforge.translation import output_names, rows, translate_files, translate_held_out

    run = api.load_run(args.run_dir, step=args.step)
    if args.inputs and args.test:
        raise GanforgeError("give image files or --test N, not both")
    out = Path(args.output).expanduser()
    to_folder = out.is_dir() or out.suffix.lower() not in IMAGE_SUFFIXES
    if to_folder and out.is_dir() and any(out.iterdir()):
        raise GanforgeError(f"{out} is not empty; name a new or empty folder for the translations (nothing is "
                            "overwritten there), or a .png file for one picture of rows")
    if to_folder and not args.inputs:
        raise GanforgeError("--test writes one picture of rows; name a .png file with -o")
    if args.inputs:
        translated = translate_files(run, [Path(p) for p in args.inputs], args.resize, args.direction)
        files = [t[0] for t in translated]
        if to_folder:  # one PNG per input, each at its own size
            names = output_names(files)
            for name, (_, _, y, _) in zip(names, translated, strict=True):
                save_png_file(to_uint8(y)[0], out / name)
            result = {"folder": str(out), "n": len(files), "step": run.step, "direction": args.direction,
                      "files": [str(f) for f in files], "outputs": names}
            print(json.dumps(result) if args.json else
                  f"wrote {len(files)} translation(s) ({args.direction}, step {run.step}) to {out}/")
            return 0
        sizes = {tuple(t[1].shape[-2:]) for t in translated}
        if len(sizes) > 1:
            listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
            raise GanforgeError(f"the inputs have {len(sizes)} sizes ({listed}); "
                                "one picture of rows needs one size: write one file per input with -o FOLDER")
        columns = {"input": torch.cat([t[1] for t in translated]), "output": torch.cat([t[2] for t in translated])}
        if translated[0][3] is not None:
            columns["reconstruction"] = torch.cat([t[3] for t in translated])
    else:
        columns, files = translate_held_out(run, args.test or 8, args.seed, args.direction), []
    save_grid(rows(*columns.values()), out, nrow=len(columns))
    n = len(columns["input"])
    result = {"path": str(out), "n": n, "columns": list(columns), "direction": args.direction, "step": run.step,
              "files": [str(f) for f in files]}
    print(json.dumps(result) if args.json else
          f"wrote {n} rows of {' | '.join(result['columns'])} ({args.direction}, step {run.step}) to {out}")
    return 0


def cmd_upscale(args) -> int:
    import torch.nn.functional as F

    from ganforge import api
    from ganforge.autoencoding import image_files
    from ganforge.data.folders import parse_background, read_picture, save_png_file
    from ganforge.report.images import IMAGE_SUFFIXES, save_grid, to_uint8
    from ganforge.translation import output_names
    from ganforge.upscaling import comparison_row, require_upscaler, upscale_tiled

    run = api.load_run(args.run_dir, device=args.device, step=args.step)
    require_upscaler(run)
    method, device = run.method, run.device
    scale = args.scale or method.scale
    if not 1 <= scale <= method.scale:
        raise GanforgeError(f"--scale {scale}: this run upscales x{method.scale}; ask for 1 to {method.scale} (a "
                            f"smaller factor resizes its output down), or train a run with method.scale={scale}")
    if args.compare and scale != method.scale:
        raise GanforgeError(f"--compare shows the run's own x{method.scale}; leave --scale out")
    files = image_files([Path(p) for p in args.inputs])
    out = Path(args.output).expanduser()
    to_file = out.suffix.lower() in IMAGE_SUFFIXES
    if to_file and len(files) > 1:
        raise GanforgeError(f"{len(files)} inputs cannot go to one file {out}; name a folder with -o")
    if not to_file and out.is_dir() and any(out.iterdir()):
        raise GanforgeError(f"{out} is not empty; name a new or empty folder (nothing is overwritten there), or a "
                            ".png file for one input")
    channels, background = run.info["sample_shape"][0], parse_background(run.config.data.background)
    names = [out.name] if to_file else output_names(files)
    written = []
    for name, f in zip(names, files, strict=True):
        picture = read_picture(f, channels, background)
        target = out if to_file else out / name
        if args.compare:
            save_grid(comparison_row(method, picture, args.tile, device), target, nrow=4)
        else:
            big = upscale_tiled(method, picture, args.tile, device)
            if scale != method.scale:
                h, w = picture.shape[-2:]
                big = F.interpolate(big, size=(h * scale, w * scale), mode="bicubic", antialias=True,
                                    align_corners=False).clamp(-1, 1)
            save_png_file(to_uint8(big)[0], target)
        written.append(str(target))
    result = {"outputs": written, "n": len(written), "scale": scale, "compare": args.compare, "step": run.step}
    what = "comparison strip(s) nearest | bicubic | model | original" if args.compare else f"x{scale} upscaling(s)"
    print(json.dumps(result) if args.json else
          f"wrote {len(written)} {what} (step {run.step}) to {out if to_file else str(out) + '/'}")
    return 0
