"""TensorRT engine folders and their manifests (no TensorRT import here).

``python export/build_engines.py`` writes ``<root>/<pack>/<gpu-name>-sm<cc>-trt<version>/`` with one
``<role>.engine`` per network and a ``manifest.json``. TensorRT engines are code-like blobs tied to one
GPU architecture and TensorRT version, and NVIDIA warns never to deserialize untrusted ones: the runtime
only deserializes an engine when the manifest was written by pridss-rt, names this pack and the exact
ONNX hashes it was built from, this GPU and this TensorRT version, and the engine file's own hash
matches.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pridss_rt._hints import source_tool
from pridss_rt.errors import EngineError
from pridss_rt.pack import ModelPack, sha256_file

MANIFEST = "manifest.json"
SCHEMA = "pridss-rt.engines"
SCHEMA_VERSION = 1
ENGINES_ENV = "PRIDSS_RT_ENGINES"


def default_engines_root() -> Path:
    """``$PRIDSS_RT_ENGINES``, else ``./engines`` when it exists, else ``~/.cache/pridss-rt/engines``."""
    env = os.environ.get(ENGINES_ENV)
    if env:
        return Path(env).expanduser()
    local = Path.cwd() / "engines"
    if local.is_dir():
        return local
    return Path.home() / ".cache" / "pridss-rt" / "engines"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def engine_dir_name(gpu_name: str, compute_capability: str, trt_version: str) -> str:
    """``nvidia-geforce-rtx-4090-sm89-trt10.13.0``."""
    cc = compute_capability.replace(".", "")
    return f"{slug(gpu_name)}-sm{cc}-trt{trt_version}"


def engine_dir(root: str | os.PathLike, pack_name: str, gpu_name: str, compute_capability: str, trt_version: str) -> Path:
    return Path(root) / pack_name / engine_dir_name(gpu_name, compute_capability, trt_version)


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise EngineError(f"{path}: no engine manifest (build engines with {source_tool('export/build_engines.py', '--fp16', 'export,trt')})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineError(f"{path}: unreadable manifest: {exc}") from None
    if not isinstance(data, dict):
        raise EngineError(f"{path}: manifest must be a JSON object")
    return data


def write_manifest(folder: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def manifest_problems(manifest: dict[str, Any], pack: ModelPack, *, gpu_name: str | None,
                      compute_capability: str | None, trt_version: str | None,
                      folder: str | os.PathLike | None = None, roles: list[str] | None = None) -> list[str]:
    """Every reason the engines described by ``manifest`` must not be used here (empty = usable).

    ``gpu_name``/``compute_capability``/``trt_version`` describe this machine; ``None`` means unknown,
    which is itself a reason (we never guess that an engine fits).
    """
    problems: list[str] = []
    if manifest.get("schema") != SCHEMA:
        problems.append(f"not a pridss-rt engine manifest (schema {manifest.get('schema')!r})")
        return problems
    if manifest.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"engine manifest schema_version {manifest.get('schema_version')} is not {SCHEMA_VERSION}")
    if manifest.get("pack") != pack.name:
        problems.append(f"built for pack '{manifest.get('pack')}', not '{pack.name}'")
    gpu = manifest.get("gpu") or {}
    if gpu_name is None or compute_capability is None:
        problems.append("no GPU detected here")
    else:
        if gpu.get("name") != gpu_name:
            problems.append(f"built on GPU '{gpu.get('name')}', this is '{gpu_name}'")
        if str(gpu.get("compute_capability")) != str(compute_capability):
            problems.append(f"built for sm{gpu.get('compute_capability')}, this GPU is sm{compute_capability}")
    built_trt = (manifest.get("tensorrt") or {}).get("version")
    if trt_version is None:
        problems.append("TensorRT is not installed here")
    elif built_trt != trt_version:
        problems.append(f"built with TensorRT {built_trt}, this is TensorRT {trt_version}")
    nets = manifest.get("networks") or {}
    for role in roles or list(pack.networks):
        entry = nets.get(role)
        if not isinstance(entry, dict):
            problems.append(f"no engine for network '{role}'")
            continue
        want_sha = pack.networks[role].sha256
        if entry.get("source_onnx_sha256") != want_sha:
            problems.append(f"{role}: engine was built from another ONNX file (pack changed since the build)")
        if folder is not None:
            eng = Path(folder) / str(entry.get("engine", ""))
            if not eng.is_file():
                problems.append(f"{role}: engine file {eng} is missing")
            elif entry.get("engine_sha256") != sha256_file(eng):
                problems.append(f"{role}: engine file {eng.name} does not match its manifest hash (modified or corrupt)")
    return problems


def find_engines(pack: ModelPack, root: str | os.PathLike | None, *, gpu_name: str | None,
                 compute_capability: str | None, trt_version: str | None) -> tuple[Path | None, list[str]]:
    """The folder of usable engines for ``pack`` on this machine, or ``(None, reasons)``."""
    root = Path(root) if root is not None else default_engines_root()
    base = root / pack.name
    if not base.is_dir():
        return None, [f"no engines built for pack '{pack.name}' under {root}"]
    reasons: list[str] = []
    candidates = sorted(p for p in base.iterdir() if (p / MANIFEST).is_file())
    if gpu_name and compute_capability and trt_version:
        exact = base / engine_dir_name(gpu_name, compute_capability, trt_version)
        candidates.sort(key=lambda p: p != exact)
    for folder in candidates:
        try:
            manifest = read_manifest(folder)
        except EngineError as exc:
            reasons.append(str(exc))
            continue
        problems = manifest_problems(manifest, pack, gpu_name=gpu_name, compute_capability=compute_capability,
                                     trt_version=trt_version, folder=folder)
        if not problems:
            return folder, []
        reasons.append(f"{folder.name}: " + "; ".join(problems))
    if not candidates:
        reasons.append(f"no engine folders with a {MANIFEST} under {base}")
    return None, reasons
