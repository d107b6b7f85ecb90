"""Dataset snapshots: the current consensus (plus synthetic galaxies) frozen under ``MODEL_STORE/datasets``,
and the consensus CSV exported next to them."""
from __future__ import annotations

import os
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from labeling.export import consensus_export

from .conf import training_setting
from .models import DatasetSnapshot
from .selectors import consensus_training_rows
from .store import store_root


class SnapshotError(InvalidInput, ValueError):
    """A snapshot cannot be built (e.g. no consensus labels with images); the message says why."""


def snapshot_build(*, synthetic: int = 0, seed: int = 2026, user: Any = None, test_fraction: float = 0.15,
                   val_fraction: float = 0.1) -> DatasetSnapshot:
    """Freeze the current consensus (plus ``synthetic`` generated galaxies) into a snapshot.

    The same content (labels, split and pixels) gives the same hash: an existing snapshot with that
    hash is returned instead of writing a copy.
    """
    import numpy as np

    from training.ml.snapshot import SnapshotRows, content_hash, stratified_split, synthetic_rows, write_snapshot

    if synthetic < 0:
        raise SnapshotError("The number of synthetic galaxies cannot be negative.")
    parts = [p for p in (consensus_training_rows(), synthetic_rows(synthetic, seed=seed) if synthetic else None) if p]
    if not parts:
        raise SnapshotError("There are no consensus labels with images yet, and no synthetic galaxies were asked for.")
    rows = SnapshotRows.concatenate(parts)
    rows.split = stratified_split(ids=rows.id, inclination=rows.inclination, rejected=rows.rejected, seed=seed,
                                  test_fraction=test_fraction, val_fraction=val_fraction)
    rows = rows.take(np.argsort(rows.id, kind="stable"))
    digest = content_hash(rows)
    existing = DatasetSnapshot.objects.filter(content_hash=digest).first()
    if existing and (store_root() / existing.path / "index.json").exists():
        return existing
    name = f"snap-{digest[:12]}"
    relative = Path("datasets") / name
    description = {"seed": seed, "synthetic": synthetic, "test_fraction": test_fraction, "val_fraction": val_fraction}
    index = write_snapshot(store_root() / relative, rows,
                           shard_rows=int(training_setting("SNAPSHOT_SHARD_ROWS")), description=description)
    counts = index["counts"]
    snapshot, _ = DatasetSnapshot.objects.update_or_create(name=name, defaults={
        "content_hash": digest, "path": str(relative), "n_train": counts["train"]["galaxies"],
        "n_val": counts["val"]["galaxies"], "n_test": counts["test"]["galaxies"],
        "description": {**description, "counts": counts, "shards": len(index["shards"])}, "created_by": user})
    return snapshot


def snapshot_folder(*, snapshot: DatasetSnapshot) -> Path:
    return store_root() / snapshot.path


def consensus_export_to_store() -> Path:
    """Write the whole consensus as CSV under MODEL_STORE/exports (kept next to the snapshots it feeds)."""
    data, _ = consensus_export(fmt="csv", retired_only=False)
    folder = store_root() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"consensus-{datetime.now(dt_timezone.utc):%Y%m%d}.csv"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
