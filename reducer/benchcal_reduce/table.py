"""Load and validate the reducer's long-format input table.

One code path: a CSV/Parquet file is read as is; a directory of evaluator results (one
checkpoint dir with summary.json, or a dir of such dirs) and a list of summaries collected
from ConfigMaps are first turned into rows with ``benchcal.results.summary_rows``. Every
table then goes through ``validate_table``, whose errors name the column and the 1-based
data row as it appears in the file (or the summary file a row came from).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchcal.classification import MIN_CHECKPOINTS
from benchcal.errors import BadInput
from benchcal.results import (
    CONTINUOUS_METRICS,
    LOWER_IS_BETTER_METRICS,
    TABLE_COLUMNS,
    TABLE_OPTIONAL_COLUMNS,
    CheckpointSummary,
    read_summary,
    summary_path,
    summary_rows,
)

# A given stderr may differ from the binomial one of n items (macro-averages over categories of
# unequal size, bootstrap pass@k), but not by more than this factor either way: beyond it, n
# or stderr is for something else (categories, tokens) and the row is rejected.
STDERR_TOLERANCE = 5.0
# Numeric optional columns: allowed range as (low, high, high inclusive) (NaN/empty = not given).
_OPTIONAL_NUMERIC = {
    "stderr": (0.0, math.inf, True),
    # 1.0 when every scored example has the same gold answer (a tiny --limit): no skill can show
    "majority_rate": (0.0, 1.0, True),
    "gold_prob": (0.0, 1.0, True),
    "gold_margin": (-math.inf, math.inf, True),
    "bits_per_byte": (0.0, math.inf, True),
    **{f"{m}_stderr": (0.0, math.inf, True) for m in CONTINUOUS_METRICS},
}
# Column holding where each row came from, for error messages; dropped after validation.
_WHERE = "_where"


def load_table(path_or_dir: str | Path) -> pd.DataFrame:
    """Read INPUT (CSV, Parquet, or a directory of evaluator results) into a validated table."""
    path = Path(path_or_dir)
    if not path.exists():
        raise BadInput(
            f"{path}: no such file or directory (expected a CSV/Parquet table or evaluator results)"
        )
    if path.is_dir():
        return table_from_summaries(_summaries_in(path))
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ""):
            # Strings first: FLOPs may be integers beyond int64 or "1.2e15" strings.
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        else:
            raise BadInput(f"{path}: unsupported table format {suffix!r}; use .csv or .parquet")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise BadInput(f"{path}: cannot read table: {exc}") from None
    # Data row i (1-based, header excluded) is line i + 1 of a CSV file.
    raw[_WHERE] = [f"{path}: data row {i}" for i in range(1, len(raw) + 1)]
    return validate_table(raw, str(path))


def load_inputs(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One INPUT (``load_table``), or several checkpoint output directories, reduced together and
    nothing else (``benchcal run`` passes exactly the checkpoints it evaluated)."""
    if len(paths) == 1:
        return load_table(paths[0])
    summaries: list[CheckpointSummary] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise BadInput(
                f"{path}: not a directory; several INPUTs must each be a `benchcal evaluate` --out"
            )
        summaries += _summaries_in(path)
    return table_from_summaries(summaries, ", ".join(str(p) for p in paths))


def _summaries_in(directory: Path) -> list[CheckpointSummary]:
    if summary_path(directory).is_file():
        return [read_summary(directory)]
    dirs = sorted(p for p in directory.iterdir() if p.is_dir() and summary_path(p).is_file())
    if not dirs:
        raise BadInput(
            f"{directory}: no summary.json here or in its sub-directories; pass a results table "
            "or the --out directories of `benchcal evaluate`"
        )
    return [read_summary(d) for d in dirs]


def table_from_summaries(summaries: Sequence[CheckpointSummary], where: str = "summaries") -> pd.DataFrame:
    """The long table of several checkpoint summaries (evaluator dirs or ConfigMaps)."""
    rows: list[dict] = []
    for s in summaries:
        if s.flops is None:
            raise BadInput(
                f"checkpoint {s.checkpoint!r}: summary has no flops; re-run `benchcal evaluate` with --flops"
            )
        for i, row in enumerate(summary_rows(s)):
            row[_WHERE] = f"checkpoint {s.checkpoint}: results[{i}]"
            rows.append(row)
    if not rows:
        raise BadInput(f"{where}: no results to reduce")
    return validate_table(pd.DataFrame(rows), where)


def _numeric(df: pd.DataFrame, col: str, source: str) -> pd.Series:
    """Column as float; entries that are not numbers raise BadInput naming the row."""
    values = df[col]
    if values.dtype == object:
        values = values.astype(str).str.strip()
    num = pd.to_numeric(values, errors="coerce")
    if num.dtype == object:  # huge Python ints survive as objects
        num = num.map(float)
    bad = num.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise BadInput(f"{df[_WHERE].iat[i]}: column {col!r} must be a number, got {df[col].iat[i]!r}")
    return num.astype(float)


