"""The TensorRT backend's logic on a CPU machine, against a stand-in for TensorRT and CUDA that enforces what
the real ones enforce.

The real TensorRT/cuda-python path needs a GPU (tests marked ``trt`` run there). Here a fake ``tensorrt``
module (an "engine" is an ONNX file run by ONNX Runtime) and fake device memory exercise everything around it:
engine discovery through a matching manifest, ``auto`` choosing ``trt``, the I/O signature check, persistent
buffers bound once with ``set_tensor_address``, ``set_input_shape`` only on a batch change, chunking above the
profile's max batch, CUDA-graph capture once per batch size.

What the fakes enforce (each rule fails a test when the backend breaks it):

- ``set_input_shape`` returns False outside the optimization profile's [min, max] or for a wrong rank or name;
  ``set_tensor_address`` returns False for an unknown name or a null pointer; ``execute_async_v3`` refuses a
  context with an input shape or an address not set;
- binding dtypes are TensorRT ``DataType`` values (``trt.nptype`` maps them), read from the ONNX graph; the engine
  reads and writes its bindings with those dtypes;
- streams: every fake stream has its own handle; device memory remembers which stream last wrote it, and a read
  on another stream (or on stream 0) without an event wait or a host synchronization after that write is a race:
  the fake raises;
- CUDA graphs: capture records the work enqueued on the capturing stream (work on another stream is not part of
  the graph); TensorRT must have run once on the context's current shapes before capture; a graph replays the
  shapes and addresses it was captured with, and only while its context has not been reshaped since.
"""

import ctypes
import itertools
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


class FakeCudaError(AssertionError):
    """What real CUDA/TensorRT would answer with an error code or a race."""


class Memory:
    """Fake device memory: host arrays whose real addresses serve as device pointers, so pointer arithmetic
    (offsets into a binding) and the native CPU kernels work on it. It remembers, per allocation, the stream and
    the sequence number of the last asynchronous write, and checks every asynchronous read against it."""

    def __init__(self):
        self.blocks = []
        self.spans: list[tuple[int, int]] = []  # (start, end) of every allocation
        self.writer: dict[int, tuple[int, int]] = {}  # allocation start -> (stream handle, sequence number)
        self.seq = itertools.count(1)
        self.host_seen: dict[int, int] = {}  # stream -> last sequence number the host synchronized with
        self.capturing: "FakeCapture | None" = None

    def alloc(self, n):
        arr = np.zeros(max(1, n), np.uint8)
        self.blocks.append(arr)
        self.spans.append((arr.ctypes.data, arr.ctypes.data + arr.nbytes))
        return arr.ctypes.data

    def _span(self, ptr):
        for a, b in self.spans:
            if a <= ptr < b:
                return a
        return None

    def wrote(self, ptr, stream):
        a = self._span(ptr)
        if a is not None:
            self.writer[a] = (stream.ptr if stream is not None else 0, next(self.seq))

    def read(self, ptr, stream, what="a read"):
        """A read of device memory at ``ptr`` enqueued on ``stream`` (a fake Stream or a raw handle)."""
        a = self._span(ptr)
        if a is None or a not in self.writer:
            return
        w_stream, w_seq = self.writer[a]
        s = stream.ptr if hasattr(stream, "ptr") else int(stream)
        if w_stream == s:
            return
        seen = max(self.host_seen.get(w_stream, 0), STREAMS[s].seen.get(w_stream, 0) if s in STREAMS else 0)
        if w_seq > seen:
            raise FakeCudaError(f"race: {what} on stream {s} of memory written on stream {w_stream} with no event "
                                "wait or synchronization in between")

    @staticmethod
    def view(ptr, dtype, shape):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer((ctypes.c_byte * n).from_address(ptr), dtype=dtype).reshape(shape)

    def get(self, ptr, dtype, shape):
        return self.view(ptr, dtype, shape).copy()

    def put(self, ptr, arr):
        self.view(ptr, arr.dtype, arr.shape)[...] = arr


STREAMS: dict[int, object] = {}  # live fake streams by handle
_HANDLES = itertools.count(0x1000, 0x10)


