"""Mutation check of the fake TensorRT/CUDA tests: apply one known mistake at a time to
pridss_rt/backends/trt/session.py, run the fake-backend tests, print which test catches it, restore the file.

    python tools/mutate_trt_session.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION = ROOT / "pridss_rt" / "backends" / "trt" / "session.py"
TESTS = ["tests/test_backend_trt_fake.py", "tests/test_gpu_path_fake.py"]

MUTATIONS = {
    "no warm-up run before CUDA-graph capture": (
        "                self._execute(ctx)  # TensorRT must run once on a new shape before capture (lazy allocations)\n",
        ""),
    "stream 0 passed to execute_async_v3": ("context.execute_async_v3(self.stream.ptr)", "context.execute_async_v3(0)"),
    "one context shared by the graphs of all batch sizes": (
        "        ctx = self._graph_contexts.get(batch)\n        if ctx is None:",
        "        ctx = self._graph_contexts.get(batch)\n        if ctx is None:\n            self._shape(self.context, batch)\n"
        "            self._graph_contexts[batch] = self.context\n            return self.context\n        if ctx is None:"),
    "pinned host buffers assumed float32": ("self._host[n] = cuda.PinnedBuffer(max_shapes[n], dtypes[n])",
                                            "self._host[n] = cuda.PinnedBuffer(max_shapes[n], np.float32)"),
    "no chunking above the profile's max batch": (
        "        if batch > self.max_batch:  # larger than the profile: run in chunks", "        if False:"),
}


def main() -> int:
    original = SESSION.read_text()
    survived = 0
    print("| mutation | result |\n|---|---|")
    try:
        for name, (old, new) in MUTATIONS.items():
            if old not in original:
                print(f"| {name} | not applicable: the code it mutates changed |")
                continue
            SESSION.write_text(original.replace(old, new))
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS],
                               cwd=ROOT, capture_output=True, text=True)
            failed = [ln.split(" - ")[0].removeprefix("FAILED ") for ln in r.stdout.splitlines() if ln.startswith("FAILED")]
            if r.returncode == 0:
                survived += 1
                print(f"| {name} | **survived** (every test passed) |")
            else:
                print(f"| {name} | caught: {failed[0] if failed else f'pytest exit {r.returncode}'} |")
    finally:
        SESSION.write_text(original)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
