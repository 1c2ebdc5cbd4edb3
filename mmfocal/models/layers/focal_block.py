"""Building blocks of both families: window pooling, MLP, block (pooling + attention + MLP), patch embedding,
stage."""

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from ...ops import (fc_window_pool, fused_mlp_applies, fused_mlp_residual_, mlp_training, mlp_training_applies,
                    pad_bottom_right, token_conv)
from .focal_attention import FocalAttention, FocalV2Attention
from .primitives import DropPath, build_norm, trunc_normal_

__all__ = ['FocalMlp', 'FocalBlock', 'FocalV2Block', 'FocalPatchEmbed', 'FocalStage', 'StageBlocks',
           'build_pool_layers', 'init_linear_and_norms', 'pool_windows']


def build_pool_layers(embed_dims: int, window_size: int, focal_level: int, pool_method: str) -> nn.ModuleList:
    """The window-pooling parameters of a block (official ``pool_layers``; v1 and v2 alike).

    Args:
        embed_dims: Channels C.
        window_size: Window side s.
        focal_level: No pooling below 2.
        pool_method: ``'fc'`` (Linear(s*s -> 1) shared by channels), ``'conv'`` (depth-wise s×s conv),
            ``'mean'`` or ``'max'`` (no parameters).
    """
    layers = nn.ModuleList()
    if focal_level > 1:
        if pool_method == 'fc':
            layers.append(nn.Linear(window_size * window_size, 1))
        elif pool_method == 'conv':
            layers.append(nn.Conv2d(embed_dims, embed_dims, window_size, stride=window_size, groups=embed_dims))
    return layers


