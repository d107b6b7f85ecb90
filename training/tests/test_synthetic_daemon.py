"""``synthetic.generate`` inside a daemonic process, as in a prefork Celery child: asking for a worker
pool there used to fail at once ("daemonic processes are not allowed to have children"); now it renders
in-process and yields the very galaxies a single-worker run does."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np

from core.synthetic import default_config, generate, load_npz, save_npz

N, SEED = 5, 11


def _generate_in_child(out: str) -> None:
    assert multiprocessing.current_process().daemon
    save_npz(out, generate(default_config(reject_fraction=0.35), N, seed=SEED, workers=2))


def test_generate_with_workers_inside_a_daemonic_process(tmp_path: Path) -> None:
    out = tmp_path / "daemon.npz"
    # spawn, not fork: the child must not inherit this process's GalSim/TensorFlow state.
    child = multiprocessing.get_context("spawn").Process(target=_generate_in_child, args=(str(out),), daemon=True)
    child.start()
    child.join(timeout=240)
    assert child.exitcode == 0, f"the daemonic child failed (exit code {child.exitcode})"
    from_daemon = load_npz(out)
    reference = list(generate(default_config(reject_fraction=0.35), N, seed=SEED, workers=1))
    assert len(from_daemon) == N
    for a, b in zip(from_daemon, reference, strict=True):
        assert a.truth == b.truth
        for band in ("colour", "g", "r", "i"):
            np.testing.assert_array_equal(getattr(a, band), getattr(b, band))
