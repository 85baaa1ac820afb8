"""The leak audit of ``pridss-rt audit``: known faces pasted into frames and videos, and a count of the faces the
output shows raw.

Each source face (an image with one face, e.g. a folder of face photos; default: the bundled astronaut) is found
once by the detector on its own image (its box and 5 landmarks are the truth), then pasted by a known similarity
transform into synthetic frames (a seeded smooth-noise background) for every case:

- ``size``: upright faces whose box side runs from below the detector's limit to 400 px;
- ``rotation``: in-plane rotations every 15 degrees;
- ``border``: faces cut by each frame edge, a quarter and half of the face box outside;
- ``crowd``: four faces of different sizes in one frame;
- ``layout``: gray (2-D) and BGRA frames;
- ``exif``: a JPEG per EXIF orientation 1-8, whose stored pixels are turned so that the display is upright, read
  the way the CLI reads files (:func:`pridss_rt.media.read_image`);
- ``video``: a face that moves, grows and turns over consecutive frames of one stream (tracking on); and a face
  that walks out through the right frame edge, 20 px a frame, until its box is outside (the detector loses it once
  more than about half is outside: the tracker's ``hold`` keeps it pixelated).

For every pasted face the *inner face* (the hull of its 5 landmarks grown by 30 %, clipped to the frame) of the
output is compared with the input: a face is **raw** when at least half of its inner-face pixels are unchanged
(every channel within 2 levels), **barely touched** when it is not raw but the mean absolute change there is under
:data:`BARELY` levels. It is **missed** when no reported face box overlaps its box (IoU >= 0.25) and the frame was
not pixelated as a whole. A missed face is usually raw; a pixelated one is not. A face none of whose inner face is
inside the frame (a face that has left it) is reported but not counted. Nothing here is trained or timed.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from pridss_rt.errors import InputError, PridssError
from pridss_rt.eval.data import inner_face_mask

UNCHANGED = 2  # levels: a pixel whose every channel moved at most this much is unchanged
RAW_SHARE = 0.5  # share of unchanged inner-face pixels from which a face counts as raw
BARELY = 3.0  # mean absolute change (levels) of the inner face under which a face that is not raw is barely touched
# (anonymized faces of 24 CelebA-HQ val sources: 1st percentile 5.4, least 4.6; JPEG re-encoding moves ~1-2)
MATCH_IOU = 0.25  # a reported face box with this IoU against a pasted face's box is that face

LIMIT = 24  # px: the face-box side from which the default detector is stated to find faces (README)
SIZES = (24, 32, 48, 64, 96, 128, 200, 300, 400)
BELOW_LIMIT = (16, 20)  # reported (the detector's miss rate under its limit), not counted as leaks
ANGLES = tuple(range(0, 360, 15))
BORDER_CUTS = (0.25, 0.5)
SIDES = ("left", "right", "top", "bottom")
QUICK = dict(sizes=(24, 96, 300), below=(16,), angles=(0, 45, 90, 180, 270), cuts=(0.5,), sides=("left", "bottom"),
             orientations=(1, 6), video_frames=8)


@dataclass
class SourceFace:
    """A face image and where its face is (found once by the detector on the image itself)."""

    name: str
    image: np.ndarray  # uint8 BGR
    box: np.ndarray  # (4,) x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2)

    @property
    def side(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass
class Pasted:
    """One face as pasted into a frame: its box and landmarks in the frame, and its inner-face mask."""

    box: np.ndarray
    landmarks: np.ndarray
    inner: np.ndarray  # bool (H, W)


@dataclass
class Case:
    group: str
    param: str
    frame: np.ndarray  # what the anonymizer is given (BGR, gray or BGRA)
    faces: list[Pasted]
    source: str = ""
    stream: str | None = None  # frames of one stream share this key and keep their order (tracking on)
    counted: bool = True  # False: below the detector's stated limit, reported but not a leak


@dataclass
class FaceOutcome:
    group: str
    param: str
    source: str
    size: float  # box side in the frame (px)
    detected: bool
    status: str  # anonymized | pixelated | missed | frame pixelated
    unchanged: float  # share of inner-face pixels unchanged
    mean_change: float  # mean absolute change of the inner face (levels)
    raw: bool
    barely: bool
    reason: str = ""
    counted: bool = True


@dataclass
class AuditReport:
    outcomes: list[FaceOutcome] = field(default_factory=list)

    @property
    def counted(self) -> list[FaceOutcome]:
        return [o for o in self.outcomes if o.counted]

    @property
    def raw(self) -> int:
        """Faces shown raw among the counted cases (the audit's bar: 0)."""
        return sum(o.raw for o in self.counted)

    @property
    def barely(self) -> int:
        return sum(o.barely for o in self.counted)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (group, param, counted): faces, detector misses, raw, barely touched, pixelated, anonymized."""
        table: dict[tuple[str, str], dict[str, Any]] = {}
        for o in self.outcomes:
            r = table.setdefault((o.group, o.param, o.counted), dict(group=o.group, case=o.param, counted=o.counted, faces=0,
                                                          missed=0, raw=0, barely=0, pixelated=0, anonymized=0,
                                                          frame_pixelated=0, min_change=math.inf))
            r["faces"] += 1
            r["missed"] += not o.detected and o.status != "frame pixelated"
            r["raw"] += o.raw
            r["barely"] += o.barely
            r["pixelated"] += o.status == "pixelated"
            r["anonymized"] += o.status == "anonymized"
            r["frame_pixelated"] += o.status == "frame pixelated"
            r["min_change"] = min(r["min_change"], o.mean_change)
        return list(table.values())

    def markdown(self) -> str:
        lines = ["| case | faces | missed | raw | barely touched | pixelated | anonymized | least change |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.rows():
            why = "under the detector's limit" if r["group"] == "size" else "its inner face outside the frame"
            name = f"{r['group']} {r['case']}" + ("" if r["counted"] else f" ({why}, not counted)")
            lines.append(f"| {name} | {r['faces']} | {r['missed']} | {r['raw']} | {r['barely']} | "
                         f"{r['pixelated'] + r['frame_pixelated']} | {r['anonymized']} | {r['min_change']:.1f} |")
        c = self.counted
        lines.append(f"| **all counted** | {len(c)} | {sum(not o.detected and o.status != 'frame pixelated' for o in c)} | "
                     f"**{self.raw}** | {self.barely} | {sum(o.status in ('pixelated', 'frame pixelated') for o in c)} | "
                     f"{sum(o.status == 'anonymized' for o in c)} | |")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"faces": len(self.counted), "raw": self.raw, "barely": self.barely,
                "rows": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                         for r in self.rows()],
                "outcomes": [o.__dict__ for o in self.outcomes]}


# ---- sources ------------------------------------------------------------------------------------------------------
def find_source(name: str, image: np.ndarray, detector) -> SourceFace | None:
    """The largest face the ``detector`` finds in ``image`` (looked for on a grey-padded copy at least 256 px
    high, so a tight face crop is found too); None when there is none."""
    import cv2

    h, w = image.shape[:2]
    up = max(1.0, 256.0 / min(h, w))
    big = cv2.resize(image, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC) if up > 1 else image
    pad = int(0.25 * max(big.shape[:2]))
    padded = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    dets = detector.detect(padded)
    if not dets:
        return None
    d = max(dets, key=lambda d: d.size)
    box = (np.asarray(d.box, np.float64) - pad) / up
    lm = (np.asarray(d.landmarks, np.float64) - pad) / up
    return SourceFace(name, image, box, lm)


def load_sources(paths: Iterable[str | Path], detector, limit: int | None = None) -> list[SourceFace]:
    """Source faces from image files and folders (files in sorted order); images without a face are skipped."""
    from pridss_rt.media import IMAGE_EXT, read_image

    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXT)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder of face images")
    out = []
    for f in files:
        if limit is not None and len(out) >= limit:
            break
        img = read_image(f)
        img = img if img.ndim == 3 and img.shape[2] == 3 else _to_bgr(img)
        s = find_source(f.name, img, detector)
        if s is not None:
            out.append(s)
    if not out:
        raise InputError(f"no face was found in the {len(files)} source image(s)")
    return out


def _to_bgr(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)


# ---- frames -------------------------------------------------------------------------------------------------------
def background(h: int, w: int, seed: int) -> np.ndarray:
    """A seeded smooth-noise background (no face in it)."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, (max(2, h // 80), max(2, w // 80), 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, src: SourceFace, size: float, center: tuple[float, float], angle: float = 0.0) -> Pasted:
    """Paste ``src``'s image into ``frame`` (in place) so that its face box has side ``size``, its centre lands on
    ``center`` and it is turned by ``angle`` degrees (counter-clockwise on screen). Returns the face's place."""
    import cv2

    h, w = frame.shape[:2]
    c = (src.box[:2] + src.box[2:]) / 2
    s = size / src.side
    m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), angle, s)
    m[:, 2] += np.asarray(center) - c
    warped = cv2.warpAffine(src.image, m, (w, h), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    cover = cv2.warpAffine(np.full(src.image.shape[:2], 255, np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    frame[cover > 0] = warped[cover > 0]
    to = lambda p: np.asarray(p, np.float64) @ m[:, :2].T + m[:, 2]  # noqa: E731
    x1, y1, x2, y2 = src.box
    corners = to([[x1, y1], [x2, y1], [x1, y2], [x2, y2]])
    box = np.array([corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()])
    lm = to(src.landmarks)
    return Pasted(box, lm, inner_face_mask((h, w), lm))


def _frame_with(sources: list[SourceFace], places: list[tuple[float, tuple[float, float], float]], h: int, w: int,
                seed: int) -> tuple[np.ndarray, list[Pasted]]:
    frame = background(h, w, seed)
    faces = [paste(frame, s, size, c, a) for s, (size, c, a) in zip(sources, places)]
    return frame, faces


def jpeg_with_orientation(img: np.ndarray, orientation: int, big_endian: bool = False, quality: int = 95) -> bytes:
    """A JPEG of ``img`` with an EXIF APP1 segment holding only the Orientation tag."""
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("cannot encode a JPEG")
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", 1) \
        + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(e + "I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _bgra(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)


_LAYOUTS = {"gray": _gray, "BGRA": _bgra}
_INVERSE_ORIENTATION = {6: 8, 8: 6}  # 1-5 and 7 are their own inverse


def cases(sources: list[SourceFace], *, sizes: Iterable[int] = SIZES, below: Iterable[int] = BELOW_LIMIT,
          angles: Iterable[int] = ANGLES,
          cuts: Iterable[float] = BORDER_CUTS, sides: Iterable[str] = SIDES, crowd: bool = True,
          layouts: Iterable[str] = ("gray", "BGRA"), orientations: Iterable[int] = range(1, 9), video_frames: int = 24,
          leaving: bool = True, workdir: Path | None = None, seed: int = 0) -> Iterator[Case]:
    """Every case for every source face (a generator: frames are made as they are needed)."""
    import tempfile

    from pridss_rt.media import apply_orientation, read_image

    for si, src in enumerate(sources):
        rs = seed * 1000 + si * 37
        for size in list(below) + list(sizes):
            h, w = (480, 640) if size <= 160 else (720, 1280)
            frame, faces = _frame_with([src], [(size, (w * 0.45, h * 0.5), 0.0)], h, w, rs + size)
            yield Case("size", f"{size} px", frame, faces, src.name, counted=size >= LIMIT)
        for a in angles:
            frame, faces = _frame_with([src], [(110, (320, 240), float(a))], 480, 640, rs + 500 + a)
            yield Case("rotation", f"{a} deg", frame, faces, src.name)
        for cut in cuts:
            for side in sides:
                size = 110
                off = size * (0.5 - cut)  # face-box centre this far inside the edge
                c = {"left": (off, 240), "right": (640 - off, 240), "top": (320, off), "bottom": (320, 480 - off)}[side]
                frame, faces = _frame_with([src], [(size, c, 0.0)], 480, 640, rs + 900 + int(cut * 100))
                yield Case("border", f"{side} {int(cut * 100)} % out", frame, faces, src.name)
        if crowd:
            four = [sources[(si + k) % len(sources)] for k in range(4)]
            frame, faces = _frame_with(four, [(110, (150, 150), 0.0), (80, (470, 130), 10.0), (64, (180, 370), -10.0),
                                              (96, (480, 350), 0.0)], 480, 640, rs + 1200)
            yield Case("crowd", "4 faces", frame, faces, src.name)
        frame, faces = _frame_with([src], [(110, (320, 240), 0.0)], 480, 640, rs + 1300)
        for layout in layouts:
            yield Case("layout", layout, _LAYOUTS[layout](frame), faces, src.name)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            for o in orientations:
                upright, faces = _frame_with([src], [(110, (300, 220), 0.0)], 480, 640, rs + 1400)
                stored = apply_orientation(upright, _INVERSE_ORIENTATION.get(o, o))
                path = Path(tmp) / f"exif{o}.jpg"
                path.write_bytes(jpeg_with_orientation(stored, o))
                read = read_image(path)  # what the CLI gives the anonymizer
                if read.shape != upright.shape:
                    raise PridssError(f"EXIF orientation {o}: read_image gave {read.shape}, not the upright {upright.shape}")
                yield Case("exif", f"orientation {o}", read, faces, src.name)
        n = max(2, video_frames) if video_frames else 0
        for t in range(n):
            u = t / (n - 1)
            frame, faces = _frame_with([src], [(60 + 90 * u, (120 + 400 * u, 200 + 80 * math.sin(3 * u)), 40 * u)],
                                       480, 640, rs + 1600)
            yield Case("video", "moving face", frame, faces, src.name, stream=f"video:{src.name}")
        if leaving:
            for x in range(530, 710, 20):  # box from 55 px inside the right edge to all of it outside
                frame, faces = _frame_with([src], [(110, (x, 240), 0.0)], 480, 640, rs + 1700)
                yield Case("video", "leaving the frame", frame, faces, src.name, stream=f"leaving:{src.name}")


# ---- measuring ----------------------------------------------------------------------------------------------------
def _box_iou(a, b) -> float:
    from pridss_rt.stages.detect import iou

    return iou(np.asarray(a, np.float64), np.asarray(b, np.float64))


def judge(case: Case, out: np.ndarray, results: list, whole_frame: bool) -> list[FaceOutcome]:
    """The outcome of every pasted face of ``case`` given the anonymizer's output frame and face results."""
    absdiff = np.abs(case.frame.astype(np.int16) - out.astype(np.int16))
    diff = absdiff.max(2) if absdiff.ndim == 3 else absdiff  # the largest change over the channels
    outcomes = []
    for f in case.faces:
        sel = f.inner
        n = int(sel.sum())
        unchanged = float((diff[sel] <= UNCHANGED).mean()) if n else 0.0
        change = float(absdiff[sel].mean()) if n else 0.0
        best = max(results, key=lambda r: _box_iou(r.box, f.box), default=None)
        detected = best is not None and _box_iou(best.box, f.box) >= MATCH_IOU
        status = "frame pixelated" if whole_frame else best.status if detected else "missed"
        raw = n > 0 and unchanged >= RAW_SHARE
        outcomes.append(FaceOutcome(case.group, case.param, case.source, float(max(f.box[2] - f.box[0], f.box[3] - f.box[1])),
                                    detected, status, unchanged, change, raw, n > 0 and not raw and change < BARELY,
                                    best.reason if detected else "", case.counted and n > 0))
    return outcomes


def run_audit(anonymizer, case_iter: Iterable[Case], progress: Callable[[Case], None] | None = None) -> AuditReport:
    """Run every case through ``anonymizer`` (tracks are reset between cases that are not frames of one stream)."""
    rep = AuditReport()
    stream = None
    for case in case_iter:
        if case.stream is None or case.stream != stream:
            anonymizer.reset()
        stream = case.stream
        out, results = anonymizer.process(case.frame)
        rep.outcomes += judge(case, out, results, anonymizer.last_frame.whole_frame_pixelated)
        if progress:
            progress(case)
    return rep
