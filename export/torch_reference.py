#!/usr/bin/env python
"""Benchmark worker: the PyTorch reference pipeline, for ``pridss-rt bench``'s ratio.

The reference is the plain PriDSS loop in eager PyTorch, as a research implementation runs it: every
network — the MTCNN detector's three stages and the pack's encoder, synthesis, gender and identity
networks — executes as PyTorch ops (``export/torch_backend.py``), and every frame runs the full
K-candidate search for every face (no tracker, no reuse). pridss-rt's own run differs by the engine
(ONNX Runtime / TensorRT) and by the stream design (one search per track, then one synthesis per face).

Run by ``pridss-rt bench`` in its own process (payload = the bench's JSON); prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class TorchOrtLike:
    """The slice of the onnxruntime.InferenceSession API the MTCNN cascade uses, run by PyTorch."""

    def __init__(self, path: str):
        from export.torch_backend import TorchGraph

        self.graph = TorchGraph(path)
        self._inputs = [type("I", (), {"name": i.name})() for i in self.graph.graph.input]

    def get_inputs(self):
        return self._inputs

    def run(self, names, feeds):
        out = self.graph(feeds)
        return [out[n] for n in (names or self.graph.outputs)]


def torch_detector(threads: int | None):
    from pridss_rt.stages.detect import MTCNNDetector, mtcnn_model_dir

    det = MTCNNDetector(threads=1)
    folder = mtcnn_model_dir()
    det._p, det._r, det._o = (TorchOrtLike(str(folder / f"{n}.onnx")) for n in ("pnet", "rnet", "onet"))
    return det


def main() -> int:
    from export.torch_backend import open_torch_networks
    from pridss_rt.cli.bench import run_worker

    payload = json.loads(sys.argv[1])
    payload["networks"] = open_torch_networks(payload["pack"], threads=payload.get("threads"))
    payload["detector"] = torch_detector(payload.get("threads"))
    payload["track"] = False  # the reference loop searches every frame
    res = run_worker(payload)
    res["backend"] = "pytorch"
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
