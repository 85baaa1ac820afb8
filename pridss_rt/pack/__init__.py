"""Model packs: a folder with ``pack.json``, ONNX networks, a fusion spec and a reference bank.

The format is documented in docs/pack-format.md. :func:`load_pack` validates everything the runtime
relies on before any network runs, and raises :class:`PackError` whose message starts with the file
and field at fault (``pack.json: networks.encoder.sha256: ...``). Nothing in a pack is ever executed:
arrays are read with ``allow_pickle=False`` and networks are only handed to an inference backend.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from pridss_rt.errors import PackError

SCHEMA = "pridss-rt.pack"
SCHEMA_VERSIONS = (1,)
REQUIRED_NETWORKS = ("encoder", "synthesis", "gender", "identity")
OPTIONAL_NETWORKS = ("fusion", "coherence")
DTYPES = ("float32", "float16", "int64", "int32", "uint8")
BATCH_KINDS = ("face", "candidate")
GENDER_OUTPUT_KINDS = ("probability", "logit", "softmax2")
PACK_PATH_ENV = "PRIDSS_RT_PACK_PATH"
BUILTIN_PACKS = Path(__file__).resolve().parent.parent / "packs"

Dim = int | str


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class TensorSpec:
    """A named network input or output. ``shape`` holds ints (fixed) and strings (symbolic)."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def concrete(self, batch: int) -> tuple[int, ...]:
        """The shape with every symbolic dimension replaced by ``batch``."""
        return tuple(batch if isinstance(d, str) else d for d in self.shape)

    def describe(self) -> str:
        return f"{self.name}{list(self.shape)}:{self.dtype}"

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class NetworkSpec:
    """One network of a pack, with its role (encoder, synthesis, gender, identity, fusion)."""

    role: str
    path: Path
    sha256: str
    batch: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    data_files: tuple[Path, ...] = ()

    @property
    def file(self) -> str:
        return self.path.name

    def input(self, name: str | None = None) -> TensorSpec:
        return _pick(self.inputs, name, f"{self.role} input")

    def output(self, name: str | None = None) -> TensorSpec:
        return _pick(self.outputs, name, f"{self.role} output")


def _pick(specs: Sequence[TensorSpec], name: str | None, what: str) -> TensorSpec:
    if name is None:
        return specs[0]
    for s in specs:
        if s.name == name:
            return s
    raise KeyError(f"no {what} named {name!r} (have {[s.name for s in specs]})")


@dataclass(frozen=True)
class Preprocess:
    crop_size: int
    template: np.ndarray  # (5, 2) float32, crop pixel coordinates
    channel_order: str  # "rgb" | "bgr"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class FusionSpec:
    type: str  # "mask" | "network"
    mask_path: Path | None = None
    network: str | None = None
    segments: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ModelPack:
    """A validated model pack. Build it with :func:`load_pack`."""

    root: Path
    name: str
    version: str
    schema_version: int
    description: str
    license: str
    preprocess: Preprocess
    networks: dict[str, NetworkSpec]
    fusion: FusionSpec
    bank_path: Path
    defaults: dict[str, Any]
    extras: dict[str, Path]
    model_card: Path | None
    manifest: dict[str, Any]
    _bank: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = field(default=None, repr=False)
    _mask: np.ndarray | None = field(default=None, repr=False)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent code (without the batch dimension)."""
        return tuple(int(d) for d in self.networks["encoder"].outputs[0].shape[1:])

    @property
    def candidates(self) -> int:
        return int(self.defaults.get("candidates", 5))

    @property
    def reference_pool(self) -> int:
        """Closest opposite-gender references the K candidates are spread over (0: the K closest)."""
        return int(self.defaults.get("reference_pool", 0))

    def network(self, role: str) -> NetworkSpec:
        try:
            return self.networks[role]
        except KeyError:
            raise PackError(f"{self.root / 'pack.json'}: networks: pack has no '{role}' network") from None

    @property
    def coherence_weight(self) -> float:
        """Weight of the coherence critic's P(composite) added to PIC (0: PIC alone; needs a ``coherence`` network)."""
        return float(self.defaults.get("coherence_weight", 0.0))

    @property
    def pose_weight(self) -> float:
        """Weight of the head-pose (landmark) distance in the reference choice (0: latent similarity only)."""
        return float(self.defaults.get("pose_weight", 0.0))

    def _bank_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if self._bank is None:
            self._bank = _load_bank(self.bank_path, self.latent_shape)
        return self._bank

    def bank(self) -> tuple[np.ndarray, np.ndarray]:
        """``(latents [N, *latent_shape] float32, male [N] bool)`` of the reference bank."""
        return self._bank_arrays()[:2]

    def bank_landmarks(self) -> np.ndarray | None:
        """``[N, 5, 2]`` float32 crop-pixel landmarks of the bank faces (NaN rows: not found), or None
        when the bank has none."""
        return self._bank_arrays()[2]

    def fusion_mask(self) -> np.ndarray:
        """The static fusion mask (latent shape, float32 in [0,1]; 1 = keep the original)."""
        if self.fusion.type != "mask" or self.fusion.mask_path is None:
            raise PackError(f"{self.root / 'pack.json'}: fusion.type: '{self.fusion.type}' has no static mask")
        if self._mask is None:
            self._mask = _load_mask(self.fusion.mask_path, self.latent_shape)
        return self._mask

    def extra(self, key: str) -> np.ndarray:
        """An extra array shipped with the pack (``.npy``), loaded without pickle."""
        if key not in self.extras:
            raise PackError(f"{self.root / 'pack.json'}: extras: no extra named '{key}'")
        return _npy(self.extras[key])

    def files(self) -> Iterator[tuple[str, Path, str]]:
        """(role, path, sha256) of every hashed file, for engine manifests and doctor."""
        for role, net in self.networks.items():
            yield role, net.path, net.sha256


