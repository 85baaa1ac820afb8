"""The GPU frame path (pridss_rt.executors.device) on a CPU machine: TensorRT and CUDA replaced by stand-ins whose
"device memory" is host memory, and the native CUDA kernels replaced by the native CPU build of the same
per-pixel code. Checks the data flow (one upload, warp into the encoder binding, device-to-device feeds,
one synthesis call, paste-back, one download) against the host path's result."""

import numpy as np
import pytest
from test_backend_trt_fake import fake_gpu  # noqa: F401  (fixture: fake TensorRT engines + CUDA)

from pridss_rt import Anonymizer, BlendConfig, native
from pridss_rt.media import SAMPLE, read_image


class CpuAsCudaLib:
    """The CUDA library's API, served by the CPU library (same arguments, minus the stream)."""

    def __init__(self, cpu):
        self.cpu, self.calls = cpu, []

    def pridss_warp_normalize(self, *args):
        self.calls.append("warp_normalize")
        return self.cpu.pridss_warp_normalize_cpu(*args[:-1])

    def pridss_paste_back(self, *args):
        self.calls.append("paste_back")
        return self.cpu.pridss_paste_back_cpu(*args[:-1])


def fake_device(monkeypatch, tmp_path, pack_dir):
    """Fake TensorRT + CUDA, the native CPU library standing in for the CUDA one, and fake engines of the pack
    at ``pack_dir``: returns (pack, engines root, library stand-in)."""
    import sys

    from test_backend_trt_fake import GPU, Memory, fake_engines, install_fake_cuda, make_fake_trt

    lib = CpuAsCudaLib(native.load_native("cpu"))
    real_load = native.load_native
    monkeypatch.setattr(native, "load_native", lambda kind="cpu": lib if kind == "cuda" else real_load(kind))
    mem, calls = Memory(), []
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(mem, calls))
    install_fake_cuda(monkeypatch, mem, calls)
    pack, root, _ = fake_engines(monkeypatch, tmp_path, pack_dir, GPU)
    return pack, root, lib


@pytest.fixture
def gpu_anon(monkeypatch, tmp_path, shared_tiny_pack, native_build, request):
    cpu = native.load_native("cpu")
    lib = CpuAsCudaLib(cpu)
    real_load = native.load_native
    monkeypatch.setattr(native, "load_native", lambda kind="cpu": lib if kind == "cuda" else real_load(kind))
    # reuse the fake TensorRT/CUDA fixture's setup
    pack, root, calls, _ = request.getfixturevalue("fake_gpu")
    yield pack, root, calls, lib



def test_gpu_path_matches_host_path(gpu_anon):
    pack, root, calls, lib = gpu_anon
    frame = read_image(SAMPLE)
    with Anonymizer(pack, "trt", engines_root=root, blend=BlendConfig(color_match=False), threads=1) as g, \
            Anonymizer(pack, "ort-cpu", blend=BlendConfig(color_match=False), threads=1) as h:
        assert g.backend == "trt" and g.device is not None and h.device is None
        assert repr(g).endswith(" on trt, K=3, region face, references opposite, coherence weight 0, "
                                "detector mtcnn+rotations, frames on GPU>"), repr(g)
        # no critic in this pack: no buffer for it, and asking for its scores is a clear error
        assert "coherence" not in g.device.io and g.device.h_c is None
        with pytest.raises(ValueError, match="no coherence network"):
            g.device.score_candidates(1, coherence=True)
        for k in range(3):
            og, fg = g.process(frame)
            oh, fh = h.process(frame)
            assert [f.status for f in fg] == [f.status for f in fh] == ["anonymized"]
            assert fg[0].reference == fh[0].reference and fg[0].searched == fh[0].searched == (k == 0)
            assert fg[0].p_male_after == pytest.approx(fh[0].p_male_after, abs=1e-4)
            assert fg[0].sim == pytest.approx(fh[0].sim, abs=5e-3)  # crops differ by the warp grid
            d = np.abs(og.astype(int) - oh.astype(int))
            # native bilinear vs OpenCV's 1/32-pixel grid, float vs uint8 crops: a few levels at most
            assert d.max() <= 6 and d.mean() < 0.05
            changed = np.any(og != frame, axis=2)
            ys, xs = np.nonzero(changed)
            assert changed.sum() > 500 and xs.min() > 150 and xs.max() < 300 and ys.min() > 30 and ys.max() < 210
        assert g.stats["syntheses"] == h.stats["syntheses"] == g.candidates + 2
        assert lib.calls.count("warp_normalize") == 3 and lib.calls.count("paste_back") == 3


def test_frames_without_faces_and_too_many_rows_use_safe_paths(gpu_anon):
    from pridss_rt.cli.bench import make_frame

    pack, root, calls, lib = gpu_anon
    with Anonymizer(pack, "trt", engines_root=root, threads=1) as g:
        empty = np.full((120, 160, 3), 77, np.uint8)
        out, faces = g.process(empty)
        assert faces == [] and (out == empty).all()
        two = make_frame(640, 320, 2)
        out, faces = g.process(two)  # 2 faces x K=3 candidates > the fake profile's 4 rows: host path
        assert [f.status for f in faces] == ["anonymized", "anonymized"]
        assert "warp_normalize" not in lib.calls
        out, faces = g.process(two)  # tracked now: 2 rows fit, the GPU path takes over
        assert [f.status for f in faces] == ["anonymized", "anonymized"] and lib.calls.count("paste_back") == 2


