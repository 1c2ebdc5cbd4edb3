"""Utilities of mmfocal: safe checkpoint loading, torch shims; the config and complexity helpers live in their own
modules (``mmfocal.utils.config``, ``mmfocal.utils.complexity``, imported on use: they pull in mmdet/mmseg)."""

from .checkpoint_compat import register_safe_globals, safe_torch_load
from .torch_compat import register_load_state_dict_pre_hook

__all__ = ['register_safe_globals', 'safe_torch_load', 'register_load_state_dict_pre_hook']
