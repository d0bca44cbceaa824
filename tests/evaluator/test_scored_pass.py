"""The one scored pass of a checkpoint (``benchcal_eval.scored_pass``, run through the runner):
shared prefixes computed once, each pair written when done, no extra forward pass, a killed or
failed pass."""

from __future__ import annotations

import pytest

from benchcal.tasks.selection import grid
from benchcal_eval.plan import prepare
from benchcal_eval.runner import run_checkpoint
from tests.evaluator.checkpoint_runs import SCORED, CountingEngine, tiny_lm, tiny_tasks


@pytest.fixture(scope="module")
def lm():
    return tiny_lm()


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return tiny_tasks(tmp_path_factory.mktemp("tasks"))


def test_the_new_metrics_cost_no_extra_forward_pass(lm, tasks, tmp_path):
    """Model calls counted with forward hooks: the decoder body runs exactly once per batch of the
    one scoring pass, and the full model (an extra forward of its own) never."""
    calls = {"body": 0, "full": 0}
    engine = CountingEngine(lm)
    hooks = [
        engine.inner.body.register_forward_hook(lambda *_: calls.__setitem__("body", calls["body"] + 1)),
        lm.model.register_forward_hook(lambda *_: calls.__setitem__("full", calls["full"] + 1)),
    ]
    try:
        plan = prepare(grid([tasks[n] for n in SCORED], (0, 1)))
        summary = run_checkpoint(lm, engine, plan, tmp_path, checkpoint="ck")
    finally:
        for h in hooks:
            h.remove()
    assert not summary.failures and all("gold_prob" in r.metrics for r in summary.results)
    assert len(engine.passes) == 1 and len(engine.passes[0]) == len(plan.pairs)  # one pass, every pair
    assert engine.stats.batches > 0 and calls == {"body": engine.stats.batches, "full": 0}


def stored(out, name, k, must=True):
    """The one result file of a pair (named by its config key), or None when ``must`` is False."""
    found = [p for p in (out / "results" / name).glob(f"{k}shot*.json") if p.name.split(".")[0] == f"{k}shot"]
    assert len(found) <= 1, found
    if must:
        assert found, f"no result for {name} {k}-shot"
    return found[0] if found else None


class InterruptingEngine(CountingEngine):
    """Reports each finished pair to the runner, then stops the process-like pass after ``after``."""

    def __init__(self, lm, after, exc):
        super().__init__(lm)
        self.after, self.exc, self.seen = after, exc, []

    def score_groups(self, groups, *, progress=None, on_done=None):
        def wrapped(g, results):
            on_done(g, results)
            self.seen.append(g)
            if len(self.seen) == self.after:
                raise self.exc

        return super().score_groups(groups, progress=progress, on_done=wrapped)


def test_one_pass_computes_shared_prefixes_once_and_writes_each_pair_when_done(lm, tasks, tmp_path):
    # nested sampling: the 3-shot prompt of a question starts with its 1-shot prompt's example
    pairs = grid([tasks["tiny_mc"], tasks["tiny_schema"]], (1, 3))
    written = []

    class Watching(CountingEngine):
        def score_groups(self, groups, *, progress=None, on_done=None):
            def wrapped(g, results):
                on_done(g, results)
                written.append(sorted(str(p) for p in (tmp_path / "one").rglob("*shot*.json")))

            return super().score_groups(groups, progress=progress, on_done=wrapped)

    engine = Watching(lm)
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path / "one", checkpoint="ck")
    assert not summary.failures and len(engine.passes) == 1 and len(engine.passes[0]) == 4
    assert [len(w) for w in written] == [1, 2, 3, 4]  # each file appears as its pair completes
    separate = 0
    for task, k in pairs:
        e = CountingEngine(lm)
        alone = run_checkpoint(lm, e, prepare([(task, k)]), tmp_path / f"{task.name}{k}", checkpoint="ck")
        separate += e.stats.computed_tokens
        mine = next(r for r in summary.results if (r.benchmark, r.num_fewshot) == (task.name, k))
        assert mine.accuracy == alone.results[0].accuracy and mine.config_key == alone.results[0].config_key
    assert engine.stats.computed_tokens < separate  # prefixes shared across pairs computed once
    # costs are attributed in completion order and add up to the pass
    assert sum(r.tokens_scored for r in summary.results) == engine.stats.computed_tokens


def test_a_run_killed_mid_pass_keeps_the_finished_pairs_and_resumes_the_rest(lm, tasks, tmp_path):
    pairs = grid([tasks["tiny_mc"], tasks["tiny_lm"], tasks["tiny_schema"]], (0, 1))
    killed = InterruptingEngine(lm, after=2, exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_checkpoint(lm, killed, prepare(pairs), tmp_path, checkpoint="ck")
    kept = {(t.name, k): stored(tmp_path, t.name, k).read_bytes() for t, k in pairs[:2]}
    assert not any(stored(tmp_path, t.name, k, must=False) for t, k in pairs[2:])
    engine = CountingEngine(lm)
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path, checkpoint="ck")
    assert len(engine.passes) == 1 and len(engine.passes[0]) == 4  # only the four unfinished pairs
    assert all(stored(tmp_path, *key).read_bytes() == data for key, data in kept.items())
    assert [(r.benchmark, r.num_fewshot) for r in summary.results] == [(t.name, k) for t, k in pairs]


def test_a_failed_pass_fails_exactly_the_pairs_it_had_not_finished(lm, tasks, tmp_path):
    pairs = grid([tasks["tiny_mc"], tasks["tiny_schema"]], (0, 1))
    engine = InterruptingEngine(lm, after=1, exc=RuntimeError("device lost"))
    summary = run_checkpoint(lm, engine, prepare(pairs), tmp_path, checkpoint="ck")
    assert [(r.benchmark, r.num_fewshot) for r in summary.results] == [("tiny_mc", 0)]
    assert [(f.benchmark, f.num_fewshot) for f in summary.failures] == [(t.name, k) for t, k in pairs[1:]]
    assert all("device lost" in f.error for f in summary.failures)
    assert not stored(tmp_path, "tiny_schema", 0, must=False)
