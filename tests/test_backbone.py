"""FocalTransformer: shapes for any size, freezing, checkpointing, loading, errors, sizes."""

import logging
import os.path as osp
from typing import Optional, Tuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from mmengine.logging import MMLogger

from mmfocal.models import FocalTransformer
from mmfocal.models.layers import (FAST_MASK_VALUE, FocalAttention, FocalPatchEmbed, build_pool_layers,
                                   expand_ring_offsets, pool_windows, ring_duplicates)
from mmfocal.ops import (AttentionPath, attention_settings, flash_cpu_op, focal_v1, fused_mlp_applies,
                         fused_mlp_residual_, mlp_training, mlp_training_applies, scratch, token_conv)

SMALL = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.)


def expected_sizes(h: int, w: int, conv_embed: bool = False) -> list:
    if conv_embed:
        h, w = (h - 3) // 4 + 1, (w - 3) // 4 + 1
        sizes = [(h, w)]
        for _ in range(3):
            h, w = (h + 1) // 2, (w + 1) // 2
            sizes.append((h, w))
        return sizes
    h, w = -(-h // 4), -(-w // 4)
    sizes = [(h, w)]
    for _ in range(3):
        h, w = h // 2, w // 2
        sizes.append((h, w))
    return sizes


def small_model(**kwargs) -> FocalTransformer:
    model = FocalTransformer(**{**SMALL, **kwargs})
    model.init_weights()
    return model


# --- shapes -------------------------------------------------------------------------------

def test_tiny_outputs_four_nchw_maps_with_official_channels() -> None:
    model = FocalTransformer(arch='tiny').eval()
    with torch.no_grad():
        feats = model(torch.rand(2, 3, 224, 224))
    assert [tuple(f.shape) for f in feats] == [(2, 96, 56, 56), (2, 192, 28, 28), (2, 384, 14, 14), (2, 768, 7, 7)]
    assert model.out_channels == [96, 192, 384, 768]


def test_outputs_are_described_for_necks() -> None:
    model = FocalTransformer(**SMALL, out_indices=(1, 3)).eval()
    with torch.no_grad():
        feats = model(torch.rand(1, 3, 128, 96))
    assert model.out_channels == [f.shape[1] for f in feats] == [64, 256]
    assert [(i['num_chs'], i['reduction'], i['module']) for i in model.feature_info] == [(64, 8, 'norm1'),
                                                                                         (256, 32, 'norm3')]
    assert [128 // f.shape[2] for f in feats] == [i['reduction'] for i in model.feature_info]


def test_state_dict_carries_its_version_and_a_newer_one_is_refused() -> None:
    model = small_model()
    state = model.state_dict()
    assert state._metadata['']['version'] == FocalTransformer._version == 1
    FocalTransformer(**SMALL).load_state_dict(state)  # same version: fine
    state._metadata['']['version'] = 2
    with pytest.raises(ValueError, match='saved by a newer mmfocal \\(state-dict version 2'):
        FocalTransformer(**SMALL).load_state_dict(state)


@pytest.mark.parametrize('hw', [(224, 224), (112, 137), (511, 511), (800, 1333)])
def test_output_strides_for_any_size(hw: Tuple[int, int]) -> None:
    model = small_model().eval()
    with torch.no_grad():
        feats = model(torch.rand(2, 3, *hw))
    assert [tuple(f.shape[2:]) for f in feats] == expected_sizes(*hw)
    assert [f.shape[1] for f in feats] == [32, 64, 128, 256]
    assert all(torch.isfinite(f).all() for f in feats)


def test_base_channels_and_out_indices_subset() -> None:
    model = FocalTransformer(arch='base', depths=(1, 1, 1, 1), out_indices=(1, 2, 3)).eval()
    with torch.no_grad():
        feats = model(torch.rand(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == [256, 512, 1024]
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')


def test_conv_embed_sizes() -> None:
    model = small_model(use_conv_embed=True).eval()
    with torch.no_grad():
        feats = model(torch.rand(1, 3, 150, 97))
    assert [tuple(f.shape[2:]) for f in feats] == expected_sizes(150, 97, conv_embed=True)


@pytest.mark.parametrize('use_conv_embed', [False, True])
def test_patch_embeddings_equal_the_plain_convolution_and_write_token_rows(use_conv_embed: bool) -> None:
    # the stem (an image) and a downsampling (the (B, C, H, W) view of a stage's tokens) against nn.Conv2d's call
    torch.manual_seed(0)
    for embed, x in ((FocalPatchEmbed(3, 16, True, use_conv_embed), torch.rand(2, 3, 29, 35)),
                     (FocalPatchEmbed(16, 32, False, use_conv_embed),
                      torch.rand(2, 9 * 11, 16).transpose(1, 2).reshape(2, 16, 9, 11))):
        x = x.requires_grad_()
        params = [x, embed.proj.weight, embed.proj.bias]
        tokens, hw = embed(x)
        grads = torch.autograd.grad(tokens.square().sum(), params)
        p = embed.patch_size
        ref_map = embed.proj(F.pad(x, (0, -x.shape[3] % p, 0, -x.shape[2] % p)) if embed.pad_input else x)
        ref = embed.norm(ref_map.flatten(2).transpose(1, 2))
        ref_grads = torch.autograd.grad(ref.square().sum(), params)
        assert hw == tuple(ref_map.shape[2:]) == embed.output_size(tuple(x.shape[2:]))
        torch.testing.assert_close(tokens, ref, rtol=1e-5, atol=1e-5)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
        # channels-last output: the (B, H'*W', C') tokens the norm reads are a view, not a copy
        assert token_conv(x, embed.proj).flatten(2).transpose(1, 2).is_contiguous()
    reflect = nn.Conv2d(4, 8, 3, 2, 1, padding_mode='reflect')  # F.conv2d would pad it with zeros: the module's call
    x = torch.rand(1, 4, 9, 9)
    torch.testing.assert_close(token_conv(x, reflect), reflect(x), rtol=0, atol=0)


@settings(max_examples=12, deadline=None)
@given(h=st.integers(32, 260), w=st.integers(32, 260), batch=st.integers(1, 2))
def test_property_any_size_gives_right_strides(h: int, w: int, batch: int) -> None:
    model = _PROPERTY_MODEL
    with torch.no_grad():
        feats = model(torch.rand(batch, 3, h, w))
    assert [tuple(f.shape) for f in feats] == [(batch, c, *s) for c, s in zip((32, 64, 128, 256), expected_sizes(h, w))]
    assert all(torch.isfinite(f).all() for f in feats)


_PROPERTY_MODEL = FocalTransformer(**SMALL, focal_windows=(15, 13, 9, 7), expand_sizes=3).eval()


def test_stem_padding_equals_explicit_zero_padding() -> None:
    """An image that is not a multiple of 4 gives exactly the features of its zero-padded version."""
    model = small_model().eval()
    x = torch.rand(1, 3, 221, 158)
    padded = torch.zeros(1, 3, 224, 160)
    padded[:, :, :221, :158] = x
    with torch.no_grad():
        for a, b in zip(model(x), model(padded)):
            assert torch.equal(a, b)


def test_block_padding_equals_explicit_zero_padding() -> None:
    """Maps that are not multiples of the window are zero-padded after the first norm (official) and
    cropped back: with a zero norm bias, LN(0) == 0, so padding the block's input explicitly with zero
    tokens gives the same values at the real positions (every query sees the same padded keys)."""
    block = small_model().eval().layers[0].blocks[0]
    with torch.no_grad():
        block.norm1.bias.zero_()
    x = torch.rand(2, 10, 13, 32)
    padded = torch.zeros(2, 14, 14, 32)  # window 7
    padded[:, :10, :13] = x
    with torch.no_grad():
        out = block(x.flatten(1, 2), (10, 13)).view(2, 10, 13, 32)
        ref = block(padded.flatten(1, 2), (14, 14)).view(2, 14, 14, 32)[:, :10, :13]
    assert (out - ref).abs().max() <= 1e-5


def test_rejects_too_small_or_non_image_input() -> None:
    model = small_model()
    with pytest.raises(ValueError, match='H, W >= 32'):
        model(torch.rand(1, 3, 31, 64))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        model(torch.rand(3, 64, 64))


# --- training behaviour ----------------------------------------------------------------------

def test_frozen_stages_are_frozen_from_construction_and_stay_frozen() -> None:
    model = FocalTransformer(**SMALL, frozen_stages=2)
    frozen = [model.patch_embed, model.layers[0], model.layers[1], model.norm0, model.norm1]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in (model.layers[2], model.norm2) for p in m.parameters())
    model.train()
    assert all(not m.training for m in frozen) and model.layers[2].training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    # Squares: the plain sum of a LayerNorm output has an exactly-zero gradient up to rounding.
    sum(f.square().sum() for f in model(torch.rand(1, 3, 64, 64))).backward()
    opt.step()
    after = model.state_dict()
    for name in before:
        is_frozen = name.startswith(('patch_embed.', 'layers.0.', 'layers.1.', 'norm0.', 'norm1.'))
        assert torch.equal(before[name], after[name]) == is_frozen, name


def test_with_cp_gives_identical_outputs_and_gradients() -> None:
    plain = small_model()
    ckpt = FocalTransformer(**SMALL, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 70, 90)
    outs = []
    for model in (plain, ckpt):
        model.train()
        model.zero_grad()
        feats = model(x)
        sum((f * f).mean() for f in feats).backward()
        outs.append((feats, {n: p.grad.clone() for n, p in model.named_parameters()}))
    for a, b in zip(outs[0][0], outs[1][0]):
        assert torch.allclose(a, b, atol=1e-6)
    for name, grad in outs[0][1].items():
        assert torch.allclose(grad, outs[1][1][name], atol=1e-6), name


def test_drop_path_is_stochastic_in_training_only() -> None:
    model = small_model(drop_path_rate=0.5)
    x = torch.rand(1, 3, 64, 64)
    model.train()
    a, b = model(x)[3], model(x)[3]
    assert not torch.allclose(a, b)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[3], model(x)[3])


def test_norm_eval_is_accepted_and_says_it_changes_nothing() -> None:
    # LayerNorm has no running statistics: the flag other mmdet backbones take cannot matter here.
    with pytest.warns(UserWarning, match='norm_eval=True\\) has no effect'):
        flagged = FocalTransformer(**SMALL, norm_eval=True)
    plain = small_model()
    flagged.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 64, 64)
    for model in (plain, flagged):
        model.train()
        sum(f.square().mean() for f in model(x)).backward()
    for (name, a), b in zip(plain.named_parameters(), flagged.parameters()):
        assert torch.equal(a.grad, b.grad), name


def assert_bf16_inference_close(model: nn.Module) -> None:
    """A backbone's stage outputs under CPU bf16 autocast are bf16 and within 2% (relative L2) of fp32."""
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            feats = model(x)
    for f, r in zip(feats, ref):
        assert f.dtype == torch.bfloat16
        assert (f.float() - r).norm() <= 2e-2 * r.norm()


def test_bf16_autocast_on_cpu_is_close_to_fp32() -> None:
    # bf16 keeps 8 significant bits (~0.4% per rounding); measured relative L2 error of the stage
    # outputs 0.4-0.9% on random weights. Tolerance: 2%.
    assert_bf16_inference_close(small_model().eval())


def test_fast_and_reference_attention_agree_in_training_with_gradients() -> None:
    fast = small_model(focal_windows=(15, 13, 9, 7), expand_sizes=3)
    ref = FocalTransformer(**SMALL, focal_windows=(15, 13, 9, 7), expand_sizes=3, attn_impl='reference')
    ref.load_state_dict(fast.state_dict())
    for hw in [(64, 64), (100, 150), (224, 224)]:
        x = torch.rand(2, 3, *hw)
        grads = []
        for model in (fast, ref):
            model.train()
            model.zero_grad()
            feats = model(x)
            sum(f.square().mean() for f in feats).backward()
            grads.append((feats, [p.grad for p in model.parameters()]))
        for a, b in zip(grads[0][0], grads[1][0]):
            assert (a - b).abs().max() <= 1e-4
        for a, b in zip(grads[0][1], grads[1][1]):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize('chunk_bytes', [None, 1])
def test_fast_and_reference_attention_agree_at_inference(chunk_bytes: Optional[int]) -> None:
    # The no-grad path runs a fused attention kernel per image and piece of window rows (one row per
    # piece with chunk_bytes=1); window multiples and padded sizes.
    with attention_settings(**({} if chunk_bytes is None else dict(piece_bytes=chunk_bytes))):
        _check_inference_against_reference()


def _check_inference_against_reference() -> None:
    fast = small_model(focal_windows=(15, 13, 9, 7), expand_sizes=3).eval()
    ref = FocalTransformer(**SMALL, focal_windows=(15, 13, 9, 7), expand_sizes=3, attn_impl='reference').eval()
    ref.load_state_dict(fast.state_dict())
    for hw in [(56, 56), (100, 150), (224, 224)]:
        x = torch.rand(3, 3, *hw)
        with torch.no_grad():
            for a, b in zip(fast(x), ref(x)):
                assert (a - b).abs().max() <= 1e-4


def test_inference_adds_the_qkv_bias_where_it_lays_the_projections_out() -> None:
    # at inference the qkv layer projects without its bias and pack_qkv adds it while copying the queries and the
    # key/value sources; with non-zero biases (the official initialisation zeroes them) that equals the layer's own
    # call (taken for any Linear subclass) and the reference formulation
    model = small_model().eval()
    layers = [m for m in model.modules() if isinstance(m, FocalAttention)]
    with torch.no_grad():
        for layer in layers:
            layer.qkv.bias.normal_(0, 0.5)
    ref = FocalTransformer(**SMALL, attn_impl='reference').eval()
    ref.load_state_dict(model.state_dict())

    class ModuleCall(nn.Linear):
        pass

    x = torch.rand(2, 3, 75, 61)
    with torch.no_grad():
        folded, reference = model(x), ref(x)
        for layer in layers:
            layer.qkv.__class__ = ModuleCall
        unfolded = model(x)
    for a, b, c in zip(folded, unfolded, reference):
        assert (a - b).abs().max() <= 1e-5
        assert (a - c).abs().max() <= 1e-4


def _saved_bytes(module: nn.Module, *args) -> int:
    """Bytes of the distinct storages autograd saves for backward during one call."""
    seen = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen.add((t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*args)
    return sum(n for _, n in seen)


def _core_settings(core: str, chunk_bytes: Optional[int], monkeypatch: pytest.MonkeyPatch) -> dict:
    """Attention settings (and a patch) that make the v1 training core run as ``core``."""
    if core == 'flash' and flash_cpu_op() is None:
        pytest.skip('this torch has no CPU flash-attention op (torch 2.1): the explicit core runs instead')
    if core == 'matmul':  # what other devices run: the probabilities kept for backward
        monkeypatch.setattr(focal_v1, '_keeps_lse', lambda device: False)
    settings = dict(cpu_flash=core == 'flash')
    if chunk_bytes is not None:
        settings['piece_bytes'] = chunk_bytes
    return settings


@pytest.mark.parametrize('chunk_bytes', [None, 1])
@pytest.mark.parametrize('core,saved_fractions', [('flash', (0, .45)), ('explicit', (0, .45)), ('matmul', (.45, .75))])
def test_fast_attention_cores_save_less_for_backward_and_match_the_reference(
        core: str, saved_fractions: Tuple[float, float], chunk_bytes: Optional[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys of a window are ~220 tokens (window, ring, pooled). Every training core saves the key
    # sources (one entry per token) and gathers again in backward; on CPU the core also keeps the
    # log-sum-exp instead of the probabilities, from the flash op or (torch 2.1) from explicit logits
    # per piece. The matmul core (probabilities kept) is what other devices run. On CPU the cores
    # loop over pieces of window rows: all 8 rows at once by default, one per piece with 1 byte.
    with attention_settings(**_core_settings(core, chunk_bytes, monkeypatch)):
        _check_core_against_reference(*saved_fractions)


def _check_core_against_reference(min_saved_fraction: float, max_saved_fraction: float) -> None:
    torch.manual_seed(0)
    fast = FocalAttention(96, 3, 7, 3, 2, 7).train()
    ref = FocalAttention(96, 3, 7, 3, 2, 7, attn_impl='reference').train()
    with torch.no_grad():
        for p in fast.parameters():
            p.normal_(0, 0.1)  # non-zero position tables, so their gradients are checked too
    ref.load_state_dict(fast.state_dict())
    x, pooled = torch.rand(2, 56, 63, 96), torch.rand(2, 8, 9, 96)
    saved = _saved_bytes(fast, x, pooled) / _saved_bytes(ref, x, pooled)
    assert min_saved_fraction < saved < max_saved_fraction  # the probabilities are kept by the matmul core only
    grads = []
    for model in (fast, ref):
        xg, pg = x.clone().requires_grad_(), pooled.clone().requires_grad_()
        out = model(xg, pg)
        out.square().sum().backward()
        grads.append([out, xg.grad, pg.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        # fp32: the qkv bias gradients (up to ~3e4) are sums of large terms that nearly cancel in places, so
        # an element is compared within 1e-4 of its tensor's largest magnitude (one ulp there is 2e-3)
        assert (a - b).abs().max() <= 1e-4 * (1 + b.abs().max())


@pytest.mark.parametrize('chunk_bytes', [None, 1])
@pytest.mark.parametrize('core', ['flash', 'explicit', 'matmul'])
def test_attention_core_gradients_pass_gradcheck(core: str, chunk_bytes: Optional[int],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Hand-written backward (packing, re-gather, softmax backward, index_add_ scatter, bias reduction,
    # pooled-grid crop) against finite differences in float64, for the qkv and pooled projections and
    # all three position tables; 3x2 windows of side 3 with ring 1 (4 of its 20 keys merged as
    # repeats) and a padded 3x3 pooled neighbourhood (border mask on). One window row per piece with
    # chunk_bytes=1.
    with attention_settings(**_core_settings(core, chunk_bytes, monkeypatch)):
        _gradcheck_core()


def _gradcheck_core() -> None:
    torch.manual_seed(0)
    attn = FocalAttention(8, 2, window_size=3, expand_size=1, focal_level=2, focal_window=3).double().train()
    tables = {name: torch.randn_like(p) for name, p in attn.named_parameters() if 'relative_position' in name}
    x = torch.randn(2, 9, 6, 8, dtype=torch.float64, requires_grad=True)
    pooled = torch.randn(2, 3, 2, 8, dtype=torch.float64, requires_grad=True)
    names = list(tables)

    def fn(x: torch.Tensor, pooled: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(attn, dict(zip(names, values)), (x, pooled))

    assert torch.autograd.gradcheck(fn, (x, pooled, *(t.requires_grad_() for t in tables.values())))


def test_fc_window_pooling_without_gradients_equals_the_einsum() -> None:
    # without autograd the fc pooling runs as a depth-wise convolution (no window copy); it sums the same terms
    layers = build_pool_layers(24, 7, 2, 'fc')
    nn.init.normal_(layers[0].weight)
    nn.init.normal_(layers[0].bias)
    x = torch.randn(2, 14, 21, 24)
    with torch.no_grad():
        fast = pool_windows(x, 7, 'fc', layers)
    slow = pool_windows(x, 7, 'fc', layers)
    assert slow.requires_grad and fast.shape == slow.shape == (2, 2, 3, 24)
    assert (fast - slow).abs().max() <= 1e-5 * slow.abs().max()
    expected = (x.view(2, 2, 7, 3, 7, 24) * layers[0].weight.view(1, 1, 7, 1, 7, 1)).sum((2, 4)) + layers[0].bias
    assert torch.allclose(fast, expected, atol=1e-5)


def test_window_border_mask_is_exactly_the_keys_read_from_the_pooled_padding() -> None:
    # The fast paths mask at FAST_MASK_VALUE (inside exp's vector range, unlike -100). The piece loops add the
    # per-window mask to the position bias (FUSED) and the CPU core's backward sets those keys' recomputed
    # probabilities to 0, as they are at -100, from the same table: the pooled neighbourhood's slots outside the
    # grid, the official unfold's zeros.
    attn = FocalAttention(96, 3, 7, 3, 2, 7)
    hp, wp, fw = 56, 63, 7
    index, mask, key_mask, first = attn._key_index(hp, wp, torch.device('cpu'))
    assert set(mask.unique().tolist()) == {0., FAST_MASK_VALUE} and -87. < FAST_MASK_VALUE <= -50.
    assert torch.equal(key_mask[:, 0], mask[index])
    valid = F.unfold(torch.ones(1, 1, hp // 7, wp // 7), fw, padding=fw // 2)[0].t()  # (windows, fw*fw)
    expected = torch.cat([torch.zeros(index.shape[0], index.shape[1] - fw * fw, dtype=torch.bool), valid == 0], 1)
    assert torch.equal(key_mask[:, 0] != 0, expected) and 0 < int(expected.sum()) < expected.numel()
    assert first == index.shape[1] - fw * fw
    lone = FocalAttention(96, 3, 7, 3, 1)._key_index(hp, wp, torch.device('cpu'))  # no pooled level: no mask
    assert lone[1:] == (None, None, lone[0].shape[1])


def test_the_mask_channel_follows_the_path() -> None:
    # the piece loops (FUSED, the CPU core) run at d channels with a per-window mask; a geometry that disagrees
    # with the path is refused rather than masked twice or not at all
    attn = FocalAttention(96, 3, 7, 3, 2, 7)
    x, pooled = torch.randn(1, 14, 14, 96), torch.randn(1, 2, 2, 96)
    cpu = torch.device('cpu')
    assert not focal_v1.mask_channel(AttentionPath.FUSED, cpu) and not focal_v1.mask_channel(AttentionPath.CORE, cpu)
    assert focal_v1.mask_channel(AttentionPath.AUTOGRAD, cpu)
    assert focal_v1.mask_channel(AttentionPath.FUSED, torch.device('cuda'))  # one piece there: no (nW, h, s2, N) mask
    index, mask, key_mask, first = attn._key_index(14, 14, cpu)
    g = focal_v1.AttentionGeometry(grid=(2, 2), window=7, heads=3, head_dims=32, channels=33, pad=3,
                                   n_keys=index.shape[1], index=index.flatten(), mask=mask, key_mask=key_mask,
                                   first_masked=first, scale=attn.scale)
    qkv = attn.qkv(x)
    bias = attn.position_bias(merge_ring=True)[None, :, None]
    with pytest.raises(ValueError, match='channels=32'):
        focal_v1.focal_v1_attention(qkv, attn._pooled_kv(pooled), bias, g, AttentionPath.FUSED)
    with torch.no_grad():
        auto = focal_v1.focal_v1_attention(qkv, attn._pooled_kv(pooled), bias, g, AttentionPath.AUTOGRAD)
        fused = focal_v1.focal_v1_attention(qkv, attn._pooled_kv(pooled), bias, g._replace(channels=32),
                                            AttentionPath.FUSED)
    assert (auto - fused).abs().max() < 1e-5


@pytest.mark.parametrize('s,e,distinct', [(7, 3, 120), (7, 1, 32), (3, 1, 16), (2, 1, 12)])
def test_repeated_ring_keys_merge_into_one_per_source(s: int, e: int, distinct: int) -> None:
    offsets = expand_ring_offsets(s, e)
    first, slots, repeats = ring_duplicates(offsets)
    assert len(first) == distinct and len(first) + len(repeats) == len(offsets)
    assert len({tuple(o) for o in offsets[first].tolist()}) == distinct
    assert torch.equal(offsets[first][slots], offsets[repeats])
    # merged biases: the softmax over merged keys equals the one over all keys, for the same logits
    attn = FocalAttention(4 * s, 1, window_size=s, expand_size=e, focal_level=1)
    with torch.no_grad():
        attn.relative_position_bias_table_to_neighbors.normal_()
    full, merged = attn.position_bias()[0], attn.position_bias(merge_ring=True)[0]
    n_win = s * s
    ring_full, ring_merged = full[:, n_win:].exp(), merged[:, n_win:].exp()
    expect = ring_full[:, first].index_add(1, slots, ring_full[:, repeats])
    assert torch.allclose(ring_merged, expect, rtol=1e-5)


def test_attention_dropout_trains_and_is_off_in_eval() -> None:
    model = small_model(attn_drop_rate=0.5)
    ref = FocalTransformer(**SMALL, attn_drop_rate=0.5, attn_impl='reference')
    ref.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 64, 64)
    model.train()
    a, b = model(x)[3], model(x)[3]
    assert not torch.allclose(a, b)
    a.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    ref.eval()
    with torch.no_grad():
        assert (model(x)[3] - ref(x)[3]).abs().max() <= 1e-4


def test_bf16_autocast_training_step_on_cpu_is_close_to_fp32() -> None:
    # bf16 autocast through the training core: the gradients of every parameter against the fp32 step. Measured
    # relative L2 error of all gradients together 3.3-3.9% (three seeds, 2026-12-01); a wrong backward is ~100%.
    # With one thread PyTorch's own bf16 CPU kernels land much further from fp32: 29% for the reference
    # formulation (standard operators only) as for ours, on torch 2.1 and 2.14 (2026-12-02); two threads as measured.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = _bf16_and_fp32_gradients()
    finally:
        torch.set_num_threads(threads)
    assert (grads[1] - grads[0]).norm() <= 8e-2 * grads[0].norm()


def _bf16_and_fp32_gradients() -> list:
    model = small_model().train()
    x = torch.rand(2, 3, 64, 96)
    grads = []
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            feats = model(x)
        sum(f.float().square().mean() for f in feats).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    return grads


def test_attention_scratch_is_released_after_the_forward() -> None:
    model = small_model().eval()
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    assert scratch.nbytes == 0


@pytest.mark.parametrize('frozen_stages', [-1, 1])
def test_training_scratch_lives_until_the_backward_is_through(frozen_stages: int) -> None:
    # Kept from the forward for the backward (which gathers again), gone once the backward is through
    # the first attention that ran with autograd (with frozen stages, one of a later stage).
    model = small_model(frozen_stages=frozen_stages).train()
    feats = model(torch.rand(1, 3, 64, 64))
    assert scratch.nbytes > 0
    sum(f.square().mean() for f in feats).backward()
    assert scratch.nbytes == 0


def _mlp_modules(c: int = 24, hidden: int = 96, approximate: str = 'none') -> Tuple[nn.Module, ...]:
    torch.manual_seed(0)
    norm, fc1, fc2 = nn.LayerNorm(c), nn.Linear(c, hidden), nn.Linear(hidden, c)
    nn.init.normal_(norm.weight, 1., .2), nn.init.normal_(norm.bias, 0., .2)
    return norm, fc1, nn.GELU(approximate=approximate), fc2


@pytest.mark.parametrize('piece_bytes', [1, 4096, None])
def test_inference_mlp_in_pieces_equals_the_modules(piece_bytes: Optional[int]) -> None:
    # one row per piece, a few rows, one piece: every split computes the modules' sum, in place
    norm, fc1, act, fc2 = _mlp_modules()
    x = torch.randn(2, 37, 24)
    expected = x + fc2(act(fc1(norm(x))))
    out = x.clone()
    changes = {} if piece_bytes is None else {'piece_bytes': piece_bytes}
    with torch.no_grad(), attention_settings(**changes):
        assert fused_mlp_applies(out, norm, fc1, act, fc2, stochastic=False)
        result = fused_mlp_residual_(out, norm, fc1, fc2)
    assert result is out
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_inference_mlp_applies_only_where_it_computes_the_same() -> None:
    norm, fc1, act, fc2 = _mlp_modules()
    x = torch.randn(2, 5, 24)
    assert not fused_mlp_applies(x, norm, fc1, act, fc2, stochastic=False)  # grad mode: autograd needs the graph
    with torch.no_grad():
        assert fused_mlp_applies(x, norm, fc1, act, fc2, stochastic=False)
        assert not fused_mlp_applies(x, norm, fc1, act, fc2, stochastic=True)
        assert not fused_mlp_applies(x, norm, fc1, nn.GELU(approximate='tanh'), fc2, stochastic=False)
        assert not fused_mlp_applies(x, nn.GroupNorm(1, 24), fc1, act, fc2, stochastic=False)
        assert not fused_mlp_applies(x.transpose(0, 1), norm, fc1, act, fc2, stochastic=False)


def _mlp_step(x: torch.Tensor, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear, core: bool) -> tuple:
    """Output and gradients (input, fc1, fc2) of fc2(act(fc1(x))) with a fixed upstream gradient."""
    fc1.zero_grad(), fc2.zero_grad()
    x = x.detach().clone().requires_grad_()
    out = mlp_training(x, fc1, fc2) if core else fc2(act(fc1(x)))
    out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
    return out, x.grad, fc1.weight.grad, fc1.bias.grad, fc2.weight.grad, fc2.bias.grad


def _equal_to_rounding(got: torch.Tensor, expected: torch.Tensor) -> bool:
    """Whether two float32 sums of the same terms in other orders agree: max |diff| <= 1e-5 * max |expected|."""
    return bool((got - expected).abs().max() <= 1e-5 * expected.abs().max())


@pytest.mark.parametrize('piece_bytes', [1, 4096])
def test_training_mlp_in_pieces_equals_the_modules(piece_bytes: int) -> None:
    # one row per piece and a few rows: the output, input and weight gradients (sums over pieces) to rounding
    _, fc1, act, fc2 = _mlp_modules()
    nn.init.normal_(fc1.bias), nn.init.normal_(fc2.bias)
    x = torch.randn(2, 37, 24)
    expected = _mlp_step(x, fc1, act, fc2, core=False)
    with attention_settings(piece_bytes=piece_bytes):
        assert mlp_training_applies(x.requires_grad_(), fc1, act, fc2, dropout=False)
        got = _mlp_step(x, fc1, act, fc2, core=True)
    assert all(_equal_to_rounding(g, e) for g, e in zip(got, expected))


def test_training_mlp_computes_only_the_gradients_asked_for() -> None:
    # a frozen fc1 (fine-tuning the rest) gets none; the input and fc2 get the modules' gradients
    _, fc1, act, fc2 = _mlp_modules()
    fc1.requires_grad_(False)
    x = torch.randn(3, 20, 24)
    expected = _mlp_step(x, fc1, act, fc2, core=False)
    with attention_settings(piece_bytes=4096):
        got = _mlp_step(x, fc1, act, fc2, core=True)
    assert got[2] is None and got[3] is None
    assert all(_equal_to_rounding(got[i], expected[i]) for i in (0, 1, 4, 5))


def test_training_mlp_refuses_a_second_derivative_clearly() -> None:
    _, fc1, _, fc2 = _mlp_modules()
    x = torch.randn(2, 37, 24, requires_grad=True)
    with attention_settings(piece_bytes=4096):
        out = mlp_training(x, fc1, fc2)
    (grad,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='once_differentiable'):
        grad.sum().backward()


def test_training_mlp_applies_only_where_it_computes_the_same() -> None:
    _, fc1, act, fc2 = _mlp_modules()
    x = torch.randn(2, 37, 24, requires_grad=True)
    with attention_settings(piece_bytes=4096):
        assert mlp_training_applies(x, fc1, act, fc2, dropout=False)
        assert not mlp_training_applies(x, fc1, act, fc2, dropout=True)
        assert not mlp_training_applies(x, fc1, nn.GELU(approximate='tanh'), fc2, dropout=False)
        assert not mlp_training_applies(x.double(), fc1, act, fc2, dropout=False)  # dtype other than the weights'
        with torch.no_grad():  # inference: fused_mlp_residual_'s case
            assert not mlp_training_applies(x, fc1, act, fc2, dropout=False)
        with torch.autocast('cpu', dtype=torch.bfloat16):  # autocast recasts the modules' inputs
            assert not mlp_training_applies(x, fc1, act, fc2, dropout=False)
        fc1.requires_grad_(False), fc2.requires_grad_(False)
        assert not mlp_training_applies(x.detach(), fc1, act, fc2, dropout=False)  # nothing needs a gradient
        fc1.requires_grad_(True), fc2.requires_grad_(True)
    assert not mlp_training_applies(x, fc1, act, fc2, dropout=False)  # 74 rows are one piece: nothing to cut


def test_backbone_training_takes_the_mlp_core_and_matches_the_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    # pieces of 4 KiB: every block's MLP runs through MlpCore; features and parameter gradients to rounding against
    # the same model with the modules' MLP (the gradients elementwise, atol 1e-6: some are ~1e-7, sums of terms that
    # cancel, so a relative bound on each element would measure the cancellation, not the MLP)
    from mmfocal.models.layers import focal_block
    calls = []
    core = focal_block.mlp_training
    monkeypatch.setattr(focal_block, 'mlp_training', lambda *a: calls.append(1) or core(*a))
    model = small_model().train()
    x = torch.rand(2, 3, 64, 48)
    results = []
    for on in (True, False):
        if not on:
            monkeypatch.setattr(focal_block, 'mlp_training_applies', lambda *a, **k: False)
        model.zero_grad()
        with attention_settings(piece_bytes=4096):
            feats = model(x)
            sum(f.square().mean() for f in feats).backward()
        results.append((feats, {n: p.grad.clone() for n, p in model.named_parameters()}))
    assert len(calls) == sum(isinstance(m, focal_block.FocalMlp) for m in model.modules())
    assert all(_equal_to_rounding(a, b) for a, b in zip(results[0][0], results[1][0]))
    for name, g in results[0][1].items():
        assert torch.allclose(g, results[1][1][name], atol=1e-6, rtol=1e-4), name


def test_backbone_inference_equals_its_autograd_forward() -> None:
    # the blocks' inference MLP and fused attention against the graph-building forward of the same weights
    model = small_model().eval()
    x = torch.rand(1, 3, 75, 61)
    with torch.no_grad():
        fast = model(x)
    slow = model(x)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-5)


# --- parameter counts (spec section 7: official backbone without head) ------------------------

@pytest.mark.parametrize('arch,official_with_final_norm,final_norm', [
    ('tiny', 28_111_380, 2 * 768), ('small', 50_372_940, 2 * 768), ('base', 88_790_400, 2 * 1024)])
def test_parameter_counts_match_official(arch: str, official_with_final_norm: int, final_norm: int) -> None:
    model = FocalTransformer(arch=arch)
    channels = [model.embed_dims * 2 ** i for i in range(4)]
    ours = sum(p.numel() for p in model.parameters())
    # we replace the final norm by four output norms norm0..norm3
    assert ours == official_with_final_norm - final_norm + sum(2 * c for c in channels)


# --- checkpoints ----------------------------------------------------------------------------

def official_layout(model: FocalTransformer) -> dict:
    """A state dict laid out like an official checkpoint: head, index buffers, final norm."""
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith('norm')}
    state['norm.weight'] = torch.rand(256)
    state['norm.bias'] = torch.rand(256)
    state['head.weight'] = torch.rand(10, 256)
    state['head.bias'] = torch.rand(10)
    for name, buf in model.named_buffers(remove_duplicate=False):
        if name.endswith(('relative_position_index', 'relative_position_index_0', 'valid_ind_rolled')):
            state[name] = buf.clone()
    return state


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def log_lines():
    logger = MMLogger.get_current_instance()
    handler = LogCapture()
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


@pytest.mark.parametrize('layout', ['bare', 'model', 'state_dict_backbone', 'module_backbone'])
def test_checkpoint_layouts_load_with_no_missing_backbone_keys(tmp_path, layout: str, log_lines) -> None:
    source = small_model()
    official = official_layout(source)
    if layout == 'bare':
        ckpt = official
    elif layout == 'model':
        ckpt = {'model': official, 'epoch': 3}
    elif layout == 'state_dict_backbone':
        ckpt = {'state_dict': {**{f'backbone.{k}': v for k, v in source.state_dict().items()},
                               'neck.conv.weight': torch.rand(3)}, 'meta': {}}
    else:
        ckpt = {**{f'module.backbone.{k}': v for k, v in source.state_dict().items()},
                'module.rpn_head.conv.weight': torch.rand(3)}
    path = str(tmp_path / 'ckpt.pth')
    torch.save(ckpt, path)
    model = FocalTransformer(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    report = model.load_pretrained(path)
    if layout in ('bare', 'model'):
        assert sorted(report['missing']) == [f'norm{i}.{p}' for i in range(3) for p in ('bias', 'weight')]
        assert torch.equal(model.norm3.weight, official['norm.weight'])  # final norm initialises norm3
    else:
        assert report['missing'] == []
    assert report['unexpected'] == []
    for name, tensor in source.state_dict().items():
        if not name.startswith('norm'):
            assert torch.equal(model.state_dict()[name], tensor), name
    assert any('FocalTransformer: loaded' in line and 'missing (newly initialised)' in line for line in log_lines)


def test_bigger_focal_windows_resize_tables_with_a_log_line(tmp_path, log_lines) -> None:
    source = small_model()  # ImageNet focal windows (7, 5, 3, 1)
    with torch.no_grad():
        source.layers[0].blocks[0].attn.relative_position_bias_table_to_windows[0].fill_(0.7)
    path = str(tmp_path / 'in1k.pth')
    torch.save({'model': official_layout(source)}, path)
    model = FocalTransformer(**SMALL, focal_windows=(15, 13, 9, 7), init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    table = model.layers[0].blocks[0].attn.relative_position_bias_table_to_windows[0]
    assert table.shape == (1, 21 * 21)
    assert torch.allclose(table, torch.full_like(table, 0.7))  # bilinear resizing keeps a constant table
    assert any('resized' in line and 'relative_position_bias_table_to_windows' in line for line in log_lines)


def test_load_from_detector_checkpoint_resizes_through_the_hook(log_lines) -> None:
    source = small_model()
    target = nn.Module()
    target.backbone = FocalTransformer(**SMALL, focal_windows=(9, 9, 9, 9))
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['backbone.layers.0.blocks.0.attn.relative_position_index'] = torch.zeros(49, 49, dtype=torch.long)
    result = target.load_state_dict(state, strict=True)  # index buffers dropped, tables resized
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert any('resized bias tables' in line for line in log_lines)


def test_offline_converter_matches_online_loading(tmp_path) -> None:
    import subprocess
    import sys
    source = small_model()
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'converted.pth')
    torch.save({'model': official_layout(source)}, src)
    tool = osp.join(osp.dirname(__file__), '..', 'tools', 'model_converters', 'focal2mmfocal.py')
    subprocess.run([sys.executable, tool, src, dst], check=True, capture_output=True)
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert not any(k.startswith('head.') or k.endswith('relative_position_index') for k in converted)
    assert 'norm.weight' in converted  # kept under its name: the backbone maps it when it has norm3
    model = FocalTransformer(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=dst))
    model.init_weights()
    assert torch.equal(model.layers[2].blocks[0].attn.qkv.weight, source.layers[2].blocks[0].attn.qkv.weight)


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs,message', [
    (dict(arch='huge'), "Unknown arch 'huge'"),
    (dict(depths=(2, 2, 6), num_heads=(3, 6, 12, 24)), 'num_heads has 4 entries but depths has 3'),
    (dict(focal_windows=(7, 5, 3)), 'focal_windows has 3 entries'),
    (dict(expand_sizes=(3, 3)), 'expand_sizes has 2 entries'),
    (dict(focal_levels=(2, 2, 2, 3)), 'focal_levels\\[3\\]=3'),
    (dict(focal_windows=(7, 5, 4, 1)), 'focal_windows\\[2\\]=4: must be a positive odd number'),
    (dict(out_indices=(0, 4)), 'out_indices=\\(0, 4\\) out of range'),
    (dict(window_size=0), 'window_size must be >= 1'),
    (dict(expand_sizes=(7, 3, 3, 0)), 'expand_sizes\\[0\\]=7'),
    (dict(num_heads=(5, 6, 12, 24)), 'not divisible by num_heads=5'),
    (dict(frozen_stages=7), 'frozen_stages=7'),
    (dict(attn_impl='flash'), "attn_impl='flash'"),
])
def test_bad_arguments_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FocalTransformer(**kwargs)


def test_missing_checkpoint_fails_at_init_weights_not_at_construction(tmp_path) -> None:
    model = FocalTransformer(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.raises(FileNotFoundError, match='checkpoint not found') as info:
        model.init_weights()
    assert 'https://' not in str(info.value)  # not an official file name: no URL to offer
    official = FocalTransformer(**SMALL, init_cfg=dict(type='Pretrained',
                                                       checkpoint=str(tmp_path / 'focal-tiny-is224-ws7.pth')))
    with pytest.raises(FileNotFoundError, match='download it from https://projects4jw.blob.core.windows.net/'
                                                'model/focal-transformer/imagenet1k/focal-tiny-is224-ws7.pth'):
        official.init_weights()


def test_checkpoint_of_another_width_fails_at_init_weights(tmp_path) -> None:
    path = str(tmp_path / 'wide.pth')
    torch.save({'model': FocalTransformer(**{**SMALL, 'embed_dims': 64}).state_dict()}, path)
    model = FocalTransformer(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match='another width'):
        model.init_weights()


def test_checkpoint_without_focal_weights_is_rejected(tmp_path) -> None:
    path = str(tmp_path / 'resnet.pth')
    torch.save({'state_dict': {'conv1.weight': torch.rand(3)}}, path)
    model = FocalTransformer(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match='No Focal Transformer weights'):
        model.init_weights()


def test_incompatible_table_is_a_clear_error() -> None:
    source = small_model()
    model = FocalTransformer(**SMALL, expand_sizes=(2, 3, 3, 0))
    with pytest.raises(ValueError, match='cannot be resized'):
        model.load_state_dict(source.state_dict())
