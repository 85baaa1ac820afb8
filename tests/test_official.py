"""Official PriDSS networks (export/official): key-exactness, export forms, loaders, make_pack, ORT parity.

Reduced-size random-weight networks (export/official/fixtures.SMALL) keep the default run short; the
full-size 1024 export is ``@pytest.mark.slow``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from export.official import checkpoints as ck  # noqa: E402
from export.official import fixtures as fx  # noqa: E402
from export.official import ops  # noqa: E402
from export.official.stylefusion import (  # noqa: E402
    FFHQ_PARTS,
    FusionNet,
    StyleFusionS,
    pridss_sources,
)
from export.official.stylegan2 import SSynthesis, s_layout  # noqa: E402

torch.set_num_threads(1)  # tiny ops: extra threads only add contention on a shared 2-core machine
torch.set_grad_enabled(False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """SMALL random nets, their official-layout checkpoint files, reference images and a pack."""
    import onnxruntime as ort

    from export import make_pack

    ort.set_default_logger_severity(3)
    work = tmp_path_factory.mktemp("official")
    nets = fx.build(fx.SMALL, seed=0)
    paths = fx.write_checkpoints(nets, work / "ck")
    gender = fx.export_gender(nets, work / "ck" / "gender.onnx")
    faces = fx.sample_faces(nets, 10, seed=3)  # 5 per gender: K=5 candidates without repeats
    refs, labels = fx.write_reference_images(faces, work / "refs", np.array([1, 0] * 5))
    rc = make_pack.main(["--e4e", str(paths["e4e"]), "--stylegan", str(paths["stylegan"]), "--arcface",
                         str(paths["arcface"]), "--stylefusion", str(paths["stylefusion"]), "--gender", str(gender),
                         "--gender-output-kind", "softmax2", "--apply-softmax", "--references", str(refs),
                         "--out", str(work / "pack")])
    assert rc == 0
    return {"nets": nets, "paths": paths, "pack": work / "pack", "work": work, "gender": gender}


@pytest.fixture(scope="module")
def reference(small):
    from export.official.gender import GenderProbability
    from export.official.pipeline import PriDSSReference

    n = small["nets"]
    fusion = StyleFusionS(n["fusion"], n["generator"].s_layout(), pridss_sources())
    return PriDSSReference(n["generator"], n["encoder"], n["latent_avg"], fusion, n["arcface"],
                           GenderProbability(n["gender"], "softmax2", 1, True), n["config"].crop_size)


@pytest.fixture(scope="module")
def ort_fns(small):
    from export.official.pipeline import ort_callables
    from pridss_rt.backends import open_networks

    nets = open_networks(small["pack"], "ort-cpu", threads=1)
    yield ort_callables(nets), nets.pack
    nets.close()


# ---- construction ---------------------------------------------------------------------------------

def test_full_size_keys_and_shapes_match_official_layouts():
    from export.verify_official import Table, check_keys

    t = Table()
    check_keys(t)
    assert not t.failed, t.render()
    assert len(t.rows) == 9


@pytest.mark.parametrize("size,dim", [(256, 8704), (512, 8960), (1024, 9088)])
def test_s_size_is_computed(size, dim):
    lay = s_layout(size)
    assert lay.size == sum(lay.conv_dims) + sum(lay.rgb_dims) == dim
    assert len(lay.conv_dims) == 2 * (int(np.log2(size)) - 2) + 1 and len(lay.rgb_dims) == int(np.log2(size)) - 1


def test_fir_export_forms_equal_upfirdn2d():
    k = torch.rand(4, 4)  # asymmetric on purpose: catches a flipped kernel
    x = torch.randn(2, 3, 7, 5)
    up = ops.upfirdn2d(x, k, up=2, pad=(2, 1))
    assert torch.allclose(up, ops.depthwise_upsample2x(x, ops.upsample2x_weight(k, 3)), atol=1e-5)
    bl = ops.upfirdn2d(x, k, pad=(1, 1))
    assert torch.allclose(bl, ops.depthwise_blur(x, ops.blur_weight(k, 3), 1), atol=1e-6)
    p = ops.adaptive_pool_matrix(188, 112)
    y = torch.randn(1, 2, 188, 188)
    assert torch.allclose(p @ y @ p.t(), torch.nn.functional.adaptive_avg_pool2d(y, 112), atol=1e-6)


def test_generator_s_paths_agree(small):
    gen = small["nets"]["generator"]
    w = torch.randn(3, gen.n_latent, gen.style_dim) * 0.5
    img_w = gen(w, input_is_latent=True)  # rosinality forward (W+)
    s_ros = gen.w_plus_to_s(w, "rosinality")
    assert torch.equal(img_w, gen.synthesis_s(s_ros))  # StyleFusion's style_vector path, same numbers
    s_sf = gen.w_plus_to_s(w, "stylefusion")
    n_conv = len(gen.s_layout().conv_dims)
    assert torch.equal(s_sf[:, :sum(gen.s_layout().conv_dims)], s_ros[:, :sum(gen.s_layout().conv_dims)])
    assert not torch.equal(s_sf, s_ros) and n_conv == 9  # ToRGB rows differ (w[2j] vs w[2j+1])
    same_rows = w[:, :1].repeat(1, gen.n_latent, 1)
    assert torch.equal(gen.w_plus_to_s(same_rows, "stylefusion"), gen.w_plus_to_s(same_rows, "rosinality"))
    exp = SSynthesis(gen)(s_ros)  # batch-friendly export form
    assert (exp - img_w).abs().max() < 1e-4 * max(1.0, float(img_w.abs().max()))
    for out in (32, 48):  # face_pool: divisible (reshape-mean) and not (fixed matrices)
        ref = torch.nn.functional.adaptive_avg_pool2d(img_w, out)
        assert (SSynthesis(gen, out)(s_ros) - ref).abs().max() < 1e-4 * max(1.0, float(ref.abs().max()))


def test_fusion_batched_equals_ported_original(small):
    nets = small["nets"]
    lay = nets["generator"].s_layout()
    for keep_nose in (False, True):
        sf = StyleFusionS(nets["fusion"], lay, pridss_sources(keep_nose=keep_nose)).eval()
        a, b = torch.randn(4, lay.size), torch.randn(4, lay.size)
        assert (sf(a, b) - sf.forward_original(a, b)).abs().max() < 1e-5
    src = pridss_sources()
    assert set(src) == set(FFHQ_PARTS)
    assert {p for p, v in src.items() if v == "original"} == {"eyes", "mouth", "skin_mouth", "face"}
    assert pridss_sources(keep_nose=True)["skin"] == "original" and src["skin"] == "reference"
    with pytest.raises(ValueError):
        pridss_sources(original_parts=["nose"])  # StyleFusion has no nose part


#: head-level design (issue #21 item 4), written here from the design, not read from stylefusion.py: background and
#: clothes from the original, hair and skin from the reference, eyes and mouth from the original
HEAD_LEVEL_TABLE = {"bg": "original", "clothes": "original", "bg_clothes": "original", "eyes": "original",
                    "mouth": "original", "skin_mouth": "original", "face": "original", "skin": "reference",
                    "hair": "reference", "bg_hair_clothes": "reference", "all": "reference"}


@pytest.mark.parametrize("keep_nose", [False, True])
def test_head_level_routing_per_segment(keep_nose):
    """Random weights: every code each FusionNet receives is s_orig or s_ref as the table says (bit-exact), and a
    node's output stays bit-identical when one latent is perturbed iff no part under it comes from that latent."""
    from export.official.stylefusion import FFHQ_TREE

    table = dict(HEAD_LEVEL_TABLE, **({"skin": "original"} if keep_nose else {}))
    src = pridss_sources(keep_nose=keep_nose, head_level=True)
    assert src == table
    torch.manual_seed(0)
    lay = s_layout(fx.SMALL.gen_size, channels=fx.SMALL.channels)
    sf = StyleFusionS({n: FusionNet(size=fx.SMALL.fusion_size).eval() for n in FFHQ_TREE}, lay, src).eval()
    seen = {}

    def hook(name):
        def record(module, args, out):
            a, b, code, _ = args
            c1, c2 = FFHQ_TREE[name]
            seen.update({name: code, f"{name}.out": out})
            seen.update({c: x for c, x in ((c1, a), (c2, b)) if c not in FFHQ_TREE})  # leaves: the raw code
        return record

    for n, net in sf.nets.items():
        net.register_forward_hook(hook(n))

    def run(a, b):
        seen.clear()
        out = sf(a, b)
        assert torch.equal(out, seen["all.out"])
        return dict(seen)

    s_o, s_r = torch.randn(2, lay.size), torch.randn(2, lay.size)
    delta = 0.5 + torch.rand(2, lay.size)  # non-zero everywhere
    base, pert_o, pert_r = run(s_o, s_r), run(s_o + delta, s_r), run(s_o, s_r + delta)
    for part, where in table.items():  # each of the 11 codes, as the nets received it
        assert torch.equal(base[part], s_o if where == "original" else s_r), part

    def under(n):
        return {n}.union(*(under(c) for c in FFHQ_TREE[n])) if n in FFHQ_TREE else {n}

    for n in FFHQ_TREE:  # each node's blended output
        srcs = {table[p] for p in under(n)}
        for pert, latent in ((pert_o, "original"), (pert_r, "reference")):
            assert torch.equal(pert[f"{n}.out"], base[f"{n}.out"]) == (latent not in srcs), (n, latent)
    assert (sf(s_o, s_r) - sf.forward_original(s_o, s_r)).abs().max() < 1e-5  # the ported original routes alike
    with pytest.raises(ValueError, match="exclusive"):
        pridss_sources(head_level=True, original_parts=["eyes"])


