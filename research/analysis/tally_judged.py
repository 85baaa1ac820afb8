"""Tally the by-eye verdicts on picture grids recorded in research/records/*.json (file names of the val faces and a
verdict per face; no images): counts of coherent / mild / clear composites per grid, per original gender and,
for the fresh faces, per half (the half of each draw the 24-face grid shows vs the half it does not); where the
records carry the critic's P(composite) of the chosen candidate, how well it flags the clear composites.

    python research/analysis/tally_judged.py research/records/grids_160.json
"""
import argparse, json, os, sys
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from pridss_rt.eval.metrics import roc_auc  # noqa: E402

VERDICTS = ('coherent', 'mild', 'clear')


def tally(faces):
    """{'all' | 'men' | 'women': (coherent, mild, clear)} of a list of face records."""
    out = {}
    for name, keep in (('all', lambda f: True), ('men', lambda f: f['male']), ('women', lambda f: not f['male'])):
        c = Counter(f['verdict'] for f in faces if keep(f))
        unknown = set(c) - set(VERDICTS)
        if unknown:
            raise ValueError(f'unknown verdicts {sorted(unknown)}; expected one of {VERDICTS}')
        out[name] = tuple(c[v] for v in VERDICTS)
    return out


def shown_by_default(f, per_draw=48):
    """Whether report.py's default 24-face grid (the first 12 men, the first 12 women of a draw) shows a face."""
    p, h = f['position'], per_draw // 2
    return p < 12 or h <= p < h + 12


def flag_quality(faces, thresholds=(0.3, 0.4, 0.5)):
    """How well P(composite) flags clear composites among clear + coherent faces: (ROC AUC, [(threshold, clear
    flagged, clear, coherent flagged, coherent)]); a tie counts half."""
    clear = [f['p_composite'] for f in faces if f['verdict'] == 'clear']
    coh = [f['p_composite'] for f in faces if f['verdict'] == 'coherent']
    if not clear or not coh:
        raise ValueError('need both clear and coherent faces with p_composite')
    auc = roc_auc(clear + coh, [1] * len(clear) + [0] * len(coh))
    return auc, [(t, sum(a > t for a in clear), len(clear), sum(b > t for b in coh), len(coh)) for t in thresholds]


def rows(doc):
    """(label, tally) rows of a judged file."""
    out = [('fixed grid', tally(doc['fixed_grid']['faces']))] if 'fixed_grid' in doc else []
    if 'fresh' in doc:
        fresh = doc['fresh']['faces']
        out += [('fresh, all', tally(fresh)),
                ('fresh, shown by the default grid', tally([f for f in fresh if shown_by_default(f)])),
                ('fresh, the other half', tally([f for f in fresh if not shown_by_default(f)]))]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('files', nargs='+')
    for path in ap.parse_args().files:
        doc = json.load(open(path))
        print(f'{path}: pack {doc["pack"]}; {doc["judged"]}')
        print(f'{"":34s} {"faces":>5s}  {"coherent / mild / clear":>24s}  {"men":>10s}  {"women":>10s}')
        for label, t in rows(doc):
            n = sum(t['all'])
            print(f'{label:34s} {n:5d}  {" / ".join(map(str, t["all"])):>24s}  {"/".join(map(str, t["men"])):>10s}  '
                  f'{"/".join(map(str, t["women"])):>10s}')
        fresh = doc.get('fresh', {}).get('faces', [])
        if fresh and all('p_composite' in f for f in fresh):
            auc, th = flag_quality(fresh)
            print(f'fresh: P(composite) of the chosen candidate, clear vs coherent: ROC AUC {auc:.3f}')
            for t, a, na, b, nb in th:
                print(f'  above {t:.1f}: {a} of {na} clear composites, {b} of {nb} coherent faces')


if __name__ == '__main__':
    main()
