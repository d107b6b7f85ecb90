"""Evaluation metrics, bias fit, alarm threshold and reject metrics on constructed data."""
import numpy as np
import pytest

from training.ml import evaluation as ev


def test_regression_metrics_and_bins() -> None:
    measured = np.array([46.0, 52.0, 88.0, 90.0])
    predicted = np.array([48.0, 52.0, 85.0, 90.0])
    metrics = ev.regression_metrics(measured, predicted)
    assert metrics.rms == pytest.approx(np.sqrt((4 + 0 + 9 + 0) / 4))
    assert metrics.mae == pytest.approx(1.25)
    assert metrics.bias == pytest.approx((-2 + 0 + 3 + 0) / 4)
    assert metrics.count_per_bin["45-50"] == 1 and metrics.count_per_bin["85-90"] == 2
    assert metrics.rms_per_bin["85-90"] == pytest.approx(np.sqrt(4.5))


def test_bias_fit_recovers_a_linear_bias_and_correction_removes_it() -> None:
    rng = np.random.default_rng(0)
    measured = rng.uniform(45, 90, 2000)
    m_true, b_true = 0.05, -3.0
    # Δi = m·i_m + b  ⇒  i_p = i_m − (m·i_m + b)
    predicted = measured - (m_true * measured + b_true) + rng.normal(0, 0.5, measured.size)
    fit = ev.fit_bias(measured, predicted)
    assert fit.m == pytest.approx(m_true, abs=0.01) and fit.b == pytest.approx(b_true, abs=0.6)
    corrected = fit.apply(predicted)
    assert ev.regression_metrics(measured, corrected).rms < 0.7 < ev.regression_metrics(measured, predicted).rms


def test_bias_correction_is_kept_only_when_it_helps() -> None:
    rng = np.random.default_rng(1)
    measured = rng.uniform(45, 90, 500)
    unbiased = measured + rng.normal(0, 2, measured.size)
    assert ev.choose_bias_correction(measured, unbiased, fit_measured=measured[::-1], fit_predicted=unbiased) is None


def test_alarm_threshold_catches_large_errors() -> None:
    rng = np.random.default_rng(2)
    stdev = rng.uniform(0, 2, 1000)
    errors = rng.normal(0, 1.5, 1000)
    stdev[:50], errors[:50] = 6.0, 12.0  # the models disagree exactly where they are badly wrong
    alarm = ev.choose_alarm_threshold(stdev, np.abs(errors), min_caught_fraction=0.9, max_flag_fraction=0.06)
    assert alarm["large_errors_caught_fraction"] >= 0.9 and alarm["flagged_fraction"] <= 0.06
    assert alarm["rms_flagged"] > alarm["rms_unflagged"]
    # It flags no more than it needs: the 50 disagreeing images hold every large error.
    assert alarm["flagged_fraction"] <= 0.05


def test_alarm_threshold_flags_the_fewest_images_that_hold_most_large_errors() -> None:
    stdev = np.arange(100, dtype=float)[::-1]  # image k has the k-th largest disagreement
    errors = np.zeros(100)
    errors[[0, 2, 5, 40, 90, 95]] = 10.0  # six large errors
    alarm = ev.choose_alarm_threshold(stdev, errors, min_caught_fraction=2 / 3, max_flag_fraction=0.5)
    assert alarm["flagged_fraction"] == pytest.approx(0.41) and alarm["large_errors_caught_fraction"] == pytest.approx(4 / 6)
    capped = ev.choose_alarm_threshold(stdev, errors, min_caught_fraction=2 / 3, max_flag_fraction=0.1)
    assert capped["flagged_fraction"] == pytest.approx(0.1) and capped["large_errors_caught_fraction"] == pytest.approx(0.5)
    calm = ev.choose_alarm_threshold(stdev, np.zeros(100), max_flag_fraction=0.1)
    assert calm["flagged_fraction"] == pytest.approx(0.1) and calm["large_errors_caught_fraction"] == 1.0
    everything = ev.choose_alarm_threshold(stdev, errors, min_caught_fraction=1.0, max_flag_fraction=1.0)
    assert everything["flagged_fraction"] == pytest.approx(0.96) and everything["large_errors_caught_fraction"] == 1.0


def test_reject_metrics_and_roc() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    probability = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.1, 0.05])
    metrics = ev.reject_metrics(labels, probability)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["roc_auc"] == pytest.approx(14 / 15)
    perfect = ev.reject_metrics(labels, labels.astype(float))
    assert perfect["roc_auc"] == pytest.approx(1.0) and perfect["accuracy"] == 1.0


def test_plots_are_written(tmp_path) -> None:
    rng = np.random.default_rng(3)
    measured = rng.uniform(45, 90, 200)
    predicted = measured + rng.normal(0, 3, 200)
    assert ev.plot_prediction_scatter(measured, predicted, tmp_path / "s.png", title="t").stat().st_size > 1000
    assert ev.plot_history({"loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2]}, tmp_path / "h.png", title="t").exists()
    results = ev.metrics_by_group(measured, predicted, ["g", "r"] * 100)
    assert set(results) == {"all", "g", "r"}
    assert ev.plot_rms_per_bin(results, tmp_path / "b.png", title="t").exists()
    assert ev.plot_roc({"m": ev.roc_curve(np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3]))}, tmp_path / "r.png", title="t").exists()
    assert ev.contact_sheet(np.zeros((3, 8, 8, 3)), ["a", "b", "c"], tmp_path / "c.png").exists()
