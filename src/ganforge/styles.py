"""What a trained StyleGAN run shows beyond samples: the truncation sweep in W, style mixing (the
paper's figure 3), what the noise inputs change (its figure 4) and interpolation in W.

Each function takes a loaded run (:func:`ganforge.api.load_run`) of method "stylegan" and draws
from its sampling generator (the EMA copy when the run keeps one), in eval mode, on the run's
device, and returns pictures (N, C, H, W) in [-1, 1] on the CPU.

Style inputs by resolution: input i acts at 4 x 2^((i + 1) // 2) px (0: 4 px; 1, 2: 8 px; ...).
Groups, as in the paper: ``coarse`` up to 8 px (pose, overall shape; only 4 px in an 8-px
generator), ``fine`` the top resolution (colour, fine detail), ``middle`` what lies between; or
``A-B``, inputs A to B.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def require_stylegan(run) -> None:
    if run.config.method.name != "stylegan":
        raise GanforgeError(f"{run.run_dir} was trained with method {run.config.method.name}; this command needs a "
                            "StyleGAN run (method.name=stylegan)")


def _generator(run):
    G = run.method.sampling_network
    G.eval()
    return G


def seeded_z(run, seeds: list[int]) -> torch.Tensor:
    """z (len(seeds), Z), each row drawn from its own seed (the row ``ganforge sample --seed S -n 1`` uses)."""
    dim = run.config.model.z_dim
    return torch.cat([torch.randn(1, dim, generator=torch.Generator().manual_seed(s)) for s in seeds])


def layer_range(run, spec: str) -> range:
    """Style inputs named by ``spec``: coarse, middle, fine or A-B (inclusive)."""
    G = _generator(run)
    n, where = G.n_styles, G.synthesis.style_resolution
    top = G.synthesis.resolution
    groups = {"coarse": [i for i in range(n) if where(i) <= min(8, top // 2)],
              "fine": [i for i in range(n) if where(i) == top],
              "middle": [i for i in range(n) if 8 < where(i) < top]}
    if spec in groups:
        if not groups[spec]:
            raise GanforgeError(f"a {top}-px StyleGAN has no {spec} layers; use coarse, fine or a range 0-{n - 1}")
        return range(groups[spec][0], groups[spec][-1] + 1)
    try:
        a, b = (int(v) for v in spec.split("-"))
    except ValueError:
        raise GanforgeError(f"--layers {spec!r}: use coarse, middle, fine or a range A-B of style inputs "
                            f"0-{n - 1}") from None
    if not 0 <= a <= b < n:
        raise GanforgeError(f"--layers {spec}: this generator has style inputs 0-{n - 1}")
    return range(a, b + 1)


@torch.no_grad()
def psi_sweep(run, seeds: list[int], psis: list[float]) -> torch.Tensor:
    """One row per seed, one column per psi: w' = w_avg + psi (w - w_avg), fixed noise."""
    require_stylegan(run)
    G = _generator(run)
    z = seeded_z(run, seeds).to(run.device)
    rows = [G(z, psi=p, noise="const").float().cpu() for p in psis]  # (len(psis), S, C, H, W)
    return torch.stack(rows, 1).flatten(0, 1)


@torch.no_grad()
def style_mix(run, row_seeds: list[int], col_seeds: list[int], layers: str = "coarse",
              psi: float = 1.0) -> tuple[torch.Tensor, range]:
    """The paper's figure 3 as a (1 + rows) x (1 + columns) grid: the top row holds the column
    pictures, the left column the row pictures (the corner is blank); cell (r, c) is row r's
    picture with the style inputs ``layers`` taken from column c's w."""
    require_stylegan(run)
    G = _generator(run)
    picked = layer_range(run, layers)
    w_rows = G.w(seeded_z(run, row_seeds).to(run.device), psi)
    w_cols = G.w(seeded_z(run, col_seeds).to(run.device), psi)

    def draw(ws):
        return G.synthesis(ws, noise="const").float().cpu()

    col_pics, row_pics = draw(G.broadcast(w_cols)), draw(G.broadcast(w_rows))
    cells = [torch.full_like(col_pics[:1], 1.0), col_pics]  # a white corner
    for r in range(len(row_seeds)):
        ws = G.broadcast(w_rows[r:r + 1]).repeat(len(col_seeds), 1, 1).clone()
        ws[:, picked.start:picked.stop] = G.broadcast(w_cols)[:, picked.start:picked.stop]
        cells += [row_pics[r:r + 1], draw(ws)]
    return torch.cat(cells), picked


@torch.no_grad()
def noise_figure(run, seed: int, draws: int = 4, spread_draws: int = 64) -> torch.Tensor:
    """The paper's figure 4 in one row: the picture with the fixed noise, with no noise, ``draws``
    pictures with fresh noise (the same w), and the standard deviation of each pixel over
    ``spread_draws`` noise draws (white: unchanged by noise, dark: most changed)."""
    require_stylegan(run)
    G = _generator(run)
    ws = G.broadcast(G.w(seeded_z(run, [seed]).to(run.device)))
    fixed = G.synthesis(ws, noise="const").float().cpu()
    silent = G.synthesis(ws, noise="none").float().cpu()
    torch.manual_seed(seed)
    many = G.synthesis(ws.repeat(spread_draws, 1, 1), noise="random").float().cpu()
    spread = many.std(0, keepdim=True).mean(1, keepdim=True)  # (1, 1, H, W)
    spread = 1 - 2 * spread / spread.max().clamp_min(1e-8)     # white = 0, black = the largest
    return torch.cat([fixed, silent, many[:draws], spread.expand_as(fixed)])


@torch.no_grad()
def interpolate_w(run, seed_from: int, seed_to: int, steps: int = 10) -> torch.Tensor:
    """``steps`` pictures along the straight line in W between the w's of two seeds (the path the
    paper's perceptual path length measures in W; a line in Z bends in W), fixed noise."""
    require_stylegan(run)
    if steps < 2:
        raise GanforgeError(f"--steps must be at least 2, got {steps}")
    G = _generator(run)
    w = G.w(seeded_z(run, [seed_from, seed_to]).to(run.device))
    t = torch.linspace(0, 1, steps, device=w.device)[:, None]
    path = (1 - t) * w[:1] + t * w[1:]
    return G.synthesis(G.broadcast(path), noise="const").float().cpu()
