"""The denoiser network F_θ(x, c_noise): a U-Net in named sizes.

Residual blocks (GroupNorm → SiLU → 3×3 conv, twice) with the noise embedding applied as a
per-channel scale and shift after the second GroupNorm; strided-conv downsampling, nearest +
conv upsampling, skip connections concatenated on the way up; optional self-attention at the
lowest resolution only. The noise level enters through Fourier features of c_noise = ln(σ)/4
(EDM Table 1) followed by a two-layer MLP. The last conv is zero-initialised, so the untrained
denoiser is D(x; σ) = c_skip(σ)·x. Input and output are (B, C, N, N) in normalised units,
N a multiple of 2^(levels−1) (8 for three halvings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError


@dataclass(frozen=True)
class UNetSize:
    channels: int  # width at full resolution
    mults: tuple[int, ...]  # width multiplier per resolution level
    blocks: int  # residual blocks per level on the way down
    attention: bool  # self-attention at the lowest resolution
    emb_features: int = 64  # Fourier features of c_noise


SIZES = {
    "tiny": UNetSize(channels=12, mults=(1, 2), blocks=1, attention=False, emb_features=32),  # ~0.1 M
    "small": UNetSize(channels=32, mults=(1, 2, 2, 2), blocks=2, attention=True),  # ~2.3 M
    "base": UNetSize(channels=64, mults=(1, 2, 3, 4), blocks=2, attention=True),  # ~21 M
}


def _groups(ch: int) -> int:
    return math.gcd(ch, 32) if ch >= 8 else 1


class FourierEmbedding(nn.Module):
    """c_noise (B,) -> (B, 2·half) sin/cos at fixed log-spaced frequencies 2^k, k ∈ [−2, 6]."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.half = features // 2

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        k = torch.linspace(-2.0, 6.0, self.half, device=c_noise.device, dtype=torch.float32)
        angle = 2 * math.pi * c_noise.float()[:, None] * torch.exp2(k)[None]  # (B, half)
        return torch.cat([angle.cos(), angle.sin()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)  # per-channel (scale, shift)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity map
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the N'×N' positions of the lowest resolution."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]  # (B, HW, C)
        return x + self.proj(h.transpose(-1, -2).reshape(B, C, H, W))


class Upsample2x(nn.Module):
    """Nearest-neighbour ×2 upsampling written as a broadcast of each value over a 2×2 block.

    The same values as ``nn.Upsample(scale_factor=2, mode="nearest")``, but its backward is a sum
    over each block (a reduction inductor fuses), where interpolate's backward is an index_put with
    atomic adds: 2.2 % of a compiled base training step's device time on an H200
    (``resources/bench/gpu_checks-64-h200-graphs.log``). No parameters, so checkpoints are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x[:, :, :, None, :, None].expand(b, c, h, 2, w, 2).reshape(b, c, 2 * h, 2 * w)


class UNet(nn.Module):
    """F_θ: (B, C, N, N) × c_noise (B,) -> (B, C, N, N).

    Parameters
    ----------
    in_channels : C, the number of field channels.
    size : "tiny" | "small" | "base" (see ``SIZES``).
    """

    def __init__(self, in_channels: int, size: str = "small") -> None:
        super().__init__()
        if size not in SIZES:
            raise ConfigError(f"unknown model size {size!r}; known: {list(SIZES)}")
        s = SIZES[size]
        self.size, self.in_channels = size, in_channels
        self.levels = len(s.mults)
        emb_dim = 4 * s.channels
        self.fourier = FourierEmbedding(s.emb_features)
        self.emb_mlp = nn.Sequential(nn.Linear(2 * (s.emb_features // 2), emb_dim), nn.SiLU(),
                                     nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.conv_in = nn.Conv2d(in_channels, s.channels, 3, padding=1)

        # Encoder: `blocks` ResBlocks per level, a strided conv between levels.
        self.down = nn.ModuleList()
        skips, ch = [s.channels], s.channels
        for i, m in enumerate(s.mults):
            for _ in range(s.blocks):
                self.down.append(ResBlock(ch, s.channels * m, emb_dim))
                ch = s.channels * m
                skips.append(ch)
            if i < self.levels - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)

        self.mid1 = ResBlock(ch, ch, emb_dim)
        self.mid_attn = SelfAttention(ch) if s.attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim)

        # Decoder: `blocks + 1` ResBlocks per level, each eating one skip; upsample between levels.
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(s.mults))):
            for _ in range(s.blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), s.channels * m, emb_dim))
                ch = s.channels * m
            if i > 0:
                self.up.append(nn.Sequential(Upsample2x(), nn.Conv2d(ch, ch, 3, padding=1)))
        self.norm_out = nn.GroupNorm(_groups(ch), ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        factor = 2 ** (self.levels - 1)
        assert x.shape[-1] % factor == 0 and x.shape[-2] % factor == 0, f"N must be a multiple of {factor}"
        emb = self.emb_mlp(self.fourier(c_noise.reshape(-1).expand(x.shape[0])))
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), emb) if isinstance(layer, ResBlock) else layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
