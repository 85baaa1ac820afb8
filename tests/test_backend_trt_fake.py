"""The TensorRT backend's logic on a CPU machine, against a stand-in for TensorRT and CUDA.

The real TensorRT/cuda-python path needs a GPU (tests marked ``trt`` run there). Here a fake
``tensorrt`` module (an "engine" is an ONNX file run by ONNX Runtime) and fake device memory exercise
everything around it: engine discovery through a matching manifest, ``auto`` choosing ``trt``, the
I/O signature check, persistent buffers bound once with ``set_tensor_address``, ``set_input_shape`` only
on a batch change, chunking above the profile's max batch, CUDA-graph capture once per batch size.
"""

import ctypes
import sys
import types

import numpy as np
import pytest
import tinypack

from pridss_rt import load_pack
from pridss_rt.backends import open_networks
from pridss_rt.backends.trt import cuda
from pridss_rt.backends.trt.engines import (
    SCHEMA,
    SCHEMA_VERSION,
    engine_dir,
    write_manifest,
)
from pridss_rt.pack import sha256_file

GPU = {"index": 0, "name": "Fake GPU", "compute_capability": "8.9", "driver_cuda": "13.0", "runtime_cuda": "13.0"}
TRT_VERSION = "10.99.0"
MAX_BATCH = 4


class Memory:
    """Fake device memory: host arrays whose real addresses serve as device pointers, so pointer
    arithmetic (offsets into a binding) and the native CPU kernels work on it."""

    def __init__(self):
        self.blocks = []

    def alloc(self, n):
        arr = np.zeros(max(1, n), np.uint8)
        self.blocks.append(arr)
        return arr.ctypes.data

    @staticmethod
    def view(ptr, dtype, shape):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer((ctypes.c_byte * n).from_address(ptr), dtype=dtype).reshape(shape)

    def read(self, ptr, dtype, shape):
        return self.view(ptr, dtype, shape).copy()

    def write(self, ptr, arr):
        self.view(ptr, arr.dtype, arr.shape)[...] = arr


def make_fake_trt(mem, calls):
    import onnxruntime as ort

    trt = types.ModuleType("tensorrt")
    trt.__version__ = TRT_VERSION

    class Logger:
        WARNING = 2
        ERROR = 1

        def __init__(self, sev):
            pass

    class TensorIOMode:
        INPUT, OUTPUT = "in", "out"

    class Context:
        def __init__(self, eng):
            self.eng, self.shapes, self.addr = eng, {}, {}

        def set_input_shape(self, name, shape):
            calls.append(("set_input_shape", name, tuple(shape)))
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            if name in self.eng.inputs:
                return self.shapes[name]
            b = next(iter(self.shapes.values()))[0]
            return (b,) + tuple(self.eng.outputs[name][1:])

        def set_tensor_address(self, name, ptr):
            calls.append(("set_tensor_address", name))
            self.addr[name] = ptr
            return True

        def execute_async_v3(self, stream):
            calls.append(("execute_async_v3",))
            feeds = {n: mem.read(self.addr[n], np.float32, self.shapes[n]) for n in self.eng.inputs}
            for n, val in zip(self.eng.outputs, self.eng.sess.run(list(self.eng.outputs), feeds)):
                mem.write(self.addr[n], np.ascontiguousarray(val, np.float32))
            return True

    class Engine:
        def __init__(self, onnx_path):
            self.sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            fix = lambda s: [-1 if not isinstance(d, int) else d for d in s]  # noqa: E731
            self.inputs = {i.name: fix(i.shape) for i in self.sess.get_inputs()}
            self.outputs = {o.name: fix(o.shape) for o in self.sess.get_outputs()}
            self.names = list(self.inputs) + list(self.outputs)
            self.num_io_tensors = len(self.names)

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, n):
            return TensorIOMode.INPUT if n in self.inputs else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, n):
            return "float32"

        def get_tensor_shape(self, n):
            return (self.inputs | self.outputs)[n]

        def get_tensor_profile_shape(self, n, profile):
            s = self.inputs[n]
            return [tuple(1 if d < 0 else d for d in s), tuple(2 if d < 0 else d for d in s),
                    tuple(MAX_BATCH if d < 0 else d for d in s)]

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            calls.append(("deserialize",))
            return Engine(data.decode())

    trt.Logger, trt.Runtime, trt.TensorIOMode = Logger, Runtime, TensorIOMode
    trt.nptype = lambda dt: np.float32
    return trt


