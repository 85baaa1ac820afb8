"""The small set of stage operations an executor implements. The orchestrator calls them in data-flow
order for the faces of one frame; an executor keeps its frame's crops and synthesized images wherever it
computes (host arrays or device bindings) and hands back only what the frame logic decides on: latents,
embeddings and scores.

Per frame: ``begin`` → ``encode`` → [``p_male_of_crops``] → ``synthesize`` → [``score``] → ``paste`` →
``result``. Rows of the synthesized batch are numbered in the order of the latents given to ``synthesize``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Executor(ABC):
    name: str = "?"

    @abstractmethod
    def begin(self, frame: np.ndarray) -> Any:
        """Take a validated BGR uint8 frame; returns this frame's state (passed to every other operation)."""

    def fits(self, faces: int, rows: int) -> bool:
        """Whether ``faces`` crops and ``rows`` synthesized images fit this executor's buffers."""
        return True

    @abstractmethod
    def encode(self, fr: Any, mats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Aligned crops at ``mats`` (frame -> crop) -> (latents [F, *latent], L2-normalized embeddings [F, D])."""

    @abstractmethod
    def p_male_of_crops(self, fr: Any, positions: list[int]) -> np.ndarray:
        """P(male) of the original crops at ``positions`` (into the encoded faces)."""

    @abstractmethod
    def synthesize(self, fr: Any, latents: np.ndarray, owners: list[int]) -> None:
        """Synthesize every latent (one batch); the images stay with the executor. ``owners[r]``: the position
        of the face that row ``r`` is a candidate (or the tracked output) of."""

    @abstractmethod
    def score(self, fr: Any, n: int, coherence: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """P(male), L2-normalized embeddings and (when ``coherence``) P(composite) of synthesized rows ``0..n-1``."""

    @abstractmethod
    def paste(self, fr: Any, rows: list[int], mats: list[np.ndarray]) -> None:
        """Blend synthesized row ``rows[j]`` into the frame at face ``j``'s place (``mats[j]``), with the colour match
        and blend region the executor was built with; pixels outside the blend masks stay bit-identical."""

    @abstractmethod
    def result(self, fr: Any) -> np.ndarray:
        """The finished frame as a new host BGR uint8 array."""

    def close(self) -> None:
        """Release buffers (idempotent)."""