def pool_windows(x: torch.Tensor, window_size: int, pool_method: str, pool_layers: nn.ModuleList) -> torch.Tensor:
    """Pool each s×s window of a padded (B, Hp, Wp, C) map to one token: (B, Hp/s, Wp/s, C).

    Args:
        x: The padded map (pad tokens are zeros and take part, as in the official code).
        window_size: Window side s.
        pool_method: See :func:`build_pool_layers`.
        pool_layers: The block's pooling parameters.
    """
    b, hp, wp, c = x.shape
    s = window_size
    if pool_method == 'conv':
        return pool_layers[0](x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    windows = x.view(b, hp // s, s, wp // s, s, c)
    if pool_method == 'mean':
        return windows.mean(dim=(2, 4))
    if pool_method == 'max':
        return windows.amax(dim=(2, 4))
    fc = pool_layers[0]  # Linear(s*s -> 1) over row-major tokens, shared by channels
    return fc_window_pool(x, fc.weight.view(s, s).to(x.dtype), fc.bias.to(x.dtype))


class FocalMlp(nn.Module):
    """Transformer MLP with the official parameter names (``fc1``, ``fc2``).

    Args:
        embed_dims: Input and output channels.
        hidden_dims: Hidden channels.
        drop: Dropout after each linear layer.
    """

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply fc1 -> GELU -> fc2 (in training on CPU piece by piece: :func:`~mmfocal.ops.mlp_training`)."""
        if mlp_training_applies(x, self.fc1, self.act, self.fc2, dropout=self.training and self.drop.p > 0):
            return mlp_training(x, self.fc1, self.fc2)
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def init_linear_and_norms(module: nn.Module) -> None:
    """The official initialisation of every Linear (trunc-normal, std 0.02, zero bias) and LayerNorm in a tree."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.weight, 1.0)
            nn.init.constant_(m.bias, 0)


class _FocalBlockBase(nn.Module):
    """Pre-norm block of both families: ``x + attn(LN(x))``, then ``x + mlp(LN(x))`` (official block names).

    The map is zero-padded bottom/right to a multiple of s after LN1 (unmasked, as in the official v1 block;
    the official v2 block never pads, it runs only at multiples of s), each window is pooled to one token
    for level 2, and the attention layer (:attr:`attention_cls`) attends on the padded map.
    """

    attention_cls: type = nn.Module

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, focal_level: int, pool_method: str,
                 mlp_ratio: float, drop_rate: float, drop_path_rate: float, norm_cfg: dict,
                 attn_cfg: dict) -> None:
        super().__init__()
        self.window_size = window_size
        self.focal_level = focal_level
        self.pool_method = pool_method
        # Registered before norm1, as in the official block (only the key order depends on it).
        self.pool_layers = build_pool_layers(embed_dims, window_size, focal_level, pool_method)
        self.norm1 = build_norm(norm_cfg, embed_dims)
        self.attn = self.attention_cls(embed_dims=embed_dims, num_heads=num_heads, window_size=window_size,
                                       focal_level=focal_level, proj_drop=drop_rate, **attn_cfg)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()
        self.norm2 = build_norm(norm_cfg, embed_dims)
        self.mlp = FocalMlp(embed_dims=embed_dims, hidden_dims=int(embed_dims * mlp_ratio), drop=drop_rate)

    def reset_parameters(self) -> None:
        """This block's initialisation: :func:`init_linear_and_norms`, then :meth:`init_attention_extras`."""
        init_linear_and_norms(self)
        self.init_attention_extras()

    def init_attention_extras(self) -> None:
        """The position-bias tables (the attention's ``init_bias_tables``) and the fc window pooling.

        The fc pooling starts as a mean over the window: the intent of the official constructors, which fill
        it so. (In the official models that fill is then overwritten by their trunc-normal ``_init_weights``,
        so it is mmfocal's choice, the same for both families; pretrained weights replace it anyway.)
        """
        self.attn.init_bias_tables()
        if self.pool_method == 'fc' and len(self.pool_layers):
            nn.init.constant_(self.pool_layers[0].weight, 1. / self.pool_layers[0].in_features)
            nn.init.constant_(self.pool_layers[0].bias, 0)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        """Apply the block to (B, H*W, C) tokens of an H×W map."""
        h, w = hw_shape
        b, n, c = x.shape
        s = self.window_size
        shortcut = x
        real = self.norm1(x).view(b, h, w, c)
        # zeros after the norm, unmasked (official); an exported graph pads and crops at every size
        x_pad, padded = pad_bottom_right(real, s, channels_last=True)
        pooled = pool_windows(x_pad, s, self.pool_method, self.pool_layers) if self.focal_level > 1 else None
        x = self.attn(x_pad, pooled, hw=(h, w), real=real)
        # the fused Focal-fast paths return the real map only (shapes equal in a traced graph: it crops there)
        if padded and x.shape[1:3] == x_pad.shape[1:3]:
            x = x[:, :h, :w, :]
        x = shortcut + self.drop_path(x.reshape(b, n, c))
        mlp = self.mlp
        stochastic = self.training and (mlp.drop.p > 0 or isinstance(self.drop_path, DropPath))
        if fused_mlp_applies(x, self.norm2, mlp.fc1, mlp.act, mlp.fc2, stochastic):
            return fused_mlp_residual_(x, self.norm2, mlp.fc1, mlp.fc2)  # x is this block's own sum
        return x + self.drop_path(mlp(self.norm2(x)))


class FocalBlock(_FocalBlockBase):
    """Focal Transformer (v1) block: window pooling, :class:`FocalAttention`, MLP.

    Args:
        embed_dims: Channels C.
        num_heads: Attention heads.
        window_size: Window side s.
        expand_size: Expand-ring width.
        focal_level: 1 or 2.
        focal_window: Pooled neighbourhood side.
        pool_method: Window pooling for level 2: ``'fc'`` (official), ``'mean'``, ``'max'``, ``'conv'``.
        mlp_ratio: MLP hidden width / C.
        qkv_bias: Bias in the qkv projection.
        qk_scale: Override of the attention scale.
        drop_rate: Dropout after projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth of this block.
        norm_cfg: Norm config for the token norms.
        attn_impl: ``'fast'`` or ``'reference'``.
    """

    attention_cls = FocalAttention

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7, expand_size: int = 3,
                 focal_level: int = 2, focal_window: int = 7, pool_method: str = 'fc', mlp_ratio: float = 4.,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0., norm_cfg: dict = dict(type='LN'),
                 attn_impl: str = 'fast') -> None:
        super().__init__(embed_dims, num_heads, window_size, focal_level, pool_method, mlp_ratio, drop_rate,
                         drop_path_rate, norm_cfg,
                         dict(expand_size=expand_size, focal_window=focal_window, qkv_bias=qkv_bias,
                              qk_scale=qk_scale, attn_drop=attn_drop_rate, attn_impl=attn_impl))


class FocalV2Block(_FocalBlockBase):
    """Focal-fast (v2) block: window pooling, :class:`FocalV2Attention`, MLP.

    Args:
        embed_dims, num_heads, window_size, focal_level, pool_method, mlp_ratio, qkv_bias, qk_scale, drop_rate,
            attn_drop_rate, drop_path_rate, norm_cfg, attn_impl: As for :class:`FocalBlock`.
        topk: Keys per level and window (128 in the released models), in place of v1's expand ring and
            pooled neighbourhood.
    """

    attention_cls = FocalV2Attention

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7, focal_level: int = 2, topk: int = 128,
                 pool_method: str = 'fc', mlp_ratio: float = 4., qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0., norm_cfg: dict = dict(type='LN'), attn_impl: str = 'fast') -> None:
        super().__init__(embed_dims, num_heads, window_size, focal_level, pool_method, mlp_ratio, drop_rate,
                         drop_path_rate, norm_cfg,
                         dict(topk=topk, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop_rate,
                              attn_impl=attn_impl))