def test_fusion_net_rejects_bad_width():
    with pytest.raises(ValueError, match="cannot blend"):
        StyleFusionS({n: FusionNet(size=64) for n in ("all", "face", "skin_mouth", "bg_hair_clothes", "bg_clothes")},
                     s_layout(64, channels={4: 128, 8: 128, 16: 64, 32: 32, 64: 16}))


# ---- loaders ---------------------------------------------------------------------------------------

def test_loaders_read_official_containers(small):
    nets, paths = small["nets"], small["paths"]
    gen, avg = ck.load_stylegan2(paths["stylegan"])
    assert avg is not None and avg.shape == (fx.SMALL.style_dim,)
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), nets["generator"].state_dict().values()))
    e = ck.load_e4e(paths["e4e"])
    assert e["latent_avg"].shape == (nets["encoder"].style_count, fx.SMALL.style_dim)
    assert e["decoder"] is not None and e["opts"]["stylegan_size"] == fx.SMALL.gen_size
    assert ck.load_arcface(paths["arcface"]).output_layer[3].weight.shape == (512, fx.SMALL.width * 49)
    fus = ck.load_stylefusion(paths["stylefusion"])  # json with repo-relative paths; "all" wrapped in state_dict
    assert sorted(fus) == sorted(nets["fusion"]) and fus["all"].size == fx.SMALL.fusion_size
    assert sorted(ck.load_stylefusion(paths["stylefusion"].parent / "ffhq")) == sorted(fus)  # folder form


