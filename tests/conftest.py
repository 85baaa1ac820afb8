import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


@pytest.fixture
def tiny_pack(tmp_path):
    """A fresh, valid tiny pack folder (tests may corrupt it)."""
    import tinypack

    return tinypack.make_pack(tmp_path)


@pytest.fixture(scope="session")
def shared_tiny_pack(tmp_path_factory):
    """A valid tiny pack shared by read-only tests."""
    import tinypack

    return tinypack.make_pack(tmp_path_factory.mktemp("packs"))
