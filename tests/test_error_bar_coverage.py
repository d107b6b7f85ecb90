"""The independent benchmark reports how often the truth lies within ± inclination_error (issue 15)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.independent_accuracy import error_bar_coverage, markdown_report, summarise


def test_coverage_counts_clean_galaxies_inside_their_bar() -> None:
    truth = np.array([50.0, 60.0, 70.0, 80.0, 30.0])
    median = np.array([52.0, 60.5, 75.0, 81.0, 50.0])
    error = np.array([3.0, 1.0, 2.0, 2.0, 2.0])
    clean = np.array([True, True, True, True, False])
    out = error_bar_coverage(truth, median, error, clean, ["inclined", "inclined", "uncertain", "inclined", "face_on"])
    assert out is not None
    assert out["n"] == 4 and out["coverage"] == pytest.approx(0.75)
    assert out["per_bin"] == {"45-60": 1.0, "60-75": 0.5, "75-90": 1.0}
    assert (out["inclined_n"], out["inclined_coverage"]) == (3, 1.0)
    assert out["verdicts"] == {"inclined": 3, "uncertain": 1}


def test_no_bar_no_figure() -> None:
    nan = np.full(2, np.nan)
    assert error_bar_coverage(np.array([50.0, 60.0]), np.array([50.0, 60.0]), nan, np.ones(2, bool), [None, None]) is None


def test_summary_and_markdown_carry_the_coverage() -> None:
    rows = [{"inclination": 60.0, "accepted": True, "reason": "", "pa": 10.0},
            {"inclination": 80.0, "accepted": True, "reason": "", "pa": 100.0}]
    results = [{"median": 62.0, "reject": 10.0, "axial": 66.0, "alarm": False, "pa_measured": None, "error_bar": 3.0,
                "verdict_code": "inclined", "axial_source": "response"},
               {"median": 76.0, "reject": 10.0, "axial": 70.0, "alarm": False, "pa_measured": None, "error_bar": 3.0,
                "verdict_code": "inclined", "axial_source": "response"}]
    out = summarise(rows, results)
    assert out["error_bar"]["coverage"] == 0.5
    report = {**out, "ensemble": {"version": "v", "source": "s", "tta": "aligned"}, "set": {"folder": "f", "n_images": 2},
              "alignment": "measured by the serving path", "axial_source": "response", "real_photos": None,
              "in_family": None, "seconds": {"independent_set": 1.0, "per_image_ms": 500.0}}
    assert any("within ± inclination_error" in line and "50.0%" in line for line in markdown_report(report))


def test_a_served_answer_is_not_counted_as_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``error`` in a result means the serving path refused the image; the bar has its own key."""
    import predictions.services
    from benchmarks.independent_accuracy import _predict

    body = {"inclinations": {"summary": {"median": 70.0, "stdev": 1.0}},
            "rejection_likelihood": {"summary": {"median": 5.0}}, "axial_ratio_inclination": 68.0,
            "inclination_error": 2.5, "verdict_code": "inclined", "alarm": False, "pa_measured": 12.0}
    monkeypatch.setattr(predictions.services, "prediction_for_upload", lambda **kwargs: body)
    result = _predict(b"png", None)
    assert "error" not in result and result["error_bar"] == 2.5 and result["verdict_code"] == "inclined"
