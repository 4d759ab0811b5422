"""ragtune against a plain sentence-transformers script: training on the same pairs, or whole pipelines end to end.

    python -m bench.vs_plain RUN_DIR [--rounds 1] [--bench ../shared/bench/nist_ragas_test100.csv]
    python -m bench.vs_plain --docs DOCS_DIR [--rounds 1] [--work DIR] [--bench ...]

**Training** (RUN_DIR). In one process, alternating plain, ragtune, plain, ragtune …, both start from the
run's base model and train on the same (question, chunk) pairs (the run's
pairs_train.jsonl and pairs_lexical.jsonl) for the same number of epochs:

- plain: one (question, chunk) row per pair, MultipleNegativesRankingLoss, NO_DUPLICATES
  batches of 32, fp32, the model's default max_seq_length, nothing else (the recipe of
  sentence-transformers' training examples);
- ragtune: `ragtune.training.trainer.fine_tune` with the run's Config, as the train stage calls it
  (rows of one chunk and 4 of its questions, no attention dropout, validation,
  best checkpoint and WiSE mix).

Each model is then scored on the run's held-out questions and, when the file exists,
on the third-party questions (bench/common.py's relevance rule), one vector per
chunk and with passages. The script prints every time, the ratio ragtune / plain, and
both qualities.

**End to end** (--docs). Each pipeline runs in a fresh process, from the PDFs to a saved model scored on its own
held-out questions, alternating plain, ragtune, …:

- plain (`plain_pipeline`): pypdf's text of each page, LangChain's RecursiveCharacterTextSplitter at 1000
  characters with 100 of overlap, 4 questions a chunk from ragtune's offline generator (a plain script needs
  questions from somewhere, and no LLM answers here), 10% of the pairs held out, the training recipe above for one
  epoch at a learning rate of 2e-5, the model saved, and hit@5 of the held-out questions over a FAISS index;
- ragtune: `python -m ragtune run DOCS --out DIR`, every setting at its default; with `--budget-share F`, under
  `--time-budget` of F times the plain script's time in the same round (plain runs first), so the ratio asks what
  ragtune serves when it is given that share of the plain script's time.

Then, untimed, both first rounds' models are scored on the third-party questions by `bench.shared_bench`: what each
pipeline serves (plain: one vector per 1000-character chunk; ragtune: its served retriever over its own chunks, as
its index/retriever.json sets it: the mode, and passages only when the run cut them), and both models as one vector
over the same 1000-character chunks.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DEFAULT_BENCH,
    alternate,
    dense_row,
    hybrid_row,
    load_run,
    ragtune_train,
    run_seq_length,
    scores,
)
from ragtune.fileio import read_json
from ragtune.models import load_model, resolve_base_model
from ragtune.records import Chunk, Pair


def plain_train(
    model: Any, pairs: list[Pair], chunks: dict[str, Chunk], epochs: float, lr: float, seed: int, work: Path
) -> None:
    """The textbook recipe: one row per pair, MNRL, no-duplicates batches of 32."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    data = Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [chunks[p.chunk_id].text for p in pairs]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=epochs,
        per_device_train_batch_size=32,
        learning_rate=lr,
        warmup_steps=0.1,
        seed=seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        logging_steps=50,
    )
    SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
    ).train()


