"""Model utilities: finding, converting and adapting Focal Transformer checkpoints."""

from .focal_checkpoint import (OFFICIAL_CHECKPOINTS, CheckpointMismatchError, adapt_state_dict,
                               check_checkpoint_exists, extract_backbone_state_dict, load_checkpoint_file,
                               official_checkpoint_url, official_to_mmfocal, pretrained_checkpoint, summarize_keys)

__all__ = ['OFFICIAL_CHECKPOINTS', 'CheckpointMismatchError', 'adapt_state_dict', 'check_checkpoint_exists',
           'extract_backbone_state_dict', 'load_checkpoint_file', 'official_checkpoint_url', 'official_to_mmfocal',
           'pretrained_checkpoint', 'summarize_keys']
