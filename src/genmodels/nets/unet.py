"""A U-Net with a sinusoidal time embedding, residual blocks, group normalisation and
self-attention at low resolutions (the architecture of Ho et al. 2020, after PixelCNN++), for
square or rectangular images of any size (inputs are padded to a multiple of the total
downsampling factor and cropped back). It knows nothing about diffusion: it maps
(x, t, y) -> a tensor shaped like x (or with `out_channels` channels), where t is any number per example.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.nets.embeddings import LabelEmbedding, TimeEmbedding


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with at least 4 channels per group and at most 32 groups (Ho et al.: 32 groups
    of 4 channels at width 128)."""
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, then GroupNorm modulated by the embedding (scale and shift, as in
    Nichol & Dhariwal 2021; an additive bias before a per-channel norm would be normalised away),
    SiLU-Dropout-Conv, plus a skip. (B, c_in, H, W), (B, emb_dim) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions with a residual connection. (B, C, H, W) -> same."""

    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        B, C, H, W = x.shape
        # the 1x1 convolutions applied as matrix products over the (B, H*W, C) positions: the same
        # weights, but one GEMM each instead of a convolution call (faster on CPU at 7x7 and 8x8)
        h = self.norm(x).flatten(2).transpose(1, 2)                                     # (B, HW, C)
        qkv = F.linear(h, self.qkv.weight.flatten(1), self.qkv.bias)                    # (B, HW, 3C)
        q, k, v = qkv.reshape(B, H * W, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # under CPU bf16 autocast, torch's fused attention runs 4-6x slower than in fp32 at these
            # sizes (49-64 positions, its backward most: bench/profile_bf16.py), so it runs in fp32
            with torch.autocast("cpu", enabled=False):
                out = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(B, H * W, C)
        out = F.linear(out, self.proj.weight.flatten(1), self.proj.bias)
        return x + out.transpose(1, 2).reshape(B, C, H, W)


class UNet(nn.Module):
    """The denoising U-Net.

    in_channels:   image channels (1 or 3); the output has the same number
    channels:      base width; level l has channels * channel_mults[l]
    channel_mults: one entry per resolution level (each level after the first halves H and W)
    num_res_blocks: residual blocks per level on the way down (one more on the way up)
    image_size:    the smaller side of the input images (to place attention; other sizes still run)
    attention_resolutions: feature-map sizes (smaller side after padding) that get self-attention
    dropout:       dropout inside residual blocks
    num_classes:   > 0 adds a label embedding (with a null label for y = None or -1)
    out_channels:  output channels (None = in_channels; 2 * in_channels when a diffusion model
                   also predicts its variance)

    forward(x (B, C, H, W), t (B,) or scalar, y (B,) int64 or None) -> (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int = 1, channels: int = 64, channel_mults: Sequence[int] = (1, 2, 2),
                 num_res_blocks: int = 2, attention_resolutions: Sequence[int] = (7,), dropout: float = 0.1,
                 num_classes: int = 0, heads: int = 1, image_size: int = 28, out_channels: int | None = None):
        super().__init__()
        self.levels = len(channel_mults)
        f = 2 ** (self.levels - 1)
        padded = -(-image_size // f) * f
        attn_at = {level for level in range(self.levels) if padded // 2**level in set(attention_resolutions)}
        emb_dim = 4 * channels
        self.time_embed = TimeEmbedding(channels, emb_dim)
        self.label_embed = LabelEmbedding(num_classes, emb_dim) if num_classes > 0 else None
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skip_ch = [channels]
        ch = channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                self.down.append(_Stage(ResBlock(ch, channels * mult, emb_dim, dropout),
                                        SelfAttention(channels * mult, heads) if level in attn_at else None))
                ch = channels * mult
                skip_ch.append(ch)
            if level < self.levels - 1:
                self.down.append(_Stage(nn.Conv2d(ch, ch, 3, stride=2, padding=1), sample=True))
                skip_ch.append(ch)
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = SelfAttention(ch, heads)
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                self.up.append(_Stage(ResBlock(ch + skip_ch.pop(), channels * mult, emb_dim, dropout),
                                      SelfAttention(channels * mult, heads) if level in attn_at else None))
                ch = channels * mult
            if level > 0:
                self.up.append(_Stage(nn.Conv2d(ch, ch, 3, padding=1), sample=True, upsample=True))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, out_channels or in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | int, y: torch.Tensor | None = None) -> torch.Tensor:  # noqa: D102
        B, _, H, W = x.shape
        f = 2 ** (self.levels - 1)
        pad_h, pad_w = (-H) % f, (-W) % f
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(H, W) > max(pad_h, pad_w) else "replicate")
        emb = self.time_embed(t, B, x.device)
        if self.label_embed is not None:
            emb = emb + self.label_embed(y, B, x.device)
        h = self.stem(x)
        hs = [h]
        for stage in self.down:
            h = stage(h, emb)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for stage in self.up:
            if not stage.sample:
                h = torch.cat([h, hs.pop()], dim=1)
            h = stage(h, emb)
        out = self.out(h)
        return out[:, :, :H, :W]


class _Stage(nn.Module):
    """One U-Net step: a residual block (with attention when its resolution is listed),
    a stride-2 downsampling conv, or a nearest-neighbour upsampling followed by a conv."""

    def __init__(self, layer: nn.Module, attn: nn.Module | None = None, sample: bool = False, upsample: bool = False):
        super().__init__()
        self.layer, self.attn, self.sample, self.upsample = layer, attn, sample, upsample

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.upsample:
            return self.layer(F.interpolate(h, scale_factor=2, mode="nearest"))
        if self.sample:
            return self.layer(h)
        h = self.layer(h, emb)
        return self.attn(h) if self.attn is not None else h
