"""Deterministic synthetic COCO-format detection data ("synthetic shapes").

Used by the demo, the tests and the synthetic variant of every config, since no dataset can be
downloaded at run time. Images hold filled shapes (one class per shape) on textured
backgrounds; object sizes span tiny (8 px) to half the image, and a share of the images is
larger than 1000 px, so that multi-scale methods (SNIPER, SpineNet) have something to do.

Same arguments and seed -> byte-identical files: every image draws from its own
``numpy.random.RandomState`` seeded from (seed, split, index), PNGs are written by OpenCV with a
fixed compression level and the JSON with sorted keys.

The generator is built from small pieces so that later variants (keypoints, row layouts) add a
field to :class:`ShapeObject` or a layout function instead of copying the whole thing.
"""
import json
import os
import os.path as osp
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

CLASSES = ('circle', 'square', 'triangle')
LAYOUTS = ('random', 'rows')


@dataclass
class SyntheticSpec:
    """What one split looks like.

    Args:
        num_images: number of images in the split.
        image_size: (min, max) side length in pixels of ordinary images.
        large_size: (min, max) side length of the large images (> 1000 px).
        large_prob: share of large images.
        num_objects: (min, max) objects per image.
        object_size: (min, max) object side in pixels; the max is also capped at half the
            image's short side. Sizes are drawn log-uniformly so tiny objects are common.
        layout: ``'random'`` (objects anywhere, little overlap) or ``'rows'`` (objects of one
            size laid out in lines, like characters of text).
    """
    num_images: int = 64
    image_size: Tuple[int, int] = (320, 640)
    large_size: Tuple[int, int] = (1024, 1333)
    large_prob: float = 0.1
    num_objects: Tuple[int, int] = (3, 12)
    object_size: Tuple[int, int] = (8, 320)
    layout: str = 'random'

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f'layout={self.layout!r} is not one of {LAYOUTS}')
        for name in ('image_size', 'large_size', 'num_objects', 'object_size'):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f'{name}={(lo, hi)} must satisfy 0 < min <= max')


@dataclass
class ShapeObject:
    """One drawn object: its class index, polygon (or circle) and box (x, y, w, h)."""
    label: int
    center: Tuple[float, float]
    size: float
    polygon: np.ndarray  # (N, 2) float, the outline that is filled
    extra: Dict = field(default_factory=dict)

    @property
    def bbox(self) -> List[float]:
        x0, y0 = self.polygon.min(0)
        x1, y1 = self.polygon.max(0)
        return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _image_rng(seed: int, split: str, index: int) -> np.random.RandomState:
    return np.random.RandomState(zlib.crc32(f'{seed}/{split}/{index}'.encode()) & 0x7FFFFFFF)


