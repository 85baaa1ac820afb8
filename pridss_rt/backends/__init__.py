"""Inference backends behind one interface (:class:`~pridss_rt.backends.base.Session`).

``open_networks(pack, backend)`` loads every network of a pack on one backend:

- ``trt``      TensorRT engines built by a source checkout's ``export/build_engines.py`` (manifest must match), cuda-python
- ``ort-trt``  ONNX Runtime with the TensorRT execution provider
- ``ort-cuda`` ONNX Runtime with the CUDA execution provider
- ``ort-cpu``  ONNX Runtime on the CPU (always available; the reference)
- ``auto``     the fastest of trt → ort-cuda → ort-cpu that really loads and runs here, and says which
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from pridss_rt._hints import build_engines
from pridss_rt.backends.base import Session
from pridss_rt.errors import BackendError
from pridss_rt.pack import ModelPack, load_pack

log = logging.getLogger("pridss_rt")

BACKENDS = ("trt", "ort-trt", "ort-cuda", "ort-cpu")
AUTO_ORDER = ("trt", "ort-cuda", "ort-cpu")


@dataclass
class Networks:
    """The sessions of one pack on one backend, by role (encoder, synthesis, gender, identity, ...)."""

    pack: ModelPack
    backend: str
    sessions: dict[str, Session]
    reason: str = ""
    tried: list[str] = field(default_factory=list)
    stream: object | None = None  # the CUDA stream all TensorRT sessions share (trt backend)

    def __getitem__(self, role: str) -> Session:
        return self.sessions[role]

    def __contains__(self, role: str) -> bool:
        return role in self.sessions

    def __iter__(self) -> Iterator[str]:
        return iter(self.sessions)

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.sessions = {}
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _probe(name: str, pack: ModelPack | None, engines_root) -> tuple[bool, str, Path | None]:
    """(usable, why, engine folder for ``trt``). The engine folder is found — and its manifest and engine
    hashes checked — once here, then handed to the loader."""
    if name.startswith("ort-"):
        from pridss_rt.backends import ort
        return (*ort.available(name), None)
    if name == "trt":
        from pridss_rt.backends.probe import machine
        m = machine()
        if m.tensorrt is None:
            return False, f"TensorRT not importable ({m.tensorrt_error}); pip install 'pridss-rt[trt]'", None
        if not m.gpu:
            return False, f"no NVIDIA GPU usable ({m.gpu_error})", None
        if pack is None:
            return True, f"TensorRT {m.tensorrt} on {m.gpu['name']}", None
        from pridss_rt.backends.trt.engines import find_engines
        folder, reasons = find_engines(pack, engines_root, gpu_name=m.gpu["name"],
                                       compute_capability=m.gpu["compute_capability"], trt_version=m.tensorrt)
        if folder is None:
            return False, ("no matching engines: " + "; ".join(reasons) +
                           f" (build them: {build_engines(pack.name)})"), None
        return True, f"engines in {folder}", folder
    raise BackendError(f"unknown backend '{name}' (choose from auto, {', '.join(BACKENDS)})")


def backend_available(name: str, pack: ModelPack | None = None, engines_root=None) -> tuple[bool, str]:
    """Cheap check (no network loaded) of whether ``name`` could work here, with the reason."""
    ok, why, _ = _probe(name, pack, engines_root)
    return ok, why


def _load(pack: ModelPack, name: str, folder: Path | None, engines_root, threads: int | None, cuda_graphs: bool,
          smoke_test: bool) -> Networks:
    """Every network of ``pack`` on backend ``name`` (``folder``: checked engine folder for ``trt``); with
    ``smoke_test`` each runs once at batch 1 on zeros, proving the backend really works here. On any
    failure everything loaded so far is released and the error propagates."""
    nets = Networks(pack, name, {})
    try:
        if name.startswith("ort-"):
            from pridss_rt.backends.ort import OrtSession
            cache = Path(engines_root or ".") / pack.name / "ort-trt-cache" if name == "ort-trt" else None
            for role, spec in pack.networks.items():
                nets.sessions[role] = OrtSession(spec, name, threads=threads, cache_dir=cache)
        else:
            from pridss_rt.backends.trt import cuda
            from pridss_rt.backends.trt.engines import read_manifest
            from pridss_rt.backends.trt.session import TrtSession
            manifest = read_manifest(folder)
            # one non-blocking stream for every network of the pack: stages are ordered on it without
            # host synchronization between them
            nets.stream = cuda.Stream()
            for role, spec in pack.networks.items():
                nets.sessions[role] = TrtSession(spec, Path(folder) / manifest["networks"][role]["engine"],
                                                 stream=nets.stream, cuda_graphs=cuda_graphs)
        if smoke_test:
            for s in nets.sessions.values():
                s.run({t.name: np.zeros(t.concrete(1), t.np_dtype) for t in s.inputs})
    except BaseException:
        nets.close()
        raise
    return nets


def open_networks(pack: ModelPack | str | os.PathLike = "demo", backend: str = "auto", *,
                  engines_root: str | os.PathLike | None = None, threads: int | None = None,
                  cuda_graphs: bool = False, smoke_test: bool = True) -> Networks:
    """Load every network of ``pack`` on ``backend`` (``auto`` picks and reports the backend)."""
    pack = load_pack(pack)
    if backend != "auto":
        if backend not in BACKENDS:
            raise BackendError(f"unknown backend '{backend}' (choose from auto, {', '.join(BACKENDS)})")
        ok, why, folder = _probe(backend, pack, engines_root)
        if not ok:
            raise BackendError(f"backend '{backend}' is not usable here: {why}")
        nets = _load(pack, backend, folder, engines_root, threads, cuda_graphs, smoke_test)
        nets.reason = f"requested: {why}"
        return nets
    tried: list[str] = []
    for name in AUTO_ORDER:
        ok, why, folder = _probe(name, pack, engines_root)
        if not ok:
            tried.append(f"{name}: {why}")
            continue
        try:
            nets = _load(pack, name, folder, engines_root, threads, cuda_graphs, smoke_test)
        except Exception as exc:
            tried.append(f"{name}: failed to load/run: {exc}")
            continue
        nets.reason = f"auto picked {name} ({why})" + ("; skipped " + " | ".join(tried) if tried else "")
        nets.tried = tried
        log.info("pridss-rt backend: %s", nets.reason)
        return nets
    raise BackendError("no backend works here: " + " | ".join(tried))
