"""`pridss-rt eval` end to end on a few generated faces with the tiny pack, and its building blocks.

The faces are made from the bundled public-domain sample photo (aligned like CelebA-HQ crops, then
flipped, rotated, re-lit), so no data set is needed.
"""

import csv
import json

import numpy as np
import pytest

from pridss_rt.cli import build_parser, main
from pridss_rt.errors import InputError
from pridss_rt.eval import EvalConfig, Report, evaluate
from pridss_rt.eval.data import read_manifest
from pridss_rt.media import SAMPLE, read_image
from pridss_rt.stages.score import p_male_from_output, p_male_from_raw

# 5-point template of a 128-px CelebA-HQ crop (measured with MTCNN on the train split)
CELEBA_TEMPLATE = np.array([[47.9, 60.4], [79.6, 60.4], [63.4, 80.1], [49.5, 93.7], [77.9, 93.6]])


def _faces():
    import cv2

    from pridss_rt.stages.align import similarity_transform
    from pridss_rt.stages.detect import make_detector

    img = read_image(SAMPLE)
    det = make_detector("mtcnn", threads=1).detect(img)[0]
    base = cv2.warpAffine(img, similarity_transform(det.landmarks, CELEBA_TEMPLATE), (128, 128),
                          borderMode=cv2.BORDER_REFLECT)

    def rot(a, deg):
        return cv2.warpAffine(a, cv2.getRotationMatrix2D((64, 64), deg, 1.0), (128, 128), borderMode=cv2.BORDER_REFLECT)

    bright = np.clip(base.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    flip = base[:, ::-1].copy()
    warm = np.clip(base * np.array([0.85, 1.0, 1.15]), 0, 255).astype(np.uint8)
    # (image, identity, male): identities A, B, C with both labels present
    return [(base, "A", 0), (bright, "A", 0), (flip, "B", 1), (rot(flip, 5), "B", 1), (warm, "C", 1), (rot(base, -5), "C", 1)]


@pytest.fixture(scope="module")
def face_manifest(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("faces")
    (root / "img").mkdir()
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "identity", "male", "split"])
        for i, (img, ident, male) in enumerate(_faces()):
            cv2.imwrite(str(root / "img" / f"{i}.png"), img)
            w.writerow([f"img/{i}.png", ident, male, "val"])
        w.writerow(["img/0.png", "A", 0, "train"])  # filtered out by --split val
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def fake_fid(tmp_path_factory):
    """A tiny stand-in for the Inception ONNX: per-channel means of the 299x299 input (3 features)."""
    import onnx
    from onnx import TensorProto, helper

    path = tmp_path_factory.mktemp("fid") / "fake_inception.onnx"
    g = helper.make_graph([helper.make_node("ReduceMean", ["image"], ["features"], axes=[2, 3], keepdims=0)], "g",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 299, 299])],
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def eval_run(shared_tiny_pack, face_manifest, fake_fid, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    rc = main(["eval", "--data", str(face_manifest), "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
               "--threads", "1", "--out", str(out), "--fid-model", str(fake_fid), "--ablation", "1,3",
               "--no-progress", "--grid", "3"])
    assert rc == 0
    return out


def test_eval_writes_the_report(eval_run):
    rep = json.loads((eval_run / "report.json").read_text())
    for key in ("gender_auc_original", "gender_auc_anonymized", "eer", "fnmr_at_fmr_0_1", "fid", "restorations",
                "pack", "attacker", "matcher"):
        assert key in rep, key
    assert set(rep["restorations"]) == {"denoise", "inpaint", "autoencoder"}
    assert all(0.0 <= v <= 1.0 for v in rep["restorations"].values())
    assert 0.0 <= rep["gender_auc_original"] <= 1.0 and 0.0 <= rep["gender_auc_anonymized"] <= 1.0
    assert 0.0 <= rep["eer"] <= 1.0 and 0.0 <= rep["fnmr_at_fmr_0_1"] <= 1.0
    assert rep["fid"] is not None and rep["fid"] >= 0.0
    assert rep["pack"]["name"] == "tiny" and rep["pack"]["candidates"] == 3
    assert rep["attacker"]["source"] == "pack" and "flatters" in rep["attacker"]["note"]
    assert rep["matcher"]["source"] == "pack"
    assert rep["data"]["faces"] == 6 and rep["data"]["identities"] == 3  # the train row was filtered out
    assert rep["detection"]["detected"] == 6
    rows = rep["methods"]
    assert list(rows) == ["original", "pridss_k3", "swap_only", "blur", "pixelate", "pridss_k1"]
    assert rows["pridss_k3"]["status"] == {"anonymized": 6}
    assert rows["pixelate"]["status"] == {"pixelated": 6}
    # pairs: 3 identities of 2 faces -> 12 genuine (j = i included) and 24 impostor; originals: 6 genuine (j != i)
    assert rows["pridss_k3"]["genuine_pairs"] == 12 and rows["pridss_k3"]["impostor_pairs"] == 24
    assert rows["original"]["genuine_pairs"] == 6
    assert rows["original"]["fid"] is None
    for name in ("blur", "pixelate", "swap_only", "pridss_k1"):
        assert rows[name]["fid"] is not None
    for f in ("report.md", "roc_gender.png", "roc_verification.png", "grid.png"):
        assert (eval_run / f).stat().st_size > 0, f
    md = (eval_run / "report.md").read_text()
    assert "| PriDSS (K=3) |" in md and "gender swap only" in md and "grid.png" in md
    lines = (eval_run / "faces.jsonl").read_text().splitlines()
    assert len(lines) == 6 and "p_male_autoencoder" in json.loads(lines[0])["methods"]["pridss_k3"]


def test_grid_shape(eval_run):
    import cv2

    g = cv2.imread(str(eval_run / "grid.png"))
    # 6 method columns + 3 restorations, 3 faces of 128 px under a 22-px header
    assert g.shape == (22 + 3 * 128, 9 * 128, 3)


def test_external_attacker_and_matcher_match_the_pack(shared_tiny_pack, face_manifest, eval_run, tmp_path, capsys):
    """The pack's own networks given as external ONNX files give the same numbers; missing FID model -> null."""
    out = tmp_path / "ext"
    rc = main(["eval", "--data", str(face_manifest), "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
               "--threads", "1", "--out", str(out), "--fid-model", str(tmp_path / "nope.onnx"), "--ablation", "none",
               "--baselines", "none", "--no-progress", "--grid", "0",
               "--attacker-gender", str(shared_tiny_pack / "gender.onnx"), "--matcher", str(shared_tiny_pack / "identity.onnx")])
    assert rc == 0
    assert "export_inception.py" in capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    ref = json.loads((eval_run / "report.json").read_text())
    assert rep["attacker"]["source"] == "onnx" and rep["attacker"]["output_kind"] == "probability"
    assert rep["matcher"]["source"] == "onnx"
    assert list(rep["methods"]) == ["original", "pridss_k3"]
    assert rep["fid"] is None and "export_inception.py" in rep["fid_model"]["note"]
    for key in ("gender_auc_original", "gender_auc_anonymized", "eer", "fnmr_at_fmr_0_1"):
        assert rep[key] == pytest.approx(ref[key], abs=1e-4), key
    assert rep["restorations"] == pytest.approx(ref["restorations"], abs=1e-4)


def test_extra_attacker_is_scored_next_to_the_main_one(shared_tiny_pack, face_manifest, tmp_path, capsys):
    """--extra-attacker = the pack's own gender ONNX: its column equals the main (pack) attacker's on every row
    and restoration; two attackers with one file name are refused (they name the report's columns)."""
    out = tmp_path / "extra"
    args = ["eval", "--data", str(face_manifest), "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
            "--threads", "1", "--fid-methods", "none", "--ablation", "none", "--baselines", "blur",
            "--no-progress", "--grid", "0", "--extra-attacker", str(shared_tiny_pack / "gender.onnx")]
    assert main(args + ["--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["extra_attackers"]["gender"]["source"] == "onnx"
    assert rep["extra_attackers"]["gender"]["output_kind"] == "probability"
    for name, row in rep["methods"].items():
        e = row["extra_attackers"]["gender"]
        assert e["gender_auc"] == pytest.approx(row["gender_auc"], abs=1e-6), name
        assert e["restorations"] == pytest.approx(row["restorations"], abs=1e-6), name
    assert "Extra attacker **gender**" in (out / "report.md").read_text()
    rec = json.loads((out / "faces.jsonl").read_text().splitlines()[0])["methods"]["blur"]
    assert rec["p_male[gender]"] == pytest.approx(rec["p_male"], abs=1e-4)
    capsys.readouterr()
    assert main(args + ["--attacker-gender", str(shared_tiny_pack / "gender.onnx"), "--out", str(tmp_path / "dup")]) == 2
    assert "attackers need distinct file names" in capsys.readouterr().err


def test_output_kind_adapter():
    """The one raw-output -> P(male) rule (stages.score), as the eval's external attackers call it (softmax on)."""
    p = p_male_from_raw(np.array([[0.2], [0.9]]), "probability")
    assert p.tolist() == pytest.approx([0.2, 0.9])
    p = p_male_from_raw(np.array([0.0, 2.0]), "logit")
    assert p.tolist() == pytest.approx([0.5, 1 / (1 + np.exp(-2.0))])
    p = p_male_from_raw(np.array([[0.0, np.log(3.0)]]), "softmax2", apply_softmax=True)
    assert p.tolist() == pytest.approx([0.75])
    p = p_male_from_raw(np.array([[0.7, 0.3]]), "softmax2", male_index=0, apply_softmax=False)
    assert p.tolist() == pytest.approx([0.7])
    with pytest.raises(InputError):
        p_male_from_raw(np.zeros((2, 2)), "logit")
    # the pack path reads the same rule from pack.json options (apply_softmax off unless the pack says so)
    out = np.array([[0.0, np.log(3.0)], [1.0, -1.0]])
    assert p_male_from_output(out, {"output_kind": "softmax2"}).tolist() == pytest.approx(out[:, 1].tolist())
    assert p_male_from_output(out, {"output_kind": "softmax2", "apply_softmax": True, "male_index": 1}).tolist() == \
        pytest.approx(p_male_from_raw(out, "softmax2", 1, True).tolist())
    assert p_male_from_output(np.array([[1.5], [-0.5]]), {}).tolist() == [1.0, 0.0]  # probability, clipped


def test_manifest_limit_keeps_whole_identities(tmp_path):
    path = tmp_path / "m.csv"
    rows = [(f"{i}.png", f"id{i // 3}", i % 2) for i in range(30)]
    path.write_text("file,identity,male\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    items = read_manifest(path, "val", limit=9, seed=1)  # no split column: all rows
    assert len(items) == 9
    counts = {}
    for it in items:
        counts[it.identity] = counts.get(it.identity, 0) + 1
    assert sorted(counts.values()) == [3, 3, 3]
    assert [it.file.name for it in read_manifest(path, None, limit=9, seed=1)] == [it.file.name for it in items]


def test_manifest_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("file,male\nx.png,1\n")
    with pytest.raises(InputError, match="identity"):
        read_manifest(p)
    p.write_text("file,identity,male\nx.png,a,yes\n")
    with pytest.raises(InputError, match="male"):
        read_manifest(p)
    with pytest.raises(InputError, match="not found"):
        read_manifest(tmp_path / "missing.csv")


def test_eval_in_the_cli_parser():
    args = build_parser().parse_args(["eval", "--data", "m.csv", "--out", "o"])
    assert args.command == "eval" and args.split == "val" and args.ablation == "1,3,5,10"
    assert args.attacker_gender is None and args.matcher is None and args.fid_model.endswith("inception_fid.onnx")



def _without_timings(rep: dict) -> dict:
    rep = json.loads(json.dumps(dict(rep)))
    rep.pop("seconds")
    rep["detection"].pop("seconds")
    for row in rep["methods"].values():
        row.pop("ms_per_face")
    return rep


def test_programmatic_api_equals_the_cli(shared_tiny_pack, face_manifest, fake_fid, eval_run, tmp_path):
    """evaluate(EvalConfig(...)) with the options of the CLI run: the same report (but for run times) and
    the same files; the Report reads like the dict and is what report.json/report.md hold."""
    out = tmp_path / "api"
    seen = []
    rep = evaluate(EvalConfig(data=face_manifest, out=out, pack=shared_tiny_pack, backend="ort-cpu", threads=1,
                              fid_model=fake_fid, ablation=(1, 3), grid=3),
                   progress=lambda done, total: seen.append((done, total)))
    assert isinstance(rep, Report)
    assert seen == [(6, 6)]
    written = json.loads((out / "report.json").read_text())
    assert rep == written and rep.to_json() == (out / "report.json").read_text()
    assert rep.markdown() == (out / "report.md").read_text()
    cli = json.loads((eval_run / "report.json").read_text())
    assert _without_timings(rep) == _without_timings(cli)
    assert rep["main_method"] == "pridss_k3" and rep.main == rep["methods"]["pridss_k3"]
    assert set(rep.paths) == {"report_json", "report_md", "roc_gender", "roc_verification", "hist_gender", "grid", "faces"}
    assert all(p.parent == out and p.is_file() for p in rep.paths.values())
    assert (out / "faces.jsonl").read_text() == (eval_run / "faces.jsonl").read_text()
    assert (out / "grid.png").read_bytes() == (eval_run / "grid.png").read_bytes()
    assert rep.summary_lines()[-1] == f"pridss-rt eval: wrote {out / 'report.json'} and report.md"


def test_eval_config_defaults_match_the_cli():
    """Every EvalConfig field is a CLI option with the same default (list options parsed the same way)."""
    import dataclasses

    from pridss_rt.cli.eval import config_from_args

    args = build_parser().parse_args(["eval", "--data", "m.csv", "--out", "o"])
    assert config_from_args(args) == EvalConfig(data="m.csv", out="o")
    names = {f.name for f in dataclasses.fields(EvalConfig)} - {"extra_attackers"}
    assert names <= set(vars(args)) and "extra_attacker" in vars(args)
    cfg = EvalConfig(data="m.csv", out="o", ablation="none", baselines="blur, pixelate")
    assert cfg.ablation == () and cfg.baselines == ("blur", "pixelate")
    with pytest.raises(InputError, match="unknown"):
        EvalConfig(data="m.csv", out="o", baselines="sharpen")
    with pytest.raises(InputError, match="integers"):
        EvalConfig(data="m.csv", out="o", ablation="1,x")


def test_eval_saves_faces_histograms_and_seam_ratio(shared_tiny_pack, face_manifest, fake_fid, tmp_path):
    # --save-faces writes what every attacker saw; the seam ratio of each method is the hand-computed median
    from pridss_rt.eval.metrics import boundary_ratio

    out = tmp_path / "ev"
    rc = main(["eval", "--data", str(face_manifest), "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
               "--threads", "1", "--out", str(out), "--fid-model", str(fake_fid), "--ablation", "none",
               "--baselines", "blur", "--no-progress", "--grid", "0", "--save-faces", "--reference-gender", "random",
               "--seed", "4"])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["pack"]["reference_gender"] == "random"
    faces = {m: np.load(out / "faces" / f"{m}.npz", allow_pickle=False) for m in ("original", "pridss_k3", "blur")}
    for d in faces.values():
        assert d["faces"].shape == (6, 128, 128, 3) and d["faces"].dtype == np.uint8
        assert d["male"].tolist() == faces["original"]["male"].tolist() and d["detected"].all()
    for m in ("pridss_k3", "blur"):
        r = [boundary_ratio(a, b) for a, b in zip(faces[m]["faces"], faces["original"]["faces"])]
        r = [v for v in r if v is not None]
        got = rep["methods"][m]["boundary_ratio"]
        assert got["faces"] == len(r) and got["median"] == pytest.approx(float(np.median(r)), abs=1e-5)
    assert rep["methods"]["original"]["boundary_ratio"] is None
    assert (out / "hist_gender.png").stat().st_size > 0 and "hist_gender.png" in (out / "report.md").read_text()


# ---- attackers that learn (--adaptive) ------------------------------------------------------------------------------
def test_linear_probe_is_the_regularized_optimum():
    from pridss_rt.eval.learners import LinearProbe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([1, 2, 3, 4, 5]) + 3
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 3).astype(int)
    pr = LinearProbe(l2=2.0).fit(x, y)
    z = (x - pr.mu) / pr.sd
    p = pr.predict(x)
    np.testing.assert_allclose(z.T @ (p - y) + 2.0 * pr.w, 0, atol=1e-6)  # gradient of the penalized loss: zero
    assert abs(np.sum(p - y)) < 1e-6  # the unpenalized bias: mean prediction = mean label
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(z @ pr.w + pr.b))))
    assert np.argmax(np.abs(pr.w)) == 0  # the informative feature
    with pytest.raises(ValueError, match="both classes"):
        LinearProbe().fit(x, np.zeros(200))


