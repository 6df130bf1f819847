"""Every model family has a model card and a metafile in MMDetection's schema (issue 20)."""
import glob
import os.path as osp
import re

import pytest
import yaml

from conftest import ROOT

# config folders that are not a model family (the demo reuses SpineNet's CenterNet config)
NOT_FAMILIES = {'demo'}
FAMILIES = sorted(
    osp.basename(d) for d in glob.glob(osp.join(ROOT, 'configs', '*'))
    if osp.isdir(d) and osp.basename(d) not in NOT_FAMILIES)
# top-level configs listed by a family's metafile
EXTRA_CONFIGS = {'spinenet': ['configs/spinenet_retina.py']}
CARD_SECTIONS = ('## Abstract', '## Models', '## Deviations from the official code', '## Citation')


def _metafile(family):
    with open(osp.join(ROOT, 'configs', family, 'metafile.yml')) as f:
        return yaml.safe_load(f)


def test_there_are_ten_families():
    assert FAMILIES == sorted(['centernet_stacked', 'clcnet', 'distillation', 'espnetv2',
                               'gaussian_yolov3', 'hand', 'mixnet', 'repnet', 'sniper',
                               'spinenet'])


@pytest.mark.parametrize('family', FAMILIES)
def test_model_card_has_the_sections_and_a_bibtex_citation(family):
    card = open(osp.join(ROOT, 'configs', family, 'README.md')).read()
    missing = [s for s in CARD_SECTIONS if not re.search('^' + re.escape(s), card, re.M)]
    assert not missing, f'configs/{family}/README.md lacks {missing}'
    assert re.search(r'```bibtex\n@\w+\{\w+,', card), 'no BibTeX entry'
    assert re.search(r'arxiv\.org/abs/\d{4}\.\d{5}', card), 'the paper is not linked'


@pytest.mark.parametrize('family', FAMILIES)
def test_metafile_follows_mmdet_schema_and_lists_every_config(family):
    meta = _metafile(family)
    assert set(meta) == {'Collections', 'Models'}
    collections = {c['Name']: c for c in meta['Collections']}
    for c in collections.values():
        assert c['Paper']['URL'].startswith('https://') and c['Paper']['Title']
        assert c['Metadata']['Architecture']
        assert osp.isfile(osp.join(ROOT, c['README'])), c['README']
    listed = []
    for m in meta['Models']:
        assert m['In Collection'] in collections, m['Name']
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
        assert osp.isfile(osp.join(ROOT, m['Config'])), m['Config']
        assert isinstance(m['Metadata'], dict)
        for r in m.get('Results', []):
            assert {'Task', 'Dataset', 'Metrics'} <= set(r) and r['Metrics'], m['Name']
        listed.append(m['Config'])
    on_disk = sorted(osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', family, '*.py'))) + EXTRA_CONFIGS.get(family, [])
    assert sorted(listed) == sorted(on_disk), (
        'metafile out of date: run python tools/misc/update_metafiles.py')


def test_model_index_imports_every_metafile():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert sorted(index['Import']) == sorted(f'configs/{f}/metafile.yml' for f in FAMILIES)


def test_top_readme_links_every_model_card():
    readme = open(osp.join(ROOT, 'README.md')).read()
    for family in FAMILIES:
        assert f'](configs/{family}/README.md)' in readme, family


def test_license_and_changelog():
    license_text = open(osp.join(ROOT, 'LICENSE')).read()
    assert 'Apache License' in license_text and 'Version 2.0' in license_text
    setup = open(osp.join(ROOT, 'setup.py')).read()
    assert "license='Apache-2.0'" in setup
    changelog = open(osp.join(ROOT, 'CHANGELOG.md')).read()
    version = re.search(r"__version__ = '([\d.]+)'",
                        open(osp.join(ROOT, 'mmext', 'version.py')).read()).group(1)
    assert f'## {version}' in changelog
