"""The embedded synthetic dataset: deterministic, valid COCO, the variety the issue asks for."""
import filecmp
import os

import numpy as np
import pytest
from pycocotools.coco import COCO

from mmext.datasets.synthetic import (CLASSES, SyntheticSpec, generate, generate_split,
                                      render_image, _image_rng)


def _small(**kw):
    return SyntheticSpec(num_images=4, image_size=(96, 160), **kw)


def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    generate(str(a), {'train': _small()}, seed=3)
    generate(str(b), {'train': _small()}, seed=3)
    files = sorted(os.listdir(a / 'train'))
    assert files == sorted(os.listdir(b / 'train')) and len(files) == 4
    match, mismatch, errors = filecmp.cmpfiles(a / 'train', b / 'train', files, shallow=False)
    assert mismatch == [] and errors == []
    assert filecmp.cmp(a / 'annotations/train.json', b / 'annotations/train.json', shallow=False)


def test_other_seed_gives_other_images(tmp_path):
    generate(str(tmp_path / 'a'), {'train': _small()}, seed=0)
    generate(str(tmp_path / 'b'), {'train': _small()}, seed=1)
    assert not filecmp.cmp(tmp_path / 'a/train/000000.png', tmp_path / 'b/train/000000.png',
                           shallow=False)


def test_annotations_are_valid_coco(tmp_path):
    ann = generate_split(str(tmp_path), 'val', _small(), seed=0)
    coco = COCO(ann)
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    assert len(coco.getImgIds()) == 4
    for img in coco.loadImgs(coco.getImgIds()):
        assert os.path.exists(tmp_path / 'val' / img['file_name'])
        for a in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
            x, y, w, h = a['bbox']
            assert w > 0 and h > 0 and a['area'] > 0
            assert -1 <= x and x + w <= img['width'] + 1 and -1 <= y and y + h <= img['height'] + 1
            # polygons round-trip through pycocotools' mask API
            assert coco.annToMask(a).sum() > 0


def test_default_split_has_tiny_to_half_image_objects_and_large_images():
    sizes, big, ratios = [], 0, []
    spec = SyntheticSpec()
    for i in range(40):
        img, objs = render_image(_image_rng(0, 'train', i), spec)
        big += max(img.shape[:2]) > 1000
        for o in objs:
            sizes.append(o.size)
            ratios.append(o.size / min(img.shape[:2]))
    assert big >= 1, 'some images must be larger than 1000 px'
    assert min(sizes) < 12 and max(ratios) > 0.3
    assert len(sizes) / 40 >= 5, 'many objects per image'


def test_rows_layout_puts_objects_on_lines():
    img, objs = render_image(np.random.RandomState(0), SyntheticSpec(layout='rows'))
    ys = np.round([o.center[1] for o in objs], 3)
    assert len(objs) >= 6
    assert len(set(ys)) < len(objs) / 2, 'objects share rows'
    assert len({round(o.size, 6) for o in objs}) == 1, 'one size per image, like text'


def test_bad_spec_is_rejected_with_the_value():
    with pytest.raises(ValueError, match="layout='grid'"):
        SyntheticSpec(layout='grid')
    with pytest.raises(ValueError, match='object_size'):
        SyntheticSpec(object_size=(10, 5))


def test_dataset_type_generates_and_loads(tmp_path):
    from mmext.datasets import SyntheticShapesDataset
    ds = SyntheticShapesDataset(split='val', data_root=str(tmp_path) + '/', pipeline=[],
                                test_mode=True)
    assert len(ds) == 32 and ds.metainfo['classes'] == CLASSES
    with pytest.raises(ValueError, match="split='test'.*'train', 'val'"):
        SyntheticShapesDataset(split='test', data_root=str(tmp_path))


def test_large_splits_are_the_default_kind_eight_times_over():
    """train_large / val_large draw the same kind of image as train / val, only more of them,
    and every name the generator knows is a split the dataset takes."""
    from dataclasses import replace

    from mmext.datasets.synthetic import DEFAULT_SPLITS, KNOWN_SPLITS
    from mmext.datasets.synthetic_dataset import SPLITS
    for small, large, n in (('train', 'train_large', 1024), ('val', 'val_large', 256)):
        assert KNOWN_SPLITS[large] == replace(DEFAULT_SPLITS[small], num_images=n)
    assert set(SPLITS) == set(KNOWN_SPLITS) >= {'train_rows', 'val_rows'}


def test_unknown_split_is_named_by_the_generator(tmp_path):
    from mmext.datasets.synthetic import ensure_generated
    with pytest.raises(ValueError, match=r"\['val_huge'\] not one of .*'train_large'"):
        ensure_generated(str(tmp_path), ['val', 'val_huge'])
    assert not os.path.exists(tmp_path / 'annotations'), 'nothing written for a bad request'
