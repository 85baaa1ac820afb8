"""What a validated model pack is: tensor and network specs, preprocessing, fusion, and :class:`ModelPack`
(built by :func:`pridss_rt.pack.load_pack`; the format is docs/pack-format.md)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from pridss_rt.errors import PackError
from pridss_rt.pack.files import load_bank, load_mask, load_npy

SCHEMA = "pridss-rt.pack"
SCHEMA_VERSIONS = (1,)
REQUIRED_NETWORKS = ("encoder", "synthesis", "gender", "identity")
OPTIONAL_NETWORKS = ("fusion", "coherence", "segmentation")
BLEND_REGIONS = ("face", "head", "person")  # defaults.blend_region: the inner-face mask, the head, or head and body
HEAD_CLASSES = ("head", "identity")  # segmentation classes that make up the re-rendered head
# segmentation classes re-rendered per region ("head" and "person" need a segmentation network; "person" a 'body'
# class too: neck and clothes inside the crop)
REGION_CLASSES = {"head": HEAD_CLASSES, "person": HEAD_CLASSES + ("body",)}
DTYPES = ("float32", "float16", "int64", "int32", "uint8")
BATCH_KINDS = ("face", "candidate")
GENDER_OUTPUT_KINDS = ("probability", "logit", "softmax2")
PACK_PATH_ENV = "PRIDSS_RT_PACK_PATH"
BUILTIN_PACKS = Path(__file__).resolve().parent.parent / "packs"

Dim = int | str




def is_number(v: Any) -> bool:
    """An int or float that is not a bool (JSON numbers as the pack format takes them)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def weight_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid non-negative finite weight (``pose_weight``, ``coherence_weight``), or None.
    The one rule for pack defaults and for the values a caller overrides them with."""
    if not is_number(value) or not np.isfinite(value) or value < 0:
        return f"must be a non-negative number, got {value!r}"
    return None


def region_problem(region: Any, segmentation_classes: list[str] | None) -> str | None:
    """Why blend ``region`` cannot run with a pack whose segmentation network has ``segmentation_classes`` (None:
    the pack has none), or None. The one rule for ``defaults.blend_region`` and for ``BlendConfig(region=...)``;
    the message reads after the region's name ("blend region 'head' ...")."""
    if region not in BLEND_REGIONS:
        return f"must be one of {list(BLEND_REGIONS)}, got {region!r}"
    if region in REGION_CLASSES and segmentation_classes is None:
        return f"is '{region}' but the pack has no 'segmentation' network"
    # the head classes themselves are the segmentation network's own check (networks.segmentation.options.classes)
    missing = [c for c in REGION_CLASSES.get(region, ()) if c not in HEAD_CLASSES and c not in segmentation_classes]
    if missing:
        return f"is '{region}' but the segmentation network has no {', '.join(repr(c) for c in missing)} class"
    return None


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
    _nullspace: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

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
    def blend_region(self) -> str:
        """What the blend re-renders: ``face`` (the inner-face mask) or ``head`` (the segmented head and hair)."""
        return str(self.defaults.get("blend_region", "face"))

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
            self._bank = load_bank(self.bank_path, self.latent_shape)
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
            self._mask = load_mask(self.fusion.mask_path, self.latent_shape)
        return self._mask

    def extra(self, key: str) -> np.ndarray:
        """An extra array shipped with the pack (``.npy``), loaded without pickle."""
        if key not in self.extras:
            raise PackError(f"{self.root / 'pack.json'}: extras: no extra named '{key}'")
        return load_npy(self.extras[key])

    def identity_nullspace(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(kept, mean, directions)`` of the ``identity_nullspace`` extra, or None when the pack has none: the
        flat latent indices the fusion mask keeps from the original (mask > 0), their mean over the bank and k
        orthonormal rows over them along which a linear classifier reads gender from the kept segments. The fusion
        removes the kept segments' component along them (:func:`pridss_rt.stages.fuse.fuse`). Stored as one
        ``.npy`` array [k + 1, kept]: the mean, then the directions."""
        if "identity_nullspace" not in self.extras:
            return None
        if self._nullspace is None:
            where = f"{self.extras['identity_nullspace']}"
            a = np.asarray(self.extra("identity_nullspace"), np.float64)
            kept = np.flatnonzero(self.fusion_mask().reshape(-1) > 0)
            if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] != len(kept) or not np.all(np.isfinite(a)):
                raise PackError(f"{where}: identity_nullspace must be a finite [k + 1, {len(kept)}] array (the mean, "
                                f"then k directions over the {len(kept)} kept latent elements), got {list(a.shape)}")
            u = a[1:]
            if np.abs(u @ u.T - np.eye(len(u))).max() > 1e-3:
                raise PackError(f"{where}: identity_nullspace directions (rows 1..k) must be orthonormal")
            self._nullspace = (kept, a[0].astype(np.float32), u.astype(np.float32))
        return self._nullspace

    def without_identity_nullspace(self) -> "ModelPack":
        """A copy of this pack whose fusion keeps the original's segments as they are (no ``identity_nullspace``)."""
        return replace(self, extras={k: v for k, v in self.extras.items() if k != "identity_nullspace"}, _nullspace=None)

    def with_fusion_mask(self, mask: np.ndarray, label: str) -> "ModelPack":
        """A copy of this pack whose fusion is the static ``mask`` (latent shape, 1 = keep the original), e.g.
        all zeros for a gender-swap-only baseline; ``label`` names it where a path would be shown."""
        m = np.asarray(mask, np.float32)
        if m.shape != self.latent_shape or not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise PackError(f"fusion mask for '{label}' must be {list(self.latent_shape)} in [0, 1], got {list(m.shape)}")
        return replace(self.without_identity_nullspace(),  # the nullspace is defined over the pack's own mask
                       fusion=FusionSpec(type="mask", mask_path=Path(f"<{label}>"), segments={}), _mask=m)

    def files(self) -> Iterator[tuple[str, Path, str]]:
        """(role, path, sha256) of every hashed file, for engine manifests and doctor."""
        for role, net in self.networks.items():
            yield role, net.path, net.sha256


