"""Body -> hands on one image (Simon et al., CVPR 2017, arXiv:1704.07809, OpenPose's pipeline):
body keypoints -> hand boxes (OpenPose rule by default) -> hand keypoints.

Body keypoints come from an MMPose top-down body model (COCO-17; ``--body-config`` and
``--body-checkpoint``, the whole image or ``--person-bbox`` as the person box) or from a COCO
person-keypoint annotation file (``--body-json``, annotations of the image with that file name):

    python tools/hand_demo.py IMG HAND_CONFIG HAND_CKPT --body-json person_keypoints_val2017.json
    python tools/hand_demo.py IMG HAND_CONFIG HAND_CKPT --body-config BODY_CFG \\
        --body-checkpoint BODY_CKPT

Writes the drawn image (``--out-file``) and the boxes/keypoints as json (``--out-json``).
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmext  # noqa: E402,F401
from mmext.pose.hand_box import BODY_LAYOUTS, HAND_BOX_RULES, OPENPOSE_SCORE_THR  # noqa: E402,E501
from mmext.pose.hands_from_body import HandsFromBody, draw_hands  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('img')
    p.add_argument('hand_config')
    p.add_argument('hand_checkpoint', nargs='?', default=None,
                   help='hand model weights (omit only to try the pipeline untrained)')
    p.add_argument('--body-config')
    p.add_argument('--body-checkpoint')
    p.add_argument('--body-json', help='COCO person-keypoint annotations instead of a body model')
    p.add_argument('--person-bbox', type=float, nargs=4, help='x1 y1 x2 y2 for the body model')
    p.add_argument('--rule', default='openpose', choices=tuple(HAND_BOX_RULES))
    p.add_argument('--score-thr', type=float, default=OPENPOSE_SCORE_THR)
    p.add_argument('--flip-left', action='store_true', default=None,
                   help="mirror left-hand crops (default: the hand model's test_cfg.mirror_left)")
    p.add_argument('--layout', default=None, choices=sorted(BODY_LAYOUTS),
                   help='body keypoint layout (default: by keypoint count)')
    p.add_argument('--hand-scale-number', type=int, default=1,
                   help="OpenPose's multi-scale hand test: number of scales (its best: 6)")
    p.add_argument('--hand-scale-range', type=float, default=0.4,
                   help="OpenPose's multi-scale hand test: total scale range (default 0.4)")
    p.add_argument('--device', default='cpu')
    p.add_argument('--out-file', default='work_dirs/hand_demo/hands.png')
    p.add_argument('--out-json', default=None)
    args = p.parse_args(argv)
    if (args.body_config is None) == (args.body_json is None):
        p.error('give exactly one of --body-config (with --body-checkpoint) or --body-json')
    if not osp.exists(args.img):
        p.error(f'image not found: {args.img}')
    return args


def body_from_json(ann_file: str, img_path: str):
    """Body keypoints ``(N, K, 3)`` (COCO-17 in a COCO file) of the image named like ``img_path`` in ``ann_file``."""
    with open(ann_file) as fh:
        coco = json.load(fh)
    name = osp.basename(img_path)
    ids = [im['id'] for im in coco['images'] if osp.basename(im['file_name']) == name]
    if not ids:
        raise ValueError(f'{ann_file} has no image named {name!r}')
    anns = [a for a in coco['annotations'] if a['image_id'] == ids[0] and a.get('num_keypoints', 1)]
    kpts = np.array([a['keypoints'] for a in anns], np.float64).reshape(len(anns), -1, 3)
    # COCO visibility 0 = not labelled: a missing joint, so its score is 0
    return kpts[..., :2], (kpts[..., 2] > 0).astype(np.float64)


def main(argv=None):
    args = parse_args(argv)
    import mmcv
    from mmpose.apis import init_model
    hand_model = init_model(args.hand_config, args.hand_checkpoint, device=args.device)
    body_model = None
    if args.body_config:
        body_model = init_model(args.body_config, args.body_checkpoint, device=args.device)
    pipeline = HandsFromBody(hand_model, body_model, rule=args.rule, score_thr=args.score_thr,
                             layout=args.layout, flip_left=args.flip_left,
                             hand_scale_number=args.hand_scale_number,
                             hand_scale_range=args.hand_scale_range)
    if args.body_json:
        kpts, scores = body_from_json(args.body_json, args.img)
        result = pipeline(args.img, kpts, scores)
    else:
        bbox = None if args.person_bbox is None else np.array([args.person_bbox], np.float32)
        result = pipeline(args.img, person_bboxes=bbox)
    mmcv.imwrite(draw_hands(mmcv.imread(args.img), result), args.out_file)
    n = int(result['hand_valid'].sum())
    print(f'{len(result["hand_boxes"])} people, {n} hands -> {args.out_file}')
    if args.out_json:
        with open(args.out_json, 'w') as fh:
            json.dump({k: np.asarray(v).tolist() for k, v in result.items() if v is not None}, fh)
    return result


if __name__ == '__main__':
    main()
