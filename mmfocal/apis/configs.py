"""The configs, tools and model index that ship with mmfocal, found from a checkout or an installed package.

A checkout has them at its root (``configs/``, ``tools/``, ``model-index.yml``); an installed wheel has copies under
``mmfocal/.mim/`` (where OpenMMLab's ``mim`` looks too). :func:`get_config` reaches a config by name from either, so
an external config can ``_base_`` it.
"""

import argparse
import glob
import os.path as osp
from typing import List, Optional, Sequence, Union

__all__ = ['get_config', 'list_configs', 'main', 'resource_root']

_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))


def resource_root() -> str:
    """The folder holding ``configs/``, ``tools/`` and ``model-index.yml``: the checkout mmfocal is imported from,
    else the installed package's ``.mim`` folder.

    Raises:
        FileNotFoundError: Neither has them (a package built without them).
    """
    for root in (osp.dirname(_PACKAGE), osp.join(_PACKAGE, '.mim')):
        if osp.isfile(osp.join(root, 'model-index.yml')) and osp.isdir(osp.join(root, 'configs')):
            return root
    raise FileNotFoundError(f'mmfocal at {_PACKAGE} has neither a checkout around it nor the configs of an installed '
                            'package (mmfocal/.mim): reinstall mmfocal from a wheel or sdist, or `pip install -e .` '
                            'from a checkout.')


def list_configs() -> List[str]:
    """Names of the shipped configs, ``'<method>/<name>'`` (e.g. ``'mask_rcnn/focal_tiny_1x'``), sorted."""
    configs = osp.join(resource_root(), 'configs')
    paths = glob.glob(osp.join(configs, '*', '*.py'))
    return sorted(osp.relpath(p, configs)[:-3].replace(osp.sep, '/') for p in paths
                  if not osp.basename(p).startswith('_') and osp.basename(osp.dirname(p)) != '_base_')


def get_config(name: str, as_config: bool = False) -> Union[str, 'object']:
    """A shipped config by name: its path, or with ``as_config=True`` the loaded ``mmengine.Config``.

    Args:
        name: ``'<method>/<name>'`` as :func:`list_configs` gives it (``'mask_rcnn/focal_tiny_1x'``), with or
            without ``.py`` and a leading ``configs/``.
        as_config: Load it with ``mmengine.config.Config.fromfile``.

    Raises:
        FileNotFoundError: No such config; the message lists the nearest names.
    """
    key = name[len('configs/'):] if name.startswith('configs/') else name
    key = key[:-3] if key.endswith('.py') else key
    path = osp.join(resource_root(), 'configs', *key.split('/')) + '.py'
    if not osp.isfile(path):
        method = key.split('/')[0]
        near = [c for c in list_configs() if c.startswith(method + '/')] or list_configs()
        raise FileNotFoundError(f'mmfocal has no config {name!r}; e.g. {", ".join(near[:6])} '
                                '(`mmfocal-config list` shows them all).')
    if as_config:
        from mmengine.config import Config
        return Config.fromfile(path)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mmfocal-config list`` / ``mmfocal-config path NAME`` / ``mmfocal-config show NAME``.

    Returns:
        The exit status for the launcher (0, or 2 for an unknown config).
    """
    parser = argparse.ArgumentParser(prog='mmfocal-config', description='the configs that ship with mmfocal')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='print every config name')
    for command, text in (('path', 'print the path of a config'), ('show', 'print a config, bases resolved')):
        sub.add_parser(command, help=text).add_argument('name', help="e.g. 'mask_rcnn/focal_tiny_1x'")
    args = parser.parse_args(argv)
    if args.command == 'list':
        print('\n'.join(list_configs()))
        return 0
    try:
        if args.command == 'path':
            print(get_config(args.name))
        else:
            print(get_config(args.name, as_config=True).pretty_text)
    except FileNotFoundError as exc:
        print(f'error: {exc}')
        return 2
    return 0