def test_loaders_are_strict_and_safe(small, tmp_path):
    sd = dict(small["nets"]["generator"].state_dict())
    sd.pop("conv1.noise.weight")
    torch.save({"g_ema": sd}, tmp_path / "bad.pt")
    with pytest.raises(ck.CheckpointError, match="does not match the official layout"):
        ck.load_stylegan2(tmp_path / "bad.pt")
    torch.save({"g": {}}, tmp_path / "nog.pt")
    with pytest.raises(ck.CheckpointError, match="no 'g_ema'"):
        ck.load_stylegan2(tmp_path / "nog.pt")

    torch.save({"g_ema": NotAllowed()}, tmp_path / "evil.pt")
    with pytest.raises(ck.CheckpointError, match="weights_only"):
        ck.load_stylegan2(tmp_path / "evil.pt")


class NotAllowed:
    """Any pickled object: torch.load(weights_only=True) must refuse it."""


# ---- pack + parity ---------------------------------------------------------------------------------

def test_pack_contract(small):
    from pridss_rt.pack import load_pack

    pack = load_pack(small["pack"])
    d = small["nets"]["generator"].s_layout().size
    assert pack.latent_shape == (d,) and pack.fusion.type == "network"
    assert pack.preprocess.crop_size == fx.SMALL.crop_size
    for role, net in pack.networks.items():
        assert all(t.shape[0] == "batch" for t in net.inputs + net.outputs), role
    assert pack.network("gender").options["output_kind"] == "probability"  # softmax2 adapter baked in
    import onnx

    syn = onnx.load(str(pack.network("synthesis").path), load_external_data=False)
    dims = [d.dim_param or d.dim_value for d in syn.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, fx.SMALL.crop_size, fx.SMALL.crop_size]  # static H, W after face_pool
    from export.make_pack import FFHQ_TEMPLATE_512, template
    assert np.allclose(pack.preprocess.template, np.array(FFHQ_TEMPLATE_512) * fx.SMALL.crop_size / 512, atol=1e-3)
    assert template(256)[2] == [128.3171, 157.0097]
    latents, male = pack.bank()
    assert latents.shape == (10, d) and male.tolist() == [True, False] * 5
    assert pack.fusion.segments["nose"] == "context" and pack.fusion.segments["eyes"] == "identity"


