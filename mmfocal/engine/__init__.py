"""Training-engine pieces for mmengine: distributed runs on CPU machines."""

from .ddp import CPUCompatibleDDP, setup_distributed_cpu

__all__ = ['CPUCompatibleDDP', 'setup_distributed_cpu']
