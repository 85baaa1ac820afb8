"""Reading and writing images and videos for the CLI: images, folders (mirrored), video files (audio kept
when ffmpeg is available) and webcams."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pridss_rt.errors import InputError

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
SAMPLE = Path(__file__).resolve().parent / "data" / "astronaut.jpg"


@dataclass
class Job:
    src: Path
    dst: Path
    kind: str  # "image" | "video"


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as uint8 BGR (or BGRA / gray as stored); clear errors for missing/corrupt files."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{p}: not a readable image (corrupt or unsupported format)")
    if img.dtype != np.uint8:  # 16-bit PNG/TIFF: scale to 8 bit
        img = (img.astype(np.float32) / np.iinfo(img.dtype).max * 255 + 0.5).astype(np.uint8) \
            if img.dtype.kind == "u" else np.clip(img, 0, 255).astype(np.uint8)
    return img


def write_image(path: str | Path, img: np.ndarray) -> None:
    import cv2

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(p.suffix or ".png", img)
    if not ok:
        raise InputError(f"{p}: cannot encode an image with this extension")
    buf.tofile(str(p))


def plan(inputs: list[str], output: str) -> list[Job]:
    """Map inputs (files and folders) to output paths. A folder input is mirrored under ``output``."""
    out = Path(output)
    jobs: list[Job] = []
    paths = [Path(i) for i in inputs]
    single_file = len(paths) == 1 and paths[0].is_file()
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                kind = _kind(f)
                if f.is_file() and kind:
                    jobs.append(Job(f, out / f.relative_to(p), kind))
        else:
            kind = _kind(p)
            if not kind:
                raise InputError(f"{p}: unsupported file type (images: {sorted(IMAGE_EXT)}; videos: {sorted(VIDEO_EXT)})")
            dst = out if single_file and out.suffix else out / p.name
            jobs.append(Job(p, dst, kind))
    if not jobs:
        raise InputError(f"no images or videos found in {inputs}")
    for j in jobs:
        if j.src.resolve() == j.dst.resolve():
            raise InputError(f"{j.src}: output would overwrite the input; choose another -o")
    return jobs


def _kind(p: Path) -> str | None:
    ext = p.suffix.lower()
    return "image" if ext in IMAGE_EXT else "video" if ext in VIDEO_EXT else None


class VideoReader:
    def __init__(self, source: str | int):
        import cv2

        self.cap = cv2.VideoCapture(source)
        if not self.cap.isOpened():
            raise InputError(f"cannot open video source {source!r}")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 25.0
        if not np.isfinite(self.fps) or self.fps <= 0 or self.fps > 240:
            self.fps = 25.0
        self.frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield frame

    def close(self) -> None:
        self.cap.release()


class VideoWriter:
    """Writes frames to ``path``; on close, muxes the source's audio back when ffmpeg is available."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_from: str | Path | None = None):
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.audio_from = Path(audio_from) if audio_from else None
        self.ffmpeg = shutil.which("ffmpeg")
        self._tmp = Path(tempfile.mkstemp(suffix=".mp4", dir=self.path.parent)[1]) if self.ffmpeg and self.audio_from \
            else self.path
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self._tmp.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
        self.w = cv2.VideoWriter(str(self._tmp), fourcc, fps, size)
        if not self.w.isOpened():
            raise InputError(f"{self.path}: cannot open a video writer for this file type")
        self.audio_note = "no audio source" if not self.audio_from else ("audio kept" if self.ffmpeg else
                                                                        "audio not copied (ffmpeg not found)")

    def write(self, frame: np.ndarray) -> None:
        self.w.write(frame)

    def close(self) -> None:
        self.w.release()
        if self._tmp != self.path:
            cmd = [self.ffmpeg, "-y", "-loglevel", "error", "-i", str(self._tmp), "-i", str(self.audio_from),
                   "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy", "-c:a", "aac", "-shortest", str(self.path)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                shutil.move(str(self._tmp), self.path)
                self.audio_note = f"audio dropped (ffmpeg failed: {res.stderr.strip()[:200]})"
            else:
                self._tmp.unlink(missing_ok=True)
