"""The evaluation run: :func:`evaluate` places every face of the manifest in a frame, runs every method
(:mod:`pridss_rt.eval.baselines`) on it, judges the outputs (:mod:`pridss_rt.eval.judges`) before and after
the restorations (:mod:`pridss_rt.eval.restore`), computes the metrics (:mod:`pridss_rt.eval.metrics`) and
writes the report, the per-face records and the figures. The protocol itself is described in
:mod:`pridss_rt.eval` and docs/evaluation.md."""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

import numpy as np

from pridss_rt.errors import InputError
from pridss_rt.eval import metrics
from pridss_rt.eval.baselines import Method, make_methods
from pridss_rt.eval.config import TRAIN_SPLIT, EvalConfig
from pridss_rt.eval.data import (
    FACE_SIZE,
    CachedDetector,
    Placement,
    load_face,
    main_face,
    read_manifest,
)
from pridss_rt.eval.figures import make_grid, plot_curves, plot_histograms, roc_points
from pridss_rt.eval.judges import FidExtractor, GenderAttacker, Matcher
from pridss_rt.eval.report import (
    FID_DISABLED_NOTE,
    FID_MODEL_NOTE,
    PROTOCOL,
    Report,
    fid_missing_note,
    fmt,
    num,
)
from pridss_rt.eval.restore import RESTORATIONS
from pridss_rt.pipeline.config import default_reference_gender

Progress = Union[bool, None, Callable[[int, int], Any]]


