"""Layers of FocalNet (focal modulation): the modulation, its block, the padded patch embedding, a stage.

FocalNet (Yang et al., NeurIPS 2022, arXiv 2203.11926; github.com/microsoft/FocalNet) replaces attention by
*focal modulation*: a stack of depth-wise convolutions gathers context at growing ranges, gates mix the
levels (plus one global level), and the mixed context multiplies the queries element-wise. No windows, no heads,
no attention. Parameter names are the official ones (``modulation.f``, ``modulation.h``, ``modulation.proj``,
``modulation.focal_layers.{l}.0``, ``norm1``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``, ``gamma_1``, ``gamma_2``).

Tokens travel between blocks as (B, H*W, C) with their (H, W), as in the Focal Transformer layers; inside the
modulation the map stays channels-last, the depth-wise convolutions see its (B, C, H, W) view, and the 1×1
convolution ``h`` runs as the linear layer it is.
"""

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ...ops import pad_bottom_right, token_conv, token_linear
from .focal_block import FocalMlp, StageBlocks
from .primitives import DropPath, build_norm

__all__ = ['FocalModulation', 'FocalNetBlock', 'FocalNetEmbed', 'FocalNetStage', 'focal_kernel_sizes']


def focal_kernel_sizes(focal_window: int, focal_level: int, focal_factor: int = 2) -> List[int]:
    """Kernel side of each focal level: ``focal_window + focal_factor * l`` for l = 0..L-1 (3, 5, 7 for w=3, L=3)."""
    return [focal_window + focal_factor * level for level in range(focal_level)]


