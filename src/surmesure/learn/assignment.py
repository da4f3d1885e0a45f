"""Deterministic assignment: (salt, person id) -> a bucket in [0, 1) -> a variant.

The bucket is the SplitMix64 finalizer of ``key(id) XOR key(salt)``, top 53 bits over 2⁵³.
``key`` is the integer itself for integer ids (mod 2⁶⁴) and the first 8 bytes of BLAKE2b for
text, so a person gets the same bucket one at a time (:func:`bucket`) and in batch
(:func:`buckets`, vectorized NumPy), on every machine and run: assignment is sticky.

Variants own fixed slots of [0, 1) (``capacity``, equal by default); a variant with weight w
takes the first w of its slot. Raising a weight only extends its range, so nobody already in a
variant moves. The rest of the unit interval is "not in the experiment" (index -1).
A :class:`Layer` splits people into mutually exclusive experiments by a layer bucket; each
experiment then assigns its variant with its own salt.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from surmesure.errors import InvalidInput

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
SCALE = 2.0**-53

Ids = npt.NDArray[np.integer] | npt.NDArray[np.str_] | npt.NDArray[np.object_]


@functools.lru_cache(maxsize=4096)
def salt_key(salt: str) -> int:
    return text_key(salt)


def text_key(value: str) -> int:
    """The 64-bit key of a text id or salt (BLAKE2b, little-endian)."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little")


def person_key(person_id: int | str) -> int:
    return person_id & MASK if isinstance(person_id, int) else text_key(str(person_id))


def bucket(salt: str, person_id: int | str) -> float:
    """The person's bucket in [0, 1) for this salt."""
    z = ((person_key(person_id) ^ salt_key(salt)) + GOLDEN) & MASK
    z = (z ^ (z >> 30)) * M1 & MASK
    z = (z ^ (z >> 27)) * M2 & MASK
    return ((z ^ (z >> 31)) >> 11) * SCALE


def _keys(ids: Ids) -> npt.NDArray[np.uint64]:
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu":
        return arr.astype(np.uint64)  # two's complement, as ``& MASK`` does for one id
    return np.fromiter((person_key(v) for v in arr.tolist()), dtype=np.uint64, count=arr.size)


def buckets(salt: str, ids: Ids) -> npt.NDArray[np.float64]:
    """Buckets of an array of ids (integers or strings), equal to :func:`bucket` one by one."""
    z = _keys(ids) ^ np.uint64(text_key(salt))
    z += np.uint64(GOLDEN)
    z ^= z >> np.uint64(30)
    z *= np.uint64(M1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(M2)
    z ^= z >> np.uint64(31)
    z >>= np.uint64(11)
    return z.astype(np.float64) * SCALE


@dataclass(frozen=True)
class Experiment:
    """Variants' traffic ``weights`` (fractions of everyone) within fixed ``capacity`` slots."""

    salt: str
    weights: tuple[float, ...]
    capacity: tuple[float, ...] | None = None
    starts: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        k = len(self.weights)
        cap = self.capacity or tuple(1.0 / k for _ in range(k)) if k else ()
        if k < 1 or len(cap) != k:
            raise InvalidInput(
                "An experiment needs one weight (and capacity) per variant.",
                field="weights",
                hint="e.g. weights=(0.5, 0.5)",
            )
        if sum(cap) > 1 + 1e-12 or any(c <= 0 for c in cap):
            raise InvalidInput(
                f"Capacities {cap} must be positive and sum to at most 1.",
                field="capacity",
                hint="slots share the unit interval",
            )
        for i, (w, c) in enumerate(zip(self.weights, cap, strict=True)):
            if not 0 <= w <= c + 1e-12:
                raise InvalidInput(
                    f"Variant {i} has weight {w!r} beyond its slot of {c:g}.",
                    field="weights",
                    hint="keep each weight between 0 and its capacity (equal slots: 1/variants)",
                )
        object.__setattr__(self, "capacity", tuple(cap))
        object.__setattr__(self, "starts", np.concatenate([[0.0], np.cumsum(cap)[:-1]]))

    def variant_of(self, b: npt.NDArray[np.float64] | float) -> npt.NDArray[np.int64]:
        """Variant index of each bucket, -1 outside every variant's range."""
        u = np.asarray(b, dtype=np.float64)
        slot = np.searchsorted(self.starts, u, side="right") - 1
        inside = u - self.starts[slot] < np.asarray(self.weights)[slot]
        return np.where(inside, slot, -1).astype(np.int64)

    def assign(self, person_id: int | str) -> int:
        """Variant index of one person (-1: not in the experiment)."""
        u = bucket(self.salt, person_id)
        starts = self.starts.tolist()
        for i in range(len(starts) - 1, -1, -1):
            if u >= starts[i]:
                return i if u - starts[i] < self.weights[i] else -1
        return -1

    def assign_many(self, ids: Ids) -> npt.NDArray[np.int64]:
        """Variant index of every id (-1: not in the experiment)."""
        return self.variant_of(buckets(self.salt, ids))


@dataclass(frozen=True)
class Layer:
    """Mutually exclusive experiments: each owns a share of the layer's bucket range."""

    salt: str
    experiments: Sequence[Experiment]
    shares: Sequence[float]

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.experiments) or sum(self.shares) > 1 + 1e-12:
            raise InvalidInput(
                "A layer needs one share per experiment, summing to at most 1.",
                field="shares",
                hint="e.g. shares=(0.5, 0.5) for two experiments",
            )

    def assign_many(self, ids: Ids) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(experiment index or -1, variant index or -1) of every id."""
        edges = np.cumsum(self.shares)
        which = np.searchsorted(edges, buckets(self.salt, ids), side="right")
        which = np.where(which < len(self.experiments), which, -1)
        variants = np.full(which.shape, -1, dtype=np.int64)
        for i, exp in enumerate(self.experiments):
            members = which == i
            if members.any():
                variants[members] = exp.assign_many(np.asarray(ids)[members])
        return which.astype(np.int64), np.where(which >= 0, variants, -1)

    def assign(self, person_id: int | str) -> tuple[int, int]:
        which, variant = self.assign_many(np.asarray([person_id]))
        return int(which[0]), int(variant[0])
