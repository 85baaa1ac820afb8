"""Time each network of a pack with ONNX Runtime on the CPU (2 intra-op threads) at batch 1 and 5.

Usage: python research/pack/bench_pack.py --pack runs/pack_demo  (median of --reps runs; shared CPUs inflate it)
"""
import argparse, json, os, time
import numpy as np, onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pack', default='runs/pack_demo')
    ap.add_argument('--reps', type=int, default=30)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    man = json.load(open(os.path.join(a.pack, 'pack.json')))
    so = ort.SessionOptions(); so.intra_op_num_threads = a.threads
    res = {}
    for role, net in man['networks'].items():
        s = ort.InferenceSession(os.path.join(a.pack, net['file']), so, providers=['CPUExecutionProvider'])
        inp = s.get_inputs()[0]
        for b in (1, 5):
            x = np.random.default_rng(0).standard_normal([b] + [d for d in net['inputs'][0]['shape'][1:]]).astype(np.float32)
            for _ in range(3):
                s.run(None, {inp.name: x})
            t = []
            for _ in range(a.reps):
                t0 = time.perf_counter(); s.run(None, {inp.name: x}); t.append(time.perf_counter() - t0)
            res[f'{role}_b{b}_ms'] = round(1000 * float(np.median(t)), 2)
    print(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
