"""Packaging for mmfocal: Focal Transformer backbones for MMDetection 3.x and MMSegmentation 1.x."""

import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    """Read ``__version__`` from ``mmfocal/version.py`` without importing the package."""
    namespace: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmfocal', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmfocal',
    version=read_version(),
    description='Focal Transformer backbones (Yang et al., NeurIPS 2021) for MMDetection 3.x and MMSegmentation 1.x',
    long_description=open('README.md', encoding='utf-8').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'configs')),
    python_requires='>=3.9',
    # Lower bounds only: exact pins live in requirements.txt. A range here keeps
    # `pip install -e .` from replacing the torch build the user already has.
    install_requires=[
        'torch>=2.1',  # tested: 2.1.2 and 2.14.1 (README, "Supported stacks")
        'torchvision',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0rc4,<2.2.0',
        'timm',
        'numpy',
    ],
    extras_require={
        'det': ['mmdet>=3.3.0,<3.4.0', 'pycocotools'],
        'seg': ['mmsegmentation>=1.2.2,<1.3.0', 'ftfy', 'regex'],
        'tests': ['pytest', 'hypothesis', 'matplotlib'],
    },
    license='MIT',
    zip_safe=False,
)
