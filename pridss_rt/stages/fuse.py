"""Stage 4 — fuse: keep the original's identity segments, take the context from opposite-gender
references.

Reference choice (documented behaviour): the original's gender is taken from the pack's classifier
(P(male) >= 0.5 -> male); the K candidates are the K bank references of the *opposite* gender whose
latent codes are closest (cosine similarity) to the original's — over the latent elements the pack
marks in its ``reference_match`` extra (for the demo pack: the identity cells and the cells around
them, where a mismatch shows as a seam or a patch), or over the whole latent when the pack has none.
Close references share pose, framing and lighting with the original, so the fused face stays coherent,
while their context segments still come from a face of the other gender. When the pack sets
``defaults.reference_pool`` = P > K, the K candidates are spread evenly over the ranks of the P closest
(for P=16, K=5: ranks 0, 4, 8, 11, 15): still close, but different enough from each other that the PIC
selection has a real choice. The choice is deterministic: the same face always gets the same candidates.

Head pose: when the pack's bank stores its faces' 5 landmarks (crop pixels) and ``defaults.pose_weight``
= w > 0, the ranking score is ``similarity - w * d``, with d the RMS distance between the original's
landmarks in its aligned crop and the reference's, in units of the template's eye distance. A reference
whose eyes, nose and mouth sit elsewhere in its crop (another yaw, pitch or face size) draws its face
outline and hair for a face that is not there, which shows as a squeezed or distorted composite.
Faces without landmarks (a crop passed in without them, a bank face the detector missed) are ranked
by similarity alone or get the largest distance of the pool, respectively.
"""

from __future__ import annotations

import itertools

import numpy as np

from pridss_rt.backends import Networks
from pridss_rt.errors import PackError
from pridss_rt.pack import ModelPack


