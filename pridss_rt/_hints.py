"""Hints that name commands the user's install really has. The export and research tools live in a source
checkout of pridss-rt, not in the wheel: a hint names them with where they are (an editable install's
checkout) or with what it takes to get them."""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]  # the folder holding pridss_rt/ (site-packages for a wheel)


def checkout() -> Path | None:
    """The source checkout this package runs from (editable install), or None for a wheel install."""
    return _CHECKOUT if (_CHECKOUT / "export" / "build_engines.py").is_file() else None


def source_tool(script: str, args: str = "", extra: str = "export") -> str:
    """The command line of a source checkout's tool (``script`` relative to the checkout, e.g.
    ``export/build_engines.py``), said so that it works from this install."""
    cmd = f"python {script}" + (f" {args}" if args else "")
    root = checkout()
    if root is not None:
        return cmd if Path.cwd().resolve() == root else f"cd {root} && {cmd}"
    return (f"{cmd}  (in a source checkout of pridss-rt, installed with pip install -e '.[{extra}]'; "
            "the wheel does not ship the export and research tools)")


def build_engines(pack: str) -> str:
    return source_tool("export/build_engines.py", f"--fp16 --pack {pack}", extra="export,trt")
