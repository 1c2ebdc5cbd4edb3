"""What a config's optimizer does to each backbone parameter, through mmengine's own optimizer constructor."""

from typing import Dict, Tuple

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

# parameters the Swin / Focal recipes exempt from weight decay, besides every norm: the relative-position tables
# (v1) and the position-bias MLPs that replace them in v2
TABLE_NAMES = ('relative_position_bias_table', 'coord2rpb')
NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)


def optimizer_settings(cfg: Config, model: torch.nn.Module) -> Dict[str, Tuple[float, float]]:
    """``{parameter name: (lr, weight_decay)}`` of the optimizer ``cfg.optim_wrapper`` builds for ``model``."""
    by_id = {}
    for group in build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups:
        for p in group['params']:
            by_id[id(p)] = (group['lr'], group['weight_decay'])
    return {n: by_id[id(p)] for n, p in model.named_parameters() if p.requires_grad}


def assert_backbone_paramwise(cfg: Config, model: torch.nn.Module, prefix: str = 'backbone.') -> None:
    """Every custom key matches a parameter; backbone norms and tables get no decay, the other backbone weights the
    recipe's decay and every backbone parameter the backbone's lr; a key written for the backbone reaches another
    module only to exempt a norm from decay (the Swin recipes' global ``'norm'`` key), never to change its lr.

    Args:
        cfg: The config (its ``optim_wrapper``).
        model: The model it builds.
        prefix: Name prefix of the backbone's parameters.
    """
    optimizer = cfg.optim_wrapper.optimizer
    paramwise = cfg.optim_wrapper.get('paramwise_cfg') or {}
    keys = paramwise.get('custom_keys') or {}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    unmatched = [k for k in keys if not any(k in n for n in names)]
    assert not unmatched, f'custom_keys that match no parameter: {unmatched}'
    # mmengine takes, per parameter, the first matching key of this order
    order = sorted(sorted(keys), key=len, reverse=True)
    backbone_keys = {k for k in keys if k != 'backbone' and any(k in n for n in names if n.startswith(prefix))}
    norm_params = {f'{m_name}.{p_name}' for m_name, m in model.named_modules() if isinstance(m, NORMS)
                   for p_name, _ in m.named_parameters(recurse=False)}
    for name in names:
        if not name.startswith(prefix):
            first = next((k for k in order if k in name), None)
            if first in backbone_keys:
                assert name in norm_params and keys[first].get('lr_mult', 1.) == 1., \
                    f'{name} takes the backbone key {first!r}'
    lr = optimizer.lr * keys.get('backbone', {}).get('lr_mult', 1.)
    settings = optimizer_settings(cfg, model)
    for name in names:
        if not name.startswith(prefix):
            continue
        got_lr, got_decay = settings[name]
        assert abs(got_lr - lr) <= 1e-12 * lr, f'{name}: lr {got_lr}, backbone lr {lr}'
        if name in norm_params or any(t in name for t in TABLE_NAMES):
            assert got_decay == 0, f'{name} (a norm or position table) gets weight decay {got_decay}'
        elif name.endswith('.weight') and not name.startswith(tuple(n.rsplit('.', 1)[0] for n in norm_params)):
            assert got_decay == optimizer.weight_decay, f'{name}: decay {got_decay}'