@pytest.mark.parametrize("batch", [1, 5])
def test_ort_parity_per_network(reference, ort_fns, small, batch):
    f, pack = ort_fns
    gen = small["nets"]["generator"]
    rng = np.random.default_rng(batch)
    bank, _ = pack.bank()
    w = gen.mapping(torch.from_numpy(rng.standard_normal((batch, gen.style_dim)).astype(np.float32)))
    s = gen.w_plus_to_s(w[:, None].repeat(1, gen.n_latent, 1)).numpy()
    x = fx.sample_faces(small["nets"], batch, seed=20 + batch)

    def close(ref, out, tol, rel=True):
        ref, out = np.asarray(ref), np.asarray(out)
        assert ref.shape == out.shape
        assert np.abs(ref - out).max() <= tol * (max(1.0, np.abs(ref).max()) if rel else 1.0)

    close(reference.synthesize(s), f["synthesize"](s), 1e-4)
    sr = bank[rng.integers(0, len(bank), batch)]
    close(reference.fuse(s, sr), f["fuse"](s, sr), 1e-4)
    close(reference.encode(x), f["encode"](x), 1e-4)
    close(reference.embed(x), f["embed"](x), 1e-4, rel=False)
    close(reference.gender_p(x), f["gender_p"](x), 1e-5, rel=False)


def test_whole_loop_selects_the_same_candidate(reference, ort_fns):
    from export.official.pipeline import run_loop

    f, pack = ort_fns
    bank, male = pack.bank()
    x = fx.sample_faces({"generator": reference.gen, "latent_avg": reference.latent_avg[0], "config": fx.SMALL}, 5,
                        seed=11)
    r = reference.run(x, bank, male, k=5)
    o = run_loop(x, f["encode"], f["fuse"], f["synthesize"], f["embed"], f["gender_p"], bank, male, 5)
    assert np.array_equal(r.refs, o.refs) and np.array_equal(r.best, o.best)
    assert np.abs(r.pic - o.pic).max() < 1e-4
    assert (r.margin() > 10 * np.abs(r.pic - o.pic).max()).all()  # the agreement is not luck
    assert all(len(set(row)) == 5 for row in r.refs)
    assert r.output.shape == (5, 3, fx.SMALL.crop_size, fx.SMALL.crop_size)
    assert all(bool(male[i]) != bool(m) for refs, m in zip(r.refs, r.input_male) for i in refs)


def test_pic_and_reference_selection():
    from export.official.pipeline import pic_score, select_references

    assert np.allclose(pic_score(np.array([0.5, 1.0, 0.0]), np.array([0.2, 0.9, -1.0])), [-0.2, 0.1, 2.0])
    refs = select_references(np.array([1, 0, 0, 1, 0], bool), np.array([True, False]), 4)
    assert refs.tolist() == [[1, 2, 4, 1], [0, 3, 0, 3]]
    with pytest.raises(ValueError):
        select_references(np.array([1, 1], bool), np.array([True]), 2)


