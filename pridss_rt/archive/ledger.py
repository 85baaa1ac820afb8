"""The ledger of an archive run: one JSON line per finished item in ``OUTPUT/.pridss-ledger.jsonl``.

An item counts as done, and a re-run skips it, when the ledger has a line for its input path with the same
SHA-256 of the input file and the same *run key* (pack name and version, pridss-rt version and the settings that
change the output), and its output file exists. Only the driver writes the ledger (appends, one line per item,
flushed), so a run killed at any point leaves a ledger of complete lines and outputs that are all complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

LEDGER = ".pridss-ledger.jsonl"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


def run_key(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings that determine the output (pack, version, options)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Ledger:
    def __init__(self, folder: str | Path, key: str):
        self.path = Path(folder) / LEDGER
        self.key = key
        self.done: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: ignored, the item is redone
                    continue
                if isinstance(rec, dict) and rec.get("key") == key and "src" in rec:
                    self.done[rec["src"]] = rec

    def is_done(self, src: str | Path, dst: str | Path, sha256: str) -> bool:
        rec = self.done.get(str(Path(src).resolve()))
        return rec is not None and rec.get("sha256") == sha256 and Path(dst).is_file()

    def add(self, src: str | Path, dst: str | Path, sha256: str, **info: Any) -> None:
        rec = {"src": str(Path(src).resolve()), "dst": str(dst), "sha256": sha256, "key": self.key, **info}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[rec["src"]] = rec