def plain_pipeline(docs: Path, out: Path, base: str, seed: int = 13) -> float:
    """The plain script end to end (see the module's docstring); returns its held-out hit@5."""
    import faiss
    import numpy as np
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from pypdf import PdfReader

    from ragtune.generators import OfflineGenerator

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)
    chunks: list[Chunk] = []
    for pdf in sorted(docs.glob("*.pdf")):
        text = "\n\n".join(page.extract_text() or "" for page in PdfReader(pdf).pages)
        chunks += [Chunk(f"{pdf.name}#{i}", pdf.name, (), t, 0) for i, t in enumerate(splitter.split_text(text))]
    pairs = OfflineGenerator(4).generate(chunks, random.Random(seed))
    random.Random(seed).shuffle(pairs)
    held, train = pairs[: len(pairs) // 10], pairs[len(pairs) // 10 :]
    model = load_model(base, "cpu")
    by_id = {c.id: c for c in chunks}
    plain_train(model, train, by_id, 1, 2e-5, seed, out / "checkpoints")
    model.save(str(out / "model"))
    vectors = model.encode([c.text for c in chunks], normalize_embeddings=True, batch_size=32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.asarray(vectors, dtype="float32"))
    q = model.encode([p.query for p in held], normalize_embeddings=True, batch_size=32)
    top = index.search(np.asarray(q, dtype="float32"), 5)[1]
    hit5 = float(np.mean([p.chunk_id in {chunks[i].id for i in row} for row, p in zip(top, held)]))
    print(f"plain: {len(chunks)} chunks, {len(train)} training pairs, held-out hit@5 {hit5:.3f}", flush=True)
    return hit5


def served_row(retriever: dict[str, Any]) -> str:
    """bench.shared_bench's row for what a run's index/retriever.json serves.

    >>> served_row({"mode": "hybrid", "passage_words": 20, "hybrid_weight": 0.6})
    'hybrid (fine-tuned, passages + BM25, 0.6:0.4)'
    >>> served_row({"mode": "dense", "passage_words": 0})
    'fine-tuned'
    """
    dense = dense_row("fine-tuned", retriever.get("passage_words", 0))
    if retriever["mode"] == "bm25":
        return "BM25"
    if retriever["mode"] == "dense":
        return dense
    return hybrid_row(dense, retriever.get("hybrid_weight", 0.6))


def ragtune_command(docs: Path, out: Path, budget_s: float | None) -> list[str]:
    """`ragtune run` at its defaults, or under a time budget of `budget_s` seconds.

    >>> ragtune_command(Path("d"), Path("o"), 98.4)[-2:]
    ['--time-budget', '98s']
    """
    cmd = [sys.executable, "-m", "ragtune", "run", str(docs), "--out", str(out)]
    return cmd + (["--time-budget", f"{budget_s:.0f}s"] if budget_s else [])


def end_to_end(
    docs: Path, rounds: int, work: Path, bench: Path, base: str, budget_share: float | None = None
) -> dict[str, Any]:
    """Both pipelines timed in fresh processes, alternating; then both first rounds scored on `bench`.

    With `budget_share`, ragtune runs under a time budget of that share of the plain script's time in its round.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times: dict[str, list[float]] = {"plain": [], "ragtune": []}
    for r, name in alternate(rounds, ("plain", "ragtune")):
        out = work / f"{name}{r}"
        if name == "plain":
            cmd = [sys.executable, "-m", "bench.vs_plain", "--plain-pipeline", str(docs), str(out), "--base", base]
        else:
            cmd = ragtune_command(docs, out, budget_share * times["plain"][r] if budget_share else None)
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times[name].append(time.perf_counter() - start)
        (work / f"{name}{r}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode:
            raise SystemExit(f"vs_plain: {name} failed (exit {done.returncode}); see {work / f'{name}{r}.log'}")
        print(f"round {r + 1}: {name} took {times[name][-1]:.0f}s", flush=True)
    scored: dict[str, Any] = {}
    for name, extra in (("ragtune", []), ("plain", ["--model", str(work / "plain0" / "model")])):
        target = work / f"{name}-bench.json"
        cmd = [sys.executable, "-m", "bench.shared_bench", str(work / "ragtune0"), "--bench", str(bench), "--no-base"]
        subprocess.run([*cmd, *extra, "--json", str(target)], env=env, check=True, capture_output=True)
        scored[name] = json.loads(target.read_text())
    row = served_row(read_json(work / "ragtune0" / "index" / "retriever.json"))
    quality = {
        "served": {
            "plain": scored["plain"]["chars1000"]["results"]["fine-tuned"],
            "ragtune": scored["ragtune"]["run"]["results"][row],
        },
        "one vector, 1000-character chunks": {
            k: scored[k]["chars1000"]["results"]["fine-tuned"] for k in ("plain", "ragtune")
        },
    }
    plain, ours = min(times["plain"]), min(times["ragtune"])
    print(f"\ntime: plain {plain:.0f}s, ragtune {ours:.0f}s (best of {rounds}): ragtune / plain = {ours / plain:.2f}")
    if budget_share:
        print(f"ragtune ran under --time-budget of {budget_share:g} x the plain script's time in its round")
    print(f"ragtune serves: {row}")
    print(f"{'third-party questions':<40}{'plain':>16}{'ragtune':>16}")
    for label, by in quality.items():
        cells = "".join(f"{by[k]['hit@5']:>8.3f} {by[k]['mrr@10']:>7.3f}" for k in ("plain", "ragtune"))
        print(f"{label + ' (hit@5, MRR@10)':<40}{cells}")
    return {"times": times, "quality": quality, "served": row, "budget_share": budget_share}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, nargs="?", help="a finished run: time training on its pairs")
    ap.add_argument("--docs", type=Path, help="a folder of PDFs: time both pipelines end to end")
    ap.add_argument("--work", type=Path, help="where the end-to-end runs go (default: a temporary folder)")
    ap.add_argument("--plain-pipeline", nargs=2, type=Path, metavar=("DOCS", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--base", default="", help="the base model (default: ragtune's)")
    ap.add_argument("--rounds", type=int, default=1, help="plain/ragtune pairs to time")
    ap.add_argument(
        "--budget-share",
        type=float,
        help="--docs: run ragtune under --time-budget of this share of the plain script's time (0.5: half)",
    )
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = resolve_base_model(args.base)  # "": ragtune's default
    if args.plain_pipeline:
        plain_pipeline(*args.plain_pipeline, base)
        return 0
    if args.docs:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            result = end_to_end(args.docs, args.rounds, work, args.bench, base, args.budget_share)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 0
    if not args.run_dir:
        ap.error("give RUN_DIR (training) or --docs DOCS_DIR (end to end)")
    run = args.run_dir
    cfg, chunk_list, pairs, suites = load_run(run, args.bench)
    chunks = {c.id: c for c in chunk_list}
    base = load_model(resolve_base_model(cfg.base_model), "cpu")
    seq_length = run_seq_length(run)
    print(
        f"# {len(pairs)} pairs over {len({p.chunk_id for p in pairs})} chunks, {cfg.epochs} epochs; "
        f"base max_seq_length {base.max_seq_length}, ragtune's {seq_length}",
        file=sys.stderr,
    )
    times: dict[str, list[float]] = {"plain": [], "ragtune": []}
    quality: dict[str, dict[str, float]] = {}
    for r, name in alternate(args.rounds, ("plain", "ragtune")):
        model = copy.deepcopy(base)
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            if name == "plain":
                plain_train(model, pairs, chunks, cfg.epochs, cfg.learning_rate, cfg.seed, Path(work))
            else:
                model.max_seq_length = seq_length
                ragtune_train(model, cfg, pairs, chunks, run, Path(work))
            times[name].append(time.perf_counter() - start)
        print(f"round {r + 1}: {name} trained in {times[name][-1]:.0f}s", flush=True)
        if r == 0:
            model.max_seq_length = seq_length  # score both models on whole chunks
            quality[name] = scores(model, chunk_list, suites)
    plain, ours = min(times["plain"]), min(times["ragtune"])
    print(
        f"\ntime: plain {plain:.0f}s, ragtune {ours:.0f}s (best of {args.rounds}): ragtune / plain = {ours / plain:.2f}"
    )
    keys = list(quality["plain"])
    print(f"{'':<26}{'plain':>9}{'ragtune':>9}")
    for k in keys:
        print(f"{k:<26}{quality['plain'][k]:>9.3f}{quality['ragtune'][k]:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps({"times": times, "quality": quality}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
