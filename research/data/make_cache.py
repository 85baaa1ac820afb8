"""Decode all CelebA-HQ 128-px JPEGs once into a uint8 numpy cache (outside the repo).

Usage: python research/data/make_cache.py [--data ../shared/data/celebahq] [--out /tmp/celebahq_cache.npz]
Writes images [N,128,128,3] uint8 RGB (manifest order) plus identity, male, split (0=train,1=val).
"""
import argparse, csv, os
import numpy as np, cv2

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'data', 'celebahq'))
    ap.add_argument('--out', default='/tmp/celebahq_cache.npz')
    a = ap.parse_args()
    rows = list(csv.DictReader(open(os.path.join(a.data, 'manifest.csv'))))
    n = len(rows)
    imgs = np.zeros((n, 128, 128, 3), np.uint8)
    for i, r in enumerate(rows):
        im = cv2.imread(os.path.join(a.data, r['file']), cv2.IMREAD_COLOR)
        if im.shape[:2] != (128, 128):
            im = cv2.resize(im, (128, 128), interpolation=cv2.INTER_AREA)
        imgs[i] = im[:, :, ::-1]
    ident = np.array([int(r['identity']) for r in rows], np.int64)
    male = np.array([int(r['male']) for r in rows], np.uint8)
    split = np.array([0 if r['split'] == 'train' else 1 for r in rows], np.uint8)
    files = np.array([r['file'] for r in rows])
    np.save(a.out.replace('.npz', '_images.npy'), imgs)
    np.savez(a.out, identity=ident, male=male, split=split, files=files)
    print('cached', n, 'train', int((split == 0).sum()), 'val', int((split == 1).sum()))

if __name__ == '__main__':
    main()
