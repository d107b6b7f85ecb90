"""CPU-heavy prediction work runs on one low-priority thread per process, so web threads stay responsive."""
from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

from predictions import inference
from predictions.conf import prediction_setting


def _where() -> tuple[int, str]:
    return threading.get_native_id(), threading.current_thread().name


def test_heavy_work_runs_on_one_inference_thread_and_comes_back() -> None:
    first, second = inference.run_heavy(_where), inference.run_heavy(_where)
    assert first == second
    assert first[0] != threading.get_native_id() and first[1].startswith("inference")
    # Re-entrant: heavy work that calls heavy work runs inline instead of waiting for itself.
    assert inference.run_heavy(inference.run_heavy, _where) == first


def test_exceptions_reach_the_caller() -> None:
    def fails() -> None:
        raise ValueError("bad image")

    with pytest.raises(ValueError, match="bad image"):
        inference.run_heavy(fails)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is a Linux feature")
def test_the_inference_thread_runs_below_the_web_threads(settings: Any) -> None:
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    theirs = inference.run_heavy(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert theirs == min(19, mine + prediction_setting("NICENESS")) > mine
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # this thread is untouched


@pytest.mark.django_db
def test_the_ensemble_is_loaded_on_the_inference_thread(active_tiny_ensemble: Any, monkeypatch: Any) -> None:
    loaded_on: list[str] = []
    real = inference.FusedEnsemble

    def recording(*args: Any, **kwargs: Any) -> Any:
        loaded_on.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "FusedEnsemble", recording)
    monkeypatch.setattr(inference, "_loaded", None)
    monkeypatch.setattr(inference, "_loaded_key", None)
    assert inference.active_ensemble().version == "tiny-1"
    assert len(loaded_on) == 1 and loaded_on[0].startswith("inference")
