"""--time-budget on a large corpus (issue 33 item 1): the plan for ~1,100 pages (3,918 chunks of Debian manuals,
bench/large_corpus.py), at the costs a run measured on this 2-core CPU at a load average of 12-15 and at a quiet
machine's. Pure planner arithmetic, no model."""

from __future__ import annotations

import dataclasses

from ragtune.budget import MARGIN, MIN_STEPS, Costs, plan_run
from tests.test_time_budget import SIZES

# The Debian corpus at the default settings: test_time_budget's sizes at its chunk count.
LARGE = dataclasses.replace(SIZES, n_chunks=3918)
# What that run's plan.json recorded (load average 12.7): ~12x a quiet machine's encoding.
LOADED = Costs(step_seconds=92.66, encode_seconds=0.589, query_seconds=0.0646, save_seconds=0.216)
QUIET = Costs(step_seconds=6.0, encode_seconds=0.05, query_seconds=0.01)
SPENT = 219.0  # extraction, chunking, themes and the warm-up, before the plan


def test_a_budget_the_corpus_cannot_fit_names_the_budget_it_needs_and_why() -> None:
    plan = plan_run(LARGE, LOADED, budget_seconds=1800, spent_seconds=SPENT)
    assert plan.steps == MIN_STEPS and plan.passage_words == 0
    # Both models encoding 3,918 chunks is the floor no setting of the plan lowers.
    assert max(plan.seconds, key=lambda k: plan.seconds[k]) == "evaluate"
    line = plan.line()
    assert "does not fit" in line and "evaluate alone 77.8 min" in line
    need = plan.least_budget_minutes()
    assert f"allow --time-budget {need}m" in line
    # The budget it names is enough, and not more than 5 minutes above what the plan's work needs.
    assert (SPENT + plan.total_seconds) / (1 - MARGIN) <= need * 60 < (SPENT + plan.total_seconds) / (1 - MARGIN) + 300
    again = plan_run(LARGE, LOADED, budget_seconds=need * 60, spent_seconds=SPENT)
    assert "does not fit" not in again.line()
    assert SPENT + again.total_seconds <= need * 60 * (1 - MARGIN)


def test_the_same_corpus_fits_half_an_hour_at_a_quiet_machines_costs() -> None:
    plan = plan_run(LARGE, QUIET, budget_seconds=1800, spent_seconds=SPENT)
    assert "does not fit" not in plan.line()
    assert SPENT + plan.total_seconds <= 1800 * (1 - MARGIN)
    # Passages go (2 x 3,918 chunks and their passages would take most of the time), questions come down to one
    # row a chunk, and the steps fill what is left: far fewer than the 531 of an unbounded run.
    assert plan.passage_words == 0 and plan.questions_per_chunk == LARGE.queries_per_row
    assert MIN_STEPS < plan.steps < plan_run(LARGE, QUIET).steps
