"""The device executor: the frame path of the TensorRT backend kept in GPU memory (cuda-python + the native
CUDA ops). It implements the same stage operations as the host executor
(:class:`~pridss_rt.executors.base.Executor`); the frame logic that calls them is the orchestrator's.

Per frame, with the networks' persistent TensorRT bindings (``TrtSession.device_io``):

1. the frame is copied once into pinned host memory and uploaded once (``s_io``, event ``e_up``);
2. ``s_main`` waits on ``e_up``; the native ``pridss_warp_normalize`` kernel cuts and normalizes every face
   crop straight into the encoder's input binding; a device-to-device copy feeds the identity net;
3. encoder + identity run on ``s_main``; only the latents and embeddings (a few KB) come back to the host,
   where tracking, reference choice and fusion decide (cheap, data-dependent control);
4. the fused latents go up into the synthesis binding; synthesis runs; for a candidate search the
   synthesized crops are copied device-to-device into the gender/identity bindings and only scores come
   back;
5. colour matching (when on) uses the same function as the host executor
   (:func:`pridss_rt.stages.blend.color_match` on the uint8 crops): the chosen synthesized crops and the
   original crops (still in the encoder's input binding) come down (a few hundred KB per face), the
   matched crops go up into a paste buffer;
6. the native ``pridss_paste_back`` kernel blends the chosen crops into the device frame with the feathered
   face mask (event ``e_done``); ``s_io`` waits on it and downloads the frame into pinned memory.

Two frame slots alternate, so the upload of frame N+1 (``s_io``) overlaps the compute of frame N
(``s_main``) when the caller submits frames back to back. Every buffer is allocated once, at the largest
frame size seen (grow-only); nothing is allocated per frame.
"""

from __future__ import annotations

import ctypes

import numpy as np

from pridss_rt.backends import Networks
from pridss_rt.backends.trt import cuda
from pridss_rt.errors import BackendError
from pridss_rt.executors.base import Executor
from pridss_rt.pack import ModelPack
from pridss_rt.stages import align, blend
from pridss_rt.stages.score import l2_normalize, p_composite_from_output, p_male_from_output

F32 = np.dtype(np.float32)


class _Slot:
    def __init__(self):
        self.host_in: cuda.PinnedBuffer | None = None
        self.host_out: cuda.PinnedBuffer | None = None
        self.dev = cuda.DeviceBuffer()
        self.e_up = cuda.Event()
        self.e_done = cuda.Event()
        self.e_down = cuda.Event()
        self.shape: tuple[int, int, int] | None = None

    def ensure(self, shape: tuple[int, int, int]) -> None:
        n = int(np.prod(shape))
        if self.host_in is None or self.host_in.nbytes < n:
            for b in (self.host_in, self.host_out):
                if b is not None:
                    b.free()
            self.host_in = cuda.PinnedBuffer((n,), np.uint8)
            self.host_out = cuda.PinnedBuffer((n,), np.uint8)
        self.dev.ensure(n)
        self.shape = shape

    def free(self) -> None:
        for b in (self.host_in, self.host_out):
            if b is not None:
                b.free()
        self.dev.free()
        for e in (self.e_up, self.e_done, self.e_down):
            e.close()