class _Progress:
    """``True``: a tqdm bar on stderr; a callable: called with (faces done, faces in all) after each batch."""

    def __init__(self, progress: Progress, total: int):
        self.total, self.done, self.bar, self.fn = total, 0, None, None
        if callable(progress):
            self.fn = progress
        elif progress:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc="eval", unit="face", file=sys.stderr)
            except ImportError:  # pragma: no cover
                pass

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.fn is not None:
            self.fn(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def evaluate(config: EvalConfig, progress: Progress = False) -> Report:
    """Run the evaluation ``config`` describes; writes ``report.json``, ``report.md``, ``faces.jsonl``, the ROC
    plots and the picture grid to ``config.out`` and returns the :class:`~pridss_rt.eval.Report`.
    ``progress``: ``True`` for a progress bar on stderr, or a callable ``(done, total)`` called per batch."""
    from pridss_rt.backends import open_networks
    from pridss_rt.pack import load_pack
    from pridss_rt.stages.detect import make_detector

    cfg = config
    t_start = time.time()
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = read_manifest(cfg.data, cfg.split, cfg.limit, cfg.seed)
    train_items = []
    if cfg.adaptive:
        train_items = read_manifest(cfg.data, TRAIN_SPLIT, cfg.adaptive, cfg.seed)
        shared = {it.identity for it in items} & {it.identity for it in train_items}
        if shared:
            raise InputError(f"{cfg.data}: {len(shared)} identities are in both the train and the '{cfg.split}' split "
                             "(the attackers that learn need identity-disjoint splits)")
    pl = Placement.make(cfg.canvas, cfg.scale)

    pack = load_pack(cfg.pack)
    nets = open_networks(pack, cfg.backend, engines_root=cfg.engines, threads=cfg.threads)
    try:
        det_kwargs = {"min_face_size": cfg.min_face, "threads": cfg.threads} if cfg.detector == "mtcnn" else {}
        detector = CachedDetector(make_detector(cfg.detector, **det_kwargs))
        k_main = int(cfg.candidates or pack.candidates)
        methods, main_name = make_methods(cfg, pack, nets, detector, k_main)
        judges = _Judges(cfg, pack, nets)
        bar = _Progress(progress, len(items) + len(train_items))
        rows, curves, tiles, records, detected = _run(cfg, items, pl, pack, detector, methods, main_name, judges, bar,
                                                      close=not train_items)
        if train_items:
            train = _train_features(cfg, train_items, pl, pack, detector, methods, judges.matcher, bar)
            bar.close()
            curves = curves + (_learner_metrics(methods, rows, np.array([it.male for it in items], np.int64), train),)
        return _write(cfg, out_dir, t_start, items, pl, pack, nets, detector, methods, main_name, k_main, judges,
                      rows, curves, tiles, records, detected)
    finally:
        nets.close()


class _Judges:
    """The attackers, the matcher, the FID extractor (or why there is none) and the restorer of one run."""

    def __init__(self, cfg: EvalConfig, pack, nets):
        from pridss_rt.eval.restore import RESTORER_AE, AutoencoderRestorer

        self.attacker = GenderAttacker(nets, pack, cfg.attacker_gender, cfg.threads, cfg.attacker_output_kind,
                                       cfg.attacker_male_index, cfg.external_preprocess)
        self.extra = [GenderAttacker(nets, pack, path, cfg.threads, "auto", cfg.attacker_male_index,
                                     cfg.external_preprocess) for path in cfg.extra_attackers]
        for ea in self.extra:
            ea.describe["note"] = "extra attacker given with --extra-attacker (scored next to the main attacker)"
        names = [self.attacker.name] + [ea.name for ea in self.extra]
        if len(set(names)) != len(names):
            raise InputError(f"attackers need distinct file names (they name the report's columns): {names}")
        self.matcher = Matcher(nets, pack, cfg.matcher, cfg.threads, cfg.external_preprocess)
        self.fid_note = None
        self.fid = None
        self.fid_path = Path(cfg.fid_model).expanduser() if cfg.fid_model else None
        if cfg.fid_methods != "none":
            if self.fid_path is not None and self.fid_path.is_file():
                self.fid = FidExtractor(self.fid_path, cfg.threads)
            else:
                self.fid_note = fid_missing_note(self.fid_path)
                print(f"pridss-rt eval: {self.fid_note}", file=sys.stderr)
        self.restorer = AutoencoderRestorer(cfg.restorer or RESTORER_AE, threads=cfg.threads)

    def describe_fid(self, n: int) -> dict:
        if self.fid is not None:
            return {"path": str(self.fid_path), "note": FID_MODEL_NOTE, "images_per_set": n,
                    "resize": f"bilinear to {self.fid.size}x{self.fid.size}"}
        return {"path": str(self.fid_path) if self.fid_path else None, "note": self.fid_note or FID_DISABLED_NOTE}


def _template_face(pack) -> np.ndarray:
    """The pack's 5-point template in face pixels: the landmarks of a face the detector missed."""
    return np.asarray(pack.preprocess.template, np.float64) * (FACE_SIZE / pack.preprocess.crop_size)


def _landmarks(dets, pl):
    """(index, landmarks in face pixels, image-left eye first) of the main face of ``dets``, or (None, None)."""
    j = main_face(dets, pl)
    if j is None:
        return j, None
    lm = pl.to_face(dets[j].landmarks)
    return j, (lm[[1, 0, 2, 4, 3]] if lm[0, 0] > lm[1, 0] else lm)


def _train_features(cfg, items, pl, pack, detector, methods, matcher, bar) -> dict:
    """--adaptive: the matcher's embeddings of every method's outputs of the train faces, and of the originals'
    inner face only; with their labels."""
    from pridss_rt.eval.learners import kept_only

    feats: dict[str, list] = defaultdict(list)
    kept: list[np.ndarray] = []
    template = _template_face(pack)
    for start in range(0, len(items), max(1, cfg.batch)):
        idx = list(range(start, min(len(items), start + max(1, cfg.batch))))
        frames = [pl.frame(load_face(items[i])) for i in idx]
        det_index, lms = [], []
        for i, fr in zip(idx, frames):
            detector.key = (TRAIN_SPLIT, i)
            j, lm = _landmarks(detector.detect(fr), pl)
            det_index.append(-1 if j is None else j)
            lms.append(template if lm is None else lm)
        lms = np.stack(lms)
        for m in methods:
            outs = []
            for b, (i, fr) in enumerate(zip(idx, frames)):
                detector.key = (TRAIN_SPLIT, i)
                outs.append(pl.crop(m.run(fr, det_index[b])[0]))
            outs = np.stack(outs)
            feats[m.name].append(matcher(outs, lms))
            if m.name == "original":
                kept.append(matcher(kept_only(outs, lms), lms))
        for i in idx:
            detector.forget((TRAIN_SPLIT, i))
        bar.update(len(idx))
    return {"feats": {k: np.concatenate(v) for k, v in feats.items()}, "kept": np.concatenate(kept),
            "labels": np.array([it.male for it in items], np.int64), "faces": len(items),
            "identities": len({it.identity for it in items})}


def _learner_metrics(methods, rows, labels, train) -> tuple:
    """Adds ``adaptive`` and ``kept_segments`` to every row; the curves and P(male) of both attackers."""
    from pridss_rt.eval.learners import LinearProbe

    kept_probe = LinearProbe().fit(train["kept"], train["labels"])
    curves: dict[str, list] = {"adaptive": [], "kept_segments": []}
    probs: dict[str, dict] = {"adaptive": {}, "kept_segments": {}}
    for m in methods:
        emb = np.concatenate(m.emb)
        p_adapt = LinearProbe().fit(train["feats"][m.name], train["labels"]).predict(emb)
        p_kept = kept_probe.predict(np.concatenate(m.emb_kept))
        for key, p in (("adaptive", p_adapt), ("kept_segments", p_kept)):
            auc = metrics.roc_auc(p, labels)
            rows[m.name][key] = {"gender_auc": num(auc), "gender_auc_flip_aware": num(metrics.flip_aware_auc(auc))}
            fpr, tpr, _ = metrics.roc_curve(p, labels)
            curves[key].append((f"{m.name} {fmt(auc, 2)}", fpr, tpr))
            probs[key][m.name] = p
    return {"curves": curves, "p": probs, "train_faces": train["faces"], "train_identities": train["identities"]}


def _run(cfg, items, pl, pack, detector, methods, main_name, judges, bar, close: bool = True):
    """Every batch of faces through every method and judge; then one metrics row per method."""
    from pridss_rt.eval.learners import kept_only
    from pridss_rt.eval.restore import denoise, inpaint

    attacker, extra_attackers, matcher, fid_ext = judges.attacker, judges.extra, judges.matcher, judges.fid
    n = len(items)
    lm_all = np.full((n, 5, 2), np.nan)
    detected = np.zeros(n, bool)
    grid_tiles: dict[str, list[np.ndarray]] = defaultdict(list)
    orig_feats: list[np.ndarray] = []
    face_records: list[dict] = []
    saved: dict[str, list[np.ndarray]] = defaultdict(list)  # --save-faces: method -> output faces
    fallback_lm: np.ndarray | None = None
    for start in range(0, n, max(1, cfg.batch)):
        idx = list(range(start, min(n, start + max(1, cfg.batch))))
        faces = np.stack([load_face(items[i]) for i in idx])
        frames = [pl.frame(f) for f in faces]
        det_index = []
        for i, fr in zip(idx, frames):
            detector.key = i
            j, lm = _landmarks(detector.detect(fr), pl)
            det_index.append(-1 if j is None else j)
            if j is not None:
                lm_all[i] = lm
                detected[i] = True
        if detected.any():
            fallback_lm = np.nanmean(lm_all[detected], 0)
        lms = np.stack([lm_all[i] if detected[i] else
                        (fallback_lm if fallback_lm is not None else _template_face(pack)) for i in idx])
        recs = [{"file": str(items[i].file), "identity": items[i].identity, "male": int(items[i].male),
                 "detected": bool(detected[i]), "methods": {}} for i in idx]
        for m in methods:
            t0 = time.perf_counter()
            outs = []
            for b, (i, fr) in enumerate(zip(idx, frames)):
                detector.key = i
                of, st = m.run(fr, det_index[b])
                outs.append(pl.crop(of))  # the original row too: every row gets the same 128->frame->128 resampling
                m.status[st] += 1
                recs[b]["methods"][m.name] = {"status": st}
            m.seconds += time.perf_counter() - t0
            outs_a = np.stack(outs)
            if m.name == "original":
                orig_outs = outs_a
            else:
                m.boundary.extend(metrics.boundary_ratio(o, r) for o, r in zip(outs_a, orig_outs))
            if cfg.save_faces:
                saved[m.name].append(outs_a)
            p = attacker(outs_a, lms)
            m.p.extend(p.tolist())
            for ea in extra_attackers:
                pe = ea(outs_a, lms)
                m.extra_p[ea.name].extend(pe.tolist())
                for b in range(len(idx)):
                    recs[b]["methods"][m.name][f"p_male[{ea.name}]"] = round(float(pe[b]), 4)
            m.emb.append(matcher(outs_a, lms))
            if cfg.adaptive:
                m.emb_kept.append(matcher(kept_only(outs_a, lms), lms))
            rest = {"denoise": np.stack([denoise(f) for f in outs_a]),
                    "inpaint": np.stack([inpaint(f, lm, seed=cfg.seed * 1_000_003 + i) for f, lm, i in zip(outs_a, lms, idx)]),
                    "autoencoder": judges.restorer(outs_a)}
            for r, imgs in rest.items():
                pr = attacker(imgs, lms)
                m.restored[r].extend(pr.tolist())
                for ea in extra_attackers:
                    m.extra_restored[(ea.name, r)].extend(ea(imgs, lms).tolist())
                for b in range(len(idx)):
                    recs[b]["methods"][m.name][f"p_male_{r}"] = round(float(pr[b]), 4)
            for b in range(len(idx)):
                recs[b]["methods"][m.name]["p_male"] = round(float(p[b]), 4)
            if fid_ext is not None:
                if m.name == "original":
                    if any(x.fid for x in methods):
                        orig_feats.append(fid_ext(outs_a))
                elif m.fid:
                    m.feats.append(fid_ext(outs_a))
            for b, i in enumerate(idx):
                if i < cfg.grid:
                    grid_tiles[m.name].append(outs_a[b])
                    if m.name == main_name:
                        for r in RESTORATIONS:
                            grid_tiles[f"{m.name}+{r}"].append(rest[r][b])
        for i in idx:
            detector.forget(i)
        face_records.extend(recs)
        bar.update(len(idx))
    if close:
        bar.close()
    labels = np.array([it.male for it in items], np.int64)
    ids = np.array([it.identity for it in items])
    if cfg.save_faces:
        _save_faces(Path(cfg.out) / "faces", saved, items, labels, ids, lm_all, detected)
    rows, curves = _metrics(methods, labels, ids, orig_feats, extra_attackers)
    return rows, curves, grid_tiles, face_records, detected


def _save_faces(folder: Path, saved, items, labels, ids, lm_all, detected) -> None:
    """OUT/faces/<method>.npz: ``faces`` (N, 128, 128, 3) uint8 BGR as the attackers see them, ``male``,
    ``identity``, ``files``, ``landmarks`` (N, 5, 2) in face pixels (NaN where the detector missed) and ``detected``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = np.array([str(it.file) for it in items])
    for name, chunks in saved.items():
        np.savez_compressed(folder / f"{name}.npz", faces=np.concatenate(chunks), male=labels, identity=ids,
                            files=files, landmarks=lm_all.astype(np.float32), detected=detected)


def _boundary_summary(ratios) -> dict | None:
    """Median (and 90th percentile) of metrics.boundary_ratio over the faces an output changed."""
    r = np.array([v for v in ratios if v is not None], np.float64)
    if not len(r):
        return None
    return {"median": num(np.median(r)), "p90": num(np.percentile(r, 90)), "faces": int(len(r))}


def _metrics(methods: list[Method], labels, ids, orig_feats, extra_attackers):
    """One report row per method, and the gender and verification ROC curves."""
    n = len(labels)
    same = ids[:, None] == ids[None, :]
    eye = np.eye(n, dtype=bool)
    orig_emb = np.concatenate(methods[0].emb)
    fid_ref = metrics.FrechetReference(np.concatenate(orig_feats)) if orig_feats else None
    rows: dict[str, dict] = {}
    roc_gender, roc_verif = [], []
    for m in methods:
        p = np.asarray(m.p)
        auc = metrics.roc_auc(p, labels)
        emb = np.concatenate(m.emb)
        sims = emb @ orig_emb.T
        if m.name == "original":  # originals vs other originals of the same identity (j != i)
            gen, imp = sims[same & ~eye], sims[~same]
        else:
            gen, imp = sims[same], sims[~same]
        row: dict[str, Any] = {
            "label": m.label, "k": m.k,
            "gender_auc": num(auc), "gender_auc_flip_aware": num(metrics.flip_aware_auc(auc)),
            "mean_p_male_true_male": num(p[labels == 1].mean()) if (labels == 1).any() else None,
            "mean_p_male_true_female": num(p[labels == 0].mean()) if (labels == 0).any() else None,
            "restorations": {r: num(metrics.roc_auc(np.asarray(m.restored[r]), labels)) for r in RESTORATIONS},
            "genuine_pairs": int(len(gen)), "impostor_pairs": int(len(imp)),
            "eer": None, "fnmr_at_fmr_0_1": None, "mean_genuine_similarity": num(gen.mean()) if len(gen) else None,
            "fid": None, "status": dict(m.status),
            "boundary_ratio": _boundary_summary(m.boundary) if m.name != "original" else None,
            "ms_per_face": round(1000.0 * m.seconds / max(n, 1), 1),
        }
        if extra_attackers:
            row["extra_attackers"] = {}
            for ea in extra_attackers:
                auc_e = metrics.roc_auc(np.asarray(m.extra_p[ea.name]), labels)
                row["extra_attackers"][ea.name] = {
                    "gender_auc": num(auc_e), "gender_auc_flip_aware": num(metrics.flip_aware_auc(auc_e)),
                    "restorations": {r: num(metrics.roc_auc(np.asarray(m.extra_restored[(ea.name, r)]), labels))
                                     for r in RESTORATIONS}}
        if len(gen) and len(imp):
            row["eer"] = num(metrics.eer(gen, imp))
            row["fnmr_at_fmr_0_1"] = num(metrics.fnmr_at_fmr(gen, imp, 0.1))
            x, y = roc_points(gen, imp)
            roc_verif.append((f"{m.name} {fmt(row['eer'], 2)}", x, y))
        if m.feats and fid_ref is not None:
            row["fid"] = num(fid_ref.distance(np.concatenate(m.feats)))
        fpr, tpr, _ = metrics.roc_curve(p, labels)
        roc_gender.append((f"{m.name} {fmt(auc, 2)}", fpr, tpr))
        rows[m.name] = row
    return rows, (roc_gender, roc_verif)


def _write(cfg, out_dir, t_start, items, pl, pack, nets, detector, methods, main_name, k_main, judges,
           rows, curves, grid_tiles, face_records, detected) -> Report:
    """The figures, faces.jsonl, report.json and report.md."""
    n = len(items)
    labels = np.array([it.male for it in items], np.int64)
    ids = np.array([it.identity for it in items])
    roc_gender, roc_verif = curves[:2]
    learners = curves[2] if len(curves) > 2 else None
    main = rows[main_name]
    pixel_share = main["status"].get("pixelated", 0) / max(n, 1)
    plot_curves(out_dir / "roc_gender.png", roc_gender, "gender ROC (attacker P(male) vs label; legend: AUC)",
                "false-positive rate", "true-positive rate", diagonal=True)
    if roc_verif:
        plot_curves(out_dir / "roc_verification.png", roc_verif, "verification w/ original (legend: EER)",
                    "FMR (log)", "1 - FNMR", logx=True, xmin=1e-4)
    shown = [m for m in methods if m.alias_of is None]
    plot_histograms(out_dir / "hist_gender.png", [(m.name, np.asarray(m.p)[labels == 1], np.asarray(m.p)[labels == 0])
                                                  for m in shown],
                    "attacker P(male) of men (blue) and women (red), per method")
    for n_ea, ea in enumerate(judges.extra):
        plot_histograms(out_dir / f"hist_gender_extra{n_ea}.png",
                        [(m.name, np.asarray(m.extra_p[ea.name])[labels == 1], np.asarray(m.extra_p[ea.name])[labels == 0])
                         for m in shown], f"extra attacker {ea.name}: P(male) of men (blue) and women (red)")
    learner_files = {}
    if learners is not None:
        for key, what in (("adaptive", "adaptive attacker (fitted on each method's train outputs)"),
                          ("kept_segments", "kept-segments attacker (eyes, nose, mouth only)")):
            plot_curves(out_dir / f"roc_{key}.png", learners["curves"][key], f"gender ROC, {what}",
                        "false-positive rate", "true-positive rate", diagonal=True)
            p = learners["p"][key]
            plot_histograms(out_dir / f"hist_{key}.png", [(m.name, p[m.name][labels == 1], p[m.name][labels == 0])
                                                         for m in shown], f"{what}: P(male) of men (blue), women (red)")
            learner_files.update({f"roc_{key}": f"roc_{key}.png", f"hist_{key}": f"hist_{key}.png"})
    grid_path = None
    if cfg.grid > 0 and grid_tiles:
        cols = [(m.name, grid_tiles[m.name]) for m in methods]
        cols += [(f"k{k_main}+{r[:7]}", grid_tiles[f"{main_name}+{r}"]) for r in RESTORATIONS]
        grid_path = out_dir / "grid.png"
        make_grid(grid_path, cols)
    with open(out_dir / "faces.jsonl", "w") as f:
        for r in face_records:
            f.write(json.dumps(r) + "\n")

    region = pack.blend_region if cfg.region is None else cfg.region
    report = {
        "gender_auc_original": rows["original"]["gender_auc"],
        "gender_auc_anonymized": main["gender_auc"],
        "eer": main["eer"],
        "fnmr_at_fmr_0_1": main["fnmr_at_fmr_0_1"],
        "fid": main["fid"],
        "restorations": main["restorations"],
        "main_method": main_name,
        "pack": {"name": pack.name, "version": pack.version, "path": str(pack.root), "candidates": k_main,
                 "reference_gender": cfg.reference_gender or default_reference_gender(region), "region": region,
                 "identity_nullspace": cfg.identity_nullspace,
                 "backend": nets.backend, "fusion": pack.fusion.type,
                 "coherence_weight": pack.coherence_weight if cfg.coherence_weight is None else cfg.coherence_weight},
        "attacker": judges.attacker.describe,
        "extra_attackers": {ea.name: ea.describe for ea in judges.extra},
        "matcher": judges.matcher.describe,
        "learners": None if learners is None else {
            "train_split": TRAIN_SPLIT, "train_faces": learners["train_faces"], "train_identities": learners["train_identities"],
            "note": "linear probes (L2 logistic regression) on the matcher's embeddings, fitted during the run on "
                    "train-split faces (identity-disjoint): adaptive = per method on its outputs with the originals' "
                    "labels; kept segments = on the originals' inner face only (5-point hull grown 30 %, the rest "
                    "grey), applied to every method's outputs under the same mask (pridss_rt.eval.learners)"},
        "fid_model": judges.describe_fid(n),
        "data": {"manifest": str(Path(cfg.data).resolve()), "split": cfg.split, "faces": n,
                 "identities": int(len(set(ids.tolist()))), "male": int(labels.sum()), "limit": cfg.limit, "seed": cfg.seed},
        "detection": {"detector": getattr(detector.inner, "name", str(cfg.detector)),
                      "detected": int(detected.sum()), "missed": int(n - detected.sum()),
                      "frame": f"face resized to {pl.side}x{pl.side} px, centred in a {pl.canvas}x{pl.canvas} "
                               "mid-grey (127) frame; output face cut back at the same place and resized to 128 px "
                               "(the original row too)",
                      "seconds": round(detector.seconds, 1)},
        "protocol": dict(PROTOCOL),
        "main_pixelated_share": round(pixel_share, 4),
        "methods": rows,
        "files": {"report_md": "report.md", "roc_gender": "roc_gender.png",
                  "roc_verification": "roc_verification.png" if roc_verif else None,
                  "hist_gender": "hist_gender.png",
                  **{f"hist_gender_extra{i}": f"hist_gender_extra{i}.png" for i in range(len(judges.extra))},
                  **learner_files,
                  "grid": "grid.png" if grid_path else None, "faces": "faces.jsonl"},
        "seconds": round(time.time() - t_start, 1),
    }
    rep = Report(report, out_dir)
    rep.write()
    return rep
