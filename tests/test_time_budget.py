"""--time-budget and the plan a run prints before it trains (ragtune.budget).

The plan's arithmetic is pure and tested on given costs; one tiny-model run checks that a budget caps
the steps the run trains, and says so on the console, in config.json and in metrics.json.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from test_cli import assert_one_error_line

from ragtune import Config, Pipeline, budget
from ragtune.budget import MARGIN, MIN_STEPS, Costs, Sizes, parse_duration, plan_run
from ragtune.cli import main
from ragtune.config_file import load_config_file
from ragtune.errors import ConfigError
from ragtune.pipeline import SilentReporter
from ragtune.stages import PIPELINE
from ragtune.training.losses.ranking import MultiQueryRankingLoss
from tests.support.runs import good_docs, run_args

# 400 chunks at the default settings, 3 overlapping passages a chunk (1.5 without overlap).
SIZES = Sizes(
    n_chunks=400,
    passages_per_chunk=3.0,
    passages_per_chunk_no_overlap=1.5,
    questions_per_chunk=12,
    lexical_per_chunk=8,
    queries_per_row=4,
    batch_size=32,
    epochs=1.5,
    max_steps=-1,
    eval_fraction=0.2,
    eval_max_chunks=100,
    val_fraction=0.1,
    val_max_chunks=50,
    passage_words=20,
    passage_stride=1,
)
# About this CPU's figures for MiniLM: 6 s a step of 32 rows, 50 ms a chunk, 10 ms a question.
COSTS = Costs(step_seconds=6.0, encode_seconds=0.05, query_seconds=0.01)


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("90s", 90), ("1h", 3600), ("1.5h", 5400), ("600", 600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "30 minutes", "-5m", "1d", "", "10s"])
def test_a_bad_duration_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_duration(text)
    assert "time_budget must be" in str(e.value) and e.value.setting == "time_budget"


def test_a_bad_budget_is_one_error_line_before_any_work(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Some words.", encoding="utf-8")
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir, "--time-budget", "half an hour")) == 1
    assert_one_error_line(capsys.readouterr().err, "--time-budget must be a duration", "30m")
    assert not (tmp_path / "run").exists()


def test_without_a_budget_the_plan_is_the_configured_run() -> None:
    plan = plan_run(SIZES, COSTS)
    # 400 chunks less 80 held out and 40 for validation; (12 + 8) / 4 = 5 rows each; 1.5 epochs of 32 rows.
    assert plan.steps == 66
    assert (plan.max_steps, plan.questions_per_chunk, plan.passage_words, plan.passage_stride) == (-1, 12, 20, 1)
    assert plan.changed == ()
    assert plan.seconds["train"] == 66 * 6.0
    # Both models encode 400 chunks and 1,200 passages, and 80 * 12 held-out questions.
    assert plan.seconds["evaluate"] == pytest.approx(2 * (1600 * 0.05 + 960 * 0.01))
    assert "66 steps of 32" in plan.line() and "budget" not in plan.line()


def test_a_budget_that_fits_changes_nothing() -> None:
    plan = plan_run(SIZES, COSTS, budget_seconds=3600)
    assert plan.changed == () and plan.steps == 66 and plan.max_steps == -1
    assert "no change needed" in plan.line()


@pytest.mark.parametrize("budget", [120, 300, 600])
def test_a_tight_budget_fits_the_estimate_in_it(budget: float) -> None:
    plan = plan_run(SIZES, COSTS, budget_seconds=budget)
    assert plan.total_seconds <= budget * (1 - MARGIN) or plan.steps == MIN_STEPS
    assert plan.steps < 66
    # Steps are capped only when fewer questions were not enough (a cap past an epoch would add epochs).
    capped = any(c.startswith("steps ") for c in plan.changed)
    assert plan.max_steps == (plan.steps if capped else -1)
    assert plan.changed and f"{budget / 60:.1f} min budget" in plan.line() or f"{budget} s budget" in plan.line()


def test_what_gives_way_first() -> None:
    # 10 minutes: passages keep their overlap only while they cost under their share of the time.
    plan = plan_run(SIZES, COSTS, budget_seconds=600)
    assert plan.passage_stride == 1 and plan.passage_words == 20
    assert plan.questions_per_chunk == SIZES.queries_per_row
    # Slower encoding: the overlap goes first, then the passages.
    slow = dataclasses.replace(COSTS, encode_seconds=0.4)
    assert plan_run(SIZES, slow, budget_seconds=1200).passage_stride == 0
    plan = plan_run(SIZES, dataclasses.replace(COSTS, encode_seconds=1.0), budget_seconds=1200)
    assert plan.passage_words == 0
    assert "passage_words 20 -> 0" in plan.changed


def test_passages_are_priced_as_passages_not_as_chunks() -> None:
    # The four shared PDFs (771 chunks, 7.53 passages a chunk with overlap, 3.75 without) and the costs an
    # 11-minute run measured there: a passage of a few sentences encodes in a quarter of a chunk's time.
    sizes = dataclasses.replace(SIZES, n_chunks=771, passages_per_chunk=7.53, passages_per_chunk_no_overlap=3.75)
    costs = Costs(6.48, 0.0307, 0.00313, 0.110, passage_seconds=0.00805)
    plan = plan_run(sizes, costs, budget_seconds=660, spent_seconds=28.0)
    assert (plan.passage_words, plan.passage_stride) == (20, 1)
    # Both models encode every chunk and passage, and the 400 held-out questions.
    assert plan.seconds["evaluate"] == pytest.approx(2 * (771 * 0.0307 + 771 * 7.53 * 0.00805 + 400 * 0.00313))
    # Priced as chunks (a plan without a passage price), the same passages lose their overlap.
    as_chunks = plan_run(
        sizes, dataclasses.replace(costs, passage_seconds=None), budget_seconds=660, spent_seconds=28.0
    )
    assert as_chunks.passage_stride == 0 and "passage_stride 1 -> 0" in as_chunks.changed


def test_the_estimate_leaves_out_the_parts_an_earlier_run_did() -> None:
    plan = plan_run(SIZES, COSTS, budget_seconds=3600)
    rest = plan.seconds["evaluate"] + plan.seconds["other"]
    line = plan.line(done=("generate", "train"))
    assert f"about {rest / 60:.1f} min more" in line and "generate, train done by an earlier run" in line
    assert f"about {plan.total_seconds / 60:.1f} min more" in plan.line()
    assert "every part was done" in plan.line(done=tuple(plan.seconds)) and "more" not in plan.line(plan.seconds)


def test_a_budget_too_small_for_the_least_run_says_so() -> None:
    plan = plan_run(SIZES, COSTS, budget_seconds=60, spent_seconds=50)
    assert plan.steps == MIN_STEPS and plan.questions_per_chunk == SIZES.queries_per_row
    assert "does not fit" in plan.line()
    assert "does not fit" not in plan_run(SIZES, COSTS, budget_seconds=600).line()


def test_less_time_never_means_more_steps() -> None:
    steps = [plan_run(SIZES, COSTS, budget_seconds=b).steps for b in (3600, 1200, 600, 300, 120, 60)]
    assert steps == sorted(steps, reverse=True)
    # Time already spent (extraction, chunking) comes off the budget.
    assert plan_run(SIZES, COSTS, 600, spent_seconds=200).steps < plan_run(SIZES, COSTS, 600).steps


class Recorder(SilentReporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def plan(self, line: str) -> None:
        self.lines.append(line)


def _fifty_epochs(docs: Path, out: Path, tiny_model_dir: Path, budget: str = "30s") -> Config:
    """A tiny-model run of fifty epochs (minutes of training) under a 30 s budget."""
    return Config(
        docs=docs,
        out=out,
        time_budget=budget,
        base_model=str(tiny_model_dir),
        batch_size=4,
        chunk_tokens=64,
        chunk_overlap=8,
        device="cpu",
        val_fraction=0,
        wise=False,
        epochs=50.0,
    )


def test_the_warmup_prices_the_corpus_lengths_not_the_chunks_it_samples(tiny_model, nist_pages) -> None:
    """A chunk that opens with links or commands (many tokens a word) at a sampled place must not price every step:
    the warm-up's columns have the lengths of the corpus as a whole, wherever such chunks sit."""
    from ragtune.budget import WARMUP_ROWS, column_lengths, warmup_batch, warmup_rows

    words = " ".join(p.text for p in nist_pages).split()
    prose = [" ".join(words[i : i + 150]) for i in range(0, 150 * 56, 150)]
    links = ["https://doi.org/10.6028/NIST.AI.600-1 " * 40] * WARMUP_ROWS
    sampled = set(warmup_rows(list(range(64))))
    at_samples, elsewhere = list(prose), list(prose)
    for k, i in enumerate(sorted(sampled)):
        at_samples.insert(i, links[k])
    elsewhere += links
    assert set(warmup_rows(at_samples)) == set(links[:1])  # every sampled chunk is a link list
    shapes = [
        [tuple(col["input_ids"].shape) for col in warmup_batch(tiny_model, texts, 4)[2]]
        for texts in (at_samples, elsewhere)
    ]
    assert shapes[0] == shapes[1]
    lengths = column_lengths(tiny_model, at_samples)
    assert shapes[0] == [(WARMUP_ROWS, lengths.longest_question)] * 4 + [(WARMUP_ROWS, lengths.chunk)]
    # 56 prose chunks and 8 link lists: 32 words come to well under what 32 words of a link list make (256).
    assert 32 < lengths.longest_question < 100
    assert lengths.chunk == tiny_model.max_seq_length


