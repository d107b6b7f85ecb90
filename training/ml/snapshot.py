"""Dataset snapshots: consensus labels and images frozen into sharded ``.npz`` files with a content hash.

A snapshot folder holds ``index.json`` (counts, split sizes, shard names, the content hash) and
``shard-NNNNN.npz`` files. Every row is one galaxy with ALL its views (colour composite and the g, r, i
bands, 128 × 128 model inputs), so a split by row is a split by galaxy and no band of a test galaxy can
reach training. Columns:

- ``id`` int64 (catalogue galaxy id; synthetic galaxies get negative ids), ``source`` ("consensus" or
  "synthetic");
- ``inclination`` float32 degrees (NaN for rejects), ``rejected`` uint8 (1 = F or J consensus, or a
  synthetic reject), ``reason`` (the consensus status or the synthetic reject reason);
- ``split``: "train", "val" or "test";
- ``colour`` (N, 128, 128, 3) uint8, ``g``/``r``/``i`` (N, 128, 128) uint8.

The split is stratified: accepted galaxies by 5° inclination bin and rejects on their own each send the
same share to test and validation (see ``stratified_split``). The content hash covers the labels, split and
pixels in row order, so the same consensus gives the same hash and can be reused instead of rebuilt.
Django-free: the Django side (``training.snapshots``) collects the rows.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .augment import ImageSet, inclination_bins

INDEX = "index.json"
SPLITS = ("train", "val", "test")
_COLUMNS = ("id", "source", "inclination", "rejected", "reason", "split", "colour", "g", "r", "i")


@dataclass
class SnapshotRows:
    """Rows of a snapshot in memory (see the module docstring for the columns)."""

    id: np.ndarray
    source: np.ndarray
    inclination: np.ndarray
    rejected: np.ndarray
    reason: np.ndarray
    colour: np.ndarray
    g: np.ndarray
    r: np.ndarray
    i: np.ndarray
    split: np.ndarray = field(default_factory=lambda: np.array([], dtype="<U5"))

    def __post_init__(self) -> None:
        n = len(self.id)
        for name in _COLUMNS:
            value = getattr(self, name)
            if name == "split" and value.size == 0:
                continue
            if len(value) != n:
                raise ValueError(f"Column {name} has {len(value)} rows, expected {n}.")
        if n and (self.colour.ndim != 4 or self.colour.shape[-1] != 3 or self.g.shape != self.colour.shape[:3]):
            raise ValueError(f"Images must be (N,H,W,3) and bands (N,H,W); got {self.colour.shape}, {self.g.shape}.")
        if len(np.unique(self.id)) != n:
            raise ValueError("A galaxy appears twice in the snapshot.")

    def __len__(self) -> int:
        return int(len(self.id))

    def take(self, index: np.ndarray) -> SnapshotRows:
        return SnapshotRows(**{name: getattr(self, name)[index] for name in _COLUMNS
                               if not (name == "split" and self.split.size == 0)})

    @classmethod
    def concatenate(cls, parts: Sequence[SnapshotRows]) -> SnapshotRows:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("A snapshot needs at least one galaxy.")
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMNS
                      if not (name == "split" and any(p.split.size == 0 for p in parts))})

    def image_set(self, rows: np.ndarray, *, kind: str) -> ImageSet:
        """An :class:`ImageSet` of ``rows`` (indices); regression keeps accepted galaxies only."""
        rows = np.asarray(rows, dtype=int)
        if kind == "regression":
            rows = rows[self.rejected[rows] == 0]
            labels = self.inclination[rows].astype(np.float64)
        else:
            labels = self.rejected[rows].astype(np.float64)
        return ImageSet(colour=self.colour[rows], g=self.g[rows], r=self.r[rows], i=self.i[rows], labels=labels)

    def rows_of(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for split in SPLITS:
            rows = self.rows_of(split)
            accepted = rows[self.rejected[rows] == 0]
            out[split] = {"galaxies": int(rows.size), "rejects": int(rows.size - accepted.size),
                          "per_bin": np.bincount(inclination_bins(self.inclination[accepted]), minlength=9).tolist()
                          if accepted.size else [0] * 9}
        out["sources"] = {str(s): int((self.source == s).sum()) for s in np.unique(self.source)}
        return out


def _systematic(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Every (1/fraction)-th of ``n`` ordered positions from a random start: proportional in every stretch
    of the order, so small strata still get their share across the whole list. At least one when n ≥ 3."""
    chosen = np.zeros(n, bool)
    if n == 0 or fraction <= 0:
        return chosen
    offset = rng.uniform(0.0, 1.0)
    marks = np.floor(np.arange(n + 1) * fraction + offset)
    chosen = marks[1:] != marks[:-1]
    if not chosen.any() and n >= 3:
        chosen[rng.integers(n)] = True
    return chosen