class FakeCapture:
    def __init__(self, stream):
        self.stream, self.ops = stream, []


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

    class DataType:
        FLOAT = "DataType.FLOAT"
        HALF = "DataType.HALF"

    nptypes = {DataType.FLOAT: np.float32, DataType.HALF: np.float16}

    def nptype(dt):
        if dt not in nptypes:
            raise TypeError(f"nptype: not a TensorRT DataType: {dt!r}")
        return nptypes[dt]

    class Context:
        def __init__(self, eng):
            self.eng, self.shapes, self.addr = eng, {}, {}
            self.generation = 0  # bumped by every shape change
            self.warmed = False  # ran since the last shape change

        def set_input_shape(self, name, shape):
            calls.append(("set_input_shape", name, tuple(shape)))
            shape = tuple(int(d) for d in shape)
            if name not in self.eng.inputs:
                return False
            lo, _, hi = self.eng.get_tensor_profile_shape(name, 0)
            if len(shape) != len(lo) or any(not a <= d <= b for d, a, b in zip(shape, lo, hi)):
                return False  # real TensorRT logs the profile bounds and returns False
            if self.shapes.get(name) != shape:
                self.shapes[name] = shape
                self.generation += 1
                self.warmed = False
            return True

        def get_tensor_shape(self, name):
            if name in self.eng.inputs:
                return self.shapes[name]
            b = next(iter(self.shapes.values()))[0]
            return (b,) + tuple(self.eng.outputs[name][1:])

        def set_tensor_address(self, name, ptr):
            calls.append(("set_tensor_address", name))
            if name not in self.eng.names or not ptr:
                return False
            self.addr[name] = ptr
            return True

        def execute_async_v3(self, stream):
            calls.append(("execute_async_v3",))
            missing = [n for n in self.eng.inputs if n not in self.shapes] + [n for n in self.eng.names if n not in self.addr]
            if missing:
                return False
            if stream not in STREAMS and stream != 0:
                raise FakeCudaError(f"execute_async_v3: {stream!r} is not a live stream")
            cap = mem.capturing
            if cap is not None and cap.stream.ptr == stream:
                if not self.warmed:
                    raise FakeCudaError("CUDA graph capture of a TensorRT context that has not run on its current "
                                        "shapes (TensorRT allocates on the first run after a shape change)")
                cap.ops.append((self, dict(self.shapes), dict(self.addr), self.generation))
                return True
            self.run(stream, self.shapes, self.addr)
            self.warmed = True
            return True

        def run(self, stream, shapes, addr):
            for n in self.eng.inputs:
                mem.read(addr[n], stream, f"TensorRT's read of '{n}'")
            feeds = {n: mem.get(addr[n], self.eng.dtype[n], shapes[n]) for n in self.eng.inputs}
            for n, val in zip(self.eng.outputs, self.eng.sess.run(list(self.eng.outputs), feeds)):
                mem.put(addr[n], np.ascontiguousarray(val, self.eng.dtype[n]))
                mem.wrote(addr[n], STREAMS.get(stream))

    class Engine:
        def __init__(self, onnx_path):
            self.sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            fix = lambda s: [-1 if not isinstance(d, int) else d for d in s]  # noqa: E731
            self.inputs = {i.name: fix(i.shape) for i in self.sess.get_inputs()}
            self.outputs = {o.name: fix(o.shape) for o in self.sess.get_outputs()}
            kinds = {"tensor(float)": DataType.FLOAT, "tensor(float16)": DataType.HALF}
            self.trt_dtype = {v.name: kinds[v.type] for v in list(self.sess.get_inputs()) + list(self.sess.get_outputs())}
            self.dtype = {n: np.dtype(nptypes[t]) for n, t in self.trt_dtype.items()}
            self.names = list(self.inputs) + list(self.outputs)
            self.num_io_tensors = len(self.names)
            self.contexts = 0

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, n):
            return TensorIOMode.INPUT if n in self.inputs else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, n):
            return self.trt_dtype[n]

        def get_tensor_shape(self, n):
            return (self.inputs | self.outputs)[n]

        def get_tensor_profile_shape(self, n, profile):
            if profile != 0 or n not in self.inputs:
                raise FakeCudaError(f"get_tensor_profile_shape({n!r}, {profile}): no such input/profile")
            s = self.inputs[n]
            return [tuple(1 if d < 0 else d for d in s), tuple(2 if d < 0 else d for d in s),
                    tuple(MAX_BATCH if d < 0 else d for d in s)]

        def create_execution_context(self):
            self.contexts += 1
            calls.append(("create_execution_context",))
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            calls.append(("deserialize",))
            return Engine(data.decode())

    trt.Logger, trt.Runtime, trt.TensorIOMode, trt.DataType = Logger, Runtime, TensorIOMode, DataType
    trt.nptype = nptype
    return trt