class ReferenceBank:
    def __init__(self, pack: ModelPack):
        self.pool = pack.reference_pool
        latents, male = pack.bank()
        self.latents = latents.reshape(len(latents), -1)
        self.male = male
        self.shape = latents.shape[1:]
        self.match = None
        if "reference_match" in pack.extras:
            w = np.asarray(pack.extra("reference_match"), np.float32).reshape(-1)
            if w.shape != (self.latents.shape[1],) or not w.any():
                raise PackError(f"{pack.extras['reference_match']}: reference_match must be a non-zero mask "
                                f"of the latent's shape {list(self.shape)}")
            self.match = w
        # only the compared elements are kept (the demo pack compares 44 % of its latent): less memory
        self._cols = np.flatnonzero(self.match) if self.match is not None else slice(None)
        keyed = self._key(self.latents)
        unit = keyed / np.maximum(np.linalg.norm(keyed, axis=1, keepdims=True), 1e-12)
        # one contiguous block per gender: a search is one matrix-vector product, no row gathering
        self._pools = {g: np.flatnonzero(self.male == g) for g in (False, True)}
        self._units = {g: np.ascontiguousarray(unit[p]) for g, p in self._pools.items()}
        self.pose_weight = pack.pose_weight
        self.landmarks = pack.bank_landmarks() if self.pose_weight > 0 else None
        tpl = pack.preprocess.template
        self._eye_dist = float(np.linalg.norm(tpl[1] - tpl[0]))

    def _key(self, z: np.ndarray) -> np.ndarray:
        """The compared elements of latents ``z`` ([..., D]), weighted by ``reference_match``."""
        return z[..., self._cols] * self.match[self._cols] if self.match is not None else z

    def __len__(self) -> int:
        return len(self.male)

    def pose_distance(self, landmarks: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """RMS landmark distance (in template eye distances) between a crop's 5 landmarks and bank faces
        ``idx``; bank faces without landmarks get the largest distance found (0 if none has any)."""
        diff = self.landmarks[idx] - np.asarray(landmarks, np.float32).reshape(1, 5, 2)
        d = np.sqrt((diff ** 2).sum(-1).mean(-1)) / self._eye_dist
        bad = ~np.isfinite(d)
        if bad.any():
            d[bad] = d[~bad].max() if (~bad).any() else 0.0
        return d

    def pool_of(self, want_male: bool) -> np.ndarray:
        """Bank indices of the faces of one gender, in the order :meth:`scores` scores them."""
        return self._pools[bool(want_male)]

    def scores(self, z: np.ndarray, want_male: bool, landmarks: np.ndarray | None) -> np.ndarray:
        """Ranking score of every bank face of gender ``want_male`` (in the order of ``pool_of(want_male)``)
        for latent ``z``: cosine similarity on the compared elements, minus the head-pose term (higher = closer)."""
        pool = self._pools[want_male]
        zf = self._key(z.reshape(-1))
        sims = self._units[want_male] @ (zf / max(np.linalg.norm(zf), 1e-12))
        if self.landmarks is not None and landmarks is not None and np.all(np.isfinite(landmarks)):
            sims = sims - self.pose_weight * self.pose_distance(landmarks, pool)
        return sims

    def pick_ranks(self, n_all: int, k: int) -> np.ndarray:
        """Which ranks of ``n_all`` ranked faces :meth:`choose` takes: the ``k`` first, or ``k`` spread evenly
        over the ``reference_pool`` first."""
        k = max(1, min(k, n_all))
        n = min(max(self.pool, k), n_all)
        return np.round(np.linspace(0, n - 1, k)).astype(int) if n > k else np.arange(k)

    def choose(self, z: np.ndarray, p_male: float, k: int, landmarks: np.ndarray | None = None,
               want_male: bool | None = None, both: bool = False) -> np.ndarray:
        """Indices of ``k`` opposite-gender references close to latent ``z`` (closest first): the ``k``
        closest, or ``k`` spread evenly over the ranks of the ``reference_pool`` closest. ``landmarks``:
        the original's 5 points in its aligned crop (pixels), used when the pack weighs head pose.
        ``want_male``: the references' gender when the caller draws it (``reference_gender="random"``);
        None = the opposite of ``p_male``'s. ``both`` (``reference_gender="both"``): ceil(k/2) references of
        the opposite gender and k // 2 of the face's own, each chosen as above, interleaved (opposite first)."""
        opposite = bool(p_male < 0.5) if want_male is None else bool(want_male)
        if not both or k < 2:
            return self._closest(z, opposite, k, landmarks)
        a, b = self._closest(z, opposite, k - k // 2, landmarks), self._closest(z, not opposite, k // 2, landmarks)
        order = [x for pair in itertools.zip_longest(a, b) for x in pair if x is not None]
        return np.asarray(order, a.dtype)

    def _closest(self, z: np.ndarray, want_male: bool, k: int, landmarks: np.ndarray | None) -> np.ndarray:
        pool = self.pool_of(want_male)
        order = np.argsort(-self.scores(z, want_male, landmarks), kind="stable")
        return pool[order[self.pick_ranks(len(pool), k)]]

    def get(self, idx: np.ndarray) -> np.ndarray:
        return self.latents[idx].reshape((len(idx),) + self.shape)


def fuse(nets: Networks, pack: ModelPack, original: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Fused latents: row i keeps ``original[i]``'s identity segments and ``references[i]``'s context.

    ``original`` and ``references`` have the same shape (N, *latent_shape). Packs with an ``identity_nullspace``
    extra (mask fusion) then remove the kept segments' component along its gender directions, about the bank's
    mean: kept <- kept - U^T U (kept - mean). The kept segments are where PriDSS leaves the original's gender cues by
    design (eyes, brows, lips); without this an attacker who learns from outputs reads gender there.
    """
    if pack.fusion.type == "mask":
        m = pack.fusion_mask()
        z = (m * original + (1.0 - m) * references).astype(np.float32)
        ns = pack.identity_nullspace()
        if ns is not None:
            kept, mean, u = ns
            flat = z.reshape(len(z), -1)
            flat[:, kept] -= ((flat[:, kept] - mean) @ u.T) @ u
        return z
    net = nets["fusion"]
    a, b = (t.name for t in net.inputs)
    return net.run({a: original.astype(np.float32), b: references.astype(np.float32)})[net.outputs[0].name]
