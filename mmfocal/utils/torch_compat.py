"""Small shims for the torch releases mmfocal supports (2.1 to 2.14), chosen by feature detection."""

from typing import Callable

from torch import nn

__all__ = ['register_load_state_dict_pre_hook']


def register_load_state_dict_pre_hook(module: nn.Module, hook: Callable[..., None]) -> None:
    """Run ``hook(module, state_dict, prefix, *args)`` before every ``module.load_state_dict``.

    ``nn.Module.register_load_state_dict_pre_hook`` became public after torch 2.1; torch 2.1 has only
    the private ``_register_load_state_dict_pre_hook(..., with_module=True)``, which calls the hook the
    same way.

    Args:
        module: The module whose loads the hook sees.
        hook: Called with the module, the incoming state dict, the module's prefix and the rest of
            ``_load_from_state_dict``'s arguments.
    """
    public = getattr(module, 'register_load_state_dict_pre_hook', None)
    if public is not None:
        public(hook)
    else:
        module._register_load_state_dict_pre_hook(hook, with_module=True)