def install_fake_cuda(monkeypatch, mem, calls):
    """Replace pridss_rt.backends.trt.cuda's classes/functions with host-memory stand-ins that keep CUDA's
    ordering rules (see the module docstring)."""

    class Stream:
        def __init__(self):
            self.handle = next(_HANDLES)
            self.seen: dict[int, int] = {}  # stream -> last sequence number this stream waited for
            STREAMS[self.handle] = self

        @property
        def ptr(self):
            return self.handle

        def synchronize(self):
            mem.host_seen[self.handle] = next(mem.seq)

        def wait(self, event):
            if event.stream is not None:
                self.seen[event.stream] = max(self.seen.get(event.stream, 0), event.seq)

        def close(self):
            STREAMS.pop(self.handle, None)

    class Event:
        def __init__(self, timing=False):
            self.stream, self.seq = None, 0

        def record(self, stream):
            self.stream, self.seq = stream.ptr, next(mem.seq)
            return self

        def synchronize(self):
            if self.stream is not None:
                mem.host_seen[self.stream] = max(mem.host_seen.get(self.stream, 0), self.seq)

        def is_done(self):
            self.synchronize()
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
            if mem.capturing is not None:
                raise FakeCudaError("nested stream capture")
            self.stream = stream
            mem.capturing = FakeCapture(stream)
            try:
                fn()
            finally:
                self.ops, mem.capturing = mem.capturing.ops, None

        def launch(self):
            calls.append(("graph_launch",))
            for ctx, shapes, addr, generation in self.ops:
                if ctx.generation != generation:
                    raise FakeCudaError("CUDA graph replayed after its TensorRT context was reshaped (the graph holds "
                                        "the context's old shapes and internal memory)")
                ctx.run(self.stream.ptr, shapes, addr)

        def close(self):
            pass

    def htod(ptr, src, stream):
        mem.view(ptr, src.dtype, src.shape)[...] = src
        mem.wrote(ptr, stream)

    def dtoh(dst, ptr, stream):
        mem.read(ptr, stream, "a copy to the host")
        dst[...] = mem.view(ptr, dst.dtype, dst.shape)

    def dtod(dst, src, nbytes, stream):
        mem.read(src, stream, "a device copy")
        ctypes.memmove(dst, src, nbytes)
        mem.wrote(dst, stream)

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


# ---- what the fakes enforce, and the backend under them ---------------------------------------------------------
def test_fake_tensorrt_refuses_what_tensorrt_refuses(fake_gpu):
    pack, root, calls, _ = fake_gpu
    trt = sys.modules["tensorrt"]
    eng = trt.Runtime(None).deserialize_cuda_engine(str(pack.network("synthesis").path).encode())
    ctx = eng.create_execution_context()
    name = eng.get_tensor_name(0)
    assert ctx.set_input_shape(name, (MAX_BATCH + 1, tinypack.LATENT)) is False  # above the profile's max
    assert ctx.set_input_shape(name, (0, tinypack.LATENT)) is False  # below its min
    assert ctx.set_input_shape(name, (2, tinypack.LATENT + 1)) is False  # a static dim changed
    assert ctx.set_input_shape("nope", (2, tinypack.LATENT)) is False
    assert ctx.set_input_shape(name, (2, tinypack.LATENT)) is True
    assert ctx.set_tensor_address(name, 0) is False and ctx.set_tensor_address("nope", 1) is False
    assert ctx.execute_async_v3(cuda.Stream().ptr) is False  # the output has no address yet
    assert trt.nptype(eng.get_tensor_dtype(name)) is np.float32
    with pytest.raises(TypeError):
        trt.nptype("float32")  # dtypes are DataType values, not strings


