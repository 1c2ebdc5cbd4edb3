"""Parameter and FLOP counting for mmfocal configs (the paper's numbers are in the model index)."""

import copy
import inspect
from functools import partial
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config

from .config import build_model, count_parameters, task_of

__all__ = ['DEFAULT_SHAPES', 'complexity']

# (H, W) the paper counts at: 1280x800 for detection (Swin's convention), 512x512 for UPerNet, 224 on ImageNet.
DEFAULT_SHAPES = {'mmdet': (800, 1280), 'mmseg': (512, 512), 'mmpretrain': (224, 224)}


def _dummy_samples(scope: str, h: int, w: int) -> list:
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                scale_factor=(1., 1.))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        sample = DetDataSample(metainfo=meta)
        # query-based detectors (Sparse R-CNN) read gt_instances even in tensor mode
        sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        return [sample]
    if scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        return [DataSample(metainfo=meta)]
    from mmseg.structures import SegDataSample
    return [SegDataSample(metainfo=meta)]


def _count_masks_like_mask_rcnn(model: torch.nn.Module) -> None:
    """Make a cascade's mask heads see the first 100 RoIs in tensor mode, as Mask R-CNN's do.

    mmdet's ``StandardRoIHead.forward`` (tensor mode) runs the mask head on ``rois[:100]``, but
    ``CascadeRoIHead.forward`` runs all three mask heads on every proposal (1000), which triples the count
    of a model that predicts at most 100 masks. Counted this way our Cascade Mask R-CNN lands at the
    paper's figure; without it, at ~2.9x.
    """
    roi_head = getattr(model, 'roi_head', None)
    if roi_head is None or type(roi_head).__name__ != 'CascadeRoIHead' or not roi_head.with_mask:
        return
    original = roi_head._mask_forward

    def first_100(stage: int, x: tuple, rois: torch.Tensor) -> dict:
        result = original(stage, x, rois[:100])
        preds = result['mask_preds']
        if len(rois) > 100:  # keep the shapes the caller splits by; the padding costs no FLOPs
            result['mask_preds'] = torch.cat([preds, preds.new_zeros((len(rois) - 100, ) + preds.shape[1:])])
        return result

    roi_head._mask_forward = first_100


def _deform_conv_flop_jit(inputs: list, outputs: list) -> int:
    # mmcv's DeformConv2d is a Python autograd op that the tracer cannot see into; count it as the
    # convolution it is (one multiply-accumulate per output element and weight of its group). The
    # bilinear sampling of the offsets is not counted, as fvcore does not count interpolation either.
    from mmengine.analysis.jit_handles import get_shape
    weight = get_shape(inputs[2])
    return int(np.prod(get_shape(outputs[0])) * np.prod(weight[1:]))


def complexity(cfg: Config, shape: Optional[Tuple[int, int]] = None, flops: bool = True) -> Dict[str, float]:
    """Count a config's parameters and (optionally) FLOPs with mmengine's analysis tools.

    The backbone is switched to the reference attention while counting: it expresses the attention as
    explicit matmuls, which mmengine's counter understands (it skips fused SDPA calls). Both
    implementations compute the same products.

    Args:
        cfg: A loaded config.
        shape: (H, W) of the input; defaults to the paper's (800, 1280) / (512, 512).
        flops: Also count FLOPs (multiply-accumulates, fvcore convention).

    Returns:
        ``{'params': ..., 'backbone_params': ..., 'flops': ..., 'shape': (H, W)}``.
    """
    from mmengine.analysis import FlopAnalyzer
    cfg = copy.deepcopy(cfg)
    scope = task_of(cfg)
    if cfg.model.backbone.get('type') in ('FocalTransformer', 'FocalTransformerV2'):
        cfg.model.backbone['attn_impl'] = 'reference'
    # Counting needs the heads' initialisation (below), never the ImageNet weights.
    cfg.model.backbone['init_cfg'] = None
    model = build_model(cfg).eval()
    out = dict(params=count_parameters(model), backbone_params=count_parameters(model, 'backbone'))
    h, w = shape or DEFAULT_SHAPES[scope]
    out['shape'] = (h, w)
    _count_masks_like_mask_rcnn(model)
    if flops:
        model.init_weights()  # a head with PyTorch's default init can emit inverted boxes (Sparse R-CNN)
        x = torch.rand(1, 3, h, w)
        samples = _dummy_samples(scope, h, w)
        head = getattr(model, 'decode_head', None)
        if head is not None and 'batch_data_samples' in inspect.signature(head.forward).parameters:
            # mmseg's tensor mode calls decode_head.forward(x), which Mask2Former's head refuses (it needs the
            # samples for the image sizes): count backbone, neck and head with the samples given
            model.forward = lambda inputs: head(model.extract_feat(inputs), samples)
        else:
            model.forward = partial(model.forward, data_samples=samples, mode='tensor')
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, (x, ))
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analyzer.set_op_handle('prim::PythonOp.DeformConv2dFunction', _deform_conv_flop_jit)
            out['flops'] = float(analyzer.total())
    return out
