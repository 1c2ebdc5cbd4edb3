"""Packaging for mmfocal: Focal Transformer backbones for MMDetection 3.x and MMSegmentation 1.x.

The configs, tools and model index ship inside the package, under ``mmfocal/.mim/`` (where OpenMMLab's ``mim`` and
``mmfocal.get_config`` look for them): linked to the checkout for an editable install, copied into a wheel or sdist.
"""

import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_version() -> str:
    """Read ``__version__`` from ``mmfocal/version.py`` without importing the package."""
    namespace: dict = {}
    with open(osp.join(HERE, 'mmfocal', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def add_mim_extension() -> None:
    """Put configs/, tools/ and model-index.yml under mmfocal/.mim: symlinks when developing, copies when building.

    An editable install reads the checkout's own files through the links, so edits show at once; a wheel or sdist
    must carry real files. Any other command (egg_info, ...) leaves .mim as it is.
    """
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim = osp.join(HERE, 'mmfocal', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim, name)
        if not osp.exists(src):  # building from an sdist: .mim already holds the copies
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()

setup(
    name='mmfocal',
    version=read_version(),
    description='Focal Transformer backbones (Yang et al., NeurIPS 2021) in plain PyTorch, for timm, MMDetection 3.x, '
    'MMSegmentation 1.x and mmpretrain',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    author='mmfocal contributors',
    url='https://github.com/microsoft/Focal-Transformer',
    keywords='computer vision, object detection, semantic segmentation, vision transformer, openmmlab',
    classifiers=[
        'Development Status :: 4 - Beta',
        'Intended Audience :: Science/Research',
        'License :: OSI Approved :: MIT License',
        'Operating System :: OS Independent',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'tools.*', 'configs', 'configs.*')),
    include_package_data=True,
    package_data={'mmfocal': ['.mim/model-index.yml', '.mim/configs/**/*', '.mim/tools/**/*']},
    python_requires='>=3.9',
    # What the model core needs: torch alone (lower bound only: a range keeps `pip install` from replacing the
    # torch build the user already has). Each face comes with its extra; mmdet / mmseg also need mmcv 2.1 with
    # its compiled ops, which no package registry serves prebuilt (docs/install.md says how to get it).
    install_requires=['torch>=2.1'],  # tested: 2.1.2 and 2.14.1 (docs/install.md)
    extras_require={
        'timm': ['timm>=1.0.3'],
        'det': ['mmengine>=0.10.0,<1.0.0', 'mmcv>=2.0.0rc4,<2.2.0', 'mmdet>=3.3.0,<3.4.0', 'pycocotools'],
        'seg': ['mmengine>=0.10.0,<1.0.0', 'mmcv>=2.0.0rc4,<2.2.0', 'mmsegmentation>=1.2.2,<1.3.0', 'ftfy', 'regex'],
        'cls': ['mmengine>=0.10.0,<1.0.0', 'mmpretrain>=1.2.0,<1.3.0'],
        'deploy': ['onnx', 'onnxruntime'],
        'tests': ['pytest', 'hypothesis', 'matplotlib', 'onnx', 'onnxruntime'],
    },
    entry_points={'console_scripts': ['mmfocal-config = mmfocal.apis.configs:main']},
    license='MIT',
    zip_safe=False,
)
