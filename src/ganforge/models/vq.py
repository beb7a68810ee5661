"""VQ-VAE's networks (van den Oord et al. 2017): the vector quantiser, and a conv encoder and
decoder with residual blocks.

Quantiser, for encoder outputs z_e (B, D, h, w) and a codebook e (K, D):

    k(i)  = argmin_k |z_e(i) - e_k|^2                      nearest code of each of the B h w vectors
    z_q   = e_k(i);  forward passes z_e + sg(z_q - z_e)     (the straight-through gradient to the encoder)
    commitment = mean |z_e - sg(z_q)|^2                    (weighted by beta = 0.25 in the method)
    codebook   = mean |sg(z_e) - z_q|^2                    (only when the codebook learns by gradient)

With ``ema`` the codebook is instead the exponential moving average of the vectors assigned to
each code (decay 0.99): N_k <- d N_k + (1 - d) n_k, m_k <- d m_k + (1 - d) sum_{i: k(i)=k} z_e(i),
e_k = m_k / N~_k with Laplace smoothing N~_k = (N_k + eps) / (N + K eps) N. A code whose N_k falls
below ``dead_below`` is dead: it is restarted at a random vector of the batch (drawn from the
global RNG, which checkpoints restore). All of this state lives in buffers, so it is saved with
the weights and restored exactly on resume.

Encoder / decoder (w = width, D = code_dim; two stride-2 steps, so 28 -> 7, 32 -> 8, 64 -> 16):

    E: x -conv4s2 w/2, ReLU -conv4s2 w, ReLU -conv3 w -[ReLU, conv3 w/4, ReLU, conv1 w, + skip] x n, ReLU -conv1 D-> z_e
    G: z_q -conv3 w -[residual block] x n, ReLU -convT4s2 w/2, ReLU -convT4s2 C-> x_hat (linear; the mean in [-1, 1])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VectorQuantizer(nn.Module):
    def __init__(self, n_codes: int = 512, code_dim: int = 64, ema: bool = True, decay: float = 0.99,
                 eps: float = 1e-5, dead_below: float = 1.0):
        super().__init__()
        self.n_codes, self.code_dim, self.ema, self.decay, self.eps, self.dead_below = \
            n_codes, code_dim, ema, decay, eps, dead_below
        init = torch.randn(n_codes, code_dim) * (1 / n_codes)
        if ema:
            self.register_buffer("codebook", init)
            self.register_buffer("cluster_size", torch.zeros(n_codes))
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init.uniform_(-1 / n_codes, 1 / n_codes))
            self.register_buffer("cluster_size", torch.zeros(n_codes))  # usage, for restarts and logs
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))  # dead codes restarted so far

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each row of ``flat`` (N, D)."""
        e = self.codebook.float()
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]
        return dist.argmin(1)

    @staticmethod
    def flatten(z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) -> (B h w, D): one row per grid position, in raster order."""
        return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])

    def codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """The nearest codes (B, h, w) of encoder outputs (B, D, h, w), the codebook unchanged."""
        b, _, h, w = z_e.shape
        return self.nearest(self.flatten(z_e.float())).view(b, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (B, h, w) -> their vectors (B, D, h, w)."""
        return self.codebook.float()[indices].permute(0, 3, 1, 2).contiguous()

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(z_q with the straight-through gradient, codes (B, h, w), losses and statistics)."""
        with torch.autocast(z_e.device.type, enabled=False):
            z = z_e.float()
            b, _, h, w = z.shape
            flat = self.flatten(z)
            idx = self.nearest(flat)
            counts = torch.bincount(idx, minlength=self.n_codes).float()
            restarted = torch.zeros((), device=z.device)
            if self.training:
                restarted = self._update(flat, idx, counts)
                idx = self.nearest(flat) if restarted > 0 else idx
            z_q = self.lookup(idx.view(b, h, w))
            stats = {"commitment": (z - z_q.detach()).pow(2).mean()}
            if not self.ema:
                stats["codebook"] = (z.detach() - z_q).pow(2).mean()
            p = counts / counts.sum()
            stats["perplexity"] = torch.exp(-(p * torch.log(p + 1e-10)).sum()).detach()
            stats["codes_used"] = ((counts > 0).float().mean()).detach()
            stats["restarted"] = restarted
            z_st = z + (z_q - z).detach()
        return z_st, idx.view(b, h, w), stats

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, idx: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The EMA codebook update (when ``ema``) and dead-code restarts; returns how many restarted."""
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            sums = torch.zeros_like(self.embed_sum).index_add_(0, idx, flat)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.n_codes * self.eps) * n
            self.codebook.copy_(self.embed_sum / smoothed[:, None])
        if self.dead_below <= 0:
            return torch.zeros((), device=flat.device)
        dead = (self.cluster_size < self.dead_below).nonzero().flatten()
        if len(dead) == 0:
            return torch.zeros((), device=flat.device)
        picks = torch.randint(0, len(flat), (len(dead),), device="cpu").to(flat.device)
        fresh = flat[picks]
        codebook = self.codebook.data if isinstance(self.codebook, nn.Parameter) else self.codebook
        codebook[dead] = fresh.to(codebook.dtype)
        self.cluster_size[dead] = self.dead_below  # a restarted code gets a grace of one threshold
        if self.ema:
            self.embed_sum[dead] = fresh * self.dead_below
        self.restarts.add_(len(dead))
        return torch.tensor(float(len(dead)), device=flat.device)


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(width, max(width // 4, 1), 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(max(width // 4, 1), width, 1))

    def forward(self, x):
        return x + self.body(x)


class VQEncoder(nn.Module):
    def __init__(self, channels: int, width: int, blocks: int, code_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width // 2, 4, 2, 1), nn.ReLU(), nn.Conv2d(width // 2, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), *[_Residual(width) for _ in range(blocks)], nn.ReLU(),
            nn.Conv2d(width, code_dim, 1))

    def forward(self, x):
        return self.net(x)


class VQDecoder(nn.Module):
    def __init__(self, channels: int, width: int, blocks: int, code_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(code_dim, width, 3, padding=1), *[_Residual(width) for _ in range(blocks)], nn.ReLU(),
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(width // 2, channels, 4, 2, 1))

    def forward(self, z_q):
        return self.net(z_q)


class _CausalBlock(nn.Module):
    """Pre-norm transformer block: h + attention(LN h), then h + MLP(LN h) (GELU, 4x wide).

    With a ``cache`` (a dict per block) the keys and values of earlier positions are kept, so
    sampling feeds one new position at a time: L steps of cost O(t) instead of O(t^2) each."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.drop = nn.Dropout(dropout)  # on each residual branch (GPT-2 style); off in eval mode
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, h: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        b, t, w = h.shape
        # (B, t, 3W) -> q, k, v of shape (B, heads, t, W / heads)
        q, k, v = self.qkv(self.norm1(h)).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if "k" in cache:  # one new position reads every earlier one: no mask needed
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        a = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and t > 1)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, w)))
        return h + self.drop(self.mlp(self.norm2(h)))


class CodePrior(nn.Module):
    """An autoregressive prior over a VQ-VAE's code grid, read in raster order: a small causal
    transformer (pre-norm, GELU). For codes c_1..c_L (L = h w), position t reads a start token and
    c_1..c_{t-1} and gives logits for c_t:

        tokens (B, L) -> [start, c_1 .. c_{L-1}] -embed + position-> (B, L, width)
          -[causal self-attention, MLP] x layers-> LayerNorm -Linear-> logits (B, L, K)

    Sampling keeps each block's keys and values (a KV cache), so drawing a grid costs about one
    forward pass over L positions rather than L of them.
    """

    def __init__(self, n_codes: int, length: int, width: int = 128, layers: int = 4, heads: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        self.n_codes, self.length = n_codes, length
        self.embed = nn.Embedding(n_codes + 1, width)  # the last index is the start token
        self.position = nn.Parameter(torch.zeros(1, length, width))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(_CausalBlock(width, heads, dropout) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_codes))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits (B, t, K) for positions 1..t given codes (B, t) (t <= L; the last code is not read)."""
        b, t = codes.shape
        start = torch.full((b, 1), self.n_codes, dtype=torch.long, device=codes.device)
        h = self.embed(torch.cat([start, codes[:, :-1]], 1)) + self.position[:, :t]
        for block in self.blocks:
            h = block(h)
        return self.out(h)

    @torch.no_grad()
    def sample(self, uniforms: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Codes (B, L) drawn position by position, each by inverse CDF of its softmax with the given
        uniforms (B, L) in [0, 1): the same uniforms give the same codes."""
        b = len(uniforms)
        caches = [{} for _ in self.blocks]
        token = torch.full((b, 1), self.n_codes, dtype=torch.long, device=uniforms.device)  # the start token
        codes = []
        for t in range(self.length):
            h = self.embed(token) + self.position[:, t:t + 1]
            for block, cache in zip(self.blocks, caches, strict=True):
                h = block(h, cache)
            probs = torch.softmax(self.out(h)[:, 0].float() / temperature, -1)
            token = (probs.cumsum(-1) < uniforms[:, t:t + 1]).sum(-1, keepdim=True).clamp(max=self.n_codes - 1)
            codes.append(token)
        return torch.cat(codes, 1)
