"""One item of an archive (an image or a video) through an Anonymizer, written atomically.

The output is written to a hidden temporary name in the output's folder (same extension, so the encoder is the
same) and renamed to its final name only when it is complete: an interrupted run, a killed worker or a failed
file never leaves a half-written output under the final name.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from pridss_rt import media
from pridss_rt.errors import InputError

PART = ".part-"  # temporary outputs: .<name>.part-<id><ext>, removed or renamed


@dataclass
class ItemResult:
    """What happened to one input."""

    src: str
    dst: str
    kind: str  # image | video
    ok: bool
    error: str = ""
    frames: int = 0
    faces: int = 0
    pixelated: int = 0
    note: str = ""  # e.g. the video's audio note
    records: list[dict[str, Any]] = field(default_factory=list)  # the --json log lines of this item
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("records")
        return d


def temp_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.stem}{PART}{uuid.uuid4().hex[:12]}{dst.suffix}")


@contextmanager
def atomic_output(dst: Path) -> Iterator[Path]:
    """A temporary path next to ``dst`` that becomes ``dst`` when the block finishes without an exception."""
    dst = Path(dst)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{dst}: cannot create the output folder: {exc.strerror or exc}") from None
    tmp = temp_path(dst)
    try:
        yield tmp
        os.replace(tmp, dst)
    except OSError as exc:
        raise InputError(f"{dst}: cannot write the output: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def _named(tmp: Path, dst: Path) -> Iterator[None]:
    """Errors about the temporary file name the final one."""
    try:
        yield
    except InputError as exc:
        raise InputError(str(exc).replace(str(tmp), str(dst))) from None


def frame_record(source: str, frame: int | None, faces, frame_status) -> dict[str, Any]:
    rec = {"source": source, "frame": frame, "faces": [f.to_json() for f in faces]}
    if frame_status is not None and frame_status.whole_frame_pixelated:
        rec["whole_frame_pixelated"], rec["reason"] = True, frame_status.reason
    return rec


class JsonLog:
    """The ``--json`` log: one JSON line per image or video frame with every face's record (always valid JSON:
    ``FaceResult.to_json`` turns NaN into null). No file: writes nothing."""

    def __init__(self, path: str | os.PathLike | None):
        self.f = open(path, "w", encoding="utf-8") if path else None

    def write(self, source: str, frame: int | None, faces, frame_status=None) -> None:
        self.write_record(frame_record(source, frame, faces, frame_status))

    def write_record(self, rec: dict[str, Any]) -> None:
        if self.f:
            self.f.write(json.dumps(rec, allow_nan=False) + "\n")

    def close(self) -> None:
        if self.f:
            self.f.close()
            self.f = None


def process_image(anon, job: media.Job) -> ItemResult:
    """Read, anonymize (tracks reset: unrelated images) and write one image. Errors of the file itself
    (unreadable, unwritable) are returned in the result, not raised."""
    t0 = time.perf_counter()
    res = ItemResult(str(job.src), str(job.dst), "image", False)
    try:
        img = media.read_image(job.src)
        anon.reset()
        out, faces = anon.process(img)
        with atomic_output(job.dst) as tmp:
            with _named(tmp, job.dst):
                media.write_image(tmp, out)
    except InputError as exc:
        res.error = str(exc)
        return res
    res.ok, res.frames, res.faces = True, 1, len(faces)
    res.pixelated = sum(f.status != "anonymized" for f in faces)
    if anon.last_frame.whole_frame_pixelated:
        res.note = f"whole image pixelated ({anon.last_frame.reason})"
    res.records.append(frame_record(str(job.src), None, faces, anon.last_frame))
    res.seconds = time.perf_counter() - t0
    return res


def process_video(anon, job: media.Job, max_frames: int | None = None,
                  on_frame: Callable[[dict[str, Any]], None] | None = None, keep_records: bool = True,
                  on_open: Callable[[int], None] | None = None) -> ItemResult:
    """Anonymize one video frame by frame (tracks reset at its start; the tracker sees the frames in order),
    audio kept when ffmpeg is available. ``on_open`` gets the container's frame count (0: unknown) once the video is
    open, ``on_frame`` each frame's log record as it is made. A video whose
    frames could not all be decoded is written with the frames that were, and reported as failed with the count."""
    t0 = time.perf_counter()
    res = ItemResult(str(job.src), str(job.dst), "video", False)
    try:
        reader = media.VideoReader(str(job.src))
    except InputError as exc:
        res.error = str(exc)
        return res
    if on_open is not None:
        on_open(reader.frames)
    anon.reset()
    writer = None
    n = 0
    try:
        with atomic_output(job.dst) as tmp:
            try:
                for frame in reader:
                    out, faces = anon.process(frame)
                    if writer is None:
                        with _named(tmp, job.dst):
                            writer = media.VideoWriter(tmp, reader.fps, (out.shape[1], out.shape[0]), audio_from=job.src)
                    writer.write(out)
                    rec = frame_record(str(job.src), n, faces, anon.last_frame)
                    if keep_records:
                        res.records.append(rec)
                    if on_frame is not None:
                        on_frame(rec)
                    res.faces += len(faces)
                    res.pixelated += sum(f.status != "anonymized" for f in faces)
                    n += 1
                    if max_frames and n >= max_frames:
                        break
            finally:
                reader.close()
                if writer is not None:
                    writer.close()
            if n == 0:
                raise InputError(f"{job.src}: no frames could be decoded")
    except InputError as exc:
        res.error = str(exc)
        return res
    res.frames, res.note, res.seconds = n, writer.audio_note, time.perf_counter() - t0
    expected = min(reader.frames, max_frames) if max_frames else reader.frames
    if expected and n < expected:  # a garbled stream: what was decoded is written (anonymized), the loss is named
        res.error = f"{job.src}: only {n} of {expected} frames could be decoded; {job.dst} holds those {n}"
        return res
    res.ok = True
    return res