def install_fake_cuda(monkeypatch, mem, calls):
    """Replace pridss_rt.backends.trt.cuda's classes/functions with host-memory stand-ins."""

    class Stream:
        ptr = 0

        def synchronize(self):
            pass

        def wait(self, event):
            pass

        def close(self):
            pass

    class Event:
        def __init__(self, timing=False):
            pass

        def record(self, stream):
            return self

        def synchronize(self):
            pass

        def is_done(self):
            return True

        def close(self):
            pass

    class DeviceBuffer:
        def __init__(self, n=0):
            self.ptr, self.nbytes = 0, 0
            if n:
                self.ensure(n)

        def ensure(self, n):
            if n > self.nbytes:
                self.ptr, self.nbytes = mem.alloc(n), n
            return self.ptr

        def free(self):
            pass

    class PinnedBuffer:
        def __init__(self, shape, dtype):
            self.arr = np.zeros(int(np.prod(shape)), dtype)
            self.nbytes = self.arr.nbytes

        def view(self, shape, dtype=None):
            return self.arr[:int(np.prod(shape))].reshape(shape)

        def free(self):
            pass

    class Graph:
        def __init__(self, stream, fn):
            calls.append(("capture",))
            self.fn = fn

        def launch(self):
            calls.append(("graph_launch",))
            self.fn()

        def close(self):
            pass

    def htod(ptr, src, stream):
        mem.view(ptr, src.dtype, src.shape)[...] = src

    def dtoh(dst, ptr, stream):
        dst[...] = mem.view(ptr, dst.dtype, dst.shape)

    def dtod(dst, src, nbytes, stream):
        ctypes.memmove(dst, src, nbytes)

    for name, obj in dict(Stream=Stream, Event=Event, DeviceBuffer=DeviceBuffer, PinnedBuffer=PinnedBuffer,
                          CudaGraph=Graph, copy_htod_async=htod, copy_dtoh_async=dtoh, copy_dtod_async=dtod).items():
        monkeypatch.setattr(cuda, name, obj)


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path, shared_tiny_pack):
    mem, calls = Memory(), []
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(mem, calls))
    install_fake_cuda(monkeypatch, mem, calls)
    pack, root, folder = fake_engines(monkeypatch, tmp_path, shared_tiny_pack, GPU)
    return pack, root, calls, folder


def fake_engines(monkeypatch, tmp_path, pack_dir, gpu):
    """Pretend ``gpu`` has TensorRT: engines whose files hold their ONNX paths, under a matching manifest."""
    from pridss_rt.backends import probe

    info = probe.MachineInfo(gpus=[gpu], driver="580.00", tensorrt=TRT_VERSION, onnxruntime="x",
                             ort_providers=["CPUExecutionProvider"])
    monkeypatch.setattr(probe, "machine", lambda: info)
    pack = load_pack(pack_dir)
    root = tmp_path / "engines"
    folder = engine_dir(root, pack.name, gpu["name"], gpu["compute_capability"], TRT_VERSION)
    folder.mkdir(parents=True)
    nets = {}
    for role, spec in pack.networks.items():
        eng = folder / f"{role}.engine"
        eng.write_bytes(str(spec.path).encode())
        nets[role] = {"engine": eng.name, "engine_sha256": sha256_file(eng), "source_onnx_sha256": spec.sha256}
    write_manifest(folder, {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "pack": pack.name,
                            "gpu": {"name": gpu["name"], "compute_capability": gpu["compute_capability"]},
                            "tensorrt": {"version": TRT_VERSION}, "precision": "fp16", "networks": nets})
    return pack, root, folder


def test_auto_picks_trt_when_engines_match_and_results_equal_ort(fake_gpu):
    pack, root, calls, _ = fake_gpu
    with open_networks(pack, "auto", engines_root=root) as nets, open_networks(pack, "ort-cpu", threads=1) as ref:
        assert nets.backend == "trt" and "auto picked trt" in nets.reason
        x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32)
        for role, feed in (("encoder", {"image": x}), ("gender", {"image": x}), ("identity", {"image": x})):
            got, want = nets[role].run(feed), ref[role].run(feed)
            for k in want:
                np.testing.assert_allclose(got[k], want[k], atol=1e-6)


def test_buffers_bound_once_shapes_set_on_change_and_chunking(fake_gpu):
    pack, root, calls, _ = fake_gpu
    with open_networks(pack, "trt", engines_root=root, smoke_test=False) as nets:
        syn = nets["synthesis"]
        binds = [c for c in calls if c[0] == "set_tensor_address"]
        assert len(binds) == 8  # 4 networks x (1 input + 1 output), bound once at load
        calls.clear()
        z = np.random.default_rng(1).standard_normal((MAX_BATCH * 2 + 1, tinypack.LATENT)).astype(np.float32)
        out = syn.run({"latent": z})["image"]
        ref = tinypack.reference(tinypack.weights(0))["synthesis"](z)
        np.testing.assert_allclose(out, ref, atol=1e-5)
        # 9 rows with a max batch of 4 -> chunks 4, 4, 1: shapes set only when the batch changes
        assert [c for c in calls if c[0] == "execute_async_v3"] == [("execute_async_v3",)] * 3
        shapes = [c[2] for c in calls if c[0] == "set_input_shape"]
        assert shapes == [(MAX_BATCH, tinypack.LATENT), (1, tinypack.LATENT)]
        assert not [c for c in calls if c[0] == "set_tensor_address"]


def test_cuda_graph_captured_once_per_batch(fake_gpu):
    pack, root, calls, _ = fake_gpu
    with open_networks(pack, "trt", engines_root=root, cuda_graphs=True, smoke_test=False) as nets:
        calls.clear()
        for b in (2, 2, 3, 2):
            nets["encoder"].run({"image": np.zeros((b, 3, 16, 16), np.float32)})
        assert calls.count(("capture",)) == 2  # batch 2 and batch 3
        assert calls.count(("graph_launch",)) == 4


def test_tampered_engine_is_never_deserialized(fake_gpu):
    pack, root, calls, folder = fake_gpu
    (folder / "gender.engine").write_bytes(b"/tmp/evil.onnx")
    calls.clear()
    with pytest.raises(Exception, match=r"gender: engine file gender.engine does not match its manifest hash"):
        open_networks(pack, "trt", engines_root=root)
    assert ("deserialize",) not in calls
    with open_networks(pack, "auto", engines_root=root) as nets:  # auto falls back and says why
        assert nets.backend == "ort-cpu" and "does not match its manifest hash" in nets.reason