def _fail_where(df: pd.DataFrame, mask: np.ndarray, message: str) -> None:
    if mask.any():
        i = int(np.argmax(mask))
        raise BadInput(f"{df[_WHERE].iat[i]}: {message}")


def validate_table(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check and type the table; returns a clean copy with TABLE_COLUMNS and every optional column
    the reducer uses (NaN / "" where not given)."""
    missing = [c for c in TABLE_COLUMNS if c not in raw.columns]
    if missing:
        raise BadInput(
            f"{source}: missing column(s) {', '.join(missing)}; the table needs {', '.join(TABLE_COLUMNS)} "
            f"(optional: {', '.join(TABLE_OPTIONAL_COLUMNS)})"
        )
    raw = raw.reset_index(drop=True)  # row positions, not a caller's index, name the rows
    if _WHERE not in raw.columns:
        raw = raw.assign(**{_WHERE: [f"{source}: data row {i}" for i in range(1, len(raw) + 1)]})
    if raw.empty:
        raise BadInput(f"{source}: the table has no data rows")
    df = pd.DataFrame({_WHERE: raw[_WHERE].to_numpy()})
    for col in ("checkpoint", "benchmark"):
        df[col] = raw[col].astype(str).str.strip()
        _fail_where(df, (df[col] == "").to_numpy() | raw[col].isna().to_numpy(), f"column {col!r} is empty")
    for col in ("flops", "accuracy", "n", "random_baseline", "num_fewshot"):
        df[col] = _numeric(raw.assign(**{_WHERE: df[_WHERE]}), col, source)
    _fail_where(
        df,
        ~np.isfinite(df["flops"].to_numpy()) | (df["flops"] <= 0).to_numpy(),
        "column 'flops' must be a finite number > 0 (e.g. 1.2e21)",
    )
    acc = df["accuracy"].to_numpy()
    _fail_where(df, ~np.isfinite(acc) | (acc < 0) | (acc > 1), "column 'accuracy' must be in [0, 1]")
    n = df["n"].to_numpy()
    _fail_where(df, ~np.isfinite(n) | (n <= 0) | (n != np.round(n)), "column 'n' must be an integer > 0")
    base = df["random_baseline"].to_numpy()
    _fail_where(
        df, ~np.isfinite(base) | (base < 0) | (base >= 1), "column 'random_baseline' must be in [0, 1)"
    )
    shots = df["num_fewshot"].to_numpy()
    _fail_where(
        df,
        ~np.isfinite(shots) | (shots < 0) | (shots != np.round(shots)),
        "column 'num_fewshot' must be an integer >= 0",
    )
    df["num_fewshot"] = df["num_fewshot"].astype(int)
    df["n"] = df["n"].astype(int)
    for col in ("category", "metric", "run"):
        text = raw[col].astype(str).str.strip().to_numpy() if col in raw.columns else ""
        df[col] = pd.Series(text, index=df.index, dtype=object).replace({"nan": "", "None": ""})
    for col, (low, high, closed) in _OPTIONAL_NUMERIC.items():
        df[col] = _optional_numeric(raw.assign(**{_WHERE: df[_WHERE]}), col, low, high, closed)
    _check_metric(df)
    _check_stderr(df)
    _check_duplicates(df)
    _check_checkpoints(df, source)
    _check_constant_per_series(df, "random_baseline")
    _check_constant_per_series(df, "majority_rate")
    return df


def _optional_numeric(raw: pd.DataFrame, col: str, low: float, high: float, closed: bool) -> np.ndarray:
    """An optional numeric column: absent or empty cells are NaN (not given); text that is not
    a number, or a number out of range, names the row."""
    if col not in raw.columns:
        return np.full(len(raw), math.nan)
    values = raw[col]
    text = values.astype(str).str.strip() if values.dtype == object else values
    given = ~(values.isna() | text.isin(["", "nan", "NaN", "None"])).to_numpy()
    num = pd.to_numeric(text.where(given, None), errors="coerce").astype(float).to_numpy()
    bad = given & np.isnan(num)
    if bad.any():
        i = int(np.argmax(bad))
        raise BadInput(
            f"{raw[_WHERE].iat[i]}: column {col!r} must be a number or empty, got {values.iat[i]!r}"
        )
    out_of_range = given & ((num < low) | (num > high if closed else num >= high) | ~np.isfinite(num))
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        bracket = "]" if closed else ")"
        raise BadInput(
            f"{raw[_WHERE].iat[i]}: column {col!r} must be in [{low:g}, {high:g}{bracket}, got {values.iat[i]!r}"
        )
    return num


def _check_metric(df: pd.DataFrame) -> None:
    """The primary metric must be higher-is-better: the tests look for accuracy rising with FLOPs."""
    bad_names = {
        name
        for name in df["metric"].unique()
        if (low := str(name).lower()) in LOWER_IS_BETTER_METRICS
        or "lower" in low
        # e.g. "word_perplexity", "val_loss"
        or any(low.endswith("_" + m) or low.startswith(m + "_") for m in LOWER_IS_BETTER_METRICS)
    }
    lower = df["metric"].isin(bad_names).to_numpy()
    if lower.any():
        i = int(np.argmax(lower))
        raise BadInput(
            f"{df[_WHERE].iat[i]}: column 'metric' is {df['metric'].iat[i]!r}, a lower-is-better metric; "
            "the primary metric must be an accuracy (higher is better). Give continuous metrics in their "
            f"own columns ({', '.join(CONTINUOUS_METRICS)})"
        )


def _check_stderr(df: pd.DataFrame) -> None:
    """A given stderr must be compatible with n: within STDERR_TOLERANCE of the binomial standard
    error sqrt(p(1-p)/n). Checked where that is informative (0.01 <= p <= 0.99)."""
    acc, n, se = df["accuracy"].to_numpy(), df["n"].to_numpy(dtype=float), df["stderr"].to_numpy()
    binomial = np.sqrt(acc * (1 - acc) / n)
    checked = np.isfinite(se) & (acc >= 0.01) & (acc <= 0.99)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(checked, se / binomial, 1.0)
    bad = checked & ((ratio > STDERR_TOLERANCE) | (ratio < 1 / STDERR_TOLERANCE))
    if bad.any():
        i = int(np.argmax(bad))
        implied = acc[i] * (1 - acc[i]) / se[i] ** 2 if se[i] > 0 else math.inf
        raise BadInput(
            f"{df[_WHERE].iat[i]}: 'n' = {int(n[i])} is inconsistent with 'stderr' = {se[i]:.4g} at accuracy "
            f"{acc[i]:.4g}: the binomial standard error of n items is {binomial[i]:.4g} (the stderr implies "
            f"about {implied:.4g} items; tolerated factor {STDERR_TOLERANCE:g}). Give the number of scored "
            "examples as n and the standard error of the accuracy as stderr"
        )


def _check_constant_per_series(df: pd.DataFrame, col: str) -> None:
    """A random baseline (or majority rate) is a property of the benchmark's answers, not of a
    checkpoint: one value per (benchmark, num_fewshot)."""
    key = ["benchmark", "num_fewshot"]
    vals = df[col].fillna(-1.0)
    grouped = vals.groupby([df[k] for k in key])
    spread = grouped.transform("max") - grouped.transform("min")
    bad = (spread > 1e-9).to_numpy()
    if bad.any():
        first = df[bad].iloc[0]
        same = df[bad & (df[key] == first[key]).all(axis=1).to_numpy()]
        other = same[(same[col].fillna(-1.0) - vals[same.index[0]]).abs() > 1e-9].iloc[0]
        raise BadInput(
            f"{other[_WHERE]}: {col!r} is {float(other[col]):g} for benchmark {first['benchmark']!r} "
            f"{int(first['num_fewshot'])}-shot on checkpoint {other['checkpoint']!r}, but "
            f"{float(same[col].iat[0]):g} at {same[_WHERE].iat[0]}; one value per benchmark and shot count"
        )


def _check_duplicates(df: pd.DataFrame) -> None:
    key = ["checkpoint", "benchmark", "num_fewshot"]
    dup = df.duplicated(key, keep=False).to_numpy()
    if dup.any():
        first = df[dup].iloc[0]
        same = df[dup & (df[key] == first[key]).all(axis=1).to_numpy()][_WHERE].tolist()
        raise BadInput(
            f"{same[1]}: duplicate row for checkpoint {first['checkpoint']!r}, benchmark "
            f"{first['benchmark']!r}, num_fewshot {first['num_fewshot']} (first at {same[0]}); keep one"
        )


def _check_checkpoints(df: pd.DataFrame, source: str) -> None:
    per_ckpt = df.groupby("checkpoint", sort=False)["flops"].nunique()
    bad = per_ckpt[per_ckpt > 1]
    if not bad.empty:
        name = bad.index[0]
        rows = df[df["checkpoint"] == name].drop_duplicates("flops")[_WHERE].tolist()
        raise BadInput(
            f"{rows[1]}: checkpoint {name!r} has different 'flops' than at {rows[0]}; use one value"
        )
    if per_ckpt.size < MIN_CHECKPOINTS:
        raise BadInput(
            f"{source}: {per_ckpt.size} checkpoint(s) ({', '.join(map(str, per_ckpt.index))}); "
            f"at least {MIN_CHECKPOINTS} with different training FLOPs are needed to test monotonicity"
        )
    distinct = df["flops"].nunique()
    if distinct < MIN_CHECKPOINTS:
        raise BadInput(
            f"{source}: only {distinct} distinct 'flops' values; checkpoints with equal FLOPs are pooled, "
            f"so at least {MIN_CHECKPOINTS} different values are needed"
        )


def drop_where(df: pd.DataFrame) -> pd.DataFrame:
    """The table without the row-origin column (for writing out)."""
    return df.drop(columns=[_WHERE])
