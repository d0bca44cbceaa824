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

from benchcal.errors import BadInput
from benchcal.results import (
    TABLE_COLUMNS,
    TABLE_OPTIONAL_COLUMNS,
    CheckpointSummary,
    read_summary,
    summary_path,
    summary_rows,
)

MIN_CHECKPOINTS = 3
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
    """Check and type the table; returns a clean copy with TABLE_COLUMNS (+ category, stderr)."""
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
    df["category"] = raw["category"].astype(str).str.strip().to_numpy() if "category" in raw.columns else ""
    df["category"] = df["category"].replace({"nan": "", "None": ""})
    df["stderr"] = (
        pd.to_numeric(raw["stderr"], errors="coerce").to_numpy() if "stderr" in raw.columns else math.nan
    )
    _check_duplicates(df)
    _check_checkpoints(df, source)
    return df


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