def stratified_split(*, ids: np.ndarray, inclination: np.ndarray, rejected: np.ndarray, seed: int,
                     test_fraction: float = 0.15, val_fraction: float = 0.1) -> np.ndarray:
    """"train"/"val"/"test" per row, stratified by 5° inclination bin, with rejects split on their own.

    Rows are galaxies, so the split is by galaxy and no band of a test galaxy is seen in training.
    Accepted galaxies are ordered by bin (randomly within a bin) and every k-th goes to test, then to
    validation (systematic sampling), so each bin gets its share even when it holds only a few galaxies;
    rejects likewise. The order inside a bin is a seeded permutation of the sorted ids: the split depends
    on the set of galaxies, not on the order they were read in.
    """
    ids = np.asarray(ids)
    rejected = np.asarray(rejected).astype(bool)
    bins = inclination_bins(np.nan_to_num(np.asarray(inclination, float), nan=67.5))
    split = np.full(ids.size, "train", dtype="<U5")
    for group, mask in (("accepted", ~rejected), ("rejects", rejected)):
        rows = np.flatnonzero(mask)
        rng = np.random.default_rng([seed, 1 if group == "accepted" else 2])
        shuffled = rows[np.argsort(ids[rows], kind="stable")]
        shuffled = shuffled[rng.permutation(shuffled.size)]
        ordered = shuffled[np.argsort(bins[shuffled], kind="stable")]  # by bin, random within a bin
        is_test = _systematic(ordered.size, test_fraction, rng)
        split[ordered[is_test]] = "test"
        rest = ordered[~is_test]
        is_val = _systematic(rest.size, val_fraction / max(1e-9, 1 - test_fraction), rng)
        if rest.size - is_val.sum() < 1 and is_val.any():
            is_val[np.flatnonzero(is_val)[0]] = False  # always leave something to train on
        split[rest[is_val]] = "val"
    return split


def flavour_rows(train_rows: np.ndarray, *, flavour: int, seed: int, subset_fraction: float = 2 / 3) -> np.ndarray:
    """Training rows of a flavour: 0 = all, 1–3 = seeded ⌊n·2/3⌋ subsets (as ``trainer.flavour_splits``)."""
    train_rows = np.sort(np.asarray(train_rows))
    if flavour == 0:
        return train_rows
    n_subset = max(1, int(train_rows.size * subset_fraction + 1e-9))
    return np.sort(np.random.default_rng([seed, flavour]).choice(train_rows, size=n_subset, replace=False))