def test_gpu_stage_failure_fails_closed(gpu_anon):
    pack, root, calls, lib = gpu_anon
    frame = read_image(SAMPLE)

    def boom(*a):
        raise RuntimeError("kernel launch failed")

    lib.pridss_paste_back = boom
    with Anonymizer(pack, "trt", engines_root=root, threads=1) as g:
        out, faces = g.process(frame)
        assert faces[0].status == "pixelated" and "kernel launch failed" in faces[0].reason


def test_gpu_path_scores_candidates_with_the_coherence_critic(monkeypatch, tmp_path, native_build):
    # a pack with a critic: the device path feeds the synthesized crops to it device-to-device and makes
    # the host path's choice
    import tinypack

    pack_dir = tinypack.make_pack(tmp_path / "packs")
    tinypack.add_coherence(pack_dir, weight=50.0)
    pack, root, lib = fake_device(monkeypatch, tmp_path, pack_dir)
    frame = read_image(SAMPLE)
    with Anonymizer(pack, "trt", engines_root=root, blend=BlendConfig(color_match=False), threads=1) as g, \
            Anonymizer(pack, "ort-cpu", blend=BlendConfig(color_match=False), threads=1) as h:
        assert g.device is not None and "coherence" in g.device.io and g.device.h_c is not None
        (og, fg), (oh, fh) = g.process(frame), h.process(frame)
    assert fg[0].status == fh[0].status == "anonymized" and fg[0].reference == fh[0].reference
    assert fg[0].p_composite is not None and fg[0].p_composite == pytest.approx(fh[0].p_composite, abs=1e-3)
    assert fg[0].pic == pytest.approx(fh[0].pic, abs=0.1)  # 50 x the critic's small warp-grid difference
    assert np.abs(og.astype(int) - oh.astype(int)).max() <= 6


@pytest.mark.parametrize("color_match", [True, False])
def test_both_executors_run_the_same_stages_and_agree(gpu_anon, color_match):
    # one frame loop, two executors: same decisions, same records, pixels within the warp-grid tolerance,
    # colour matching applied on both (with it on, the faces differ from the runs without it)
    from pridss_rt.cli.bench import make_frame

    pack, root, calls, lib = gpu_anon
    frames = [read_image(SAMPLE), make_frame(480, 320, 1)]
    cfg = BlendConfig(color_match=color_match)
    with Anonymizer(pack, "trt", engines_root=root, blend=cfg, threads=1) as g, \
            Anonymizer(pack, "ort-cpu", blend=cfg, threads=1) as h, \
            Anonymizer(pack, "ort-cpu", blend=BlendConfig(color_match=not color_match), threads=1) as other:
        assert g.device is not None and h.device is None
        for frame in frames:
            for anon in (g, h, other):
                anon.reset()
            (og, fg), (oh, fh), (oo, _) = g.process(frame), h.process(frame), other.process(frame)
            assert [f.status for f in fg] == [f.status for f in fh] == ["anonymized"]
            for a, b in zip(fg, fh):
                assert (a.reference, a.track_id, a.searched) == (b.reference, b.track_id, b.searched)
                for key in ("p_male_before", "p_male_after", "pic"):
                    assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-2), key
                assert a.sim == pytest.approx(b.sim, abs=5e-3)
            d = np.abs(og.astype(int) - oh.astype(int))
            assert d.max() <= 6 and d.mean() < 0.05, (d.max(), d.mean())
            face = np.any(oh != frame, axis=2)
            # colour matching really changes the face (so agreement above is not agreement of two no-ops)
            assert np.abs(oo[face].astype(int) - oh[face].astype(int)).mean() > 0.5
            assert (og[~face] == frame[~face]).mean() > 0.999
    assert lib.calls.count("paste_back") == len(frames)


@pytest.mark.parametrize("color_match", [True, False])
def test_non_finite_synthesis_on_the_device_fails_closed(gpu_anon, monkeypatch, color_match):
    # a NaN in the synthesis binding, on the search frame and on a tracked frame (one synthesis row, no scoring):
    # the face is pixelated with the reason, never pasted; the frame equals the host path's fail-closed output
    from pridss_rt.stages.blend import expand_box, pixelate

    pack, root, calls, lib = gpu_anon
    frame = read_image(SAMPLE)
    with Anonymizer(pack, "trt", engines_root=root, blend=BlendConfig(color_match=color_match), threads=1) as g:
        assert g.device is not None
        _, faces = g.process(frame)  # the search frame, clean: the track keeps its reference
        assert faces[0].status == "anonymized"
        dev = g.device
        real = dev._synthesize

        def poisoned(latents):
            real(latents)
            syn = dev.nets["synthesis"]
            from test_backend_trt_fake import Memory

            out = dev.io["synthesis"][syn.outputs[0].name][0]
            Memory.view(out, np.float32, (1,))[0] = np.nan  # the first pixel of row 0 on the "device"

        monkeypatch.setattr(dev, "_synthesize", poisoned)
        out, faces = g.process(frame)  # tracked: no scores to catch it, only the paste's check
        assert faces[0].status == "pixelated" and "non-finite network output: synthesis" in faces[0].reason
        want = frame.copy()
        pixelate(want, expand_box(np.array(faces[0].box), frame.shape))
        assert (out == want).all()