def test_the_warmup_times_passages_only_when_the_run_has_them(tmp_path: Path, tiny_model, nist_pages) -> None:
    words = " ".join(p.text for p in nist_pages).split()
    texts = [" ".join(words[i : i + 150]) for i in range(0, 150 * 24, 150)]
    cfg = _fifty_epochs(tmp_path, tmp_path / "run", tmp_path)
    with_passages = budget.measure_costs(tiny_model, texts, cfg, "cpu", tmp_path)
    assert cfg.passage_words and with_passages.passage_seconds is not None and with_passages.passage_seconds > 0
    assert with_passages.passage_price == with_passages.passage_seconds
    without = budget.measure_costs(tiny_model, texts, dataclasses.replace(cfg, passage_words=0), "cpu", tmp_path)
    assert without.passage_seconds is None and without.passage_price == without.encode_seconds


def test_the_warmup_encodes_in_autocast_in_a_cached_loss_backward_pass(tmp_path: Path, tiny_model, nist_pages) -> None:
    """With --mini-batch-size the loss encodes the batch again in its backward pass. Training runs that pass in
    autocast (accelerate wraps the model's forward), so the warm-up must too: outside autocast it ran in fp32, and
    MiniLM's warm-up priced 8 cached rows of the four PDFs' chunks at 2.2 times uncached ones, 1.54 times in it."""
    import torch

    words = " ".join(p.text for p in nist_pages).split()
    texts = [" ".join(words[i : i + 150]) for i in range(0, 150 * 24, 150)]
    cfg = dataclasses.replace(_fifty_epochs(tmp_path, tmp_path / "run", tmp_path), mini_batch_size=2, precision="bf16")
    autocast: list[bool] = []

    def record(module: object, args: object) -> None:
        if torch.is_grad_enabled():  # a pass that trains: the warm-up's, not its timed encodings
            autocast.append(torch.is_autocast_enabled("cpu"))

    # On the first module, inside the model's forward; the warm-up's copy of the model keeps it.
    handle = tiny_model[0].register_forward_pre_hook(record)
    try:
        budget.measure_costs(tiny_model, texts, cfg, "cpu", tmp_path)
    finally:
        handle.remove()
    # Each of the warm-up's steps encodes its 5 columns in mini-batches of 2 in the backward pass.
    assert len(autocast) >= (budget.WARMUP_STEPS + 1) * 5 and all(autocast)


