"""Strongly-typed TensorRT engine builds that work on TensorRT 10 and 11.

Precision comes from the ONNX graph (FP16 ONNX from :mod:`export.fp16`), never from
``BuilderFlag.FP16``: TensorRT 11 removed that flag, and a ``hasattr`` guard around it silently builds
FP32 engines there. On TensorRT 10 the network is created with the STRONGLY_TYPED flag; on 11 every
network is strongly typed (the flag, where still present, is harmless).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

Shape = tuple[int, ...]


def tensorrt():
    import tensorrt as trt  # only imported when a build really happens

    return trt


def major(version: str) -> int:
    return int(str(version).split(".")[0])


def network_flags(trt) -> int:
    flags = 0
    strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly is not None:
        flags |= 1 << int(strongly)
    return flags


def make_progress_monitor(trt, label: str):
    """An ``IProgressMonitor`` drawing tqdm bars per build phase (None if this TensorRT lacks it)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    from tqdm import tqdm

    class TqdmMonitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._bars: dict[str, tqdm] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            depth = 0 if parent_phase is None else 1
            self._bars[phase_name] = tqdm(total=num_steps, desc=f"{label}: {phase_name}", leave=depth == 0,
                                          position=depth, unit="step")

        def step_complete(self, phase_name, step):
            bar = self._bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            bar = self._bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return TqdmMonitor()


@dataclass
class BuildResult:
    engine: bytes
    layers: int
    half_layers: int
    seconds: float


def build_engine(onnx_path: str | Path, profile: Mapping[str, tuple[Shape, Shape, Shape]], *,
                 timing_cache: str | Path | None = None, workspace_mb: int = 2048, opt_level: int = 3,
                 tf32: bool = True, progress: bool = True, label: str = "") -> BuildResult:
    """Parse ``onnx_path`` and build a serialized engine with one optimization profile."""
    import time

    trt = tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    config.builder_optimization_level = opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if not tf32 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    prof = builder.create_optimization_profile()
    for name, (mn, opt, mx) in profile.items():
        prof.set_shape(name, mn, opt, mx)
    config.add_optimization_profile(prof)
    cache_path = Path(timing_cache) if timing_cache else None
    if cache_path is not None:
        old = cache_path.read_bytes() if cache_path.is_file() else b""
        cache = config.create_timing_cache(old)
        if cache is None or not config.set_timing_cache(cache, False):
            # a cache from another TensorRT or GPU is refused: build without it (a fresh one is written below)
            cache = config.create_timing_cache(b"")
            if cache is None or not config.set_timing_cache(cache, False):
                raise RuntimeError(f"{cache_path}: TensorRT refused even an empty timing cache")
    monitor = make_progress_monitor(trt, label or Path(onnx_path).stem) if progress else None
    if monitor is not None:
        config.progress_monitor = monitor
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT engine build failed (see the log above)")
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    engine = bytes(memoryview(serialized))
    layers, half = inspect_precision(engine)
    return BuildResult(engine, layers, half, seconds)


def inspect_precision(engine_bytes: bytes) -> tuple[int, int]:
    """(layers, layers with an FP16 output) from the engine inspector's JSON."""
    trt = tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise RuntimeError("TensorRT could not deserialize the engine it has just built (see the log above)")
    inspector = engine.create_engine_inspector()
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    return count_half_layers(info)


_HALF = re.compile(r"\b(half|fp16|float16)\b", re.IGNORECASE)


def count_half_layers(info: dict) -> tuple[int, int]:
    """Count layers (and those with FP16 outputs) in engine-inspector JSON (TRT 10 and 11 layouts)."""
    layers = info.get("Layers", [])
    total = half = 0
    for layer in layers:
        if isinstance(layer, str):  # ProfilingVerbosity below DETAILED: names only
            total += 1
            continue
        total += 1
        outs = layer.get("Outputs", [])
        if any(_HALF.search(json.dumps(o)) for o in outs):
            half += 1
    return total, half


def batch_profile(inputs, min_batch: int, opt_batch: int, max_batch: int) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Optimization profile over the symbolic batch dim of each input (``TensorSpec``-like objects)."""
    return {t.name: (tuple(t.concrete(min_batch)), tuple(t.concrete(opt_batch)), tuple(t.concrete(max_batch)))
            for t in inputs}
