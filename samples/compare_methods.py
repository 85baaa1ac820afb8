"""PriDSS next to the baselines of `pridss-rt eval` on one picture: original | PriDSS (K) | gender swap
only | Gaussian blur | pixelate, each cut around the detected faces, with a label row.

    python samples/compare_methods.py                              # the shipped public-domain sample
    python samples/compare_methods.py photo.jpg -o compare.jpg --pack demo -k 5

The same methods as the evaluation's rows (docs/evaluation.md): "gender swap only" takes every latent
segment from the chosen opposite-gender reference (no identity kept); blur and pixelate cover the face
box expanded by 20 %. Faces the detector misses stay untouched in every column.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    import cv2

    from pridss_rt.anonymizer import Anonymizer, SearchConfig
    from pridss_rt.eval.baselines import cover_boxes, swap_only_pack
    from pridss_rt.media import SAMPLE, read_image, write_image
    from pridss_rt.stages.blend import expand_box

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image", nargs="?", default=str(SAMPLE), help="input image (default: the shipped sample)")
    ap.add_argument("-o", "--out", default="compare_methods.jpg")
    ap.add_argument("--pack", default="demo")
    ap.add_argument("-k", "--candidates", type=int, default=None)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--height", type=int, default=256, help="height of each column in the output (px)")
    a = ap.parse_args(argv)

    frame = read_image(a.image)
    anon = Anonymizer(a.pack, a.backend, search=SearchConfig(candidates=a.candidates), tracking=False)
    pridss, faces = anon.process(frame)
    if not faces:
        print(f"compare_methods: no face found in {a.image}", file=sys.stderr)
        return 1
    swap = Anonymizer(swap_only_pack(anon.pack), search=SearchConfig(candidates=anon.candidates), tracking=False,
                      networks=anon.nets)
    swapped, _ = swap.process(frame)
    blurred = cover_boxes(frame, [f.box for f in faces], "blur")  # the eval's baselines, same boxes
    pixelated = cover_boxes(frame, [f.box for f in faces], "pixelate")
    # one view around all faces (boxes expanded by 60 %)
    boxes = np.array([expand_box(np.asarray(f.box), frame.shape, margin=0.6) for f in faces])
    x1, y1 = boxes[:, :2].min(0)
    x2, y2 = boxes[:, 2:].max(0)
    cols = [("original", frame), (f"PriDSS (K={anon.candidates})", pridss), ("gender swap only", swapped),
            ("Gaussian blur", blurred), ("pixelate", pixelated)]
    tiles = []
    for label, img in cols:
        view = img[y1:y2, x1:x2]
        w = max(1, round(view.shape[1] * a.height / view.shape[0]))
        view = cv2.resize(view, (w, a.height), interpolation=cv2.INTER_AREA)
        head = np.full((24, w, 3), 255, np.uint8)
        cv2.putText(head, label, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.pad(np.vstack([head, view]), ((0, 0), (0, 4), (0, 0)), constant_values=255))
    write_image(a.out, np.hstack(tiles))
    for f in faces:
        print(f"face {[round(v) for v in f.box]}: {f.status}, P(male) {f.p_male_before} -> {f.p_male_after}, "
              f"SIM {f.sim}")
    print(f"compare_methods: wrote {a.out}")
    anon.close()  # the swap-only anonymizer shares its networks
    return 0


if __name__ == "__main__":
    sys.exit(main())
