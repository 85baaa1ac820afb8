"""``pack.json`` -> :class:`~pridss_rt.pack.spec.ModelPack`: every field the runtime relies on is checked, and
a :class:`PackError` names the file and field at fault (``pack.json: networks.encoder.sha256: ...``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pridss_rt.errors import PackError
from pridss_rt.pack.spec import (BATCH_KINDS, DTYPES, HEAD_CLASSES, REGION_CLASSES, GENDER_OUTPUT_KINDS, OPTIONAL_NETWORKS, REQUIRED_NETWORKS,
                                 SCHEMA, SCHEMA_VERSIONS, FusionSpec, ModelPack, NetworkSpec, Preprocess, TensorSpec,
                                 is_number, region_problem, sha256_file, weight_problem)


class PackParser:
    def __init__(self, root: Path, verify_hashes: bool):
        self.root = root.resolve()
        self.json_path = self.root / "pack.json"
        self.verify = verify_hashes

    # errors --------------------------------------------------------------------------------------
    def fail(self, fieldpath: str, why: str, file: Path | None = None) -> PackError:
        where = file if file is not None else self.json_path
        return PackError(f"{where}: {fieldpath}: {why}" if fieldpath else f"{where}: {why}")

    def get(self, obj: Mapping, key: str, fieldpath: str, types: type | tuple, required: bool = True, default=None):
        if not isinstance(obj, Mapping):
            raise self.fail(fieldpath, f"expected an object, got {type(obj).__name__}")
        if key not in obj:
            if required:
                raise self.fail(f"{fieldpath}.{key}".lstrip("."), "missing required field")
            return default
        val = obj[key]
        if isinstance(val, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self.fail(f"{fieldpath}.{key}".lstrip("."), f"expected {_tn(types)}, got bool")
        if not isinstance(val, types):
            raise self.fail(f"{fieldpath}.{key}".lstrip("."), f"expected {_tn(types)}, got {type(val).__name__}")
        return val

    def file(self, rel: str, fieldpath: str, sha: str | None) -> Path:
        if os.path.isabs(rel) or ".." in Path(rel).parts:
            raise self.fail(fieldpath, f"'{rel}' must be a path inside the pack folder")
        path = self.root / rel
        if not path.is_file():
            raise self.fail(fieldpath, f"file not found: {path}")
        if sha is not None and self.verify:
            actual = sha256_file(path)
            if actual != sha.lower():
                raise self.fail(
                    fieldpath.rsplit(".", 1)[0] + ".sha256",
                    f"hash mismatch for {rel}: pack.json says {sha[:16]}..., file has {actual[:16]}... "
                    "(file changed or corrupt; rebuild the pack)",
                )
        return path

    # sections ------------------------------------------------------------------------------------
    def parse(self) -> ModelPack:
        if not self.json_path.is_file():
            raise self.fail("", "file not found")
        try:
            raw = json.loads(self.json_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self.fail("", f"not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise self.fail("", "top level must be a JSON object")
        schema = self.get(raw, "schema", "", str)
        if schema != SCHEMA:
            raise self.fail("schema", f"expected '{SCHEMA}', got '{schema}'")
        version = self.get(raw, "schema_version", "", int)
        if version not in SCHEMA_VERSIONS:
            raise self.fail(
                "schema_version",
                f"unknown schema version {version} (this pridss-rt reads {list(SCHEMA_VERSIONS)}; upgrade pridss-rt)",
            )
        name = self.get(raw, "name", "", str)
        pre = self.preprocess(self.get(raw, "preprocess", "", dict))
        nets_raw = self.get(raw, "networks", "", dict)
        for role in nets_raw:
            if role not in REQUIRED_NETWORKS + OPTIONAL_NETWORKS:
                raise self.fail(f"networks.{role}", f"unknown network role (known: {list(REQUIRED_NETWORKS + OPTIONAL_NETWORKS)})")
        networks = {}
        for role in REQUIRED_NETWORKS + OPTIONAL_NETWORKS:
            if role in nets_raw:
                networks[role] = self.network(role, nets_raw[role])
            elif role in REQUIRED_NETWORKS:
                raise self.fail(f"networks.{role}", "missing required network")
        fusion = self.fusion(self.get(raw, "fusion", "", dict), networks)
        bank_raw = self.get(raw, "bank", "", dict)
        bank_path = self.file(self.get(bank_raw, "file", "bank", str), "bank.file", self.get(bank_raw, "sha256", "bank", str))
        defaults = self.get(raw, "defaults", "", dict, required=False, default={})
        k = defaults.get("candidates", 5)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise self.fail("defaults.candidates", f"must be a positive integer, got {k!r}")
        pool = defaults.get("reference_pool", 0)
        if not isinstance(pool, int) or isinstance(pool, bool) or pool < 0:
            raise self.fail("defaults.reference_pool", f"must be a non-negative integer, got {pool!r}")
        for key in ("pose_weight", "coherence_weight"):
            why = weight_problem(defaults.get(key, 0.0))
            if why:
                raise self.fail(f"defaults.{key}", why)
        why = region_problem(defaults.get("blend_region", "face"),
                             networks["segmentation"].options["classes"] if "segmentation" in networks else None)
        if why:
            raise self.fail("defaults.blend_region", why)
        cw = defaults.get("coherence_weight", 0.0)
        if cw > 0 and "coherence" not in networks:
            raise self.fail("defaults.coherence_weight", f"is {cw:g} but the pack has no 'coherence' network")
        extras = {}
        for key, ex in self.get(raw, "extras", "", dict, required=False, default={}).items():
            extras[key] = self.file(self.get(ex, "file", f"extras.{key}", str), f"extras.{key}.file",
                                    self.get(ex, "sha256", f"extras.{key}", str))
        card = raw.get("model_card")
        card_path = self.file(card, "model_card", None) if isinstance(card, str) else None

        pack = ModelPack(
            root=self.root, name=name, version=str(raw.get("version", "0")), schema_version=version,
            description=str(raw.get("description", "")), license=str(raw.get("license", "")),
            preprocess=pre, networks=networks, fusion=fusion, bank_path=bank_path, defaults=dict(defaults),
            extras=extras, model_card=card_path, manifest=raw,
        )
        self.cross_check(pack)
        return pack

    def preprocess(self, pre: dict) -> Preprocess:
        size = self.get(pre, "crop_size", "preprocess", int)
        if size < 8:
            raise self.fail("preprocess.crop_size", f"must be >= 8, got {size}")
        tpl = self.get(pre, "template", "preprocess", list)
        arr = np.asarray(tpl, dtype=np.float64) if _is_num_matrix(tpl) else None
        if arr is None or arr.shape != (5, 2):
            raise self.fail("preprocess.template", "must be 5 [x, y] pairs (eyes, nose, mouth corners) in crop pixels")
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > size:
            raise self.fail("preprocess.template", f"points must lie inside the {size}x{size} crop")
        order = self.get(pre, "channel_order", "preprocess", str, required=False, default="rgb")
        if order not in ("rgb", "bgr"):
            raise self.fail("preprocess.channel_order", f"must be 'rgb' or 'bgr', got '{order}'")
        mean = self.triple(pre, "mean", 0.5)
        std = self.triple(pre, "std", 0.5)
        if min(std) <= 0:
            raise self.fail("preprocess.std", "must be > 0")
        return Preprocess(size, arr.astype(np.float32), order, mean, std)

    def triple(self, pre: dict, key: str, default: float) -> tuple[float, float, float]:
        val = pre.get(key, [default] * 3)
        if not (isinstance(val, list) and len(val) == 3 and all(is_number(v) for v in val)):
            raise self.fail(f"preprocess.{key}", "must be a list of 3 numbers")
        return tuple(float(v) for v in val)  # type: ignore[return-value]

    def tensors(self, lst: Any, fieldpath: str) -> tuple[TensorSpec, ...]:
        if not isinstance(lst, list) or not lst:
            raise self.fail(fieldpath, "must be a non-empty list of {name, shape, dtype}")
        out = []
        for i, t in enumerate(lst):
            fp = f"{fieldpath}[{i}]"
            name = self.get(t, "name", fp, str)
            shape = self.get(t, "shape", fp, list)
            if not shape or not all(isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in shape):
                raise self.fail(f"{fp}.shape", f"dims must be positive ints or symbolic names, got {shape}")
            if not isinstance(shape[0], str):
                raise self.fail(f"{fp}.shape", f"first dim must be the symbolic batch (e.g. 'batch'), got {shape[0]}")
            dtype = self.get(t, "dtype", fp, str)
            if dtype not in DTYPES:
                raise self.fail(f"{fp}.dtype", f"unsupported dtype '{dtype}' (supported: {list(DTYPES)})")
            out.append(TensorSpec(name, tuple(shape), dtype))
        names = [t.name for t in out]
        if len(set(names)) != len(names):
            raise self.fail(fieldpath, f"duplicate tensor names {names}")
        return tuple(out)

    def network(self, role: str, raw: Any) -> NetworkSpec:
        fp = f"networks.{role}"
        rel = self.get(raw, "file", fp, str)
        sha = self.get(raw, "sha256", fp, str)
        if len(sha) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
            raise self.fail(f"{fp}.sha256", "must be a 64-digit hex SHA-256")
        path = self.file(rel, f"{fp}.file", sha)
        data_files = tuple(self.file(self.get(d, "file", f"{fp}.data_files", str), f"{fp}.data_files",
                                     self.get(d, "sha256", f"{fp}.data_files", str))
                           for d in raw.get("data_files", []))
        batch = self.get(raw, "batch", fp, str, required=False, default="face" if role == "encoder" else "candidate")
        if batch not in BATCH_KINDS:
            raise self.fail(f"{fp}.batch", f"must be one of {list(BATCH_KINDS)}, got '{batch}'")
        inputs = self.tensors(raw.get("inputs"), f"{fp}.inputs")
        outputs = self.tensors(raw.get("outputs"), f"{fp}.outputs")
        options = {k: v for k, v in raw.items() if k not in ("file", "sha256", "batch", "inputs", "outputs", "data_files")}
        if role == "gender":
            kind = options.setdefault("output_kind", "probability")
            if kind not in GENDER_OUTPUT_KINDS:
                raise self.fail(f"{fp}.output_kind", f"must be one of {list(GENDER_OUTPUT_KINDS)}, got '{kind}'")
            if kind == "softmax2":
                mi = options.setdefault("male_index", 1)
                if mi not in (0, 1):
                    raise self.fail(f"{fp}.male_index", "must be 0 or 1")
        if role == "segmentation":
            classes = options.get("classes")
            if (not isinstance(classes, list) or len(set(classes)) != len(classes) or not all(isinstance(c, str) for c in classes)
                    or "head" not in classes):
                raise self.fail(f"{fp}.classes", f"must list the output channels' class names, 'head' among them "
                                f"(the head is {' + '.join(HEAD_CLASSES)}), got {classes!r}")
        return NetworkSpec(role, path, sha.lower(), batch, inputs, outputs, options, data_files)

    def fusion(self, raw: dict, networks: dict[str, NetworkSpec]) -> FusionSpec:
        ftype = self.get(raw, "type", "fusion", str)
        segments = raw.get("segments", {})
        if not isinstance(segments, dict) or any(v not in ("identity", "context") for v in segments.values()):
            raise self.fail("fusion.segments", "must map segment names to 'identity' or 'context'")
        if ftype == "mask":
            path = self.file(self.get(raw, "file", "fusion", str), "fusion.file", self.get(raw, "sha256", "fusion", str))
            return FusionSpec("mask", mask_path=path, segments=segments)
        if ftype == "network":
            if "fusion" not in networks:
                raise self.fail("fusion.type", "'network' fusion needs a 'fusion' entry under networks")
            return FusionSpec("network", network="fusion", segments=segments)
        raise self.fail("fusion.type", f"must be 'mask' or 'network', got '{ftype}'")

    # cross-field checks --------------------------------------------------------------------------
    def cross_check(self, pack: ModelPack) -> None:
        nets = pack.networks
        size = pack.preprocess.crop_size
        enc = nets["encoder"]
        if len(enc.inputs) != 1 or len(enc.outputs) != 1:
            raise self.fail("networks.encoder", "must have exactly one input (image) and one output (latent)")
        latent = enc.outputs[0]
        if any(isinstance(d, str) for d in latent.shape[1:]):
            raise self.fail("networks.encoder.outputs[0].shape", "latent dims after the batch must be fixed ints")
        image_shape = ("batch", 3, size, size)
        for role in ("encoder", "gender", "identity"):
            t = nets[role].inputs[0]
            if len(t.shape) != 4 or tuple(t.shape[1:]) != image_shape[1:]:
                raise self.fail(f"networks.{role}.inputs[0].shape",
                                f"must be [batch, 3, {size}, {size}] (preprocess.crop_size), got {list(t.shape)}")
        syn = nets["synthesis"]
        if len(syn.inputs) not in (1, 2) or tuple(syn.inputs[0].shape[1:]) != tuple(latent.shape[1:]):
            raise self.fail("networks.synthesis.inputs", f"must be a latent of shape {list(latent.shape)} (encoder output), "
                            f"optionally followed by a context [batch, 4, {size}, {size}]")
        if len(syn.inputs) == 2:
            ctx = syn.inputs[1]
            if tuple(ctx.shape[1:]) != (4, size, size):
                raise self.fail("networks.synthesis.inputs[1].shape",
                                f"the context (original crop without its head + hole mask) must be [batch, 4, {size}, {size}], "
                                f"got {list(ctx.shape)}")
            if pack.blend_region not in REGION_CLASSES:
                raise self.fail("networks.synthesis.inputs",
                                "a synthesis with a context input needs defaults.blend_region = 'head' or 'person'")
        if tuple(syn.outputs[0].shape[1:]) != image_shape[1:]:
            raise self.fail("networks.synthesis.outputs[0].shape", f"must be [batch, 3, {size}, {size}], got {list(syn.outputs[0].shape)}")
        g = nets["gender"]
        kind = g.options["output_kind"]
        gshape = tuple(g.outputs[0].shape[1:])
        if kind == "softmax2" and gshape != (2,):
            raise self.fail("networks.gender.outputs[0].shape", f"softmax2 output must be [batch, 2], got {list(g.outputs[0].shape)}")
        if kind != "softmax2" and gshape not in ((), (1,)):
            raise self.fail("networks.gender.outputs[0].shape", f"{kind} output must be [batch] or [batch, 1], got {list(g.outputs[0].shape)}")
        ident = nets["identity"].outputs[0]
        if len(ident.shape) != 2 or isinstance(ident.shape[1], str):
            raise self.fail("networks.identity.outputs[0].shape", f"must be [batch, D], got {list(ident.shape)}")
        if "coherence" in nets:
            c = nets["coherence"]
            if len(c.inputs) != 1 or len(c.inputs[0].shape) != 4 or tuple(c.inputs[0].shape[1:]) != image_shape[1:]:
                raise self.fail("networks.coherence.inputs", f"must be one image [batch, 3, {size}, {size}]")
            if len(c.outputs) < 1 or tuple(c.outputs[0].shape[1:]) not in ((), (1,)):
                raise self.fail("networks.coherence.outputs[0].shape",
                                f"P(composite) must be [batch] or [batch, 1], got {list(c.outputs[0].shape) if c.outputs else []}")
        if "segmentation" in nets:
            sg = nets["segmentation"]
            n_cls = len(sg.options["classes"])
            if len(sg.inputs) != 1 or tuple(sg.inputs[0].shape[1:]) != image_shape[1:]:
                raise self.fail("networks.segmentation.inputs", f"must be one image [batch, 3, {size}, {size}]")
            if len(sg.outputs) < 1 or tuple(sg.outputs[0].shape[1:]) != (n_cls, size, size):
                raise self.fail("networks.segmentation.outputs[0].shape",
                                f"must be per-class logits [batch, {n_cls}, {size}, {size}] (one channel per class)")
        if "fusion" in nets:
            fz = nets["fusion"]
            if len(fz.inputs) != 2 or any(tuple(t.shape[1:]) != tuple(latent.shape[1:]) for t in fz.inputs + fz.outputs[:1]):
                raise self.fail("networks.fusion", f"must map (original, reference) latents {list(latent.shape)} to one fused latent")
        # arrays: load now so that a broken bank or mask fails at load time, not mid-stream
        pack.bank()  # the arrays are read (and checked) here, once
        if pack.pose_weight > 0 and pack.bank_landmarks() is None:
            raise self.fail("defaults.pose_weight", f"is {pack.pose_weight:g} but {pack.bank_path.name} has no "
                            "'landmarks' array to compare head poses with")
        if pack.fusion.type == "mask":
            pack.fusion_mask()


def _is_num_matrix(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(r, list) and all(is_number(x) for x in r) for r in v)


def _tn(types: type | tuple) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