def test_a_budget_caps_the_steps_of_a_real_run(tmp_path: Path, tiny_model_dir: Path, nist_pages) -> None:
    # Fifty epochs of the tiny model would take minutes; a 30 s budget must cap them.
    cfg = _fifty_epochs(good_docs(tmp_path / "docs", nist_pages), tmp_path / "run", tiny_model_dir)
    recorder = Recorder()
    Pipeline(cfg, recorder).run()
    saved = json.loads((cfg.out / "work" / "plan.json").read_text())
    costs, plan = Costs(**saved["costs"]), saved["plan"]
    manifest = json.loads((cfg.out / "work" / "manifest.json").read_text())
    n_chunks = manifest["stages"]["chunk"]["n_chunks"]
    # What the same run would train without the budget, at the costs it measured.
    unbounded = plan_run(dataclasses.replace(_sizes(saved), n_chunks=n_chunks), costs)
    assert plan["steps"] < unbounded.steps
    # Trained the planned steps, fewer when the budget's deadline came first, or more when steps ran faster than
    # the warm-up priced them (both tested below), never more than the plan's questions give without a budget.
    train = manifest["stages"]["train"]
    planned = train.get("cut_from") or train.get("stretched_from") or train["steps"]
    assert plan["steps"] == plan["max_steps"] == planned <= plan["uncut_steps"] <= unbounded.steps
    assert 1 <= train["steps"] <= plan["uncut_steps"]
    # Said on the console, in config.json (the settings the run used) and in metrics.json.
    assert len(recorder.lines) == 1 and f"plan: {plan['steps']} steps of 4" in recorder.lines[0]
    assert "30 s budget" in recorder.lines[0] and "steps " in recorder.lines[0]
    config = json.loads((cfg.out / "config.json").read_text())
    assert config["time_budget"] == "30s" and config["max_steps"] == plan["steps"]
    assert config["plan"]["changed"] == plan["changed"]
    # ... and that config.json is a settings file too, as any run's is (its plan is bookkeeping, not a setting).
    notes: list[str] = []
    values = load_config_file(cfg.out / "config.json", notes=notes)
    assert "plan" not in values and values["max_steps"] == plan["steps"] and "plan" in notes[0], notes
    metrics = json.loads((cfg.out / "metrics.json").read_text())
    assert metrics["plan"]["steps"] == plan["steps"] and metrics["plan"]["actual_seconds"] > 0
    # A rerun keeps the plan (its choices key the later stages) and reuses every stage; its plan line says so
    # instead of announcing the whole run's minutes again.
    again = Recorder()
    result = Pipeline(cfg, again).run()
    assert not result.timings and result.cached == [s.name for s in PIPELINE]
    assert len(again.lines) == 1 and "every part was done by an earlier run" in again.lines[0]
    assert "more" not in again.lines[0]
    # So does a plan.json written before "generator" was a plan setting: planned again, a budgeted run would
    # choose anew and train again. (Planned again, plan.json would record the generator.)
    path = cfg.out / "work" / "plan.json"
    del saved["inputs"]["generator"]
    path.write_text(json.dumps(saved))
    older = Pipeline(cfg, Recorder()).run()
    assert not older.timings and older.cached == [s.name for s in PIPELINE]
    assert "generator" not in json.loads(path.read_text())["inputs"]


