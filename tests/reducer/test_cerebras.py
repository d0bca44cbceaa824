"""Real numbers: Cerebras-GPT 111M–13B at 0 and 5 shots (../shared/fixtures/cerebras_gpt.csv).

The fixture reports accuracy only; the adapter adds what our table needs from facts about
the datasets: n = size of the split lm-eval-harness scores (the harness Cerebras used), and
the random baseline = 1 / number of choices (0 for LAMBADA's open word prediction).
The fixture's `openbookqa` is the gauntlet's `openbook_qa` (same dataset).
"""

from __future__ import annotations

import pandas as pd
import pytest

from benchcal_reduce.reduce import ReduceOptions, reduce_table
from benchcal_reduce.table import validate_table

SPLIT_SIZE = {
    "hellaswag": 10042,
    "piqa": 1838,
    "winogrande": 1267,
    "lambada_openai": 5153,
    "arc_easy": 2376,
    "arc_challenge": 1172,
    "openbookqa": 500,
}
BASELINE = {
    "hellaswag": 0.25,
    "piqa": 0.5,
    "winogrande": 0.5,
    "lambada_openai": 0.0,
    "arc_easy": 0.25,
    "arc_challenge": 0.25,
    "openbookqa": 0.25,
}


def cerebras_table(shared_dir, family: str) -> pd.DataFrame:
    path = shared_dir / "fixtures" / "cerebras_gpt.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    raw = pd.read_csv(path, dtype=str)
    raw = raw[
        (raw["model_family"] == family) & (raw["metric"] == "acc") & raw["benchmark"].isin(list(SPLIT_SIZE))
    ]
    table = pd.DataFrame(
        {
            "checkpoint": raw["model"],
            "flops": raw["flops"],  # the README's "Training FLOPs" column, e.g. "2.6e+18"
            "benchmark": raw["benchmark"].replace({"openbookqa": "openbook_qa"}),
            "num_fewshot": raw["num_fewshot"],
            "accuracy": raw["value"],
            "n": raw["benchmark"].map(SPLIT_SIZE),
            "random_baseline": raw["benchmark"].map(BASELINE),
        }
    )
    return validate_table(table, str(path))


def groups(reduction) -> dict[str, str]:
    return dict(zip(reduction.classification["benchmark"], reduction.classification["group"], strict=True))


def test_cerebras_gpt_common_sense_and_lambada_are_robust(shared_dir):
    red = reduce_table(cerebras_table(shared_dir, "Cerebras-GPT"))
    assert red.table["checkpoint"].nunique() == 7
    assert groups(red) == {
        b: "robust"
        for b in (
            "arc_challenge",
            "arc_easy",
            "hellaswag",
            "lambada_openai",
            "openbook_qa",
            "piqa",
            "winogrande",
        )
    }
    assert red.composite["before"]["monotone"] and red.composite["after"]["monotone"]
    # winogrande 5-shot dips 0.522 -> 0.479 at 256M -> 590M (both at chance): within noise once the
    # six steps of the series are tested as one family.
    wino = red.per_shot[
        (red.per_shot["benchmark"] == "winogrande") & (red.per_shot["num_fewshot"] == 5)
    ].iloc[0]
    assert wino["max_drop"] == pytest.approx(0.043) and 0.05 < wino["drop_p"] < 0.25
    # the two benchmarks whose evidence is close to a threshold say so; the others are clear
    cls = red.classification.set_index("benchmark")
    assert set(cls.index[cls["borderline"]]) == {"openbook_qa", "winogrande"}
    assert (cls.loc[~cls["borderline"], "confidence"] >= 0.95).all()
    # no run column: the noise is the item standard error, a lower bound
    assert (red.per_shot["noise_source"] == "item_se_lower_bound").all() and (red.per_shot["snr"] > 3).all()


def test_cerebras_gpt_strict_check_rejects_the_dips(shared_dir):
    red = reduce_table(cerebras_table(shared_dir, "Cerebras-GPT"), ReduceOptions(strict=True))
    g = groups(red)
    assert g["openbook_qa"] == g["winogrande"] == "poorly_behaved"
    assert all(g[b] == "robust" for b in ("arc_challenge", "arc_easy", "hellaswag", "lambada_openai", "piqa"))
    # the literal rule is fragile: ARC-Challenge's strict verdict survives under a third of the redraws
    assert red.classification.set_index("benchmark").at["arc_challenge", "confidence"] < 0.5


def test_cerebras_gpt_mup_small_models_are_at_chance_on_hard_tasks(shared_dir):
    # muP family stops at 2.7B: ARC-Challenge and OpenBookQA never leave chance level.
    g = groups(reduce_table(cerebras_table(shared_dir, "Cerebras-GPT-muP")))
    assert g["arc_challenge"] == g["openbook_qa"] == "noise"
    assert g["lambada_openai"] == g["hellaswag"] == g["piqa"] == "robust"


def test_cerebras_gpt_mup_winogrande_rises_at_the_largest_model(shared_dir):
    """Changed by issue 13: was poorly_behaved ("drop it"), now robust and borderline.

    WinoGrande sits at chance for 111M-1.3B (0.505-0.534) and reaches 0.557/0.560 at 2.7B. With
    1267 items that last step is 2.8 standard errors above the pooled small models at both shot
    counts, and no fall exceeds noise, so the series is monotone within noise; the old exact rank
    test could only see the shuffled order of the four chance-level points. The 7-model
    Cerebras-GPT family (same recipe, larger models) shows what follows: 0.602 at 6.7B and 0.646 at
    13B, robust. The verdict rests on one checkpoint, and its confidence (about one half) says so.
    """
    red = reduce_table(cerebras_table(shared_dir, "Cerebras-GPT-muP"))
    row = red.classification.set_index("benchmark").loc["winogrande"]
    assert row["group"] == "robust" and row["borderline"] and row["confidence"] < 0.8
    ps = red.per_shot[red.per_shot["benchmark"] == "winogrande"]
    assert ((ps["rise_p"] > 0.005) & (ps["rise_p"] < 0.05)).all() and (ps["drop_p"] > 0.5).all()
    assert (ps["best_checkpoint"] == "Cerebras-GPT-muP-2.7B").all()