def _background(rng, h: int, w: int) -> np.ndarray:
    """Low-frequency colour blobs + stripes + pixel noise: a texture, not a flat field."""
    coarse = rng.randint(40, 200, size=(max(2, h // 64), max(2, w // 64), 3)).astype(np.uint8)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    period = rng.uniform(6, 30)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    img += rng.uniform(5, 20) * stripes[..., None]
    img += rng.normal(0, 8, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _outline(label: int, cx: float, cy: float, s: float, angle: float) -> np.ndarray:
    """Outline of a shape of side/diameter ``s`` centred at (cx, cy)."""
    if CLASSES[label] == 'circle':
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * s / 2
    elif CLASSES[label] == 'square':
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * s / 2
    else:  # triangle: equilateral, circumradius s/2
        t = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6])
        pts = np.stack([np.cos(t), np.sin(t)], 1) * s / 2
    if CLASSES[label] != 'circle':
        c, si = np.cos(angle), np.sin(angle)
        pts = pts @ np.array([[c, si], [-si, c]])
    return pts + np.array([cx, cy])


def _overlaps(box, boxes, max_iou=0.2) -> bool:
    x, y, w, h = box
    for bx, by, bw, bh in boxes:
        iw = min(x + w, bx + bw) - max(x, bx)
        ih = min(y + h, by + bh) - max(y, by)
        if iw > 0 and ih > 0:
            inter = iw * ih
            if inter / (w * h + bw * bh - inter) > max_iou or inter > 0.5 * min(w * h, bw * bh):
                return True
    return False


def _layout_random(rng, spec: SyntheticSpec, h: int, w: int) -> List[ShapeObject]:
    n = rng.randint(spec.num_objects[0], spec.num_objects[1] + 1)
    hi = min(spec.object_size[1], min(h, w) / 2)
    lo = min(spec.object_size[0], hi)
    objs, boxes = [], []
    for _ in range(n * 20):  # rejection sampling against overlaps
        if len(objs) == n:
            break
        s = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        cx, cy = rng.uniform(s / 2, w - s / 2), rng.uniform(s / 2, h - s / 2)
        label = int(rng.randint(len(CLASSES)))
        obj = ShapeObject(label, (cx, cy), s, _outline(label, cx, cy, s, rng.uniform(0, np.pi)))
        if not _overlaps(obj.bbox, boxes):
            objs.append(obj)
            boxes.append(obj.bbox)
    return objs


def _layout_rows(rng, spec: SyntheticSpec, h: int, w: int) -> List[ShapeObject]:
    """Lines of same-size upright shapes with regular gaps, like characters of text."""
    hi = min(spec.object_size[1], min(h, w) / 6)
    lo = min(max(spec.object_size[0], 12), hi)
    s = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    gap = s * rng.uniform(0.3, 0.8)
    objs = []
    y = gap + s / 2
    while y + s / 2 < h and len(objs) < spec.num_objects[1] * 4:
        x = rng.uniform(gap, 2 * gap) + s / 2
        while x + s / 2 < w:
            label = int(rng.randint(len(CLASSES)))
            objs.append(ShapeObject(label, (x, y), s, _outline(label, x, y, s, 0.0)))
            x += s + gap
        y += s + gap * rng.uniform(1.0, 2.0)
    return objs


def render_image(rng, spec: SyntheticSpec) -> Tuple[np.ndarray, List[ShapeObject]]:
    """Draw one image (BGR uint8) and return it with its objects."""
    rng_size = spec.large_size if rng.uniform() < spec.large_prob else spec.image_size
    h, w = (int(rng.randint(rng_size[0], rng_size[1] + 1)) for _ in range(2))
    img = _background(rng, h, w)
    layout = _layout_rows if spec.layout == 'rows' else _layout_random
    objs = layout(rng, spec, h, w)
    for obj in objs:
        colour = tuple(int(c) for c in rng.randint(0, 256, 3))
        if CLASSES[obj.label] == 'circle':
            r = max(1, int(round(obj.size / 2)))
            cv2.circle(img, tuple(int(round(c)) for c in obj.center), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.fillPoly(img, [np.round(obj.polygon).astype(np.int32)], colour, cv2.LINE_AA)
    return img, objs


def coco_annotation(obj: ShapeObject, ann_id: int, image_id: int) -> Dict:
    x, y, w, h = obj.bbox
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=obj.label + 1,
        bbox=[round(v, 2) for v in (x, y, w, h)],
        area=round(float(cv2.contourArea(obj.polygon.astype(np.float32))), 2),
        segmentation=[[round(float(v), 2) for v in obj.polygon.reshape(-1)]],
        iscrowd=0,
        **obj.extra)


def generate_split(out_dir: str, split: str, spec: SyntheticSpec, seed: int = 0) -> str:
    """Write ``out_dir/<split>/*.png`` and ``out_dir/annotations/<split>.json``; return the json."""
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for i in range(spec.num_images):
        img, objs = render_image(_image_rng(seed, split, i), spec)
        name = f'{i:06d}.png'
        ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        assert ok
        with open(osp.join(img_dir, name), 'wb') as f:
            f.write(buf.tobytes())
        images.append(dict(id=i + 1, file_name=name, height=img.shape[0], width=img.shape[1]))
        for obj in objs:
            annotations.append(coco_annotation(obj, len(annotations) + 1, i + 1))
    coco = dict(
        info=dict(description=f'mmext synthetic shapes ({split}, seed {seed}, {spec})'),
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=c, supercategory='shape') for i, c in enumerate(CLASSES)])
    ann_file = osp.join(out_dir, 'annotations', f'{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f, sort_keys=True, separators=(',', ':'))
    return ann_file


# The splits `tools/generate_synthetic.py` writes by default ("profiles"): what the demo and the
# synthetic configs read. Small enough to train in minutes on 2 CPU cores.
DEFAULT_SPLITS = {
    'train': SyntheticSpec(num_images=128),
    'val': SyntheticSpec(num_images=32),
}
ROWS_SPLITS = {
    'train_rows': SyntheticSpec(num_images=128, layout='rows'),
    'val_rows': SyntheticSpec(num_images=32, layout='rows'),
}


def generate(out_dir: str = 'data/synthetic',
             splits: Optional[Dict[str, SyntheticSpec]] = None,
             seed: int = 0) -> Dict[str, str]:
    """Generate the given splits (default: train/val) and return {split: annotation file}."""
    splits = DEFAULT_SPLITS if splits is None else splits
    return {name: generate_split(out_dir, name, spec, seed) for name, spec in splits.items()}


def ensure_generated(out_dir: str = 'data/synthetic', splits: Sequence[str] = ('train', 'val'),
                     seed: int = 0) -> None:
    """Generate the named default/rows splits whose annotation file is missing."""
    known = {**DEFAULT_SPLITS, **ROWS_SPLITS}
    todo = {s: known[s] for s in splits
            if not osp.exists(osp.join(out_dir, 'annotations', f'{s}.json'))}
    if todo:
        generate(out_dir, todo, seed)
