"""Anonymize archives on Ray: :func:`anonymize_on_ray`.

Units of work: images go in batches to actors that each hold one :class:`~pridss_rt.Anonymizer` (built once per
actor); a video is sequential (its tracker needs the frames in order), so one video is one task on one actor.
With a GPU backend (``trt``, ``ort-trt``, ``ort-cuda``, or ``auto`` on a cluster that has GPUs) every actor
declares one GPU and there is one actor per GPU; otherwise actors declare ``threads`` CPUs each (default 1) and
run ONNX Runtime with that many threads.

Inputs and the output folder must be paths every node sees (a shared file system): the actors read and write
the files themselves, under temporary names renamed when complete (:mod:`pridss_rt.archive.items`). The driver
alone keeps the ledger (:mod:`pridss_rt.archive.ledger`) and the ``--json`` log. A task whose actor dies (a killed
process, a lost node) is retried on a fresh actor, up to ``retries`` times; a file that fails for its own reasons
(unreadable, undecodable frames) is reported with its cause and the run goes on.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pridss_rt import __version__, media
from pridss_rt.archive.items import ItemResult, JsonLog, process_image, process_video
from pridss_rt.archive.ledger import Ledger, file_sha256, run_key
from pridss_rt.errors import InputError, PridssError

log = logging.getLogger("pridss_rt")

GPU_BACKENDS = ("trt", "ort-trt", "ort-cuda")


@dataclass
class RunSummary:
    """The end of a run: counts, and every item's result (skipped ones are listed by source path)."""

    done: list[ItemResult] = field(default_factory=list)
    failed: list[ItemResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    workers: int = 0
    resources: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    frames: int = 0
    retried: int = 0

    def line(self) -> str:
        return (f"{len(self.done)} done, {len(self.skipped)} skipped (already in the ledger), {len(self.failed)} "
                f"failed; {self.frames} frames in {self.seconds:.1f} s on {self.workers} worker(s)"
                + (f"; {self.retried} task(s) retried after a worker died" if self.retried else ""))


class Worker:
    """The actor: one Anonymizer, built once; images in batches, one video per call."""

    def __init__(self, anonymizer: dict[str, Any]):
        from pridss_rt.anonymizer import Anonymizer

        self.anon = Anonymizer(**anonymizer)

    def describe(self) -> str:
        return f"{self.anon!r} in process {os.getpid()}"

    def images(self, jobs: list[media.Job]) -> list[ItemResult]:
        return [process_image(self.anon, j) for j in jobs]

    def video(self, job: media.Job, max_frames: int | None) -> list[ItemResult]:
        return [process_video(self.anon, job, max_frames)]


def _ray():
    from pridss_rt._lazy import lazy_import

    return lazy_import("ray", "the Ray path (anonymize --ray)")


def _settings(anonymizer: dict[str, Any], max_frames: int | None) -> dict[str, Any]:
    """What decides the output: the pack (name, version), pridss-rt's version and every option but where and
    how fast it runs."""
    from pridss_rt.pack import load_pack

    pack = load_pack(anonymizer.get("pack", "demo"))
    opts = {k: repr(v) for k, v in sorted(anonymizer.items()) if k not in ("pack", "threads", "engines_root", "backend")}
    return {"pack": pack.name, "pack_version": pack.version, "pridss_rt": __version__, "options": opts,
            "max_frames": max_frames}


def _units(jobs: list[media.Job], batch: int) -> list[tuple[str, Any]]:
    images = [j for j in jobs if j.kind == "image"]
    units: list[tuple[str, Any]] = [("video", j) for j in jobs if j.kind == "video"]  # long ones first
    units += [("images", images[i:i + batch]) for i in range(0, len(images), batch)]
    return units


def anonymize_on_ray(inputs: Iterable[str | os.PathLike], output: str | os.PathLike, *, address: str = "local",
                     workers: int | None = None, anonymizer: dict[str, Any] | None = None, batch_size: int = 8,
                     max_frames: int | None = None, json_log: str | os.PathLike | None = None, progress: bool = True,
                     retries: int = 2, threads: int | None = None, worker_class: type = Worker) -> RunSummary:
    """Anonymize image/video files and folders (mirrored under ``output``) on a Ray cluster.

    address: ``"local"`` starts a local Ray instance (or uses the one this process already started); otherwise a
        cluster address (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.1:6379"``).
    workers: actors to start (default: one per GPU with a GPU backend, else one per CPU / ``threads``).
    anonymizer: :class:`~pridss_rt.Anonymizer` keyword arguments (pack, backend, detector, search, ...).
    Returns a :class:`RunSummary`; items already in the output folder's ledger with the same input hash, pack and
    settings are skipped.
    """
    ray = _ray()
    t0 = time.perf_counter()
    kwargs = dict(anonymizer or {})
    jobs = media.plan([str(i) for i in inputs], str(output))  # bad paths and extensions: before any work
    if batch_size < 1 or retries < 0 or (workers is not None and workers < 1):
        raise InputError("batch_size and workers must be >= 1, retries >= 0")
    settings = _settings(kwargs, max_frames)
    out = Path(output)
    ledger = Ledger(out.parent if len(jobs) == 1 and out.suffix else out, run_key(settings))
    summary = RunSummary()
    todo, hashes = [], {}
    for j in jobs:
        hashes[str(j.src)] = h = file_sha256(j.src)
        if ledger.is_done(j.src, j.dst, h):
            summary.skipped.append(str(j.src))
        else:
            todo.append(j)

    started = not ray.is_initialized()  # a Ray this process already runs (or joined) is used as it is
    if started:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        resources = ray.cluster_resources()
        backend = kwargs.get("backend", "auto")
        gpu = backend in GPU_BACKENDS or (backend == "auto" and resources.get("GPU", 0) >= 1)
        cpus = int(threads or 1)
        if gpu and resources.get("GPU", 0) < 1:
            raise PridssError(f"backend {backend} needs GPU workers, and the Ray cluster has no GPU "
                              f"(resources: {resources})")
        n = workers or max(1, int(resources.get("GPU", 0)) if gpu else int(resources.get("CPU", 1)) // cpus)
        opts = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": cpus}
        kwargs.setdefault("threads", cpus)
        summary.workers, summary.resources = n, {k: float(v) for k, v in opts.items()}
        if not todo:
            return summary
        remote = ray.remote(worker_class).options(max_restarts=0, **opts)
        units = _units(todo, batch_size)
        summary = _schedule(ray, remote, kwargs, units, len(todo), min(n, len(units)), max_frames, retries, ledger,
                            hashes, settings, json_log, progress, summary)
        return summary
    finally:
        summary.seconds = time.perf_counter() - t0
        if started:
            ray.shutdown()


def _schedule(ray, remote, kwargs, units, items, n, max_frames, retries, ledger, hashes, settings, json_log,
              progress, summary: RunSummary) -> RunSummary:
    from tqdm import tqdm

    died = (ray.exceptions.RayActorError,) + tuple(
        getattr(ray.exceptions, e) for e in ("ActorDiedError", "WorkerCrashedError", "NodeDiedError", "OwnerDiedError")
        if hasattr(ray.exceptions, e))
    logf = JsonLog(json_log)
    bar = tqdm(total=items, unit="item", desc="archive", disable=not progress)
    t_start, frames = time.perf_counter(), 0
    actors = [remote.remote(kwargs) for _ in range(n)]
    idle = deque(actors)
    queue = deque((u, 0) for u in units)
    inflight: dict[Any, tuple[Any, tuple[str, Any], int]] = {}
    deaths_without_progress = 0

    def finish(results: list[ItemResult]) -> None:
        nonlocal frames
        for r in results:
            if r.ok:
                ledger.add(r.src, r.dst, hashes[r.src], kind=r.kind, frames=r.frames, faces=r.faces,
                           pack=settings["pack"], pack_version=settings["pack_version"], pridss_rt=__version__)
                summary.done.append(r)
            else:
                summary.failed.append(r)
                bar.write(f"pridss-rt: failed {r.src}: {r.error}", file=sys.stderr)
            for rec in r.records:
                logf.write_record(rec)
            frames += r.frames
            bar.update(1)
        bar.set_postfix_str(f"{frames / max(time.perf_counter() - t_start, 1e-9):.1f} frames/s", refresh=False)

    try:
        while queue or inflight:
            while idle and queue:
                actor = idle.popleft()
                unit, attempt = queue.popleft()
                ref = actor.images.remote(unit[1]) if unit[0] == "images" else actor.video.remote(unit[1], max_frames)
                inflight[ref] = (actor, unit, attempt)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                actor, unit, attempt = inflight.pop(ref)
                items = unit[1] if unit[0] == "images" else [unit[1]]
                try:
                    results = ray.get(ref)
                except died as exc:  # the worker process is gone: a fresh actor, the unit again
                    deaths_without_progress += 1
                    if deaths_without_progress > len(actors) * (retries + 1):
                        raise PridssError(f"Ray workers keep dying before finishing any work: {_cause(exc)}") from None
                    idle.append(remote.remote(kwargs))
                    if attempt < retries:
                        summary.retried += 1
                        queue.appendleft((unit, attempt + 1))
                        bar.write(f"pridss-rt: a worker died ({_cause(exc)}); retrying "
                                  f"{', '.join(str(j.src) for j in items)}", file=sys.stderr)
                    else:
                        finish([ItemResult(str(j.src), str(j.dst), j.kind, False,
                                           error=f"its worker died {attempt + 1} times: {_cause(exc)}") for j in items])
                    continue
                except ray.exceptions.RayTaskError as exc:  # not a file's own error: name it, go on
                    results = [ItemResult(str(j.src), str(j.dst), j.kind, False, error=_cause(exc)) for j in items]
                deaths_without_progress = 0
                idle.append(actor)
                finish(results)
    finally:
        bar.close()
        logf.close()
        for a in actors + list(idle):
            try:
                ray.kill(a)
            except Exception:  # already gone
                pass
    summary.frames = frames
    return summary


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    last = [t for t in text if t.strip()][-1] if text else type(exc).__name__
    return last[:300]
