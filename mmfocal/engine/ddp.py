"""Distributed data parallel on machines without CUDA: a CPU-capable DDP wrapper and the gloo setup."""

import os
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

__all__ = ['CPUCompatibleDDP', 'setup_distributed_cpu']


@MODEL_WRAPPERS.register_module()
class CPUCompatibleDDP(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps CPU modules (gloo), where ``device_ids`` must be None.

    mmengine passes ``device_ids=[LOCAL_RANK]`` to every DDP wrapper, which PyTorch rejects for a model
    on the CPU. On CUDA this behaves exactly like ``MMDistributedDataParallel``.

    Args:
        module: The model.
        device_ids: Devices of a CUDA model; ignored for CPU models.
        **kwargs: Passed to ``DistributedDataParallel``.
    """

    def __init__(self, module: torch.nn.Module, device_ids: Optional[List[int]] = None, **kwargs) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)


def setup_distributed_cpu(cfg: Config, launcher: str) -> bool:
    """Prepare a torchrun launch on a machine without CUDA: gloo process group and a CPU-capable DDP wrapper.

    mmengine's pytorch launcher calls ``torch.cuda.set_device`` and defaults to NCCL; initialising the
    process group first (gloo) makes mmengine keep it.

    Args:
        cfg: The config (modified in place).
        launcher: The ``--launcher`` value.

    Returns:
        True when the run is distributed on CPU.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper['type'] = 'CPUCompatibleDDP'
    cfg.model_wrapper_cfg = wrapper
    return True
