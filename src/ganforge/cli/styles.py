"""StyleGAN runs: `style-mix` (the paper's figure 3) and `noise` (its figure 4); the psi sweep is
`ganforge sample RUN --psi-sweep ...`."""

from __future__ import annotations

import json

from ganforge.cli.common import run_command
from ganforge.errors import GanforgeError


def parse_ints(text: str, what: str) -> list[int]:
    """'1,2,3' or '1-4' (inclusive) -> a list of ints; a clear error otherwise."""
    try:
        if "-" in text and "," not in text:
            a, b = (int(v) for v in text.split("-"))
            return list(range(a, b + 1))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GanforgeError(f"{what} {text!r}: give seeds as 1,2,3 or a range 1-4") from None


def add_parsers(sub) -> None:
    sm = run_command(sub, "style-mix", "StyleGAN: rows' pictures with some style inputs taken from the columns' "
                     "(the paper's figure 3)", cmd_style_mix, output="style_mix.png")
    sm.add_argument("--rows", default="1-4", help="seeds of the row pictures (default 1-4)")
    sm.add_argument("--cols", default="11-15", help="seeds of the column pictures whose styles are copied "
                    "(default 11-15)")
    sm.add_argument("--layers", default="coarse", help="which style inputs come from the columns: coarse (up to 8 "
                    "px), middle, fine (the top resolution) or a range A-B (default coarse)")
    sm.add_argument("--psi", type=float, default=1.0, help="truncation in W for every picture (default 1: none)")
    sm.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])

    nz = run_command(sub, "noise", "StyleGAN: what the noise inputs change (the paper's figure 4)", cmd_noise,
                     output="noise.png")
    nz.add_argument("--seed", type=int, default=0)
    nz.add_argument("--draws", type=int, default=4, help="pictures with fresh noise to show (default 4)")
    nz.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])


def cmd_style_mix(args) -> int:
    from ganforge import api
    from ganforge.report.images import save_grid
    from ganforge.styles import style_mix

    run = api.load_run(args.run_dir, device=args.device, step=args.step)
    rows, cols = parse_ints(args.rows, "--rows"), parse_ints(args.cols, "--cols")
    if not rows or not cols:
        raise GanforgeError("--rows and --cols need at least one seed each")
    grid, picked = style_mix(run, rows, cols, args.layers, args.psi)
    save_grid(grid, args.output, nrow=len(cols) + 1)
    result = {"path": args.output, "rows": rows, "cols": cols, "layers": [picked.start, picked.stop - 1],
              "step": run.step}
    print(json.dumps(result) if args.json else
          f"wrote a {len(rows)} x {len(cols)} style-mixing grid to {args.output}: each row's picture (left) with style "
          f"inputs {picked.start}-{picked.stop - 1} ({args.layers}) from the picture above each column")
    return 0


def cmd_noise(args) -> int:
    from ganforge import api
    from ganforge.report.images import save_grid
    from ganforge.styles import noise_figure

    run = api.load_run(args.run_dir, device=args.device, step=args.step)
    if not 1 <= args.draws <= 32:
        raise GanforgeError(f"--draws must be between 1 and 32, got {args.draws}")
    row = noise_figure(run, args.seed, args.draws)
    save_grid(row, args.output, nrow=len(row))
    print(json.dumps({"path": args.output, "seed": args.seed, "step": run.step}) if args.json else
          f"wrote seed {args.seed} to {args.output}: fixed noise | no noise | {args.draws} fresh noise draws | "
          "per-pixel standard deviation over 64 draws (dark: changed by noise)")
    return 0
