"""The one small interface every inference backend implements.

A :class:`Session` runs one network: named inputs in, named outputs out, on host (numpy) arrays.
GPU backends add a device-buffer path (:meth:`Session.device_io` / :meth:`Session.enqueue`) so a
pipeline can keep data on the GPU between stages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Mapping

import numpy as np

from pridss_rt.errors import BackendError, InputError
from pridss_rt.pack import NetworkSpec, TensorSpec


class Session(ABC):
    """One loaded network on one backend."""

    #: backend name: "ort-cpu", "ort-cuda", "ort-trt" or "trt"
    backend: str = ""

    def __init__(self, spec: NetworkSpec):
        self.spec = spec

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.spec.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.spec.outputs

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on host arrays; returns a dict of new host arrays (safe to keep)."""
        batch = self.check_feeds(feeds)
        return self._run({k: np.ascontiguousarray(v) for k, v in feeds.items()}, batch)

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]: ...

    # GPU path (optional) ----------------------------------------------------------------------------
    supports_device_io: bool = False

    def device_io(self):  # pragma: no cover - overridden by GPU sessions
        raise BackendError(f"{self.backend}: this backend has no device-buffer path")

    def close(self) -> None:
        """Release backend resources. Idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # validation shared by all backends ----------------------------------------------------------------
    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> int:
        """Check names, dtypes and shapes against the pack's spec; return the batch size."""
        role = self.spec.role
        expected = {t.name for t in self.inputs}
        got = set(feeds)
        if got != expected:
            missing, extra = sorted(expected - got), sorted(got - expected)
            raise InputError(f"{role}: inputs must be {sorted(expected)} (missing {missing}, unexpected {extra})")
        batch = None
        for t in self.inputs:
            a = feeds[t.name]
            if not isinstance(a, np.ndarray):
                raise InputError(f"{role}: input '{t.name}' must be a numpy array, got {type(a).__name__}")
            if a.dtype != t.np_dtype:
                raise InputError(f"{role}: input '{t.name}' must be {t.dtype}, got {a.dtype}")
            if a.ndim != len(t.shape):
                raise InputError(f"{role}: input '{t.name}' must have shape {list(t.shape)}, got {list(a.shape)}")
            for i, (d, n) in enumerate(zip(t.shape, a.shape)):
                if isinstance(d, int) and d != n:
                    raise InputError(f"{role}: input '{t.name}' dim {i} must be {d}, got shape {list(a.shape)}")
            if a.shape[0] < 1:
                raise InputError(f"{role}: input '{t.name}' has an empty batch")
            if batch is None:
                batch = a.shape[0]
            elif a.shape[0] != batch:
                raise InputError(f"{role}: inputs disagree on the batch size ({batch} vs {a.shape[0]})")
        assert batch is not None
        return batch

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.role} on {self.backend}>"


def check_signature(spec: NetworkSpec, actual_inputs, actual_outputs, where: str) -> None:
    """Compare what a backend reports (list of (name, dtype, shape)) with the pack's spec.

    Symbolic or unknown dims on either side match anything; fixed dims must agree.
    """
    for kind, want, have in (("input", spec.inputs, actual_inputs), ("output", spec.outputs, actual_outputs)):
        have_by_name = {n: (dt, shp) for n, dt, shp in have}
        for t in want:
            if t.name not in have_by_name:
                raise BackendError(f"{where}: {spec.role} {kind} '{t.name}' declared in pack.json is not in the "
                                   f"network (network has {sorted(have_by_name)})")
            dt, shp = have_by_name[t.name]
            if dt is not None and np.dtype(dt) != t.np_dtype:
                raise BackendError(f"{where}: {spec.role} {kind} '{t.name}': pack.json says {t.dtype}, network has {np.dtype(dt)}")
            if shp is not None:
                if len(shp) != len(t.shape):
                    raise BackendError(f"{where}: {spec.role} {kind} '{t.name}': pack.json shape {list(t.shape)}, "
                                       f"network shape {list(shp)}")
                for d_want, d_have in zip(t.shape, shp):
                    if isinstance(d_want, int) and isinstance(d_have, int) and d_have > 0 and d_want != d_have:
                        raise BackendError(f"{where}: {spec.role} {kind} '{t.name}': pack.json shape {list(t.shape)}, "
                                           f"network shape {list(shp)}")
        if kind == "input" and len(have_by_name) != len(want):
            raise BackendError(f"{where}: {spec.role} network has inputs {sorted(have_by_name)}, pack.json declares "
                               f"{[t.name for t in want]}")