class DeviceExecutor(Executor):
    """Frame upload, crop warp, network chaining, colour match and paste-back on the GPU (module docstring)."""

    name = "device"

    def __init__(self, nets: Networks, pack: ModelPack, mask: np.ndarray, color_match: bool = True,
                 max_faces: int = 16, native_lib=None):
        if nets.backend != "trt" or nets.stream is None:
            raise BackendError("the GPU frame path needs the 'trt' backend")
        from pridss_rt import native

        self.lib = native_lib or native.load_native("cuda")
        self.nets, self.pack = nets, pack
        pre = pack.preprocess
        self.S = pre.crop_size
        self.rgb = int(pre.channel_order == "rgb")
        self._mean = (ctypes.c_float * 3)(*pre.mean)
        self._std = (ctypes.c_float * 3)(*pre.std)
        self.s_main: cuda.Stream = nets.stream  # the stream the TensorRT sessions enqueue on
        self.s_io = cuda.Stream()
        self.max_faces = max_faces
        roles = ("encoder", "synthesis", "gender", "identity") + (("coherence",) if "coherence" in nets else ())
        self.io = {role: nets[role].device_io() for role in roles}
        other = [f"{role}.{n} ({dt})" for role, io in self.io.items() for n, (_, dt, _) in io.items() if dt != F32]
        if other:  # its kernels and copies are written for float32 bindings
            raise BackendError(f"the device executor needs float32 network I/O; the engines have {', '.join(other)} "
                               "(frames go through the host executor, which converts)")
        self.d_mask = cuda.DeviceBuffer(mask.nbytes)
        self.h_mask = cuda.PinnedBuffer(mask.shape, np.float32)
        self.h_mask.view(mask.shape)[...] = mask
        cuda.copy_htod_async(self.d_mask.ptr, self.h_mask.view(mask.shape), self.s_main)
        self.d_mats = cuda.DeviceBuffer(max_faces * 6 * 4)
        self.h_mats = cuda.PinnedBuffer((max_faces, 2, 3), np.float32)
        lat = int(np.prod(pack.latent_shape))
        emb = int(nets["identity"].outputs[0].shape[1])
        self.h_lat = cuda.PinnedBuffer((max_faces * 16, lat), np.float32)  # also K*faces fused latents
        self.h_emb = cuda.PinnedBuffer((max_faces * 16, emb), np.float32)
        self.h_p = cuda.PinnedBuffer((max_faces * 16, 2), np.float32)  # gender outputs: [n], [n,1] or [n,2]
        # coherence critic output, [n] or [n,1]: only for packs that ship one
        self.h_c = cuda.PinnedBuffer((max_faces * 16, 1), np.float32) if "coherence" in self.io else None
        self.mask = mask
        self.color_match = color_match
        crop = (max_faces, 3, self.S, self.S)
        self.h_gen = cuda.PinnedBuffer(crop, np.float32)  # colour matching: chosen synthesized crops ...
        self.h_orig = cuda.PinnedBuffer(crop, np.float32)  # ... the original crops ...
        self.d_paste = cuda.DeviceBuffer(int(np.prod(crop)) * 4)  # ... and the matched crops, pasted from here
        self.slots = [_Slot(), _Slot()]
        self._i = 0
        self.s_main.synchronize()

    # ---- the Executor operations --------------------------------------------------------------------------
    def begin(self, frame: np.ndarray) -> _Slot:
        """Start the frame's upload (``s_io``); detection runs on the host meanwhile."""
        return self.upload(frame)

    def fits(self, faces: int, rows: int) -> bool:
        """Whole batches within the engines' profiles; larger frames go through the host executor."""
        return (faces <= min(self.max_faces, self.nets["encoder"].max_batch)
                and rows <= min(self.nets["synthesis"].max_batch, 16 * self.max_faces))

    def p_male_of_crops(self, slot: _Slot, positions: list[int]) -> np.ndarray:
        n = int(max(positions)) + 1
        return p_male_from_output(self.gender_of_crops(n), self.nets["gender"].spec.options)[positions]

    def synthesize(self, slot: _Slot, latents: np.ndarray, owners: list[int]) -> None:
        self._synthesize(latents)

    def score(self, slot: _Slot, n: int, coherence: bool):
        graw, emb, comp = self.score_candidates(n, coherence=coherence)
        return p_male_from_output(graw, self.nets["gender"].spec.options), emb, comp

    def paste(self, slot: _Slot, rows: list[int], mats: list[np.ndarray]) -> None:
        if self.color_match:
            self._paste_matched(slot, rows, mats)
        else:
            syn = self.nets["synthesis"]
            out = self.io["synthesis"][syn.outputs[0].name][0]
            self._check_finite(self._download_rows(out, rows))  # what will be pasted, tracked rows included
            self._paste(slot, out, rows, mats)

    def _download_rows(self, out: int, rows: list[int]) -> np.ndarray:
        """Synthesized crops ``rows`` into the pinned host buffer (a few hundred KB per face), synchronized."""
        crop_bytes = 3 * self.S * self.S * 4
        gen = self.h_gen.view((len(rows), 3, self.S, self.S))
        for j, row in enumerate(rows):
            cuda.copy_dtoh_async(gen[j], out + row * crop_bytes, self.s_main)
        self.s_main.synchronize()
        return gen

    @staticmethod
    def _check_finite(crops: np.ndarray) -> None:
        if not np.all(np.isfinite(crops)):  # a NaN would be pasted as a flat blob: fail closed instead
            raise FloatingPointError("non-finite network output: synthesis")

    def result(self, slot: _Slot) -> np.ndarray:
        return self.download(slot)

    # ---- frame transfer -------------------------------------------------------------------------------
    def upload(self, frame: np.ndarray) -> _Slot:
        slot = self.slots[self._i]
        self._i ^= 1
        if slot.shape is not None:  # the slot's previous transfers must be finished before reuse
            slot.e_up.synchronize()
            slot.e_down.synchronize()
        slot.ensure(frame.shape)
        host = slot.host_in.view((frame.size,))
        host[...] = frame.reshape(-1)
        cuda.copy_htod_async(slot.dev.ptr, host, self.s_io)
        slot.e_up.record(self.s_io)
        return slot

    def download(self, slot: _Slot) -> np.ndarray:
        self.s_io.wait(slot.e_done)
        n = int(np.prod(slot.shape))
        view = slot.host_out.view((n,))
        cuda.copy_dtoh_async(view, slot.dev.ptr, self.s_io)
        slot.e_down.record(self.s_io)
        slot.e_down.synchronize()
        return view.reshape(slot.shape).copy()

    # ---- stages -----------------------------------------------------------------------------------------
    def _mats(self, mats: list[np.ndarray]) -> None:
        n = len(mats)
        if n > self.max_faces:
            raise BackendError(f"{n} faces > max_faces={self.max_faces} of the GPU path")
        h = self.h_mats.view((n, 2, 3))
        h[...] = np.asarray(mats, np.float32)
        cuda.copy_htod_async(self.d_mats.ptr, h, self.s_main)

    def _status(self, op: str, rc: int) -> None:
        if rc != 0:
            raise BackendError(f"native {op} failed with status {rc}")

    def encode(self, slot: _Slot, mats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Warp crops into the encoder binding, run encoder + identity; returns (latents, embeddings)."""
        n = len(mats)
        self.s_main.wait(slot.e_up)
        self._mats(mats)
        h, w, _ = slot.shape
        enc_in = self.io["encoder"][self.nets["encoder"].inputs[0].name][0]
        self._status("warp_normalize", self.lib.pridss_warp_normalize(
            ctypes.c_void_p(slot.dev.ptr), h, w, w * 3, ctypes.c_void_p(self.d_mats.ptr), n, self.S,
            self._mean, self._std, self.rgb, ctypes.c_void_p(enc_in), ctypes.c_void_p(self.s_main.ptr)))
        id_in = self.io["identity"][self.nets["identity"].inputs[0].name][0]
        cuda.copy_dtod_async(id_in, enc_in, n * 3 * self.S * self.S * 4, self.s_main)
        self.nets["encoder"].enqueue(n)
        self.nets["identity"].enqueue(n)
        lat = self._fetch("encoder", n, self.h_lat)
        emb = self._fetch("identity", n, self.h_emb)
        self.s_main.synchronize()
        return lat.reshape((n,) + self.pack.latent_shape).copy(), l2_normalize(emb)

    def gender_of_crops(self, n: int) -> np.ndarray:
        """Raw gender output for the ``n`` original crops still in the encoder's input binding."""
        enc_in = self.io["encoder"][self.nets["encoder"].inputs[0].name][0]
        g = self.nets["gender"]
        cuda.copy_dtod_async(self.io["gender"][g.inputs[0].name][0], enc_in, n * 3 * self.S * self.S * 4, self.s_main)
        g.enqueue(n)
        view = self._fetch("gender", n, self.h_p)
        self.s_main.synchronize()
        return view.copy()

    def _fetch(self, role: str, n: int, buf: cuda.PinnedBuffer) -> np.ndarray:
        sess = self.nets[role]
        name = sess.outputs[0].name
        shape = (n,) + tuple(int(d) for d in sess.outputs[0].shape[1:])
        view = buf.view(shape)
        cuda.copy_dtoh_async(view, self.io[role][name][0], self.s_main)
        return view

    def _synthesize(self, latents: np.ndarray) -> None:
        """Fused latents -> synthesis binding -> synthesized crops (stay on the device)."""
        n = len(latents)
        syn = self.nets["synthesis"]
        h = self.h_lat.view(latents.shape)
        h[...] = latents
        cuda.copy_htod_async(self.io["synthesis"][syn.inputs[0].name][0], h, self.s_main)
        syn.enqueue(n)

    def score_candidates(self, n: int, coherence: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Gender + identity (+ the coherence critic when ``coherence``) of the ``n`` synthesized crops
        (device-to-device feeds); returns (raw gender output, L2-normalized embeddings, P(composite) or None)."""
        if coherence and self.h_c is None:
            raise ValueError(f"pack '{self.pack.name}' has no coherence network to score candidates with")
        syn = self.nets["synthesis"]
        out = self.io["synthesis"][syn.outputs[0].name][0]
        nbytes = n * 3 * self.S * self.S * 4
        roles = ("gender", "identity") + (("coherence",) if coherence else ())
        for role in roles:
            cuda.copy_dtod_async(self.io[role][self.nets[role].inputs[0].name][0], out, nbytes, self.s_main)
            self.nets[role].enqueue(n)
        gview = self._fetch("gender", n, self.h_p)
        emb = self._fetch("identity", n, self.h_emb)
        comp = self._fetch("coherence", n, self.h_c) if coherence else None
        self.s_main.synchronize()
        return gview.copy(), l2_normalize(emb), (None if comp is None else p_composite_from_output(comp))

    def _paste_matched(self, slot: _Slot, rows: list[int], mats: list[np.ndarray]) -> None:
        """Colour-match the chosen crops to the originals with the host executor's function, then paste."""
        n, pre = len(rows), self.pack.preprocess
        syn = self.nets["synthesis"]
        out = self.io["synthesis"][syn.outputs[0].name][0]
        enc_in = self.io["encoder"][self.nets["encoder"].inputs[0].name][0]
        shape = (n, 3, self.S, self.S)
        orig = self.h_orig.view(shape)
        cuda.copy_dtoh_async(orig, enc_in, self.s_main)
        gen = self._download_rows(out, rows)
        self._check_finite(gen)
        g8, o8 = align.to_uint8(gen, pre), align.to_uint8(orig, pre)
        gen[...] = align.from_uint8(np.stack([blend.color_match(g8[j], o8[j], self.mask) for j in range(n)]), pre)
        cuda.copy_htod_async(self.d_paste.ptr, gen, self.s_main)
        self._paste(slot, self.d_paste.ptr, list(range(n)), mats)

    def _paste(self, slot: _Slot, crops_ptr: int, rows: list[int], mats: list[np.ndarray]) -> None:
        """Blend crops ``rows`` (indices into the network-space crops at ``crops_ptr``) into the device frame."""
        crop_bytes = 3 * self.S * self.S * 4
        h, w, _ = slot.shape
        self._mats(mats)
        for j, row in enumerate(rows):  # one launch per face: faces are applied in order
            self._status("paste_back", self.lib.pridss_paste_back(
                ctypes.c_void_p(slot.dev.ptr), h, w, w * 3, ctypes.c_void_p(crops_ptr + row * crop_bytes),
                ctypes.c_void_p(self.d_mats.ptr + j * 24), 1, self.S, ctypes.c_void_p(self.d_mask.ptr),
                self._mean, self._std, self.rgb, ctypes.c_void_p(self.s_main.ptr)))
        slot.e_done.record(self.s_main)

    def close(self) -> None:
        if self.slots is None:
            return
        for s in self.slots:
            s.free()
        for b in (self.d_mask, self.h_mask, self.d_mats, self.h_mats, self.h_lat, self.h_emb, self.h_p, self.h_c,
                  self.h_gen, self.h_orig, self.d_paste):
            if b is not None:
                b.free()
        self.s_io.close()
        self.slots = None

