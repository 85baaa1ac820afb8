import os
import shutil
import subprocess
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


# native (CMake) build shared by test_native.py and the GPU-path tests


def _find_cxx_compiler():
    candidates = [os.environ.get("CXX"), "c++", "g++", "clang++"]
    for name in candidates:
        if name and shutil.which(name):
            return name
    return None


def _cmake_cache(build_dir: Path) -> dict:
    cache = {}
    for line in (build_dir / "CMakeCache.txt").read_text().splitlines():
        if line and not line.startswith(("#", "//")) and "=" in line:
            key, value = line.split("=", 1)
            cache[key.split(":", 1)[0]] = value
    return cache


@pytest.fixture(scope="session")
def native_build(tmp_path_factory):
    """Builds the project once per session; yields (build_dir, cmake cache)."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake not found on PATH: cannot build the native libraries")
    if _find_cxx_compiler() is None:
        pytest.skip("no C++ compiler found (CXX, c++, g++, clang++): cannot build native libraries")
    build_dir = tmp_path_factory.mktemp("native_build")
    configure = [
        "cmake", "-S", str(ROOT), "-B", str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CUDA_ARCHITECTURES=75",
    ]
    build = ["cmake", "--build", str(build_dir), "-j2"]
    for cmd in (configure, build):
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout[-6000:]}")
    mp = pytest.MonkeyPatch()
    from pridss_rt import native

    mp.setenv(native.ENV_VAR, str(build_dir))
    yield build_dir, _cmake_cache(build_dir)
    mp.undo()


