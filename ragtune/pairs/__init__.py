"""Labelled pairs -> fine-tuned model: `ragtune pairs PAIRS.csv --out RUN_DIR`.

Reading the inputs is data.py, the run itself run.py; the settings are config.PairsConfig.

Input files hold (sentence1, sentence2, label) with label in [0, 1]: CSV with
those columns, or JSONL with those keys. Alternatives files list one concept
per row (name, description, alternative phrasings); every two phrasings of a
row become a pair labelled 1.0. A seeded, label-stratified split holds pairs
out; Pearson and Spearman of cosine similarity against the labels are measured
on them with the base model and again after training.

Run directory:

    RUN_DIR/train.jsonl, test.jsonl   the split (versioned LabelledPair JSONL)
    RUN_DIR/metrics.json              {"base": {"pearson", "spearman"}, "fine_tuned": {…}, "improved", counts}
    RUN_DIR/run.json                  config, input file hashes, training facts
    RUN_DIR/model/                    sentence-transformers folder with a model card README.md
"""

from __future__ import annotations

from ..config import PRESETS, PairsConfig
from ..errors import PairsError
from ..training.losses import LOSSES, make_loss
from .data import dedupe, gather, load_alternatives_file, load_pairs_file, split_pairs
from .run import PairsResult, checkpoint_to_resume, render_pairs_card, run_pairs, train_pairs

__all__ = [
    "LOSSES",
    "PRESETS",
    "PairsConfig",
    "PairsError",
    "PairsResult",
    "checkpoint_to_resume",
    "dedupe",
    "gather",
    "load_alternatives_file",
    "load_pairs_file",
    "make_loss",
    "render_pairs_card",
    "run_pairs",
    "split_pairs",
    "train_pairs",
]
