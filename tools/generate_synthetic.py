"""Write the deterministic synthetic COCO-format dataset (see mmext/datasets/synthetic.py).

    python tools/generate_synthetic.py                      # data/synthetic, train + val
    python tools/generate_synthetic.py --splits train_rows val_rows   # the row layout
    python tools/generate_synthetic.py --splits train_large val_large # 1024 / 256 images
"""
import argparse
import time

from mmext.datasets.synthetic import KNOWN_SPLITS, generate


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='data/synthetic')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        choices=sorted(KNOWN_SPLITS))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    t0 = time.time()
    files = generate(args.out_dir, {s: KNOWN_SPLITS[s] for s in args.splits}, args.seed)
    for split, ann in files.items():
        print(f'{split}: {KNOWN_SPLITS[split].num_images} images -> {ann}')
    print(f'done in {time.time() - t0:.1f} s')


if __name__ == '__main__':
    main()