def test_gender_adapter_and_kinds(small):
    import onnx
    import onnxruntime as ort

    from export.official.gender import adapt_softmax2, describe, p_male

    m = onnx.load(str(small["gender"]))
    assert describe(m)["possible_kinds"] == ["softmax2"]
    x = fx.sample_faces(small["nets"], 3, seed=2)
    logits = small["nets"]["gender"](torch.from_numpy(x)).numpy()
    for mi in (0, 1):
        a = adapt_softmax2(m, male_index=mi, apply_softmax=True)
        out = ort.InferenceSession(a.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
        assert out.shape == (3, 1)
        assert np.allclose(out[:, 0], p_male(logits, "softmax2", mi, apply_softmax=True), atol=1e-6)
    assert np.allclose(p_male(np.array([[0.0], [2.0]]), "logit"), [0.5, 1 / (1 + np.exp(-2))])
    with pytest.raises(ValueError):
        adapt_softmax2(adapt_softmax2(m))  # [batch,1] is not a softmax2 output


def test_fp16_audit_blocks_demodulation_epsilon(small):
    from export import fp16, onnx_tools
    from pridss_rt.pack import load_pack

    pack = load_pack(small["pack"])
    spec = pack.network("synthesis")
    model = onnx_tools.sanitize(onnx_tools.load(spec.path))
    gen, avg = small["nets"]["generator"], small["nets"]["latent_avg"]
    s_avg = gen.w_plus_to_s(avg.reshape(1, 1, -1).repeat(1, gen.n_latent, 1)).numpy()
    w = gen.mapping(torch.randn(64, gen.style_dim))
    sd = gen.w_plus_to_s(w[:, None].repeat(1, gen.n_latent, 1)).numpy().std(0)
    feeds = [{"latent": np.concatenate([s_avg, s_avg + sd, s_avg - sd, s_avg + 3 * sd, s_avg - 3 * sd]).astype(np.float32)}]
    audit = fp16.audit_ranges(model, feeds)
    eps = [n for n, why in audit.blocked.items() if "flushes to 0" in why]
    demod = ["/conv1/Add"] + [f"/convs.{i}/Add" for i in range(len(gen.convs))]
    assert set(demod) <= set(eps), (demod, eps)  # every demodulation's +1e-8 stays FP32
    conv = fp16.convert(model, audit.blocked)
    chk = fp16.check_conversion(model, conv, feeds)
    assert chk.ok, chk.problems


def test_make_pack_rejects_bad_inputs(small, tmp_path):
    from export import make_pack

    p = small["paths"]
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "labels.csv").write_text("file,male\n")
    args = ["--e4e", str(p["e4e"]), "--arcface", str(p["arcface"]), "--stylefusion", str(p["stylefusion"]),
            "--gender", str(small["gender"]), "--gender-output-kind", "probability",
            "--references", str(tmp_path / "refs"), "--out", str(tmp_path / "out")]
    assert make_pack.main(args) == 2  # a [batch,2] output is not a probability


# ---- slow ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_full_size_1024_export(tmp_path):
    from export.verify_official import Table, check_full_export

    t = Table()
    check_full_export(t, tmp_path)
    assert not t.failed, t.render()
    assert len(t.rows) == 9  # 4 networks x (export + FP16 matrix row) + total


# ---- FP16 conversion matrix (reduced size here; full size in test_full_size_1024_export) -----------------------
# ORT-CPU parity tolerances, |fp16 - fp32| <= atol + rtol * |fp32|: images and S codes move by FP16 weight rounding
# through ~20-50 layers; embeddings and probabilities are bounded by 1
FP16_TOL = {"synthesis": (2e-2, 2e-2), "encoder": (2e-2, 2e-2), "fusion": (2e-2, 2e-2), "identity": (1e-2, 1e-2),
            "gender": (1e-2, 1e-2)}


@pytest.mark.parametrize("role", list(FP16_TOL))
def test_fp16_matrix_official_networks(small, role):
    from export import calib, fp16, onnx_tools
    from pridss_rt.pack import load_pack

    pack = load_pack(small["pack"])
    model = onnx_tools.sanitize(onnx_tools.load(pack.network(role).path))
    rtol, atol = FP16_TOL[role]
    audit, conv, chk = fp16.convert_checked(model, calib.feeds_for(pack, role), rtol=rtol, atol=atol)
    assert chk.ok, (role, chk.problems)
    assert chk.io_fp32 and chk.round_trips == []
    import onnx

    half = onnx.TensorProto.FLOAT16
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
               for v in list(conv.model.graph.input) + list(conv.model.graph.output))
    assert conv.fp16_share_unforced >= 0.95, (role, conv.fp16_share_unforced, conv.kept)
    assert all(conv.kept.values())  # every node kept FP32 says why
    nodes = {n.name: n for n in model.graph.node}
    for name, why in conv.kept.items():  # a conv is never kept for a tiny weight (the rounding handles those)
        assert not (nodes[name].op_type == "Conv" and "flushes to 0" in why), (name, why)
    assert any(i.data_type == half for i in conv.model.graph.initializer)
