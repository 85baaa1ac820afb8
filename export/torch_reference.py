#!/usr/bin/env python
"""Benchmark worker: the same pipeline as ``pridss-rt bench``, with every network run by eager PyTorch.

Run by ``pridss-rt bench`` in its own process (payload = the bench's JSON); prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    from export.torch_backend import open_torch_networks
    from pridss_rt.bench import run_worker

    payload = json.loads(sys.argv[1])
    payload["networks"] = open_torch_networks(payload["pack"], threads=payload.get("threads"))
    res = run_worker(payload)
    res["backend"] = "pytorch"
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
