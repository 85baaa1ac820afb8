"""Exceptions raised by pridss-rt. Every message names what is wrong and, where it helps, what to do."""

from __future__ import annotations


class PridssError(Exception):
    """Base class of every error raised on purpose by pridss-rt."""


class PackError(PridssError):
    """A model pack is missing, malformed, or does not match its manifest.

    The message starts with the file (and field) at fault: ``pack.json: networks.encoder.sha256: ...``.
    """


class BackendError(PridssError):
    """An inference backend is not available here or failed to load/run a network."""


class EngineError(BackendError):
    """A TensorRT engine is missing, was not built by pridss-rt, or does not match this pack/machine."""


class CudaError(BackendError):
    """A CUDA call failed (or CUDA is not usable on this machine)."""


class InputError(PridssError, ValueError):
    """An input array or file is not what the API expects (wrong dtype, shape, missing file...)."""
