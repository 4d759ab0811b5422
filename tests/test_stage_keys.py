"""Declared stage settings: every Config field is claimed by a stage (or said to be unkeyed), and changing
a stage's setting changes its cache key and every later stage's, never an earlier one's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ragtune.config import Config
from ragtune.pipeline import LLM_SETTINGS, STAGES, UNKEYED, stage_keys
from ragtune.stages import PIPELINE

# The settings as each stage module declares them (ragtune.stages.*.STAGE).
STAGE_SETTINGS = {stage.name: stage.settings for stage in PIPELINE}

FINGERPRINT = [("a.pdf", 10, "d1")]
LEXICON = {"privacy": ["privacy"]}


def base(**changes: object) -> Config:
    # An LLM generator, so that the llm_* settings are keyed too (test below for the offline case).
    return Config(docs=Path("d"), **({"generator": "openai", "llm_model": "m"} | changes))  # type: ignore[arg-type]


# Another valid value for each keyed setting (docs, themes_file and pairs_files are hashed through
# the fingerprint, the lexicon and file digests; they have their own tests below).
OTHER: dict[str, object] = {
    "extractor": "pypdfium2",
    "include": ("*.pdf",),
    "exclude": (),
    "base_model": "some/model",
    "chunk_tokens": 200,
    "chunk_overlap": 16,
    "min_chunk_tokens": 10,
    "generator": "template",
    "questions_per_chunk": 6,
    "seed": 7,
    "near_duplicate": 0.9,
    "round_trip_k": 5,
    "llm_base_url": "http://127.0.0.1:1/v1",
    "llm_model": "other",
    "llm_concurrency": 2,
    "llm_timeout": 30.0,
    "llm_retries": 1,
    "eval_fraction": 0.3,
    "val_fraction": 0.2,
    "eval_max_chunks": 50,
    "val_max_chunks": 20,
    "lexical_per_chunk": 0,
    "lexical_remove": 0.5,
    "epochs": 1.0,
    "batch_size": 16,
    "learning_rate": 2e-5,
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "max_steps": 5,
    "distil_steps": 3,
    "wise_share": 0.75,
    "hard_negatives": True,
    "same_theme_negatives": True,
    "pairs_loss": "cosent",
    "evals": 2,
    "patience": 0,
    "wise": False,
    "precision": "bf16",
    "matryoshka_dims": (64,),
    "mini_batch_size": 8,
    "queries_per_row": 2,
    "long_inputs": 0.3,
    "ks": (1, 5),
    "passage_words": 0,
    "passage_stride": 0,
    "chunk_weight": 1.0,
    "hybrid_weight": 0.5,
}
THROUGH = {"docs", "themes_file", "pairs_files"}


def test_every_config_field_is_claimed_by_a_stage() -> None:
    fields = {f.name for f in dataclasses.fields(Config)}
    claimed = [n for stage in STAGES for n in STAGE_SETTINGS[stage]]
    assert set(STAGE_SETTINGS) == set(STAGES)
    assert len(claimed) == len(set(claimed)), "a setting is claimed by two stages"
    unclaimed = sorted(fields - set(claimed) - set(UNKEYED))
    assert set(claimed) | set(UNKEYED) == fields, f"neither keyed nor unkeyed: {unclaimed}"
    assert not set(claimed) & set(UNKEYED) and set(LLM_SETTINGS) <= set(STAGE_SETTINGS["generate"])
    assert set(OTHER) | THROUGH == set(claimed), "give OTHER a value for each new keyed setting"


def owner(name: str) -> str:
    return next(stage for stage in STAGES if name in STAGE_SETTINGS[stage])


@pytest.mark.parametrize("name", sorted(OTHER))
def test_a_setting_reruns_its_stage_and_the_later_ones(name: str) -> None:
    before = stage_keys(base(), FINGERPRINT, LEXICON)
    after = stage_keys(base(**{name: OTHER[name]}), FINGERPRINT, LEXICON)
    at = STAGES.index(owner(name))
    assert [s for s in STAGES[:-1] if before[s] == after[s]] == list(STAGES[:at])


def test_docs_lexicon_and_pairs_files_are_keyed_by_content(tmp_path: Path) -> None:
    keys = stage_keys(base(), FINGERPRINT, LEXICON)
    assert stage_keys(base(), [("a.pdf", 10, "d2")], LEXICON)["extract"] != keys["extract"]
    other_lexicon = stage_keys(base(), FINGERPRINT, {"privacy": ["privacy", "consent"]})
    assert other_lexicon["chunk"] == keys["chunk"] and other_lexicon["theme"] != keys["theme"]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2,label\na,b,1\n")
    first = stage_keys(base(pairs_files=(pairs,)), FINGERPRINT, LEXICON)
    pairs.write_text("sentence1,sentence2,label\na,b,0\n")
    second = stage_keys(base(pairs_files=(pairs,)), FINGERPRINT, LEXICON)
    assert first["split"] == second["split"] and first["train"] != second["train"]


def test_llm_settings_do_not_touch_an_offline_run() -> None:
    offline = Config(docs=Path("d"))
    keys = stage_keys(offline, FINGERPRINT, LEXICON)
    for name in LLM_SETTINGS:
        assert stage_keys(offline.replace(**{name: OTHER[name]}), FINGERPRINT, LEXICON) == keys, name


@pytest.mark.parametrize("name", UNKEYED)
def test_unkeyed_settings_rerun_nothing(name: str) -> None:
    other = {"out": Path("elsewhere"), "device": "cpu", "push_repo": "me/model", "private": True, "time_budget": "30m"}[
        name
    ]
    assert stage_keys(base(**{name: other}), FINGERPRINT, LEXICON) == stage_keys(base(), FINGERPRINT, LEXICON)


def test_settings_added_later_keep_older_run_folders_keys_while_they_are_off() -> None:
    # A run folder written before long_inputs, distil_steps and wise_share existed was keyed without them: with
    # all off (the first two by default; wise_share at 1, all of the change, as before it came) the keys must be
    # what that ragtune computed, or every such run would train again.
    from ragtune.stagekeys import ADDED_SETTINGS

    older = tuple(
        dataclasses.replace(stage, settings=tuple(s for s in stage.settings if s not in ADDED_SETTINGS))
        for stage in PIPELINE
    )
    assert {"long_inputs", "distil_steps", "wise_share"} <= set(ADDED_SETTINGS)
    cfg = base(**ADDED_SETTINGS)
    assert stage_keys(cfg, FINGERPRINT, LEXICON) == stage_keys(cfg, FINGERPRINT, LEXICON, older)
    # Turned on, they are keyed like any other setting.
    for name in ADDED_SETTINGS:
        on = cfg.replace(**{name: OTHER[name]})
        assert stage_keys(on, FINGERPRINT, LEXICON)["train"] != stage_keys(on, FINGERPRINT, LEXICON, older)["train"]
