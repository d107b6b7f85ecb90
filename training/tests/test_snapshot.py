"""Snapshots: the split is stratified by bin and by galaxy, independent of row order; shards round-trip
with their hash; the same consensus reuses one snapshot; a corrupt shard is detected."""
from __future__ import annotations

import numpy as np
import pytest

from training.ml.augment import inclination_bins
from training.ml.snapshot import SnapshotRows, load_snapshot, read_index, stratified_split, write_snapshot
from training.models import DatasetSnapshot
from training.snapshots import SnapshotError, snapshot_build, snapshot_folder

from .helpers import labelled_galaxies


def _rows(n: int, *, seed: int = 0) -> SnapshotRows:
    rng = np.random.default_rng(seed)
    rejected = (rng.uniform(size=n) < 0.2).astype(np.uint8)
    inclination = np.where(rejected == 1, np.nan, rng.uniform(45, 90, n)).astype(np.float32)
    return SnapshotRows(id=np.arange(1, n + 1, dtype=np.int64), source=np.array(["consensus"] * n),
                        inclination=inclination, rejected=rejected, reason=np.where(rejected == 1, "J", "A"),
                        colour=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8),
                        g=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8), r=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8),
                        i=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8))


def test_split_is_stratified_and_order_independent() -> None:
    rows = _rows(1800)
    split = stratified_split(ids=rows.id, inclination=rows.inclination, rejected=rows.rejected, seed=3)
    accepted = rows.rejected == 0
    bins = inclination_bins(rows.inclination[accepted])
    for b in range(9):  # every bin sends about 15% to test and 10% to validation
        in_bin = split[accepted][bins == b]
        assert abs((in_bin == "test").mean() - 0.15) < 0.03 and abs((in_bin == "val").mean() - 0.10) < 0.03
    assert abs((split[~accepted] == "test").mean() - 0.15) < 0.03
    order = np.random.default_rng(1).permutation(len(rows))
    again = stratified_split(ids=rows.id[order], inclination=rows.inclination[order], rejected=rows.rejected[order], seed=3)
    assert (again == split[order]).all()


def test_small_sets_still_get_test_and_validation_of_both_kinds() -> None:
    rows = _rows(30, seed=2)
    split = stratified_split(ids=rows.id, inclination=rows.inclination, rejected=rows.rejected, seed=1)
    for kind in (0, 1):
        assert {"train", "val", "test"} <= set(split[rows.rejected == kind])


def test_shards_round_trip_and_detect_corruption(tmp_path) -> None:  # noqa: ANN001
    rows = _rows(50)
    rows.split = stratified_split(ids=rows.id, inclination=rows.inclination, rejected=rows.rejected, seed=0)
    shuffled = rows.take(np.random.default_rng(0).permutation(50))
    index = write_snapshot(tmp_path / "a", shuffled, shard_rows=16)
    assert [s["rows"] for s in index["shards"]] == [16, 16, 16, 2]
    assert write_snapshot(tmp_path / "b", rows, shard_rows=64)["content_hash"] == index["content_hash"]
    back = load_snapshot(tmp_path / "a", verify=True)
    assert (back.id == rows.id).all() and (back.colour == rows.colour).all() and (back.split == rows.split).all()
    np.testing.assert_array_equal(back.inclination, rows.inclination)
    broken = back.take(np.arange(16))
    broken.colour[0, 0, 0, 0] ^= 1
    np.savez_compressed(tmp_path / "a" / "shard-00000.npz", **{c: getattr(broken, c) for c in
                        ("id", "source", "inclination", "rejected", "reason", "split", "colour", "g", "r", "i")})
    with pytest.raises(ValueError, match="corrupt"):
        load_snapshot(tmp_path / "a", verify=True)


@pytest.mark.django_db
def test_snapshot_from_consensus_is_reused_when_nothing_changed(settings) -> None:  # noqa: ANN001
    with pytest.raises(SnapshotError, match="no consensus labels"):
        snapshot_build()
    labelled_galaxies(12, rejects=4)
    first = snapshot_build()
    assert snapshot_build().pk == first.pk and DatasetSnapshot.objects.count() == 1
    index = read_index(snapshot_folder(snapshot=first))
    rows = load_snapshot(snapshot_folder(snapshot=first), verify=True)
    assert index["rows"] == 16 and rows.colour.shape == (16, 128, 128, 3) and rows.g.shape == (16, 128, 128)
    assert int(rows.rejected.sum()) == 4 and set(rows.reason[rows.rejected == 1]) == {"F", "J"}
    assert first.n_train + first.n_val + first.n_test == 16
    labelled_galaxies(1, prefix="SYN-LATE")  # a new label: a new snapshot
    assert snapshot_build().pk != first.pk
