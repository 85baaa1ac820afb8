"""Model packs: a folder with ``pack.json``, ONNX networks, a fusion spec and a reference bank.

The format is documented in docs/pack-format.md. :func:`load_pack` validates everything the runtime
relies on before any network runs, and raises :class:`PackError` whose message starts with the file
and field at fault (``pack.json: networks.encoder.sha256: ...``). Nothing in a pack is ever executed:
arrays are read with ``allow_pickle=False`` and networks are only handed to an inference backend.
"""

from __future__ import annotations

import os
from pathlib import Path

from pridss_rt.errors import PackError
from pridss_rt.pack.files import write_pack_json
from pridss_rt.pack.parse import PackParser
from pridss_rt.pack.spec import (BUILTIN_PACKS, PACK_PATH_ENV, FusionSpec, ModelPack, NetworkSpec, Preprocess,
                                 TensorSpec, is_number, sha256_file, weight_problem)

__all__ = ["ModelPack", "NetworkSpec", "TensorSpec", "Preprocess", "FusionSpec", "load_pack", "list_packs",
           "resolve_pack", "pack_search_path", "sha256_file", "write_pack_json", "weight_problem", "is_number",
           "BUILTIN_PACKS", "PACK_PATH_ENV"]

# --------------------------------------------------------------------------------------------------
# discovery


def pack_search_path() -> list[Path]:
    """Folders searched for packs by name: the packs inside the package, then PRIDSS_RT_PACK_PATH."""
    dirs = [BUILTIN_PACKS]
    for part in os.environ.get(PACK_PATH_ENV, "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part).expanduser())
    return dirs


def list_packs() -> dict[str, Path]:
    """Name -> folder of every pack found on the search path (first one wins, like PATH)."""
    found: dict[str, Path] = {}
    for d in pack_search_path():
        if not d.is_dir():
            continue
        for child in sorted(d.iterdir()):
            if (child / "pack.json").is_file() and child.name not in found:
                found[child.name] = child
    return found


def resolve_pack(name_or_path: str | os.PathLike) -> Path:
    """Folder of a pack given by path (folder or its pack.json) or by name."""
    p = Path(name_or_path).expanduser()
    if p.is_file() and p.name == "pack.json":
        return p.parent
    if p.is_dir():
        if not (p / "pack.json").is_file():
            raise PackError(f"{p / 'pack.json'}: file not found (is '{p}' a pridss-rt model pack?)")
        return p
    looks_like_path = os.sep in str(name_or_path) or str(name_or_path).startswith(".")
    if not looks_like_path:
        packs = list_packs()
        if str(name_or_path) in packs:
            return packs[str(name_or_path)]
        have = ", ".join(sorted(packs)) or "none"
        raise PackError(
            f"pack '{name_or_path}': not found by name (packs available: {have}; search path: "
            f"{', '.join(str(d) for d in pack_search_path())}; set {PACK_PATH_ENV} or pass a folder)"
        )
    raise PackError(f"{p}: pack folder not found")


def load_pack(name_or_path: str | os.PathLike | ModelPack = "demo", *, verify_hashes: bool = True) -> ModelPack:
    """Find, parse and validate a model pack. Raises :class:`PackError` on any problem."""
    if isinstance(name_or_path, ModelPack):
        return name_or_path
    root = resolve_pack(name_or_path)
    return PackParser(root, verify_hashes).parse()


# --------------------------------------------------------------------------------------------------
# parsing and validation


