"""mmfocal's OpenMMLab model index (``model-index.yml`` + ``configs/*/metafile.yml``): the one place the paper's
numbers live, read by the README tables, ``tools/analysis/model_table.py``, ``mim`` and the tests; found in a
checkout or an installed package (:func:`~mmfocal.apis.configs.resource_root`)."""

import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import yaml

from .configs import resource_root

__all__ = ['ModelEntry', 'load_model_index', 'method_readme', 'method_readmes', 'model_key', 'paper_complexity',
           'readme_table']



class ModelEntry(dict):
    """One ``Models`` entry of a metafile, with accessors for what mmfocal uses."""

    @property
    def config(self) -> str:
        """Config path relative to the repository root."""
        return self['Config']

    @property
    def params_m(self) -> Optional[float]:
        """The paper's parameter count in millions, or None."""
        value = self['Metadata'].get('Parameters')
        return None if value is None else value / 1e6

    @property
    def flops_g(self) -> Optional[float]:
        """The paper's FLOPs (multiply-accumulates) in G, or None."""
        value = self['Metadata'].get('FLOPs')
        return None if value is None else value / 1e9

    @property
    def metrics(self) -> Dict[str, float]:
        """The paper's results for this config (empty where it reports none)."""
        return {k: v for r in self.get('Results', []) for k, v in r['Metrics'].items()}

    @property
    def reference(self) -> Optional[Dict[str, str]]:
        """``{'Backbone', 'Config', 'Results'}`` of the upstream model a beyond-the-paper config is compared with
        (its recipe with a Swin or ResNet backbone, trained there), or None for the paper's configs."""
        return self['Metadata'].get('Reference')

    @property
    def weights(self) -> Optional[str]:
        """URL of the released trained weights the config evaluates (the official ImageNet classifiers), or None."""
        return self.get('Weights')

    @property
    def pretrained(self) -> Optional[Dict[str, str]]:
        """``{'Name', 'Dataset', 'URL'}`` of the ImageNet checkpoint the config starts from (no ``URL`` when the
        weights were never released), or None."""
        return self['Metadata'].get('Pretrained')


def model_key(config: str) -> str:
    """``configs/mask_rcnn/focal_tiny_3x.py`` -> ``mask_rcnn/focal_tiny``: configs that build the same model
    (schedules differ) share a key."""
    parts = config.replace('\\', '/').split('/')
    return f"{parts[-2]}/{re.sub(r'_[0-9]+x$', '', parts[-1][:-3])}"


def load_model_index(root: Optional[str] = None) -> List[ModelEntry]:
    """Every model of ``model-index.yml``, in its order.

    Args:
        root: Folder holding ``model-index.yml`` (default: :func:`~mmfocal.apis.configs.resource_root`).

    Returns:
        The entries.
    """
    root = resource_root() if root is None else root
    index = osp.join(root, 'model-index.yml')
    if not osp.isfile(index):
        raise FileNotFoundError(f'{index} not found: give the root of an mmfocal checkout or of an installed '
                                'package (mmfocal.apis.resource_root()).')
    with open(index) as f:
        imports = yaml.safe_load(f)['Import']
    entries = []
    for metafile in imports:
        with open(osp.join(root, metafile)) as f:
            entries += [ModelEntry(m) for m in yaml.safe_load(f)['Models']]
    return entries


def paper_complexity(config: str, root: Optional[str] = None) -> Tuple[Optional[float], Optional[float]]:
    """(params in M, FLOPs in G) the paper gives for a config's model, (None, None) where it gives none.

    Args:
        config: Config path, absolute or relative to the repository root.
        root: Folder holding ``model-index.yml`` (default: the checkout or installed package).
    """
    root = resource_root() if root is None else root
    rel = osp.relpath(osp.abspath(osp.join(root, config)), root)
    for entry in load_model_index(root):
        if entry.config == rel:
            return entry.params_m, entry.flops_g
    return None, None


def readme_table(entries: List[ModelEntry], config_links: bool = False) -> str:
    """The README's model-zoo table (Markdown), generated from the index.

    Args:
        entries: From :func:`load_model_index`.
        config_links: Name each config by its file name, linked relative to its own folder (for
            ``configs/<method>/README.md``), instead of its path from the repository root.

    Returns:
        The table, one line per config.
    """
    lines = ['| config | backbone | schedule | starts from | params (M) | FLOPs (G) | paper result |',
             '|---|---|---|---|---:|---:|---|']
    for e in entries:
        meta = e['Metadata']
        schedule = f"{meta['Epochs']} epochs" if 'Epochs' in meta else f"{meta['Iterations'] // 1000}k iters"
        if e.weights:
            start = f"[`{osp.basename(e.weights)}`]({e.weights}) (official, trained)"
        elif not e.pretrained:
            start = 'ImageNet R-50 (mmdet)'
        elif 'URL' in e.pretrained:
            start = f"[`{e.pretrained['Name']}`]({e.pretrained['URL']})"
        else:
            start = f"`{e.pretrained['Name']}` ({e.pretrained['Dataset']}, not released)"
        params = f'{e.params_m:.1f}' if e.params_m else '–'
        flops = (f'{e.flops_g:.1f}' if e.flops_g < 20 else f'{e.flops_g:.0f}') if e.flops_g else '–'
        result = ', '.join(f'{k} {v}' for k, v in e.metrics.items()) or 'none reported'
        if e.reference:
            result = f"beyond the paper, not trained here ({e.reference['Backbone']} in " \
                     f"{e.reference['Config'].split('::')[0]}: {e.reference['Results']})"
        name = f'[`{osp.basename(e.config)}`]({osp.basename(e.config)})' if config_links else f'`{e.config}`'
        lines.append(f"| {name} | {meta['Backbone']} | {schedule} | {start} | {params} | {flops} | {result} |")
    return '\n'.join(lines)