# --------------------------------------------------------------------------------------------------
# discovery


def pack_search_path() -> list[Path]:
    """Folders searched for packs by name: the packs inside the package, then PRIDSS_RT_PACK_PATH."""
    dirs = [BUILTIN_PACKS]
    for part in os.environ.get(PACK_PATH_ENV, "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part).expanduser())
    return dirs


def list_packs() -> dict[str, Path]:
    """Name -> folder of every pack found on the search path (first one wins, like PATH)."""
    found: dict[str, Path] = {}
    for d in pack_search_path():
        if not d.is_dir():
            continue
        for child in sorted(d.iterdir()):
            if (child / "pack.json").is_file() and child.name not in found:
                found[child.name] = child
    return found


def resolve_pack(name_or_path: str | os.PathLike) -> Path:
    """Folder of a pack given by path (folder or its pack.json) or by name."""
    p = Path(name_or_path).expanduser()
    if p.is_file() and p.name == "pack.json":
        return p.parent
    if p.is_dir():
        if not (p / "pack.json").is_file():
            raise PackError(f"{p / 'pack.json'}: file not found (is '{p}' a pridss-rt model pack?)")
        return p
    looks_like_path = os.sep in str(name_or_path) or str(name_or_path).startswith(".")
    if not looks_like_path:
        packs = list_packs()
        if str(name_or_path) in packs:
            return packs[str(name_or_path)]
        have = ", ".join(sorted(packs)) or "none"
        raise PackError(
            f"pack '{name_or_path}': not found by name (packs available: {have}; search path: "
            f"{', '.join(str(d) for d in pack_search_path())}; set {PACK_PATH_ENV} or pass a folder)"
        )
    raise PackError(f"{p}: pack folder not found")


def load_pack(name_or_path: str | os.PathLike | ModelPack = "demo", *, verify_hashes: bool = True) -> ModelPack:
    """Find, parse and validate a model pack. Raises :class:`PackError` on any problem."""
    if isinstance(name_or_path, ModelPack):
        return name_or_path
    root = resolve_pack(name_or_path)
    return _Parser(root, verify_hashes).parse()


# --------------------------------------------------------------------------------------------------
# parsing and validation


class _Parser:
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
        pw = defaults.get("pose_weight", 0.0)
        if not _is_num(pw) or not np.isfinite(pw) or pw < 0:
            raise self.fail("defaults.pose_weight", f"must be a non-negative number, got {pw!r}")
        cw = defaults.get("coherence_weight", 0.0)
        if not _is_num(cw) or not np.isfinite(cw) or cw < 0:
            raise self.fail("defaults.coherence_weight", f"must be a non-negative number, got {cw!r}")
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
        if not (isinstance(val, list) and len(val) == 3 and all(_is_num(v) for v in val)):
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
        if len(syn.inputs) != 1 or tuple(syn.inputs[0].shape[1:]) != tuple(latent.shape[1:]):
            raise self.fail("networks.synthesis.inputs", f"must be one latent of shape {list(latent.shape)} (encoder output)")
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
        if "fusion" in nets:
            fz = nets["fusion"]
            if len(fz.inputs) != 2 or any(tuple(t.shape[1:]) != tuple(latent.shape[1:]) for t in fz.inputs + fz.outputs[:1]):
                raise self.fail("networks.fusion", f"must map (original, reference) latents {list(latent.shape)} to one fused latent")
        # arrays: load now so that a broken bank or mask fails at load time, not mid-stream
        pack._bank = _load_bank(pack.bank_path, pack.latent_shape)
        if pack.pose_weight > 0 and pack._bank[2] is None:
            raise self.fail("defaults.pose_weight", f"is {pack.pose_weight:g} but {pack.bank_path.name} has no "
                            "'landmarks' array to compare head poses with")
        if pack.fusion.type == "mask":
            pack._mask = _load_mask(pack.fusion.mask_path, pack.latent_shape)  # type: ignore[arg-type]


def _npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused
        raise PackError(f"{path}: refusing to load (needs pickle or is malformed): {exc}") from None
    except OSError as exc:
        raise PackError(f"{path}: cannot read: {exc}") from None


def _load_mask(path: Path, latent_shape: tuple[int, ...]) -> np.ndarray:
    m = _npy(path)
    if not isinstance(m, np.ndarray):
        raise PackError(f"{path}: expected a .npy array")
    if m.shape != latent_shape:
        raise PackError(f"{path}: shape: fusion mask has shape {list(m.shape)}, latent has {list(latent_shape)}")
    if m.dtype.kind not in "fb":
        raise PackError(f"{path}: dtype: fusion mask must be float or bool, got {m.dtype}")
    m = m.astype(np.float32)
    if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        raise PackError(f"{path}: values: fusion mask must lie in [0, 1]")
    return m


def _load_bank(path: Path, latent_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            for key in ("latents", "male"):
                if key not in keys:
                    raise PackError(f"{path}: {key}: missing array (bank needs 'latents' and 'male')")
            latents = z["latents"]
            male = z["male"]
            landmarks = z["landmarks"] if "landmarks" in keys else None
            scale = z["scale"] if "scale" in keys else None
    except PackError:
        raise
    except (ValueError, OSError) as exc:
        raise PackError(f"{path}: cannot read bank (needs pickle or is malformed): {exc}") from None
    if latents.dtype not in (np.float32, np.float16, np.int8):
        raise PackError(f"{path}: latents: dtype must be float32, float16 or int8, got {latents.dtype}")
    if latents.ndim < 2 or tuple(latents.shape[1:]) != latent_shape:
        raise PackError(f"{path}: latents: shape {list(latents.shape)} does not match [N, {', '.join(map(str, latent_shape))}]")
    if latents.dtype == np.int8:  # symmetric quantization: value = int8 * scale (one scale per latent element)
        if scale is None:
            raise PackError(f"{path}: scale: int8 latents need a 'scale' array of the latent's shape")
        if tuple(scale.shape) != latent_shape or scale.dtype not in (np.float32, np.float16):
            raise PackError(f"{path}: scale: must be float {list(latent_shape)}, got {scale.dtype}{list(scale.shape)}")
        if not np.all(np.isfinite(scale)) or (scale < 0).any():
            raise PackError(f"{path}: scale: must be finite and non-negative")
        latents = latents.astype(np.float32) * scale.astype(np.float32)
    elif scale is not None:
        raise PackError(f"{path}: scale: only int8 latents take a scale (latents are {latents.dtype})")
    if male.shape != (latents.shape[0],) or male.dtype.kind not in "biu":
        raise PackError(f"{path}: male: must be a bool/int vector of length N={latents.shape[0]}, got {male.dtype}{list(male.shape)}")
    male = male.astype(bool)
    if male.all() or not male.any():
        raise PackError(f"{path}: male: bank needs references of both genders")
    if not np.all(np.isfinite(latents)):
        raise PackError(f"{path}: latents: contains NaN or inf")
    if landmarks is not None:
        if landmarks.shape != (latents.shape[0], 5, 2) or landmarks.dtype not in (np.float32, np.float16, np.float64):
            raise PackError(f"{path}: landmarks: must be float [N={latents.shape[0]}, 5, 2], got "
                            f"{landmarks.dtype}{list(landmarks.shape)}")
        landmarks = landmarks.astype(np.float32)
        if np.isinf(landmarks).any():
            raise PackError(f"{path}: landmarks: contains inf (NaN rows mark faces without landmarks)")
        if np.isnan(landmarks).all():
            raise PackError(f"{path}: landmarks: no face has landmarks")
    return latents.astype(np.float32, copy=False), male, landmarks


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_num_matrix(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(r, list) and all(_is_num(x) for x in r) for r in v)


def _tn(types: type | tuple) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def write_pack_json(root: str | os.PathLike, manifest: dict) -> Path:
    """Write ``pack.json`` (sorted, indented) — used by the export tools and tests."""
    path = Path(root) / "pack.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path