class FocalPatchEmbed(nn.Module):
    """Convolutional patch embedding + LayerNorm: the stem and the between-stage downsampling.

    Args:
        in_channels: Input channels.
        embed_dims: Output channels.
        is_stem: Stem (stride 4) or downsampling (stride 2).
        use_conv_embed: Overlapping convolution (k7 s4 p2 stem, k3 s2 p1 downsample) instead of
            non-overlapping patches (k4 s4, k2 s2).
        norm_cfg: Norm config.
    """

    def __init__(self, in_channels: int, embed_dims: int, is_stem: bool, use_conv_embed: bool = False,
                 norm_cfg: dict = dict(type='LN')) -> None:
        super().__init__()
        self.patch_size = 4 if is_stem else 2
        self.pad_input = is_stem and not use_conv_embed
        if use_conv_embed:
            kernel, stride, padding = (7, 4, 2) if is_stem else (3, 2, 1)
        else:
            kernel, stride, padding = self.patch_size, self.patch_size, 0
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel, stride=stride, padding=padding)
        self.norm = build_norm(norm_cfg, embed_dims)

    def output_size(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        """(H', W') of an H×W input, without running the convolution."""
        conv, p = self.proj, self.patch_size
        sizes = []
        for n, k, stride, pad in zip(hw, conv.kernel_size, conv.stride, conv.padding):
            n = -(-n // p) * p if self.pad_input else n
            sizes.append((n + 2 * pad - k) // stride + 1)
        return sizes[0], sizes[1]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """(B, C, H, W) -> ((B, H'*W', C'), (H', W'))."""
        if self.pad_input:
            x = pad_bottom_right(x, self.patch_size, channels_last=False)[0]
        x = token_conv(x, self.proj)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class StageBlocks(nn.Module):
    """What a stage of any family runs: its ``blocks`` on (B, H*W, C) tokens (activation checkpointing per block with
    ``with_cp`` in training), then its ``downsample`` embedding, if any."""

    blocks: nn.ModuleList
    downsample: Optional[nn.Module]
    with_cp: bool

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int], downsample: bool = True
                ) -> Tuple[torch.Tensor, Tuple[int, int], torch.Tensor, Tuple[int, int]]:
        """Run the blocks; return (stage output, its size, downsampled tokens, their size).

        With ``downsample=False`` (no later stage is needed) the downsampling is skipped and the stage
        output is returned in its place.
        """
        for block in self.blocks:
            if self.with_cp and torch.is_grad_enabled():
                x = cp.checkpoint(block, x, hw_shape, use_reentrant=False)
            else:
                x = block(x, hw_shape)
        if self.downsample is None or not downsample:
            return x, hw_shape, x, hw_shape
        b, _, c = x.shape
        x_down, hw_down = self.downsample(x.transpose(1, 2).reshape(b, c, *hw_shape))
        return x, hw_shape, x_down, hw_down


class FocalStage(StageBlocks):
    """A sequence of Focal blocks followed by an optional downsampling patch embedding.

    Args:
        embed_dims: Channels of the stage.
        depth: Number of blocks.
        num_heads: Attention heads.
        drop_path_rates: Per-block stochastic depth rates.
        downsample: Append a stride-2 patch embedding that doubles the channels.
        use_conv_embed: Overlapping downsampling convolution.
        with_cp: Gradient checkpointing per block.
        block_cls: The block class (:class:`FocalBlock`, or the Focal-fast :class:`FocalV2Block`).
        block_cfg: Remaining arguments of ``block_cls``.
    """

    def __init__(self, embed_dims: int, depth: int, num_heads: int, drop_path_rates: Sequence[float],
                 downsample: bool, use_conv_embed: bool = False, with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'), block_cls: type = FocalBlock, **block_cfg) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.blocks = nn.ModuleList([
            block_cls(embed_dims=embed_dims, num_heads=num_heads, drop_path_rate=drop_path_rates[i],
                       norm_cfg=norm_cfg, **block_cfg)
            for i in range(depth)
        ])
        self.downsample = FocalPatchEmbed(
            in_channels=embed_dims, embed_dims=2 * embed_dims, is_stem=False, use_conv_embed=use_conv_embed,
            norm_cfg=norm_cfg) if downsample else None

    def prepare(self, hw_shape: Tuple[int, int], device: torch.device) -> Tuple[int, int]:
        """Build the gather tables of the blocks for an H×W map; the size of the downsampled map."""
        for block in self.blocks:
            block.attn.prepare(hw_shape, device)
        return hw_shape if self.downsample is None else self.downsample.output_size(hw_shape)
