"""The released Focal Transformer ImageNet models as timm models (registered when ``mmfocal`` is imported).

Nine names, one per official release (microsoft/Focal-Transformer README), each with the official file's URL
and the official evaluation preprocessing (resize the short side to 256 bicubic, centre crop 224: ``crop_pct``
0.875; ImageNet mean/std)::

    focal_{tiny,small,base}_patch4_window7_224            v1
    focal_{tiny,small,base}_useconv_patch4_window7_224    v1 with the conv stem
    focalv2_{tiny,small,base}_useconv_patch4_window7_224  Focal-fast

Built with timm's machinery (``build_model_with_cfg``, ``generate_default_cfgs``, ``register_model``) on
:class:`~mmfocal.models.classifiers.FocalClassifier` / ``FocalV2Classifier``: the backbone code of the
detectors underneath. ``features_only=True`` gives the NCHW stage maps at any input size through
``forward_intermediates`` (timm >= 1.0.3). Pretrained files and URLs are read by mmfocal's ``weights_only``
loader (never unpickled by timm, whose older releases load files with ``weights_only=False``).
"""

from typing import Any, Callable, Dict, Tuple

import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .classifiers import FocalClassifier, FocalV2Classifier, official_classifier_state_dict
from .utils.focal_checkpoint import OFFICIAL_CHECKPOINT_BASE, load_checkpoint_file

__all__ = ['RELEASED', 'checkpoint_filter_fn']

# timm name -> (family, arch, conv stem, official file, ImageNet-1K top-1, top-5 of the official README)
RELEASED: Dict[str, Tuple[str, str, bool, str, float, float]] = {}
_TOP = {('v1', False): {'tiny': (82.2, 95.9), 'small': (83.6, 96.2), 'base': (84.0, 96.5)},
        ('v1', True): {'tiny': (82.7, 96.1), 'small': (83.8, 96.5), 'base': (84.2, 97.1)},
        ('v2', True): {'tiny': (82.4, 96.0), 'small': (83.6, 96.4), 'base': (84.0, 96.6)}}
for (_family, _conv), _tops in _TOP.items():
    for _arch, (_top1, _top5) in _tops.items():
        _stem = '_useconv' if _conv else ''
        _name = f'focal{"v2" if _family == "v2" else ""}_{_arch}{_stem}_patch4_window7_224'
        _file = f'focal{"v2" if _family == "v2" else ""}-{_arch}{_stem.replace("_", "-")}-is224-ws7.pth'
        RELEASED[_name] = (_family, _arch, _conv, _file, _top1, _top5)
# stochastic depth of the official training configs
_DROP_PATH = {'tiny': 0.2, 'small': 0.3, 'base': 0.5}


def _cfg(file: str, **kwargs: Any) -> Dict[str, Any]:
    return dict(url=OFFICIAL_CHECKPOINT_BASE + file, num_classes=1000, input_size=(3, 224, 224), pool_size=(7, 7),
                crop_pct=0.875, crop_mode='center', interpolation='bicubic', fixed_input_size=False,
                mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, first_conv='patch_embed.proj',
                classifier='head', license='mit', paper_ids='arXiv:2107.00641',
                origin_url='https://github.com/microsoft/Focal-Transformer', **kwargs)


default_cfgs = generate_default_cfgs({f'{name}.ms_in1k': _cfg(spec[3]) for name, spec in RELEASED.items()})


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: nn.Module) -> Dict[str, Any]:
    """timm's pretrained filter: an official ImageNet file as the model's state dict (head kept).

    The stem keeps the file's three input channels: timm adapts them to ``in_chans`` after this filter (summed
    for one channel, repeated and rescaled for more), as for its own models.
    """
    return official_classifier_state_dict(state_dict, model, adapt_stem_later=True)


def _safe_pretrained_overlay(variant: str, kwargs: Dict[str, Any]) -> None:
    """Read the pretrained file (or URL) with mmfocal's ``weights_only`` loader and hand timm the tensors.

    Older timm releases unpickle files with ``weights_only=False``; loading here keeps every timm version from
    running pickled code, and a bad file gets mmfocal's error.
    """
    from timm.models._builder import resolve_pretrained_cfg
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=kwargs.get('pretrained_cfg'),
                                 pretrained_cfg_overlay=kwargs.get('pretrained_cfg_overlay')).to_dict()
    if cfg.get('state_dict') is not None or cfg.get('source') in ('hf-hub', 'local-dir'):
        return
    location = cfg.get('file') or cfg.get('url')
    if location:
        kwargs['pretrained_cfg_overlay'] = dict(kwargs.get('pretrained_cfg_overlay') or {},
                                                state_dict=load_checkpoint_file(location))


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    family, arch, conv = RELEASED[variant][:3]
    cls = FocalV2Classifier if family == 'v2' else FocalClassifier
    model_kwargs = dict(arch=arch, use_conv_embed=conv, drop_path_rate=_DROP_PATH[arch])
    model_kwargs.update(kwargs)
    if pretrained:
        _safe_pretrained_overlay(variant, model_kwargs)
    # timm takes out_indices for features_only=True; without it the classifier refuses them with a hint
    return build_model_with_cfg(cls, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
                                feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)), **model_kwargs)


def _entrypoint(variant: str) -> Callable[..., nn.Module]:
    def entry(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return _create(variant, pretrained=pretrained, **kwargs)

    family, arch, conv = RELEASED[variant][:3]
    entry.__name__ = entry.__qualname__ = variant
    entry.__doc__ = (f'Focal{"-fast" if family == "v2" else ""}-{arch[0].upper()}'
                     f'{" (conv stem)" if conv and family == "v1" else ""}, official ImageNet-1K weights.')
    return entry


for _variant in RELEASED:
    globals()[_variant] = register_model(_entrypoint(_variant))
