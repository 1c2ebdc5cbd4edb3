# mmdet's default runtime, with mmfocal imported (registers FocalTransformer / FocalTransformerV2 and the
# RepPointsV2 parts).
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
