"""Signal, noise, SNR and decision accuracy, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from benchcal_reduce import signal_noise as sn


def test_formulas_by_hand():
    y = np.array([[0.30, 0.40, 0.40, 0.50], [0.50, 0.40, 0.60, 0.55]])
    n = np.full_like(y, 1000.0)
    runs = np.array([["", "", "", ""], ["a", "b", "b", "b"]], dtype=object)
    out = sn.signal_and_noise(y, n, runs)
    assert out["signal"] == pytest.approx([0.2 / 0.4, 0.2 / 0.5125])
    # no run: item standard error, a lower bound
    item = np.sqrt(np.mean(y[0] * (1 - y[0]) / 1000)) / 0.4
    assert out["noise"][0] == pytest.approx(item) and out["noise_source"][0] == sn.NOISE_FROM_ITEMS
    # run "b" holds the last point and 3 checkpoints: population std / mean, as the paper
    last = y[1, 1:]
    assert (
        out["noise"][1] == pytest.approx(last.std() / last.mean())
        and out["noise_source"][1] == sn.NOISE_FROM_RUN
    )
    assert out["snr"] == pytest.approx(out["signal"] / out["noise"])
    assert list(out["decision_accuracy"]) == pytest.approx([(1 + 0.5 + 1) / 3, 1 / 3])


def test_run_noise_needs_three_points_and_uses_the_last_window():
    y = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.3, 0.4, 0.5, 0.6, 0.6, 0.6, 0.6]])
    runs = np.array([["r"] * 7, ["x", "x", "x", "x", "x", "y", "y"]], dtype=object)
    noise = sn.run_noise(y, runs)
    window = y[0, -sn.NOISE_WINDOW :]
    assert noise[0] == pytest.approx(window.std() / window.mean())
    assert np.isnan(noise[1])  # run "y" has only 2 points