def _hash_rows(rows: SnapshotRows) -> str:
    digest = hashlib.sha256()
    for name in _COLUMNS:
        array = np.ascontiguousarray(getattr(rows, name))
        if array.dtype.kind == "U":
            array = np.char.encode(array, "utf-8").astype(bytes)
        digest.update(name.encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def content_hash(rows: SnapshotRows) -> str:
    """SHA-256 of labels, split and pixels in row order (rows sorted by id when written)."""
    return _hash_rows(rows)


def write_snapshot(folder: Path, rows: SnapshotRows, *, shard_rows: int = 2048,
                   description: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``rows`` (with their split) as compressed shards plus ``index.json``; returns the index.

    Rows are sorted by id first, so the hash does not depend on the order they were collected in.
    ``index.json`` is written last and atomically: a folder without it is an interrupted write.
    """
    if rows.split.size != len(rows):
        raise ValueError("Assign a split (stratified_split) before writing the snapshot.")
    rows = rows.take(np.argsort(rows.id, kind="stable"))
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for number, start in enumerate(range(0, len(rows), shard_rows)):
        part = rows.take(np.arange(start, min(start + shard_rows, len(rows))))
        name = f"shard-{number:05d}.npz"
        tmp = folder / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **{column: getattr(part, column) for column in _COLUMNS})
        os.replace(tmp, folder / name)
        shards.append({"file": name, "rows": len(part)})
    index = {"format": 1, "rows": len(rows), "content_hash": content_hash(rows), "shards": shards,
             "image_shape": list(rows.colour.shape[1:]), "counts": rows.counts(), "description": description or {}}
    tmp = folder / f".{INDEX}.tmp"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, folder / INDEX)
    return index


def read_index(folder: Path) -> dict[str, Any]:
    path = folder / INDEX
    if not path.exists():
        raise FileNotFoundError(f"{folder} holds no complete snapshot ({INDEX} is missing).")
    return json.loads(path.read_text())


def iter_shards(folder: Path) -> Iterator[SnapshotRows]:
    """The snapshot shard by shard, so a large one can be streamed instead of loaded at once."""
    for shard in read_index(folder)["shards"]:
        with np.load(folder / shard["file"], allow_pickle=False) as data:
            yield SnapshotRows(**{column: data[column] for column in _COLUMNS})


def load_snapshot(folder: Path, *, verify: bool = False) -> SnapshotRows:
    """All rows of a snapshot; ``verify`` recomputes the content hash and refuses a mismatch."""
    rows = SnapshotRows.concatenate(list(iter_shards(folder)))
    if verify:
        expected = read_index(folder)["content_hash"]
        actual = content_hash(rows)
        if actual != expected:
            raise ValueError(f"Snapshot {folder} is corrupt: content hash {actual[:12]} ≠ {expected[:12]}.")
    return rows


@dataclass
class EvalGalaxy:
    """A snapshot row in the shape ``evaluate_ensemble`` expects of a synthetic galaxy."""

    colour: np.ndarray
    g: np.ndarray
    r: np.ndarray
    i: np.ndarray
    truth: dict[str, Any]


def eval_galaxies(rows: SnapshotRows) -> list[EvalGalaxy]:
    return [EvalGalaxy(colour=rows.colour[k], g=rows.g[k], r=rows.r[k], i=rows.i[k],
                       truth={"inclination": float(rows.inclination[k]) if not rows.rejected[k] else None,
                              "accepted": not bool(rows.rejected[k]),
                              "reason": str(rows.reason[k]) if rows.rejected[k] else None})
            for k in range(len(rows))]


def synthetic_rows(n: int, *, seed: int, reject_fraction: float = 0.35) -> SnapshotRows:
    """``n`` generated galaxies (truth known) as snapshot rows with ids −1, −2, … (never a catalogue id)."""
    from core.synthetic import GeneratorConfig, generate

    galaxies = list(generate(GeneratorConfig(reject_fraction=reject_fraction), n, seed=seed, workers=1))
    accepted = np.array([bool(g.truth["accepted"]) for g in galaxies])
    return SnapshotRows(
        id=-(np.arange(n, dtype=np.int64) + 1 + seed * 1_000_000), source=np.array(["synthetic"] * n),
        inclination=np.array([g.truth["inclination"] if a else np.nan for g, a in zip(galaxies, accepted)], np.float32),
        rejected=(~accepted).astype(np.uint8),
        reason=np.array([g.truth["reason"] or "" for g in galaxies]),
        colour=np.stack([g.colour for g in galaxies]), g=np.stack([g.g for g in galaxies]),
        r=np.stack([g.r for g in galaxies]), i=np.stack([g.i for g in galaxies]),
    )
