"""mmext: research models for the OpenMMLab ecosystem (MMDetection 3.3, MMPose 1.3)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'mmext' / 'version.py').read_text()).group(1)


def read_requirements():
    """Plain pins of requirements.txt (mmcv/mmpose/torch are installed by the Makefile)."""
    reqs = []
    for line in (HERE / 'requirements.txt').read_text().splitlines():
        line = line.split('#')[0].strip()
        if line and line.split('=')[0] not in ('pytest', 'psutil', 'timm', 'pandas', 'seaborn'):
            reqs.append(line)
    return reqs + ['torch', 'torchvision', 'mmcv>=2.0.0,<2.2.0']


setup(
    name='mmext',
    version=VERSION,
    description='Research models for MMDetection and MMPose: SpineNet, MixNet, ESPNetv2, '
    'clcNet, stacked CenterNet, Gaussian YOLOv3, SNIPER, hand keypoints, RepNet',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmext', 'mmext.*']),
    python_requires='>=3.10',
    install_requires=read_requirements(),
    extras_require={'tests': ['pytest', 'psutil']},
    license='Apache-2.0',
)
