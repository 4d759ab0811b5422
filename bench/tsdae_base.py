"""TSDAE domain adaptation of the base model (Wang et al. 2021): a denoising auto-encoder over the
sentences of a run's chunks, saved as a model folder to start a run from.

    python -m bench.tsdae_base RUN_DIR --save OUT_DIR [--epochs 1]
    python -m ragtune run DOCS --base-model OUT_DIR --out RUN2 && python -m bench.shared_bench RUN2

The encoder reads each sentence with 60% of its words deleted; a decoder tied to it (the base's own
layers, with new cross-attention) must write the whole sentence back from its pooled vector. Batches
of 8, learning rate 3e-5, no weight decay, seed 13: the paper's recipe. Printed: the sentences, the
seconds it trained and the loss. Issue 28 measured it as a start for the single vector
(docs/benchmarks.md, "Other methods tried for the single vector").
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path

from ragtune.models import load_model, resolve_base_model
from ragtune.records import Chunk, read_jsonl

DELETE = 0.6


def sentences_of(chunks: list[Chunk]) -> list[str]:
    """Each distinct sentence (or paragraph without a full stop) of 6 to 80 words."""
    found = set()
    for chunk in chunks:
        for part in re.split(r"(?<=[.!?])\s+|\n{2,}", chunk.text):
            sentence = " ".join(part.split())
            if 6 <= len(sentence.split()) <= 80:
                found.add(sentence)
    return sorted(found)


def damaged(sentence: str, rng: random.Random) -> str:
    """The sentence with each word deleted at DELETE's chance, at least one word kept."""
    tokens = sentence.split()
    return " ".join(t for t in tokens if rng.random() > DELETE) or rng.choice(tokens)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--save", type=Path, required=True)
    ap.add_argument("--epochs", type=float, default=1.0)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    from ragtune.fileio import read_json

    base = resolve_base_model(read_json(args.run_dir / "config.json")["base_model"])
    texts = sentences_of(read_jsonl(args.run_dir / "work" / "chunks.jsonl", Chunk))
    rng = random.Random(13)
    data = Dataset.from_dict({"damaged": [damaged(s, rng) for s in texts], "original": texts})
    model = load_model(base, device="cpu")
    length = model.max_seq_length
    model.max_seq_length = 128
    loss = DenoisingAutoEncoderLoss(model, decoder_name_or_path=base, tie_encoder_decoder=True)
    train_args = SentenceTransformerTrainingArguments(
        output_dir=str(args.save / "checkpoints"),
        per_device_train_batch_size=8,
        learning_rate=3e-5,
        num_train_epochs=args.epochs,
        weight_decay=0.0,
        save_strategy="no",
        report_to=[],
        seed=13,
        use_cpu=True,
    )
    start = time.perf_counter()
    result = SentenceTransformerTrainer(model=model, args=train_args, train_dataset=data, loss=loss).train()
    model.max_seq_length = length
    model.save(str(args.save))
    print(
        f"tsdae: {len(texts)} sentences, {result.global_step} steps in {time.perf_counter() - start:.0f} s, "
        f"loss {result.training_loss:.3f}; saved {args.save}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