def test_a_read_on_another_stream_without_a_wait_is_a_race(fake_gpu):
    a, b = cuda.Stream(), cuda.Stream()
    buf = cuda.DeviceBuffer(64)
    cuda.copy_htod_async(buf.ptr, np.ones(16, np.float32), a)
    host = np.zeros(16, np.float32)
    with pytest.raises(AssertionError, match="race"):
        cuda.copy_dtoh_async(host, buf.ptr, b)
    ev = cuda.Event().record(a)
    b.wait(ev)
    cuda.copy_dtoh_async(host, buf.ptr, b)  # ordered by the event
    cuda.copy_htod_async(buf.ptr, np.ones(16, np.float32), a)
    a.synchronize()
    cuda.copy_dtoh_async(host, buf.ptr, b)  # ordered by the host
    assert host.sum() == 16


def test_cuda_graphs_per_batch_size_match_eager_runs_in_alternation(fake_gpu):
    # batch sizes in alternation, graphs on: every result equals ONNX Runtime's; one context per captured batch
    # size (a graph holds its context's shapes and memory), one capture per size, each after a warm-up run
    pack, root, calls, _ = fake_gpu
    ref = tinypack.reference(tinypack.weights(0))["synthesis"]
    rng = np.random.default_rng(2)
    with open_networks(pack, "trt", engines_root=root, cuda_graphs=True, smoke_test=False) as nets:
        calls.clear()
        syn = nets["synthesis"]
        for b in (2, 3, 2, 1, 3, 2, 1):
            z = rng.standard_normal((b, tinypack.LATENT)).astype(np.float32)
            np.testing.assert_allclose(syn.run({"latent": z})["image"], ref(z), atol=1e-5)
        assert calls.count(("capture",)) == 3 and calls.count(("graph_launch",)) == 7
        assert calls.count(("create_execution_context",)) == 3


def test_eager_runs_reshape_one_context(fake_gpu):
    pack, root, calls, _ = fake_gpu
    with open_networks(pack, "trt", engines_root=root, smoke_test=False) as nets:
        calls.clear()
        for b in (2, 3, 2):
            nets["encoder"].run({"image": np.zeros((b, 3, 16, 16), np.float32)})
        assert ("create_execution_context",) not in calls and ("capture",) not in calls
        assert [c[2][0] for c in calls if c[0] == "set_input_shape"] == [2, 3, 2]


def test_float16_bindings_are_sized_and_read_as_float16(fake_gpu, tmp_path):
    # an engine whose I/O is float16 (a pack may declare it): buffers sized by the binding's dtype, inputs written
    # and outputs read as float16
    import dataclasses

    import onnx
    from onnx import TensorProto, helper

    from pridss_rt.backends.trt.session import TrtSession
    from pridss_rt.pack.spec import NetworkSpec, TensorSpec

    g = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], "h",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 8])],
                          [helper.make_tensor("two", TensorProto.FLOAT16, [], [2.0])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "half.onnx"
    onnx.save(m, str(path))
    eng = tmp_path / "half.engine"
    eng.write_bytes(str(path).encode())
    spec = NetworkSpec("gender", path, "", "face", (TensorSpec("x", ("batch", 8), "float16"),),
                       (TensorSpec("y", ("batch", 8), "float16"),))
    s = TrtSession(spec, eng)
    try:
        assert {n: (dt, shape) for n, (_, dt, shape) in s.device_io().items()} == \
            {"x": (np.dtype(np.float16), (MAX_BATCH, 8)), "y": (np.dtype(np.float16), (MAX_BATCH, 8))}
        x = np.linspace(-2, 2, 24, dtype=np.float16).reshape(3, 8)
        y = s.run({"x": x})["y"]
        assert y.dtype == np.float16 and np.array_equal(y, x * np.float16(2))
        with pytest.raises(Exception, match="pack.json says float32, network has float16"):
            TrtSession(dataclasses.replace(spec, inputs=(TensorSpec("x", ("batch", 8), "float32"),)), eng)
    finally:
        s.close()