class FocalModulation(nn.Module):
    """Focal modulation of a channels-last map.

    ``f`` projects each token to a query, a context and L + 1 gates; the context passes L depth-wise conv + GELU
    levels, each level's output weighted by its gate is summed, plus GELU of the last level's spatial mean weighted
    by the last gate; ``h`` (1×1) turns the sum into the modulator, which multiplies the query; ``proj`` projects.

    Args:
        embed_dims: Channels C.
        focal_level: Number of convolution levels L.
        focal_window: Kernel side of the first level (each next level adds ``focal_factor``).
        focal_factor: Kernel growth per level (2 in every official model).
        use_postln_in_modulation: LayerNorm ``ln`` on the modulated query before ``proj`` (FocalNet-H).
        normalize_modulator: Divide the gated context by L + 1 (FocalNet-L fl4 and the DINO detectors).
        proj_drop: Dropout after ``proj``.
        norm_cfg: Norm config of ``ln``.
    """

    def __init__(self, embed_dims: int, focal_level: int, focal_window: int, focal_factor: int = 2,
                 use_postln_in_modulation: bool = False, normalize_modulator: bool = False, proj_drop: float = 0.,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.focal_level = focal_level
        self.normalize_modulator = normalize_modulator
        self.kernel_sizes = focal_kernel_sizes(focal_window, focal_level, focal_factor)
        self.f = nn.Linear(embed_dims, 2 * embed_dims + focal_level + 1)
        # a 1x1 convolution in the official files (4-d weight): kept as one for the checkpoints, run as a linear
        self.h = nn.Conv2d(embed_dims, embed_dims, kernel_size=1)
        self.act = nn.GELU()
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.focal_layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(embed_dims, embed_dims, k, padding=k // 2, groups=embed_dims, bias=False), nn.GELU())
            for k in self.kernel_sizes)
        if use_postln_in_modulation:
            self.ln = build_norm(norm_cfg, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        c = self.embed_dims
        levels = self.focal_level
        x = token_linear(x, self.f.weight, self.f.bias)
        q, ctx, gates = torch.split(x, (c, c, levels + 1), dim=-1)
        # the (B, C, H, W) view of a channels-last map: the convolutions read and write that layout
        ctx = ctx.permute(0, 3, 1, 2)
        ctx_all = None
        for level, layer in enumerate(self.focal_layers):
            ctx = layer[1](token_conv(ctx, layer[0]))
            gated = ctx.permute(0, 2, 3, 1) * gates[..., level:level + 1]
            ctx_all = gated if ctx_all is None else ctx_all + gated
        ctx_global = self.act(ctx.mean(dim=(2, 3), keepdim=True)).permute(0, 2, 3, 1)
        ctx_global = ctx_global * gates[..., levels:]
        ctx_all = ctx_global if ctx_all is None else ctx_all + ctx_global
        if self.normalize_modulator:
            ctx_all = ctx_all / (levels + 1)
        out = q * token_linear(ctx_all, self.h.weight, self.h.bias)
        if hasattr(self, 'ln'):
            out = self.ln(out)
        return self.proj_drop(token_linear(out, self.proj.weight, self.proj.bias))

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, kernel_sizes={self.kernel_sizes}'


class FocalNetBlock(nn.Module):
    """FocalNet block: modulation and MLP residual branches, pre-norm or (``use_postln``) post-norm.

    Pre-norm: ``x + γ1·Mod(LN1(x))``, then ``x + γ2·MLP(LN2(x))``; post-norm: ``x + γ1·LN1(Mod(x))``, then
    ``x + γ2·LN2(MLP(x))``; γ are the layer scales (1 without ``use_layerscale``), each branch under stochastic
    depth.

    Args:
        embed_dims: Channels C.
        focal_level: Convolution levels of the modulation.
        focal_window: Kernel side of its first level.
        mlp_ratio: MLP hidden width / C.
        drop_rate: Dropout after the projections.
        drop_path_rate: Stochastic depth of both branches.
        use_layerscale: Learn per-channel branch scales ``gamma_1``, ``gamma_2``.
        layerscale_value: Their initial value.
        use_postln: Norms after the branches instead of before.
        use_postln_in_modulation: See :class:`FocalModulation`.
        normalize_modulator: See :class:`FocalModulation`.
        norm_cfg: Norm config.
    """

    def __init__(self, embed_dims: int, focal_level: int, focal_window: int, mlp_ratio: float = 4.,
                 drop_rate: float = 0., drop_path_rate: float = 0., use_layerscale: bool = False,
                 layerscale_value: float = 1e-4, use_postln: bool = False, use_postln_in_modulation: bool = False,
                 normalize_modulator: bool = False, norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.use_postln = use_postln
        self.norm1 = build_norm(norm_cfg, embed_dims)
        self.modulation = FocalModulation(embed_dims, focal_level, focal_window,
                                          use_postln_in_modulation=use_postln_in_modulation,
                                          normalize_modulator=normalize_modulator, proj_drop=drop_rate,
                                          norm_cfg=norm_cfg)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()
        self.norm2 = build_norm(norm_cfg, embed_dims)
        self.mlp = FocalMlp(embed_dims, int(embed_dims * mlp_ratio), drop=drop_rate)
        if use_layerscale:
            self.gamma_1 = nn.Parameter(torch.full((embed_dims, ), float(layerscale_value)))
            self.gamma_2 = nn.Parameter(torch.full((embed_dims, ), float(layerscale_value)))
        else:
            self.gamma_1 = self.gamma_2 = None

    def _scale(self, x: torch.Tensor, gamma: Optional[torch.Tensor]) -> torch.Tensor:
        return x if gamma is None else gamma * x

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP: the module in training (its CPU training path, dropout), the kernels of
        :func:`~mmfocal.ops.token_linear` in eval mode (no dropout there)."""
        if self.training:
            return self.mlp(x)
        mlp = self.mlp
        return token_linear(mlp.act(token_linear(x, mlp.fc1.weight, mlp.fc1.bias)), mlp.fc2.weight, mlp.fc2.bias)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        """(B, H*W, C) tokens of an H×W map -> the same shape."""
        b, n, c = x.shape
        branch = x if self.use_postln else self.norm1(x)
        branch = self.modulation(branch.view(b, hw_shape[0], hw_shape[1], c)).view(b, n, c)
        if self.use_postln:
            branch = self.norm1(branch)
        x = x + self.drop_path(self._scale(branch, self.gamma_1))
        branch = self.norm2(self._mlp(x)) if self.use_postln else self._mlp(self.norm2(x))
        return x + self.drop_path(self._scale(branch, self.gamma_2))


class FocalNetEmbed(nn.Module):
    """Padded convolutional patch embedding + optional LayerNorm: FocalNet's stem and downsampling.

    The input is zero-padded at the bottom and right to a multiple of the stride first, as the official detection
    backbone does, so an H×W input gives ceil(H / stride) × ceil(W / stride) tokens at every size.

    Args:
        in_channels: Input channels.
        embed_dims: Output channels.
        stride: Patch size (4 for the stem, 16 for the isotropic stem, 2 between stages).
        overlap: Overlapping convolution: the stem 7×7 (padding 2), a downsampling 3×3 (padding 1); else
            non-overlapping stride×stride patches.
        patch_norm: LayerNorm after the convolution (``norm``).
        norm_cfg: Norm config.
    """

    def __init__(self, in_channels: int, embed_dims: int, stride: int, overlap: bool = False,
                 patch_norm: bool = True, norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.stride = stride
        if overlap:
            # the padding of the official classifier (and FocalNet-DINO, timm): what the weights were trained with
            kernel, padding = (7, 2) if stride == 4 else (3, 1)
        else:
            kernel, padding = stride, 0
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel, stride=stride, padding=padding)
        self.norm = build_norm(norm_cfg, embed_dims) if patch_norm else None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """(B, C, H, W) -> ((B, H'*W', C'), (H', W'))."""
        x = token_conv(pad_bottom_right(x, self.stride, channels_last=False)[0], self.proj)
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        return (x if self.norm is None else self.norm(x)), hw


class FocalNetStage(StageBlocks):
    """Blocks of one FocalNet stage, then the downsampling that opens the next stage (``downsample``).

    Args:
        embed_dims: Channels of the stage.
        depth: Number of blocks.
        drop_path_rates: Per-block stochastic depth.
        downsample: Append a stride-2 embedding that doubles the channels.
        use_conv_embed: Overlapping downsampling convolution.
        patch_norm: LayerNorm after the downsampling convolution.
        with_cp: Activation checkpointing per block in training.
        block_cfg: The remaining :class:`FocalNetBlock` arguments.
    """

    def __init__(self, embed_dims: int, depth: int, drop_path_rates: Sequence[float], downsample: bool,
                 use_conv_embed: bool = False, patch_norm: bool = True, with_cp: bool = False,
                 norm_cfg: Optional[dict] = None, **block_cfg) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.blocks = nn.ModuleList(
            FocalNetBlock(embed_dims, drop_path_rate=drop_path_rates[i], norm_cfg=norm_cfg, **block_cfg)
            for i in range(depth))
        self.downsample = FocalNetEmbed(embed_dims, 2 * embed_dims, stride=2, overlap=use_conv_embed,
                                        patch_norm=patch_norm, norm_cfg=norm_cfg) if downsample else None