def test_kept_only_keeps_the_inner_face():
    from pridss_rt.eval.learners import kept_only

    faces = np.random.default_rng(1).integers(0, 256, (2, 128, 128, 3)).astype(np.uint8)
    lms = np.stack([CELEBA_TEMPLATE, np.full((5, 2), np.nan)])
    out = kept_only(faces, lms)
    assert (out[0, 80, 64] == faces[0, 80, 64]).all()  # the nose
    assert (out[0, 5, 5] == 127).all() and (out[0, 120, 64] == 127).all()  # corner, below the chin
    kept = (out[0] == faces[0]).all(-1)
    assert 0.05 < kept.mean() < 0.3  # eyes, nose, mouth: a small part of the crop
    assert (out[1] == 127).all()  # no landmarks: nothing is shown


@pytest.fixture(scope="module")
def learn_manifest(tmp_path_factory, face_manifest):
    import cv2

    root = face_manifest.parent
    rows = list(csv.reader(open(face_manifest)))[:-1]  # the val rows
    for i, (img, ident, male) in enumerate(_faces()):
        cv2.imwrite(str(root / "img" / f"t{i}.png"), np.clip(img.astype(int) - 20 + 8 * i, 0, 255).astype(np.uint8))
        rows.append([f"img/t{i}.png", f"T{ident}", male, "train"])
    path = root / "learn.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_eval_fits_attackers_that_learn(shared_tiny_pack, learn_manifest, tmp_path, capsys):
    args = ["eval", "--data", str(learn_manifest), "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
            "--threads", "1", "--fid-methods", "none", "--ablation", "none", "--baselines", "blur",
            "--no-progress", "--grid", "0", "--adaptive", "6"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    assert rep["learners"]["train_faces"] == 6 and rep["learners"]["train_identities"] == 3
    for name, row in rep["methods"].items():
        for key in ("adaptive", "kept_segments"):
            auc = row[key]["gender_auc"]
            assert 0 <= auc <= 1 and row[key]["gender_auc_flip_aware"] == pytest.approx(max(auc, 1 - auc), abs=1e-4)
    for f in ("roc_adaptive", "hist_adaptive", "roc_kept_segments", "hist_kept_segments"):
        assert (tmp_path / "a" / f"{f}.png").stat().st_size > 0 and rep["files"][f] == f"{f}.png"
    assert "Attackers that learn, fitted on 6 train-split faces" in (tmp_path / "a" / "report.md").read_text()
    assert "attackers that learn (6 train faces)" in capsys.readouterr().out
    # the train split must not share identities with the evaluated one, nor be it
    rows = list(csv.reader(open(learn_manifest)))
    rows.append(["img/0.png", "A", 0, "train"])
    bad = tmp_path / "overlap.csv"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    bad_args = [a if a != str(learn_manifest) else str(bad) for a in args]
    assert main(bad_args + ["--out", str(tmp_path / "b"), "--adaptive", "7"]) == 2
    assert "1 identities are in both the train and the 'val' split" in capsys.readouterr().err
    with pytest.raises(InputError, match="other than the train split"):
        EvalConfig(data=learn_manifest, out=tmp_path / "c", split="train", adaptive=6)
    with pytest.raises(InputError, match="adaptive must be 0"):
        EvalConfig(data=learn_manifest, out=tmp_path / "c", adaptive=1)