def test_the_plan_counts_the_steps_a_run_trains(tmp_path: Path, tiny_model_dir: Path, nist_pages) -> None:
    """The plan counts the questions the generator writes for each chunk and the spans each chunk gives, not the
    settings' 12 and 8: priced at the settings, the Debian manuals' unbounded run planned 884 steps and trained 471."""
    cfg = dataclasses.replace(
        _fifty_epochs(good_docs(tmp_path / "docs", nist_pages), tmp_path / "run", tiny_model_dir, budget=""),
        epochs=1.0,
        passage_words=0,
    )
    Pipeline(cfg, Recorder()).run()
    saved = json.loads((cfg.out / "work" / "plan.json").read_text())
    manifest = json.loads((cfg.out / "work" / "manifest.json").read_text())
    trained = manifest["stages"]["train"]["steps"]
    # The filters after the generator (near duplicates, the round trip) drop a few questions more, and spans are
    # filed under the chunk BM25 finds: within a quarter either way.
    assert 0.8 * trained <= saved["plan"]["steps"] <= 1.25 * trained
    at_settings = plan_run(
        dataclasses.replace(_sizes(saved), n_chunks=manifest["stages"]["chunk"]["n_chunks"]), Costs(**saved["costs"])
    )
    assert at_settings.steps > 1.25 * trained


