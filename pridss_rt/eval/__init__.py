"""The evaluation of ``pridss-rt eval``: the protocol of the PriDSS paper's Tables 1 and 2 on any labelled face set.

For every face of a manifest (columns ``file`` (relative to the manifest), ``identity``, ``male``;
optional ``split``):

1. the face image is placed in a larger frame, as a face in a live frame would appear (default: resized
   ×1.5 to 192 px and centred in a 288×288 mid-grey canvas, the geometry the demo pack's alignment
   template was measured with), and that frame goes through the full pipeline of
   :class:`~pridss_rt.Anonymizer` (detect → align → encode → fuse → synthesize → score/select → blend);
   the face region is then cut back out of the output frame at the input's resolution;
2. the same happens for the baselines — Gaussian blur and pixelation of the detected face box, and
   "gender swap only" (the same pipeline with a fusion mask of zeros: every latent segment from the
   reference, no identity kept) — and for a K ablation (K opposite-gender candidates per face);
3. an attacker gender classifier gives P(male) of the original and of every output → gender ROC AUC
   against the ``male`` labels, again after three restorations (denoise, inpaint, autoencoder; see
   :mod:`pridss_rt.eval.restore`);
4. a matcher embeds the originals and the outputs → verification "w/ original": genuine pairs are
   (output i, original j) of the same identity (j = i included), impostor pairs (output i, original j)
   of different identities; EER and FNMR at FMR = 0.1 (:mod:`pridss_rt.eval.metrics`);
5. FID between the outputs and the originals with an Inception network exported to ONNX by
   ``export/export_inception.py`` (not the reference TensorFlow weights).

The detector runs once per frame: its result is cached and reused by every method on that (identical)
frame. Attacker and matcher crops are aligned from the landmarks found on the original frame (mapped
into the face image), for the originals and all outputs alike, so every method is measured on the same
geometry. A face the detector misses is left as it is by every method (that is what a live system
would show) and stays in the metrics; such faces are aligned with the mean landmarks of the detected
faces. The ``original`` row (and the reference set of verification and FID) is the untouched frame cut
back the same way, so every row carries the same resampling. Writes ``OUT/report.json``, ``OUT/report.md``, ``OUT/faces.jsonl``, ROC plots and a picture
grid (PNG).

From Python::

    from pridss_rt.eval import EvalConfig, evaluate

    rep = evaluate(EvalConfig(data="faces.csv", out="runs/eval", limit=200, ablation="none"))
    rep["gender_auc_anonymized"], rep.main["eer"], rep.paths["report_md"]

Modules: :mod:`~pridss_rt.eval.config` (:class:`EvalConfig`), :mod:`~pridss_rt.eval.data` (manifest, face
placement, detector cache), :mod:`~pridss_rt.eval.judges` (attackers, matcher, FID features),
:mod:`~pridss_rt.eval.baselines` (the rows), :mod:`~pridss_rt.eval.protocol` (the run),
:mod:`~pridss_rt.eval.metrics`, :mod:`~pridss_rt.eval.restore`, :mod:`~pridss_rt.eval.figures`,
:mod:`~pridss_rt.eval.report` (:class:`Report`). Importing the package loads neither OpenCV nor ONNX Runtime.
"""

from pridss_rt.eval.config import EvalConfig
from pridss_rt.eval.protocol import evaluate
from pridss_rt.eval.report import Report

__all__ = ["EvalConfig", "Report", "evaluate"]
