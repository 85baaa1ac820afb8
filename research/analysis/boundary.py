"""Seam measure (issue #21 item 3) of the faces `pridss-rt eval --save-faces` wrote: per method, the median over
faces of pridss_rt.eval.metrics.boundary_ratio (gradient energy in a 3-px band on both sides of the edge of the
changed region, output against the original frame's in the same band; 1 = no added edge).

    python research/analysis/boundary.py runs/eval/v160 runs/eval/v170 ...
"""
import json, os, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from pridss_rt.eval.metrics import boundary_ratio


def main():
    out = {}
    for d in sys.argv[1:]:
        faces = Path(d) / 'faces'
        orig = np.load(faces / 'original.npz', allow_pickle=False)['faces']
        for f in sorted(faces.glob('*.npz')):
            if f.stem == 'original':
                continue
            x = np.load(f, allow_pickle=False)['faces']
            r = [boundary_ratio(a, b) for a, b in zip(x, orig)]
            r = np.array([v for v in r if v is not None])
            out[f'{Path(d).name}/{f.stem}'] = {'faces': int(len(r)), 'median': round(float(np.median(r)), 3),
                                               'mean': round(float(r.mean()), 3),
                                               'p90': round(float(np.percentile(r, 90)), 3)}
            print(f'{Path(d).name}/{f.stem}', json.dumps(out[f'{Path(d).name}/{f.stem}']), flush=True)
    return out


if __name__ == '__main__':
    main()