def test_training_stops_at_the_budget_deadline_when_steps_run_slower_than_planned(
    tmp_path: Path, tiny_model_dir: Path, nist_pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine gets busy once the plan is made: every training step then takes a second longer than the
    # warm-up measured, and fifty epochs would take minutes.
    slow = {"on": False}
    forward = MultiQueryRankingLoss.forward

    def slower(self, *args, **kwargs):
        if slow["on"]:
            time.sleep(1.0)
        return forward(self, *args, **kwargs)

    class BusyAfterThePlan(Recorder):
        def plan(self, line: str) -> None:
            super().plan(line)
            slow["on"] = True

    monkeypatch.setattr(MultiQueryRankingLoss, "forward", slower)
    cfg = _fifty_epochs(good_docs(tmp_path / "docs", nist_pages), tmp_path / "run", tiny_model_dir)
    Pipeline(cfg, BusyAfterThePlan()).run()
    train = json.loads((cfg.out / "work" / "manifest.json").read_text())["stages"]["train"]
    # Stopped by the deadline, short of the steps it was set to train, and said so; the run then finished.
    assert 1 <= train["steps"] < train["cut_from"]
    assert f"(of {train['cut_from']} planned: the time budget ended training)" in train["summary"]
    assert (cfg.out / "model" / "config.json").exists() and (cfg.out / "metrics.json").exists()


def test_training_takes_more_steps_when_they_run_faster_than_the_warmup_priced_them(
    tmp_path: Path, tiny_model_dir: Path, nist_pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warm-up ran in a slow spell: it priced a step at 20 times what training then takes (the Debian run that
    # this mends priced 28 s for steps of 13-16 s). The plan cuts fifty epochs to the fewest steps, and training
    # runs at its own pace. 60 s, not 30: on a loaded machine the stages before training can take all a 30 s
    # budget leaves them.
    measure = budget.measure_costs

    def in_a_slow_spell(*args, **kwargs):
        costs = measure(*args, **kwargs)
        return dataclasses.replace(costs, step_seconds=20 * costs.step_seconds)

    monkeypatch.setattr(budget, "measure_costs", in_a_slow_spell)
    cfg = _fifty_epochs(good_docs(tmp_path / "docs", nist_pages), tmp_path / "run", tiny_model_dir, budget="60s")
    Pipeline(cfg, Recorder()).run()
    plan = json.loads((cfg.out / "work" / "plan.json").read_text())["plan"]
    train = json.loads((cfg.out / "work" / "manifest.json").read_text())["stages"]["train"]
    # More steps than planned, no more than the run would train without a budget, and said so (a loaded machine
    # may still end the stretched training at the deadline, short of the steps it stretched to).
    assert train["stretched_from"] == plan["steps"] < train["steps"] <= plan["uncut_steps"]
    assert f"(planned {plan['steps']}" in train["summary"] and "steps ran faster than planned" in train["summary"]
    assert (cfg.out / "model" / "config.json").exists() and (cfg.out / "metrics.json").exists()


def _sizes(saved: dict) -> Sizes:
    """The Sizes of a run from what plan.json says of its inputs (passages do not change the step count)."""
    inputs = saved["inputs"]
    names = [f.name for f in dataclasses.fields(Sizes) if f.name in inputs]
    return Sizes(n_chunks=0, passages_per_chunk=0.0, passages_per_chunk_no_overlap=0.0, **{n: inputs[n] for n in names})
