"""The repository stands alone: no doc, docstring or config points at a file a user cannot open."""
import os.path as osp
import re
import subprocess

import pytest

from conftest import ROOT

# files that exist only beside a developer's checkout, never in the repository (spelled in pieces
# so that this file does not match its own pattern)
_NOTES = ('REFERENCE', 'FACTS', 'STYLE')
OUTSIDE = re.compile('|'.join([rf'{n}\.md' for n in _NOTES] + [_NOTES[0] + ':', r'\.\./sha' + 'red',
                               'sha' + 'red/' + _NOTES[0], 'as we ' + 'recall', 'from ' + 'memory']))
TEXT = ('.py', '.md', '.yml', '.yaml', '.sh', '.txt', '.cfg', '.ini')


def _tracked():
    out = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip('not a git checkout')
    return [f for f in out.stdout.split() if f.endswith(TEXT) or f == 'Makefile']


def test_no_file_cites_material_outside_the_repository():
    bad = []
    for rel in _tracked():
        for i, line in enumerate(open(osp.join(ROOT, rel), errors='replace'), 1):
            if OUTSIDE.search(line):
                bad.append(f'{rel}:{i}: {line.strip()[:120]}')
    assert not bad, 'references to files outside the repository:\n' + '\n'.join(bad)


def test_markdown_links_and_cited_repo_paths_exist():
    bad = []
    for rel in _tracked():
        path = osp.join(ROOT, rel)
        text = open(path, errors='replace').read()
        if rel.endswith('.md'):
            for target in re.findall(r'\]\(([^)\s#]+)(?:#[^)]*)?\)', text):
                if '://' in target or target.startswith('mailto:'):
                    continue
                if not osp.exists(osp.normpath(osp.join(osp.dirname(path), target))):
                    bad.append(f'{rel}: link to {target}')
        # "configs/x/README.md" or "docs/..." named in prose or comments must exist
        for m in re.finditer(r'(?<![\w/.-])((?:configs|tools|benchmarks|mmext|tests)/'
                             r'[\w./-]+\.(?:md|yml|py|sh))', text):
            target = m.group(1)
            before = text[max(0, m.start() - 40):m.start()].lower()
            if ('*' in target or '{' in target or 'mmpose' in before or 'mmdet' in before
                    or target.startswith('configs/_base_/') or rel == 'tests/test_docs.py'):
                continue  # a path inside an upstream package (mmext has no _base_ configs)
            # a folder mmext has, but not the file: dangling (other folders are another
            # project's paths, e.g. the official code's configs/faster/...)
            if osp.isdir(osp.join(ROOT, osp.dirname(target))) and not osp.exists(
                    osp.join(ROOT, target)):
                bad.append(f'{rel}: names {target}')
    assert not bad, 'dangling references:\n' + '\n'.join(sorted(set(bad)))
