"""Signal, noise, SNR and decision accuracy (Heineman et al., "Signal and Noise", AI2 2025).

Definitions (allenai/signal-and-noise ``snr/metrics.py``; shared/reference/selection_methods.md §A1):

    signal = max_{j,k} |m_j - m_k| / mean(m)    m = the scores of the checkpoints of the series
    noise  = std(c) / mean(c)                    c = the last few checkpoints of one training run
    SNR    = signal / noise

The paper's noise is checkpoint-to-checkpoint variation within one run. A table says which
checkpoints belong to one run with its optional ``run`` column; the noise is then the relative
population standard deviation (np.std, as the paper) of the last NOISE_WINDOW checkpoints of
the run that holds the series' largest-FLOPs point. Without such a run the only noise we can
measure is the item sampling error, sqrt(mean_i p_i (1 - p_i) / n_i) / mean(m): a **lower bound**
on the real noise (it leaves out seed and checkpoint-to-checkpoint variation), labelled so.

Decision accuracy here is the paper's pairwise agreement applied to adjacent checkpoints, with
FLOPs order as the truth: the fraction of adjacent pairs the benchmark orders the same way as
FLOPs, a tie counting one half (a coin flip decides it; the paper's formula, written for i < j
with strict ">", would count a tie as agreement).
"""

from __future__ import annotations

import numpy as np

NOISE_WINDOW = 5  # last checkpoints of a run (DataDecide's small-scale setting in the paper)
NOISE_MIN_POINTS = 3  # a standard deviation of two numbers is too unstable to call noise
NOISE_FROM_RUN = "checkpoints"
NOISE_FROM_ITEMS = "item_se_lower_bound"


def signal(y: np.ndarray) -> np.ndarray:
    mean = y.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, (y.max(axis=1) - y.min(axis=1)) / mean, np.nan)


def item_noise(y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Relative item standard error of the series: a lower bound on its noise."""
    mean = y.mean(axis=1)
    se = np.sqrt((y * (1 - y) / n).mean(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, se / mean, np.nan)


def run_noise(y: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Relative std of the last NOISE_WINDOW points that share the last point's run; NaN where
    that run has fewer than NOISE_MIN_POINTS points in the series (or no run is named)."""
    out = np.full(y.shape[0], np.nan)
    for r in range(y.shape[0]):  # one short loop per series: runs are strings
        last = runs[r, -1]
        if not last:
            continue
        vals = y[r][runs[r] == last][-NOISE_WINDOW:]
        if vals.size >= NOISE_MIN_POINTS and vals.mean() > 0:
            out[r] = vals.std() / vals.mean()
    return out


def decision_accuracy(y: np.ndarray) -> np.ndarray:
    d = np.diff(y, axis=1)
    return ((d > 0) + 0.5 * (d == 0)).mean(axis=1)


def signal_and_noise(y: np.ndarray, n: np.ndarray, runs: np.ndarray) -> dict[str, np.ndarray]:
    """Every column of the signal/noise part of per_shot.csv for one batch of series."""
    sig = signal(y)
    from_run = run_noise(y, runs)
    use_run = np.isfinite(from_run)
    noise = np.where(use_run, from_run, item_noise(y, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(noise > 0, sig / np.where(noise > 0, noise, 1.0), np.nan)
    return {
        "signal": sig,
        "noise": noise,
        "noise_source": np.where(use_run, NOISE_FROM_RUN, NOISE_FROM_ITEMS),
        "snr": snr,
        "decision_accuracy": decision_accuracy(y),
    }