METHOD_README_NOTE = ('<!-- generated from metafile.yml by `python tools/analysis/model_table.py --method-readmes`; '
                      'edit the metafile, then run that -->')


def method_readme(metafile: str, root: Optional[str] = None) -> str:
    """``configs/<method>/README.md``, generated from the method's metafile (OpenMMLab's per-method README).

    Args:
        metafile: Path of the metafile relative to ``root``.
        root: Folder holding ``model-index.yml`` (default: the checkout or installed package).

    Returns:
        The Markdown text.
    """
    root = resource_root() if root is None else root
    with open(osp.join(root, metafile)) as f:
        meta = yaml.safe_load(f)
    collections = meta['Collections']
    lines: List[str] = []
    for i, collection in enumerate(collections):
        # one section per collection (a method can hold both families' experiments); a single collection owns
        # every model of the metafile
        models = [m for m in meta['Models']
                  if len(collections) == 1 or m.get('In Collection') == collection['Name']]
        lines += _collection_readme(collection, [ModelEntry(m) for m in models], '#' if i == 0 else '##',
                                    note=i == 0)
    return '\n'.join(lines)


def _collection_readme(collection: dict, entries: List[ModelEntry], heading: str, note: bool) -> List[str]:
    """The README section of one metafile collection: title, paper line, table, what the numbers are."""
    paper = collection['Metadata'].get('Paper') or collection.get('Paper') or {}
    # a second family's collection is named after the method and the family ("Mask R-CNN (FocalNet)")
    name = re.sub(r' \((FocalNet|Focal Transformer)\)$', '', collection['Name'])
    architecture = ', '.join(collection['Metadata'].get('Architecture', []))
    data = collection['Metadata'].get('Training Data', '')
    # which focal family the method's models use: the title, the paper's venue and the official repository
    family, venue, repo = (('FocalNet', 'NeurIPS 2022', 'microsoft/FocalNet')
                           if 'FocalNet' in collection['Metadata'].get('Architecture', [])
                           else ('Focal Transformer', 'NeurIPS 2021', 'microsoft/Focal-Transformer'))
    metric = {'COCO': 'COCO minival box / mask AP', 'ImageNet-1K': 'ImageNet-1K val top-1 / top-5'}.get(
        data, f'{data} val mIoU')
    if any(e.weights for e in entries):
        trained = (f'The classifiers are the **official released weights** ({repo}), evaluated '
                   'with the official preprocessing: `python tools/test.py CONFIG checkpoints/FILE` takes the file '
                   'as it is.' + (' The fine-tuning config starts from one of them. The same models are in timm: '
                                  '`docs/classification.md`.' if family == 'Focal Transformer' else
                                  ' timm has the same models (`focalnet_*`); their files load here too: '
                                  '`docs/focalnet.md`.'))
    else:
        trained = ('**No model here was trained by mmfocal**: there are no trained checkpoints, only the ImageNet '
                   'file each config starts from (put it in `checkpoints/`).')
    if collection['Metadata'].get('Beyond Paper'):
        # a detector the paper does not have: its own paper, counts measured here, the upstream reference
        lines = [f"{heading} {name} with {family} backbones (beyond the paper)", '']
        lines += [METHOD_README_NOTE, ''] if note else []
        lines += [
            f"[{paper.get('Title', name)}]({paper.get('URL', '')}) with Focal backbones, as "
            f"short diffs over the mmdet / mmseg {name} recipes. Architecture: {architecture}. "
            f'The {family} paper has no such results.', '',
            readme_table(entries, config_links=True), '',
            'Params and FLOPs are counted here (`python tools/analysis/get_flops.py CONFIG`: 1280x800 for '
            'COCO, 512x512 for ADE20K). The result column gives the upstream model of the same recipe '
            '(named in metafile.yml, trained by mmdet / mmseg) for comparison. ' + trained +
            ' `configs/demo/` holds demo-sized versions that train on the embedded demo data.', '']
    else:
        lines = [f"{heading} {name} with {family} backbones", '']
        lines += [METHOD_README_NOTE, ''] if note else []
        lines += [
            f"[{paper.get('Title', family)}]({paper.get('URL', '')}) ({venue}): the paper's "
            f"{name} {'models' if data == 'ImageNet-1K' else 'experiments'}. Architecture: "
            f"{architecture}; trained on {data}.", '',
            readme_table(entries, config_links=True), '',
            f'Params and FLOPs are the published counts of each model (1x and 3x share them); results the '
            f'published {metric} where there is one (the paper\'s; for reference models their own '
            f"repositories', named in metafile.yml). {trained} mmfocal's own counts beside the paper's: "
            '`docs/model_zoo.md`.', '']
    return lines


def method_readmes(root: Optional[str] = None) -> Dict[str, str]:
    """``{path of configs/<method>/README.md: its generated text}`` for every metafile of the index."""
    root = resource_root() if root is None else root
    with open(osp.join(root, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    return {osp.join(osp.dirname(m), 'README.md'): method_readme(m, root) for m in imports}
