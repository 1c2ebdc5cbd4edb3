"""Plain functions for scripts and tools: run checks before training or testing, and the model index.

Everything here raises on bad input (:class:`UserError` for what a user can fix) and never ends the process.
Imported on use (``from mmfocal.apis import ...``): it pulls in mmengine's runner.
"""

from .configs import get_config, list_configs, resource_root
from .model_index import ModelEntry, load_model_index, model_key, paper_complexity, readme_table
from .tool_config import (UserError, annotation_files, build_runner, check_dataset_paths, check_pretrained_files,
                          check_resume_matches, classifier_checkpoint, dataset_hint, default_work_dir,
                          explain_data_error, load_tool_config)

__all__ = ['ModelEntry', 'UserError', 'get_config', 'list_configs', 'resource_root', 'annotation_files',
           'build_runner', 'check_dataset_paths', 'check_pretrained_files', 'check_resume_matches',
           'classifier_checkpoint', 'dataset_hint', 'default_work_dir',
           'explain_data_error', 'load_model_index', 'load_tool_config', 'model_key', 'paper_complexity',
           'readme_table']
