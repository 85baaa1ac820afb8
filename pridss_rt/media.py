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
    # IMREAD_UNCHANGED (kept for alpha and 16-bit files) ignores EXIF orientation: apply it here, so a phone photo
    # is read upright; write_image writes no EXIF, so the output is upright pixels without the tag
    return apply_orientation(img, exif_orientation(memoryview(data)))


def exif_orientation(data: bytes | memoryview) -> int:
    """The EXIF Orientation (1-8) of a JPEG's bytes; 1 (as stored) when there is none or it cannot be read.
    Only the header segments before the image data are read."""
    import struct

    if data[:2] != b"\xff\xd8":
        return 1
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, size = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
            t = data[i + 10:i + 2 + size]  # the TIFF structure
            end = {b"II": "<", b"MM": ">"}.get(bytes(t[:2]))
            if end is None or len(t) < 8:
                return 1
            ifd = struct.unpack(end + "I", t[4:8])[0]
            if ifd + 2 > len(t):
                return 1
            for k in range(struct.unpack(end + "H", t[ifd:ifd + 2])[0]):
                e = ifd + 2 + 12 * k
                if e + 12 > len(t):
                    return 1
                tag, typ = struct.unpack(end + "HH", t[e:e + 4])
                if tag == 0x0112 and typ == 3:  # Orientation, SHORT
                    v = struct.unpack(end + "H", t[e + 8:e + 10])[0]
                    return v if 1 <= v <= 8 else 1
            return 1
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no EXIF before the pixels
            return 1
        i += 2 + size
    return 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as an EXIF ``orientation`` (1-8) says to display them: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
    6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise."""
    ops = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
           8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops.get(orientation, ops[1])(img))


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Write ``img`` (no EXIF: upright pixels); an unwritable path or extension is an InputError naming the file."""
    import cv2

    p = Path(path)
    try:
        ok, buf = cv2.imencode(p.suffix or ".png", img)
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"{p}: cannot encode an image with the extension '{p.suffix}' (use one of {sorted(IMAGE_EXT)})")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        buf.tofile(str(p))
    except OSError as exc:
        raise InputError(f"{p}: cannot write the output: {exc.strerror or exc}") from None


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
        want = IMAGE_EXT if j.kind == "image" else VIDEO_EXT
        if j.dst.suffix.lower() not in want:  # checked before any work starts
            raise InputError(f"{j.src}: output {j.dst} must end in one of {sorted(want)} for {'an image' if j.kind == 'image' else 'a video'} "
                             f"(got '{j.dst.suffix}')")
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
